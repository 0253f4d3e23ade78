//! The per-peer protocol session: ties control-channel wrapping, the
//! reliable layer, TLS, key-method 2, control messages, push, key states,
//! renegotiation and the data-channel keys together (OpenVPN's `tls_multi`).
//!
//! # API contract (quinn-style, no I/O, no clock)
//!
//! Inputs (`handle_*` and commands), each taking the caller's `now`
//! (monotonic) and, where replay ids are involved, `unix_time` (seconds):
//!
//! - [`Session::handle_packet`]: one control packet of this peer (any
//!   P_CONTROL_* / P_ACK_V1 opcode, tls-auth/tls-crypt wrapped as on the
//!   wire; the caller has removed TCP framing).
//! - [`Session::handle_timeout`]: call when [`Session::poll_timeout`] passed.
//! - [`Session::encrypt`] / [`Session::decrypt`]: the data channel (the hot
//!   path; caller-owned buffers, no allocation per packet).
//!   With `fragment`, `encrypt` returns the first piece and
//!   [`Session::encrypt_pending`] each further one until `None` (send them
//!   right away); `decrypt` answers [`DataOutcome::FragmentPending`] for a
//!   piece held for reassembly and needs [`DataChannel::open_buffer_len`]
//!   bytes of `dst`.
//! - commands: [`Session::send_control_message`], [`Session::renegotiate`],
//!   [`Session::close`]; server: [`Session::auth_decision`] (after
//!   [`Event::ClientCredentials`]), [`Session::set_push_reply`],
//!   [`Session::set_peer_id`].
//!
//! Outputs, to be drained **after every input, in this order**:
//!
//! 1. [`Session::poll_transmit`] until `None`: each call writes one packet
//!    for the wire (wrapped control packets first, then P_ACK_V1, then
//!    keepalive pings / OCC_EXIT as data packets);
//! 2. [`Session::poll_event`] until `None`;
//! 3. [`Session::poll_timeout`]: the next instant to call `handle_timeout`.
//!
//! After [`Event::Closed`] the session produces nothing more.
//!
//! Checked live against stock OpenVPN 2.6.14 in both roles (UDP with
//! tls-crypt and with tls-crypt-v2 early negotiation, TCP with tls-crypt):
//! handshake through the stateless cookie, push, EKM keys, pings both ways,
//! a dyn-tls-crypt renegotiation started by our side, and exit notification.
//!
//! # Key selection (doc §10)
//!
//! Data is sent with the newest key that has generated data keys, from the
//! moment the peer has acked our key-method 2 (so it can derive the key
//! too) or sent data on it: 2.6's rule that a key state is ACTIVE only once
//! all its control packets are acked. Received
//! data is opened with whichever installed key its key_id names, so the
//! lame-duck key keeps working for `--transition-window` (or until the next
//! renegotiation replaces it). Control packets are sent and accepted for
//! the primary key_id only; the only exception is an incoming SOFT_RESET
//! for the next key_id, which creates that primary.

pub mod config;
pub mod data_channel;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{SessionConfig, Transport, WrapConfig};
pub use data_channel::{DataActivity, DataChannel, DataOutcome, KeyTraffic, RekeyLimits};

use crate::proto::control_msg::{self, AuthFailed, ControlMessage, ControlMsgError};
use crate::proto::data::compress::{CompFlags, Compressor, PUSH_REFUSED, RECEIVE_WARNING};
use crate::proto::data::payload::{OCC_MAGIC, OccOpcode, PING_MAGIC};
use crate::proto::data::{DataCipher, DataKey};
use crate::proto::error::{CryptoError, DropReason, KeyFileError};
use crate::proto::event::{CloseReason, Event};
use crate::proto::key_method::{IvProto, KeyMethod2, OccOptions, PeerInfo};
use crate::proto::key_state::{KeyState, Phase};
use crate::proto::keys::{Key2, Role};
use crate::proto::ncp;
use crate::proto::prf;
use crate::proto::push::{
    KeyDerivation, PUSH_PART_MAX, ProtocolFlags, PushError, PushProgress, PushReassembly,
    PushedOptions, build_push_reply,
};
use crate::proto::reliable::{
    ACK_V1_MAX, CONTROL_SEND_ACK_MAX, Incoming, MessageKind, ReliableConfig,
};
use crate::proto::replay::PacketIdLong;
use crate::proto::timers::{
    PUSH_REPLY_REPEAT_GUARD, PUSH_REQUEST_DELAY, PUSH_REQUEST_INTERVAL, SCHEDULED_EXIT_INTERVAL,
    Timer, TimerTable,
};
use crate::proto::tls::{EKM_LABEL_DATAKEYS, EKM_LABEL_DYN_TLS_CRYPT, TlsError, TlsRole};
use crate::proto::wire::control::{AckBlock, ControlRepr, HEADER_LEN, SessionId};
use crate::proto::wire::opcode::{Opcode, split_first_byte};
use crate::proto::wire::tls_crypt::{EARLY_NEG_START, TlsCrypt, split_wkc};
use crate::proto::wire::tlv::EarlyNegotiation;
use crate::proto::wire::wrap::{TlsWrap, TlsWrapCtx};
use crate::proto::wire::{KeyId, PeerId};

/// Outer IPv4 + UDP header that 2.6 subtracts from its tls_mtu budget.
const OUTER_HEADER: usize = 28;
/// Largest ack block on a control packet: count, 4 ids, remote session id.
const MAX_CONTROL_ACK_BLOCK: usize = 1 + 4 * CONTROL_SEND_ACK_MAX + 8;
/// Retry delay when a renegotiation has to wait for the old key's traffic.
const RENEG_RETRY: Duration = Duration::from_secs(1);

/// A command the session cannot carry out, or a setup failure (our side).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No data-channel key is installed yet.
    #[error("no data-channel key installed yet")]
    NoKey,
    /// The session has ended.
    #[error("session is closed")]
    Closed,
    /// The command does not fit the current state (e.g. `auth_decision`
    /// with no credentials pending, a renegotiation while one runs).
    #[error("not possible now: {0}")]
    NotReady(&'static str),
    /// Data-channel protection failed (buffer too small, packet id exhausted).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Creating the TLS session failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Key material refused by the crypto backend.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// A control message that cannot be sent (non-printable, too long).
    #[error(transparent)]
    ControlMessage(#[from] ControlMsgError),
    /// The TLS context's role differs from the session's.
    #[error("TLS context role does not match the session role")]
    RoleMismatch,
}

/// The server application's answer to [`Event::ClientCredentials`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Let the client in.
    Accept,
    /// Refuse: the client gets `AUTH_FAILED[,reason]`.
    Deny(Option<String>),
}

/// Received packets dropped, per [`DropReason`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    /// Count one drop.
    pub fn count(&mut self, r: DropReason) {
        if let Some(c) = self.counts.get_mut(r.index()) {
            *c += 1;
        }
    }

    /// Drops for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        self.counts.get(r.index()).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-zero counters.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, n)| *n > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerAuth {
    Pending,
    Accepted,
    Denied(Option<String>),
}

/// `now + d` for deadlines that come from configuration: an absurd value
/// must not overflow `Instant` (which panics); it means "practically never".
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

fn tls_role(role: Role) -> TlsRole {
    match role {
        Role::Client => TlsRole::Client,
        Role::Server => TlsRole::Server,
    }
}

/// Per-instance timer overrides ([`Session::override_timers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceTimers {
    /// `ping N`.
    pub ping: Option<Duration>,
    /// `ping-restart N`.
    pub ping_restart: Option<Duration>,
    /// `ping-exit N`.
    pub ping_exit: Option<Duration>,
    /// `inactive N` (without a byte threshold).
    pub inactive: Option<Duration>,
}

