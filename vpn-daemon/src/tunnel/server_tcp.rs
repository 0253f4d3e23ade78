//! `tunnel_server_tcp`: the TCP server's link on the shared server loop
//! (`tunnel::server::serve`). One stream per client, no cookie (the handshake is
//! stateful from the first packet, as the stream already proves the
//! address). Each connection (`io::external::conn::Conn`) has a
//! reader task feeding whole packets to the loop and a writer task
//! draining a bounded outbox; routing, auth and status are the UDP
//! server's ([`Multi`]).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::error::DaemonError;
use crate::host::tun::{self as host_tun};
use crate::io::clock;
use crate::io::external::conn::{Conn, ConnEvent, frames};
use crate::io::external::port_share;
use crate::io::external::tcp::{TcpError, TcpLink, TcpServer};
use crate::io::internal::tun::TunTxBatch;
use crate::io::mssfix::OuterTransport;
use crate::mgmt::status::XdpCounters;
use crate::proto::session::{Session, Transport};
use crate::server::peers::PeerId;
use crate::tunnel::Outcome;
use crate::tunnel::input::Inputs;
use crate::tunnel::multi::Multi;
use crate::tunnel::output::LinkOut;
use crate::tunnel::server::{ServerLink, serve};
use crate::tunnel::setup;

/// A new TCP client: its session, its slot in `multi`, its connection.
fn admit(
    multi: &mut Multi,
    scfg: &Arc<crate::proto::session::SessionConfig>,
    link: TcpLink,
    addr: SocketAddr,
    out: &mut TcpOut,
    ev_tx: &mpsc::Sender<ConnEvent>,
) -> Option<PeerId> {
    let session = match Session::new_server_stateful(scfg.clone(), clock::now(), clock::unix_time())
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "new session");
            return None;
        }
    };
    let id = multi.add_client(session, addr, None)?;
    out.conns
        .insert(addr, Conn::start(link, addr, ev_tx.clone()));
    Some(id)
}

/// The connections, as the sessions' way out.
#[derive(Default)]
struct TcpOut {
    conns: HashMap<SocketAddr, Conn>,
    /// Connections with packets queued in this iteration.
    ready: Vec<SocketAddr>,
}

impl TcpOut {
    fn conn(&mut self, to: SocketAddr) -> Option<&mut Conn> {
        let c = self.conns.get_mut(&to)?;
        if c.pending.is_empty() {
            self.ready.push(to);
        }
        Some(c)
    }

    /// Hands every connection's queued packets to its writer.
    fn hand_off(&mut self) {
        for a in self.ready.drain(..) {
            if let Some(c) = self.conns.get_mut(&a) {
                c.hand_off();
            }
        }
    }

    /// Ends a connection: its queued packets still go out, then FIN.
    fn close(&mut self, addr: SocketAddr) {
        if let Some(c) = self.conns.remove(&addr) {
            c.close();
        }
    }
}

impl LinkOut for TcpOut {
    fn send(&mut self, to: SocketAddr, _src: Option<IpAddr>, packet: &[u8]) {
        if let Some(c) = self.conn(to) {
            c.push(packet);
        }
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        _src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        if let Some(c) = self.conn(to) {
            c.push_with(max, fill);
        }
    }
}

/// The TCP link: the listener, the connections, their events, and
/// `port-share`'s hand-back of connections that turned out to be OpenVPN.
struct TcpServerLink {
    server: TcpServer,
    scfg: Arc<crate::proto::session::SessionConfig>,
    port_share: Option<crate::config::host::PortShare>,
    hand_window: u32,
    out: TcpOut,
    ev_tx: mpsc::Sender<ConnEvent>,
    ev_rx: mpsc::Receiver<ConnEvent>,
    shared_tx: mpsc::Sender<(tokio::net::TcpStream, SocketAddr)>,
    shared_rx: mpsc::Receiver<(tokio::net::TcpStream, SocketAddr)>,
}

/// What woke the TCP link.
enum TcpEvent {
    /// A new connection (or a failed accept).
    Accepted(Result<(tokio::net::TcpStream, SocketAddr), TcpError>),
    /// A `port-share` connection that speaks OpenVPN.
    Shared(tokio::net::TcpStream, SocketAddr),
    /// A connection's reader.
    Conn(ConnEvent),
}

