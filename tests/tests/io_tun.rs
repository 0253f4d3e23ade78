//! The tun device and the route table in real network namespaces.
//!
//! 1. A tun device with IPv4 (p2p) and IPv6 addresses and pushed-style
//!    routes; `ping` and `ping -6` to addresses behind it are answered by a
//!    user-space echo that reads the tun queue and writes the reply; the
//!    routes disappear on teardown. Run without offload (one queue) and
//!    with offload and two queues.
//! 2. Two namespaces joined by two tun devices and a user-space forwarder
//!    (the VPN data path without crypto): a TCP transfer passes intact,
//!    with and without tun offload, and prints its throughput.
//!
//! ```text
//!  ns A: ping 10.99.0.5 ─► route 10.99.0.0/24 via 10.98.0.2 ─► tunA ─► echo task ─┐
//!        ◄───────────────────────────────────── tunA ◄── ICMP echo reply ◄────────┘
//!
//!  ns A: TCP client ─► tunA ──► forwarder task ──► tunB ─► ns B: TCP server
//! ```

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tests::{Netns, require_root, unique_name};
use tokio::runtime::Runtime;
use vpn_daemon::io::{
    internal::tun::{Tun, TunConfig, TunIpv4, TunQueue},
    route::{Route, RouteTable},
};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The ICMP (v4 or v6) echo reply to `pkt`, if it is an echo request.
fn echo_reply(pkt: &[u8]) -> Option<Vec<u8>> {
    let s = SlicedPacket::from_ip(pkt).ok()?;
    let mut out = Vec::new();
    match (s.net?, s.transport?) {
        (NetSlice::Ipv4(ip), TransportSlice::Icmpv4(icmp)) => {
            let Icmpv4Type::EchoRequest(e) = icmp.icmp_type() else {
                return None;
            };
            let h = ip.header();
            PacketBuilder::ipv4(h.destination(), h.source(), 64)
                .icmpv4_echo_reply(e.id, e.seq)
                .write(&mut out, icmp.payload())
                .ok()?;
        }
        (NetSlice::Ipv6(ip), TransportSlice::Icmpv6(icmp)) => {
            let Icmpv6Type::EchoRequest(e) = icmp.icmp_type() else {
                return None;
            };
            let h = ip.header();
            PacketBuilder::ipv6(h.destination(), h.source(), 64)
                .icmpv6_echo_reply(e.id, e.seq)
                .write(&mut out, icmp.payload())
                .ok()?;
        }
        _ => return None,
    }
    Some(out)
}

/// Answers echo requests read from `q` until the task is aborted.
async fn echo(q: Arc<TunQueue>, replies: Arc<AtomicUsize>) {
    let mut rx = q.rx_batch(64, 32, 1500);
    let mut tx = q.tx_batch(64);
    loop {
        if q.recv_batch(&mut rx).await.is_err() {
            return;
        }
        for p in rx.iter() {
            let Some(r) = echo_reply(p) else { continue };
            // IPv6 replies take the single-packet path, IPv4 the batch.
            if r.first().is_some_and(|v| v >> 4 == 6) {
                let sent = q.send(&r).await.is_ok();
                replies.fetch_add(usize::from(sent), Ordering::Relaxed);
            } else {
                tx.push(&r);
            }
        }
        let n = tx.len();
        // A truncated packet in every batch: it must not cost the replies.
        tx.push(&[0x60, 0, 0]);
        if q.send_batch(&mut tx).await.is_ok() {
            replies.fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn ping(ns: &Netns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
        ])
        .args(args)
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ping {args:?} failed: {text}");
    text
}

fn routes_of(ns: &Netns, fam: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name(), fam, "route", "show"])
        .output()
        .expect("ip route show");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ping_through_tun(queues: usize, offload: bool) {
    if !require_root() {
        return;
    }
    let ns = Netns::new("iot");
    let rt = runtime();
    let name = unique_name("tn");
    let cfg = TunConfig {
        name: Some(name.clone()),
        mtu: 1400,
        ipv4: Some(TunIpv4::PointToPoint {
            local: Ipv4Addr::new(10, 98, 0, 1),
            remote: Ipv4Addr::new(10, 98, 0, 2),
        }),
        ipv6: Some(("fd98::1".parse().expect("v6"), 64)),
        queues,
        offload,
        tx_queue_len: Some(1000),
        tap: false,
        mac: None,
    };
    let tun = ns.run(|| {
        let _g = rt.enter();
        Tun::open(&cfg).expect("open tun")
    });
    assert_eq!(tun.name(), name);
    assert_eq!(tun.queues().len(), queues);
    assert_eq!(tun.offload(), offload);
    // Interface ioctls act in the calling thread's namespace.
    assert_eq!(ns.run(|| tun.mtu()).expect("mtu"), 1400);
    let addrs = ns.run(|| tun.addresses()).expect("addresses");
    assert!(
        addrs.contains(&Ipv4Addr::new(10, 98, 0, 1).into()),
        "{addrs:?}"
    );

    let mut routes = RouteTable::in_netns(ns.name());
    routes
        .add_route(Route {
            dst: "10.99.0.0/24".parse().expect("net"),
            via: Some(Ipv4Addr::new(10, 98, 0, 2).into()),
            dev: Some(name.clone()),
            metric: None,
        })
        .expect("route v4");
    routes
        .add_route(Route {
            dst: "fd99::/64".parse().expect("net"),
            via: None,
            dev: Some(name.clone()),
            metric: Some(10),
        })
        .expect("route v6");
    routes
        .add_address(&name, "10.98.1.1/32".parse().expect("net"), None)
        .expect("second address");
    assert!(routes_of(&ns, "-4").contains(&format!("10.99.0.0/24 via 10.98.0.2 dev {name}")));

    let replies = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = tun
        .queues()
        .iter()
        .map(|q| rt.spawn(echo(q.clone(), replies.clone())))
        .collect();
    let v4 = ping(&ns, &["10.99.0.5"]);
    assert!(v4.contains("3 received"), "{v4}");
    let v6 = ping(&ns, &["-6", "fd99::5"]);
    assert!(v6.contains("3 received"), "{v6}");
    assert!(replies.load(Ordering::Relaxed) >= 6);
    for t in &tasks {
        t.abort();
    }

    let errors = routes.teardown();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!routes_of(&ns, "-4").contains("10.99.0.0/24"));
    assert!(!routes_of(&ns, "-6").contains("fd99::/64"));
    assert_eq!(routes.installed(), 0);
}

