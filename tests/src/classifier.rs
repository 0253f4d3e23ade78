//! The vpn-ebpf object loaded with aya, with its maps filled the way the
//! daemon fills them, for tests.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::{
    Ebpf,
    maps::{Array, HashMap, PerCpuArray, XskMap},
    programs::{Xdp, XdpMode},
};
use vpn_common::{
    maps::{
        CONFIG_DROP_UNKNOWN_PEER, MAP_CONFIG, MAP_PEERS, MAP_PORTS, MAP_STATS, MAP_XSKS,
        PROGRAM_NAME, PeerEntry, PeerKey, PortKey,
    },
    stats::STAT_SLOTS,
};

/// Counter values summed over all CPUs, indexed by `vpn_common::stats`.
pub type Stats = [u64; STAT_SLOTS as usize];

/// A loaded (not yet attached) classifier.
pub struct Classifier {
    ebpf: Ebpf,
}

impl Classifier {
    /// Loads the object from [`crate::ebpf_object`] and the program into the
    /// kernel (so the verifier has accepted it when this returns).
    pub fn load() -> Self {
        let mut ebpf =
            Ebpf::load(&crate::ebpf_object()).expect("parse and create maps of vpn-ebpf");
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .expect("program vpn_xdp in the object")
            .try_into()
            .expect("vpn_xdp is an XDP program");
        if let Err(e) = prog.load() {
            panic!("the verifier rejected vpn_xdp: {e:?}");
        }
        Self { ebpf }
    }

    fn prog(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .expect("program present")
            .try_into()
            .expect("XDP program")
    }

    /// The program's fd, for `BPF_PROG_TEST_RUN`.
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        let prog: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .expect("program present")
            .try_into()
            .expect("XDP program");
        prog.fd().expect("program loaded").as_fd()
    }

    /// What the kernel reports about the loaded program (verifier cost,
    /// licence, BTF).
    pub fn program_info(&self) -> aya::programs::ProgramInfo {
        let prog: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .expect("program present")
            .try_into()
            .expect("XDP program");
        prog.info().expect("BPF_OBJ_GET_INFO_BY_FD")
    }

    /// Attaches to `iface` (resolved in the calling thread's namespace); the
    /// link lives as long as this value.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) {
        self.prog()
            .attach(iface, mode)
            .unwrap_or_else(|e| panic!("attach to {iface} in {mode:?}: {e:?}"));
    }

    /// Marks UDP `port` (host order) as one of ours.
    pub fn add_port(&mut self, port: u16) {
        let mut ports: HashMap<_, PortKey, u32> =
            HashMap::try_from(self.ebpf.map_mut(MAP_PORTS).expect("PORTS map"))
                .expect("PORTS type");
        ports.insert(PortKey { port }, 1, 0).expect("insert port");
    }

    /// Inserts or replaces a peer.
    pub fn add_peer(&mut self, peer_id: u32, entry: PeerEntry) {
        let mut peers: HashMap<_, PeerKey, PeerEntry> =
            HashMap::try_from(self.ebpf.map_mut(MAP_PEERS).expect("PEERS map"))
                .expect("PEERS type");
        peers
            .insert(PeerKey { peer_id }, entry, 0)
            .expect("insert peer");
    }

    /// Sets `CONFIG_DROP_UNKNOWN_PEER`.
    pub fn set_drop_unknown_peer(&mut self, on: bool) {
        let mut config: Array<_, u32> =
            Array::try_from(self.ebpf.map_mut(MAP_CONFIG).expect("CONFIG map"))
                .expect("CONFIG type");
        config
            .set(CONFIG_DROP_UNKNOWN_PEER, u32::from(on), 0)
            .expect("set config");
    }

    /// Registers an AF_XDP socket for receive queue `queue`.
    pub fn set_xsk(&mut self, queue: u32, socket: &impl AsRawFd) {
        let mut xsks =
            XskMap::try_from(self.ebpf.map_mut(MAP_XSKS).expect("XSKS map")).expect("XSKS type");
        xsks.set(queue, socket.as_raw_fd(), 0)
            .expect("register AF_XDP socket");
    }

    /// All counters, summed over CPUs.
    pub fn stats(&self) -> Stats {
        let stats: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(MAP_STATS).expect("STATS map"))
                .expect("STATS type");
        let mut out = [0u64; STAT_SLOTS as usize];
        for (slot, v) in out.iter_mut().enumerate() {
            *v = stats
                .get(&(slot as u32), 0)
                .expect("read STATS slot")
                .iter()
                .sum();
        }
        out
    }
}
