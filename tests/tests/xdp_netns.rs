//! vpn-ebpf attached in native (driver) mode on a veth, end to end: a
//! P_DATA_V2 packet of a known peer reaches the AF_XDP socket, an OpenVPN
//! control packet sent to the same port at the same time reaches an
//! ordinary UDP socket, a P_DATA_V2 with an unknown peer-id is dropped, and
//! the counters agree with what arrived. A reply built in user space leaves
//! through the same socket's tx ring and reaches the client's UDP socket.
//!
//! ```text
//!  ns "vxa…" (client)                      ns "vxb…" (server)
//!  10.77.0.1:40000  ── veth ─────────────► veth 10.77.0.2 [vpn_xdp, driver mode]
//!                                              ├─ redirect ─► AF_XDP queue 0
//!                                              └─ pass ─────► UDP socket :1194
//!  UDP socket :40000 ◄──────────────────── AF_XDP tx (reply)
//! ```

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use tests::{Netns, VethPair, classifier::Classifier, frame, require_root};
use vpn_common::stats::*;
use vpn_daemon::io::xdp::{
    loader::AttachMode,
    xsk::{BindMode, XskConfig, XskSocket},
};

const PORT: u16 = 1194;
const CLIENT_PORT: u16 = 40_000;
const CLIENT: [u8; 4] = [10, 77, 0, 1];
const SERVER: [u8; 4] = [10, 77, 0, 2];
const PEER_ID: u32 = 0x00_01_02;
fn sa(addr: [u8; 4], port: u16) -> SocketAddr {
    (Ipv4Addr::from(addr), port).into()
}

const WAIT: Duration = Duration::from_secs(3);

