//! `tunnel_server_udp`: the UDP server's link on the shared server loop
//! (`tunnel::server::serve`). One socket; packets from unknown addresses go through the
//! stateless cookie front door ([`FrontDoor`]); known addresses go to their client's session;
//! a P_DATA_V2 from a new address whose peer-id authenticates floats that
//! client. Receives and sends are batched (`recvmmsg`+GRO, `sendmmsg`+GSO),
//! tun reads take every packet queued per wake-up.
//!
//! With the XDP fast path ([`FastPath`]) the established clients' P_DATA_V2
//! arrive on AF_XDP rings instead and take the same way in; data packets to
//! a client leave through it once its link-layer path is known. Control
//! packets always use the socket.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, XdpMode};
use crate::error::DaemonError;
use crate::host::server_tun::{ServerTun, bring_up_server_tun};
use crate::io::clock;
use crate::io::external::udp::{RecvBatch, SendBatch, UdpLink};
use crate::io::internal::tun::TunTxBatch;
use crate::io::mssfix::OuterTransport;
use crate::io::wait::or_never;
use crate::io::xdp::fastpath::{FastPath, FastPathConfig, Role, Starting};
use crate::mgmt::status::XdpCounters;
use crate::proto::cookie::{CookieKey, StatelessResponder};
use crate::proto::session::Transport;
use crate::server::peers::PeerId;
use crate::tunnel::external::{self, Dispatch, FrontAction, FrontDoor};
use crate::tunnel::input::Inputs;
use crate::tunnel::multi::{Multi, Steer};
use crate::tunnel::output::{FastOrSocket, LinkOut as _};
use crate::tunnel::server::{ServerLink, serve};
use crate::tunnel::{Outcome, setup};

/// How many datagram slots one receive fills.
const RX_SLOTS: usize = 32;
/// How many AF_XDP frames one wake-up takes at most.
const FAST_RX_BATCH: usize = 64;

/// Starts the fast path for the server socket bound at `local` in the
/// background (or says in the log why it runs on plain sockets).
fn start_fast_path(cfg: &Config, local: SocketAddr) -> Option<Starting> {
    // The bound address: `local` as resolved (it may be a host name).
    let local_ip = cfg.local.as_ref().map(|_| local.ip());
    FastPath::start_in_background(FastPathConfig {
        mode: cfg.xdp,
        interface: cfg.xdp_interface.clone(),
        local: local_ip,
        peer_hint: None,
        port: local.port(),
        drop_unknown: cfg.xdp_drop_unknown,
        role: Role::Server,
        // The socket reports peers canonically (IPv4 as IPv4).
        mapped_v4: false,
    })
}

/// Applies the peer map changes `multi` recorded since the last call.
fn apply_steering(multi: &mut Multi, fast: &mut Option<FastPath>) {
    let Some(changes) = multi.steer.as_mut() else {
        return;
    };
    for change in changes.drain(..) {
        match (fast.as_mut(), change) {
            (Some(f), Steer::Set(id, addr)) => f.set_peer(id, addr),
            (Some(f), Steer::Remove(id)) => f.remove_peer(id),
            (None, _) => {}
        }
    }
}

/// The UDP link: the socket with its batches, the fast path (starting,
/// then running), and the front door.
struct UdpServer {
    link: UdpLink,
    rx: RecvBatch,
    tx: SendBatch,
    fast: Option<FastPath>,
    fast_starting: Option<Starting>,
    front: FrontDoor,
}

/// What woke the UDP link.
enum UdpEvent {
    /// The socket's receive batch is filled (or failed).
    Received(std::io::Result<()>),
    /// The fast path finished starting (`None`: it could not).
    FastStarted(Option<FastPath>),
    /// AF_XDP frames are waiting.
    FastReadable,
}

