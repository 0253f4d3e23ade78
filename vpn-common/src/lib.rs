//! Types shared, byte for byte, by the XDP program (`vpn-ebpf`) and the daemon.
//!
//! Everything here is `#![no_std]`, `#[repr(C)]` and free of implicit padding,
//! so that the kernel side and the user side agree on every map key and value.
//! The layout tests at the bottom of each module pin sizes and offsets: a
//! change that moves a field fails them before it can reach a running kernel.

#![no_std]
#![deny(missing_docs)]

pub mod maps;
pub mod opcode;
pub mod stats;
