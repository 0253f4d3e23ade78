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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::dns;
use crate::config::{self as cfgt, Config, Topology, Transport as CfgTransport};
use crate::daemon::error::DaemonError;
use crate::daemon::process::{Signal, Signals};
use crate::daemon::setup;
use crate::daemon::tunnel::{self, TunSetup};
use crate::daemon::{Outcome, or_never, sleep_until};
use crate::io::clock;
use crate::io::external::tcp::{self, TcpLinkReader, TcpLinkWriter, TcpOptions};
use crate::io::external::udp::{RecvBatch, SendBatch, UdpConfig, UdpLink};
use crate::io::internal::tun::{Tun, TunQueue, TunRxBatch, TunTxBatch};
use crate::io::mssfix::OuterTransport;
use crate::io::route::RouteTable;
use crate::io::xdp::fastpath::{FastPath, FastPathConfig, Role, Starting};
use crate::mgmt::status::{ClientStatus, LineEnd, SystemLocalTime, render_client};
use crate::proto::event::{CloseReason, Event};
use crate::proto::push::{self, PushedOptions, RedirectFlags};
use crate::proto::session::{DataOutcome, Session, SessionConfig, Transport};
use crate::proto::tls::TlsContext;
use crate::proto::wire::opcode::split_first_byte;
use crate::scripts::{ScriptContext, ScriptEnv, ScriptRunner};
use crate::server::multi::write_atomic;
use crate::server::udp::status_interval;

/// Largest control packet the session writes (tls-mtu plus wrapping).
const CONTROL_BUF: usize = 4096;
/// Tun packets read per wake-up.
const TUN_BATCH: usize = 64;
/// AF_XDP frames taken per wake-up at most.
const FAST_RX_BATCH: usize = 64;
/// How long a TCP connect may take before the next remote is tried.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long exit-notify may take at most before we leave anyway.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How one connection attempt ended.
enum End {
    /// Try again (next remote); `connected` says whether it got that far.
    Restart { connected: bool },
    /// Leave the loop with this outcome.
    Stop(Outcome),
}

/// The link to the server.
enum Link {
    Udp {
        link: UdpLink,
        peer: SocketAddr,
        rx: RecvBatch,
        tx: SendBatch,
        /// The XDP fast path for the server's data packets, when it runs
        /// (boxed: it is large and TCP links have none).
        fast: Option<Box<FastPath>>,
        /// The fast path while it starts; the handshake does not wait.
        fast_starting: Option<Starting>,
    },
    Tcp {
        reader: TcpLinkReader,
        writer: TcpLinkWriter,
        peer: SocketAddr,
        /// Packets of the last read, back to back (reused, no per-packet
        /// allocation), and their lengths.
        rbuf: Vec<u8>,
        rlens: Vec<usize>,
    },
}

impl Link {
    fn peer(&self) -> SocketAddr {
        match self {
            Link::Udp { peer, .. } | Link::Tcp { peer, .. } => *peer,
        }
    }

    /// Queues one packet for the server.
    fn queue(&mut self, packet: &[u8]) {
        match self {
            Link::Udp { tx, peer, .. } => tx.push(*peer, None, packet),
            Link::Tcp { writer, .. } => {
                if let Err(e) = writer.queue(packet) {
                    tracing::debug!(error = %e, "TCP queue full, packet dropped");
                }
            }
        }
    }

    async fn flush(&mut self) -> Result<(), DaemonError> {
        match self {
            Link::Udp { link, tx, fast, .. } => {
                if let Some(f) = fast {
                    f.flush();
                }
                if !tx.is_empty() {
                    link.send_batch(tx)
                        .await
                        .map_err(|e| DaemonError::io("UDP send", e))?;
                }
                Ok(())
            }
            Link::Tcp { writer, .. } => Ok(writer.flush().await?),
        }
    }
}

/// What survives a reconnect: the tun device (`persist-tun`), its routes.
struct Persist {
    tun: Option<(Tun, TunSetup)>,
    routes: RouteTable,
    up_ran: bool,
    restarts: u32,
    /// The DNS variables the last `up` saw; `down` sees them too.
    dns_env: ScriptEnv,
    /// What `resolvectl` changed, reverted when the device goes.
    resolved: dns::ResolvedLink,
}

