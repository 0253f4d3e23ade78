//! OpenVPN's control-channel reliability layer (`reliable.c`) for one key state.
//!
//! It knows nothing about the byte layout: it deals in message packet-ids,
//! payload buffers and ack lists. The packet builder puts
//! `ack block || message_packet_id || payload` on the wire and hands back the
//! parsed ack list and message id of every incoming control packet.
//!
//! Behaviour (doc `openvpn-protocol.md` §2.5, OpenVPN 2.6):
//!
//! - Send window of [`SEND_WINDOW`] messages: a new message id must be below
//!   `lowest unacked id + 6`.
//! - Receive window of [`RECV_WINDOW`] buffers: an id is taken only if
//!   `id - next_expected < 12` (wrap-aware); farther ids are dropped **without**
//!   an ack so the sender cannot deadlock us; ids already delivered or buffered
//!   are replays: acked again, not delivered. Delivery is strictly in order.
//! - Acks are individual. Every accepted non-ACK message (replays too) queues
//!   its id, at most [`MAX_PENDING_ACKS`] pending; a control packet carries up
//!   to [`CONTROL_SEND_ACK_MAX`] and a P_ACK_V1 up to [`ACK_V1_MAX`]. Recently
//!   acked ids may be repeated in free slots (2.6's MRU list) to cover lost acks.
//! - Retransmission: first timeout = `--tls-timeout` (2 s), doubled after every
//!   (re)send with no cap, so a lost message is resent after 2, 4, 8, 16 s…;
//!   fast retransmit when [`N_ACK_RETRANSMIT`] acks for higher ids arrived.
//!
//! Drain order for the caller: after any input, call
//! [`Reliable::poll_transmit`] until `None` (each result is one P_CONTROL_* /
//! reset packet, acks included), then [`Reliable::poll_ack`] for a P_ACK_V1
//! if acks are still pending, then [`Reliable::poll_received`] until `None`
//! to feed payloads to TLS in order. [`Reliable::poll_timeout`] is the next
//! retransmission deadline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Message packet-id of a reliable control message.
pub type MessageId = u32;

/// Messages in flight (TLS_RELIABLE_N_SEND_BUFFERS).
pub const SEND_WINDOW: usize = 6;
/// Receive buffers / receive window (TLS_RELIABLE_N_REC_BUFFERS).
pub const RECV_WINDOW: usize = 12;
/// Most acks a receiver accepts in one packet, and most acks pending (RELIABLE_ACK_SIZE).
pub const MAX_PENDING_ACKS: usize = 8;
/// Most acks OpenVPN puts on a P_CONTROL_* or reset packet (CONTROL_SEND_ACK_MAX).
pub const CONTROL_SEND_ACK_MAX: usize = 4;
/// Most acks on a P_ACK_V1.
pub const ACK_V1_MAX: usize = 8;
/// Acks for higher ids that trigger a fast retransmit (N_ACK_RETRANSMIT).
pub const N_ACK_RETRANSMIT: u8 = 3;
/// Default `--tls-timeout`: the first retransmission timeout.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// What a reliable message is, so the packet builder can pick the opcode and
/// the receiver knows whether message 0 is a reset (TLV payload) or TLS bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// P_CONTROL_HARD_RESET_CLIENT_V2/V3 or _SERVER_V2 (role decides which).
    HardReset,
    /// P_CONTROL_SOFT_RESET_V1: message 0 of a renegotiated key state.
    SoftReset,
    /// P_CONTROL_V1 (or P_CONTROL_WKC_V1): a slice of the TLS byte stream.
    Control,
}

/// Tunables of one reliability layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReliableConfig {
    /// First retransmission timeout (`--tls-timeout`).
    pub initial_timeout: Duration,
    /// Repeat recently acked ids in free ack slots (2.6's `lru_acks`).
    pub repeat_recent_acks: bool,
}

impl Default for ReliableConfig {
    fn default() -> Self {
        Self {
            initial_timeout: DEFAULT_TLS_TIMEOUT,
            repeat_recent_acks: true,
        }
    }
}

