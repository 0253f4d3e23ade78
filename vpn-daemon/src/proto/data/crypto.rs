//! Data-channel packet protection (sections 6.4, 7.2–7.4): AEAD and CBC+HMAC.
//!
//! AEAD (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305):
//!
//! ```text
//! P_DATA_V2: | op_kid | peer_id (3) | packet_id (4) | tag (16) | ciphertext ... |
//!            '------------- AAD (8) --------------'
//! P_DATA_V1: | op_kid | packet_id (4) | tag (16) | ciphertext ... |
//!                     '-- AAD (4) --'
//! nonce (12) = packet_id (4, BE) || implicit_iv (8, from the hmac field of the slot)
//! ```
//!
//! CBC + HMAC (AES-128-CBC, AES-256-CBC with `--auth` SHA1/SHA256/SHA512):
//!
//! ```text
//! | op_kid [| peer_id] | hmac (H) | iv (16) | AES-CBC(packet_id (4) || plaintext, PKCS#7) |
//!                                 '--------- covered by the HMAC -----------------------'
//! ```
//!
//! # Buffers
//!
//! [`SendKey::seal`] and [`RecvKey::open`] write into a `dst` the caller
//! owns and return the filled sub-slice; nothing is allocated per packet.
//! The OpenSSL contexts are created once per key and only re-IV'd per
//! packet. An undersized `dst` is reported as
//! [`CryptoError::BufferTooSmall`] (never a panic); size it with
//! [`SendKey::seal_buffer_len`] / [`RecvKey::open_buffer_len`]. For CBC
//! those include one spare block that OpenSSL's update/final API insists
//! on; the returned slice is exact. After an error the contents of `dst`
//! are unspecified (it may hold unauthenticated bytes).
//!
//! # Order of checks on receive
//!
//! 1. header and lengths;
//! 2. [`ReplayWindow::will_accept`] (cheap, no state change; AEAD only, as the
//!    CBC packet id is inside the ciphertext);
//! 3. authentication (tag, or for CBC the HMAC first, in constant time);
//! 4. [`ReplayWindow::mark`]: only authenticated ids enter the window.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use super::compress::{
    CompressFraming, LZO_NO_COMPRESS, NO_COMPRESS_SWAP, V2_INDICATOR, V2_UNCOMPRESSED,
};
use super::fragment::KeyOverhead;
use super::hmac::{Digest, HmacKey};
use super::packet_id::PacketIdSend;
use crate::proto::error::{CryptoError, KeyFileError};
use crate::proto::keys::{Key2, KeySlot, Role};
use crate::proto::replay::{ReplayConfig, ReplayWindow};
use crate::proto::wire::data::{DataHeader, DataPacket, PeerId};
use crate::proto::wire::opcode::{KeyId, Opcode};

/// AEAD tag length for all three ciphers.
pub const TAG_LEN: usize = 16;
/// Length of the implicit IV taken from the hmac field.
pub const IMPLICIT_IV_LEN: usize = 8;
/// Length of a data packet id.
pub const PACKET_ID_LEN: usize = 4;
/// CBC block and IV length.
pub const CBC_BLOCK: usize = 16;

/// A data-channel cipher as named by `--data-ciphers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataCipher {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// CHACHA20-POLY1305.
    ChaCha20Poly1305,
    /// AES-128-CBC with HMAC `--auth`.
    Aes128Cbc,
    /// AES-256-CBC with HMAC `--auth`.
    Aes256Cbc,
}

