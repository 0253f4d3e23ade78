//! The daemon's XDP fast path end to end, proved from the kernel's side
//! (issue 5): real namespaces, veth, the classifier attached natively
//! (or in generic mode), stock openvpn as the peer.
//!
//! - the bpftool reader agrees with what the loader wrote (the tool the
//!   other tests rely on);
//! - during a bulk transfer the data packets are redirected to AF_XDP and
//!   the control packets reach the socket; after the client leaves, its
//!   peer-id is gone from `PEERS` and a replay of one of its data packets
//!   is dropped in XDP;
//! - a bounded flood of P_DATA_V2 with random peer-ids is dropped in XDP,
//!   one count per packet, while a real client's transfer completes;
//! - a client that floats to a second address goes on on the fast path
//!   once the server has accepted the address;
//! - each of those also with `xdp generic` and with `--xdp off` (which must
//!   attach nothing and add no XDP rows);
//! - client mode steers its one peer (the server) the same way; TCP mode
//!   and `--xdp off` run exactly the plain path.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket},
    time::Duration,
};

use tests::{
    Netns, VethPair,
    bpftool::{ClassifierMaps, LinkXdpMode},
    capture::Capture,
    classifier::Classifier,
    fastpath::{
        FastPathMode, UNDERLAY_IF, assert_log_line, assert_logged_mode, classifier,
        client_statistics_until, data_v2_flood, min_packets, server_status, server_status_until,
        wait_for,
    },
    openvpn::{
        Cipher,
        Impl::{OpenVpn, Ours},
        PORT, Proto, TlsWrap, TunnelSpec, client_config,
    },
    require_root,
    status::{ServerStatus, column_u64},
    topology::{
        READY_TIMEOUT, SERVER_ADDR, Tunnel, bulk_transfer, client_addr, float_client, ping_until,
    },
};
use vpn_common::{opcode, stats::*};
use vpn_daemon::io::xdp::loader::AttachMode;

/// Bytes of a bulk transfer: thousands of data packets, little CI time.
const BULK: u64 = 20 << 20;
/// The common name of the test PKI's client certificate.
const CLIENT_CN: &str = "client";

fn spec() -> TunnelSpec {
    TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm)
}

fn server_sock() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_ADDR, PORT)
}

/// Peer-id and transport address of the one client, from the status file.
fn client_entry(s: &ServerStatus) -> (u32, SocketAddrV4) {
    let row = s
        .client(CLIENT_CN)
        .unwrap_or_else(|| panic!("no CLIENT_LIST row for {CLIENT_CN}: {s:?}"));
    let id = column_u64(row, "Peer ID")
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| panic!("no Peer ID in {row:?}"));
    let real = row
        .get("Real Address")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 Real Address in {row:?}"));
    (id, real)
}

/// Whether an OpenVPN packet is P_DATA_V2 of `peer_id`.
fn is_data_v2_of(payload: &[u8], peer_id: u32) -> bool {
    match payload {
        [first, a, b, c, ..] => {
            opcode::opcode(*first) == opcode::P_DATA_V2
                && u32::from_be_bytes([0, *a, *b, *c]) == peer_id
        }
        _ => false,
    }
}

/// The XDP columns and rows must be there exactly when the fast path is.
fn assert_status_shape(s: &ServerStatus, xdp: bool) {
    let has_cols = s.client_columns.iter().any(|c| c == "XDP RX Packets");
    assert_eq!(has_cols, xdp, "XDP columns in {:?}", s.client_columns);
    assert_eq!(
        !s.xdp_rows().is_empty(),
        xdp,
        "XDP GLOBAL_STATS rows: {:?}",
        s.xdp_rows()
    );
}

