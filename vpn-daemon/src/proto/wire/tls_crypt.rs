//! tls-crypt and tls-crypt-v2: encryption and authentication of control packets (2.4, 3.5–3.7).
//!
//! ```text
//! wire:  | op_kid | own sid (8) | replay id (4) | replay time (4) | tag (32) | AES-256-CTR(ack block ... payload) |
//!        '--------------- header (17), clear ----------------------'
//! tag = HMAC-SHA256(Ka, header || plaintext);  CTR initial counter block = tag[0..16]
//! ```
//!
//! Directions are implicit: the server uses NORMAL, the client INVERSE.
//!
//! tls-crypt-v2 adds a per-client key Kc, given to the server inside every
//! P_CONTROL_HARD_RESET_CLIENT_V3 / P_CONTROL_WKC_V1 as a wrapped key (WKc)
//! appended after the tls-crypt packet:
//!
//! ```text
//! WKc = | T (32) | AES-256-CTR(Ke_srv, iv = T[0..16], Kc (256) || metadata) | len (u16, BE) |
//! T   = HMAC-SHA256(Ka_srv, len || Kc || metadata);   len = total length of WKc, ≤ 1024
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use super::control::HEADER_LEN;
use super::opcode::split_first_byte;
use crate::proto::error::{CryptoError, DropReason, KeyFileError};
use crate::proto::hmac::{Digest, HmacKey};
use crate::proto::keys::{KEY2_LEN, Key2, KeySlot, Role, SLOT_LEN};
use crate::proto::replay::PacketIdLong;

/// HMAC-SHA256 tag length.
pub const TAG_LEN: usize = 32;
/// Clear header: op_kid, session id, replay id and time.
pub const CLEAR_LEN: usize = HEADER_LEN + PacketIdLong::LEN;
/// Bytes tls-crypt adds to a plain control packet.
pub const OVERHEAD: usize = PacketIdLong::LEN + TAG_LEN;
/// Largest WKc (TLS_CRYPT_V2_MAX_WKC_LEN).
pub const MAX_WKC_LEN: usize = 1024;
/// Smallest WKc: tag, Kc, length field (empty metadata).
pub const MIN_WKC_LEN: usize = TAG_LEN + KEY2_LEN + 2;
/// Largest metadata that fits in a WKc.
pub const MAX_METADATA_LEN: usize = MAX_WKC_LEN - MIN_WKC_LEN;
/// tls-crypt-v2 client replay counter start that signals early negotiation.
pub const EARLY_NEG_START: u32 = 0x0F00_0000;

const SERVER_KEY_LABEL: &str = "OpenVPN tls-crypt-v2 server key";
const CLIENT_KEY_LABEL: &str = "OpenVPN tls-crypt-v2 client key";

/// One direction: AES-256-CTR context keyed once, and the HMAC key.
struct Dir {
    ctr: CipherCtx,
    hmac: HmacKey,
}

impl Dir {
    fn new(slot: &KeySlot) -> Result<Self, KeyFileError> {
        let mut ctr = CipherCtx::new()?;
        ctr.encrypt_init(
            Some(Cipher::aes_256_ctr()),
            Some(&slot.cipher()[..32]),
            None,
        )?;
        Ok(Self {
            ctr,
            hmac: HmacKey::new(Digest::Sha256, &slot.hmac()[..32]),
        })
    }

    /// CTR is its own inverse: `out = in XOR keystream(iv)`.
    fn ctr(&mut self, iv: &[u8], input: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        self.ctr.encrypt_init(None, None, Some(iv))?;
        let n = self.ctr.cipher_update(input, Some(out))?;
        if n != input.len() {
            return Err(CryptoError::Backend);
        }
        Ok(())
    }
}

impl core::fmt::Debug for Dir {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TlsCryptDir(..)")
    }
}

/// tls-crypt context (also used with Kc for tls-crypt-v2 and for the dynamic key).
#[derive(Debug)]
pub struct TlsCrypt {
    out: Dir,
    inp: Dir,
}

