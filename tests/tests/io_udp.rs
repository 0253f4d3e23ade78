//! The batched UDP link between two network namespaces over a veth: one
//! `send_batch` of 64 datagrams of 1400 bytes (GSO where the kernel offers
//! it) arrives complete and in order through `recv_batch` (GRO where
//! offered), with per-worker `SO_REUSEPORT` sockets and a wildcard-bound
//! server that answers from the address it was contacted on.
//!
//! ```text
//!  ns A 10.76.0.1 (client)  ── veth ──►  ns B 10.76.0.2 (server, [::]:1194 dual-stack)
//! ```

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tests::{Netns, VethPair, require_root};
use tokio::{runtime::Runtime, time::timeout};
use vpn_daemon::io::external::udp::{RecvBatch, SendBatch, UdpConfig, UdpLink};

const A: [u8; 4] = [10, 76, 0, 1];
const B: [u8; 4] = [10, 76, 0, 2];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn sa(ip: [u8; 4], port: u16) -> SocketAddr {
    (Ipv4Addr::from(ip), port).into()
}

/// Receives until `want` datagrams arrived (5 s bound); returns them and
/// the slots used (fewer slots than datagrams means GRO coalesced).
async fn recv_n(
    link: &UdpLink,
    rx: &mut RecvBatch,
    want: usize,
) -> (Vec<(SocketAddr, Option<IpAddr>, Vec<u8>)>, usize) {
    let mut got = Vec::new();
    let mut slots = 0;
    while got.len() < want {
        let n = timeout(Duration::from_secs(5), link.recv_batch(rx))
            .await
            .expect("datagrams within 5 s")
            .expect("recv");
        slots += n;
        got.extend(rx.iter().map(|d| (d.peer, d.local_ip, d.data.to_vec())));
    }
    (got, slots)
}

fn datagram(i: usize) -> Vec<u8> {
    let mut d = vec![(i % 251) as u8; 1400];
    d[..8].copy_from_slice(&(i as u64).to_be_bytes());
    d
}

#[test]
fn gso_batch_of_64_datagrams_crosses_the_veth_whole() {
    if !require_root() {
        return;
    }
    let (ns_a, ns_b) = (Netns::new("iua"), Netns::new("iub"));
    VethPair::new(&ns_a, &ns_b).addr_a(A).addr_b(B).create();
    let rt = runtime();
    let bind = |ns: &Netns, cfg: UdpConfig| {
        ns.run(|| {
            let _g = rt.enter();
            UdpLink::bind(&cfg).expect("bind")
        })
    };
    let client = bind(&ns_a, UdpConfig::new(sa(A, 0)));
    // Two workers' sockets on one dual-stack wildcard port; the test talks
    // to the first (the second one closes, so the kernel picks the first).
    let mut scfg = UdpConfig::new("[::]:1194".parse().expect("addr"));
    scfg.rcvbuf = Some(4 << 20);
    let mut workers = ns_b.run(|| {
        let _g = rt.enter();
        UdpLink::bind_workers(&scfg, 2).expect("bind workers")
    });
    assert_eq!(workers.len(), 2);
    assert_eq!(workers[0].local_addr(), workers[1].local_addr());
    drop(workers.pop());
    let server = workers.pop().expect("worker 0");
    eprintln!(
        "client GSO segments {}, server GRO segments {}",
        client.gso_segments(),
        server.gro_segments()
    );

    rt.block_on(async {
        let mut tx = SendBatch::with_capacity(64 * 1400);
        for i in 0..64 {
            tx.push(sa(B, 1194), None, &datagram(i));
        }
        let stats = client.send_batch(&mut tx).await.expect("send");
        eprintln!("send_batch: {stats:?}");
        assert_eq!(stats.sent, 64);
        assert_eq!(stats.dropped, 0);
        if client.gso_segments() > 1 {
            // 64 x 1400 exceeds one 64 KiB GSO send: two GSO messages,
            // both in one sendmmsg.
            assert_eq!(stats.syscalls, 1, "{stats:?}");
        }
        let mut rx = server.recv_batch_buffer(16, 1500);
        let (got, slots) = recv_n(&server, &mut rx, 64).await;
        eprintln!("recv: 64 datagrams in {slots} slots");
        assert_eq!(got.len(), 64);
        for (i, (peer, local, data)) in got.iter().enumerate() {
            assert_eq!(*peer, client.local_addr());
            assert_eq!(*local, Some(IpAddr::from(Ipv4Addr::from(B))));
            assert_eq!(data, &datagram(i), "datagram {i}");
        }

        // The wildcard-bound server answers from the contacted address.
        let (peer, local, _) = got[0].clone();
        tx.push(peer, local, b"reply");
        server.send_batch(&mut tx).await.expect("reply");
        let mut crx = client.recv_batch_buffer(4, 1500);
        let (back, _) = recv_n(&client, &mut crx, 1).await;
        assert_eq!(back[0].0, sa(B, 1194));
        assert_eq!(back[0].2, b"reply");
    });
}

