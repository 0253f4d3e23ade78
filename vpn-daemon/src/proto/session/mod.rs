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
//! # Control half and data half
//!
//! The session is the control half; its [`DataChannel`] is the data half
//! (keys, packet ids, replay windows, compression and `fragment` framing).
//! `encrypt` / `decrypt` above are thin wrappers: they run the data half,
//! then [`Session::absorb`] the [`DataActivity`] it reports, which is where
//! the `--ping`, `--ping-restart` / `--ping-exit`, `--inactive` and rekey
//! decisions are made. A loop that gives the data half to another owner
//! (a per-core worker) reaches it with [`Session::data_channel_mut`], calls
//! [`DataChannel::encrypt`] / [`DataChannel::decrypt`] there, and hands
//! [`DataChannel::take_activity`] back to `absorb` before the session's next
//! `poll_timeout`. Keys are installed by the session and announced with
//! [`Event::KeysReady`] (and [`Event::Renegotiated`]); the worker's copy
//! follows those events.
//!
//! Files: `lifecycle` (construction, keepalive timers, timer dispatch,
//! close), `handshake` (control packets in: unwrap, admit, deliver; `drive`;
//! control packets out), `push_auth` (control messages, push, the server's
//! auth decision), `rekey` (key derivation, renegotiation), `data_path`
//! (the data wrappers and `absorb`), `data_channel` (the data half itself),
//! `config` (what a session is built from).
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
mod data_path;
mod handshake;
mod lifecycle;
mod push_auth;
mod rekey;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{SessionConfig, Transport, WrapConfig};
pub use data_channel::{DataActivity, DataChannel, DataOutcome, KeyTraffic, RekeyLimits};

use crate::proto::control_msg::ControlMsgError;
use crate::proto::data::DataCipher;
use crate::proto::data::compress::Compressor;
use crate::proto::data::payload::{OCC_MAGIC, OccOpcode, PING_MAGIC};
use crate::proto::error::{CryptoError, DropReason, KeyFileError};
use crate::proto::event::{CloseReason, Event};
use crate::proto::key_method::PeerInfo;
use crate::proto::key_state::{KeyState, Phase};
use crate::proto::keys::{Key2, Role};
use crate::proto::push::{PushReassembly, PushedOptions};
use crate::proto::reliable::CONTROL_SEND_ACK_MAX;
use crate::proto::replay::PacketIdLong;
use crate::proto::timers::{Timer, TimerTable};
use crate::proto::tls::{TlsError, TlsRole};
use crate::proto::wire::control::SessionId;
use crate::proto::wire::tls_crypt::EARLY_NEG_START;
use crate::proto::wire::wrap::TlsWrapCtx;
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
    /// Reused for unwrapping received control packets.
    rx_scratch: Vec<u8>,
    /// Reused for building control packets before they are wrapped.
    tx_scratch: Vec<u8>,
}

impl Session {
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
}

/// Whether a tls-crypt-v2 client's replay id carries the 0x0F000000
/// early-negotiation marker (doc §3.7): it can resend WKc.
pub(crate) fn is_early_negotiation(pid: PacketIdLong) -> bool {
    pid.id & 0xFF00_0000 == EARLY_NEG_START
}
