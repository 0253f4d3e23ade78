//! `tunnel_point_to_point`: the client loop. One [`Session`] with the
//! server over UDP or TCP; the tun device is opened (or re-addressed, with
//! `persist-tun`) when the session reports `Connected`, with the pushed
//! addresses, routes and MTU.
//!
//! ```text
//!            ┌───────── signals (TERM/INT → exit-notify + exit, USR1 → restart, HUP → reload)
//!  link rx ──┤ P_DATA → decrypt → mssfix → tun tx batch
//!            │ control → Session::handle_packet
//!  tun rx ───┤ mssfix → encrypt → link tx batch (sendmmsg/GSO or TCP queue)
//!  timer  ───┘ Session::handle_timeout
//!  after every input: poll_transmit* → link, poll_event* → act, poll_timeout → timer
//! ```
//!
//! A connection that ends (ping-restart, RESTART from the server, TLS
//! error, handshake timeout, SIGUSR1) is retried with the next `remote`
//! after `connect-retry` seconds, doubling up to its maximum while no
//! attempt succeeds; AUTH_FAILED, HALT and ping-exit end the process.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::dhcp_router;
use crate::client::walk::{Ending, Walk};
use crate::config::{self as cfgt, Config, Transport as CfgTransport, XdpMode};
use crate::error::DaemonError;
use crate::host::dns;
use crate::host::process::Signal;
use crate::host::resolve::resolve_local;
use crate::host::routes::{self, PendingRoutes};
use crate::host::scripts::{ScriptContext, ScriptEnv, ScriptRunner};
use crate::host::tun::{self as host_tun, TunSetup};
use crate::io::external::udp::{SendBatch, UdpLink};
use crate::io::internal::tun::{Tun, TunQueue, TunRxBatch, TunTxBatch};
use crate::io::route::RouteTable;
use crate::io::wait::{or_never, sleep_until};
use crate::io::xdp::fastpath::{FastPath, FastPathConfig, Role};
use crate::io::{clock, icmp6};
use crate::mgmt::status::ClientStatus;
use crate::proto::data::fragment::MAX_FRAGS;
use crate::proto::event::{CloseReason, Event};
use crate::proto::push::PushedOptions;
use crate::proto::session::{DataOutcome, Session, SessionConfig, Transport};
use crate::proto::tls::TlsContext;
use crate::proto::wire::opcode::split_first_byte;
use crate::tunnel::Outcome;
use crate::tunnel::client_connect::{End, Resolved, connect_tcp, on_idle_signal, resolve_entry};
use crate::tunnel::client_control::{client_tls_plugins, client_tls_verify, run_ipchange};
use crate::tunnel::client_link::{Link, LinkRx, recv_link};
use crate::tunnel::client_status;
use crate::tunnel::input::{Input, Inputs};
use crate::tunnel::output::LinkOut as _;
use crate::tunnel::schedule::status_interval;
use crate::tunnel::setup;

/// Largest control packet the session writes (tls-mtu plus wrapping).
const CONTROL_BUF: usize = 4096;
/// Tun packets read per wake-up.
pub(super) const TUN_BATCH: usize = 64;
/// AF_XDP frames taken per wake-up at most.
const FAST_RX_BATCH: usize = 64;
/// How long a TCP connect may take before the next remote is tried.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long exit-notify may take at most before we leave anyway.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// `tls-exit`: 2.6 leaves through a soft SIGTERM ("tls-error"), status 0.
const TLS_EXIT_STATUS: u8 = 0;
/// AUTH_FAILED without `auth-retry`: 2.6's soft SIGTERM "auth-failure", status 0.
const AUTH_FAILED_STATUS: u8 = 0;

/// What survives a reconnect: the tun device (`persist-tun`), its routes.
pub(super) struct Persist {
    pub(super) tun: Option<(Tun, TunSetup)>,
    pub(super) routes: RouteTable,
    pub(super) up_ran: bool,
    pub(super) restarts: u32,
    /// The DNS variables the last `up` saw; `down` sees them too.
    pub(super) dns_env: ScriptEnv,
    /// What `resolvectl` changed, reverted when the device goes.
    pub(super) resolved: dns::ResolvedLink,
}

/// Static context of the client.
pub(super) struct Ctx<'a> {
    pub(super) cfg: &'a Config,
    pub(super) udp_cfg: Arc<SessionConfig>,
    pub(super) tcp_cfg: Option<Arc<SessionConfig>>,
    pub(super) runner: ScriptRunner,
    pub(super) privileges_dropped: bool,
}

