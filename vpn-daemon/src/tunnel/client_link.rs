//! The client's external multiplexer: its one link to the server (UDP
//! with the XDP fast path, or TCP), what a wake-up delivered, and the
//! output ([`LinkOut`], shared with the server) its packets go through.

use std::net::{IpAddr, SocketAddr};

use crate::error::DaemonError;
use crate::io::external::tcp::{TcpLinkReader, TcpLinkWriter};
use crate::io::external::udp::{RecvBatch, SendBatch, UdpLink};
use crate::io::wait::or_never;
use crate::io::xdp::fastpath::{FastPath, Starting};
use crate::tunnel::output::{FastOrSocket, LinkOut};

/// The link to the server.
pub(crate) enum Link {
    Udp {
        link: UdpLink,
        peer: SocketAddr,
        rx: RecvBatch,
        tx: SendBatch,
        /// The XDP fast path for the server's data packets, when it runs
        /// (boxed: it is large and TCP links have none).
        fast: Option<Box<FastPath>>,
        /// The fast path while it starts; the handshake does not wait.
        fast_starting: Option<Starting>,
    },
    Tcp {
        reader: TcpLinkReader,
        writer: TcpLinkWriter,
        peer: SocketAddr,
        /// Packets of the last read, back to back (reused, no per-packet
        /// allocation), and their lengths.
        rbuf: Vec<u8>,
        rlens: Vec<usize>,
    },
}

impl Link {
    pub(crate) fn peer(&self) -> SocketAddr {
        match self {
            Link::Udp { peer, .. } | Link::Tcp { peer, .. } => *peer,
        }
    }

    /// The XDP fast path, when it runs.
    pub(crate) fn fast(&self) -> Option<&FastPath> {
        match self {
            Link::Udp { fast, .. } => fast.as_deref(),
            Link::Tcp { .. } => None,
        }
    }

    /// The output of this link: [`FastOrSocket`] for UDP, [`TcpOut`] for
    /// TCP (which encrypts into `enc`, then queues the record).
    pub(crate) fn out<'a>(&'a mut self, enc: &'a mut Vec<u8>) -> ClientOut<'a> {
        match self {
            Link::Udp { tx, fast, .. } => {
                ClientOut::Udp(FastOrSocket::with_fast(tx, fast.as_deref_mut()))
            }
            Link::Tcp { writer, .. } => ClientOut::Tcp(TcpOut { writer, enc }),
        }
    }

    pub(crate) async fn flush(&mut self) -> Result<(), DaemonError> {
        match self {
            Link::Udp { link, tx, fast, .. } => {
                if let Some(f) = fast {
                    f.flush();
                }
                if !tx.is_empty() {
                    link.send_batch(tx)
                        .await
                        .map_err(|e| DaemonError::io("UDP send", e))?;
                }
                Ok(())
            }
            Link::Tcp { writer, .. } => Ok(writer.flush().await?),
        }
    }
}

/// What the link delivered.
pub(crate) enum LinkRx {
    Udp,
    Tcp,
    /// The fast path's receive rings have frames.
    Fast,
    /// The fast path finished starting (`None`: plain sockets).
    FastStarted(Option<FastPath>),
}

pub(crate) async fn recv_link(link: &mut Link) -> Result<LinkRx, DaemonError> {
    match link {
        Link::Udp {
            link,
            rx,
            fast,
            fast_starting,
            ..
        } => {
            let fast_ready = or_never(fast.as_deref().map(FastPath::readable));
            let started = or_never(fast_starting.as_mut().map(Starting::finished));
            tokio::select! {
                r = link.recv_batch(rx) => {
                    r.map_err(|e| DaemonError::io("UDP receive", e))?;
                    Ok(LinkRx::Udp)
                }
                () = fast_ready => Ok(LinkRx::Fast),
                f = started => {
                    *fast_starting = None;
                    Ok(LinkRx::FastStarted(f))
                }
            }
        }
        Link::Tcp {
            reader,
            rbuf,
            rlens,
            ..
        } => {
            rbuf.clear();
            rlens.clear();
            reader
                .recv_with(|p| {
                    rbuf.extend_from_slice(p);
                    rlens.push(p.len());
                })
                .await?;
            Ok(LinkRx::Tcp)
        }
    }
}

/// The client's TCP output: one record at a time into the writer's
/// queue; a data packet is sealed into the reused `enc` first.
pub(crate) struct TcpOut<'a> {
    writer: &'a mut TcpLinkWriter,
    enc: &'a mut Vec<u8>,
}

impl LinkOut for TcpOut<'_> {
    fn send(&mut self, _to: SocketAddr, _src: Option<IpAddr>, packet: &[u8]) {
        if let Err(e) = self.writer.queue(packet) {
            tracing::debug!(error = %e, "TCP queue full, packet dropped");
        }
    }
    fn send_with(
        &mut self,
        _to: SocketAddr,
        _src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        if self.enc.len() < max {
            self.enc.resize(max, 0);
        }
        if let Some(b) = self.enc.get_mut(..max) {
            let n = fill(b);
            if let Some(c) = b.get(..n).filter(|c| !c.is_empty())
                && let Err(e) = self.writer.queue(c)
            {
                tracing::debug!(error = %e, "TCP queue full, packet dropped");
            }
        }
    }
}

/// The output of either link, without a box per packet.
pub(crate) enum ClientOut<'a> {
    Udp(FastOrSocket<'a>),
    Tcp(TcpOut<'a>),
}

impl LinkOut for ClientOut<'_> {
    fn send(&mut self, to: SocketAddr, src: Option<IpAddr>, packet: &[u8]) {
        match self {
            ClientOut::Udp(o) => o.send(to, src, packet),
            ClientOut::Tcp(o) => o.send(to, src, packet),
        }
    }
    fn send_with(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        match self {
            ClientOut::Udp(o) => o.send_with(to, src, max, fill),
            ClientOut::Tcp(o) => o.send_with(to, src, max, fill),
        }
    }
    fn send_data(
        &mut self,
        to: SocketAddr,
        src: Option<IpAddr>,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> bool {
        match self {
            ClientOut::Udp(o) => o.send_data(to, src, max, fill),
            ClientOut::Tcp(o) => o.send_data(to, src, max, fill),
        }
    }
}
