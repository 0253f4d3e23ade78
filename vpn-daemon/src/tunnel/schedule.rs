//! Scheduled events of the loops that are not a session's own timers:
//! the `status` file rewrite and the `ifconfig-pool-persist` save.

use std::time::Duration;

use crate::config::Config;
use crate::io::clock;

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
