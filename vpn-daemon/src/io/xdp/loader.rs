//! Loads the vpn-ebpf object, attaches it to an interface (native first,
//! then generic) and gives typed access to its maps: ports, config, AF_XDP
//! sockets and counters. Peers are in [`super::peer_map`].
//!
//! Falling back further, to plain sockets, is the caller's decision: every
//! failure here is a typed [`XdpError`] saying which step failed and why.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::{
    Ebpf, EbpfError,
    maps::{Array, HashMap, MapError, PerCpuArray, XskMap},
    programs::{ProgramError, ProgramInfo, Xdp, XdpMode},
};
use vpn_common::{
    maps::{
        CONFIG_DROP_UNKNOWN_PEER, MAP_CONFIG, MAP_PEERS, MAP_PORTS, MAP_STATS, MAP_XSKS,
        PROGRAM_NAME, PeerEntry, PeerKey, PortKey,
    },
    stats::{STAT_NAMES, STAT_SLOTS},
};

use super::EMBEDDED_OBJECT;

/// Errors of loading, attaching and map access.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The binary was built without the BPF object and none was given.
    #[error("no XDP object: built without `cargo xtask build-ebpf`")]
    NoObject,
    /// The object could not be parsed or its maps created.
    #[error("loading the XDP object")]
    Load(#[source] Box<EbpfError>),
    /// The object has no `vpn_xdp` XDP program.
    #[error("the XDP object has no XDP program {PROGRAM_NAME}")]
    NoProgram,
    /// The kernel (verifier) refused the program.
    #[error("the kernel refused program {PROGRAM_NAME}")]
    Verify(#[source] Box<ProgramError>),
    /// Neither native nor generic attach worked.
    #[error("attaching XDP to {iface} failed in native mode ({native}) and in generic mode")]
    Attach {
        /// Interface name.
        iface: String,
        /// Why native (driver) mode failed.
        native: String,
        /// Why generic mode failed.
        #[source]
        generic: Box<ProgramError>,
    },
    /// A map is missing or has an unexpected type.
    #[error("map {name} is missing or of the wrong type")]
    Map {
        /// Map name (`vpn_common::maps::MAP_*`).
        name: &'static str,
        /// The type mismatch, if that was the problem.
        #[source]
        source: Option<Box<MapError>>,
    },
    /// A map update, delete or lookup failed.
    #[error("{op} on map {name}")]
    MapOp {
        /// What was attempted.
        op: &'static str,
        /// Map name.
        name: &'static str,
        /// The kernel's answer.
        #[source]
        source: Box<MapError>,
    },
    /// Reading program information failed.
    #[error("reading information about {PROGRAM_NAME}")]
    Info(#[source] Box<ProgramError>),
}

/// A map whose type does not match what the program declares.
fn wrong_type(name: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |e| XdpError::Map {
        name,
        source: Some(Box::new(e)),
    }
}

/// A failed map operation.
fn failed(op: &'static str, name: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |source| XdpError::MapOp {
        op,
        name,
        source: Box::new(source),
    }
}

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver, before any socket buffer exists (fast; needs driver support).
    Native,
    /// In the generic stack hook (works everywhere, much slower).
    Generic,
}

impl AttachMode {
    fn aya(self) -> XdpMode {
        match self {
            Self::Native => XdpMode::Driver,
            Self::Generic => XdpMode::Skb,
        }
    }
}

/// Counter values summed over all CPUs, indexed by `vpn_common::stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats(pub [u64; STAT_SLOTS as usize]);

impl Stats {
    /// The value of one slot (`vpn_common::stats::*`); 0 for slots past the array.
    pub fn get(&self, slot: u32) -> u64 {
        self.0.get(slot as usize).copied().unwrap_or(0)
    }

    /// `(name, value)` of every named slot, in slot order, for status output.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        STAT_NAMES.iter().zip(self.0.iter()).map(|(n, v)| (*n, *v))
    }
}

/// The loaded classifier: program plus maps.
pub struct Classifier {
    ebpf: Ebpf,
}

impl Classifier {
    /// Loads the object embedded at build time.
    pub fn load_embedded() -> Result<Self, XdpError> {
        Self::load(EMBEDDED_OBJECT.ok_or(XdpError::NoObject)?)
    }

    /// Parses `object`, creates its maps and loads `vpn_xdp` into the
    /// kernel; the verifier has accepted it when this returns.
    pub fn load(object: &[u8]) -> Result<Self, XdpError> {
        let ebpf = Ebpf::load(object).map_err(|e| XdpError::Load(Box::new(e)))?;
        let mut this = Self { ebpf };
        this.prog_mut()?
            .load()
            .map_err(|e| XdpError::Verify(Box::new(e)))?;
        Ok(this)
    }

    fn prog_mut(&mut self) -> Result<&mut Xdp, XdpError> {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .ok_or(XdpError::NoProgram)
    }

    fn prog(&self) -> Result<&Xdp, XdpError> {
        self.ebpf
            .program(PROGRAM_NAME)
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .ok_or(XdpError::NoProgram)
    }

