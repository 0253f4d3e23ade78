//! vpn-ebpf under `BPF_PROG_TEST_RUN`: every verdict and every pass reason
//! on synthetic frames, with the `STATS` counters checked for each.
//!
//! Each test loads its own copy of the object, so counters and maps are not
//! shared between tests running in parallel. The redirect verdict needs a
//! real AF_XDP socket in the `XSKS` slot of the queue (the helper checks the
//! slot), so that test binds one to queue 0 of a veth in a namespace it
//! creates and runs the program with that interface and queue in `ctx_in`.
//! In this (non-"live frames") mode the kernel returns the verdict without
//! delivering the frame, which is all the verdict test needs; delivery is
//! covered by `xdp_netns.rs`.

use tests::{
    Netns, VethPair, XdpMd,
    classifier::{Classifier, Stats},
    frame::{self, Addr, Frame},
    require_root, xdp_test_run,
};
use vpn_common::stats::*;
use vpn_daemon::io::xdp::xsk::{BindMode, XskConfig, XskSocket};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

const PORT: u16 = 1194;
const PEER_V4: u32 = 7;
const PEER_V6: u32 = 0x00ab_cdef;
const CLIENT_V4: [u8; 4] = [10, 9, 0, 1];
const SERVER_V4: [u8; 4] = [10, 9, 0, 2];
const CLIENT_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const CLIENT_PORT: u16 = 40_000;

/// A classifier with our port, one IPv4 and one IPv6 peer, nothing in XSKS.
fn classifier() -> Classifier {
    let mut c = Classifier::load();
    c.add_port(PORT);
    c.add_peer(PEER_V4, CLIENT_V4, CLIENT_PORT);
    c.add_peer(PEER_V6, CLIENT_V6, CLIENT_PORT);
    c
}

fn v4(payload: &[u8]) -> Frame {
    frame::udp(
        Addr::V4(CLIENT_V4),
        CLIENT_PORT,
        Addr::V4(SERVER_V4),
        PORT,
        None,
        payload,
    )
}

fn v6(payload: &[u8]) -> Frame {
    frame::udp(
        Addr::V6(CLIENT_V6),
        CLIENT_PORT,
        Addr::V6(SERVER_V6),
        PORT,
        None,
        payload,
    )
}

fn data(peer_id: u32) -> Vec<u8> {
    frame::data_v2(1, peer_id, &[0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef])
}

/// First bytes of a P_CONTROL_HARD_RESET_CLIENT_V2 (opcode 7, key 0).
const HARD_RESET: &[u8] = &[0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0];

fn delta(before: &Stats, after: &Stats) -> Stats {
    let mut d = [0u64; STAT_SLOTS as usize];
    for (i, v) in d.iter_mut().enumerate() {
        *v = after[i] - before[i];
    }
    d
}

/// Runs `frame` once and checks the verdict, and that the counters moved by
/// exactly RX_TOTAL + 1 and `reason` + 1 (plus the bytes of a redirect).
fn expect_with(c: &Classifier, frame: &[u8], ctx: Option<XdpMd>, verdict: u32, reason: u32) {
    let before = c.stats();
    let got = xdp_test_run(c.prog_fd(), frame, ctx).expect("BPF_PROG_TEST_RUN");
    let d = delta(&before, &c.stats());
    assert_eq!(
        got, verdict,
        "verdict for {frame:02x?}; counters moved: {d:?}"
    );
    let mut want = [0u64; STAT_SLOTS as usize];
    want[RX_TOTAL as usize] = 1;
    want[reason as usize] = 1;
    if reason == REDIRECT {
        want[REDIRECT_BYTES as usize] = frame.len() as u64;
    }
    assert_eq!(
        d, want,
        "counters for {frame:02x?} (expected one {})",
        STAT_NAMES[reason as usize]
    );
}

fn expect(c: &Classifier, frame: &[u8], verdict: u32, reason: u32) {
    expect_with(c, frame, None, verdict, reason);
}

#[test]
fn control_packet_passes() {
    if !require_root() {
        return;
    }
    let c = classifier();
    expect(&c, &v4(HARD_RESET).bytes, XDP_PASS, PASS_CONTROL);
    // P_ACK_V1 and P_DATA_V1 (no peer-id) also belong to the socket path.
    expect(&c, &v4(&[0x28, 0, 0]).bytes, XDP_PASS, PASS_CONTROL);
    expect(&c, &v4(&[0x31, 0, 0, 0, 1]).bytes, XDP_PASS, PASS_CONTROL);
}

