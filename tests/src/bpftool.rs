//! The XDP classifier's state read from the kernel, not from the daemon:
//! `ip -j link show` names the program attached to an interface (and in
//! which mode), `bpftool` lists its maps and dumps `PEERS` and `STATS`.
//! The end-to-end tests use it to prove which peer-ids are steered and
//! what the program counted, independently of what the daemon reports.
//!
//! ```text
//!  ip -n NS -j link show dev IF ──► xdp prog id
//!  bpftool -j prog show id P    ──► map_ids
//!  bpftool -j map show id M     ──► name ("PEERS", "STATS")
//!  bpftool -j map dump id M     ──► key/value bytes (per CPU for STATS)
//! ```

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    process::Command,
};

use serde_json::Value;
use vpn_common::maps::{FAMILY_V4, FAMILY_V6, MAP_PEERS, MAP_STATS};

use crate::Netns;

/// How a program is attached, as the kernel reports it (`IFLA_XDP_ATTACHED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkXdpMode {
    /// Driver (native) mode.
    Native,
    /// Generic (SKB) mode.
    Generic,
    /// Offloaded to the NIC.
    Offload,
}

/// The XDP program on one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpAttachment {
    /// The kernel's id of the program.
    pub prog_id: u32,
    /// Driver, generic or offload.
    pub mode: LinkXdpMode,
}

fn mode_from_number(n: u64) -> Option<LinkXdpMode> {
    // linux/if_link.h: XDP_ATTACHED_DRV 1, _SKB 2, _HW 3 (4 is MULTI).
    match n {
        1 => Some(LinkXdpMode::Native),
        2 => Some(LinkXdpMode::Generic),
        3 => Some(LinkXdpMode::Offload),
        _ => None,
    }
}

fn json(cmd: &mut Command) -> Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn bpftool(args: &[&str]) -> Value {
    json(Command::new("bpftool").arg("-j").args(args))
}

/// The XDP program attached to `ifname` in `ns`, if any.
pub fn xdp_attachment(ns: &Netns, ifname: &str) -> Option<XdpAttachment> {
    let v = json(Command::new("ip").args(["-n", ns.name(), "-j", "link", "show", "dev", ifname]));
    let xdp = v.get(0)?.get("xdp")?;
    // One program: {"mode":1,"prog":{"id":..}}; several (multi mode):
    // {"mode":4,"attached":[{"mode":1,"prog":{"id":..}},..]}.
    let one = |x: &Value| -> Option<XdpAttachment> {
        Some(XdpAttachment {
            prog_id: u32::try_from(x.get("prog")?.get("id")?.as_u64()?).ok()?,
            mode: mode_from_number(x.get("mode")?.as_u64()?)?,
        })
    };
    one(xdp).or_else(|| xdp.get("attached")?.as_array()?.iter().find_map(one))
}

/// Ids of the maps program `prog_id` uses.
pub fn prog_map_ids(prog_id: u32) -> Vec<u32> {
    let v = bpftool(&["prog", "show", "id", &prog_id.to_string()]);
    v.get("map_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_u64().and_then(|i| u32::try_from(i).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The map of program `prog_id` called `name` (as the kernel stores it:
/// at most 15 bytes).
pub fn prog_map_by_name(prog_id: u32, name: &str) -> Option<u32> {
    prog_map_ids(prog_id).into_iter().find(|id| {
        bpftool(&["map", "show", "id", &id.to_string()])
            .get("name")
            .and_then(Value::as_str)
            == Some(name)
    })
}

/// A byte array as bpftool prints it: `["0x01","0x02",..]`.
fn bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_array()?
        .iter()
        .map(|b| {
            let s = b.as_str()?;
            u8::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
        })
        .collect()
}

/// Every `(key, value)` of map `map_id` as raw bytes. Per-CPU maps give
/// one value per CPU.
pub fn dump(map_id: u32) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let v = bpftool(&["map", "dump", "id", &map_id.to_string()]);
    let Some(entries) = v.as_array() else {
        panic!("bpftool map dump id {map_id}: not an array: {v}");
    };
    entries
        .iter()
        .map(|e| {
            let key = e
                .get("key")
                .and_then(bytes)
                .unwrap_or_else(|| panic!("map {map_id}: entry without a byte key: {e}"));
            let values = match (e.get("value"), e.get("values")) {
                (Some(v), _) => {
                    vec![bytes(v).unwrap_or_else(|| panic!("map {map_id}: value not bytes: {e}"))]
                }
                (None, Some(per_cpu)) => per_cpu
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        c.get("value")
                            .and_then(bytes)
                            .unwrap_or_else(|| panic!("map {map_id}: per-CPU value: {e}"))
                    })
                    .collect(),
                (None, None) => panic!("map {map_id}: entry without a value: {e}"),
            };
            (key, values)
        })
        .collect()
}

