//! The fast-path runtime (`FastPath`) on a real veth between two
//! namespaces: it picks the interface, attaches (native or generic),
//! binds AF_XDP on every queue, hands out steered P_DATA_V2 datagrams with
//! the addresses the daemon's socket would report, sends replies it built
//! itself (the peer's kernel checks every checksum), lets control packets
//! reach the UDP socket, drops unknown peer-ids, keeps its UMEM occupancy
//! flat over a long run, and replaces a stale program of ours while
//! leaving a foreign one alone.
//!
//! ```text
//!  ns "fxa…" (client)                        ns "fxb…" (server)
//!  10.78.0.1 / fd78::1   ── veth ──────────► 10.78.0.2 / fd78::2  [FastPath]
//!  UDP :40000 (data, control)                 ├─ P_DATA_V2 ─► AF_XDP ─► recv()
//!             ◄── send_with() (AF_XDP tx) ───┘└─ control ───► UDP socket [::]:1194
//! ```
//!
//! The FastPath and its tokio runtime live on a thread inside the server
//! namespace; the client's sockets are made in the client namespace and
//! used from that same thread (a socket keeps the namespace it was made
//! in), so every exchange runs in bounded lock-step rounds.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use tests::{
    Netns, VethPair,
    bpffs::{self, BpfFs},
    frame, require_root,
};
use vpn_daemon::{
    config::XdpMode,
    io::xdp::{
        fastpath::{FastPath, FastPathConfig, Role},
        loader::AttachMode,
    },
};

const PORT: u16 = 1194;
const CLIENT_PORT: u16 = 40_000;
const CLIENT4: [u8; 4] = [10, 78, 0, 1];
const SERVER4: [u8; 4] = [10, 78, 0, 2];
const CLIENT6: &str = "fd78::1";
const SERVER6: &str = "fd78::2";
const PEER_ID: u32 = 0x00_00_07;
const WAIT: Duration = Duration::from_secs(3);
/// One wait for readiness; `POLLS` of them bound every receive loop (the
/// clock is not read in this workspace's tests).
const POLL: Duration = Duration::from_millis(200);
const POLLS: u32 = 15;

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    (Ipv4Addr::from(a), port).into()
}

fn v6(a: &str, port: u16) -> SocketAddr {
    (a.parse::<Ipv6Addr>().expect("IPv6 literal"), port).into()
}

/// The dual-stack socket's view of an IPv4 address.
fn mapped(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), a.port()).into(),
        other => other,
    }
}

/// Two namespaces joined by one veth, IPv4 on both ends and, when asked,
/// IPv6 too.
struct Topo {
    client: Netns,
    server: Netns,
    client_if: String,
    server_if: String,
}

impl Topo {
    fn new(tag: &str, ipv6: bool) -> Self {
        Self::with_queues(tag, ipv6, 1)
    }

    fn with_queues(tag: &str, ipv6: bool, queues: u32) -> Self {
        let client = Netns::new(&format!("{tag}a"));
        let server = Netns::new(&format!("{tag}b"));
        if !ipv6 {
            client.disable_ipv6();
            server.disable_ipv6();
        }
        let (c_if, s_if) = VethPair::new(&client, &server)
            .queues(queues)
            .addr_a(CLIENT4)
            .addr_b(SERVER4)
            .create();
        if ipv6 {
            client.ip(&[
                "addr",
                "add",
                &format!("{CLIENT6}/64"),
                "dev",
                &c_if.name,
                "nodad",
            ]);
            server.ip(&[
                "addr",
                "add",
                &format!("{SERVER6}/64"),
                "dev",
                &s_if.name,
                "nodad",
            ]);
        }
        Self {
            client,
            server,
            client_if: c_if.name,
            server_if: s_if.name,
        }
    }

    fn client_socket(&self, addr: SocketAddr) -> UdpSocket {
        self.client.run(|| {
            let s = UdpSocket::bind(addr).expect("bind client socket");
            s.set_read_timeout(Some(WAIT)).expect("timeout");
            s
        })
    }
}

