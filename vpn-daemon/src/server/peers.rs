//! The server's peer table: one entry per client instance, found by
//! peer-id (P_DATA_V2), by transport address (everything else on UDP), and
//! by VPN address (the internal multiplexer's route lookup), plus the
//! routing decision for a packet read from tun or received from a client.
//!
//! ```text
//!            peer-id ──► slots[peer-id] ──► Peer<T> { transport, cn, routes, payload: T }
//!   transport address ──► by_transport ───┘         ▲
//!     VPN dst address ──► RouteTable (LPM) ─────────┘   tunnel addresses (/32, /128)
//!                                                      + iroute / iroute-ipv6 networks
//! ```
//!
//! Generic over the per-peer payload `T` so the driver stores its session
//! there. No clock and no I/O; removal cleans every index.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A data-channel peer-id: the slot index, lowest free first (2.6).
pub type PeerId = u32;

/// 2.6's default `max-clients`.
pub const DEFAULT_MAX_CLIENTS: u32 = 1024;

/// P_DATA_V2 carries 24 bits of peer-id; 0xFFFFFF means "none".
pub const MAX_PEER_ID: u32 = 0x00FF_FFFE;

/// Why a peer-table operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// `max-clients` instances already exist.
    #[error("max-clients ({max}) reached")]
    MaxClients {
        /// The limit.
        max: u32,
    },
    /// Another instance already uses this transport address.
    #[error("transport address {addr} already belongs to peer {owner}")]
    AddressInUse {
        /// The address.
        addr: SocketAddr,
        /// Its owner.
        owner: PeerId,
    },
    /// No peer with that id.
    #[error("no peer with id {0}")]
    UnknownPeer(PeerId),
}

/// The networks a client answers for: its tunnel addresses (host routes)
/// and its `iroute` / `iroute-ipv6` networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpnRoutes {
    /// Tunnel IPv4 address (from the pool or `ifconfig-push`).
    pub ipv4: Option<Ipv4Addr>,
    /// Tunnel IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `iroute` networks.
    pub iroutes_v4: Vec<Ipv4Net>,
    /// `iroute-ipv6` networks.
    pub iroutes_v6: Vec<Ipv6Net>,
}

impl VpnRoutes {
    /// Every network, host routes first.
    pub fn networks(&self) -> Vec<IpNet> {
        let mut v = Vec::new();
        if let Some(a) = self.ipv4 {
            v.push(IpNet::V4(Ipv4Net::from(a)));
        }
        if let Some(a) = self.ipv6 {
            v.push(IpNet::V6(Ipv6Net::from(a)));
        }
        v.extend(self.iroutes_v4.iter().map(|n| IpNet::V4(n.trunc())));
        v.extend(self.iroutes_v6.iter().map(|n| IpNet::V6(n.trunc())));
        v
    }
}

/// One client instance.
#[derive(Debug)]
pub struct Peer<T> {
    id: PeerId,
    transport: SocketAddr,
    common_name: Option<String>,
    routes: VpnRoutes,
    /// The driver's per-peer state (its session, counters...).
    pub payload: T,
}

impl<T> Peer<T> {
    /// The peer-id.
    pub fn id(&self) -> PeerId {
        self.id
    }
    /// Where its packets come from (UDP source / TCP peer address).
    pub fn transport(&self) -> SocketAddr {
        self.transport
    }
    /// The authenticated common name, once known.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }
    /// Its tunnel addresses and iroutes.
    pub fn routes(&self) -> &VpnRoutes {
        &self.routes
    }
}

/// What [`PeerTable::float`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatOutcome {
    /// The peer already had that address.
    Unchanged,
    /// Moved; the old address is given back.
    Moved {
        /// Where it was.
        from: SocketAddr,
    },
}

/// Why [`PeerTable::float`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FloatError {
    /// No such peer.
    #[error("no peer with id {0}")]
    UnknownPeer(PeerId),
    /// The address belongs to another instance with a different identity
    /// (2.6: "Disallow float to an address taken by another client").
    #[error("address {addr} belongs to peer {owner}")]
    TakenByOther {
        /// The wanted address.
        addr: SocketAddr,
        /// Its current owner.
        owner: PeerId,
    },
    /// The address belongs to a stale instance of the *same* client (same
    /// common name): 2.6 closes that instance and then floats. Remove
    /// `stale` and call `float` again.
    #[error("address {addr} belongs to stale instance {stale} of the same client")]
    TakenBySameClient {
        /// The wanted address.
        addr: SocketAddr,
        /// The stale instance to close.
        stale: PeerId,
    },
}

/// What to do with a connection by a common name already connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CnAdmission {
    /// Nobody else has that name (or `duplicate-cn` allows several): go on.
    Admit,
    /// Without `duplicate-cn`, 2.6 closes the existing instances with that
    /// name and keeps the new one.
    ReplaceExisting(Vec<PeerId>),
}

