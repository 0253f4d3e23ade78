//! `tunnel_server_tcp`: the TCP server loop. One stream per client, no
//! cookie (the handshake is stateful from the first packet, as the
//! stream already proves the address). Each connection has a reader task
//! feeding whole packets to the loop and a writer task draining a bounded
//! queue; the loop owns the client table, so routing, auth and status
//! are the UDP server's ([`Multi`]). Also holds the server's tun set-up
//! shared with the UDP loop.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::daemon::Outcome;
use crate::daemon::error::DaemonError;
use crate::daemon::process::{Signal, Signals};
use crate::daemon::setup;
use crate::daemon::tunnel::{self, TunSetup};
use crate::io::clock;
use crate::io::external::tcp::{TcpOptions, TcpServer};
use crate::io::internal::tun::{Tun, TunQueue};
use crate::io::mssfix::OuterTransport;
use crate::io::route::RouteTable;
use crate::proto::session::{Session, Transport};
use crate::scripts::{DnsSettings, ScriptContext, ScriptEnv, ScriptRunner};
use crate::server::multi::{LinkOut, Multi};
use crate::server::peers::PeerId;

/// Packets queued per connection before the writer drops (backpressure).
const CONN_QUEUE: usize = 1024;

/// The server's own tun device, routes and `up` state.
pub(crate) struct ServerTun {
    pub(crate) tun: Tun,
    pub(crate) queue: Arc<TunQueue>,
    pub(crate) setup: TunSetup,
    routes: RouteTable,
    runner: ScriptRunner,
}

impl ServerTun {
    /// Routes off, `down`, device closed.
    pub(crate) async fn shutdown(mut self, cfg: &Config) {
        for e in self.routes.teardown() {
            tracing::warn!(error = %e, "removing route");
        }
        let info = self.setup.tun_info(self.tun.name(), None);
        tunnel::run_up_down(
            cfg,
            &self.runner,
            true,
            &info,
            ScriptContext::Init,
            Some("sigterm"),
            &dns_env(cfg),
        )
        .await;
    }
}

/// The server's own `dhcp-option`/`dns` lines as its `up`/`down` scripts
/// see them (2.6 exports a non-pulling instance's options at start-up).
fn dns_env(cfg: &Config) -> ScriptEnv {
    let mut env = ScriptEnv::new();
    env.set_dns(&DnsSettings::from_config(cfg));
    env
}

/// With `user`/`group`, opens the `status` and `ifconfig-pool-persist`
/// files while still privileged (OpenVPN does the same); a failure is the
/// same warning a later write would give.
fn hold_rewritten_files(cfg: &Config) {
    if cfg.user.is_none() && cfg.group.is_none() {
        return;
    }
    let status = cfg.status.as_ref().map(|s| s.path.as_path());
    let persist = cfg.ifconfig_pool_persist.as_ref().map(|p| p.file.as_path());
    for path in status.into_iter().chain(persist) {
        if let Err(e) = super::held_files::hold(path) {
            tracing::warn!(file = %path.display(), error = %e, "cannot open before dropping privileges");
        }
    }
}

