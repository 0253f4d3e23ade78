//! `mssfix`: clamp the MSS option of TCP SYN and SYN-ACK packets crossing the
//! tunnel, so the encapsulated (outer) packets of that TCP flow fit the link.
//!
//! Pure functions on the inner IP packet, no I/O: the tun side calls
//! [`clamp_mss`] on every packet in both directions (protocol doc 11.6).
//! The checksum is updated incrementally (RFC 1624, eqn. 3), never
//! recomputed, so a clamp costs a few instructions per SYN and nothing per
//! data segment beyond the flag test.
//!
//! ```text
//! IPv4 (IHL*4 bytes, protocol 6)  | TCP header (data offset*4 bytes)
//!                                 | ... flags @13 ... checksum @16 ... options @20..
//! IPv6 (40 bytes, next header 6)  | TCP option MSS: kind=2 | len=4 | mss (u16 BE)
//! ```
//!
//! IPv6 extension-header chains are not walked: a SYN behind a hop-by-hop or
//! routing header passes unclamped (OpenVPN does the same).

use super::{EthernetFrame, IPPROTO_TCP, Ipv4Packet, Ipv6Packet, ip_version};

/// TCP header flag bit SYN.
const TCP_FLAG_SYN: u8 = 0x02;
/// TCP option kinds.
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MSS: u8 = 2;
const TCPOLEN_MSS: u8 = 4;

/// What [`clamp_mss`] did to a packet (for counters and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MssOutcome {
    /// Not an unfragmented TCP SYN with an MSS option (or not parseable).
    NotApplicable,
    /// A SYN whose MSS was already at or below the limit.
    Unchanged(u16),
    /// The MSS was lowered from `from` to `to`.
    Clamped {
        /// MSS announced by the sender.
        from: u16,
        /// MSS written in its place.
        to: u16,
    },
}

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in the IPv4 or IPv6
/// packet `packet` to `max_mss` if it is larger, fixing the TCP checksum
/// incrementally. Anything else — other protocols, fragments, truncated or
/// malformed headers — is left untouched; this never panics.
pub fn clamp_mss(packet: &mut [u8], max_mss: u16) -> MssOutcome {
    let Some(tcp_start) = tcp_header_offset(packet) else {
        return MssOutcome::NotApplicable;
    };
    let Some(tcp) = packet.get_mut(tcp_start..) else {
        return MssOutcome::NotApplicable;
    };
    clamp_in_tcp_header(tcp, max_mss)
}

/// [`clamp_mss`] with the limit for the packet's IP version: `v6` for
/// IPv6, `v4` for anything else (which then is IPv4 or not applicable).
pub fn clamp_ip(packet: &mut [u8], v4: u16, v6: u16) -> MssOutcome {
    let lim = if ip_version(packet) == Some(6) {
        v6
    } else {
        v4
    };
    clamp_mss(packet, lim)
}

/// [`clamp_ip`] on the IP packet of an Ethernet frame (tap). Only untagged
/// IPv4/IPv6 frames are looked into, as 2.6's `is_ipv4`/`is_ipv6` for tap.
pub fn clamp_ethernet(frame: &mut [u8], v4: u16, v6: u16) -> MssOutcome {
    let mut eth = EthernetFrame::new_unchecked(frame);
    match eth.untagged_ip_payload_mut() {
        Some(ip) => clamp_ip(ip, v4, v6),
        None => MssOutcome::NotApplicable,
    }
}

/// Offset of the TCP header when `packet` is a whole IPv4 packet that is
/// not a non-first fragment, or an IPv6 packet whose first next header is
/// TCP. The TCP slice then runs to the end of the buffer, as it always has.
fn tcp_header_offset(packet: &[u8]) -> Option<usize> {
    match ip_version(packet)? {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            // Only the first fragment carries the TCP header.
            (ip.is_first_fragment() && ip.protocol() == IPPROTO_TCP).then(|| ip.header_len())
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            if ip.next_header() != IPPROTO_TCP {
                return None;
            }
            ip.check_payload_len().ok()?;
            Some(super::ipv6::HEADER_LEN)
        }
        _ => None,
    }
}