/// Static context of the client.
struct Ctx<'a> {
    cfg: &'a Config,
    udp_cfg: Arc<SessionConfig>,
    tcp_cfg: Option<Arc<SessionConfig>>,
    runner: ScriptRunner,
    privileges_dropped: bool,
}

/// Runs the client until it should exit (or reload on SIGHUP).
pub async fn tunnel_point_to_point(
    cfg: &Config,
    signals: &mut Signals,
) -> Result<Outcome, DaemonError> {
    if cfg.remotes.is_empty() {
        return Err(DaemonError::Unsupported(
            "a client needs at least one 'remote'".into(),
        ));
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
        runner: tunnel::script_runner(cfg),
        privileges_dropped: false,
    };
    let mut order: Vec<usize> = (0..cfg.remotes.len()).collect();
    if cfg.remote_random {
        shuffle(&mut order);
    }
    let mut persist = Persist {
        tun: None,
        routes: RouteTable::new(),
        up_ran: false,
        restarts: 0,
        dns_env: ScriptEnv::new(),
        resolved: dns::ResolvedLink::default(),
    };
    let mut delay = Duration::from_secs(u64::from(cfg.connect_retry.initial));
    let max_delay = Duration::from_secs(u64::from(cfg.connect_retry.max.max(1)));
    let mut failures_in_row: u32 = 0;
    let mut attempt: usize = 0;
    // `resolv-retry N`: how long names have failed to resolve.
    let mut resolve_failing_since: Option<Instant> = None;
    let outcome = loop {
        let remote = &cfg.remotes[order[attempt % order.len()]];
        attempt += 1;
        if let Some(max) = cfg.connect_retry_max
            && attempt as u64 > u64::from(max) * order.len() as u64
        {
            tracing::error!("connect-retry-max reached, exiting");
            break Outcome::Exit(1);
        }
        let end = tokio::select! {
            e = connect_and_run(&mut ctx, remote, &mut persist, signals) => e,
        };
        let end = match end {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, remote = %remote.host, "connection attempt failed");
                if matches!(e, DaemonError::Resolve { .. }) {
                    let since = *resolve_failing_since.get_or_insert_with(clock::now);
                    if let cfgt::ResolvRetry::Seconds(n) = cfg.resolv_retry
                        && clock::now().duration_since(since) >= Duration::from_secs(u64::from(n))
                    {
                        tracing::error!("resolv-retry {n}: giving up");
                        break Outcome::Exit(1);
                    }
                }
                End::Restart { connected: false }
            }
        };
        if !matches!(end, End::Restart { connected: false }) {
            resolve_failing_since = None;
        }
        match end {
            End::Stop(o) => break o,
            End::Restart { connected } => {
                persist.restarts += 1;
                if !cfg.persist_tun {
                    close_tun(&ctx, &mut persist, "sigusr1").await;
                }
                if connected {
                    failures_in_row = 0;
                    delay = Duration::from_secs(u64::from(cfg.connect_retry.initial));
                } else {
                    failures_in_row += 1;
                    // As OpenVPN: after 5 failed attempts per remote, each
                    // further failure doubles the wait, up to the maximum.
                    if failures_in_row as usize > 5 * order.len() {
                        delay = (delay * 2).min(max_delay);
                    }
                }
                tracing::info!(delay = ?delay, "restarting");
                crate::daemon::notify::status("Reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    s = signals.recv() => match s {
                        Signal::Term => break Outcome::Exit(0),
                        Signal::Hup => break Outcome::Reload,
                        Signal::Usr1 | Signal::Usr2 => {}
                    },
                }
            }
        }
    };
    close_tun(&ctx, &mut persist, "sigterm").await;
    Ok(outcome)
}

