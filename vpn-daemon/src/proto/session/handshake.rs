//! The control channel's input path: a control packet is unwrapped
//! (tls-auth / tls-crypt / WKc), admitted (session ids, opcode, key_id)
//! and delivered to the reliable layer; `drive` then moves TLS and
//! key-method 2 along, and `transmit_control` writes what goes back.

use std::time::Instant;

use super::{
    MAX_CONTROL_ACK_BLOCK, OUTER_HEADER, Session, SessionConfig, SessionError, WrapConfig, later,
};
use crate::proto::control_msg;
use crate::proto::data::compress::CompFlags;
use crate::proto::error::DropReason;
use crate::proto::event::{CloseReason, Event};
use crate::proto::key_method::{IvProto, KeyMethod2, OccOptions, PeerInfo};
use crate::proto::key_state::{KeyState, Phase};
use crate::proto::keys::Role;
use crate::proto::reliable::{
    ACK_V1_MAX, CONTROL_SEND_ACK_MAX, Incoming, MAX_PENDING_ACKS, MessageId, MessageKind,
};
use crate::proto::timers::{PUSH_REQUEST_DELAY, Timer};
use crate::proto::tls::TlsRole;
use crate::proto::wire::KeyId;
use crate::proto::wire::control::{AckBlock, ControlRepr, HEADER_LEN};
use crate::proto::wire::opcode::{Opcode, split_first_byte};
use crate::proto::wire::tls_crypt::split_wkc;
use crate::proto::wire::tlv::EarlyNegotiation;
use crate::proto::wire::wrap::{TlsWrap, TlsWrapCtx};

impl Session {
    /// The client writes key-method 2 as soon as the key state starts; TLS
    /// holds it until the handshake is done (doc §4.4).
    ///
    /// On renegotiations a pushed `auth-token` replaces the password (and
    /// `auth-token-user` the username), as 2.6 does.
    pub(super) fn write_client_key_method(
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

    /// Write the next control packet (a reliable message with its acks, or
    /// a bare P_ACK_V1) wrapped into `buf`. The plaintext is built in a
    /// buffer the session keeps, so sending allocates nothing.
    pub(super) fn transmit_control(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let kid = self.primary.key_id;
        let (kind, message_id, payload, list): (_, _, &[u8], _) =
            match self.primary.reliable.poll_transmit(now) {
                Some(tx) => (Some(tx.kind), Some(tx.message_id), tx.payload, tx.acks),
                None => (None, None, &[], self.primary.reliable.poll_ack()?),
            };
        let mut ids = [0 as MessageId; MAX_PENDING_ACKS];
        let mut n_ids = list.len();
        ids.get_mut(..n_ids)?.copy_from_slice(list.as_slice());
        if self.force_ack0 && kid == KeyId::ZERO && !list.as_slice().contains(&0) {
            let cap = if kind.is_some() {
                CONTROL_SEND_ACK_MAX
            } else {
                ACK_V1_MAX
            };
            if n_ids >= cap {
                n_ids -= 1;
            }
            // Ack 0 goes first, the others move up one place.
            ids.copy_within(..n_ids, 1);
            ids[0] = 0;
            n_ids += 1;
        }
        let acks = ids.get(..n_ids)?;
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
            Some(r) if !acks.is_empty() => AckBlock::new(acks, r).ok()?,
            _ => AckBlock::EMPTY,
        };
        let repr = ControlRepr {
            opcode,
            key_id: kid,
            session_id: self.local_sid,
            acks: block,
            message_id,
            payload,
        };
        let mut plain = std::mem::take(&mut self.tx_scratch);
        plain.clear();
        plain.resize(repr.buffer_len(), 0);
        let ctx = match &mut self.dyn_wrap {
            Some(d) if kid != KeyId::ZERO => d,
            _ => &mut self.wrap,
        };
        let wrapped = repr
            .emit(&mut plain)
            .ok()
            .and_then(|_| Some(ctx.wrap_next(&plain, buf).ok()?.len()));
        self.tx_scratch = plain;
        let n = wrapped?;
        if self.role == Role::Client
            && opcode.carries_wkc()
            && let Some(wkc) = &self.wkc
        {
            buf.get_mut(n..n + wkc.len())?.copy_from_slice(wkc);
            return Some(n + wkc.len());
        }
        Some(n)
    }

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

