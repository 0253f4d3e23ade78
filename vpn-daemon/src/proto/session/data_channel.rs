//! The data-channel keys of one peer, by key_id: the hot path.
//!
//! [`DataChannel`] owns the installed [`DataKey`]s (at most one per key_id:
//! the primary and the lame duck in practice), picks the send key and
//! turns received packets into a [`DataOutcome`]. It holds nothing of the
//! control channel, so a later step can hand it (or a clone of its keys) to
//! a per-core worker when the session reports `Event::KeysReady`.
//!
//! Nothing here allocates per packet: compression on send goes through the
//! [`Compressor`]'s scratch buffer sized once, unframing works in place and
//! a decompressed packet is written back into the caller's buffer.

use crate::proto::data::compress::Compressor;
use crate::proto::data::crypto::Sealed;
use crate::proto::data::payload::{OccOpcode, Payload, classify};
use crate::proto::data::{CompressFraming, DataKey};
use crate::proto::error::{CryptoError, DropReason};
use crate::proto::wire::KeyId;
use crate::proto::wire::opcode::split_first_byte;

/// What a received data packet turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome<'d> {
    /// A packet for the tun device.
    Tun(&'d [u8]),
    /// A keepalive ping (already accounted for; nothing to write).
    Ping,
    /// OCC_EXIT: the peer is leaving.
    OccExit,
    /// Another OCC message; ignored (2.6 does not use them in TLS mode).
    Occ(OccOpcode),
}

/// Traffic on the newest key since it was installed (reneg-bytes / reneg-pkts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTraffic {
    /// Packets sent and received.
    pub packets: u64,
    /// Plaintext bytes sent and received.
    pub bytes: u64,
}

/// The data keys of one peer.
#[derive(Debug)]
pub struct DataChannel {
    keys: [Option<DataKey>; 8],
    send_key: Option<KeyId>,
    comp: Compressor,
    traffic: KeyTraffic,
}

impl DataChannel {
    /// No keys yet.
    pub fn new(comp: Compressor) -> Self {
        Self {
            keys: Default::default(),
            send_key: None,
            comp,
            traffic: KeyTraffic::default(),
        }
    }

    /// The compression context (framing, counters).
    pub fn compressor(&self) -> &Compressor {
        &self.comp
    }

    /// Replace the compression context (a pushed `comp-lzo` / `compress`).
    pub fn set_compressor(&mut self, comp: Compressor) {
        self.comp = comp;
    }

    /// Bytes the `dst` of [`Self::decrypt`] needs for a packet of
    /// `packet_len` bytes: room for the decompressed packet too.
    pub fn open_buffer_len(&self, packet_len: usize) -> usize {
        if self.comp.framing() == CompressFraming::None {
            packet_len
        } else {
            packet_len.max(self.comp.max_plain())
        }
    }

    /// Install a freshly derived key for receiving; with `send` it also
    /// becomes the send key (see [`Self::use_for_send`]).
    pub fn install(&mut self, key: DataKey, send: bool) {
        let id = key.send.key_id();
        if let Some(slot) = self.keys.get_mut(usize::from(id.value())) {
            *slot = Some(key);
            if send {
                self.use_for_send(id);
            }
        }
    }

    /// Send with the key of `key_id` from now on (if installed).
    pub fn use_for_send(&mut self, key_id: KeyId) {
        if self.has_key(key_id) && self.send_key != Some(key_id) {
            self.send_key = Some(key_id);
            self.traffic = KeyTraffic::default();
        }
    }

    /// Drop the key of `key_id` (lame duck expired or replaced).
    pub fn remove(&mut self, key_id: KeyId) {
        if let Some(slot) = self.keys.get_mut(usize::from(key_id.value())) {
            *slot = None;
        }
        if self.send_key == Some(key_id) {
            self.send_key = None;
        }
    }

    /// Whether a key for `key_id` is installed.
    pub fn has_key(&self, key_id: KeyId) -> bool {
        self.keys
            .get(usize::from(key_id.value()))
            .is_some_and(Option::is_some)
    }

