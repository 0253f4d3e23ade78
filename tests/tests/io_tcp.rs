//! The framed TCP link between two network namespaces over a veth:
//! records split across writes (and several records per write) arrive
//! whole; the server's queued writes arrive in order; an oversized or
//! zero-length record ends only that connection with a framing error,
//! and the listener goes on accepting.
//!
//! ```text
//!  ns A 10.75.0.1 (tcp-client) ── veth ──► ns B 10.75.0.2:1194 (tcp-server)
//! ```

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use tests::{Netns, VethPair, require_root};
use tokio::{io::AsyncWriteExt, net::TcpStream, runtime::Runtime, time::timeout};
use vpn_daemon::{
    io::external::tcp::{TcpError, TcpOptions, TcpServer, connect},
    proto::error::WireError,
};

const A: [u8; 4] = [10, 75, 0, 1];
const B: [u8; 4] = [10, 75, 0, 2];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn packet(i: usize) -> Vec<u8> {
    let len = 1 + (i * 37) % 1500;
    (0..len).map(|k| (i + k) as u8).collect()
}

#[test]
fn records_split_across_writes_arrive_whole_both_ways() {
    if !require_root() {
        return;
    }
    let (ns_a, ns_b) = (Netns::new("ita"), Netns::new("itb"));
    VethPair::new(&ns_a, &ns_b).addr_a(A).addr_b(B).create();
    let rt = runtime();
    let server_addr = SocketAddr::from((Ipv4Addr::from(B), 1194));
    let server = ns_b.run(|| {
        let _g = rt.enter();
        TcpServer::bind(server_addr, false, TcpOptions::default()).expect("listen")
    });
    const N: usize = 300;

    // Client side: a raw stream writing the framed records in odd-sized
    // pieces, so prefixes and bodies straddle segments.
    let raw =
        ns_a.run(|| rt.block_on(async { TcpStream::connect(server_addr).await.expect("connect") }));
    rt.block_on(async {
        let (link, peer) = timeout(Duration::from_secs(5), server.accept())
            .await
            .expect("accept in time")
            .expect("accept");
        assert_eq!(peer.ip(), Ipv4Addr::from(A));
        let (mut reader, _writer) = link.split();
        let mut raw = raw;
        raw.set_nodelay(true).expect("nodelay");
        let writer_task = tokio::spawn(async move {
            let mut stream = Vec::new();
            for i in 0..N {
                let p = packet(i);
                stream.extend_from_slice(&(p.len() as u16).to_be_bytes());
                stream.extend_from_slice(&p);
            }
            let mut at = 0;
            let mut cut = 1;
            while at < stream.len() {
                let end = (at + cut).min(stream.len());
                raw.write_all(&stream[at..end]).await.expect("write");
                raw.flush().await.expect("flush");
                if cut % 5 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                at = end;
                cut = cut % 997 + 3;
            }
            raw
        });
        let mut got = Vec::new();
        while got.len() < N {
            timeout(
                Duration::from_secs(10),
                reader.recv_with(|p| got.push(p.to_vec())),
            )
            .await
            .expect("records in time")
            .expect("recv");
        }
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p, &packet(i), "record {i}");
        }
        writer_task.await.expect("writer");
    });

    // Server to client: a framed client (connect()) receives, one record
    // at a time, what the server queued and flushed.
    let client = ns_a.run(|| {
        rt.block_on(async {
            connect(server_addr, &TcpOptions::default())
                .await
                .expect("connect")
        })
    });
    rt.block_on(async {
        let (link, _) = server.accept().await.expect("accept");
        let (_r, mut w) = link.split();
        for i in 0..N {
            w.queue(&packet(i)).expect("queue");
        }
        w.flush().await.expect("flush");
        let (mut cr, _cw) = client.split();
        let mut buf = vec![0u8; 4096];
        for i in 0..N {
            let n = timeout(Duration::from_secs(5), cr.recv_into(&mut buf))
                .await
                .expect("in time")
                .expect("recv");
            assert_eq!(&buf[..n], &packet(i)[..]);
        }
    });
}

#[test]
fn bad_records_close_only_their_connection() {
    if !require_root() {
        return;
    }
    let (ns_a, ns_b) = (Netns::new("itc"), Netns::new("itd"));
    VethPair::new(&ns_a, &ns_b).addr_a(A).addr_b(B).create();
    let rt = runtime();
    let server_addr = SocketAddr::from((Ipv4Addr::from(B), 1194));
    let opts = TcpOptions {
        max_record: 1600,
        ..TcpOptions::default()
    };
    let server = ns_b.run(|| {
        let _g = rt.enter();
        TcpServer::bind(server_addr, false, opts).expect("listen")
    });
    for (bad, expect) in [
        (
            vec![0x07, 0xd0],
            WireError::OversizedRecord {
                len: 2000,
                max: 1600,
            },
        ),
        (vec![0x00, 0x00], WireError::ZeroLengthRecord),
    ] {
        let mut raw = ns_a
            .run(|| rt.block_on(async { TcpStream::connect(server_addr).await.expect("connect") }));
        rt.block_on(async {
            let (mut link, _) = server.accept().await.expect("accept");
            raw.write_all(&[0, 2, 0xaa, 0xbb]).await.expect("write");
            raw.write_all(&bad).await.expect("write");
            let mut buf = [0u8; 2000];
            assert_eq!(
                link.reader.recv_into(&mut buf).await.expect("good record"),
                2
            );
            match timeout(Duration::from_secs(5), link.reader.recv_into(&mut buf))
                .await
                .expect("in time")
            {
                Err(TcpError::Framing(e)) => assert_eq!(e, expect),
                other => panic!("expected a framing error, got {other:?}"),
            }
        });
    }
}
