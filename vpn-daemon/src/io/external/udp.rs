//! The UDP link of the external multiplexer, batched: `recvmmsg` with UDP
//! GRO on receive, `sendmmsg` of UDP GSO messages on send,
//! `IP_PKTINFO`/`IPV6_PKTINFO` so a server bound to the wildcard answers
//! from the address the client contacted.
//!
//! Receiving and the socket options are `quinn-udp`'s (it gets the cmsg
//! parsing and the GRO stride right); sending is ours, because quinn-udp
//! sends one message per syscall and a server answers many peers at once:
//!
//! ```text
//! RecvBatch: [ slot 0: d0 d1 d2 (GRO, stride) | slot 1: d3 | ... ]  + per-slot meta (peer, dst ip)
//! SendBatch: [ d0 d1 d2 | d3 | d4 d5 ... ] contiguous; each run of same-destination,
//!            same-size datagrams (the last may be shorter) is one GSO message,
//!            up to 32 messages per sendmmsg
//! ```
//!
//! When the device refuses GSO the run is resent as single datagrams (and
//! on `EIO`/`EINVAL` GSO is switched off for the socket); without kernel
//! GSO/GRO every message holds one datagram and batching still comes from
//! `sendmmsg`/`recvmmsg`.
//!
//! One worker per core binds its own socket with `SO_REUSEPORT`
//! ([`UdpConfig::reuse_port`]); the kernel (or a reuseport BPF program)
//! spreads peers over them. Peer addresses are handed out canonical:
//! an IPv4 client of a dual-stack socket shows as IPv4, never `::ffff:a.b.c.d`.
//!
//! A worker's link side, in outline:
//!
//! ```no_run
//! # async fn worker() -> std::io::Result<()> {
//! use vpn_daemon::io::external::udp::{SendBatch, UdpConfig, UdpLink};
//! let mut cfg = UdpConfig::new("[::]:1194".parse().expect("address"));
//! cfg.reuse_port = true;
//! let link = UdpLink::bind(&cfg).expect("bind");
//! let mut rx = link.recv_batch_buffer(8, 2048);
//! let mut tx = SendBatch::with_capacity(64 * 1600);
//! loop {
//!     link.recv_batch(&mut rx).await?;
//!     for d in rx.iter_mut() {
//!         // session.handle_datagram(now, d.peer, d.data) -> replies:
//!         tx.push(d.peer, d.local_ip, d.data);
//!     }
//!     let stats = link.send_batch(&mut tx).await?;
//!     let _ = stats.dropped; // count, never fatal
//! }
//! # }
//! ```

use std::{
    io::{self, IoSliceMut},
    net::{IpAddr, SocketAddr, SocketAddrV6},
    sync::atomic::{AtomicBool, Ordering},
};