#[test]
fn known_peer_without_xsk_passes() {
    if !require_root() {
        return;
    }
    let c = classifier();
    expect(&c, &v4(&data(PEER_V4)).bytes, XDP_PASS, PASS_NO_XSK);
    expect(&c, &v6(&data(PEER_V6)).bytes, XDP_PASS, PASS_NO_XSK);
}

#[test]
fn known_peer_is_redirected_to_the_xsk_of_its_queue() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("vxr");
    let (_a, b) = VethPair::new(&ns, &ns).create();
    let ifindex = ns.ifindex(&b.name);
    ns.run(|| {
        let mut c = classifier();
        let config = XskConfig {
            frame_count: 64,
            tx_frame_count: 0,
            ring_size: 64,
            bind_mode: BindMode::Copy,
            ..XskConfig::default()
        };
        let xsk = XskSocket::bind(ifindex, 0, &config).expect("bind AF_XDP to veth queue 0");
        c.set_xsk(0, &xsk);
        let ctx = Some(XdpMd {
            ingress_ifindex: ifindex,
            rx_queue_index: 0,
            ..XdpMd::default()
        });
        expect_with(&c, &v4(&data(PEER_V4)).bytes, ctx, XDP_REDIRECT, REDIRECT);
        expect_with(&c, &v6(&data(PEER_V6)).bytes, ctx, XDP_REDIRECT, REDIRECT);
        let tagged = frame::udp(
            Addr::V4(CLIENT_V4),
            CLIENT_PORT,
            Addr::V4(SERVER_V4),
            PORT,
            Some(42),
            &data(PEER_V4),
        );
        expect_with(&c, &tagged.bytes, ctx, XDP_REDIRECT, REDIRECT);
        // Only data packets are steered, even with a socket in place.
        expect_with(&c, &v4(HARD_RESET).bytes, ctx, XDP_PASS, PASS_CONTROL);
    });
}

#[test]
fn redirect_uses_the_xsks_slot_of_the_receiving_queue() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("vxq");
    let (_a, b) = VethPair::new(&ns, &ns).queues(2).create();
    let ifindex = ns.ifindex(&b.name);
    ns.run(|| {
        let mut c = classifier();
        let config = XskConfig {
            frame_count: 64,
            tx_frame_count: 0,
            ring_size: 64,
            bind_mode: BindMode::Copy,
            ..XskConfig::default()
        };
        let xsk = XskSocket::bind(ifindex, 1, &config).expect("bind AF_XDP to veth queue 1");
        c.set_xsk(1, &xsk);
        let on_queue = |q| {
            Some(XdpMd {
                ingress_ifindex: ifindex,
                rx_queue_index: q,
                ..XdpMd::default()
            })
        };
        let f = v4(&data(PEER_V4)).bytes;
        expect_with(&c, &f, on_queue(1), XDP_REDIRECT, REDIRECT);
        // Queue 0 has no socket: never borrow another queue's.
        expect_with(&c, &f, on_queue(0), XDP_PASS, PASS_NO_XSK);
    });
}

#[test]
fn unknown_peer_is_passed_by_default_and_dropped_when_configured() {
    if !require_root() {
        return;
    }
    let mut c = classifier();
    let unknown = v4(&data(99)).bytes;
    expect(&c, &unknown, XDP_PASS, PASS_UNKNOWN_PEER);
    c.set_drop_unknown_peer(true);
    expect(&c, &unknown, XDP_DROP, DROP_UNKNOWN_PEER);
    expect(
        &c,
        &v6(&data(PEER_V6 + 1)).bytes,
        XDP_DROP,
        DROP_UNKNOWN_PEER,
    );
    // The undefined peer-id is just another unknown one.
    expect(
        &c,
        &v4(&data(0x00ff_ffff)).bytes,
        XDP_DROP,
        DROP_UNKNOWN_PEER,
    );
    c.set_drop_unknown_peer(false);
    expect(&c, &unknown, XDP_PASS, PASS_UNKNOWN_PEER);
}

