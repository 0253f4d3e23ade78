//! The server's address pool (`ifconfig-pool`, `ifconfig-ipv6-pool`) and
//! its `ifconfig-pool-persist` file, with OpenVPN 2.6's allocation rules.
//!
//! As in 2.6 (`pool.c`) the IPv4 and IPv6 pools share one index space: the
//! n-th IPv4 slot and the n-th IPv6 address go to the same client, and the
//! pool holds as many slots as the smaller of the two ranges.
//!
//! ```text
//!  topology subnet / p2p ("indiv"): slot i = start + i
//!  topology net30:                  slot i = /30 block b = base + 4*i
//!                                            b+0 network, b+1 server end ("remote"),
//!                                            b+2 client, b+3 broadcast
//!  IPv6:                            slot i = base + i   (base ::0 is skipped)
//! ```
//!
//! Which slot a client gets (2.6's `ifconfig_pool_find`):
//!
//! - without `duplicate-cn`, a free slot last held by the same common name
//!   (from this run or from the persist file) is handed back to it;
//! - otherwise the free slot released longest ago, never-used slots first,
//!   the lowest index among equals: on a fresh pool that is the lowest free
//!   address;
//! - with `duplicate-cn`, simply the lowest free slot.
//!
//! Slots named by the persist file with `SECONDS` = 0 are *fixed*: only
//! their common name gets them. We add one thing 2.6 does not do: addresses
//! that a `client-config-dir` file assigns with `ifconfig-push` /
//! `ifconfig-ipv6-push` can be [reserved](AddressPool::reserve) so the pool
//! never hands them to somebody else.

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::{Ipv4Addr, Ipv6Addr},
};

use crate::config::{Config, Topology};

/// OpenVPN's `IFCONFIG_POOL_MAX`: the most slots a pool may have.
pub const POOL_MAX: u32 = 65536;

/// Longest common name kept from a persist file line (2.6 reads each field
/// into a 128-byte buffer).
const PERSIST_FIELD_MAX: usize = 127;

/// How IPv4 pool slots map to addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4PoolKind {
    /// One address per client (`topology subnet` and `p2p`).
    Individual,
    /// One /30 block per client (`topology net30`).
    Net30,
}

/// The IPv4 side of a pool, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4PoolSpec {
    /// First address (`ifconfig-pool START`).
    pub start: Ipv4Addr,
    /// Last address (`ifconfig-pool ... END`).
    pub end: Ipv4Addr,
    /// Address model.
    pub kind: Ipv4PoolKind,
}

/// The IPv6 side of a pool, as configured (`ifconfig-ipv6-pool ADDR/BITS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6PoolSpec {
    /// First address handed out (bumped by one if its host part is zero).
    pub start: Ipv6Addr,
    /// Prefix length pushed with each address.
    pub prefix_len: u8,
}

/// Why a pool cannot be built or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Neither an IPv4 nor an IPv6 range was given.
    #[error("no address pool is configured")]
    NoPool,
    /// `start` is above `end`.
    #[error("ifconfig-pool start {start} is above its end {end}")]
    Reversed {
        /// First address.
        start: Ipv4Addr,
        /// Last address.
        end: Ipv4Addr,
    },
    /// More than [`POOL_MAX`] slots.
    #[error("ifconfig-pool {start} - {end} has more than {max} addresses")]
    TooLarge {
        /// First address.
        start: Ipv4Addr,
        /// Last address.
        end: Ipv4Addr,
        /// The limit.
        max: u32,
    },
    /// Fewer than two slots (2.6 refuses such pools).
    #[error("{family} pool size is too small ({size}), must be at least 2")]
    TooSmall {
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// Slots the range gives.
        size: u32,
    },
    /// The prefix length is not 0..=128.
    #[error("bad IPv6 pool prefix length /{0}")]
    BadPrefix(u8),
    /// Every slot is in use, fixed to another name, or reserved.
    #[error("no free ifconfig-pool addresses are available")]
    Exhausted,
    /// A handle that this pool did not hand out, or that was released.
    #[error("pool handle {0} is not leased")]
    NotLeased(u32),
}

/// A problem with one line of a persist file; the line is skipped, as 2.6
/// does (it only logs a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistWarning {
    /// 1-based line number.
    pub line: u32,
    /// What was wrong.
    pub message: String,
}

/// Identifies a leased slot; give it back to [`AddressPool::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolHandle(u32);

