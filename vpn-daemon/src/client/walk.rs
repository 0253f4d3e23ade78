//! The client's walk over its connection entries, as a sans-IO state
//! machine: which entry and which resolved address the next attempt uses,
//! and how long to wait before it. The driver (`p2p.rs`) resolves names,
//! opens sockets and sleeps; this only decides.
//!
//! It follows OpenVPN 2.6's `next_connection_entry` and
//! `socket_restart_pause` (`init.c`):
//!
//! - Entries are taken in order (shuffled once by `remote-random`). A
//!   resolved name's addresses are tried one per attempt before the walk
//!   moves to the next entry; moving on counts one unsuccessful attempt.
//! - "Initialization Sequence Completed" resets that count and pins the
//!   entry: the next restart reconnects to the same entry (and, unless the
//!   restart was a SIGUSR1 from outside, the same address), except when the
//!   server's RESTART carried the `N` flag.
//! - Before every attempt but the first the walk waits `connect-retry`
//!   seconds of the previous entry; once the count reaches 5 rounds over
//!   all entries the wait doubles per round, up to the entry's maximum. A
//!   `connect-timeout` (server poll timeout) skips the wait.
//! - `connect-retry-max N`: the walk gives up when the count exceeds N
//!   rounds.
//! - A SIGUSR1 from outside forgets resolved addresses unless
//!   `persist-remote-ip`; with it, each entry's addresses are kept for the
//!   whole run.

use std::{net::SocketAddr, time::Duration};

use crate::config::ConnectRetry;

/// How one attempt (or connected session) ended, as the walk needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ending {
    /// A SIGUSR1 from outside the process (OpenVPN's `SIG_SOURCE_HARD`).
    pub hard_signal: bool,
    /// No answer from the server within `connect-timeout`.
    pub poll_timeout: bool,
    /// The server's RESTART asked for the next server (flag `N`).
    pub next_server: bool,
}

/// What the next attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Wait this long first.
    pub pause: Duration,
    /// The connection entry (an index into `Config::connections`).
    pub entry: usize,
    /// The address to use; `None`: resolve the entry's host first and
    /// pass the result to [`Walk::resolved`].
    pub addr: Option<SocketAddr>,
}

/// The walk is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("All connections have been connect-retry-max ({max}) times unsuccessful, exiting")]
pub struct GiveUp {
    /// The `connect-retry-max` value.
    pub max: u32,
}

/// The walk's state.
#[derive(Debug, Clone)]
pub struct Walk {
    /// Entry indices in walking order.
    order: Vec<usize>,
    /// `connect-retry` per entry index.
    retry: Vec<ConnectRetry>,
    /// Position in `order`, `None` before the first attempt.
    current: Option<usize>,
    /// The current entry's resolved addresses and the one in use.
    addrs: Vec<SocketAddr>,
    addr: usize,
    /// `persist-remote-ip`: addresses per entry index, once resolved.
    cache: Option<Vec<Option<Vec<SocketAddr>>>>,
    /// Pinned to the current entry (OpenVPN's `no_advance`).
    no_advance: bool,
    /// Unsuccessful attempts since the last connected session.
    unsuccessful: u32,
    connect_retry_max: Option<u32>,
    first: bool,
    skip_pause: bool,
}

impl Walk {
    /// A walk over entries with these `connect-retry` values. `random`
    /// gives the random numbers of `remote-random` (`None`: in order).
    ///
    /// # Panics
    /// Never; an empty `retry` gives a walk whose every attempt gives up.
    pub fn new(
        retry: Vec<ConnectRetry>,
        random: Option<&mut dyn FnMut() -> u32>,
        connect_retry_max: Option<u32>,
        persist_remote_ip: bool,
    ) -> Self {
        let n = retry.len();
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(rand) = random
            && n > 0
        {
            // OpenVPN's own shuffle (init_connection_list): swap each slot
            // with a random one.
            for i in 0..n {
                let j = rand() as usize % n;
                order.swap(i, j);
            }
        }
        Walk {
            order,
            retry,
            current: None,
            addrs: Vec::new(),
            addr: 0,
            cache: persist_remote_ip.then(|| vec![None; n]),
            no_advance: false,
            unsuccessful: 0,
            connect_retry_max,
            first: true,
            skip_pause: false,
        }
    }