/// Opens the server's tun (`ifconfig`, `ifconfig-ipv6`), adds `route` /
/// `route-ipv6`, runs `up`, then drops privileges.
pub(crate) async fn bring_up_server_tun(cfg: &Config) -> Result<ServerTun, DaemonError> {
    let setup = TunSetup {
        mtu: u16::try_from(cfg.tun_mtu).unwrap_or(1500),
        topology: cfg.topology,
        ipv4: cfg.ifconfig.map(|i| (i.local, i.remote_netmask)),
        ipv6: cfg
            .ifconfig_ipv6
            .map(|i| (i.local.addr(), i.local.prefix_len(), Some(i.remote))),
    };
    let tun = tunnel::open_tun(cfg, &setup, 1)?;
    let queue = tun
        .queues()
        .first()
        .cloned()
        .ok_or_else(|| DaemonError::Unsupported("tun device without a queue".into()))?;
    tracing::info!(dev = tun.name(), ?setup, "tun device opened");
    let mut routes = RouteTable::new();
    let dev = tun.name().to_owned();
    for r in &cfg.routes {
        if let Err(e) = tunnel::add_route_v4(
            &mut routes,
            &dev,
            r.network,
            r.netmask,
            r.gateway,
            r.metric,
            None,
            setup.ipv4.map(|a| a.0),
        ) {
            tracing::warn!(error = %e, "route not installed");
        }
    }
    for r in &cfg.routes_ipv6 {
        if let Err(e) = tunnel::add_route_v6(&mut routes, &dev, r.network, r.gateway, r.metric) {
            tracing::warn!(error = %e, "route-ipv6 not installed");
        }
    }
    let runner = tunnel::script_runner(cfg);
    let info = setup.tun_info(&dev, None);
    tunnel::run_up_down(
        cfg,
        &runner,
        false,
        &info,
        ScriptContext::Init,
        None,
        &dns_env(cfg),
    )
    .await;
    hold_rewritten_files(cfg);
    crate::daemon::process::drop_privileges(cfg)?;
    Ok(ServerTun {
        tun,
        queue,
        setup,
        routes,
        runner,
    })
}

/// The writer queues of the connections.
#[derive(Default)]
struct TcpOut {
    conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
}

impl LinkOut for TcpOut {
    fn send(&mut self, to: SocketAddr, _src: Option<IpAddr>, packet: &[u8]) {
        if let Some(c) = self.conns.get(&to) {
            let _ = c.try_send(packet.to_vec());
        }
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        _src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        if let Some(c) = self.conns.get(&to) {
            let mut v = vec![0u8; max];
            let n = fill(&mut v);
            if n > 0 {
                v.truncate(n);
                let _ = c.try_send(v);
            }
        }
    }
}

/// What the reader tasks report.
enum ConnEvent {
    Packets(SocketAddr, Vec<Vec<u8>>),
    Closed(SocketAddr),
}

