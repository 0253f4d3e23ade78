//! The single place that reads the clocks; everything else takes `now` as a parameter.
//! Also how OpenVPN writes a time: the local time zone and `time_string`.

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

/// Maps Unix time to the local UTC offset, in seconds east of UTC.
pub trait TimeZone {
    /// Offset in effect at `unix` seconds.
    fn offset_at(&self, unix: i64) -> i32;
}

/// UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utc;

impl TimeZone for Utc {
    fn offset_at(&self, _unix: i64) -> i32 {
        0
    }
}

/// A fixed offset (seconds east of UTC).
#[derive(Debug, Clone, Copy)]
pub struct FixedOffset(pub i32);

impl TimeZone for FixedOffset {
    fn offset_at(&self, _unix: i64) -> i32 {
        self.0
    }
}

/// The process's local time zone (`localtime_r`), as OpenVPN prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLocalTime;

impl TimeZone for SystemLocalTime {
    fn offset_at(&self, unix: i64) -> i32 {
        let t: libc::time_t = unix;
        // SAFETY: `localtime_r` only reads `t` and writes into `tm`, a
        // zeroed, properly aligned struct we own; both pointers are valid
        // for the duration of the call. It is the thread-safe variant.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        let r = unsafe { libc::localtime_r(&t, &mut tm) };
        if r.is_null() {
            0
        } else {
            i32::try_from(tm.tm_gmtoff).unwrap_or(0)
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` for `unix` seconds in `tz` (2.6's `time_string`).
pub fn format_time(unix: u64, tz: &dyn TimeZone) -> String {
    let unix = i64::try_from(unix).unwrap_or(i64::MAX);
    let t = unix.saturating_add(i64::from(tz.offset_at(unix)));
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (the well-known era-based conversion).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