#[test]
fn data_goes_to_af_xdp_and_control_to_the_udp_socket() {
    if !require_root() {
        return;
    }
    // Dropped last: the namespaces (and their veths) go even on panic.
    let client_ns = Netns::new("vxa");
    let server_ns = Netns::new("vxb");
    // No IPv6 chatter (router solicitations, MLD) in the counters.
    client_ns.disable_ipv6();
    server_ns.disable_ipv6();
    let (_client_if, server_if) = VethPair::new(&client_ns, &server_ns)
        .addr_a(CLIENT)
        .addr_b(SERVER)
        .create();
    let server_ifindex = server_ns.ifindex(&server_if.name);

    // Set up the receiver completely before the first packet: program
    // attached, fill ring filled, socket registered.
    let (mut classifier, mut xsk, udp) = server_ns.run(|| {
        let mut c = Classifier::load();
        c.add_port(PORT);
        c.add_peer(PEER_ID, CLIENT, CLIENT_PORT);
        c.set_drop_unknown_peer(true);
        // veth supports native XDP: the fallback must not be needed.
        assert_eq!(c.attach(&server_if.name), AttachMode::Native);
        let config = XskConfig {
            frame_count: 256,
            tx_frame_count: 64,
            ring_size: 256,
            bind_mode: BindMode::Copy,
            ..XskConfig::default()
        };
        let xsk = XskSocket::bind(server_ifindex, 0, &config)
            .expect("bind AF_XDP to queue 0 (veth has one real RX queue)");
        assert!(!xsk.is_zero_copy(), "veth only does copy mode");
        c.set_xsk(0, &xsk);
        let udp = UdpSocket::bind(sa(SERVER, PORT)).expect("bind UDP server socket");
        udp.set_read_timeout(Some(WAIT)).expect("set timeout");
        (c, xsk, udp)
    });

    let data = frame::data_v2(0, PEER_ID, b"\x00\x00\x00\x01ciphertext-and-tag");
    let unknown = frame::data_v2(0, PEER_ID + 1, b"\x00\x00\x00\x01not-ours");
    // P_CONTROL_HARD_RESET_CLIENT_V2, key 0: session id, empty ack array,
    // packet-id 0.
    let control: &[u8] = b"\x38\x11\x22\x33\x44\x55\x66\x77\x88\x00\x00\x00\x00\x00";
    let client = client_ns.run(|| {
        let s = UdpSocket::bind(sa(CLIENT, CLIENT_PORT)).expect("bind client socket");
        s.set_read_timeout(Some(WAIT)).expect("set timeout");
        for payload in [&data[..], control, &unknown[..]] {
            s.send_to(payload, sa(SERVER, PORT)).expect("send");
        }
        s
    });

    // The data packet: on the AF_XDP ring, whole frame, payload intact.
    let mut got = Vec::new();
    for _ in 0..10 {
        if !got.is_empty() || !xsk.wait_readable(WAIT).expect("poll AF_XDP") {
            break;
        }
        xsk.recv(64, |f| got.push(f.to_vec()));
    }
    assert_eq!(got.len(), 1, "exactly the one data frame arrives on AF_XDP");
    let f = &got[0];
    assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4 over Ethernet");
    assert_eq!(&f[14 + 12..14 + 16], &CLIENT, "source address");
    assert_eq!(&f[14 + 20..14 + 22], &CLIENT_PORT.to_be_bytes());
    assert_eq!(&f[14 + 22..14 + 24], &PORT.to_be_bytes());
    assert_eq!(&f[14 + 28..], &data[..], "UDP payload");

    // The control packet: on the ordinary socket, and nothing else there.
    let mut buf = [0u8; 2048];
    let (n, from) = udp
        .recv_from(&mut buf)
        .expect("control packet on the UDP socket");
    assert_eq!(&buf[..n], control);
    assert_eq!(from, sa(CLIENT, CLIENT_PORT));
    udp.set_nonblocking(true).expect("nonblocking");
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "neither the data packet nor the unknown peer's packet reaches the socket"
    );

    let s = classifier.stats();
    assert_eq!(s[REDIRECT as usize], 1, "{s:?}");
    assert_eq!(s[REDIRECT_BYTES as usize], f.len() as u64);
    assert_eq!(s[PASS_CONTROL as usize], 1, "{s:?}");
    assert_eq!(s[DROP_UNKNOWN_PEER as usize], 1, "{s:?}");
    assert_eq!(s[PASS_NO_XSK as usize], 0, "{s:?}");
    // ARP went through as not-IP; every frame has exactly one reason.
    assert!(
        s[PASS_NOT_IP as usize] >= 1,
        "the ARP exchange passed: {s:?}"
    );
    let reasons: u64 = (PASS_NOT_IP..=REDIRECT).map(|i| s[i as usize]).sum();
    assert_eq!(s[RX_TOTAL as usize], reasons, "{s:?}");
    let xs = xsk.statistics().expect("XDP_STATISTICS");
    assert_eq!(
        xs.rx_dropped + xs.rx_ring_full + xs.rx_invalid_descs,
        0,
        "{xs:?}"
    );

    // A reply through the tx ring: MACs swapped from the received frame,
    // checksums by etherparse, so the client's kernel accepts it.
    let mut reply = Vec::new();
    let (mut dst_mac, mut src_mac) = ([0u8; 6], [0u8; 6]);
    dst_mac.copy_from_slice(&f[6..12]);
    src_mac.copy_from_slice(&f[0..6]);
    etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(SERVER, CLIENT, 64)
        .udp(PORT, CLIENT_PORT)
        .write(&mut reply, b"reply-through-af-xdp-tx")
        .expect("build reply");
    assert!(xsk.send(&reply).expect("AF_XDP send"), "a tx frame is free");
    let (n, from) = client
        .recv_from(&mut buf)
        .expect("reply on the client socket");
    assert_eq!(&buf[..n], b"reply-through-af-xdp-tx");
    assert_eq!(from, sa(SERVER, PORT));
    // The frame comes back through the completion ring.
    let mut completed = false;
    for _ in 0..200 {
        xsk.complete();
        if xsk.tx_frames_free() == 64 {
            completed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(completed, "tx frame never completed");
    let xs = xsk.statistics().expect("XDP_STATISTICS");
    assert_eq!(xs.tx_invalid_descs, 0, "{xs:?}");

    // Detach before the namespaces go (drop order would do it too).
    classifier.set_drop_unknown_peer(false);
    drop(classifier);
}

/// `lo` has no native XDP: the loader falls back to generic mode, and the
/// steering still works there (AF_XDP in copy mode on `lo`'s only queue).
#[test]
fn falls_back_to_generic_mode_and_still_steers() {
    if !require_root() {
        return;
    }
    const LOCAL: [u8; 4] = [127, 0, 0, 1];
    let ns = Netns::new("vxg");
    let lo = ns.ifindex("lo");
    let (c, mut xsk, udp, client) = ns.run(|| {
        let mut c = Classifier::load();
        c.add_port(PORT);
        c.add_peer(PEER_ID, LOCAL, CLIENT_PORT);
        assert_eq!(c.attach("lo"), AttachMode::Generic);
        let config = XskConfig {
            frame_count: 64,
            tx_frame_count: 0,
            ring_size: 64,
            bind_mode: BindMode::Copy,
            ..XskConfig::default()
        };
        let xsk = XskSocket::bind(lo, 0, &config).expect("bind AF_XDP to lo queue 0");
        c.set_xsk(0, &xsk);
        let udp = UdpSocket::bind(sa(LOCAL, PORT)).expect("bind server socket");
        udp.set_read_timeout(Some(WAIT)).expect("set timeout");
        let client = UdpSocket::bind(sa(LOCAL, CLIENT_PORT)).expect("bind client socket");
        (c, xsk, udp, client)
    });
    let data = frame::data_v2(2, PEER_ID, b"\x00\x00\x00\x07generic");
    let control: &[u8] = b"\x20\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x00\x01";
    client.send_to(&data, sa(LOCAL, PORT)).expect("send data");
    client
        .send_to(control, sa(LOCAL, PORT))
        .expect("send control");

    assert!(
        xsk.wait_readable(WAIT).expect("poll"),
        "data frame on AF_XDP"
    );
    let mut got = Vec::new();
    xsk.recv(8, |f| got.push(f.to_vec()));
    assert_eq!(got.len(), 1);
    assert!(got[0].ends_with(&data), "payload intact");
    let mut buf = [0u8; 256];
    let (n, _) = udp
        .recv_from(&mut buf)
        .expect("control packet on the socket");
    assert_eq!(&buf[..n], control);
    let s = c.stats();
    assert_eq!(s[REDIRECT as usize], 1, "{s:?}");
    assert_eq!(s[PASS_CONTROL as usize], 1, "{s:?}");
}
