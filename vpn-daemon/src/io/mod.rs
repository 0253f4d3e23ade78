//! Everything that owns a file descriptor: sockets, tun, the XDP program and
//! its AF_XDP rings. The only layer allowed to read the clock (`clock`).

pub mod clock;
pub mod external;
pub mod files;
pub mod icmp6;
pub mod internal;
pub mod route;
pub mod wait;
pub mod xdp;

/// `mssfix` moved to the inner-packet views; the old path stays for callers.
pub use crate::packet::mssfix;