impl DataCipher {
    /// From an OpenVPN cipher name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "AES-128-GCM" => Some(Self::Aes128Gcm),
            "AES-256-GCM" => Some(Self::Aes256Gcm),
            "CHACHA20-POLY1305" => Some(Self::ChaCha20Poly1305),
            "AES-128-CBC" => Some(Self::Aes128Cbc),
            "AES-256-CBC" => Some(Self::Aes256Cbc),
            _ => None,
        }
    }

    /// Canonical (OpenSSL, upper-case) name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm => "AES-128-GCM",
            Self::Aes256Gcm => "AES-256-GCM",
            Self::ChaCha20Poly1305 => "CHACHA20-POLY1305",
            Self::Aes128Cbc => "AES-128-CBC",
            Self::Aes256Cbc => "AES-256-CBC",
        }
    }

    /// AEAD or CBC+HMAC.
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            Self::Aes128Gcm | Self::Aes256Gcm | Self::ChaCha20Poly1305
        )
    }

    /// Bytes of the cipher field used.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes128Cbc => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 | Self::Aes256Cbc => 32,
        }
    }

    fn openssl(self) -> &'static CipherRef {
        match self {
            Self::Aes128Gcm => Cipher::aes_128_gcm(),
            Self::Aes256Gcm => Cipher::aes_256_gcm(),
            Self::ChaCha20Poly1305 => Cipher::chacha20_poly1305(),
            Self::Aes128Cbc => Cipher::aes_128_cbc(),
            Self::Aes256Cbc => Cipher::aes_256_cbc(),
        }
    }
}

enum Engine {
    Aead {
        ctx: CipherCtx,
        implicit_iv: [u8; IMPLICIT_IV_LEN],
    },
    Cbc {
        ctx: CipherCtx,
        hmac: Box<HmacKey>,
    },
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Engine::Aead { .. } => f.write_str("Aead"),
            Engine::Cbc { hmac, .. } => write!(f, "Cbc({:?})", hmac.digest()),
        }
    }
}

impl Engine {
    fn new(
        cipher: DataCipher,
        auth: Digest,
        slot: &KeySlot,
        encrypt: bool,
    ) -> Result<Self, KeyFileError> {
        let key = Zeroizing::new(slot.cipher()[..cipher.key_len()].to_vec());
        if key.iter().all(|&b| b == 0) {
            return Err(KeyFileError::AllZero);
        }
        let mut ctx = CipherCtx::new()?;
        if encrypt {
            ctx.encrypt_init(Some(cipher.openssl()), Some(&key), None)?;
        } else {
            ctx.decrypt_init(Some(cipher.openssl()), Some(&key), None)?;
        }
        if cipher.is_aead() {
            let mut implicit_iv = [0u8; IMPLICIT_IV_LEN];
            implicit_iv.copy_from_slice(&slot.hmac()[..IMPLICIT_IV_LEN]);
            Ok(Engine::Aead { ctx, implicit_iv })
        } else {
            Ok(Engine::Cbc {
                ctx,
                hmac: Box::new(HmacKey::new(auth, slot.hmac())),
            })
        }
    }

    /// Bytes between the header and the ciphertext (AEAD) or IV (CBC).
    fn overhead_after_header(&self) -> usize {
        match self {
            Engine::Aead { .. } => PACKET_ID_LEN + TAG_LEN,
            Engine::Cbc { hmac, .. } => hmac.len() + CBC_BLOCK,
        }
    }
}

fn nonce(packet_id: u32, iv: &[u8; IMPLICIT_IV_LEN]) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&packet_id.to_be_bytes());
    n[4..].copy_from_slice(iv);
    n
}

fn too_small(need: usize, have: usize) -> Result<(), CryptoError> {
    if have < need {
        Err(CryptoError::BufferTooSmall { need, have })
    } else {
        Ok(())
    }
}

/// What [`SendKey::seal`] produced.
#[derive(Debug)]
pub struct Sealed<'d> {
    /// The packet to send.
    pub packet: &'d [u8],
    /// The packet id is near its end: start a renegotiation now.
    pub renegotiate: bool,
}

/// Sending half of a data-channel key (one key_id, one direction).
#[derive(Debug)]
pub struct SendKey {
    engine: Engine,
    cipher: DataCipher,
    header: DataHeader,
    packet_id: PacketIdSend,
}