/// One datagram from `from` (socket or fast path), where
/// [`external::dispatch`] says it goes; the client it reached, if any.
#[allow(clippy::too_many_arguments)]
fn datagram(
    front: &mut FrontDoor,
    multi: &mut Multi,
    from: SocketAddr,
    local_ip: Option<IpAddr>,
    data: &[u8],
    now: Instant,
    unix: u64,
    out: &mut FastOrSocket<'_>,
    ttx: &mut TunTxBatch,
    dirty: &mut BTreeSet<PeerId>,
) -> Option<PeerId> {
    match external::dispatch(&multi.peers, from, data) {
        Dispatch::Session(id) => {
            multi.link_packet(id, None, data, local_ip, now, unix, out, ttx);
            dirty.insert(id);
            Some(id)
        }
        Dispatch::Float(id) => {
            multi.link_packet(id, Some(from), data, local_ip, now, unix, out, ttx);
            dirty.insert(id);
            Some(id)
        }
        Dispatch::Drop => {
            front.drops += 1;
            None
        }
        Dispatch::FrontDoor { restart } => {
            match front.first_contact(now, unix, from, data) {
                FrontAction::Reply(r) => {
                    // An authenticated reset from a known address: that
                    // client restarted, its old instance goes (else the rest
                    // of its handshake would reach the old session).
                    if let Some(old) = restart {
                        multi.remove(old);
                    }
                    out.send(from, local_ip, r);
                }
                FrontAction::Accept(s) => {
                    if let Some(id) = multi.add_client(*s, from, local_ip) {
                        dirty.insert(id);
                    }
                }
                FrontAction::Drop => {}
            }
            None
        }
    }
}

impl UdpServer {
    /// The fast path finished starting (`None`: it could not, the log
    /// said why): steer who is connected already, then drop strangers.
    fn fast_started(&mut self, f: Option<FastPath>, multi: &mut Multi) {
        let drop_unknown = self.fast_starting.take().is_some_and(|s| s.drop_unknown);
        if let Some(f) = f {
            self.fast = Some(f);
            multi.steer_all_connected();
            apply_steering(multi, &mut self.fast);
            if let Some(f) = self.fast.as_mut() {
                f.set_drop_unknown(drop_unknown);
            }
        }
    }
}

impl ServerLink for UdpServer {
    type Event = UdpEvent;
    type Out<'a> = FastOrSocket<'a>;

    fn out(&mut self) -> FastOrSocket<'_> {
        FastOrSocket::new(&mut self.tx, &mut self.fast)
    }

    async fn wait(&mut self) -> UdpEvent {
        tokio::select! {
            r = self.link.recv_batch(&mut self.rx) => UdpEvent::Received(r.map(|_| ())),
            f = or_never(self.fast_starting.as_mut().map(Starting::finished)), if self.fast_starting.is_some() => UdpEvent::FastStarted(f),
            () = or_never(self.fast.as_ref().map(FastPath::readable)) => UdpEvent::FastReadable,
        }
    }

    fn handle(
        &mut self,
        ev: UdpEvent,
        multi: &mut Multi,
        ttx: &mut TunTxBatch,
        dirty: &mut BTreeSet<PeerId>,
    ) {
        match ev {
            UdpEvent::Received(Err(e)) => {
                // ICMP errors of one peer surface here; the socket lives on.
                tracing::debug!(error = %e, "UDP receive");
            }
            UdpEvent::Received(Ok(())) => {
                let now = clock::now();
                let unix = clock::unix_time();
                let mut out = FastOrSocket::new(&mut self.tx, &mut self.fast);
                for d in self.rx.iter() {
                    datagram(
                        &mut self.front,
                        multi,
                        d.peer,
                        d.local_ip,
                        d.data,
                        now,
                        unix,
                        &mut out,
                        ttx,
                        dirty,
                    );
                }
            }
            UdpEvent::FastStarted(f) => self.fast_started(f, multi),
            UdpEvent::FastReadable => {
                let now = clock::now();
                let unix = clock::unix_time();
                let (tx, front) = (&mut self.tx, &mut self.front);
                if let Some(f) = self.fast.as_mut() {
                    // Packets forwarded while the rings are being read
                    // (client-to-client) take the socket: the fast path is
                    // busy lending us its receive frames.
                    let mut none = None;
                    f.recv(FAST_RX_BATCH, &mut |d| {
                        let len = d.payload.len();
                        let mut out = FastOrSocket::new(tx, &mut none);
                        if let Some(id) = datagram(
                            front,
                            multi,
                            d.from,
                            Some(d.local.ip()),
                            d.payload,
                            now,
                            unix,
                            &mut out,
                            ttx,
                            dirty,
                        ) {
                            multi.count_fast_rx(id, len);
                        }
                    });
                }
            }
        }
    }

    fn gone(&mut self, _addr: SocketAddr) {}

    async fn flush(&mut self, multi: &mut Multi) {
        apply_steering(multi, &mut self.fast);
        if let Some(f) = self.fast.as_mut() {
            f.flush();
        }
        if !self.tx.is_empty()
            && let Err(e) = self.link.send_batch(&mut self.tx).await
        {
            tracing::warn!(error = %e, "UDP send");
            self.tx.clear();
        }
    }

    async fn flush_goodbyes(&mut self) {
        if !self.tx.is_empty() {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), self.link.send_batch(&mut self.tx))
                    .await;
        }
    }

    fn xdp_counters(&self) -> Option<XdpCounters> {
        self.fast.as_ref().map(FastPath::counters)
    }

    fn log_statistics(&self, multi: &Multi) {
        tracing::info!(clients = multi.peers.len(), first_contact_drops = self.front.drops, route_drops = ?multi.route_drops, xdp = ?self.fast.as_ref().map(FastPath::counters), "statistics");
    }
}