#[test]
fn known_peer_from_another_source_passes_for_float() {
    if !require_root() {
        return;
    }
    let mut c = classifier();
    // Drop mode must not touch known peers from a new address: user space
    // decides about float after authenticating the packet.
    c.set_drop_unknown_peer(true);
    let other_addr = frame::udp(
        Addr::V4([10, 9, 0, 3]),
        CLIENT_PORT,
        Addr::V4(SERVER_V4),
        PORT,
        None,
        &data(PEER_V4),
    );
    expect(&c, &other_addr.bytes, XDP_PASS, PASS_WRONG_SOURCE);
    let other_port = frame::udp(
        Addr::V4(CLIENT_V4),
        CLIENT_PORT + 1,
        Addr::V4(SERVER_V4),
        PORT,
        None,
        &data(PEER_V4),
    );
    expect(&c, &other_port.bytes, XDP_PASS, PASS_WRONG_SOURCE);
    let mut v6_src = CLIENT_V6;
    v6_src[15] = 9;
    let other_v6 = frame::udp(
        Addr::V6(v6_src),
        CLIENT_PORT,
        Addr::V6(SERVER_V6),
        PORT,
        None,
        &data(PEER_V6),
    );
    expect(&c, &other_v6.bytes, XDP_PASS, PASS_WRONG_SOURCE);
    // Right address bytes, wrong family: the v4 peer's id over IPv6.
    expect(&c, &v6(&data(PEER_V4)).bytes, XDP_PASS, PASS_WRONG_SOURCE);
}

#[test]
fn peer_map_updates_take_effect_at_once() {
    if !require_root() {
        return;
    }
    let mut c = classifier();
    let from_new = frame::udp(
        Addr::V4([10, 9, 0, 77]),
        CLIENT_PORT + 7,
        Addr::V4(SERVER_V4),
        PORT,
        None,
        &data(PEER_V4),
    )
    .bytes;
    let from_old = v4(&data(PEER_V4)).bytes;
    expect(&c, &from_new, XDP_PASS, PASS_WRONG_SOURCE);
    // Float: user space authenticated the packet and moves the peer.
    c.add_peer(PEER_V4, [10, 9, 0, 77], CLIENT_PORT + 7);
    expect(&c, &from_new, XDP_PASS, PASS_NO_XSK);
    expect(&c, &from_old, XDP_PASS, PASS_WRONG_SOURCE);
    // Disconnect: the peer-id is unknown again (twice: removal is idempotent).
    c.remove_peer(PEER_V4);
    c.remove_peer(PEER_V4);
    expect(&c, &from_new, XDP_PASS, PASS_UNKNOWN_PEER);
    // A dual-stack socket reports IPv4 peers as mapped addresses; the
    // entry still matches the IPv4 packet.
    c.add_peer(
        PEER_V4,
        std::net::Ipv4Addr::from(CLIENT_V4).to_ipv6_mapped(),
        CLIENT_PORT,
    );
    expect(&c, &from_old, XDP_PASS, PASS_NO_XSK);
}

#[test]
fn vlan_tagged_frames_are_classified() {
    if !require_root() {
        return;
    }
    let c = classifier();
    let tagged = |payload: &[u8]| {
        frame::udp(
            Addr::V6(CLIENT_V6),
            CLIENT_PORT,
            Addr::V6(SERVER_V6),
            PORT,
            Some(7),
            payload,
        )
        .bytes
    };
    expect(&c, &tagged(&data(PEER_V6)), XDP_PASS, PASS_NO_XSK);
    expect(&c, &tagged(HARD_RESET), XDP_PASS, PASS_CONTROL);
    // One 802.1ad (S-)tag is a single tag as well.
    let mut s_tagged = tagged(&data(PEER_V6));
    s_tagged[12..14].copy_from_slice(&[0x88, 0xa8]);
    expect(&c, &s_tagged, XDP_PASS, PASS_NO_XSK);
    // A second tag (QinQ) is not followed.
    let mut qinq = v4(&data(PEER_V4)).bytes;
    qinq.splice(12..12, [0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 7]);
    expect(&c, &qinq, XDP_PASS, PASS_NOT_IP);
}

