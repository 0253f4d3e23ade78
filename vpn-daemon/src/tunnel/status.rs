//! The `status` and `ifconfig-pool-persist` files of the server: a
//! snapshot of the clients rendered as 2.6 writes it, replaced atomically.

use crate::io::clock;
use crate::io::files::write_atomic;
use crate::mgmt::protocol::{Command, reply, status_version_for};
use crate::mgmt::status::{
    ClientEntry, LineEnd, RouteEntry, ServerStatus, StatusVersion, SystemLocalTime, XdpCounters,
    render_server,
};
use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::host::process::Signal;
use crate::mgmt::protocol::KillTarget;
use crate::server::peers::PeerId;
use crate::tunnel::input::{Input, InputSender};
use crate::tunnel::multi::{Client, Multi};

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
/// passwords belong to the management listener). Clients it closes go in
/// `dirty`, so the loop sends what their sessions queued.
pub fn mgmt_reply(multi: &mut Multi, command: &Command, dirty: &mut BTreeSet<PeerId>) -> String {
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
        Command::Nclients => reply::nclients(connected(multi).count() as u64),
        Command::LoadStats => {
            // 2.6's bytesin/bytesout are totals since start, not the sum of
            // the clients connected now.
            let (bytes_in, bytes_out) = multi.peers.iter().fold(multi.gone_bytes, |(i, o), p| {
                (i + p.payload.bytes_in, o + p.payload.bytes_out)
            });
            reply::load_stats(connected(multi).count() as u64, bytes_in, bytes_out)
        }
        Command::Kill(target) => {
            // 2.6 signals the instance (SIGTERM): it goes without a word to
            // the client.
            let ids: Vec<PeerId> = multi
                .peers
                .iter()
                .filter(|p| match target {
                    KillTarget::CommonName(cn) => p.common_name() == Some(cn.as_str()),
                    KillTarget::Address(a) => {
                        let t = p.transport();
                        SocketAddr::new(t.ip().to_canonical(), t.port()) == SocketAddr::V4(*a)
                    }
                })
                .map(|p| p.id())
                .collect();
            let now = clock::now();
            for &id in &ids {
                if let Some(p) = multi.peers.get_mut(id) {
                    p.payload.session.close(now, false);
                }
                dirty.insert(id);
            }
            match target {
                KillTarget::CommonName(cn) => reply::kill_common_name(cn, ids.len()),
                KillTarget::Address(a) => reply::kill_address(*a, ids.len()),
            }
        }
        Command::ClientKill { cid, message } => {
            let id = PeerId::try_from(*cid).ok();
            let Some(p) = id.and_then(|id| multi.peers.get_mut(id)) else {
                return reply::client_kill(false);
            };
            let text = message.as_deref().unwrap_or("RESTART");
            p.payload.session.close_with_message(clock::now(), text);
            dirty.insert(p.id());
            reply::client_kill(true)
        }
        other => reply::error(&format!(
            "{} is not answered by the tunnel loop",
            command_name(other)
        )),
    }
}

/// The management listener feeds the loop's inputs.
impl crate::mgmt::listener::Loop for InputSender {
    fn command(&self, command: Command, reply: tokio::sync::oneshot::Sender<String>) -> bool {
        self.send(Input::Mgmt { command, reply }).is_ok()
    }

    fn signal(&self, signal: Signal) -> bool {
        self.send(Input::Signal(signal)).is_ok()
    }
}

/// The clients `nclients` and `load-stats` count (2.6's `n_clients`).
fn connected(multi: &Multi) -> impl Iterator<Item = &crate::server::peers::Peer<Client>> {
    multi.peers.iter().filter(|p| p.payload.connected)
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
            mgmt_reply(&mut m, &Command::Pid, &mut BTreeSet::new()),
            format!("SUCCESS: pid={}\r\n", std::process::id())
        );
        let status = mgmt_reply(&mut m, &Command::Status(Some(2)), &mut BTreeSet::new());
        assert!(status.starts_with("TITLE,vpn-daemon "), "{status}");
        assert!(status.ends_with("END\r\n"), "{status}");
        assert!(status.contains("\r\nHEADER,CLIENT_LIST,"), "{status}");
        let mut dirty = BTreeSet::new();
        assert_eq!(
            mgmt_reply(&mut m, &Command::Nclients, &mut dirty),
            "SUCCESS: nclients=0\r\n"
        );
        assert_eq!(
            mgmt_reply(&mut m, &Command::LoadStats, &mut dirty),
            "SUCCESS: nclients=0,bytesin=0,bytesout=0\r\n"
        );
        assert_eq!(
            mgmt_reply(
                &mut m,
                &Command::Kill(KillTarget::CommonName("c1".into())),
                &mut dirty
            ),
            "ERROR: common name 'c1' not found\r\n"
        );
        assert_eq!(
            mgmt_reply(
                &mut m,
                &Command::ClientKill {
                    cid: 7,
                    message: None
                },
                &mut dirty
            ),
            "ERROR: client-kill command failed\r\n"
        );
        assert!(dirty.is_empty());
        // Commands about clients the loop does not act on yet say so.
        assert_eq!(
            mgmt_reply(&mut m, &Command::Bytecount(5), &mut dirty),
            "ERROR: bytecount is not answered by the tunnel loop\r\n"
        );
    }
}
