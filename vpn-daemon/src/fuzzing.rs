//! Entry points for the `fuzz/` crate (not part of the supported API), at the
//! crate root because they drive `config` and `mgmt` parsers as well as `proto`.
//!
//! Each function takes arbitrary bytes and must never panic. Built with
//! `--cfg fuzzing`, HMAC checks accept any tag so the fuzzer reaches the
//! parsers behind them.

use crate::proto::data::compress::CompressFraming;
use crate::proto::data::crypto::{DataCipher, RecvKey, SendKey};
use crate::proto::data::hmac::Digest;
use crate::proto::data::payload::classify;
use crate::proto::keys::{Key2, KeyDirection, KeySlot, Role};
use crate::proto::replay::{PacketIdLong, ReplayConfig};
pub use crate::proto::wire::control::{ControlPacket, ControlRepr};
pub use crate::proto::wire::data::{DataHeader, DataPacket, PeerId};
use crate::proto::wire::opcode::KeyId;
use crate::proto::wire::tcp::TcpDecoder;
use crate::proto::wire::tls_auth::TlsAuth;
use crate::proto::wire::tls_crypt::{self, TlsCrypt, TlsCryptV2ServerKey};
use crate::proto::wire::tlv::EarlyNegotiation;

fn fixed_key() -> Key2 {
    let mut b = [0u8; 256];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    Key2::from_bytes(b)
}

fn parse_plain(plain: &[u8]) {
    if let Ok(r) = ControlRepr::parse_bytes(plain) {
        let mut out = vec![0u8; r.buffer_len()];
        let n = r.emit(&mut out).unwrap_or(0);
        assert_eq!(&out[..n], plain, "parse/emit round trip");
        if r.opcode.is_hard_reset() {
            let _ = EarlyNegotiation::parse(r.payload);
        }
    }
}

/// Plain control packet parser + emit round trip.
pub fn wire_control(data: &[u8]) {
    parse_plain(data);
}

/// Data header parse, then AEAD and CBC open with fixed keys, then unframing.
pub fn wire_data(data: &[u8]) {
    if let Ok(p) = DataPacket::new_checked(data) {
        let _ = DataHeader::parse(&p);
    }
    let key = fixed_key();
    for (cipher, digest) in [
        (DataCipher::Aes256Gcm, Digest::Sha1),
        (DataCipher::Aes256Cbc, Digest::Sha256),
    ] {
        let slot: KeySlot = key.slot(0);
        if let Ok(mut k) = RecvKey::new(
            cipher,
            digest,
            &slot,
            KeyId::from_bits(data.first().copied().unwrap_or(0)),
            ReplayConfig::default(),
        ) {
            let mut dst = vec![0u8; k.open_buffer_len(data.len())];
            if let Ok(o) = k.open(data, &mut dst, 0) {
                for f in [
                    CompressFraming::None,
                    CompressFraming::LzoStub,
                    CompressFraming::StubSwap,
                    CompressFraming::StubV2,
                    CompressFraming::Lzo,
                    CompressFraming::Lz4,
                    CompressFraming::Lz4V2,
                ] {
                    let mut c = o.plaintext.to_vec();
                    if let Ok(inner) = f.unframe(&mut c) {
                        let _ = classify(inner);
                    }
                }
            }
        }
    }
}

/// tls-auth unwrap (SHA1 and SHA512), then the plain parser.
pub fn tls_auth_unwrap(data: &[u8]) {
    let key = fixed_key();
    for d in [Digest::Sha1, Digest::Sha512] {
        let a = TlsAuth::new(&key, KeyDirection::Normal, d);
        let mut dst = vec![0u8; data.len()];
        if let Ok((_, plain)) = a.unwrap(data, &mut dst) {
            parse_plain(plain);
        }
    }
}

/// tls-crypt unwrap, then the plain parser.
pub fn tls_crypt_unwrap(data: &[u8]) {
    if let Ok(mut c) = TlsCrypt::new(&fixed_key(), Role::Server) {
        let mut dst = vec![0u8; data.len()];
        if let Ok((_, plain)) = c.unwrap(data, &mut dst) {
            parse_plain(plain);
        }
    }
}

/// TCP framing decoder fed in uneven chunks.
pub fn tcp_framing(data: &[u8]) {
    let mut d = TcpDecoder::new(1600);
    let mut rest = data;
    let mut step = 1usize;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        let mut left = d.feed(chunk);
        loop {
            match d.next_packet() {
                Ok(Some(p)) => parse_plain(p),
                Ok(None) => {}
                Err(_) => return,
            }
            if left.is_empty() {
                break;
            }
            left = d.feed(left);
        }
        rest = tail;
        step = step % 7 + 1;
    }
}