    /// The key id data is sent with.
    pub fn send_key_id(&self) -> Option<KeyId> {
        self.send_key
    }

    /// Traffic on the newest key since it was installed.
    pub fn traffic(&self) -> KeyTraffic {
        self.traffic
    }

    /// Bytes `dst` needs to encrypt `plaintext_len` bytes with the send key.
    pub fn seal_buffer_len(&self, plaintext_len: usize) -> Option<usize> {
        let k = self.send_key?;
        let key = self.keys.get(usize::from(k.value()))?.as_ref()?;
        Some(
            key.send
                .seal_buffer_len(plaintext_len + self.comp.max_overhead()),
        )
    }

    /// Frame (compress where configured) and encrypt `plaintext` with the
    /// send key into `dst`; `now_secs` is monotonic seconds (adaptive LZO).
    pub fn encrypt<'d>(
        &mut self,
        plaintext: &[u8],
        dst: &'d mut [u8],
        now_secs: u64,
    ) -> Result<Sealed<'d>, CryptoError> {
        let k = self.send_key.ok_or(CryptoError::UnknownKeyId(0))?;
        let key = self
            .keys
            .get_mut(usize::from(k.value()))
            .and_then(Option::as_mut)
            .ok_or(CryptoError::UnknownKeyId(k.value()))?;
        let sealed = if self.comp.framing() == CompressFraming::None {
            key.send.seal(plaintext, dst)?
        } else {
            let need = plaintext.len() + self.comp.max_overhead();
            let framed =
                self.comp
                    .frame(plaintext, now_secs)
                    .ok_or(CryptoError::BufferTooSmall {
                        need,
                        have: crate::proto::data::compress::MAX_PLAINTEXT,
                    })?;
            key.send.seal(framed, dst)?
        };
        self.traffic.packets += 1;
        self.traffic.bytes += plaintext.len() as u64;
        Ok(sealed)
    }

    /// Authenticate, decrypt, decompress and classify a P_DATA_V1/V2 packet
    /// into `dst` (which needs [`Self::open_buffer_len`] bytes for a
    /// compressed packet to fit). `now_secs` is monotonic seconds (replay
    /// time rule).
    pub fn decrypt<'d>(
        &mut self,
        packet: &[u8],
        dst: &'d mut [u8],
        now_secs: u64,
    ) -> Result<DataOutcome<'d>, DropReason> {
        let first = *packet.first().ok_or(DropReason::Truncated)?;
        let (op, kid) = split_first_byte(first).map_err(|e| e.drop_reason())?;
        if !op.is_data() {
            return Err(DropReason::UnexpectedOpcode);
        }
        let newest = self.send_key == Some(kid);
        let key = self
            .keys
            .get_mut(usize::from(kid.value()))
            .and_then(Option::as_mut)
            .ok_or(DropReason::UnknownKeyId)?;
        let base = dst.as_ptr() as usize;
        let (start, end) = {
            let opened = key
                .recv
                .open(packet, dst, now_secs)
                .map_err(|e| e.drop_reason())?;
            let start = (opened.plaintext.as_ptr() as usize)
                .checked_sub(base)
                .ok_or(DropReason::Truncated)?;
            (start, start + opened.plaintext.len())
        };
        let (a, b) = self.comp.unframe(dst, start, end)?;
        let dst: &'d [u8] = dst;
        let plain = dst.get(a..b).ok_or(DropReason::Truncated)?;
        if newest {
            self.traffic.packets += 1;
            self.traffic.bytes += plain.len() as u64;
        }
        Ok(match classify(plain) {
            Payload::Ping => DataOutcome::Ping,
            Payload::Occ(OccOpcode::Exit, _) => DataOutcome::OccExit,
            Payload::Occ(op, _) => DataOutcome::Occ(op),
            Payload::TunPacket(p) => DataOutcome::Tun(p),
        })
    }
}