impl TlsCrypt {
    /// From a static key file's block, with the implicit direction of `role`.
    pub fn new(key: &Key2, role: Role) -> Result<Self, KeyFileError> {
        let dir = role.tls_crypt_direction();
        Self::from_slots(&key.slot(dir.out_slot()), &key.slot(dir.in_slot()))
    }

    /// From explicit per-direction slots.
    pub fn from_slots(out: &KeySlot, inp: &KeySlot) -> Result<Self, KeyFileError> {
        Ok(Self {
            out: Dir::new(out)?,
            inp: Dir::new(inp)?,
        })
    }

    /// The dynamic tls-crypt key of section 3.6: the 256 bytes exported with
    /// label `EXPORTER-OpenVPN-dynamic-tls-crypt`, XORed with the session's
    /// static tls-auth/tls-crypt key if it has one.
    pub fn dynamic(
        exported: &[u8; KEY2_LEN],
        static_key: Option<&Key2>,
        role: Role,
    ) -> Result<Self, KeyFileError> {
        let k = Key2::from_bytes(*exported);
        let k = match static_key {
            Some(s) => k.xor(s),
            None => k,
        };
        Self::new(&k, role)
    }

    /// Bytes added to a plain control packet.
    pub const fn overhead(&self) -> usize {
        OVERHEAD
    }

    /// Protect a plain control packet (`op_kid || sid || rest`) into `dst`.
    pub fn wrap<'d>(
        &mut self,
        plain: &[u8],
        pid: PacketIdLong,
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], CryptoError> {
        if plain.len() < HEADER_LEN {
            return Err(CryptoError::Truncated);
        }
        let total = plain.len() + OVERHEAD;
        if dst.len() < total {
            return Err(CryptoError::BufferTooSmall {
                need: total,
                have: dst.len(),
            });
        }
        let (head, body) = plain.split_at(HEADER_LEN);
        dst[..HEADER_LEN].copy_from_slice(head);
        dst[HEADER_LEN..CLEAR_LEN].copy_from_slice(&pid.to_bytes());
        let tag = self.out.hmac.compute(&[&dst[..CLEAR_LEN], body]);
        dst[CLEAR_LEN..CLEAR_LEN + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        self.out
            .ctr(&tag[..16], body, &mut dst[CLEAR_LEN + TAG_LEN..total])?;
        Ok(&dst[..total])
    }

    /// Decrypt and verify; writes the plain packet into `dst` and returns
    /// the (unchecked) replay field with it.
    pub fn unwrap<'d>(
        &mut self,
        wire: &[u8],
        dst: &'d mut [u8],
    ) -> Result<(PacketIdLong, &'d [u8]), CryptoError> {
        if wire.len() < CLEAR_LEN + TAG_LEN {
            return Err(CryptoError::Truncated);
        }
        let (clear, rest) = wire.split_at(CLEAR_LEN);
        let (tag, ct) = rest.split_at(TAG_LEN);
        let total = HEADER_LEN + ct.len();
        if dst.len() < total {
            return Err(CryptoError::BufferTooSmall {
                need: total,
                have: dst.len(),
            });
        }
        self.inp.ctr(&tag[..16], ct, &mut dst[HEADER_LEN..total])?;
        if !self.inp.hmac.verify(&[clear, &dst[HEADER_LEN..total]], tag) {
            return Err(CryptoError::BadTag);
        }
        dst[..HEADER_LEN].copy_from_slice(&clear[..HEADER_LEN]);
        let mut p = [0u8; 8];
        p.copy_from_slice(&clear[HEADER_LEN..]);
        Ok((PacketIdLong::from_bytes(p), &dst[..total]))
    }
}

/// Does a tls-crypt-v2 client's first replay id say it supports early
/// negotiation (and resending its WKc)? 2.6 starts such clients' counter at
/// [`EARLY_NEG_START`], and a server tests the `0x0F` bits of the top byte.
pub const fn signals_early_negotiation(pid: PacketIdLong) -> bool {
    pid.id & EARLY_NEG_START == EARLY_NEG_START
}

