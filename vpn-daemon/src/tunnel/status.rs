//! The `status` and `ifconfig-pool-persist` files of the server: a
//! snapshot of the clients rendered as 2.6 writes it, replaced atomically.

use crate::io::clock;
use crate::io::files::write_atomic;
use crate::mgmt::protocol::{Command, reply, status_version_for};
use crate::mgmt::status::{
    ClientEntry, LineEnd, RouteEntry, ServerStatus, StatusVersion, SystemLocalTime, XdpCounters,
    render_server,
};
use crate::tunnel::multi::Multi;

impl Multi {
    /// Writes the status file (atomically).
    pub fn write_status(&self) {
        self.write_status_with(None);
    }

    /// Writes the status file (atomically), with the XDP counters when the
    /// fast path runs.
    pub fn write_status_with(&self, xdp: Option<XdpCounters>) {
        if let Some(sf) = &self.cfg.status {
            let version =
                StatusVersion::from_number(self.cfg.status_version).unwrap_or(StatusVersion::V1);
            let text = render_server(&self.snapshot(xdp), version, LineEnd::Lf, &SystemLocalTime);
            if let Err(e) = write_atomic(&sf.path, text.as_bytes()) {
                tracing::warn!(error = %e, "status file");
            }
        }
    }

    /// The clients and routes as the status file and the management
    /// interface's `status` show them.
    pub fn snapshot(&self, xdp: Option<XdpCounters>) -> ServerStatus {
        let now = clock::unix_time();
        let clients = self
            .peers
            .iter()
            .filter(|p| p.payload.connected)
            .map(|p| ClientEntry {
                common_name: p.common_name().map(str::to_owned),
                real_address: p.transport(),
                virtual_ipv4: p.routes().ipv4,
                virtual_ipv6: p.routes().ipv6,
                bytes_received: p.payload.bytes_in,
                bytes_sent: p.payload.bytes_out,
                connected_since: p.payload.since,
                username: p.payload.username.clone(),
                client_id: u64::from(p.id()),
                peer_id: p.id(),
                cipher: p
                    .payload
                    .session
                    .cipher()
                    .map(|c| c.name().to_owned())
                    .unwrap_or_default(),
                fast_path: p.payload.fast,
            })
            .collect();
        let routes = self
            .peers
            .route_list()
            .into_iter()
            .filter_map(|(network, id)| {
                let p = self.peers.get(id)?;
                Some(RouteEntry {
                    network,
                    cached: false,
                    common_name: p.common_name().map(str::to_owned),
                    real_address: p.transport(),
                    last_ref: now,
                })
            })
            .collect();
        ServerStatus {
            title: format!("vpn-daemon {}", env!("CARGO_PKG_VERSION")),
            now,
            clients,
            routes,
            max_bcast_mcast_queue_len: 0,
            dco_enabled: false,
            xdp,
        }
    }

    /// Writes the `ifconfig-pool-persist` file (atomically), unless its
    /// interval is 0 (read-only).
    pub fn write_pool_persist(&self) {
        if let (Some(pp), Some(pool)) = (&self.cfg.ifconfig_pool_persist, &self.pool)
            && pp.seconds > 0
            && let Err(e) = write_atomic(&pp.file, pool.render_persist().as_bytes())
        {
            tracing::warn!(error = %e, "ifconfig-pool-persist");
        }
    }
}

/// The answer to a management command that reads or acts on the server's
/// clients (the commands about the management session itself, holds and
/// passwords belong to the management listener).
pub fn mgmt_reply(multi: &mut Multi, command: &Command) -> String {
    match command {
        Command::Pid => reply::pid(std::process::id()),
        Command::Status(v) => {
            let version = status_version_for(*v, multi.cfg.status_version);
            render_server(
                &multi.snapshot(None),
                version,
                LineEnd::CrLf,
                &SystemLocalTime,
            )
        }
        other => reply::error(&format!(
            "{} is not answered by the tunnel loop",
            command_name(other)
        )),
    }
}

/// A command's name for an error line.
pub(crate) fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Help => "help",
        Command::Nclients => "nclients",
        Command::LoadStats => "load-stats",
        Command::Version(_) => "version",
        Command::State(_) => "state",
        Command::Log(_) => "log",
        Command::Echo(_) => "echo",
        Command::Kill(_) => "kill",
        Command::ClientKill { .. } => "client-kill",
        Command::Bytecount(_) => "bytecount",
        Command::Signal(_) => "signal",
        Command::Hold(_) => "hold",
        Command::Verb(_) => "verb",
        Command::Mute(_) => "mute",
        Command::Quit => "quit",
        Command::ClientAuth { .. } => "client-auth",
        Command::ClientDeny { .. } => "client-deny",
        Command::ClientPendingAuth { .. } => "client-pending-auth",
        Command::EnvFilter(_) => "env-filter",
        _ => "this command",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proto::sim::{SimOpts, configs};

    fn multi() -> Multi {
        let cfg = crate::server::pool::tests::server_config("server 10.8.0.0 255.255.255.0\n");
        let (_, scfg) = configs(&SimOpts::default());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        Multi::new(Arc::new(cfg), scfg, tx).expect("server state")
    }

    #[test]
    fn management_commands_are_answered_from_the_loop_state() {
        let mut m = multi();
        assert_eq!(
            mgmt_reply(&mut m, &Command::Pid),
            format!("SUCCESS: pid={}\r\n", std::process::id())
        );
        let status = mgmt_reply(&mut m, &Command::Status(Some(2)));
        assert!(status.starts_with("TITLE,vpn-daemon "), "{status}");
        assert!(status.ends_with("END\r\n"), "{status}");
        assert!(status.contains("\r\nHEADER,CLIENT_LIST,"), "{status}");
        // Commands about clients the loop does not act on yet say so.
        assert_eq!(
            mgmt_reply(&mut m, &Command::Nclients),
            "ERROR: nclients is not answered by the tunnel loop\r\n"
        );
    }
}
