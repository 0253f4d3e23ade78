//! The data-channel keys of one peer, selected by the key_id of each packet.
//!
//! During a renegotiation two key_ids are live at once and the two
//! directions switch at different times (section 10; seen in the
//! `udp-reneg` capture), so a receiver must pick the key from the packet,
//! never from the clock. [`RecvKeyRing::open_payload`] is the whole receive
//! pipeline of section 13: key by key_id → open (auth, then replay) →
//! compression unframing → ping / OCC / tun classification.

use super::compress::CompressFraming;
use super::crypto::RecvKey;
use super::payload::{Payload, classify};
use crate::proto::error::{CryptoError, DropReason};
use crate::proto::wire::opcode::KeyId;

/// Number of key_id values.
const SLOTS: usize = 8;

/// Receive keys by key_id.
#[derive(Debug, Default)]
pub struct RecvKeyRing {
    keys: [Option<RecvKey>; SLOTS],
}

impl RecvKeyRing {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Install a key under its key_id, returning the key it replaces.
    pub fn install(&mut self, key: RecvKey) -> Option<RecvKey> {
        let i = usize::from(key.key_id().value());
        self.keys.get_mut(i).and_then(|s| s.replace(key))
    }

    /// Remove the key of `key_id` (end of its lame-duck period).
    pub fn remove(&mut self, key_id: KeyId) -> Option<RecvKey> {
        self.keys
            .get_mut(usize::from(key_id.value()))
            .and_then(Option::take)
    }

    /// The key of `key_id`, if installed.
    pub fn get_mut(&mut self, key_id: KeyId) -> Option<&mut RecvKey> {
        self.keys
            .get_mut(usize::from(key_id.value()))
            .and_then(Option::as_mut)
    }

    /// Open a data packet with the key its key_id names, remove the
    /// compression framing and classify the plaintext. `dst` must hold
    /// [`RecvKey::open_buffer_len`] bytes.
    pub fn open_payload<'d>(
        &mut self,
        packet: &[u8],
        framing: CompressFraming,
        dst: &'d mut [u8],
        now: u64,
    ) -> Result<Payload<'d>, DropReason> {
        let first = *packet.first().ok_or(DropReason::Truncated)?;
        let kid = KeyId::from_bits(first);
        let key = self.get_mut(kid).ok_or(DropReason::UnknownKeyId)?;
        let opened = key
            .open(packet, dst, now)
            .map_err(CryptoError::drop_reason)?;
        let inner = framing.unframe(opened.plaintext)?;
        Ok(classify(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::data::crypto::{DataCipher, DataKey};
    use crate::proto::data::hmac::Digest;
    use crate::proto::data::payload::PING_MAGIC;
    use crate::proto::keys::{Key2, Role};
    use crate::proto::replay::ReplayConfig;
    use crate::proto::wire::data::PeerId;

    fn pair(kid: u8, block: &Key2) -> (DataKey, DataKey) {
        let mk = |role| {
            DataKey::from_key2(
                DataCipher::Aes256Gcm,
                Digest::Sha1,
                block,
                role,
                KeyId::from_bits(kid),
                PeerId::new(3),
                ReplayConfig::default(),
            )
            .unwrap()
        };
        (mk(Role::Client), mk(Role::Server))
    }

    #[test]
    fn selects_key_by_key_id_during_overlap() {
        let (b0, b1) = (Key2::generate().unwrap(), Key2::generate().unwrap());
        let (mut c0, s0) = pair(0, &b0);
        let (mut c1, s1) = pair(1, &b1);
        let mut ring = RecvKeyRing::new();
        assert!(ring.install(s0.recv).is_none());
        assert!(ring.install(s1.recv).is_none());
        let framing = CompressFraming::StubV2;
        let mut framed = [0u8; 64];
        let ping = framing.frame(&PING_MAGIC, &mut framed).unwrap().to_vec();
        let mut w = [0u8; 128];
        let p1 = c1.send.seal(&ping, &mut w).unwrap().packet.to_vec();
        let p0 = c0.send.seal(b"\x45\x00ip", &mut w).unwrap().packet.to_vec();
        let mut dst = [0u8; 128];
        assert_eq!(
            ring.open_payload(&p1, framing, &mut dst, 0),
            Ok(Payload::Ping)
        );
        assert_eq!(
            ring.open_payload(&p0, framing, &mut dst, 0),
            Ok(Payload::TunPacket(b"\x45\x00ip"))
        );
        assert_eq!(
            ring.open_payload(&p0, framing, &mut dst, 0),
            Err(DropReason::Replay)
        );
        ring.remove(KeyId::ZERO);
        assert_eq!(
            ring.open_payload(&p0, framing, &mut dst, 0),
            Err(DropReason::UnknownKeyId)
        );
        assert_eq!(
            ring.open_payload(&[], framing, &mut dst, 0),
            Err(DropReason::Truncated)
        );
    }

    #[test]
    fn compressed_payload_is_dropped_after_authentication() {
        let b = Key2::generate().unwrap();
        let (mut c, s) = pair(2, &b);
        let mut ring = RecvKeyRing::new();
        ring.install(s.recv);
        let mut w = [0u8; 128];
        let p = c
            .send
            .seal(&[0x66, 1, 2, 3], &mut w)
            .unwrap()
            .packet
            .to_vec();
        let mut dst = [0u8; 128];
        assert_eq!(
            ring.open_payload(&p, CompressFraming::LzoStub, &mut dst, 0),
            Err(DropReason::PeerCompresses)
        );
    }
}
