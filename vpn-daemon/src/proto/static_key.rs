//! The data channel of static-key mode (`--secret`): no control channel, no
//! opcode byte, one pre-shared 2048-bit key sliced by `key-direction`.
//!
//! OpenVPN 2.6's `openvpn_encrypt_v1` / `openvpn_decrypt_v1` with
//! `CO_PACKET_ID_LONG_FORM` (crypto.c, packet_id.c). Only CBC ciphers and
//! `cipher none` are allowed in this mode (`init_key_type` with
//! `tls_mode == false` refuses AEAD, CFB and OFB):
//!
//! ```text
//! CBC:          | hmac (H) | iv (B) | CBC( [packet_id (4) | time (4)] | payload , PKCS#7) |
//!                          '-------------------- covered by the HMAC ---------------------'
//! cipher none:  | hmac (H) | [packet_id (4) | time (4)] | payload |
//! ```
//!
//! `H` is 0 with `auth none`; the packet id is absent with `no-replay`.
//! `time` is the sender's start time (unix seconds); a newer time restarts
//! the receiver's window, so a restarted peer is accepted at once.
//!
//! Key slicing (`key_direction_state_init`): without a direction both sides
//! send and receive with `keys[0]`; `key-direction 0` sends with `keys[0]`
//! and receives with `keys[1]`, `1` the reverse. Of each slot the cipher
//! key is the first `key_length` bytes of the cipher field, the HMAC key
//! the first `H` bytes of the hmac field.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::proto::data::hmac::{Digest, HmacKey};
use crate::proto::error::CryptoError;
use crate::proto::keys::{Key2, KeyDirection, KeySlot};
use crate::proto::replay::{PacketIdLong, ReplayConfig, ReplayError, ReplayWindow};

/// Largest cipher block (and IV) OpenVPN allows (`OPENVPN_MAX_CIPHER_BLOCK_SIZE`).
pub const MAX_BLOCK: usize = 32;

/// Why a static-key configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StaticKeyError {
    /// OpenSSL does not know the cipher (BF-CBC needs `providers legacy default`).
    #[error("Cipher {0} not supported")]
    UnknownCipher(String),
    /// Known, but not a CBC cipher.
    #[error("Cipher '{0}' mode not supported")]
    ModeNotSupported(String),
    /// The digest is not one we implement for `--auth`.
    #[error("HMAC '{0}' is not supported in static-key mode (use SHA1, SHA256, SHA512 or none)")]
    UnknownDigest(String),
    /// A cipher key of only zero bytes (OpenVPN refuses it as well).
    #[error("static key: cipher key is all zeros")]
    ZeroKey,
    /// OpenSSL failed to set up a context.
    #[error("static key: OpenSSL: {0}")]
    Backend(#[from] openssl::error::ErrorStack),
}

/// The cipher of static-key mode.
#[derive(Clone)]
pub enum StaticCipher {
    /// A CBC cipher fetched from OpenSSL by name.
    Cbc {
        /// Canonical (upper-case) name, as in the OCC string.
        name: String,
        /// OpenSSL's cipher.
        cipher: std::sync::Arc<Cipher>,
    },
    /// `cipher none`: no encryption.
    None,
}

impl core::fmt::Debug for StaticCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl StaticCipher {
    /// Looks up `name` as OpenVPN 2.6 does for static-key mode. BF-CBC is
    /// only found once OpenSSL's legacy provider is loaded.
    pub fn from_name(name: &str) -> Result<Self, StaticKeyError> {
        if name.eq_ignore_ascii_case("none") {
            return Ok(Self::None);
        }
        let up = name.to_ascii_uppercase();
        // A NUL would make the name unrepresentable to OpenSSL.
        if up.contains('\0') {
            return Err(StaticKeyError::UnknownCipher(up));
        }
        let cipher = Cipher::fetch(None, &up, None)
            .map_err(|_| StaticKeyError::UnknownCipher(up.clone()))?;
        // OpenSSL names every CBC cipher "...-CBC"; its mode flag is not
        // exposed by the openssl crate.
        let cbc = up.ends_with("-CBC") && cipher.block_size() > 1;
        if !cbc || cipher.iv_length() != cipher.block_size() {
            return Err(StaticKeyError::ModeNotSupported(up));
        }
        if cipher.block_size() > MAX_BLOCK {
            return Err(StaticKeyError::ModeNotSupported(up));
        }
        Ok(Self::Cbc {
            name: up,
            cipher: std::sync::Arc::new(cipher),
        })
    }