fn config(iface: Option<&str>, mode: XdpMode) -> FastPathConfig {
    FastPathConfig {
        mode,
        interface: iface.map(str::to_owned),
        local: None,
        peer_hint: None,
        port: PORT,
        drop_unknown: true,
        role: Role::Server,
        mapped_v4: true,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What `recv` handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    from: SocketAddr,
    local: SocketAddr,
    payload: Vec<u8>,
}

/// Waits (bounded) until `want` datagrams came through `recv`.
fn receive(rt: &tokio::runtime::Runtime, fp: &mut FastPath, want: usize) -> Vec<Got> {
    let mut got = Vec::new();
    for _ in 0..POLLS {
        if got.len() >= want {
            break;
        }
        let ready = rt.block_on(async { tokio::time::timeout(POLL, fp.readable()).await.is_ok() });
        if !ready {
            continue;
        }
        fp.recv(256, &mut |d| {
            got.push(Got {
                from: d.from,
                local: d.local,
                payload: d.payload.to_vec(),
            })
        });
    }
    got
}

/// Sends `payload` to `to` through the fast path; panics when it cannot.
fn send(fp: &mut FastPath, to: SocketAddr, payload: &[u8]) {
    let n = fp.send_with(to, payload.len(), &mut |buf| {
        buf[..payload.len()].copy_from_slice(payload);
        payload.len()
    });
    assert_eq!(n, Some(payload.len()), "fast path send to {to}");
}

fn counter(list: &[(String, u64)], name: &str) -> u64 {
    list.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name} in {list:?}"))
}

/// P_CONTROL_HARD_RESET_CLIENT_V2: session id, no acks, packet-id 0.
const CONTROL: &[u8] = b"\x38\x11\x22\x33\x44\x55\x66\x77\x88\x00\x00\x00\x00\x00";

/// Data in, control to the socket, unknown peer dropped, reply out; on
/// `client`/`server` addresses of one family.
fn exchange(
    topo: &Topo,
    client: SocketAddr,
    server: SocketAddr,
    mode: XdpMode,
) -> (AttachMode, usize) {
    let csock = topo.client_socket(client);
    let iface = topo.server_if.clone();
    topo.server.run(move || {
        let rt = runtime();
        let mut fp = FastPath::start(&config(Some(&iface), mode)).expect("fast path starts");
        assert_eq!(fp.interface(), iface);
        assert!(fp.queue_count() >= 1);
        assert!(!fp.is_zero_copy(), "veth only does copy mode");
        // The daemon's dual-stack socket, for what XDP passes.
        let udp = UdpSocket::bind(v6("::", PORT)).expect("bind [::]:1194");
        udp.set_read_timeout(Some(WAIT)).expect("timeout");
        fp.set_peer(PEER_ID, mapped(client));
        assert_eq!(fp.steered_peers(), vec![(PEER_ID, client)]);

        let data = frame::data_v2(0, PEER_ID, b"\x00\x00\x00\x01ciphertext-and-tag");
        let unknown = frame::data_v2(0, PEER_ID + 1, b"\x00\x00\x00\x01not-ours");
        for p in [&data[..], CONTROL, &unknown[..]] {
            csock.send_to(p, server).expect("client send");
        }
        let got = receive(&rt, &mut fp, 1);
        assert_eq!(
            got,
            vec![Got {
                from: mapped(client),
                local: mapped(server),
                payload: data.clone(),
            }]
        );
        let mut buf = [0u8; 2048];
        let (n, from) = udp.recv_from(&mut buf).expect("control on the UDP socket");
        assert_eq!(&buf[..n], CONTROL);
        assert_eq!(from, mapped(client));
        udp.set_nonblocking(true).expect("nonblocking");
        assert!(
            udp.recv_from(&mut buf).is_err(),
            "neither data nor the unknown peer's packet reached the socket"
        );

        // The reply: headers, lengths and checksums by us; the client's
        // kernel drops the datagram if any of them is wrong.
        let reply = frame::data_v2(0, PEER_ID, b"\x00\x00\x00\x02reply-through-af-xdp");
        send(&mut fp, mapped(client), &reply);
        fp.flush();
        let (n, from) = csock.recv_from(&mut buf).expect("reply at the client");
        assert_eq!(&buf[..n], &reply[..]);
        assert_eq!(from, server);
        // An address the fast path has no path for: the caller's socket.
        let mut called = false;
        let stranger = v4([10, 78, 0, 99], 5);
        assert_eq!(
            fp.send_with(stranger, 10, &mut |_| {
                called = true;
                10
            }),
            None
        );
        assert!(!called, "fill must not run when the socket must be used");

        let c = fp.counters();
        assert_eq!(c.redirected, 1, "{c:?}");
        assert_eq!(counter(&c.passed_by_reason, "control"), 1, "{c:?}");
        assert_eq!(counter(&c.dropped, "unknown_peer"), 1, "{c:?}");
        assert_eq!(counter(&c.dropped, "xsk_rx_dropped"), 0, "{c:?}");
        assert_eq!(counter(&c.dropped, "xsk_tx_invalid"), 0, "{c:?}");
        assert_eq!(
            c.passed,
            c.passed_by_reason.iter().map(|(_, v)| v).sum::<u64>()
        );

        fp.remove_peer(PEER_ID);
        assert!(fp.steered_peers().is_empty());
        (fp.mode(), fp.queue_count())
    })
}