#[test]
fn non_ip_non_udp_and_other_ports_pass() {
    if !require_root() {
        return;
    }
    let c = classifier();
    expect(&c, &frame::arp(), XDP_PASS, PASS_NOT_IP);
    // IPv4 carrying TCP (protocol 6); the checksum is not the program's business.
    let mut tcp = v4(&data(PEER_V4)).bytes;
    tcp[14 + 9] = 6;
    expect(&c, &tcp, XDP_PASS, PASS_NOT_UDP);
    // IPv6 whose first next header is hop-by-hop options, not UDP.
    let mut hbh = v6(&data(PEER_V6)).bytes;
    hbh[14 + 6] = 0;
    expect(&c, &hbh, XDP_PASS, PASS_NOT_UDP);
    // An EtherType claiming IPv4 over an IPv6 header: version check.
    let mut bad_version = v6(&data(PEER_V6)).bytes;
    bad_version[12..14].copy_from_slice(&[0x08, 0x00]);
    expect(&c, &bad_version, XDP_PASS, PASS_NOT_IP);
    let other_port = frame::udp(
        Addr::V4(CLIENT_V4),
        CLIENT_PORT,
        Addr::V4(SERVER_V4),
        PORT + 1,
        None,
        &data(PEER_V4),
    );
    expect(&c, &other_port.bytes, XDP_PASS, PASS_OTHER_PORT);
}

#[test]
fn ipv4_fragments_pass() {
    if !require_root() {
        return;
    }
    let c = classifier();
    let frag_off = 14 + 6;
    // First fragment: more-fragments bit set.
    let mut first = v4(&data(PEER_V4)).bytes;
    first[frag_off] |= 0x20;
    expect(&c, &first, XDP_PASS, PASS_IP_FRAGMENT);
    // Later fragment: non-zero offset.
    let mut later = v4(&data(PEER_V4)).bytes;
    later[frag_off..frag_off + 2].copy_from_slice(&[0x00, 0x10]);
    expect(&c, &later, XDP_PASS, PASS_IP_FRAGMENT);
    // Don't-fragment alone is not a fragment.
    let mut df = v4(&data(PEER_V4)).bytes;
    df[frag_off] = 0x40;
    expect(&c, &df, XDP_PASS, PASS_NO_XSK);
}

/// Inserts `words` 32-bit words of IPv4 options (NOPs) and fixes IHL.
fn with_ipv4_options(f: &Frame, words: usize) -> Frame {
    let mut bytes = f.bytes.clone();
    let l3 = f.offsets.l3;
    bytes[l3] = 0x40 | (5 + words as u8);
    bytes.splice(l3 + 20..l3 + 20, std::iter::repeat_n(1u8, words * 4));
    let extra = words * 4;
    Frame {
        bytes,
        offsets: frame::Offsets {
            l3,
            l4: f.offsets.l4 + extra,
            payload: f.offsets.payload + extra,
        },
    }
}

#[test]
fn ipv4_options_are_skipped_by_ihl() {
    if !require_root() {
        return;
    }
    let c = classifier();
    for words in [1, 3, 10] {
        let f = with_ipv4_options(&v4(&data(PEER_V4)), words);
        expect(&c, &f.bytes, XDP_PASS, PASS_NO_XSK);
        let f = with_ipv4_options(&v4(HARD_RESET), words);
        expect(&c, &f.bytes, XDP_PASS, PASS_CONTROL);
    }
    // IHL below 5 is not a valid IPv4 header.
    let mut short_ihl = v4(&data(PEER_V4)).bytes;
    short_ihl[14] = 0x44;
    expect(&c, &short_ihl, XDP_PASS, PASS_NOT_IP);
}

#[test]
fn truncated_frames_pass_at_every_header_boundary() {
    if !require_root() {
        return;
    }
    let c = classifier();
    let plain = v4(&data(PEER_V4));
    let tagged = frame::udp(
        Addr::V6(CLIENT_V6),
        CLIENT_PORT,
        Addr::V6(SERVER_V6),
        PORT,
        Some(3),
        &data(PEER_V6),
    );
    let optioned = with_ipv4_options(&plain, 2);
    let mut cuts = Vec::new();
    for f in [&plain, &tagged, &optioned] {
        let o = f.offsets;
        cuts.extend([
            (f, o.l3 - 1, "inside the Ethernet header / VLAN tag"),
            (f, o.l3 + 19, "inside the fixed IP header"),
            (f, o.l4 - 1, "inside the IP header"),
            (f, o.l4 + 7, "inside the UDP header"),
            (f, o.payload, "before the opcode"),
            (f, o.payload + 1, "before the peer-id"),
            (f, o.payload + 3, "inside the peer-id"),
        ]);
    }
    // The tagged frame also ends inside its plain Ethernet header.
    cuts.push((&tagged, 14 - 1, "inside the Ethernet header"));
    cuts.push((&tagged, 14 + 3, "inside the VLAN tag"));
    for (f, len, where_) in cuts {
        let before = c.stats();
        let got = xdp_test_run(c.prog_fd(), &f.bytes[..len], None);
        match got {
            Ok(verdict) => {
                let d = delta(&before, &c.stats());
                assert_eq!(verdict, XDP_PASS, "cut {where_} at {len}");
                assert_eq!(d[RX_TOTAL as usize], 1, "cut {where_} at {len}");
                assert_eq!(
                    d[PASS_TRUNCATED as usize], 1,
                    "cut {where_} at {len}: {d:?}"
                );
            }
            // The kernel refuses test frames shorter than an Ethernet
            // header (ETH_HLEN) before the program runs; a real NIC never
            // delivers one either.
            Err(e) if len < 14 && e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("kernel refused a {len}-byte test frame (below ETH_HLEN)");
            }
            Err(e) => panic!("BPF_PROG_TEST_RUN on a frame cut {where_} at {len}: {e}"),
        }
    }
}

