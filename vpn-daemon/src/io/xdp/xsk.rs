//! AF_XDP socket with its UMEM and rings, for the fast path: frames the XDP
//! classifier redirected arrive on the rx ring, frames we build leave on the
//! tx ring.
//!
//! ```text
//!           user space                          kernel
//!  UMEM  [rx frames ........][tx frames ...]  (shared memory, one mmap)
//!  fill ring  --- free rx frame addresses --->  driver fills them with packets
//!  rx ring    <--- (addr, len) descriptors ----  packets redirected to XSKS[queue]
//!  tx ring    --- (addr, len) descriptors ---->  driver sends them
//!  completion ring <--- sent frame addresses --  tx frames free again
//! ```
//!
//! Each ring is a single-producer single-consumer queue in shared memory: a
//! producer index, a consumer index and a power-of-two array of entries. We
//! write the producer index of the fill and tx rings and the consumer index
//! of the rx and completion rings, with release ordering after touching the
//! entries, and read the other side's index with acquire ordering.
//!
//! The UMEM is split. All rx frames start in the fill ring and every
//! received frame goes back to it as soon as the caller's closure returns,
//! so the fill ring (as large as the rx frame count) never overflows. The tx
//! frames live on a free list; a frame leaves it for the tx ring and comes
//! back through the completion ring, which is at least as large as the tx
//! frame count.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

/// Errors of AF_XDP set-up and use.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A system call failed.
    #[error("{call} failed")]
    Syscall {
        /// Which call (and, for setsockopt, which option).
        call: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The configuration cannot work (sizes must be powers of two...).
    #[error("invalid AF_XDP configuration: {0}")]
    InvalidConfig(&'static str),
    /// A frame to send does not fit one UMEM frame.
    #[error("frame of {len} bytes does not fit a {max}-byte UMEM frame")]
    FrameTooLarge {
        /// Length of the frame.
        len: usize,
        /// The UMEM frame size.
        max: u32,
    },
    /// `send` on a socket configured without tx frames.
    #[error("AF_XDP socket has no tx ring (tx_frame_count = 0)")]
    NoTxRing,
}

fn syscall_error(call: &'static str) -> XskError {
    XskError::Syscall {
        call,
        source: io::Error::last_os_error(),
    }
}

/// How to bind: let the kernel choose, or insist on a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy when the driver supports it, else copy.
    Auto,
    /// Copy mode (works on every driver, veth included).
    Copy,
    /// Zero-copy; binding fails with `EOPNOTSUPP` where unsupported (veth).
    ZeroCopy,
}

/// Sizes of the UMEM and the rings.
#[derive(Clone, Copy, Debug)]
pub struct XskConfig {
    /// Bytes per UMEM frame: a power of two, 2048 or 4096 (aligned mode).
    pub frame_size: u32,
    /// Frames for reception, also the size of the fill ring: a power of two.
    pub frame_count: u32,
    /// Frames for transmission; 0 makes a receive-only socket (no tx ring).
    /// At most `ring_size`.
    pub tx_frame_count: u32,
    /// Entries of the rx, tx and completion rings: a power of two.
    pub ring_size: u32,
    /// Copy, zero-copy or the kernel's choice.
    pub bind_mode: BindMode,
}

impl Default for XskConfig {
    fn default() -> Self {
        Self {
            frame_size: 2048,
            frame_count: 4096,
            tx_frame_count: 2048,
            ring_size: 2048,
            bind_mode: BindMode::Auto,
        }
    }
}

impl XskConfig {
    fn validate(&self) -> Result<(), XskError> {
        if !matches!(self.frame_size, 2048 | 4096) {
            return Err(XskError::InvalidConfig("frame_size must be 2048 or 4096"));
        }
        if !self.frame_count.is_power_of_two() || !self.ring_size.is_power_of_two() {
            return Err(XskError::InvalidConfig(
                "frame_count and ring_size must be powers of two",
            ));
        }
        if self.tx_frame_count > self.ring_size {
            return Err(XskError::InvalidConfig(
                "tx_frame_count must not exceed ring_size (completion ring)",
            ));
        }
        Ok(())
    }
}