#[test]
fn native_ipv4_data_control_unknown_and_reply() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fx4", false);
    let mode = exchange(
        &topo,
        v4(CLIENT4, CLIENT_PORT),
        v4(SERVER4, PORT),
        XdpMode::Native,
    );
    assert_eq!(mode, (AttachMode::Native, 1));
}

#[test]
fn native_ipv6_underlay_round_trip() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fx6", true);
    let mode = exchange(
        &topo,
        v6(CLIENT6, CLIENT_PORT),
        v6(SERVER6, PORT),
        XdpMode::Native,
    );
    assert_eq!(mode, (AttachMode::Native, 1));
}

#[test]
fn generic_mode_works_too() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxg", false);
    let mode = exchange(
        &topo,
        v4(CLIENT4, CLIENT_PORT),
        v4(SERVER4, PORT),
        XdpMode::Generic,
    );
    assert_eq!(mode, (AttachMode::Generic, 1));
    // Nothing left behind once the FastPath is gone.
    assert!(bpffs::attached_prog_ids(&topo.server, &topo.server_if).is_empty());
}

#[test]
fn every_receive_queue_gets_a_socket() {
    if !require_root() {
        return;
    }
    let topo = Topo::with_queues("fxq", false, 2);
    let got = exchange(
        &topo,
        v4(CLIENT4, CLIENT_PORT),
        v4(SERVER4, PORT),
        XdpMode::Native,
    );
    assert_eq!(got, (AttachMode::Native, 2));
}

#[test]
fn interface_is_found_by_local_and_by_the_route_to_the_peer() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxl", false);
    let iface = topo.server_if.clone();
    topo.server.run(|| {
        let by_local = FastPathConfig {
            local: Some(IpAddr::from(SERVER4)),
            ..config(None, XdpMode::Auto)
        };
        let fp = FastPath::start(&by_local).expect("starts on the interface holding local");
        assert_eq!(fp.interface(), iface);
        assert_eq!(fp.mode(), AttachMode::Native);
        drop(fp);

        // A mapped `local` (as from a dual-stack config) works the same.
        let mapped_local = FastPathConfig {
            local: Some(IpAddr::V6(Ipv4Addr::from(SERVER4).to_ipv6_mapped())),
            ..config(None, XdpMode::Auto)
        };
        let fp = FastPath::start(&mapped_local).expect("starts with a mapped local");
        assert_eq!(fp.interface(), iface);
        drop(fp);

        let by_route = FastPathConfig {
            role: Role::Client,
            drop_unknown: false,
            peer_hint: Some(IpAddr::from(CLIENT4)),
            ..config(None, XdpMode::Auto)
        };
        let fp = FastPath::start(&by_route).expect("starts on the route to the peer");
        assert_eq!(fp.interface(), iface);
        drop(fp);

        // A server with no local and no default route: the one interface up.
        let fp = FastPath::start(&config(None, XdpMode::Auto)).expect("single interface");
        assert_eq!(fp.interface(), iface);
        drop(fp);

        // A client with nothing to go by does not guess.
        let lost = FastPathConfig {
            role: Role::Client,
            ..config(None, XdpMode::Auto)
        };
        assert!(FastPath::start(&lost).is_none());
        // Off is off.
        assert!(FastPath::start(&config(Some(&iface), XdpMode::Off)).is_none());
    });
}

