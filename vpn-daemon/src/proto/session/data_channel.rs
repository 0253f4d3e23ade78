//! The data half of a session: the data-channel keys of one peer, by
//! key_id, on the hot path.
//!
//! [`DataChannel`] owns the installed [`DataKey`]s (at most one per key_id:
//! the primary and the lame duck in practice), their packet-id senders and
//! replay windows, the compression and `fragment` framing, picks the send
//! key and turns received packets into a [`DataOutcome`]. It holds nothing
//! of the control channel and reads no clock (`now` is passed in), so it is
//! `Send` and another thread can own it: the multi-core data plane cuts the
//! session along this seam.
//!
//! It never reaches into control state. What the control half needs to know
//! (traffic seen, the last packet each way, an OCC_EXIT, a rekey that is
//! due) accumulates in a small `Copy` [`DataActivity`], which the owner
//! takes with [`DataChannel::take_activity`] and hands to
//! [`Session::absorb`](super::Session::absorb); that drives the keepalive,
//! inactivity and renegotiation timers exactly as if the session had seen
//! the packets itself.
//!
//! Nothing here allocates per packet: compression on send goes through the
//! [`Compressor`]'s scratch buffer sized once, unframing works in place and
//! a decompressed packet is written back into the caller's buffer.

use std::time::Instant;

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

/// What the data half did since the control half last looked: the input
/// of [`Session::absorb`](super::Session::absorb).
///
/// Instants are the `now` of the data operation that set them. Repeated
/// activity keeps the latest instant for the "last seen" fields (the timers
/// they restart only move forward) and the first one for the one-shot
/// triggers (`peer_exit`, `rekey_due`), which is what feeding the packets
/// one by one to the control half would have done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataActivity {
    /// Data packets received and accepted (pings and pieces included).
    pub packets_in: u64,
    /// Plaintext bytes of those packets.
    pub bytes_in: u64,
    /// Data packets sent (pings, OCC_EXIT and `fragment` pieces included).
    pub packets_out: u64,
    /// Plaintext bytes handed to encrypt.
    pub bytes_out: u64,
    /// An authenticated data packet came in (restarts `--ping-restart`).
    pub last_rx: Option<Instant>,
    /// A data packet went out (restarts the `--ping` interval).
    pub last_tx: Option<Instant>,
    /// A tun packet went through, either way (restarts `--inactive`).
    pub last_tun: Option<Instant>,
    /// The peer sent OCC_EXIT: it is leaving.
    pub peer_exit: Option<Instant>,
    /// The send key's packet id is near its end, or the newest key's
    /// traffic reached `reneg-pkts` / `reneg-bytes`: renegotiate.
    pub rekey_due: Option<Instant>,
}

impl DataActivity {
    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn sent(&mut self, now: Instant, bytes: usize) {
        self.packets_out += 1;
        self.bytes_out += bytes as u64;
        self.last_tx = Some(now);
    }

    fn received(&mut self, now: Instant, bytes: usize) {
        self.packets_in += 1;
        self.bytes_in += bytes as u64;
        self.last_rx = Some(now);
    }

    fn first(slot: &mut Option<Instant>, now: Instant) {
        slot.get_or_insert(now);
    }
}

/// `reneg-pkts` / `reneg-bytes`: traffic on the newest key that asks for a
/// renegotiation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RekeyLimits {
    /// `reneg-pkts`.
    pub packets: Option<u64>,
    /// `reneg-bytes`.
    pub bytes: Option<u64>,
}

/// The data keys of one peer.
#[derive(Debug)]
pub struct DataChannel {
    keys: [Option<DataKey>; 8],
    send_key: Option<KeyId>,
    /// A derived key we do not send with yet because the peer may not have
    /// it; the first data packet received on it proves it does (2.6: a key
    /// state is ACTIVE once its control traffic is acked or data arrives).
    send_pending: Option<KeyId>,
    comp: Compressor,
    traffic: KeyTraffic,
    limits: RekeyLimits,
    /// `fragment`: its settings and state (boxed: large, and rare).
    fragment: Option<(FragmentConfig, Box<Fragmenter>)>,
    /// The instant monotonic seconds count from (adaptive LZO, the replay
    /// time rule, fragment expiry).
    origin: Instant,
    activity: DataActivity,
}

impl DataChannel {
    /// No keys yet; `origin` is the instant monotonic seconds count from.
    pub fn new(comp: Compressor, origin: Instant) -> Self {
        Self {
            keys: Default::default(),
            send_key: None,
            send_pending: None,
            comp,
            traffic: KeyTraffic::default(),
            limits: RekeyLimits::default(),
            fragment: None,
            origin,
            activity: DataActivity::default(),
        }
    }

