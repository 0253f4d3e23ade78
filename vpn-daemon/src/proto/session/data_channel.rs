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
use crate::proto::data::fragment::{FragmentConfig, Fragmenter, Incoming};
use crate::proto::data::payload::{OccOpcode, Payload, classify};
use crate::proto::data::{CompressFraming, DataKey};
use crate::proto::error::{CryptoError, DropReason};
use crate::proto::wire::KeyId;
use crate::proto::wire::opcode::split_first_byte;

/// Largest packet the fragment layer joins (tun-mtu up to 9000 plus
/// framing headroom).
const SCRATCH_LEN: usize = 9216;

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
    /// `fragment`: a piece of a larger packet, held until the rest arrives.
    FragmentPending,
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
    /// `fragment`: its settings and state (boxed: large, and rare).
    fragment: Option<(FragmentConfig, Box<Fragmenter>)>,
}

impl DataChannel {
    /// No keys yet.
    pub fn new(comp: Compressor) -> Self {
        Self {
            keys: Default::default(),
            send_key: None,
            comp,
            traffic: KeyTraffic::default(),
            fragment: None,
        }
    }

    /// Turn on `fragment` (before any key is installed). `initial_seq_id`
    /// should be random, as in 2.6.
    pub fn enable_fragment(&mut self, cfg: FragmentConfig, initial_seq_id: u8) {
        let cap = cfg.capacity.min(SCRATCH_LEN);
        // A placeholder size until the first send key tells the overhead.
        let f = Fragmenter::new(cap, cfg.size as usize, initial_seq_id);
        self.fragment = Some((cfg, Box::new(f)));
        self.update_fragment_size();
    }

    /// The fragment layer, when `fragment` is on.
    pub fn fragmenter(&self) -> Option<&Fragmenter> {
        self.fragment.as_ref().map(|(_, f)| &**f)
    }

    /// Whether pieces of a fragmented packet wait for [`Self::encrypt_pending`].
    pub fn has_pending_fragment(&self) -> bool {
        self.fragment.as_ref().is_some_and(|(_, f)| f.has_pending())
    }

