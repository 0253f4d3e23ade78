//! OpenVPN's main event loop, one file per part (see
//! `docs/architecture.md`): [`external`] (which session a packet from the
//! network belongs to, and the cookie front door), [`internal`] (routing
//! to and from tun), [`control`] and `auth` (a client's authentication,
//! ccd, pool, push), [`schedule`] (a deadline heap of the clients'
//! timers), [`input`] (signals, management commands, task results),
//! [`output`] (the fast path or the socket), [`status`]; the server loop
//! both transports share (`server`, over [`server_udp`] and
//! [`server_tcp`]), the client's ([`point_to_point`] with its `client_*`
//! parts) and static-key mode's ([`static_key`]); [`setup`] turns the
//! configuration into session settings.

pub(crate) mod auth;
pub(crate) mod client_connect;
pub(crate) mod client_control;
pub(crate) mod client_link;
pub(crate) mod client_status;
pub(crate) mod client_tun;
pub mod control;
pub mod external;
pub mod input;
pub mod internal;
pub mod multi;
pub mod output;
pub(crate) mod plugin_auth;
pub mod point_to_point;
pub mod schedule;
pub(crate) mod server;
pub mod server_tcp;
pub mod server_udp;
pub mod setup;
pub mod static_key;
pub mod status;

/// How a tunnel loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit the process with this status.
    Exit(u8),
    /// SIGHUP: re-read the configuration and start again.
    Reload,
}
