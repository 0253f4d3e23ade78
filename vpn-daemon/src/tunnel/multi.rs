//! The server's client instances (OpenVPN's `multi_instance`s) and their
//! lifecycle: created after the front door or a TCP accept, their
//! session's outputs drained, removed with their hooks. The parts that
//! act on them live beside this file, one per part of OpenVPN's loop:
//! [`super::external`] (packets from the network), [`super::internal`]
//! (routing to and from tun), [`super::control`] (authentication, ccd,
//! pool, push), [`super::schedule`] (timers), [`super::status`] (the
//! status file).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, DevType};
use crate::error::DaemonError;
use crate::host::scripts::{ScriptEnv, ScriptRunner};
use crate::host::tun as host_tun;
use crate::io::{clock, icmp6};
use crate::mgmt::status::FastPathCounters;
use crate::proto::event::Event;
use crate::proto::session::{AuthDecision, Session, SessionConfig};
use crate::proto::wire::PeerId as WirePeerId;
use crate::server::ccd::ClientConfigDir;
use crate::server::connect_freq::FrequencyLimit;
use crate::server::mac::MacTable;
use crate::server::peers::{PeerId, PeerTable, RouteDropCounters};
use crate::server::pool::{AddressPool, Lease};
use crate::server::push::{ClientAddresses, ServerAddressing};
use crate::tunnel::input::InputSender;
use crate::tunnel::output::LinkOut;
use crate::tunnel::schedule::Schedule;

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
    pub(super) lease: Option<Lease>,
    pub(super) username: Option<String>,
    pub(super) since: u64,
    pub(super) connected: bool,
    /// Bumped on every new authentication, so late script results for an
    /// earlier one are ignored.
    pub(super) auth_gen: u64,
    pub(super) addrs: ClientAddresses,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) connect_ran: bool,
    /// Traffic through the XDP fast path.
    pub(super) fast: FastPathCounters,
    /// Its ccd `vlan-pvid` (with `vlan-tagging`); `None`: the global one.
    pub(super) vlan_pvid: Option<u16>,
    /// Its plugin contexts (`openvpn_plugin_client_constructor_v1`).
    pub(super) plugin: Option<crate::plugin::ClientId>,
    /// The peer-info it sent last (its `IV_*` variables).
    pub(super) peer_info: Box<crate::proto::key_method::PeerInfo>,
    /// Addresses announced to LEARN_ADDRESS plugins ("add"), to be
    /// withdrawn ("delete") when it goes.
    pub(super) learned: Vec<String>,
    /// The environment its authentication built (2.6's per-instance
    /// `es`), for its later plugin hooks.
    pub(super) env: ScriptEnv,
}

/// The server state.
pub struct Multi {
    pub(super) cfg: Arc<Config>,
    /// Session settings for new clients.
    pub scfg: Arc<SessionConfig>,
    /// The client table.
    pub peers: PeerTable<Client>,
    pub(super) pool: Option<AddressPool>,
    pub(super) ccd: Option<Arc<ClientConfigDir>>,
    pub(super) addressing: ServerAddressing,
    pub(super) runner: Arc<ScriptRunner>,
    pub(super) inputs: InputSender,
    pub(super) next_gen: u64,
    pub(super) scratch: Vec<u8>,
    /// Receivers of the broadcast being sent (kept for its capacity).
    pub(super) bcast: Vec<PeerId>,
    /// When each client next needs its timers run.
    pub(super) sched: Schedule,
    pub(super) ctl: Vec<u8>,
    /// Tun MSS clamp limits.
    pub mss: Option<host_tun::MssLimits>,
    /// Packets dropped by routing, by reason.
    pub route_drops: RouteDropCounters,
    /// `dev tap`: frames are routed by MAC address, not by IP.
    pub(super) macs: Option<MacTable>,
    /// Peer map changes for the XDP fast path, oldest first, recorded only
    /// when the UDP loop runs one (`Some`) and drained by it.
    pub steer: Option<Vec<Steer>>,
    /// `connect-freq N SECONDS`.
    pub(super) connect_freq: Option<FrequencyLimit>,
    /// `block-ipv6`: the ICMPv6 source and the answers' buffer.
    pub(super) block_ipv6: Option<(std::net::Ipv6Addr, Vec<u8>)>,
    /// Bytes in and out of the clients already gone, for `load-stats`'
    /// totals since start (2.6's link byte globals).
    pub(super) gone_bytes: (u64, u64),
}

