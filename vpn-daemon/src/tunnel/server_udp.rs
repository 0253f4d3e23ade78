//! `tunnel_server_udp`: the UDP server loop. One socket; packets from
//! unknown addresses go through the stateless cookie front door
//! ([`StatelessResponder`]); known addresses go to their client's session;
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

use crate::config::Config;
use crate::error::DaemonError;
use crate::host::process::{Signal, Signals};
use crate::io::clock;
use crate::io::external::udp::{SendBatch, UdpLink};
use crate::io::internal::tun::TunTxBatch;
use crate::io::mssfix::OuterTransport;
use crate::io::wait::{or_never, sleep_until};
use crate::io::xdp::fastpath::{FastPath, FastPathConfig, Role, Starting};
use crate::proto::cookie::{CookieKey, FirstContact, StatelessResponder};
use crate::proto::session::Transport;
use crate::proto::wire::opcode::{Opcode, split_first_byte};
use crate::server::peers::PeerId;
use crate::tunnel::Outcome;
use crate::tunnel::multi::{LinkOut, Multi, Steer};
use crate::tunnel::setup;

use crate::host::server_tun::{ServerTun, bring_up_server_tun};

/// How many datagram slots one receive fills.
const RX_SLOTS: usize = 32;
/// How many AF_XDP frames one wake-up takes at most.
const FAST_RX_BATCH: usize = 64;

/// The server's link output: data packets through the fast path when it
/// knows the way to the peer, everything else through the UDP socket batch.
struct UdpOut<'a> {
    batch: &'a mut SendBatch,
    fast: Option<&'a mut FastPath>,
}

impl<'a> UdpOut<'a> {
    fn new(batch: &'a mut SendBatch, fast: &'a mut Option<FastPath>) -> Self {
        Self {
            batch,
            fast: fast.as_mut(),
        }
    }
}

impl LinkOut for UdpOut<'_> {
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]) {
        self.batch.push(to, src, packet);
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        self.batch.push_with(to, src, max, fill);
    }
    fn send_data(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> bool {
        if let Some(f) = self.fast.as_deref_mut()
            && f.send_with(to, max, fill).is_some()
        {
            return true;
        }
        self.batch.push_with(to, src, max, fill);
        false
    }
}

/// The server's front door and its counters: what the loop needs besides
/// [`Multi`] to take one datagram.
struct Front {
    responder: StatelessResponder,
    reply: Vec<u8>,
    first_contact_drops: u64,
}

impl Front {
    /// One datagram from `from` (socket or fast path): to its client's
    /// session, a float, or the cookie front door.
    #[allow(clippy::too_many_arguments)]
    fn datagram(
        &mut self,
        multi: &mut Multi,
        from: SocketAddr,
        local_ip: Option<IpAddr>,
        data: &[u8],
        now: Instant,
        unix: u64,
        out: &mut UdpOut<'_>,
        ttx: &mut TunTxBatch,
        dirty: &mut BTreeSet<PeerId>,
    ) -> Option<PeerId> {
        let op = data
            .first()
            .and_then(|b| split_first_byte(*b).ok())
            .map(|(o, _)| o);
        // A client reset from a known address is a restarted client: it
        // goes through the cookie like a new one.
        let reset = op.is_some_and(Opcode::is_client_reset);
        if let Some(id) = multi.peers.by_transport(from).filter(|_| !reset) {
            multi.link_packet(id, None, data, local_ip, now, unix, out, ttx);
            dirty.insert(id);
            return Some(id);
        }
        if op == Some(Opcode::DataV2) {
            // Float: the peer-id names the instance, the decryption proves
            // it is that client.
            let pid = data
                .get(1..4)
                .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
            if let Some(id) = pid.filter(|id| multi.peers.get(*id).is_some()) {
                multi.link_packet(id, Some(from), data, local_ip, now, unix, out, ttx);
                dirty.insert(id);
                return Some(id);
            }
            self.first_contact_drops += 1;
            return None;
        }
        match self
            .responder
            .handle_initial(now, unix, from, data, &mut self.reply)
        {
            FirstContact::Reply(r) => {
                // An authenticated reset from a known address: that client
                // restarted, its old instance goes (else the rest of its
                // handshake would reach the old session).
                if reset && let Some(old) = multi.peers.by_transport(from) {
                    multi.remove(old);
                }
                out.batch.push(from, local_ip, r);
            }
            FirstContact::Accept(s) => {
                if let Some(id) = multi.add_client(*s, from, local_ip) {
                    dirty.insert(id);
                }
            }
            FirstContact::Drop(r) => {
                self.first_contact_drops += 1;
                tracing::trace!(reason = ?r, %from, "first contact dropped");
            }
        }
        None
    }
}

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

