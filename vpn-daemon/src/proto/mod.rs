//! The sans-IO OpenVPN 2.6 protocol core: no sockets, no tokio, no clock.
//!
//! Inputs are bytes received and a `now` passed in by the caller; outputs are
//! bytes to send, plaintext packets for tun, events, and the next deadline.
//!
//! The per-peer entry point is [`session::Session`] (its module doc states
//! the `handle_*` / `poll_*` contract and the drain order); a UDP server's
//! packets from unknown addresses go to [`cookie::StatelessResponder`]
//! first, which creates a session only after the 2.6 cookie echo.
#![forbid(unsafe_code)]

// Control-channel pieces: reliability, TLS over memory, key-method 2,
// control messages, push options, cipher negotiation, timers, events.
pub mod cert_checks;
pub mod control_msg;
pub mod cookie;
pub mod dns;
pub mod event;
pub mod key_method;
pub mod key_state;
pub mod ncp;
pub mod push;
pub mod reliable;
pub mod session;
pub mod timers;
pub mod tls;

#[cfg(test)]
#[path = "tests/control_channel.rs"]
mod control_channel_tests;
#[cfg(test)]
#[path = "tests/session_compress.rs"]
mod session_compress_tests;
#[cfg(test)]
#[path = "tests/session_handshake.rs"]
mod session_handshake_tests;
#[cfg(test)]
#[path = "tests/session_lifecycle.rs"]
mod session_lifecycle_tests;
#[cfg(test)]
#[path = "tests/sim.rs"]
pub(crate) mod sim;

// Wire formats, control-channel wrapping, keys and the data channel.
pub mod data;
pub mod error;
pub mod hmac;
pub mod keys;
pub mod prf;
pub mod replay;
pub mod static_key;
pub mod wire;