/// tls-crypt-v2: split off and unwrap the WKc, then the packet with Kc.
pub fn tls_crypt_v2_wkc(data: &[u8]) {
    if let Ok(srv) = TlsCryptV2ServerKey::from_pem(V2_SERVER_PEM) {
        let mut dst = vec![0u8; data.len()];
        if let Ok((_, _, _, plain)) = tls_crypt::server_unwrap_v3(&srv, data, &mut dst) {
            parse_plain(plain);
        }
    }
}

pub(crate) const V2_SERVER_PEM: &str = "-----BEGIN OpenVPN tls-crypt-v2 server key-----\n\
    AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n\
    MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n\
    YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=\n\
    -----END OpenVPN tls-crypt-v2 server key-----\n";

const SEED_PID: PacketIdLong = PacketIdLong {
    id: 1,
    time: 0x6b07_07af,
};

/// A plain control packet tls-auth-wrapped so that [`tls_auth_unwrap`] accepts it.
pub fn seed_tls_auth(plain: &[u8]) -> Vec<u8> {
    let a = TlsAuth::new(&fixed_key(), KeyDirection::Inverse, Digest::Sha1);
    let mut dst = vec![0u8; plain.len() + 128];
    a.wrap(plain, SEED_PID, &mut dst)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// A plain control packet tls-crypt-wrapped so that [`tls_crypt_unwrap`] accepts it.
pub fn seed_tls_crypt(plain: &[u8]) -> Vec<u8> {
    let mut dst = vec![0u8; plain.len() + 128];
    match TlsCrypt::new(&fixed_key(), Role::Client) {
        Ok(mut c) => c
            .wrap(plain, SEED_PID, &mut dst)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// A plain control packet wrapped as a tls-crypt-v2 client would, WKc appended.
pub fn seed_tls_crypt_v2(plain: &[u8]) -> Vec<u8> {
    let Ok(srv) = TlsCryptV2ServerKey::from_pem(V2_SERVER_PEM) else {
        return Vec::new();
    };
    let Ok(wkc) = srv.wrap_client_key(&fixed_key(), &tls_crypt::Metadata::User(b"seed".to_vec()))
    else {
        return Vec::new();
    };
    let Ok(mut c) = TlsCrypt::new(&fixed_key(), Role::Client) else {
        return Vec::new();
    };
    let mut dst = vec![0u8; plain.len() + 128];
    let mut out = c
        .wrap(plain, SEED_PID, &mut dst)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    out.extend_from_slice(&wkc);
    out
}

/// `plaintext` sealed with the keys [`wire_data`] opens with (AES-256-GCM and CBC).
pub fn seed_data(first_byte: u8, plaintext: &[u8]) -> Vec<Vec<u8>> {
    let key = fixed_key();
    let kid = KeyId::from_bits(first_byte);
    let peer = if first_byte >> 3 == 9 {
        PeerId::new(0)
    } else {
        None
    };
    let mut out = Vec::new();
    for (cipher, digest) in [
        (DataCipher::Aes256Gcm, Digest::Sha1),
        (DataCipher::Aes256Cbc, Digest::Sha256),
    ] {
        if let Ok(mut k) = SendKey::new(cipher, digest, &key.slot(0), kid, peer) {
            let mut dst = vec![0u8; k.seal_buffer_len(plaintext.len())];
            if let Ok(s) = k.seal(plaintext, &mut dst) {
                out.push(s.packet.to_vec());
            }
        }
    }
    out
}

/// One TLS plaintext record of the control channel: split into messages,
/// each parsed; PUSH_REPLY options parsed; the same bytes read as a
/// key-method-2 message from either role and as peer-info.
pub fn control_plaintext(data: &[u8]) {
    use crate::proto::control_msg::{ControlMessage, split_record};
    use crate::proto::key_method::{KeyMethod2, OccOptions, PeerInfo};
    use crate::proto::push::PushedOptions;
    use crate::proto::tls::TlsRole;

    for m in split_record(data).messages {
        let _ = ControlMessage::parse(&m);
        if let Some(opts) = m.strip_prefix("PUSH_REPLY,") {
            let _ = PushedOptions::parse(opts);
        }
    }
    for role in [TlsRole::Client, TlsRole::Server] {
        if let Ok(km) = KeyMethod2::parse(data, role) {
            let _ = PeerInfo::parse(&km.peer_info);
            let _ = OccOptions::parse(&km.options);
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = PushedOptions::parse(&text);
    let _ = PeerInfo::parse(&text);
}

/// A server front door and an established-looking client session, built
/// once from a PKI the fuzz target supplies, fed arbitrary packets.
pub struct SessionTarget {
    responder: crate::proto::cookie::StatelessResponder,
    client: crate::proto::session::Session,
    start: std::time::Instant,
}

impl SessionTarget {
    /// Builds the target from PEM bytes (CA, server and client cert/key).
    /// `start` is any instant; the target advances virtual time from it.
    pub fn new(
        ca: &[u8],
        server: (&[u8], &[u8]),
        client: (&[u8], &[u8]),
        start: std::time::Instant,
    ) -> Option<Self> {
        use std::sync::Arc;

        use crate::proto::cookie::{CookieKey, StatelessResponder};
        use crate::proto::session::{Session, SessionConfig, WrapConfig};
        use crate::proto::tls::{Identity, TlsConfig, TlsContext, TlsRole};

        let ctx = |role, (cert, key): (&[u8], &[u8])| {
            let mut c = TlsConfig::new(
                role,
                ca.to_vec(),
                Some(Identity::Pem {
                    cert: cert.to_vec(),
                    key: key.to_vec(),
                }),
            );
            // A fixed verification time keeps runs reproducible.
            c.verify_time = Some(1_795_000_000);
            TlsContext::new(&c).ok().map(Arc::new)
        };
        let wrap = || WrapConfig::Crypt { key: fixed_key() };
        let scfg = Arc::new(SessionConfig::new(
            Role::Server,
            ctx(TlsRole::Server, server)?,
            wrap(),
        ));
        let ccfg = Arc::new(SessionConfig::new(
            Role::Client,
            ctx(TlsRole::Client, client)?,
            wrap(),
        ));
        let cookie = CookieKey::generate(scfg.hand_window).ok()?;
        let responder = StatelessResponder::new(scfg, cookie).ok()?;
        let client = Session::new_client(ccfg, start, 1_795_000_000).ok()?;
        Some(Self {
            responder,
            client,
            start,
        })
    }

    /// Feeds `data` to the server's stateless path and to the client session.
    pub fn feed(&mut self, data: &[u8]) {
        use std::net::{Ipv4Addr, SocketAddr};

        use crate::proto::cookie::FirstContact;

        let now = self.start + std::time::Duration::from_secs(1);
        let from = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 40000));
        let mut reply = [0u8; 2048];
        if let FirstContact::Accept(mut s) =
            self.responder
                .handle_initial(now, 1_795_000_001, from, data, &mut reply)
        {
            let mut out = [0u8; 2048];
            while s.poll_transmit(now, 1_795_000_001, &mut out).is_some() {}
        }
        self.client.handle_packet(now, 1_795_000_001, data);
        let mut out = [0u8; 2048];
        while self
            .client
            .poll_transmit(now, 1_795_000_001, &mut out)
            .is_some()
        {}
        while self.client.poll_event().is_some() {}
        let mut plain = [0u8; 2048];
        let _ = self.client.decrypt(now, data, &mut plain);
    }
}

/// The decompressor: byte 0 picks the algorithm (LZO, LZ4 swap form, LZ4
/// v2) and the room of the caller's buffer, the rest is a decrypted
/// plaintext. Whatever comes out is no larger than the tun MTU allows; then
/// the same bytes go through our compressor and must come back unchanged.
pub fn decompress(data: &[u8]) {
    use crate::proto::data::compress::{CompressOptions, Compressor};

    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let mut o = CompressOptions::default();
    let _ = o.allow_compression("yes");
    let _ = match sel % 3 {
        0 => o.comp_lzo(None),
        1 => o.compress(Some("lz4")),
        _ => o.compress(Some("lz4-v2")),
    };
    let max_plain = 1500 + 128;
    let mut c = Compressor::new(o, max_plain);
    let room = [64usize, 1500, 2048, 65_536][usize::from(sel >> 6)];
    let mut buf = vec![0u8; room.max(body.len())];
    let start = buf.len() - body.len();
    buf[start..].copy_from_slice(body);
    let end = buf.len();
    if let Ok((a, b)) = c.unframe(&mut buf, start, end) {
        assert!(a <= b && b <= buf.len(), "unframed range inside the buffer");
        if a == 0 && start != 0 {
            assert!(b <= max_plain, "decompressed beyond the bound");
        }
        let _ = classify(&buf[a..b]);
    }
    if body.is_empty() {
        return;
    }
    let sent = match c.frame(body, 0) {
        Some(s) => s.to_vec(),
        None => return,
    };
    let mut rx = Compressor::new(o, body.len().max(max_plain));
    let mut back = vec![0u8; sent.len().max(body.len())];
    let start = back.len() - sent.len();
    back[start..].copy_from_slice(&sent);
    let end = back.len();
    match rx.unframe(&mut back, start, end) {
        Ok((a, b)) => assert_eq!(&back[a..b], body, "compress/decompress round trip"),
        Err(e) => panic!("our own packet was dropped: {e:?}"),
    }
}

/// The OpenVPN config tokenizer (config files reach us from users, and
/// client-config-dir files from administrators).
pub fn config_lexer(data: &[u8]) {
    let _ = crate::config::lexer::lex(data);
}

/// The management interface: line splitting and command parsing.
pub fn mgmt_command(data: &[u8]) {
    let mut r = crate::mgmt::protocol::LineReader::new();
    for line in r.push(data) {
        let _ = crate::mgmt::protocol::parse_command(&line);
    }
}

/// Static-key mode (`secret`): open with a fixed key (CBC with and
/// without packet ids, `cipher none`), then unframing and ping/OCC
/// classification, as the static-key driver does.
pub fn static_key_open(data: &[u8]) {
    use crate::proto::static_key::{StaticCipher, StaticKeyChannel, StaticKeyParams};
    let key = fixed_key();
    for (cipher, replay) in [
        ("AES-256-CBC", true),
        ("AES-128-CBC", false),
        ("none", true),
    ] {
        let Ok(cipher) = StaticCipher::from_name(cipher) else {
            continue;
        };
        let params = StaticKeyParams {
            cipher,
            auth: Some(Digest::Sha1),
            direction: KeyDirection::Normal,
            replay: replay.then(ReplayConfig::default),
        };
        let Ok(mut ch) = StaticKeyChannel::new(params, &key, 1) else {
            continue;
        };
        let mut out = vec![0u8; ch.open_buffer_len(data.len())];
        if let Ok(plain) = ch.open(data, &mut out, 0) {
            for f in [CompressFraming::None, CompressFraming::LzoStub] {
                let mut copy = plain.to_vec();
                if let Ok(p) = f.unframe(&mut copy) {
                    let _ = classify(p);
                }
            }
        }
    }
}

/// `fragment` reassembly fed a stream of pieces: `[dt, len, bytes...]`
/// records (seconds since the last, piece length). Whatever arrives, a
/// joined packet never exceeds the capacity and the slots stay bounded.
/// The rest of the input is cut and joined again, which must round-trip.
pub fn fragment_stream(data: &[u8]) {
    use crate::proto::data::fragment::{Fragmenter, Incoming, N_FRAG_BUF};
    const CAP: usize = 1600;
    let Some((&max, mut rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max) * 4 + 4;
    let mut rx = Fragmenter::new(CAP, max, 0);
    let mut now = 0u64;
    let mut buf = [0u8; 256];
    while let [dt, len, tail @ ..] = rest {
        now += u64::from(*dt % 16);
        let n = usize::from(*len).min(tail.len());
        buf[..n].copy_from_slice(&tail[..n]);
        rest = &tail[n..];
        if let Ok(Incoming::Complete(p)) = rx.incoming(now, &mut buf[..n]) {
            assert!(p.len() <= CAP);
        }
        assert!(rx.incomplete() <= N_FRAG_BUF);
        if n == 0 {
            break;
        }
    }
    // Round trip of what is left, in reverse piece order.
    let packet = &rest[..rest.len().min(CAP)];
    let mut tx = Fragmenter::new(CAP, max, data.len() as u8);
    let mut join = Fragmenter::new(CAP, max, 0);
    let Some(first) = tx.outgoing(packet).map(<[u8]>::to_vec) else {
        return;
    };
    let mut pieces = vec![first];
    while let Some(p) = tx.next_piece() {
        pieces.push(p.to_vec());
    }
    let mut got = None;
    for p in pieces.iter_mut().rev() {
        match join.incoming(now, p) {
            Ok(Incoming::Whole(w)) => got = Some(w.to_vec()),
            Ok(Incoming::Complete(w)) => got = Some(w.to_vec()),
            Ok(Incoming::Pending) => {}
            Err(e) => panic!("own piece refused: {e}"),
        }
    }
    assert_eq!(got.as_deref(), Some(packet), "fragment round trip");
}