    /// The name for logs and the OCC string (`none` as OpenVPN writes it).
    pub fn name(&self) -> &str {
        match self {
            Self::Cbc { name, .. } => name,
            Self::None => "none",
        }
    }

    /// Key length in bytes (0 for none).
    pub fn key_len(&self) -> usize {
        match self {
            Self::Cbc { cipher, .. } => cipher.key_length(),
            Self::None => 0,
        }
    }

    /// Block (and IV) length in bytes (0 for none).
    pub fn block_len(&self) -> usize {
        match self {
            Self::Cbc { cipher, .. } => cipher.block_size(),
            Self::None => 0,
        }
    }
}

/// Everything that fixes the static-key data channel.
#[derive(Debug, Clone)]
pub struct StaticKeyParams {
    /// `cipher` (2.6 default BF-CBC).
    pub cipher: StaticCipher,
    /// `auth`; `None` for `auth none`.
    pub auth: Option<Digest>,
    /// `secret FILE [dir]` / `key-direction`.
    pub direction: KeyDirection,
    /// `replay-window`; `None` with `no-replay` (no packet id on the wire).
    pub replay: Option<ReplayConfig>,
}

impl StaticKeyParams {
    /// Bytes added to a payload at most (HMAC, IV, packet id, padding).
    pub fn overhead(&self) -> usize {
        let h = self.auth.map_or(0, Digest::output_len);
        let pid = if self.replay.is_some() {
            PacketIdLong::LEN
        } else {
            0
        };
        let b = self.cipher.block_len();
        h + b + pid + b
    }

    /// `link-mtu` of the OCC options string for `tun_mtu` over a link
    /// with `framing` bytes before the packet (2 for TCP's length).
    pub fn link_mtu(&self, tun_mtu: u32, framing: u32) -> u32 {
        let h = self.auth.map_or(0, Digest::output_len) as u32;
        let pid = if self.replay.is_some() {
            PacketIdLong::LEN as u32
        } else {
            0
        };
        let b = self.cipher.block_len() as u32;
        // OpenVPN counts the IV and one whole block of padding.
        tun_mtu + framing + h + pid + b + b
    }
}

/// One direction's cipher state.
struct Half {
    ctx: Option<CipherCtx>,
    hmac: Option<HmacKey>,
    block: usize,
}

impl Half {
    fn new(p: &StaticKeyParams, slot: &KeySlot, encrypt: bool) -> Result<Self, StaticKeyError> {
        let hmac = p.auth.map(|d| HmacKey::new(d, slot.hmac()));
        let (ctx, block) = match &p.cipher {
            StaticCipher::None => (None, 0),
            StaticCipher::Cbc { cipher, .. } => {
                let key = Zeroizing::new(slot.cipher()[..cipher.key_length()].to_vec());
                if key.iter().all(|&b| b == 0) {
                    return Err(StaticKeyError::ZeroKey);
                }
                let c: &CipherRef = cipher;
                let mut ctx = CipherCtx::new()?;
                if encrypt {
                    ctx.encrypt_init(Some(c), Some(&key), None)?;
                } else {
                    ctx.decrypt_init(Some(c), Some(&key), None)?;
                }
                (Some(ctx), cipher.block_size())
            }
        };
        Ok(Self { ctx, hmac, block })
    }

    fn hmac_len(&self) -> usize {
        self.hmac.as_ref().map_or(0, HmacKey::len)
    }
}