/// Where a packet goes (the internal multiplexer's decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDecision {
    /// Encrypt and send to this peer.
    Peer(PeerId),
    /// Write to the tun device: the kernel routes it.
    Tun,
    /// Multicast: copy to every peer except `except` (the sender), and to
    /// tun too when `also_tun`.
    Broadcast {
        /// Do not send back to this peer.
        except: Option<PeerId>,
        /// Also write to tun.
        also_tun: bool,
    },
    /// Drop it, counting the reason.
    Drop(RouteDrop),
}

/// Why a packet is dropped by the routing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDrop {
    /// Not an IPv4/IPv6 packet, or truncated header.
    Malformed,
    /// From a client whose source address is not one of its tunnel
    /// addresses or iroutes (2.6: "bad source address from client").
    BadSource,
    /// From tun, to an address no client owns.
    NoRoute,
    /// The sending peer is not in the table.
    UnknownPeer,
    /// From a tap client whose authentication has not finished: its
    /// source MACs are not learnt yet (counted by the mode loop).
    NotConnected,
    /// Refused by the `vlan-tagging` port rules (a tagged frame from a
    /// client, a VID the port does not carry; counted by the mode loop).
    Vlan,
}

impl RouteDrop {
    /// Every reason, in counter order.
    pub const ALL: [RouteDrop; 6] = [
        RouteDrop::Malformed,
        RouteDrop::BadSource,
        RouteDrop::NoRoute,
        RouteDrop::UnknownPeer,
        RouteDrop::NotConnected,
        RouteDrop::Vlan,
    ];

    /// Position of `self` in [`RouteDrop::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The name in the statistics log line; stable, logs key on it.
    pub const fn as_str(self) -> &'static str {
        match self {
            RouteDrop::Malformed => "malformed",
            RouteDrop::BadSource => "bad source",
            RouteDrop::NoRoute => "no route",
            RouteDrop::UnknownPeer => "unknown peer",
            RouteDrop::NotConnected => "not connected",
            RouteDrop::Vlan => "vlan",
        }
    }
}

impl std::fmt::Display for RouteDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Packets dropped by the internal multiplexer, one counter per
/// [`RouteDrop`]: a fixed array, so counting on the data path neither
/// hashes nor allocates.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RouteDropCounters {
    counts: [u64; RouteDrop::ALL.len()],
}

impl RouteDropCounters {
    /// Count one drop.
    pub fn count(&mut self, r: RouteDrop) {
        if let Some(c) = self.counts.get_mut(r.index()) {
            *c += 1;
        }
    }

    /// Drops for `r`.
    pub fn get(&self, r: RouteDrop) -> u64 {
        self.counts.get(r.index()).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-zero counters, in [`RouteDrop::ALL`] order.
    pub fn nonzero(&self) -> impl Iterator<Item = (RouteDrop, u64)> + '_ {
        RouteDrop::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, n)| *n > 0)
    }
}

/// Renders as the name -> count map the statistics line has always shown
/// (`{"no route": 2, "vlan": 1}`), zero counters left out.
impl std::fmt::Debug for RouteDropCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.nonzero().map(|(r, n)| (r.as_str(), n)))
            .finish()
    }
}

/// Where a packet to route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketSource {
    /// Read from the tun device.
    Tun,
    /// Decrypted from this peer.
    Peer(PeerId),
}

/// A longest-prefix-match table: one hash map per prefix length in use,
/// probed from the longest length down. With the handful of lengths a VPN
/// server uses (/32 + a few iroute lengths) that is a few hash lookups.
#[derive(Debug, Clone)]
pub struct RouteTable<K> {
    /// (prefix length, masked network -> owner), longest length first.
    levels: Vec<(u8, HashMap<K, PeerId>)>,
}

impl<K> Default for RouteTable<K> {
    fn default() -> Self {
        RouteTable { levels: Vec::new() }
    }
}

/// Address types a [`RouteTable`] can hold.
pub trait RouteKey: Copy + Eq + std::hash::Hash {
    /// Bits in the address.
    const BITS: u8;
    /// The address with everything after `len` bits cleared.
    fn masked(self, len: u8) -> Self;
}

impl RouteKey for Ipv4Addr {
    const BITS: u8 = 32;
    fn masked(self, len: u8) -> Self {
        let m = u32::MAX
            .checked_shl(32 - u32::from(len.min(32)))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self) & m)
    }
}

impl RouteKey for Ipv6Addr {
    const BITS: u8 = 128;
    fn masked(self, len: u8) -> Self {
        let m = u128::MAX
            .checked_shl(128 - u32::from(len.min(128)))
            .unwrap_or(0);
        Ipv6Addr::from(u128::from(self) & m)
    }
}

impl<K: RouteKey> RouteTable<K> {
    /// Routes `net/len` to `owner`; the previous owner, if any, is
    /// returned (the latest client to claim a network wins, as 2.6's
    /// route learning does).
    pub fn insert(&mut self, net: K, len: u8, owner: PeerId) -> Option<PeerId> {
        let len = len.min(K::BITS);
        let key = net.masked(len);
        let pos = match self.levels.iter().position(|(l, _)| *l <= len) {
            Some(p) if self.levels.get(p).is_some_and(|(l, _)| *l == len) => p,
            Some(p) => {
                self.levels.insert(p, (len, HashMap::new()));
                p
            }
            None => {
                self.levels.push((len, HashMap::new()));
                self.levels.len() - 1
            }
        };
        self.levels
            .get_mut(pos)
            .and_then(|(_, m)| m.insert(key, owner))
    }