/// The loader writes a peer and a port, attaches natively, a packet
/// passes; the bpftool reader must find the program, its mode, the peer
/// and the counters exactly as the loader's own view has them.
#[test]
fn bpftool_reader_agrees_with_the_loader() {
    if !require_root() {
        return;
    }
    let a = Netns::new("xba");
    let b = Netns::new("xbb");
    a.disable_ipv6();
    b.disable_ipv6();
    let (_ea, eb) = VethPair::new(&a, &b)
        .addr_a([10, 78, 0, 1])
        .addr_b([10, 78, 0, 2])
        .create();
    let v6: std::net::Ipv6Addr = "fd00::7".parse().expect("literal");
    let mut c = b.run(|| {
        let mut c = Classifier::load();
        c.add_port(PORT);
        c.add_peer(7, Ipv4Addr::new(10, 78, 0, 1), 40_000);
        c.add_peer(0x00ab_cdef, v6, 5);
        assert_eq!(c.attach(&eb.name), AttachMode::Native);
        c
    });
    let maps = ClassifierMaps::find(&b, &eb.name).expect("the program is attached");
    assert_eq!(maps.attachment.mode, LinkXdpMode::Native);
    assert_eq!(
        maps.attachment.prog_id,
        c.program_info().id(),
        "the program on the interface is the one loaded"
    );
    let want: BTreeMap<u32, SocketAddr> = [
        (7, SocketAddr::from((Ipv4Addr::new(10, 78, 0, 1), 40_000))),
        (0x00ab_cdef, SocketAddr::from((v6, 5))),
    ]
    .into();
    assert_eq!(maps.peers(), want);
    // Three control packets: passed, counted.
    a.run(|| {
        let s = UdpSocket::bind("10.78.0.1:40000").expect("bind");
        for _ in 0..3 {
            s.send_to(
                b"\x38\x11\x22\x33\x44\x55\x66\x77\x88\x00\x00\x00\x00\x00",
                "10.78.0.2:1194",
            )
            .expect("send");
        }
    });
    wait_for(Duration::from_secs(3), || {
        (maps.stat(PASS_CONTROL) == 3).then_some(())
    })
    .unwrap_or_else(|| panic!("PASS_CONTROL via bpftool: {:?}", maps.stats()));
    let own = c.stats();
    let read = maps.stats();
    for (slot, want) in own.iter().enumerate().take(REDIRECT_BYTES as usize + 1) {
        assert_eq!(read.get(slot).copied().unwrap_or(0), *want, "slot {slot}");
    }
    c.remove_peer(7);
    assert!(!maps.peers().contains_key(&7));
}

/// Proof of the path with a stock openvpn client on our server in `mode`.
fn proof_of_path(mode: FastPathMode) {
    proof_of_path_with(mode, &[]);
}