    /// The entries in walking order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Unsuccessful attempts since the last connected session.
    pub fn unsuccessful(&self) -> u32 {
        self.unsuccessful
    }

    /// The next attempt: the pause before it, the entry and, when known,
    /// the address.
    pub fn next_attempt(&mut self) -> Result<Attempt, GiveUp> {
        let n = self.order.len();
        if n == 0 {
            return Err(GiveUp { max: 0 });
        }
        let pause = self.pause();
        self.first = false;
        self.skip_pause = false;
        match self.current {
            Some(_) if self.no_advance => self.no_advance = false,
            Some(_) if self.addr + 1 < self.addrs.len() => self.addr += 1,
            _ => {
                self.addrs.clear();
                self.addr = 0;
                self.unsuccessful = self.unsuccessful.saturating_add(1);
                self.current = Some(self.current.map_or(0, |c| (c + 1) % n));
            }
        }
        if let Some(max) = self.connect_retry_max
            && u64::from(self.unsuccessful) > n as u64 * u64::from(max)
        {
            return Err(GiveUp { max });
        }
        let entry = self.entry();
        if self.addrs.is_empty()
            && let Some(cached) = self
                .cache
                .as_ref()
                .and_then(|c| c.get(entry))
                .and_then(Option::as_ref)
        {
            self.addrs = cached.clone();
            self.addr = 0;
        }
        Ok(Attempt {
            pause,
            entry,
            addr: self.addrs.get(self.addr).copied(),
        })
    }

    /// The current entry's host resolved to `addrs` (in the resolver's
    /// order, already filtered by family). Returns the address to use;
    /// `None` if there is none, which the driver reports as a failed
    /// attempt.
    pub fn resolved(&mut self, addrs: Vec<SocketAddr>) -> Option<SocketAddr> {
        let entry = self.entry();
        if let Some(slot) = self.cache.as_mut().and_then(|c| c.get_mut(entry))
            && !addrs.is_empty()
        {
            *slot = Some(addrs.clone());
        }
        self.addrs = addrs;
        self.addr = 0;
        self.addrs.first().copied()
    }

    /// "Initialization Sequence Completed".
    pub fn connected(&mut self) {
        self.unsuccessful = 0;
        self.no_advance = true;
    }

    /// The attempt or session ended and the client restarts.
    pub fn ended(&mut self, how: Ending) {
        let more = self.addr + 1 < self.addrs.len();
        if how.next_server {
            self.no_advance = false;
        }
        let keep = self.cache.is_some() || (!how.hard_signal && (more || self.no_advance));
        if !keep {
            self.addrs.clear();
            self.addr = 0;
        }
        if how.poll_timeout {
            self.skip_pause = true;
        }
    }

    fn entry(&self) -> usize {
        self.current
            .and_then(|c| self.order.get(c))
            .copied()
            .unwrap_or(0)
    }

    /// `socket_restart_pause`: the wait before the next attempt, from the
    /// previous entry's `connect-retry` and the failure count.
    fn pause(&self) -> Duration {
        if self.first || self.skip_pause {
            return Duration::ZERO;
        }
        let Some(r) = self.retry.get(self.entry()) else {
            return Duration::ZERO;
        };
        let n = self.order.len().max(1) as u64;
        let rounds = u64::from(self.unsuccessful) / n;
        let mut sec = u64::from(r.initial);
        if rounds > 4 {
            let shift = (rounds - 4).min(15);
            sec = sec.max(1) << shift;
        }
        Duration::from_secs(sec.min(u64::from(r.max)))
    }
}

