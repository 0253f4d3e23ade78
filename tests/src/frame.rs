//! Synthetic Ethernet frames for the classifier tests, built with
//! etherparse, plus the offsets of each header so tests can cut a frame at
//! any boundary.

use etherparse::{PacketBuilder, VlanId};

/// Source MAC of every synthetic frame.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
/// Destination MAC of every synthetic frame.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// Where each header of a built UDP frame starts.
#[derive(Clone, Copy, Debug)]
pub struct Offsets {
    /// End of the Ethernet header (14), or of the VLAN tag (18).
    pub l3: usize,
    /// Start of the UDP header.
    pub l4: usize,
    /// Start of the UDP payload (the OpenVPN opcode byte).
    pub payload: usize,
}

/// A frame and its header offsets.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The bytes, Ethernet header first.
    pub bytes: Vec<u8>,
    /// Header offsets.
    pub offsets: Offsets,
}

/// Source or destination of a synthetic datagram.
#[derive(Clone, Copy, Debug)]
pub enum Addr {
    /// IPv4 address.
    V4([u8; 4]),
    /// IPv6 address.
    V6([u8; 16]),
}

/// A UDP frame `src:sport -> dst:dport` with `payload`, optionally with one
/// 802.1Q tag. Both addresses must be of the same family.
pub fn udp(
    src: Addr,
    sport: u16,
    dst: Addr,
    dport: u16,
    vlan: Option<u16>,
    payload: &[u8],
) -> Frame {
    let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    let mut bytes = Vec::new();
    let l3 = if vlan.is_some() { 18 } else { 14 };
    let ip_len = match (src, dst) {
        (Addr::V4(_), Addr::V4(_)) => 20,
        (Addr::V6(_), Addr::V6(_)) => 40,
        _ => panic!("mixed address families"),
    };
    let write = |res: Result<(), etherparse::err::packet::BuildWriteError>| {
        res.expect("building a frame into a Vec cannot fail");
    };
    match (vlan, src, dst) {
        (None, Addr::V4(s), Addr::V4(d)) => write(
            eth.ipv4(s, d, 64)
                .udp(sport, dport)
                .write(&mut bytes, payload),
        ),
        (None, Addr::V6(s), Addr::V6(d)) => write(
            eth.ipv6(s, d, 64)
                .udp(sport, dport)
                .write(&mut bytes, payload),
        ),
        (Some(id), Addr::V4(s), Addr::V4(d)) => write(
            eth.single_vlan(VlanId::try_new(id).expect("12-bit VLAN id"))
                .ipv4(s, d, 64)
                .udp(sport, dport)
                .write(&mut bytes, payload),
        ),
        (Some(id), Addr::V6(s), Addr::V6(d)) => write(
            eth.single_vlan(VlanId::try_new(id).expect("12-bit VLAN id"))
                .ipv6(s, d, 64)
                .udp(sport, dport)
                .write(&mut bytes, payload),
        ),
        _ => unreachable!("families checked above"),
    }
    Frame {
        bytes,
        offsets: Offsets {
            l3,
            l4: l3 + ip_len,
            payload: l3 + ip_len + 8,
        },
    }
}

/// An OpenVPN P_DATA_V2 payload: opcode 9, `key_id`, 24-bit `peer_id`, then
/// `rest` (packet-id, ciphertext, tag: opaque to the classifier).
pub fn data_v2(key_id: u8, peer_id: u32, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![(9 << 3) | (key_id & 7)];
    p.extend_from_slice(&peer_id.to_be_bytes()[1..]);
    p.extend_from_slice(rest);
    p
}

/// An ARP request: not IP at all.
pub fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    // htype 1, ptype IPv4, hlen 6, plen 4, op request, sha, spa, tha, tpa.
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f
}