/// Runs the UDP server until a signal ends it.
pub async fn tunnel_server_udp(
    cfg: &Config,
    signals: &mut Signals,
) -> Result<Outcome, DaemonError> {
    let tls = Arc::new(setup::tls_context(cfg)?);
    let bind = setup::bind_addr(cfg)?;
    let scfg = Arc::new(setup::session_config(
        cfg,
        tls,
        Transport::Udp,
        bind.is_ipv6(),
    )?);
    let cookie = CookieKey::generate(scfg.hand_window)
        .map_err(|e| DaemonError::Unsupported(format!("cookie key: {e}")))?;
    let responder =
        StatelessResponder::new(scfg.clone(), cookie).map_err(|source| DaemonError::Key {
            what: "control channel key",
            source,
        })?;
    let mut front = Front {
        responder,
        reply: vec![0u8; 2048],
        first_contact_drops: 0,
    };
    let uc = setup::udp_config(cfg, bind);
    let link = UdpLink::bind(&uc)?;
    tracing::info!(local = %link.local_addr(), "UDP server listening");
    let st: ServerTun = bring_up_server_tun(cfg).await?;
    crate::host::notify::ready(crate::host::notify::INIT_COMPLETED);
    let (mut multi, mut auth_rx) = Multi::new(Arc::new(cfg.clone()), scfg)?;
    // Clients are served on the socket until the fast path is up; then
    // the connected ones are steered to it.
    let mut fast: Option<FastPath> = None;
    let mut fast_starting = start_fast_path(cfg, link.local_addr());
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
    let q = st.queue.clone();
    let mtu = st.setup.mtu;
    let mut rx = link.recv_batch_buffer(RX_SLOTS, usize::from(mtu) + 256);
    let mut tx = SendBatch::with_capacity(64 * 1600);
    let mut trx = q.rx_batch(64, 0, mtu);
    let mut ttx = q.tx_batch(64);
    let mut status = crate::tunnel::schedule::status_interval(cfg);
    let mut persist = crate::tunnel::schedule::persist_interval(cfg);
    let mut dirty: BTreeSet<PeerId> = BTreeSet::new();
    let outcome = loop {
        for id in std::mem::take(&mut dirty) {
            multi.drain(id, &mut UdpOut::new(&mut tx, &mut fast));
        }
        apply_steering(&mut multi, &mut fast);
        if let Some(f) = fast.as_mut() {
            f.flush();
        }
        if !tx.is_empty()
            && let Err(e) = link.send_batch(&mut tx).await
        {
            tracing::warn!(error = %e, "UDP send");
            tx.clear();
        }
        if !ttx.is_empty()
            && let Err(e) = q.send_batch(&mut ttx).await
        {
            return Err(DaemonError::io("tun write", e));
        }
        let sleep = sleep_until(multi.next_timeout());
        tokio::select! {
            s = signals.recv() => match s {
                Signal::Term => break Outcome::Exit(0),
                Signal::Hup => break Outcome::Reload,
                Signal::Usr1 => break Outcome::Reload,
                Signal::Usr2 => {
                    tracing::info!(clients = multi.peers.len(), first_contact_drops = front.first_contact_drops, route_drops = ?multi.route_drops, xdp = ?fast.as_ref().map(FastPath::counters), "statistics");
                }
            },
            r = link.recv_batch(&mut rx) => {
                if let Err(e) = r {
                    // ICMP errors of one peer surface here; the socket lives on.
                    tracing::debug!(error = %e, "UDP receive");
                    continue;
                }
                let now = clock::now();
                let unix = clock::unix_time();
                let mut out = UdpOut::new(&mut tx, &mut fast);
                for d in rx.iter() {
                    front.datagram(&mut multi, d.peer, d.local_ip, d.data, now, unix, &mut out, &mut ttx, &mut dirty);
                }
            }
            f = or_never(fast_starting.as_mut().map(Starting::finished)), if fast_starting.is_some() => {
                let drop_unknown = fast_starting.take().is_some_and(|s| s.drop_unknown);
                if let Some(f) = f {
                    fast = Some(f);
                    // Steer who is connected already, then drop strangers.
                    multi.steer_all_connected();
                    apply_steering(&mut multi, &mut fast);
                    if let Some(f) = fast.as_mut() {
                        f.set_drop_unknown(drop_unknown);
                    }
                }
            }
            () = or_never(fast.as_ref().map(FastPath::readable)) => {
                let now = clock::now();
                let unix = clock::unix_time();
                if let Some(f) = fast.as_mut() {
                    // Packets forwarded while the rings are being read
                    // (client-to-client) take the socket: the fast path is
                    // busy lending us its receive frames.
                    let mut none = None;
                    f.recv(FAST_RX_BATCH, &mut |d| {
                        let len = d.payload.len();
                        let mut out = UdpOut::new(&mut tx, &mut none);
                        if let Some(id) = front.datagram(&mut multi, d.from, Some(d.local.ip()), d.payload, now, unix, &mut out, &mut ttx, &mut dirty) {
                            multi.count_fast_rx(id, len);
                        }
                    });
                }
            }
            r = q.recv_batch(&mut trx) => {
                r.map_err(|e| DaemonError::io("tun read", e))?;
                let now = clock::now();
                let h = trx.headroom();
                let mut out = UdpOut::new(&mut tx, &mut fast);
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
            _ = status.tick() => multi.write_status_with(fast.as_ref().map(FastPath::counters)),
            _ = persist.tick() => multi.write_pool_persist(),
        }
    };
    tracing::info!(?outcome, "server shutting down");
    // explicit-exit-notify: RESTART to every client, then leave. Control
    // packets take the socket; the fast path only carries data.
    let now = clock::now();
    let mut no_fast = None;
    for id in multi.close_all(now) {
        multi.drain(id, &mut UdpOut::new(&mut tx, &mut no_fast));
    }
    if !tx.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), link.send_batch(&mut tx)).await;
    }
    multi.write_status_with(fast.as_ref().map(FastPath::counters));
    multi.remove_all();
    multi.write_status_with(fast.as_ref().map(FastPath::counters));
    multi.write_pool_persist();
    // Dropping the fast path detaches the program; its peers go with it.
    drop(fast);
    st.shutdown(cfg).await;
    Ok(outcome)
}
