//! `tunnel_server_tcp`: the TCP server loop. One stream per client, no
//! cookie (the handshake is stateful from the first packet, as the
//! stream already proves the address). Each connection has a reader task
//! feeding whole packets to the loop and a writer task draining a bounded
//! outbox; the loop owns the client table, so routing, auth and status
//! are the UDP server's ([`Multi`]). Also holds the server's tun set-up
//! shared with the UDP loop.
//!
//! The data path allocates nothing once warm: packets travel framed
//! (`| len u16 BE | packet |`...) in buffers that change hands whole.
//!
//! ```text
//!  reader task ──Packets(buf)──> loop ──recycle(buf)──> reader task (spares)
//!  loop: send/send_with append to Conn.pending; hand_off() once per
//!        iteration swaps pending <-> Outbox.buf (or appends if busy)
//!  writer task: swaps Outbox.buf <-> its emptied batch, writes it, repeats
//! ```

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, mpsc};

use crate::config::{Config, DevType, RouteGateway};
use crate::daemon::Outcome;
use crate::daemon::error::DaemonError;
use crate::daemon::process::{Signal, Signals};
use crate::daemon::route_up;
use crate::daemon::setup;
use crate::daemon::tunnel::{self, TunSetup};
use crate::io::clock;
use crate::io::external::tcp::{TcpError, TcpLink, TcpLinkReader, TcpLinkWriter, TcpServer};
use crate::io::internal::tun::{Tun, TunQueue};
use crate::io::mssfix::OuterTransport;
use crate::io::route::RouteTable;
use crate::proto::session::{Session, Transport};
use crate::proto::wire::tcp::{LEN_PREFIX, push_record, push_record_with, records};
use crate::scripts::{DnsSettings, ScriptContext, ScriptEnv, ScriptRunner};
use crate::server::multi::{LinkOut, Multi};
use crate::server::peers::PeerId;
use crate::server::port_share;

