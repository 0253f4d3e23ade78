//! IPv4 headers (RFC 791) of inner packets and of the fast path's outer
//! frames.
//!
//! ```text
//!  0       4       8              16      19              31
//! +-------+-------+---------------+-------------------------+
//! |ver=4  |IHL    | DSCP/ECN      | total length            |
//! +-------+-------+---------------+-----+-------------------+
//! | identification                |flags| fragment offset   |  @4
//! +---------------+---------------+-----+-------------------+
//! | TTL           | protocol      | header checksum         |  @8
//! +---------------+---------------+-------------------------+
//! | source address                                          |  @12
//! | destination address                                     |  @16
//! | options (IHL*4 - 20 bytes) ...                          |  @20
//! +---------------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use super::{PacketError, array, be16, checksum};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buf` without checks (accessors still never panic).
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps a whole IPv4 packet: version 4, IHL at least 20 and within the
    /// total length, header present, total length within `buf` (trailing
    /// bytes, e.g. Ethernet padding, are allowed). The checks run in the
    /// order the fast path's drop counters have always reported them.
    pub fn new_checked(buf: T) -> Result<Self, PacketError> {
        let p = Self::new_unchecked(buf);
        let len = p.buf.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        if p.version() != 4 {
            return Err(PacketError::BadVersion);
        }
        let (ihl, total) = (p.header_len(), p.total_len());
        if ihl < MIN_HEADER_LEN || total < ihl {
            return Err(PacketError::BadHeaderLen);
        }
        if len < ihl {
            return Err(PacketError::Truncated);
        }
        if total > len {
            return Err(PacketError::BadLength);
        }
        Ok(p)
    }

    /// Wraps a buffer whose IPv4 header (options included) is whole,
    /// without consulting the total length: for callers that read header
    /// fields only (routing by address; tun hands whole packets anyway).
    pub fn new_header_checked(buf: T) -> Result<Self, PacketError> {
        let p = Self::new_unchecked(buf);
        let len = p.buf.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        if p.version() != 4 {
            return Err(PacketError::BadVersion);
        }
        let ihl = p.header_len();
        if ihl < MIN_HEADER_LEN {
            return Err(PacketError::BadHeaderLen);
        }
        if len < ihl {
            return Err(PacketError::Truncated);
        }
        Ok(p)
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

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        self.b().first().map_or(0, |v| usize::from(v & 0x0f) * 4)
    }

    /// The total length field.
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.b(), 2))
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        be16(self.b(), 4)
    }

    /// Flags and fragment offset, as on the wire.
    pub fn frag_field(&self) -> u16 {
        be16(self.b(), 6)
    }

    /// Offset zero: the first (or only) fragment, the one that carries the
    /// transport header.
    pub fn is_first_fragment(&self) -> bool {
        self.frag_field() & 0x1fff == 0
    }

    /// Part of a fragmented datagram: more-fragments set or a non-zero
    /// offset.
    pub fn is_fragment(&self) -> bool {
        self.frag_field() & 0x3fff != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b().get(8).copied().unwrap_or(0)
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.b().get(9).copied().unwrap_or(0)
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.b(), 10)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.b(), 12))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.b(), 16))
    }

    /// The header, options included (as much of it as is there).
    pub fn header(&self) -> &[u8] {
        let b = self.b();
        b.get(..self.header_len()).unwrap_or(b)
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(0, self.header())) == 0
    }

    /// The payload: from the end of the header to the total length, cut to
    /// the bytes present.
    pub fn payload(&self) -> &[u8] {
        let b = self.b();
        let start = self.header_len().min(b.len());
        let end = self.total_len().clamp(start, b.len());
        b.get(start..end).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;

    fn udp4(options: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 8, 0, 2], [10, 8, 0, 1], 61).udp(1000, 53);
        let mut p = Vec::new();
        b.write(&mut p, &[1, 2, 3, 4]).unwrap();
        if !options.is_empty() {
            // Re-lay the header with options and fix IHL, total length and
            // the checksum, as a sender with options would.
            let mut h = p[..20].to_vec();
            h.extend_from_slice(options);
            h[0] = 0x40 | (h.len() / 4) as u8;
            let total = (h.len() + p.len() - 20) as u16;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::fold(checksum::sum(0, &h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(&p[20..]);
            p = h;
        }
        p
    }

    #[test]
    fn reads_every_field_of_a_plain_header() {
        let p = udp4(&[]);
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.total_len(), 32);
        assert_eq!(ip.ttl(), 61);
        assert_eq!(ip.protocol(), super::super::IPPROTO_UDP);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 8, 0, 2));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(10, 8, 0, 1));
        assert!(ip.verify_checksum());
        assert!(ip.is_first_fragment() && !ip.is_fragment());
        assert_eq!(ip.payload().len(), 12);
    }

    #[test]
    fn honours_options_and_ignores_trailing_padding() {
        let mut p = udp4(&[1, 1, 1, 0]);
        p.extend_from_slice(&[0; 6]);
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.header_len(), 24);
        assert!(ip.verify_checksum());
        assert_eq!(
            ip.payload().len(),
            12,
            "padding past total length is not payload"
        );
    }

    #[test]
    fn rejects_truncated_and_malformed_headers_in_counter_order() {
        let p = udp4(&[]);
        let check = |b: &[u8]| Ipv4Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&p[..19]), Err(PacketError::Truncated));
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert_eq!(check(&v6), Err(PacketError::BadVersion));
        let mut ihl = p.clone();
        ihl[0] = 0x44;
        assert_eq!(check(&ihl), Err(PacketError::BadHeaderLen));
        let mut long = p.clone();
        long[3] = 200;
        assert_eq!(check(&long), Err(PacketError::BadLength));
        // IHL 24 but total 22: the header length is wrong before anything
        // is missing.
        let mut short = p[..22].to_vec();
        short[0] = 0x46;
        short[2..4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(check(&short), Err(PacketError::BadHeaderLen));
        short[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(check(&short), Err(PacketError::Truncated));
        let mut bad_sum = p.clone();
        bad_sum[8] ^= 1;
        assert!(
            !Ipv4Packet::new_checked(&bad_sum[..])
                .unwrap()
                .verify_checksum()
        );
    }

    #[test]
    fn header_check_ignores_the_total_length() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        let ip = Ipv4Packet::new_header_checked(&p[..]).unwrap();
        assert_eq!(ip.total_len(), 0);
        assert_eq!(ip.payload(), &[] as &[u8]);
        assert!(Ipv4Packet::new_checked(&p[..]).is_err());
        p[0] = 0x46;
        assert_eq!(
            Ipv4Packet::new_header_checked(&p[..]),
            Err(PacketError::Truncated)
        );
    }

    #[test]
    fn fragment_flags() {
        let mut p = udp4(&[]);
        p[6] = 0x20; // more fragments, offset 0
        let ip = Ipv4Packet::new_unchecked(&p[..]);
        assert!(ip.is_first_fragment() && ip.is_fragment());
        p[6] = 0x40; // don't fragment
        assert!(!Ipv4Packet::new_unchecked(&p[..]).is_fragment());
        p[7] = 1;
        assert!(!Ipv4Packet::new_unchecked(&p[..]).is_first_fragment());
    }
}
