//! The internal multiplexer's device side: the tun device and its queues.

pub mod tun;
