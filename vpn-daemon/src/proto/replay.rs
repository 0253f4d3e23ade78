//! Replay protection: the sliding window of OpenVPN's `packet_id.c` (sections 3.4 and 7.1).
//!
//! One algorithm serves both forms of packet id:
//!
//! - the **long form** `(id, time)` of tls-auth / tls-crypt control packets,
//!   where `time` is the sender's start time and a newer time restarts the
//!   window;
//! - the **short form** `id` of data packets, which is the long form with the
//!   time fixed at 0.
//!
//! Use it in two steps, like boringtun's `ReceivingKeyCounterValidator`:
//! [`ReplayWindow::will_accept`] is cheap and does not change anything, so it
//! can run before authentication to shed obvious replays; after the packet
//! authenticated, [`ReplayWindow::mark`] checks again and records the id.
//! Only `mark` is authoritative.
//!
//! `now` is monotonic seconds from any origin, passed in by the caller (the
//! protocol core never reads a clock). It only matters for the time rule
//! (`replay-window n t`): a reordered packet is refused once any packet
//! with an id at least as high as its own arrived more than `t` seconds ago.
//! OpenVPN applies that rule lazily (every few seconds); we apply it exactly,
//! which can only refuse a little earlier.

/// Default backtrack (`replay-window` n).
pub const DEFAULT_BACKTRACK: u32 = 64;
/// Default time backtrack in seconds (`replay-window` t).
pub const DEFAULT_TIME_BACKTRACK: u64 = 15;
/// Largest backtrack OpenVPN accepts (`MAX_SEQ_BACKTRACK`).
pub const MAX_BACKTRACK: u32 = 65_536;

/// A long-form packet id as carried by tls-auth and tls-crypt packets.
///
/// ```text
/// +----------------+----------------+
/// | id (u32, BE)   | time (u32, BE) |
/// +----------------+----------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketIdLong {
    /// Sequence number, starting at 1.
    pub id: u32,
    /// Unix time at which the sender started its counter.
    pub time: u32,
}

impl PacketIdLong {
    /// Encoded length.
    pub const LEN: usize = 8;

    /// Decode from 8 bytes.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Self {
            id: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            time: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encode to 8 bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.id.to_be_bytes());
        b[4..].copy_from_slice(&self.time.to_be_bytes());
        b
    }
}

/// The `replay-window n t` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    /// How far back (in ids) a reordered packet may arrive. 0 selects the
    /// strict sequential mode OpenVPN used for TCP before `IV_TCPNL`.
    pub backtrack: u32,
    /// How long (seconds) a reordered packet may lag behind higher ids.
    pub time_backtrack: u64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            backtrack: DEFAULT_BACKTRACK,
            time_backtrack: DEFAULT_TIME_BACKTRACK,
        }
    }
}

impl ReplayConfig {
    /// `replay-window n t`; `n` is clamped to [`MAX_BACKTRACK`].
    pub fn new(backtrack: u32, time_backtrack: u64) -> Self {
        Self {
            backtrack: backtrack.min(MAX_BACKTRACK),
            time_backtrack,
        }
    }
}

/// Why [`ReplayWindow`] refused an id (all are counted as `DropReason::Replay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Id 0 is never valid.
    Zero,
    /// The id was already seen.
    Duplicate,
    /// Further back than the window reaches.
    TooOld,
    /// A higher id arrived more than `t` seconds ago.
    Expired,
    /// The time field went backwards.
    TimeBacktrack,
    /// Strict mode: not the next id in sequence.
    OutOfOrder,
}

/// Receive-side replay window, one per key and direction.
///
/// Slot `k` of the ring describes id `high - k`: `None` if not yet seen,
/// `Some(t)` if seen at local time `t`.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    cfg: ReplayConfig,
    /// Highest time field seen (long form); 0 for the short form.
    time: u32,
    /// Highest id seen at `time`; 0 = nothing seen yet.
    high: u32,
    /// Ring of `backtrack` entries; `head` is the slot of `high`.
    seen: Box<[Option<u64>]>,
    head: usize,
}