/// Errors that are the caller's fault (API misuse), not the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReliableError {
    /// [`Reliable::queue_send`] with a full send window; check [`Reliable::can_send`].
    #[error("reliable send window full ({SEND_WINDOW} messages unacknowledged)")]
    SendWindowFull,
}

/// What happened to an incoming message (for counters; acks are queued internally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// New message, buffered for in-order delivery and queued for acking.
    Accepted,
    /// Already delivered or buffered: acked again, not delivered.
    Replay,
    /// `id - next_expected >= 12`: dropped without ack.
    OutOfWindow,
    /// All receive buffers busy: dropped without ack (the id is not even read).
    NoFreeBuffer,
}

impl Incoming {
    /// Whether the message id was queued (or already queued) for acknowledgement.
    pub fn is_acked(self) -> bool {
        matches!(self, Incoming::Accepted | Incoming::Replay)
    }
}

/// Up to eight message ids to acknowledge, in the order they go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckList {
    ids: [MessageId; MAX_PENDING_ACKS],
    len: u8,
}

impl AckList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Build from a parsed ack block; `None` if it has more than eight ids
    /// (2.6 refuses such a packet).
    pub fn from_slice(ids: &[MessageId]) -> Option<Self> {
        let mut list = Self::new();
        for id in ids {
            if !list.push(*id) {
                return None;
            }
        }
        Some(list)
    }

    /// Append `id`; `false` when the list is full.
    pub fn push(&mut self, id: MessageId) -> bool {
        let Some(slot) = self.ids.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = id;
        self.len += 1;
        true
    }

    /// The ids.
    pub fn as_slice(&self) -> &[MessageId] {
        &self.ids[..usize::from(self.len)]
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the list is empty (the packet then has no remote session id).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn contains(&self, id: MessageId) -> bool {
        self.as_slice().contains(&id)
    }
}

/// One control packet to send: the caller wraps it with its opcode, session
/// ids and tls-auth/tls-crypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlTransmit<'a> {
    /// Which opcode family the message uses.
    pub kind: MessageKind,
    /// The message packet-id.
    pub message_id: MessageId,
    /// The message payload (TLS bytes, or TLVs / nothing for resets).
    pub payload: &'a [u8],
    /// Acks to put in the ack block (at most [`CONTROL_SEND_ACK_MAX`]).
    pub acks: AckList,
    /// Whether this is a retransmission (for counters and logs).
    pub is_retransmit: bool,
}

/// A message delivered in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its message packet-id.
    pub message_id: MessageId,
    /// What kind of packet carried it.
    pub kind: MessageKind,
    /// Its payload.
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct SendEntry {
    id: MessageId,
    kind: MessageKind,
    payload: Vec<u8>,
    /// `None` until first sent; then when to resend.
    next_send: Option<Instant>,
    /// The timeout applied at the next send.
    timeout: Duration,
    /// Acks seen for higher ids since the last send.
    higher_acks: u8,
    sends: u32,
}

#[derive(Debug)]
struct RecvEntry {
    id: MessageId,
    kind: MessageKind,
    payload: Vec<u8>,
}

/// Wrap-aware `a < b` on message ids.
fn id_before(a: MessageId, b: MessageId) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The reliability layer of one key state.
#[derive(Debug)]
pub struct Reliable {
    cfg: ReliableConfig,
    next_send_id: MessageId,
    /// Unacked messages, ascending id.
    send: VecDeque<SendEntry>,
    next_expected: MessageId,
    /// Buffered incoming messages (in-order ready ones included), ascending id.
    recv: Vec<RecvEntry>,
    pending_acks: VecDeque<MessageId>,
    /// Most recently acked ids, newest first, for repetition.
    recent_acks: VecDeque<MessageId>,
}

impl Reliable {
    /// A fresh key state: the first outgoing message is id 0 (the reset) and
    /// the first expected incoming id is 0.
    pub fn new(cfg: ReliableConfig) -> Self {
        Self::starting_at(cfg, 0, 0)
    }