/// [`proof_of_path`] with `extra` lines in the server's config.
fn proof_of_path_with(mode: FastPathMode, extra: &[&str]) {
    let mut s = spec();
    s.server_extra.extend(extra.iter().map(|l| l.to_string()));
    // The client tells the server it leaves; keepalive 1 5 bounds the
    // wait should the notification be lost.
    s.keepalive = Some((1, 5));
    s.client_extra.push("explicit-exit-notify 1".into());
    mode.apply(&mut s, Ours, OpenVpn);
    let mut t = Tunnel::start_server(s, Ours, 1);
    assert_logged_mode(&t.server, mode);
    let maps = classifier(&t.topo.server, mode, "server");
    // Redirected frames never reach a packet socket on the server: the
    // client's outgoing packets are captured on its side.
    let cap = Capture::start(
        &t.topo.clients[0],
        UNDERLAY_IF,
        &format!("udp and dst host {SERVER_ADDR} and dst port {PORT}"),
        3000,
        t.topo.path(),
        "client0",
    );
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, OpenVpn, &text).wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    let (peer_id, real) = client_entry(&server_status(&t, 1));
    let before = maps.map(|m| m.stats());
    t.assert_bulk(0, BULK, None);

    if let (Some(m), Some(before)) = (&maps, &before) {
        let after = m.stats();
        let d = |slot: u32| after[slot as usize] - before[slot as usize];
        assert!(
            d(REDIRECT) >= min_packets(BULK),
            "{} packets redirected for {BULK} bytes: {after:?}",
            d(REDIRECT)
        );
        assert!(
            after[PASS_CONTROL as usize] > 0,
            "no control packet passed to the socket: {after:?}"
        );
        assert_eq!(
            d(PASS_NO_XSK) + d(PASS_UNKNOWN_PEER) + d(DROP_UNKNOWN_PEER),
            0,
            "data packets of the transfer missed the fast path: {after:?}"
        );
        assert_eq!(
            m.peers(),
            BTreeMap::from([(peer_id, SocketAddr::V4(real))]),
            "PEERS holds exactly the client"
        );
        // The daemon's report agrees with the kernel's counters.
        let st = server_status_until(&t, Duration::from_secs(5), "XDP counters", |s| {
            s.global_u64("XDP redirected")
                .is_some_and(|n| n >= after[REDIRECT as usize])
        });
        assert_status_shape(&st, true);
        assert!(
            st.global_u64("XDP passed control").is_some_and(|n| n > 0),
            "no `XDP passed control` row: {:?}",
            st.xdp_rows()
        );
        let row = st.client(CLIENT_CN).expect("client row");
        let rx = column_u64(row, "XDP RX Packets").unwrap_or(0);
        assert!(
            rx >= min_packets(BULK),
            "XDP RX Packets {rx} for a {BULK}-byte upload: {row:?}"
        );
        assert!(
            column_u64(row, "XDP RX Bytes").unwrap_or(0) >= BULK,
            "XDP RX Bytes below the upload: {row:?}"
        );
    } else {
        assert_status_shape(&server_status(&t, 1), false);
    }

    // The client leaves; its peer-id must leave the map.
    t.clients[0].stop();
    let datagrams = cap.finish();
    let replay = datagrams
        .iter()
        .rev()
        .find(|d| d.src == real && is_data_v2_of(&d.payload, peer_id))
        .unwrap_or_else(|| {
            panic!(
                "no P_DATA_V2 of peer-id {peer_id} from {real} among {} captured datagrams",
                datagrams.len()
            )
        })
        .payload
        .clone();
    server_status_until(&t, Duration::from_secs(30), "the client gone", |s| {
        s.clients.is_empty()
    });
    if let Some(m) = &maps {
        wait_for(Duration::from_secs(5), || {
            (!m.peers().contains_key(&peer_id)).then_some(())
        })
        .unwrap_or_else(|| panic!("peer-id {peer_id} still in PEERS: {:?}", m.peers()));
    }

    // A replay of its data from its very address and port.
    let before = maps.map(|m| m.stats());
    t.topo.clients[0].run(|| {
        let s = UdpSocket::bind(real).unwrap_or_else(|e| panic!("bind {real}: {e}"));
        s.send_to(&replay, server_sock()).expect("send the replay");
    });
    if let (Some(m), Some(before)) = (&maps, &before) {
        let after = wait_for(Duration::from_secs(3), || {
            let a = m.stats();
            (a[DROP_UNKNOWN_PEER as usize] > before[DROP_UNKNOWN_PEER as usize]).then_some(a)
        })
        .unwrap_or_else(|| panic!("the replay was not dropped in XDP: {:?}", m.stats()));
        assert_eq!(
            after[DROP_UNKNOWN_PEER as usize] - before[DROP_UNKNOWN_PEER as usize],
            1
        );
        assert_eq!(after[REDIRECT as usize], before[REDIRECT as usize]);
        server_status_until(&t, Duration::from_secs(5), "the drop", |s| {
            s.global_u64("XDP dropped unknown_peer")
                .is_some_and(|n| n >= after[DROP_UNKNOWN_PEER as usize])
        });
    } else {
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(t.server.exited().is_none(), "the server died");
}