    /// Removes `net/len` if `owner` still owns it.
    pub fn remove(&mut self, net: K, len: u8, owner: PeerId) -> bool {
        let len = len.min(K::BITS);
        let key = net.masked(len);
        let Some(pos) = self.levels.iter().position(|(l, _)| *l == len) else {
            return false;
        };
        let Some((_, m)) = self.levels.get_mut(pos) else {
            return false;
        };
        if m.get(&key) != Some(&owner) {
            return false;
        }
        m.remove(&key);
        if m.is_empty() {
            self.levels.remove(pos);
        }
        true
    }

    /// The owner of exactly `net/len`.
    pub fn get(&self, net: K, len: u8) -> Option<PeerId> {
        let len = len.min(K::BITS);
        self.levels
            .iter()
            .find(|(l, _)| *l == len)
            .and_then(|(_, m)| m.get(&net.masked(len)).copied())
    }

    /// The owner of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: K) -> Option<PeerId> {
        self.levels
            .iter()
            .find_map(|(len, m)| m.get(&addr.masked(*len)).copied())
    }

    /// Every (network, length, owner), longest prefixes first.
    pub fn entries(&self) -> impl Iterator<Item = (K, u8, PeerId)> + '_ {
        self.levels
            .iter()
            .flat_map(|(len, m)| m.iter().map(move |(k, o)| (*k, *len, *o)))
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.levels.iter().map(|(_, m)| m.len()).sum()
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

/// The peer table.
#[derive(Debug)]
pub struct PeerTable<T> {
    slots: Vec<Option<Peer<T>>>,
    count: u32,
    max_clients: u32,
    by_transport: HashMap<SocketAddr, PeerId>,
    routes_v4: RouteTable<Ipv4Addr>,
    routes_v6: RouteTable<Ipv6Addr>,
}

impl<T> PeerTable<T> {
    /// An empty table for at most `max_clients` instances (clamped to the
    /// 24-bit peer-id space).
    pub fn new(max_clients: u32) -> Self {
        PeerTable {
            slots: Vec::new(),
            count: 0,
            max_clients: max_clients.min(MAX_PEER_ID + 1),
            by_transport: HashMap::new(),
            routes_v4: RouteTable::default(),
            routes_v6: RouteTable::default(),
        }
    }

    /// Number of instances.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `max-clients` limit.
    pub fn max_clients(&self) -> u32 {
        self.max_clients
    }

    /// Adds an instance for a new transport address; it gets the lowest
    /// free peer-id in `[0, max-clients)`.
    pub fn insert(&mut self, transport: SocketAddr, payload: T) -> Result<PeerId, PeerError> {
        if let Some(&owner) = self.by_transport.get(&transport) {
            return Err(PeerError::AddressInUse {
                addr: transport,
                owner,
            });
        }
        let free = self.slots.iter().position(Option::is_none);
        let idx = match free {
            Some(i) => i,
            None => self.slots.len(),
        };
        let id = u32::try_from(idx).unwrap_or(u32::MAX);
        if id >= self.max_clients {
            return Err(PeerError::MaxClients {
                max: self.max_clients,
            });
        }
        let peer = Peer {
            id,
            transport,
            common_name: None,
            routes: VpnRoutes::default(),
            payload,
        };
        match self.slots.get_mut(idx) {
            Some(slot) => *slot = Some(peer),
            None => self.slots.push(Some(peer)),
        }
        self.by_transport.insert(transport, id);
        self.count += 1;
        Ok(id)
    }

    /// The instance with this peer-id.
    pub fn get(&self, id: PeerId) -> Option<&Peer<T>> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    /// The instance with this peer-id, mutably.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer<T>> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The instance behind a transport address.
    pub fn by_transport(&self, addr: SocketAddr) -> Option<PeerId> {
        self.by_transport.get(&addr).copied()
    }

    /// The instance that owns a VPN address (longest prefix match over
    /// tunnel addresses and iroutes).
    pub fn by_vpn_addr(&self, addr: IpAddr) -> Option<PeerId> {
        match addr {
            IpAddr::V4(a) => self.routes_v4.lookup(a),
            IpAddr::V6(a) => self.routes_v6.lookup(a),
        }
    }

    /// The instances at an IPv4 transport address, whether the socket
    /// reports it as IPv4 or IPv4-mapped IPv6 (management `kill IP:PORT`).
    pub fn by_ipv4_transport(&self, addr: std::net::SocketAddrV4) -> Vec<PeerId> {
        let mapped = SocketAddr::new(IpAddr::V6(addr.ip().to_ipv6_mapped()), addr.port());
        [SocketAddr::V4(addr), mapped]
            .iter()
            .filter_map(|a| self.by_transport(*a))
            .collect()
    }

