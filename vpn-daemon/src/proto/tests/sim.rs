//! A simulated network for [`Session`] tests (quinn's `tests/util.rs` `Pair`,
//! OpenVPN's gremlin): one client session and one server that goes through
//! the [`StatelessResponder`] first, on a virtual clock, over a link with
//! latency, jitter (reordering), loss, duplication, an MTU and tampering.
//!
//! Everything is deterministic for a given seed. Data packets are told
//! apart from control packets by their opcode, as the I/O layer does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::proto::cookie::{CookieKey, FirstContact, StatelessResponder};
use crate::proto::event::{CloseReason, Event};
use crate::proto::keys::{Key2, KeyDirection, Role};
use crate::proto::push::{PushedOptions, Topology};
use crate::proto::session::{
    AuthDecision, DataOutcome, Session, SessionConfig, Transport, WrapConfig,
};
use crate::proto::tls::tests::{T_2027, client_cfg, server_cfg};
use crate::proto::tls::{TlsContext, TlsVersion};
use crate::proto::wire::PeerId;
use crate::proto::wire::opcode::split_first_byte;
use crate::proto::wire::tls_crypt::{Metadata, TlsCryptV2ClientKey, TlsCryptV2ServerKey};

/// How the link treats packets in one direction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkCfg {
    /// One-way delay.
    pub(crate) latency: Duration,
    /// Extra random delay up to this (reorders packets).
    pub(crate) jitter: Duration,
    /// Percent of packets lost.
    pub(crate) loss_pct: u64,
    /// Percent of packets duplicated.
    pub(crate) dup_pct: u64,
    /// Percent of packets with one random byte changed.
    pub(crate) tamper_pct: u64,
    /// Larger packets are dropped.
    pub(crate) mtu: usize,
}

impl Default for LinkCfg {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss_pct: 0,
            dup_pct: 0,
            tamper_pct: 0,
            mtu: 1500,
        }
    }
}

/// Control-channel protection used by a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrap {
    None,
    Auth,
    Crypt,
    CryptV2,
}

/// Options of a simulated connection.
#[derive(Debug, Clone)]
pub(crate) struct SimOpts {
    pub(crate) wrap: Wrap,
    pub(crate) tls_max: Option<TlsVersion>,
    /// Client announces IV_PROTO TLS_KEY_EXPORT (EKM) or not (legacy PRF).
    pub(crate) ekm: bool,
    /// Client announces CC_EXIT_NOTIFY (protocol-flags).
    pub(crate) cc_exit: bool,
    pub(crate) dyn_tls_crypt: bool,
    pub(crate) transport: Transport,
    pub(crate) c2s: LinkCfg,
    pub(crate) s2c: LinkCfg,
    pub(crate) seed: u64,
    pub(crate) push: PushedOptions,
    pub(crate) auth: AuthDecision,
    pub(crate) reneg_sec: Option<Duration>,
    pub(crate) server_ping: Option<(u32, u32)>,
    pub(crate) explicit_exit_notify: Option<u32>,
    /// Client announces IV_PROTO REQUEST_PUSH (server pushes without waiting).
    pub(crate) request_push: bool,
    /// Client `--inactive`.
    pub(crate) client_inactive: Option<Duration>,
    /// `--reneg-pkts` on both sides.
    pub(crate) reneg_pkts: Option<u64>,
    /// Client tls-crypt-v2 early negotiation (2.6) or not (2.5).
    pub(crate) v2_early_negotiation: bool,
    /// Unix time the client checks certificates at (default: 2027, valid).
    pub(crate) client_verify_time: Option<i64>,
    /// `comp-lzo` / `compress` / `allow-compression` of the client and the
    /// server (2.6's default: stubs only).
    pub(crate) client_compress: crate::proto::data::compress::CompressOptions,
    pub(crate) server_compress: crate::proto::data::compress::CompressOptions,
}

impl Default for SimOpts {
    fn default() -> Self {
        Self {
            wrap: Wrap::Crypt,
            tls_max: None,
            ekm: true,
            cc_exit: true,
            dyn_tls_crypt: true,
            transport: Transport::Udp,
            c2s: LinkCfg::default(),
            s2c: LinkCfg::default(),
            seed: 1,
            push: PushedOptions {
                topology: Some(Topology::Subnet),
                ifconfig: Some((
                    "10.8.0.2".parse().unwrap_or([0, 0, 0, 0].into()),
                    "255.255.255.0".parse().unwrap_or([0, 0, 0, 0].into()),
                )),
                ..PushedOptions::default()
            },
            auth: AuthDecision::Accept,
            reneg_sec: None,
            server_ping: Some((10, 60)),
            explicit_exit_notify: None,
            request_push: true,
            client_inactive: None,
            reneg_pkts: None,
            v2_early_negotiation: true,
            client_verify_time: None,
            client_compress: crate::proto::data::compress::CompressOptions::stub_only_default(),
            server_compress: crate::proto::data::compress::CompressOptions::stub_only_default(),
        }
    }
}