/// Runs the TCP server until a signal ends it.
pub async fn tunnel_server_tcp(
    cfg: &Config,
    signals: &mut Signals,
) -> Result<Outcome, DaemonError> {
    let tls = Arc::new(setup::tls_context(cfg)?);
    let bind = super::udp::bind_addr(cfg)?;
    let scfg = Arc::new(setup::session_config(
        cfg,
        tls,
        Transport::Tcp,
        bind.is_ipv6(),
    )?);
    let opts = TcpOptions {
        sndbuf: cfg.sndbuf.map(|b| b as usize),
        rcvbuf: cfg.rcvbuf.map(|b| b as usize),
        ..TcpOptions::default()
    };
    let server = TcpServer::bind(bind, false, opts)?;
    tracing::info!(local = ?server.local_addr().ok(), "TCP server listening");
    let st = bring_up_server_tun(cfg).await?;
    let (mut multi, mut auth_rx) = Multi::new(Arc::new(cfg.clone()), scfg.clone())?;
    let outer = if bind.is_ipv6() {
        OuterTransport::Tcp6
    } else {
        OuterTransport::Tcp4
    };
    multi.mss = tunnel::mss_limits(
        cfg,
        outer,
        setup::framing(cfg.compression).max_overhead() as u16,
    );
    let q = st.queue.clone();
    let mtu = st.setup.mtu;
    let mut trx = q.rx_batch(64, 0, mtu);
    let mut ttx = q.tx_batch(64);
    let mut out = TcpOut::default();
    let (ev_tx, mut ev_rx) = mpsc::channel::<ConnEvent>(1024);
    let mut status = super::udp::status_interval(cfg);
    let mut persist = super::udp::persist_interval(cfg);
    let mut dirty: BTreeSet<PeerId> = BTreeSet::new();
    let outcome = loop {
        for id in std::mem::take(&mut dirty) {
            let addr = multi.peers.get(id).map(|p| p.transport());
            if !multi.drain(id, &mut out)
                && let Some(a) = addr
            {
                // Closing the queue ends the writer task and the stream.
                out.conns.remove(&a);
            }
        }
        if !ttx.is_empty()
            && let Err(e) = q.send_batch(&mut ttx).await
        {
            return Err(DaemonError::io("tun write", e));
        }
        let next = multi.next_timeout();
        let sleep = async {
            match next {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = signals.recv() => match s {
                Signal::Term => break Outcome::Exit(0),
                Signal::Hup | Signal::Usr1 => break Outcome::Reload,
                Signal::Usr2 => tracing::info!(clients = multi.peers.len(), route_drops = ?multi.route_drops, "statistics"),
            },
            a = server.accept() => {
                let (link, addr) = match a {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept");
                        continue;
                    }
                };
                // A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d.
                let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                let session = match Session::new_server_stateful(scfg.clone(), clock::now(), clock::unix_time()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "new session");
                        continue;
                    }
                };
                let Some(id) = multi.add_client(session, addr, None) else { continue };
                let (mut reader, mut writer) = link.split();
                let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(CONN_QUEUE);
                out.conns.insert(addr, wtx);
                tokio::spawn(async move {
                    while let Some(p) = wrx.recv().await {
                        if writer.queue(&p).is_err() {
                            continue;
                        }
                        while let Ok(p) = wrx.try_recv() {
                            if writer.queue(&p).is_err() {
                                break;
                            }
                        }
                        if writer.flush().await.is_err() {
                            break;
                        }
                    }
                    let _ = writer.shutdown().await;
                });
                let evs = ev_tx.clone();
                tokio::spawn(async move {
                    loop {
                        let mut v = Vec::new();
                        match reader.recv_with(|p| v.push(p.to_vec())).await {
                            Ok(_) => {
                                if evs.send(ConnEvent::Packets(addr, v)).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, client = %addr, "TCP connection ended");
                                let _ = evs.send(ConnEvent::Closed(addr)).await;
                                return;
                            }
                        }
                    }
                });
                dirty.insert(id);
            }
            Some(ev) = ev_rx.recv() => match ev {
                ConnEvent::Packets(addr, packets) => {
                    let Some(id) = multi.peers.by_transport(addr) else { continue };
                    let now = clock::now();
                    let unix = clock::unix_time();
                    for p in &packets {
                        multi.link_packet(id, None, p, None, now, unix, &mut out, &mut ttx);
                    }
                    dirty.insert(id);
                }
                ConnEvent::Closed(addr) => {
                    if let Some(id) = multi.peers.by_transport(addr) {
                        multi.remove(id);
                    }
                    out.conns.remove(&addr);
                }
            },
            r = q.recv_batch(&mut trx) => {
                r.map_err(|e| DaemonError::io("tun read", e))?;
                let now = clock::now();
                let h = trx.headroom();
                for (slot, len) in trx.iter_slots_mut() {
                    if let Some(p) = slot.get_mut(h..h + len) {
                        multi.tun_packet(p, now, &mut out);
                    }
                }
            }
            Some(r) = auth_rx.recv() => {
                if let Some(id) = multi.auth_done(r) {
                    dirty.insert(id);
                }
            }
            _ = sleep => {
                dirty.extend(multi.timeouts(clock::now(), clock::unix_time()));
            }
            _ = status.tick() => multi.write_status(),
            _ = persist.tick() => multi.write_pool_persist(),
        }
    };
    tracing::info!(?outcome, "server shutting down");
    let now = clock::now();
    for id in multi.close_all(now) {
        multi.drain(id, &mut out);
    }
    // Let the writer tasks flush the RESTART messages.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    multi.write_status();
    multi.write_pool_persist();
    st.shutdown(cfg).await;
    Ok(outcome)
}
