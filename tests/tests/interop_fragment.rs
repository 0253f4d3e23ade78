//! `fragment 900` against stock openvpn 2.6.14, both directions (our server
//! with an openvpn client, an openvpn server with our client), across an
//! underlay whose MTU the test lowers to 1000 and on which IP-fragmented
//! data packets are dropped: a full-size tunnel packet (tun-mtu 1500) only
//! gets through cut by OpenVPN's own fragment layer. (Control packets, up
//! to tls-mtu 1250 and not covered by `fragment` in 2.6 either, still
//! cross as IP fragments.)
//!
//! Each cell: large pings with DF (`ping -s 1400 -M do`) both ways, a bulk
//! TCP transfer both ways with matching SHA-256, and proof from a capture
//! on each sender's underlay that the pieces happened: more data datagrams
//! than tun packets, every one within the 900-byte UDP payload limit. With
//! `mssfix 0` TCP segments are full-size (so they are cut too); with a bare
//! `mssfix` it follows `fragment` as in 2.6 and they fit whole.

use std::{net::Ipv4Addr, process::Command};

use tests::{
    Netns,
    capture::{Capture, Datagram},
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn, Ours},
        Peer, Pki, Proto, SERVER_TUN_ADDR, TlsWrap, TunnelSpec, client_config, server_config,
    },
    require_root,
    topology::{READY_TIMEOUT, SERVER_ADDR, Topology, Tunnel, bulk_transfer, client_addr},
};

/// `fragment N` of every cell.
const FRAGMENT: usize = 900;
/// The underlay MTU: below a full-size tunnel packet, above a piece.
const LINK_MTU: &str = "1000";
/// Pings per direction; each is one 1428-byte tun packet.
const PINGS: usize = 5;
/// Bulk bytes per direction.
const BULK: u64 = 6 << 20;

/// Lowers `eth0`'s MTU in `ns` and drops the first IP fragment of every
/// P_DATA_V1/V2 datagram arriving there (opcode 6 or 9 in the top five
/// bits of the first UDP payload byte), before the kernel could reassemble
/// it (priority below conntrack's defragmentation): only OpenVPN-level
/// pieces carry data across. Also makes the capture see single datagrams.
fn narrow_path(ns: &Netns) {
    ns.ip(&["link", "set", "eth0", "mtu", LINK_MTU]);
    // Our sender batches equal pieces with UDP GSO; segmenting them before
    // the packet socket tap lets the capture see each datagram.
    ns.exec("ethtool", &["-K", "eth0", "tx-udp-segmentation", "off"]);
    let rules = "table ip nofrag {\n\
         chain pre { type filter hook prerouting priority -450; meta l4proto udp ip frag-off & 0x3fff == 0x2000 @th,64,5 { 6, 9 } counter drop; }\n\
         }\n";
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name(), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("nft: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin
            .write_all(rules.as_bytes())
            .unwrap_or_else(|e| panic!("nft stdin: {e}"));
    }
    let st = child.wait().unwrap_or_else(|e| panic!("nft: {e}"));
    assert!(st.success(), "nft failed in {}", ns.name());
}