impl SendKey {
    /// Key for sending with `slot`. `peer_id` `Some` sends P_DATA_V2, `None` P_DATA_V1.
    /// `auth` is only used by CBC ciphers.
    pub fn new(
        cipher: DataCipher,
        auth: Digest,
        slot: &KeySlot,
        key_id: KeyId,
        peer_id: Option<PeerId>,
    ) -> Result<Self, KeyFileError> {
        Ok(Self {
            engine: Engine::new(cipher, auth, slot, true)?,
            cipher,
            header: DataHeader { key_id, peer_id },
            packet_id: PacketIdSend::new(),
        })
    }

    /// Replace the packet id counter (tests and benchmarks).
    pub fn set_packet_id(&mut self, p: PacketIdSend) {
        self.packet_id = p;
    }

    /// The cipher.
    pub fn cipher(&self) -> DataCipher {
        self.cipher
    }

    /// Key id put on every packet.
    pub fn key_id(&self) -> KeyId {
        self.header.key_id
    }

    /// The send counter (last id used).
    pub fn packet_id(&self) -> &PacketIdSend {
        &self.packet_id
    }

    /// What each packet adds around its plaintext, as `fragment` counts it.
    pub fn overhead(&self) -> KeyOverhead {
        match &self.engine {
            Engine::Aead { .. } => KeyOverhead {
                header: self.header.buffer_len(),
                crypto: PACKET_ID_LEN + TAG_LEN,
                cbc: false,
            },
            Engine::Cbc { hmac, .. } => KeyOverhead {
                header: self.header.buffer_len(),
                crypto: CBC_BLOCK + hmac.len(),
                cbc: true,
            },
        }
    }

    /// Size `dst` must have to seal `plaintext_len` bytes.
    pub fn seal_buffer_len(&self, plaintext_len: usize) -> usize {
        let fixed = self.header.buffer_len() + self.engine.overhead_after_header();
        match self.engine {
            Engine::Aead { .. } => fixed + plaintext_len,
            // Padded ciphertext plus the spare block OpenSSL's API demands.
            Engine::Cbc { .. } => {
                fixed + (PACKET_ID_LEN + plaintext_len) / CBC_BLOCK * CBC_BLOCK + 2 * CBC_BLOCK
            }
        }
    }

