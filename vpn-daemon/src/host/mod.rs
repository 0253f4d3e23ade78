//! Effects on the host, shared by every mode: the tun device with its
//! addresses and routes, up/down and other hook scripts, DNS, the process
//! (signals, privileges, logging, syslog, sd_notify) and OpenSSL
//! providers. The loops in [`crate::tunnel`] call these; nothing here knows
//! about sessions or peers.

pub mod dns;
pub(crate) mod named_routes;
pub mod notify;
pub mod peer_info;
pub mod process;
pub mod providers;
pub mod resolve;
pub mod route_up;
pub mod routes;
pub mod scripts;
pub mod server_tun;
pub mod syslog;
pub mod tun;
