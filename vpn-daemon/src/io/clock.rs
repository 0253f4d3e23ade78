//! The single place that reads the clocks; everything else takes `now` as a parameter.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic now, for protocol timers.
#[allow(clippy::disallowed_methods)] // the one sanctioned reader
pub fn now() -> Instant {
    Instant::now()
}

/// Seconds since the Unix epoch, for the tls-auth/tls-crypt replay time field.
#[allow(clippy::disallowed_methods)] // the one sanctioned reader
pub fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Time since the Unix epoch, for log time stamps.
#[allow(clippy::disallowed_methods)] // the one sanctioned reader
pub fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