/// Split a P_CONTROL_HARD_RESET_CLIENT_V3 / P_CONTROL_WKC_V1 packet into the
/// tls-crypt packet and the appended WKc (its last 2 bytes give its length).
pub fn split_wkc(wire: &[u8]) -> Result<(&[u8], &[u8]), CryptoError> {
    let n = wire.len();
    if n < 2 {
        return Err(CryptoError::Truncated);
    }
    let len = usize::from(u16::from_be_bytes([wire[n - 2], wire[n - 1]]));
    if !(MIN_WKC_LEN..=MAX_WKC_LEN).contains(&len) {
        return Err(CryptoError::BadWrappedKey);
    }
    if n < len + CLEAR_LEN + TAG_LEN {
        return Err(CryptoError::Truncated);
    }
    Ok(wire.split_at(n - len))
}

/// tls-crypt-v2 metadata carried inside the WKc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metadata {
    /// Type 0x00: opaque user data.
    User(Vec<u8>),
    /// Type 0x01: 64-bit unix timestamp of key creation.
    Timestamp(u64),
    /// Another type byte, with its data.
    Other(u8, Vec<u8>),
}

impl Metadata {
    fn encode(&self) -> Vec<u8> {
        match self {
            Metadata::User(d) => [&[0u8][..], d].concat(),
            Metadata::Timestamp(t) => [&[1u8][..], &t.to_be_bytes()].concat(),
            Metadata::Other(t, d) => [&[*t][..], d].concat(),
        }
    }

    fn decode(b: &[u8]) -> Self {
        match b.split_first() {
            None => Metadata::Other(0xff, Vec::new()),
            Some((0, d)) => Metadata::User(d.to_vec()),
            Some((1, d)) if d.len() == 8 => {
                let mut t = [0u8; 8];
                t.copy_from_slice(d);
                Metadata::Timestamp(u64::from_be_bytes(t))
            }
            Some((t, d)) => Metadata::Other(*t, d.to_vec()),
        }
    }
}

/// The tls-crypt-v2 server key: one slot (AES-256-CTR key + HMAC-SHA256 key).
pub struct TlsCryptV2ServerKey {
    ke: Zeroizing<[u8; 32]>,
    ka: HmacKey,
}

impl core::fmt::Debug for TlsCryptV2ServerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TlsCryptV2ServerKey(..)")
    }
}

fn pem_decode(text: &str, label: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut lines = text.lines();
    if !lines.by_ref().any(|l| l.trim() == begin) {
        return Err(KeyFileError::MissingBegin { label });
    }
    let mut b64 = Zeroizing::new(String::new());
    let mut ended = false;
    for l in lines {
        if l.trim() == end {
            ended = true;
            break;
        }
        b64.extend(l.chars().filter(|c| !c.is_whitespace()));
    }
    if !ended {
        return Err(KeyFileError::MissingEnd { label });
    }
    Ok(Zeroizing::new(B64.decode(b64.as_bytes())?))
}

pub(crate) fn pem_encode(bytes: &[u8], label: &str) -> String {
    let b64 = Zeroizing::new(B64.encode(bytes));
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// A tls-crypt-v2 client packet whose WKc the server key opened.
pub struct OpenedWkc<'w> {
    /// The tls-crypt wrapped packet without its WKc.
    pub wire: &'w [u8],
    /// The client's key Kc.
    pub kc: Key2,
    /// tls-crypt with Kc, server side.
    pub crypt: TlsCrypt,
}

