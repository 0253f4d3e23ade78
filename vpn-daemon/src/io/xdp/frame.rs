//! The link, network and transport headers of fast-path frames: parsing
//! what the classifier redirected (Ethernet, at most one 802.1Q tag, IPv4
//! or IPv6, UDP) and writing the same headers in front of a payload we
//! send, lengths and checksums included.
//!
//! ```text
//!  Ethernet           [802.1Q]        IPv4 (IHL*4) / IPv6 (40)       UDP (8)      payload
//! +-------+-------+----+-----+------+-----------------------------+-------------+----------
//! | dst 6 | src 6 |8100| TCI | type | ver/len/id/frag/ttl/proto/  | sport dport | OpenVPN
//! |       |       |    |     |      | csum/src/dst                | len  csum   | packet
//! +-------+-------+----+-----+------+-----------------------------+-------------+----------
//! ```
//!
//! Nothing here trusts a length field: every one is checked against the
//! bytes present, and a frame that does not add up is a [`Malformed`]
//! reason, never a panic.

use std::{
    net::{IpAddr, SocketAddr},
    ops::Range,
};

use crate::packet::{
    EthernetFrame, IPPROTO_UDP, Ipv4Packet, Ipv6Packet, PacketError,
    checksum::{fold as checksum_fold, sum},
    ethernet::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN},
    ipv4, ipv6,
};

const ETH_LEN: usize = ethernet::HEADER_LEN;
const VLAN_LEN: usize = ethernet::VLAN_TAG_LEN;
const IPV4_LEN: usize = ipv4::MIN_HEADER_LEN;
const IPV6_LEN: usize = ipv6::HEADER_LEN;
const UDP_LEN: usize = 8;
/// TTL / hop limit of the packets we build (Linux's default).
const TTL: u8 = 64;

/// Why a redirected frame was not handed out (counted, then recycled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The frame ends inside a header.
    Truncated,
    /// Neither IPv4 nor IPv6 (after at most one VLAN tag).
    NotIp,
    /// IPv4 with a bad version/IHL/total length, or IPv6 whose payload
    /// length exceeds the frame.
    BadIpHeader,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// IPv4 fragment (the kernel reassembles those; never ours to take).
    Fragment,
    /// Not UDP (or an IPv6 extension header first).
    NotUdp,
    /// UDP length shorter than its header or past the IP payload.
    BadUdpLength,
}

impl Malformed {
    /// Every reason, in counter order.
    pub const ALL: [Malformed; 7] = [
        Malformed::Truncated,
        Malformed::NotIp,
        Malformed::BadIpHeader,
        Malformed::BadIpChecksum,
        Malformed::Fragment,
        Malformed::NotUdp,
        Malformed::BadUdpLength,
    ];

    /// Counter name (status output: no spaces, commas or tabs).
    pub fn name(self) -> &'static str {
        match self {
            Malformed::Truncated => "malformed_truncated",
            Malformed::NotIp => "malformed_not_ip",
            Malformed::BadIpHeader => "malformed_ip_header",
            Malformed::BadIpChecksum => "malformed_ip_checksum",
            Malformed::Fragment => "malformed_fragment",
            Malformed::NotUdp => "malformed_not_udp",
            Malformed::BadUdpLength => "malformed_udp_length",
        }
    }

    /// Index into a counter array of [`Malformed::ALL`]'s length.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A parsed UDP frame: where it came from, where it went, and where its
/// payload lies in the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFrame {
    /// Destination MAC (ours).
    pub dst_mac: [u8; 6],
    /// Source MAC (the peer, or the router in front of it).
    pub src_mac: [u8; 6],
    /// The 802.1Q TCI (priority, DEI, VLAN id), when tagged.
    pub vlan: Option<u16>,
    /// Source IP and port.
    pub src: SocketAddr,
    /// Destination IP and port.
    pub dst: SocketAddr,
    /// The UDP payload's bytes within the frame (Ethernet padding cut).
    pub payload: Range<usize>,
}

fn be16(b: &[u8], at: usize) -> Result<u16, Malformed> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(Malformed::Truncated)
}