/// Decodes a `PEERS` value (`vpn_common::maps::PeerEntry`: 16 address
/// bytes, port in network order, family, flags).
fn peer_addr(v: &[u8]) -> Option<SocketAddr> {
    let addr: [u8; 16] = v.get(..16)?.try_into().ok()?;
    let port = u16::from_be_bytes(v.get(16..18)?.try_into().ok()?);
    let ip = match *v.get(18)? {
        FAMILY_V4 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(addr)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The classifier attached to one interface: its program and the two maps
/// the tests read.
#[derive(Clone, Copy, Debug)]
pub struct ClassifierMaps {
    /// Program id and attach mode.
    pub attachment: XdpAttachment,
    /// Id of `PEERS`.
    pub peers: u32,
    /// Id of `STATS`.
    pub stats: u32,
}

impl ClassifierMaps {
    /// Finds the program on `ifname` in `ns` and its maps; `None` when no
    /// XDP program is attached there. Panics when the program lacks them
    /// (it is not ours).
    pub fn find(ns: &Netns, ifname: &str) -> Option<Self> {
        let attachment = xdp_attachment(ns, ifname)?;
        let by_name = |name: &str| {
            prog_map_by_name(attachment.prog_id, name).unwrap_or_else(|| {
                panic!(
                    "XDP program {} on {ifname} has no map {name}",
                    attachment.prog_id
                )
            })
        };
        Some(Self {
            attachment,
            peers: by_name(MAP_PEERS),
            stats: by_name(MAP_STATS),
        })
    }

    /// Peer-id → source address, as the program will match them.
    pub fn peers(&self) -> BTreeMap<u32, SocketAddr> {
        dump(self.peers)
            .into_iter()
            .map(|(k, vs)| {
                let id = k
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_ne_bytes)
                    .unwrap_or_else(|| panic!("PEERS key of {} bytes", k.len()));
                let addr = vs
                    .first()
                    .and_then(|v| peer_addr(v))
                    .unwrap_or_else(|| panic!("PEERS value of peer-id {id}: {vs:?}"));
                (id, addr)
            })
            .collect()
    }

    /// Every `STATS` slot summed over CPUs, indexed by `vpn_common::stats`.
    pub fn stats(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for (k, per_cpu) in dump(self.stats) {
            let slot = k
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
                .unwrap_or_else(|| panic!("STATS key of {} bytes", k.len()));
            let slot = slot as usize;
            if out.len() <= slot {
                out.resize(slot + 1, 0);
            }
            out[slot] = per_cpu
                .iter()
                .map(|v| {
                    v.get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_ne_bytes)
                        .unwrap_or_else(|| panic!("STATS value of {} bytes", v.len()))
                })
                .sum();
        }
        out
    }

    /// One counter (a `vpn_common::stats` slot), summed over CPUs.
    pub fn stat(&self, slot: u32) -> u64 {
        self.stats().get(slot as usize).copied().unwrap_or(0)
    }
}
