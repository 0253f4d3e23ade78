//! IPv6 fixed headers (RFC 8200) of inner packets and of the fast path's
//! outer frames. Extension-header chains are not walked, as 2.6 walks
//! none: a view reports the first next header, and callers that look for
//! TCP or UDP behind it treat anything else as "not for us".
//!
//! ```text
//!  0       4               12                              31
//! +-------+---------------+--------------------------------+
//! |ver=6  | traffic class | flow label                     |
//! +-------+---------------+-------+------------------------+
//! | payload length                | next header| hop limit |  @4
//! +-------------------------------+------------+-----------+
//! | source address (16)                                    |  @8
//! | destination address (16)                               |  @24
//! +--------------------------------------------------------+  @40
//! ```

use std::net::Ipv6Addr;

use super::{PacketError, array, be16};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buf` without checks (accessors still never panic).
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` if it holds a whole fixed header of version 6. The
    /// payload length is not checked: see [`Self::check_payload_len`].
    pub fn new_checked(buf: T) -> Result<Self, PacketError> {
        let p = Self::new_unchecked(buf);
        if p.buf.as_ref().len() < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        if p.version() != 6 {
            return Err(PacketError::BadVersion);
        }
        Ok(p)
    }

    /// Whether the payload length stays within the buffer.
    pub fn check_payload_len(&self) -> Result<(), PacketError> {
        if HEADER_LEN + self.payload_len() > self.b().len() {
            return Err(PacketError::BadLength);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The version nibble.
    pub fn version(&self) -> u8 {
        self.b().first().map_or(0, |v| v >> 4)
    }

    /// The payload length field.
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.b(), 4))
    }

    /// The first next header (an extension header or the transport).
    pub fn next_header(&self) -> u8 {
        self.b().get(6).copied().unwrap_or(0)
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b().get(7).copied().unwrap_or(0)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.b(), 8))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.b(), 24))
    }

    /// The fixed header (as much of it as is there).
    pub fn header(&self) -> &[u8] {
        let b = self.b();
        b.get(..HEADER_LEN).unwrap_or(b)
    }

    /// The payload by the length field, cut to the bytes present.
    pub fn payload(&self) -> &[u8] {
        let b = self.b();
        let end = (HEADER_LEN + self.payload_len()).min(b.len());
        b.get(HEADER_LEN..end).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;

    fn udp6() -> Vec<u8> {
        let b = PacketBuilder::ipv6([0xfd; 16], [0x20; 16], 33).udp(1, 2);
        let mut p = Vec::new();
        b.write(&mut p, &[9; 5]).unwrap();
        p
    }

    #[test]
    fn reads_the_fixed_header() {
        let p = udp6();
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.payload_len(), 13);
        assert_eq!(ip.next_header(), super::super::IPPROTO_UDP);
        assert_eq!(ip.hop_limit(), 33);
        assert_eq!(ip.src_addr(), Ipv6Addr::from([0xfd; 16]));
        assert_eq!(ip.dst_addr(), Ipv6Addr::from([0x20; 16]));
        assert_eq!(ip.check_payload_len(), Ok(()));
        assert_eq!(ip.payload().len(), 13);
    }

    #[test]
    fn rejects_short_wrong_version_and_overlong_payload() {
        let p = udp6();
        assert_eq!(
            Ipv6Packet::new_checked(&p[..39]),
            Err(PacketError::Truncated)
        );
        let mut v4 = p.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]),
            Err(PacketError::BadVersion)
        );
        let cut = Ipv6Packet::new_checked(&p[..45]).unwrap();
        assert_eq!(cut.check_payload_len(), Err(PacketError::BadLength));
        assert_eq!(cut.payload().len(), 5);
    }

    #[test]
    fn reports_an_extension_header_not_what_is_behind_it() {
        let mut p = udp6();
        p[6] = 0; // hop-by-hop options first
        assert_eq!(Ipv6Packet::new_checked(&p[..]).unwrap().next_header(), 0);
    }
}
