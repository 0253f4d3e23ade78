//! Server mode logic: the sans-IO state the server loops
//! (`tunnel_server_udp` / `tunnel_server_tcp` analogues) glue sessions to.
//!
//! Everything here is a plain data structure: no sockets, no tokio, no
//! clock, no crypto. Time, when it matters, is passed in. The pieces:
//!
//! - [`pool`]: the `ifconfig-pool` / `ifconfig-ipv6-pool` address pool and
//!   its `ifconfig-pool-persist` file;
//! - [`peers`]: the peer table (peer-id, transport address, VPN address /
//!   `iroute` longest-prefix match) and the internal multiplexer's routing
//!   decision;
//! - [`ccd`]: `client-config-dir` files;
//! - [`push`]: a client's push list in 2.6's order.

pub mod ccd;
pub mod peers;
pub mod pool;
pub mod push;