/// Kernel counters of one AF_XDP socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStatistics {
    /// Dropped for reasons other than invalid descriptors.
    pub rx_dropped: u64,
    /// Dropped because of invalid descriptors.
    pub rx_invalid_descs: u64,
    /// Dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was found empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Tx descriptors the kernel rejected.
    pub tx_invalid_descs: u64,
    /// Times the kernel found the tx ring empty when kicked.
    pub tx_ring_empty_descs: u64,
}

/// One anonymous or ring mapping, unmapped on drop.
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    fn new(len: usize, fd: Option<RawFd>, offset: libc::off_t) -> Result<Self, XskError> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd),
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
            ),
        };
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) aliases
        // nothing; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(syscall_error("mmap"));
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Self { ptr, len })
            .ok_or(XskError::InvalidConfig("mmap returned NULL"))
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from a successful mmap that nothing else unmaps.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One ring mapped from the socket: indices and an entry array of `T`.
struct Ring<T> {
    _map: Mmap,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    entries: NonNull<T>,
    mask: u32,
}

impl<T: Copy> Ring<T> {
    /// Maps the ring at page offset `pgoff` using the kernel's offsets.
    fn map(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> Result<Self, XskError> {
        let len = usize::try_from(off.desc)
            .ok()
            .and_then(|d| d.checked_add(size as usize * size_of::<T>()))
            .ok_or(XskError::InvalidConfig(
                "ring does not fit the address space",
            ))?;
        let map = Mmap::new(len, Some(fd), pgoff)?;
        let at = |o: u64| -> Result<NonNull<u8>, XskError> {
            let o = usize::try_from(o)
                .ok()
                .filter(|&o| o < len)
                .ok_or(XskError::InvalidConfig("kernel ring offset out of range"))?;
            // SAFETY: o < len, so the result stays inside the mapping.
            Ok(unsafe { map.ptr.add(o) })
        };
        let producer = at(off.producer)?.cast();
        let consumer = at(off.consumer)?.cast();
        let entries = at(off.desc)?.cast();
        Ok(Self {
            producer,
            consumer,
            entries,
            mask: size - 1,
            _map: map,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping, 4-byte aligned by the kernel ABI.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// Entry `idx` (wrapped by the mask).
    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: (idx & mask) < size, and the mapping holds size entries.
        unsafe { self.entries.as_ptr().add((idx & self.mask) as usize) }
    }
}

/// An AF_XDP socket bound to one queue of one interface, with its UMEM.
///
/// Register it in the classifier's `XSKS` map at its queue's index
/// ([`super::loader::Classifier::register_xsk`]); then [`XskSocket::recv`]
/// hands out the redirected frames and [`XskSocket::send`] transmits.
pub struct XskSocket {
    // Field order is drop order: the socket closes before its rings and
    // UMEM are unmapped.
    fd: OwnedFd,
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Option<Ring<libc::xdp_desc>>,
    umem: Mmap,
    /// Tx frames (UMEM offsets) neither on the tx nor the completion ring.
    free_tx: Vec<u64>,
    frame_size: u32,
    /// Frames `0..rx_frames` belong to the fill/rx side.
    rx_frames: u32,
    /// Frames `rx_frames..rx_frames + tx_frames` are for transmission.
    tx_frames: u32,
    zero_copy: bool,
}

// SAFETY: the raw pointers refer to mappings owned by this value; all access
// goes through `&mut self` or reads atomics, so moving it to another thread
// is sound.
unsafe impl Send for XskSocket {}
// SAFETY: the `&self` methods only load ring indices atomically and make
// system calls on the fd; every write to the rings or the UMEM needs
// `&mut self`. Shared references from several threads are therefore sound.
unsafe impl Sync for XskSocket {}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, val: &T, call: &'static str) -> Result<(), XskError> {
    // SAFETY: `val` is a live T and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(syscall_error(call));
    }
    Ok(())
}

/// Plain C structs the kernel fills in through `getsockopt`.
///
/// # Safety
/// All-zero bytes must be a valid value (integers only, no references).
unsafe trait Plain: Copy {}
// SAFETY: integer-only C structs from linux/if_xdp.h.
unsafe impl Plain for libc::xdp_mmap_offsets {}
// SAFETY: as above.
unsafe impl Plain for libc::xdp_options {}
// SAFETY: as above.
unsafe impl Plain for libc::xdp_statistics {}

fn getsockopt<T: Plain>(fd: RawFd, opt: libc::c_int, call: &'static str) -> Result<T, XskError> {
    // SAFETY: `Plain` guarantees zeroed bytes are a valid T.
    let mut val: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `val`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (&mut val as *mut T).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(syscall_error(call));
    }
    Ok(val)
}