impl TcpServerLink {
    fn admit_stream(
        &mut self,
        stream: tokio::net::TcpStream,
        addr: SocketAddr,
        multi: &mut Multi,
        dirty: &mut BTreeSet<PeerId>,
    ) {
        match self.server.frame(stream) {
            Ok(link) => {
                if let Some(id) = admit(multi, &self.scfg, link, addr, &mut self.out, &self.ev_tx) {
                    dirty.insert(id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "accept"),
        }
    }
}

impl ServerLink for TcpServerLink {
    type Event = TcpEvent;
    type Out<'a> = &'a mut TcpOut;

    fn out(&mut self) -> &mut TcpOut {
        &mut self.out
    }

    async fn wait(&mut self) -> TcpEvent {
        tokio::select! {
            a = self.server.accept_stream() => TcpEvent::Accepted(a),
            Some((stream, addr)) = self.shared_rx.recv() => TcpEvent::Shared(stream, addr),
            Some(ev) = self.ev_rx.recv() => TcpEvent::Conn(ev),
        }
    }

    fn handle(
        &mut self,
        ev: TcpEvent,
        multi: &mut Multi,
        ttx: &mut TunTxBatch,
        dirty: &mut BTreeSet<PeerId>,
    ) {
        match ev {
            TcpEvent::Accepted(Err(e)) => tracing::warn!(error = %e, "accept"),
            TcpEvent::Accepted(Ok((stream, addr))) => {
                if let Some(ps) = &self.port_share {
                    // Looked at off the loop: a silent connection must not
                    // hold up the others.
                    let (ps, tx) = (ps.clone(), self.shared_tx.clone());
                    let patience = std::time::Duration::from_secs(u64::from(self.hand_window));
                    tokio::spawn(async move {
                        match port_share::classify(&stream, patience).await {
                            port_share::Sniff::OpenVpn => {
                                let _ = tx.send((stream, addr)).await;
                            }
                            port_share::Sniff::Foreign => {
                                port_share::relay(stream, addr, &ps).await
                            }
                        }
                    });
                    return;
                }
                self.admit_stream(stream, addr, multi, dirty);
            }
            TcpEvent::Shared(stream, addr) => self.admit_stream(stream, addr, multi, dirty),
            TcpEvent::Conn(ConnEvent::Packets(addr, packets)) => {
                if let Some(id) = multi.peers.by_transport(addr) {
                    let now = clock::now();
                    let unix = clock::unix_time();
                    for p in frames(&packets) {
                        multi.link_packet(id, None, p, None, now, unix, &mut self.out, ttx);
                    }
                    dirty.insert(id);
                }
                if let Some(c) = self.out.conns.get(&addr) {
                    c.recycle(packets);
                }
            }
            TcpEvent::Conn(ConnEvent::Closed(addr)) => {
                if let Some(id) = multi.peers.by_transport(addr) {
                    multi.remove(id);
                }
                self.out.close(addr);
            }
        }
    }

    fn gone(&mut self, addr: SocketAddr) {
        // What drain queued (an exit or restart message) still goes out.
        self.out.hand_off();
        self.out.close(addr);
    }

    async fn flush(&mut self, _multi: &mut Multi) {
        self.out.hand_off();
    }

    async fn flush_goodbyes(&mut self) {
        self.out.hand_off();
        // Let the writer tasks flush the RESTART messages.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    fn xdp_counters(&self) -> Option<XdpCounters> {
        None
    }

    fn log_statistics(&self, multi: &Multi) {
        tracing::info!(clients = multi.peers.len(), route_drops = ?multi.route_drops, "statistics");
    }
}

/// Runs the TCP server until a signal ends it.
pub async fn tunnel_server_tcp(cfg: &Config, inputs: &mut Inputs) -> Result<Outcome, DaemonError> {
    let tls = Arc::new(setup::tls_context(cfg)?);
    let bind = setup::bind_addr(cfg)?;
    let scfg = Arc::new(setup::session_config(
        cfg,
        tls,
        Transport::Tcp,
        bind.is_ipv6(),
    )?);
    let opts = setup::tcp_options(cfg);
    let server = TcpServer::bind(bind, cfg.host.bind_ipv6only, opts)?;
    tracing::info!(local = ?server.local_addr().ok(), "TCP server listening");
    let st = crate::host::server_tun::bring_up_server_tun(cfg).await?;
    crate::host::notify::ready(crate::host::notify::INIT_COMPLETED);
    let mut multi = Multi::new(Arc::new(cfg.clone()), scfg.clone(), inputs.sender())?;
    let outer = if bind.is_ipv6() {
        OuterTransport::Tcp6
    } else {
        OuterTransport::Tcp4
    };
    multi.mss = host_tun::mss_limits(
        cfg,
        outer,
        setup::framing(cfg.compression).mtu_overhead() as u16,
    );
    let (ev_tx, ev_rx) = mpsc::channel::<ConnEvent>(1024);
    let (shared_tx, shared_rx) = mpsc::channel(64);
    let link = TcpServerLink {
        server,
        scfg,
        port_share: cfg.host.port_share.clone(),
        hand_window: cfg.hand_window,
        out: TcpOut::default(),
        ev_tx,
        ev_rx,
        shared_tx,
        shared_rx,
    };
    serve(cfg, inputs, multi, st, link).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::io::external::tcp::{self, TcpOptions};

    use crate::test_alloc::allocs;

    /// Packets both ways through a real loopback connection: after a
    /// warm-up, the loop, the reader task and the writer task allocate
    /// nothing (a current-thread runtime keeps them all on this thread).
    #[test]
    fn steady_state_data_path_does_not_allocate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts = TcpOptions::default();
            let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), false, opts).unwrap();
            let addr = server.local_addr().unwrap();
            let (c, s) = tokio::join!(tcp::connect(addr, &opts), server.accept());
            let (mut crd, mut cwr) = c.unwrap().split();
            let (link, peer) = s.unwrap();
            let (ev_tx, mut ev_rx) = mpsc::channel(1024);
            let mut out = TcpOut::default();
            out.conns.insert(peer, Conn::start(link, peer, ev_tx));
            let pkt = [0x45u8; 1200];
            let mut before = 0;
            for round in 0..400 {
                if round == 100 {
                    before = allocs();
                }
                // Loop -> client: copies and in-place encryptions.
                for i in 0..16 {
                    if i % 2 == 0 {
                        out.send(peer, None, &pkt);
                    } else {
                        out.send_with(peer, None, 1300, &mut |b| {
                            b.get_mut(..1200).map_or(0, |d| {
                                d.copy_from_slice(&pkt);
                                1200
                            })
                        });
                    }
                }
                out.hand_off();
                let mut n = 0;
                while n < 16 {
                    n += crd.recv_with(|p| assert_eq!(p, &pkt[..])).await.unwrap();
                }
                // Client -> loop.
                for _ in 0..16 {
                    cwr.queue(&pkt).unwrap();
                }
                cwr.flush().await.unwrap();
                let mut m = 0;
                while m < 16 {
                    match ev_rx.recv().await.unwrap() {
                        ConnEvent::Packets(a, buf) => {
                            for p in frames(&buf) {
                                assert_eq!(p, &pkt[..]);
                                m += 1;
                            }
                            out.conns.get(&a).unwrap().recycle(buf);
                        }
                        ConnEvent::Closed(_) => panic!("connection closed"),
                    }
                }
            }
            let during = allocs() - before;
            assert_eq!(
                during, 0,
                "{during} allocations for 300 rounds of 32 packets"
            );
        });
    }

    /// The compression context (it lives in proto/, tested here because
    /// this binary's allocator counts): once built, compressing and
    /// decompressing allocate nothing, for every algorithm.
    #[test]
    fn compression_steady_path_does_not_allocate() {
        use crate::proto::data::compress::{CompressOptions, Compressor};
        let text: Vec<u8> = b"GET /index.html HTTP/1.1\r\nHost: example\r\n"
            .iter()
            .copied()
            .cycle()
            .take(1400)
            .collect();
        for alg in ["comp-lzo", "lz4", "lz4-v2"] {
            let mut o = CompressOptions::default();
            o.allow_compression("yes").unwrap();
            if alg == "comp-lzo" {
                o.comp_lzo(None).unwrap();
            } else {
                o.compress(Some(alg)).unwrap();
            }
            let mut tx = Compressor::new(o, 1628);
            let mut rx = Compressor::new(o, 1628);
            let mut buf = vec![0u8; 2048];
            // The first packet allocates the compressor's work memory.
            tx.frame(&text, 0).unwrap();
            let before = allocs();
            for t in 0..200u64 {
                let sent = tx.frame(&text, t / 10).unwrap();
                assert!(sent.len() < 400, "{alg}");
                let start = buf.len() - sent.len();
                buf[start..].copy_from_slice(sent);
                let (a, b) = rx.unframe(&mut buf, start, 2048).unwrap();
                assert_eq!(&buf[a..b], &text[..], "{alg}");
            }
            assert_eq!(allocs() - before, 0, "{alg}");
        }
    }
}