/// Why a received packet was dropped (each one is a counted drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaticDrop {
    /// HMAC, padding, length: not from our peer, or damaged.
    #[error("authenticate/decrypt packet error: {0}")]
    Crypto(#[from] CryptoError),
    /// Authentic, but its packet id was seen or is too old.
    #[error("bad packet ID (may be a replay): {0:?}")]
    Replay(ReplayError),
}

/// The static-key data channel of one tunnel: seal what goes out, open
/// what comes in. Caller-owned buffers; nothing allocated per packet.
pub struct StaticKeyChannel {
    params: StaticKeyParams,
    send: Half,
    recv: Half,
    send_id: u32,
    send_time: u32,
    window: Option<ReplayWindow>,
}

impl core::fmt::Debug for StaticKeyChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticKeyChannel")
            .field("params", &self.params)
            .field("send_id", &self.send_id)
            .finish_non_exhaustive()
    }
}

impl StaticKeyChannel {
    /// The channel for `key`; `start_unix` is the time field of the packet
    /// ids we send (our start time, as OpenVPN's `packet_id_send`).
    pub fn new(
        params: StaticKeyParams,
        key: &Key2,
        start_unix: u32,
    ) -> Result<Self, StaticKeyError> {
        let send = Half::new(&params, &key.slot(params.direction.out_slot()), true)?;
        let recv = Half::new(&params, &key.slot(params.direction.in_slot()), false)?;
        Ok(Self {
            window: params.replay.map(ReplayWindow::new),
            params,
            send,
            recv,
            send_id: 0,
            send_time: start_unix.max(1),
        })
    }

    /// The settings.
    pub fn params(&self) -> &StaticKeyParams {
        &self.params
    }

    /// Size `dst` must have to seal `len` bytes.
    pub fn seal_buffer_len(&self, len: usize) -> usize {
        // One more block than the padding needs: OpenSSL's update wants it.
        self.params.overhead() + len + self.send.block
    }

    /// Size `dst` must have to open a packet of `len` bytes.
    pub fn open_buffer_len(&self, len: usize) -> usize {
        len + self.recv.block
    }

    fn next_packet_id(&mut self, unix_now: u32) -> Result<PacketIdLong, CryptoError> {
        if self.send_id == u32::MAX {
            // Long-form ids may roll over once the clock has moved on
            // (packet_id_send_update); otherwise the packet is not sent.
            if unix_now <= self.send_time {
                return Err(CryptoError::PacketIdExhausted);
            }
            self.send_time = unix_now;
            self.send_id = 0;
        }
        self.send_id += 1;
        Ok(PacketIdLong {
            id: self.send_id,
            time: self.send_time,
        })
    }