/// Parses Ethernet, one optional VLAN tag, IPv4 (any IHL, no fragments,
/// header checksum verified) or IPv6 (UDP as the first next header), and
/// UDP. The UDP checksum is not verified: the OpenVPN packet inside carries
/// its own authentication tag, checked before anything is used.
pub fn parse(frame: &[u8]) -> Result<UdpFrame, Malformed> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Malformed::Truncated)?;
    let (dst_mac, src_mac) = (eth.dst_addr(), eth.src_addr());
    let mut ethertype = eth.ethertype();
    let mut l3 = ETH_LEN;
    let mut vlan = None;
    if ethertype == ETHERTYPE_VLAN {
        if frame.len() < ETH_LEN + VLAN_LEN {
            return Err(Malformed::Truncated);
        }
        vlan = eth.vlan_tci();
        ethertype = eth.inner_ethertype();
        l3 += VLAN_LEN;
    }
    let ip = frame.get(l3..).ok_or(Malformed::Truncated)?;
    let (src_ip, dst_ip, l4, l4_end) = match ethertype {
        ETHERTYPE_IPV4 => {
            let h = Ipv4Packet::new_checked(ip).map_err(|e| match e {
                PacketError::Truncated => Malformed::Truncated,
                _ => Malformed::BadIpHeader,
            })?;
            if !h.verify_checksum() {
                return Err(Malformed::BadIpChecksum);
            }
            if h.is_fragment() {
                return Err(Malformed::Fragment);
            }
            if h.protocol() != IPPROTO_UDP {
                return Err(Malformed::NotUdp);
            }
            (
                IpAddr::V4(h.src_addr()),
                IpAddr::V4(h.dst_addr()),
                l3 + h.header_len(),
                l3 + h.total_len(),
            )
        }
        ETHERTYPE_IPV6 => {
            let h = Ipv6Packet::new_checked(ip).map_err(|e| match e {
                PacketError::Truncated => Malformed::Truncated,
                _ => Malformed::BadIpHeader,
            })?;
            h.check_payload_len().map_err(|_| Malformed::BadIpHeader)?;
            // The first next header must be UDP: extension headers are
            // not walked (the classifier does not either).
            if h.next_header() != IPPROTO_UDP {
                return Err(Malformed::NotUdp);
            }
            (
                IpAddr::V6(h.src_addr()),
                IpAddr::V6(h.dst_addr()),
                l3 + IPV6_LEN,
                l3 + IPV6_LEN + h.payload_len(),
            )
        }
        _ => return Err(Malformed::NotIp),
    };
    let sport = be16(frame, l4)?;
    let dport = be16(frame, l4 + 2)?;
    let ulen = usize::from(be16(frame, l4 + 4)?);
    if l4 + UDP_LEN > l4_end {
        return Err(Malformed::Truncated);
    }
    if ulen < UDP_LEN || l4 + ulen > l4_end {
        return Err(Malformed::BadUdpLength);
    }
    Ok(UdpFrame {
        dst_mac,
        src_mac,
        vlan,
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
        payload: l4 + UDP_LEN..l4 + ulen,
    })
}

/// What it takes to put a datagram on the wire toward one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Path {
    /// Our interface's MAC (source of the frames we build).
    pub src_mac: [u8; 6],
    /// The next hop's MAC (the peer or its router).
    pub dst_mac: [u8; 6],
    /// 802.1Q TCI to tag with, when the peer's frames were tagged.
    pub vlan: Option<u16>,
    /// Our IP and port (same family as `dst`).
    pub src: SocketAddr,
    /// The peer's IP and port.
    pub dst: SocketAddr,
}

impl L2Path {
    /// Bytes of headers in front of the payload.
    pub fn header_len(&self) -> usize {
        let ip = if self.dst.is_ipv4() {
            IPV4_LEN
        } else {
            IPV6_LEN
        };
        ETH_LEN + if self.vlan.is_some() { VLAN_LEN } else { 0 } + ip + UDP_LEN
    }
}

/// Errors of [`write_headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Source and destination are of different families.
    #[error("source and destination address families differ")]
    MixedFamilies,
    /// The buffer is shorter than headers plus payload.
    #[error("frame buffer too small")]
    TooSmall,
    /// The payload does not fit the 16-bit length fields.
    #[error("payload too long for one datagram")]
    TooLong,
}

