//! The server's mode logic glued to sessions (OpenVPN's `multi.c`), shared
//! by the UDP and TCP loops: client instances in a [`PeerTable`], their
//! authentication (`auth-user-pass-verify`, `client-connect` scripts run
//! as tasks so a slow script never stalls the data path), addresses from
//! ccd and the pool, the push list, the internal routing between tun and
//! clients, and the status file.
//!
//! The transport only moves bytes: it hands packets in with
//! [`Multi::link_packet`] and sends what the [`LinkOut`] it passes gets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::config::{Config, DevType};
use crate::daemon::error::DaemonError;
use crate::daemon::tunnel;
use crate::io::internal::tun::TunTxBatch;
use crate::io::{clock, icmp6};
use crate::mgmt::status::{
    ClientEntry, FastPathCounters, LineEnd, RouteEntry, ServerStatus, StatusVersion,
    SystemLocalTime, XdpCounters, render_server,
};
use crate::proto::event::Event;
use crate::proto::push::PushedOptions;
use crate::proto::session::{AuthDecision, DataOutcome, Session, SessionConfig};
use crate::proto::wire::PeerId as WirePeerId;
use crate::proto::wire::opcode::split_first_byte;
use crate::scripts::{Credentials, ScriptEnv, ScriptRunner, ScriptType};
use crate::server::ccd::{CcdOptions, ClientConfigDir};
use crate::server::compress::client_compression;
use crate::server::mac::MacTable;
use crate::server::peers::{
    CnAdmission, PacketSource, PeerId, PeerTable, RouteDecision, RouteDrop, RouteDropCounters,
    VpnRoutes,
};
use crate::server::pool::{AddressPool, Lease};
use crate::server::push::{
    ClientAddresses, ServerAddressing, client_addresses, client_push_list, needs_pool_lease,
    vpn_routes,
};
use crate::server::vlan;

/// Where the server's outgoing packets go.
pub trait LinkOut {
    /// Sends a copy of `packet` to `to` (from `src` on a wildcard socket).
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]);
    /// Sends a packet written by `fill` into at most `max` bytes.
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    );
    /// Sends a data packet written by `fill`; true when it left through
    /// the XDP fast path (counted per client), false for the socket.
    fn send_data(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> bool {
        self.send_with(to, src, max, fill);
        false
    }
}

/// A change the XDP peer map must follow (drained by the UDP loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// Steer this client's data packets from this address (its data keys
    /// are up, or it floated).
    Set(PeerId, SocketAddr),
    /// The client is gone.
    Remove(PeerId),
}

/// One client instance.
pub struct Client {
    /// Its protocol session.
    pub session: Session,
    /// Local address its packets arrived on (UDP replies go out from it).
    pub local_ip: Option<IpAddr>,
    lease: Option<Lease>,
    username: Option<String>,
    since: u64,
    connected: bool,
    /// Bumped on every new authentication, so late script results for an
    /// earlier one are ignored.
    auth_gen: u64,
    addrs: ClientAddresses,
    bytes_in: u64,
    bytes_out: u64,
    connect_ran: bool,
    /// Traffic through the XDP fast path.
    fast: FastPathCounters,
    /// Its ccd `vlan-pvid` (with `vlan-tagging`); `None`: the global one.
    vlan_pvid: Option<u16>,
    /// Its plugin contexts (`openvpn_plugin_client_constructor_v1`).
    plugin: Option<crate::plugin::ClientId>,
    /// The peer-info it sent last (its `IV_*` variables).
    peer_info: Box<crate::proto::key_method::PeerInfo>,
    /// Addresses announced to LEARN_ADDRESS plugins ("add"), to be
    /// withdrawn ("delete") when it goes.
    learned: Vec<String>,
    /// The environment its authentication built (2.6's per-instance
    /// `es`), for its later plugin hooks.
    env: ScriptEnv,
}

/// The result of an authentication task.
pub struct AuthResult {
    peer: PeerId,
    auth_gen: u64,
    accept: Result<Accepted, Refused>,
}

/// Why a client is refused: for the log, and what its `AUTH_FAILED`
/// says (a plugin's `auth_failed_reason_file`).
struct Refused {
    log: String,
    client_reason: Option<String>,
}

impl From<String> for Refused {
    fn from(log: String) -> Self {
        Refused {
            log,
            client_reason: None,
        }
    }
}

impl From<&str> for Refused {
    fn from(log: &str) -> Self {
        log.to_string().into()
    }
}

struct Accepted {
    common_name: Option<String>,
    username: Option<String>,
    ccd: Option<CcdOptions>,
    /// Extra config lines from a client-connect script.
    connect_lines: Option<String>,
    /// The environment the checks ran with.
    env: ScriptEnv,
}

/// The server state.
pub struct Multi {
    cfg: Arc<Config>,
    /// Session settings for new clients.
    pub scfg: Arc<SessionConfig>,
    /// The client table.
    pub peers: PeerTable<Client>,
    pool: Option<AddressPool>,
    ccd: Option<Arc<ClientConfigDir>>,
    addressing: ServerAddressing,
    runner: Arc<ScriptRunner>,
    auth_tx: mpsc::UnboundedSender<AuthResult>,
    next_gen: u64,
    scratch: Vec<u8>,
    ctl: Vec<u8>,
    /// Tun MSS clamp limits.
    pub mss: Option<tunnel::MssLimits>,
    /// Packets dropped by routing, by reason.
    pub route_drops: RouteDropCounters,
    /// `dev tap`: frames are routed by MAC address, not by IP.
    macs: Option<MacTable>,
    /// Peer map changes for the XDP fast path, oldest first, recorded only
    /// when the UDP loop runs one (`Some`) and drained by it.
    pub steer: Option<Vec<Steer>>,
    /// `connect-freq N SECONDS`.
    connect_freq: Option<FrequencyLimit>,
    /// `block-ipv6`: the ICMPv6 source and the answers' buffer.
    block_ipv6: Option<(std::net::Ipv6Addr, Vec<u8>)>,
}

/// 2.6's `frequency_limit`: at most `max` events in each window of `per`
/// seconds (the window starts at the first event after the last one ended).
#[derive(Debug)]
struct FrequencyLimit {
    max: u32,
    per: std::time::Duration,
    window: Option<(Instant, u32)>,
}

