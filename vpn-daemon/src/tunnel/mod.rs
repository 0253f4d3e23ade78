//! OpenVPN's main event loop, one file per part: the drivers of the three
//! modes ([`point_to_point`], [`server_udp`], [`server_tcp`], and the
//! static-key [`static_key`]) compose the multi-client state ([`multi`])
//! and the shared set-up ([`setup`]: configuration to session settings).

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
mod server;
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