/// One peer's protocol session (client or server side).
#[derive(Debug)]
pub struct Session {
    cfg: Arc<SessionConfig>,
    role: Role,
    origin: Instant,
    unix_time: u64,
    local_sid: SessionId,
    remote_sid: Option<SessionId>,
    /// Wrap of key_id 0 (and of later keys without dyn-tls-crypt).
    wrap: TlsWrapCtx,
    /// tls-crypt-v2 server session whose Kc is not known yet (TCP).
    v2_pending: bool,
    /// Client tls-crypt-v2: WKc to append to V3 / WKC_V1 packets.
    wkc: Option<Vec<u8>>,
    /// Client: the server asked for WKc again (RESEND_WKC); until it answers.
    send_wkc: bool,
    /// Client: put ack 0 with the server's sid on every packet until the
    /// server's first post-reset packet (what a 2.6.15+ cookie check needs).
    force_ack0: bool,
    server_answered: bool,
    static_key: Option<Key2>,
    /// Dynamic tls-crypt for key_id > 0: created once, shared by all later keys.
    dyn_wrap: Option<TlsWrapCtx>,
    primary: KeyState,
    lame_duck: Option<KeyId>,
    data: DataChannel,
    timers: TimerTable,
    events: VecDeque<Event>,
    drops: DropCounters,
    closed: bool,
    teardown_reason: Option<CloseReason>,
    connected: bool,
    // Negotiated.
    cipher: Option<DataCipher>,
    use_ekm: bool,
    dyn_negotiated: bool,
    cc_exit: bool,
    peer_id: Option<PeerId>,
    ping: Option<Duration>,
    ping_restart: Option<Duration>,
    ping_exit: Option<Duration>,
    inactive: Option<Duration>,
    // Client.
    push: PushReassembly,
    pushed: Option<PushedOptions>,
    /// Pushed `auth-token` (and decoded `auth-token-user`), sent instead of
    /// the password on renegotiations.
    auth_token: Option<String>,
    auth_token_user: Option<String>,
    server_occ_cipher: Option<String>,
    // Server.
    auth: ServerAuth,
    peer_info: Option<PeerInfo>,
    client_occ_cipher: Option<String>,
    push_options: PushedOptions,
    push_requested: bool,
    last_push: Option<Instant>,
    /// Control messages waiting for a key state that can carry them.
    pending_control: VecDeque<Vec<u8>>,
    pending_ping: bool,
    pending_occ_exit: bool,
    occ_exit_left: u32,
}

impl Session {
    /// A client session: its hard reset is queued at once.
    pub fn new_client(
        cfg: Arc<SessionConfig>,
        now: Instant,
        unix_time: u64,
    ) -> Result<Self, SessionError> {
        let wrap = cfg.wrap.build(Role::Client)?.unwrap_or(TlsWrap::None);
        // A 2.6 tls-crypt-v2 client starts its replay ids at 0x0F000000 to
        // announce early negotiation (doc §3.7).
        let start = if cfg.wrap.is_v2() && cfg.v2_early_negotiation {
            EARLY_NEG_START
        } else {
            0
        };
        let mut s = Self::build(
            cfg,
            now,
            unix_time,
            SessionId::random().map_err(TlsError::from)?,
            None,
            Some(wrap),
            start,
            false,
        )?;
        s.primary.queue_reset(Vec::new());
        s.drive(now);
        Ok(s)
    }

    /// A server session with state from the first packet on: TCP (no cookie;
    /// our reset is held until the client's arrives), or a tls-crypt-v2
    /// client without early negotiation.
    pub fn new_server_stateful(
        cfg: Arc<SessionConfig>,
        now: Instant,
        unix_time: u64,
    ) -> Result<Self, SessionError> {
        let wrap = cfg.wrap.build(Role::Server)?;
        let s = Self::build(
            cfg,
            now,
            unix_time,
            SessionId::random().map_err(TlsError::from)?,
            None,
            wrap,
            0,
            false,
        )?;
        Ok(s)
    }

    /// A server session created after a valid cookie echo (doc §4.2): own
    /// sid = the cookie, both resets count as sent and acked, our next
    /// replay id is 2.
    pub(crate) fn new_server_after_cookie(
        cfg: Arc<SessionConfig>,
        now: Instant,
        unix_time: u64,
        cookie: SessionId,
        client_sid: SessionId,
        wrap: TlsWrap,
        static_key: Option<Key2>,
    ) -> Result<Self, SessionError> {
        let mut s = Self::build(
            cfg,
            now,
            unix_time,
            cookie,
            Some(client_sid),
            Some(wrap),
            1,
            true,
        )?;
        if static_key.is_some() {
            s.static_key = static_key;
        }
        Ok(s)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        cfg: Arc<SessionConfig>,
        now: Instant,
        unix_time: u64,
        local_sid: SessionId,
        remote_sid: Option<SessionId>,
        wrap: Option<TlsWrap>,
        replay_start: u32,
        after_cookie: bool,
    ) -> Result<Self, SessionError> {
        let role = cfg.role;
        if cfg.tls.role() != tls_role(role) {
            return Err(SessionError::RoleMismatch);
        }
        let v2_pending = wrap.is_none();
        let wrap = TlsWrapCtx::new(
            wrap.unwrap_or(TlsWrap::None),
            replay_start,
            unix_time as u32,
            cfg.replay,
        );
        let mut primary = KeyState::new(
            &cfg.tls,
            tls_role(role),
            KeyId::ZERO,
            now,
            Self::reliable_cfg(&cfg),
            after_cookie,
        )?;
        if role == Role::Client {
            Self::write_client_key_method(&cfg, &mut primary, None)?;
        }
        let wkc = match &cfg.wrap {
            WrapConfig::CryptV2Client { wkc, .. } => Some(wkc.clone()),
            _ => None,
        };
        let mut timers = TimerTable::new();
        timers.set(Timer::HandshakeWindow, later(now, cfg.hand_window));
        let mut data = DataChannel::new(Compressor::for_tun_mtu(cfg.compress, cfg.tun_mtu), now);
        data.set_rekey_limits(RekeyLimits {
            packets: cfg.reneg_pkts,
            bytes: cfg.reneg_bytes,
        });
        if let Some(f) = cfg.fragment {
            let mut seq = [0u8; 1];
            // Only makes seq collisions across restarts unlikely (2.6 does
            // the same); a failure just starts at 0.
            let _ = openssl::rand::rand_bytes(&mut seq);
            data.enable_fragment(f, seq[0]);
        }
        Ok(Self {
            role,
            origin: now,
            unix_time,
            local_sid,
            remote_sid,
            wrap,
            v2_pending,
            wkc,
            send_wkc: false,
            force_ack0: false,
            server_answered: false,
            static_key: cfg.wrap.static_key().cloned(),
            dyn_wrap: None,
            primary,
            lame_duck: None,
            data,
            timers,
            events: VecDeque::new(),
            drops: DropCounters::default(),
            closed: false,
            teardown_reason: None,
            connected: false,
            cipher: None,
            use_ekm: false,
            dyn_negotiated: false,
            cc_exit: false,
            peer_id: None,
            ping: cfg.ping,
            ping_restart: cfg.ping_restart,
            ping_exit: cfg.ping_exit,
            inactive: cfg.inactive,
            push: PushReassembly::with_filter(cfg.pull_filter.clone()),
            pushed: None,
            auth_token: None,
            auth_token_user: None,
            server_occ_cipher: None,
            auth: ServerAuth::Pending,
            peer_info: None,
            client_occ_cipher: None,
            push_options: PushedOptions::default(),
            push_requested: false,
            last_push: None,
            pending_control: VecDeque::new(),
            pending_ping: false,
            pending_occ_exit: false,
            occ_exit_left: 0,
            cfg,
        })
    }

    fn reliable_cfg(cfg: &SessionConfig) -> ReliableConfig {
        ReliableConfig {
            initial_timeout: cfg.tls_timeout,
            ..ReliableConfig::default()
        }
    }

