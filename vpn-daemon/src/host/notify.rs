//! Service-manager notifications (systemd `sd_notify`): readiness, STATUS
//! lines, reload, stop and watchdog pings, through the `sd-notify` crate.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset, so the loops call
//! them unconditionally with one line each. A failed send is logged and
//! otherwise ignored: the tunnel must not stop because systemd went away.
//!
//! The STATUS texts follow OpenVPN 2.6 (`init.c`): "Initialization Sequence
//! Completed" when the tunnel is up and "Failed to start up: ..." with
//! `ERRNO=1` when it cannot start. Unlike OpenVPN, which says READY=1 before
//! it connects, READY=1 comes once the tunnel is up (server: socket bound
//! and tun up; client: first connection completed), so `systemctl start`
//! reports a working VPN.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;

/// READY=1 is sent once per process (later connections only update STATUS).
static READY_SENT: AtomicBool = AtomicBool::new(false);

/// Status text OpenVPN sends when its tunnel is up.
pub const INIT_COMPLETED: &str = "Initialization Sequence Completed";

/// Whether a service manager listens (`NOTIFY_SOCKET` set). OpenVPN then
/// ignores `daemon`: forking would make systemd lose the main process.
pub fn under_service_manager() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty())
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// The tunnel is up: READY=1 (the first time) and the STATUS line.
pub fn ready(status: &str) {
    let pid = std::process::id();
    if READY_SENT.swap(true, Ordering::SeqCst) {
        send(&[NotifyState::Status(status)]);
    } else {
        send(&[
            NotifyState::Ready,
            NotifyState::Status(status),
            NotifyState::MainPid(pid),
        ]);
    }
}

/// A free-form STATUS line (reconnecting, reloading, ...).
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// SIGHUP: the configuration is re-read and the tunnel restarted; READY=1
/// follows when it is up again. MONOTONIC_USEC is required with RELOADING=1
/// from systemd 253 on.
pub fn reloading() {
    let mut states = vec![
        NotifyState::Reloading,
        NotifyState::Status("Reloading configuration"),
    ];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
    READY_SENT.store(false, Ordering::SeqCst);
}

/// Orderly shutdown has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("Stopping")]);
}

/// The daemon could not start (or restart): no READY=1, a STATUS naming
/// the reason, as OpenVPN's "Failed to start up" line.
pub fn failed(reason: &dyn std::fmt::Display) {
    // One line: systemctl shows STATUS on one line and a newline would end
    // the assignment.
    let text = format!("Failed to start up: {reason}").replace('\n', " ");
    send(&[NotifyState::Status(&text), NotifyState::Errno(1)]);
}

/// Half the watchdog interval the unit asked for (`WatchdogSec=`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| (d / 2).max(Duration::from_millis(10)))
}

/// Pings the watchdog from the runtime while it runs: a wedged runtime
/// stops the pings and systemd restarts the service. Must be called inside
/// a tokio runtime; nothing is spawned when no watchdog is asked for.
pub fn spawn_watchdog() {
    let Some(every) = watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}