impl PoolHandle {
    /// The slot index (0-based).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// The addresses one slot gives a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The slot, for [`AddressPool::release`].
    pub handle: PoolHandle,
    /// The client's IPv4 tunnel address, if the pool has an IPv4 side.
    pub ipv4: Option<Ipv4Addr>,
    /// net30 only: the server end of the client's /30 (`ifconfig A REMOTE`'s
    /// REMOTE).
    pub ipv4_net30_remote: Option<Ipv4Addr>,
    /// The client's IPv6 tunnel address, if the pool has an IPv6 side.
    pub ipv6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    in_use: bool,
    /// The name that holds or last held the slot (kept after a soft
    /// release so a returning client gets the same address).
    common_name: Option<String>,
    /// Release order: 0 = never released; higher = released later.
    last_release: u64,
    /// From a read-only persist file: only `common_name` may have it.
    fixed: bool,
    /// An `ifconfig-push` address lies in this slot.
    reserved: bool,
}

/// The pool: slots, who holds them, and the persist-file state.
#[derive(Debug, Clone)]
pub struct AddressPool {
    ipv4: Option<(Ipv4PoolKind, u32)>,
    ipv6: Option<Ipv6PoolSpec>,
    slots: Vec<Slot>,
    duplicate_cn: bool,
    release_seq: u64,
    by_cn: HashMap<String, u32>,
}

impl AddressPool {
    /// A pool over the given ranges; `duplicate_cn` as the directive.
    pub fn new(
        ipv4: Option<Ipv4PoolSpec>,
        ipv6: Option<Ipv6PoolSpec>,
        duplicate_cn: bool,
    ) -> Result<Self, PoolError> {
        let mut size: Option<u32> = None;
        let mut v4 = None;
        if let Some(spec) = ipv4 {
            let (start, end) = (u32::from(spec.start), u32::from(spec.end));
            if start > end {
                return Err(PoolError::Reversed {
                    start: spec.start,
                    end: spec.end,
                });
            }
            if end - start >= POOL_MAX {
                return Err(PoolError::TooLarge {
                    start: spec.start,
                    end: spec.end,
                    max: POOL_MAX,
                });
            }
            let (base, n) = match spec.kind {
                Ipv4PoolKind::Individual => (start, end - start + 1),
                Ipv4PoolKind::Net30 => {
                    let base = start & !3;
                    // (end | 3) + 1 may be 2^32 for a pool ending at
                    // 255.255.255.255: compute in u64.
                    let top = u64::from(end | 3) + 1;
                    let n = (top - u64::from(base)) >> 2;
                    (base, u32::try_from(n).unwrap_or(u32::MAX))
                }
            };
            if n < 2 {
                return Err(PoolError::TooSmall {
                    family: "IPv4",
                    size: n,
                });
            }
            v4 = Some((spec.kind, base));
            size = Some(n);
        }
        let mut v6 = None;
        if let Some(mut spec) = ipv6 {
            if spec.prefix_len > 128 {
                return Err(PoolError::BadPrefix(spec.prefix_len));
            }
            let host_bits = 128 - u32::from(spec.prefix_len);
            let host_mask: u128 = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let mut host = u128::from(spec.start) & host_mask;
            // The all-zero host part is the subnet-router anycast address.
            if host == 0 {
                spec.start = Ipv6Addr::from(u128::from(spec.start).wrapping_add(1));
                host = 1;
            }
            let n: u32 = if spec.prefix_len >= 112 {
                let room = (1u128 << host_bits).saturating_sub(host);
                u32::try_from(room).unwrap_or(u32::MAX)
            } else {
                POOL_MAX
            };
            if n < 2 {
                return Err(PoolError::TooSmall {
                    family: "IPv6",
                    size: n,
                });
            }
            size = Some(size.map_or(n, |s| s.min(n)));
            v6 = Some(spec);
        }
        let size = size.ok_or(PoolError::NoPool)?;
        Ok(AddressPool {
            ipv4: v4,
            ipv6: v6,
            slots: vec![Slot::default(); size as usize],
            duplicate_cn,
            release_seq: 0,
            by_cn: HashMap::new(),
        })
    }