impl XskSocket {
    /// Creates the UMEM and rings, fills the fill ring and binds to
    /// `queue_id` of `ifindex` (in the calling thread's network namespace).
    pub fn bind(ifindex: u32, queue_id: u32, config: &XskConfig) -> Result<Self, XskError> {
        config.validate()?;
        // SAFETY: plain socket(2); the fd is owned right below.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(syscall_error("socket(AF_XDP)"));
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let frames = config.frame_count as usize + config.tx_frame_count as usize;
        let umem_len = config.frame_size as usize * frames;
        let umem = Mmap::new(umem_len, None, 0)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: config.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)")?;
        setsockopt(
            raw,
            libc::XDP_UMEM_FILL_RING,
            &config.frame_count,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        setsockopt(
            raw,
            libc::XDP_UMEM_COMPLETION_RING,
            &config.ring_size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        setsockopt(
            raw,
            libc::XDP_RX_RING,
            &config.ring_size,
            "setsockopt(XDP_RX_RING)",
        )?;
        if config.tx_frame_count > 0 {
            setsockopt(
                raw,
                libc::XDP_TX_RING,
                &config.ring_size,
                "setsockopt(XDP_TX_RING)",
            )?;
        }

        let off: libc::xdp_mmap_offsets =
            getsockopt(raw, libc::XDP_MMAP_OFFSETS, "getsockopt(XDP_MMAP_OFFSETS)")?;
        let fill = Ring::<u64>::map(
            raw,
            &off.fr,
            config.frame_count,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
        )?;
        let completion = Ring::<u64>::map(
            raw,
            &off.cr,
            config.ring_size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
        )?;
        let rx =
            Ring::<libc::xdp_desc>::map(raw, &off.rx, config.ring_size, libc::XDP_PGOFF_RX_RING)?;
        let tx = if config.tx_frame_count > 0 {
            Some(Ring::<libc::xdp_desc>::map(
                raw,
                &off.tx,
                config.ring_size,
                libc::XDP_PGOFF_TX_RING,
            )?)
        } else {
            None
        };
        let frame_size = u64::from(config.frame_size);
        let free_tx = (config.frame_count..config.frame_count + config.tx_frame_count)
            .map(|i| u64::from(i) * frame_size)
            .collect();

        // Hand every frame to the kernel before bind, so traffic that
        // arrives right after finds buffers.
        for i in 0..config.frame_count {
            // SAFETY: i < frame_count = fill ring size, slot is in the mapping;
            // the kernel reads it only after the producer store below.
            unsafe {
                fill.slot(i)
                    .write(u64::from(i) * u64::from(config.frame_size))
            };
        }
        fill.producer().store(config.frame_count, Ordering::Release);

        let flags = match config.bind_mode {
            BindMode::Auto => 0,
            BindMode::Copy => libc::XDP_COPY,
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
        };
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue_id,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the length given.
        let r = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_xdp).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(syscall_error("bind(AF_XDP)"));
        }
        let opts: libc::xdp_options =
            getsockopt(raw, libc::XDP_OPTIONS, "getsockopt(XDP_OPTIONS)")?;
        Ok(Self {
            fd,
            fill,
            completion,
            rx,
            tx,
            umem,
            free_tx,
            frame_size: config.frame_size,
            rx_frames: config.frame_count,
            tx_frames: config.tx_frame_count,
            zero_copy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
        })
    }

    /// Whether the kernel bound the socket in zero-copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Waits until the rx ring has entries or `timeout` passes; returns
    /// whether it is readable.
    pub fn wait_readable(&self, timeout: Duration) -> Result<bool, XskError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            return Err(syscall_error("poll(AF_XDP)"));
        }
        Ok(r > 0 && pfd.revents & libc::POLLIN != 0)
    }

    /// Passes up to `max` received frames to `f`, then gives their buffers
    /// back to the kernel. Returns how many descriptors were consumed.
    ///
    /// `f` may modify the frame in place (decrypt it, rewrite headers): the
    /// buffer is ours until `f` returns. A descriptor that does not lie
    /// within one rx frame (a kernel bug) is skipped rather than trusted.
    pub fn recv(&mut self, max: u32, mut f: impl FnMut(&mut [u8])) -> usize {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        let prod = self.rx.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons).min(max);
        let fill_prod = self.fill.producer().load(Ordering::Relaxed);
        let mut refilled = 0u32;
        for i in 0..n {
            // SAFETY: the kernel published entries cons..prod (acquire above).
            let desc = unsafe { self.rx.slot(cons.wrapping_add(i)).read() };
            let base = match self.rx_frame(desc.addr, desc.len) {
                Some((base, frame)) => {
                    f(frame);
                    base
                }
                // A descriptor that lies about its length still names a
                // frame of ours: give that frame back, or it leaks.
                None => match self.rx_frame_base(desc.addr) {
                    Some(base) => base,
                    None => continue,
                },
            };
            // SAFETY: the fill ring has room: it holds frame_count slots and
            // this rx frame is not in it (the kernel gave it to us).
            unsafe { self.fill.slot(fill_prod.wrapping_add(refilled)).write(base) };
            refilled += 1;
        }
        self.fill
            .producer()
            .store(fill_prod.wrapping_add(refilled), Ordering::Release);
        self.rx
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        n as usize
    }

    /// The base of the rx frame `addr` points into, if it is one of ours.
    fn rx_frame_base(&self, addr: u64) -> Option<u64> {
        let frame_size = u64::from(self.frame_size);
        let base = addr & !(frame_size - 1);
        (base < u64::from(self.rx_frames) * frame_size).then_some(base)
    }

    /// Whether the rx ring holds frames we have not taken yet.
    pub fn rx_pending(&self) -> bool {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        let prod = self.rx.producer().load(Ordering::Acquire);
        prod != cons
    }

    /// UMEM frames held neither by the kernel (fill and rx rings for
    /// reception) nor by our tx free list: frames being processed, or sent
    /// and not yet completed. In zero-copy mode frames the driver took off
    /// the fill ring also count. A leak makes this grow without bound.
    pub fn frames_in_flight(&self) -> usize {
        let fill = self
            .fill
            .producer()
            .load(Ordering::Relaxed)
            .wrapping_sub(self.fill.consumer().load(Ordering::Acquire));
        let rx = self
            .rx
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.rx.consumer().load(Ordering::Relaxed));
        let rx_out = self.rx_frames.saturating_sub(fill.saturating_add(rx)) as usize;
        let tx_total = self.tx_frames as usize;
        rx_out + tx_total.saturating_sub(self.free_tx.len())
    }

    /// Bytes per UMEM frame.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Lends a free tx frame (all `frame_size` bytes) to `f`, which writes
    /// a whole Ethernet frame at its start and returns its length, or
    /// `None` to give the frame back unsent. The frame is queued on the tx
    /// ring without a kick: call [`XskSocket::kick_tx`] once per batch.
    /// `Ok(None)` when no tx frame is free (or `f` declined).
    pub fn send_with(
        &mut self,
        f: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<Option<usize>, XskError> {
        let Some(tx) = &self.tx else {
            return Err(XskError::NoTxRing);
        };
        let prod = tx.producer().load(Ordering::Relaxed);
        let cons = tx.consumer().load(Ordering::Acquire);
        if prod.wrapping_sub(cons) > tx.mask {
            return Ok(None);
        }
        if self.free_tx.is_empty() {
            self.complete();
        }
        let Some(addr) = self.free_tx.pop() else {
            return Ok(None);
        };
        let start = addr as usize;
        // SAFETY: tx frames are whole, frame-aligned UMEM offsets (built in
        // `bind`, recycled from the completion ring after masking and range
        // checking); a frame on our free list is not touched by the kernel,
        // and `&mut self` makes this slice the only reference to it.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                self.umem.ptr.as_ptr().add(start),
                self.frame_size as usize,
            )
        };
        let len = match f(buf) {
            Some(len) if len > 0 && len <= self.frame_size as usize => len,
            _ => {
                self.free_tx.push(addr);
                return Ok(None);
            }
        };
        let Some(tx) = &self.tx else {
            return Err(XskError::NoTxRing);
        };
        // SAFETY: the tx slot at `prod` is ours (ring not full, checked
        // above) until the producer store below publishes it.
        unsafe {
            tx.slot(prod).write(libc::xdp_desc {
                addr,
                len: len as u32,
                options: 0,
            });
        }
        tx.producer().store(prod.wrapping_add(1), Ordering::Release);
        Ok(Some(len))
    }

    /// The frame base and the bytes of an rx descriptor, if it lies within
    /// one rx frame.
    fn rx_frame(&mut self, addr: u64, len: u32) -> Option<(u64, &mut [u8])> {
        let frame_size = u64::from(self.frame_size);
        let base = addr & !(frame_size - 1);
        let rx_region = u64::from(self.rx_frames) * frame_size;
        let end = addr.checked_add(u64::from(len))?;
        if base >= rx_region || end > base + frame_size {
            return None;
        }
        let start = usize::try_from(addr).ok()?;
        // SAFETY: addr..end lies in one rx frame inside the UMEM (checked
        // above; the UMEM spans at least rx_region bytes). The kernel does
        // not touch a frame between handing it to us on the rx ring and
        // getting it back on the fill ring, which happens after the caller
        // is done with the slice; `&mut self` makes it the only reference.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(self.umem.ptr.as_ptr().add(start), len as usize)
        };
        Some((base, bytes))
    }

    /// Queues `frame` (a whole Ethernet frame) for transmission and kicks
    /// the kernel. Returns `Ok(false)` when every tx frame is in flight: the
    /// caller retries after completions or drops the packet.
    pub fn send(&mut self, frame: &[u8]) -> Result<bool, XskError> {
        if frame.len() > self.frame_size as usize {
            return Err(XskError::FrameTooLarge {
                len: frame.len(),
                max: self.frame_size,
            });
        }
        self.complete();
        let Some(tx) = &self.tx else {
            return Err(XskError::NoTxRing);
        };
        let prod = tx.producer().load(Ordering::Relaxed);
        let cons = tx.consumer().load(Ordering::Acquire);
        if prod.wrapping_sub(cons) > tx.mask {
            return Ok(false);
        }
        let Some(addr) = self.free_tx.pop() else {
            return Ok(false);
        };
        let start = addr as usize;
        // SAFETY: tx frames are offsets of whole frames inside the UMEM
        // (built in `bind`, recycled from the completion ring after masking),
        // frame.len() <= frame_size was checked, and the kernel does not
        // touch a frame that sits on our free list. The tx slot at `prod`
        // is ours until the producer store below publishes it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.umem.ptr.as_ptr().add(start),
                frame.len(),
            );
            tx.slot(prod).write(libc::xdp_desc {
                addr,
                len: frame.len() as u32,
                options: 0,
            });
        }
        tx.producer().store(prod.wrapping_add(1), Ordering::Release);
        self.kick_tx()?;
        Ok(true)
    }

    /// Descriptors on the tx ring the kernel has not taken yet.
    pub fn tx_outstanding(&self) -> u32 {
        match &self.tx {
            Some(tx) => tx
                .producer()
                .load(Ordering::Relaxed)
                .wrapping_sub(tx.consumer().load(Ordering::Acquire)),
            None => 0,
        }
    }

    /// Asks the kernel to process the tx ring. Copy mode transmits only
    /// from this call, and at most a small batch (32 frames in Linux) per
    /// call: see [`XskSocket::flush_tx`] to drain the ring.
    pub fn kick_tx(&self) -> Result<(), XskError> {
        // SAFETY: sendto with no buffer and no address is the AF_XDP
        // "wake up tx" call; nothing is read from user memory.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // Busy or out of buffers: the descriptors stay queued and go out on
        // the next kick.
        match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(()),
            _ => Err(XskError::Syscall {
                call: "sendto(AF_XDP tx kick)",
                source: err,
            }),
        }
    }

    /// Kicks until the kernel has taken every queued tx descriptor, or a
    /// kick makes no progress (driver busy: the rest goes with the next
    /// flush). Bounded by the ring size.
    pub fn flush_tx(&self) -> Result<(), XskError> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        // Enough rounds for a full ring at the kernel's smallest batch.
        let rounds = (tx.mask + 1) / 16 + 2;
        let mut left = self.tx_outstanding();
        for _ in 0..rounds {
            if left == 0 {
                break;
            }
            self.kick_tx()?;
            let now = self.tx_outstanding();
            if now >= left {
                break;
            }
            left = now;
        }
        Ok(())
    }

    /// Takes sent frames back from the completion ring; returns how many.
    pub fn complete(&mut self) -> usize {
        let cons = self.completion.consumer().load(Ordering::Relaxed);
        let prod = self.completion.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(cons);
        let mask = !u64::from(self.frame_size - 1);
        for i in 0..n {
            // SAFETY: the kernel published entries cons..prod (acquire above).
            let addr = unsafe { self.completion.slot(cons.wrapping_add(i)).read() } & mask;
            // Only tx frames we handed out come back; anything else would
            // make `send` write outside the UMEM or into an rx frame the
            // kernel owns, so it is not trusted.
            let tx_start = u64::from(self.rx_frames) * u64::from(self.frame_size);
            if addr >= tx_start && addr < self.umem.len as u64 {
                self.free_tx.push(addr);
            }
        }
        self.completion
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        n as usize
    }

    /// Tx frames not in flight (on the free list).
    pub fn tx_frames_free(&self) -> usize {
        self.free_tx.len()
    }

    /// The kernel's drop counters for this socket.
    pub fn statistics(&self) -> Result<XskStatistics, XskError> {
        let s: libc::xdp_statistics = getsockopt(
            self.fd.as_raw_fd(),
            libc::XDP_STATISTICS,
            "getsockopt(XDP_STATISTICS)",
        )?;
        Ok(XskStatistics {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(XskConfig::default().validate().is_ok());
    }

    #[test]
    fn rejects_frame_sizes_the_aligned_umem_cannot_use() {
        for frame_size in [0, 1000, 1024, 3000, 8192] {
            let c = XskConfig {
                frame_size,
                ..XskConfig::default()
            };
            assert!(
                matches!(c.validate(), Err(XskError::InvalidConfig(_))),
                "{frame_size}"
            );
        }
    }

    #[test]
    fn rejects_ring_sizes_that_are_not_powers_of_two() {
        let c = XskConfig {
            ring_size: 1000,
            ..XskConfig::default()
        };
        assert!(c.validate().is_err());
        let c = XskConfig {
            frame_count: 0,
            ..XskConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn rejects_more_tx_frames_than_the_completion_ring_holds() {
        let c = XskConfig {
            ring_size: 64,
            tx_frame_count: 65,
            ..XskConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn invalid_config_fails_before_any_syscall() {
        let c = XskConfig {
            frame_size: 1500,
            ..XskConfig::default()
        };
        // ifindex 0 would fail at bind; the config error must come first.
        assert!(matches!(
            XskSocket::bind(0, 0, &c),
            Err(XskError::InvalidConfig(_))
        ));
    }
}