struct InFlight {
    at: Instant,
    seq: u64,
    to_server: bool,
    bytes: Vec<u8>,
    tampered: bool,
}

/// Client + server on a virtual clock.
pub(crate) struct Pair {
    pub(crate) client: Session,
    pub(crate) server: Option<Session>,
    pub(crate) responder: StatelessResponder,
    pub(crate) opts: SimOpts,
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    unix0: u64,
    rng: u64,
    seq: u64,
    inflight: Vec<InFlight>,
    pub(crate) client_events: Vec<Event>,
    pub(crate) server_events: Vec<Event>,
    /// Tun packets delivered at each side.
    pub(crate) client_tun: Vec<Vec<u8>>,
    pub(crate) server_tun: Vec<Vec<u8>>,
    /// Pings received by each side.
    pub(crate) client_pings: usize,
    pub(crate) server_pings: usize,
    /// Packets the responder answered statelessly / dropped.
    pub(crate) stateless_replies: usize,
    pub(crate) responder_drops: usize,
    /// Tampered packets delivered, and those that were *not* dropped.
    pub(crate) tampered_delivered: usize,
    pub(crate) tampered_accepted: usize,
    /// Data packets the receiver refused (reason counted by the session).
    pub(crate) data_drops: usize,
    /// Control packets dropped by the link for exceeding the MTU.
    pub(crate) mtu_drops: usize,
    /// Stop delivering anything (a dead link).
    pub(crate) blackhole: bool,
    ccfg: Arc<SessionConfig>,
    scfg: Arc<SessionConfig>,
}

fn client_addr() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 9], 40_000))
}

pub(crate) fn configs(opts: &SimOpts) -> (Arc<SessionConfig>, Arc<SessionConfig>) {
    let mut ctls = client_cfg();
    let mut stls = server_cfg();
    ctls.version_max = opts.tls_max;
    if let Some(t) = opts.client_verify_time {
        ctls.verify_time = Some(t);
    }
    stls.version_max = opts.tls_max;
    let cctx = Arc::new(TlsContext::new(&ctls).expect("client tls"));
    let sctx = Arc::new(TlsContext::new(&stls).expect("server tls"));
    let key = Key2::generate().expect("key");
    let (cw, sw) = match opts.wrap {
        Wrap::None => (WrapConfig::None, WrapConfig::None),
        Wrap::Auth => (
            WrapConfig::Auth {
                key: key.clone(),
                direction: KeyDirection::Inverse,
                digest: crate::proto::data::Digest::Sha256,
            },
            WrapConfig::Auth {
                key,
                direction: KeyDirection::Normal,
                digest: crate::proto::data::Digest::Sha256,
            },
        ),
        Wrap::Crypt => (
            WrapConfig::Crypt { key: key.clone() },
            WrapConfig::Crypt { key },
        ),
        Wrap::CryptV2 => {
            let spem = TlsCryptV2ServerKey::generate_pem().expect("v2 server key");
            let skey = TlsCryptV2ServerKey::from_pem(&spem).expect("v2 server key");
            let cpem = skey
                .generate_client_pem(&Metadata::Timestamp(1_700_000_000))
                .expect("v2 client key");
            let ckey = TlsCryptV2ClientKey::from_pem(&cpem).expect("v2 client key");
            (
                WrapConfig::CryptV2Client {
                    kc: ckey.kc.clone(),
                    wkc: ckey.wkc.clone(),
                },
                WrapConfig::CryptV2Server {
                    server_key: Arc::new(skey),
                },
            )
        }
    };
    let mut c = SessionConfig::new(Role::Client, cctx, cw);
    let mut s = SessionConfig::new(Role::Server, sctx, sw);
    for cfg in [&mut c, &mut s] {
        cfg.transport = opts.transport;
        cfg.reneg_sec = opts.reneg_sec;
        cfg.dyn_tls_crypt = opts.dyn_tls_crypt;
        cfg.reneg_pkts = opts.reneg_pkts;
    }
    c.inactive = opts.client_inactive;
    c.v2_early_negotiation = opts.v2_early_negotiation;
    c.compress = opts.client_compress;
    s.compress = opts.server_compress;
    if !opts.request_push {
        c.peer_info.proto -= crate::proto::key_method::IvProto::REQUEST_PUSH;
    }
    if !opts.ekm {
        c.peer_info.proto -= crate::proto::key_method::IvProto::TLS_KEY_EXPORT;
    }
    if !opts.cc_exit {
        c.peer_info.proto -= crate::proto::key_method::IvProto::CC_EXIT_NOTIFY;
    }
    c.explicit_exit_notify = opts.explicit_exit_notify;
    c.auth_user_pass = Some(("alice".into(), "secret".into()));
    if let Some((p, r)) = opts.server_ping {
        s.ping = Some(Duration::from_secs(u64::from(p)));
        s.ping_restart = Some(Duration::from_secs(u64::from(r) * 2));
    }
    (Arc::new(c), Arc::new(s))
}