    /// Protects `payload` (a tun packet, ping or OCC message) into `dst`.
    /// `unix_now` only matters when the 32-bit packet id rolls over.
    pub fn seal<'d>(
        &mut self,
        payload: &[u8],
        unix_now: u32,
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], CryptoError> {
        if payload.is_empty() {
            return Err(CryptoError::EmptyPayload);
        }
        let need = self.seal_buffer_len(payload.len());
        if dst.len() < need {
            return Err(CryptoError::BufferTooSmall {
                need,
                have: dst.len(),
            });
        }
        let pid = if self.params.replay.is_some() {
            Some(self.next_packet_id(unix_now)?.to_bytes())
        } else {
            None
        };
        let pid: &[u8] = pid.as_ref().map_or(&[], |p| p.as_slice());
        let h = self.send.hmac_len();
        let len = match &mut self.send.ctx {
            Some(ctx) => {
                let b = self.send.block;
                let iv_off = h;
                let ct_off = iv_off + b;
                openssl::rand::rand_bytes(&mut dst[iv_off..ct_off])?;
                let mut iv = [0u8; MAX_BLOCK];
                iv[..b].copy_from_slice(&dst[iv_off..ct_off]);
                ctx.encrypt_init(None, None, Some(&iv[..b]))?;
                let mut n = ctx.cipher_update(pid, Some(&mut dst[ct_off..]))?;
                n += ctx.cipher_update(payload, Some(&mut dst[ct_off + n..]))?;
                n += ctx.cipher_final(&mut dst[ct_off + n..])?;
                ct_off + n
            }
            None => {
                dst[h..h + pid.len()].copy_from_slice(pid);
                let off = h + pid.len();
                dst[off..off + payload.len()].copy_from_slice(payload);
                off + payload.len()
            }
        };
        if let Some(mac) = &self.send.hmac {
            let tag = mac.compute(&[&dst[h..len]]);
            dst[..h].copy_from_slice(&tag[..h]);
        }
        Ok(&dst[..len])
    }

    /// Authenticates, decrypts and replay-checks `packet` into `dst`,
    /// returning the payload. `now` is monotonic seconds (the replay
    /// window's time rule).
    pub fn open<'d>(
        &mut self,
        packet: &[u8],
        dst: &'d mut [u8],
        now: u64,
    ) -> Result<&'d mut [u8], StaticDrop> {
        let h = self.recv.hmac_len();
        if packet.len() < h {
            return Err(CryptoError::Truncated.into());
        }
        let (tag, covered) = packet.split_at(h);
        if let Some(mac) = &self.recv.hmac
            && !mac.verify(&[covered], tag)
        {
            return Err(CryptoError::BadHmac.into());
        }
        let plain: &mut [u8] = match &mut self.recv.ctx {
            Some(ctx) => {
                let b = self.recv.block;
                if covered.len() < 2 * b {
                    return Err(CryptoError::Truncated.into());
                }
                let (iv, ct) = covered.split_at(b);
                if ct.len() % b != 0 {
                    return Err(CryptoError::BadCiphertextLength.into());
                }
                let need = ct.len() + b;
                if dst.len() < need {
                    return Err(CryptoError::BufferTooSmall {
                        need,
                        have: dst.len(),
                    }
                    .into());
                }
                ctx.decrypt_init(None, None, Some(iv))
                    .map_err(|_| CryptoError::Backend)?;
                let n = ctx
                    .cipher_update(ct, Some(&mut dst[..]))
                    .map_err(|_| CryptoError::Backend)?;
                let f = ctx
                    .cipher_final(&mut dst[n..])
                    .map_err(|_| CryptoError::BadPadding)?;
                &mut dst[..n + f]
            }
            None => {
                if dst.len() < covered.len() {
                    return Err(CryptoError::BufferTooSmall {
                        need: covered.len(),
                        have: dst.len(),
                    }
                    .into());
                }
                dst[..covered.len()].copy_from_slice(covered);
                &mut dst[..covered.len()]
            }
        };
        let body = match &mut self.window {
            Some(w) => {
                if plain.len() < PacketIdLong::LEN {
                    return Err(CryptoError::Truncated.into());
                }
                let (pid, body) = plain.split_at_mut(PacketIdLong::LEN);
                let mut b8 = [0u8; PacketIdLong::LEN];
                b8.copy_from_slice(pid);
                w.mark(PacketIdLong::from_bytes(b8), now)
                    .map_err(StaticDrop::Replay)?;
                body
            }
            None => plain,
        };
        if body.is_empty() {
            return Err(CryptoError::EmptyPayload.into());
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key2 {
        let mut b = [0u8; 256];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(7).wrapping_add(1);
        }
        Key2::from_bytes(b)
    }

    fn params(
        cipher: &str,
        auth: Option<Digest>,
        dir: KeyDirection,
        replay: bool,
    ) -> StaticKeyParams {
        StaticKeyParams {
            cipher: StaticCipher::from_name(cipher).unwrap(),
            auth,
            direction: dir,
            replay: replay.then(ReplayConfig::default),
        }
    }

    fn pair(
        cipher: &str,
        auth: Option<Digest>,
        d: (KeyDirection, KeyDirection),
        replay: bool,
    ) -> (StaticKeyChannel, StaticKeyChannel) {
        let k = key();
        (
            StaticKeyChannel::new(params(cipher, auth, d.0, replay), &k, 1000).unwrap(),
            StaticKeyChannel::new(params(cipher, auth, d.1, replay), &k, 2000).unwrap(),
        )
    }

    fn through(
        a: &mut StaticKeyChannel,
        b: &mut StaticKeyChannel,
        msg: &[u8],
    ) -> Result<Vec<u8>, StaticDrop> {
        let mut wire = vec![0u8; a.seal_buffer_len(msg.len())];
        let pkt = a.seal(msg, 5, &mut wire).unwrap().to_vec();
        let mut out = vec![0u8; b.open_buffer_len(pkt.len())];
        b.open(&pkt, &mut out, 1).map(|p| p.to_vec())
    }

    #[test]
    fn round_trips_every_mode_and_both_direction_orders() {
        use KeyDirection::*;
        for cipher in ["AES-256-CBC", "AES-128-CBC", "none"] {
            for auth in [Some(Digest::Sha1), Some(Digest::Sha256), None] {
                for dirs in [
                    (Bidirectional, Bidirectional),
                    (Normal, Inverse),
                    (Inverse, Normal),
                ] {
                    for replay in [true, false] {
                        let (mut a, mut b) = pair(cipher, auth, dirs, replay);
                        for len in [1usize, 15, 16, 17, 100, 1500] {
                            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
                            assert_eq!(through(&mut a, &mut b, &msg).unwrap(), msg);
                            assert_eq!(through(&mut b, &mut a, &msg).unwrap(), msg);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn same_direction_on_both_ends_does_not_authenticate() {
        use KeyDirection::*;
        let (mut a, mut b) = pair("AES-256-CBC", Some(Digest::Sha1), (Normal, Normal), true);
        assert_eq!(
            through(&mut a, &mut b, b"hello"),
            Err(StaticDrop::Crypto(CryptoError::BadHmac))
        );
    }

    #[test]
    fn wire_layout_is_hmac_iv_then_ciphertext_of_long_packet_id_and_payload() {
        let (mut a, _) = pair(
            "AES-256-CBC",
            Some(Digest::Sha1),
            (KeyDirection::Normal, KeyDirection::Inverse),
            true,
        );
        let mut wire = vec![0u8; 256];
        let pkt = a.seal(&[0x45; 8], 5, &mut wire).unwrap().to_vec();
        // 20 HMAC + 16 IV + pad(8 pid + 8 payload = 16 -> 32).
        assert_eq!(pkt.len(), 20 + 16 + 32);
        // Decrypt by hand with keys[0] (direction 0 sends with slot 0).
        let k = key();
        let slot = k.slot(0);
        let mac = HmacKey::new(Digest::Sha1, slot.hmac());
        assert!(mac.verify(&[&pkt[20..]], &pkt[..20]));
        let mut c = openssl::symm::Crypter::new(
            openssl::symm::Cipher::aes_256_cbc(),
            openssl::symm::Mode::Decrypt,
            &slot.cipher()[..32],
            Some(&pkt[20..36]),
        )
        .unwrap();
        let mut out = vec![0u8; 64];
        let mut n = c.update(&pkt[36..], &mut out).unwrap();
        n += c.finalize(&mut out[n..]).unwrap();
        assert_eq!(
            &out[..n],
            &[
                0, 0, 0, 1, 0, 0, 3, 0xe8, 0x45, 0x45, 0x45, 0x45, 0x45, 0x45, 0x45, 0x45
            ]
        );
    }

    #[test]
    fn replays_are_dropped_after_authentication_and_no_replay_accepts_them() {
        for replay in [true, false] {
            let (mut a, mut b) = pair(
                "AES-128-CBC",
                Some(Digest::Sha256),
                (KeyDirection::Bidirectional, KeyDirection::Bidirectional),
                replay,
            );
            let mut wire = vec![0u8; 256];
            let pkt = a.seal(b"ping", 5, &mut wire).unwrap().to_vec();
            let mut out = vec![0u8; 256];
            assert!(b.open(&pkt, &mut out, 1).is_ok());
            let again = b.open(&pkt, &mut out, 1);
            if replay {
                assert_eq!(
                    again.unwrap_err(),
                    StaticDrop::Replay(ReplayError::Duplicate)
                );
            } else {
                assert!(again.is_ok());
            }
        }
    }

    #[test]
    fn a_restarted_sender_with_a_newer_time_is_accepted() {
        let k = key();
        let p = || {
            params(
                "AES-256-CBC",
                Some(Digest::Sha1),
                KeyDirection::Bidirectional,
                true,
            )
        };
        let mut rx = StaticKeyChannel::new(p(), &k, 1).unwrap();
        let mut old = StaticKeyChannel::new(p(), &k, 100).unwrap();
        let mut new = StaticKeyChannel::new(p(), &k, 200).unwrap();
        for _ in 0..3 {
            through(&mut old, &mut rx, b"x").unwrap();
        }
        through(&mut new, &mut rx, b"y").unwrap();
        // The old incarnation's ids are now from the past.
        assert_eq!(
            through(&mut old, &mut rx, b"z"),
            Err(StaticDrop::Replay(ReplayError::TimeBacktrack))
        );
    }

    #[test]
    fn tampered_and_truncated_packets_are_dropped() {
        let (mut a, mut b) = pair(
            "AES-256-CBC",
            Some(Digest::Sha1),
            (KeyDirection::Normal, KeyDirection::Inverse),
            true,
        );
        let mut wire = vec![0u8; 256];
        let pkt = a.seal(b"payload", 5, &mut wire).unwrap().to_vec();
        let mut out = vec![0u8; 256];
        for i in 0..pkt.len() {
            let mut t = pkt.clone();
            t[i] ^= 1;
            assert!(b.open(&t, &mut out, 1).is_err(), "byte {i}");
        }
        for n in 0..pkt.len() {
            assert!(b.open(&pkt[..n], &mut out, 1).is_err());
        }
        assert!(b.open(&pkt, &mut out[..3], 1).is_err());
    }

    #[test]
    fn aead_and_unknown_ciphers_are_refused_as_openvpn_refuses_them() {
        assert!(matches!(
            StaticCipher::from_name("AES-256-GCM"),
            Err(StaticKeyError::ModeNotSupported(_))
        ));
        assert!(matches!(
            StaticCipher::from_name("NOPE-CBC"),
            Err(StaticKeyError::UnknownCipher(_))
        ));
        assert_eq!(
            StaticKeyError::UnknownCipher("BF-CBC".into()).to_string(),
            "Cipher BF-CBC not supported"
        );
    }

    #[test]
    fn packet_id_rolls_over_only_when_time_moved() {
        let (mut a, _) = pair(
            "AES-128-CBC",
            None,
            (KeyDirection::Bidirectional, KeyDirection::Bidirectional),
            true,
        );
        a.send_id = u32::MAX;
        let mut wire = vec![0u8; 128];
        assert_eq!(
            a.seal(b"x", 1000, &mut wire).unwrap_err(),
            CryptoError::PacketIdExhausted
        );
        assert!(a.seal(b"x", 1001, &mut wire).is_ok());
        assert_eq!(a.send_id, 1);
        assert_eq!(a.send_time, 1001);
    }

    /// Captured from openvpn 2.6.14 (`secret k 1`, `cipher AES-256-CBC`,
    /// `ping 1`): its first three packets, and the key it used.
    const CAPTURE_KEY: &str = concat!(
        "84b37ff73c113ae32cf166a3a755504d09c6bbedfe34b87b337478210ac2c7af",
        "fa34ebfcbc1985a1067211290b45ca9f70e5dbb641e45021e419d29208d33330",
        "14df2a39402d77b2a08d0f7035e07d8b132a4e93196ae4207412adfa71dfc6e7",
        "4af65ce3708ee226d2c6b6c7e1b8444e8de0b603257e37a80a8aa4ca10f18876",
        "c9bdc72ebeb57ad9d09606c72be5416b7770e991a676a3f660fc9b3edda8269f",
        "81fab519be319d9f24abecb75987d166e0019fd82e2468506aa869e11cc84feb",
        "192d2590a0336389d56f26e0685e0f8578597e5334d78fe1f8e25e1a9a043288",
        "d85f82e1b8b35617e406ce3ea2552ffbb83e272c5d7e0b01e88df92971286c76",
    );
    const CAPTURED: [&str; 3] = [
        concat!(
            "47a9d71be09d51b160658be4dad83729f60e9900b814e4e337928071f70d588d",
            "9ff9d2e7da2118d790e8a116c506455f127fac7335a135d03de345f87b58e945",
            "10781117",
        ),
        concat!(
            "e7ac52b8248ba431b24a32a48a7e7baa0f530fbc697d4fc04943237488c08ddf",
            "4cad3e62702f0ef82643297f26771f180bf24ea228791ac6e4a5eeca519f310c",
            "ef5d66225a65d3773495f0aede5e4c7efcb58f794d808b4df830a67a06576086",
            "9d56f8ae",
        ),
        concat!(
            "1dad3cc7cf80d2a51c638303d2ac485f31467f92154485ea6438eb191389689f",
            "bf6f67b8b8cef19e72d459184f5aad6e6d6ca0ea0e9cd169dd568fe979d00d89",
            "92c0b06e",
        ),
    ];

    #[test]
    fn opens_packets_captured_from_openvpn_2_6_14() {
        let k = Key2::from_slice(&hex::decode(CAPTURE_KEY).unwrap()).unwrap();
        // openvpn had direction 1, so it sent with keys[1]: we are 0.
        let mut rx = StaticKeyChannel::new(
            params(
                "AES-256-CBC",
                Some(Digest::Sha1),
                KeyDirection::Normal,
                true,
            ),
            &k,
            1,
        )
        .unwrap();
        let mut kinds = Vec::new();
        for p in CAPTURED {
            let pkt = hex::decode(p).unwrap();
            let mut out = vec![0u8; rx.open_buffer_len(pkt.len())];
            let plain = rx.open(&pkt, &mut out, 0).unwrap();
            kinds.push(match crate::proto::data::payload::classify(plain) {
                crate::proto::data::payload::Payload::Ping => "ping",
                crate::proto::data::payload::Payload::Occ(..) => "occ",
                crate::proto::data::payload::Payload::TunPacket(_) => "tun",
            });
        }
        // Two keepalive pings around one packet the kernel sent into the tun.
        assert_eq!(kinds, ["ping", "tun", "ping"]);
        // The same packets again are replays, each one.
        for p in CAPTURED {
            let pkt = hex::decode(p).unwrap();
            let mut out = vec![0u8; rx.open_buffer_len(pkt.len())];
            assert!(matches!(
                rx.open(&pkt, &mut out, 0),
                Err(StaticDrop::Replay(_))
            ));
        }
        // The wrong direction does not authenticate.
        let mut wrong = StaticKeyChannel::new(
            params(
                "AES-256-CBC",
                Some(Digest::Sha1),
                KeyDirection::Inverse,
                true,
            ),
            &k,
            1,
        )
        .unwrap();
        let pkt = hex::decode(CAPTURED[0]).unwrap();
        let mut out = vec![0u8; 256];
        assert_eq!(
            wrong.open(&pkt, &mut out, 0).unwrap_err(),
            StaticDrop::Crypto(CryptoError::BadHmac)
        );
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), small in 0usize..64) {
            let (_, mut rx) = pair("AES-256-CBC", Some(Digest::Sha1), (KeyDirection::Normal, KeyDirection::Inverse), true);
            let mut out = vec![0u8; small];
            let _ = rx.open(&b, &mut out, 1);
            let mut out = vec![0u8; 512];
            let _ = rx.open(&b, &mut out, 1);
            crate::fuzzing::static_key_open(&b);
        }
    }
}
