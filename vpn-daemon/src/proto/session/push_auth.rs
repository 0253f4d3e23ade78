//! Control messages once key-method 2 is through: the client's
//! PUSH_REQUEST / PUSH_REPLY handling, the server's authentication decision
//! and the PUSH_REPLY it builds.

use std::time::{Duration, Instant};

use super::{AuthDecision, InstanceTimers, ServerAuth, Session, SessionError, later};
use crate::proto::control_msg::{AuthFailed, ControlMessage};
use crate::proto::data::DataCipher;
use crate::proto::data::compress::{Compressor, PUSH_REFUSED, RECEIVE_WARNING};
use crate::proto::event::{CloseReason, Event};
use crate::proto::key_method::IvProto;
use crate::proto::key_state::Phase;
use crate::proto::keys::Role;
use crate::proto::push::{
    KeyDerivation, PUSH_PART_MAX, ProtocolFlags, PushError, PushProgress, PushedOptions,
    build_push_reply,
};
use crate::proto::timers::{PUSH_REPLY_REPEAT_GUARD, SCHEDULED_EXIT_INTERVAL, Timer};
use crate::proto::wire::{KeyId, PeerId};
use crate::proto::{control_msg, ncp};

impl Session {
    pub(super) fn on_control_message(&mut self, now: Instant, msg: &str) {
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

    pub(super) fn on_push_complete(&mut self, now: Instant, opts: PushedOptions) {
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

    pub(super) fn store_auth_token(&mut self, opts: &PushedOptions) {
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

    pub(super) fn accept_first_key(&mut self, now: Instant) {
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

    pub(super) fn deny(&mut self, now: Instant, reason: Option<String>) {
        self.auth = ServerAuth::Denied(reason.clone());
        self.send_auth_failed(reason);
        if !self.timers.is_armed(Timer::AuthFailedTeardown) {
            self.timers.set(
                Timer::AuthFailedTeardown,
                later(now, SCHEDULED_EXIT_INTERVAL),
            );
        }
    }

    pub(super) fn send_auth_failed(&mut self, reason: Option<String>) {
        let msg = ControlMessage::AuthFailed(AuthFailed::Plain { reason });
        if let Ok(bytes) = msg.encode() {
            self.pending_control.push_back(bytes);
        }
    }

    pub(super) fn on_push_request(&mut self, now: Instant) {
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

    pub(super) fn send_push_reply(&mut self, now: Instant) {
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
}