    /// The client writes key-method 2 as soon as the key state starts; TLS
    /// holds it until the handshake is done (doc §4.4).
    ///
    /// On renegotiations a pushed `auth-token` replaces the password (and
    /// `auth-token-user` the username), as 2.6 does.
    fn write_client_key_method(
        cfg: &SessionConfig,
        ks: &mut KeyState,
        token: Option<(&Option<String>, &String)>,
    ) -> Result<(), SessionError> {
        let mut km = KeyMethod2::new(&ks.source, cfg.options_string.to_string());
        if let Some((u, p)) = &cfg.auth_user_pass {
            km.username = u.clone();
            km.password = p.clone();
        }
        if let Some((user, tok)) = token {
            if let Some(u) = user {
                km.username = u.clone();
            }
            km.password = tok.clone();
        }
        let mut pi = cfg.peer_info.clone();
        pi.proto.set(IvProto::DYN_TLS_CRYPT, cfg.dyn_tls_crypt);
        km.peer_info = pi.to_string();
        let bytes = km
            .encode(TlsRole::Client)
            .map_err(|_| SessionError::NotReady("key-method 2 message too long"))?;
        ks.tls.write_plaintext(&bytes)?;
        Ok(())
    }

    // ----- accessors -------------------------------------------------------

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our session id.
    pub fn local_session_id(&self) -> SessionId {
        self.local_sid
    }

    /// The peer's session id, once known.
    pub fn remote_session_id(&self) -> Option<SessionId> {
        self.remote_sid
    }

    /// Key id of the primary key state.
    pub fn primary_key_id(&self) -> KeyId {
        self.primary.key_id
    }

    /// Key id of the lame-duck data key, if one is kept.
    pub fn lame_duck_key_id(&self) -> Option<KeyId> {
        self.lame_duck
    }

    /// Handshake phase of the primary key state.
    pub fn primary_phase(&self) -> Phase {
        self.primary.phase
    }

    /// The peer's verified certificate chain of the primary key state,
    /// leaf first (server: the client's), once its handshake is done.
    pub fn peer_chain(&self) -> Vec<openssl::x509::X509> {
        self.primary.tls.peer_chain()
    }

    /// Whether the tunnel is up ([`Event::Connected`] was reported).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether [`Event::Closed`] was reported.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Received packets dropped, by reason.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// The negotiated data cipher.
    pub fn cipher(&self) -> Option<DataCipher> {
        self.cipher
    }

    /// Whether data keys come from the TLS exporter (else the legacy PRF).
    pub fn uses_ekm(&self) -> bool {
        self.use_ekm
    }

    /// Whether key_id > 0 control packets use the dynamic tls-crypt key.
    pub fn dyn_tls_crypt_active(&self) -> bool {
        self.dyn_wrap.is_some()
    }

    /// Client: the complete PUSH_REPLY once received.
    pub fn pushed_options(&self) -> Option<&PushedOptions> {
        self.pushed.as_ref()
    }

    /// The data half: keys, packet ids, replay windows, framing.
    ///
    /// The loop layer hands it to another owner (a per-core worker) along
    /// this seam: read its sizes here, and see [`Self::data_channel_mut`].
    pub fn data_channel(&self) -> &DataChannel {
        &self.data
    }

    /// The data half, for an owner that encrypts and decrypts without the
    /// session's wrappers. The session installs and retires keys in it
    /// (reported as [`Event::KeysReady`] / [`Event::Renegotiated`]; the lame
    /// duck goes at [`Self::lame_duck_key_id`] turning `None`), so a worker
    /// holding a copy must follow those events. Whoever drives it must pass
    /// [`DataChannel::take_activity`] to [`Self::absorb`] before the next
    /// [`Self::poll_timeout`], or the keepalive, inactivity and rekey timers
    /// run as if no data had moved.
    pub fn data_channel_mut(&mut self) -> &mut DataChannel {
        &mut self.data
    }

    /// Take in what the data half did: restart the `--ping`,
    /// `--ping-restart` / `--ping-exit` and `--inactive` timers, start the
    /// peer's teardown after OCC_EXIT, and schedule a renegotiation when a
    /// rekey is due, exactly as the session's own `encrypt` / `decrypt` do.
    pub fn absorb(&mut self, a: DataActivity) {
        if let Some(t) = a.last_tx {
            self.link_sent(t);
        }
        if let Some(t) = a.last_rx {
            self.link_received(t);
        }
        if let Some(t) = a.last_tun {
            self.tun_traffic(t);
        }
        if let Some(t) = a.peer_exit {
            self.peer_leaving(t);
        }
        if let Some(t) = a.rekey_due {
            self.want_renegotiation(t);
        }
    }

    fn absorb_data(&mut self) {
        let a = self.data.take_activity();
        if !a.is_empty() {
            self.absorb(a);
        }
    }

    /// Server: the client's peer-info and whether its OCC options string
    /// announces compression (2.6's `remote_usescomp`), for `compress
    /// migrate`.
    pub fn client_compression_hints(&self) -> (Option<&PeerInfo>, bool) {
        let uses = self
            .primary
            .peer_km
            .as_ref()
            .is_some_and(|k| k.options.contains(",comp-lzo,"));
        (self.peer_info.as_ref(), uses)
    }

    /// Server: this client's own compression (`compress migrate`, its
    /// client-config-dir file); set before its keys exist.
    pub fn set_compression(&mut self, c: crate::proto::data::compress::CompressOptions) {
        self.data
            .set_compressor(Compressor::for_tun_mtu(c, self.cfg.tun_mtu));
    }

    /// Timers currently armed (tests and debugging).
    pub fn timers(&self) -> &TimerTable {
        &self.timers
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    // ----- outputs ---------------------------------------------------------

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.timers.next_deadline()
    }

