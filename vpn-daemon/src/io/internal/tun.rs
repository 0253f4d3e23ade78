//! The tun or tap device of the internal multiplexer (`dev tun`, `dev
//! tap`, `lladdr`, `tun-mtu`, `ifconfig`, `ifconfig-ipv6`), on `tun-rs`.
//!
//! A tap device (`IFF_TAP`) carries whole Ethernet frames: `tun-mtu` is
//! the interface MTU (the IP packet), so every read and write has up to
//! [`L2_ROOM`] more bytes of link-layer header; offload is never used on
//! it (tun-rs splits only IP packets).
//!
//! One [`Tun`] owns the device; it has one [`TunQueue`] per worker
//! (`IFF_MULTI_QUEUE`: the kernel spreads flows over the queues). With
//! offload ([`TunConfig::offload`], `IFF_VNET_HDR` + TSO/USO), the kernel
//! hands over one large TCP/UDP segment per read, which `tun-rs` splits
//! into MTU-sized IP packets with fixed headers and checksums, and writes
//! are coalesced back (GRO) before they enter the kernel: fewer syscalls
//! and a much cheaper kernel path on bulk TCP. Without offload each read
//! and write is one IP packet; both paths share the batch API:
//!
//! ```text
//! TunRxBatch slot: [ headroom (for the OpenVPN header, encrypt in place) | IP packet ]
//! TunTxBatch slot: [ virtio_net_hdr (offload only)                       | IP packet ]
//! ```
//!
//! Measured (release build, `tests/tests/io_tun.rs`, a user-space
//! forwarder between two tuns carrying one TCP stream, on a loaded 2-core
//! VM): about 0.7 Gbit/s with offload and 0.65 to 0.85 without, i.e. no
//! clear gain there, so offload stays opt-in ([`TunConfig::from_dev`]
//! leaves it off) until the full data path is measured with it.
//!
//! The device lives as long as the [`Tun`] value: a driver that keeps it
//! across reconnects has `persist-tun` (addresses and MTU can be changed
//! on the open device). Those configuration calls are interface ioctls:
//! they act in the calling thread's network namespace.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use thiserror::Error;
use tun_rs::{AsyncDevice, DeviceBuilder, GROTable, Layer, VIRTIO_NET_HDR_LEN};

/// Bytes a tap frame may have beyond the MTU: the Ethernet header (14)
/// and a VLAN tag (4), rounded up to 2.6's `TAP_MTU_EXTRA_DEFAULT`.
pub const L2_ROOM: u16 = 32;