    /// Encrypt `plaintext` (already compression-framed) into `dst`.
    pub fn seal<'d>(
        &mut self,
        plaintext: &[u8],
        dst: &'d mut [u8],
    ) -> Result<Sealed<'d>, CryptoError> {
        self.seal_parts(&[plaintext], dst)
    }

    /// Frame `packet` with `framing` and encrypt it, without copying it
    /// first: the framing bytes are fed to the cipher as separate parts.
    pub fn seal_framed<'d>(
        &mut self,
        framing: CompressFraming,
        packet: &[u8],
        dst: &'d mut [u8],
    ) -> Result<Sealed<'d>, CryptoError> {
        if packet.is_empty() {
            return Err(CryptoError::EmptyPayload);
        }
        match framing {
            CompressFraming::None => self.seal_parts(&[packet], dst),
            CompressFraming::LzoStub | CompressFraming::Lzo => {
                self.seal_parts(&[&[LZO_NO_COMPRESS], packet], dst)
            }
            CompressFraming::StubSwap | CompressFraming::Lz4 => {
                let (first, rest) = packet.split_at(1);
                self.seal_parts(&[&[NO_COMPRESS_SWAP], rest, first], dst)
            }
            CompressFraming::StubV2 | CompressFraming::Lz4V2 if packet[0] == V2_INDICATOR => {
                self.seal_parts(&[&[V2_INDICATOR, V2_UNCOMPRESSED], packet], dst)
            }
            CompressFraming::StubV2 | CompressFraming::Lz4V2 => self.seal_parts(&[packet], dst),
        }
    }

    /// Encrypt the concatenation of `parts` into `dst`.
    pub fn seal_parts<'d>(
        &mut self,
        parts: &[&[u8]],
        dst: &'d mut [u8],
    ) -> Result<Sealed<'d>, CryptoError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return Err(CryptoError::EmptyPayload);
        }
        too_small(self.seal_buffer_len(total), dst.len())?;
        let next = self
            .packet_id
            .next_id()
            .ok_or(CryptoError::PacketIdExhausted)?;
        let pid = next.id.to_be_bytes();
        let hdr = self.header.emit(dst)?;
        let len = match &mut self.engine {
            Engine::Aead { ctx, implicit_iv } => {
                dst[hdr..hdr + PACKET_ID_LEN].copy_from_slice(&pid);
                ctx.encrypt_init(None, None, Some(&nonce(next.id, implicit_iv)))?;
                // V2 authenticates op_kid || peer_id || packet_id; V1 only packet_id.
                let aad_from = if self.header.peer_id.is_some() {
                    0
                } else {
                    hdr
                };
                ctx.cipher_update(&dst[aad_from..hdr + PACKET_ID_LEN], None)?;
                let ct_off = hdr + PACKET_ID_LEN + TAG_LEN;
                let mut n = 0;
                for part in parts {
                    n += ctx.cipher_update(part, Some(&mut dst[ct_off + n..]))?;
                }
                n += ctx.cipher_final(&mut [])?;
                ctx.tag(&mut dst[hdr + PACKET_ID_LEN..ct_off])?;
                ct_off + n
            }
            Engine::Cbc { ctx, hmac } => {
                let h = hmac.len();
                let iv_off = hdr + h;
                let ct_off = iv_off + CBC_BLOCK;
                openssl::rand::rand_bytes(&mut dst[iv_off..ct_off])?;
                let mut iv = [0u8; CBC_BLOCK];
                iv.copy_from_slice(&dst[iv_off..ct_off]);
                ctx.encrypt_init(None, None, Some(&iv))?;
                // Every update has room for its input plus one block (what
                // OpenSSL's API asks for): seal_buffer_len keeps a spare block.
                let mut n = ctx.cipher_update(&pid, Some(&mut dst[ct_off..]))?;
                for part in parts {
                    n += ctx.cipher_update(part, Some(&mut dst[ct_off + n..]))?;
                }
                n += ctx.cipher_final(&mut dst[ct_off + n..])?;
                let tag = hmac.compute(&[&dst[iv_off..ct_off + n]]);
                dst[hdr..iv_off].copy_from_slice(&tag[..h]);
                ct_off + n
            }
        };
        Ok(Sealed {
            packet: &dst[..len],
            renegotiate: next.renegotiate,
        })
    }
}

/// A successfully opened data packet.
#[derive(Debug)]
pub struct Opened<'d> {
    /// Decrypted plaintext (still compression-framed), mutable so that
    /// unframing can work in place.
    pub plaintext: &'d mut [u8],
    /// Its packet id (already recorded in the replay window).
    pub packet_id: u32,
}

/// Receiving half of a data-channel key, with its replay window.
#[derive(Debug)]
pub struct RecvKey {
    engine: Engine,
    cipher: DataCipher,
    key_id: KeyId,
    replay: ReplayWindow,
}

impl RecvKey {
    /// Key for receiving with `slot`; `auth` is only used by CBC ciphers.
    pub fn new(
        cipher: DataCipher,
        auth: Digest,
        slot: &KeySlot,
        key_id: KeyId,
        replay: ReplayConfig,
    ) -> Result<Self, KeyFileError> {
        Ok(Self {
            engine: Engine::new(cipher, auth, slot, false)?,
            cipher,
            key_id,
            replay: ReplayWindow::new(replay),
        })
    }

    /// The cipher.
    pub fn cipher(&self) -> DataCipher {
        self.cipher
    }

    /// Key id this key opens.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }

    /// Forget every packet id seen. Only for benchmarks that open the same
    /// packets repeatedly; a live key must never do this.
    #[doc(hidden)]
    pub fn reset_replay_window(&mut self) {
        self.replay = ReplayWindow::new(self.replay.config());
    }

    /// Size `dst` must have to open a packet of `packet_len` bytes.
    pub fn open_buffer_len(&self, packet_len: usize) -> usize {
        match self.engine {
            Engine::Aead { .. } => packet_len,
            Engine::Cbc { .. } => packet_len + CBC_BLOCK,
        }
    }

