//! The running daemon: process set-up (logging, `daemon`, `writepid`,
//! `cd`, privileges), the tokio runtime, and the dispatch to the tunnel
//! loop of the configured mode: [`crate::client::p2p`] for clients,
//! [`crate::server::udp`] / [`crate::server::tcp`] for servers.

pub mod error;
pub mod genkey;
pub mod info;
pub(crate) mod named_routes;
pub mod notify;
pub mod peer_info;
pub mod process;
pub mod providers;
pub mod route_up;
pub mod setup;
pub mod syslog;
pub mod tunnel;

use crate::config::{Config, Mode, Transport};

pub use error::DaemonError;
pub use process::{Signal, Signals};

/// Awaits `f`, or never when there is none: one `select!` branch for an
/// optional source (a timer that may be unset, a fast path that may not
/// run).
pub(crate) async fn or_never<F: Future>(f: Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<std::time::Instant>) {
    or_never(deadline.map(|d| tokio::time::sleep_until(d.into()))).await;
}

/// How a tunnel loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit the process with this status.
    Exit(u8),
    /// SIGHUP: re-read the configuration and start again.
    Reload,
}

/// Process set-up that happens once, before the runtime starts
/// (`daemon` must fork while there is one thread).
pub fn prepare_process(cfg: &Config) -> Result<(), DaemonError> {
    process::change_dir(cfg)?;
    // Under systemd (Type=notify) OpenVPN ignores `daemon`; so do we.
    if !notify::under_service_manager() {
        process::daemonize(cfg)?;
    }
    process::init_logging(cfg)?;
    process::tune(cfg)?;
    if let Some(p) = &cfg.writepid {
        process::write_pid(p)?;
    }
    Ok(())
}

/// Runs the tunnel of `cfg` on a new tokio runtime until it exits or a
/// SIGHUP asks for a reload.
pub fn run(cfg: &Config) -> Result<Outcome, DaemonError> {
    // Plugins open before the tunnel starts and close when it ends (also
    // for a SIGHUP restart, as 2.6's do_close_plugins).
    crate::plugin::start(cfg)?;
    let r = run_tunnel(cfg);
    crate::plugin::stop();
    r
}

fn run_tunnel(cfg: &Config) -> Result<Outcome, DaemonError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| DaemonError::io("starting the tokio runtime", e))?;
    // `providers`: loaded before any cipher is looked up, kept for the run.
    let _providers = providers::load(cfg)?;
    let outcome = rt.block_on(async {
        notify::spawn_watchdog();
        let mut signals = Signals::new()?;
        signals.remap_usr1(cfg.host.remap_usr1);
        if cfg.secret.is_some() {
            return crate::client::static_key::tunnel_static_key(cfg, &mut signals).await;
        }
        match (cfg.mode, cfg.proto.transport) {
            (Mode::PointToPoint, _) => {
                crate::client::p2p::tunnel_point_to_point(cfg, &mut signals).await
            }
            (Mode::Server, Transport::Udp) => {
                crate::server::udp::tunnel_server_udp(cfg, &mut signals).await
            }
            (Mode::Server, _) => crate::server::tcp::tunnel_server_tcp(cfg, &mut signals).await,
        }
    });
    match &outcome {
        Ok(Outcome::Exit(_)) => notify::stopping(),
        Ok(Outcome::Reload) => notify::reloading(),
        Err(e) => notify::failed(e),
    }
    outcome
}