#[test]
fn udp_length_without_payload_is_truncated_despite_padding() {
    if !require_root() {
        return;
    }
    let c = classifier();
    // An empty datagram padded to the 60-byte Ethernet minimum: the padding
    // is not an opcode.
    let mut empty = v4(&[]).bytes;
    empty.resize(60, 0x48);
    expect(&c, &empty, XDP_PASS, PASS_TRUNCATED);
    // A P_DATA_V2 whose UDP length stops inside the peer-id, padded.
    let mut short = v4(&data(PEER_V4)[..2]).bytes;
    short.resize(60, 0);
    expect(&c, &short, XDP_PASS, PASS_TRUNCATED);
}

#[test]
fn every_frame_counts_in_rx_total_and_one_reason() {
    if !require_root() {
        return;
    }
    let mut c = classifier();
    c.set_drop_unknown_peer(true);
    let frames = [
        frame::arp(),
        v4(HARD_RESET).bytes,
        v4(&data(PEER_V4)).bytes,
        v6(&data(5)).bytes,
        v4(&[]).bytes,
    ];
    for f in &frames {
        xdp_test_run(c.prog_fd(), f, None).expect("test run");
    }
    let s = c.stats();
    let reasons: u64 = (PASS_NOT_IP..=REDIRECT).map(|i| s[i as usize]).sum();
    assert_eq!(s[RX_TOTAL as usize], frames.len() as u64);
    assert_eq!(reasons, frames.len() as u64, "{s:?}");
}

#[test]
fn program_is_gpl_compatible_and_cheap_to_verify() {
    if !require_root() {
        return;
    }
    let c = Classifier::load();
    let info = c.program_info();
    // The redirect helper is GPL-only: a non-GPL licence fails the load
    // already, this pins the reason.
    assert_eq!(info.gpl_compatible(), Some(true));
    let verified = info
        .verified_instruction_count()
        .expect("kernel 5.16+ reports verified instructions");
    let translated = info.size_translated().unwrap_or(0) / 8;
    eprintln!(
        "vpn_xdp: {translated} instructions, {verified} verified, btf id {:?}",
        info.btf_id()
    );
    // A straight-line classifier: thousands of verified instructions would
    // mean a state explosion creeping in.
    assert!(
        verified < 5_000,
        "verifier processed {verified} instructions"
    );
}