#[test]
fn long_transfer_keeps_umem_occupancy_flat() {
    if !require_root() {
        return;
    }
    const TOTAL: usize = 100_000;
    const BATCH: usize = 64;
    let topo = Topo::new("fxf", false);
    let client = v4(CLIENT4, CLIENT_PORT);
    let server = v4(SERVER4, PORT);
    let csock = topo.client_socket(client);
    let iface = topo.server_if.clone();
    topo.server.run(move || {
        let rt = runtime();
        let mut fp = FastPath::start(&config(Some(&iface), XdpMode::Native)).expect("starts");
        fp.set_peer(PEER_ID, mapped(client));
        let idle = fp.frames_in_flight();
        let mut peak = idle;
        let mut buf = [0u8; 2048];
        let mut sent = 0usize;
        let mut round = 0u32;
        while sent < TOTAL {
            round += 1;
            for i in 0..BATCH {
                let id = ((sent + i) as u32).to_be_bytes();
                let p = frame::data_v2(1, PEER_ID, &[&id[..], &[0xab; 96]].concat());
                csock.send_to(&p, server).expect("client send");
            }
            let got = receive(&rt, &mut fp, BATCH);
            assert_eq!(got.len(), BATCH, "round {round}: all data frames arrive");
            for g in &got {
                // Echo each payload back, as a reply would go.
                send(&mut fp, g.from, &g.payload);
            }
            fp.flush();
            peak = peak.max(fp.frames_in_flight());
            for _ in 0..BATCH {
                let (n, _) = csock.recv_from(&mut buf).expect("echo at the client");
                assert_eq!(n, 4 + 4 + 96);
            }
            sent += BATCH;
        }
        // Completions may lag the client's receive by a moment.
        for _ in 0..600 {
            if fp.frames_in_flight() <= idle {
                break;
            }
            fp.flush();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fp.frames_in_flight(), idle, "every frame came back");
        assert!(
            peak <= idle + 2 * BATCH,
            "in flight stays bounded by one batch: peak {peak}, idle {idle}"
        );
        let c = fp.counters();
        assert!(c.redirected >= sent as u64, "{c:?}");
        assert_eq!(counter(&c.dropped, "xsk_rx_ring_full"), 0, "{c:?}");
        assert_eq!(counter(&c.dropped, "xsk_tx_invalid"), 0, "{c:?}");
    });
}

#[test]
fn stale_pinned_program_of_ours_is_replaced_not_stacked() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxs", false);
    let fs = BpfFs::mount();
    let pin = fs.path("stale_vpn_xdp");
    // A previous run, crashed: our program attached through netlink
    // (generic mode), nothing in this process holding it.
    {
        let mut ebpf = aya::Ebpf::load(&tests::ebpf_object()).expect("load object");
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("vpn_xdp")
            .expect("vpn_xdp")
            .try_into()
            .expect("XDP program");
        prog.load().expect("verifier");
        prog.pin(&pin).expect("pin");
    }
    topo.server.ip(&[
        "link",
        "set",
        "dev",
        &topo.server_if,
        "xdpgeneric",
        "pinned",
        pin.to_str().expect("utf-8 path"),
    ]);
    std::fs::remove_file(&pin).expect("unpin");
    let stale = bpffs::attached_prog_ids(&topo.server, &topo.server_if);
    assert_eq!(
        stale.len(),
        1,
        "the stale program is attached: {}",
        bpffs::link_json(&topo.server, &topo.server_if)
    );

    let iface = topo.server_if.clone();
    let fp = topo
        .server
        .run(|| FastPath::start(&config(Some(&iface), XdpMode::Auto)))
        .expect("starts over a stale program of ours");
    let now = bpffs::attached_prog_ids(&topo.server, &topo.server_if);
    assert_eq!(now.len(), 1, "exactly one program, not stacked: {now:?}");
    assert_ne!(now, stale, "a new program replaced the stale one");
    assert_eq!(fp.mode(), AttachMode::Native);
    drop(fp);
    assert!(bpffs::attached_prog_ids(&topo.server, &topo.server_if).is_empty());
}