/// Clamp within a TCP header (plus payload) slice.
fn clamp_in_tcp_header(tcp: &mut [u8], max_mss: u16) -> MssOutcome {
    let (Some(&off_byte), Some(&flags)) = (tcp.get(12), tcp.get(13)) else {
        return MssOutcome::NotApplicable;
    };
    if flags & TCP_FLAG_SYN == 0 {
        return MssOutcome::NotApplicable;
    }
    let hdr_len = usize::from(off_byte >> 4) * 4;
    if hdr_len < 20 || hdr_len > tcp.len() {
        return MssOutcome::NotApplicable;
    }
    let mut i = 20;
    while i < hdr_len {
        let Some(&kind) = tcp.get(i) else { break };
        match kind {
            TCPOPT_EOL => break,
            TCPOPT_NOP => i += 1,
            _ => {
                let Some(&len) = tcp.get(i + 1) else { break };
                let len_us = usize::from(len);
                if len < 2 || i + len_us > hdr_len {
                    // A malformed option list: leave the packet to the peer.
                    return MssOutcome::NotApplicable;
                }
                if kind == TCPOPT_MSS && len == TCPOLEN_MSS {
                    return rewrite_mss(tcp, i + 2, max_mss);
                }
                i += len_us;
            }
        }
    }
    MssOutcome::NotApplicable
}

/// Rewrites the 16-bit MSS at `at` (inside the TCP header) if above
/// `max_mss`, updating the checksum at offset 16 per RFC 1624:
/// `HC' = ~(~HC + ~m + m')`.
fn rewrite_mss(tcp: &mut [u8], at: usize, max_mss: u16) -> MssOutcome {
    let (Some(&hi), Some(&lo)) = (tcp.get(at), tcp.get(at + 1)) else {
        return MssOutcome::NotApplicable;
    };
    let old = u16::from_be_bytes([hi, lo]);
    if old <= max_mss {
        return MssOutcome::Unchanged(old);
    }
    let (Some(&c0), Some(&c1)) = (tcp.get(16), tcp.get(17)) else {
        return MssOutcome::NotApplicable;
    };
    // The checksum sums 16-bit words aligned on the TCP header start. A
    // field at an odd offset (after a lone NOP) straddles two words, which
    // in one's complement arithmetic is the same as its byte-swapped value.
    let (m, m_new) = if at.is_multiple_of(2) {
        (old, max_mss)
    } else {
        (old.swap_bytes(), max_mss.swap_bytes())
    };
    let hc = u16::from_be_bytes([c0, c1]);
    let mut sum = u32::from(!hc) + u32::from(!m) + u32::from(m_new);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // `sum` fits 16 bits after folding.
    let new_hc = !(sum as u16);
    let [n0, n1] = max_mss.to_be_bytes();
    let [h0, h1] = new_hc.to_be_bytes();
    // Both ranges were bounds-checked above; the `get_mut`s cannot fail.
    if let Some(f) = tcp.get_mut(at..at + 2) {
        f.copy_from_slice(&[n0, n1]);
    }
    if let Some(f) = tcp.get_mut(16..18) {
        f.copy_from_slice(&[h0, h1]);
    }
    MssOutcome::Clamped {
        from: old,
        to: max_mss,
    }
}

/// Transport of the tunnel's outer packets, for [`mss_for_mssfix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OuterTransport {
    /// UDP over IPv4: 20 + 8 bytes of headers.
    Udp4,
    /// UDP over IPv6: 40 + 8.
    Udp6,
    /// TCP over IPv4: 20 + 20, plus the 2-byte record length.
    Tcp4,
    /// TCP over IPv6: 40 + 20, plus the 2-byte record length.
    Tcp6,
}

impl OuterTransport {
    /// Bytes the outer headers add to every tunnel packet.
    pub fn header_len(self) -> u16 {
        match self {
            Self::Udp4 => 28,
            Self::Udp6 => 48,
            Self::Tcp4 => 42,
            Self::Tcp6 => 62,
        }
    }
}

/// OpenVPN's per-packet overhead of an AEAD cipher on P_DATA_V2:
/// opcode/peer-id 4 + packet_id 4 + tag 16.
pub const AEAD_DATA_V2_OVERHEAD: u16 = 24;

/// The MSS to clamp to for `mssfix max_outer` (default 1492, "with
/// encapsulation", protocol doc 11.6): the outer packet of a full-sized
/// segment must not exceed `max_outer` bytes.
///
/// `mss = max_outer − outer headers − openvpn_overhead − 40`, and 20 less
/// for segments carried in IPv6 (`inner_ipv6`). `openvpn_overhead` is
/// [`AEAD_DATA_V2_OVERHEAD`] for AES-GCM / ChaCha20-Poly1305, plus one if a
/// compression framing byte is present. Saturates at 0 for absurd inputs.
pub fn mss_for_mssfix(
    max_outer: u16,
    outer: OuterTransport,
    openvpn_overhead: u16,
    inner_ipv6: bool,
) -> u16 {
    let inner_headers = if inner_ipv6 { 60 } else { 40 };
    max_outer
        .saturating_sub(outer.header_len())
        .saturating_sub(openvpn_overhead)
        .saturating_sub(inner_headers)
}

#[cfg(test)]
mod tests {
    use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
    use proptest::prelude::*;