use quinn_udp::{RecvMeta, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use tokio::io::Interest;

/// Largest number of receive slots one `recvmmsg` fills (quinn-udp's batch).
pub const MAX_RECV_SLOTS: usize = quinn_udp::BATCH_SIZE;

/// Largest number of messages (GSO runs) one `sendmmsg` carries.
pub const MAX_SEND_MSGS: usize = 32;

/// Control buffer per message, in u64 words: `UDP_SEGMENT` (24 bytes) plus
/// `IPV6_PKTINFO` (40 bytes) on 64-bit Linux.
const CMSG_WORDS: usize = 8;

/// `UDP_SEGMENT` (linux/udp.h): the GSO segment size of a send.
const UDP_SEGMENT: libc::c_int = 103;

/// One message of a `sendmmsg`: entries `first..first + count`, cut in
/// `seg`-byte datagrams by GSO when `count > 1`.
#[derive(Clone, Copy, Debug, Default)]
struct Group {
    first: usize,
    count: usize,
    seg: usize,
}

/// Largest UDP payload one GSO send may carry: the IPv4 total-length limit
/// (65535) less the IPv4 and UDP headers, kept for IPv6 too.
const MAX_GSO_BYTES: usize = 65_535 - 20 - 8;

/// Errors of setting up the UDP link.
#[derive(Debug, Error)]
pub enum UdpError {
    /// A socket call failed while creating or configuring the socket.
    #[error("UDP socket {call} for {addr}: {source}")]
    Setup {
        /// The call or option that failed (`socket`, `bind`, `SO_REUSEPORT`, ...).
        call: &'static str,
        /// The local address being set up.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// How to open the UDP link (`proto udp`/`udp4`/`udp6`, `local`, `lport`,
/// `sndbuf`, `rcvbuf`).
#[derive(Clone, Debug)]
pub struct UdpConfig {
    /// Local address: `0.0.0.0:1194`, `[::]:1194` (dual-stack unless
    /// [`Self::v6_only`]), a specific address, or port 0 for a client.
    pub bind: SocketAddr,
    /// Only for IPv6 binds: refuse IPv4-mapped traffic (`bind ipv6only`).
    pub v6_only: bool,
    /// `SO_REUSEPORT`: one socket per worker on the same address.
    pub reuse_port: bool,
    /// `SO_SNDBUF` in bytes (`sndbuf`); `None` keeps the OS default.
    pub sndbuf: Option<usize>,
    /// `SO_RCVBUF` in bytes (`rcvbuf`); `None` keeps the OS default.
    pub rcvbuf: Option<usize>,
    /// MTU of the path out (outer packets): datagrams whose IP packet
    /// exceeds it are never put in a GSO batch, as the kernel refuses
    /// segments above the path MTU. Such datagrams go out alone and the
    /// kernel fragments them (see [`Self::allow_fragmentation`]).
    pub path_mtu: u16,
    /// Let the kernel fragment outer packets larger than the path MTU, as
    /// OpenVPN does by default ("outer IP fragmentation is left to the
    /// OS"). When false the DF bit is always set and such sends fail.
    pub allow_fragmentation: bool,
    /// Use UDP GSO when the kernel offers it; false puts one datagram in
    /// each `sendmmsg` message (for devices that mishandle GSO, and for
    /// measuring).
    pub gso: bool,
    /// `SO_MARK` (`mark N`), for policy routing of the tunnel's packets.
    pub mark: Option<u32>,
    /// `IP_MTU_DISCOVER` as `mtu-disc` asks (`IP_PMTUDISC_*`); `None`
    /// leaves what [`Self::allow_fragmentation`] chose.
    pub mtu_discover: Option<libc::c_int>,
}

impl UdpConfig {
    /// Defaults for a socket bound to `bind`: dual-stack, no reuseport, OS
    /// buffer sizes, a 1500-byte path, fragmentation allowed.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            v6_only: false,
            reuse_port: false,
            sndbuf: None,
            rcvbuf: None,
            path_mtu: 1500,
            allow_fragmentation: true,
            gso: true,
            mark: None,
            mtu_discover: None,
        }
    }
}

/// A datagram received: who sent it, to which local address, and its bytes.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// The sender, canonical (IPv4-mapped IPv6 shown as IPv4).
    pub peer: SocketAddr,
    /// The local address it was sent to (from pktinfo), canonical; pass it
    /// back as the source of replies on a wildcard-bound socket.
    pub local_ip: Option<IpAddr>,
    /// The datagram.
    pub data: &'a [u8],
}

/// A received datagram with mutable bytes, for decrypting in place.
#[derive(Debug)]
pub struct DatagramMut<'a> {
    /// The sender, canonical.
    pub peer: SocketAddr,
    /// The local address it was sent to, canonical.
    pub local_ip: Option<IpAddr>,
    /// The datagram.
    pub data: &'a mut [u8],
}

/// Caller-owned receive buffers for [`UdpLink::recv_batch`]: a few slots,
/// each large enough for a whole GRO train (up to 64 datagrams).
pub struct RecvBatch {
    storage: Vec<u8>,
    slot_len: usize,
    meta: Vec<RecvMeta>,
    filled: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.meta.len())
            .field("slot_len", &self.slot_len)
            .field("filled", &self.filled)
            .finish()
    }
}

impl RecvBatch {
    /// `slots` receive slots (at most [`MAX_RECV_SLOTS`]) of `slot_len`
    /// bytes. Use [`UdpLink::recv_batch_buffer`] to size slots for GRO.
    pub fn new(slots: usize, slot_len: usize) -> Self {
        let slots = slots.clamp(1, MAX_RECV_SLOTS);
        let slot_len = slot_len.max(1);
        Self {
            storage: vec![0u8; slots * slot_len],
            slot_len,
            meta: vec![RecvMeta::default(); slots],
            filled: 0,
        }
    }