/// Errors of opening or configuring the tun device.
#[derive(Debug, Error)]
pub enum TunError {
    /// A device name longer than 15 bytes or with a NUL.
    #[error("invalid tun device name {0:?}")]
    BadName(String),
    /// Creating the device or its queues failed (no `/dev/net/tun`, no
    /// CAP_NET_ADMIN, name taken by a non-tun device, ...).
    #[error("tun {what}: {source}")]
    Open {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Setting an address or the MTU failed.
    #[error("tun {dev} {what}: {source}")]
    Configure {
        /// The device.
        dev: String,
        /// The setting.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The IPv4 side of `ifconfig`, by topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunIpv4 {
    /// `topology subnet`: `ifconfig 10.8.0.2 255.255.255.0`.
    Subnet {
        /// Our address.
        local: Ipv4Addr,
        /// Prefix length of the tunnel subnet.
        prefix: u8,
    },
    /// `topology net30` / `p2p`: `ifconfig 10.8.0.6 10.8.0.5`, a
    /// point-to-point link to the remote end.
    PointToPoint {
        /// Our address.
        local: Ipv4Addr,
        /// The remote end.
        remote: Ipv4Addr,
    },
}

/// How to create the device.
#[derive(Clone, Debug)]
pub struct TunConfig {
    /// Name: `None` lets the kernel pick `tunN` (OpenVPN's `dev tun`);
    /// `Some("tun0")` or any custom name asks for exactly that one (an
    /// existing persistent tun of that name is attached to).
    pub name: Option<String>,
    /// `tun-mtu`.
    pub mtu: u16,
    /// IPv4 address, if any.
    pub ipv4: Option<TunIpv4>,
    /// IPv6 address and prefix length (`ifconfig-ipv6 fd00::2/64 ...`).
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// Queues to open (one per worker); 1 opens a single-queue device.
    pub queues: usize,
    /// `IFF_VNET_HDR` with TSO/USO offload.
    pub offload: bool,
    /// `txqueuelen`, `None` for the kernel default.
    pub tx_queue_len: Option<u32>,
    /// A tap (`IFF_TAP`, Ethernet frames) instead of a tun.
    pub tap: bool,
    /// `lladdr`: the tap's MAC address (else the kernel's random one).
    pub mac: Option<[u8; 6]>,
}

impl TunConfig {
    /// A device named after OpenVPN's `dev` argument: `tun` lets the kernel
    /// choose (`tunN`), anything else is taken as the exact name. MTU 1500,
    /// one queue, no addresses, no offload.
    pub fn from_dev(dev: &str) -> Self {
        Self {
            // A bare `dev tun` / `dev tap` lets the kernel pick tunN/tapN,
            // as openvpn does.
            name: (dev != "tun" && dev != "tap").then(|| dev.to_owned()),
            mtu: 1500,
            ipv4: None,
            ipv6: None,
            queues: 1,
            offload: false,
            tx_queue_len: None,
            tap: false,
            mac: None,
        }
    }
}

/// An open tun device and its queues.
#[derive(Debug)]
pub struct Tun {
    name: String,
    queues: Vec<Arc<TunQueue>>,
}

impl Tun {
    /// Creates (or attaches to) the device, sets MTU and addresses, brings
    /// it up and opens `cfg.queues` queues. Must run inside a tokio runtime.
    pub fn open(cfg: &TunConfig) -> Result<Self, TunError> {
        let open = |what| move |source| TunError::Open { what, source };
        let mut b = DeviceBuilder::new().mtu(cfg.mtu).enable(true);
        if let Some(name) = &cfg.name {
            if name.is_empty() || name.len() > 15 || name.contains('\0') {
                return Err(TunError::BadName(name.clone()));
            }
            b = b.name(name.clone());
        }
        match cfg.ipv4 {
            Some(TunIpv4::Subnet { local, prefix }) => b = b.ipv4(local, prefix, None),
            Some(TunIpv4::PointToPoint { local, remote }) => {
                b = b.ipv4(local, 32u8, Some(remote));
            }
            None => {}
        }
        if let Some((addr, prefix)) = cfg.ipv6 {
            b = b.ipv6(addr, prefix);
        }
        if let Some(n) = cfg.tx_queue_len {
            b = b.tx_queue_len(n);
        }
        if cfg.tap {
            b = b.layer(Layer::L2);
            if let Some(mac) = cfg.mac {
                b = b.mac_addr(mac);
            }
        }
        let multi = cfg.queues > 1;
        let offload = cfg.offload && !cfg.tap;
        let l2 = cfg.tap;
        b = b.with(|o| {
            o.multi_queue(multi).offload(offload);
        });
        let first = b.build_async().map_err(open("create"))?;
        let name = first.name().map_err(open("name"))?;
        let mut queues = Vec::with_capacity(cfg.queues.max(1));
        for _ in 1..cfg.queues.max(1) {
            let q = first.try_clone().map_err(open("open queue"))?;
            queues.push(q);
        }
        queues.insert(0, first);
        let queues = queues
            .into_iter()
            .map(|dev| Arc::new(TunQueue { offload, l2, dev }))
            .collect();
        Ok(Self { name, queues })
    }

    /// The device's MAC address (a tap's; a tun has none).
    pub fn mac(&self) -> Result<[u8; 6], TunError> {
        self.dev().mac_address().map_err(self.cfg_err("get mac"))
    }

    /// The interface name (`tun0`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All queues, one per worker; clone the `Arc` into the worker.
    pub fn queues(&self) -> &[Arc<TunQueue>] {
        &self.queues
    }

    /// Whether reads and writes go through the offload (virtio header) path.
    pub fn offload(&self) -> bool {
        self.queues.first().is_some_and(|q| q.offload)
    }

    fn dev(&self) -> &AsyncDevice {
        // `open` always creates at least one queue.
        &self.queues[0].dev
    }

    fn cfg_err(&self, what: &'static str) -> impl FnOnce(io::Error) -> TunError + '_ {
        move |source| TunError::Configure {
            dev: self.name.clone(),
            what,
            source,
        }
    }

    /// Changes the MTU of the open device.
    pub fn set_mtu(&self, mtu: u16) -> Result<(), TunError> {
        self.dev().set_mtu(mtu).map_err(self.cfg_err("set mtu"))
    }

    /// The device's MTU.
    pub fn mtu(&self) -> Result<u16, TunError> {
        self.dev().mtu().map_err(self.cfg_err("get mtu"))
    }

    /// Adds an IPv4 address to the open device (a pushed `ifconfig` after
    /// a reconnect with persist-tun).
    pub fn add_ipv4(&self, v4: TunIpv4) -> Result<(), TunError> {
        match v4 {
            TunIpv4::Subnet { local, prefix } => self
                .dev()
                .add_address_v4(local, prefix)
                .map_err(self.cfg_err("add ipv4")),
            TunIpv4::PointToPoint { local, remote } => self
                .dev()
                .set_network_address(local, 32u8, Some(remote))
                .map_err(self.cfg_err("set ipv4 p2p")),
        }
    }

    /// Adds an IPv6 address to the open device.
    pub fn add_ipv6(&self, addr: Ipv6Addr, prefix: u8) -> Result<(), TunError> {
        self.dev()
            .add_address_v6(addr, prefix)
            .map_err(self.cfg_err("add ipv6"))
    }

    /// Removes an address from the open device.
    pub fn remove_address(&self, addr: std::net::IpAddr) -> Result<(), TunError> {
        self.dev()
            .remove_address(addr)
            .map_err(self.cfg_err("remove address"))
    }

    /// The device's addresses.
    pub fn addresses(&self) -> Result<Vec<std::net::IpAddr>, TunError> {
        self.dev()
            .addresses()
            .map_err(self.cfg_err("list addresses"))
    }
}

/// One queue of the device, owned by one worker.
pub struct TunQueue {
    dev: AsyncDevice,
    offload: bool,
    /// A tap: frames are up to [`L2_ROOM`] longer than the MTU.
    l2: bool,
}

impl std::fmt::Debug for TunQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunQueue")
            .field("fd", &std::os::fd::AsRawFd::as_raw_fd(&self.dev))
            .field("offload", &self.offload)
            .finish()
    }
}

impl TunQueue {
    /// A receive batch of `slots` packets with `headroom` free bytes before
    /// each packet (room to prepend the OpenVPN header and encrypt in
    /// place) and room for `mtu` bytes of packet.
    ///
    /// `mtu` must be at least the device's MTU: a longer packet would be
    /// cut. With offload the batch gets at least enough slots for one whole
    /// 64 KiB segment train, or such reads would be dropped.
    pub fn rx_batch(&self, slots: usize, headroom: usize, mtu: u16) -> TunRxBatch {
        let mtu = if self.l2 {
            mtu.saturating_add(L2_ROOM)
        } else {
            mtu
        };
        let slots = if self.offload {
            slots.max(segments_per_read(mtu))
        } else {
            slots.max(1)
        };
        // Offload reads a whole GSO train (up to 64 KiB) into `raw` and
        // splits it into the slots; each slot holds one MTU-sized packet.
        let raw = if self.offload {
            vec![0u8; VIRTIO_NET_HDR_LEN + 65_535]
        } else {
            Vec::new()
        };
        TunRxBatch {
            raw,
            bufs: vec![vec![0u8; headroom + usize::from(mtu)]; slots],
            sizes: vec![0; slots],
            filled: 0,
            headroom,
            mtu,
            dropped: 0,
        }
    }