#[test]
fn ping_is_answered_through_a_single_queue_tun() {
    ping_through_tun(1, false);
}

#[test]
fn ping_is_answered_through_an_offloaded_multi_queue_tun() {
    ping_through_tun(2, true);
}

/// Moves packets from `from` to `to` until aborted; counts them.
async fn forward(
    from: Arc<TunQueue>,
    to: Arc<TunQueue>,
    count: Arc<AtomicUsize>,
    reads: Arc<AtomicUsize>,
) {
    let mut rx = from.rx_batch(128, 0, 1500);
    let mut tx = to.tx_batch(128);
    loop {
        if from.recv_batch(&mut rx).await.is_err() {
            return;
        }
        for p in rx.iter() {
            tx.push(p);
        }
        count.fetch_add(rx.len(), Ordering::Relaxed);
        reads.fetch_add(1, Ordering::Relaxed);
        if to.send_batch(&mut tx).await.is_err() {
            return;
        }
    }
}

fn tcp_between_tuns(offload: bool) {
    if !require_root() {
        return;
    }
    let (ns_a, ns_b) = (Netns::new("iofa"), Netns::new("iofb"));
    let rt = runtime();
    let a = Ipv4Addr::new(10, 97, 0, 1);
    let b = Ipv4Addr::new(10, 97, 0, 2);
    let open = |ns: &Netns, local, remote| {
        let cfg = TunConfig {
            ipv4: Some(TunIpv4::PointToPoint { local, remote }),
            offload,
            ..TunConfig::from_dev("tun")
        };
        ns.run(|| {
            let _g = rt.enter();
            Tun::open(&cfg).expect("open tun")
        })
    };
    let (tun_a, tun_b) = (open(&ns_a, a, b), open(&ns_b, b, a));
    assert!(tun_a.name().starts_with("tun"), "{}", tun_a.name());
    let packets = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let qa = tun_a.queues()[0].clone();
    let qb = tun_b.queues()[0].clone();
    let t1 = rt.spawn(forward(
        qa.clone(),
        qb.clone(),
        packets.clone(),
        reads.clone(),
    ));
    let t2 = rt.spawn(forward(qb, qa, packets.clone(), reads.clone()));

    const TOTAL: usize = 64 << 20;
    let listener = ns_b.run(|| TcpListener::bind(SocketAddr::from((b, 5001))).expect("listen"));
    let start = vpn_daemon::io::clock::now();
    let (received, digest) = std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut buf = vec![0u8; 1 << 16];
            let (mut n, mut digest) = (0usize, 0u64);
            loop {
                let got = conn.read(&mut buf).expect("read");
                if got == 0 {
                    return (n, digest);
                }
                for &x in &buf[..got] {
                    digest = digest.wrapping_mul(31).wrapping_add(u64::from(x));
                }
                n += got;
            }
        });
        ns_a.run(|| {
            let mut c =
                TcpStream::connect_timeout(&SocketAddr::from((b, 5001)), Duration::from_secs(5))
                    .expect("connect through the tuns");
            c.set_write_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let chunk: Vec<u8> = (0..1 << 16).map(|i| (i * 7 % 251) as u8).collect();
            for _ in 0..TOTAL / chunk.len() {
                c.write_all(&chunk).expect("write");
            }
        });
        server.join().expect("server")
    });
    let secs = start.elapsed().as_secs_f64();
    let mut expect = 0u64;
    let chunk: Vec<u8> = (0..1 << 16).map(|i| (i * 7 % 251) as u8).collect();
    for _ in 0..TOTAL / chunk.len() {
        for &x in &chunk {
            expect = expect.wrapping_mul(31).wrapping_add(u64::from(x));
        }
    }
    assert_eq!(received, TOTAL);
    assert_eq!(digest, expect);
    eprintln!(
        "tun forwarder offload={offload}: {} MiB in {secs:.2}s = {:.0} Mbit/s, {} IP packets in {} batches",
        TOTAL >> 20,
        TOTAL as f64 * 8.0 / secs / 1e6,
        packets.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed)
    );
    t1.abort();
    t2.abort();
}