#[test]
fn stale_pinned_link_of_ours_is_detached_and_replaced() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxk", false);
    let fs = BpfFs::mount();
    let pin = fs.path("stale_link");
    let iface = topo.server_if.clone();
    // A previous run that pinned its bpf_link and died: the link keeps
    // the program attached, and netlink may not detach it.
    topo.server.run(|| {
        let mut ebpf = aya::Ebpf::load(&tests::ebpf_object()).expect("load object");
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut("vpn_xdp")
            .expect("vpn_xdp")
            .try_into()
            .expect("XDP program");
        prog.load().expect("verifier");
        let id = prog
            .attach(&iface, aya::programs::XdpMode::Skb)
            .expect("attach");
        let link = prog.take_link(id).expect("take link");
        let link = aya::programs::links::FdLink::try_from(link).expect("a bpf_link");
        link.pin(&pin).expect("pin link");
    });
    let stale = bpffs::attached_prog_ids(&topo.server, &topo.server_if);
    assert_eq!(
        stale.len(),
        1,
        "{}",
        bpffs::link_json(&topo.server, &topo.server_if)
    );
    let fp = topo
        .server
        .run(|| FastPath::start(&config(Some(&iface), XdpMode::Auto)))
        .expect("starts over a stale link of ours");
    let now = bpffs::attached_prog_ids(&topo.server, &topo.server_if);
    assert_eq!(now.len(), 1, "exactly one program: {now:?}");
    assert_ne!(now, stale);
    assert_eq!(fp.mode(), AttachMode::Native);
    drop(fp);
    assert!(bpffs::attached_prog_ids(&topo.server, &topo.server_if).is_empty());
}

#[test]
fn foreign_program_is_left_alone() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxo", false);
    let fs = BpfFs::mount();
    let pin = fs.path("foreign");
    {
        let fd = bpffs::load_pass_program("someone_else");
        use std::os::fd::AsFd;
        bpffs::pin(fd.as_fd(), &pin);
    }
    topo.server.ip(&[
        "link",
        "set",
        "dev",
        &topo.server_if,
        "xdpgeneric",
        "pinned",
        pin.to_str().expect("utf-8 path"),
    ]);
    let before = bpffs::attached_prog_ids(&topo.server, &topo.server_if);
    assert_eq!(before.len(), 1);
    let iface = topo.server_if.clone();
    for mode in [XdpMode::Auto, XdpMode::Native, XdpMode::Generic] {
        let started = topo
            .server
            .run(|| FastPath::start(&config(Some(&iface), mode)).is_some());
        assert!(!started, "{mode:?}: must not start over a foreign program");
        assert_eq!(
            bpffs::attached_prog_ids(&topo.server, &topo.server_if),
            before,
            "{mode:?}: the foreign program stays, alone"
        );
    }
    // Leave the interface clean for the namespace's deletion.
    topo.server
        .ip(&["link", "set", "dev", &topo.server_if, "xdpgeneric", "off"]);
}

#[test]
fn path_from_the_neighbour_table_before_any_frame() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxn", false);
    let client = v4(CLIENT4, CLIENT_PORT);
    let server = v4(SERVER4, PORT);
    let csock = topo.client_socket(client);
    let iface = topo.server_if.clone();
    topo.server.run(move || {
        let mut fp = FastPath::start(&config(Some(&iface), XdpMode::Native)).expect("starts");
        let udp = UdpSocket::bind(v6("::", PORT)).expect("bind [::]:1194");
        udp.set_read_timeout(Some(WAIT)).expect("timeout");
        // The handshake goes through the kernel; its ARP exchange leaves
        // the client's MAC in the server's neighbour table.
        csock.send_to(CONTROL, server).expect("client send");
        let mut buf = [0u8; 2048];
        udp.recv_from(&mut buf).expect("control on the socket");

        // Keys established: steered, and reachable before any data frame.
        fp.set_peer(PEER_ID, mapped(client));
        assert!(
            fp.knows(mapped(client)),
            "path from route + neighbour tables"
        );
        let first = frame::data_v2(0, PEER_ID, b"\x00\x00\x00\x01first-words");
        send(&mut fp, mapped(client), &first);
        fp.flush();
        let (n, from) = csock.recv_from(&mut buf).expect("first data at the client");
        assert_eq!(&buf[..n], &first[..]);
        assert_eq!(from, server);

        // No neighbour entry, no path: the caller keeps the socket.
        let ghost = v4([10, 78, 0, 77], 40_001);
        fp.set_peer(PEER_ID + 1, mapped(ghost));
        assert!(!fp.knows(mapped(ghost)));
        assert_eq!(fp.send_with(mapped(ghost), 8, &mut |_| 8), None);
        // Float: the peer moves; its old path goes.
        fp.set_peer(PEER_ID, mapped(ghost));
        assert!(!fp.knows(mapped(client)));
        // Floating back resolves again; removal forgets it.
        fp.set_peer(PEER_ID, client);
        assert!(fp.knows(client));
        fp.remove_peer(PEER_ID);
        assert!(!fp.knows(client));
        fp.set_peer(PEER_ID, mapped(ghost));
        assert_eq!(
            fp.steered_peers(),
            vec![(PEER_ID, ghost), (PEER_ID + 1, ghost)]
        );
    });
}

