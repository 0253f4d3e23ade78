//! The running fast path: the classifier attached to the underlay
//! interface, one AF_XDP socket per receive queue, and the link-layer
//! paths to peers learned from their frames. The UDP drivers hand it the
//! peers whose data keys are established and send through it when it
//! knows how to reach a peer; everything else stays on the UDP socket.
//!
//! Starting never fails the daemon: [`FastPath::start`] returns `None`
//! (with a log line saying why) and the caller runs the plain socket path.
//!
//! ```text
//!  readable() ─► recv(): rx ring ─► parse headers ─► learn peer's L2 path ─► closure (decrypt in place)
//!                        frame back to the fill ring as soon as the closure returns
//!  send_with(): free tx frame ─► fill(payload) ─► headers + checksums ─► tx ring
//!  flush(): one sendto kick per queue that queued frames, reap completions
//! ```

use std::{
    collections::HashMap,
    future::poll_fn,
    net::{IpAddr, SocketAddr, SocketAddrV6},
    os::fd::{AsRawFd, RawFd},
    sync::OnceLock,
    task::Poll,
};

use tokio::io::unix::AsyncFd;
use vpn_common::{
    maps::{FAMILY_V4, FAMILY_V6, PeerEntry},
    stats::{self, STAT_NAMES},
};

use super::{
    EMBEDDED_OBJECT,
    counters::XdpCounters,
    frame::{self, L2Path, Malformed},
    iface::{self, Choice},
    loader::{AttachMode, Classifier},
    netlink,
    xsk::{BindMode, XskConfig, XskSocket, XskStatistics},
};
use crate::config::XdpMode;

/// Whose side of the tunnel this daemon is (decides `xdp-drop-unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Many peers, peer-ids assigned by us.
    Server,
    /// One peer (the server); its packets carry our pushed peer-id.
    Client,
}

/// What [`FastPath::start`] needs from the configuration.
#[derive(Debug, Clone)]
pub struct FastPathConfig {
    /// `xdp auto|native|generic|off`.
    pub mode: XdpMode,
    /// `xdp-interface`: where to attach, when set.
    pub interface: Option<String>,
    /// `local`: the interface holding it is the next choice.
    pub local: Option<IpAddr>,
    /// The peer (client mode: the remote): the interface of the route to it.
    pub peer_hint: Option<IpAddr>,
    /// The bound UDP port whose P_DATA_V2 packets are steered.
    pub port: u16,
    /// Drop P_DATA_V2 of unknown peer-ids in XDP (server with
    /// `xdp-drop-unknown yes`; never in client mode).
    pub drop_unknown: bool,
    /// Client or server.
    pub role: Role,
    /// The caller's UDP socket is IPv6 (dual-stack `[::]`): IPv4 peers are
    /// reported as IPv4-mapped IPv6 (`[::ffff:a.b.c.d]:p`), as the socket
    /// path reports them, so the same peer lookups match.
    pub mapped_v4: bool,
}

/// One datagram taken off an AF_XDP receive ring.
#[derive(Debug)]
pub struct RxDatagram<'a> {
    /// The peer's transport address (source IP and port of the frame).
    pub from: SocketAddr,
    /// Our address and port it was sent to.
    pub local: SocketAddr,
    /// The UDP payload (an OpenVPN packet), writable in place.
    pub payload: &'a mut [u8],
}

/// UMEM layout of each queue's socket. With few queues, 2048 receive
/// frames keep a burst of a fast sender in the fill ring and 1024 transmit
/// frames are more than one batch of the driver loop needs in flight
/// (6 MiB per queue); NICs with many queues get smaller rings so the total
/// stays under 200 MiB.
fn xsk_config(queues: u32) -> XskConfig {
    let (rx, tx) = match queues {
        0..=16 => (2048, 1024),
        17..=64 => (1024, 512),
        _ => (256, 128),
    };
    XskConfig {
        frame_size: 2048,
        frame_count: rx,
        tx_frame_count: tx,
        ring_size: tx,
        bind_mode: BindMode::ZeroCopy,
    }
}