/// `count` pings of `size` bytes with DF set from `ns` to `dst`; how many
/// replies came back.
fn big_ping(ns: &Netns, dst: &str, size: usize, count: usize) -> usize {
    let o = Command::new("ip")
        .args(["netns", "exec", ns.name(), "ping", "-n", "-q", "-M", "do"])
        .args(["-s", &size.to_string(), "-c", &count.to_string()])
        .args(["-i", "0.2", "-W", "2", dst])
        .output()
        .unwrap_or_else(|e| panic!("ping: {e}"));
    let text = String::from_utf8_lossy(&o.stdout);
    // "5 packets transmitted, 5 received, 0% packet loss, time 802ms"
    text.split(',')
        .find_map(|f| f.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `server` and one `client` with `extra` on both sides, the path
/// narrowed before either runs.
fn start(server: Impl, client: Impl, extra: &[&str], verb: u8) -> Tunnel {
    start_xdp(server, client, extra, verb, false)
}

/// [`start`], with our side's XDP fast path left on (`xdp auto`) when `xdp`.
fn start_xdp(server: Impl, client: Impl, extra: &[&str], verb: u8, xdp: bool) -> Tunnel {
    let mut spec = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    for e in extra {
        spec.server_extra.push((*e).to_owned());
        spec.client_extra.push((*e).to_owned());
    }
    // 4: 2.6's fragment frame; 7: its options-string checks.
    spec.server_extra.push(format!("verb {verb}"));
    spec.client_extra.push(format!("verb {verb}"));
    // Frames sent through AF_XDP bypass packet sockets, and the proof
    // here is a capture: our side runs the socket path.
    let off = vec!["--xdp".to_owned(), "off".to_owned()];
    if server == Ours && !xdp {
        spec.server_args = off.clone();
    }
    if client == Ours && !xdp {
        spec.client_args = off;
    }
    let topo = Topology::new(1);
    narrow_path(&topo.server);
    narrow_path(&topo.clients[0]);
    let pki = Pki::new(&topo.path().join("pki"));
    let text = server_config(
        &spec,
        &pki,
        &SERVER_ADDR.to_string(),
        &topo.path().join("status.txt"),
    );
    let mut srv = Peer::start_with_args(
        server,
        &topo.server,
        topo.path(),
        "server",
        &text,
        &spec.server_args,
    );
    srv.wait_ready(READY_TIMEOUT);
    let mut t = Tunnel {
        clients: Vec::new(),
        server: srv,
        spec,
        pki,
        topo,
    };
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, client, &text).wait_ready(READY_TIMEOUT);
    t
}

/// Stops a capture once tcpdump has read what the kernel holds for it: it
/// takes packets from its ring a block at a time, a block at the latest
/// after libpcap's 1 s timeout.
fn finish(cap: Capture) -> Vec<Datagram> {
    std::thread::sleep(std::time::Duration::from_millis(2500));
    cap.finish()
}

/// Data datagrams (P_DATA_V1/V2) of a capture.
fn data(d: &[Datagram]) -> Vec<usize> {
    d.iter()
        .filter(|g| matches!(g.payload.first().map(|b| b >> 3), Some(6 | 9)))
        .map(|g| g.payload.len())
        .collect()
}

/// Pings `PINGS` full-size packets from `from` to `dst` while capturing
/// `from`'s outgoing UDP to `peer`, and checks they crossed in pieces.
fn pings_cross_in_pieces(t: &Tunnel, from: &Netns, dst: &str, peer: Ipv4Addr, label: &str) {
    let cap = Capture::start(
        from,
        "eth0",
        &format!("udp and dst host {peer}"),
        2000,
        t.topo.path(),
        label,
    );
    let got = big_ping(from, dst, 1400, PINGS);
    let sizes = data(&finish(cap));
    assert_eq!(
        got,
        PINGS,
        "{label}: {got} of {PINGS} 1428-byte pings through the tunnel; logs in {}",
        t.topo.path().display()
    );
    assert!(
        sizes.iter().all(|n| *n <= FRAGMENT),
        "{label}: a UDP payload above {FRAGMENT}: {sizes:?}"
    );
    // Each 1428-byte ping is two pieces of about 720 bytes; keepalive
    // pings are far smaller.
    let pieces = sizes.iter().filter(|n| **n > 600).count();
    assert!(
        pieces >= 2 * PINGS,
        "{label}: {pieces} large datagrams for {PINGS} pings: {sizes:?}"
    );
}

/// One cell: pings and bulk both ways, with a capture on each side.
fn cell(server: Impl, client: Impl, mssfix: &str) {
    cell_with(server, client, mssfix, None, 872);
}

/// [`cell`] with another data cipher, and the piece size 2.6 must log.
fn cell_with(server: Impl, client: Impl, mssfix: &str, cipher: Option<&str>, max_frag: usize) {
    if !require_root() {
        return;
    }
    let fragment = format!("fragment {FRAGMENT}");
    let ciphers = cipher.map(|c| format!("data-ciphers {c}"));
    let mut extra = vec![fragment.as_str(), mssfix];
    extra.extend(ciphers.as_deref());
    let t = start(server, client, &extra, 4);
    t.assert_ping_both_ways(0);
    let cli = &t.topo.clients[0];
    let cli_tun = t.client_tun_addr(0).to_string();
    pings_cross_in_pieces(&t, cli, SERVER_TUN_ADDR, SERVER_ADDR, "up");
    pings_cross_in_pieces(&t, &t.topo.server, &cli_tun, client_addr(0), "down");

    // Bulk both ways, each under a capture of its sender.
    let srv_tun: Ipv4Addr = SERVER_TUN_ADDR.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    let cli_tun: Ipv4Addr = cli_tun.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    for (from, to, to_addr, peer, port, label) in [
        (cli, &t.topo.server, srv_tun, SERVER_ADDR, 5001, "bulk-up"),
        (
            &t.topo.server,
            cli,
            cli_tun,
            client_addr(0),
            5002,
            "bulk-down",
        ),
    ] {
        let cap = Capture::start(
            from,
            "eth0",
            &format!("udp and dst host {peer}"),
            60_000,
            t.topo.path(),
            label,
        );
        let x = bulk_transfer(from, to, to_addr, port, BULK, None)
            .unwrap_or_else(|e| panic!("{label} transfer failed: {e}"));
        let sizes = data(&finish(cap));
        assert!(
            x.intact(BULK),
            "{label}: {} of {BULK} bytes, sha256 {:x?} vs {:x?}",
            x.bytes,
            x.sent_sha256,
            x.received_sha256
        );
        assert!(
            sizes.iter().all(|n| *n <= FRAGMENT),
            "{label}: a UDP payload above {FRAGMENT}"
        );
        // At least one tun packet per 1448-byte segment; cut in two
        // without mssfix, whole (segments of at most 804 bytes) with it.
        let segments = BULK as usize / 1448;
        if mssfix == "mssfix 0" {
            assert!(
                sizes.len() > segments * 3 / 2,
                "{label}: {} data datagrams for at least {segments} full-size segments",
                sizes.len()
            );
        } else {
            assert!(
                sizes.len() >= segments,
                "{label}: only {} data datagrams",
                sizes.len()
            );
        }
        eprintln!(
            "{label} {}->{} {mssfix:?}: {:.0} Mbit/s",
            client.label(),
            server.label(),
            x.mbit_s()
        );
    }
    // openvpn's own frame after cipher negotiation (verb 4) has the piece
    // size ours computes: for AES-256-GCM with P_DATA_V2 900 - 24 - 4.
    let peer = if server == OpenVpn {
        &t.server
    } else {
        &t.clients[0]
    };
    assert!(
        peer.log_text()
            .lines()
            .any(|l| l.contains("Fragmentation MTU parms")
                && l.contains(&format!("max_frag:{max_frag} "))),
        "openvpn's fragment frame differs; logs in {}",
        t.topo.path().display()
    );
    // Where the path is too narrow for whole packets, TCP segments are cut
    // too; openvpn logs none of its "FRAG_IN error" lines for our pieces.
    for p in [&t.server, &t.clients[0]] {
        assert_eq!(
            p.count("FRAG_IN error"),
            0,
            "{} refused pieces",
            p.imp.label()
        );
    }
}

#[test]
fn our_server_openvpn_client_no_mssfix() {
    cell(Ours, OpenVpn, "mssfix 0");
}

/// AES-256-CBC + HMAC-SHA1: the piece size also counts IV, HMAC, padding
/// and the packet id inside the ciphertext (900-40 -> 847 -> -4 -4 = 839).
#[test]
fn cbc_our_server_openvpn_client() {
    cell_with(Ours, OpenVpn, "mssfix 0", Some("AES-256-CBC"), 839);
}

#[test]
fn our_server_openvpn_client_mssfix() {
    cell(Ours, OpenVpn, "mssfix");
}

#[test]
fn openvpn_server_our_client_no_mssfix() {
    cell(OpenVpn, Ours, "mssfix 0");
}

#[test]
fn openvpn_server_our_client_mssfix() {
    cell(OpenVpn, Ours, "mssfix");
}

/// The control: without `fragment` the narrowed path carries no
/// full-size tunnel packet (so the cells above prove the pieces), while
/// small ones pass.
#[test]
fn narrowed_path_blocks_whole_full_size_packets() {
    if !require_root() {
        return;
    }
    let t = start(Ours, OpenVpn, &[], 3);
    t.assert_ping_both_ways(0);
    let cli_tun = t.client_tun_addr(0).to_string();
    assert_eq!(big_ping(&t.topo.clients[0], SERVER_TUN_ADDR, 1400, 2), 0);
    assert_eq!(big_ping(&t.topo.server, &cli_tun, 1400, 2), 0);
    assert_eq!(big_ping(&t.topo.server, &cli_tun, 800, 2), 2);
}

/// 2.6 compares the peer's options string with the one it expects and
/// warns (at verb 7) on each difference: ours carries `mtu-dynamic` and
/// the link-mtu with the fragment header, so there is none.
fn options_strings_agree(server: Impl, client: Impl) {
    if !require_root() {
        return;
    }
    let t = start(server, client, &[&format!("fragment {FRAGMENT}")], 7);
    t.assert_ping_both_ways(0);
    let peer = if server == OpenVpn {
        &t.server
    } else {
        &t.clients[0]
    };
    let log = peer.log_text();
    let expected = log
        .lines()
        .find(|l| l.contains("Expected Remote Options String"))
        .unwrap_or_default();
    assert!(
        expected.contains(",mtu-dynamic,") && expected.contains("link-mtu 1545,"),
        "openvpn expects: {expected}"
    );
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("is used inconsistently") || l.contains("config but missing in"))
        .collect();
    assert!(warnings.is_empty(), "openvpn: {warnings:#?}");
}