/// A new TCP client: its session, its slot in `multi`, its connection.
fn admit(
    multi: &mut Multi,
    scfg: &Arc<crate::proto::session::SessionConfig>,
    link: TcpLink,
    addr: SocketAddr,
    out: &mut TcpOut,
    ev_tx: &mpsc::Sender<ConnEvent>,
) -> Option<PeerId> {
    let session = match Session::new_server_stateful(scfg.clone(), clock::now(), clock::unix_time())
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "new session");
            return None;
        }
    };
    let id = multi.add_client(session, addr, None)?;
    out.conns
        .insert(addr, Conn::start(link, addr, ev_tx.clone()));
    Some(id)
}

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
        let info = self.setup.tun_info(self.tun.name(), None);
        let routes = self.routes.installed() > 0 || cfg.host.route_noexec;
        let env = dns_env(cfg);
        tunnel::run_route_pre_down(cfg, &self.runner, &info, Some("sigterm"), &env, routes).await;
        for e in self.routes.teardown() {
            tracing::warn!(error = %e, "removing route");
        }
        // 2.6 closes the device before `down` unless `down-pre` is given.
        let tun = if cfg.extras.down_pre {
            Some(self.tun)
        } else {
            drop(self.tun);
            None
        };
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
        drop(tun);
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
pub(crate) fn hold_rewritten_files(cfg: &Config) {
    if cfg.user.is_none() && cfg.group.is_none() {
        return;
    }
    let status = cfg.status.as_ref().map(|s| s.path.as_path());
    // `ifconfig-pool-persist FILE 0` only reads: nothing to hold.
    let persist = cfg
        .ifconfig_pool_persist
        .as_ref()
        .filter(|p| p.seconds > 0)
        .map(|p| p.file.as_path());
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
    let mut routes = RouteTable::new().noexec(cfg.host.route_noexec);
    let dev = tun.name().to_owned();
    let runner = tunnel::script_runner(cfg);
    let info = setup.tun_info(&dev, None);
    // 2.6 order: `up`, then the routes, then `route-up`.
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
    let default_metric = cfg.extras.route_metric;
    let gw = route_up::Gateways {
        vpn: match cfg.route_gateway {
            Some(RouteGateway::Addr(a)) => Some(a),
            _ => setup
                .ipv4
                .filter(|_| cfg.topology != crate::config::Topology::Subnet)
                .map(|a| a.1),
        },
        net: route_up::default_gateway_v4(),
        remote_host: None,
    };
    let tap_gw = match (cfg.dev_type, cfg.route_gateway) {
        (DevType::Tap, Some(RouteGateway::Addr(a))) => Some(a),
        _ => None,
    };
    let named = crate::daemon::named_routes::resolve(cfg).await;
    let mut env_routes = Vec::new();
    for r in cfg.routes.iter().chain(&named) {
        let metric = r.metric.or(default_metric);
        env_routes.extend(gw.env_route(r.network, r.netmask, r.gateway, metric));
        if let Err(e) = tunnel::add_route_v4(
            &mut routes,
            &dev,
            r.network,
            r.netmask,
            tunnel::tap_route_gateway(r.gateway, tap_gw),
            metric,
            None,
            setup.ipv4.map(|a| a.0),
        ) {
            tracing::warn!(error = %e, "route not installed");
        }
    }
    let mut env_routes6 = Vec::new();
    for r in &cfg.routes_ipv6 {
        let metric = r.metric.or(default_metric);
        env_routes6.push(route_up::EnvRoute6 {
            network: r.network,
            gateway: r.gateway.or(setup.ipv6.and_then(|a| a.2)),
            metric,
        });
        if let Err(e) = tunnel::add_route_v6(&mut routes, &dev, r.network, r.gateway, metric) {
            tracing::warn!(error = %e, "route-ipv6 not installed");
        }
    }
    let env = route_up::route_env(&info, &env_routes, &env_routes6, &gw, false, &dns_env(cfg));
    tunnel::route_up_plugin().await;
    route_up::run_route_up(cfg, &runner, &env).await;
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

/// Largest framed bytes waiting for one connection's writer; beyond it
/// packets are dropped (the client is not reading: backpressure by loss,
/// as with a full UDP socket).
const OUTBOX_MAX: usize = 1 << 20;
/// Initial capacity of a batch buffer (one socket read, or a tun batch).
const BATCH_CAPACITY: usize = 64 * 1024;
/// Spare receive buffers a connection's reader keeps for reuse.
const READ_SPARES: usize = 16;

/// Appends `packet` with OpenVPN's 2-byte length prefix; false (nothing
/// appended) for an empty or over-65535-byte packet.
fn push_frame(buf: &mut Vec<u8>, packet: &[u8]) -> bool {
    push_record(buf, packet).is_ok()
}

/// The packets of a buffer filled by [`push_frame`].
fn frames(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    records(buf)
}

/// Framed packets on their way from the loop to a connection's writer
/// task. The loop hands over its whole batch by swapping buffers, the
/// writer takes it by swapping with its emptied one: three buffers
/// circulate and nothing is allocated once they have grown.
#[derive(Default)]
struct Outbox {
    buf: Mutex<Vec<u8>>,
    notify: Notify,
    /// Set by the loop when the connection goes: write what is left, FIN.
    closed: AtomicBool,
}

/// One connection as the loop sees it.
struct Conn {
    /// Framed packets queued during this loop iteration.
    pending: Vec<u8>,
    outbox: Arc<Outbox>,
    /// Where the loop returns the reader's emptied buffers.
    read_spares: mpsc::Sender<Vec<u8>>,
    /// Packets dropped because the writer fell behind.
    dropped: u64,
}

impl Conn {
    /// Splits `link` into a reader task (whole packets to `events`) and a
    /// writer task (draining the outbox).
    fn start(link: TcpLink, addr: SocketAddr, events: mpsc::Sender<ConnEvent>) -> Self {
        let (reader, writer) = link.split();
        let outbox = Arc::new(Outbox::default());
        let (spare_tx, spare_rx) = mpsc::channel(READ_SPARES);
        tokio::spawn(write_task(writer, outbox.clone()));
        tokio::spawn(read_task(reader, addr, events, spare_rx));
        Conn {
            pending: Vec::with_capacity(BATCH_CAPACITY),
            outbox,
            read_spares: spare_tx,
            dropped: 0,
        }
    }

    /// Queues a packet written by `fill` into at most `max` bytes.
    fn push_with(&mut self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) {
        if self.pending.len() + LEN_PREFIX + max > OUTBOX_MAX
            || push_record_with(&mut self.pending, max, fill).is_err()
        {
            self.dropped += 1;
        }
    }

    /// Queues a copy of `packet`.
    fn push(&mut self, packet: &[u8]) {
        if self.pending.len() + LEN_PREFIX + packet.len() > OUTBOX_MAX
            || !push_frame(&mut self.pending, packet)
        {
            self.dropped += 1;
        }
    }

    /// Hands what this iteration queued to the writer task.
    fn hand_off(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        {
            let mut inbox = self
                .outbox
                .buf
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if inbox.is_empty() {
                std::mem::swap(&mut *inbox, &mut self.pending);
            } else if inbox.len() + self.pending.len() <= OUTBOX_MAX {
                // The writer is still busy with the previous batch.
                inbox.extend_from_slice(&self.pending);
            } else {
                self.dropped += frames(&self.pending).count() as u64;
                tracing::debug!(
                    dropped = self.dropped,
                    "TCP client not reading, packets dropped"
                );
            }
        }
        self.pending.clear();
        self.outbox.notify.notify_one();
    }

    /// Returns a buffer the reader task filled.
    fn recycle(&self, mut buf: Vec<u8>) {
        buf.clear();
        // A full spare queue frees it: the reader has enough.
        let _ = self.read_spares.try_send(buf);
    }

    /// Flushes what is queued, then lets the writer finish and close.
    fn close(mut self) {
        self.hand_off();
    }
}

impl Drop for Conn {
    /// The writer task writes what it has, sends FIN and ends.
    fn drop(&mut self) {
        self.outbox.closed.store(true, Ordering::Release);
        self.outbox.notify.notify_one();
    }
}

/// Writes the outbox's batches until the loop closes it or the stream fails.
async fn write_task(mut writer: TcpLinkWriter, outbox: Arc<Outbox>) {
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH_CAPACITY);
    loop {
        outbox.notify.notified().await;
        loop {
            {
                let mut inbox = outbox.buf.lock().unwrap_or_else(PoisonError::into_inner);
                if inbox.is_empty() {
                    break;
                }
                std::mem::swap(&mut *inbox, &mut batch);
            }
            if let Err(e) = write_batch(&mut writer, &batch).await {
                tracing::debug!(error = %e, "TCP write");
                return;
            }
            batch.clear();
        }
        if outbox.closed.load(Ordering::Acquire) {
            let _ = writer.shutdown().await;
            return;
        }
    }
}

