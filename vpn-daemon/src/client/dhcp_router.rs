//! `route-gateway dhcp` on a tap client (2.6 `dhcp.c`): DHCP replies from
//! the bridged LAN going to the tap device lose their router options (so
//! the client's own DHCP client does not route everything via the LAN),
//! and the router of a DHCPACK becomes the VPN gateway that routes use.
//!
//! ```text
//!  Ethernet (14) | IPv4 (IHL) | UDP 67 -> 68 (8) | BOOTP (236) | cookie (4) | options
//! ```

use std::net::Ipv4Addr;

use crate::packet::{EthernetFrame, IPPROTO_UDP, Ipv4Packet, ethernet::ETHERTYPE_IPV4};

const UDP_HLEN: usize = 8;
/// BOOTP fixed part before the options, magic cookie included (2.6's
/// `struct dhcp`).
const BOOTP_LEN: usize = 240;
const BOOTREPLY: u8 = 2;
const OPT_PAD: u8 = 0;
const OPT_END: u8 = 255;
const OPT_ROUTER: u8 = 3;
const OPT_MSG_TYPE: u8 = 53;
const DHCPOFFER: u8 = 2;
const DHCPACK: u8 = 5;

/// For an untagged Ethernet frame carrying a DHCPOFFER or DHCPACK from a
/// server (UDP 67 to 68): removes its router options (padding the tail,
/// fixing the UDP checksum) and returns the first router of a DHCPACK.
/// Anything else is left untouched. Never panics.
pub fn take_router(frame: &mut [u8]) -> Option<Ipv4Addr> {
    let mut eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = eth.payload_mut();
    // The header alone: the UDP length bounds what is read below.
    let h = Ipv4Packet::new_header_checked(&*ip).ok()?;
    // UDP, and not a later fragment.
    if h.protocol() != IPPROTO_UDP || !h.is_first_fragment() {
        return None;
    }
    let (ihl, src, dst) = (h.header_len(), h.src_addr().octets(), h.dst_addr().octets());
    let udp = ip.get_mut(ihl..)?;
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if udp.get(0..4)? != [0, 67, 0, 68] || udp_len < UDP_HLEN + BOOTP_LEN {
        return None;
    }
    let udp = udp.get_mut(..udp_len)?;
    if *udp.get(UDP_HLEN)? != BOOTREPLY {
        return None;
    }
    let opts = udp.get_mut(UDP_HLEN + BOOTP_LEN..)?;
    let kind = message_type(opts)?;
    if kind != DHCPOFFER && kind != DHCPACK {
        return None;
    }
    let router = strip_routers(opts);
    udp[6] = 0;
    udp[7] = 0;
    let sum = udp_checksum(src, dst, udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    if kind == DHCPACK { router } else { None }
}

/// The DHCP message type option's value.
fn message_type(opts: &[u8]) -> Option<u8> {
    let mut i = 0;
    while let Some(&t) = opts.get(i) {
        match t {
            OPT_END => return None,
            OPT_PAD => i += 1,
            OPT_MSG_TYPE => return (*opts.get(i + 1)? == 1).then(|| opts.get(i + 2).copied())?,
            _ => i += 2 + usize::from(*opts.get(i + 1)?),
        }
    }
    None
}

/// Removes every router option (shifting the rest down and padding the
/// tail, as 2.6); the first router address found.
fn strip_routers(opts: &mut [u8]) -> Option<Ipv4Addr> {
    let mut found = None;
    let mut i = 0;
    while let Some(&t) = opts.get(i) {
        match t {
            OPT_END => break,
            OPT_PAD => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else { break };
                let end = i + 2 + usize::from(len);
                if end > opts.len() {
                    break;
                }
                if t != OPT_ROUTER {
                    i = end;
                    continue;
                }
                if found.is_none() && len >= 4 && len % 4 == 0 {
                    found = opts
                        .get(i + 2..i + 6)
                        .and_then(|a| <[u8; 4]>::try_from(a).ok())
                        .map(Ipv4Addr::from);
                }
                let n = opts.len();
                opts.copy_within(end..n, i);
                opts[n - (end - i)..].fill(OPT_PAD);
            }
        }
    }
    found
}

