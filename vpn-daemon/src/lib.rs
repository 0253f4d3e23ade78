//! An OpenVPN 2.6 compatible VPN daemon whose UDP data plane can be steered
//! by an XDP program into AF_XDP sockets.
//!
//! Layers (see `docs/architecture.md`): [`proto`] is the sans-IO protocol
//! core, [`config`] turns OpenVPN config files and flags into one typed
//! configuration, [`io`] owns every file descriptor (sockets, tun, XDP),
//! [`packet`] holds zero-copy views of inner packets (IPv4/IPv6, mssfix),
//! [`server`] holds the server's mode logic (pool, peers, push, ccd),
//! [`mgmt`] the status output and management protocol, [`scripts`] runs
//! OpenVPN-style hook scripts.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod io;
pub mod mgmt;
pub mod packet;
pub mod plugin;
pub mod proto;
pub mod scripts;
pub mod server;