/// Runs the UDP server until a signal ends it.
pub async fn tunnel_server_udp(cfg: &Config, inputs: &mut Inputs) -> Result<Outcome, DaemonError> {
    let tls = Arc::new(setup::tls_context(cfg)?);
    let bind = setup::bind_addr(cfg)?;
    let scfg = Arc::new(setup::session_config(
        cfg,
        tls,
        Transport::Udp,
        bind.is_ipv6(),
    )?);
    let cookie = CookieKey::generate(scfg.hand_window).map_err(|source| DaemonError::Random {
        what: "cookie key",
        source,
    })?;
    let responder =
        StatelessResponder::new(scfg.clone(), cookie).map_err(|source| DaemonError::Key {
            what: "control channel key",
            source,
        })?;
    let uc = setup::udp_config(cfg, bind);
    let link = UdpLink::bind(&uc)?;
    tracing::info!(local = %link.local_addr(), "UDP server listening");
    // Clients are served on the socket until the fast path is up; then
    // the connected ones are steered to it. Two cases wait for it first:
    // with `user`/`group`/`chroot` the program is loaded, its maps made
    // and its sockets bound while still privileged (as openvpn opens its
    // tun first; peers are inserted through the kept map descriptors
    // afterwards), and `xdp native|generic` does not start in another mode.
    let mut fast_starting = start_fast_path(cfg, link.local_addr());
    let strict = match cfg.xdp {
        XdpMode::Native => Some("native"),
        XdpMode::Generic => Some("generic"),
        XdpMode::Auto | XdpMode::Off => None,
    };
    let mut early = None;
    if let Some(s) = fast_starting.as_mut()
        && (strict.is_some() || crate::host::process::drops_privileges(cfg))
    {
        let f = s.finished().await;
        if let (None, Some(mode)) = (&f, strict) {
            return Err(DaemonError::FastPath { mode });
        }
        early = Some(f);
    }
    let st: ServerTun = bring_up_server_tun(cfg).await?;
    crate::host::notify::ready(crate::host::notify::INIT_COMPLETED);
    let mut multi = Multi::new(Arc::new(cfg.clone()), scfg, inputs.sender())?;
    let outer = if bind.is_ipv6() {
        OuterTransport::Udp6
    } else {
        OuterTransport::Udp4
    };
    multi.mss = crate::host::tun::mss_limits(
        cfg,
        outer,
        setup::framing(cfg.compression).mtu_overhead() as u16,
    );
    let mtu = st.setup.mtu;
    let mut server = UdpServer {
        rx: link.recv_batch_buffer(RX_SLOTS, usize::from(mtu) + 256),
        tx: SendBatch::with_capacity(64 * 1600),
        link,
        fast: None,
        fast_starting,
        front: FrontDoor::new(responder),
    };
    if let Some(f) = early {
        server.fast_started(f, &mut multi);
    }
    serve(cfg, inputs, multi, st, server).await
}