    /// Instances whose common name is `cn`.
    pub fn by_common_name(&self, cn: &str) -> Vec<PeerId> {
        self.iter()
            .filter(|p| p.common_name.as_deref() == Some(cn))
            .map(|p| p.id)
            .collect()
    }

    /// Every instance, by peer-id.
    pub fn iter(&self) -> impl Iterator<Item = &Peer<T>> {
        self.slots.iter().flatten()
    }

    /// Every instance, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer<T>> {
        self.slots.iter_mut().flatten()
    }

    /// The IPv4 route table (status output's ROUTING TABLE).
    pub fn routes_v4(&self) -> &RouteTable<Ipv4Addr> {
        &self.routes_v4
    }

    /// The IPv6 route table.
    pub fn routes_v6(&self) -> &RouteTable<Ipv6Addr> {
        &self.routes_v6
    }

    /// Every network with its owner, for the status ROUTING TABLE: peers
    /// by id, each with its tunnel addresses then its iroutes, skipping
    /// networks another peer has since claimed.
    pub fn route_list(&self) -> Vec<(IpNet, PeerId)> {
        let mut out = Vec::new();
        for p in self.iter() {
            for net in p.routes.networks() {
                let owner = match net {
                    IpNet::V4(n) => self.routes_v4.get(n.network(), n.prefix_len()),
                    IpNet::V6(n) => self.routes_v6.get(n.network(), n.prefix_len()),
                };
                if owner == Some(p.id) {
                    out.push((net, p.id));
                }
            }
        }
        out
    }

    /// Whether a connection by `cn` may go on, and which instances it
    /// replaces (`duplicate-cn` off). `new` is the connecting instance
    /// (already in the table, so it is not counted).
    pub fn admit_common_name(&self, cn: &str, new: PeerId, duplicate_cn: bool) -> CnAdmission {
        if duplicate_cn {
            return CnAdmission::Admit;
        }
        let old: Vec<PeerId> = self
            .by_common_name(cn)
            .into_iter()
            .filter(|&id| id != new)
            .collect();
        if old.is_empty() {
            CnAdmission::Admit
        } else {
            CnAdmission::ReplaceExisting(old)
        }
    }

    /// Records the authenticated common name.
    pub fn set_common_name(&mut self, id: PeerId, cn: Option<String>) -> Result<(), PeerError> {
        let p = self.get_mut(id).ok_or(PeerError::UnknownPeer(id))?;
        p.common_name = cn;
        Ok(())
    }

    /// Sets a peer's tunnel addresses and iroutes, replacing what it had.
    /// Returns the peers that lost a network to it (the latest claim wins).
    pub fn set_routes(&mut self, id: PeerId, routes: VpnRoutes) -> Result<Vec<PeerId>, PeerError> {
        let old = {
            let p = self.get_mut(id).ok_or(PeerError::UnknownPeer(id))?;
            std::mem::take(&mut p.routes)
        };
        self.unroute(id, &old);
        let mut displaced = Vec::new();
        for net in routes.networks() {
            let prev = match net {
                IpNet::V4(n) => self.routes_v4.insert(n.network(), n.prefix_len(), id),
                IpNet::V6(n) => self.routes_v6.insert(n.network(), n.prefix_len(), id),
            };
            if let Some(prev) = prev.filter(|&p| p != id)
                && !displaced.contains(&prev)
            {
                displaced.push(prev);
            }
        }
        if let Some(p) = self.get_mut(id) {
            p.routes = routes;
        }
        Ok(displaced)
    }

    fn unroute(&mut self, id: PeerId, routes: &VpnRoutes) {
        for net in routes.networks() {
            match net {
                IpNet::V4(n) => self.routes_v4.remove(n.network(), n.prefix_len(), id),
                IpNet::V6(n) => self.routes_v6.remove(n.network(), n.prefix_len(), id),
            };
        }
    }

    /// Moves a peer to a new transport address (UDP float, after its
    /// packet authenticated). `same_client` says whether another instance
    /// is the same client (2.6 compares certificate hashes; the driver
    /// decides, typically by common name).
    pub fn float(
        &mut self,
        id: PeerId,
        to: SocketAddr,
        same_client: impl Fn(&Peer<T>, &Peer<T>) -> bool,
    ) -> Result<FloatOutcome, FloatError> {
        let me = self.get(id).ok_or(FloatError::UnknownPeer(id))?;
        let from = me.transport;
        if from == to {
            return Ok(FloatOutcome::Unchanged);
        }
        if let Some(&owner) = self.by_transport.get(&to)
            && owner != id
        {
            let other = self.get(owner).ok_or(FloatError::UnknownPeer(owner))?;
            return Err(if same_client(me, other) {
                FloatError::TakenBySameClient {
                    addr: to,
                    stale: owner,
                }
            } else {
                FloatError::TakenByOther { addr: to, owner }
            });
        }
        self.by_transport.remove(&from);
        self.by_transport.insert(to, id);
        if let Some(p) = self.get_mut(id) {
            p.transport = to;
        }
        Ok(FloatOutcome::Moved { from })
    }

    /// Removes an instance and every index entry pointing at it.
    pub fn remove(&mut self, id: PeerId) -> Option<Peer<T>> {
        let peer = self.slots.get_mut(id as usize)?.take()?;
        if self.by_transport.get(&peer.transport) == Some(&id) {
            self.by_transport.remove(&peer.transport);
        }
        self.unroute(id, &peer.routes);
        self.count -= 1;
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        Some(peer)
    }

    /// The internal multiplexer's decision for one IP packet, read from tun
    /// or decrypted from a client (2.6 `multi_process_incoming_tun` /
    /// `multi_process_incoming_link`):
    ///
    /// - from tun: multicast goes to every client; unicast to the client
    ///   owning the destination, else it is dropped;
    /// - from a client: the source must be one of its addresses/iroutes;
    ///   with `client-to-client`, multicast is copied to the other clients
    ///   (and tun) and unicast to another client goes straight to it;
    ///   everything else goes to tun for the kernel to route.
    pub fn route(
        &self,
        from: PacketSource,
        packet: &[u8],
        client_to_client: bool,
    ) -> RouteDecision {
        let Some((src, dst)) = ip_addrs(packet) else {
            return RouteDecision::Drop(RouteDrop::Malformed);
        };
        let multicast = dst.is_multicast();
        match from {
            PacketSource::Tun => {
                if multicast {
                    return RouteDecision::Broadcast {
                        except: None,
                        also_tun: false,
                    };
                }
                match self.by_vpn_addr(dst) {
                    Some(id) => RouteDecision::Peer(id),
                    None => RouteDecision::Drop(RouteDrop::NoRoute),
                }
            }
            PacketSource::Peer(id) => {
                if self.get(id).is_none() {
                    return RouteDecision::Drop(RouteDrop::UnknownPeer);
                }
                if self.by_vpn_addr(src) != Some(id) {
                    return RouteDecision::Drop(RouteDrop::BadSource);
                }
                if !client_to_client {
                    return RouteDecision::Tun;
                }
                if multicast {
                    return RouteDecision::Broadcast {
                        except: Some(id),
                        also_tun: true,
                    };
                }
                match self.by_vpn_addr(dst) {
                    Some(to) if to != id => RouteDecision::Peer(to),
                    _ => RouteDecision::Tun,
                }
            }
        }
    }
}

