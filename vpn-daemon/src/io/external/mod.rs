//! The external multiplexer's link side: the UDP socket (batched, GSO/GRO)
//! and the TCP stream (length-prefixed records). AF_XDP lives in `io::xdp`.

pub mod conn;
pub mod port_share;
pub mod proxy;
pub mod tcp;
pub mod udp;
