//! One key state ("key_state" in OpenVPN): the reliable layer, the TLS
//! session and the key-method-2 exchange of one key_id (doc §4.4).
//!
//! ```text
//!  ExpectReset ──(peer reset in, our reset acked)──▶ ExpectTlsHandshake
//!       ──(TLS done)──▶ ExpectKeyMethod2 ──(peer km2 in)──▶ client: Active
//!                                                        └▶ server: ExpectAuth ──(accept)──▶ Active
//! ```
//!
//! `Active` is OpenVPN's ACTIVE; data keys are generated from it (the
//! session decides when: a client waits for the PUSH_REPLY on key_id 0).
//! When a renegotiation replaces a key state, the session keeps only its
//! data key as the lame duck; the control part ends here, as in 2.6, which
//! never sends or accepts control packets for a lame-duck key_id.
//!
//! Transitions consume the phase and return the next one, so an illegal
//! move is a type mismatch in review rather than a silent assignment.

use std::time::Instant;

use crate::proto::key_method::{KeyMethod2, KeySource};
use crate::proto::reliable::{MessageKind, Reliable, ReliableConfig};
use crate::proto::tls::{TlsContext, TlsError, TlsRole, TlsSession};
use crate::proto::wire::KeyId;

/// Where a key state is in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Our (hard or soft) reset is queued; the peer's reset has not been
    /// delivered or ours is not acked yet. TLS output is held.
    ExpectReset,
    /// Resets exchanged: the TLS handshake runs.
    ExpectTlsHandshake,
    /// TLS is up; waiting for the peer's key-method-2 message.
    ExpectKeyMethod2,
    /// Server: the client's key-method 2 arrived; the application decides
    /// on its credentials.
    ExpectAuth,
    /// Key-method 2 exchanged (and, on a server, the client accepted).
    Active,
}

impl Phase {
    /// ExpectReset → ExpectTlsHandshake once both resets are through.
    pub fn resets_done(self) -> Phase {
        match self {
            Phase::ExpectReset => Phase::ExpectTlsHandshake,
            other => other,
        }
    }

    /// ExpectTlsHandshake → ExpectKeyMethod2 when TLS completes.
    pub fn tls_done(self) -> Phase {
        match self {
            Phase::ExpectTlsHandshake => Phase::ExpectKeyMethod2,
            other => other,
        }
    }

    /// ExpectKeyMethod2 → (client) Active / (server) ExpectAuth.
    pub fn key_method_received(self, role: TlsRole) -> Option<Phase> {
        match (self, role) {
            (Phase::ExpectKeyMethod2, TlsRole::Client) => Some(Phase::Active),
            (Phase::ExpectKeyMethod2, TlsRole::Server) => Some(Phase::ExpectAuth),
            _ => None,
        }
    }

    /// ExpectAuth → Active.
    pub fn authorized(self) -> Option<Phase> {
        match self {
            Phase::ExpectAuth => Some(Phase::Active),
            _ => None,
        }
    }

    /// Whether TLS ciphertext may be put into the reliable layer.
    pub fn tls_flowing(self) -> bool {
        self != Phase::ExpectReset
    }
}

/// One key_id's control state.
#[derive(Debug)]
pub struct KeyState {
    /// The key id.
    pub key_id: KeyId,
    /// Handshake progress.
    pub phase: Phase,
    /// Reliability layer of this key state.
    pub reliable: Reliable,
    /// TLS session of this key state.
    pub tls: TlsSession,
    /// Our key-method-2 randoms (and pre-master on a client).
    pub source: KeySource,
    /// The peer's key-method-2 message once received.
    pub peer_km: Option<KeyMethod2>,
    /// When negotiation of this key state started (hand-window origin).
    pub started: Instant,
    /// The peer's reset (message 0) has been delivered.
    pub got_peer_reset: bool,
    /// Our reset has been queued (a TCP server holds it until the client's).
    pub our_reset_queued: bool,
    /// Data keys were derived from this key state.
    pub keys_generated: bool,
}

impl KeyState {
    /// A new key state. `after_cookie` starts the reliable layer at 1/1
    /// with both resets done (server after the stateless cookie).
    pub fn new(
        ctx: &TlsContext,
        role: TlsRole,
        key_id: KeyId,
        now: Instant,
        rel: ReliableConfig,
        after_cookie: bool,
    ) -> Result<Self, TlsError> {
        let source = KeySource::generate(role)?;
        let (reliable, phase) = if after_cookie {
            (Reliable::after_cookie(rel), Phase::ExpectTlsHandshake)
        } else {
            (Reliable::new(rel), Phase::ExpectReset)
        };
        Ok(Self {
            key_id,
            phase,
            reliable,
            tls: TlsSession::new(ctx)?,
            source,
            peer_km: None,
            started: now,
            got_peer_reset: after_cookie,
            our_reset_queued: after_cookie,
            keys_generated: false,
        })
    }

    /// Queue our reset (hard reset on key_id 0, soft reset after) as message 0.
    pub fn queue_reset(&mut self, payload: Vec<u8>) {
        if self.our_reset_queued {
            return;
        }
        let kind = if self.key_id == KeyId::ZERO {
            MessageKind::HardReset
        } else {
            MessageKind::SoftReset
        };
        // A fresh reliable layer always has room for message 0.
        if self.reliable.queue_send(kind, payload).is_ok() {
            self.our_reset_queued = true;
        }
    }

    /// Advance ExpectReset when both resets are through. In that phase the
    /// reset is the only message we sent, so "all acked" means "reset acked".
    pub fn check_resets(&mut self) {
        if self.phase == Phase::ExpectReset
            && self.got_peer_reset
            && self.our_reset_queued
            && self.reliable.all_acked()
        {
            self.phase = self.phase.resets_done();
        }
        if self.phase == Phase::ExpectTlsHandshake && self.tls.is_handshake_complete() {
            self.phase = self.phase.tls_done();
        }
    }

    /// Whether this key state reached ACTIVE.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward_along_the_handshake() {
        assert_eq!(Phase::ExpectReset.resets_done(), Phase::ExpectTlsHandshake);
        assert_eq!(Phase::ExpectReset.tls_done(), Phase::ExpectReset);
        assert_eq!(
            Phase::ExpectKeyMethod2.key_method_received(TlsRole::Server),
            Some(Phase::ExpectAuth)
        );
        assert_eq!(
            Phase::ExpectKeyMethod2.key_method_received(TlsRole::Client),
            Some(Phase::Active)
        );
        assert_eq!(Phase::Active.key_method_received(TlsRole::Client), None);
        assert_eq!(Phase::ExpectAuth.authorized(), Some(Phase::Active));
        assert_eq!(Phase::ExpectKeyMethod2.authorized(), None);
        assert!(!Phase::ExpectReset.tls_flowing());
        assert!(Phase::ExpectTlsHandshake.tls_flowing());
    }
}