impl FrequencyLimit {
    fn new(max: u32, per: u32) -> Self {
        Self {
            max,
            per: std::time::Duration::from_secs(u64::from(per)),
            window: None,
        }
    }

    /// Whether one more event is allowed at `now`.
    fn event(&mut self, now: Instant) -> bool {
        let (start, n) = match self.window {
            Some((start, n)) if now.saturating_duration_since(start) < self.per => (start, n),
            _ => (now, 0),
        };
        let n = n.saturating_add(1);
        self.window = Some((start, n));
        n <= self.max
    }
}

impl Multi {
    /// Sets up pool, ccd and scripts for `cfg`; auth results arrive on the
    /// returned receiver and go to [`Self::auth_done`].
    pub fn new(
        cfg: Arc<Config>,
        scfg: Arc<SessionConfig>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<AuthResult>), DaemonError> {
        let mut pool = AddressPool::from_config(&cfg)
            .map_err(|e| DaemonError::Unsupported(format!("ifconfig-pool: {e}")))?;
        let cwd = std::env::current_dir().map_err(|e| DaemonError::io("current directory", e))?;
        let ccd = ClientConfigDir::from_config(&cfg, cwd).map(Arc::new);
        if let (Some(ccd), Some(pool)) = (&ccd, &mut pool) {
            match ccd.scan_static_addresses() {
                Ok((statics, errors)) => {
                    for e in errors {
                        tracing::warn!(error = %e, "client-config-dir");
                    }
                    for s in statics {
                        pool.reserve(s.ipv4, s.ipv6);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "client-config-dir scan"),
            }
        }
        if let (Some(pp), Some(pool)) = (&cfg.ifconfig_pool_persist, &mut pool)
            && let Ok(text) = std::fs::read_to_string(&pp.file)
        {
            for w in pool.load_persist(&text, pp.seconds == 0) {
                tracing::warn!(warning = ?w, "ifconfig-pool-persist");
            }
        }
        let (auth_tx, auth_rx) = mpsc::unbounded_channel();
        let block_ipv6 = cfg.host.block_ipv6.then(|| {
            let src = cfg.ifconfig_ipv6.map_or(icmp6::FAKE_SOURCE, |i| i.remote);
            (src, Vec::with_capacity(1400))
        });
        let connect_freq = cfg
            .host
            .connect_freq
            .map(|(max, per)| FrequencyLimit::new(max, per));
        let macs =
            (cfg.dev_type == DevType::Tap).then(|| MacTable::new(cfg.host.max_routes_per_client));
        Ok((
            Self {
                addressing: ServerAddressing::from_config(&cfg),
                peers: PeerTable::new(cfg.max_clients),
                runner: Arc::new(tunnel::script_runner(&cfg)),
                cfg,
                scfg,
                pool,
                ccd,
                auth_tx,
                next_gen: 1,
                scratch: vec![0u8; 65_536],
                ctl: vec![0u8; 4096],
                mss: None,
                route_drops: RouteDropCounters::default(),
                macs,
                steer: None,
                connect_freq,
                block_ipv6,
            },
            auth_rx,
        ))
    }

    /// Adds a new client whose session exists (after the cookie, or a TCP accept).
    pub fn add_client(
        &mut self,
        session: Session,
        from: SocketAddr,
        local_ip: Option<IpAddr>,
    ) -> Option<PeerId> {
        let since = clock::unix_time();
        if let Some(f) = &mut self.connect_freq
            && !f.event(clock::now())
        {
            // 2.6 drops the new session silently at this point
            // ("connect-freq"); the client retries.
            tracing::info!(client = %from, "new connection refused by connect-freq");
            return None;
        }
        // The peer-id is the table slot; the session pushes it later.
        let id = match self.peers.insert(
            from,
            Client {
                session,
                local_ip,
                lease: None,
                username: None,
                since,
                connected: false,
                auth_gen: 0,
                addrs: ClientAddresses::default(),
                bytes_in: 0,
                bytes_out: 0,
                connect_ran: false,
                fast: FastPathCounters::default(),
                vlan_pvid: None,
                plugin: crate::plugin::host().map(|h| h.client_new()),
                peer_info: Box::default(),
                learned: Vec::new(),
                env: ScriptEnv::new(),
            },
        ) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, client = %from, "client refused");
                return None;
            }
        };
        if let (Some(p), Some(wid)) = (self.peers.get_mut(id), WirePeerId::new(id)) {
            p.payload.session.set_peer_id(wid);
        }
        tracing::info!(client = %from, peer_id = id, "new client");
        Some(id)
    }

    /// A packet from `from` for the existing client `id` (control or data).
    #[allow(clippy::too_many_arguments)]
    pub fn link_packet(
        &mut self,
        id: PeerId,
        float_from: Option<SocketAddr>,
        data: &[u8],
        local_ip: Option<IpAddr>,
        now: Instant,
        unix: u64,
        out: &mut dyn LinkOut,
        ttx: &mut TunTxBatch,
    ) {
        let Some(&first) = data.first() else { return };
        let Ok((op, _)) = split_first_byte(first) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if local_ip.is_some() {
            peer.payload.local_ip = local_ip;
        }
        if !op.is_data() {
            peer.payload.session.handle_packet(now, unix, data);
            return;
        }
        peer.payload.bytes_in += data.len() as u64;
        let mss = self.mss;
        let scratch = &mut self.scratch;
        let base = scratch.as_ptr() as usize;
        let n = match peer.payload.session.decrypt(now, data, scratch) {
            Ok(DataOutcome::Tun(p)) => {
                let off = p.as_ptr() as usize - base;
                let n = p.len();
                if off != 0 {
                    scratch.copy_within(off..off + n, 0);
                }
                n
            }
            Ok(_) => 0,
            Err(_) => return,
        };
        if let Some(to) = float_from {
            self.float(id, to);
        }
        if n == 0 {
            return;
        }
        // A tap server learns source MACs from these frames: only from a
        // client whose authentication finished (a tun server checks the
        // source against the addresses given at that point instead).
        if self.macs.is_some() && !self.peers.get(id).is_some_and(|p| p.payload.connected) {
            self.route_drops.count(RouteDrop::NotConnected);
            return;
        }
        let Some(pkt) = self.scratch.get_mut(..n) else {
            return;
        };
        tunnel::clamp(pkt, mss);
        let c2c = self.cfg.client_to_client;
        // vlan-tagging: clients send untagged frames, in their own VLAN.
        let vlan = self.cfg.vlan;
        let vid = match vlan {
            Some(_) if vlan::is_tagged(pkt) => {
                self.route_drops.count(RouteDrop::Vlan);
                return;
            }
            Some(v) => self
                .peers
                .get(id)
                .map_or(v.pvid, |p| p.payload.vlan_pvid.unwrap_or(v.pvid)),
            None => 0,
        };
        let decision = match &mut self.macs {
            Some(macs) => macs.route(PacketSource::Peer(id), vid, pkt, c2c),
            None => self.peers.route(PacketSource::Peer(id), pkt, c2c),
        };
        match decision {
            RouteDecision::Tun => to_tap(ttx, pkt, vlan, vid, &mut self.route_drops),
            RouteDecision::Peer(to) => {
                let pkt = pkt.to_vec();
                self.send_to_peer(to, &pkt, now, out);
            }
            RouteDecision::Broadcast { except, also_tun } => {
                let pkt = pkt.to_vec();
                if also_tun {
                    to_tap(ttx, &pkt, vlan, vid, &mut self.route_drops);
                }
                let ids = self.broadcast_ids(except, vid);
                for to in ids {
                    self.send_to_peer(to, &pkt, now, out);
                }
            }
            RouteDecision::Drop(r) => {
                self.route_drops.count(r);
            }
        }
    }

    /// `float`: an authenticated packet of `id` came from `to`.
    fn float(&mut self, id: PeerId, to: SocketAddr) {
        if !self.cfg.float && self.cfg.proto.transport != crate::config::Transport::Udp {
            return;
        }
        let same = |a: &crate::server::peers::Peer<Client>,
                    b: &crate::server::peers::Peer<Client>| {
            a.common_name().is_some() && a.common_name() == b.common_name()
        };
        match self.peers.float(id, to, same) {
            Ok(crate::server::peers::FloatOutcome::Moved { from }) => {
                tracing::info!(peer_id = id, %from, %to, "client floated");
                self.steer_connected(id);
            }
            Ok(_) => {}
            Err(crate::server::peers::FloatError::TakenBySameClient { stale, .. }) => {
                self.remove(stale);
                if self.peers.float(id, to, same).is_ok() {
                    self.steer_connected(id);
                }
            }
            Err(e) => tracing::debug!(error = %e, "float refused"),
        }
    }

    /// An IP packet read from tun (an Ethernet frame from tap).
    pub fn tun_packet(&mut self, pkt: &mut [u8], now: Instant, out: &mut dyn LinkOut) {
        let c2c = self.cfg.client_to_client;
        let (pkt, vid) = match &self.cfg.vlan {
            Some(v) => match vlan::decapsulate(pkt, v) {
                Some((vid, off)) if off <= pkt.len() => (&mut pkt[off..], vid),
                _ => {
                    self.route_drops.count(RouteDrop::Vlan);
                    return;
                }
            },
            None => (pkt, 0),
        };
        // After the tag is gone, as 2.6 (mssfix looks at untagged frames).
        tunnel::clamp(pkt, self.mss);
        let decision = match &mut self.macs {
            Some(macs) => macs.route(PacketSource::Tun, vid, pkt, c2c),
            None => self.peers.route(PacketSource::Tun, pkt, c2c),
        };
        match decision {
            RouteDecision::Peer(to) => self.send_to_peer(to, pkt, now, out),
            RouteDecision::Broadcast { except, .. } => {
                let ids = self.broadcast_ids(except, vid);
                for to in ids {
                    self.send_to_peer(to, pkt, now, out);
                }
            }
            RouteDecision::Tun => {}
            RouteDecision::Drop(r) => {
                self.route_drops.count(r);
            }
        }
    }

    /// Who gets a broadcast: every client but `except`, and with
    /// `vlan-tagging` only those of VLAN `vid` (2.6 `multi_bcast`).
    fn broadcast_ids(&self, except: Option<PeerId>, vid: u16) -> Vec<PeerId> {
        let global = self.cfg.vlan.map_or(0, |v| v.pvid);
        self.peers
            .iter()
            .filter(|p| {
                Some(p.id()) != except && (vid == 0 || p.payload.vlan_pvid.unwrap_or(global) == vid)
            })
            .map(|p| p.id())
            .collect()
    }

    fn send_to_peer(&mut self, to: PeerId, pkt: &[u8], now: Instant, out: &mut dyn LinkOut) {
        if let Some((src, reply)) = &mut self.block_ipv6
            && icmp6::is_ipv6(pkt)
        {
            // 2.6 (multi_get_queue with PIPV6_IMCP_NOHOST_SERVER): the
            // client gets the ICMPv6 answer instead of the packet.
            let mtu = self.cfg.tun_mtu as usize;
            if icmp6::no_route_reply(pkt, *src, mtu, reply) {
                let reply = std::mem::take(reply);
                self.seal_to_peer(to, &reply, now, out);
                if let Some((_, r)) = &mut self.block_ipv6 {
                    *r = reply;
                }
            }
            return;
        }
        self.seal_to_peer(to, pkt, now, out);
    }

    fn seal_to_peer(&mut self, to: PeerId, pkt: &[u8], now: Instant, out: &mut dyn LinkOut) {
        let Some(p) = self.peers.get_mut(to) else {
            return;
        };
        if !p.payload.connected {
            return;
        }
        let addr = p.transport();
        let src = p.payload.local_ip;
        let c = &mut p.payload;
        let Some(max) = c.session.data_channel().seal_buffer_len(pkt.len()) else {
            return;
        };
        let mut sent = 0usize;
        let fast = out.send_data(addr, src, max, &mut |b| {
            let n = c.session.encrypt(now, pkt, b).map(<[u8]>::len).unwrap_or(0);
            sent = n;
            n
        });
        c.bytes_out += sent as u64;
        if fast && sent > 0 {
            c.fast.tx_packets += 1;
            c.fast.tx_bytes += sent as u64;
        }
        // `fragment`: the rest of the pieces, right behind the first.
        while c.session.data_channel().has_pending_fragment() {
            let mut sent = 0usize;
            let fast = out.send_data(addr, src, max, &mut |b| {
                let n = match c.session.encrypt_pending(now, b) {
                    Some(Ok(p)) => p.len(),
                    _ => 0,
                };
                sent = n;
                n
            });
            if sent == 0 {
                break;
            }
            c.bytes_out += sent as u64;
            if fast {
                c.fast.tx_packets += 1;
                c.fast.tx_bytes += sent as u64;
            }
        }
    }

    /// Counts a data packet of `id` that arrived through the fast path.
    pub fn count_fast_rx(&mut self, id: PeerId, bytes: usize) {
        if let Some(p) = self.peers.get_mut(id) {
            p.payload.fast.rx_packets += 1;
            p.payload.fast.rx_bytes += bytes as u64;
        }
    }

    /// The fast path came up: from now on record peer map changes, starting
    /// with every client already connected.
    pub fn steer_all_connected(&mut self) {
        let now: Vec<Steer> = self
            .peers
            .iter()
            .filter(|p| p.payload.connected)
            .map(|p| Steer::Set(p.id(), p.transport()))
            .collect();
        self.steer.get_or_insert_with(Vec::new).extend(now);
    }

    /// Queues a peer map entry for `id` at its current address, if it is
    /// connected (its data keys are up).
    fn steer_connected(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get(id)
            && p.payload.connected
            && let Some(s) = &mut self.steer
        {
            s.push(Steer::Set(id, p.transport()));
        }
    }

    /// Drains one client's session outputs; removes it when it closed.
    /// Returns false when the client is gone.
    pub fn drain(&mut self, id: PeerId, out: &mut dyn LinkOut) -> bool {
        let now = clock::now();
        let unix = clock::unix_time();
        let mut events = Vec::new();
        {
            let Some(p) = self.peers.get_mut(id) else {
                return false;
            };
            let addr = p.transport();
            let src = p.payload.local_ip;
            while let Some(n) = p.payload.session.poll_transmit(now, unix, &mut self.ctl) {
                if let Some(b) = self.ctl.get(..n) {
                    out.send(addr, src, b);
                }
            }
            while let Some(ev) = p.payload.session.poll_event() {
                events.push(ev);
            }
        }
        let mut alive = true;
        for ev in events {
            if !self.on_event(id, ev) {
                alive = false;
            }
        }
        alive
    }

    /// Handles one session event; false when the client was removed.
    fn on_event(&mut self, id: PeerId, ev: Event) -> bool {
        match ev {
            Event::ClientCredentials {
                username,
                password,
                common_name,
                options,
                peer_info,
                ..
            } => {
                if let Some(p) = self.peers.get_mut(id) {
                    p.payload.peer_info = peer_info;
                }
                if self.cfg.host.opt_verify && options != expected_client_options(&self.scfg) {
                    // 2.6: the key state is not authenticated.
                    tracing::warn!(peer_id = id, client_options = %options, "Option inconsistency warnings triggering disconnect due to --opt-verify");
                    if let Some(p) = self.peers.get_mut(id) {
                        let _ = p
                            .payload
                            .session
                            .auth_decision(clock::now(), AuthDecision::Deny(None));
                    }
                } else {
                    self.start_auth(id, username, password, common_name);
                }
            }
            Event::Connected => {
                if let Some(p) = self.peers.get_mut(id) {
                    p.payload.connected = true;
                    if let Some(s) = &mut self.steer {
                        s.push(Steer::Set(id, p.transport()));
                    }
                    tracing::info!(
                        peer_id = id,
                        client = %p.transport(),
                        cn = ?p.common_name(),
                        cipher = ?p.payload.session.cipher(),
                        "client connected"
                    );
                }
            }
            Event::Warning(w) => tracing::warn!(peer_id = id, "{w}"),
            Event::Closed { reason } => {
                tracing::info!(peer_id = id, ?reason, "client session closed");
                self.remove(id);
                return false;
            }
            _ => {}
        }
        true
    }

    /// Runs the credential checks (scripts in a task).
    fn start_auth(
        &mut self,
        id: PeerId,
        username: Option<String>,
        password: Option<String>,
        common_name: Option<String>,
    ) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let auth_gen = self.next_gen;
        self.next_gen += 1;
        p.payload.auth_gen = auth_gen;
        let addr = p.transport();
        let plugin = p.payload.plugin;
        // client-connect runs once per client instance (2.6's
        // multi_connection_established), not again at renegotiations.
        let first = !p.payload.connect_ran;
        let inherited = p.payload.env.clone();
        let chain = p.payload.session.peer_chain();
        let mut peer_env = ScriptEnv::new();
        crate::server::cert_env::set_peer_info_env(&mut peer_env, &p.payload.peer_info);
        let cfg = self.cfg.clone();
        let runner = self.runner.clone();
        let tx = self.auth_tx.clone();
        let ccd = self.ccd.clone();
        tokio::spawn(async move {
            let accept = authenticate(
                &cfg,
                &runner,
                ccd.as_deref(),
                addr,
                plugin,
                (first, inherited, chain, peer_env),
                username,
                password,
                common_name,
            )
            .await;
            let _ = tx.send(AuthResult {
                peer: id,
                auth_gen,
                accept,
            });
        });
    }

    /// Finishes an authentication: addresses, push list, decision.
    pub fn auth_done(&mut self, r: AuthResult) -> Option<PeerId> {
        let id = r.peer;
        let now = clock::now();
        let duplicate_cn = self.cfg.duplicate_cn;
        let p = self.peers.get(id)?;
        if p.payload.auth_gen != r.auth_gen {
            return None;
        }
        let first = p.payload.lease.is_none() && !p.payload.connect_ran;
        let acc = match r.accept {
            Err(r) => {
                tracing::warn!(peer_id = id, reason = %r.log, "authentication failed");
                if let Some(p) = self.peers.get_mut(id) {
                    let _ = p
                        .payload
                        .session
                        .auth_decision(now, AuthDecision::Deny(r.client_reason));
                }
                return Some(id);
            }
            Ok(a) => a,
        };
        if first {
            if let Some(cn) = &acc.common_name {
                let _ = self.peers.set_common_name(id, Some(cn.clone()));
                if let CnAdmission::ReplaceExisting(old) =
                    self.peers.admit_common_name(cn, id, duplicate_cn)
                {
                    for o in old {
                        tracing::info!(peer_id = o, cn = %cn, "replaced by a new connection with the same common name");
                        self.remove(o);
                    }
                }
            }
            let mut ccd = acc.ccd;
            if let Some(lines) = &acc.connect_lines {
                // Without client-config-dir the lines still apply (2.6
                // imports them either way); only their `config` includes
                // need a directory, the working one.
                let fallback;
                let dir = match &self.ccd {
                    Some(d) => d.as_ref(),
                    None => {
                        fallback = ClientConfigDir {
                            dir: std::path::PathBuf::new(),
                            exclusive: false,
                            cwd: std::env::current_dir().unwrap_or_default(),
                            ifconfig_ipv6_local: self.cfg.ifconfig_ipv6.map(|i| i.local.addr()),
                        };
                        &fallback
                    }
                };
                match crate::server::ccd::parse_ccd(
                    lines.as_bytes(),
                    std::path::Path::new("client-connect"),
                    dir,
                ) {
                    Ok(o) => ccd = Some(merge_ccd(ccd, o)),
                    Err(e) => tracing::warn!(error = %e, "client-connect output"),
                }
            }
            let o = ccd.as_ref();
            let (pi, uses_comp) = self
                .peers
                .get(id)?
                .payload
                .session
                .client_compression_hints();
            let comp = match client_compression(self.cfg.compression, pi, uses_comp, o) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(peer_id = id, error = %e, "MULTI: client rejected");
                    let p = self.peers.get_mut(id)?;
                    let _ = p
                        .payload
                        .session
                        .auth_decision(now, AuthDecision::Deny(None));
                    return Some(id);
                }
            };
            let lease = if needs_pool_lease(o) {
                match self
                    .pool
                    .as_mut()
                    .map(|pool| pool.acquire(acc.common_name.as_deref()))
                {
                    Some(Ok(l)) => Some(l),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "no address for client");
                        None
                    }
                    None => None,
                }
            } else {
                None
            };
            let addrs = client_addresses(&self.addressing, lease.as_ref(), o);
            let lines = match comp.push {
                // 2.6's migrate handler appends to the push list before the
                // ccd file is read.
                Some(extra) => {
                    let mut global = self.cfg.push.clone();
                    global.push(extra.to_string());
                    client_push_list(&global, o, &addrs)
                }
                None => client_push_list(&self.cfg.push, o, &addrs),
            };
            let mut routes = vpn_routes(&addrs, o);
            bound_routes(&mut routes, self.cfg.host.max_routes_per_client, id);
            self.learn_address("add", &routes, acc.common_name.as_deref());
            let conflicts = self.peers.set_routes(id, routes);
            if let Ok(c) = conflicts
                && !c.is_empty()
            {
                tracing::warn!(peer_id = id, others = ?c, "address or iroute taken over from other clients");
            }
            let opts = match PushedOptions::parse(&lines.join(",")) {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "push list not understood");
                    PushedOptions::default()
                }
            };
            if let Some(p) = self.peers.get_mut(id) {
                p.payload.env = acc.env.clone();
            }
            let learned = self.learn_addresses(id, &addrs, o, acc.common_name.as_deref());
            let p = self.peers.get_mut(id)?;
            p.payload.learned = learned;
            p.payload.lease = lease;
            p.payload.addrs = addrs;
            p.payload.username = acc.username;
            p.payload.connect_ran = true;
            p.payload.session.set_push_reply(opts);
            p.payload.session.set_compression(comp.options);
            if let Some(o) = &ccd {
                p.payload.session.override_timers(now, o.instance_timers());
                if self.cfg.vlan.is_some() {
                    p.payload.vlan_pvid =
                        vlan::ccd_pvid(o.other.iter().map(|d| d.words.as_slice()));
                }
            }
        }
        let p = self.peers.get_mut(id)?;
        if let Err(e) = p.payload.session.auth_decision(now, AuthDecision::Accept) {
            tracing::debug!(error = %e, "auth decision");
        }
        Some(id)
    }

    /// Removes a client: lease back to the pool, disconnect script.
    pub fn remove(&mut self, id: PeerId) {
        let Some(p) = self.peers.remove(id) else {
            return;
        };
        if let Some(macs) = &mut self.macs {
            macs.remove_peer(id);
        }
        if let Some(s) = &mut self.steer {
            s.push(Steer::Remove(id));
        }
        if let (Some(l), Some(pool)) = (p.payload.lease, &mut self.pool) {
            let _ = pool.release(l.handle, false);
        }
        // 2.6's order: client-disconnect, the instance's contexts go, then
        // its routes are withdrawn (learn-address "delete", no env).
        if let Some(h) = crate::plugin::host() {
            if p.payload.connect_ran {
                let mut env = p.payload.env.clone();
                env.set_client_addresses(&p.payload.addrs, self.cfg.topology);
                let secs = clock::unix_time().saturating_sub(p.payload.since);
                env.set_disconnect(p.payload.bytes_in, p.payload.bytes_out, secs);
                let call = h.call(
                    crate::plugin::Hook::ClientDisconnect,
                    p.payload.plugin,
                    &[],
                    &env,
                );
                tokio::spawn(async move {
                    if call.await.status != crate::plugin::Status::Success {
                        tracing::warn!("WARNING: client-disconnect plugin call failed");
                    }
                });
            }
            if let Some(c) = p.payload.plugin {
                h.client_drop(c);
            }
            for a in &p.payload.learned {
                let args = ["delete".to_string(), a.clone()];
                let call = h.call_exact(
                    crate::plugin::Hook::LearnAddress,
                    None,
                    &args,
                    &ScriptEnv::new(),
                );
                tokio::spawn(call);
            }
        }
        if p.payload.connect_ran {
            self.learn_address("delete", p.routes(), None);
        }
        if let (Some(cmd), true) = (&self.cfg.scripts.client_disconnect, p.payload.connect_ran) {
            let mut env = ScriptEnv::new();
            env.set_untrusted(p.transport());
            env.set_opt("common_name", p.common_name());
            env.set_opt("username", p.payload.username.as_deref());
            env.set_client_addresses(&p.payload.addrs, self.cfg.topology);
            let secs = clock::unix_time().saturating_sub(p.payload.since);
            env.set_disconnect(p.payload.bytes_in, p.payload.bytes_out, secs);
            let runner = self.runner.clone();
            let cmd = cmd.clone();
            tokio::spawn(async move {
                if let Err(e) = runner
                    .run(&cmd, ScriptType::ClientDisconnect, &[], &env, None)
                    .await
                {
                    tracing::warn!(error = %e, "client-disconnect");
                }
            });
        }
        tracing::info!(peer_id = id, client = %p.transport(), "client removed");
    }

    /// `learn-address CMD add|update|delete ADDR [CN]` for each of a
    /// client's addresses, in order (one task, so a delete never overtakes
    /// its add).
    fn learn_address(&self, op: &'static str, routes: &VpnRoutes, cn: Option<&str>) {
        let Some(cmd) = self.cfg.host.learn_address.clone() else {
            return;
        };
        let addrs = learned_addresses(routes);
        if addrs.is_empty() {
            return;
        }
        let runner = self.runner.clone();
        let cn = cn.map(str::to_owned);
        tokio::spawn(async move {
            for a in addrs {
                let mut args = vec![op.to_owned(), a];
                if let (Some(cn), true) = (&cn, op != "delete") {
                    args.push(cn.clone());
                }
                let env = ScriptEnv::new();
                match runner
                    .run(&cmd, ScriptType::LearnAddress, &args, &env, None)
                    .await
                {
                    Ok(o) if o.success => {}
                    Ok(o) => {
                        tracing::warn!(code = ?o.exit_code, args = ?args, "learn-address script failed")
                    }
                    Err(e) => tracing::warn!(error = %e, "learn-address script not run"),
                }
            }
        });
    }

    /// LEARN_ADDRESS "add" for a client's tunnel addresses and iroutes
    /// (2.6's multi_learn_addr calls the plugin for each new route); the
    /// addresses, to delete them when it goes.
    fn learn_addresses(
        &self,
        id: PeerId,
        addrs: &ClientAddresses,
        ccd: Option<&CcdOptions>,
        common_name: Option<&str>,
    ) -> Vec<String> {
        let Some(h) = crate::plugin::host() else {
            return Vec::new();
        };
        if !h.defined(crate::plugin::Hook::LearnAddress) {
            return Vec::new();
        }
        let plugin = self.peers.get(id).and_then(|p| p.payload.plugin);
        let env = self
            .peers
            .get(id)
            .map(|p| p.payload.env.clone())
            .unwrap_or_default();
        let mut learned = Vec::new();
        learned.extend(addrs.ipv4.map(|a| a.local.to_string()));
        learned.extend(addrs.ipv6.map(|a| a.local.to_string()));
        if let Some(o) = ccd {
            learned.extend(o.iroutes_v4.iter().map(|r| r.to_string()));
            learned.extend(o.iroutes_v6.iter().map(|r| r.to_string()));
        }
        for a in &learned {
            let args = [
                "add".to_string(),
                a.clone(),
                common_name.unwrap_or_default().to_string(),
            ];
            tokio::spawn(h.call(crate::plugin::Hook::LearnAddress, plugin, &args, &env));
        }
        learned
    }

    /// Shutdown: every client goes as [`Self::remove`] does (disconnect
    /// hooks included), as 2.6 closes each instance before `down`.
    pub fn remove_all(&mut self) {
        let ids: Vec<PeerId> = self.peers.iter().map(|p| p.id()).collect();
        for id in ids {
            self.remove(id);
        }
    }

    /// Next instant any session needs `handle_timeout`.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.peers
            .iter()
            .filter_map(|p| p.payload.session.poll_timeout())
            .min()
    }

    /// Runs every due session timer; returns the ids whose outputs need draining.
    pub fn timeouts(&mut self, now: Instant, unix: u64) -> Vec<PeerId> {
        let mut due = Vec::new();
        for p in self.peers.iter_mut() {
            if p.payload.session.poll_timeout().is_some_and(|t| t <= now) {
                p.payload.session.handle_timeout(now, unix);
                due.push(p.id());
            }
        }
        due
    }

    /// Shutdown: tells every client to reconnect (RESTART).
    pub fn close_all(&mut self, now: Instant) -> Vec<PeerId> {
        let mut ids = Vec::new();
        for p in self.peers.iter_mut() {
            p.payload.session.close(now, true);
            ids.push(p.id());
        }
        ids
    }

    /// Writes the status file (atomically).
    pub fn write_status(&self) {
        self.write_status_with(None);
    }

    /// Writes the status file (atomically), with the XDP counters when the
    /// fast path runs.
    pub fn write_status_with(&self, xdp: Option<XdpCounters>) {
        if let Some(sf) = &self.cfg.status {
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
            let st = ServerStatus {
                title: format!("vpn-daemon {}", env!("CARGO_PKG_VERSION")),
                now,
                clients,
                routes,
                max_bcast_mcast_queue_len: 0,
                dco_enabled: false,
                xdp,
            };
            let version =
                StatusVersion::from_number(self.cfg.status_version).unwrap_or(StatusVersion::V1);
            let text = render_server(&st, version, LineEnd::Lf, &SystemLocalTime);
            if let Err(e) = write_atomic(&sf.path, text.as_bytes()) {
                tracing::warn!(error = %e, "status file");
            }
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

/// Writes `path` through a temporary file and a rename, so readers never
/// see half a file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    // Opened before a privilege drop: rewritten in place (see held_files).
    if let Some(r) = super::held_files::write(path, bytes) {
        return r;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes a client's frame to tap as the VLAN port needs it (2.6
/// `vlan_process_outgoing_tun`); without `vlan-tagging` as it is.
fn to_tap(
    ttx: &mut TunTxBatch,
    pkt: &[u8],
    vlan_cfg: Option<crate::config::Vlan>,
    vid: u16,
    drops: &mut RouteDropCounters,
) {
    match vlan_cfg.map(|v| vlan::to_tap(&v, vid)) {
        None | Some(vlan::ToTap::AsIs) => ttx.push(pkt),
        Some(vlan::ToTap::Tag(vid)) => {
            ttx.push_with(pkt.len() + 4, |b| vlan::encapsulate(pkt, vid, b));
        }
        Some(vlan::ToTap::Drop) => drops.count(RouteDrop::Vlan),
    }
}

/// ccd options plus a client-connect script's: the script's lines add to
/// (and for addresses override) the file's.
fn merge_ccd(base: Option<CcdOptions>, extra: CcdOptions) -> CcdOptions {
    let Some(mut b) = base else { return extra };
    if extra.ifconfig_push.is_some() {
        b.ifconfig_push = extra.ifconfig_push;
    }
    if extra.ifconfig_ipv6_push.is_some() {
        b.ifconfig_ipv6_push = extra.ifconfig_ipv6_push;
    }
    b.iroutes_v4.extend(extra.iroutes_v4);
    b.iroutes_v6.extend(extra.iroutes_v6);
    b.push_edits.extend(extra.push_edits);
    b.disable |= extra.disable;
    b
}

/// The checks of one authentication, in 2.6's order: user/pass script,
/// username-as-common-name, ccd (`disable`, `ccd-exclusive`), client-connect.
#[allow(clippy::too_many_arguments)]
async fn authenticate(
    cfg: &Config,
    runner: &ScriptRunner,
    ccd_dir: Option<&ClientConfigDir>,
    addr: SocketAddr,
    plugin: Option<crate::plugin::ClientId>,
    (first, inherited, chain, peer_env): (bool, ScriptEnv, Vec<openssl::x509::X509>, ScriptEnv),
    username: Option<String>,
    password: Option<String>,
    cert_cn: Option<String>,
) -> Result<Accepted, Refused> {
    // A renegotiation starts from what the instance's env already holds.
    let mut env = inherited;
    env.set_untrusted(addr);
    let host = crate::plugin::host();
    // The chain from the CA down to the client's certificate, as 2.6's
    // verify callback sees it: each depth's variables, and TLS_VERIFY.
    // (The handshake is done by now: a refusal here is an AUTH_FAILED,
    // where 2.6 fails the TLS handshake itself.)
    crate::server::cert_env::clear_x509_env(&mut env);
    for (depth, cert) in chain.iter().enumerate().rev() {
        crate::server::cert_env::set_cert_env(&mut env, depth, cert);
        if depth == 0 {
            // 2.6 takes the common name from the leaf before its check.
            env.set_opt("common_name", cert_cn.as_deref());
        }
        if let Some(h) = &host
            && h.defined(crate::plugin::Hook::TlsVerify)
        {
            let subject = crate::proto::tls::subject_string(cert.subject_name());
            let args = [depth.to_string(), subject.clone()];
            let r = h
                .call_verify(plugin, depth, cert.clone(), &args, &env)
                .await;
            if r.status != crate::plugin::Status::Success {
                return Err(format!("VERIFY PLUGIN ERROR: depth={depth}, {subject}").into());
            }
        }
        // `tls-verify CMD DEPTH SUBJECT`, after the plugin, as 2.6.
        if let Some(cmd) = &cfg.host.tls_verify {
            let subject = crate::proto::tls::subject_string(cert.subject_name());
            let args = [depth.to_string(), subject.clone()];
            let ok = runner
                .run(cmd, ScriptType::TlsVerify, &args, &env, None)
                .await
                .is_ok_and(|o| o.success);
            if !ok {
                return Err(format!("VERIFY SCRIPT ERROR: depth={depth}, {subject}").into());
            }
        }
    }
    env.set_opt("common_name", cert_cn.as_deref());
    // The peer-info arrives with the credentials (2.6's
    // output_peer_info_env in key_method_2_read).
    env.extend(&peer_env);
    // 2.6 keeps the username in the session's env from here on
    // (set_verify_user_pass_env).
    env.set_opt("username", username.as_deref().filter(|u| !u.is_empty()));
    if let Some(h) = &host
        && h.defined(crate::plugin::Hook::AuthUserPassVerify)
    {
        crate::server::plugin_auth::verify_user_pass(
            cfg,
            h,
            plugin,
            &runner.tmp_dir,
            &env,
            username.as_deref().unwrap_or_default(),
            password.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(|(log, client_reason)| Refused { log, client_reason })?;
    }
    if let Some(v) = &cfg.auth_user_pass_verify {
        // 2.6 refuses a client that gave no username or no password unless
        // `auth-user-pass-optional`, which hands the script empty values.
        let missing = username.as_deref().is_none_or(str::is_empty)
            || password.as_deref().is_none_or(str::is_empty);
        if missing && !cfg.extras.auth_user_pass_optional {
            return Err("Auth Username/Password was not provided by peer".into());
        }
        let creds = match v.method {
            crate::config::VerifyMethod::ViaEnv => Credentials::ViaEnv {
                username: username.clone().unwrap_or_default(),
                password: password.clone().unwrap_or_default(),
            },
            crate::config::VerifyMethod::ViaFile => Credentials::ViaFile {
                username: username.clone().unwrap_or_default(),
                password: password.clone().unwrap_or_default(),
            },
        };
        match runner
            .run(
                &v.command,
                ScriptType::UserPassVerify,
                &[],
                &env,
                Some(&creds),
            )
            .await
        {
            Ok(o) if o.success => {}
            Ok(o) => {
                return Err(format!("auth-user-pass-verify exited with {:?}", o.exit_code).into());
            }
            Err(e) => return Err(e.to_string().into()),
        }
    }
    // 2.6 calls TLS_FINAL once the key exchange (and password check) is
    // done; a failure fails the client.
    if let Some(h) = &host
        && h.defined(crate::plugin::Hook::TlsFinal)
    {
        let r = h
            .call(crate::plugin::Hook::TlsFinal, plugin, &[], &env)
            .await;
        if r.status != crate::plugin::Status::Success {
            return Err("TLS_FINAL plugin call failed".into());
        }
    }
    if first {
        // The connection counts as initiated: trusted_* and IPCHANGE
        // (2.6's link_socket_connection_initiated, with the top-level
        // plugin context and the address as one "[AF_INET]ip port" word).
        env.set_trusted(addr);
        if let Some(h) = &host
            && h.defined(crate::plugin::Hook::IpChange)
        {
            let r = h
                .call(
                    crate::plugin::Hook::IpChange,
                    None,
                    &[crate::plugin::ipchange_arg(addr)],
                    &env,
                )
                .await;
            if r.status != crate::plugin::Status::Success {
                tracing::warn!("WARNING: ipchange plugin call failed");
            }
        }
    }
    let common_name = if cfg.username_as_common_name {
        username.clone().or(cert_cn)
    } else {
        cert_cn
    };
    let ccd = match (ccd_dir, &common_name) {
        (Some(d), Some(cn)) => match d.load(cn) {
            Ok(l) => l.options().cloned(),
            Err(e) => {
                tracing::warn!(error = %e, "client-config-dir");
                None
            }
        },
        _ => None,
    };
    if ccd.as_ref().is_some_and(|c| c.disable) {
        return Err("disabled by its client-config-dir file".into());
    }
    if cfg.ccd_exclusive && ccd.is_none() {
        return Err("ccd-exclusive and no client-config-dir file".into());
    }
    let mut connect_lines = None;
    env.set_opt("common_name", common_name.as_deref());
    env.set_opt("username", username.as_deref());
    // 2.6's client-connect environment adds the time.
    env.set_time(clock::unix_time(), &SystemLocalTime);
    // Plugins (v1, then v2) before the script, as 2.6's
    // client_connect_handlers; their config lines add up.
    if let Some(h) = host.as_ref().filter(|_| first) {
        let lines =
            crate::server::plugin_auth::client_connect(cfg, h, plugin, &runner.tmp_dir, &env)
                .await
                .map_err(Refused::from)?;
        if !lines.is_empty() {
            connect_lines = Some(lines);
        }
    }
    if let Some(cmd) = cfg.scripts.client_connect.as_ref().filter(|_| first) {
        match runner.run_client_connect(cmd, &env).await {
            Ok((o, text)) if o.success => {
                connect_lines = match (connect_lines, text) {
                    (Some(a), Some(b)) => Some(a + "\n" + &b),
                    (a, b) => a.or(b),
                }
            }
            Ok((o, _)) => {
                return Err(format!("client-connect exited with {:?}", o.exit_code).into());
            }
            Err(e) => return Err(e.to_string().into()),
        }
    }
    Ok(Accepted {
        common_name,
        username,
        ccd,
        connect_lines,
        env,
    })
}

/// The options string a compatible client sends: ours as the client side
/// writes it (2.6's `options_string(..., remote = true)`): the TLS role and
/// the tls-auth key direction are the other end's.
fn expected_client_options(scfg: &SessionConfig) -> String {
    let mut o = scfg.options_string.clone();
    o.role = crate::proto::tls::TlsRole::Client;
    o.keydir = o.keydir.map(|k| 1 - k.min(1));
    o.to_string()
}

/// What `learn-address` is told, as 2.6 prints its route keys: a host
/// address bare, a network as `ADDR/BITS`.
fn learned_addresses(r: &VpnRoutes) -> Vec<String> {
    let mut v = Vec::new();
    v.extend(r.ipv4.map(|a| a.to_string()));
    v.extend(r.ipv6.map(|a| a.to_string()));
    v.extend(r.iroutes_v4.iter().map(|n| n.trunc().to_string()));
    v.extend(r.iroutes_v6.iter().map(|n| n.trunc().to_string()));
    v
}

/// `max-routes-per-client`: 2.6 refuses to learn more routes for one
/// client than this and logs it; the client's own addresses come first.
fn bound_routes(r: &mut VpnRoutes, max: u32, id: PeerId) {
    let own = usize::from(r.ipv4.is_some()) + usize::from(r.ipv6.is_some());
    let room = (max as usize).saturating_sub(own);
    let total = r.iroutes_v4.len() + r.iroutes_v6.len();
    if total > room {
        tracing::warn!(
            peer_id = id,
            max,
            "max-routes-per-client limit reached: {} iroute(s) not learned",
            total - room
        );
        r.iroutes_v4.truncate(room);
        let left = room.saturating_sub(r.iroutes_v4.len());
        r.iroutes_v6.truncate(left);
    }
}

#[cfg(test)]
mod frequency_tests {
    use super::*;

    #[test]
    fn connect_freq_allows_n_per_window_then_a_new_window() {
        let t0 = clock::now();
        let mut f = FrequencyLimit::new(2, 10);
        assert!(f.event(t0));
        assert!(f.event(t0 + std::time::Duration::from_secs(1)));
        assert!(!f.event(t0 + std::time::Duration::from_secs(2)));
        assert!(!f.event(t0 + std::time::Duration::from_secs(9)));
        assert!(f.event(t0 + std::time::Duration::from_secs(10)));
        assert!(f.event(t0 + std::time::Duration::from_secs(11)));
        assert!(!f.event(t0 + std::time::Duration::from_secs(12)));
    }

    #[test]
    fn routes_beyond_max_routes_per_client_are_not_learned() {
        let mut r = VpnRoutes {
            ipv4: Some("10.8.0.2".parse().unwrap()),
            ipv6: None,
            iroutes_v4: vec![
                "10.1.0.0/24".parse().unwrap(),
                "10.2.0.0/24".parse().unwrap(),
            ],
            iroutes_v6: vec!["fd00:1::/64".parse().unwrap()],
        };
        bound_routes(&mut r, 2, 0);
        assert_eq!(r.iroutes_v4.len(), 1);
        assert!(r.iroutes_v6.is_empty());
        assert_eq!(learned_addresses(&r), ["10.8.0.2", "10.1.0.0/24"]);
    }
}
