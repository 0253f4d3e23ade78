//! `connect-freq N SECONDS`: 2.6's `frequency_limit`, how many new
//! clients the server takes per window.

use std::time::Instant;

/// 2.6's `frequency_limit`: at most `max` events in each window of `per`
/// seconds (the window starts at the first event after the last one ended).
#[derive(Debug)]
pub struct FrequencyLimit {
    max: u32,
    per: std::time::Duration,
    window: Option<(Instant, u32)>,
}

impl FrequencyLimit {
    pub fn new(max: u32, per: u32) -> Self {
        Self {
            max,
            per: std::time::Duration::from_secs(u64::from(per)),
            window: None,
        }
    }

    /// Whether one more event is allowed at `now`.
    pub fn event(&mut self, now: Instant) -> bool {
        let (start, n) = match self.window {
            Some((start, n)) if now.saturating_duration_since(start) < self.per => (start, n),
            _ => (now, 0),
        };
        let n = n.saturating_add(1);
        self.window = Some((start, n));
        n <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::clock;

    #[test]
    fn connect_freq_allows_n_per_window_then_a_new_window() {
        let t0 = clock::now();
        let mut f = FrequencyLimit::new(2, 10);
        assert!(f.event(t0));
        assert!(f.event(t0 + std::time::Duration::from_secs(1)));
        assert!(!f.event(t0 + std::time::Duration::from_secs(2)));
        assert!(!f.event(t0 + std::time::Duration::from_secs(9)));
        assert!(f.event(t0 + std::time::Duration::from_secs(10)));
        assert!(f.event(t0 + std::time::Duration::from_secs(11)));
        assert!(!f.event(t0 + std::time::Duration::from_secs(12)));
    }
}