    /// An empty send batch for this queue (its headroom depends on offload).
    pub fn tx_batch(&self, capacity: usize) -> TunTxBatch {
        TunTxBatch {
            bufs: Vec::with_capacity(capacity),
            used: 0,
            offset: if self.offload { VIRTIO_NET_HDR_LEN } else { 0 },
            gro: GROTable::default(),
            failed: 0,
        }
    }

    /// Waits for packets and reads as many as `rx` holds without waiting
    /// again; returns the number of packets (see [`TunRxBatch::iter`]).
    /// A read that cannot be split (malformed offload header, too few
    /// slots) is dropped and counted in [`TunRxBatch::dropped`]; `Err` is
    /// an error of the device itself.
    pub async fn recv_batch(&self, rx: &mut TunRxBatch) -> io::Result<usize> {
        rx.filled = 0;
        loop {
            let r = if self.offload {
                self.dev
                    .recv_multiple(&mut rx.raw, &mut rx.bufs, &mut rx.sizes, rx.headroom)
                    .await
            } else {
                let buf = &mut rx.bufs[0][rx.headroom..];
                self.dev.recv(buf).await.map(|n| {
                    rx.sizes[0] = n;
                    1
                })
            };
            match r {
                Ok(n) => {
                    rx.filled = n;
                    break;
                }
                Err(e) if e.raw_os_error().is_some() => return Err(e),
                Err(e) => {
                    // Not a syscall error: tun-rs refused to split the read.
                    tracing::debug!(error = %e, "tun read dropped");
                    rx.dropped += 1;
                }
            }
        }
        self.recv_more(rx);
        Ok(rx.filled)
    }