impl Multi {
    /// Sets up pool, ccd and scripts for `cfg`; the authentication tasks it
    /// starts report on `inputs` ([`Input::Auth`](super::input::Input::Auth)),
    /// which the loop hands to [`Self::auth_done`].
    pub fn new(
        cfg: Arc<Config>,
        scfg: Arc<SessionConfig>,
        inputs: InputSender,
    ) -> Result<Self, DaemonError> {
        let mut pool =
            AddressPool::from_config(&cfg).map_err(|e| DaemonError::Pool(Box::new(e)))?;
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
        Ok(Self {
            addressing: ServerAddressing::from_config(&cfg),
            peers: PeerTable::new(cfg.max_clients),
            runner: Arc::new(host_tun::script_runner(&cfg)),
            cfg,
            scfg,
            pool,
            ccd,
            inputs,
            next_gen: 1,
            scratch: vec![0u8; 65_536],
            bcast: Vec::new(),
            sched: Schedule::default(),
            ctl: vec![0u8; 4096],
            mss: None,
            route_drops: RouteDropCounters::default(),
            macs,
            steer: None,
            connect_freq,
            block_ipv6,
            gone_bytes: (0, 0),
        })
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
        self.reschedule(id);
        tracing::info!(client = %from, peer_id = id, "new client");
        Some(id)
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
    pub(super) fn steer_connected(&mut self, id: PeerId) {
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
        if alive {
            self.reschedule(id);
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

    /// Removes a client: lease back to the pool, disconnect script.
    pub fn remove(&mut self, id: PeerId) {
        let Some(p) = self.peers.remove(id) else {
            return;
        };
        self.sched.set(id, None);
        self.gone_bytes.0 += p.payload.bytes_in;
        self.gone_bytes.1 += p.payload.bytes_out;
        if let Some(macs) = &mut self.macs {
            macs.remove_peer(id);
        }
        if let Some(s) = &mut self.steer {
            s.push(Steer::Remove(id));
        }
        if let (Some(l), Some(pool)) = (p.payload.lease, &mut self.pool) {
            let _ = pool.release(l.handle, false);
        }
        self.disconnect_hooks(&p);
        tracing::info!(peer_id = id, client = %p.transport(), "client removed");
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
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.sched.earliest()
    }

    /// Runs the due sessions' timers; returns the ids whose outputs need
    /// draining (draining sets their next deadline).
    pub fn timeouts(&mut self, now: Instant, unix: u64) -> Vec<PeerId> {
        let mut due = Vec::new();
        while let Some(id) = self.sched.pop_due(now) {
            let Some(p) = self.peers.get_mut(id) else {
                continue;
            };
            match p.payload.session.poll_timeout() {
                Some(t) if t <= now => {
                    p.payload.session.handle_timeout(now, unix);
                    due.push(id);
                }
                // It moved later since it was scheduled (traffic re-armed
                // a keepalive): back on the schedule at its real deadline.
                later => self.sched.set(id, later),
            }
        }
        due
    }

    /// Puts client `id` on the schedule at its session's next deadline;
    /// called after anything that may have moved it.
    pub(super) fn reschedule(&mut self, id: PeerId) {
        let deadline = self
            .peers
            .get(id)
            .and_then(|p| p.payload.session.poll_timeout());
        self.sched.set(id, deadline);
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
