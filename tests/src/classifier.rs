//! The daemon's classifier loader (`vpn_daemon::io::xdp::loader`) with the
//! object from [`crate::ebpf_object`], and methods that panic with context
//! instead of returning errors, for tests.

use std::{
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, BorrowedFd},
};

use aya::programs::ProgramInfo;
use vpn_common::stats::STAT_SLOTS;
use vpn_daemon::io::xdp::loader::{self, AttachMode};

/// Counter values summed over all CPUs, indexed by `vpn_common::stats`.
pub type Stats = [u64; STAT_SLOTS as usize];

/// A loaded (not yet attached) classifier.
pub struct Classifier {
    inner: loader::Classifier,
}

impl Classifier {
    /// Loads the object; the verifier has accepted the program when this
    /// returns (else it panics with the verifier log).
    pub fn load() -> Self {
        match loader::Classifier::load(&crate::ebpf_object()) {
            Ok(inner) => Self { inner },
            Err(e) => panic!("loading vpn-ebpf: {e}: {:?}", std::error::Error::source(&e)),
        }
    }

    /// The daemon-side value, for calls not wrapped here.
    pub fn inner(&mut self) -> &mut loader::Classifier {
        &mut self.inner
    }

    /// The program's fd, for `BPF_PROG_TEST_RUN`.
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.inner.prog_fd().expect("program fd")
    }

    /// What the kernel reports about the program.
    pub fn program_info(&self) -> ProgramInfo {
        self.inner.program_info().expect("BPF_OBJ_GET_INFO_BY_FD")
    }

    /// Attaches to `iface` (in the calling thread's namespace) with the
    /// daemon's fallback and returns the mode it got.
    pub fn attach(&mut self, iface: &str) -> AttachMode {
        self.inner
            .attach(iface)
            .unwrap_or_else(|e| panic!("attach to {iface}: {e}"))
    }

    /// Marks UDP `port` (host order) as one of ours.
    pub fn add_port(&mut self, port: u16) {
        self.inner.add_port(port).expect("insert port");
    }

    /// Inserts or replaces a peer.
    pub fn add_peer(&mut self, peer_id: u32, addr: impl Into<IpAddr>, port: u16) {
        self.inner
            .insert_peer(peer_id, SocketAddr::new(addr.into(), port))
            .expect("insert peer");
    }

    /// Removes a peer.
    pub fn remove_peer(&mut self, peer_id: u32) {
        self.inner.remove_peer(peer_id).expect("remove peer");
    }

    /// Sets `CONFIG_DROP_UNKNOWN_PEER`.
    pub fn set_drop_unknown_peer(&mut self, on: bool) {
        self.inner.set_drop_unknown_peer(on).expect("set config");
    }

    /// Registers an AF_XDP socket for receive queue `queue`.
    pub fn set_xsk(&mut self, queue: u32, socket: &impl AsRawFd) {
        self.inner
            .register_xsk(queue, socket)
            .expect("register AF_XDP socket");
    }

    /// All counters, summed over CPUs.
    pub fn stats(&self) -> Stats {
        self.inner.stats().expect("read STATS").0
    }
}