    /// Non-blocking reads appended to `rx` until the device is drained or
    /// the batch too full for another read.
    fn recv_more(&self, rx: &mut TunRxBatch) {
        let per_read = if self.offload {
            segments_per_read(rx.mtu)
        } else {
            1
        };
        while rx.bufs.len() - rx.filled >= per_read {
            let start = rx.filled;
            let r = if self.offload {
                self.dev.try_recv_multiple(
                    &mut rx.raw,
                    &mut rx.bufs[start..],
                    &mut rx.sizes[start..],
                    rx.headroom,
                )
            } else {
                let buf = &mut rx.bufs[start][rx.headroom..];
                self.dev.try_recv(buf).map(|n| {
                    rx.sizes[start] = n;
                    1
                })
            };
            match r {
                Ok(n) => rx.filled += n,
                // WouldBlock ends the batch; a real error shows again on
                // the next awaited read, after this batch is processed.
                Err(_) => break,
            }
        }
    }

    /// Writes every packet of `tx` (coalesced first when offloading), then
    /// empties it; returns the number of IP packets handed in. A packet the
    /// kernel refuses (malformed after decryption, say) is counted in
    /// [`TunTxBatch::failed`] and does not stop the others; `Err` is an
    /// error of the device itself.
    pub async fn send_batch(&self, tx: &mut TunTxBatch) -> io::Result<usize> {
        let n = tx.used;
        if n == 0 {
            return Ok(0);
        }
        let res = self
            .dev
            .send_multiple(&mut tx.gro, &mut tx.bufs[..n], tx.offset)
            .await;
        tx.clear();
        match res {
            Ok(_) => Ok(n),
            Err(e) if is_device_gone(&e) => Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "tun write refused");
                tx.failed += 1;
                Ok(n)
            }
        }
    }

    /// Writes one IP packet (the control path, tests); batch writes with
    /// [`Self::send_batch`] on the data path.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        if self.offload {
            // GSO_NONE, no checksum offload: an all-zero virtio header.
            let hdr = [0u8; VIRTIO_NET_HDR_LEN];
            let bufs = [io::IoSlice::new(&hdr), io::IoSlice::new(packet)];
            self.dev.send_vectored(&bufs).await?;
        } else {
            self.dev.send(packet).await?;
        }
        Ok(())
    }
}