    /// Set `reneg-pkts` / `reneg-bytes`.
    pub fn set_rekey_limits(&mut self, limits: RekeyLimits) {
        self.limits = limits;
    }

    /// What happened since the last call; hand it to
    /// [`Session::absorb`](super::Session::absorb).
    #[must_use]
    pub fn take_activity(&mut self) -> DataActivity {
        std::mem::take(&mut self.activity)
    }

    /// What accumulated so far, without taking it.
    pub fn activity(&self) -> DataActivity {
        self.activity
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    fn limit_reached(&self) -> bool {
        let t = self.traffic;
        self.limits.packets.is_some_and(|n| t.packets >= n)
            || self.limits.bytes.is_some_and(|n| t.bytes >= n)
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

    /// The key installed for receiving only, to send with once the peer
    /// proves it has it (see [`Self::set_send_pending`]).
    pub fn send_pending(&self) -> Option<KeyId> {
        self.send_pending
    }

    /// Mark `key_id` (installed without `send`) as the next send key: the
    /// first data packet received on it switches sending to it, or the
    /// control half does with [`Self::promote_pending`] once the peer acked
    /// its key-method 2. `None` forgets a pending key.
    pub fn set_send_pending(&mut self, key_id: Option<KeyId>) {
        self.send_pending = key_id;
    }

    /// Send with the pending key now (if it is still installed).
    pub fn promote_pending(&mut self) {
        if let Some(k) = self.send_pending.take() {
            self.use_for_send(k);
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

    /// Frame (compress where configured) and encrypt the tun packet
    /// `plaintext` with the send key into `dst`. Counts as tun traffic and
    /// flags a due rekey in the [`DataActivity`].
    pub fn encrypt<'d>(
        &mut self,
        now: Instant,
        plaintext: &[u8],
        dst: &'d mut [u8],
    ) -> Result<Sealed<'d>, CryptoError> {
        let sealed = self.seal(now, plaintext, dst)?;
        self.activity.last_tun = Some(now);
        if sealed.renegotiate || self.limit_reached() {
            DataActivity::first(&mut self.activity.rekey_due, now);
        }
        Ok(sealed)
    }

    /// Encrypt a keepalive ping or OCC_EXIT message (`payload`) into `dst`:
    /// like [`Self::encrypt`], but it is neither tun traffic nor a reason to
    /// check the rekey limits (2.6 checks them on tun and link packets).
    pub fn encrypt_keepalive<'d>(
        &mut self,
        now: Instant,
        payload: &[u8],
        dst: &'d mut [u8],
    ) -> Result<Sealed<'d>, CryptoError> {
        self.seal(now, payload, dst)
    }

