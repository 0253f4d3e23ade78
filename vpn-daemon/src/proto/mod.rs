//! The sans-IO OpenVPN 2.6 protocol core: no sockets, no tokio, no clock.
//!
//! Inputs are bytes received and a `now` passed in by the caller; outputs are
//! bytes to send, plaintext packets for tun, events, and the next deadline.
#![forbid(unsafe_code)]

pub mod data;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod prf;
pub mod replay;
pub mod wire;
