//! Data keys: derivation (EKM or the legacy PRF), installation into the
//! data half, and renegotiation (soft reset) with its lame-duck key.

use std::time::{Duration, Instant};

use super::{Session, SessionError, later, tls_role};
use crate::proto::data::DataKey;
use crate::proto::event::{CloseReason, Event};
use crate::proto::key_state::KeyState;
use crate::proto::keys::{Key2, Role};
use crate::proto::prf;
use crate::proto::timers::Timer;
use crate::proto::tls::{EKM_LABEL_DATAKEYS, EKM_LABEL_DYN_TLS_CRYPT};
use crate::proto::wire::KeyId;
use crate::proto::wire::tls_crypt::TlsCrypt;
use crate::proto::wire::wrap::{TlsWrap, TlsWrapCtx};

impl Session {
    pub(super) fn generate_keys(&mut self, now: Instant) {
        if let Err(e) = self.try_generate_keys(now) {
            self.close_now(CloseReason::Tls(format!("data key derivation failed: {e}")));
        }
    }

    pub(super) fn try_generate_keys(&mut self, now: Instant) -> Result<(), SessionError> {
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
    pub(super) fn reneg_jitter(&self, r: Duration) -> Duration {
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

    pub(super) fn start_renegotiation(&mut self, now: Instant) -> Result<(), SessionError> {
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

    pub(super) fn want_renegotiation(&mut self, now: Instant) {
        if self.primary.keys_generated && !self.timers.is_expired(Timer::Reneg, now) {
            self.timers.set(Timer::Reneg, now);
        }
    }
}