/// One receive queue's AF_XDP socket.
struct Queue {
    id: u32,
    xsk: XskSocket,
    /// Frames queued on the tx ring since the last kick.
    tx_queued: bool,
}

/// How to reach one peer on the wire, and through which queue's socket.
#[derive(Debug, Clone, Copy)]
struct PeerPath {
    l2: L2Path,
    queue: usize,
}

/// A socket fd registered with tokio's reactor (the socket itself stays
/// in its [`Queue`]).
struct XskFd(RawFd);

impl AsRawFd for XskFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Our own counters, beside the classifier's.
#[derive(Debug, Default)]
struct LocalCounters {
    malformed: [u64; Malformed::ALL.len()],
    peer_map_errors: u64,
    tx_kick_errors: u64,
    tx_build_errors: u64,
}

/// The attached classifier and its AF_XDP sockets.
pub struct FastPath {
    // Boxed: the drivers keep an `Option<FastPath>` inside their link
    // enums, which should not grow by the size of all this state.
    s: Box<State>,
}

/// Everything a running fast path owns.
struct State {
    // Field order is drop order: reactor registrations go before the
    // sockets whose fds they name, and the sockets before the classifier
    // (whose drop detaches the program).
    readiness: OnceLock<Option<Vec<AsyncFd<XskFd>>>>,
    queues: Vec<Queue>,
    classifier: Classifier,
    mode: AttachMode,
    interface: String,
    ifindex: u32,
    zero_copy: bool,
    mapped_v4: bool,
    port: u16,
    local: Option<IpAddr>,
    /// Learned (or resolved) paths by the peer's plain (unmapped) address.
    paths: HashMap<SocketAddr, PeerPath>,
    /// Steered peer-ids and their plain address, to forget paths on
    /// remove and float.
    steered: HashMap<u32, SocketAddr>,
    /// How many steered peer-ids use each address: only these addresses'
    /// paths are learned, so frames still in flight for a removed peer
    /// cannot leave a path behind.
    steered_addrs: HashMap<SocketAddr, u32>,
    next_queue: usize,
    ip_id: u16,
    counters: LocalCounters,
}

/// `addr` with an IPv4-mapped IPv6 address turned into IPv4.
fn plain(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(iface::unmap(addr.ip()), addr.port())
}

/// `addr` as a dual-stack socket reports it: IPv4 becomes IPv4-mapped.
fn mapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        v6 => v6,
    }
}

/// A `PEERS` entry back as a socket address.
fn entry_addr(e: &PeerEntry) -> Option<SocketAddr> {
    let port = u16::from_be(e.port);
    match e.family {
        FAMILY_V4 => {
            let [a, b, c, d, ..] = e.addr;
            Some(SocketAddr::from(([a, b, c, d], port)))
        }
        FAMILY_V6 => Some(SocketAddr::from((e.addr, port))),
        _ => None,
    }
}

/// A fast path being started on a blocking thread: loading and verifying
/// the program, attaching it and binding the sockets take a few hundred
/// milliseconds that a handshake should not wait for.
pub struct Starting {
    task: tokio::task::JoinHandle<Option<FastPath>>,
    /// `drop_unknown` as configured: it starts off, so peers connected
    /// while the program attached are not dropped before they are
    /// steered; the caller arms it with [`FastPath::set_drop_unknown`].
    pub drop_unknown: bool,
}

impl Starting {
    /// Resolves with the started fast path (`None`: plain sockets, the log
    /// said why). Cancel-safe; do not poll again once it has resolved.
    pub async fn finished(&mut self) -> Option<FastPath> {
        match (&mut self.task).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "XDP fast path start did not finish; plain UDP sockets");
                None
            }
        }
    }
}

