//! The running daemon: process set-up (logging, `daemon`, `writepid`,
//! `cd`, privileges), the tokio runtime, and the dispatch to the tunnel
//! loop of the configured mode: [`crate::tunnel::point_to_point`] for clients,
//! [`crate::tunnel::server_udp`] / [`crate::tunnel::server_tcp`] for servers.

pub mod genkey;
pub mod info;

use crate::config::{Config, Mode, Transport};
use crate::host::{notify, process, providers};

pub use crate::error::DaemonError;
pub use crate::host::process::Signals;
pub use crate::tunnel::Outcome;

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
        let mut signals = crate::tunnel::input::Inputs::new(signals);
        let _mgmt = crate::mgmt::listener::start(&cfg.management, signals.sender()).await?;
        if cfg.secret.is_some() {
            return crate::tunnel::static_key::tunnel_static_key(cfg, &mut signals).await;
        }
        match (cfg.mode, cfg.proto.transport) {
            (Mode::PointToPoint, _) => {
                crate::tunnel::point_to_point::tunnel_point_to_point(cfg, &mut signals).await
            }
            (Mode::Server, Transport::Udp) => {
                crate::tunnel::server_udp::tunnel_server_udp(cfg, &mut signals).await
            }
            (Mode::Server, _) => {
                crate::tunnel::server_tcp::tunnel_server_tcp(cfg, &mut signals).await
            }
        }
    });
    match &outcome {
        Ok(Outcome::Exit(_)) => notify::stopping(),
        Ok(Outcome::Reload) => notify::reloading(),
        Err(e) => notify::failed(e),
    }
    outcome
}