    /// The state right after the 2.6 stateless cookie exchange (doc §4.2):
    /// both resets count as sent and acknowledged, so the next outgoing id
    /// is 1 and the next expected incoming id is 1.
    pub fn after_cookie(cfg: ReliableConfig) -> Self {
        Self::starting_at(cfg, 1, 1)
    }

    fn starting_at(cfg: ReliableConfig, next_send_id: MessageId, next_expected: MessageId) -> Self {
        Self {
            cfg,
            next_send_id,
            send: VecDeque::with_capacity(SEND_WINDOW),
            next_expected,
            recv: Vec::with_capacity(RECV_WINDOW),
            pending_acks: VecDeque::with_capacity(MAX_PENDING_ACKS),
            recent_acks: VecDeque::with_capacity(MAX_PENDING_ACKS),
        }
    }

    /// The id the next queued message will get.
    pub fn next_send_id(&self) -> MessageId {
        self.next_send_id
    }

    /// The next incoming id that will be delivered.
    pub fn next_expected(&self) -> MessageId {
        self.next_expected
    }

    /// Whether a new message fits the send window.
    pub fn can_send(&self) -> bool {
        let lowest = self.send.front().map_or(self.next_send_id, |e| e.id);
        (self.next_send_id.wrapping_sub(lowest) as usize) < SEND_WINDOW
    }