    /// Write the next packet for the wire into `buf`; returns its length.
    ///
    /// `buf` should hold at least `tls_mtu + WKc` bytes for control packets
    /// and a full data packet for pings; a packet that does not fit is lost
    /// (the reliable layer resends control packets).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, unix_time: u64, buf: &mut [u8]) -> Option<usize> {
        if self.closed {
            return None;
        }
        self.unix_time = unix_time;
        let sent = self.transmit_control(now, buf);
        // Sending moved the reliable layer's retransmission deadline.
        self.timers
            .set_opt(Timer::Retransmit, self.primary.reliable.poll_timeout());
        if let Some(n) = sent {
            self.link_sent(now);
            return Some(n);
        }
        if self.pending_occ_exit {
            self.pending_occ_exit = false;
            let mut msg = [0u8; 17];
            msg[..16].copy_from_slice(&OCC_MAGIC);
            msg[16] = OccOpcode::Exit.as_u8();
            let sealed = self
                .data
                .encrypt_keepalive(now, &msg, buf)
                .map(|s| s.packet.len());
            self.absorb_data();
            if let Ok(n) = sealed {
                return Some(n);
            }
        }
        if self.pending_ping {
            self.pending_ping = false;
            let sealed = self
                .data
                .encrypt_keepalive(now, &PING_MAGIC, buf)
                .map(|s| s.packet.len());
            self.absorb_data();
            // Re-arm even if no key could seal it, so keepalive resumes
            // once one is installed.
            self.link_sent(now);
            if let Ok(n) = sealed {
                return Some(n);
            }
        }
        None
    }

    fn transmit_control(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let kid = self.primary.key_id;
        let (kind, message_id, payload, mut acks) = match self.primary.reliable.poll_transmit(now) {
            Some(tx) => (
                Some(tx.kind),
                Some(tx.message_id),
                tx.payload.to_vec(),
                tx.acks.as_slice().to_vec(),
            ),
            None => {
                let acks = self.primary.reliable.poll_ack()?;
                (None, None, Vec::new(), acks.as_slice().to_vec())
            }
        };
        if self.force_ack0 && kid == KeyId::ZERO && !acks.contains(&0) {
            let cap = if kind.is_some() {
                CONTROL_SEND_ACK_MAX
            } else {
                ACK_V1_MAX
            };
            if acks.len() >= cap {
                acks.pop();
            }
            acks.insert(0, 0);
        }
        let opcode = match kind {
            None => Opcode::AckV1,
            Some(MessageKind::HardReset) => match self.role {
                Role::Client if self.wkc.is_some() => Opcode::HardResetClientV3,
                Role::Client => Opcode::HardResetClientV2,
                Role::Server => Opcode::HardResetServerV2,
            },
            Some(MessageKind::SoftReset) => Opcode::SoftResetV1,
            Some(MessageKind::Control) if self.send_wkc && kid == KeyId::ZERO => {
                Opcode::ControlWkcV1
            }
            Some(MessageKind::Control) => Opcode::ControlV1,
        };
        let block = match self.remote_sid {
            Some(r) if !acks.is_empty() => AckBlock::new(&acks, r).ok()?,
            _ => AckBlock::EMPTY,
        };
        let repr = ControlRepr {
            opcode,
            key_id: kid,
            session_id: self.local_sid,
            acks: block,
            message_id,
            payload: &payload,
        };
        let mut plain = vec![0u8; repr.buffer_len()];
        repr.emit(&mut plain).ok()?;
        let ctx = match &mut self.dyn_wrap {
            Some(d) if kid != KeyId::ZERO => d,
            _ => &mut self.wrap,
        };
        let n = ctx.wrap_next(&plain, buf).ok()?.len();
        if self.role == Role::Client
            && opcode.carries_wkc()
            && let Some(wkc) = &self.wkc
        {
            buf.get_mut(n..n + wkc.len())?.copy_from_slice(wkc);
            return Some(n + wkc.len());
        }
        Some(n)
    }

    /// Something went out on the link: the `--ping` interval restarts.
    fn link_sent(&mut self, now: Instant) {
        if self.connected
            && let Some(p) = self.ping
        {
            self.timers.set(Timer::Ping, later(now, p));
        }
    }

    /// An authenticated packet came in: `--ping-restart` / `--ping-exit` restart.
    fn link_received(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        if let Some(p) = self.ping_restart {
            self.timers.set(Timer::PingRestart, later(now, p));
        }
        if let Some(p) = self.ping_exit {
            self.timers.set(Timer::PingExit, later(now, p));
        }
    }

    fn tun_traffic(&mut self, now: Instant) {
        if self.connected
            && let Some(i) = self.inactive
        {
            self.timers.set(Timer::Inactive, later(now, i));
        }
    }

    // ----- control input ---------------------------------------------------

    /// Process one control packet from this peer.
    pub fn handle_packet(&mut self, now: Instant, unix_time: u64, packet: &[u8]) {
        if self.closed {
            return;
        }
        self.unix_time = unix_time;
        if let Err(r) = self.handle_control(now, unix_time, packet) {
            self.drops.count(r);
        }
        self.drive(now);
    }

    fn handle_control(
        &mut self,
        now: Instant,
        unix_time: u64,
        packet: &[u8],
    ) -> Result<(), DropReason> {
        let first = *packet.first().ok_or(DropReason::Truncated)?;
        let (op, kid) = split_first_byte(first).map_err(|e| e.drop_reason())?;
        if op.is_data() {
            return Err(DropReason::UnexpectedOpcode);
        }
        let secs = self.secs(now);
        let mut buf = vec![0u8; packet.len()];
        let plain_len = if op.carries_wkc() {
            let WrapConfig::CryptV2Server { server_key } = &self.cfg.wrap else {
                return Err(DropReason::UnexpectedOpcode);
            };
            let (wire, wkc) = split_wkc(packet).map_err(|e| e.drop_reason())?;
            if self.v2_pending {
                // Install Kc only once a packet authenticated with it.
                let (kc, _meta) = server_key
                    .unwrap_client_key(wkc)
                    .map_err(|e| e.drop_reason())?;
                let crypt =
                    TlsCrypt::new(&kc, Role::Server).map_err(|_| DropReason::CryptoBackend)?;
                let mut ctx =
                    TlsWrapCtx::new(TlsWrap::Crypt(crypt), 0, unix_time as u32, self.cfg.replay);
                let n = ctx
                    .unwrap_checked(wire, &mut buf, secs)
                    .map_err(|e| e.drop_reason())?
                    .len();
                self.wrap = ctx;
                self.static_key = Some(kc);
                self.v2_pending = false;
                n
            } else {
                // Later copies of WKc are ignored; the session's Kc decides.
                self.wrap
                    .unwrap_checked(wire, &mut buf, secs)
                    .map_err(|e| e.drop_reason())?
                    .len()
            }
        } else {
            if self.v2_pending {
                return Err(DropReason::UnexpectedOpcode);
            }
            let ctx = match &mut self.dyn_wrap {
                Some(d) if kid != KeyId::ZERO => d,
                _ => &mut self.wrap,
            };
            ctx.unwrap_checked(packet, &mut buf, secs)
                .map_err(|e| e.drop_reason())?
                .len()
        };
        let plain = buf.get(..plain_len).ok_or(DropReason::Truncated)?;
        let repr = ControlRepr::parse_bytes(plain).map_err(|e| e.drop_reason())?;

        if self.remote_sid.is_some_and(|r| r != repr.session_id) {
            return Err(DropReason::BadSessionId);
        }
        if repr
            .acks
            .remote_session_id()
            .is_some_and(|a| a != self.local_sid)
        {
            return Err(DropReason::BadSessionId);
        }
        let allowed = match op {
            Opcode::HardResetClientV2 | Opcode::HardResetClientV3 => {
                self.role == Role::Server && kid == KeyId::ZERO
            }
            Opcode::HardResetServerV2 => self.role == Role::Client && kid == KeyId::ZERO,
            Opcode::SoftResetV1 => kid != KeyId::ZERO,
            Opcode::ControlWkcV1 => self.role == Role::Server && kid == KeyId::ZERO,
            Opcode::ControlV1 | Opcode::AckV1 => true,
            Opcode::DataV1 | Opcode::DataV2 => false,
        };
        if !allowed {
            return Err(DropReason::UnexpectedOpcode);
        }
        if self.remote_sid.is_none() {
            if !op.is_hard_reset() {
                return Err(DropReason::BadSessionId);
            }
            self.remote_sid = Some(repr.session_id);
        }
        if kid != self.primary.key_id {
            let next = self.primary.key_id.next();
            if op == Opcode::SoftResetV1 && kid == next && self.primary.keys_generated {
                self.start_renegotiation(now)
                    .map_err(|_| DropReason::CryptoBackend)?;
            } else {
                return Err(DropReason::KeyIdMismatch);
            }
        }
        if self.role == Role::Client {
            if op == Opcode::HardResetServerV2 {
                self.force_ack0 = !self.server_answered;
            } else {
                self.server_answered = true;
                self.force_ack0 = false;
                self.send_wkc = false;
            }
        }
        self.link_received(now);
        self.primary.reliable.handle_acks(now, repr.acks.ids());
        if let Some(id) = repr.message_id {
            let kind = if op.is_hard_reset() {
                MessageKind::HardReset
            } else if op == Opcode::SoftResetV1 {
                MessageKind::SoftReset
            } else {
                MessageKind::Control
            };
            match self.primary.reliable.handle_message(id, kind, repr.payload) {
                Incoming::Accepted | Incoming::Replay => {}
                Incoming::OutOfWindow | Incoming::NoFreeBuffer => {
                    return Err(DropReason::OutOfWindow);
                }
            }
        }
        Ok(())
    }

    /// Move everything that can move: deliveries into TLS, TLS records into
    /// key-method 2 / control messages, TLS output into the reliable layer.
    fn drive(&mut self, now: Instant) {
        // Each pass can unlock the next (a delivery finishes TLS, which
        // releases key-method 2, which queues ciphertext); a few suffice.
        for _ in 0..8 {
            if self.closed {
                return;
            }
            let mut progressed = false;
            while let Some(d) = self.primary.reliable.poll_received() {
                progressed = true;
                match d.kind {
                    MessageKind::HardReset | MessageKind::SoftReset => {
                        if d.message_id != 0 {
                            return self.close_now(CloseReason::ProtocolViolation(
                                "reset with a message id other than 0".into(),
                            ));
                        }
                        if let Err(e) = self.on_peer_reset(d.kind, &d.payload) {
                            return self.close_now(e);
                        }
                    }
                    MessageKind::Control => {
                        if let Err(e) = self.primary.tls.handle_ciphertext(&d.payload) {
                            return self.close_now(CloseReason::Tls(e.to_string()));
                        }
                    }
                }
            }
            self.primary.check_resets();
            while let Some(rec) = self.primary.tls.poll_plaintext() {
                progressed = true;
                self.handle_record(now, &rec);
                if self.closed {
                    return;
                }
            }
            self.primary.check_resets();
            if self.can_carry_control() {
                while let Some(msg) = self.pending_control.pop_front() {
                    progressed = true;
                    if let Err(e) = self.primary.tls.write_plaintext(&msg) {
                        return self.close_now(CloseReason::Tls(e.to_string()));
                    }
                }
            }
            if self.primary.phase.tls_flowing() {
                let max = self.max_control_payload();
                while self.primary.reliable.can_send() {
                    let Some(chunk) = self.primary.tls.poll_ciphertext(max) else {
                        break;
                    };
                    progressed = true;
                    let _ = self
                        .primary
                        .reliable
                        .queue_send(MessageKind::Control, chunk);
                }
            }
            if !progressed {
                break;
            }
        }
        if let Some(k) = self.data.send_pending()
            && (k != self.primary.key_id || self.primary.reliable.all_acked())
        {
            self.data.promote_pending();
        }
        self.timers
            .set_opt(Timer::Retransmit, self.primary.reliable.poll_timeout());
    }

    fn max_control_payload(&self) -> usize {
        let overhead = OUTER_HEADER
            + HEADER_LEN
            + MAX_CONTROL_ACK_BLOCK
            + 4
            + self
                .wrap
                .wrap
                .overhead()
                .max(self.dyn_wrap.as_ref().map_or(0, |d| d.wrap.overhead()))
            + self.wkc.as_ref().map_or(0, Vec::len);
        self.cfg.tls_mtu.saturating_sub(overhead).max(64)
    }

    /// Control messages ride on the primary key once key-method 2 is through.
    fn can_carry_control(&self) -> bool {
        matches!(self.primary.phase, Phase::Active | Phase::ExpectAuth)
    }

    fn on_peer_reset(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), CloseReason> {
        self.primary.got_peer_reset = true;
        if kind == MessageKind::HardReset {
            // A malformed TLV list is fatal for the handshake (doc §4.3).
            let en = EarlyNegotiation::parse(payload).map_err(|_| {
                CloseReason::ProtocolViolation("malformed early-negotiation TLVs".into())
            })?;
            if self.role == Role::Client && en.resend_wkc() && self.wkc.is_some() {
                self.send_wkc = !self.server_answered;
            }
            if self.role == Role::Server {
                // Stateful server: our reset was held until now.
                self.primary.queue_reset(Vec::new());
            }
        }
        Ok(())
    }

    fn handle_record(&mut self, now: Instant, rec: &[u8]) {
        if self.primary.peer_km.is_none() {
            if self.primary.phase != Phase::ExpectKeyMethod2 {
                return self.close_now(CloseReason::ProtocolViolation(
                    "TLS data before the handshake finished".into(),
                ));
            }
            return match self.role {
                Role::Client => self.on_server_key_method(now, rec),
                Role::Server => self.on_client_key_method(rec),
            };
        }
        for msg in control_msg::split_record(rec).messages {
            self.on_control_message(now, &msg);
            if self.closed {
                return;
            }
        }
    }

    fn on_server_key_method(&mut self, now: Instant, rec: &[u8]) {
        let km = match KeyMethod2::parse(rec, TlsRole::Server) {
            Ok(km) => km,
            Err(e) => return self.close_now(CloseReason::ProtocolViolation(e.to_string())),
        };
        self.server_occ_cipher = OccOptions::parse(&km.options).cipher().map(str::to_string);
        self.primary.peer_km = Some(km);
        if let Some(p) = self.primary.phase.key_method_received(TlsRole::Client) {
            self.primary.phase = p;
        }
        if self.primary.key_id == KeyId::ZERO {
            self.timers
                .set(Timer::PushRequest, later(now, PUSH_REQUEST_DELAY));
        } else {
            self.generate_keys(now);
        }
    }

    fn on_client_key_method(&mut self, rec: &[u8]) {
        let km = match KeyMethod2::parse(rec, TlsRole::Client) {
            Ok(km) => km,
            Err(e) => return self.close_now(CloseReason::ProtocolViolation(e.to_string())),
        };
        let pi = match PeerInfo::parse(&km.peer_info) {
            Ok(pi) => pi,
            Err(e) => return self.close_now(CloseReason::ProtocolViolation(e.to_string())),
        };
        let mut occ = self.cfg.options_string.clone();
        if self.cfg.compress.flags.contains(CompFlags::MIGRATE) && km.options.contains(",comp-lzo,")
        {
            // 2.6's options_string_compat_lzo: `compress migrate` answers a
            // comp-lzo client with the options of a comp-lzo server.
            occ.comp_lzo = true;
            occ.link_mtu += 1;
        }
        let ours = KeyMethod2::new(&self.primary.source, occ.to_string());
        let written = ours
            .encode(TlsRole::Server)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                self.primary
                    .tls
                    .write_plaintext(&b)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            return self.close_now(CloseReason::Tls(e));
        }
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        self.events.push_back(Event::ClientCredentials {
            key_id: self.primary.key_id.value(),
            username: non_empty(&km.username),
            password: non_empty(&km.password),
            common_name: self.primary.tls.peer_common_name(),
            peer_info: Box::new(pi.clone()),
            options: km.options.clone(),
        });
        if self.primary.key_id == KeyId::ZERO {
            self.client_occ_cipher = OccOptions::parse(&km.options).cipher().map(str::to_string);
            self.peer_info = Some(pi);
        }
        self.primary.peer_km = Some(km);
        if let Some(p) = self.primary.phase.key_method_received(TlsRole::Server) {
            self.primary.phase = p;
        }
    }

    fn on_control_message(&mut self, now: Instant, msg: &str) {
        match (ControlMessage::parse(msg), self.role) {
            (ControlMessage::PushRequest, Role::Server) => self.on_push_request(now),
            (ControlMessage::PushReply { options }, Role::Client) => {
                if self.pushed.is_some() {
                    // 2.6 sends an extra PUSH_REPLY with a refreshed
                    // auth-token after renegotiations; only that is applied.
                    match PushedOptions::parse(&options) {
                        Ok(o) if o.auth_token.is_some() => self.store_auth_token(&o),
                        _ => self
                            .events
                            .push_back(Event::Warning("PUSH_REPLY after the tunnel is up".into())),
                    }
                    return;
                }
                let r = self.push.handle_part(&options);
                for line in self.push.take_dropped() {
                    self.events.push_back(Event::Warning(format!(
                        "Pushed option removed by filter: '{line}'"
                    )));
                }
                match r {
                    Ok(PushProgress::NeedMore) => self.timers.stop(Timer::PushRequest),
                    Ok(PushProgress::Complete(opts)) => self.on_push_complete(now, *opts),
                    Err(PushError::RejectedByFilter(line)) => {
                        // 2.6: a soft SIGUSR1, "Offending option received
                        // from server".
                        self.events.push_back(Event::Warning(format!(
                            "Pushed option rejected by filter: '{line}'. Restarting."
                        )));
                        self.close_now(CloseReason::Restart(control_msg::ServerSignal {
                            message: Some("Offending option received from server".into()),
                            ..Default::default()
                        }));
                    }
                    Err(e) => self.close_now(CloseReason::ProtocolViolation(e.to_string())),
                }
            }
            (ControlMessage::AuthFailed(af), Role::Client) => {
                let reason = af.reason();
                self.events.push_back(Event::AuthFailed(af));
                self.close_now(CloseReason::AuthFailed(reason));
            }
            (ControlMessage::Restart(sig), Role::Client) => {
                self.events.push_back(Event::Restart(sig.clone()));
                self.close_now(CloseReason::Restart(sig));
            }
            (ControlMessage::Halt(sig), Role::Client) => {
                self.events.push_back(Event::Halt(sig.clone()));
                self.close_now(CloseReason::Halt(sig));
            }
            (ControlMessage::Exit, _) => self.peer_leaving(now),
            (ControlMessage::Info(s) | ControlMessage::InfoPre(s), _) => {
                self.events.push_back(Event::Info(s));
            }
            (ControlMessage::AuthPending { timeout }, Role::Client) => {
                self.events.push_back(Event::AuthPending { timeout });
            }
            (other, _) => self
                .events
                .push_back(Event::Warning(format!("ignored control message: {other}"))),
        }
    }

    fn peer_leaving(&mut self, now: Instant) {
        if self.teardown_reason.is_none() {
            self.teardown_reason = Some(CloseReason::PeerExit);
            // Give the reliable layer time to ack what is in flight (2.6
            // schedules the exit the same way).
            self.timers
                .set(Timer::ExitTeardown, later(now, SCHEDULED_EXIT_INTERVAL));
        }
    }

    // ----- client: push ----------------------------------------------------

    fn on_push_complete(&mut self, now: Instant, opts: PushedOptions) {
        self.timers.stop(Timer::PushRequest);
        let cipher = ncp::client_accept(
            &self.cfg.data_ciphers,
            opts.cipher.as_deref(),
            self.server_occ_cipher.as_deref(),
            self.cfg.data_ciphers_fallback.as_deref(),
        );
        let cipher = match cipher.map(|c| DataCipher::from_name(&c).ok_or(c)) {
            Ok(Ok(c)) => c,
            Ok(Err(name)) => {
                return self.close_now(CloseReason::ProtocolViolation(format!(
                    "unsupported data cipher {name}"
                )));
            }
            Err(e) => return self.close_now(CloseReason::ProtocolViolation(e.to_string())),
        };
        self.cipher = Some(cipher);
        // A pushed `comp-noadapt` has no typed field; 2.6 applies it too.
        let noadapt = opts.unknown.iter().any(|o| o == "comp-noadapt");
        if opts.compression.is_some() || noadapt {
            // 2.6 applies the pushed option to its own compress_options
            // and then checks them against allow-compression.
            let mut c = self.cfg.compress;
            let warn = opts
                .compression
                .is_some_and(|p| p.apply_to(&mut c).unwrap_or(false));
            if noadapt {
                c.comp_noadapt();
            }
            if let Err(e) = c.check() {
                self.events.push_back(Event::Warning(e.to_string()));
                return self.close_now(CloseReason::ProtocolViolation(PUSH_REFUSED.into()));
            }
            if warn {
                self.events
                    .push_back(Event::Warning(RECEIVE_WARNING.into()));
            }
            self.data
                .set_compressor(Compressor::for_tun_mtu(c, self.cfg.tun_mtu));
        }
        self.use_ekm = opts.uses_tls_ekm();
        let flags = opts.protocol_flags.unwrap_or_default();
        self.cc_exit = flags.contains(ProtocolFlags::CC_EXIT);
        self.dyn_negotiated =
            self.cfg.dyn_tls_crypt && flags.contains(ProtocolFlags::DYN_TLS_CRYPT);
        self.peer_id = opts.peer_id.and_then(PeerId::new);
        let secs = |v: Option<u32>| v.map(|s| Duration::from_secs(u64::from(s)));
        self.ping = secs(opts.ping).or(self.cfg.ping);
        self.ping_restart = secs(opts.ping_restart).or(self.cfg.ping_restart);
        self.ping_exit = secs(opts.ping_exit).or(self.cfg.ping_exit);
        self.store_auth_token(&opts);
        self.pushed = Some(opts.clone());
        self.generate_keys(now);
        if self.closed {
            return;
        }
        self.events.push_back(Event::PushReply(Box::new(opts)));
        self.set_connected(now);
    }

    fn store_auth_token(&mut self, opts: &PushedOptions) {
        if let Some(t) = &opts.auth_token {
            self.auth_token = Some(t.clone());
        }
        if let Some(u) = &opts.auth_token_user {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD
                .decode(u)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(name) => self.auth_token_user = Some(name),
                None => self
                    .events
                    .push_back(Event::Warning("auth-token-user is not base64 UTF-8".into())),
            }
        }
    }

    fn set_connected(&mut self, now: Instant) {
        if self.connected {
            return;
        }
        self.connected = true;
        self.events.push_back(Event::Connected);
        self.link_sent(now);
        self.link_received(now);
        self.tun_traffic(now);
    }

    // ----- server: auth and push --------------------------------------------

    /// Server: answer [`Event::ClientCredentials`] for the primary key state.
    pub fn auth_decision(
        &mut self,
        now: Instant,
        decision: AuthDecision,
    ) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if self.role != Role::Server || self.primary.phase != Phase::ExpectAuth {
            return Err(SessionError::NotReady(
                "no credentials waiting for a decision",
            ));
        }
        match decision {
            AuthDecision::Deny(reason) => self.deny(now, reason),
            AuthDecision::Accept => {
                if let Some(p) = self.primary.phase.authorized() {
                    self.primary.phase = p;
                }
                if self.primary.key_id == KeyId::ZERO {
                    self.accept_first_key(now);
                } else if self.auth == ServerAuth::Accepted {
                    self.generate_keys(now);
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    fn accept_first_key(&mut self, now: Instant) {
        let pi = self.peer_info.clone().unwrap_or_default();
        let choice = ncp::server_select(
            &self.cfg.data_ciphers,
            &pi,
            self.client_occ_cipher.as_deref(),
            self.cfg.data_ciphers_fallback.as_deref(),
        );
        let cipher = match choice {
            Ok(c) => match DataCipher::from_name(&c.cipher) {
                Some(dc) => dc,
                None => return self.deny(now, Some("Unsupported data channel cipher".into())),
            },
            Err(refusal) => {
                return self.deny(now, Some(refusal.auth_failed_reason().to_string()));
            }
        };
        self.cipher = Some(cipher);
        self.use_ekm = pi.proto.contains(IvProto::TLS_KEY_EXPORT);
        self.cc_exit = pi.proto.contains(IvProto::CC_EXIT_NOTIFY);
        // dyn-tls-crypt travels in protocol-flags, which needs bit 7.
        self.dyn_negotiated =
            self.cfg.dyn_tls_crypt && self.cc_exit && pi.proto.contains(IvProto::DYN_TLS_CRYPT);
        if !pi.proto.contains(IvProto::DATA_V2) {
            self.peer_id = None;
        }
        self.auth = ServerAuth::Accepted;
        self.generate_keys(now);
        if self.closed {
            return;
        }
        if pi.proto.contains(IvProto::REQUEST_PUSH) || self.push_requested {
            self.send_push_reply(now);
        }
    }

    fn deny(&mut self, now: Instant, reason: Option<String>) {
        self.auth = ServerAuth::Denied(reason.clone());
        self.send_auth_failed(reason);
        if !self.timers.is_armed(Timer::AuthFailedTeardown) {
            self.timers.set(
                Timer::AuthFailedTeardown,
                later(now, SCHEDULED_EXIT_INTERVAL),
            );
        }
    }

    fn send_auth_failed(&mut self, reason: Option<String>) {
        let msg = ControlMessage::AuthFailed(AuthFailed::Plain { reason });
        if let Ok(bytes) = msg.encode() {
            self.pending_control.push_back(bytes);
        }
    }

    fn on_push_request(&mut self, now: Instant) {
        self.events.push_back(Event::PushRequested);
        match self.auth.clone() {
            ServerAuth::Denied(reason) => self.send_auth_failed(reason),
            ServerAuth::Accepted => {
                if self
                    .last_push
                    .is_some_and(|t| now < t + PUSH_REPLY_REPEAT_GUARD)
                {
                    return;
                }
                self.send_push_reply(now);
            }
            ServerAuth::Pending => self.push_requested = true,
        }
    }

    /// Server: the per-client options (ifconfig, routes, ping, …) of the
    /// PUSH_REPLY; the session adds peer-id, cipher, protocol-flags /
    /// key-derivation and tun-mtu itself (doc §9.2).
    pub fn set_push_reply(&mut self, options: PushedOptions) {
        self.push_options = options;
    }

    /// Server: the peer-id assigned to this client (pushed to clients with
    /// IV_PROTO DATA_V2; both directions then use P_DATA_V2).
    pub fn set_peer_id(&mut self, peer_id: PeerId) {
        self.peer_id = Some(peer_id);
    }

    /// Server: this client's own keepalive and inactivity timers (from its
    /// client-config-dir file); `None` fields keep the configured ones. Set
    /// before the client connects (as the server does), they take effect
    /// when it does; on a connected session they run from `now`.
    pub fn override_timers(&mut self, now: Instant, t: InstanceTimers) {
        self.ping = t.ping.or(self.ping);
        self.ping_restart = t.ping_restart.or(self.ping_restart);
        self.ping_exit = t.ping_exit.or(self.ping_exit);
        self.inactive = t.inactive.or(self.inactive);
        self.link_sent(now);
        self.link_received(now);
        self.tun_traffic(now);
    }

    /// The data-channel peer-id: assigned by us (server) or pushed by the
    /// server (client); `None` when P_DATA_V1 is in use.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.peer_id
    }

    fn send_push_reply(&mut self, now: Instant) {
        let pi = self.peer_info.clone().unwrap_or_default();
        let mut opts = self.push_options.clone();
        opts.peer_id = self.peer_id.map(PeerId::value);
        opts.cipher = self.cipher.map(|c| c.name().to_string());
        if pi.proto.contains(IvProto::CC_EXIT_NOTIFY) {
            let mut f = ProtocolFlags::CC_EXIT;
            if self.use_ekm {
                f |= ProtocolFlags::TLS_EKM;
            }
            if self.dyn_negotiated {
                f |= ProtocolFlags::DYN_TLS_CRYPT;
            }
            opts.protocol_flags = Some(f);
            opts.key_derivation = None;
        } else if self.use_ekm {
            opts.key_derivation = Some(KeyDerivation::TlsEkm);
        }
        if let Some(mtu) = pi.mtu
            && self.cfg.tun_mtu <= mtu
        {
            opts.tun_mtu = Some(self.cfg.tun_mtu);
        }
        let parts = match build_push_reply(&opts.to_lines(), PUSH_PART_MAX) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .events
                    .push_back(Event::Warning(format!("cannot build PUSH_REPLY: {e}")));
            }
        };
        for part in parts {
            match control_msg::encode(&part) {
                Ok(b) => self.pending_control.push_back(b),
                Err(e) => {
                    return self
                        .events
                        .push_back(Event::Warning(format!("cannot send PUSH_REPLY: {e}")));
                }
            }
        }
        self.last_push = Some(now);
        self.push_requested = false;
        self.set_connected(now);
    }

    // ----- keys ------------------------------------------------------------

    fn generate_keys(&mut self, now: Instant) {
        if let Err(e) = self.try_generate_keys(now) {
            self.close_now(CloseReason::Tls(format!("data key derivation failed: {e}")));
        }
    }

    fn try_generate_keys(&mut self, now: Instant) -> Result<(), SessionError> {
        let cipher = self.cipher.ok_or(SessionError::NotReady("no cipher"))?;
        let ks = &mut self.primary;
        let block = if self.use_ekm {
            Key2::from_bytes(ks.tls.export_keying_material(EKM_LABEL_DATAKEYS)?)
        } else {
            let peer = ks
                .peer_km
                .as_ref()
                .ok_or(SessionError::NotReady("no key-method 2 from the peer"))?;
            let remote = self
                .remote_sid
                .ok_or(SessionError::NotReady("no peer sid"))?;
            let ours = prf::KeySource {
                random1: &ks.source.random1,
                random2: &ks.source.random2,
            };
            let theirs = prf::KeySource {
                random1: &peer.random1,
                random2: &peer.random2,
            };
            let (pre_master, client, server, csid, ssid) = match self.role {
                Role::Client => (ks.source.pre_master, ours, theirs, self.local_sid, remote),
                Role::Server => (peer.pre_master, theirs, ours, remote, self.local_sid),
            };
            let pm = pre_master.ok_or(SessionError::NotReady("no pre-master secret"))?;
            prf::legacy_key_expansion(&pm, client, server, csid, ssid)
        };
        let key = DataKey::from_key2(
            cipher,
            self.cfg.auth_digest,
            &block,
            self.role,
            ks.key_id,
            self.peer_id,
            self.cfg.replay,
        )?;
        // Like 2.6 (a key state is ACTIVE only once all our control packets
        // are acked), switch sending to the new key only when the peer has
        // acked our key-method 2, i.e. can derive it too; the first data
        // packet we receive on it also proves that.
        let send_now = self.data.send_key_id().is_none() || ks.reliable.all_acked();
        self.data.install(key, send_now);
        self.data.set_send_pending((!send_now).then_some(ks.key_id));
        ks.keys_generated = true;
        let key_id = ks.key_id;
        if key_id == KeyId::ZERO && self.dyn_negotiated && self.dyn_wrap.is_none() {
            let exported = ks.tls.export_keying_material(EKM_LABEL_DYN_TLS_CRYPT)?;
            let crypt = TlsCrypt::dynamic(&exported, self.static_key.as_ref(), self.role)?;
            self.dyn_wrap = Some(TlsWrapCtx::new(
                TlsWrap::Crypt(crypt),
                0,
                self.unix_time as u32,
                self.cfg.replay,
            ));
        }
        self.timers.stop(Timer::HandshakeWindow);
        if let Some(r) = self.cfg.reneg_sec.filter(|d| !d.is_zero()) {
            self.timers
                .set(Timer::Reneg, later(now, self.reneg_jitter(r)));
        }
        self.events.push_back(Event::KeysReady {
            key_id: key_id.value(),
        });
        if key_id != KeyId::ZERO {
            self.events.push_back(Event::Renegotiated {
                key_id: key_id.value(),
            });
        }
        Ok(())
    }

    /// A 2.6 server takes up to 10 % off reneg-sec so that it, not the
    /// client, usually initiates (doc §10); the client uses it exactly.
    fn reneg_jitter(&self, r: Duration) -> Duration {
        if self.role == Role::Client {
            return r;
        }
        let mut b = [0u8; 4];
        if openssl::rand::rand_bytes(&mut b).is_err() {
            return r;
        }
        let tenth = r.as_millis() as u64 / 10;
        let off = if tenth == 0 {
            0
        } else {
            u64::from(u32::from_be_bytes(b)) % tenth
        };
        r.saturating_sub(Duration::from_millis(off))
    }

    /// Start a renegotiation (soft reset) from our side. The old key's
    /// reliable traffic must be finished first (doc §10).
    pub fn renegotiate(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if !self.primary.keys_generated {
            return Err(SessionError::NotReady("primary key has no data keys yet"));
        }
        if !self.primary.reliable.all_acked() {
            return Err(SessionError::NotReady(
                "control traffic of the primary key in flight",
            ));
        }
        self.start_renegotiation(now)?;
        self.drive(now);
        Ok(())
    }

    fn start_renegotiation(&mut self, now: Instant) -> Result<(), SessionError> {
        let new_id = self.primary.key_id.next();
        let mut ks = KeyState::new(
            &self.cfg.tls,
            tls_role(self.role),
            new_id,
            now,
            Self::reliable_cfg(&self.cfg),
            false,
        )?;
        if self.role == Role::Client {
            let token = self.auth_token.as_ref().map(|t| (&self.auth_token_user, t));
            Self::write_client_key_method(&self.cfg, &mut ks, token)?;
        }
        ks.queue_reset(Vec::new());
        let old = std::mem::replace(&mut self.primary, ks);
        if let Some(lame) = self.lame_duck.take()
            && lame != new_id
        {
            self.data.remove(lame);
        }
        if self.data.has_key(old.key_id) {
            self.lame_duck = Some(old.key_id);
            self.timers.set(
                Timer::LameDuckExpiry,
                later(now, self.cfg.transition_window),
            );
        }
        self.timers
            .set(Timer::HandshakeWindow, later(now, self.cfg.hand_window));
        self.timers.stop(Timer::Reneg);
        Ok(())
    }

    fn want_renegotiation(&mut self, now: Instant) {
        if self.primary.keys_generated && !self.timers.is_expired(Timer::Reneg, now) {
            self.timers.set(Timer::Reneg, now);
        }
    }

    // ----- commands --------------------------------------------------------

    /// Send a control message on the primary key (queued while a
    /// renegotiation has not reached the point where it can carry it).
    pub fn send_control_message(
        &mut self,
        now: Instant,
        msg: &ControlMessage,
    ) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.pending_control.push_back(msg.encode()?);
        self.drive(now);
        Ok(())
    }

    /// End the session. With `exit_notify` the peer is told first: a
    /// client sends `EXIT` (when `cc-exit` was pushed) or OCC_EXIT data
    /// packets once a second for `explicit-exit-notify` seconds; a server
    /// sends `RESTART`. [`Event::Closed`] follows once that is done.
    pub fn close(&mut self, now: Instant, exit_notify: bool) {
        if self.closed {
            return;
        }
        if !exit_notify || !self.connected {
            return self.close_now(CloseReason::Local);
        }
        self.teardown_reason = Some(CloseReason::Local);
        let secs = u64::from(self.cfg.explicit_exit_notify.unwrap_or(1).max(1));
        match self.role {
            Role::Client if !self.cc_exit => {
                self.pending_occ_exit = true;
                self.occ_exit_left = (secs - 1) as u32;
                if self.occ_exit_left > 0 {
                    self.timers
                        .set(Timer::ExitNotify, later(now, Duration::from_secs(1)));
                }
            }
            Role::Client => {
                if let Ok(b) = ControlMessage::Exit.encode() {
                    self.pending_control.push_back(b);
                }
            }
            Role::Server => {
                let msg = ControlMessage::Restart(Default::default());
                if let Ok(b) = msg.encode() {
                    self.pending_control.push_back(b);
                }
            }
        }
        self.timers
            .set(Timer::ExitTeardown, later(now, Duration::from_secs(secs)));
        self.drive(now);
    }

    fn close_now(&mut self, reason: CloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.timers = TimerTable::new();
        self.events.push_back(Event::Closed { reason });
    }

    // ----- timers ----------------------------------------------------------

    /// Run the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, unix_time: u64) {
        if self.closed {
            return;
        }
        self.unix_time = unix_time;
        for t in self.timers.take_expired(now) {
            if self.closed {
                return;
            }
            match t {
                // The reliable layer finds due messages itself in poll_transmit.
                Timer::Retransmit => {}
                Timer::HandshakeWindow => {
                    if !self.primary.keys_generated {
                        self.close_now(CloseReason::HandshakeTimeout);
                    }
                }
                Timer::Ping => self.pending_ping = true,
                Timer::PingRestart => self.close_now(CloseReason::PingRestart),
                Timer::PingExit => self.close_now(CloseReason::PingExit),
                Timer::Inactive => self.close_now(CloseReason::Inactive),
                Timer::Reneg => {
                    if self.primary.keys_generated {
                        if self.primary.reliable.all_acked() {
                            if let Err(e) = self.start_renegotiation(now) {
                                self.close_now(CloseReason::Tls(e.to_string()));
                            }
                        } else {
                            self.timers.set(Timer::Reneg, later(now, RENEG_RETRY));
                        }
                    }
                }
                Timer::LameDuckExpiry => {
                    if let Some(l) = self.lame_duck.take() {
                        self.data.remove(l);
                    }
                }
                Timer::PushRequest => {
                    if self.role == Role::Client && !self.push.started() {
                        if let Ok(b) = ControlMessage::PushRequest.encode() {
                            self.pending_control.push_back(b);
                        }
                        self.timers
                            .set(Timer::PushRequest, later(now, PUSH_REQUEST_INTERVAL));
                    }
                }
                Timer::AuthFailedTeardown => {
                    let reason = match &self.auth {
                        ServerAuth::Denied(r) => r.clone().unwrap_or_default(),
                        _ => String::new(),
                    };
                    self.close_now(CloseReason::AuthFailed(reason));
                }
                Timer::ExitTeardown => {
                    let r = self.teardown_reason.take().unwrap_or(CloseReason::Local);
                    self.close_now(r);
                }
                Timer::ExitNotify => {
                    self.pending_occ_exit = true;
                    self.occ_exit_left = self.occ_exit_left.saturating_sub(1);
                    if self.occ_exit_left > 0 {
                        self.timers
                            .set(Timer::ExitNotify, later(now, Duration::from_secs(1)));
                    }
                }
            }
        }
        self.drive(now);
    }

    // ----- data channel ----------------------------------------------------

    /// Encrypt one tun packet into `dst` with the current send key.
    ///
    /// `dst` must hold [`DataChannel::seal_buffer_len`] bytes; a smaller one
    /// is [`CryptoError::BufferTooSmall`], never a panic.
    pub fn encrypt<'d>(
        &mut self,
        now: Instant,
        plaintext: &[u8],
        dst: &'d mut [u8],
    ) -> Result<&'d [u8], SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if self.data.send_key_id().is_none() {
            return Err(SessionError::NoKey);
        }
        let len = self
            .data
            .encrypt(now, plaintext, dst)
            .map(|s| s.packet.len());
        self.absorb_data();
        let len = len?;
        let dst: &'d [u8] = dst;
        dst.get(..len)
            .ok_or(SessionError::Crypto(CryptoError::Truncated))
    }

    /// `fragment`: encrypt the next piece of the packet the last
    /// [`Self::encrypt`] cut up into `dst`; `None` when all were sent.
    /// Callers loop on it right after `encrypt` (2.6 `check_fragment`).
    pub fn encrypt_pending<'d>(
        &mut self,
        now: Instant,
        dst: &'d mut [u8],
    ) -> Option<Result<&'d [u8], SessionError>> {
        if self.closed {
            return None;
        }
        let len = self.data.encrypt_pending(now, dst)?.map(|s| s.packet.len());
        self.absorb_data();
        let len = match len {
            Ok(n) => n,
            Err(e) => return Some(Err(e.into())),
        };
        let dst: &'d [u8] = dst;
        Some(
            dst.get(..len)
                .ok_or(SessionError::Crypto(CryptoError::Truncated)),
        )
    }

    /// Authenticate and decrypt one data packet of this peer into `dst`.
    /// Pings restart `--ping-restart` and are consumed here; OCC_EXIT
    /// starts the peer's teardown. Drops are counted and returned.
    pub fn decrypt<'d>(
        &mut self,
        now: Instant,
        packet: &[u8],
        dst: &'d mut [u8],
    ) -> Result<DataOutcome<'d>, DropReason> {
        let out = self.data.decrypt(now, packet, dst);
        self.absorb_data();
        if let Err(r) = out {
            self.drops.count(r);
        }
        out
    }
}

/// Whether a tls-crypt-v2 client's replay id carries the 0x0F000000
/// early-negotiation marker (doc §3.7): it can resend WKc.
pub(crate) fn is_early_negotiation(pid: PacketIdLong) -> bool {
    pid.id & 0xFF00_0000 == EARLY_NEG_START
}