    use super::*;

    fn syn_v4(mss: u16, syn: bool, lead_nop: bool) -> Vec<u8> {
        let mut b =
            PacketBuilder::ipv4([10, 8, 0, 2], [10, 8, 0, 1], 64).tcp(40000, 80, 1234, 65535);
        if syn {
            b = b.syn();
        }
        let mut opts = Vec::new();
        if lead_nop {
            opts.push(TcpOptionElement::Noop);
        }
        opts.push(TcpOptionElement::MaximumSegmentSize(mss));
        opts.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
        opts.push(TcpOptionElement::WindowScale(7));
        let b = b.options(&opts).expect("options fit");
        let payload = [];
        let mut out = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut out, &payload).expect("serialize");
        out
    }

    fn syn_v6(mss: u16) -> Vec<u8> {
        let src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let dst = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let b = PacketBuilder::ipv6(src, dst, 64)
            .tcp(40000, 443, 99, 65535)
            .syn()
            .ack(7)
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::MaximumSegmentSize(mss),
            ])
            .expect("options fit");
        let mut out = Vec::new();
        b.write(&mut out, &[]).expect("serialize");
        out
    }

    /// The MSS option and whether the TCP checksum verifies, parsed by etherparse.
    fn mss_and_checksum_ok(pkt: &[u8]) -> (Option<u16>, bool) {
        let sliced = SlicedPacket::from_ip(pkt).expect("valid IP");
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("not TCP")
        };
        let mss = tcp.options_iterator().find_map(|o| match o {
            Ok(TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
            _ => None,
        });
        let header = tcp.to_header();
        let ok = match sliced.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                header
                    .calc_checksum_ipv4(&ip.header().to_header(), tcp.payload())
                    .expect("checksum")
                    == tcp.checksum()
            }
            Some(etherparse::NetSlice::Ipv6(ip)) => {
                header
                    .calc_checksum_ipv6(&ip.header().to_header(), tcp.payload())
                    .expect("checksum")
                    == tcp.checksum()
            }
            _ => panic!("no IP"),
        };
        (mss, ok)
    }

    #[test]
    fn clamps_ipv4_syn_and_keeps_checksum_valid() {
        let mut p = syn_v4(1460, true, false);
        assert!(mss_and_checksum_ok(&p).1);
        assert_eq!(
            clamp_mss(&mut p, 1400),
            MssOutcome::Clamped {
                from: 1460,
                to: 1400
            }
        );
        assert_eq!(mss_and_checksum_ok(&p), (Some(1400), true));
    }

    #[test]
    fn clamps_mss_at_odd_offset_after_a_lone_nop() {
        let mut p = syn_v4(1460, true, true);
        assert_eq!(
            clamp_mss(&mut p, 1357),
            MssOutcome::Clamped {
                from: 1460,
                to: 1357
            }
        );
        assert_eq!(mss_and_checksum_ok(&p), (Some(1357), true));
    }

    #[test]
    fn clamps_ipv6_syn_ack() {
        let mut p = syn_v6(1440);
        assert_eq!(
            clamp_mss(&mut p, 1380),
            MssOutcome::Clamped {
                from: 1440,
                to: 1380
            }
        );
        assert_eq!(mss_and_checksum_ok(&p), (Some(1380), true));
    }

    #[test]
    fn leaves_small_mss_and_non_syn_untouched() {
        let mut p = syn_v4(1200, true, false);
        let before = p.clone();
        assert_eq!(clamp_mss(&mut p, 1400), MssOutcome::Unchanged(1200));
        assert_eq!(p, before);

        let mut p = syn_v4(1460, false, false);
        let before = p.clone();
        assert_eq!(clamp_mss(&mut p, 1400), MssOutcome::NotApplicable);
        assert_eq!(p, before);
    }

    #[test]
    fn leaves_udp_and_fragments_untouched() {
        let b = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(1, 2);
        let mut p = Vec::new();
        b.write(&mut p, &[2, 4, 5, 180]).expect("serialize");
        let before = p.clone();
        assert_eq!(clamp_mss(&mut p, 100), MssOutcome::NotApplicable);
        assert_eq!(p, before);

        let mut frag = syn_v4(1460, true, false);
        frag[7] = 10; // fragment offset 10: not the first fragment
        let before = frag.clone();
        assert_eq!(clamp_mss(&mut frag, 100), MssOutcome::NotApplicable);
        assert_eq!(frag, before);
    }

    #[test]
    fn clamps_behind_ipv4_options() {
        let mut p = syn_v4(1460, true, false);
        // Insert a 4-byte options field (NOP NOP NOP EOL) and fix the header.
        let mut h = p[..20].to_vec();
        h.extend_from_slice(&[1, 1, 1, 0]);
        h[0] = 0x46;
        let total = (p.len() + 4) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&p[20..]);
        p = h;
        assert_eq!(
            clamp_mss(&mut p, 1300),
            MssOutcome::Clamped {
                from: 1460,
                to: 1300
            }
        );
    }

    #[test]
    fn a_syn_behind_an_ipv6_extension_header_passes_unclamped() {
        let mut p = syn_v6(1440);
        p[6] = 0; // hop-by-hop first: the chain is not walked
        let before = p.clone();
        assert_eq!(clamp_mss(&mut p, 1000), MssOutcome::NotApplicable);
        assert_eq!(p, before);
    }

    #[test]
    fn truncated_or_overlong_ip_lengths_are_not_applicable() {
        let mut p = syn_v4(1460, true, false);
        p[3] = p[3].wrapping_add(1); // total length one past the buffer
        assert_eq!(clamp_mss(&mut p, 1000), MssOutcome::NotApplicable);
        let mut p = syn_v6(1460);
        p[5] = p[5].wrapping_add(1);
        assert_eq!(clamp_mss(&mut p, 1000), MssOutcome::NotApplicable);
        let mut p = syn_v4(1460, true, false);
        p.truncate(30);
        assert_eq!(clamp_mss(&mut p, 1000), MssOutcome::NotApplicable);
    }

    #[test]
    fn picks_the_limit_by_ip_version() {
        let mut p = syn_v6(1440);
        assert_eq!(
            clamp_ip(&mut p, 1000, 1200),
            MssOutcome::Clamped {
                from: 1440,
                to: 1200
            }
        );
        let mut p = syn_v4(1460, true, false);
        assert_eq!(
            clamp_ip(&mut p, 1000, 1200),
            MssOutcome::Clamped {
                from: 1460,
                to: 1000
            }
        );
    }

    #[test]
    fn clamps_untagged_tap_frames_only() {
        let ip = syn_v4(1460, true, false);
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&ip);
        assert_eq!(
            clamp_ethernet(&mut f, 1300, 1200),
            MssOutcome::Clamped {
                from: 1460,
                to: 1300
            }
        );
        assert_eq!(mss_and_checksum_ok(&f[14..]), (Some(1300), true));
        // 802.1Q-tagged: not looked into.
        let mut t = vec![
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0, 5, 0x08, 0x00,
        ];
        t.extend_from_slice(&ip);
        let before = t.clone();
        assert_eq!(
            clamp_ethernet(&mut t, 1300, 1200),
            MssOutcome::NotApplicable
        );
        assert_eq!(t, before);
        // ARP and runts.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(clamp_ethernet(&mut arp, 1, 1), MssOutcome::NotApplicable);
        assert_eq!(
            clamp_ethernet(&mut [0u8; 5], 1, 1),
            MssOutcome::NotApplicable
        );
    }

    #[test]
    fn mss_formula_matches_protocol_doc() {
        // 11.6: AES-GCM / UDP / IPv4 / P_DATA_V2 gives 1400.
        assert_eq!(
            mss_for_mssfix(1492, OuterTransport::Udp4, AEAD_DATA_V2_OVERHEAD, false),
            1400
        );
        assert_eq!(
            mss_for_mssfix(1492, OuterTransport::Udp4, AEAD_DATA_V2_OVERHEAD, true),
            1380
        );
        assert_eq!(
            mss_for_mssfix(1492, OuterTransport::Udp6, AEAD_DATA_V2_OVERHEAD, false),
            1380
        );
        assert_eq!(mss_for_mssfix(10, OuterTransport::Tcp6, 24, true), 0);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(mut b in proptest::collection::vec(any::<u8>(), 0..120), mss in any::<u16>()) {
            let _ = clamp_mss(&mut b, mss);
        }

        #[test]
        fn never_panics_on_mutated_syns(
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..6),
            cut in 0usize..70,
            v6 in any::<bool>(),
        ) {
            let mut p = if v6 { syn_v6(1460) } else { syn_v4(1460, true, false) };
            for (i, v) in flips {
                if let Some(b) = p.get_mut(i) { *b = v; }
            }
            p.truncate(cut);
            let _ = clamp_mss(&mut p, 1000);
        }

        #[test]
        fn clamped_checksum_always_verifies(mss in 500u16..9000, limit in 500u16..9000, nop in any::<bool>()) {
            let mut p = syn_v4(mss, true, nop);
            let out = clamp_mss(&mut p, limit);
            let (got, ok) = mss_and_checksum_ok(&p);
            prop_assert!(ok);
            prop_assert_eq!(got, Some(mss.min(limit)));
            prop_assert_eq!(matches!(out, MssOutcome::Clamped { .. }), mss > limit);
        }
    }
}