    /// Number of messages queued or in flight and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.send.len()
    }

    /// Whether every message we sent has been acknowledged (ACTIVE needs it).
    pub fn all_acked(&self) -> bool {
        self.send.is_empty()
    }

    /// Queue a new message; it goes out at the next [`Self::poll_transmit`].
    pub fn queue_send(
        &mut self,
        kind: MessageKind,
        payload: Vec<u8>,
    ) -> Result<MessageId, ReliableError> {
        if !self.can_send() {
            return Err(ReliableError::SendWindowFull);
        }
        let id = self.next_send_id;
        self.next_send_id = id.wrapping_add(1);
        self.send.push_back(SendEntry {
            id,
            kind,
            payload,
            next_send: None,
            timeout: self.cfg.initial_timeout,
            higher_acks: 0,
            sends: 0,
        });
        Ok(id)
    }

    /// Process the ack block of an incoming packet (any control opcode,
    /// P_ACK_V1 included). Returns how many of our messages it newly acked.
    ///
    /// Unknown ids (already acked, never sent) are ignored, as 2.6 does.
    pub fn handle_acks(&mut self, now: Instant, acks: &[MessageId]) -> usize {
        let mut newly = 0;
        for &acked in acks {
            let Some(pos) = self.send.iter().position(|e| e.id == acked) else {
                continue;
            };
            self.send.remove(pos);
            newly += 1;
            // An ack for a higher id hints that a lower one was lost.
            for e in self.send.iter_mut() {
                if e.next_send.is_some() && id_before(e.id, acked) {
                    e.higher_acks = e.higher_acks.saturating_add(1);
                    if e.higher_acks >= N_ACK_RETRANSMIT {
                        e.next_send = Some(now);
                    }
                }
            }
        }
        newly
    }

    /// Process the message part of an incoming non-ACK control packet.
    pub fn handle_message(
        &mut self,
        message_id: MessageId,
        kind: MessageKind,
        payload: &[u8],
    ) -> Incoming {
        if self.recv.len() >= RECV_WINDOW {
            return Incoming::NoFreeBuffer;
        }
        let ahead = message_id.wrapping_sub(self.next_expected) as i32;
        if ahead >= RECV_WINDOW as i32 {
            return Incoming::OutOfWindow;
        }
        let replay = ahead < 0 || self.recv.iter().any(|e| e.id == message_id);
        if !replay {
            let pos = self
                .recv
                .iter()
                .position(|e| id_before(message_id, e.id))
                .unwrap_or(self.recv.len());
            self.recv.insert(
                pos,
                RecvEntry {
                    id: message_id,
                    kind,
                    payload: payload.to_vec(),
                },
            );
        }
        self.queue_ack(message_id);
        if replay {
            Incoming::Replay
        } else {
            Incoming::Accepted
        }
    }

    fn queue_ack(&mut self, id: MessageId) {
        if self.pending_acks.len() < MAX_PENDING_ACKS && !self.pending_acks.contains(&id) {
            self.pending_acks.push_back(id);
        }
    }

    /// Whether acks are waiting to be sent.
    pub fn has_pending_acks(&self) -> bool {
        !self.pending_acks.is_empty()
    }

    /// Take up to `max` acks: pending ones first, then (if enabled) recently
    /// acked ids to fill free slots.
    fn take_acks(&mut self, max: usize) -> AckList {
        let max = max.min(MAX_PENDING_ACKS);
        let mut list = AckList::new();
        while list.len() < max {
            let Some(id) = self.pending_acks.pop_front() else {
                break;
            };
            list.push(id);
        }
        if self.cfg.repeat_recent_acks {
            for &id in &self.recent_acks {
                if list.len() >= max {
                    break;
                }
                if !list.contains(id) {
                    list.push(id);
                }
            }
        }
        // Newest first in the MRU list; keep it at the ack array size.
        for &id in list.as_slice().iter().rev() {
            if let Some(p) = self.recent_acks.iter().position(|x| *x == id) {
                self.recent_acks.remove(p);
            }
            self.recent_acks.push_front(id);
        }
        self.recent_acks.truncate(MAX_PENDING_ACKS);
        list
    }

    /// The next message due for (re)transmission, with up to four acks.
    ///
    /// Due means: never sent, its retransmission deadline has passed, or
    /// three acks for higher ids arrived. Sending doubles its timeout.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ControlTransmit<'_>> {
        let idx = self
            .send
            .iter()
            .position(|e| e.next_send.is_none_or(|d| d <= now))?;
        let acks = self.take_acks(CONTROL_SEND_ACK_MAX);
        let e = self.send.get_mut(idx)?;
        let is_retransmit = e.sends > 0;
        e.sends = e.sends.saturating_add(1);
        e.next_send = Some(now.checked_add(e.timeout).unwrap_or(now));
        e.timeout = e.timeout.saturating_mul(2);
        e.higher_acks = 0;
        Some(ControlTransmit {
            kind: e.kind,
            message_id: e.id,
            payload: &e.payload,
            acks,
            is_retransmit,
        })
    }

    /// A P_ACK_V1 worth of acks (up to eight) if any are pending.
    ///
    /// Call after [`Self::poll_transmit`] returned `None`, so acks ride on
    /// control packets when there are any.
    #[must_use]
    pub fn poll_ack(&mut self) -> Option<AckList> {
        if self.pending_acks.is_empty() {
            return None;
        }
        Some(self.take_acks(ACK_V1_MAX))
    }

    /// The next message in order, if it has arrived.
    #[must_use]
    pub fn poll_received(&mut self) -> Option<Delivered> {
        let first = self.recv.first()?;
        if first.id != self.next_expected {
            return None;
        }
        let e = self.recv.remove(0);
        self.next_expected = self.next_expected.wrapping_add(1);
        Some(Delivered {
            message_id: e.id,
            kind: e.kind,
            payload: e.payload,
        })
    }

    /// The earliest retransmission deadline of a message already sent.
    ///
    /// Messages never sent are due at once and do not show up here: the
    /// caller drains [`Self::poll_transmit`] after every input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.send.iter().filter_map(|e| e.next_send).min()
    }

    /// Make every sent, unacked message due now (2.6 does this once when a
    /// session is first seen, to get the handshake going after the cookie).
    pub fn retransmit_all(&mut self, now: Instant) {
        for e in self.send.iter_mut() {
            if e.next_send.is_some() {
                e.next_send = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // tests need one arbitrary origin
    fn t0() -> Instant {
        Instant::now()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn rel() -> Reliable {
        Reliable::new(ReliableConfig {
            repeat_recent_acks: false,
            ..ReliableConfig::default()
        })
    }

    fn drain(r: &mut Reliable) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| r.poll_received().map(|d| d.payload)).collect()
    }

    #[test]
    fn send_window_fills_at_six_and_reopens_on_lowest_ack() {
        let now = t0();
        let mut r = rel();
        for i in 0..6u8 {
            assert_eq!(
                r.queue_send(MessageKind::Control, vec![i]),
                Ok(u32::from(i))
            );
        }
        assert!(!r.can_send());
        assert_eq!(
            r.queue_send(MessageKind::Control, vec![6]),
            Err(ReliableError::SendWindowFull)
        );
        // Acking a higher id does not move the window (it is anchored at the lowest unacked).
        assert_eq!(r.handle_acks(now, &[3]), 1);
        assert!(!r.can_send());
        assert_eq!(r.handle_acks(now, &[0]), 1);
        assert!(r.can_send());
        assert_eq!(r.queue_send(MessageKind::Control, vec![6]), Ok(6));
        assert!(!r.can_send());
    }

    #[test]
    fn empty_send_window_reports_all_acked_and_no_deadline() {
        let now = t0();
        let mut r = rel();
        assert!(r.all_acked());
        assert_eq!(r.poll_timeout(), None);
        r.queue_send(MessageKind::HardReset, vec![]).unwrap();
        assert!(!r.all_acked());
        let tx = r.poll_transmit(now).unwrap();
        assert_eq!(
            (tx.message_id, tx.kind, tx.is_retransmit),
            (0, MessageKind::HardReset, false)
        );
        assert_eq!(r.poll_timeout(), Some(now + secs(2)));
        assert_eq!(r.handle_acks(now, &[0, 0, 7]), 1);
        assert!(r.all_acked());
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn retransmission_backs_off_2_4_8_16_seconds() {
        let start = t0();
        let mut r = rel();
        r.queue_send(MessageKind::Control, b"x".to_vec()).unwrap();
        let mut now = start;
        let mut sent_at = vec![];
        for _ in 0..5 {
            let tx = r.poll_transmit(now).unwrap();
            assert_eq!(tx.message_id, 0);
            sent_at.push(now.duration_since(start).as_secs());
            assert!(r.poll_transmit(now).is_none(), "not due again at once");
            now = r.poll_timeout().unwrap();
            assert!(r.poll_transmit(now - Duration::from_millis(1)).is_none());
        }
        assert_eq!(sent_at, vec![0, 2, 6, 14, 30]);
    }

    #[test]
    fn fast_retransmit_after_three_acks_for_higher_ids() {
        let now = t0();
        let mut r = rel();
        for i in 0..5u8 {
            r.queue_send(MessageKind::Control, vec![i]).unwrap();
        }
        for _ in 0..5 {
            assert!(r.poll_transmit(now).is_some());
        }
        let later = now + Duration::from_millis(100);
        r.handle_acks(later, &[1]);
        r.handle_acks(later, &[2]);
        assert!(
            r.poll_transmit(later).is_none(),
            "two higher acks are not enough"
        );
        r.handle_acks(later, &[3]);
        let tx = r.poll_transmit(later).unwrap();
        assert_eq!((tx.message_id, tx.is_retransmit), (0, true));
        assert!(r.poll_transmit(later).is_none());
        // The resend doubled the timeout: next deadline 4 s after the resend.
        r.handle_acks(later, &[4]);
        assert_eq!(r.poll_timeout(), Some(later + secs(4)));
    }

    #[test]
    fn out_of_order_messages_are_buffered_and_delivered_in_order() {
        let mut r = rel();
        assert_eq!(
            r.handle_message(2, MessageKind::Control, b"c"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(1, MessageKind::Control, b"b"),
            Incoming::Accepted
        );
        assert!(drain(&mut r).is_empty());
        assert_eq!(
            r.handle_message(0, MessageKind::HardReset, b""),
            Incoming::Accepted
        );
        let d = r.poll_received().unwrap();
        assert_eq!((d.message_id, d.kind), (0, MessageKind::HardReset));
        assert_eq!(drain(&mut r), vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(r.next_expected(), 3);
    }

    #[test]
    fn duplicates_are_acked_again_but_not_delivered() {
        let mut r = rel();
        assert_eq!(
            r.handle_message(0, MessageKind::Control, b"a"),
            Incoming::Accepted
        );
        assert_eq!(r.poll_ack().unwrap().as_slice(), &[0]);
        assert_eq!(
            r.handle_message(0, MessageKind::Control, b"a"),
            Incoming::Replay
        );
        assert_eq!(drain(&mut r), vec![b"a".to_vec()]);
        assert_eq!(
            r.handle_message(0, MessageKind::Control, b"a"),
            Incoming::Replay
        );
        assert_eq!(r.poll_ack().unwrap().as_slice(), &[0]);
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn message_too_far_ahead_is_dropped_without_ack() {
        let mut r = rel();
        assert_eq!(
            r.handle_message(12, MessageKind::Control, b"z"),
            Incoming::OutOfWindow
        );
        assert!(!r.has_pending_acks());
        assert_eq!(
            r.handle_message(11, MessageKind::Control, b"y"),
            Incoming::Accepted
        );
        assert!(r.has_pending_acks());
    }

    #[test]
    fn full_receive_buffers_drop_without_ack() {
        let mut r = rel();
        for id in 0..12 {
            assert_eq!(
                r.handle_message(id, MessageKind::Control, b"m"),
                Incoming::Accepted
            );
        }
        let _ = r.poll_ack();
        let _ = r.poll_ack();
        assert_eq!(
            r.handle_message(3, MessageKind::Control, b"m"),
            Incoming::NoFreeBuffer
        );
        assert!(!r.has_pending_acks());
        assert!(r.poll_received().is_some());
        assert_eq!(
            r.handle_message(3, MessageKind::Control, b"m"),
            Incoming::Replay
        );
    }

    #[test]
    fn receive_window_is_wrap_aware() {
        let mut r = Reliable::starting_at(ReliableConfig::default(), 0, u32::MAX - 1);
        assert_eq!(
            r.handle_message(3, MessageKind::Control, b"d"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(u32::MAX, MessageKind::Control, b"b"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(0, MessageKind::Control, b"c"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(u32::MAX - 1, MessageKind::Control, b"a"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(1, MessageKind::Control, b"x"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(2, MessageKind::Control, b"y"),
            Incoming::Accepted
        );
        assert_eq!(
            drain(&mut r),
            [&b"a"[..], b"b", b"c", b"x", b"y", b"d"].map(|s| s.to_vec())
        );
        assert_eq!(r.next_expected(), 4);
        assert_eq!(
            r.handle_message(u32::MAX, MessageKind::Control, b"b"),
            Incoming::Replay
        );
        assert_eq!(
            r.handle_message(15, MessageKind::Control, b"q"),
            Incoming::Accepted
        );
        assert_eq!(
            r.handle_message(16, MessageKind::Control, b"q"),
            Incoming::OutOfWindow
        );
    }

    #[test]
    fn send_ids_wrap_around() {
        let now = t0();
        let mut r = Reliable::starting_at(ReliableConfig::default(), u32::MAX - 2, 0);
        let ids: Vec<_> = (0..6)
            .map(|_| r.queue_send(MessageKind::Control, vec![]).unwrap())
            .collect();
        assert_eq!(ids, vec![u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1, 2]);
        assert!(!r.can_send());
        for _ in 0..6 {
            let _ = r.poll_transmit(now).unwrap();
        }
        // Higher ids across the wrap count towards fast retransmit of MAX-2.
        r.handle_acks(now, &[0, 1, 2]);
        assert_eq!(r.poll_transmit(now).unwrap().message_id, u32::MAX - 2);
        r.handle_acks(now, &[u32::MAX - 2]);
        assert!(r.can_send());
    }

    #[test]
    fn control_packets_carry_at_most_four_acks_and_ack_v1_at_most_eight() {
        let now = t0();
        let mut r = rel();
        for id in 0..10 {
            r.handle_message(id, MessageKind::Control, b"m");
        }
        // Only eight can be pending; ids 8 and 9 are not queued.
        r.queue_send(MessageKind::Control, b"out".to_vec()).unwrap();
        let tx = r.poll_transmit(now).unwrap();
        assert_eq!(tx.acks.as_slice(), &[0, 1, 2, 3]);
        assert_eq!(r.poll_ack().unwrap().as_slice(), &[4, 5, 6, 7]);
        assert!(r.poll_ack().is_none());

        let mut r = rel();
        for id in 0..10 {
            r.handle_message(id, MessageKind::Control, b"m");
        }
        assert_eq!(r.poll_ack().unwrap().as_slice(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(r.poll_ack().is_none());
    }

    #[test]
    fn recently_acked_ids_are_repeated_in_free_slots() {
        let now = t0();
        let mut r = Reliable::new(ReliableConfig::default());
        r.handle_message(0, MessageKind::HardReset, b"");
        r.queue_send(MessageKind::HardReset, vec![]).unwrap();
        r.queue_send(MessageKind::Control, b"hello".to_vec())
            .unwrap();
        assert_eq!(r.poll_transmit(now).unwrap().acks.as_slice(), &[0]);
        // Nothing pending any more, but the MRU list repeats 0.
        assert_eq!(r.poll_transmit(now).unwrap().acks.as_slice(), &[0]);
        assert!(
            r.poll_ack().is_none(),
            "repetition alone never makes a P_ACK_V1"
        );
        r.handle_message(1, MessageKind::Control, b"x");
        assert_eq!(r.poll_ack().unwrap().as_slice(), &[1, 0]);
    }

    #[test]
    fn cookie_continuation_starts_both_directions_at_one() {
        let now = t0();
        let mut r = Reliable::after_cookie(ReliableConfig::default());
        assert_eq!(r.next_send_id(), 1);
        assert_eq!(
            r.handle_message(0, MessageKind::HardReset, b""),
            Incoming::Replay
        );
        assert_eq!(
            r.handle_message(1, MessageKind::Control, b"hello"),
            Incoming::Accepted
        );
        assert_eq!(r.poll_received().unwrap().message_id, 1);
        assert_eq!(r.queue_send(MessageKind::Control, b"sh".to_vec()), Ok(1));
        // The client's ack of our stateless reset (id 0) is harmless.
        assert_eq!(r.handle_acks(now, &[0]), 0);
        assert_eq!(r.poll_transmit(now).unwrap().message_id, 1);
    }

    #[test]
    fn retransmit_all_makes_every_sent_message_due_now() {
        let now = t0();
        let mut r = rel();
        r.queue_send(MessageKind::Control, b"a".to_vec()).unwrap();
        r.queue_send(MessageKind::Control, b"b".to_vec()).unwrap();
        assert!(r.poll_transmit(now).is_some());
        assert!(r.poll_transmit(now).is_some());
        let later = now + Duration::from_millis(300);
        assert!(r.poll_transmit(later).is_none());
        r.retransmit_all(later);
        let ids: Vec<_> =
            std::iter::from_fn(|| r.poll_transmit(later).map(|t| t.message_id)).collect();
        assert_eq!(ids, vec![0, 1]);
    }

    #[test]
    fn ack_list_refuses_more_than_eight() {
        assert!(AckList::from_slice(&[1; 8]).is_some());
        assert!(AckList::from_slice(&[1; 9]).is_none());
    }

    mod sim {
        use proptest::prelude::*;

        use super::*;

        /// A packet in flight: optional message plus acks.
        #[derive(Debug, Clone)]
        struct Pkt {
            msg: Option<(MessageId, Vec<u8>)>,
            acks: Vec<MessageId>,
        }

        struct Net {
            /// (delivery time, sequence for stable order, destination 0/1, packet)
            inflight: Vec<(Instant, u64, usize, Pkt)>,
            seq: u64,
            rng: u64,
            loss_pct: u64,
            dup_pct: u64,
            max_delay_ms: u64,
        }

        impl Net {
            fn rand(&mut self) -> u64 {
                // xorshift64*: deterministic per proptest case.
                self.rng ^= self.rng >> 12;
                self.rng ^= self.rng << 25;
                self.rng ^= self.rng >> 27;
                self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
            }

            fn send(&mut self, now: Instant, dst: usize, p: Pkt) {
                let copies = if self.rand() % 100 < self.dup_pct {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    if self.rand() % 100 < self.loss_pct {
                        continue;
                    }
                    let delay = Duration::from_millis(self.rand() % (self.max_delay_ms + 1));
                    self.seq += 1;
                    self.inflight.push((now + delay, self.seq, dst, p.clone()));
                }
            }
        }

        fn flush(r: &mut Reliable, now: Instant, net: &mut Net, dst: usize) {
            while let Some(tx) = r.poll_transmit(now) {
                let p = Pkt {
                    msg: Some((tx.message_id, tx.payload.to_vec())),
                    acks: tx.acks.as_slice().to_vec(),
                };
                net.send(now, dst, p);
            }
            if let Some(acks) = r.poll_ack() {
                net.send(
                    now,
                    dst,
                    Pkt {
                        msg: None,
                        acks: acks.as_slice().to_vec(),
                    },
                );
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            #[test]
            fn lossy_duplicating_reordering_link_delivers_each_message_once_in_order(
                seed in 1u64..u64::MAX,
                loss_pct in 0u64..40,
                dup_pct in 0u64..30,
                max_delay_ms in 0u64..3000,
                n_msgs in 1usize..40,
            ) {
                let start = t0();
                let mut now = start;
                let mut eps = [Reliable::new(ReliableConfig::default()), Reliable::new(ReliableConfig::default())];
                let mut net = Net { inflight: vec![], seq: 0, rng: seed, loss_pct, dup_pct, max_delay_ms };
                let mut to_send = [0usize; 2];
                let mut got: [Vec<Vec<u8>>; 2] = [vec![], vec![]];
                let msg = |side: usize, i: usize| format!("{side}:{i}").into_bytes();
                let mut steps = 0;
                while got[0].len() < n_msgs || got[1].len() < n_msgs || !eps[0].all_acked() || !eps[1].all_acked() {
                    steps += 1;
                    prop_assert!(steps < 20_000, "no progress");
                    for side in 0..2 {
                        while to_send[side] < n_msgs && eps[side].can_send() {
                            eps[side].queue_send(MessageKind::Control, msg(side, to_send[side])).unwrap();
                            to_send[side] += 1;
                        }
                        flush(&mut eps[side], now, &mut net, 1 - side);
                    }
                    // Advance to the next event: a delivery or a retransmit deadline.
                    let next_pkt = net.inflight.iter().map(|(t, s, _, _)| (*t, *s)).min();
                    let next_rto = eps.iter().filter_map(|e| e.poll_timeout()).min();
                    let deliver = next_pkt.filter(|(t, _)| next_rto.is_none_or(|r| *t <= r));
                    match (deliver, next_rto) {
                        (Some((t, s)), _) => {
                            now = now.max(t);
                            let i = net.inflight.iter().position(|(pt, ps, _, _)| (*pt, *ps) == (t, s)).unwrap();
                            let (_, _, dst, p) = net.inflight.swap_remove(i);
                            eps[dst].handle_acks(now, &p.acks);
                            if let Some((id, payload)) = p.msg {
                                eps[dst].handle_message(id, MessageKind::Control, &payload);
                            }
                            while let Some(d) = eps[dst].poll_received() {
                                got[dst].push(d.payload);
                            }
                        }
                        (_, Some(r)) => now = now.max(r),
                        (None, None) => {}
                    }
                }
                for (side, received) in got.iter().enumerate() {
                    let want: Vec<Vec<u8>> = (0..n_msgs).map(|i| msg(1 - side, i)).collect();
                    prop_assert_eq!(received, &want);
                }
            }
        }
    }
}