/// Queues every packet of `batch` on the stream and flushes.
async fn write_batch(writer: &mut TcpLinkWriter, batch: &[u8]) -> Result<(), TcpError> {
    for p in frames(batch) {
        match writer.queue(p) {
            Err(TcpError::QueueFull { .. }) => {
                writer.flush().await?;
                writer.queue(p)?;
            }
            r => r?,
        }
    }
    writer.flush().await
}

/// Reads whole packets into reused buffers and reports them to the loop.
async fn read_task(
    mut reader: TcpLinkReader,
    addr: SocketAddr,
    events: mpsc::Sender<ConnEvent>,
    mut spares: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = spares
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_CAPACITY));
        match reader
            .recv_with(|p| {
                push_frame(&mut buf, p);
            })
            .await
        {
            Ok(_) => {
                if events.send(ConnEvent::Packets(addr, buf)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, client = %addr, "TCP connection ended");
                let _ = events.send(ConnEvent::Closed(addr)).await;
                return;
            }
        }
    }
}

/// The connections, as the sessions' way out.
#[derive(Default)]
struct TcpOut {
    conns: HashMap<SocketAddr, Conn>,
    /// Connections with packets queued in this iteration.
    ready: Vec<SocketAddr>,
}

impl TcpOut {
    fn conn(&mut self, to: SocketAddr) -> Option<&mut Conn> {
        let c = self.conns.get_mut(&to)?;
        if c.pending.is_empty() {
            self.ready.push(to);
        }
        Some(c)
    }

