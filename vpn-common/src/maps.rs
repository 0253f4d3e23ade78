//! Map names, keys and values of the XDP classifier.
//!
//! The daemon writes `PEERS`, `PORTS`, `CONFIG` and `XSKS`; the program only
//! reads them and writes `STATS`. No key material ever goes into a map: the
//! program steers packets, it never decrypts them.

/// Peer table: [`PeerKey`] -> [`PeerEntry`], one entry per established peer.
pub const MAP_PEERS: &str = "PEERS";
/// UDP ports the daemon listens on: [`PortKey`] -> `u32` (non-zero = ours).
pub const MAP_PORTS: &str = "PORTS";
/// Runtime switches: `Array<u32>` indexed by the `CONFIG_*` slots.
pub const MAP_CONFIG: &str = "CONFIG";
/// AF_XDP sockets by receive-queue index (`XskMap`).
pub const MAP_XSKS: &str = "XSKS";
/// Per-CPU counters: `PerCpuArray<u64>` indexed by [`crate::stats`].
pub const MAP_STATS: &str = "STATS";
/// Name of the XDP program inside the object.
pub const PROGRAM_NAME: &str = "vpn_xdp";

/// Capacity of `PEERS`; OpenVPN's default `max-clients` is 1024, we allow more.
pub const MAX_PEERS: u32 = 65_536;
/// Capacity of `PORTS`.
pub const MAX_PORTS: u32 = 16;
/// Capacity of `XSKS`: one slot per receive queue.
pub const MAX_QUEUES: u32 = 256;

/// `CONFIG` slot: non-zero drops P_DATA_V2 packets whose peer-id is unknown.
pub const CONFIG_DROP_UNKNOWN_PEER: u32 = 0;
/// Number of `CONFIG` slots.
pub const CONFIG_SLOTS: u32 = 4;

/// Address family tag stored in [`PeerEntry::family`].
pub const FAMILY_V4: u8 = 4;
/// Address family tag stored in [`PeerEntry::family`].
pub const FAMILY_V6: u8 = 6;

/// Key of `PEERS`: the 24-bit OpenVPN peer-id, in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// Peer-id as assigned by the server (`0..=0xfffffe`).
    pub peer_id: u32,
}

/// Value of `PEERS`: where an established peer's packets must come from.
///
/// ```text
///  0                16      18     19     20
/// +----------------+-------+------+------+
/// | addr (16)      | port  |family|flags |
/// +----------------+-------+------+------+
/// ```
/// An IPv4 address occupies `addr[0..4]`, the rest is zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerEntry {
    /// Source address, network byte order.
    pub addr: [u8; 16],
    /// Source UDP port, network byte order (as on the wire).
    pub port: u16,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Reserved, zero.
    pub flags: u8,
}

impl PeerEntry {
    /// Entry for an IPv4 peer; `port` is in host byte order.
    pub const fn v4(addr: [u8; 4], port: u16) -> Self {
        let mut a = [0u8; 16];
        a[0] = addr[0];
        a[1] = addr[1];
        a[2] = addr[2];
        a[3] = addr[3];
        Self {
            addr: a,
            port: port.to_be(),
            family: FAMILY_V4,
            flags: 0,
        }
    }

    /// Entry for an IPv6 peer; `port` is in host byte order.
    pub const fn v6(addr: [u8; 16], port: u16) -> Self {
        Self {
            addr,
            port: port.to_be(),
            family: FAMILY_V6,
            flags: 0,
        }
    }
}

/// Key of `PORTS`: a UDP destination port in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortKey {
    /// The port.
    pub port: u16,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), Copy, every bit pattern valid, no padding (see layout tests).
    unsafe impl aya::Pod for super::PeerKey {}
    // SAFETY: as above; 20 bytes, align 2, no padding.
    unsafe impl aya::Pod for super::PeerEntry {}
    // SAFETY: as above; 2 bytes.
    unsafe impl aya::Pod for super::PortKey {}
}

#[cfg(test)]
mod tests {
    use core::mem::{align_of, offset_of, size_of};

    use super::*;

    #[test]
    fn peer_key_is_four_bytes() {
        assert_eq!(size_of::<PeerKey>(), 4);
        assert_eq!(align_of::<PeerKey>(), 4);
    }

    #[test]
    fn peer_entry_has_no_padding() {
        assert_eq!(size_of::<PeerEntry>(), 20);
        assert_eq!(align_of::<PeerEntry>(), 2);
        assert_eq!(offset_of!(PeerEntry, addr), 0);
        assert_eq!(offset_of!(PeerEntry, port), 16);
        assert_eq!(offset_of!(PeerEntry, family), 18);
        assert_eq!(offset_of!(PeerEntry, flags), 19);
        // Fields add up to the size: nothing implicit in between or at the end.
        assert_eq!(16 + 2 + 1 + 1, size_of::<PeerEntry>());
    }

    #[test]
    fn port_key_is_two_bytes() {
        assert_eq!(size_of::<PortKey>(), 2);
        assert_eq!(align_of::<PortKey>(), 2);
    }

    #[test]
    fn peer_entry_port_sits_on_its_natural_alignment() {
        // The XDP program reads `port` as one u16 load; an odd offset would
        // be an unaligned map-value access.
        assert_eq!(offset_of!(PeerEntry, port) % align_of::<u16>(), 0);
    }

    #[test]
    fn v6_entry_keeps_all_sixteen_address_bytes() {
        let addr: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        let e = PeerEntry::v6(addr, 51820);
        assert_eq!(e.addr, addr);
        assert_eq!(e.port.to_ne_bytes(), 51820u16.to_be_bytes());
        assert_eq!(e.family, FAMILY_V6);
    }

    #[test]
    fn v4_entry_stores_port_in_network_order() {
        let e = PeerEntry::v4([10, 0, 0, 1], 1194);
        assert_eq!(e.port.to_ne_bytes(), 1194u16.to_be_bytes());
        assert_eq!(&e.addr[..4], &[10, 0, 0, 1]);
        assert!(e.addr[4..].iter().all(|&b| b == 0));
        assert_eq!(e.family, FAMILY_V4);
    }
}