#[test]
fn options_string_matches_openvpn_client() {
    options_strings_agree(Ours, OpenVpn);
}

#[test]
fn options_string_matches_openvpn_server() {
    options_strings_agree(OpenVpn, Ours);
}

/// With the XDP fast path on, pieces arrive through AF_XDP and leave
/// through it (no packet socket sees those frames, so no capture here):
/// DF pings and a bulk transfer both ways with their hashes.
fn fast_path_cell(server: Impl, client: Impl) {
    if !require_root() {
        return;
    }
    let mut t = start_xdp(
        server,
        client,
        &[&format!("fragment {FRAGMENT}"), "mssfix 0"],
        3,
        true,
    );
    let dir = t.topo.path().display().to_string();
    let ours = if server == Ours {
        &mut t.server
    } else {
        &mut t.clients[0]
    };
    // The fast path comes up in the background after start-up.
    assert!(
        ours.wait_for_nth(
            "XDP fast path running",
            1,
            std::time::Duration::from_secs(20)
        ),
        "no fast path; logs in {dir}"
    );
    t.assert_ping_both_ways(0);
    let cli = &t.topo.clients[0];
    let cli_tun = t.client_tun_addr(0);
    assert_eq!(big_ping(cli, SERVER_TUN_ADDR, 1400, PINGS), PINGS);
    assert_eq!(
        big_ping(&t.topo.server, &cli_tun.to_string(), 1400, PINGS),
        PINGS
    );
    t.assert_bulk(0, BULK, None);
    let x = bulk_transfer(&t.topo.server, cli, cli_tun, 5002, BULK, None)
        .unwrap_or_else(|e| panic!("bulk-down transfer failed: {e}"));
    assert!(x.intact(BULK), "bulk-down: {} of {BULK} bytes", x.bytes);
}

#[test]
fn fast_path_our_server_openvpn_client() {
    fast_path_cell(Ours, OpenVpn);
}

#[test]
fn fast_path_openvpn_server_our_client() {
    fast_path_cell(OpenVpn, Ours);
}