    /// Slots filled by the last receive (each may hold several datagrams).
    pub fn slots_filled(&self) -> usize {
        self.filled
    }

    /// The datagrams of the last receive, GRO trains split at their stride.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> {
        self.meta
            .iter()
            .take(self.filled)
            .zip(self.storage.chunks(self.slot_len))
            .flat_map(|(m, slot)| {
                let peer = canonical(m.addr);
                let local_ip = m.dst_ip.map(canonical_ip);
                let data = slot.get(..m.len).unwrap_or(slot);
                let stride = if m.stride == 0 {
                    m.len.max(1)
                } else {
                    m.stride
                };
                data.chunks(stride).map(move |data| Datagram {
                    peer,
                    local_ip,
                    data,
                })
            })
    }

    /// Like [`Self::iter`], with mutable bytes (for in-place decryption).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = DatagramMut<'_>> {
        let filled = self.filled;
        self.meta
            .iter()
            .take(filled)
            .zip(self.storage.chunks_mut(self.slot_len))
            .flat_map(|(m, slot)| {
                let peer = canonical(m.addr);
                let local_ip = m.dst_ip.map(canonical_ip);
                let len = m.len.min(slot.len());
                let stride = if m.stride == 0 { len.max(1) } else { m.stride };
                slot[..len].chunks_mut(stride).map(move |data| DatagramMut {
                    peer,
                    local_ip,
                    data,
                })
            })
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    dst: SocketAddr,
    src: Option<IpAddr>,
    start: usize,
    len: usize,
}

/// Datagrams queued for [`UdpLink::send_batch`], stored back to back so
/// that a run to one destination is one contiguous GSO buffer.
#[derive(Debug, Default)]
pub struct SendBatch {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    /// Entries already handed to the kernel (a cancelled send resumes here).
    sent: usize,
}

impl SendBatch {
    /// An empty batch with room for `bytes` bytes before it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(64),
            sent: 0,
        }
    }

    /// Datagrams queued and not yet sent.
    pub fn len(&self) -> usize {
        self.entries.len() - self.sent
    }

    /// Whether nothing is waiting to be sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a copy of `datagram` for `dst`, sent from `src` when the
    /// socket is bound to the wildcard (the [`Datagram::local_ip`] of the
    /// peer's last packet); empty datagrams are ignored.
    pub fn push(&mut self, dst: SocketAddr, src: Option<IpAddr>, datagram: &[u8]) {
        self.push_with(dst, src, datagram.len(), |b| {
            b.copy_from_slice(datagram);
            datagram.len()
        });
    }

    /// Queues a datagram written in place by `fill` into a buffer of
    /// `max_len` bytes; `fill` returns the length it wrote (clamped to
    /// `max_len`; 0 queues nothing). Saves a copy when encrypting.
    pub fn push_with(
        &mut self,
        dst: SocketAddr,
        src: Option<IpAddr>,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) {
        if self.sent == self.entries.len() && self.sent > 0 {
            self.clear();
        }
        let start = self.buf.len();
        self.buf.resize(start + max_len, 0);
        let len = fill(&mut self.buf[start..]).min(max_len);
        self.buf.truncate(start + len);
        if len > 0 {
            self.entries.push(Entry {
                dst,
                src,
                start,
                len,
            });
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
        self.sent = 0;
    }
}

/// What one [`UdpLink::send_batch`] did.
#[derive(Debug, Default)]
pub struct SendStats {
    /// Datagrams the kernel accepted.
    pub sent: usize,
    /// `sendmsg` calls made (fewer than `sent` when GSO batched).
    pub syscalls: usize,
    /// Datagrams dropped on a send error (unreachable, too big, ...): UDP
    /// loss the protocol recovers from, counted rather than fatal.
    pub dropped: usize,
    /// The last send error, for logging.
    pub last_error: Option<io::Error>,
}

/// A tokio-registered UDP socket with batched I/O.
#[derive(Debug)]
pub struct UdpLink {
    sock: tokio::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    /// Whether replies must name their source address (wildcard bind).
    wildcard: bool,
    is_v6: bool,
    path_mtu: u16,
    gso: bool,
    /// Set when the device refused a GSO send; from then on no GSO.
    gso_refused: AtomicBool,
}