/// Runs the client until it should exit (or reload on SIGHUP).
pub async fn tunnel_point_to_point(
    cfg: &Config,
    signals: &mut Inputs,
) -> Result<Outcome, DaemonError> {
    if cfg.remotes.is_empty() {
        return Err(DaemonError::Unsupported(
            "a client needs at least one 'remote'".into(),
        ));
    }
    if setup::server_cert_unverified(cfg) {
        tracing::warn!(
            "WARNING: No server certificate verification method has been enabled.  See http://openvpn.net/howto.html#mitm for more info."
        );
    }
    let tls = Arc::new(setup::tls_context(cfg)?);
    let mk = |t: Transport, tls: Arc<TlsContext>| setup::session_config(cfg, tls, t, false);
    let has_tcp = cfg
        .remotes
        .iter()
        .any(|r| r.proto.transport != CfgTransport::Udp);
    let mut ctx = Ctx {
        cfg,
        udp_cfg: Arc::new(mk(Transport::Udp, tls.clone())?),
        tcp_cfg: if has_tcp {
            Some(Arc::new(mk(Transport::Tcp, tls)?))
        } else {
            None
        },
        runner: host_tun::script_runner(cfg),
        privileges_dropped: false,
    };
    let mut persist = Persist {
        tun: None,
        routes: RouteTable::new().noexec(cfg.host.route_noexec),
        up_ran: false,
        restarts: 0,
        dns_env: ScriptEnv::new(),
        resolved: dns::ResolvedLink::default(),
    };
    let mut rand = random_u32;
    let mut walk = Walk::new(
        cfg.connections.iter().map(|c| c.connect_retry).collect(),
        cfg.remote_random
            .then_some(&mut rand as &mut dyn FnMut() -> u32),
        cfg.connect_retry_max,
        cfg.persist_remote_ip,
    );
    let outcome = loop {
        let attempt = match walk.next_attempt() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("{e}");
                break Outcome::Exit(1);
            }
        };
        if !attempt.pause.is_zero() {
            tracing::info!("Restart pause, {} second(s)", attempt.pause.as_secs());
            tokio::select! {
                _ = tokio::time::sleep(attempt.pause) => {}
                s = signals.signal() => match s {
                    Signal::Term => break Outcome::Exit(0),
                    Signal::Hup => break Outcome::Reload,
                    Signal::Usr1 | Signal::Usr2 => {}
                },
            }
        }
        let Some(conn) = cfg.connections.get(attempt.entry) else {
            break Outcome::Exit(1);
        };
        // `connect-timeout`: the TCP connect and the server's first answer
        // must come within it, counted from here (OpenVPN's server poll).
        let poll_deadline = (conn.connect_timeout > 0)
            .then(|| clock::now() + Duration::from_secs(u64::from(conn.connect_timeout)));
        let addr = match attempt.addr {
            Some(a) => Some(a),
            None => match resolve_entry(cfg, conn, signals).await {
                Resolved::Addrs(addrs) => {
                    let a = walk.resolved(addrs);
                    if a.is_none() {
                        tracing::warn!(remote = %conn.remote.host, "no address of the wanted family");
                    }
                    a
                }
                Resolved::Failed => None,
                Resolved::GiveUp => break Outcome::Exit(1),
                Resolved::Stop(o) => break o,
            },
        };
        let end = match addr {
            None => End::Restart {
                connected: false,
                how: Ending::default(),
            },
            Some(addr) => {
                match connect_and_run(&mut ctx, conn, addr, poll_deadline, &mut persist, signals)
                    .await
                {
                    Ok(e) => e,
                    // What the configuration asks for and this host cannot
                    // give ends the run: retrying cannot help.
                    Err(e @ DaemonError::FastPath { .. }) => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, remote = %conn.remote.host, "connection attempt failed");
                        End::Restart {
                            connected: false,
                            how: Ending::default(),
                        }
                    }
                }
            }
        };
        match end {
            End::Stop(o) => break o,
            End::Restart { connected, how } => {
                persist.restarts += 1;
                if !cfg.persist_tun {
                    close_tun(&ctx, &mut persist, "sigusr1").await;
                }
                if connected {
                    walk.connected();
                }
                crate::host::notify::status("Reconnecting");
                walk.ended(how);
            }
        }
    };
    close_tun(&ctx, &mut persist, "sigterm").await;
    Ok(outcome)
}

