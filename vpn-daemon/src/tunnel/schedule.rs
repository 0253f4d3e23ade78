//! Scheduled events (OpenVPN's `schedule.c`): when each client's session
//! next needs its timers run, kept in a heap keyed by deadline and peer so
//! a wake-up costs the due clients only, not a scan of every client; and
//! the loop's own periodic work (the `status` file, the
//! `ifconfig-pool-persist` save).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::io::clock;
use crate::server::peers::PeerId;

/// The `status FILE N` timer (a never-ticking one without `status`).
pub(crate) fn status_interval(cfg: &Config) -> tokio::time::Interval {
    let secs = cfg.status.as_ref().map_or(3600, |s| s.interval.max(1));
    let mut i = tokio::time::interval(Duration::from_secs(u64::from(secs)));
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// The `ifconfig-pool-persist FILE N` timer (never ticks when N is 0 or unset).
pub(crate) fn persist_interval(cfg: &Config) -> tokio::time::Interval {
    let secs = cfg.ifconfig_pool_persist.as_ref().map_or(0, |p| p.seconds);
    let period = if secs == 0 {
        86_400 * 365
    } else {
        u64::from(secs)
    };
    let mut i = tokio::time::interval_at(
        tokio::time::Instant::from_std(clock::now()) + Duration::from_secs(period),
        Duration::from_secs(period),
    );
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// Per-peer deadlines in a min-heap. Entries are never updated in place:
/// a deadline that moves later leaves its earlier entry, which pops,
/// finds the session not yet due and is set again ([`Self::set`]); a
/// deadline that moves earlier pushes a new entry. `at` says which entry
/// of a peer is the live one, so stale entries are skipped. In steady
/// state (deadlines moving later as traffic flows) nothing is pushed.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, PeerId)>>,
    at: HashMap<PeerId, Instant>,
}

impl Schedule {
    /// `id` next needs attention at `deadline` (`None`: never, it is gone
    /// or closed).
    pub fn set(&mut self, id: PeerId, deadline: Option<Instant>) {
        let Some(t) = deadline else {
            self.at.remove(&id);
            return;
        };
        match self.at.get(&id) {
            // An entry at or before `t` will wake us; it re-checks then.
            Some(&cur) if cur <= t => {}
            _ => {
                self.at.insert(id, t);
                self.heap.push(Reverse((t, id)));
            }
        }
    }

    /// The earliest live deadline.
    pub fn earliest(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, id))) = self.heap.peek() {
            if self.at.get(&id) == Some(&t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// The next peer whose deadline is at or before `now`, taken off the
    /// schedule (the caller runs its timers and sets its next deadline).
    pub fn pop_due(&mut self, now: Instant) -> Option<PeerId> {
        while let Some(&Reverse((t, id))) = self.heap.peek() {
            if t > now {
                return None;
            }
            self.heap.pop();
            if self.at.get(&id) == Some(&t) {
                self.at.remove(&id);
                return Some(id);
            }
        }
        None
    }

    /// Peers on the schedule.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether no peer is on the schedule.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_peers_come_out_in_deadline_order_and_stale_entries_are_skipped() {
        let t0 = clock::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut q = Schedule::default();
        q.set(1, Some(s(10)));
        q.set(2, Some(s(5)));
        q.set(3, Some(s(7)));
        // Later than its entry: the entry stays (it re-checks when due).
        q.set(2, Some(s(8)));
        // Earlier: a new entry, the old one goes stale.
        q.set(1, Some(s(3)));
        // Gone: its entry goes stale.
        q.set(3, None);
        assert_eq!(q.earliest(), Some(s(3)));
        assert_eq!(q.pop_due(s(4)), Some(1));
        assert_eq!(q.pop_due(s(4)), None);
        assert_eq!(q.earliest(), Some(s(5)));
        assert_eq!(q.pop_due(s(20)), Some(2));
        // 1's stale entry at 10 and 3's at 7 are skipped.
        assert_eq!(q.pop_due(s(20)), None);
        assert_eq!(q.earliest(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_popped_peer_is_scheduled_again_by_set() {
        let t0 = clock::now();
        let mut q = Schedule::default();
        q.set(4, Some(t0));
        assert_eq!(q.pop_due(t0), Some(4));
        q.set(4, Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(t0), None);
        assert_eq!(q.pop_due(t0 + Duration::from_secs(1)), Some(4));
    }
}