    fn seal<'d>(
        &mut self,
        now: Instant,
        plaintext: &[u8],
        dst: &'d mut [u8],
    ) -> Result<Sealed<'d>, CryptoError> {
        let now_secs = self.secs(now);
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
        self.activity.sent(now, plaintext.len());
        Ok(sealed)
    }

    /// Encrypt the next piece of the packet [`Self::encrypt`] cut up, if any.
    pub fn encrypt_pending<'d>(
        &mut self,
        now: Instant,
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
        let sealed = key.send.seal(piece, dst);
        if sealed.is_ok() {
            self.activity.last_tx = Some(now);
            self.activity.packets_out += 1;
        }
        Some(sealed)
    }

    /// Authenticate, decrypt, decompress and classify a P_DATA_V1/V2 packet
    /// into `dst` (which needs [`Self::open_buffer_len`] bytes for a
    /// compressed packet to fit). A packet on the pending send key makes it
    /// the send key. The [`DataActivity`] records the packet, tun traffic,
    /// an OCC_EXIT and a due rekey; a drop records nothing.
    pub fn decrypt<'d>(
        &mut self,
        now: Instant,
        packet: &[u8],
        dst: &'d mut [u8],
    ) -> Result<DataOutcome<'d>, DropReason> {
        let now_secs = self.secs(now);
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
                    Incoming::Pending => {
                        let out = DataOutcome::FragmentPending;
                        self.after_open(now, kid, 0, &out);
                        return Ok(out);
                    }
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
        let out = match classify(plain) {
            Payload::Ping => DataOutcome::Ping,
            Payload::Occ(OccOpcode::Exit, _) => DataOutcome::OccExit,
            Payload::Occ(op, _) => DataOutcome::Occ(op),
            Payload::TunPacket(p) => DataOutcome::Tun(p),
        };
        self.after_open(now, kid, plain.len(), &out);
        Ok(out)
    }

    fn after_open(&mut self, now: Instant, kid: KeyId, len: usize, out: &DataOutcome<'_>) {
        if self.send_pending == Some(kid) {
            self.promote_pending();
        }
        self.activity.received(now, len);
        match out {
            DataOutcome::Tun(_) => self.activity.last_tun = Some(now),
            DataOutcome::OccExit => DataActivity::first(&mut self.activity.peer_exit, now),
            DataOutcome::Ping | DataOutcome::Occ(_) | DataOutcome::FragmentPending => {}
        }
        if self.limit_reached() {
            DataActivity::first(&mut self.activity.rekey_due, now);
        }
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

    #[allow(clippy::disallowed_methods)] // tests need one arbitrary origin
    fn t0() -> Instant {
        Instant::now()
    }

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
            let mut d = DataChannel::new(Compressor::for_tun_mtu(opts, 1500), t0());
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
        let mut wire = vec![a.encrypt(t0(), pkt, &mut buf).unwrap().packet.to_vec()];
        while let Some(s) = a.encrypt_pending(t0(), &mut buf) {
            wire.push(s.unwrap().packet.to_vec());
        }
        let mut out = Vec::new();
        for w in &wire {
            let mut dst = vec![0u8; b.open_buffer_len(w.len())];
            match b.decrypt(t0(), w, &mut dst).unwrap() {
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
        let now = t0();
        let mut before = 0;
        for round in 0..200 {
            if round == 50 {
                before = crate::test_alloc::allocs();
            }
            let mut lens = [0usize; 4];
            let mut n = 0;
            lens[n] = c.encrypt(now, &pkt, &mut buf).unwrap().packet.len();
            wire[n][..lens[n]].copy_from_slice(&buf[..lens[n]]);
            n += 1;
            while let Some(Ok(p)) = c.encrypt_pending(now, &mut buf) {
                lens[n] = p.packet.len();
                wire[n][..lens[n]].copy_from_slice(&buf[..lens[n]]);
                n += 1;
            }
            let mut got = 0;
            for (w, l) in wire.iter().zip(lens).take(n) {
                if let Ok(DataOutcome::Tun(p)) = s.decrypt(now, &w[..l], &mut dst) {
                    got = p.len();
                }
            }
            assert_eq!((n, got), (2, 1500));
        }
        let during = crate::test_alloc::allocs() - before;
        assert_eq!(during, 0, "{during} allocations for 150 fragmented packets");
    }

    #[test]
    fn aead_pieces_fill_the_limit_as_2_6() {
        let (c, _) = channels(DataCipher::Aes256Gcm, CompressFraming::None);
        assert_eq!(c.fragmenter().map(Fragmenter::max_frag_size), Some(872));
    }

    #[test]
    fn data_channel_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<DataChannel>();
        send::<DataActivity>();
    }

    #[test]
    fn activity_reports_traffic_and_the_first_exit() {
        let (mut c, mut s) = channels(DataCipher::Aes256Gcm, CompressFraming::None);
        let (t1, t2) = (t0(), t0() + std::time::Duration::from_secs(3));
        let mut buf = vec![0u8; 2048];
        let mut dst = vec![0u8; 2048];
        let n = c.encrypt(t1, &[0x45; 100], &mut buf).unwrap().packet.len();
        s.decrypt(t1, &buf[..n], &mut dst).unwrap();
        let mut exit = crate::proto::data::payload::OCC_MAGIC.to_vec();
        exit.push(OccOpcode::Exit.as_u8());
        for t in [t1, t2] {
            let n = c
                .encrypt_keepalive(t, &exit, &mut buf)
                .unwrap()
                .packet
                .len();
            assert_eq!(s.decrypt(t, &buf[..n], &mut dst), Ok(DataOutcome::OccExit));
        }
        let a = s.take_activity();
        assert_eq!((a.packets_in, a.bytes_in), (3, 134));
        assert_eq!(
            (a.last_rx, a.last_tun, a.peer_exit),
            (Some(t2), Some(t1), Some(t1))
        );
        assert_eq!((a.packets_out, a.last_tx, a.rekey_due), (0, None, None));
        assert!(s.take_activity().is_empty());
        let a = c.take_activity();
        assert_eq!((a.packets_out, a.bytes_out, a.last_tx), (3, 134, Some(t2)));
        assert_eq!(a.last_tun, Some(t1), "keepalives are not tun traffic");
    }
}