    /// The loaded program's fd (for `BPF_PROG_TEST_RUN` and introspection).
    pub fn prog_fd(&self) -> Result<BorrowedFd<'_>, XdpError> {
        let fd = self
            .prog()?
            .fd()
            .map_err(|e| XdpError::Verify(Box::new(e)))?;
        Ok(fd.as_fd())
    }

    /// What the kernel reports about the program: verified instruction
    /// count, licence, BTF id.
    pub fn program_info(&self) -> Result<ProgramInfo, XdpError> {
        self.prog()?.info().map_err(|e| XdpError::Info(Box::new(e)))
    }

    /// Attaches to `iface` (resolved in the calling thread's network
    /// namespace): native mode, or generic when the driver refuses native.
    /// The attachment lasts as long as this value.
    pub fn attach(&mut self, iface: &str) -> Result<AttachMode, XdpError> {
        match self.attach_in(iface, AttachMode::Native) {
            Ok(()) => {
                tracing::info!(iface, "XDP attached in native (driver) mode");
                Ok(AttachMode::Native)
            }
            Err(native) => {
                tracing::warn!(iface, error = %native, "native XDP refused; trying generic mode");
                self.prog_mut()?
                    .attach(iface, XdpMode::Skb)
                    .map_err(|generic| XdpError::Attach {
                        iface: iface.to_owned(),
                        native: native.to_string(),
                        generic: Box::new(generic),
                    })?;
                tracing::info!(iface, "XDP attached in generic (skb) mode");
                Ok(AttachMode::Generic)
            }
        }
    }

    /// Attaches to `iface` in exactly `mode`.
    pub fn attach_in(&mut self, iface: &str, mode: AttachMode) -> Result<(), Box<ProgramError>> {
        let prog = self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(ProgramError::NotLoaded)?;
        let prog: &mut Xdp = prog.try_into()?;
        prog.attach(iface, mode.aya())?;
        Ok(())
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, XdpError> {
        self.ebpf
            .map_mut(name)
            .ok_or(XdpError::Map { name, source: None })
    }

    /// Marks UDP `port` (host order) as one of ours: its P_DATA_V2 packets
    /// are steered.
    pub fn add_port(&mut self, port: u16) -> Result<(), XdpError> {
        let name = MAP_PORTS;
        let mut ports: HashMap<_, PortKey, u32> =
            HashMap::try_from(self.map_mut(name)?).map_err(wrong_type(name))?;
        ports
            .insert(PortKey { port }, 1, 0)
            .map_err(failed("insert", name))
    }

    /// Stops steering `port`.
    pub fn remove_port(&mut self, port: u16) -> Result<(), XdpError> {
        let name = MAP_PORTS;
        let mut ports: HashMap<_, PortKey, u32> =
            HashMap::try_from(self.map_mut(name)?).map_err(wrong_type(name))?;
        ports
            .remove(&PortKey { port })
            .map_err(failed("remove", name))
    }

    /// Drop (true) or pass (false) P_DATA_V2 packets with unknown peer-ids.
    pub fn set_drop_unknown_peer(&mut self, on: bool) -> Result<(), XdpError> {
        let name = MAP_CONFIG;
        let mut config: Array<_, u32> =
            Array::try_from(self.map_mut(name)?).map_err(wrong_type(name))?;
        config
            .set(CONFIG_DROP_UNKNOWN_PEER, u32::from(on), 0)
            .map_err(failed("set", name))
    }

    /// Registers the AF_XDP socket bound to receive queue `queue`.
    pub fn register_xsk(&mut self, queue: u32, socket: &impl AsRawFd) -> Result<(), XdpError> {
        let name = MAP_XSKS;
        let mut xsks = XskMap::try_from(self.map_mut(name)?).map_err(wrong_type(name))?;
        xsks.set(queue, socket.as_raw_fd(), 0)
            .map_err(failed("set", name))
    }

    /// Inserts or replaces a peer's entry (see [`super::peer_map`]).
    pub(super) fn set_peer(&mut self, key: PeerKey, entry: PeerEntry) -> Result<(), XdpError> {
        let name = MAP_PEERS;
        let mut peers: HashMap<_, PeerKey, PeerEntry> =
            HashMap::try_from(self.map_mut(name)?).map_err(wrong_type(name))?;
        peers.insert(key, entry, 0).map_err(failed("insert", name))
    }

    /// Removes a peer's entry; a peer that is not there is not an error.
    pub(super) fn delete_peer(&mut self, key: PeerKey) -> Result<(), XdpError> {
        let name = MAP_PEERS;
        let mut peers: HashMap<_, PeerKey, PeerEntry> =
            HashMap::try_from(self.map_mut(name)?).map_err(wrong_type(name))?;
        match peers.remove(&key) {
            Ok(()) => Ok(()),
            Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(XdpError::MapOp {
                op: "remove",
                name,
                source: Box::new(source),
            }),
        }
    }

    /// Every entry of `PEERS`, read back from the kernel's map.
    pub fn peers(&self) -> Result<Vec<(PeerKey, PeerEntry)>, XdpError> {
        let name = MAP_PEERS;
        let map = self
            .ebpf
            .map(name)
            .ok_or(XdpError::Map { name, source: None })?;
        let peers: HashMap<_, PeerKey, PeerEntry> =
            HashMap::try_from(map).map_err(wrong_type(name))?;
        peers
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed("iterate", name))
    }

    /// All counters, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, XdpError> {
        let name = MAP_STATS;
        let map = self
            .ebpf
            .map(name)
            .ok_or(XdpError::Map { name, source: None })?;
        let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(wrong_type(name))?;
        let mut out = [0u64; STAT_SLOTS as usize];
        for (slot, v) in (0u32..).zip(out.iter_mut()) {
            let per_cpu = stats.get(&slot, 0).map_err(failed("lookup", name))?;
            *v = per_cpu.iter().sum();
        }
        Ok(Stats(out))
    }
}