/// Removes routes, runs `down` and closes the device.
async fn close_tun(ctx: &Ctx<'_>, persist: &mut Persist, signal: &str) {
    if let Some((tun, setup)) = &persist.tun
        && persist.up_ran
    {
        let info = setup.tun_info(tun.name(), None);
        let env = &persist.dns_env;
        host_tun::run_route_pre_down(ctx.cfg, &ctx.runner, &info, Some(signal), env, true).await;
    }
    for e in persist.routes.teardown() {
        tracing::warn!(error = %e, "removing route");
    }
    if let Some((tun, setup)) = persist.tun.take() {
        persist.resolved.revert().await;
        // 2.6 closes the device before `down` unless `down-pre` is given.
        let info = setup.tun_info(tun.name(), None);
        let tun = if ctx.cfg.extras.down_pre {
            Some(tun)
        } else {
            drop(tun);
            None
        };
        if persist.up_ran {
            host_tun::run_up_down(
                ctx.cfg,
                &ctx.runner,
                true,
                &info,
                ScriptContext::Init,
                Some(signal),
                &persist.dns_env,
            )
            .await;
        }
        persist.up_ran = false;
        drop(tun);
    }
}

/// Connects to `addr` for the entry `conn`, runs one session.
async fn connect_and_run(
    ctx: &mut Ctx<'_>,
    conn: &cfgt::Connection,
    addr: SocketAddr,
    poll_deadline: Option<Instant>,
    persist: &mut Persist,
    signals: &mut Inputs,
) -> Result<End, DaemonError> {
    let remote = &conn.remote;
    tracing::info!(remote = %addr, proto = ?remote.proto.transport, "connecting");
    let (mut link, scfg) = match remote.proto.transport {
        CfgTransport::Udp => {
            let ip = match &conn.local {
                Some(l) => resolve_local(l, addr).await?,
                None if addr.is_ipv4() => IpAddr::from([0, 0, 0, 0]),
                None => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            };
            let bind = SocketAddr::new(ip, conn.bind_port.unwrap_or(0));
            let uc = setup::udp_config(ctx.cfg, bind);
            let link = UdpLink::bind(&uc)?;
            let rx = link.recv_batch_buffer(16, 2048);
            let mut fast_starting = FastPath::start_in_background(FastPathConfig {
                mode: ctx.cfg.xdp,
                interface: ctx.cfg.xdp_interface.clone(),
                local: (!ip.is_unspecified()).then_some(ip),
                peer_hint: Some(addr.ip()),
                port: link.local_addr().port(),
                // Our one peer's packets carry our own peer-id; nothing
                // else is ours to drop.
                drop_unknown: false,
                role: Role::Client,
                mapped_v4: false,
            });
            // As the server: before a privilege drop the fast path is set
            // up while we still may, and `xdp native|generic` does not run
            // in another mode. After the drop a reconnect cannot set it up
            // again (no capability left): that connection runs on sockets.
            let strict = match ctx.cfg.xdp {
                XdpMode::Native => Some("native"),
                XdpMode::Generic => Some("generic"),
                XdpMode::Auto | XdpMode::Off => None,
            };
            let mut fast = None;
            let drop_ahead =
                crate::host::process::drops_privileges(ctx.cfg) && !ctx.privileges_dropped;
            if let Some(s) = fast_starting.as_mut()
                && (drop_ahead || (strict.is_some() && !ctx.privileges_dropped))
            {
                let f = s.finished().await;
                if let (None, Some(mode)) = (&f, strict) {
                    return Err(DaemonError::FastPath { mode });
                }
                fast = f.map(Box::new);
                fast_starting = None;
            } else if ctx.privileges_dropped && fast_starting.is_some() {
                tracing::info!(
                    "XDP fast path not set up again after dropping privileges: plain UDP sockets for this connection"
                );
                fast_starting = None;
            }
            (
                Link::Udp {
                    link,
                    peer: addr,
                    rx,
                    tx: SendBatch::with_capacity(64 * 1600),
                    fast,
                    fast_starting,
                },
                ctx.udp_cfg.clone(),
            )
        }
        CfgTransport::TcpClient | CfgTransport::TcpServer => {
            let opts = setup::tcp_options(ctx.cfg);
            let limit = poll_deadline.map_or(TCP_CONNECT_TIMEOUT, |d| {
                d.saturating_duration_since(clock::now())
            });
            let l = tokio::select! {
                r = tokio::time::timeout(limit, connect_tcp(conn, addr, &opts)) => match r {
                    Ok(l) => l?,
                    Err(_) if poll_deadline.is_some() => {
                        tracing::info!(remote = %addr, "connect-timeout: no TCP connection, moving on");
                        return Ok(End::Restart {
                            connected: false,
                            how: Ending { poll_timeout: true, ..Ending::default() },
                        });
                    }
                    Err(_) => return Err(DaemonError::io(format!("TCP connect to {addr}"), io::ErrorKind::TimedOut.into())),
                },
                s = signals.signal() => return Ok(on_idle_signal(s)),
            };
            let (reader, writer) = l.split();
            let scfg = ctx.tcp_cfg.clone().unwrap_or_else(|| ctx.udp_cfg.clone());
            (
                Link::Tcp {
                    reader,
                    writer,
                    peer: addr,
                    rbuf: Vec::with_capacity(64 * 1024),
                    rlens: Vec::with_capacity(64),
                },
                scfg,
            )
        }
    };
    // The entry's own explicit-exit-notify (never over TCP).
    let scfg = if scfg.explicit_exit_notify == conn.explicit_exit_notify {
        scfg
    } else {
        let mut c = (*scfg).clone();
        c.explicit_exit_notify = conn.explicit_exit_notify;
        Arc::new(c)
    };
    let session = Session::new_client(scfg, clock::now(), clock::unix_time())?;
    let mut run = Run {
        session,
        poll_deadline,
        exit_notify: conn.explicit_exit_notify.is_some(),
        connected: false,
        pushed: None,
        queue: persist
            .tun
            .as_ref()
            .and_then(|(t, _)| t.queues().first().cloned()),
        trx: None,
        ttx: None,
        block_ipv6: None,
        mss: None,
        ctl: vec![0u8; CONTROL_BUF],
        enc: vec![0u8; 4096],
        tls_done: false,
        exiting: None,
        stats: ClientStatus::default(),
        dhcp_snoop: false,
        dhcp_router: None,
        routes_pending: None,
        route_wakeup: None,
    };
    let r = run.drive(ctx, &mut link, persist, signals).await;
    let _ = link.flush().await;
    r
}