impl TlsCryptV2ServerKey {
    /// Split WKc off a client packet that carries one and unwrap Kc: the
    /// one step both the UDP front door and a stateful server session take.
    /// Nothing is authenticated yet; that is the caller's unwrap with
    /// [`OpenedWkc::crypt`].
    pub fn open_wkc<'w>(&self, packet: &'w [u8]) -> Result<OpenedWkc<'w>, DropReason> {
        let (wire, wkc) = split_wkc(packet).map_err(|e| e.drop_reason())?;
        let (kc, _meta) = self.unwrap_client_key(wkc).map_err(|e| e.drop_reason())?;
        let crypt = TlsCrypt::new(&kc, Role::Server).map_err(|_| DropReason::CryptoBackend)?;
        Ok(OpenedWkc { wire, kc, crypt })
    }

    /// Parse a `-----BEGIN OpenVPN tls-crypt-v2 server key-----` file.
    pub fn from_pem(text: &str) -> Result<Self, KeyFileError> {
        let raw = pem_decode(text, SERVER_KEY_LABEL)?;
        if raw.len() != SLOT_LEN {
            return Err(KeyFileError::WrongLength {
                got: raw.len(),
                expected: SLOT_LEN,
            });
        }
        let mut ke = Zeroizing::new([0u8; 32]);
        ke.copy_from_slice(&raw[..32]);
        Ok(Self {
            ke,
            ka: HmacKey::new(Digest::Sha256, &raw[64..96]),
        })
    }

    /// A fresh random server key, as PEM (`--genkey tls-crypt-v2-server`).
    pub fn generate_pem() -> Result<String, KeyFileError> {
        let mut raw = Zeroizing::new([0u8; SLOT_LEN]);
        openssl::rand::rand_bytes(&mut raw[..])?;
        Ok(pem_encode(&raw[..], SERVER_KEY_LABEL))
    }

    fn ctr(&self, iv: &[u8], input: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        let mut ctx = CipherCtx::new()?;
        ctx.encrypt_init(Some(Cipher::aes_256_ctr()), Some(&self.ke[..]), Some(iv))?;
        let n = ctx.cipher_update(input, Some(out))?;
        if n != input.len() {
            return Err(CryptoError::Backend);
        }
        Ok(())
    }

    /// Wrap a client key Kc with `metadata` (the server side of `--genkey tls-crypt-v2-client`).
    pub fn wrap_client_key(&self, kc: &Key2, metadata: &Metadata) -> Result<Vec<u8>, KeyFileError> {
        let meta = metadata.encode();
        if meta.len() > MAX_METADATA_LEN {
            return Err(KeyFileError::MetadataTooLong(meta.len()));
        }
        let total = MIN_WKC_LEN + meta.len();
        // total ≤ 1024, checked above.
        let len = (total as u16).to_be_bytes();
        let tag = self.ka.compute(&[&len, kc.as_bytes(), &meta]);
        let plain = Zeroizing::new([&kc.as_bytes()[..], &meta].concat());
        let mut wkc = vec![0u8; total];
        wkc[..TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        self.ctr(&tag[..16], &plain, &mut wkc[TAG_LEN..total - 2])
            .map_err(|_| KeyFileError::BadWrappedKey)?;
        wkc[total - 2..].copy_from_slice(&len);
        Ok(wkc)
    }

    /// Unwrap a WKc received from a client: returns Kc and its metadata.
    pub fn unwrap_client_key(&self, wkc: &[u8]) -> Result<(Key2, Metadata), CryptoError> {
        let n = wkc.len();
        if !(MIN_WKC_LEN..=MAX_WKC_LEN).contains(&n) {
            return Err(CryptoError::BadWrappedKey);
        }
        let len = [wkc[n - 2], wkc[n - 1]];
        if usize::from(u16::from_be_bytes(len)) != n {
            return Err(CryptoError::BadWrappedKey);
        }
        let tag = &wkc[..TAG_LEN];
        let ct = &wkc[TAG_LEN..n - 2];
        let mut plain = Zeroizing::new([0u8; MAX_WKC_LEN]);
        self.ctr(&tag[..16], ct, &mut plain[..ct.len()])?;
        let (kc, meta) = plain[..ct.len()].split_at(KEY2_LEN);
        if !self.ka.verify(&[&len, kc, meta], tag) {
            return Err(CryptoError::BadWrappedKeyTag);
        }
        let kc = Key2::from_slice(kc).map_err(|_| CryptoError::BadWrappedKey)?;
        Ok((kc, Metadata::decode(meta)))
    }

    /// Generate a client key file for this server (`--genkey tls-crypt-v2-client`).
    pub fn generate_client_pem(&self, metadata: &Metadata) -> Result<String, KeyFileError> {
        let kc = Key2::generate()?;
        let wkc = self.wrap_client_key(&kc, metadata)?;
        let all = Zeroizing::new([&kc.as_bytes()[..], &wkc].concat());
        Ok(pem_encode(&all, CLIENT_KEY_LABEL))
    }
}