    /// Authenticate and decrypt a P_DATA_V1/V2 packet into `dst`.
    ///
    /// `now` is monotonic seconds (replay time rule). The key_id of the
    /// packet must be this key's; choosing the key by key_id is the caller's job.
    pub fn open<'d>(
        &mut self,
        packet: &[u8],
        dst: &'d mut [u8],
        now: u64,
    ) -> Result<Opened<'d>, CryptoError> {
        let p = DataPacket::new_checked(packet)?;
        if p.key_id() != self.key_id {
            return Err(CryptoError::UnknownKeyId(p.key_id().value()));
        }
        let hdr = p.header_len();
        let body = p.payload();
        match &mut self.engine {
            Engine::Aead { ctx, implicit_iv } => {
                if body.len() < PACKET_ID_LEN + TAG_LEN {
                    return Err(CryptoError::Truncated);
                }
                let (pid_bytes, rest) = body.split_at(PACKET_ID_LEN);
                let (tag, ct) = rest.split_at(TAG_LEN);
                if ct.is_empty() {
                    return Err(CryptoError::EmptyPayload);
                }
                too_small(ct.len(), dst.len())?;
                let pid =
                    u32::from_be_bytes([pid_bytes[0], pid_bytes[1], pid_bytes[2], pid_bytes[3]]);
                self.replay
                    .will_accept_short(pid, now)
                    .map_err(|_| CryptoError::Replay)?;
                ctx.decrypt_init(None, None, Some(&nonce(pid, implicit_iv)))?;
                ctx.set_tag(tag)?;
                let aad = if p.opcode() == Opcode::DataV2 {
                    &packet[..hdr + PACKET_ID_LEN]
                } else {
                    pid_bytes
                };
                ctx.cipher_update(aad, None)?;
                let n = ctx.cipher_update(ct, Some(&mut dst[..ct.len()]))?;
                let f = ctx.cipher_final(&mut []).map_err(|_| CryptoError::BadTag)?;
                self.replay
                    .mark_short(pid, now)
                    .map_err(|_| CryptoError::Replay)?;
                Ok(Opened {
                    plaintext: &mut dst[..n + f],
                    packet_id: pid,
                })
            }
            Engine::Cbc { ctx, hmac } => {
                let h = hmac.len();
                if body.len() < h + 2 * CBC_BLOCK {
                    return Err(CryptoError::Truncated);
                }
                let (tag, covered) = body.split_at(h);
                let (iv, ct) = covered.split_at(CBC_BLOCK);
                if ct.len() % CBC_BLOCK != 0 {
                    return Err(CryptoError::BadCiphertextLength);
                }
                too_small(ct.len() + CBC_BLOCK, dst.len())?;
                if !hmac.verify(&[covered], tag) {
                    return Err(CryptoError::BadHmac);
                }
                ctx.decrypt_init(None, None, Some(iv))?;
                let n = ctx.cipher_update(ct, Some(&mut dst[..]))?;
                let f = ctx
                    .cipher_final(&mut dst[n..])
                    .map_err(|_| CryptoError::BadPadding)?;
                let plain = &mut dst[..n + f];
                if plain.len() < PACKET_ID_LEN {
                    return Err(CryptoError::Truncated);
                }
                if plain.len() == PACKET_ID_LEN {
                    return Err(CryptoError::EmptyPayload);
                }
                let pid = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]);
                self.replay
                    .mark_short(pid, now)
                    .map_err(|_| CryptoError::Replay)?;
                Ok(Opened {
                    plaintext: &mut plain[PACKET_ID_LEN..],
                    packet_id: pid,
                })
            }
        }
    }
}

/// Both halves of one key_id's data-channel key.
#[derive(Debug)]
pub struct DataKey {
    /// For packets we send.
    pub send: SendKey,
    /// For packets we receive.
    pub recv: RecvKey,
}