/// Writes the headers of `path` into `frame[..path.header_len()]` for the
/// `payload_len` bytes that already sit right behind them, with both
/// lengths and checksums. `ip_id` is the IPv4 identification (unused for
/// IPv6). Returns the frame length.
pub fn write_headers(
    frame: &mut [u8],
    path: &L2Path,
    payload_len: usize,
    ip_id: u16,
) -> Result<usize, BuildError> {
    let hdr = path.header_len();
    let total = hdr.checked_add(payload_len).ok_or(BuildError::TooLong)?;
    let frame = frame.get_mut(..total).ok_or(BuildError::TooSmall)?;
    let udp_len = u16::try_from(UDP_LEN + payload_len).map_err(|_| BuildError::TooLong)?;

    let (eth, rest) = frame.split_at_mut(ETH_LEN);
    eth[0..6].copy_from_slice(&path.dst_mac);
    eth[6..12].copy_from_slice(&path.src_mac);
    let l3type = if path.dst.is_ipv4() {
        ETHERTYPE_IPV4
    } else {
        ETHERTYPE_IPV6
    };
    let rest = match path.vlan {
        Some(tci) => {
            eth[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            let (tag, rest) = rest.split_at_mut(VLAN_LEN);
            tag[0..2].copy_from_slice(&tci.to_be_bytes());
            tag[2..4].copy_from_slice(&l3type.to_be_bytes());
            rest
        }
        None => {
            eth[12..14].copy_from_slice(&l3type.to_be_bytes());
            rest
        }
    };
    let (ip_hdr, rest) = match (path.src.ip(), path.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (h, rest) = rest.split_at_mut(IPV4_LEN);
            let total_len =
                u16::try_from(IPV4_LEN + usize::from(udp_len)).map_err(|_| BuildError::TooLong)?;
            h[0] = 0x45;
            h[1] = 0;
            h[2..4].copy_from_slice(&total_len.to_be_bytes());
            h[4..6].copy_from_slice(&ip_id.to_be_bytes());
            // No DF: as the kernel sends UDP when path MTU discovery is not
            // forced; fragments then need distinct ids, hence `ip_id`.
            h[6..8].copy_from_slice(&[0, 0]);
            h[8] = TTL;
            h[9] = IPPROTO_UDP;
            h[10..12].copy_from_slice(&[0, 0]);
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = checksum_fold(sum(0, h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            (IpPseudo::V4(s.octets(), d.octets()), rest)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let (h, rest) = rest.split_at_mut(IPV6_LEN);
            h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
            h[4..6].copy_from_slice(&udp_len.to_be_bytes());
            h[6] = IPPROTO_UDP;
            h[7] = TTL;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            (IpPseudo::V6(s.octets(), d.octets()), rest)
        }
        _ => return Err(BuildError::MixedFamilies),
    };
    let (udp, payload) = rest.split_at_mut(UDP_LEN);
    udp[0..2].copy_from_slice(&path.src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&path.dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    // Pseudo-header (addresses, protocol, UDP length), then UDP header and
    // payload. IPv6 requires the checksum; for IPv4 it is cheap insurance.
    let mut s = match &ip_hdr {
        IpPseudo::V4(a, b) => sum(sum(0, a), b),
        IpPseudo::V6(a, b) => sum(sum(0, a), b),
    };
    s += u64::from(IPPROTO_UDP) + u64::from(udp_len);
    s = sum(s, udp);
    s = sum(s, payload);
    let mut c = checksum_fold(s);
    if c == 0 {
        // Zero means "no checksum" in UDP; all ones is the same value.
        c = 0xffff;
    }
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    Ok(total)
}

enum IpPseudo {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId};

    use super::*;

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn build(path: &L2Path, payload: &[u8]) -> Vec<u8> {
        let hdr = path.header_len();
        let mut buf = vec![0u8; hdr + payload.len() + 7];
        buf[hdr..hdr + payload.len()].copy_from_slice(payload);
        let n = write_headers(&mut buf, path, payload.len(), 0x1234).unwrap();
        buf.truncate(n);
        buf
    }

    /// etherparse checks what we wrote: lengths, and both checksums
    /// recomputed independently.
    fn check_with_etherparse(frame: &[u8], path: &L2Path, payload: &[u8]) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        match (p.net.unwrap(), path.dst.ip(), path.src.ip()) {
            (NetSlice::Ipv4(ip), IpAddr::V4(d), IpAddr::V4(s)) => {
                let h = ip.header();
                assert_eq!(h.destination_addr(), d);
                assert_eq!(h.source_addr(), s);
                assert_eq!(
                    usize::from(h.total_len()),
                    frame.len() - (path.header_len() - 28)
                );
                let hh = h.to_header();
                assert_eq!(hh.header_checksum, hh.calc_header_checksum());
                let Some(TransportSlice::Udp(u)) = p.transport else {
                    panic!("udp")
                };
                assert_eq!(u.payload(), payload);
                assert_eq!(u.source_port(), path.src.port());
                assert_eq!(u.destination_port(), path.dst.port());
                let want = u.to_header().calc_checksum_ipv4(&hh, payload).unwrap();
                assert_eq!(u.checksum(), want);
            }
            (NetSlice::Ipv6(ip), IpAddr::V6(d), IpAddr::V6(s)) => {
                let h = ip.header().to_header();
                assert_eq!(Ipv6Addr::from(h.destination), d);
                assert_eq!(Ipv6Addr::from(h.source), s);
                assert_eq!(usize::from(h.payload_length), 8 + payload.len());
                let Some(TransportSlice::Udp(u)) = p.transport else {
                    panic!("udp")
                };
                assert_eq!(u.payload(), payload);
                let want = u.to_header().calc_checksum_ipv6(&h, payload).unwrap();
                assert_eq!(u.checksum(), want);
            }
            other => panic!("wrong family {other:?}"),
        }
        match (p.vlan, path.vlan) {
            (None, None) => {}
            (Some(etherparse::VlanSlice::SingleVlan(v)), Some(tci)) => {
                assert_eq!(v.to_header().vlan_id.value(), tci & 0x0fff);
                assert_eq!(v.to_header().pcp.value(), (tci >> 13) as u8);
            }
            other => panic!("VLAN tag mismatch {other:?}"),
        }
    }

    fn paths() -> Vec<L2Path> {
        let v4 = L2Path {
            src_mac: A,
            dst_mac: B,
            vlan: None,
            src: sa("10.0.0.1:1194"),
            dst: sa("10.0.0.2:40000"),
        };
        let v6 = L2Path {
            src: sa("[fd00::1]:1194"),
            dst: sa("[fd00::2]:40000"),
            ..v4
        };
        vec![
            v4,
            v6,
            L2Path {
                vlan: Some(0x2064),
                ..v4
            },
            L2Path {
                vlan: Some(7),
                ..v6
            },
        ]
    }

    #[test]
    fn built_headers_verify_with_etherparse_and_parse_back() {
        for path in paths() {
            for len in [0usize, 1, 2, 3, 17, 1400] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let f = build(&path, &payload);
                assert_eq!(f.len(), path.header_len() + len);
                check_with_etherparse(&f, &path, &payload);
                let p = parse(&f).unwrap();
                assert_eq!(p.src, path.src);
                assert_eq!(p.dst, path.dst);
                assert_eq!(p.src_mac, path.src_mac);
                assert_eq!(p.dst_mac, path.dst_mac);
                assert_eq!(p.vlan, path.vlan);
                assert_eq!(&f[p.payload.clone()], &payload[..]);
            }
        }
    }

    #[test]
    fn parses_what_etherparse_builds_including_options_and_padding() {
        // IPv4 with options (IHL 6), tagged.
        let mut h = etherparse::Ipv4Header::new(
            12,
            64,
            etherparse::IpNumber::UDP,
            [1, 2, 3, 4],
            [5, 6, 7, 8],
        )
        .unwrap();
        h.options = [1u8, 1, 1, 0][..].try_into().unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(B, A)
            .single_vlan(VlanId::try_new(5).unwrap())
            .ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
            .udp(5000, 1194)
            .write(&mut f, b"\x48hello")
            .unwrap();
        // Ethernet padding behind the IP packet must not become payload.
        f.extend_from_slice(&[0u8; 9]);
        let p = parse(&f).unwrap();
        assert_eq!(p.src, sa("1.2.3.4:5000"));
        assert_eq!(p.dst, sa("5.6.7.8:1194"));
        assert_eq!(p.vlan, Some(5));
        assert_eq!(&f[p.payload], b"\x48hello");
    }

    #[test]
    fn truncated_frames_are_counted_never_panic() {
        for path in paths() {
            let f = build(&path, b"0123456789");
            for cut in 0..f.len() - 10 {
                let r = parse(&f[..cut]);
                assert!(r.is_err(), "cut at {cut} of {path:?}");
            }
        }
    }

    #[test]
    fn malformed_headers_have_reasons() {
        let v4 = paths()[0];
        let good = build(&v4, b"payload");
        let mut f = good.clone();
        f[12] = 0x08;
        f[13] = 0x06; // ARP
        assert_eq!(parse(&f), Err(Malformed::NotIp));
        let mut f = good.clone();
        f[14 + 10] ^= 0xff; // header checksum
        assert_eq!(parse(&f), Err(Malformed::BadIpChecksum));
        let mut f = good.clone();
        f[14] = 0x44; // IHL 4
        assert_eq!(parse(&f), Err(Malformed::BadIpHeader));
        let mut f = good.clone();
        f[14 + 3] = f[14 + 3].wrapping_add(50); // total length past the frame
        assert_eq!(parse(&f), Err(Malformed::BadIpHeader));
        // A fragment (MF set) with a recomputed checksum.
        let mut f = good.clone();
        f[14 + 6] = 0x20;
        f[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
        let c = checksum_fold(sum(0, &f[14..34]));
        f[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&f), Err(Malformed::Fragment));
        let mut f = good.clone();
        f[14 + 9] = 6; // TCP
        f[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
        let c = checksum_fold(sum(0, &f[14..34]));
        f[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&f), Err(Malformed::NotUdp));
        let mut f = good.clone();
        f[34 + 4..34 + 6].copy_from_slice(&7u16.to_be_bytes()); // UDP len < 8
        assert_eq!(parse(&f), Err(Malformed::BadUdpLength));
        let mut f = good;
        f[34 + 4..34 + 6].copy_from_slice(&100u16.to_be_bytes()); // past IP
        assert_eq!(parse(&f), Err(Malformed::BadUdpLength));
        let v6 = build(&paths()[1], b"x");
        let mut f = v6.clone();
        f[14 + 6] = 0; // hop-by-hop extension header first
        assert_eq!(parse(&f), Err(Malformed::NotUdp));
        let mut f = v6;
        f[14] = 0x40; // version 4 in an IPv6 ethertype
        assert_eq!(parse(&f), Err(Malformed::BadIpHeader));
    }

    #[test]
    fn a_header_longer_than_its_packet_is_a_bad_header_before_a_truncation() {
        // IHL 24 with total length 22, cut at 22 bytes of IP: the length
        // fields disagree (BadIpHeader) before the header is found missing.
        let good = build(&paths()[0], b"payload");
        let mut f = good[..14 + 22].to_vec();
        f[14] = 0x46;
        f[14 + 2..14 + 4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(parse(&f), Err(Malformed::BadIpHeader));
        f[14 + 2..14 + 4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(parse(&f), Err(Malformed::Truncated));
        // A tag whose inner EtherType is cut off.
        let mut t = good[..16].to_vec();
        t[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(parse(&t), Err(Malformed::Truncated));
    }

    #[test]
    fn build_refuses_what_cannot_be_sent() {
        let mut p = paths()[0];
        let mut buf = vec![0u8; 100];
        assert_eq!(
            write_headers(&mut buf, &p, 100, 0),
            Err(BuildError::TooSmall)
        );
        p.dst = sa("[fd00::2]:1");
        assert_eq!(
            write_headers(&mut buf, &p, 0, 0),
            Err(BuildError::MixedFamilies)
        );
    }

    #[test]
    fn checksum_matches_the_rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum_fold(sum(0, &data)), !0xddf2);
        // Odd length: the last byte is the high half of a zero-padded word.
        assert_eq!(checksum_fold(sum(0, &[0x12])), !0x1200);
    }

    #[test]
    fn malformed_names_are_status_safe_and_indexed() {
        for (i, m) in Malformed::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
            assert!(!m.name().contains([',', '\t', ' ']));
        }
    }
}
