//! The TCP link of the external multiplexer (`proto tcp-client` /
//! `tcp-server`): a tokio `TcpStream` carrying OpenVPN's length-prefixed
//! records (protocol doc 1.2), framed by the sans-IO
//! [`crate::proto::wire::tcp::TcpDecoder`].
//!
//! ```text
//! stream:  | len u16 BE | packet | len u16 BE | packet | ...
//! reader:  read(64 KiB) -> TcpDecoder::feed -> next_packet()* -> whole packets
//! writer:  queue(packet) appends prefix+packet to a bounded buffer; flush() drains it
//! ```
//!
//! A zero-length or oversized record is a [`TcpError::Framing`] for that
//! connection only: the stream cannot be resynchronised, so the driver
//! closes it (OpenVPN does the same) and the daemon goes on.
//! Every writer frames through [`push_record`] / [`push_record_with`], the
//! one TCP framing (the server's per-connection outbox too).
//!
//! The writer's queue is bounded: when full, [`TcpLinkWriter::queue`]
//! refuses with [`TcpError::QueueFull`] and both drivers drop that packet
//! (the client loop logs it; the server's outbox of 1 MiB per connection
//! counts it) instead of pausing tun. One tun queue feeds every peer, so
//! waiting for one slow stream would stall all of them; a dropped inner
//! packet is what a full UDP socket does too, and the inner TCP flows back
//! off from the loss. Only the server's per-connection writer task waits
//! for its socket ([`TcpLinkWriter::flush`]) before queueing again.

