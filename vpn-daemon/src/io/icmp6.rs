//! `block-ipv6`: the ICMPv6 "no route to destination" answer 2.6 gives
//! instead of carrying an IPv6 packet (forward.c's
//! `ipv6_send_icmp_unreachable`), built from the packet it replaces.

use std::net::Ipv6Addr;

use crate::packet::{IPPROTO_ICMPV6, Ipv6Packet, checksum, ip_version};

const IPV6_HEADER: usize = 40;
const ICMP6_HEADER: usize = 8;
/// RFC 4443: the error with as much of the offending packet as fits in the
/// minimum IPv6 MTU.
const MAX_ICMPV6_LEN: usize = 1280;
const NEXT_HEADER_ICMPV6: u8 = IPPROTO_ICMPV6;
const DESTINATION_UNREACHABLE: u8 = 1;
const NO_ROUTE: u8 = 0;

/// The source 2.6 uses when no `ifconfig-ipv6` remote is configured.
pub const FAKE_SOURCE: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7);

/// Whether `pkt` is an IPv6 packet.
pub fn is_ipv6(pkt: &[u8]) -> bool {
    ip_version(pkt) == Some(6)
}

/// Writes into `out` the ICMPv6 destination unreachable (no route) that
/// answers the IPv6 packet `pkt`, from `src`; `tun_mtu` bounds it as in
/// 2.6. Returns false (and leaves `out` empty) when `pkt` is not a whole
/// IPv6 header.
pub fn no_route_reply(pkt: &[u8], src: Ipv6Addr, tun_mtu: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Ok(ip) = Ipv6Packet::new_checked(pkt) else {
        return false;
    };
    let hdr = ip.header();
    let head = IPV6_HEADER + ICMP6_HEADER;
    let room = MAX_ICMPV6_LEN.min(tun_mtu.saturating_sub(head));
    let quoted = &pkt[..pkt.len().min(room)];
    let icmp_len = ICMP6_HEADER + quoted.len();
    let Ok(payload_len) = u16::try_from(icmp_len) else {
        return false;
    };
    let dst = ip.src_addr().octets();
    // Version, traffic class, flow label and hop limit as in the packet
    // answered, as 2.6 copies them.
    out.extend_from_slice(&hdr[..4]);
    out.extend_from_slice(&payload_len.to_be_bytes());
    out.push(NEXT_HEADER_ICMPV6);
    out.push(ip.hop_limit());
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst);
    out.extend_from_slice(&[DESTINATION_UNREACHABLE, NO_ROUTE, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quoted);
    let sum = checksum(&src.octets(), &dst, &out[IPV6_HEADER..]);
    out[IPV6_HEADER + 2..IPV6_HEADER + 4].copy_from_slice(&sum.to_be_bytes());
    true
}

/// The ICMPv6 checksum over the pseudo-header and `body`.
fn checksum(src: &[u8; 16], dst: &[u8; 16], body: &[u8]) -> u16 {
    let mut s = checksum::sum(0, src);
    s = checksum::sum(s, dst);
    s = checksum::sum(s, &(body.len() as u32).to_be_bytes());
    s = checksum::sum(s, &[0, 0, 0, NEXT_HEADER_ICMPV6]);
    checksum::fold(checksum::sum(s, body))
}

#[cfg(test)]
mod tests {
    use etherparse::{Icmpv6Type, SlicedPacket, TransportSlice};

    use super::*;

    fn ping6(len: usize) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv6(
            "fd00::2".parse::<Ipv6Addr>().unwrap().octets(),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
            61,
        )
        .icmpv6_echo_request(7, 1);
        let payload = vec![0xAB; len];
        let mut v = Vec::new();
        b.write(&mut v, &payload).unwrap();
        v
    }

    #[test]
    fn answers_with_a_valid_no_route_error_quoting_the_packet() {
        let p = ping6(100);
        let mut out = Vec::new();
        assert!(no_route_reply(&p, FAKE_SOURCE, 1500, &mut out));
        let s = SlicedPacket::from_ip(&out).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
            panic!("not IPv6");
        };
        assert_eq!(ip.header().source_addr(), FAKE_SOURCE);
        assert_eq!(
            ip.header().destination_addr(),
            "fd00::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ip.header().hop_limit(), 61);
        let Some(TransportSlice::Icmpv6(icmp)) = &s.transport else {
            panic!("not ICMPv6");
        };
        assert!(matches!(
            icmp.icmp_type(),
            Icmpv6Type::DestinationUnreachable(_)
        ));
        assert_eq!(icmp.payload(), &p[..]);
        // The checksum etherparse computes equals ours.
        let want = icmp
            .header()
            .icmp_type
            .calc_checksum(
                ip.header().source(),
                ip.header().destination(),
                icmp.payload(),
            )
            .unwrap();
        assert_eq!(icmp.header().checksum, want);
    }

    #[test]
    fn quotes_at_most_1280_bytes_and_refuses_non_ipv6() {
        let p = ping6(3000);
        let mut out = Vec::new();
        assert!(no_route_reply(&p, FAKE_SOURCE, 9000, &mut out));
        assert_eq!(out.len(), MAX_ICMPV6_LEN + IPV6_HEADER + ICMP6_HEADER);
        assert!(!no_route_reply(&[0x45; 60], FAKE_SOURCE, 1500, &mut out));
        assert!(out.is_empty());
        assert!(!no_route_reply(&[0x60; 20], FAKE_SOURCE, 1500, &mut out));
    }
}