impl UdpLink {
    /// Creates, configures and binds the socket; must run inside a tokio
    /// runtime (the socket is registered with its reactor).
    pub fn bind(cfg: &UdpConfig) -> Result<Self, UdpError> {
        let addr = cfg.bind;
        let err = |call: &'static str| move |source| UdpError::Setup { call, addr, source };
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::DGRAM.nonblocking().cloexec(),
            Some(Protocol::UDP),
        )
        .map_err(err("socket"))?;
        if addr.is_ipv6() {
            sock.set_only_v6(cfg.v6_only).map_err(err("IPV6_V6ONLY"))?;
        }
        if cfg.reuse_port {
            sock.set_reuse_port(true).map_err(err("SO_REUSEPORT"))?;
        }
        if let Some(n) = cfg.sndbuf {
            sock.set_send_buffer_size(n).map_err(err("SO_SNDBUF"))?;
        }
        if let Some(n) = cfg.rcvbuf {
            sock.set_recv_buffer_size(n).map_err(err("SO_RCVBUF"))?;
        }
        if let Some(m) = cfg.mark {
            sock.set_mark(m).map_err(err("SO_MARK"))?;
        }
        sock.bind(&addr.into()).map_err(err("bind"))?;
        let std_sock: std::net::UdpSocket = sock.into();
        let state = UdpSocketState::new((&std_sock).into()).map_err(err("pktinfo/GRO options"))?;
        if cfg.allow_fragmentation {
            // quinn-udp forbids fragmentation (QUIC probes the path);
            // OpenVPN leaves the OS default, which fragments locally.
            allow_fragmentation(&std_sock, addr.is_ipv6()).map_err(err("IP_MTU_DISCOVER"))?;
        }
        if let Some(t) = cfg.mtu_discover {
            set_mtu_discover(&std_sock, addr.is_ipv6(), t).map_err(err("IP_MTU_DISCOVER"))?;
        }
        let local = std_sock.local_addr().map_err(err("getsockname"))?;
        let sock = tokio::net::UdpSocket::from_std(std_sock).map_err(err("tokio register"))?;
        Ok(Self {
            sock,
            state,
            local,
            wildcard: local.ip().is_unspecified(),
            is_v6: local.is_ipv6(),
            path_mtu: cfg.path_mtu,
            gso: cfg.gso,
            gso_refused: AtomicBool::new(false),
        })
    }

    /// `n` sockets on one address with `SO_REUSEPORT`, one per worker. With
    /// port 0 the first socket's port is reused for the others.
    pub fn bind_workers(cfg: &UdpConfig, n: usize) -> Result<Vec<Self>, UdpError> {
        let mut cfg = cfg.clone();
        cfg.reuse_port = true;
        let first = Self::bind(&cfg)?;
        cfg.bind.set_port(first.local_addr().port());
        let mut links = vec![first];
        for _ in 1..n.max(1) {
            links.push(Self::bind(&cfg)?);
        }
        Ok(links)
    }

    /// The bound address (with the port chosen by the OS for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams the kernel may coalesce into one receive slot (1 = no GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Datagrams one GSO send may carry now (1 = no GSO, or switched off
    /// after the device refused it).
    pub fn gso_segments(&self) -> usize {
        if self.gso && !self.gso_refused.load(Ordering::Relaxed) {
            self.state.max_gso_segments()
        } else {
            1
        }
    }

    /// A [`RecvBatch`] of `slots` slots sized for this socket: each holds
    /// a full GRO train of datagrams up to `max_datagram` bytes.
    pub fn recv_batch_buffer(&self, slots: usize, max_datagram: usize) -> RecvBatch {
        RecvBatch::new(slots, max_datagram * self.gro_segments().max(1))
    }

    /// Waits for datagrams and receives as many as `batch` holds in one
    /// `recvmmsg`; returns the number of slots filled (see
    /// [`RecvBatch::iter`] for the datagrams). Cancel-safe.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.sock
            .async_io(Interest::READABLE, || self.recv_now(batch))
            .await
    }

    /// One non-blocking `recvmmsg`: `WouldBlock` when nothing is queued.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.sock
            .try_io(Interest::READABLE, || self.recv_now(batch))
    }

    fn recv_now(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.filled = 0;
        let mut chunks = batch.storage.chunks_mut(batch.slot_len);
        let mut slices: [IoSliceMut<'_>; MAX_RECV_SLOTS] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or(&mut [])));
        let slots = batch.meta.len().min(MAX_RECV_SLOTS);
        let n = self.state.recv(
            (&self.sock).into(),
            &mut slices[..slots],
            &mut batch.meta[..slots],
        )?;
        batch.filled = n.min(slots);
        Ok(batch.filled)
    }

    /// Sends everything in `batch`: runs of same-destination, same-size
    /// datagrams become one GSO message each, and up to
    /// [`MAX_SEND_MSGS`] messages (several peers) leave in one `sendmmsg`.
    /// Waits while the socket buffer is full. Per-datagram errors are
    /// counted in [`SendStats::dropped`]; `Err` only for errors of the
    /// socket itself. Cancel-safe: a cancelled call leaves the unsent rest
    /// in `batch`. Empties `batch` on success.
    pub async fn send_batch(&self, batch: &mut SendBatch) -> io::Result<SendStats> {
        let mut stats = SendStats::default();
        // Entries below this index go out one datagram per message: their
        // GSO message was refused.
        let mut single_until = 0;
        while batch.sent < batch.entries.len() {
            let mut groups = [Group::default(); MAX_SEND_MSGS];
            let mut ng = 0;
            let mut i = batch.sent;
            while ng < MAX_SEND_MSGS && i < batch.entries.len() {
                let (count, seg) = if i < single_until {
                    (1, batch.entries[i].len)
                } else {
                    self.next_group(batch, i)
                };
                groups[ng] = Group {
                    first: i,
                    count,
                    seg,
                };
                ng += 1;
                i += count;
            }
            let groups = &groups[..ng];
            let res = self
                .sock
                .async_io(Interest::WRITABLE, || self.sendmmsg_now(batch, groups))
                .await;
            stats.syscalls += 1;
            match res {
                Ok(k) => {
                    for g in groups.iter().take(k) {
                        stats.sent += g.count;
                        batch.sent = g.first + g.count;
                    }
                }
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    // The first message not sent failed.
                    let g = groups[0];
                    if g.count > 1 {
                        if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) {
                            // Some devices refuse UDP GSO only when used.
                            tracing::info!(error = %e, "UDP GSO refused; sending unsegmented");
                            self.gso_refused.store(true, Ordering::Relaxed);
                        }
                        single_until = g.first + g.count;
                    } else {
                        stats.dropped += 1;
                        stats.last_error = Some(e);
                        batch.sent = g.first + 1;
                    }
                }
            }
        }
        batch.clear();
        Ok(stats)
    }

    /// One `sendmmsg` of `groups`; the number of messages sent.
    fn sendmmsg_now(&self, batch: &SendBatch, groups: &[Group]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let n = groups.len().min(MAX_SEND_MSGS);
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; MAX_SEND_MSGS] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; MAX_SEND_MSGS] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; MAX_SEND_MSGS] = unsafe { std::mem::zeroed() };
        // u64 elements keep the control buffers aligned for cmsghdr.
        let mut cmsgs = [[0u64; CMSG_WORDS]; MAX_SEND_MSGS];
        for (k, g) in groups.iter().take(n).enumerate() {
            let first = batch.entries[g.first];
            let last = batch.entries[g.first + g.count - 1];
            let contents = &batch.buf[first.start..last.start + last.len];
            let addr_len = write_sockaddr(self.wire_addr(first.dst), &mut addrs[k]);
            iovs[k] = libc::iovec {
                iov_base: contents.as_ptr() as *mut libc::c_void,
                iov_len: contents.len(),
            };
            let hdr = &mut hdrs[k].msg_hdr;
            hdr.msg_name = (&raw mut addrs[k]).cast();
            hdr.msg_namelen = addr_len;
            hdr.msg_iov = &raw mut iovs[k];
            hdr.msg_iovlen = 1;
            let segment = (g.count > 1).then_some(g.seg);
            let src = self.source_for(first.src);
            if segment.is_some() || src.is_some() {
                hdr.msg_control = cmsgs[k].as_mut_ptr().cast();
                hdr.msg_controllen = size_of::<[u64; CMSG_WORDS]>() as _;
                // SAFETY: msg_control points to a zeroed, aligned buffer of
                // msg_controllen bytes that outlives the call below.
                let used = unsafe { write_cmsgs(hdr, segment, src, self.is_v6) };
                hdr.msg_controllen = used as _;
                if used == 0 {
                    hdr.msg_control = std::ptr::null_mut();
                }
            }
        }
        // SAFETY: every header points into arrays (addresses, iovecs,
        // control buffers) and batch bytes that live until this returns.
        let r = unsafe { libc::sendmmsg(self.sock.as_raw_fd(), hdrs.as_mut_ptr(), n as _, 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Length of the GSO run starting at entry `i` and its segment size.
    fn next_group(&self, batch: &SendBatch, i: usize) -> (usize, usize) {
        let first = batch.entries[i];
        let seg = first.len;
        let max_segs = self.gso_segments().max(1);
        let header = if first.dst.is_ipv4() { 28 } else { 48 };
        if max_segs == 1 || seg + header > usize::from(self.path_mtu) {
            return (1, seg);
        }
        let mut count = 1;
        let mut bytes = seg;
        while let Some(e) = batch.entries.get(i + count) {
            if count >= max_segs
                || e.dst != first.dst
                || e.src != first.src
                || e.len > seg
                || bytes + e.len > MAX_GSO_BYTES
            {
                break;
            }
            count += 1;
            bytes += e.len;
            if e.len < seg {
                // A shorter datagram can only end a GSO run.
                break;
            }
        }
        (count, seg)
    }

    /// The destination as this socket's family needs it.
    fn wire_addr(&self, dst: SocketAddr) -> SocketAddr {
        match dst {
            SocketAddr::V4(v4) if self.is_v6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            other => other,
        }
    }

    /// Source address to pin, only needed on a wildcard-bound socket.
    fn source_for(&self, src: Option<IpAddr>) -> Option<IpAddr> {
        if !self.wildcard {
            return None;
        }
        match src? {
            IpAddr::V4(v4) if self.is_v6 => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            other => Some(other),
        }
    }
}

/// The socket, for attaching a reuseport BPF steering program.
impl std::os::fd::AsFd for UdpLink {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Writes `addr` as a C socket address; returns its length.
fn write_sockaddr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut *out).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut *out).cast::<libc::sockaddr_in6>(), sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Fills the control messages of `hdr`: `UDP_SEGMENT` for a GSO message,
/// the source address (`IP_PKTINFO`, or `IPV6_PKTINFO` on an IPv6 socket,
/// IPv4-mapped for IPv4 peers). Returns the control bytes used.
///
/// # Safety
/// `hdr.msg_control` must point to `hdr.msg_controllen` zeroed bytes,
/// aligned for `cmsghdr`, with room for both messages.
unsafe fn write_cmsgs(
    hdr: &mut libc::msghdr,
    segment: Option<usize>,
    src: Option<IpAddr>,
    socket_v6: bool,
) -> usize {
    let mut used = 0usize;
    // SAFETY: CMSG_FIRSTHDR/NXTHDR stay inside the buffer the caller
    // vouched for (or return null), and each payload fits its CMSG_LEN.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        if let Some(seg) = segment {
            if c.is_null() {
                return used;
            }
            let v = u16::try_from(seg).unwrap_or(u16::MAX);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), v);
            used += libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
            // NXTHDR reads cmsg_len and msg_controllen; the latter still
            // spans the whole buffer here.
            c = libc::CMSG_NXTHDR(hdr, c);
        }
        if let Some(ip) = src {
            if c.is_null() {
                return used;
            }
            match (ip, socket_v6) {
                (IpAddr::V4(v4), false) => {
                    let info = libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from_ne_bytes(v4.octets()),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    (*c).cmsg_level = libc::IPPROTO_IP;
                    (*c).cmsg_type = libc::IP_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), info);
                    used += libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                }
                (ip, _) => {
                    let v6 = match ip {
                        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                        IpAddr::V6(v6) => v6,
                    };
                    let info = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: v6.octets(),
                        },
                        ipi6_ifindex: 0,
                    };
                    (*c).cmsg_level = libc::IPPROTO_IPV6;
                    (*c).cmsg_type = libc::IPV6_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
                    used += libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                }
            }
        }
    }
    used
}

