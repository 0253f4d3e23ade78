//! Fuzzing hatch of the inner-packet views (the `inner_packet` target of the
//! `fuzz/` crate, and this module's property tests): every view, checked and
//! unchecked, every accessor, and the mssfix clamps, on arbitrary bytes.

use super::{EthernetFrame, Ipv4Packet, Ipv6Packet, ip_addrs, ip_version, mssfix};

/// Drives every view over `data` as an IP packet and as an Ethernet frame;
/// nothing may panic. The clamps run on a copy (this is not the data path).
pub fn inner_packet(data: &[u8]) {
    let _ = ip_addrs(data);
    let _ = ip_version(data);
    let v4s = [Ipv4Packet::new_unchecked(data)]
        .into_iter()
        .chain(Ipv4Packet::new_checked(data).ok())
        .chain(Ipv4Packet::new_header_checked(data).ok());
    for v4 in v4s {
        let _ = (
            v4.version(),
            v4.header_len(),
            v4.total_len(),
            v4.frag_field(),
        );
        let _ = (
            v4.is_first_fragment(),
            v4.is_fragment(),
            v4.protocol(),
            v4.ttl(),
        );
        let _ = (
            v4.src_addr(),
            v4.dst_addr(),
            v4.checksum(),
            v4.verify_checksum(),
        );
        let _ = (v4.header(), v4.payload(), v4.ident());
    }
    let v6s = [Ipv6Packet::new_unchecked(data)]
        .into_iter()
        .chain(Ipv6Packet::new_checked(data).ok());
    for v6 in v6s {
        let _ = (
            v6.version(),
            v6.payload_len(),
            v6.next_header(),
            v6.hop_limit(),
        );
        let _ = (v6.src_addr(), v6.dst_addr(), v6.header(), v6.payload());
        let _ = v6.check_payload_len();
    }
    let eths = [EthernetFrame::new_unchecked(data)]
        .into_iter()
        .chain(EthernetFrame::new_checked(data).ok());
    for eth in eths {
        let _ = (
            eth.dst_addr(),
            eth.src_addr(),
            eth.ethertype(),
            eth.payload(),
        );
        let _ = (
            eth.vlan_tci(),
            eth.inner_ethertype(),
            eth.untagged_ip_payload(),
        );
    }
    let mut b = data.to_vec();
    for mss in [0, 536, 1400, u16::MAX] {
        let _ = mssfix::clamp_mss(&mut b, mss);
        let _ = mssfix::clamp_ip(&mut b, mss, mss);
        let _ = mssfix::clamp_ethernet(&mut b, mss, mss);
    }
    let mut eth = EthernetFrame::new_unchecked(&mut b[..]);
    let _ = eth.untagged_ip_payload_mut().map(|p| p.len());
    let _ = eth.payload_mut().len();
}