impl DataKey {
    /// Keys from a 256-byte block (EKM or PRF output, section 6.1): the
    /// client sends with `keys[0]`, the server with `keys[1]`.
    pub fn from_key2(
        cipher: DataCipher,
        auth: Digest,
        block: &Key2,
        role: Role,
        key_id: KeyId,
        peer_id: Option<PeerId>,
        replay: ReplayConfig,
    ) -> Result<Self, KeyFileError> {
        let dir = role.data_direction();
        Ok(Self {
            send: SendKey::new(cipher, auth, &block.slot(dir.out_slot()), key_id, peer_id)?,
            recv: RecvKey::new(cipher, auth, &block.slot(dir.in_slot()), key_id, replay)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn slot(key: &str, iv: &str) -> KeySlot {
        KeySlot::from_prefixes(&h(key), &h(iv)).unwrap()
    }

    const C2S_KEY: &str = "a6cfa78a9c2246e8782b4e7759ab634fdaa15fac62b83232cf2bc8a0856b2b25";
    const C2S_IV: &str = "90feb91161dbd907";
    const C2S_WIRE: &str =
        "4800000000000007 b47af65b29f5c36220a4f92f23245b6a 7106aa2d7be23e58670a3850fcdd39af";
    const S2C_KEY: &str = "ce4970f9ef7e4a40737626ad1d1716904a8562f4357ec92544d0ac5562edc915";
    const S2C_IV: &str = "07805dce01be0254";
    const S2C_WIRE: &str =
        "4800000000000006 167a5a31f6ee05a2cf7e36fb26c32298 f7c08fbdb81376da0c59609bcad2a2cb";

    fn send(key: &str, iv: &str, last: u32) -> SendKey {
        let mut k = SendKey::new(
            DataCipher::Aes256Gcm,
            Digest::Sha1,
            &slot(key, iv),
            KeyId::ZERO,
            PeerId::new(0),
        )
        .unwrap();
        k.set_packet_id(PacketIdSend::starting_after(last));
        k
    }

    fn recv(cipher: DataCipher, key: &str, iv: &str) -> RecvKey {
        RecvKey::new(
            cipher,
            Digest::Sha256,
            &slot(key, iv),
            KeyId::ZERO,
            ReplayConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn seals_ping_12_4_both_directions_exactly() {
        for (key, iv, last, wire) in [
            (C2S_KEY, C2S_IV, 6, C2S_WIRE),
            (S2C_KEY, S2C_IV, 5, S2C_WIRE),
        ] {
            let mut k = send(key, iv, last);
            let mut dst = [0u8; 64];
            let s = k
                .seal(&crate::proto::data::payload::PING_MAGIC, &mut dst)
                .unwrap();
            assert_eq!(hex::encode(s.packet), hex::encode(h(wire)));
            assert!(!s.renegotiate);
        }
    }

    #[test]
    fn opens_ping_12_4_once_then_rejects_replay() {
        for (key, iv, wire) in [(C2S_KEY, C2S_IV, C2S_WIRE), (S2C_KEY, S2C_IV, S2C_WIRE)] {
            let mut k = recv(DataCipher::Aes256Gcm, key, iv);
            let mut dst = [0u8; 64];
            let o = k.open(&h(wire), &mut dst, 0).unwrap();
            assert_eq!(o.plaintext, &crate::proto::data::payload::PING_MAGIC);
            assert_eq!(
                k.open(&h(wire), &mut dst, 0).err(),
                Some(CryptoError::Replay)
            );
        }
    }

    #[test]
    fn rejects_flipped_tag_packet_id_ciphertext_and_key_id() {
        let wire = h(C2S_WIRE);
        let mut dst = [0u8; 64];
        for (i, expect) in [
            (1usize, CryptoError::BadTag), // peer id (in AAD)
            (5, CryptoError::BadTag),      // packet id
            (10, CryptoError::BadTag),     // tag
            (30, CryptoError::BadTag),     // ciphertext
            (0, CryptoError::UnknownKeyId(1)),
        ] {
            let mut k = recv(DataCipher::Aes256Gcm, C2S_KEY, C2S_IV);
            let mut m = wire.clone();
            m[i] ^= 1;
            assert_eq!(k.open(&m, &mut dst, 0).err(), Some(expect), "byte {i}");
            // A rejected forgery leaves the window untouched.
            assert!(k.open(&wire, &mut dst, 0).is_ok());
        }
    }

    #[test]
    fn refuses_empty_plaintext_and_small_buffers() {
        let mut k = send(C2S_KEY, C2S_IV, 0);
        let mut dst = [0u8; 64];
        assert_eq!(k.seal(&[], &mut dst).err(), Some(CryptoError::EmptyPayload));
        let mut small = [0u8; 24];
        assert!(matches!(
            k.seal(&[1], &mut small),
            Err(CryptoError::BufferTooSmall { need: 25, .. })
        ));
        let mut r = recv(DataCipher::Aes256Gcm, C2S_KEY, C2S_IV);
        assert_eq!(
            r.open(&h(C2S_WIRE)[..24], &mut dst, 0).err(),
            Some(CryptoError::EmptyPayload)
        );
        assert!(matches!(
            r.open(&h(C2S_WIRE), &mut small[..8], 0),
            Err(CryptoError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn packet_id_exhaustion_is_reported_not_wrapped() {
        let mut k = send(C2S_KEY, C2S_IV, u32::MAX - 1);
        let mut dst = [0u8; 64];
        assert!(k.seal(&[1], &mut dst).unwrap().renegotiate);
        assert_eq!(
            k.seal(&[1], &mut dst).err(),
            Some(CryptoError::PacketIdExhausted)
        );
    }

    fn round_trip(cipher: DataCipher, auth: Digest, peer: Option<PeerId>) {
        let block = Key2::generate().unwrap();
        let mut client = DataKey::from_key2(
            cipher,
            auth,
            &block,
            Role::Client,
            KeyId::from_bits(2),
            peer,
            ReplayConfig::default(),
        )
        .unwrap();
        let mut server = DataKey::from_key2(
            cipher,
            auth,
            &block,
            Role::Server,
            KeyId::from_bits(2),
            peer,
            ReplayConfig::default(),
        )
        .unwrap();
        for len in [1usize, 15, 16, 17, 100, 1400] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut wire = vec![0u8; client.send.seal_buffer_len(len)];
            let s = client.send.seal(&msg, &mut wire).unwrap().packet.to_vec();
            let mut out = vec![0u8; server.recv.open_buffer_len(s.len())];
            let o = server.recv.open(&s, &mut out, 0).unwrap();
            assert_eq!(o.plaintext, &msg[..], "{cipher:?} {len}");
            // And back.
            let mut wire = vec![0u8; server.send.seal_buffer_len(len)];
            let s = server.send.seal(&msg, &mut wire).unwrap().packet.to_vec();
            let mut out = vec![0u8; client.recv.open_buffer_len(s.len())];
            assert_eq!(
                client.recv.open(&s, &mut out, 0).unwrap().plaintext,
                &msg[..]
            );
        }
    }

    #[test]
    fn every_cipher_round_trips_v1_and_v2() {
        for c in [
            DataCipher::Aes128Gcm,
            DataCipher::Aes256Gcm,
            DataCipher::ChaCha20Poly1305,
        ] {
            round_trip(c, Digest::Sha1, PeerId::new(7));
            round_trip(c, Digest::Sha1, None);
        }
        for c in [DataCipher::Aes128Cbc, DataCipher::Aes256Cbc] {
            for d in [Digest::Sha1, Digest::Sha256, Digest::Sha512] {
                round_trip(c, d, PeerId::new(7));
                round_trip(c, d, None);
            }
        }
    }

    #[test]
    fn cbc_rejects_flipped_hmac_iv_and_ciphertext_before_decrypting() {
        let block = Key2::generate().unwrap();
        let mk = |role| {
            DataKey::from_key2(
                DataCipher::Aes256Cbc,
                Digest::Sha256,
                &block,
                role,
                KeyId::ZERO,
                PeerId::new(0),
                ReplayConfig::default(),
            )
            .unwrap()
        };
        let mut c = mk(Role::Client);
        let mut wire = [0u8; 128];
        let s = c
            .send
            .seal(b"twenty bytes of text", &mut wire)
            .unwrap()
            .packet
            .to_vec();
        assert_eq!(s.len(), 4 + 32 + 16 + 32);
        for i in [4usize, 40, 60] {
            let mut s2 = mk(Role::Server);
            let mut m = s.clone();
            m[i] ^= 0x80;
            let mut out = [0u8; 128];
            assert_eq!(
                s2.recv.open(&m, &mut out, 0).err(),
                Some(CryptoError::BadHmac),
                "byte {i}"
            );
        }
        let mut s2 = mk(Role::Server);
        let mut out = [0u8; 128];
        assert_eq!(
            s2.recv.open(&s[..s.len() - 1], &mut out, 0).err(),
            Some(CryptoError::BadCiphertextLength)
        );
        assert_eq!(
            s2.recv.open(&s, &mut out, 0).unwrap().plaintext,
            b"twenty bytes of text"
        );
        assert_eq!(
            s2.recv.open(&s, &mut out, 0).err(),
            Some(CryptoError::Replay)
        );
    }

    #[test]
    fn refuses_all_zero_cipher_key() {
        let z = KeySlot::from_prefixes(&[], &[]).unwrap();
        assert!(matches!(
            SendKey::new(DataCipher::Aes256Gcm, Digest::Sha1, &z, KeyId::ZERO, None),
            Err(KeyFileError::AllZero)
        ));
    }

    #[test]
    fn seal_framed_matches_frame_then_seal_for_every_framing() {
        let block = Key2::generate().unwrap();
        for cipher in [DataCipher::Aes256Gcm, DataCipher::Aes128Cbc] {
            let mk = |role| {
                DataKey::from_key2(
                    cipher,
                    Digest::Sha1,
                    &block,
                    role,
                    KeyId::ZERO,
                    None,
                    ReplayConfig::default(),
                )
                .unwrap()
            };
            let (mut c, mut s) = (mk(Role::Client), mk(Role::Server));
            for framing in [
                CompressFraming::None,
                CompressFraming::LzoStub,
                CompressFraming::StubSwap,
                CompressFraming::StubV2,
            ] {
                for packet in [
                    &[0x45u8, 1, 2, 3][..],
                    &[0x50, 9][..],
                    &[7][..],
                    &[0x45; 40][..],
                ] {
                    let mut w = [0u8; 256];
                    let sealed = c
                        .send
                        .seal_framed(framing, packet, &mut w)
                        .unwrap()
                        .packet
                        .to_vec();
                    let mut out = [0u8; 256];
                    let o = s.recv.open(&sealed, &mut out, 0).unwrap();
                    let mut expect = [0u8; 64];
                    assert_eq!(
                        o.plaintext,
                        framing.frame(packet, &mut expect).unwrap(),
                        "{cipher:?} {framing:?}"
                    );
                    assert_eq!(framing.unframe(o.plaintext).unwrap(), packet);
                }
            }
            let mut w = [0u8; 64];
            assert_eq!(
                c.send
                    .seal_framed(CompressFraming::StubSwap, &[], &mut w)
                    .err(),
                Some(CryptoError::EmptyPayload)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), small in 0usize..64) {
            for (c, d) in [(DataCipher::Aes256Gcm, Digest::Sha1), (DataCipher::Aes128Cbc, Digest::Sha512)] {
                let mut k = RecvKey::new(c, d, &slot(C2S_KEY, C2S_IV), KeyId::from_bits(b.first().copied().unwrap_or(0)), ReplayConfig::default()).unwrap();
                let mut dst = vec![0u8; 256];
                let _ = k.open(&b, &mut dst, 0);
                let _ = k.open(&b, &mut dst[..small], 0);
            }
        }
    }
}