/// The UDP checksum over the IPv4 pseudo header and `udp` (checksum
/// field zeroed); 0 is sent as 0xffff.
fn udp_checksum(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]);
            sum += u32::from(w);
        }
    };
    add(&src);
    add(&dst);
    add(&[0, 17]);
    add(&u16::try_from(udp.len()).unwrap_or(u16::MAX).to_be_bytes());
    add(udp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    use super::*;
    use crate::packet::ethernet::HEADER_LEN as ETH_HLEN;

    fn dhcp_reply(kind: u8, options: &[u8]) -> Vec<u8> {
        let mut bootp = vec![0u8; BOOTP_LEN];
        bootp[0] = BOOTREPLY;
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(&[OPT_MSG_TYPE, 1, kind]);
        bootp.extend_from_slice(options);
        bootp.push(OPT_END);
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [0xff; 6])
            .ipv4([192, 168, 77, 1], [255, 255, 255, 255], 64)
            .udp(67, 68);
        let mut out = Vec::new();
        b.write(&mut out, &bootp).unwrap();
        out
    }

    fn checksum_ok(frame: &[u8]) -> bool {
        let s = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Udp(u)) = s.transport else {
            return false;
        };
        let Some(etherparse::NetSlice::Ipv4(ip)) = s.net else {
            return false;
        };
        let want = u
            .to_header()
            .calc_checksum_ipv4(&ip.header().to_header(), u.payload())
            .unwrap();
        u.checksum() == want
    }

    const ROUTER: [u8; 6] = [OPT_ROUTER, 4, 192, 168, 77, 254];
    const MASK: [u8; 6] = [1, 4, 255, 255, 255, 0];

    #[test]
    fn an_ack_gives_its_router_and_loses_the_option() {
        let opts = [MASK.as_slice(), &ROUTER, &[6, 4, 9, 9, 9, 9]].concat();
        let mut f = dhcp_reply(DHCPACK, &opts);
        let len = f.len();
        assert_eq!(take_router(&mut f), Some(Ipv4Addr::new(192, 168, 77, 254)));
        assert_eq!(f.len(), len);
        let o = &f[ETH_HLEN + 20 + UDP_HLEN + BOOTP_LEN..];
        let want = [
            [OPT_MSG_TYPE, 1, DHCPACK].as_slice(),
            &MASK,
            &[6, 4, 9, 9, 9, 9, OPT_END],
        ]
        .concat();
        assert_eq!(&o[..want.len()], want.as_slice());
        assert!(o[want.len()..].iter().all(|&b| b == OPT_PAD));
        assert!(checksum_ok(&f));
        // Nothing left to take.
        assert_eq!(take_router(&mut f), None);
    }

    #[test]
    fn an_offer_loses_its_router_but_teaches_nothing() {
        let mut f = dhcp_reply(DHCPOFFER, &ROUTER);
        assert_eq!(take_router(&mut f), None);
        assert!(!f.windows(6).any(|w| w == ROUTER));
        assert!(checksum_ok(&f));
    }

    #[test]
    fn other_traffic_is_untouched() {
        // A DHCP request (client to server ports) and a NAK.
        let mut f = dhcp_reply(6, &ROUTER);
        let before = f.clone();
        assert_eq!(take_router(&mut f), None);
        assert_eq!(f, before);
        let mut f = dhcp_reply(DHCPACK, &ROUTER);
        f[ETH_HLEN + 20 + 1] = 68; // source port 68
        let before = f.clone();
        assert_eq!(take_router(&mut f), None);
        assert_eq!(f, before);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(mut tail in proptest::collection::vec(proptest::num::u8::ANY, 0..80), cut in 0usize..400) {
            let mut f = dhcp_reply(DHCPACK, &[]);
            f.truncate(f.len() - 1);
            f.append(&mut tail);
            let _ = take_router(&mut f.clone());
            f.truncate(cut.min(f.len()));
            let _ = take_router(&mut f);
        }
    }
}