/// Random numbers for `remote-random` (OpenSSL's generator).
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = openssl::rand::rand_bytes(&mut b);
    u32::from_ne_bytes(b)
}

/// One connection's state.
pub(super) struct Run {
    pub(super) session: Session,
    /// `connect-timeout`: until the server's first authenticated packet.
    pub(super) poll_deadline: Option<Instant>,
    /// This entry's `explicit-exit-notify` is on.
    pub(super) exit_notify: bool,
    pub(super) connected: bool,
    /// The first key exchange finished (plugins told: TLS_VERIFY,
    /// TLS_FINAL, IPCHANGE).
    pub(super) tls_done: bool,
    pub(super) pushed: Option<Box<PushedOptions>>,
    pub(super) queue: Option<Arc<TunQueue>>,
    pub(super) trx: Option<TunRxBatch>,
    pub(super) ttx: Option<TunTxBatch>,
    /// `block-ipv6` (configured or pushed): the ICMPv6 source and a scratch
    /// buffer for the answers.
    pub(super) block_ipv6: Option<(std::net::Ipv6Addr, usize, Vec<u8>)>,
    pub(super) mss: Option<host_tun::MssLimits>,
    pub(super) ctl: Vec<u8>,
    /// Encryption scratch of the TCP path (UDP encrypts into the batch).
    pub(super) enc: Vec<u8>,
    /// Set when SIGTERM asked us to leave: the deadline of exit-notify.
    pub(super) exiting: Option<(Instant, Outcome)>,
    /// The counters of the `status` file.
    pub(super) stats: ClientStatus,
    /// `route-gateway dhcp` on a tap: DHCP replies to the device are
    /// rewritten and their router learnt.
    pub(super) dhcp_snoop: bool,
    /// The router a DHCPACK gave.
    pub(super) dhcp_router: Option<Ipv4Addr>,
    /// Routes waiting for that router: the device set-up and its name.
    pub(super) routes_pending: Option<(TunSetup, String, Vec<cfgt::Route>)>,
    /// `route-delay`: when to add the routes, and what with.
    pub(super) route_wakeup: Option<(Instant, Box<PendingRoutes>)>,
}