/// Removes routes, runs `down` and closes the device.
async fn close_tun(ctx: &Ctx<'_>, persist: &mut Persist, signal: &str) {
    for e in persist.routes.teardown() {
        tracing::warn!(error = %e, "removing route");
    }
    if let Some((tun, setup)) = persist.tun.take() {
        if persist.up_ran {
            let info = setup.tun_info(tun.name(), None);
            tunnel::run_up_down(
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
        persist.resolved.revert().await;
        persist.up_ran = false;
        drop(tun);
    }
}

/// Resolves `remote`, connects, runs one session.
async fn connect_and_run(
    ctx: &mut Ctx<'_>,
    remote: &cfgt::Remote,
    persist: &mut Persist,
    signals: &mut Signals,
) -> Result<End, DaemonError> {
    let addr = resolve(remote).await?;
    tracing::info!(remote = %addr, proto = ?remote.proto.transport, "connecting");
    let (mut link, scfg) = match remote.proto.transport {
        CfgTransport::Udp => {
            let bind: SocketAddr = match (addr, &ctx.cfg.local) {
                (_, Some(l)) => SocketAddr::new(
                    l.parse().map_err(|_| {
                        DaemonError::Unsupported(format!("local {l}: not an IP address"))
                    })?,
                    if ctx.cfg.nobind { 0 } else { ctx.cfg.lport },
                ),
                (SocketAddr::V4(_), None) => {
                    SocketAddr::from(([0, 0, 0, 0], if ctx.cfg.nobind { 0 } else { ctx.cfg.lport }))
                }
                (SocketAddr::V6(_), None) => SocketAddr::from((
                    std::net::Ipv6Addr::UNSPECIFIED,
                    if ctx.cfg.nobind { 0 } else { ctx.cfg.lport },
                )),
            };
            let mut uc = UdpConfig::new(bind);
            uc.sndbuf = ctx.cfg.sndbuf.map(|b| b as usize);
            uc.rcvbuf = ctx.cfg.rcvbuf.map(|b| b as usize);
            let link = UdpLink::bind(&uc)?;
            let rx = link.recv_batch_buffer(16, 2048);
            let fast_starting = FastPath::start_in_background(FastPathConfig {
                mode: ctx.cfg.xdp,
                interface: ctx.cfg.xdp_interface.clone(),
                local: ctx.cfg.local.as_deref().and_then(|l| l.parse().ok()),
                peer_hint: Some(addr.ip()),
                port: link.local_addr().port(),
                // Our one peer's packets carry our own peer-id; nothing
                // else is ours to drop.
                drop_unknown: false,
                role: Role::Client,
                mapped_v4: false,
            });
            (
                Link::Udp {
                    link,
                    peer: addr,
                    rx,
                    tx: SendBatch::with_capacity(64 * 1600),
                    fast: None,
                    fast_starting,
                },
                ctx.udp_cfg.clone(),
            )
        }
        CfgTransport::TcpClient | CfgTransport::TcpServer => {
            let opts = TcpOptions {
                sndbuf: ctx.cfg.sndbuf.map(|b| b as usize),
                rcvbuf: ctx.cfg.rcvbuf.map(|b| b as usize),
                ..TcpOptions::default()
            };
            let l = tokio::select! {
                r = tokio::time::timeout(TCP_CONNECT_TIMEOUT, tcp::connect(addr, &opts)) => match r {
                    Ok(l) => l?,
                    Err(_) => return Err(DaemonError::io(format!("TCP connect to {addr}"), std::io::ErrorKind::TimedOut.into())),
                },
                s = signals.recv() => return Ok(on_idle_signal(s)),
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
    let session = Session::new_client(scfg, clock::now(), clock::unix_time())?;
    let mut run = Run {
        session,
        connected: false,
        pushed: None,
        queue: persist
            .tun
            .as_ref()
            .and_then(|(t, _)| t.queues().first().cloned()),
        trx: None,
        ttx: None,
        mss: None,
        ctl: vec![0u8; CONTROL_BUF],
        enc: vec![0u8; 4096],
        exiting: None,
        stats: ClientStatus::default(),
    };
    let r = run.drive(ctx, &mut link, persist, signals).await;
    let _ = link.flush().await;
    r
}

fn on_idle_signal(s: Signal) -> End {
    match s {
        Signal::Term => End::Stop(Outcome::Exit(0)),
        Signal::Hup => End::Stop(Outcome::Reload),
        Signal::Usr1 | Signal::Usr2 => End::Restart { connected: false },
    }
}

/// `resolv-retry`: keep resolving for that long (infinite: until a signal
/// would interrupt the caller).
async fn resolve(remote: &cfgt::Remote) -> Result<SocketAddr, DaemonError> {
    let want_v4 = remote.proto.family != cfgt::AddrFamily::V6;
    let want_v6 = remote.proto.family != cfgt::AddrFamily::V4;
    let res = tokio::net::lookup_host((remote.host.as_str(), remote.port)).await;
    let err = |detail: String| DaemonError::Resolve {
        host: remote.host.clone(),
        port: remote.port,
        detail,
    };
    let addrs = res.map_err(|e| err(e.to_string()))?;
    addrs
        .filter(|a| (a.is_ipv4() && want_v4) || (a.is_ipv6() && want_v6))
        .min_by_key(|a| a.is_ipv6())
        .ok_or_else(|| err("no address of the wanted family".into()))
}

/// A small shuffle for `remote-random` (no RNG crate needed: OpenSSL's).
fn shuffle(v: &mut [usize]) {
    for i in (1..v.len()).rev() {
        let mut b = [0u8; 4];
        if openssl::rand::rand_bytes(&mut b).is_err() {
            return;
        }
        let j = u32::from_ne_bytes(b) as usize % (i + 1);
        v.swap(i, j);
    }
}

/// One connection's state.
struct Run {
    session: Session,
    connected: bool,
    pushed: Option<Box<PushedOptions>>,
    queue: Option<Arc<TunQueue>>,
    trx: Option<TunRxBatch>,
    ttx: Option<TunTxBatch>,
    mss: Option<(u16, u16)>,
    ctl: Vec<u8>,
    /// Encryption scratch of the TCP path (UDP encrypts into the batch).
    enc: Vec<u8>,
    /// Set when SIGTERM asked us to leave: the deadline of exit-notify.
    exiting: Option<(Instant, Outcome)>,
    /// The counters of the `status` file.
    stats: ClientStatus,
}

impl Run {
    async fn drive(
        &mut self,
        ctx: &mut Ctx<'_>,
        link: &mut Link,
        persist: &mut Persist,
        signals: &mut Signals,
    ) -> Result<End, DaemonError> {
        let udp = matches!(link, Link::Udp { .. });
        let mut status = status_interval(ctx.cfg);
        loop {
            // Outputs, in the session's drain order.
            let now = clock::now();
            let unix = clock::unix_time();
            while let Some(n) = self.session.poll_transmit(now, unix, &mut self.ctl) {
                if let Some(p) = self.ctl.get(..n) {
                    self.stats.link_write_bytes += p.len() as u64;
                    link.queue(p);
                }
            }
            while let Some(ev) = self.session.poll_event() {
                if let Some(end) = self.on_event(ctx, link, persist, ev).await? {
                    return Ok(end);
                }
            }
            link.flush().await?;
            if let (Some(q), Some(tx)) = (&self.queue, &mut self.ttx)
                && !tx.is_empty()
            {
                q.send_batch(tx)
                    .await
                    .map_err(|e| DaemonError::io("tun write", e))?;
            }
            if let Some((deadline, o)) = self.exiting
                && clock::now() >= deadline
            {
                return Ok(End::Stop(o));
            }
            let timeout = self.session.poll_timeout();
            let deadline = match (timeout, self.exiting) {
                (Some(t), Some((d, _))) => Some(t.min(d)),
                (t, None) => t,
                (None, Some((d, _))) => Some(d),
            };
            let sleep = sleep_until(deadline);
            let tun_on = self.connected && self.queue.is_some() && self.exiting.is_none();
            tokio::select! {
                s = signals.recv() => {
                    match s {
                        Signal::Term | Signal::Hup => {
                            let o = if s == Signal::Term { Outcome::Exit(0) } else { Outcome::Reload };
                            tracing::info!(signal = s.name(), "shutting down the session");
                            let notify = udp && ctx.cfg.explicit_exit_notify.is_some();
                            self.session.close(clock::now(), notify);
                            self.exiting = Some((clock::now() + EXIT_GRACE, o));
                        }
                        Signal::Usr1 => {
                            tracing::info!("SIGUSR1: restarting");
                            return Ok(End::Restart { connected: self.connected });
                        }
                        Signal::Usr2 => self.log_stats(),
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

    /// Writes the `status` file: OpenVPN's STATISTICS block, plus the XDP
    /// counters when the fast path runs.
    fn write_status(&mut self, cfg: &Config, link: &Link) {
        let Some(sf) = &cfg.status else {
            return;
        };
        self.stats.now = clock::unix_time();
        self.stats.xdp = match link {
            Link::Udp { fast: Some(f), .. } => Some(f.counters()),
            _ => None,
        };
        let text = render_client(&self.stats, LineEnd::Lf, &SystemLocalTime);
        if let Err(e) = write_atomic(&sf.path, text.as_bytes()) {
            tracing::warn!(error = %e, "status file");
        }
    }

    /// Packets from the tun device to the server.
    fn on_tun(&mut self, link: &mut Link) {
        let now = clock::now();
        let (Some(rx), session, enc, st) = (
            &mut self.trx,
            &mut self.session,
            &mut self.enc,
            &mut self.stats,
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
            tunnel::clamp(pkt, mss);
            st.tun_read_bytes += pkt.len() as u64;
            let Some(max) = session.data_channel().seal_buffer_len(pkt.len()) else {
                continue;
            };
            let mut seal = |b: &mut [u8]| {
                let n = session.encrypt(now, pkt, b).map(<[u8]>::len).unwrap_or(0);
                st.link_write_bytes += n as u64;
                n
            };
            match link {
                Link::Udp { tx, fast, .. } => {
                    // The fast path when it knows the way, else the socket.
                    let sent = fast
                        .as_mut()
                        .and_then(|f| f.send_with(peer, max, &mut seal));
                    if sent.is_none() {
                        tx.push_with(peer, None, max, seal);
                    }
                }
                Link::Tcp { writer, .. } => {
                    if enc.len() < max {
                        enc.resize(max, 0);
                    }
                    if let Some(b) = enc.get_mut(..max) {
                        let n = seal(b);
                        if let Some(c) = b.get(..n).filter(|c| !c.is_empty())
                            && let Err(e) = writer.queue(c)
                        {
                            tracing::debug!(error = %e, "TCP queue full, packet dropped");
                        }
                    }
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
                self.bring_up(ctx, link, persist).await?;
                // After the tun, routes and up script: READY means usable.
                crate::daemon::notify::ready(crate::daemon::notify::INIT_COMPLETED);
            }
            Event::AuthFailed(a) => tracing::error!(reason = ?a, "AUTH_FAILED"),
            Event::AuthPending { timeout } => tracing::info!(?timeout, "AUTH_PENDING"),
            Event::Info(s) => tracing::info!(info = %s, "INFO"),
            Event::Renegotiated { key_id } => tracing::info!(key_id = key_id, "renegotiated"),
            Event::Restart(s) => tracing::info!(signal = ?s, "server asked for a restart"),
            Event::Halt(s) => tracing::info!(signal = ?s, "server asked us to halt"),
            Event::Warning(w) => tracing::warn!("{w}"),
            Event::KeysReady { .. } | Event::ClientCredentials { .. } | Event::PushRequested => {}
            Event::Closed { reason } => {
                tracing::info!(?reason, "session closed");
                if let Some((_, o)) = self.exiting {
                    return Ok(Some(End::Stop(o)));
                }
                return Ok(Some(match reason {
                    CloseReason::AuthFailed(_) | CloseReason::Halt(_) | CloseReason::PingExit => {
                        End::Stop(Outcome::Exit(1))
                    }
                    CloseReason::Inactive | CloseReason::Local => End::Stop(Outcome::Exit(0)),
                    CloseReason::HandshakeTimeout
                    | CloseReason::PingRestart
                    | CloseReason::PeerExit
                    | CloseReason::Restart(_)
                    | CloseReason::Tls(_)
                    | CloseReason::ProtocolViolation(_) => End::Restart {
                        connected: self.connected,
                    },
                }));
            }
        }
        Ok(None)
    }

    /// Opens or re-addresses the tun device, installs routes, runs `up`.
    async fn bring_up(
        &mut self,
        ctx: &mut Ctx<'_>,
        link: &Link,
        persist: &mut Persist,
    ) -> Result<(), DaemonError> {
        let cfg = ctx.cfg;
        let p = self.pushed.as_deref().cloned().unwrap_or_default();
        let topology = match p.topology {
            Some(push::Topology::Subnet) => Topology::Subnet,
            Some(push::Topology::P2p) => Topology::P2p,
            Some(push::Topology::Net30) => Topology::Net30,
            None if p.ifconfig.is_some() => Topology::Net30,
            None => cfg.topology,
        };
        let setup = TunSetup {
            mtu: p
                .tun_mtu
                .unwrap_or_else(|| u16::try_from(cfg.tun_mtu).unwrap_or(1500)),
            topology,
            ipv4: p
                .ifconfig
                .or_else(|| cfg.ifconfig.map(|i| (i.local, i.remote_netmask))),
            ipv6: p.ifconfig_ipv6.or_else(|| {
                cfg.ifconfig_ipv6
                    .map(|i| (i.local.addr(), i.local.prefix_len(), Some(i.remote)))
            }),
        };
        let fresh = match &mut persist.tun {
            Some((tun, old)) => {
                if *old != setup {
                    tunnel::readdress_tun(tun, old, &setup)?;
                    *old = setup;
                }
                false
            }
            None => {
                if ctx.privileges_dropped {
                    return Err(DaemonError::Unsupported(
                        "cannot re-open the tun device after dropping privileges (use persist-tun)"
                            .into(),
                    ));
                }
                let tun = tunnel::open_tun(cfg, &setup, 1)?;
                tracing::info!(dev = tun.name(), ?setup, "tun device opened");
                persist.tun = Some((tun, setup));
                true
            }
        };
        let Some((tun, _)) = &persist.tun else {
            return Ok(());
        };
        let dev = tun.name().to_owned();
        let q = tun.queues().first().cloned();
        self.trx = q.as_ref().map(|q| q.rx_batch(TUN_BATCH, 0, setup.mtu));
        self.ttx = q.as_ref().map(|q| q.tx_batch(TUN_BATCH));
        self.queue = q;
        let outer = match (link, link.peer().is_ipv6()) {
            (Link::Udp { .. }, false) => OuterTransport::Udp4,
            (Link::Udp { .. }, true) => OuterTransport::Udp6,
            (Link::Tcp { .. }, false) => OuterTransport::Tcp4,
            (Link::Tcp { .. }, true) => OuterTransport::Tcp6,
        };
        self.mss = tunnel::mss_limits(
            cfg,
            outer,
            setup::framing(cfg.compression).max_overhead() as u16,
        );
        if !ctx.privileges_dropped && persist.routes.installed() == 0 {
            self.install_routes(cfg, &p, &setup, &dev, link.peer().ip(), &mut persist.routes);
        }
        let dns = dns::pulled_logged(cfg, &p);
        persist.dns_env = dns::script_env(&dns);
        if fresh || !persist.up_ran {
            let ctxw = if persist.restarts > 0 {
                ScriptContext::Restart
            } else {
                ScriptContext::Init
            };
            let gw = match p.route_gateway {
                Some(push::RouteGateway::Addr(a)) => Some(a),
                _ => None,
            };
            let info = setup.tun_info(&dev, gw);
            tunnel::run_up_down(cfg, &ctx.runner, false, &info, ctxw, None, &persist.dns_env).await;
            persist.up_ran = true;
        }
        persist
            .resolved
            .apply(cfg, ctx.runner.security, &dev, &dns)
            .await;
        if !ctx.privileges_dropped && (cfg.user.is_some() || cfg.group.is_some()) {
            // The status file stays writable after the drop, as in OpenVPN.
            crate::server::tcp::hold_rewritten_files(cfg);
            crate::daemon::process::drop_privileges(cfg)?;
            ctx.privileges_dropped = true;
        }
        Ok(())
    }

    fn install_routes(
        &self,
        cfg: &Config,
        p: &PushedOptions,
        setup: &TunSetup,
        dev: &str,
        server: IpAddr,
        rt: &mut RouteTable,
    ) {
        let local = setup.ipv4.map(|a| a.0);
        let mut errs = Vec::new();
        let redirect = p
            .redirect_gateway
            .or(cfg.redirect_gateway.filter(|r| r.default_route).map(|r| {
                let mut f = RedirectFlags::empty();
                if r.def1 {
                    f |= RedirectFlags::DEF1;
                }
                if r.ipv6 {
                    f |= RedirectFlags::IPV6;
                }
                if !r.ipv4 {
                    f |= RedirectFlags::NOT_IPV4;
                }
                f
            }));
        if let Some(f) = redirect {
            // Always the def1 form: the old default route stays, two more
            // specific halves win, and the host route keeps the server
            // reachable through the old gateway.
            if !f.contains(RedirectFlags::NOT_IPV4)
                && let Err(e) = rt.redirect_gateway_def1(server, dev, None)
            {
                errs.push(DaemonError::from(e));
            }
            if f.contains(RedirectFlags::IPV6)
                && let Err(e) = rt.redirect_gateway_ipv6(server, dev, None)
            {
                errs.push(DaemonError::from(e));
            }
        }
        for r in &cfg.routes {
            if let Err(e) = tunnel::add_route_v4(
                rt,
                dev,
                r.network,
                r.netmask,
                r.gateway,
                r.metric,
                Some(server),
                local,
            ) {
                errs.push(e);
            }
        }
        for r in &p.routes {
            if let Err(e) = tunnel::add_route_v4(
                rt,
                dev,
                r.network,
                r.netmask,
                r.gateway,
                r.metric.or(p.route_metric),
                Some(server),
                local,
            ) {
                errs.push(e);
            }
        }
        for r in &cfg.routes_ipv6 {
            if let Err(e) = tunnel::add_route_v6(rt, dev, r.network, r.gateway, r.metric) {
                errs.push(e);
            }
        }
        for r in &p.routes_ipv6 {
            match ipnet::Ipv6Net::new(r.network, r.prefix_len) {
                Ok(n) => {
                    if let Err(e) = tunnel::add_route_v6(rt, dev, n, r.gateway, r.metric) {
                        errs.push(e);
                    }
                }
                Err(_) => tracing::warn!(network = %r.network, "bad pushed route-ipv6 prefix"),
            }
        }
        for e in errs {
            tracing::warn!(error = %e, "route not installed");
        }
    }
}

/// What the link delivered.
enum LinkRx {
    Udp,
    Tcp,
    /// The fast path's receive rings have frames.
    Fast,
    /// The fast path finished starting (`None`: plain sockets).
    FastStarted(Option<FastPath>),
}

async fn recv_link(link: &mut Link) -> Result<LinkRx, DaemonError> {
    match link {
        Link::Udp {
            link,
            rx,
            fast,
            fast_starting,
            ..
        } => {
            let fast_ready = or_never(fast.as_deref().map(FastPath::readable));
            let started = or_never(fast_starting.as_mut().map(Starting::finished));
            tokio::select! {
                r = link.recv_batch(rx) => {
                    r.map_err(|e| DaemonError::io("UDP receive", e))?;
                    Ok(LinkRx::Udp)
                }
                () = fast_ready => Ok(LinkRx::Fast),
                f = started => {
                    *fast_starting = None;
                    Ok(LinkRx::FastStarted(f))
                }
            }
        }
        Link::Tcp {
            reader,
            rbuf,
            rlens,
            ..
        } => {
            rbuf.clear();
            rlens.clear();
            reader
                .recv_with(|p| {
                    rbuf.extend_from_slice(p);
                    rlens.push(p.len());
                })
                .await?;
            Ok(LinkRx::Tcp)
        }
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
    mss: Option<(u16, u16)>,
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
            tx.push_with(data.len(), |b| {
                n = decrypt_into(session, now, data, b, mss);
                n
            });
            n
        }
        None => {
            // Not up yet: still let pings and OCC through the session.
            let mut scratch = vec![0u8; data.len()];
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
    mss: Option<(u16, u16)>,
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
        tunnel::clamp(p, mss);
    }
    n
}
