//! The XDP classifier as the daemon sees it: the embedded object, its
//! loader with the native → generic fallback ([`loader`]), the peer map the
//! sessions keep current ([`peer_map`]) and the AF_XDP sockets it steers
//! packets into ([`xsk`]).

pub mod counters;
pub mod fastpath;
pub mod frame;
pub mod iface;
pub mod loader;
pub mod netlink;
pub mod peer_map;
pub mod xsk;

/// The vpn-ebpf object, when `cargo xtask build-ebpf` ran before this build.
///
/// `None` means the binary was built without the BPF toolchain: the daemon
/// then uses the plain socket path unless an object is given at run time.
#[cfg(vpn_ebpf_embedded)]
pub static EMBEDDED_OBJECT: Option<&[u8]> = Some(aya::include_bytes_aligned!(concat!(
    env!("OUT_DIR"),
    "/vpn-ebpf.o"
)));

/// The vpn-ebpf object, when `cargo xtask build-ebpf` ran before this build.
///
/// `None` means the binary was built without the BPF toolchain: the daemon
/// then uses the plain socket path unless an object is given at run time.
#[cfg(not(vpn_ebpf_embedded))]
pub static EMBEDDED_OBJECT: Option<&[u8]> = None;