    /// The pool a configuration describes (`server`/`ifconfig-pool`,
    /// `server-ipv6`/`ifconfig-ipv6-pool`, `topology`, `duplicate-cn`);
    /// `Ok(None)` when it has neither range (`server ... nopool`).
    pub fn from_config(cfg: &Config) -> Result<Option<Self>, PoolError> {
        let kind = match cfg.topology {
            Topology::Net30 => Ipv4PoolKind::Net30,
            Topology::P2p | Topology::Subnet => Ipv4PoolKind::Individual,
        };
        let v4 = cfg.ifconfig_pool.map(|p| Ipv4PoolSpec {
            start: p.start,
            end: p.end,
            kind,
        });
        let v6 = cfg.ifconfig_ipv6_pool.map(|n| Ipv6PoolSpec {
            start: n.addr(),
            prefix_len: n.prefix_len(),
        });
        if v4.is_none() && v6.is_none() {
            return Ok(None);
        }
        AddressPool::new(v4, v6, cfg.duplicate_cn).map(Some)
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Number of slots currently leased.
    pub fn in_use(&self) -> u32 {
        let n = self.slots.iter().filter(|s| s.in_use).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The IPv6 prefix length pushed with pool addresses.
    pub fn ipv6_prefix_len(&self) -> Option<u8> {
        self.ipv6.map(|s| s.prefix_len)
    }

    /// The addresses of slot `i` (whether or not leased).
    fn lease_of(&self, i: u32) -> Lease {
        let (ipv4, remote) = match self.ipv4 {
            None => (None, None),
            Some((Ipv4PoolKind::Individual, base)) => {
                (Some(Ipv4Addr::from(base.wrapping_add(i))), None)
            }
            Some((Ipv4PoolKind::Net30, base)) => {
                let b = base.wrapping_add(i.wrapping_mul(4));
                (
                    Some(Ipv4Addr::from(b.wrapping_add(2))),
                    Some(Ipv4Addr::from(b.wrapping_add(1))),
                )
            }
        };
        let ipv6 = self
            .ipv6
            .map(|s| Ipv6Addr::from(u128::from(s.start).wrapping_add(u128::from(i))));
        Lease {
            handle: PoolHandle(i),
            ipv4,
            ipv4_net30_remote: remote,
            ipv6,
        }
    }

    /// The slot whose IPv4 addresses include `addr` (for net30, any address
    /// of the /30 block).
    fn slot_of_v4(&self, addr: Ipv4Addr) -> Option<u32> {
        let (kind, base) = self.ipv4?;
        let off = u32::from(addr).checked_sub(base)?;
        let i = match kind {
            Ipv4PoolKind::Individual => off,
            Ipv4PoolKind::Net30 => off >> 2,
        };
        (i < self.size()).then_some(i)
    }

    /// The slot of an IPv6 pool address.
    fn slot_of_v6(&self, addr: Ipv6Addr) -> Option<u32> {
        let spec = self.ipv6?;
        let off = u128::from(addr).checked_sub(u128::from(spec.start))?;
        let i = u32::try_from(off).ok()?;
        (i < self.size()).then_some(i)
    }

    /// Marks the slots holding `ipv4` / `ipv6` as reserved for a static
    /// `ifconfig-push` / `ifconfig-ipv6-push` assignment: the pool never
    /// hands them out. Addresses outside the pool are ignored. Returns
    /// whether any slot was reserved.
    pub fn reserve(&mut self, ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> bool {
        let mut any = false;
        let slots = [
            ipv4.and_then(|a| self.slot_of_v4(a)),
            ipv6.and_then(|a| self.slot_of_v6(a)),
        ];
        for i in slots.into_iter().flatten() {
            if let Some(s) = self.slots.get_mut(i as usize) {
                s.reserved = true;
                any = true;
            }
        }
        any
    }

    /// Whether the slot holding `ipv4` is reserved.
    pub fn is_reserved_v4(&self, ipv4: Ipv4Addr) -> bool {
        self.slot_of_v4(ipv4)
            .and_then(|i| self.slots.get(i as usize))
            .is_some_and(|s| s.reserved)
    }

    /// Leases a slot to a client. `common_name` is the certificate (or
    /// username-as-common-name) name; it is ignored with `duplicate-cn`, as
    /// in 2.6, so duplicate connections each get their own address.
    pub fn acquire(&mut self, common_name: Option<&str>) -> Result<Lease, PoolError> {
        let cn = if self.duplicate_cn { None } else { common_name };
        let i = self.find(cn).ok_or(PoolError::Exhausted)?;
        if let Some(old) = self
            .slots
            .get(i as usize)
            .and_then(|s| s.common_name.clone())
            && self.by_cn.get(&old) == Some(&i)
        {
            self.by_cn.remove(&old);
        }
        let slot = self.slots.get_mut(i as usize).ok_or(PoolError::Exhausted)?;
        slot.in_use = true;
        slot.fixed = slot.fixed && cn.is_some();
        slot.common_name = cn.map(str::to_string);
        if let Some(cn) = cn {
            self.by_cn.insert(cn.to_string(), i);
        }
        Ok(self.lease_of(i))
    }

    /// 2.6's choice of slot (see the module documentation).
    fn find(&self, cn: Option<&str>) -> Option<u32> {
        if self.duplicate_cn {
            return self
                .slots
                .iter()
                .position(|s| !s.in_use && !s.reserved && !s.fixed)
                .and_then(|i| u32::try_from(i).ok());
        }
        if let Some(cn) = cn
            && let Some(&i) = self.by_cn.get(cn)
            && let Some(s) = self.slots.get(i as usize)
            && !s.in_use
            && !s.reserved
            && s.common_name.as_deref() == Some(cn)
        {
            return Some(i);
        }
        let mut best: Option<(u64, usize)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.in_use || s.fixed || s.reserved {
                continue;
            }
            if best.is_none_or(|(rel, _)| s.last_release < rel) {
                best = Some((s.last_release, i));
            }
        }
        best.and_then(|(_, i)| u32::try_from(i).ok())
    }

    /// Gives a slot back. A soft release (`hard == false`, what 2.6 does
    /// when a client disconnects) remembers the common name so the client
    /// gets the same address next time; a hard release forgets it.
    pub fn release(&mut self, handle: PoolHandle, hard: bool) -> Result<(), PoolError> {
        self.release_seq += 1;
        let seq = self.release_seq;
        let slot = self
            .slots
            .get_mut(handle.0 as usize)
            .filter(|s| s.in_use)
            .ok_or(PoolError::NotLeased(handle.0))?;
        slot.in_use = false;
        slot.last_release = seq;
        if hard {
            slot.fixed = false;
            if let Some(cn) = slot.common_name.take()
                && self.by_cn.get(&cn) == Some(&handle.0)
            {
                self.by_cn.remove(&cn);
            }
        }
        Ok(())
    }

    /// The lease behind a handle, if it is in use.
    pub fn lease(&self, handle: PoolHandle) -> Option<Lease> {
        self.slots
            .get(handle.0 as usize)
            .filter(|s| s.in_use)
            .map(|_| self.lease_of(handle.0))
    }

    /// Loads an `ifconfig-pool-persist` file's text (`CN,IPv4[,IPv6]` per
    /// line; `#`/`;` comments; either address may be empty). `fixed` is
    /// `SECONDS == 0`: the file is then read-only and its slots belong to
    /// their names only. Bad lines are skipped with a warning, as in 2.6.
    pub fn load_persist(&mut self, text: &str, fixed: bool) -> Vec<PersistWarning> {
        let mut warnings = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let mut warn = |message: String| warnings.push(PersistWarning { line, message });
            let l = raw.trim_end_matches('\r');
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let mut fields = l.split(',');
            let cn = fields.next().unwrap_or_default();
            let Some(v4) = fields.next() else {
                warn(format!("no ',' after the common name in {l:?}"));
                continue;
            };
            let v6 = fields.next().unwrap_or_default();
            if cn.is_empty() || cn.len() > PERSIST_FIELD_MAX {
                warn(format!("bad common name {cn:?}"));
                continue;
            }
            let mut h4 = None;
            if !v4.is_empty() {
                match v4.parse::<Ipv4Addr>() {
                    Err(_) => warn(format!("pool: invalid IPv4 ({v4}) for CN={cn}")),
                    Ok(a) => {
                        // The file holds the slot's base address: the
                        // address itself, or the /30 block for net30.
                        h4 = self.slot_of_v4(a);
                        if h4.is_none() {
                            warn(format!("pool: IPv4 ({v4}) out of pool range for CN={cn}"));
                        }
                    }
                }
            }
            let mut h6 = None;
            if !v6.is_empty() {
                match v6.parse::<Ipv6Addr>() {
                    Err(_) => warn(format!("pool: invalid IPv6 ({v6}) for CN={cn}")),
                    Ok(a) => {
                        h6 = self.slot_of_v6(a);
                        if h6.is_none() {
                            warn(format!("pool: IPv6 ({v6}) out of pool range for CN={cn}"));
                        }
                    }
                }
            }
            if let (Some(a), Some(b)) = (h4, h6)
                && a != b
            {
                warn(format!(
                    "pool: IPv4 ({v4}) and IPv6 ({v6}) have different offsets; using IPv4"
                ));
            }
            let Some(i) = h4.or(h6) else { continue };
            self.release_seq += 1;
            let seq = self.release_seq;
            if let Some(slot) = self.slots.get_mut(i as usize) {
                if slot.in_use {
                    warn(format!("pool: slot of {cn} is in use, entry ignored"));
                    continue;
                }
                if let Some(old) = slot.common_name.take()
                    && self.by_cn.get(&old) == Some(&i)
                {
                    self.by_cn.remove(&old);
                }
                slot.common_name = Some(cn.to_string());
                slot.last_release = seq;
                slot.fixed = fixed;
                self.by_cn.insert(cn.to_string(), i);
            }
        }
        warnings
    }

    /// Renders the persist file as 2.6 writes it: one `CN,IPv4,IPv6` line
    /// per slot that has a name (leased, or released and remembered), the
    /// IPv4 field being the slot's base address (the /30 block for net30),
    /// empty fields for a missing family.
    pub fn render_persist(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.slots.iter().enumerate() {
            let Some(cn) = &s.common_name else { continue };
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let v4 = match self.ipv4 {
                None => String::new(),
                Some((Ipv4PoolKind::Individual, base)) => {
                    Ipv4Addr::from(base.wrapping_add(i)).to_string()
                }
                Some((Ipv4PoolKind::Net30, base)) => {
                    Ipv4Addr::from(base.wrapping_add(i.wrapping_mul(4))).to_string()
                }
            };
            let v6 = self
                .lease_of(i)
                .ipv6
                .map(|a| a.to_string())
                .unwrap_or_default();
            let _ = writeln!(out, "{cn},{v4},{v6}");
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// `server 10.8.0.0 255.255.255.0` + `topology subnet`.
    fn subnet24() -> AddressPool {
        AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.8.0.2"),
                end: v4("10.8.0.254"),
                kind: Ipv4PoolKind::Individual,
            }),
            None,
            false,
        )
        .unwrap()
    }

