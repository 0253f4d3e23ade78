//! An OpenVPN 2.6 compatible VPN daemon whose UDP data plane can be steered
//! by an XDP program into AF_XDP sockets.
//!
//! Layers (see `docs/architecture.md`): [`proto`] is the sans-IO protocol
//! core, [`config`] turns OpenVPN config files and flags into one typed
//! configuration, [`io`] owns every file descriptor (sockets, tun, XDP).

pub mod config;
pub mod io;
pub mod proto;