/// A tls-crypt-v2 client key file: Kc and the WKc to send to the server.
pub struct TlsCryptV2ClientKey {
    /// The client key, used like a tls-crypt static key.
    pub kc: Key2,
    /// The wrapped key, opaque to the client.
    pub wkc: Vec<u8>,
}

impl core::fmt::Debug for TlsCryptV2ClientKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TlsCryptV2ClientKey(wkc {} bytes)", self.wkc.len())
    }
}

impl TlsCryptV2ClientKey {
    /// Parse a `-----BEGIN OpenVPN tls-crypt-v2 client key-----` file.
    pub fn from_pem(text: &str) -> Result<Self, KeyFileError> {
        let raw = pem_decode(text, CLIENT_KEY_LABEL)?;
        if raw.len() < KEY2_LEN + MIN_WKC_LEN || raw.len() > KEY2_LEN + MAX_WKC_LEN {
            return Err(KeyFileError::WrongLength {
                got: raw.len(),
                expected: KEY2_LEN + MIN_WKC_LEN,
            });
        }
        let (kc, wkc) = raw.split_at(KEY2_LEN);
        let n = wkc.len();
        if usize::from(u16::from_be_bytes([wkc[n - 2], wkc[n - 1]])) != n {
            return Err(KeyFileError::BadWrappedKey);
        }
        Ok(Self {
            kc: Key2::from_slice(kc)?,
            wkc: wkc.to_vec(),
        })
    }

    /// The client's tls-crypt context (INVERSE direction).
    pub fn tls_crypt(&self) -> Result<TlsCrypt, KeyFileError> {
        TlsCrypt::new(&self.kc, Role::Client)
    }
}

/// Client side of tls-crypt-v2: wraps with Kc and appends WKc where needed.
#[derive(Debug)]
pub struct TlsCryptV2Client {
    crypt: TlsCrypt,
    wkc: Vec<u8>,
}

impl TlsCryptV2Client {
    /// From a parsed client key file.
    pub fn new(key: &TlsCryptV2ClientKey) -> Result<Self, KeyFileError> {
        Ok(Self {
            crypt: key.tls_crypt()?,
            wkc: key.wkc.clone(),
        })
    }

    /// The inner tls-crypt context.
    pub fn tls_crypt(&mut self) -> &mut TlsCrypt {
        &mut self.crypt
    }

    /// Length of the appended WKc.
    pub fn wkc_len(&self) -> usize {
        self.wkc.len()
    }

    /// Wrap with Kc; when the packet is a P_CONTROL_HARD_RESET_CLIENT_V3 or a
    /// P_CONTROL_WKC_V1 (by its first byte) the WKc is appended.
    pub fn wrap<'d>(
        &mut self,
        plain: &[u8],
        pid: PacketIdLong,
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], CryptoError> {
        let append_wkc = plain
            .first()
            .and_then(|&b| split_first_byte(b).ok())
            .is_some_and(|(op, _)| op.carries_wkc());
        let n = self.crypt.wrap(plain, pid, dst)?.len();
        if !append_wkc {
            return Ok(&dst[..n]);
        }
        let total = n + self.wkc.len();
        if dst.len() < total {
            return Err(CryptoError::BufferTooSmall {
                need: total,
                have: dst.len(),
            });
        }
        dst[n..total].copy_from_slice(&self.wkc);
        Ok(&dst[..total])
    }
}