    /// `server 10.8.0.0 255.255.255.0` with 2.6's default net30.
    fn net30_24() -> AddressPool {
        AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.8.0.4"),
                end: v4("10.8.0.251"),
                kind: Ipv4PoolKind::Net30,
            }),
            None,
            false,
        )
        .unwrap()
    }

    #[test]
    fn subnet_pool_serves_250_clients_lowest_first_then_exhausts() {
        let mut p = subnet24();
        assert_eq!(p.size(), 253);
        for k in 0..250u32 {
            let l = p.acquire(Some(&format!("c{k}"))).unwrap();
            assert_eq!(l.ipv4, Some(Ipv4Addr::from(u32::from(v4("10.8.0.2")) + k)));
            assert_eq!(l.ipv4_net30_remote, None);
        }
        for k in 250..253 {
            p.acquire(Some(&format!("c{k}"))).unwrap();
        }
        assert_eq!(p.in_use(), 253);
        assert_eq!(p.acquire(Some("late")), Err(PoolError::Exhausted));
    }

    #[test]
    fn net30_blocks_match_openvpn_numbers() {
        let mut p = net30_24();
        // base .4; (251|3)+1 = 252; (252-4)/4 = 62 blocks: .4 .. .248
        assert_eq!(p.size(), 62);
        let a = p.acquire(Some("a")).unwrap();
        assert_eq!(a.ipv4, Some(v4("10.8.0.6")));
        assert_eq!(a.ipv4_net30_remote, Some(v4("10.8.0.5")));
        let b = p.acquire(Some("b")).unwrap();
        assert_eq!(b.ipv4, Some(v4("10.8.0.10")));
        assert_eq!(b.ipv4_net30_remote, Some(v4("10.8.0.9")));
        for _ in 2..62 {
            p.acquire(None).unwrap();
        }
        let last = p.lease(PoolHandle(61)).unwrap();
        assert_eq!(last.ipv4, Some(v4("10.8.0.250")));
        assert_eq!(p.acquire(None), Err(PoolError::Exhausted));
    }

    #[test]
    fn net30_unaligned_start_rounds_down_to_block() {
        let p = AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.8.0.6"),
                end: v4("10.8.0.13"),
                kind: Ipv4PoolKind::Net30,
            }),
            None,
            false,
        )
        .unwrap();
        // base .4, (13|3)+1 = 16 -> 3 blocks .4 .8 .12
        assert_eq!(p.size(), 3);
        assert_eq!(p.lease_of(0).ipv4, Some(v4("10.8.0.6")));
        assert_eq!(p.lease_of(2).ipv4, Some(v4("10.8.0.14")));
    }

    #[test]
    fn ipv6_pool_shares_slots_with_ipv4() {
        let mut p = AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.8.0.2"),
                end: v4("10.8.0.254"),
                kind: Ipv4PoolKind::Individual,
            }),
            Some(Ipv6PoolSpec {
                start: v6("fd00:8::1000"),
                prefix_len: 64,
            }),
            false,
        )
        .unwrap();
        assert_eq!(p.size(), 253, "IPv4 is the smaller side");
        let a = p.acquire(Some("a")).unwrap();
        let b = p.acquire(Some("b")).unwrap();
        assert_eq!(a.ipv6, Some(v6("fd00:8::1000")));
        assert_eq!(b.ipv4, Some(v4("10.8.0.3")));
        assert_eq!(b.ipv6, Some(v6("fd00:8::1001")));
        assert_eq!(p.ipv6_prefix_len(), Some(64));
    }

    #[test]
    fn ipv6_only_pool_skips_anycast_and_sizes_small_prefixes() {
        let p = AddressPool::new(
            None,
            Some(Ipv6PoolSpec {
                start: v6("fd00::"),
                prefix_len: 120,
            }),
            false,
        )
        .unwrap();
        assert_eq!(p.size(), 255);
        assert_eq!(p.lease_of(0).ipv6, Some(v6("fd00::1")));
        let big = AddressPool::new(
            None,
            Some(Ipv6PoolSpec {
                start: v6("fd00::1000"),
                prefix_len: 64,
            }),
            false,
        )
        .unwrap();
        assert_eq!(big.size(), POOL_MAX);
    }

    #[test]
    fn rejects_reversed_tiny_and_huge_pools() {
        let spec = |s: &str, e: &str| Ipv4PoolSpec {
            start: v4(s),
            end: v4(e),
            kind: Ipv4PoolKind::Individual,
        };
        assert!(matches!(
            AddressPool::new(Some(spec("10.0.0.9", "10.0.0.2")), None, false),
            Err(PoolError::Reversed { .. })
        ));
        assert!(matches!(
            AddressPool::new(Some(spec("10.0.0.2", "10.0.0.2")), None, false),
            Err(PoolError::TooSmall { size: 1, .. })
        ));
        assert!(matches!(
            AddressPool::new(Some(spec("10.0.0.0", "10.1.0.0")), None, false),
            Err(PoolError::TooLarge { .. })
        ));
        assert_eq!(
            AddressPool::new(None, None, false).unwrap_err(),
            PoolError::NoPool
        );
    }

    #[test]
    fn returning_common_name_gets_its_old_address() {
        let mut p = subnet24();
        let a = p.acquire(Some("alice")).unwrap();
        let b = p.acquire(Some("bob")).unwrap();
        p.release(a.handle, false).unwrap();
        p.release(b.handle, false).unwrap();
        // A stranger gets a never-used slot, not alice's or bob's.
        let c = p.acquire(Some("carol")).unwrap();
        assert_eq!(c.ipv4, Some(v4("10.8.0.4")));
        let b2 = p.acquire(Some("bob")).unwrap();
        assert_eq!(b2.ipv4, b.ipv4);
        let a2 = p.acquire(Some("alice")).unwrap();
        assert_eq!(a2.ipv4, a.ipv4);
    }

    #[test]
    fn reuses_the_slot_released_longest_ago_when_all_were_used() {
        let mut p = AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.0.0.1"),
                end: v4("10.0.0.3"),
                kind: Ipv4PoolKind::Individual,
            }),
            None,
            false,
        )
        .unwrap();
        let l: Vec<Lease> = (0..3)
            .map(|i| p.acquire(Some(&format!("c{i}"))).unwrap())
            .collect();
        p.release(l[2].handle, false).unwrap();
        p.release(l[0].handle, false).unwrap();
        let n = p.acquire(Some("new")).unwrap();
        assert_eq!(n.ipv4, Some(v4("10.0.0.3")), "released first");
    }

    #[test]
    fn hard_release_forgets_the_name() {
        let mut p = subnet24();
        let a = p.acquire(Some("alice")).unwrap();
        p.acquire(Some("bob")).unwrap();
        p.release(a.handle, true).unwrap();
        assert!(p.render_persist().lines().all(|l| !l.starts_with("alice,")));
        assert_eq!(p.release(a.handle, true), Err(PoolError::NotLeased(0)));
    }

    #[test]
    fn duplicate_cn_gives_each_connection_its_own_address() {
        let mut p = AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.8.0.2"),
                end: v4("10.8.0.254"),
                kind: Ipv4PoolKind::Individual,
            }),
            None,
            true,
        )
        .unwrap();
        let a = p.acquire(Some("shared")).unwrap();
        let b = p.acquire(Some("shared")).unwrap();
        assert_ne!(a.ipv4, b.ipv4);
        p.release(a.handle, false).unwrap();
        // Lowest free, no name affinity.
        assert_eq!(p.acquire(Some("other")).unwrap().ipv4, a.ipv4);
        assert_eq!(
            p.render_persist(),
            "",
            "names are not recorded with duplicate-cn"
        );
    }

    #[test]
    fn reserved_ifconfig_push_addresses_are_never_handed_out() {
        let mut p = subnet24();
        assert!(p.reserve(Some(v4("10.8.0.2")), None));
        assert!(p.reserve(Some(v4("10.8.0.3")), None));
        assert!(
            !p.reserve(Some(v4("192.168.1.1")), None),
            "outside the pool"
        );
        assert!(p.is_reserved_v4(v4("10.8.0.3")));
        let a = p.acquire(Some("a")).unwrap();
        assert_eq!(a.ipv4, Some(v4("10.8.0.4")));
        for _ in 0..250 {
            let l = p.acquire(None).unwrap();
            assert!(l.ipv4 != Some(v4("10.8.0.2")) && l.ipv4 != Some(v4("10.8.0.3")));
        }
        assert_eq!(p.acquire(None), Err(PoolError::Exhausted));
    }

    #[test]
    fn net30_reservation_blocks_the_whole_slash30() {
        let mut p = net30_24();
        assert!(p.reserve(Some(v4("10.8.0.6")), None));
        assert_eq!(p.acquire(None).unwrap().ipv4, Some(v4("10.8.0.10")));
    }

    #[test]
    fn persist_file_round_trip_subnet_with_ipv6() {
        let mk = || {
            AddressPool::new(
                Some(Ipv4PoolSpec {
                    start: v4("10.8.0.2"),
                    end: v4("10.8.0.254"),
                    kind: Ipv4PoolKind::Individual,
                }),
                Some(Ipv6PoolSpec {
                    start: v6("fd00:8::1000"),
                    prefix_len: 64,
                }),
                false,
            )
            .unwrap()
        };
        let mut p = mk();
        p.acquire(Some("alice")).unwrap();
        let b = p.acquire(Some("bob")).unwrap();
        p.release(b.handle, false).unwrap();
        let text = p.render_persist();
        assert_eq!(
            text,
            "alice,10.8.0.2,fd00:8::1000\nbob,10.8.0.3,fd00:8::1001\n"
        );
        let mut q = mk();
        assert!(q.load_persist(&text, false).is_empty());
        assert_eq!(q.render_persist(), text);
        // A stranger must not take alice's or bob's remembered slot.
        assert_eq!(q.acquire(Some("carol")).unwrap().ipv4, Some(v4("10.8.0.4")));
        assert_eq!(
            q.acquire(Some("bob")).unwrap().ipv6,
            Some(v6("fd00:8::1001"))
        );
    }

    #[test]
    fn persist_file_net30_uses_block_base() {
        let mut p = net30_24();
        p.acquire(Some("alice")).unwrap();
        assert_eq!(p.render_persist(), "alice,10.8.0.4,\n");
        let mut q = net30_24();
        // 2.6 accepts any address of the block.
        assert!(q.load_persist("bob,10.8.0.9\n", false).is_empty());
        assert_eq!(q.acquire(Some("bob")).unwrap().ipv4, Some(v4("10.8.0.10")));
    }

    #[test]
    fn persist_file_bad_lines_are_skipped_with_warnings() {
        let mut p = subnet24();
        let w = p.load_persist(
            "# comment\n;other\n\nnocomma\nx,999.1.1.1\ny,10.9.0.1\nz,10.8.0.7,zz::zz::\nok,10.8.0.9,\r\n",
            false,
        );
        let lines: Vec<u32> = w.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert_eq!(p.render_persist(), "z,10.8.0.7,\nok,10.8.0.9,\n");
    }

    #[test]
    fn fixed_persist_entries_only_go_to_their_name() {
        let mut p = AddressPool::new(
            Some(Ipv4PoolSpec {
                start: v4("10.0.0.1"),
                end: v4("10.0.0.2"),
                kind: Ipv4PoolKind::Individual,
            }),
            None,
            false,
        )
        .unwrap();
        p.load_persist("vip,10.0.0.1,\n", true);
        assert_eq!(p.acquire(Some("x")).unwrap().ipv4, Some(v4("10.0.0.2")));
        assert_eq!(p.acquire(Some("y")), Err(PoolError::Exhausted));
        assert_eq!(p.acquire(Some("vip")).unwrap().ipv4, Some(v4("10.0.0.1")));
    }

    /// Parses a server configuration without touching the file system.
    pub(crate) fn server_config(extra: &str) -> Config {
        let text = format!("dev tun\nca ca.pem\ncert c.pem\nkey k.pem\ndh none\n{extra}");
        crate::config::Loader::new("/")
            .check_files(false)
            .load_str("server.conf", &text)
            .unwrap()
    }

    #[test]
    fn from_config_follows_server_helper() {
        let cfg = server_config(
            "topology subnet\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n",
        );
        let mut p = AddressPool::from_config(&cfg).unwrap().unwrap();
        assert_eq!(p.size(), 253);
        let l = p.acquire(Some("a")).unwrap();
        assert_eq!(l.ipv4, Some(v4("10.8.0.2")));
        assert_eq!(l.ipv6, Some(v6("fd00:8::1000")));
        let net30 = server_config("server 10.8.0.0 255.255.255.0\n");
        let mut p = AddressPool::from_config(&net30).unwrap().unwrap();
        assert_eq!(p.acquire(None).unwrap().ipv4, Some(v4("10.8.0.6")));
        let nopool = server_config("server 10.8.0.0 255.255.255.0 nopool\n");
        assert!(AddressPool::from_config(&nopool).unwrap().is_none());
    }

    proptest::proptest! {
        /// Random acquire/release sequences: no address is leased twice,
        /// reserved slots are never leased, the in-use count is right, and
        /// a remembered name gets its old address back when it is free.
        #[test]
        fn never_double_leases(ops in proptest::collection::vec((0u8..3, 0u8..12), 1..200)) {
            let mut p = AddressPool::new(
                Some(Ipv4PoolSpec { start: v4("10.0.0.1"), end: v4("10.0.0.8"), kind: Ipv4PoolKind::Individual }),
                Some(Ipv6PoolSpec { start: v6("fd00::100"), prefix_len: 64 }),
                false,
            ).unwrap();
            p.reserve(Some(v4("10.0.0.4")), None);
            let mut held: Vec<(String, Lease)> = Vec::new();
            let mut last: HashMap<String, Ipv4Addr> = Default::default();
            for (op, n) in ops {
                let cn = format!("c{n}");
                if op < 2 {
                    if held.iter().any(|(c, _)| *c == cn) {
                        continue;
                    }
                    match p.acquire(Some(&cn)) {
                        Ok(l) => {
                            proptest::prop_assert!(l.ipv4 != Some(v4("10.0.0.4")));
                            proptest::prop_assert!(held.iter().all(|(_, h)| h.ipv4 != l.ipv4 && h.ipv6 != l.ipv6));
                            if let Some(prev) = last.get(&cn)
                                && held.iter().all(|(_, h)| h.ipv4 != Some(*prev))
                                && !p.render_persist().lines().any(|line| line.contains(&format!(",{prev},")) && !line.starts_with(&format!("{cn},")))
                            {
                                proptest::prop_assert_eq!(l.ipv4, Some(*prev));
                            }
                            last.insert(cn.clone(), l.ipv4.unwrap());
                            held.push((cn, l));
                        }
                        Err(e) => {
                            proptest::prop_assert_eq!(e, PoolError::Exhausted);
                            proptest::prop_assert_eq!(held.len(), 7);
                        }
                    }
                } else if let Some(i) = held.iter().position(|(c, _)| *c == cn) {
                    let (_, l) = held.remove(i);
                    p.release(l.handle, false).unwrap();
                }
                proptest::prop_assert_eq!(p.in_use() as usize, held.len());
            }
        }
    }
}