    /// Hands every connection's queued packets to its writer.
    fn hand_off(&mut self) {
        for a in self.ready.drain(..) {
            if let Some(c) = self.conns.get_mut(&a) {
                c.hand_off();
            }
        }
    }

    /// Ends a connection: its queued packets still go out, then FIN.
    fn close(&mut self, addr: SocketAddr) {
        if let Some(c) = self.conns.remove(&addr) {
            c.close();
        }
    }
}

impl LinkOut for TcpOut {
    fn send(&mut self, to: SocketAddr, _src: Option<IpAddr>, packet: &[u8]) {
        if let Some(c) = self.conn(to) {
            c.push(packet);
        }
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        _src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        if let Some(c) = self.conn(to) {
            c.push_with(max, fill);
        }
    }
}

/// What the reader tasks report.
enum ConnEvent {
    /// Whole packets, framed as by [`push_frame`], in a buffer to return
    /// with [`Conn::recycle`].
    Packets(SocketAddr, Vec<u8>),
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
    let opts = setup::tcp_options(cfg);
    let server = TcpServer::bind(bind, cfg.host.bind_ipv6only, opts)?;
    tracing::info!(local = ?server.local_addr().ok(), "TCP server listening");
    let st = bring_up_server_tun(cfg).await?;
    crate::daemon::notify::ready(crate::daemon::notify::INIT_COMPLETED);
    let (mut multi, mut auth_rx) = Multi::new(Arc::new(cfg.clone()), scfg.clone())?;
    let outer = if bind.is_ipv6() {
        OuterTransport::Tcp6
    } else {
        OuterTransport::Tcp4
    };
    multi.mss = tunnel::mss_limits(
        cfg,
        outer,
        setup::framing(cfg.compression).mtu_overhead() as u16,
    );
    let q = st.queue.clone();
    let mtu = st.setup.mtu;
    let mut trx = q.rx_batch(64, 0, mtu);
    let mut ttx = q.tx_batch(64);
    let mut out = TcpOut::default();
    let (ev_tx, mut ev_rx) = mpsc::channel::<ConnEvent>(1024);
    // port-share: connections that turned out to be OpenVPN clients.
    let (shared_tx, mut shared_rx) = mpsc::channel::<(tokio::net::TcpStream, SocketAddr)>(64);
    let mut status = super::udp::status_interval(cfg);
    let mut persist = super::udp::persist_interval(cfg);
    let mut dirty: BTreeSet<PeerId> = BTreeSet::new();
    let outcome = loop {
        for id in std::mem::take(&mut dirty) {
            let addr = multi.peers.get(id).map(|p| p.transport());
            if !multi.drain(id, &mut out)
                && let Some(a) = addr
            {
                // What drain queued (an exit or restart message) still goes out.
                out.hand_off();
                out.close(a);
            }
        }
        out.hand_off();
        if !ttx.is_empty()
            && let Err(e) = q.send_batch(&mut ttx).await
        {
            return Err(DaemonError::io("tun write", e));
        }
        let sleep = crate::daemon::sleep_until(multi.next_timeout());
        tokio::select! {
            s = signals.recv() => match s {
                Signal::Term => break Outcome::Exit(0),
                Signal::Hup | Signal::Usr1 => break Outcome::Reload,
                Signal::Usr2 => tracing::info!(clients = multi.peers.len(), route_drops = ?multi.route_drops, "statistics"),
            },
            a = server.accept_stream() => {
                let (stream, addr) = match a {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept");
                        continue;
                    }
                };
                if let Some(ps) = &cfg.host.port_share {
                    // Looked at off the loop: a silent connection must not
                    // hold up the others.
                    let (ps, tx) = (ps.clone(), shared_tx.clone());
                    let patience = std::time::Duration::from_secs(u64::from(cfg.hand_window));
                    tokio::spawn(async move {
                        match port_share::classify(&stream, patience).await {
                            port_share::Sniff::OpenVpn => {
                                let _ = tx.send((stream, addr)).await;
                            }
                            port_share::Sniff::Foreign => port_share::relay(stream, addr, &ps).await,
                        }
                    });
                    continue;
                }
                let link = match server.frame(stream) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept");
                        continue;
                    }
                };
                if let Some(id) = admit(&mut multi, &scfg, link, addr, &mut out, &ev_tx) {
                    dirty.insert(id);
                }
            }
            Some((stream, addr)) = shared_rx.recv() => {
                match server.frame(stream) {
                    Ok(link) => {
                        if let Some(id) = admit(&mut multi, &scfg, link, addr, &mut out, &ev_tx) {
                            dirty.insert(id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "accept"),
                }
            }
            Some(ev) = ev_rx.recv() => match ev {
                ConnEvent::Packets(addr, packets) => {
                    if let Some(id) = multi.peers.by_transport(addr) {
                        let now = clock::now();
                        let unix = clock::unix_time();
                        for p in frames(&packets) {
                            multi.link_packet(id, None, p, None, now, unix, &mut out, &mut ttx);
                        }
                        dirty.insert(id);
                    }
                    if let Some(c) = out.conns.get(&addr) {
                        c.recycle(packets);
                    }
                }
                ConnEvent::Closed(addr) => {
                    if let Some(id) = multi.peers.by_transport(addr) {
                        multi.remove(id);
                    }
                    out.close(addr);
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
    out.hand_off();
    multi.remove_all();
    // Let the writer tasks flush the RESTART messages.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    multi.write_status();
    multi.write_pool_persist();
    st.shutdown(cfg).await;
    Ok(outcome)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use super::*;
    use crate::io::external::tcp::{self, TcpOptions};

    /// Counts this thread's heap allocations; everything else is `System`.
    struct Counting;

    thread_local! {
        static ALLOCS: Cell<u64> = const { Cell::new(0) };
    }

    fn count() {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    }

    /// This thread's heap allocations so far (also used by the data-channel tests).
    pub(crate) fn allocs() -> u64 {
        ALLOCS.with(Cell::get)
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    #[test]
    fn frames_round_trip_and_stop_at_a_torn_record() {
        let mut b = Vec::new();
        assert!(push_frame(&mut b, b"abc"));
        assert!(!push_frame(&mut b, b""), "empty records do not exist");
        assert!(push_frame(&mut b, &[7u8; 300]));
        assert!(!push_frame(&mut b, &vec![0u8; 70_000]));
        let got: Vec<usize> = frames(&b).map(<[u8]>::len).collect();
        assert_eq!(got, [3, 300]);
        b.extend_from_slice(&[0, 9, 1, 2]);
        assert_eq!(frames(&b).count(), 2, "a short last record is not a packet");
    }

    #[test]
    fn a_client_that_does_not_read_gets_drops_not_memory() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts = TcpOptions::default();
            let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), false, opts).unwrap();
            let addr = server.local_addr().unwrap();
            let (c, s) = tokio::join!(tcp::connect(addr, &opts), server.accept());
            let _client = c.unwrap();
            let (link, peer) = s.unwrap();
            let (ev_tx, _ev_rx) = mpsc::channel(16);
            let mut conn = Conn::start(link, peer, ev_tx);
            // Far more than socket buffers and the outbox hold, never read.
            let pkt = [1u8; 1400];
            for _ in 0..4 {
                for _ in 0..1000 {
                    conn.push(&pkt);
                }
                conn.hand_off();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(conn.dropped > 0);
            let queued = conn.outbox.buf.lock().unwrap().len();
            assert!(queued <= OUTBOX_MAX, "{queued}");
        });
    }

    /// Packets both ways through a real loopback connection: after a
    /// warm-up, the loop, the reader task and the writer task allocate
    /// nothing (a current-thread runtime keeps them all on this thread).
    #[test]
    fn steady_state_data_path_does_not_allocate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts = TcpOptions::default();
            let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), false, opts).unwrap();
            let addr = server.local_addr().unwrap();
            let (c, s) = tokio::join!(tcp::connect(addr, &opts), server.accept());
            let (mut crd, mut cwr) = c.unwrap().split();
            let (link, peer) = s.unwrap();
            let (ev_tx, mut ev_rx) = mpsc::channel(1024);
            let mut out = TcpOut::default();
            out.conns.insert(peer, Conn::start(link, peer, ev_tx));
            let pkt = [0x45u8; 1200];
            let mut before = 0;
            for round in 0..400 {
                if round == 100 {
                    before = allocs();
                }
                // Loop -> client: copies and in-place encryptions.
                for i in 0..16 {
                    if i % 2 == 0 {
                        out.send(peer, None, &pkt);
                    } else {
                        out.send_with(peer, None, 1300, &mut |b| {
                            b.get_mut(..1200).map_or(0, |d| {
                                d.copy_from_slice(&pkt);
                                1200
                            })
                        });
                    }
                }
                out.hand_off();
                let mut n = 0;
                while n < 16 {
                    n += crd.recv_with(|p| assert_eq!(p, &pkt[..])).await.unwrap();
                }
                // Client -> loop.
                for _ in 0..16 {
                    cwr.queue(&pkt).unwrap();
                }
                cwr.flush().await.unwrap();
                let mut m = 0;
                while m < 16 {
                    match ev_rx.recv().await.unwrap() {
                        ConnEvent::Packets(a, buf) => {
                            for p in frames(&buf) {
                                assert_eq!(p, &pkt[..]);
                                m += 1;
                            }
                            out.conns.get(&a).unwrap().recycle(buf);
                        }
                        ConnEvent::Closed(_) => panic!("connection closed"),
                    }
                }
            }
            let during = allocs() - before;
            assert_eq!(
                during, 0,
                "{during} allocations for 300 rounds of 32 packets"
            );
        });
    }

    /// The compression context (it lives in proto/, tested here because
    /// this binary's allocator counts): once built, compressing and
    /// decompressing allocate nothing, for every algorithm.
    #[test]
    fn compression_steady_path_does_not_allocate() {
        use crate::proto::data::compress::{CompressOptions, Compressor};
        let text: Vec<u8> = b"GET /index.html HTTP/1.1\r\nHost: example\r\n"
            .iter()
            .copied()
            .cycle()
            .take(1400)
            .collect();
        for alg in ["comp-lzo", "lz4", "lz4-v2"] {
            let mut o = CompressOptions::default();
            o.allow_compression("yes").unwrap();
            if alg == "comp-lzo" {
                o.comp_lzo(None).unwrap();
            } else {
                o.compress(Some(alg)).unwrap();
            }
            let mut tx = Compressor::new(o, 1628);
            let mut rx = Compressor::new(o, 1628);
            let mut buf = vec![0u8; 2048];
            // The first packet allocates the compressor's work memory.
            tx.frame(&text, 0).unwrap();
            let before = allocs();
            for t in 0..200u64 {
                let sent = tx.frame(&text, t / 10).unwrap();
                assert!(sent.len() < 400, "{alg}");
                let start = buf.len() - sent.len();
                buf[start..].copy_from_slice(sent);
                let (a, b) = rx.unframe(&mut buf, start, 2048).unwrap();
                assert_eq!(&buf[a..b], &text[..], "{alg}");
            }
            assert_eq!(allocs() - before, 0, "{alg}");
        }
    }
}