#[test]
fn mutated_frames_never_abort_and_count_exactly_once() {
    use proptest::{
        collection::vec,
        prelude::*,
        test_runner::{Config, TestRunner},
    };

    if !require_root() {
        return;
    }
    let mut c = classifier();
    c.set_drop_unknown_peer(true);
    let bases = [
        v4(&data(PEER_V4)).bytes,
        v6(&data(PEER_V6)).bytes,
        v4(HARD_RESET).bytes,
        with_ipv4_options(&v4(&data(PEER_V4)), 2).bytes,
        frame::udp(
            Addr::V4(CLIENT_V4),
            CLIENT_PORT,
            Addr::V4(SERVER_V4),
            PORT,
            Some(9),
            &data(PEER_V4),
        )
        .bytes,
    ];
    // One loaded program for all cases (loading verifies, which is slow);
    // the counters are compared per case.
    let mut runner = TestRunner::new(Config {
        cases: 768,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..bases.len(),
        vec((0usize..80, any::<u8>()), 0..6),
        any::<usize>(),
    );
    runner
        .run(&strategy, |(base, flips, cut)| {
            let mut f = bases[base].clone();
            // Flips land in the headers, where the parser makes decisions.
            for (i, v) in flips {
                let i = i % f.len();
                f[i] = v;
            }
            f.truncate(14 + cut % (f.len() - 13));
            let before = c.stats();
            let verdict = xdp_test_run(c.prog_fd(), &f, None).expect("test run");
            let d = delta(&before, &c.stats());
            prop_assert!(
                verdict == XDP_PASS || verdict == XDP_DROP,
                "verdict {verdict} for {f:02x?}"
            );
            prop_assert_eq!(d[RX_TOTAL as usize], 1);
            let reasons: u64 = (PASS_NOT_IP..=REDIRECT).map(|i| d[i as usize]).sum();
            prop_assert_eq!(reasons, 1, "{:?} for {:02x?}", d, f);
            prop_assert_eq!(verdict == XDP_DROP, d[DROP_UNKNOWN_PEER as usize] == 1);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Every frame of the real OpenVPN 2.6.14 UDP captures (testdata), as the
/// server's interface saw them: the client's control packets pass as
/// control, its P_DATA_V2 packets (peer-id 0, as the server assigned, see
/// testdata/openvpn-2.6.14/README.md) are steered, and the server's own
/// packets to the client are to another port. Drop mode is on, so a data
/// packet with any other peer-id would show up as a drop.
#[test]
fn real_openvpn_sessions_are_classified_packet_by_packet() {
    use std::net::IpAddr;

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use pcap_file::pcap::PcapReader;
    use vpn_common::opcode::{P_CONTROL_HARD_RESET_CLIENT_V2, P_DATA_V2, opcode};

    if !require_root() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/openvpn-2.6.14");
    for scenario in [
        "udp-plain-aes128gcm",
        "udp-tlscrypt-aes256gcm",
        "udp-tlsauth-chacha",
        "udp-aes256cbc-sha256",
        "udp-reneg",
    ] {
        let path = dir.join(scenario).join("capture.pcap");
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut pcap = PcapReader::new(file).expect("classic pcap");
        let mut c = classifier();
        c.remove_peer(PEER_V4);
        c.remove_peer(PEER_V6);
        c.set_drop_unknown_peer(true);
        let mut client: Option<(IpAddr, u16)> = None;
        let mut seen = [0u64; STAT_SLOTS as usize];
        while let Some(packet) = pcap.next_packet() {
            let packet = packet.expect("pcap record");
            let frame = &packet.data[..];
            let sliced = SlicedPacket::from_ethernet(frame).expect("Ethernet/IP/UDP frame");
            let src: IpAddr = match &sliced.net {
                Some(NetSlice::Ipv4(ip)) => ip.header().source_addr().into(),
                Some(NetSlice::Ipv6(ip)) => ip.header().source_addr().into(),
                None => panic!("{scenario}: non-IP frame in an OpenVPN capture"),
            };
            let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
                panic!("{scenario}: non-UDP frame in a UDP capture");
            };
            let op = opcode(udp.payload()[0]);
            if client.is_none() {
                // The session starts with the client's hard reset: that is
                // where its packets come from.
                assert_eq!(op, P_CONTROL_HARD_RESET_CLIENT_V2, "{scenario}");
                client = Some((src, udp.source_port()));
                c.add_peer(0, src, udp.source_port());
            }
            let reason = if udp.destination_port() != PORT {
                PASS_OTHER_PORT
            } else if op == P_DATA_V2 {
                assert_eq!(client, Some((src, udp.source_port())), "{scenario}");
                PASS_NO_XSK
            } else {
                PASS_CONTROL
            };
            expect(&c, frame, XDP_PASS, reason);
            seen[reason as usize] += 1;
        }
        // Each capture holds at least 5 pings: both directions of data, and
        // the handshake on the control channel.
        assert!(seen[PASS_NO_XSK as usize] >= 5, "{scenario}: {seen:?}");
        assert!(seen[PASS_CONTROL as usize] >= 5, "{scenario}: {seen:?}");
        assert!(seen[PASS_OTHER_PORT as usize] >= 5, "{scenario}: {seen:?}");
        eprintln!(
            "{scenario}: {} steerable data, {} control, {} to the client",
            seen[PASS_NO_XSK as usize], seen[PASS_CONTROL as usize], seen[PASS_OTHER_PORT as usize]
        );
    }
}