    /// One control packet: unwrap, admit, deliver. The unwrapped bytes go to
    /// a buffer the session keeps, so a packet costs no allocation.
    pub(super) fn handle_control(
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
        let mut buf = std::mem::take(&mut self.rx_scratch);
        buf.clear();
        buf.resize(packet.len(), 0);
        let r = self
            .unwrap_control(now, unix_time, op, kid, packet, &mut buf)
            .and_then(|n| {
                let plain = buf.get(..n).ok_or(DropReason::Truncated)?;
                let repr = ControlRepr::parse_bytes(plain).map_err(|e| e.drop_reason())?;
                self.admit_control(now, op, kid, &repr)?;
                self.deliver_control(now, op, &repr)
            });
        self.rx_scratch = buf;
        r
    }

    /// Authenticate and decrypt `packet` into `buf`; returns the plaintext
    /// length. A tls-crypt-v2 server session whose Kc is not known yet
    /// takes it from the WKc of the first packet that authenticates with it.
    fn unwrap_control(
        &mut self,
        now: Instant,
        unix_time: u64,
        op: Opcode,
        kid: KeyId,
        packet: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, DropReason> {
        let secs = self.secs(now);
        if !op.carries_wkc() {
            if self.v2_pending {
                return Err(DropReason::UnexpectedOpcode);
            }
            let ctx = match &mut self.dyn_wrap {
                Some(d) if kid != KeyId::ZERO => d,
                _ => &mut self.wrap,
            };
            return Ok(ctx
                .unwrap_checked(packet, buf, secs)
                .map_err(|e| e.drop_reason())?
                .len());
        }
        let WrapConfig::CryptV2Server { server_key } = &self.cfg.wrap else {
            return Err(DropReason::UnexpectedOpcode);
        };
        if !self.v2_pending {
            // Later copies of WKc are ignored; the session's Kc decides.
            let (wire, _wkc) = split_wkc(packet).map_err(|e| e.drop_reason())?;
            return Ok(self
                .wrap
                .unwrap_checked(wire, buf, secs)
                .map_err(|e| e.drop_reason())?
                .len());
        }
        // Install Kc only once a packet authenticated with it.
        let opened = server_key.open_wkc(packet)?;
        let mut ctx = TlsWrapCtx::new(
            TlsWrap::Crypt(opened.crypt),
            0,
            unix_time as u32,
            self.cfg.replay,
        );
        let n = ctx
            .unwrap_checked(opened.wire, buf, secs)
            .map_err(|e| e.drop_reason())?
            .len();
        self.wrap = ctx;
        self.static_key = Some(opened.kc);
        self.v2_pending = false;
        Ok(n)
    }

    /// Whether an authenticated packet belongs here: session ids, an opcode
    /// this role may receive, the primary key_id (or the SOFT_RESET that
    /// starts the next one).
    fn admit_control(
        &mut self,
        now: Instant,
        op: Opcode,
        kid: KeyId,
        repr: &ControlRepr<'_>,
    ) -> Result<(), DropReason> {
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
        Ok(())
    }

    /// Feed an admitted packet's acks and message to the reliable layer.
    fn deliver_control(
        &mut self,
        now: Instant,
        op: Opcode,
        repr: &ControlRepr<'_>,
    ) -> Result<(), DropReason> {
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
    pub(super) fn drive(&mut self, now: Instant) {
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

    pub(super) fn max_control_payload(&self) -> usize {
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
    pub(super) fn can_carry_control(&self) -> bool {
        matches!(self.primary.phase, Phase::Active | Phase::ExpectAuth)
    }

    pub(super) fn on_peer_reset(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), CloseReason> {
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

    pub(super) fn handle_record(&mut self, now: Instant, rec: &[u8]) {
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

    pub(super) fn on_server_key_method(&mut self, now: Instant, rec: &[u8]) {
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

    pub(super) fn on_client_key_method(&mut self, rec: &[u8]) {
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
}