/// Datagrams per second from one socket, GSO on and off. Not a pass/fail
/// benchmark: numbers go to stderr (`--nocapture`).
#[test]
fn udp_send_rate_with_and_without_gso() {
    if !require_root() {
        return;
    }
    let (ns_a, ns_b) = (Netns::new("iura"), Netns::new("iurb"));
    VethPair::new(&ns_a, &ns_b).addr_a(A).addr_b(B).create();
    let rt = runtime();
    for gso in [false, true] {
        let mut ccfg = UdpConfig::new(sa(A, 0));
        ccfg.gso = gso;
        ccfg.sndbuf = Some(4 << 20);
        let mut scfg = UdpConfig::new(sa(B, 0));
        scfg.rcvbuf = Some(16 << 20);
        let client = ns_a.run(|| {
            let _g = rt.enter();
            UdpLink::bind(&ccfg).expect("bind")
        });
        let server = ns_b.run(|| {
            let _g = rt.enter();
            UdpLink::bind(&scfg).expect("bind")
        });
        let dst = server.local_addr();
        rt.block_on(async {
            const ROUNDS: usize = 2000;
            let mut tx = SendBatch::with_capacity(64 * 1400);
            let payload = vec![7u8; 1400];
            let received = tokio::spawn(async move {
                let mut rx = server.recv_batch_buffer(16, 1500);
                let mut n = 0usize;
                while let Ok(Ok(_)) = timeout(Duration::from_millis(500), server.recv_batch(&mut rx)).await {
                    n += rx.iter().count();
                }
                n
            });
            let start = vpn_daemon::io::clock::now();
            let mut syscalls = 0;
            for _ in 0..ROUNDS {
                for _ in 0..32 {
                    tx.push(dst, None, &payload);
                }
                syscalls += client.send_batch(&mut tx).await.expect("send").syscalls;
            }
            let secs = start.elapsed().as_secs_f64();
            let sent = ROUNDS * 32;
            let got = received.await.expect("receiver");
            eprintln!(
                "UDP gso={gso}: sent {sent} x 1400 B in {secs:.2}s = {:.0} kpps ({:.0} Mbit/s), {syscalls} send syscalls, received {got}",
                sent as f64 / secs / 1e3,
                sent as f64 * 1400.0 * 8.0 / secs / 1e6
            );
            assert!(got > 0);
        });
    }
}

/// A GSO send the kernel refuses (segments above the veth's 1500-byte MTU,
/// because the configured path MTU claims 9000) is resent as single
/// datagrams in one `sendmmsg`, which the kernel fragments: everything
/// still arrives.
#[test]
fn refused_gso_falls_back_to_single_fragmented_sends() {
    if !require_root() {
        return;
    }
    let (ns_a, ns_b) = (Netns::new("iufa"), Netns::new("iufb"));
    VethPair::new(&ns_a, &ns_b).addr_a(A).addr_b(B).create();
    let rt = runtime();
    let mut ccfg = UdpConfig::new(sa(A, 0));
    ccfg.path_mtu = 9000;
    let client = ns_a.run(|| {
        let _g = rt.enter();
        UdpLink::bind(&ccfg).expect("bind")
    });
    let server = ns_b.run(|| {
        let _g = rt.enter();
        UdpLink::bind(&UdpConfig::new(sa(B, 0))).expect("bind")
    });
    if client.gso_segments() < 2 {
        eprintln!("skipped: no UDP GSO on this kernel");
        return;
    }
    rt.block_on(async {
        let mut tx = SendBatch::default();
        for i in 0..8u8 {
            tx.push(server.local_addr(), None, &[i; 2000]);
        }
        let st = client.send_batch(&mut tx).await.expect("send");
        eprintln!("{st:?}");
        // One refused GSO message, then one sendmmsg of eight singles.
        assert_eq!((st.sent, st.dropped, st.syscalls), (8, 0, 2), "{st:?}");
        let mut rx = server.recv_batch_buffer(8, 2048);
        let (got, _) = recv_n(&server, &mut rx, 8).await;
        for (i, (_, _, d)) in got.iter().enumerate() {
            assert_eq!(d, &vec![i as u8; 2000]);
        }
    });
}
