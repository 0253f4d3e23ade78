//! A session's life: construction in each role, the keepalive and
//! inactivity timers, the timer dispatch, and the end (OpenVPN's
//! `tls_multi_init`, `check_ping_*`, exit notification).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    DataChannel, DropCounters, RENEG_RETRY, RekeyLimits, ServerAuth, Session, SessionConfig,
    SessionError, WrapConfig, later, tls_role,
};
use crate::proto::control_msg::ControlMessage;
use crate::proto::data::compress::Compressor;
use crate::proto::event::{CloseReason, Event};
use crate::proto::key_state::KeyState;
use crate::proto::keys::{Key2, Role};
use crate::proto::push::{PushReassembly, PushedOptions};
use crate::proto::reliable::ReliableConfig;
use crate::proto::timers::{PUSH_REQUEST_INTERVAL, SCHEDULED_EXIT_INTERVAL, Timer, TimerTable};
use crate::proto::tls::TlsError;
use crate::proto::wire::KeyId;
use crate::proto::wire::control::SessionId;
use crate::proto::wire::tls_crypt::EARLY_NEG_START;
use crate::proto::wire::wrap::{TlsWrap, TlsWrapCtx};

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
    pub(super) fn build(
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
            rx_scratch: Vec::new(),
            tx_scratch: Vec::new(),
            cfg,
        })
    }

    pub(super) fn reliable_cfg(cfg: &SessionConfig) -> ReliableConfig {
        ReliableConfig {
            initial_timeout: cfg.tls_timeout,
            ..ReliableConfig::default()
        }
    }

    /// Something went out on the link: the `--ping` interval restarts.
    pub(super) fn link_sent(&mut self, now: Instant) {
        if self.connected
            && let Some(p) = self.ping
        {
            self.timers.set(Timer::Ping, later(now, p));
        }
    }

    /// An authenticated packet came in: `--ping-restart` / `--ping-exit` restart.
    pub(super) fn link_received(&mut self, now: Instant) {
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

    pub(super) fn tun_traffic(&mut self, now: Instant) {
        if self.connected
            && let Some(i) = self.inactive
        {
            self.timers.set(Timer::Inactive, later(now, i));
        }
    }

    pub(super) fn set_connected(&mut self, now: Instant) {
        if self.connected {
            return;
        }
        self.connected = true;
        self.events.push_back(Event::Connected);
        self.link_sent(now);
        self.link_received(now);
        self.tun_traffic(now);
    }

    pub(super) fn peer_leaving(&mut self, now: Instant) {
        if self.teardown_reason.is_none() {
            self.teardown_reason = Some(CloseReason::PeerExit);
            // Give the reliable layer time to ack what is in flight (2.6
            // schedules the exit the same way).
            self.timers
                .set(Timer::ExitTeardown, later(now, SCHEDULED_EXIT_INTERVAL));
        }
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

    /// A server's end of one client on request (`client-kill`, 2.6's
    /// `send_restart`): `text` instead of `RESTART` goes to the client,
    /// then the exit is scheduled as for any control-channel exit.
    pub fn close_with_message(&mut self, now: Instant, text: &str) {
        if self.closed {
            return;
        }
        let Ok(b) = crate::proto::control_msg::encode(text) else {
            return self.close_now(CloseReason::Local);
        };
        if !self.connected {
            return self.close_now(CloseReason::Local);
        }
        self.teardown_reason = Some(CloseReason::Local);
        self.pending_control.push_back(b);
        self.timers
            .set(Timer::ExitTeardown, later(now, SCHEDULED_EXIT_INTERVAL));
        self.drive(now);
    }

    pub(super) fn close_now(&mut self, reason: CloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.timers = TimerTable::new();
        self.events.push_back(Event::Closed { reason });
    }

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
}
