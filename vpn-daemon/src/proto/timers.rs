//! One timer table per session: every protocol deadline lives here, keyed by [`Timer`].
//!
//! OpenVPN scatters its deadlines over `struct event_timeout`s in many
//! structs; we keep them in one array (quinn's `TimerTable`, boringtun's
//! `TimerName`) so that `poll_timeout()` is a single `min` and a test can
//! see every armed timer at once.

use std::time::{Duration, Instant};

/// `--hand-window` default: a key state must reach ACTIVE within this (doc §2.5).
pub const DEFAULT_HAND_WINDOW: Duration = Duration::from_secs(60);
/// Client: first PUSH_REQUEST about 1 s after the key state is ACTIVE (doc §9.2).
pub const PUSH_REQUEST_DELAY: Duration = Duration::from_secs(1);
/// Client: PUSH_REQUEST is repeated every 5 s until a reply part arrives.
pub const PUSH_REQUEST_INTERVAL: Duration = Duration::from_secs(5);
/// Server: a PUSH_REQUEST within 30 s of the last PUSH_REPLY is ignored.
pub const PUSH_REPLY_REPEAT_GUARD: Duration = Duration::from_secs(30);
/// 2.6 `scheduled_exit_interval`: teardown delay after AUTH_FAILED or EXIT,
/// long enough for the reliable layer to deliver the message.
pub const SCHEDULED_EXIT_INTERVAL: Duration = Duration::from_secs(5);
/// `--reneg-sec` default.
pub const DEFAULT_RENEG_SEC: Duration = Duration::from_secs(3600);
/// `--transition-window` default: how long a lame-duck key is kept.
pub const DEFAULT_TRANSITION_WINDOW: Duration = Duration::from_secs(3600);

/// The deadlines a control session can arm.
///
/// Values are indices into [`TimerTable`]; the order is the order in which
/// [`TimerTable::expired`] reports timers that fire at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Timer {
    /// The oldest unacknowledged reliable message must be (re)sent.
    Retransmit = 0,
    /// `--hand-window`: the key state must reach ACTIVE before this instant.
    HandshakeWindow,
    /// `--ping`: nothing was written to the link for this long, send a ping.
    Ping,
    /// `--ping-restart`: nothing authenticated was received for this long.
    PingRestart,
    /// `--ping-exit`: like ping-restart, but the process ends instead.
    PingExit,
    /// `--inactive`: no tunnel traffic for this long.
    Inactive,
    /// `--reneg-sec`: start a renegotiation (soft reset).
    Reneg,
    /// `--transition-window`: the lame-duck key is dropped at this instant.
    LameDuckExpiry,
    /// Client: send (or repeat) `PUSH_REQUEST`.
    PushRequest,
    /// Server: tear the client down a few seconds after `AUTH_FAILED`.
    AuthFailedTeardown,
    /// After `EXIT` (sent or received): finish retransmits, then close.
    ExitTeardown,
    /// Client closing with `explicit-exit-notify` and no `cc-exit`: send the
    /// next OCC_EXIT data packet (one per second).
    ExitNotify,
}

impl Timer {
    /// Number of timers; the length of [`TimerTable`]'s array.
    pub const COUNT: usize = 12;

    /// Every timer, in index order.
    pub const ALL: [Timer; Self::COUNT] = [
        Timer::Retransmit,
        Timer::HandshakeWindow,
        Timer::Ping,
        Timer::PingRestart,
        Timer::PingExit,
        Timer::Inactive,
        Timer::Reneg,
        Timer::LameDuckExpiry,
        Timer::PushRequest,
        Timer::AuthFailedTeardown,
        Timer::ExitTeardown,
        Timer::ExitNotify,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// An array of optional deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// A table with no timer armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arm (or re-arm) `timer` to fire at `deadline`.
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer.index()] = Some(deadline);
    }

    /// Arm `timer` at `deadline`, or disarm it when `deadline` is `None`.
    pub fn set_opt(&mut self, timer: Timer, deadline: Option<Instant>) {
        self.deadlines[timer.index()] = deadline;
    }

    /// Disarm `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Whether `timer` is armed.
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest armed deadline: what `poll_timeout()` returns.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Whether `timer` is armed and its deadline is at or before `now`.
    pub fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|d| d <= now)
    }

    /// The timers whose deadline is at or before `now`, in [`Timer`] order.
    ///
    /// They stay armed: the handler decides whether to re-arm or stop each
    /// one (a retransmit re-arms, a ping-restart ends the session).
    pub fn expired(&self, now: Instant) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL
            .into_iter()
            .filter(move |t| self.is_expired(*t, now))
    }

    /// Disarm and return the timers expired at `now`, in [`Timer`] order.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        let fired: Vec<Timer> = self.expired(now).collect();
        for t in &fired {
            self.stop(*t);
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[allow(clippy::disallowed_methods)] // tests need one arbitrary origin
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn all_lists_every_timer_at_its_index() {
        for (i, t) in Timer::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }

    #[test]
    fn next_deadline_is_the_minimum_of_armed_timers() {
        let now = t0();
        let mut tt = TimerTable::new();
        assert_eq!(tt.next_deadline(), None);
        tt.set(Timer::Ping, now + Duration::from_secs(10));
        tt.set(Timer::Retransmit, now + Duration::from_secs(2));
        tt.set(Timer::PingRestart, now + Duration::from_secs(60));
        assert_eq!(tt.next_deadline(), Some(now + Duration::from_secs(2)));
        tt.stop(Timer::Retransmit);
        assert_eq!(tt.next_deadline(), Some(now + Duration::from_secs(10)));
    }

    #[test]
    fn expired_reports_due_timers_in_enum_order_and_take_disarms_them() {
        let now = t0();
        let mut tt = TimerTable::new();
        tt.set(Timer::PingRestart, now);
        tt.set(Timer::Retransmit, now);
        tt.set(Timer::Reneg, now + Duration::from_secs(1));
        let fired: Vec<_> = tt.expired(now).collect();
        assert_eq!(fired, vec![Timer::Retransmit, Timer::PingRestart]);
        assert_eq!(tt.take_expired(now), fired);
        assert!(!tt.is_armed(Timer::Retransmit));
        assert!(tt.is_armed(Timer::Reneg));
        assert_eq!(tt.expired(now).count(), 0);
    }
}