    /// 2.6 recomputes the fragment size when the cipher is known
    /// (`frame_calculate_dynamic` after NCP); we do when the send key changes.
    fn update_fragment_size(&mut self) {
        let Some(k) = self.send_key else { return };
        let Some(key) = self
            .keys
            .get(usize::from(k.value()))
            .and_then(Option::as_ref)
        else {
            return;
        };
        if let Some((cfg, f)) = &mut self.fragment {
            f.set_max_frag_size(cfg.max_fragment_size(key.send.overhead()));
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
    /// `packet_len` bytes: room for a joined (`fragment`) and for a
    /// decompressed packet too.
    pub fn open_buffer_len(&self, packet_len: usize) -> usize {
        let mut n = packet_len;
        if let Some((_, f)) = &self.fragment {
            n = n.max(f.capacity());
        }
        if self.comp.framing() != CompressFraming::None {
            n = n.max(self.comp.max_plain());
        }
        n
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
            self.update_fragment_size();
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
        let frag = if self.fragment.is_some() {
            crate::proto::data::fragment::HEADER_LEN
        } else {
            0
        };
        Some(
            key.send
                .seal_buffer_len(plaintext_len + self.comp.max_overhead() + frag),
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
        let framed: &[u8] = if self.comp.framing() == CompressFraming::None {
            plaintext
        } else {
            let need = plaintext.len() + self.comp.max_overhead();
            self.comp
                .frame(plaintext, now_secs)
                .ok_or(CryptoError::BufferTooSmall {
                    need,
                    have: crate::proto::data::compress::MAX_PLAINTEXT,
                })?
        };
        // compress -> fragment -> encrypt, as 2.6's encrypt_sign.
        let sealed = match &mut self.fragment {
            None => key.send.seal(framed, dst)?,
            Some((_, f)) => {
                let piece = f
                    .outgoing(framed)
                    .ok_or(CryptoError::TooLargeToFragment(framed.len()))?;
                key.send.seal(piece, dst)?
            }
        };
        self.traffic.packets += 1;
        self.traffic.bytes += plaintext.len() as u64;
        Ok(sealed)
    }

    /// Encrypt the next piece of the packet [`Self::encrypt`] cut up, if any.
    pub fn encrypt_pending<'d>(
        &mut self,
        dst: &'d mut [u8],
    ) -> Option<Result<Sealed<'d>, CryptoError>> {
        let (_, f) = self.fragment.as_mut()?;
        if !f.has_pending() {
            return None;
        }
        let Some(k) = self.send_key else {
            return Some(Err(CryptoError::UnknownKeyId(0)));
        };
        let Some(key) = self
            .keys
            .get_mut(usize::from(k.value()))
            .and_then(Option::as_mut)
        else {
            return Some(Err(CryptoError::UnknownKeyId(k.value())));
        };
        let piece = f.next_piece()?;
        Some(key.send.seal(piece, dst))
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
                .open(packet, &mut *dst, now_secs)
                .map_err(|e| e.drop_reason())?;
            match &mut self.fragment {
                None => {
                    let start = (opened.plaintext.as_ptr() as usize)
                        .checked_sub(base)
                        .ok_or(DropReason::Truncated)?;
                    (start, start + opened.plaintext.len())
                }
                // fragment_incoming runs between decryption and decompression.
                Some((_, f)) => match f.incoming(now_secs, opened.plaintext)? {
                    Incoming::Whole(w) => {
                        let start = (w.as_ptr() as usize)
                            .checked_sub(base)
                            .ok_or(DropReason::Truncated)?;
                        (start, start + w.len())
                    }
                    Incoming::Pending => return Ok(DataOutcome::FragmentPending),
                    Incoming::Complete(joined) => {
                        let n = joined.len();
                        dst.get_mut(..n)
                            .ok_or(DropReason::OversizedFragment)?
                            .copy_from_slice(joined);
                        (0, n)
                    }
                },
            }
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

#[cfg(test)]
mod fragment_tests {
    use super::*;
    use crate::proto::data::DataCipher;
    use crate::proto::data::compress::{CompAlg, CompressOptions};
    use crate::proto::data::hmac::Digest;
    use crate::proto::keys::{Key2, Role};
    use crate::proto::replay::ReplayConfig;
    use crate::proto::wire::data::PeerId;

    fn channels(cipher: DataCipher, framing: CompressFraming) -> (DataChannel, DataChannel) {
        let block = Key2::generate().unwrap();
        let cfg = FragmentConfig {
            size: 900,
            encap_overhead: None,
            capacity: 1628,
        };
        let mk = |role| {
            let alg = match framing {
                CompressFraming::StubV2 => CompAlg::StubV2,
                _ => CompAlg::Undef,
            };
            let opts = CompressOptions {
                alg,
                ..CompressOptions::stub_only_default()
            };
            let mut d = DataChannel::new(Compressor::for_tun_mtu(opts, 1500));
            d.enable_fragment(cfg, 200);
            let key = DataKey::from_key2(
                cipher,
                Digest::Sha1,
                &block,
                role,
                KeyId::from_bits(0),
                PeerId::new(7),
                ReplayConfig::default(),
            )
            .unwrap();
            d.install(key, true);
            d
        };
        (mk(Role::Client), mk(Role::Server))
    }

    /// Sends `pkt` from `a` to `b`; the wire packets and what `b` delivered.
    fn send(a: &mut DataChannel, b: &mut DataChannel, pkt: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let max = a.seal_buffer_len(pkt.len()).unwrap();
        let mut buf = vec![0u8; max];
        let mut wire = vec![a.encrypt(pkt, &mut buf, 0).unwrap().packet.to_vec()];
        while let Some(s) = a.encrypt_pending(&mut buf) {
            wire.push(s.unwrap().packet.to_vec());
        }
        let mut out = Vec::new();
        for w in &wire {
            let mut dst = vec![0u8; b.open_buffer_len(w.len())];
            match b.decrypt(w, &mut dst, 0).unwrap() {
                DataOutcome::Tun(p) => out.push(p.to_vec()),
                DataOutcome::FragmentPending => {}
                o => panic!("unexpected {o:?}"),
            }
        }
        (wire, out)
    }

    #[test]
    fn full_size_packet_crosses_in_pieces_within_the_limit() {
        for cipher in [DataCipher::Aes256Gcm, DataCipher::Aes256Cbc] {
            for framing in [CompressFraming::None, CompressFraming::StubV2] {
                let (mut c, mut s) = channels(cipher, framing);
                let pkt: Vec<u8> = (0..1500u32).map(|i| (i * 7) as u8).collect();
                let (wire, out) = send(&mut c, &mut s, &pkt);
                assert_eq!(wire.len(), 2, "{cipher:?}");
                // `fragment 900`: no UDP payload larger than 900 bytes.
                assert!(
                    wire.iter().all(|w| w.len() <= 900),
                    "{cipher:?}: {:?}",
                    wire.iter().map(Vec::len).collect::<Vec<_>>()
                );
                assert_eq!(out, vec![pkt.clone()]);
                // Small packets go whole.
                let (wire, out) = send(&mut s, &mut c, &pkt[..100]);
                assert_eq!((wire.len(), out), (1, vec![pkt[..100].to_vec()]));
            }
        }
    }

    #[test]
    fn fragmenting_and_joining_allocate_nothing() {
        let (mut c, mut s) = channels(DataCipher::Aes256Gcm, CompressFraming::None);
        let pkt = vec![0x45u8; 1500];
        let mut buf = vec![0u8; c.seal_buffer_len(pkt.len()).unwrap()];
        let mut wire = vec![vec![0u8; buf.len()]; 4];
        let mut dst = vec![0u8; s.open_buffer_len(64)];
        let mut before = 0;
        for round in 0..200 {
            if round == 50 {
                before = crate::tunnel::server_tcp::tests::allocs();
            }
            let mut lens = [0usize; 4];
            let mut n = 0;
            lens[n] = c.encrypt(&pkt, &mut buf, 0).unwrap().packet.len();
            wire[n][..lens[n]].copy_from_slice(&buf[..lens[n]]);
            n += 1;
            while let Some(Ok(p)) = c.encrypt_pending(&mut buf) {
                lens[n] = p.packet.len();
                wire[n][..lens[n]].copy_from_slice(&buf[..lens[n]]);
                n += 1;
            }
            let mut got = 0;
            for (w, l) in wire.iter().zip(lens).take(n) {
                if let Ok(DataOutcome::Tun(p)) = s.decrypt(&w[..l], &mut dst, 0) {
                    got = p.len();
                }
            }
            assert_eq!((n, got), (2, 1500));
        }
        let during = crate::tunnel::server_tcp::tests::allocs() - before;
        assert_eq!(during, 0, "{during} allocations for 150 fragmented packets");
    }

    #[test]
    fn aead_pieces_fill_the_limit_as_2_6() {
        let (c, _) = channels(DataCipher::Aes256Gcm, CompressFraming::None);
        assert_eq!(c.fragmenter().map(Fragmenter::max_frag_size), Some(872));
    }
}
