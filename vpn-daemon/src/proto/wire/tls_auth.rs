//! tls-auth: HMAC protection of control packets (sections 2.3 and 3.3).
//!
//! ```text
//! wire:   | op_kid | own sid (8) | hmac (H) | replay id (4) | replay time (4) | ack block ... payload |
//! MAC'd:  | replay id | replay time | op_kid | own sid | ack block ... payload |
//! ```
//!
//! H is the `--auth` digest length (SHA1 20, SHA256 32, SHA512 64). OpenVPN
//! computes the MAC with the replay field in front and then swaps it behind
//! the MAC ("swap_hmac"); we build the MAC input from three slices instead
//! and never move bytes twice. Unwrapping yields the plain layout of
//! [`super::control`] plus the replay field, which the caller checks with
//! its [`ReplayWindow`](crate::proto::replay::ReplayWindow) after the MAC verified.

use super::control::HEADER_LEN;
use crate::proto::error::CryptoError;
use crate::proto::hmac::{Digest, HmacKey};
use crate::proto::keys::{Key2, KeyDirection};
use crate::proto::replay::PacketIdLong;

/// tls-auth context: one HMAC key per direction.
#[derive(Clone, Debug)]
pub struct TlsAuth {
    out: HmacKey,
    inp: HmacKey,
}

impl TlsAuth {
    /// From the static key, the configured `key-direction` and `--auth` digest.
    pub fn new(key: &Key2, dir: KeyDirection, digest: Digest) -> Self {
        Self {
            out: HmacKey::new(digest, key.slot(dir.out_slot()).hmac()),
            inp: HmacKey::new(digest, key.slot(dir.in_slot()).hmac()),
        }
    }

    /// Bytes added to a plain control packet.
    pub fn overhead(&self) -> usize {
        self.out.len() + PacketIdLong::LEN
    }