/// Sends one raw Ethernet frame out of `ifname` (AF_PACKET), from a
/// thread inside `ns`.
fn inject(ns: &Netns, ifname: &str, frame: &[u8]) {
    let ifindex = ns.ifindex(ifname);
    ns.run(|| {
        // SAFETY: plain socket(2); closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: valid buffer and sockaddr_ll of the sizes passed.
        let r = unsafe {
            libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        let err = std::io::Error::last_os_error();
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
        assert_eq!(r, frame.len() as isize, "AF_PACKET send: {err}");
    });
}

#[test]
fn malformed_redirected_frame_is_counted_and_recycled() {
    if !require_root() {
        return;
    }
    let topo = Topo::new("fxm", false);
    let client = v4(CLIENT4, CLIENT_PORT);
    let server_mac = {
        let json = bpffs::link_json(&topo.server, &topo.server_if);
        let at = json.find("\"address\":\"").expect("address in ip -j") + 11;
        let mac: Vec<u8> = json[at..at + 17]
            .split(':')
            .map(|h| u8::from_str_radix(h, 16).expect("hex"))
            .collect();
        <[u8; 6]>::try_from(mac).expect("6 bytes")
    };
    // Well-formed for the classifier (it does not verify IP checksums),
    // but the IPv4 header checksum is wrong: the fast path must drop it.
    let payload = frame::data_v2(0, PEER_ID, b"\x00\x00\x00\x01bad-checksum");
    let mut bad = frame::udp(
        frame::Addr::V4(CLIENT4),
        CLIENT_PORT,
        frame::Addr::V4(SERVER4),
        PORT,
        None,
        &payload,
    );
    bad.bytes[..6].copy_from_slice(&server_mac);
    bad.bytes[14 + 10] ^= 0x5a;
    let good = {
        let mut g = frame::udp(
            frame::Addr::V4(CLIENT4),
            CLIENT_PORT,
            frame::Addr::V4(SERVER4),
            PORT,
            None,
            &payload,
        );
        g.bytes[..6].copy_from_slice(&server_mac);
        g
    };
    let iface = topo.server_if.clone();
    let mut fp = topo.server.run(|| {
        let mut fp = FastPath::start(&config(Some(&iface), XdpMode::Native)).expect("starts");
        fp.set_peer(PEER_ID, client);
        fp
    });
    let idle = fp.frames_in_flight();
    inject(&topo.client, &topo.client_if, &bad.bytes);
    inject(&topo.client, &topo.client_if, &good.bytes);
    let rt = runtime();
    let mut handed = Vec::new();
    let mut taken = 0;
    for _ in 0..POLLS {
        if taken >= 2 {
            break;
        }
        let _ = rt.block_on(async { tokio::time::timeout(POLL, fp.readable()).await });
        taken += fp.recv(16, &mut |d| handed.push(d.payload.to_vec()));
    }
    assert_eq!(taken, 2, "both frames were redirected and taken");
    assert_eq!(handed, vec![payload], "only the good one is handed out");
    let c = fp.counters();
    assert_eq!(c.redirected, 2, "{c:?}");
    assert_eq!(counter(&c.dropped, "malformed_ip_checksum"), 1, "{c:?}");
    assert_eq!(
        fp.frames_in_flight(),
        idle,
        "the bad frame went back to the fill ring"
    );
}

/// A scratch directory removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        let p = std::env::temp_dir().join(tests::unique_name("vpn-fastpath-"));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `name,value` (or tab separated) row `name` of a status file.
fn status_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let l = l.strip_prefix("GLOBAL_STATS").unwrap_or(l);
        let l = l.trim_start_matches([',', '\t']);
        l.strip_prefix(name)?
            .strip_prefix([',', '\t'])?
            .parse()
            .ok()
    })
}