#[allow(clippy::disallowed_methods)] // the virtual clock needs one origin
fn origin() -> Instant {
    Instant::now()
}

impl Pair {
    pub(crate) fn new(mut opts: SimOpts) -> Self {
        let (ccfg, scfg) = configs(&opts);
        let start = origin();
        let unix0 = T_2027 as u64;
        if let Some((p, r)) = opts.server_ping {
            opts.push.ping = Some(p);
            opts.push.ping_restart = Some(r);
        }
        let client = Session::new_client(ccfg.clone(), start, unix0).expect("client session");
        let server = if opts.transport == Transport::Tcp {
            Some(Session::new_server_stateful(scfg.clone(), start, unix0).expect("server"))
        } else {
            None
        };
        let responder = StatelessResponder::new(
            scfg.clone(),
            CookieKey::generate(Duration::from_secs(60)).expect("cookie key"),
        )
        .expect("responder");
        let mut p = Self {
            client,
            server,
            responder,
            rng: opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            opts,
            start,
            now: start,
            unix0,
            seq: 0,
            inflight: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_tun: Vec::new(),
            server_tun: Vec::new(),
            client_pings: 0,
            server_pings: 0,
            stateless_replies: 0,
            responder_drops: 0,
            tampered_delivered: 0,
            tampered_accepted: 0,
            data_drops: 0,
            mtu_drops: 0,
            blackhole: false,
            ccfg,
            scfg,
        };
        if let Some(s) = p.server.as_mut() {
            s.set_peer_id(PeerId::new(3).expect("peer id"));
            s.set_push_reply(p.opts.push.clone());
        }
        p
    }

    /// The client's configuration (shares the wrap key with the server's).
    pub(crate) fn client_cfg(&self) -> Arc<SessionConfig> {
        self.ccfg.clone()
    }

    /// The server's configuration.
    pub(crate) fn server_cfg(&self) -> Arc<SessionConfig> {
        self.scfg.clone()
    }

    /// Unwrap a client→server control packet as the server would (no
    /// replay check), for inspecting what the client put on the wire.
    pub(crate) fn unwrap_client_packet(&self, wire: &[u8]) -> Vec<u8> {
        let mut w = self
            .scfg
            .wrap
            .build(Role::Server)
            .expect("wrap")
            .expect("not tls-crypt-v2");
        let mut out = vec![0u8; wire.len()];
        let (_, plain) = w.unwrap(wire, &mut out).expect("unwrap");
        plain.to_vec()
    }

    pub(crate) fn unix(&self) -> u64 {
        self.unix0 + self.now.duration_since(self.start).as_secs()
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now.duration_since(self.start)
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Put a packet on the link towards the server (`to_server`) or the client.
    pub(crate) fn send(&mut self, to_server: bool, bytes: Vec<u8>) {
        let link = if to_server {
            self.opts.c2s
        } else {
            self.opts.s2c
        };
        if bytes.len() > link.mtu {
            self.mtu_drops += 1;
            return;
        }
        let copies = if self.rand() % 100 < link.dup_pct {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.rand() % 100 < link.loss_pct {
                if std::env::var_os("SIM_TRACE").is_some() {
                    eprintln!(
                        "{:>9.3?} {} op={:#04x} len={} LOST",
                        self.elapsed(),
                        if to_server { "c->s" } else { "s->c" },
                        bytes.first().copied().unwrap_or(0),
                        bytes.len()
                    );
                }
                continue;
            }
            let mut b = bytes.clone();
            let mut tampered = false;
            if self.rand() % 100 < link.tamper_pct && !b.is_empty() {
                let i = (self.rand() % b.len() as u64) as usize;
                let x = (self.rand() % 255 + 1) as u8;
                b[i] ^= x;
                tampered = true;
            }
            let jitter = if link.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(self.rand() % (link.jitter.as_micros() as u64 + 1))
            };
            self.seq += 1;
            self.inflight.push(InFlight {
                at: self.now + link.latency + jitter,
                seq: self.seq,
                to_server,
                bytes: b,
                tampered,
            });
        }
    }