impl ReplayWindow {
    /// Empty window with the given settings. Allocates once, here.
    pub fn new(cfg: ReplayConfig) -> Self {
        let n = cfg.backtrack.min(MAX_BACKTRACK) as usize;
        Self {
            cfg,
            time: 0,
            high: 0,
            seen: vec![None; n].into_boxed_slice(),
            head: 0,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> ReplayConfig {
        self.cfg
    }

    /// Highest id recorded so far (0 if none).
    pub fn highest(&self) -> u32 {
        self.high
    }

    fn slot(&self, k: usize) -> Option<u64> {
        let n = self.seen.len();
        if k >= n {
            return None;
        }
        self.seen.get((self.head + n - k) % n).copied().flatten()
    }

    /// Would `pid` be accepted at `now`? Changes nothing; cheap.
    pub fn will_accept(&self, pid: PacketIdLong, now: u64) -> Result<(), ReplayError> {
        if pid.id == 0 {
            return Err(ReplayError::Zero);
        }
        if pid.time < self.time {
            return Err(ReplayError::TimeBacktrack);
        }
        if self.seen.is_empty() {
            // Strict mode (backtrack 0): ids follow each other without gaps.
            return if pid.time > self.time {
                if pid.id == 1 {
                    Ok(())
                } else {
                    Err(ReplayError::OutOfOrder)
                }
            } else if self.high == 0 || Some(pid.id) == self.high.checked_add(1) {
                Ok(())
            } else {
                Err(ReplayError::OutOfOrder)
            };
        }
        if pid.time > self.time || pid.id > self.high {
            return Ok(());
        }
        let diff = (self.high - pid.id) as usize;
        if diff >= self.seen.len() {
            return Err(ReplayError::TooOld);
        }
        if self.slot(diff).is_some() {
            return Err(ReplayError::Duplicate);
        }
        // Any id in [pid.id, high] that arrived more than t seconds ago
        // closes the window below it (OpenVPN's packet_id_reap).
        for k in 0..diff {
            if let Some(t) = self.slot(k)
                && t.saturating_add(self.cfg.time_backtrack) < now
            {
                return Err(ReplayError::Expired);
            }
        }
        Ok(())
    }

    /// Check again and record `pid`; call only after the packet authenticated.
    pub fn mark(&mut self, pid: PacketIdLong, now: u64) -> Result<(), ReplayError> {
        self.will_accept(pid, now)?;
        let n = self.seen.len();
        if n == 0 {
            self.time = pid.time;
            self.high = pid.id;
            return Ok(());
        }
        if pid.time > self.time {
            self.time = pid.time;
            self.high = 0;
            self.seen.fill(None);
        }
        if pid.id > self.high {
            let shift = (pid.id - self.high) as usize;
            if shift >= n {
                self.seen.fill(None);
            } else {
                for _ in 0..shift {
                    self.head = (self.head + 1) % n;
                    if let Some(s) = self.seen.get_mut(self.head) {
                        *s = None;
                    }
                }
            }
            self.high = pid.id;
        }
        let diff = (self.high - pid.id) as usize;
        let idx = (self.head + n - diff) % n;
        if let Some(s) = self.seen.get_mut(idx) {
            *s = Some(now);
        }
        Ok(())
    }

    /// Short-form convenience: [`Self::will_accept`] with time 0.
    pub fn will_accept_short(&self, id: u32, now: u64) -> Result<(), ReplayError> {
        self.will_accept(PacketIdLong { id, time: 0 }, now)
    }

    /// Short-form convenience: [`Self::mark`] with time 0.
    pub fn mark_short(&mut self, id: u32, now: u64) -> Result<(), ReplayError> {
        self.mark(PacketIdLong { id, time: 0 }, now)
    }
}

/// Sender of long-form packet ids for tls-auth / tls-crypt (section 3.4).
///
/// `time` is fixed when the sender is created; ids start at `start + 1`
/// (1 normally, `0x0F000001` for a tls-crypt-v2 client signalling early
/// negotiation). Rolling over is refused rather than wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketIdLongSender {
    id: u32,
    time: u32,
}

impl PacketIdLongSender {
    /// Sender starting at id `start + 1` with the given unix time.
    pub fn new(start: u32, unix_time: u32) -> Self {
        Self {
            id: start,
            time: unix_time,
        }
    }

    /// Next packet id, or `None` once the 32-bit space is used up.
    pub fn next_id(&mut self) -> Option<PacketIdLong> {
        self.id = self.id.checked_add(1)?;
        Some(PacketIdLong {
            id: self.id,
            time: self.time,
        })
    }