/// Packets one offloaded read may split into: 64 KiB of payload cut at
/// the smallest segment size an MTU allows (MTU less IPv6 + TCP headers).
fn segments_per_read(mtu: u16) -> usize {
    65_535 / usize::from(mtu.saturating_sub(60).max(1)) + 1
}

/// Errors after which the queue is unusable.
fn is_device_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EBADFD | libc::ENODEV | libc::ENXIO)
    )
}

/// Packets read from a tun queue, each after `headroom` free bytes.
#[derive(Debug)]
pub struct TunRxBatch {
    raw: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    filled: usize,
    headroom: usize,
    mtu: u16,
    dropped: u64,
}

impl TunRxBatch {
    /// Reads dropped because they could not be split (since creation).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Packets read by the last [`TunQueue::recv_batch`].
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last read returned nothing.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The free bytes before each packet.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// The IP packets read.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let h = self.headroom;
        self.bufs
            .iter()
            .zip(&self.sizes)
            .take(self.filled)
            .map(move |(b, &n)| b.get(h..h + n).unwrap_or_default())
    }

    /// Each packet's whole slot, headroom included: the packet is at
    /// `[headroom()..headroom() + len]`, with its length given beside.
    pub fn iter_slots_mut(&mut self) -> impl Iterator<Item = (&mut [u8], usize)> {
        self.bufs
            .iter_mut()
            .zip(self.sizes.iter().copied())
            .take(self.filled)
            .map(|(b, n)| (b.as_mut_slice(), n))
    }
}

/// IP packets queued for one [`TunQueue::send_batch`].
pub struct TunTxBatch {
    bufs: Vec<Vec<u8>>,
    used: usize,
    offset: usize,
    gro: GROTable,
    failed: u64,
}

impl std::fmt::Debug for TunTxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunTxBatch")
            .field("queued", &self.used)
            .field("offset", &self.offset)
            .finish()
    }
}

impl TunTxBatch {
    /// Batches in which the kernel refused a write (since creation).
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Packets queued.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Queues a copy of `packet`.
    pub fn push(&mut self, packet: &[u8]) {
        self.push_with(packet.len(), |b| {
            b.copy_from_slice(packet);
            packet.len()
        });
    }

    /// Queues a packet written in place by `fill` into `max_len` bytes
    /// (decrypt straight into it); `fill` returns the length written,
    /// clamped to `max_len`; 0 queues nothing.
    pub fn push_with(&mut self, max_len: usize, fill: impl FnOnce(&mut [u8]) -> usize) {
        if self.used == self.bufs.len() {
            self.bufs.push(Vec::new());
        }
        let off = self.offset;
        let buf = &mut self.bufs[self.used];
        buf.clear();
        buf.resize(off + max_len, 0);
        let n = fill(&mut buf[off..]).min(max_len);
        buf.truncate(off + n);
        if n > 0 {
            self.used += 1;
        }
    }

    /// The queued packets, to inspect or rewrite in place before the write.
    pub fn packets_mut(&mut self) -> impl Iterator<Item = &mut [u8]> {
        let off = self.offset;
        self.bufs
            .iter_mut()
            .take(self.used)
            .filter_map(move |b| b.get_mut(off..))
    }

    /// Drops what is queued, keeping the allocations.
    pub fn clear(&mut self) {
        self.used = 0;
    }
}