/// Our server in `mode` (with `extra` config lines) and a stock openvpn
/// client uploading `bulk` bytes while a second namespace sends `count`
/// P_DATA_V2 with random unknown peer-ids. Returns the tunnel, the
/// classifier's maps (none without XDP) and its counters from before the
/// flood.
fn flood_during_upload(
    mode: FastPathMode,
    extra: &[&str],
    count: u32,
    bulk: u64,
) -> (Tunnel, Option<ClassifierMaps>, Option<Vec<u64>>) {
    let mut s = spec();
    mode.apply(&mut s, Ours, OpenVpn);
    s.server_extra.extend(extra.iter().map(|l| l.to_string()));
    let mut t = Tunnel::start_server(s, Ours, 2);
    assert_logged_mode(&t.server, mode);
    let maps = classifier(&t.topo.server, mode, "server");
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, OpenVpn, &text).wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    let (peer_id, _) = client_entry(&server_status(&t, 1));
    let before = maps.as_ref().map(|m| m.stats());
    let sent = std::thread::scope(|sc| {
        let flood =
            sc.spawn(|| data_v2_flood(&t.topo.clients[1], server_sock(), count, &[peer_id]));
        t.assert_bulk(0, bulk, None);
        flood
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    assert_eq!(sent, count, "the flood's socket refused packets");
    (t, maps, before)
}

/// Waits (bounded) until counter `slot` has grown by `n` since `before`,
/// asserts it grew by exactly `n`, and returns its value.
fn counter_grew_by(m: &ClassifierMaps, slot: u32, before: &[u64], n: u32) -> u64 {
    let want = before[slot as usize] + u64::from(n);
    let got = wait_for(Duration::from_secs(5), || {
        let v = m.stat(slot);
        (v >= want).then_some(v)
    })
    .unwrap_or_else(|| m.stat(slot));
    assert_eq!(
        got - before[slot as usize],
        u64::from(n),
        "{} vs packets sent; all counters {:?}",
        STAT_NAMES.get(slot as usize).unwrap_or(&"?"),
        m.stats()
    );
    got
}

/// 20 000 P_DATA_V2 with random unknown peer-ids from a second namespace
/// while client 0 uploads: every one is dropped in XDP, none redirected.
fn flood_dropped_in_xdp(mode: FastPathMode) {
    let count = 20_000;
    let (mut t, maps, before) = flood_during_upload(mode, &[], count, BULK);
    if let (Some(m), Some(before)) = (&maps, &before) {
        let got = counter_grew_by(m, DROP_UNKNOWN_PEER, before, count);
        server_status_until(&t, Duration::from_secs(5), "the flood's drops", |s| {
            s.global_u64("XDP dropped unknown_peer")
                .is_some_and(|n| n >= got)
        });
    }
    t.assert_ping_both_ways(0);
    assert!(t.server.exited().is_none(), "the server died");
}

/// `xdp-drop-unknown no`: the same flood is passed to the socket
/// (`pass_unknown_peer` counts every packet, nothing is dropped in XDP),
/// where the server drops it itself; the transfer completes all the same.
#[test]
fn flood_passed_up_with_drop_unknown_off() {
    if !require_root() {
        return;
    }
    let count = 5_000;
    let (mut t, maps, before) = flood_during_upload(
        FastPathMode::Native,
        &["xdp-drop-unknown no"],
        count,
        4 << 20,
    );
    let (maps, before) = (
        maps.expect("native classifier"),
        before.expect("native counters"),
    );
    counter_grew_by(&maps, PASS_UNKNOWN_PEER, &before, count);
    assert_eq!(
        maps.stat(DROP_UNKNOWN_PEER),
        0,
        "nothing dropped in XDP with xdp-drop-unknown no"
    );
    t.assert_ping_both_ways(0);
    assert!(t.server.exited().is_none(), "the server died");
}

/// The client's packets start to come from 10.200.0.110 (a second
/// address on its interface plus stateless NAT): once the server has
/// accepted it (`PEERS` and the status file show it), an upload is
/// redirected again and replies leave on the fast path.
fn float_stays_on_fast_path(mode: FastPathMode) {
    let mut s = spec();
    mode.apply(&mut s, Ours, OpenVpn);
    let t = Tunnel::start(s, Ours, &[OpenVpn]);
    assert_logged_mode(&t.server, mode);
    let maps = classifier(&t.topo.server, mode, "server");
    t.assert_ping_both_ways(0);
    t.assert_bulk(0, 2 << 20, None);
    let (peer_id, old) = client_entry(&server_status(&t, 1));
    if let Some(m) = &maps {
        assert_eq!(m.peers().get(&peer_id), Some(&SocketAddr::V4(old)));
    }
    let new = Ipv4Addr::new(10, 200, 0, 110);
    float_client(&t.topo.clients[0], client_addr(0), new);
    assert!(
        ping_until(
            &t.topo.clients[0],
            tests::openvpn::SERVER_TUN_ADDR,
            Duration::from_secs(15)
        ),
        "no tunnel traffic after the float; logs in {}",
        t.topo.path().display()
    );
    let moved = SocketAddrV4::new(new, old.port());
    server_status_until(&t, Duration::from_secs(10), "the new address", |s| {
        s.client(CLIENT_CN)
            .and_then(|r| r.get("Real Address"))
            .is_some_and(|a| *a == moved.to_string())
    });
    if let Some(m) = &maps {
        wait_for(Duration::from_secs(10), || {
            (m.peers().get(&peer_id) == Some(&SocketAddr::V4(moved))).then_some(())
        })
        .unwrap_or_else(|| panic!("PEERS does not follow the float: {:?}", m.peers()));
    }
    let tx_before = |s: &ServerStatus| {
        s.client(CLIENT_CN)
            .and_then(|r| column_u64(r, "XDP TX Packets"))
            .unwrap_or(0)
    };
    let tx0 = tx_before(&server_status(&t, 1));
    let before = maps.map(|m| m.stats());
    let bytes = 10 << 20;
    t.assert_bulk(0, bytes, None);
    if let (Some(m), Some(before)) = (&maps, &before) {
        let after = m.stats();
        let redirected = after[REDIRECT as usize] - before[REDIRECT as usize];
        assert!(
            redirected >= min_packets(bytes),
            "{redirected} packets redirected after the float: {after:?}"
        );
        server_status_until(
            &t,
            Duration::from_secs(5),
            "fast-path TX after the float",
            |s| tx_before(s) > tx0,
        );
    }
    t.assert_ping_both_ways(0);
}

/// Client mode: a stock openvpn server, our client in `mode`; the client's
/// classifier steers the server's packets (the pushed peer-id from the
/// server's address), a download is redirected, and the client's status
/// file reports it.
fn client_mode(mode: FastPathMode) {
    client_mode_with(mode, &[]);
}

/// [`client_mode`] with `extra` lines in our client's config.
fn client_mode_with(mode: FastPathMode, extra: &[&str]) {
    let mut s = spec();
    mode.apply(&mut s, OpenVpn, Ours);
    s.client_extra.extend(extra.iter().map(|l| l.to_string()));
    let mut t = Tunnel::start_server(s, OpenVpn, 1);
    let status = t.topo.path().join("client0-status.txt");
    t.spec
        .client_extra
        .push(format!("status {} 1", status.display()));
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    assert_logged_mode(&t.clients[0], mode);
    let maps = classifier(&t.topo.clients[0], mode, "client");
    t.assert_ping_both_ways(0);
    let (peer_id, _) = client_entry(&server_status(&t, 1));
    if let Some(m) = &maps {
        assert_eq!(
            m.peers(),
            BTreeMap::from([(peer_id, SocketAddr::V4(server_sock()))]),
            "the client steers exactly its server"
        );
    }
    let before = maps.map(|m| m.stats());
    let down = bulk_transfer(
        &t.topo.server,
        &t.topo.clients[0],
        t.client_tun_addr(0),
        5002,
        BULK,
        None,
    )
    .unwrap_or_else(|e| panic!("download failed: {e}"));
    assert!(down.intact(BULK), "download damaged: {down:?}");
    t.assert_bulk(0, 4 << 20, None);
    if let (Some(m), Some(before)) = (&maps, &before) {
        let after = m.stats();
        let redirected = after[REDIRECT as usize] - before[REDIRECT as usize];
        assert!(
            redirected >= min_packets(BULK),
            "the client redirected {redirected} packets of a {BULK}-byte download"
        );
        let st = client_statistics_until(&status, Duration::from_secs(5), "XDP rows", |s| {
            s.u64("XDP redirected")
                .is_some_and(|n| n >= after[REDIRECT as usize])
        });
        assert!(st.u64("TUN/TAP write bytes").unwrap_or(0) >= BULK);
    } else {
        let st = client_statistics_until(&status, Duration::from_secs(5), "the block", |_| true);
        assert!(st.xdp_rows().is_empty(), "XDP rows without XDP: {st:?}");
    }
}

/// Ours with ours where the fast path must not run: TCP (even with `xdp
/// native` configured: it only accelerates UDP) or `--xdp off`. Nothing is
/// attached on either side, no XDP rows or columns appear, the logs say
/// why, and a transfer works on the plain path.
fn plain_path_only(proto: Proto, mode: FastPathMode) {
    let mut s = TunnelSpec::new(proto, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    mode.apply(&mut s, Ours, Ours);
    let mut t = Tunnel::start_server(s, Ours, 1);
    let status = t.topo.path().join("client0-status.txt");
    t.spec
        .client_extra
        .push(format!("status {} 1", status.display()));
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    for (ns, who) in [(&t.topo.server, "server"), (&t.topo.clients[0], "client")] {
        assert_eq!(
            tests::bpftool::xdp_attachment(ns, UNDERLAY_IF),
            None,
            "{who}: an XDP program is attached on the plain path"
        );
    }
    for peer in [&t.server, &t.clients[0]] {
        match mode {
            FastPathMode::Off => assert_log_line(peer, &["xdp off"]),
            _ => assert_log_line(peer, &["xdp", "plain"]),
        }
    }
    t.assert_ping_both_ways(0);
    t.assert_bulk(0, 10 << 20, None);
    assert_status_shape(&server_status(&t, 1), false);
    let st = client_statistics_until(&status, Duration::from_secs(5), "the block", |_| true);
    assert!(st.xdp_rows().is_empty(), "XDP rows without XDP: {st:?}");
}

macro_rules! per_mode {
    ($f:ident) => {
        mod $f {
            use super::*;
            #[test]
            fn native() {
                if require_root() {
                    $f(FastPathMode::Native);
                }
            }
            #[test]
            fn generic() {
                if require_root() {
                    $f(FastPathMode::Generic);
                }
            }
            #[test]
            fn xdp_off() {
                if require_root() {
                    $f(FastPathMode::Off);
                }
            }
        }
    };
}

per_mode!(proof_of_path);

/// The hardening nearly every real server config has: `user nobody` and
/// `group nogroup`. The program must be loaded, its maps made and its
/// sockets bound before the privileges go; the client's peer-id is still
/// inserted and removed afterwards, through the kept descriptors.
#[test]
fn fast_path_under_user_nobody() {
    if require_root() {
        proof_of_path_with(FastPathMode::Auto, &["user nobody", "group nogroup"]);
    }
}

/// `xdp native` where native XDP cannot run (`lo`): the daemon refuses to
/// start, saying why, instead of running on sockets; only `xdp auto`
/// falls back.
#[test]
fn a_strict_xdp_mode_that_cannot_start_refuses_to_run() {
    if !require_root() {
        return;
    }
    let topo = tests::topology::Topology::new(1);
    let pki = tests::openvpn::Pki::new(&topo.path().join("pki"));
    let mut s = spec();
    s.server_extra
        .extend(["xdp native".to_string(), "xdp-interface lo".to_string()]);
    let text = tests::openvpn::server_config(
        &s,
        &pki,
        &SERVER_ADDR.to_string(),
        &topo.path().join("status.txt"),
    );
    let mut srv = tests::openvpn::Peer::start(Ours, &topo.server, topo.path(), "server", &text);
    let status = srv
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the server kept running: {}", srv.log_text()));
    assert!(!status.success(), "exit status {status:?}");
    let log = srv.log_text();
    assert!(
        log.contains("xdp native: the XDP fast path could not start in that mode"),
        "no reason in the log: {log}"
    );
}
per_mode!(flood_dropped_in_xdp);
per_mode!(float_stays_on_fast_path);

#[test]
fn client_mode_native() {
    if require_root() {
        client_mode(FastPathMode::Native);
    }
}

/// A client config with `user nobody` / `group nogroup`: the client's fast
/// path is set up before the privileges go, and steers its server.
#[test]
fn client_mode_under_user_nobody() {
    if require_root() {
        client_mode_with(FastPathMode::Auto, &["user nobody", "group nogroup"]);
    }
}

/// A client asked for `xdp native` where it cannot run (`lo`) refuses to
/// start, as the server does.
#[test]
fn a_client_in_a_strict_xdp_mode_that_cannot_start_refuses_to_run() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), OpenVpn, 1);
    t.spec
        .client_extra
        .extend(["xdp native".to_string(), "xdp-interface lo".to_string()]);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    let c = t.add_client(0, Ours, &text);
    let status = c
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the client kept running: {}", c.log_text()));
    assert!(!status.success(), "exit status {status:?}");
    assert!(
        c.log_text()
            .contains("xdp native: the XDP fast path could not start in that mode"),
        "no reason in the log: {}",
        c.log_text()
    );
}

#[test]
fn client_mode_generic() {
    if require_root() {
        client_mode(FastPathMode::Generic);
    }
}

#[test]
fn tcp_runs_the_plain_path() {
    if require_root() {
        plain_path_only(Proto::Tcp, FastPathMode::Native);
    }
}

#[test]
fn udp_xdp_off_runs_the_plain_path() {
    if require_root() {
        plain_path_only(Proto::Udp, FastPathMode::Off);
    }
}