/// Server side of tls-crypt-v2 for one packet carrying a WKc: recover Kc,
/// build the session's tls-crypt context and unwrap the packet with it.
pub fn server_unwrap_v3<'d>(
    server_key: &TlsCryptV2ServerKey,
    wire: &[u8],
    dst: &'d mut [u8],
) -> Result<(TlsCrypt, Metadata, PacketIdLong, &'d [u8]), CryptoError> {
    let (packet, wkc) = split_wkc(wire)?;
    let (kc, meta) = server_key.unwrap_client_key(wkc)?;
    let mut crypt = TlsCrypt::new(&kc, Role::Server).map_err(|_| CryptoError::Backend)?;
    let (pid, plain) = crypt.unwrap(packet, dst)?;
    Ok((crypt, meta, pid, plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    const KEY_12_3: &str = "c8c6c183be859f3da30405c8f076fd8b87be757085b7b4f3eb10df475b828839\
        a776aff2d5ebc67075254be1d49990cdba764c1483af22428a429c0132bfd71e\
        a4d0330c5966db98cac7c4eaa7f0def8750182b5d1ef3e11eca1701235175b98\
        c18db2c2e29cf4db7e1de44154f6926ea4d2b40be770ed1d2dec8e6961fac6a8\
        8e1bcc2f121ff69557e68388075dcec6b8e98be520471f68f80e4b9153509382\
        eaa375d1d8c5fa22b1b5c6df04eb8182d8e2f8f7e9d6677bc12dafd2c2906ac5\
        d13e4cfd93745576c1425a273177fabb7ee446f4f346865c4e9d565da7c89dbd\
        303f25d50b0781a9e2f6880e31465183d60761b68ab52d30c51da3a1cefcf32a";

    const CLIENT_RESET: &str = "38 f3623c9c6f69e650 00000001 6b0707af \
        8111d3eb528b390fb084471355cc7440c11b5289b2647321c4bee55d8195bd2c 19616817ed";
    const SERVER_RESET: &str = "40 c11178e30254e90b 00000001 6b0707af \
        65e665f6d2ee9603a3e25903e280546eb963d8edb016d2a0d73c27401ca56b75 \
        49008620abfd89024268800a5b50105240";

    fn key() -> Key2 {
        Key2::from_slice(&h(KEY_12_3)).unwrap()
    }

    #[test]
    fn client_reset_12_3_wraps_and_unwraps_exactly() {
        let mut client = TlsCrypt::new(&key(), Role::Client).unwrap();
        let mut server = TlsCrypt::new(&key(), Role::Server).unwrap();
        let plain = h("38 f3623c9c6f69e650 00 00000000");
        let mut dst = [0u8; 128];
        let w = client
            .wrap(
                &plain,
                PacketIdLong {
                    id: 1,
                    time: 0x6b0707af,
                },
                &mut dst,
            )
            .unwrap();
        assert_eq!(w.len(), 54);
        assert_eq!(hex::encode(w), hex::encode(h(CLIENT_RESET)));
        let mut out = [0u8; 128];
        let (pid, p) = server.unwrap(&h(CLIENT_RESET), &mut out).unwrap();
        assert_eq!(
            pid,
            PacketIdLong {
                id: 1,
                time: 0x6b0707af
            }
        );
        assert_eq!(p, &plain[..]);
    }

    #[test]
    fn server_stateless_reset_12_3_wraps_and_unwraps_exactly() {
        let mut client = TlsCrypt::new(&key(), Role::Client).unwrap();
        let mut server = TlsCrypt::new(&key(), Role::Server).unwrap();
        let plain = h("40 c11178e30254e90b 01 00000000 f3623c9c6f69e650 00000000");
        let mut dst = [0u8; 128];
        let w = server
            .wrap(
                &plain,
                PacketIdLong {
                    id: 1,
                    time: 0x6b0707af,
                },
                &mut dst,
            )
            .unwrap();
        assert_eq!(w.len(), 66);
        assert_eq!(hex::encode(w), hex::encode(h(SERVER_RESET)));
        let mut out = [0u8; 128];
        assert_eq!(
            client.unwrap(&h(SERVER_RESET), &mut out).unwrap().1,
            &plain[..]
        );
    }

    #[test]
    fn upstream_tls_crypt_client_reset_decrypts_with_12_2_key() {
        // test_pkt.c's client_reset_v2_tls_crypt, for the key of 12.2.
        let key = Key2::from_slice(&h(crate::proto::wire::tls_auth::tests::KEY_12_2)).unwrap();
        let mut server = TlsCrypt::new(&key, Role::Server).unwrap();
        let wire = h("38 f419cb12d1f9e48f 00000001 61d3f8e1 \
            330206f56802be44fbed905064e3db43416bec5e526719462b7eb90c96defc9b \
            05c44879f7");
        assert_eq!(wire.len(), 54);
        let mut out = [0u8; 64];
        let (pid, p) = server.unwrap(&wire, &mut out).unwrap();
        assert_eq!(
            pid,
            PacketIdLong {
                id: 1,
                time: 0x61d3f8e1
            }
        );
        assert_eq!(p, &h("38 f419cb12d1f9e48f 00 00000000")[..]);
        // Re-wrapping with the client direction reproduces the bytes.
        let mut client = TlsCrypt::new(&key, Role::Client).unwrap();
        let mut w = [0u8; 64];
        assert_eq!(client.wrap(p, pid, &mut w).unwrap(), &wire[..]);
    }

    #[test]
    fn rejects_every_flipped_byte_with_bad_tag() {
        let mut server = TlsCrypt::new(&key(), Role::Server).unwrap();
        let wire = h(CLIENT_RESET);
        let mut out = [0u8; 128];
        for i in 0..wire.len() {
            let mut m = wire.clone();
            m[i] ^= 0x20;
            assert_eq!(
                server.unwrap(&m, &mut out).err(),
                Some(CryptoError::BadTag),
                "byte {i}"
            );
        }
        assert_eq!(
            server.unwrap(&wire[..48], &mut out).err(),
            Some(CryptoError::Truncated)
        );
        // The client's own direction cannot open it.
        let mut client = TlsCrypt::new(&key(), Role::Client).unwrap();
        assert_eq!(
            client.unwrap(&wire, &mut out).err(),
            Some(CryptoError::BadTag)
        );
    }

    #[test]
    fn dynamic_key_is_exported_xor_static() {
        let exported = [0x5au8; KEY2_LEN];
        let mut a = TlsCrypt::dynamic(&exported, Some(&key()), Role::Client).unwrap();
        let mut b = TlsCrypt::new(&Key2::from_bytes(exported).xor(&key()), Role::Server).unwrap();
        let plain = h("19 0102030405060708 00 00000000");
        let mut w = [0u8; 128];
        let wire = a
            .wrap(&plain, PacketIdLong { id: 3, time: 4 }, &mut w)
            .unwrap()
            .to_vec();
        let mut out = [0u8; 128];
        assert_eq!(b.unwrap(&wire, &mut out).unwrap().1, &plain[..]);
        let mut plain_dyn = TlsCrypt::dynamic(&exported, None, Role::Server).unwrap();
        assert_eq!(
            plain_dyn.unwrap(&wire, &mut out).err(),
            Some(CryptoError::BadTag)
        );
    }

    #[test]
    fn v2_generated_keys_round_trip_through_v3_reset() {
        let srv_pem = TlsCryptV2ServerKey::generate_pem().unwrap();
        let srv = TlsCryptV2ServerKey::from_pem(&srv_pem).unwrap();
        let cli_pem = srv
            .generate_client_pem(&Metadata::User(b"alice".to_vec()))
            .unwrap();
        let cli = TlsCryptV2ClientKey::from_pem(&cli_pem).unwrap();
        let mut c = TlsCryptV2Client::new(&cli).unwrap();
        let plain = h("50 0102030405060708 00 00000000");
        let mut w = [0u8; 2048];
        let wire = c
            .wrap(
                &plain,
                PacketIdLong {
                    id: EARLY_NEG_START + 1,
                    time: 9,
                },
                &mut w,
            )
            .unwrap()
            .to_vec();
        assert_eq!(wire.len(), plain.len() + OVERHEAD + c.wkc_len());
        let mut w2 = [0u8; 2048];
        let ctl = h("20 0102030405060708 00 00000001 16");
        let no_wkc = c
            .wrap(&ctl, PacketIdLong { id: 9, time: 9 }, &mut w2)
            .unwrap();
        assert_eq!(no_wkc.len(), ctl.len() + OVERHEAD);
        let mut out = [0u8; 2048];
        let (mut sess, meta, pid, p) = server_unwrap_v3(&srv, &wire, &mut out).unwrap();
        assert_eq!(p, &plain[..]);
        assert_eq!(meta, Metadata::User(b"alice".to_vec()));
        assert_eq!(pid.id, 0x0F00_0001);
        // The recovered session key answers the client.
        let mut w2 = [0u8; 128];
        let reply = sess
            .wrap(
                &h("40 1111111111111111 00 00000000"),
                PacketIdLong { id: 1, time: 9 },
                &mut w2,
            )
            .unwrap()
            .to_vec();
        assert!(c.tls_crypt().unwrap(&reply, &mut out).is_ok());
    }

    #[test]
    fn v2_rejects_tampered_or_malformed_wkc() {
        let srv =
            TlsCryptV2ServerKey::from_pem(&TlsCryptV2ServerKey::generate_pem().unwrap()).unwrap();
        let wkc = srv
            .wrap_client_key(&Key2::generate().unwrap(), &Metadata::Timestamp(7))
            .unwrap();
        assert!(srv.unwrap_client_key(&wkc).is_ok());
        for i in [0usize, 40, wkc.len() - 3] {
            let mut m = wkc.clone();
            m[i] ^= 1;
            assert_eq!(
                srv.unwrap_client_key(&m).err(),
                Some(CryptoError::BadWrappedKeyTag),
                "byte {i}"
            );
        }
        let mut m = wkc.clone();
        let n = m.len();
        m[n - 1] ^= 1;
        assert_eq!(
            srv.unwrap_client_key(&m).err(),
            Some(CryptoError::BadWrappedKey)
        );
        assert_eq!(split_wkc(&[0, 1]).err(), Some(CryptoError::BadWrappedKey));
        let other =
            TlsCryptV2ServerKey::from_pem(&TlsCryptV2ServerKey::generate_pem().unwrap()).unwrap();
        assert_eq!(
            other.unwrap_client_key(&wkc).err(),
            Some(CryptoError::BadWrappedKeyTag)
        );
        assert!(matches!(
            srv.wrap_client_key(
                &Key2::generate().unwrap(),
                &Metadata::User(vec![0; MAX_METADATA_LEN])
            ),
            Err(KeyFileError::MetadataTooLong(_))
        ));
    }

    #[test]
    fn early_negotiation_marker_is_the_0x0f_top_bits() {
        assert!(signals_early_negotiation(PacketIdLong {
            id: 0x0F00_0001,
            time: 1
        }));
        assert!(!signals_early_negotiation(PacketIdLong { id: 1, time: 1 }));
        assert!(!signals_early_negotiation(PacketIdLong {
            id: 0x0E00_0001,
            time: 1
        }));
    }

    proptest::proptest! {
        #[test]
        fn unwrap_and_wkc_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1400)) {
            let mut server = TlsCrypt::new(&key(), Role::Server).unwrap();
            let mut dst = vec![0u8; b.len()];
            let _ = server.unwrap(&b, &mut dst);
            let _ = server.unwrap(&b, &mut dst[..b.len() / 2]);
            let _ = split_wkc(&b);
            let srv = TlsCryptV2ServerKey::from_pem(crate::fuzzing::V2_SERVER_PEM).unwrap();
            let _ = srv.unwrap_client_key(&b);
            let _ = server_unwrap_v3(&srv, &b, &mut dst);
        }
    }
}