use std::{io, net::SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

use crate::proto::{
    error::WireError,
    wire::tcp::{LEN_PREFIX, TcpDecoder, length_prefix, push_record, push_record_with},
};

/// Bytes read from the socket per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// Errors of the TCP link.
#[derive(Debug, Error)]
pub enum TcpError {
    /// Connecting to the server failed.
    #[error("TCP connect to {addr}: {source}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating or binding the listening socket failed.
    #[error("TCP listen on {addr} ({call}): {source}")]
    Listen {
        /// The local address.
        addr: SocketAddr,
        /// The failing call.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `accept` failed (e.g. out of file descriptors); the listener lives on.
    #[error("TCP accept: {0}")]
    Accept(#[source] io::Error),
    /// Reading or writing the stream failed; the connection is dead.
    #[error("TCP stream I/O: {0}")]
    Io(#[from] io::Error),
    /// The peer sent a zero-length or oversized record; close the connection.
    #[error("TCP framing: {0}")]
    Framing(#[from] WireError),
    /// The peer closed the stream.
    #[error("TCP peer closed the connection")]
    Closed,
    /// The write queue cannot take this packet before a flush.
    #[error("TCP write queue full ({queued} of {capacity} bytes)")]
    QueueFull {
        /// Bytes waiting.
        queued: usize,
        /// The queue's bound.
        capacity: usize,
    },
    /// The receive buffer given to [`TcpLinkReader::recv_into`] is shorter
    /// than the packet (our bug: size it for the largest record).
    #[error("receive buffer of {have} bytes cannot hold a {need}-byte packet")]
    BufferTooSmall {
        /// Packet length.
        need: usize,
        /// Buffer length.
        have: usize,
    },
}

/// Per-connection settings.
#[derive(Clone, Copy, Debug)]
pub struct TcpOptions {
    /// Largest record accepted from the peer (packets above are a framing
    /// error); at most 65535 by the 16-bit prefix.
    pub max_record: usize,
    /// Bytes the write queue may hold before [`TcpError::QueueFull`].
    pub write_queue: usize,
    /// `SO_SNDBUF`, `None` for the OS default.
    pub sndbuf: Option<usize>,
    /// `SO_RCVBUF`, `None` for the OS default.
    pub rcvbuf: Option<usize>,
    /// `SO_MARK` (`mark N`), set before connecting or listening.
    pub mark: Option<u32>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self {
            // tun-mtu 1500 plus any OpenVPN overhead stays far below; the
            // control channel's packets are smaller still.
            max_record: 4096,
            write_queue: 1 << 20,
            sndbuf: None,
            rcvbuf: None,
            mark: None,
        }
    }
}

/// Connects to a `tcp-server` (the client side, `proto tcp-client`).
pub async fn connect(addr: SocketAddr, opts: &TcpOptions) -> Result<TcpLink, TcpError> {
    let err = |source| TcpError::Connect { addr, source };
    let sock = if addr.is_ipv6() {
        tokio::net::TcpSocket::new_v6()
    } else {
        tokio::net::TcpSocket::new_v4()
    }
    .map_err(err)?;
    if let Some(m) = opts.mark {
        // Before connect: the mark steers the SYN's route too.
        socket2::SockRef::from(&sock).set_mark(m).map_err(err)?;
    }
    let stream = sock.connect(addr).await.map_err(err)?;
    TcpLink::from_stream(stream, opts).map_err(|source| TcpError::Connect { addr, source })
}

/// A listening `tcp-server` socket.
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    opts: TcpOptions,
}

impl TcpServer {
    /// Binds and listens on `addr` (an IPv6 wildcard is dual-stack unless
    /// `v6_only`), with `SO_REUSEADDR` so a restart finds the port free.
    pub fn bind(addr: SocketAddr, v6_only: bool, opts: TcpOptions) -> Result<Self, TcpError> {
        let err = |call| move |source| TcpError::Listen { addr, call, source };
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )
        .map_err(err("socket"))?;
        if addr.is_ipv6() {
            sock.set_only_v6(v6_only).map_err(err("IPV6_V6ONLY"))?;
        }
        sock.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
        if let Some(m) = opts.mark {
            sock.set_mark(m).map_err(err("SO_MARK"))?;
        }
        sock.bind(&addr.into()).map_err(err("bind"))?;
        sock.listen(1024).map_err(err("listen"))?;
        let listener = TcpListener::from_std(sock.into()).map_err(err("tokio register"))?;
        Ok(Self { listener, opts })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for the next client, unframed (to look at it first); its
    /// address comes canonical (IPv4 as IPv4 on a dual-stack listener).
    /// Cancel-safe.
    pub async fn accept_stream(&self) -> Result<(TcpStream, SocketAddr), TcpError> {
        let (stream, peer) = self.listener.accept().await.map_err(TcpError::Accept)?;
        Ok((
            stream,
            SocketAddr::new(peer.ip().to_canonical(), peer.port()),
        ))
    }

    /// Frames a stream from [`Self::accept_stream`] with this listener's
    /// options.
    pub fn frame(&self, stream: TcpStream) -> Result<TcpLink, TcpError> {
        TcpLink::from_stream(stream, &self.opts).map_err(TcpError::Accept)
    }

    /// Waits for the next client, framed. Cancel-safe.
    pub async fn accept(&self) -> Result<(TcpLink, SocketAddr), TcpError> {
        let (stream, _) = self.listener.accept().await.map_err(TcpError::Accept)?;
        let link = TcpLink::from_stream(stream, &self.opts).map_err(TcpError::Accept)?;
        let peer = link.peer_addr();
        Ok((link, peer))
    }
}

/// One framed TCP connection; split it to read and write from separate tasks.
#[derive(Debug)]
pub struct TcpLink {
    /// The receiving half.
    pub reader: TcpLinkReader,
    /// The sending half.
    pub writer: TcpLinkWriter,
    peer: SocketAddr,
    local: SocketAddr,
}

impl TcpLink {
    /// Frames an established stream (sets `TCP_NODELAY`: OpenVPN packets are
    /// latency-sensitive and already batched by the writer's queue).
    pub fn from_stream(stream: TcpStream, opts: &TcpOptions) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let sref = socket2::SockRef::from(&stream);
        if let Some(n) = opts.sndbuf {
            sref.set_send_buffer_size(n)?;
        }
        if let Some(n) = opts.rcvbuf {
            sref.set_recv_buffer_size(n)?;
        }
        // Canonical like the UDP link's: an IPv4 client of a dual-stack
        // listener is an IPv4 peer, not ::ffff:a.b.c.d.
        let peer = canonical(stream.peer_addr()?);
        let local = canonical(stream.local_addr()?);
        let (rd, wr) = stream.into_split();
        Ok(Self {
            reader: TcpLinkReader {
                rd,
                decoder: TcpDecoder::new(opts.max_record),
                rbuf: vec![0u8; READ_CHUNK].into_boxed_slice(),
                pending: 0..0,
            },
            writer: TcpLinkWriter {
                wr,
                out: Vec::with_capacity(opts.write_queue.min(READ_CHUNK)),
                written: 0,
                capacity: opts.write_queue.max(LEN_PREFIX + 1),
            },
            peer,
            local,
        })
    }

    /// The remote end.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local end.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The two halves.
    pub fn split(self) -> (TcpLinkReader, TcpLinkWriter) {
        (self.reader, self.writer)
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// The reading half: whole OpenVPN packets out of the byte stream.
#[derive(Debug)]
pub struct TcpLinkReader {
    rd: OwnedReadHalf,
    decoder: TcpDecoder,
    rbuf: Box<[u8]>,
    /// Bytes of `rbuf` read but not yet taken by the decoder.
    pending: std::ops::Range<usize>,
}

impl TcpLinkReader {
    /// Waits until at least one whole packet is there, then calls `f` on
    /// every whole packet available; returns how many. Errors end the
    /// connection ([`TcpError::Closed`] on a clean EOF). Cancel-safe: bytes
    /// read are kept for the next call.
    pub async fn recv_with(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, TcpError> {
        loop {
            let n = self.drain(&mut f)?;
            if n > 0 {
                return Ok(n);
            }
            let got = self.rd.read(&mut self.rbuf).await?;
            if got == 0 {
                return Err(TcpError::Closed);
            }
            self.pending = 0..got;
        }
    }

    /// Waits for the next whole packet and copies it into `buf`; returns
    /// its length. Cancel-safe.
    pub async fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        loop {
            match self.decoder.next_packet()? {
                Some(p) => {
                    let have = buf.len();
                    let dst = buf.get_mut(..p.len()).ok_or(TcpError::BufferTooSmall {
                        need: p.len(),
                        have,
                    })?;
                    dst.copy_from_slice(p);
                    return Ok(p.len());
                }
                None if !self.pending.is_empty() => self.feed_pending(),
                None => {
                    let got = self.rd.read(&mut self.rbuf).await?;
                    if got == 0 {
                        return Err(TcpError::Closed);
                    }
                    self.pending = 0..got;
                }
            }
        }
    }

    /// Hands every complete packet buffered to `f`, feeding pending bytes.
    fn drain(&mut self, f: &mut impl FnMut(&[u8])) -> Result<usize, TcpError> {
        let mut n = 0;
        loop {
            while let Some(p) = self.decoder.next_packet()? {
                f(p);
                n += 1;
            }
            if self.pending.is_empty() {
                return Ok(n);
            }
            self.feed_pending();
        }
    }

    fn feed_pending(&mut self) {
        let chunk = &self.rbuf[self.pending.clone()];
        let rest = self.decoder.feed(chunk).len();
        self.pending.start = self.pending.end - rest;
    }
}

/// The writing half: a bounded queue of framed packets.
#[derive(Debug)]
pub struct TcpLinkWriter {
    wr: OwnedWriteHalf,
    out: Vec<u8>,
    /// Bytes of `out` already written to the socket.
    written: usize,
    capacity: usize,
}

impl TcpLinkWriter {
    /// Appends `packet` with its length prefix to the queue, without I/O.
    /// [`TcpError::QueueFull`] means: flush first (backpressure);
    /// [`TcpError::Framing`] an empty or over-65535-byte packet (our bug).
    pub fn queue(&mut self, packet: &[u8]) -> Result<(), TcpError> {
        length_prefix(packet.len())?;
        let queued = self.queued();
        if queued + LEN_PREFIX + packet.len() > self.capacity {
            return Err(TcpError::QueueFull {
                queued,
                capacity: self.capacity,
            });
        }
        self.reclaim();
        Ok(push_record(&mut self.out, packet)?)
    }

    /// Queues a packet written in place by `fill` into `max_len` bytes
    /// (encrypt straight into the queue); `fill` returns the length it
    /// wrote, clamped to `max_len`, and 0 queues nothing. Same errors as
    /// [`Self::queue`], checked against `max_len`.
    pub fn queue_with(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, TcpError> {
        length_prefix(max_len)?;
        let queued = self.queued();
        if queued + LEN_PREFIX + max_len > self.capacity {
            return Err(TcpError::QueueFull {
                queued,
                capacity: self.capacity,
            });
        }
        self.reclaim();
        Ok(push_record_with(&mut self.out, max_len, fill)?)
    }

    /// Starts the buffer over once everything in it was written, so it
    /// does not grow past one queue's worth.
    fn reclaim(&mut self) {
        if self.written > 0 && self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.written
    }

    /// Room left in the queue, in bytes (including prefixes).
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.queued())
    }

    /// Writes the whole queue, waiting for the socket as needed.
    /// Cancel-safe: what was written stays written, the rest stays queued.
    pub async fn flush(&mut self) -> Result<(), TcpError> {
        while self.written < self.out.len() {
            let n = self.wr.write(&self.out[self.written..]).await?;
            if n == 0 {
                return Err(TcpError::Closed);
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Writes what the socket takes now without waiting; returns whether the
    /// queue is empty afterwards.
    pub fn try_flush(&mut self) -> Result<bool, TcpError> {
        while self.written < self.out.len() {
            match self.wr.try_write(&self.out[self.written..]) {
                Ok(0) => return Err(TcpError::Closed),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(true)
    }

    /// Queues `packet`, flushing first if the queue is full.
    pub async fn send(&mut self, packet: &[u8]) -> Result<(), TcpError> {
        match self.queue(packet) {
            Err(TcpError::QueueFull { .. }) => {
                self.flush().await?;
                self.queue(packet)
            }
            other => other,
        }
    }

    /// Flushes and half-closes the stream (FIN).
    pub async fn shutdown(&mut self) -> Result<(), TcpError> {
        self.flush().await?;
        self.wr.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(opts: TcpOptions) -> (TcpLink, TcpLink) {
        let server =
            TcpServer::bind("127.0.0.1:0".parse().expect("addr"), false, opts).expect("bind");
        let addr = server.local_addr().expect("addr");
        let (c, s) = tokio::join!(connect(addr, &opts), server.accept());
        (c.expect("connect"), s.expect("accept").0)
    }

    #[tokio::test]
    async fn packets_round_trip_through_queue_and_flush() {
        let (c, s) = pair(TcpOptions::default()).await;
        let (_cr, mut cw) = c.split();
        let (mut sr, _sw) = s.split();
        for i in 1..=100u16 {
            cw.queue(&vec![i as u8; usize::from(i)]).expect("queue");
        }
        cw.flush().await.expect("flush");
        let mut got = Vec::new();
        while got.len() < 100 {
            sr.recv_with(|p| got.push(p.to_vec())).await.expect("recv");
        }
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p, &vec![(i + 1) as u8; i + 1]);
        }
    }

    #[tokio::test]
    async fn dual_stack_listener_reports_ipv4_clients_as_ipv4() {
        let server = TcpServer::bind(
            "[::]:0".parse().expect("addr"),
            false,
            TcpOptions::default(),
        )
        .expect("bind");
        let port = server.local_addr().expect("addr").port();
        let target: SocketAddr = ([127, 0, 0, 1], port).into();
        let opts = TcpOptions::default();
        let (c, s) = tokio::join!(connect(target, &opts), server.accept());
        let (c, (s, peer)) = (c.expect("connect"), s.expect("accept"));
        assert_eq!(peer, c.local_addr());
        assert_eq!(s.local_addr(), target);
        assert!(peer.is_ipv4());
    }

    #[tokio::test]
    async fn queue_with_frames_what_fill_wrote() {
        let (c, s) = pair(TcpOptions::default()).await;
        let (_cr, mut cw) = c.split();
        let (mut sr, _sw) = s.split();
        assert_eq!(
            cw.queue_with(100, |b| {
                b[..3].copy_from_slice(b"abc");
                3
            })
            .expect("queue"),
            3
        );
        assert_eq!(cw.queue_with(100, |_| 0).expect("nothing"), 0);
        cw.queue(b"de").expect("queue");
        assert!(matches!(
            cw.queue_with(70_000, |_| 1),
            Err(TcpError::Framing(_))
        ));
        cw.flush().await.expect("flush");
        let mut got = Vec::new();
        while got.len() < 2 {
            sr.recv_with(|p| got.push(p.to_vec())).await.expect("recv");
        }
        assert_eq!(got, vec![b"abc".to_vec(), b"de".to_vec()]);
    }

    #[tokio::test]
    async fn full_queue_pushes_back_until_flushed() {
        let opts = TcpOptions {
            write_queue: 100,
            ..TcpOptions::default()
        };
        let (c, _s) = pair(opts).await;
        let (_r, mut w) = c.split();
        w.queue(&[1; 60]).expect("fits");
        assert!(matches!(
            w.queue(&[2; 60]),
            Err(TcpError::QueueFull { queued: 62, .. })
        ));
        w.flush().await.expect("flush");
        w.queue(&[2; 60]).expect("fits after flush");
        assert!(matches!(w.queue(&[]), Err(TcpError::Framing(_))));
    }

    #[tokio::test]
    async fn oversized_record_is_a_framing_error_and_eof_is_closed() {
        let opts = TcpOptions {
            max_record: 100,
            ..TcpOptions::default()
        };
        let server =
            TcpServer::bind("127.0.0.1:0".parse().expect("addr"), false, opts).expect("bind");
        let addr = server.local_addr().expect("addr");
        let mut raw = TcpStream::connect(addr).await.expect("connect");
        let (mut link, _) = server.accept().await.expect("accept");
        raw.write_all(&[0, 3, 7, 8, 9, 0, 200])
            .await
            .expect("write");
        let mut buf = [0u8; 200];
        assert_eq!(link.reader.recv_into(&mut buf).await.expect("first"), 3);
        assert_eq!(&buf[..3], &[7, 8, 9]);
        assert!(matches!(
            link.reader.recv_into(&mut buf).await,
            Err(TcpError::Framing(WireError::OversizedRecord {
                len: 200,
                max: 100
            }))
        ));

        let mut raw2 = TcpStream::connect(addr).await.expect("connect");
        let (mut link2, _) = server.accept().await.expect("accept");
        raw2.write_all(&[0, 1]).await.expect("write");
        raw2.shutdown().await.expect("fin");
        assert!(matches!(
            link2.reader.recv_with(|_| {}).await,
            Err(TcpError::Closed)
        ));
    }
}