/// Our server and our client, both with `xdp native` on their veth ends:
/// the handshake takes the socket, the pings' data packets take AF_XDP in
/// both directions, and both status files count them.
#[test]
fn daemon_tunnel_carries_data_over_the_fast_path() {
    if !require_root() {
        return;
    }
    let dir = Scratch::new();
    let sns = Netns::new("fxds");
    let cns = Netns::new("fxdc");
    VethPair::new(&sns, &cns)
        .addr_a([10, 98, 0, 1])
        .addr_b([10, 98, 0, 2])
        .create();
    let pki = |n: &str| {
        tests::workspace_root()
            .join("testdata/configs")
            .join(n)
            .display()
            .to_string()
    };
    let status = dir.0.join("server-status.log");
    let client_status = dir.0.join("client-status.log");
    let server_conf = format!(
        "port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.76.0.0 255.255.255.0\n\
         ca {}\ncert {}\nkey {}\ndh none\ntls-crypt {}\nkeepalive 2 10\n\
         status {} 1\nstatus-version 2\nxdp native\nverb 4\n",
        pki("ca.crt"),
        pki("server.crt"),
        pki("server.key"),
        pki("tc.key"),
        status.display()
    );
    let client_conf = format!(
        "client\ndev tun\nproto udp\nremote 10.98.0.1 1194\nnobind\nconnect-retry 1 2\n\
         ca {}\ncert {}\nkey {}\ntls-crypt {}\nremote-cert-tls server\n\
         status {} 1\nxdp native\nverb 4\n",
        pki("ca.crt"),
        pki("client.crt"),
        pki("client.key"),
        pki("tc.key"),
        client_status.display()
    );
    let start = |ns: &Netns, name: &str, conf: &str| {
        let c = dir.0.join(format!("{name}.conf"));
        std::fs::write(&c, conf).expect("write config");
        tests::NsProcess::spawn(
            ns,
            &tests::daemon_binary(),
            &["--config", &c.display().to_string()],
            &dir.0.join(format!("{name}.log")),
        )
    };
    let logs = || {
        ["server", "client"]
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(dir.0.join(format!("{n}.log")));
                format!("{n} log:\n{}\n", log.unwrap_or_default())
            })
            .collect::<String>()
    };
    let mut server = start(&sns, "server", &server_conf);
    // The fast path starts in the background; the client's handshake must
    // meet it attached for the control packets to be counted below.
    let server_log = dir.0.join("server.log");
    let attached = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&server_log).is_ok_and(|l| l.contains("XDP fast path running"))
    });
    assert!(attached, "server fast path\n{}", logs());
    let mut client = start(&cns, "client", &client_conf);
    assert!(
        tests::ping_until(&cns, "10.76.0.1", 20),
        "tunnel up\n{}",
        logs()
    );
    cns.exec(
        "ping",
        &["-q", "-c", "50", "-i", "0.01", "-W", "1", "10.76.0.1"],
    );
    sns.exec(
        "ping",
        &["-q", "-c", "50", "-i", "0.01", "-W", "1", "10.76.0.2"],
    );
    let mut server_text = String::new();
    let mut client_text = String::new();
    let counted = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        server_text = std::fs::read_to_string(&status).unwrap_or_default();
        client_text = std::fs::read_to_string(&client_status).unwrap_or_default();
        status_value(&server_text, "XDP redirected").is_some_and(|n| n >= 100)
            && status_value(&client_text, "XDP redirected").is_some_and(|n| n >= 100)
    });
    assert!(
        counted,
        "both sides took the pings' data packets off AF_XDP\nserver status:\n{server_text}\n\
         client status:\n{client_text}\n{}",
        logs()
    );
    // The handshake went through the kernel socket.
    assert!(
        status_value(&server_text, "XDP passed control").is_some_and(|n| n > 0),
        "{server_text}"
    );
    let log = logs();
    assert_eq!(
        log.matches("XDP fast path running").count(),
        2,
        "both daemons say they run XDP\n{log}"
    );
    let c = client.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(c.and_then(|s| s.code()), Some(0), "client exit\n{}", logs());
    let s = server.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(s.and_then(|s| s.code()), Some(0), "server exit\n{}", logs());
}
