//! Zero-copy views of the inner packets the tunnel carries (what tun and tap
//! hand us, and what the XDP fast path unwraps): Ethernet, IPv4, IPv6, and
//! the `mssfix` clamp that edits TCP SYNs in place.
//!
//! # The contract, written once (smoltcp's `wire`)
//!
//! - A view wraps a buffer `T: AsRef<[u8]>` (`AsMut` too for the setters)
//!   and copies nothing. `new_checked` validates the lengths its accessors
//!   rely on and returns a [`PacketError`]; `new_unchecked` does not.
//! - **No accessor panics, on any input, checked or not**: each reads with
//!   bounds-checked `get`s and yields 0 / empty for bytes that are not
//!   there. The checks in `new_checked` make the values meaningful, not
//!   the code safe. Fuzz-style property tests in each module hold this.
//! - Nothing allocates: the views sit on the data path of every packet.
//! - Length fields are never trusted beyond what a check validated: which
//!   check a caller needs is stated on each constructor, because callers
//!   differ (routing reads only addresses; mssfix needs the whole packet).

pub mod checksum;
pub mod ethernet;
#[doc(hidden)]
pub mod fuzzing;
pub mod ipv4;
pub mod ipv6;
pub mod mssfix;

pub use ethernet::EthernetFrame;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 next-header number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Why a buffer is not the packet a view was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The buffer ends inside the header.
    #[error("packet truncated")]
    Truncated,
    /// The version nibble is not the view's IP version.
    #[error("wrong IP version")]
    BadVersion,
    /// The IPv4 header length (IHL) is below 20 or above the total length.
    #[error("bad IPv4 header length")]
    BadHeaderLen,
    /// The total (IPv4) or payload (IPv6) length runs past the buffer.
    #[error("length field exceeds the buffer")]
    BadLength,
}

/// The IP version nibble of `packet`, if it has a first byte.
pub fn ip_version(packet: &[u8]) -> Option<u8> {
    packet.first().map(|b| b >> 4)
}

/// Source and destination of an IPv4 or IPv6 packet whose header is whole
/// (the length fields are not consulted: routing reads addresses only).
pub fn ip_addrs(packet: &[u8]) -> Option<(std::net::IpAddr, std::net::IpAddr)> {
    match ip_version(packet)? {
        4 => {
            let ip = Ipv4Packet::new_header_checked(packet).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into()))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            Some((ip.src_addr().into(), ip.dst_addr().into()))
        }
        _ => None,
    }
}

/// Big-endian u16 at `at`, 0 past the end (the no-panic accessor rule).
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

/// `N` bytes at `at`, zeros past the end.
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every constructor and accessor of every view, on arbitrary bytes:
        /// none may panic, checked or unchecked.
        #[test]
        fn no_view_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            fuzzing::inner_packet(&b);
        }

        /// The same behind a valid-looking Ethernet + IP prefix, so the
        /// checked constructors succeed and the deeper accessors run.
        #[test]
        fn no_view_panics_behind_plausible_headers(
            v6 in any::<bool>(),
            tagged in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut b = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
            if tagged {
                b.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
            }
            b.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
            b.push(if v6 { 0x60 } else { 0x45 });
            b.extend_from_slice(&tail);
            fuzzing::inner_packet(&b);
            fuzzing::inner_packet(&b[14..]);
        }
    }
}