/// Source and destination of an IPv4 or IPv6 packet (parsed by the
/// inner-packet views; kept here for callers of the old path).
pub use crate::packet::ip_addrs;

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn v4pkt(src: &str, dst: &str) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src.parse::<Ipv4Addr>().unwrap().octets());
        p[16..20].copy_from_slice(&dst.parse::<Ipv4Addr>().unwrap().octets());
        p
    }

    fn v6pkt(src: &str, dst: &str) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
        p
    }

    fn routes(v4: &str, v6: Option<&str>, ir: &[&str]) -> VpnRoutes {
        VpnRoutes {
            ipv4: Some(v4.parse().unwrap()),
            ipv6: v6.map(|s| s.parse().unwrap()),
            iroutes_v4: ir.iter().map(|s| s.parse().unwrap()).collect(),
            iroutes_v6: Vec::new(),
        }
    }

    #[test]
    fn peer_ids_are_lowest_free_and_reused() {
        let mut t: PeerTable<&str> = PeerTable::new(1024);
        assert_eq!(t.insert(sa("192.0.2.1:1000"), "a").unwrap(), 0);
        assert_eq!(t.insert(sa("192.0.2.2:1000"), "b").unwrap(), 1);
        assert_eq!(t.insert(sa("192.0.2.3:1000"), "c").unwrap(), 2);
        t.remove(1).unwrap();
        assert_eq!(t.insert(sa("192.0.2.4:1000"), "d").unwrap(), 1);
        assert_eq!(t.get(1).unwrap().payload, "d");
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn refuses_beyond_max_clients() {
        let mut t: PeerTable<()> = PeerTable::new(2);
        t.insert(sa("192.0.2.1:1"), ()).unwrap();
        t.insert(sa("192.0.2.1:2"), ()).unwrap();
        assert_eq!(
            t.insert(sa("192.0.2.1:3"), ()),
            Err(PeerError::MaxClients { max: 2 })
        );
        t.remove(0);
        assert_eq!(t.insert(sa("192.0.2.1:3"), ()), Ok(0));
    }

    #[test]
    fn refuses_second_instance_on_same_transport_address() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        t.insert(sa("[2001:db8::5]:1194"), ()).unwrap();
        assert_eq!(
            t.insert(sa("[2001:db8::5]:1194"), ()),
            Err(PeerError::AddressInUse {
                addr: sa("[2001:db8::5]:1194"),
                owner: 0
            })
        );
    }

    #[test]
    fn iroute_longest_prefix_match() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        let b = t.insert(sa("192.0.2.2:1"), ()).unwrap();
        let c = t.insert(sa("192.0.2.3:1"), ()).unwrap();
        t.set_routes(a, routes("10.8.0.2", None, &["10.0.0.0/8"]))
            .unwrap();
        t.set_routes(b, routes("10.8.0.3", None, &["10.9.0.0/16"]))
            .unwrap();
        t.set_routes(c, routes("10.8.0.4", None, &["10.9.8.0/24"]))
            .unwrap();
        let look = |s: &str| t.by_vpn_addr(s.parse().unwrap());
        assert_eq!(look("10.8.0.2"), Some(a));
        assert_eq!(look("10.8.0.3"), Some(b));
        assert_eq!(look("10.1.2.3"), Some(a));
        assert_eq!(look("10.9.1.1"), Some(b));
        assert_eq!(look("10.9.8.7"), Some(c));
        assert_eq!(look("10.8.0.9"), Some(a), "10.8.0.9 falls in a's 10/8");
        assert_eq!(look("192.168.1.1"), None);
        t.remove(c);
        assert_eq!(t.by_vpn_addr("10.9.8.7".parse().unwrap()), Some(b));
    }

    #[test]
    fn ipv6_tunnel_address_and_iroute_lookup() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        let mut r = routes("10.8.0.2", Some("fd00:8::1000"), &[]);
        r.iroutes_v6.push("fd00:99::/48".parse().unwrap());
        t.set_routes(a, r).unwrap();
        let look = |s: &str| t.by_vpn_addr(s.parse().unwrap());
        assert_eq!(look("fd00:8::1000"), Some(a));
        assert_eq!(look("fd00:8::1001"), None);
        assert_eq!(look("fd00:99:0:5::1"), Some(a));
        assert_eq!(t.routes_v6().len(), 2);
    }

    #[test]
    fn later_claim_on_a_network_wins_and_removal_keeps_it() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        let b = t.insert(sa("192.0.2.2:1"), ()).unwrap();
        t.set_routes(a, routes("10.8.0.2", None, &["10.50.0.0/16"]))
            .unwrap();
        let lost = t
            .set_routes(b, routes("10.8.0.3", None, &["10.50.0.0/16"]))
            .unwrap();
        assert_eq!(lost, vec![a]);
        t.remove(a);
        assert_eq!(t.by_vpn_addr("10.50.1.1".parse().unwrap()), Some(b));
    }

    #[test]
    fn route_list_orders_by_peer_and_skips_lost_networks() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        let b = t.insert(sa("192.0.2.2:1"), ()).unwrap();
        t.set_routes(a, routes("10.8.0.2", Some("fd00::2"), &["10.50.0.0/16"]))
            .unwrap();
        t.set_routes(b, routes("10.8.0.3", None, &["10.50.0.0/16"]))
            .unwrap();
        let l: Vec<(String, PeerId)> = t
            .route_list()
            .into_iter()
            .map(|(n, o)| (n.to_string(), o))
            .collect();
        assert_eq!(
            l,
            vec![
                ("10.8.0.2/32".to_string(), a),
                ("fd00::2/128".to_string(), a),
                ("10.8.0.3/32".to_string(), b),
                ("10.50.0.0/16".to_string(), b),
            ]
        );
    }

    #[test]
    fn set_routes_replaces_old_routes() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        t.set_routes(a, routes("10.8.0.2", None, &["10.50.0.0/16"]))
            .unwrap();
        t.set_routes(a, routes("10.8.0.7", None, &[])).unwrap();
        assert_eq!(t.by_vpn_addr("10.50.1.1".parse().unwrap()), None);
        assert_eq!(t.by_vpn_addr("10.8.0.2".parse().unwrap()), None);
        assert_eq!(t.by_vpn_addr("10.8.0.7".parse().unwrap()), Some(a));
    }

    #[test]
    fn float_moves_and_refuses_conflicts() {
        let mut t: PeerTable<&str> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1000"), "alice").unwrap();
        let b = t.insert(sa("192.0.2.2:1000"), "bob").unwrap();
        let same = |x: &Peer<&str>, y: &Peer<&str>| x.payload == y.payload;
        assert_eq!(
            t.float(a, sa("192.0.2.1:1000"), same),
            Ok(FloatOutcome::Unchanged)
        );
        assert_eq!(
            t.float(a, sa("198.51.100.9:4000"), same),
            Ok(FloatOutcome::Moved {
                from: sa("192.0.2.1:1000")
            })
        );
        assert_eq!(t.by_transport(sa("198.51.100.9:4000")), Some(a));
        assert_eq!(t.by_transport(sa("192.0.2.1:1000")), None);
        assert_eq!(
            t.float(a, sa("192.0.2.2:1000"), same),
            Err(FloatError::TakenByOther {
                addr: sa("192.0.2.2:1000"),
                owner: b
            })
        );
        assert_eq!(t.get(a).unwrap().transport(), sa("198.51.100.9:4000"));
        assert_eq!(
            t.float(9, sa("192.0.2.9:1"), same),
            Err(FloatError::UnknownPeer(9))
        );
    }

    #[test]
    fn float_onto_stale_instance_of_same_client_asks_to_close_it() {
        let mut t: PeerTable<&str> = PeerTable::new(10);
        let old = t.insert(sa("192.0.2.1:1000"), "alice").unwrap();
        let new = t.insert(sa("192.0.2.1:2000"), "alice").unwrap();
        let same = |x: &Peer<&str>, y: &Peer<&str>| x.payload == y.payload;
        assert_eq!(
            t.float(new, sa("192.0.2.1:1000"), same),
            Err(FloatError::TakenBySameClient {
                addr: sa("192.0.2.1:1000"),
                stale: old
            })
        );
        t.remove(old);
        assert!(matches!(
            t.float(new, sa("192.0.2.1:1000"), same),
            Ok(FloatOutcome::Moved { .. })
        ));
    }

    #[test]
    fn removal_cleans_every_index() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        t.set_common_name(a, Some("alice".into())).unwrap();
        t.set_routes(a, routes("10.8.0.2", Some("fd00::2"), &["10.60.0.0/24"]))
            .unwrap();
        let p = t.remove(a).unwrap();
        assert_eq!(p.common_name(), Some("alice"));
        assert!(t.get(a).is_none());
        assert_eq!(t.by_transport(sa("192.0.2.1:1")), None);
        assert!(t.routes_v4().is_empty() && t.routes_v6().is_empty());
        assert!(t.by_common_name("alice").is_empty());
        assert!(t.is_empty());
        assert!(t.remove(a).is_none());
    }

    #[test]
    fn finds_ipv4_clients_on_dual_stack_sockets() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("[::ffff:10.203.0.2]:50892"), ()).unwrap();
        let b = t.insert(sa("10.203.0.3:1194"), ()).unwrap();
        assert_eq!(
            t.by_ipv4_transport("10.203.0.2:50892".parse().unwrap()),
            vec![a]
        );
        assert_eq!(
            t.by_ipv4_transport("10.203.0.3:1194".parse().unwrap()),
            vec![b]
        );
        assert!(
            t.by_ipv4_transport("10.203.0.3:1195".parse().unwrap())
                .is_empty()
        );
    }

    #[test]
    fn duplicate_cn_decision() {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        t.set_common_name(a, Some("alice".into())).unwrap();
        let b = t.insert(sa("192.0.2.1:2"), ()).unwrap();
        t.set_common_name(b, Some("alice".into())).unwrap();
        assert_eq!(
            t.admit_common_name("alice", b, false),
            CnAdmission::ReplaceExisting(vec![a])
        );
        assert_eq!(t.admit_common_name("alice", b, true), CnAdmission::Admit);
        assert_eq!(t.admit_common_name("bob", b, false), CnAdmission::Admit);
    }

    fn two_clients() -> (PeerTable<()>, PeerId, PeerId) {
        let mut t: PeerTable<()> = PeerTable::new(10);
        let a = t.insert(sa("192.0.2.1:1"), ()).unwrap();
        let b = t.insert(sa("192.0.2.2:1"), ()).unwrap();
        t.set_routes(a, routes("10.8.0.2", Some("fd00::2"), &[]))
            .unwrap();
        t.set_routes(b, routes("10.8.0.3", None, &["192.168.50.0/24"]))
            .unwrap();
        (t, a, b)
    }

    #[test]
    fn route_drop_counters_render_the_names_of_the_old_map() {
        let mut c = RouteDropCounters::default();
        assert_eq!(format!("{c:?}"), "{}");
        c.count(RouteDrop::Vlan);
        c.count(RouteDrop::NoRoute);
        c.count(RouteDrop::NoRoute);
        c.count(RouteDrop::NotConnected);
        assert_eq!(
            format!("{c:?}"),
            r#"{"no route": 2, "not connected": 1, "vlan": 1}"#
        );
        assert_eq!(c.total(), 4);
        assert_eq!(c.get(RouteDrop::Malformed), 0);
        for (i, r) in RouteDrop::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: Vec<_> = RouteDrop::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "malformed",
                "bad source",
                "no route",
                "unknown peer",
                "not connected",
                "vlan"
            ]
        );
    }

    #[test]
    fn routes_tun_packets_to_owner_or_drops() {
        let (t, a, b) = two_clients();
        let r = |p: &[u8]| t.route(PacketSource::Tun, p, false);
        assert_eq!(r(&v4pkt("10.8.0.1", "10.8.0.2")), RouteDecision::Peer(a));
        assert_eq!(
            r(&v4pkt("10.8.0.1", "192.168.50.7")),
            RouteDecision::Peer(b)
        );
        assert_eq!(r(&v6pkt("fd00::1", "fd00::2")), RouteDecision::Peer(a));
        assert_eq!(
            r(&v4pkt("10.8.0.1", "10.8.0.99")),
            RouteDecision::Drop(RouteDrop::NoRoute)
        );
        assert_eq!(
            r(&v4pkt("10.8.0.1", "224.0.0.251")),
            RouteDecision::Broadcast {
                except: None,
                also_tun: false
            }
        );
        assert_eq!(r(&[0x45, 0, 0]), RouteDecision::Drop(RouteDrop::Malformed));
        assert_eq!(r(&[]), RouteDecision::Drop(RouteDrop::Malformed));
        assert_eq!(r(&[0x20; 40]), RouteDecision::Drop(RouteDrop::Malformed));
    }

    #[test]
    fn client_packets_need_their_own_source_address() {
        let (t, a, b) = two_clients();
        let r = |id, p: &[u8]| t.route(PacketSource::Peer(id), p, true);
        assert_eq!(
            r(a, &v4pkt("10.8.0.3", "10.8.0.1")),
            RouteDecision::Drop(RouteDrop::BadSource)
        );
        assert_eq!(r(b, &v4pkt("192.168.50.9", "10.8.0.1")), RouteDecision::Tun);
        assert_eq!(
            r(7, &v4pkt("10.8.0.2", "10.8.0.1")),
            RouteDecision::Drop(RouteDrop::UnknownPeer)
        );
    }

    #[test]
    fn client_to_client_routes_inside_only_when_enabled() {
        let (t, a, b) = two_clients();
        let p = v4pkt("10.8.0.2", "192.168.50.1");
        assert_eq!(
            t.route(PacketSource::Peer(a), &p, true),
            RouteDecision::Peer(b)
        );
        assert_eq!(
            t.route(PacketSource::Peer(a), &p, false),
            RouteDecision::Tun
        );
        let own = v4pkt("10.8.0.2", "10.8.0.2");
        assert_eq!(
            t.route(PacketSource::Peer(a), &own, true),
            RouteDecision::Tun
        );
        let out = v4pkt("10.8.0.2", "8.8.8.8");
        assert_eq!(
            t.route(PacketSource::Peer(a), &out, true),
            RouteDecision::Tun
        );
        let mc = v6pkt("fd00::2", "ff02::1");
        assert_eq!(
            t.route(PacketSource::Peer(a), &mc, true),
            RouteDecision::Broadcast {
                except: Some(a),
                also_tun: true
            }
        );
        assert_eq!(
            t.route(PacketSource::Peer(a), &mc, false),
            RouteDecision::Tun
        );
    }

    #[test]
    fn route_table_handles_default_route_and_host_routes() {
        let mut rt: RouteTable<Ipv4Addr> = RouteTable::default();
        rt.insert(Ipv4Addr::UNSPECIFIED, 0, 1);
        rt.insert("10.0.0.1".parse().unwrap(), 32, 2);
        rt.insert("10.0.0.0".parse().unwrap(), 24, 3);
        assert_eq!(rt.lookup("10.0.0.1".parse().unwrap()), Some(2));
        assert_eq!(rt.lookup("10.0.0.2".parse().unwrap()), Some(3));
        assert_eq!(rt.lookup("1.1.1.1".parse().unwrap()), Some(1));
        assert!(
            !rt.remove("10.0.0.0".parse().unwrap(), 24, 9),
            "not the owner"
        );
        assert!(rt.remove("10.0.0.0".parse().unwrap(), 24, 3));
        assert_eq!(rt.lookup("10.0.0.2".parse().unwrap()), Some(1));
        let lens: Vec<u8> = rt.entries().map(|(_, l, _)| l).collect();
        assert_eq!(lens, vec![32, 0]);
    }

    #[test]
    fn max_clients_clamped_to_peer_id_space() {
        let t: PeerTable<()> = PeerTable::new(u32::MAX);
        assert_eq!(t.max_clients(), MAX_PEER_ID + 1);
    }

    proptest::proptest! {
        /// The LPM table agrees with a brute-force scan.
        #[test]
        fn lpm_matches_brute_force(
            routes in proptest::collection::vec((proptest::num::u32::ANY, 0u8..=32), 1..40),
            probes in proptest::collection::vec(proptest::num::u32::ANY, 1..40),
        ) {
            let mut rt: RouteTable<Ipv4Addr> = RouteTable::default();
            let mut owners: Vec<(u32, u8, PeerId)> = Vec::new();
            for (i, (net, len)) in routes.iter().enumerate() {
                let id = i as PeerId;
                let masked = u32::from(Ipv4Addr::from(*net).masked(*len));
                rt.insert(Ipv4Addr::from(*net), *len, id);
                owners.retain(|(n, l, _)| !(*n == masked && *l == *len));
                owners.push((masked, *len, id));
            }
            for probe in probes {
                let brute = owners
                    .iter()
                    .filter(|(n, l, _)| u32::from(Ipv4Addr::from(probe).masked(*l)) == *n)
                    .max_by_key(|(_, l, _)| *l)
                    .map(|(_, _, o)| *o);
                proptest::prop_assert_eq!(rt.lookup(Ipv4Addr::from(probe)), brute);
            }
        }

        /// Any bytes as a packet: a decision, never a panic.
        #[test]
        fn route_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let (t, a, _) = two_clients();
            let _ = t.route(PacketSource::Tun, &bytes, true);
            let _ = t.route(PacketSource::Peer(a), &bytes, true);
        }
    }
}