/// `remote-random-hostname`: 12 random hex digits and a dot before the
/// name (OpenVPN's `hostname_randomize`, six random bytes).
pub fn randomize_hostname(host: &str, random: [u8; 6]) -> String {
    let mut s = String::with_capacity(host.len() + 13);
    for b in random {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('.');
    s.push_str(host);
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn retry(initial: u32, max: u32) -> ConnectRetry {
        ConnectRetry { initial, max }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn walk(n: usize) -> Walk {
        Walk::new(vec![retry(1, 300); n], None, None, false)
    }

    /// Takes the next attempt, resolving to `addrs` when asked.
    fn step(w: &mut Walk, addrs: &[&str]) -> (Duration, usize, SocketAddr) {
        let a = w.next_attempt().unwrap();
        let addr = match a.addr {
            Some(x) => x,
            None => w.resolved(addrs.iter().map(|s| sa(s)).collect()).unwrap(),
        };
        (a.pause, a.entry, addr)
    }

    #[test]
    fn a_remote_that_does_not_answer_moves_the_walk_to_the_next() {
        let mut w = walk(2);
        let (p, e, _) = step(&mut w, &["192.0.2.1:1194"]);
        assert_eq!((p, e), (Duration::ZERO, 0));
        w.ended(Ending::default());
        let (p, e, a) = step(&mut w, &["192.0.2.2:1194"]);
        assert_eq!((p, e, a), (Duration::from_secs(1), 1, sa("192.0.2.2:1194")));
        w.ended(Ending::default());
        // Round and round.
        assert_eq!(step(&mut w, &["192.0.2.1:1194"]).1, 0);
    }

    #[test]
    fn server_poll_timeout_moves_on_without_waiting() {
        let mut w = walk(2);
        step(&mut w, &["192.0.2.1:1194"]);
        w.ended(Ending {
            poll_timeout: true,
            ..Ending::default()
        });
        let (p, e, _) = step(&mut w, &["192.0.2.2:1194"]);
        assert_eq!((p, e), (Duration::ZERO, 1));
        // Only that once.
        w.ended(Ending::default());
        assert_eq!(step(&mut w, &["192.0.2.1:1194"]).0, Duration::from_secs(1));
    }

    #[test]
    fn every_address_of_a_name_is_tried_in_order_before_the_next_entry() {
        let mut w = walk(2);
        let names = ["192.0.2.1:1194", "[2001:db8::1]:1194", "192.0.2.3:1194"];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (_, e, a) = step(&mut w, &names);
            assert_eq!(e, 0);
            seen.push(a);
            w.ended(Ending::default());
        }
        assert_eq!(seen, names.map(sa));
        // All three addresses were one unsuccessful attempt.
        assert_eq!(w.unsuccessful(), 1);
        assert_eq!(step(&mut w, &["198.51.100.1:1194"]).1, 1);
        assert_eq!(w.unsuccessful(), 2);
    }

    #[test]
    fn connect_retry_backs_off_after_five_rounds_up_to_the_maximum() {
        let mut w = Walk::new(vec![retry(5, 60); 2], None, None, false);
        let mut pauses = Vec::new();
        for _ in 0..16 {
            let a = w.next_attempt().unwrap();
            pauses.push(a.pause.as_secs());
            if a.addr.is_none() {
                w.resolved(vec![sa("192.0.2.1:1")]);
            }
            w.ended(Ending::default());
        }
        // The pause before attempt k uses the count after k-1 attempts:
        // rounds = count / 2; above 4 rounds the base doubles per round.
        assert_eq!(
            pauses,
            [0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 10, 10, 20, 20, 40, 40]
        );
        for _ in 0..10 {
            let a = w.next_attempt().unwrap();
            if a.addr.is_none() {
                w.resolved(vec![sa("192.0.2.1:1")]);
            }
            w.ended(Ending::default());
            assert!(a.pause.as_secs() <= 60);
        }
        assert_eq!(w.next_attempt().unwrap().pause, Duration::from_secs(60));
    }

    #[test]
    fn zero_connect_retry_still_backs_off_from_one_second() {
        let mut w = Walk::new(vec![retry(0, 8)], None, None, false);
        let mut pauses = Vec::new();
        for _ in 0..9 {
            let a = w.next_attempt().unwrap();
            pauses.push(a.pause.as_secs());
            w.resolved(vec![sa("192.0.2.1:1")]);
            w.ended(Ending::default());
        }
        assert_eq!(pauses, [0, 0, 0, 0, 0, 2, 4, 8, 8]);
    }

    #[test]
    fn connect_retry_max_gives_up_after_n_rounds() {
        let mut w = Walk::new(vec![retry(1, 1); 2], None, Some(2), false);
        for _ in 0..4 {
            let a = w.next_attempt().unwrap();
            if a.addr.is_none() {
                w.resolved(vec![sa("192.0.2.1:1")]);
            }
            w.ended(Ending::default());
        }
        assert_eq!(w.next_attempt(), Err(GiveUp { max: 2 }));
    }

    #[test]
    fn a_connected_session_resets_the_count_and_pins_the_entry() {
        let mut w = Walk::new(vec![retry(1, 1); 3], None, Some(1), false);
        step(&mut w, &["192.0.2.1:1"]);
        w.ended(Ending::default());
        let (_, e, a) = step(&mut w, &["192.0.2.2:1", "192.0.2.22:1"]);
        assert_eq!(e, 1);
        w.connected();
        assert_eq!(w.unsuccessful(), 0);
        // ping-restart: same entry, same address, no re-resolve.
        w.ended(Ending::default());
        let n = w.next_attempt().unwrap();
        assert_eq!((n.entry, n.addr), (1, Some(a)));
        // That reconnect did not count; failing now moves on (to the
        // second address first) and counts.
        w.ended(Ending::default());
        assert_eq!(step(&mut w, &[]).2, sa("192.0.2.22:1"));
        assert_eq!(w.unsuccessful(), 0);
        w.ended(Ending::default());
        assert_eq!(step(&mut w, &["192.0.2.3:1"]).1, 2);
        assert_eq!(w.unsuccessful(), 1);
    }

    #[test]
    fn a_hard_sigusr1_after_connecting_resolves_the_same_entry_again() {
        let mut w = walk(2);
        step(&mut w, &["192.0.2.1:1"]);
        w.connected();
        w.ended(Ending {
            hard_signal: true,
            ..Ending::default()
        });
        let a = w.next_attempt().unwrap();
        assert_eq!((a.entry, a.addr), (0, None));
    }

    #[test]
    fn persist_remote_ip_keeps_the_address_across_sigusr1() {
        let mut w = Walk::new(vec![retry(1, 1); 2], None, None, true);
        step(&mut w, &["192.0.2.1:1"]);
        w.connected();
        w.ended(Ending {
            hard_signal: true,
            ..Ending::default()
        });
        let a = w.next_attempt().unwrap();
        assert_eq!((a.entry, a.addr), (0, Some(sa("192.0.2.1:1"))));
        // And each entry's addresses are kept for its next turn.
        w.ended(Ending::default());
        step(&mut w, &["192.0.2.2:1"]);
        w.ended(Ending::default());
        let a = w.next_attempt().unwrap();
        assert_eq!((a.entry, a.addr), (0, Some(sa("192.0.2.1:1"))));
    }

    #[test]
    fn restart_with_the_next_server_flag_moves_on() {
        let mut w = walk(2);
        step(&mut w, &["192.0.2.1:1"]);
        w.connected();
        w.ended(Ending {
            next_server: true,
            ..Ending::default()
        });
        assert_eq!(step(&mut w, &["192.0.2.2:1"]).1, 1);
    }

    #[test]
    fn remote_random_gives_every_order_over_many_seeds() {
        let mut orders = HashSet::new();
        for seed in 0u64..400 {
            let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let mut rand = || {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 33) as u32
            };
            let w = Walk::new(vec![retry(1, 1); 3], Some(&mut rand), None, false);
            let mut o = w.order().to_vec();
            orders.insert(o.clone());
            o.sort_unstable();
            assert_eq!(o, [0, 1, 2], "a permutation");
        }
        assert_eq!(orders.len(), 6, "all 3! orders appear");
        // Without remote-random the order is the file's.
        assert_eq!(walk(3).order(), [0, 1, 2]);
    }

    #[test]
    fn hostname_randomization_prefixes_twelve_hex_digits() {
        assert_eq!(
            randomize_hostname("vpn.example.org", [0xa3, 0xf0, 0x9c, 0x11, 0xd2, 0xe4]),
            "a3f09c11d2e4.vpn.example.org"
        );
    }

    #[test]
    fn an_empty_walk_gives_up() {
        let mut w = Walk::new(Vec::new(), None, None, false);
        assert!(w.next_attempt().is_err());
    }
}