    /// Protect a plain control packet (`op_kid || sid || rest`) into `dst`.
    pub fn wrap<'d>(
        &self,
        plain: &[u8],
        pid: PacketIdLong,
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], CryptoError> {
        if plain.len() < HEADER_LEN {
            return Err(CryptoError::Truncated);
        }
        let h = self.out.len();
        let total = plain.len() + h + PacketIdLong::LEN;
        if dst.len() < total {
            return Err(CryptoError::BufferTooSmall {
                need: total,
                have: dst.len(),
            });
        }
        let (head, body) = plain.split_at(HEADER_LEN);
        let pid = pid.to_bytes();
        let mac = self.out.compute(&[&pid, head, body]);
        dst[..HEADER_LEN].copy_from_slice(head);
        dst[HEADER_LEN..HEADER_LEN + h].copy_from_slice(&mac[..h]);
        dst[HEADER_LEN + h..HEADER_LEN + h + 8].copy_from_slice(&pid);
        dst[HEADER_LEN + h + 8..total].copy_from_slice(body);
        Ok(&dst[..total])
    }

    /// Verify and strip the HMAC; writes the plain packet into `dst`.
    ///
    /// The replay field is returned unchecked: run it through the replay
    /// window (or skip that for the stateless first reset, section 4.2).
    pub fn unwrap<'d>(
        &self,
        wire: &[u8],
        dst: &'d mut [u8],
    ) -> Result<(PacketIdLong, &'d [u8]), CryptoError> {
        let h = self.inp.len();
        let fixed = HEADER_LEN + h + PacketIdLong::LEN;
        if wire.len() < fixed {
            return Err(CryptoError::Truncated);
        }
        let (head, rest) = wire.split_at(HEADER_LEN);
        let (mac, rest) = rest.split_at(h);
        let (pid_bytes, body) = rest.split_at(PacketIdLong::LEN);
        if !self.inp.verify(&[pid_bytes, head, body], mac) {
            return Err(CryptoError::BadHmac);
        }
        let total = HEADER_LEN + body.len();
        if dst.len() < total {
            return Err(CryptoError::BufferTooSmall {
                need: total,
                have: dst.len(),
            });
        }
        dst[..HEADER_LEN].copy_from_slice(head);
        dst[HEADER_LEN..total].copy_from_slice(body);
        let mut p = [0u8; 8];
        p.copy_from_slice(pid_bytes);
        Ok((PacketIdLong::from_bytes(p), &dst[..total]))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    pub(crate) const KEY_12_2: &str = "37268ea8f95d7f71f9fb8fc03770c460daf714a483d815c013ce0a537efc18f2\
        8f4f172669d9e6a413bac6741d8ea05400f49b7fd6326470f23798c606bf53d4\
        de63ebc64ec59d57ce5d04d5b62e68b53ca6e5354351097fa370446c4d269f18\
        7bb6ae54af2dc70ff7317fe2f8754b8282aad4202f9fa42c8640245d883e2c54\
        a0c1c489a036cf3a8964d8d289c1583b9447c262b1da5fd167a5d27bd5ac5143\
        17bc2343a31a2efc38dd920d910375f51c2e27f3afd36c49269da079f7ce466e\
        bb0f9ad13e9bbb4665974e6bc24b513c5700393bf4a3e7f967e2f384069ac8a8\
        e78b18b15604993fd16515cce9c0f3e42b4126b999005ade802797b0eeb8b9e6";

    const WIRE_12_2: &str = "38 de694c5c7bfba274 93537c1ded4e781529ae7cfe4b8c6d6b2b51f05a 00000001 61d3bf6c 00 00000000";

    fn key() -> Key2 {
        Key2::from_slice(&h(KEY_12_2)).unwrap()
    }

    #[test]
    fn client_wraps_reset_12_2_exactly() {
        let client = TlsAuth::new(&key(), KeyDirection::Inverse, Digest::Sha1);
        let plain = h("38 de694c5c7bfba274 00 00000000");
        let mut dst = [0u8; 64];
        let w = client
            .wrap(
                &plain,
                PacketIdLong {
                    id: 1,
                    time: 0x61d3bf6c,
                },
                &mut dst,
            )
            .unwrap();
        assert_eq!(hex::encode(w), hex::encode(h(WIRE_12_2)));
    }

    #[test]
    fn server_unwraps_reset_12_2_and_wrong_direction_fails() {
        let server = TlsAuth::new(&key(), KeyDirection::Normal, Digest::Sha1);
        let mut dst = [0u8; 64];
        let (pid, plain) = server.unwrap(&h(WIRE_12_2), &mut dst).unwrap();
        assert_eq!(
            pid,
            PacketIdLong {
                id: 1,
                time: 0x61d3bf6c
            }
        );
        assert_eq!(plain, &h("38 de694c5c7bfba274 00 00000000")[..]);
        let wrong = TlsAuth::new(&key(), KeyDirection::Inverse, Digest::Sha1);
        assert_eq!(
            wrong.unwrap(&h(WIRE_12_2), &mut dst).err(),
            Some(CryptoError::BadHmac)
        );
    }

    #[test]
    fn rejects_every_flipped_byte() {
        let server = TlsAuth::new(&key(), KeyDirection::Normal, Digest::Sha1);
        let wire = h(WIRE_12_2);
        let mut dst = [0u8; 64];
        for i in 0..wire.len() {
            let mut m = wire.clone();
            m[i] ^= 0x01;
            assert_eq!(
                server.unwrap(&m, &mut dst).err(),
                Some(CryptoError::BadHmac),
                "byte {i}"
            );
        }
        assert_eq!(
            server.unwrap(&wire[..36], &mut dst).err(),
            Some(CryptoError::Truncated)
        );
    }

    #[test]
    fn bidirectional_and_sha512_round_trip() {
        for d in [Digest::Sha1, Digest::Sha256, Digest::Sha512] {
            let a = TlsAuth::new(&key(), KeyDirection::Bidirectional, d);
            let plain = h("20 0102030405060708 00 00000001 aabbcc");
            let mut w = [0u8; 128];
            let wire = a
                .wrap(&plain, PacketIdLong { id: 9, time: 5 }, &mut w)
                .unwrap()
                .to_vec();
            assert_eq!(wire.len(), plain.len() + d.output_len() + 8);
            let mut out = [0u8; 128];
            assert_eq!(a.unwrap(&wire, &mut out).unwrap().1, &plain[..]);
        }
    }

    proptest::proptest! {
        #[test]
        fn unwrap_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let server = TlsAuth::new(&key(), KeyDirection::Normal, Digest::Sha512);
            let mut dst = [0u8; 128];
            let _ = server.unwrap(&b, &mut dst);
            let mut small = [0u8; 4];
            let _ = server.unwrap(&b, &mut small);
        }
    }
}
