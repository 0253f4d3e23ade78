//! The decisions after parsing: is the port ours, is the peer-id known, does
//! the source match the peer's entry, is there an AF_XDP socket on this
//! queue. Also the maps (names from `vpn_common::maps`) and the counters.

use aya_ebpf::{
    bindings::xdp_action,
    macros::map,
    maps::{Array, HashMap, PerCpuArray, XskMap},
    programs::XdpContext,
};
use vpn_common::{
    maps::{
        CONFIG_DROP_UNKNOWN_PEER, CONFIG_SLOTS, MAX_PEERS, MAX_PORTS, MAX_QUEUES, PeerEntry,
        PeerKey, PortKey,
    },
    stats::{self, STAT_SLOTS},
};

use crate::parse::{Pass, Source};

/// Established peers by peer-id (`vpn_common::maps::MAP_PEERS`).
#[map]
static PEERS: HashMap<PeerKey, PeerEntry> = HashMap::with_max_entries(MAX_PEERS, 0);

/// Our UDP ports (`MAP_PORTS`); a non-zero value marks a port as ours.
#[map]
static PORTS: HashMap<PortKey, u32> = HashMap::with_max_entries(MAX_PORTS, 0);

/// Runtime switches (`MAP_CONFIG`), indexed by the `CONFIG_*` slots.
#[map]
static CONFIG: Array<u32> = Array::with_max_entries(CONFIG_SLOTS, 0);

/// AF_XDP sockets by receive queue (`MAP_XSKS`).
#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

/// Per-CPU counters (`MAP_STATS`), indexed by `vpn_common::stats`.
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_SLOTS, 0);

/// Adds `n` to a counter slot of this CPU.
#[inline(always)]
pub(crate) fn add(slot: u32, n: u64) {
    if let Some(p) = STATS.get_ptr_mut(slot) {
        // SAFETY: the pointer is this CPU's value of a live array slot, and
        // XDP programs do not preempt each other on one CPU.
        unsafe { *p += n };
    }
}

/// Counts one frame in a slot.
#[inline(always)]
pub(crate) fn count(slot: u32) {
    add(slot, 1);
}

/// Whether the daemon listens on this UDP port (host order).
#[inline(always)]
pub(crate) fn is_our_port(port: u16) -> bool {
    // SAFETY: the value is copied out at once; the kernel keeps a hash map
    // value alive (RCU) for the whole run of the program even if user space
    // deletes it meanwhile.
    matches!(unsafe { PORTS.get(PortKey { port }) }, Some(&v) if v != 0)
}

/// Verdict for a P_DATA_V2 packet: redirect it to this queue's AF_XDP
/// socket when the peer-id is known and the source is the peer's.
#[inline(always)]
pub(crate) fn data_v2(ctx: &XdpContext, peer_id: u32, source: &Source) -> Result<u32, Pass> {
    // SAFETY: copied right away, and the value stays alive (RCU) for this
    // run. A concurrent in-place update by user space can at worst mix old
    // and new fields: the source check then fails and the packet takes the
    // socket path, which is safe.
    let Some(entry) = (unsafe { PEERS.get(PeerKey { peer_id }) }).copied() else {
        return unknown_peer();
    };
    if !same_source(&entry, source) {
        // Maybe the peer floated: user space authenticates and decides.
        return Err(Pass(stats::PASS_WRONG_SOURCE));
    }
    // The low bits of the flags are the action when the slot is empty.
    match XSKS.redirect(ctx.rx_queue_index(), xdp_action::XDP_PASS as u64) {
        Ok(action) => {
            count(stats::REDIRECT);
            add(stats::REDIRECT_BYTES, (ctx.data_end() - ctx.data()) as u64);
            Ok(action)
        }
        Err(_) => Err(Pass(stats::PASS_NO_XSK)),
    }
}

#[inline(always)]
fn unknown_peer() -> Result<u32, Pass> {
    let drop = matches!(CONFIG.get(CONFIG_DROP_UNKNOWN_PEER), Some(&v) if v != 0);
    if drop {
        count(stats::DROP_UNKNOWN_PEER);
        Ok(xdp_action::XDP_DROP)
    } else {
        Err(Pass(stats::PASS_UNKNOWN_PEER))
    }
}

/// Family, address and port all equal, compared word by word.
#[inline(always)]
fn same_source(entry: &PeerEntry, source: &Source) -> bool {
    let [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        a8,
        a9,
        a10,
        a11,
        a12,
        a13,
        a14,
        a15,
    ] = entry.addr;
    entry.family == source.family
        && entry.port == source.port
        && u32::from_ne_bytes([a0, a1, a2, a3]) == source.addr[0]
        && u32::from_ne_bytes([a4, a5, a6, a7]) == source.addr[1]
        && u32::from_ne_bytes([a8, a9, a10, a11]) == source.addr[2]
        && u32::from_ne_bytes([a12, a13, a14, a15]) == source.addr[3]
}
