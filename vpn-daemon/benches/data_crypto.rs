//! Data-channel seal/open throughput for 1400-byte packets (AES-256-GCM,
//! plus CHACHA20-POLY1305 and AES-256-CBC+SHA256 for comparison).
//!
//! Compare with `openssl speed -evp aes-256-gcm -bytes 1024` (and 8192):
//! criterion prints bytes/s; the ratio is ours / OpenSSL's raw EVP speed.
//! The `openssl-evp-baseline` group does the same EVP calls as `openssl
//! speed` on 1400 bytes inside this process, so its ratio to `seal_1400` is
//! measured under the same load.
//! Run with modest samples on shared machines:
//! `cargo bench -p vpn-daemon --bench data_crypto -- --sample-size 20 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vpn_daemon::proto::data::crypto::{DataCipher, RecvKey, SendKey};
use vpn_daemon::proto::data::hmac::Digest;
use vpn_daemon::proto::keys::KeySlot;
use vpn_daemon::proto::replay::ReplayConfig;
use vpn_daemon::proto::wire::data::PeerId;
use vpn_daemon::proto::wire::opcode::KeyId;

const LEN: usize = 1400;
/// Packets pre-sealed for the open benchmark; the replay window is reset
/// once per batch so the same packets can be opened again.
const BATCH: usize = 1024;

fn slot() -> KeySlot {
    let cipher: Vec<u8> = (1..=64).collect();
    let hmac: Vec<u8> = (65..=128).collect();
    KeySlot::from_prefixes(&cipher, &hmac).unwrap()
}

fn bench_cipher(c: &mut Criterion, cipher: DataCipher, auth: Digest) {
    let mut g = c.benchmark_group(cipher.name());
    g.throughput(Throughput::Bytes(LEN as u64));
    let plaintext = vec![0x45u8; LEN];

    let mut send = SendKey::new(cipher, auth, &slot(), KeyId::ZERO, PeerId::new(1)).unwrap();
    let mut dst = vec![0u8; send.seal_buffer_len(LEN)];
    g.bench_function("seal_1400", |b| {
        b.iter(|| {
            let s = send.seal(black_box(&plaintext), &mut dst).unwrap();
            black_box(s.packet.len())
        })
    });

    let mut sender = SendKey::new(cipher, auth, &slot(), KeyId::ZERO, PeerId::new(1)).unwrap();
    let packets: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| {
            let mut d = vec![0u8; sender.seal_buffer_len(LEN)];
            sender.seal(&plaintext, &mut d).unwrap().packet.to_vec()
        })
        .collect();
    let mut recv =
        RecvKey::new(cipher, auth, &slot(), KeyId::ZERO, ReplayConfig::default()).unwrap();
    let mut out = vec![0u8; recv.open_buffer_len(packets[0].len())];
    g.bench_function("open_1400", |b| {
        // Starts "exhausted" so every measurement run begins with a fresh window.
        let mut i = BATCH;
        b.iter(|| {
            if i == BATCH {
                i = 0;
                recv.reset_replay_window();
            }
            let o = recv.open(black_box(&packets[i]), &mut out, 0).unwrap();
            i += 1;
            black_box(o.plaintext.len())
        })
    });
    g.finish();
}

/// What `openssl speed -evp aes-256-gcm` does per block (set IV, AAD,
/// update, final, read tag), on 1400 bytes, in this process: the ratio to
/// it is measured under the same machine load as our seal.
fn openssl_baseline(c: &mut Criterion) {
    use openssl::cipher::Cipher;
    use openssl::cipher_ctx::CipherCtx;

    let mut g = c.benchmark_group("openssl-evp-baseline");
    g.throughput(Throughput::Bytes(LEN as u64));
    let key = [7u8; 32];
    let mut ctx = CipherCtx::new().unwrap();
    ctx.encrypt_init(Some(Cipher::aes_256_gcm()), Some(&key), None)
        .unwrap();
    let input = vec![0x45u8; LEN];
    let mut out = vec![0u8; LEN];
    let mut tag = [0u8; 16];
    let aad = [0u8; 8];
    let mut counter = 0u32;
    g.bench_function("aes_256_gcm_encrypt_1400", |b| {
        b.iter(|| {
            counter = counter.wrapping_add(1);
            let mut iv = [0u8; 12];
            iv[..4].copy_from_slice(&counter.to_be_bytes());
            ctx.encrypt_init(None, None, Some(&iv)).unwrap();
            ctx.cipher_update(&aad, None).unwrap();
            let n = ctx
                .cipher_update(black_box(&input), Some(&mut out))
                .unwrap();
            ctx.cipher_final(&mut []).unwrap();
            ctx.tag(&mut tag).unwrap();
            black_box(n)
        })
    });
    g.finish();
}

fn data_crypto(c: &mut Criterion) {
    openssl_baseline(c);
    bench_cipher(c, DataCipher::Aes256Gcm, Digest::Sha1);
    bench_cipher(c, DataCipher::ChaCha20Poly1305, Digest::Sha1);
    bench_cipher(c, DataCipher::Aes256Cbc, Digest::Sha256);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = data_crypto
}
criterion_main!(benches);