#[test]
fn tcp_crosses_two_tuns_without_offload() {
    tcp_between_tuns(false);
}

#[test]
fn tcp_crosses_two_tuns_with_offload() {
    tcp_between_tuns(true);
}

#[test]
fn open_device_can_change_mtu_and_addresses() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("iom");
    let rt = runtime();
    let tun = ns.run(|| {
        let _g = rt.enter();
        Tun::open(&TunConfig::from_dev(&unique_name("tm"))).expect("open")
    });
    let v6: Ipv6Addr = "fd96::2".parse().expect("v6");
    // Interface ioctls act in the calling thread's namespace.
    ns.run(|| {
        tun.set_mtu(1300).expect("mtu");
        assert_eq!(tun.mtu().expect("mtu"), 1300);
        tun.add_ipv4(TunIpv4::Subnet {
            local: Ipv4Addr::new(10, 96, 0, 2),
            prefix: 24,
        })
        .expect("v4");
        tun.add_ipv6(v6, 64).expect("v6");
        let addrs = tun.addresses().expect("addrs");
        assert!(
            addrs.contains(&Ipv4Addr::new(10, 96, 0, 2).into()),
            "{addrs:?}"
        );
        assert!(addrs.contains(&v6.into()), "{addrs:?}");
        tun.remove_address(v6.into()).expect("remove");
        assert!(!tun.addresses().expect("addrs").contains(&v6.into()));
    });
}

/// `redirect-gateway def1` in a namespace whose default route points at a
/// veth neighbour: the server keeps its route through the old gateway,
/// everything else goes to the tun, and teardown restores the table.
#[test]
fn redirect_gateway_def1_keeps_the_server_on_the_old_gateway() {
    if !require_root() {
        return;
    }
    let (ns, other) = (Netns::new("iorg"), Netns::new("ioro"));
    let (va, _vb) = tests::VethPair::new(&ns, &other)
        .addr_a([10, 74, 0, 1])
        .addr_b([10, 74, 0, 2])
        .create();
    ns.ip(&["route", "add", "default", "via", "10.74.0.2"]);
    let rt = runtime();
    let name = unique_name("tr");
    let cfg = TunConfig {
        ipv4: Some(TunIpv4::Subnet {
            local: Ipv4Addr::new(10, 8, 0, 2),
            prefix: 24,
        }),
        ..TunConfig::from_dev(&name)
    };
    let tun = ns.run(|| {
        let _g = rt.enter();
        Tun::open(&cfg).expect("open tun")
    });
    let route_get = |dst: &str| {
        let out = Command::new("ip")
            .args(["-n", ns.name(), "route", "get", dst])
            .output()
            .expect("ip route get");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The "server" and the "internet" are only looked up, never contacted.
    let server: IpAddr = "198.51.100.7".parse().expect("ip");
    let mut routes = RouteTable::in_netns(ns.name());
    let hop = routes.next_hop(server).expect("next hop");
    assert_eq!(hop.via, Some("10.74.0.2".parse().expect("ip")));
    assert_eq!(hop.dev.as_deref(), Some(va.name.as_str()));
    routes
        .redirect_gateway_def1(server, &name, Some(Ipv4Addr::new(10, 8, 0, 1)))
        .expect("def1");
    assert_eq!(routes.installed(), 3);
    // IPv6 through the tunnel too (the server is IPv4: no host route).
    ns.run(|| tun_v6(&tun));
    routes
        .redirect_gateway_ipv6(server, &name, None)
        .expect("redirect ipv6");
    assert_eq!(routes.installed(), 7);
    assert!(route_get("2001:db8::1").contains(&format!("dev {name}")));
    assert!(route_get("198.51.100.7").contains(&format!("via 10.74.0.2 dev {}", va.name)));
    assert!(route_get("203.0.113.9").contains(&format!("via 10.8.0.1 dev {name}")));
    assert!(route_get("192.0.2.1").contains(&format!("dev {name}")));
    drop(routes); // teardown on drop
    assert!(route_get("203.0.113.9").contains(&format!("dev {}", va.name)));
    assert!(!routes_of(&ns, "-4").contains("0.0.0.0/1"));
    assert!(!routes_of(&ns, "-6").contains("2000::/4"));
}

fn tun_v6(tun: &Tun) {
    tun.add_ipv6("fd08::2".parse().expect("v6"), 64)
        .expect("tun IPv6 address");
}