impl FastPath {
    /// [`FastPath::start`] on a blocking thread of the current tokio
    /// runtime; `None` right away for `xdp off` (logged).
    pub fn start_in_background(mut cfg: FastPathConfig) -> Option<Starting> {
        if cfg.mode == XdpMode::Off {
            tracing::info!("XDP off: plain UDP sockets");
            return None;
        }
        let drop_unknown = cfg.drop_unknown && cfg.role == Role::Server;
        cfg.drop_unknown = false;
        Some(Starting {
            task: tokio::task::spawn_blocking(move || Self::start(&cfg)),
            drop_unknown,
        })
    }

    /// Drop (or pass) P_DATA_V2 of peer-ids not in the map, from now on.
    pub fn set_drop_unknown(&mut self, on: bool) {
        match self.s.classifier.set_drop_unknown_peer(on) {
            Ok(()) => tracing::info!(on, "XDP drop of unknown peer-ids"),
            Err(e) => {
                tracing::warn!(error = %chain(&e), "setting XDP drop-unknown");
            }
        }
    }

    /// Attaches and binds, or says (in the log) why not and returns `None`.
    pub fn start(cfg: &FastPathConfig) -> Option<Self> {
        if cfg.mode == XdpMode::Off {
            tracing::info!("XDP off: plain UDP sockets");
            return None;
        }
        let Some(object) = EMBEDDED_OBJECT else {
            tracing::info!(
                "XDP fast path not available: built without the BPF object \
                 (cargo xtask build-ebpf); plain UDP sockets"
            );
            return None;
        };
        let server_without_local = cfg.role == Role::Server
            && cfg.local.is_none_or(|ip| iface::unmap(ip).is_unspecified());
        let (interface, choice) = match iface::choose(
            cfg.interface.as_deref(),
            cfg.local,
            cfg.peer_hint,
            server_without_local,
        ) {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!("XDP fast path not started: {why}; plain UDP sockets");
                return None;
            }
        };
        let fail = |step: &str, why: &dyn std::fmt::Display| {
            tracing::warn!(
                iface = %interface,
                "XDP fast path not started: {step}: {why}; plain UDP sockets"
            );
        };
        let Some(ifindex) = iface::index_of(&interface) else {
            fail("interface lookup", &"no such interface");
            return None;
        };
        let mut classifier = match Classifier::load(object) {
            Ok(c) => c,
            Err(e) => {
                fail("loading the XDP program", &chain(&e));
                return None;
            }
        };
        if let Err(e) = classifier.add_port(cfg.port) {
            fail("registering the port", &chain(&e));
            return None;
        }
        let drop_unknown = cfg.drop_unknown && cfg.role == Role::Server;
        if let Err(e) = classifier.set_drop_unknown_peer(drop_unknown) {
            fail("setting drop-unknown", &chain(&e));
            return None;
        }
        match iface::clear_stale(ifindex) {
            Ok(replaced) if !replaced.is_empty() => tracing::warn!(
                iface = %interface,
                ?replaced,
                "replacing a stale {} left by an earlier run",
                vpn_common::maps::PROGRAM_NAME
            ),
            Ok(_) => {}
            Err(e) => {
                fail("checking for an attached XDP program", &chain(&e));
                return None;
            }
        }
        let mode = match attach(&mut classifier, &interface, cfg.mode) {
            Ok(m) => m,
            Err(why) => {
                fail("attaching", &why);
                return None;
            }
        };
        let nqueues = iface::rx_queues(&interface, ifindex);
        let mut queues = Vec::with_capacity(nqueues as usize);
        for q in 0..nqueues {
            let xsk = match bind_queue(ifindex, q, &xsk_config(nqueues)) {
                Ok(x) => x,
                Err(e) => {
                    fail(&format!("binding AF_XDP to queue {q}"), &chain(&e));
                    return None;
                }
            };
            if let Err(e) = classifier.register_xsk(q, &xsk) {
                fail(&format!("registering queue {q}'s socket"), &chain(&e));
                return None;
            }
            queues.push(Queue {
                id: q,
                xsk,
                tx_queued: false,
            });
        }
        let zero_copy = queues.iter().all(|q| q.xsk.is_zero_copy());
        tracing::info!(
            iface = %interface,
            chosen_because = choice.describe(),
            mode = match mode {
                AttachMode::Native => "native",
                AttachMode::Generic => "generic",
            },
            queues = queues.len(),
            af_xdp = if zero_copy { "zero-copy" } else { "copy" },
            drop_unknown,
            "XDP fast path running"
        );
        if choice == Choice::OnlyInterface || choice == Choice::DefaultRoute {
            tracing::info!("set xdp-interface to attach elsewhere");
        }
        Some(Self {
            s: Box::new(State {
                readiness: OnceLock::new(),
                queues,
                classifier,
                mode,
                interface,
                ifindex,
                zero_copy,
                mapped_v4: cfg.mapped_v4,
                port: cfg.port,
                local: cfg
                    .local
                    .map(iface::unmap)
                    .filter(|ip| !ip.is_unspecified()),
                paths: HashMap::new(),
                steered: HashMap::new(),
                steered_addrs: HashMap::new(),
                next_queue: 0,
                ip_id: 0,
                counters: LocalCounters::default(),
            }),
        })
    }

    /// Native or generic.
    pub fn mode(&self) -> AttachMode {
        self.s.mode
    }

    /// The underlay interface it is attached to.
    pub fn interface(&self) -> &str {
        &self.s.interface
    }

    /// Number of receive queues with an AF_XDP socket.
    pub fn queue_count(&self) -> usize {
        self.s.queues.len()
    }

    /// Whether every socket runs in zero-copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.s.zero_copy
    }

    /// Registers the sockets with the current tokio reactor, once.
    fn registrations(&self) -> Option<&Vec<AsyncFd<XskFd>>> {
        self.s
            .readiness
            .get_or_init(|| {
                if tokio::runtime::Handle::try_current().is_err() {
                    tracing::error!("XDP readiness polled outside a tokio runtime");
                    return None;
                }
                let mut v = Vec::with_capacity(self.s.queues.len());
                for q in &self.s.queues {
                    // SAFETY: the fd belongs to `q.xsk`, which outlives
                    // this registration: `readiness` is declared (and so
                    // dropped) before `queues`, and sockets are never
                    // removed from `queues` while `self` lives.
                    let reg = unsafe {
                        AsyncFd::register_with_interest(
                            XskFd(q.xsk.as_raw_fd()),
                            tokio::io::Interest::READABLE,
                        )
                    };
                    match reg {
                        Ok(fd) => v.push(fd),
                        Err(e) => {
                            tracing::error!(queue = q.id, error = %e, "AF_XDP socket not pollable");
                            return None;
                        }
                    }
                }
                Some(v)
            })
            .as_ref()
    }

    /// Resolves when any receive ring has frames (cancel-safe: it holds no
    /// state between polls; readiness is cleared only when a ring is seen
    /// empty). The sockets are registered with the tokio runtime that
    /// polls this first; keep using that runtime.
    pub async fn readable(&self) {
        let Some(fds) = self.registrations() else {
            return std::future::pending().await;
        };
        poll_fn(|cx| {
            for (q, fd) in self.s.queues.iter().zip(fds) {
                loop {
                    match fd.poll_read_ready(cx) {
                        Poll::Ready(Ok(mut guard)) => {
                            if q.xsk.rx_pending() {
                                return Poll::Ready(());
                            }
                            // Empty ring: wait for the next wake-up. A
                            // frame that arrived after the check produced
                            // a newer event, which clear_ready keeps.
                            guard.clear_ready();
                        }
                        Poll::Ready(Err(e)) => {
                            tracing::warn!(queue = q.id, error = %e, "AF_XDP readiness error");
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Takes up to `max` frames off the receive rings, hands each UDP
    /// datagram to `f` and learns the peer's link-layer path from the
    /// frame. Returns how many frames were taken (malformed ones counted
    /// as dropped, never handed out).
    pub fn recv(&mut self, max: usize, f: &mut dyn FnMut(RxDatagram<'_>)) -> usize {
        let n = self.s.queues.len();
        if n == 0 {
            return 0;
        }
        let mapped_v4 = self.s.mapped_v4;
        let mut taken = 0usize;
        let start = self.s.next_queue % n;
        self.s.next_queue = (start + 1) % n;
        for k in 0..n {
            let qi = (start + k) % n;
            let Some(room) = max.checked_sub(taken).filter(|&r| r > 0) else {
                break;
            };
            let room = u32::try_from(room).unwrap_or(u32::MAX);
            let State {
                queues,
                paths,
                steered_addrs,
                counters,
                ..
            } = &mut *self.s;
            let Some(queue) = queues.get_mut(qi) else {
                break;
            };
            taken += queue.xsk.recv(room, |bytes| {
                let p = match frame::parse(bytes) {
                    Ok(p) => p,
                    Err(m) => {
                        if let Some(c) = counters.malformed.get_mut(m.index()) {
                            *c += 1;
                        }
                        return;
                    }
                };
                if steered_addrs.contains_key(&p.src) {
                    learn(paths, &p, qi);
                }
                let (from, local) = if mapped_v4 {
                    (mapped(p.src), mapped(p.dst))
                } else {
                    (p.src, p.dst)
                };
                if let Some(payload) = bytes.get_mut(p.payload) {
                    f(RxDatagram {
                        from,
                        local,
                        payload,
                    });
                }
            });
        }
        taken
    }

    /// Whether a datagram to `to` can leave through the fast path.
    pub fn knows(&self, to: SocketAddr) -> bool {
        self.s.paths.contains_key(&plain(to))
    }

    /// Sends one datagram to `to` when its link-layer path is known: `fill`
    /// writes the UDP payload (at most `max` bytes) straight into a frame
    /// behind the headers built here. `None` when the caller must use the
    /// socket (path unknown, ring full, frame too small); `fill` has then
    /// not been called.
    pub fn send_with(
        &mut self,
        to: SocketAddr,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> Option<usize> {
        let path = *self.s.paths.get(&plain(to))?;
        let hdr = path.l2.header_len();
        let queue = self.s.queues.get_mut(path.queue)?;
        if hdr.checked_add(max)? > queue.xsk.frame_size() as usize {
            return None;
        }
        self.s.ip_id = self.s.ip_id.wrapping_add(1);
        let ip_id = self.s.ip_id;
        let mut written = None;
        let mut build_error = false;
        let sent = queue.xsk.send_with(|buf| {
            let area = buf.get_mut(hdr..hdr + max)?;
            let n = fill(area).min(max);
            match frame::write_headers(buf, &path.l2, n, ip_id) {
                Ok(len) => {
                    written = Some(n);
                    Some(len)
                }
                Err(_) => {
                    build_error = true;
                    None
                }
            }
        });
        if build_error {
            self.s.counters.tx_build_errors += 1;
        }
        match sent {
            Ok(Some(_)) => {
                queue.tx_queued = true;
                written
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "AF_XDP send");
                None
            }
        }
    }

    /// Kicks the transmit rings and reaps completions; call after a batch.
    pub fn flush(&mut self) {
        for q in &mut self.s.queues {
            if q.tx_queued {
                q.tx_queued = false;
                if let Err(e) = q.xsk.flush_tx() {
                    self.s.counters.tx_kick_errors += 1;
                    tracing::debug!(queue = q.id, error = %e, "AF_XDP tx kick");
                }
            }
            q.xsk.complete();
        }
    }

    /// Steers `peer_id`'s data packets from `addr` (insert, or update on float).
    pub fn set_peer(&mut self, peer_id: u32, addr: SocketAddr) {
        let addr = plain(addr);
        if let Err(e) = self.s.classifier.insert_peer(peer_id, addr) {
            self.s.counters.peer_map_errors += 1;
            tracing::warn!(peer_id, %addr, error = %chain(&e), "XDP peer map insert failed");
            return;
        }
        match self.s.steered.insert(peer_id, addr) {
            Some(old) if old == addr => {}
            Some(old) => {
                // Floated: the old address's path is no longer this peer's.
                self.release_addr(old);
                *self.s.steered_addrs.entry(addr).or_insert(0) += 1;
            }
            None => *self.s.steered_addrs.entry(addr).or_insert(0) += 1,
        }
        if !self.s.paths.contains_key(&addr)
            && let Some(path) = self.resolve(addr)
        {
            self.s.paths.insert(addr, path);
        }
    }

    /// Stops steering `peer_id` (disconnect, timeout, shutdown).
    pub fn remove_peer(&mut self, peer_id: u32) {
        if let Some(addr) = self.s.steered.remove(&peer_id) {
            self.release_addr(addr);
        }
        if let Err(e) = self.s.classifier.remove_peer(peer_id) {
            self.s.counters.peer_map_errors += 1;
            tracing::warn!(peer_id, error = %chain(&e), "XDP peer map remove failed");
        }
    }

    /// One steered peer-id less uses `addr`; its path goes with the last.
    fn release_addr(&mut self, addr: SocketAddr) {
        if let Some(n) = self.s.steered_addrs.get_mut(&addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.s.steered_addrs.remove(&addr);
                self.s.paths.remove(&addr);
            }
        }
    }

    /// The peers the classifier steers, read back from its map (not from
    /// a copy kept here).
    pub fn steered_peers(&self) -> Vec<(u32, SocketAddr)> {
        match self.s.classifier.peers() {
            Ok(v) => {
                let mut out: Vec<_> = v
                    .iter()
                    .filter_map(|(k, e)| Some((k.peer_id, entry_addr(e)?)))
                    .collect();
                out.sort();
                out
            }
            Err(e) => {
                tracing::warn!(error = %chain(&e), "reading the XDP peer map");
                Vec::new()
            }
        }
    }

    /// A path for a peer nothing has been received from yet, from the
    /// kernel's route and neighbour tables (a netlink exchange, once per
    /// peer). `None` when the next hop is not resolved: the path is then
    /// learned from the peer's first frame.
    fn resolve(&self, peer: SocketAddr) -> Option<PeerPath> {
        let route = match netlink::route_get(peer.ip()) {
            Ok(Some(r)) if r.oif == self.s.ifindex => r,
            Ok(_) => return None,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "route lookup");
                return None;
            }
        };
        let next_hop = route.gateway.unwrap_or(peer.ip());
        let their_mac = netlink::neighbour_mac(self.s.ifindex, next_hop).ok()??;
        let our_mac = netlink::link_mac(self.s.ifindex).ok()??;
        let our_ip = self
            .s
            .local
            .filter(|l| l.is_ipv4() == peer.is_ipv4())
            .or(route.prefsrc)?;
        if our_ip.is_ipv4() != peer.is_ipv4() {
            return None;
        }
        // Queue 0: replies leave by whichever queue, and the peer's first
        // frame moves the path to the queue its traffic arrives on.
        Some(PeerPath {
            l2: L2Path {
                src_mac: our_mac,
                dst_mac: their_mac,
                vlan: None,
                src: SocketAddr::new(our_ip, self.s.port),
                dst: peer,
            },
            queue: 0,
        })
    }

    /// The classifier's counters summed over CPUs, for the status output.
    pub fn counters(&self) -> XdpCounters {
        let mut out = XdpCounters::default();
        match self.s.classifier.stats() {
            Ok(s) => {
                out.redirected = s.get(stats::REDIRECT);
                for (slot, name) in (0u32..).zip(STAT_NAMES) {
                    if let Some(reason) = name.strip_prefix("pass_") {
                        let v = s.get(slot);
                        out.passed += v;
                        out.passed_by_reason.push((reason.to_owned(), v));
                    }
                }
                out.dropped
                    .push(("unknown_peer".into(), s.get(stats::DROP_UNKNOWN_PEER)));
            }
            Err(e) => tracing::warn!(error = %chain(&e), "reading XDP counters"),
        }
        let mut x = XskStatistics::default();
        for q in &self.s.queues {
            match q.xsk.statistics() {
                Ok(s) => {
                    x.rx_dropped += s.rx_dropped;
                    x.rx_invalid_descs += s.rx_invalid_descs;
                    x.rx_ring_full += s.rx_ring_full;
                    x.rx_fill_ring_empty_descs += s.rx_fill_ring_empty_descs;
                    x.tx_invalid_descs += s.tx_invalid_descs;
                }
                Err(e) => tracing::debug!(queue = q.id, error = %e, "XDP_STATISTICS"),
            }
        }
        out.dropped.extend([
            ("xsk_rx_dropped".to_owned(), x.rx_dropped),
            ("xsk_rx_invalid".to_owned(), x.rx_invalid_descs),
            ("xsk_rx_ring_full".to_owned(), x.rx_ring_full),
            ("xsk_fill_ring_empty".to_owned(), x.rx_fill_ring_empty_descs),
            ("xsk_tx_invalid".to_owned(), x.tx_invalid_descs),
        ]);
        for m in Malformed::ALL {
            let n = self
                .s
                .counters
                .malformed
                .get(m.index())
                .copied()
                .unwrap_or(0);
            out.dropped.push((m.name().to_owned(), n));
        }
        out.errors = vec![
            ("peer_map".to_owned(), self.s.counters.peer_map_errors),
            ("tx_kick".to_owned(), self.s.counters.tx_kick_errors),
            ("tx_build".to_owned(), self.s.counters.tx_build_errors),
        ];
        out
    }

    /// UMEM frames currently out of the kernel's hands (being processed or
    /// waiting for completion): flat over a long transfer.
    pub fn frames_in_flight(&self) -> usize {
        self.s.queues.iter().map(|q| q.xsk.frames_in_flight()).sum()
    }
}

/// Records (or refreshes) how to reach the sender of `p` from the frame
/// itself: the MACs swapped, its VLAN tag, our address it was sent to, and
/// the queue it arrived on.
fn learn(paths: &mut HashMap<SocketAddr, PeerPath>, p: &frame::UdpFrame, queue: usize) {
    let path = PeerPath {
        l2: L2Path {
            src_mac: p.dst_mac,
            dst_mac: p.src_mac,
            vlan: p.vlan,
            src: p.dst,
            dst: p.src,
        },
        queue,
    };
    match paths.get_mut(&p.src) {
        Some(old) => {
            if old.l2 != path.l2 || old.queue != queue {
                *old = path;
            }
        }
        None => {
            paths.insert(p.src, path);
        }
    }
}

/// Attaches in `mode`: Auto tries native, then generic.
fn attach(c: &mut Classifier, iface: &str, mode: XdpMode) -> Result<AttachMode, String> {
    let try_mode =
        |c: &mut Classifier, m: AttachMode| c.attach_in(iface, m).map_err(|e| chain(e.as_ref()));
    match mode {
        XdpMode::Native => try_mode(c, AttachMode::Native).map(|()| AttachMode::Native),
        XdpMode::Generic => try_mode(c, AttachMode::Generic).map(|()| AttachMode::Generic),
        XdpMode::Auto | XdpMode::Off => match try_mode(c, AttachMode::Native) {
            Ok(()) => Ok(AttachMode::Native),
            Err(native) => {
                tracing::info!(iface, why = %native, "native XDP refused; trying generic mode");
                try_mode(c, AttachMode::Generic)
                    .map(|()| AttachMode::Generic)
                    .map_err(|generic| format!("native: {native}; generic: {generic}"))
            }
        },
    }
}

/// Zero-copy when the driver offers it, else copy mode.
fn bind_queue(
    ifindex: u32,
    queue: u32,
    config: &XskConfig,
) -> Result<XskSocket, super::xsk::XskError> {
    match XskSocket::bind(ifindex, queue, config) {
        Ok(x) => Ok(x),
        Err(zc) => {
            tracing::debug!(queue, error = %chain(&zc), "AF_XDP zero-copy refused; copy mode");
            XskSocket::bind(
                ifindex,
                queue,
                &XskConfig {
                    bind_mode: BindMode::Copy,
                    ..*config
                },
            )
        }
    }
}

/// An error with its sources, for one log line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_and_plain_are_inverse_for_ipv4() {
        let v4 = sa("192.0.2.7:1194");
        assert_eq!(mapped(v4), sa("[::ffff:192.0.2.7]:1194"));
        assert_eq!(plain(mapped(v4)), v4);
        let v6 = sa("[2001:db8::1]:5");
        assert_eq!(mapped(v6), v6);
        assert_eq!(plain(v6), v6);
    }

    #[test]
    fn peer_entries_read_back_as_addresses() {
        let e = PeerEntry::v4([10, 0, 0, 9], 40000);
        assert_eq!(entry_addr(&e), Some(sa("10.0.0.9:40000")));
        let a: Ipv6Addr = "fd00::5".parse().unwrap();
        let e = PeerEntry::v6(a.octets(), 1);
        assert_eq!(entry_addr(&e), Some(sa("[fd00::5]:1")));
        let mut bad = e;
        bad.family = 0;
        assert_eq!(entry_addr(&bad), None);
        let _ = Ipv4Addr::UNSPECIFIED;
    }

    #[test]
    fn learning_keeps_the_latest_frame_path() {
        let mut paths = HashMap::new();
        let p = frame::UdpFrame {
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            vlan: Some(3),
            src: sa("10.0.0.2:40000"),
            dst: sa("10.0.0.1:1194"),
            payload: 0..0,
        };
        learn(&mut paths, &p, 1);
        let got = paths[&sa("10.0.0.2:40000")];
        assert_eq!(got.queue, 1);
        assert_eq!(got.l2.src_mac, p.dst_mac);
        assert_eq!(got.l2.dst_mac, p.src_mac);
        assert_eq!(got.l2.src, p.dst);
        assert_eq!(got.l2.dst, p.src);
        assert_eq!(got.l2.vlan, Some(3));
        let moved = frame::UdpFrame {
            src_mac: [2, 0, 0, 0, 0, 9],
            ..p
        };
        learn(&mut paths, &moved, 0);
        let got = paths[&sa("10.0.0.2:40000")];
        assert_eq!((got.queue, got.l2.dst_mac), (0, [2, 0, 0, 0, 0, 9]));
        assert_eq!(paths.len(), 1);
    }

    #[test]
    fn umem_configs_are_valid_for_any_queue_count() {
        for q in [1, 2, 16, 17, 64, 65, 256] {
            let c = xsk_config(q);
            assert!(c.tx_frame_count <= c.ring_size, "{q}");
            assert!(c.frame_count.is_power_of_two() && c.ring_size.is_power_of_two());
            let total = u64::from(q) * u64::from(c.frame_count + c.tx_frame_count) * 2048;
            assert!(total <= 256 << 20, "{q} queues: {total} bytes");
        }
    }

    #[test]
    fn off_never_starts() {
        let cfg = FastPathConfig {
            mode: XdpMode::Off,
            interface: Some("lo".into()),
            local: None,
            peer_hint: None,
            port: 1194,
            drop_unknown: true,
            role: Role::Server,
            mapped_v4: false,
        };
        assert!(FastPath::start(&cfg).is_none());
    }

    #[test]
    fn fast_path_can_live_in_a_spawned_task() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<FastPath>();
    }
}