    /// Drain both sessions' outputs and react to events.
    pub(crate) fn flush(&mut self) {
        for _ in 0..64 {
            let mut any = false;
            let now = self.now;
            let unix = self.unix();
            let mut buf = vec![0u8; 4096];
            while let Some(n) = self.client.poll_transmit(now, unix, &mut buf) {
                any = true;
                self.send(true, buf[..n].to_vec());
            }
            if let Some(s) = self.server.as_mut() {
                let mut out = Vec::new();
                while let Some(n) = s.poll_transmit(now, unix, &mut buf) {
                    out.push(buf[..n].to_vec());
                }
                for b in out {
                    any = true;
                    self.send(false, b);
                }
            }
            while let Some(e) = self.client.poll_event() {
                any = true;
                self.client_events.push(e);
            }
            let mut sev = Vec::new();
            if let Some(s) = self.server.as_mut() {
                while let Some(e) = s.poll_event() {
                    sev.push(e);
                }
            }
            for e in sev {
                any = true;
                if matches!(e, Event::ClientCredentials { .. })
                    && let Some(s) = self.server.as_mut()
                {
                    let _ = s.auth_decision(now, self.opts.auth.clone());
                }
                self.server_events.push(e);
            }
            if !any {
                break;
            }
        }
    }

    fn deliver(&mut self, p: InFlight) {
        if self.blackhole {
            return;
        }
        let now = self.now;
        let unix = self.unix();
        let is_data = p
            .bytes
            .first()
            .and_then(|b| split_first_byte(*b).ok())
            .is_some_and(|(op, _)| op.is_data());
        if p.tampered {
            self.tampered_delivered += 1;
        }
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!(
                "{:>9.3?} {} op={:#04x} len={} tampered={}",
                self.elapsed(),
                if p.to_server { "c->s" } else { "s->c" },
                p.bytes.first().copied().unwrap_or(0),
                p.bytes.len(),
                p.tampered
            );
        }
        // Room for a decompressed packet too.
        let mut dst = vec![0u8; (p.bytes.len() + 64).max(2048)];
        let dropped = if p.to_server {
            match self.server.as_mut() {
                None => {
                    if is_data {
                        self.responder_drops += 1;
                        true
                    } else {
                        let mut reply = vec![0u8; 2048];
                        match self.responder.handle_initial(
                            now,
                            unix,
                            client_addr(),
                            &p.bytes,
                            &mut reply,
                        ) {
                            FirstContact::Reply(r) => {
                                let r = r.to_vec();
                                self.stateless_replies += 1;
                                self.send(false, r);
                                false
                            }
                            FirstContact::Accept(mut s) => {
                                s.set_peer_id(PeerId::new(3).expect("peer id"));
                                s.set_push_reply(self.opts.push.clone());
                                self.server = Some(*s);
                                false
                            }
                            FirstContact::Drop(_) => {
                                self.responder_drops += 1;
                                true
                            }
                        }
                    }
                }
                Some(s) => {
                    let before = s.drops().total();
                    if is_data {
                        match s.decrypt(now, &p.bytes, &mut dst) {
                            Ok(DataOutcome::Tun(t)) => self.server_tun.push(t.to_vec()),
                            Ok(DataOutcome::Ping) => self.server_pings += 1,
                            Ok(_) => {}
                            Err(_) => self.data_drops += 1,
                        }
                    } else {
                        s.handle_packet(now, unix, &p.bytes);
                    }
                    s.drops().total() > before
                }
            }
        } else {
            let s = &mut self.client;
            let before = s.drops().total();
            if is_data {
                match s.decrypt(now, &p.bytes, &mut dst) {
                    Ok(DataOutcome::Tun(t)) => self.client_tun.push(t.to_vec()),
                    Ok(DataOutcome::Ping) => self.client_pings += 1,
                    Ok(_) => {}
                    Err(_) => self.data_drops += 1,
                }
            } else {
                s.handle_packet(now, unix, &p.bytes);
            }
            s.drops().total() > before
        };
        if p.tampered && !dropped {
            self.tampered_accepted += 1;
        }
    }

    /// Advance to the next thing that happens (a packet arrival or a
    /// timer); returns false when nothing is left to happen.
    fn next_event(&self) -> Option<Instant> {
        let next_pkt = self.inflight.iter().map(|p| p.at).min();
        [
            next_pkt,
            self.client.poll_timeout(),
            self.server.as_ref().and_then(Session::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// One step, but never past `limit` (the clock stops there).
    fn step_until(&mut self, limit: Option<Instant>) -> bool {
        self.flush();
        let Some(t) = self.next_event() else {
            if let Some(l) = limit {
                self.now = self.now.max(l);
            }
            return false;
        };
        if let Some(l) = limit
            && t > l
        {
            self.now = self.now.max(l);
            return true;
        }
        self.now = self.now.max(t);
        let now = self.now;
        let unix = self.unix();
        // Arrivals due now, in arrival order.
        let mut due: Vec<InFlight> = Vec::new();
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].at <= now {
                due.push(self.inflight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| (p.at, p.seq));
        for p in due {
            self.deliver(p);
            self.flush();
        }
        if self.client.poll_timeout().is_some_and(|d| d <= now) {
            self.client.handle_timeout(now, unix);
        }
        if let Some(s) = self.server.as_mut()
            && s.poll_timeout().is_some_and(|d| d <= now)
        {
            s.handle_timeout(now, unix);
        }
        self.flush();
        true
    }

    /// Step until `done` holds or `limit` of virtual time passed.
    pub(crate) fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Pair) -> bool,
    ) -> bool {
        let end = self.now + limit;
        for _ in 0..2_000_000 {
            if done(self) {
                return true;
            }
            if self.now >= end || !self.step_until(Some(end)) {
                return done(self);
            }
        }
        done(self)
    }

    /// Step until `limit` of virtual time has passed.
    pub(crate) fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        self.run_until(limit, |p| p.now >= end);
    }

    /// Whether both ends reported [`Event::Connected`].
    pub(crate) fn both_connected(&self) -> bool {
        self.client.is_connected() && self.server.as_ref().is_some_and(Session::is_connected)
    }

    /// Connect or panic (bounded virtual time).
    pub(crate) fn connect(&mut self) {
        let ok = self.run_until(Duration::from_secs(60), |p| p.both_connected());
        assert!(
            ok,
            "no connection after {:?}; client events {:?}; server events {:?}",
            self.elapsed(),
            self.client_events,
            self.server_events
        );
    }

    pub(crate) fn server(&mut self) -> &mut Session {
        self.server.as_mut().expect("server session exists")
    }

    /// Encrypt one tun packet at the client and put it on the link.
    pub(crate) fn client_send_data(&mut self, payload: &[u8]) {
        let mut dst = vec![0u8; payload.len() + 128];
        let n = self
            .client
            .encrypt(self.now, payload, &mut dst)
            .expect("client encrypt")
            .len();
        self.send(true, dst[..n].to_vec());
    }

    /// Encrypt one tun packet at the server and put it on the link.
    pub(crate) fn server_send_data(&mut self, payload: &[u8]) {
        let mut dst = vec![0u8; payload.len() + 128];
        let now = self.now;
        let n = self
            .server()
            .encrypt(now, payload, &mut dst)
            .expect("server encrypt")
            .len();
        self.send(false, dst[..n].to_vec());
    }

    pub(crate) fn client_closed(&self) -> Option<&CloseReason> {
        self.client_events.iter().find_map(|e| match e {
            Event::Closed { reason } => Some(reason),
            _ => None,
        })
    }

    pub(crate) fn server_closed(&self) -> Option<&CloseReason> {
        self.server_events.iter().find_map(|e| match e {
            Event::Closed { reason } => Some(reason),
            _ => None,
        })
    }
}

/// A numbered test payload that looks like an IPv4 packet (first nibble 4),
/// so it is never mistaken for a ping or OCC message.
pub(crate) fn numbered(i: u32) -> Vec<u8> {
    let mut v = vec![0x45, 0, 0, 28];
    v.extend_from_slice(&i.to_be_bytes());
    v.extend_from_slice(&[0xAB; 20]);
    v
}

pub(crate) fn number_of(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}