impl Run {
    async fn drive(
        &mut self,
        ctx: &mut Ctx<'_>,
        link: &mut Link,
        persist: &mut Persist,
        signals: &mut Inputs,
    ) -> Result<End, DaemonError> {
        let udp = matches!(link, Link::Udp { .. });
        let peer = link.peer();
        let mut status = status_interval(ctx.cfg);
        // `session-timeout N`: 2.6 raises SIGTERM N s after this
        // connection's start.
        let mut session_end = ctx
            .cfg
            .extras
            .session_timeout
            .map(|n| clock::now() + Duration::from_secs(u64::from(n)));
        loop {
            // Outputs, in the session's drain order.
            let now = clock::now();
            let unix = clock::unix_time();
            while let Some(n) = self.session.poll_transmit(now, unix, &mut self.ctl) {
                if let Some(p) = self.ctl.get(..n) {
                    self.stats.link_write_bytes += p.len() as u64;
                    link.out(&mut self.enc).send(peer, None, p);
                }
            }
            while let Some(ev) = self.session.poll_event() {
                if let Some(end) = self.on_event(ctx, link, persist, ev).await? {
                    return Ok(end);
                }
            }
            link.flush().await?;
            let snoop = self.dhcp_snoop;
            let mut router = None;
            if let (Some(q), Some(tx)) = (&self.queue, &mut self.ttx)
                && !tx.is_empty()
            {
                if snoop {
                    for f in tx.packets_mut() {
                        router = dhcp_router::take_router(f).or(router);
                    }
                }
                q.send_batch(tx)
                    .await
                    .map_err(|e| DaemonError::io("tun write", e))?;
            }
            if let Some(r) = router {
                self.dhcp_router_learnt(ctx, link, persist, r);
            }
            if let Some((deadline, o)) = self.exiting
                && clock::now() >= deadline
            {
                return Ok(End::Stop(o));
            }
            if let Some(d) = self.poll_deadline {
                if self.session.remote_session_id().is_some() {
                    self.poll_deadline = None;
                } else if clock::now() >= d {
                    tracing::info!("Server poll timeout, restarting");
                    return Ok(End::Restart {
                        connected: false,
                        how: Ending {
                            poll_timeout: true,
                            ..Ending::default()
                        },
                    });
                }
            }
            if session_end.is_some_and(|at| clock::now() >= at) && self.exiting.is_none() {
                session_end = None;
                tracing::info!("Session timeout, exiting");
                let notify = udp && self.exit_notify;
                self.session.close(clock::now(), notify);
                self.exiting = Some((clock::now() + EXIT_GRACE, Outcome::Exit(0)));
            }
            if self
                .route_wakeup
                .as_ref()
                .is_some_and(|(at, _)| clock::now() >= *at)
                && let Some((_, pending)) = self.route_wakeup.take()
            {
                self.finish_up(ctx, persist, *pending).await?;
            }
            let timeout = self.session.poll_timeout();
            let deadline = [
                timeout,
                self.exiting.map(|(d, _)| d),
                self.poll_deadline,
                self.route_wakeup.as_ref().map(|(w, _)| *w),
                session_end,
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = sleep_until(deadline);
            let tun_on = self.connected && self.queue.is_some() && self.exiting.is_none();
            tokio::select! {
                i = signals.recv() => {
                    if let Some(end) = self.on_input(link, i, udp) {
                        return Ok(end);
                    }
                }
                r = recv_link(link) => match r? {
                    LinkRx::Fast => self.on_fast(link),
                    LinkRx::FastStarted(f) => self.fast_started(link, f),
                    got => self.on_link(link, got)?,
                },
                _ = status.tick() => self.write_status(ctx.cfg, link),
                r = or_never(match (&self.queue, &mut self.trx) {
                    (Some(q), Some(rx)) => Some(q.recv_batch(rx)),
                    _ => None,
                }), if tun_on => {
                    r.map_err(|e| DaemonError::io("tun read", e))?;
                    self.on_tun(link);
                }
                _ = sleep => {
                    self.session.handle_timeout(clock::now(), clock::unix_time());
                }
            }
        }
    }

    /// A DHCPACK towards the tap named the LAN's router: it is the VPN
    /// gateway now, and routes that waited for it go in (2.6
    /// `route_list_add_vpn_gateway`).
    fn dhcp_router_learnt(
        &mut self,
        ctx: &Ctx<'_>,
        link: &Link,
        persist: &mut Persist,
        router: Ipv4Addr,
    ) {
        if self.dhcp_router == Some(router) {
            return;
        }
        tracing::info!(%router, "Extracted DHCP router address");
        self.dhcp_router = Some(router);
        if let Some((setup, dev, named)) = self.routes_pending.take() {
            let p = self.pushed.as_deref().cloned().unwrap_or_default();
            routes::install_client(
                ctx.cfg,
                &p,
                &setup,
                &dev,
                link.peer().ip(),
                &named,
                self.dhcp_router,
                &mut persist.routes,
            );
        }
    }

    fn log_stats(&self) {
        let t = self.session.data_channel().traffic();
        tracing::info!(
            packets = t.packets,
            bytes = t.bytes,
            drops = self.session.drops().total(),
            "statistics"
        );
    }

    /// Datagrams / records from the server.
    fn on_link(&mut self, link: &mut Link, got: LinkRx) -> Result<(), DaemonError> {
        let now = clock::now();
        let unix = clock::unix_time();
        let st = &mut self.stats;
        match (link, got) {
            (Link::Udp { rx, peer, .. }, LinkRx::Udp) => {
                let peer = *peer;
                for d in rx.iter() {
                    if d.peer != peer {
                        continue;
                    }
                    let tun = input(
                        &mut self.session,
                        &mut self.ttx,
                        self.mss,
                        now,
                        unix,
                        d.data,
                    );
                    st.count_in(d.data.len(), tun);
                }
            }
            (Link::Tcp { rbuf, rlens, .. }, LinkRx::Tcp) => {
                let mut rest: &[u8] = rbuf;
                for &n in rlens.iter() {
                    let Some((p, tail)) = rest.split_at_checked(n) else {
                        break;
                    };
                    let tun = input(&mut self.session, &mut self.ttx, self.mss, now, unix, p);
                    st.count_in(p.len(), tun);
                    rest = tail;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The fast path finished starting: it takes over the server's data
    /// packets (at once if the tunnel is already up).
    fn fast_started(&mut self, link: &mut Link, started: Option<FastPath>) {
        let Link::Udp { fast, peer, .. } = link else {
            return;
        };
        let Some(mut f) = started else {
            return;
        };
        if self.connected
            && let Some(id) = self.session.peer_id()
        {
            f.set_peer(id.value(), *peer);
        }
        *fast = Some(Box::new(f));
    }

    /// Data packets of the server that XDP steered to the AF_XDP sockets.
    fn on_fast(&mut self, link: &mut Link) {
        let Link::Udp {
            fast: Some(f),
            peer,
            ..
        } = link
        else {
            return;
        };
        let now = clock::now();
        let unix = clock::unix_time();
        let peer = *peer;
        let (session, ttx, mss, st) = (&mut self.session, &mut self.ttx, self.mss, &mut self.stats);
        f.recv(FAST_RX_BATCH, &mut |d| {
            if d.from != peer {
                return;
            }
            let n = d.payload.len();
            st.count_in(n, input(session, ttx, mss, now, unix, d.payload));
        });
    }

    /// Writes the `status` file.
    fn write_status(&mut self, cfg: &Config, link: &Link) {
        client_status::write_status(cfg, &mut self.stats, &self.session, link.fast());
    }

    /// A signal or a management command (nothing else reaches a client).
    fn on_input(&mut self, link: &Link, input: Input, udp: bool) -> Option<End> {
        match input {
            Input::Signal(s) => return self.on_signal(s, udp),
            Input::Mgmt { command, reply } => {
                let text = client_status::mgmt_reply(
                    &command,
                    &mut self.stats,
                    &self.session,
                    link.fast(),
                );
                // The asker may have gone; nothing to do then.
                let _ = reply.send(text);
            }
            Input::Auth(_) => tracing::debug!("an auth result in the client loop, ignored"),
        }
        None
    }

    /// TERM/HUP: exit-notify, then leave; USR1: restart; USR2: statistics.
    fn on_signal(&mut self, s: Signal, udp: bool) -> Option<End> {
        match s {
            Signal::Term | Signal::Hup => {
                let o = if s == Signal::Term {
                    Outcome::Exit(0)
                } else {
                    Outcome::Reload
                };
                tracing::info!(signal = s.name(), "shutting down the session");
                let notify = udp && self.exit_notify;
                self.session.close(clock::now(), notify);
                self.exiting = Some((clock::now() + EXIT_GRACE, o));
            }
            Signal::Usr1 => {
                tracing::info!("SIGUSR1: restarting");
                return Some(End::Restart {
                    connected: self.connected,
                    how: Ending {
                        hard_signal: true,
                        ..Ending::default()
                    },
                });
            }
            Signal::Usr2 => self.log_stats(),
        }
        None
    }

    /// Packets from the tun device to the server.
    fn on_tun(&mut self, link: &mut Link) {
        let now = clock::now();
        let (Some(rx), session, enc, st, ttx, block) = (
            &mut self.trx,
            &mut self.session,
            &mut self.enc,
            &mut self.stats,
            &mut self.ttx,
            &mut self.block_ipv6,
        ) else {
            return;
        };
        let mss = self.mss;
        let peer = link.peer();
        let h = rx.headroom();
        for (slot, len) in rx.iter_slots_mut() {
            let Some(pkt) = slot.get_mut(h..h + len) else {
                continue;
            };
            if let Some((src, tun_mtu, reply)) = block
                && icmp6::is_ipv6(pkt)
            {
                // 2.6 answers through the tun and never sends it.
                if icmp6::no_route_reply(pkt, *src, *tun_mtu, reply)
                    && let Some(tx) = ttx
                {
                    tx.push(reply);
                }
                continue;
            }
            host_tun::clamp(pkt, mss);
            st.tun_read_bytes += pkt.len() as u64;
            let Some(max) = session.data_channel().seal_buffer_len(pkt.len()) else {
                continue;
            };
            let mut first = true;
            // With `fragment` (UDP only) one round per piece, as 2.6's
            // check_fragment sends them right behind the first.
            for _ in 0..=MAX_FRAGS {
                let mut seal = |b: &mut [u8]| {
                    let n = if std::mem::take(&mut first) {
                        session.encrypt(now, pkt, b).map(<[u8]>::len).unwrap_or(0)
                    } else {
                        match session.encrypt_pending(now, b) {
                            Some(Ok(p)) => p.len(),
                            _ => 0,
                        }
                    };
                    st.link_write_bytes += n as u64;
                    n
                };
                link.out(enc).send_data(peer, None, max, &mut seal);
                if !session.data_channel().has_pending_fragment() {
                    break;
                }
            }
        }
    }

    async fn on_event(
        &mut self,
        ctx: &mut Ctx<'_>,
        link: &mut Link,
        persist: &mut Persist,
        ev: Event,
    ) -> Result<Option<End>, DaemonError> {
        match ev {
            Event::PushReply(p) => {
                tracing::info!("PUSH_REPLY received");
                self.pushed = Some(p);
            }
            Event::Connected => {
                tracing::info!(server = %link.peer(), cipher = ?self.session.cipher(), "Initialization Sequence Completed");
                self.connected = true;
                // The server's P_DATA_V2 carry our pushed peer-id: steer
                // them to the fast path (no peer-id: P_DATA_V1, socket only).
                if let (
                    Link::Udp {
                        fast: Some(f),
                        peer,
                        ..
                    },
                    Some(id),
                ) = (&mut *link, self.session.peer_id())
                {
                    f.set_peer(id.value(), *peer);
                }
                // 2.6 runs ipchange when the peer is first authenticated,
                // before the device comes up.
                if let Some(cmd) = &ctx.cfg.host.ipchange {
                    run_ipchange(&ctx.runner, cmd, link.peer()).await;
                }
                self.bring_up(ctx, link, persist).await?;
                // After the tun, routes and up script: READY means usable.
                crate::host::notify::ready(crate::host::notify::INIT_COMPLETED);
            }
            Event::AuthFailed(a) => tracing::error!(reason = ?a, "AUTH_FAILED"),
            Event::AuthPending { timeout } => tracing::info!(?timeout, "AUTH_PENDING"),
            Event::Info(s) => tracing::info!(info = %s, "INFO"),
            Event::Renegotiated { key_id } => tracing::info!(key_id = key_id, "renegotiated"),
            Event::Restart(s) => tracing::info!(signal = ?s, "server asked for a restart"),
            Event::Halt(s) => tracing::info!(signal = ?s, "server asked us to halt"),
            Event::Warning(w) => tracing::warn!("{w}"),
            Event::KeysReady { .. } if !self.tls_done => {
                self.tls_done = true;
                if let Some(cmd) = &ctx.cfg.host.tls_verify
                    && !client_tls_verify(&self.session, &ctx.runner, cmd, link.peer()).await
                {
                    tracing::error!(
                        "VERIFY SCRIPT ERROR: the tls-verify script refused the server; restarting"
                    );
                    return Ok(Some(End::Restart {
                        connected: false,
                        how: Ending::default(),
                    }));
                }
                if !client_tls_plugins(&self.session, link.peer()).await {
                    // A failed handshake in 2.6: SIGUSR1, try again.
                    tracing::error!("a TLS plugin refused the server; restarting");
                    return Ok(Some(End::Restart {
                        connected: false,
                        how: Ending::default(),
                    }));
                }
            }
            Event::KeysReady { .. } | Event::ClientCredentials { .. } | Event::PushRequested => {}
            Event::Closed { reason } => {
                tracing::info!(?reason, "session closed");
                if let Some((_, o)) = self.exiting {
                    return Ok(Some(End::Stop(o)));
                }
                return Ok(Some(match reason {
                    CloseReason::AuthFailed(_) => self.auth_failed(ctx)?,
                    CloseReason::Halt(_) | CloseReason::PingExit => End::Stop(Outcome::Exit(1)),
                    // `tls-exit`: a failed TLS negotiation ends the process
                    // (2.6 raises SIGTERM "tls-error" instead of SIGUSR1).
                    CloseReason::HandshakeTimeout | CloseReason::Tls(_)
                        if ctx.cfg.extras.tls_exit =>
                    {
                        tracing::info!("tls-exit: TLS negotiation failed, exiting");
                        End::Stop(Outcome::Exit(TLS_EXIT_STATUS))
                    }
                    CloseReason::Inactive | CloseReason::Local => End::Stop(Outcome::Exit(0)),
                    CloseReason::Restart(s) => End::Restart {
                        connected: self.connected,
                        how: Ending {
                            next_server: s.next_server,
                            ..Ending::default()
                        },
                    },
                    CloseReason::HandshakeTimeout
                    | CloseReason::PingRestart
                    | CloseReason::PeerExit
                    | CloseReason::Tls(_)
                    | CloseReason::ProtocolViolation(_) => End::Restart {
                        connected: self.connected,
                        how: Ending::default(),
                    },
                }));
            }
        }
        Ok(None)
    }

    /// `auth-retry`: 2.6 leaves through a soft SIGTERM "auth-failure"
    /// (status 0) by default, else restarts; `interact` forgets the
    /// credentials, so they are read again.
    fn auth_failed(&mut self, ctx: &mut Ctx<'_>) -> Result<End, DaemonError> {
        use crate::config::extras::AuthRetry;
        let retry = ctx.cfg.extras.auth_retry;
        if retry == AuthRetry::Interact {
            let fresh = setup::auth_user_pass(ctx.cfg)?;
            for c in [Some(&mut ctx.udp_cfg), ctx.tcp_cfg.as_mut()]
                .into_iter()
                .flatten()
            {
                let mut s = (**c).clone();
                s.auth_user_pass = fresh.clone();
                *c = Arc::new(s);
            }
        }
        Ok(match retry {
            AuthRetry::None => End::Stop(Outcome::Exit(AUTH_FAILED_STATUS)),
            AuthRetry::NoInteract | AuthRetry::Interact => {
                tracing::info!(?retry, "auth-retry: reconnecting after AUTH_FAILED");
                End::Restart {
                    connected: self.connected,
                    how: Ending::default(),
                }
            }
        })
    }
}

/// One packet from the server: data into the tun batch, control into the session.
/// Counting what the link delivered.
trait CountIn {
    /// A packet of `link` bytes gave `tun` bytes for the tun device.
    fn count_in(&mut self, link: usize, tun: usize);
}

impl CountIn for ClientStatus {
    fn count_in(&mut self, link: usize, tun: usize) {
        self.link_read_bytes += link as u64;
        self.tun_write_bytes += tun as u64;
        // A data packet that decrypted to an IP packet passed its
        // authentication (AEAD tag or HMAC).
        if tun > 0 {
            self.auth_read_bytes += link as u64;
        }
    }
}

/// Returns the bytes queued for tun.
fn input(
    session: &mut Session,
    ttx: &mut Option<TunTxBatch>,
    mss: Option<host_tun::MssLimits>,
    now: Instant,
    unix: u64,
    data: &[u8],
) -> usize {
    let Some(&first) = data.first() else { return 0 };
    let Ok((op, _)) = split_first_byte(first) else {
        return 0;
    };
    if !op.is_data() {
        session.handle_packet(now, unix, data);
        return 0;
    }
    match ttx {
        Some(tx) => {
            let mut n = 0;
            // A compressed packet grows when it is decompressed.
            let room = session.data_channel().open_buffer_len(data.len());
            tx.push_with(room, |b| {
                n = decrypt_into(session, now, data, b, mss);
                n
            });
            n
        }
        None => {
            // Not up yet: still let pings and OCC through the session.
            let mut scratch = vec![0u8; session.data_channel().open_buffer_len(data.len())];
            let _ = session.decrypt(now, data, &mut scratch);
            0
        }
    }
}

/// Decrypts `data` into `b`, moving the IP packet to the front; its length
/// (0 for pings, OCC and drops).
pub(crate) fn decrypt_into(
    session: &mut Session,
    now: Instant,
    data: &[u8],
    b: &mut [u8],
    mss: Option<host_tun::MssLimits>,
) -> usize {
    let base = b.as_ptr() as usize;
    let (off, n) = match session.decrypt(now, data, b) {
        Ok(DataOutcome::Tun(p)) => (p.as_ptr() as usize - base, p.len()),
        _ => return 0,
    };
    if off != 0 {
        b.copy_within(off..off + n, 0);
    }
    if let Some(p) = b.get_mut(..n) {
        host_tun::clamp(p, mss);
    }
    n
}
