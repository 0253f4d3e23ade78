//! An OpenVPN 2.6 compatible VPN daemon whose UDP data plane can be steered
//! by an XDP program into AF_XDP sockets.
//!
//! Layers, each using only those before it (see `docs/architecture.md`):
//! [`proto`] is the sans-IO protocol core; [`config`] turns OpenVPN config
//! files and flags into one typed configuration; [`io`] owns every file
//! descriptor (sockets, tun, XDP, held files) and [`packet`] holds views
//! of inner packets (IPv4/IPv6, mssfix); [`host`] makes the effects
//! on the host (tun addresses, routes, scripts, DNS, the process);
//! [`server`] and [`client`] hold the pure mode logic (pool, peers, push,
//! ccd; the remote walk); [`mgmt`] renders status and speaks the
//! management protocol; [`tunnel`] is OpenVPN's main event loop, one
//! driver per mode; [`daemon`] starts the process and picks the driver.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod io;
pub mod mgmt;
pub mod packet;
pub mod plugin;
pub mod proto;
pub mod server;
pub mod tunnel;

#[cfg(test)]
mod test_alloc;