/// Errors that concern the socket, not the datagram.
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT)
    )
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(a.ip()), a.port())
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Restores the OS's "fragment locally when bigger than the path MTU"
/// behaviour (`IP_PMTUDISC_WANT`, no `IPV6_DONTFRAG`).
fn allow_fragmentation(sock: &std::net::UdpSocket, v6: bool) -> io::Result<()> {
    let s = socket2::SockRef::from(sock);
    // Also for IPv6 sockets: it governs their IPv4-mapped traffic.
    setsockopt_int(
        &s,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_WANT,
    )?;
    if v6 {
        setsockopt_int(
            &s,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IP_PMTUDISC_WANT,
        )?;
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0)?;
    }
    Ok(())
}

/// `mtu-disc`: 2.6 sets `IP_MTU_DISCOVER` (and its IPv6 twin) to the
/// chosen `IP_PMTUDISC_*`.
fn set_mtu_discover(sock: &std::net::UdpSocket, v6: bool, t: libc::c_int) -> io::Result<()> {
    let s = socket2::SockRef::from(sock);
    setsockopt_int(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, t)?;
    if v6 {
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, t)?;
        let dont = libc::c_int::from(t == libc::IP_PMTUDISC_DO);
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, dont)?;
    }
    Ok(())
}

fn setsockopt_int(
    s: &socket2::SockRef<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket fd, an int option and a pointer/length pair
    // describing a live c_int.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;

    fn lo(port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
    }

    #[tokio::test]
    async fn batch_over_loopback_arrives_whole_and_in_order() {
        let a = UdpLink::bind(&UdpConfig::new(lo(0))).expect("bind a");
        let b = UdpLink::bind(&UdpConfig::new(lo(0))).expect("bind b");
        let mut tx = SendBatch::with_capacity(64 * 1400);
        for i in 0..40u8 {
            tx.push(b.local_addr(), None, &[i; 1200]);
        }
        tx.push(b.local_addr(), None, &[99; 100]);
        let stats = a.send_batch(&mut tx).await.expect("send");
        assert_eq!(stats.sent, 41);
        assert_eq!(stats.dropped, 0);
        assert!(tx.is_empty());
        if a.gso_segments() > 1 {
            assert!(stats.syscalls < 41, "GSO should batch: {stats:?}");
        }
        let mut rx = b.recv_batch_buffer(8, 2048);
        let mut got = Vec::new();
        while got.len() < 41 {
            let fut = b.recv_batch(&mut rx);
            tokio::time::timeout(std::time::Duration::from_secs(5), fut)
                .await
                .expect("no timeout")
                .expect("recv");
            for d in rx.iter() {
                assert_eq!(d.peer, a.local_addr());
                got.push(d.data.to_vec());
            }
        }
        for (i, d) in got.iter().take(40).enumerate() {
            assert_eq!(d, &vec![i as u8; 1200]);
        }
        assert_eq!(got[40], vec![99u8; 100]);
    }

    #[tokio::test]
    async fn dual_stack_socket_reports_ipv4_peers_as_ipv4_and_replies() {
        let server = UdpLink::bind(&UdpConfig::new("[::]:0".parse().expect("addr"))).expect("bind");
        let port = server.local_addr().port();
        let client = UdpLink::bind(&UdpConfig::new(lo(0))).expect("bind");
        let mut tx = SendBatch::default();
        tx.push(lo(port), None, b"hello");
        client.send_batch(&mut tx).await.expect("send");
        let mut rx = server.recv_batch_buffer(4, 1500);
        server.recv_batch(&mut rx).await.expect("recv");
        let d = rx.iter().next().expect("one datagram");
        assert_eq!(d.peer, client.local_addr());
        assert_eq!(d.local_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let (peer, local) = (d.peer, d.local_ip);
        tx.push(peer, local, b"world");
        let st = server.send_batch(&mut tx).await.expect("reply");
        assert_eq!(st.sent, 1);
        let mut rx2 = client.recv_batch_buffer(4, 1500);
        client.recv_batch(&mut rx2).await.expect("recv");
        let d = rx2.iter().next().expect("reply");
        assert_eq!(d.data, b"world");
        assert_eq!(d.peer, lo(port));
    }

    #[tokio::test]
    async fn ipv6_only_sockets_exchange_a_gso_batch() {
        let v6 = |p: u16| -> SocketAddr {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), p)
        };
        let mut cfg = UdpConfig::new(v6(0));
        cfg.v6_only = true;
        let (Ok(a), Ok(b)) = (UdpLink::bind(&cfg), UdpLink::bind(&cfg)) else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let mut tx = SendBatch::default();
        for i in 0..10u8 {
            tx.push_with(b.local_addr(), None, 1000, |buf| {
                buf[..500].fill(i);
                500
            });
        }
        let st = a.send_batch(&mut tx).await.expect("send");
        assert_eq!((st.sent, st.dropped), (10, 0));
        let mut rx = b.recv_batch_buffer(4, 1500);
        let mut got = Vec::new();
        while got.len() < 10 {
            b.recv_batch(&mut rx).await.expect("recv");
            got.extend(rx.iter().map(|d| (d.peer, d.data.to_vec())));
        }
        for (i, (peer, data)) in got.iter().enumerate() {
            assert_eq!(*peer, a.local_addr());
            assert_eq!(data, &vec![i as u8; 500]);
        }
    }

    #[tokio::test]
    async fn one_sendmmsg_serves_several_peers_from_the_pinned_source() {
        let server =
            UdpLink::bind(&UdpConfig::new("0.0.0.0:0".parse().expect("addr"))).expect("bind");
        let port = server.local_addr().port();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(UdpLink::bind(&UdpConfig::new(lo(0))).expect("bind"));
        }
        let mut tx = SendBatch::default();
        for round in 0..2u8 {
            for (k, c) in clients.iter().enumerate() {
                tx.push(
                    c.local_addr(),
                    Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                    &[k as u8, round],
                );
            }
        }
        // A GSO run with a pinned source, in the same sendmmsg.
        for i in 2..7u8 {
            tx.push(
                clients[0].local_addr(),
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                &[0, i],
            );
        }
        let st = server.send_batch(&mut tx).await.expect("send");
        assert_eq!((st.sent, st.dropped, st.syscalls), (11, 0, 1), "{st:?}");
        for (k, c) in clients.iter().enumerate() {
            let mut rx = c.recv_batch_buffer(4, 64);
            let mut got = Vec::new();
            let want = if k == 0 { 7 } else { 2 };
            while got.len() < want {
                c.recv_batch(&mut rx).await.expect("recv");
                got.extend(rx.iter().map(|d| (d.peer, d.data.to_vec())));
            }
            assert_eq!(got[0], (lo(port), vec![k as u8, 0]));
            assert_eq!(got[1], (lo(port), vec![k as u8, 1]));
            for (i, d) in got.iter().enumerate().skip(2) {
                assert_eq!(d, &(lo(port), vec![0, i as u8]));
            }
        }
    }

    #[test]
    fn send_batch_groups_runs_by_destination_and_size() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let link = UdpLink::bind(&UdpConfig::new(lo(0))).expect("bind");
            if link.gso_segments() < 8 {
                return; // no GSO here: grouping is moot
            }
            let mut b = SendBatch::default();
            for _ in 0..3 {
                b.push(lo(9), None, &[0; 100]);
            }
            b.push(lo(9), None, &[0; 50]); // shorter: ends the run
            b.push(lo(9), None, &[0; 100]);
            b.push(lo(10), None, &[0; 100]); // other destination
            b.push(lo(10), None, &[0; 1500]); // bigger: new run, too big for GSO
            assert_eq!(link.next_group(&b, 0), (4, 100));
            assert_eq!(link.next_group(&b, 4), (1, 100));
            assert_eq!(link.next_group(&b, 5), (1, 100));
            assert_eq!(link.next_group(&b, 6), (1, 1500));
        });
    }

    #[test]
    fn recv_batch_splits_gro_trains_at_stride() {
        let mut rx = RecvBatch::new(2, 100);
        rx.storage[..10].copy_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
        rx.meta[0].len = 10;
        rx.meta[0].stride = 4;
        rx.meta[0].addr = "[::ffff:10.0.0.1]:5".parse().expect("addr");
        rx.meta[1].len = 3;
        rx.meta[1].stride = 0;
        rx.filled = 2;
        let got: Vec<_> = rx.iter().map(|d| (d.peer, d.data.to_vec())).collect();
        let p: SocketAddr = "10.0.0.1:5".parse().expect("addr");
        assert_eq!(got[0], (p, vec![1; 4]));
        assert_eq!(got[1], (p, vec![2; 4]));
        assert_eq!(got[2], (p, vec![3; 2]));
        assert_eq!(got[3].1, vec![0; 3]);
        assert_eq!(rx.iter_mut().count(), 4);
    }
}
