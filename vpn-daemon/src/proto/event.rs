//! Events a control session reports to mode logic (`client/`, `server/`)
//! through `poll_event()`: what happened that the caller must act on.
//!
//! They say what to do next (install keys, apply pushed options, tear
//! down), not how the session got there; counters and drop reasons travel
//! separately.

use crate::proto::control_msg::{AuthFailed, ServerSignal};
use crate::proto::key_method::PeerInfo;
use crate::proto::push::PushedOptions;

/// Key id of a key state (0..=7; 0 is never reused after the first key).
pub type KeyId = u8;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// A key state did not reach ACTIVE within `--hand-window`.
    HandshakeTimeout,
    /// `--ping-restart` expired: reconnect (client) or drop (server).
    PingRestart,
    /// `--ping-exit` expired.
    PingExit,
    /// `--inactive` expired.
    Inactive,
    /// The peer sent `EXIT` (or OCC_EXIT).
    PeerExit,
    /// We were told AUTH_FAILED (client) or refused the client (server).
    AuthFailed(String),
    /// The server sent `RESTART`.
    Restart(ServerSignal),
    /// The server sent `HALT`.
    Halt(ServerSignal),
    /// TLS failed (certificate refused, alert, bad record).
    Tls(String),
    /// The peer broke the protocol (the text names the violation).
    ProtocolViolation(String),
    /// Our side asked to close (shutdown, config reload).
    Local,
}

/// What a control session asks its owner to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Server: a client finished key-method 2; authenticate it (user/pass,
    /// certificate CN) and answer with accept/deny.
    ClientCredentials {
        /// Key state the credentials came with (renegotiations re-send them).
        key_id: KeyId,
        /// `auth-user-pass` username, if sent.
        username: Option<String>,
        /// Password or auth-token, if sent.
        password: Option<String>,
        /// Common name of the client certificate, if any.
        common_name: Option<String>,
        /// Parsed peer-info.
        peer_info: Box<PeerInfo>,
        /// The client's OCC options string (for `opt-verify`).
        options: String,
    },
    /// Server: the client asked for its options.
    PushRequested,
    /// Data-channel keys of `key_id` are derived and may be installed.
    KeysReady {
        /// The key state.
        key_id: KeyId,
    },
    /// Client: the complete (possibly multi-part) PUSH_REPLY.
    PushReply(Box<PushedOptions>),
    /// The tunnel is up: keys installed and (client) options applied.
    Connected,
    /// Client: the server refused us.
    AuthFailed(AuthFailed),
    /// Client: `AUTH_PENDING`; keep waiting up to `timeout` seconds.
    AuthPending {
        /// Seconds, if the server said.
        timeout: Option<u32>,
    },
    /// `INFO` / `INFO_PRE` text for the management interface.
    Info(String),
    /// A renegotiation finished; the previous key is now lame duck.
    Renegotiated {
        /// The new primary key.
        key_id: KeyId,
    },
    /// Client: the server asked us to reconnect.
    Restart(ServerSignal),
    /// Client: the server asked us to stop.
    Halt(ServerSignal),
    /// Something odd but not fatal (unknown pushed options, OCC mismatch).
    Warning(String),
    /// The session is over; no more output follows.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

impl Event {
    /// Whether the owner should stop driving this session after the event.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_closed_is_terminal() {
        assert!(
            Event::Closed {
                reason: CloseReason::PingRestart
            }
            .is_terminal()
        );
        assert!(!Event::Connected.is_terminal());
        assert!(!Event::Halt(ServerSignal::default()).is_terminal());
    }
}