    /// Last id handed out (0 if none).
    pub fn last(&self) -> PacketIdLong {
        PacketIdLong {
            id: self.id,
            time: self.time,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn pid(id: u32, time: u32) -> PacketIdLong {
        PacketIdLong { id, time }
    }

    #[test]
    fn rejects_zero_and_duplicates() {
        let mut w = ReplayWindow::new(ReplayConfig::default());
        assert_eq!(w.mark_short(0, 0), Err(ReplayError::Zero));
        assert_eq!(w.mark_short(1, 0), Ok(()));
        assert_eq!(w.mark_short(1, 0), Err(ReplayError::Duplicate));
    }

    #[test]
    fn accepts_reordered_within_window() {
        let mut w = ReplayWindow::new(ReplayConfig::default());
        w.mark_short(10, 0).unwrap();
        w.mark_short(5, 0).unwrap();
        assert_eq!(w.will_accept_short(5, 0), Err(ReplayError::Duplicate));
        w.mark_short(9, 0).unwrap();
        w.mark_short(73, 0).unwrap();
        assert_eq!(w.will_accept_short(10, 0), Err(ReplayError::Duplicate));
        assert_eq!(w.will_accept_short(11, 0), Ok(()));
        assert_eq!(w.will_accept_short(9, 0), Err(ReplayError::TooOld));
        w.mark_short(200, 0).unwrap();
        assert_eq!(w.will_accept_short(137, 0), Ok(()));
        assert_eq!(w.will_accept_short(136, 0), Err(ReplayError::TooOld));
    }

    #[test]
    fn rejects_reordered_after_time_backtrack() {
        let mut w = ReplayWindow::new(ReplayConfig::new(64, 15));
        w.mark_short(1, 100).unwrap();
        w.mark_short(3, 100).unwrap();
        assert_eq!(w.will_accept_short(2, 115), Ok(()));
        assert_eq!(w.will_accept_short(2, 116), Err(ReplayError::Expired));
        // A newer id is unaffected.
        assert_eq!(w.mark_short(4, 200), Ok(()));
    }

    #[test]
    fn newer_time_restarts_window_and_older_time_is_refused() {
        let mut w = ReplayWindow::new(ReplayConfig::default());
        w.mark(pid(50, 1000), 0).unwrap();
        assert_eq!(
            w.will_accept(pid(1, 999), 0),
            Err(ReplayError::TimeBacktrack)
        );
        w.mark(pid(1, 1001), 0).unwrap();
        assert_eq!(w.will_accept(pid(2, 1001), 0), Ok(()));
        assert_eq!(
            w.will_accept(pid(60, 1000), 0),
            Err(ReplayError::TimeBacktrack)
        );
    }

    #[test]
    fn strict_mode_requires_sequence() {
        let mut w = ReplayWindow::new(ReplayConfig::new(0, 15));
        w.mark_short(1, 0).unwrap();
        assert_eq!(w.mark_short(3, 0), Err(ReplayError::OutOfOrder));
        w.mark_short(2, 0).unwrap();
        assert_eq!(w.mark_short(2, 0), Err(ReplayError::OutOfOrder));
    }

    #[test]
    fn long_sender_starts_after_start_and_never_wraps() {
        let mut s = PacketIdLongSender::new(0x0F00_0000, 7);
        assert_eq!(s.next_id(), Some(pid(0x0F00_0001, 7)));
        let mut s = PacketIdLongSender::new(u32::MAX - 1, 7);
        assert_eq!(s.next_id(), Some(pid(u32::MAX, 7)));
        assert_eq!(s.next_id(), None);
    }

    /// The rules of section 3.4 written as plainly as possible.
    #[derive(Default)]
    struct Model {
        time: u32,
        high: u32,
        seen: HashMap<u32, u64>,
    }

    impl Model {
        fn accept(&self, p: PacketIdLong, now: u64, n: u32, t: u64) -> bool {
            if p.id == 0 || p.time < self.time {
                return false;
            }
            if p.time > self.time || p.id > self.high {
                return true;
            }
            if self.high - p.id >= n || self.seen.contains_key(&p.id) {
                return false;
            }
            !self
                .seen
                .iter()
                .any(|(&id, &at)| id >= p.id && id <= self.high && at + t < now)
        }

        fn mark(&mut self, p: PacketIdLong, now: u64) {
            if p.time > self.time {
                self.time = p.time;
                self.high = 0;
                self.seen.clear();
            }
            self.high = self.high.max(p.id);
            self.seen.insert(p.id, now);
        }
    }

    proptest! {
        #[test]
        fn window_matches_model(
            n in 1u32..20,
            t in 0u64..5,
            ops in proptest::collection::vec((1u32..60, 0u32..3, 0u64..3), 1..200),
        ) {
            let mut w = ReplayWindow::new(ReplayConfig::new(n, t));
            let mut m = Model::default();
            let mut now = 0u64;
            for (id, time, dt) in ops {
                now += dt;
                let p = pid(id, time);
                let expect = m.accept(p, now, n, t);
                prop_assert_eq!(w.will_accept(p, now).is_ok(), expect);
                let got = w.mark(p, now).is_ok();
                prop_assert_eq!(got, expect);
                if got {
                    m.mark(p, now);
                }
            }
        }
    }
}
