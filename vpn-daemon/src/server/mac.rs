//! The tap server's internal routing by MAC address (2.6 `multi.c` with
//! `dev tap`): a client owns the source MACs of the frames it sends, learnt
//! from authenticated (decrypted) frames only; frames from the tap device go
//! to the client owning the destination MAC, broadcast and multicast to
//! every client. Each client may own at most `max-routes-per-client`
//! addresses (2.6's route quota, default 256), so the table is bounded by
//! clients x quota. As in 2.6 MAC entries do not age: a MAC moves when
//! another client sends from it and goes when its client goes.

use std::collections::HashMap;

use crate::{
    packet::EthernetFrame,
    server::peers::{PacketSource, PeerId, RouteDecision, RouteDrop},
};

/// 2.6's default `max-routes-per-client`.
pub const DEFAULT_MAX_ROUTES_PER_CLIENT: u32 = 256;

/// A MAC address.
pub type Mac = [u8; 6];

/// A learnt address: the VLAN (0 without `vlan-tagging`) and the MAC.
type Key = (u16, Mac);

/// Destination and source MAC of an Ethernet frame.
pub fn frame_macs(frame: &[u8]) -> Option<(Mac, Mac)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    Some((eth.dst_addr(), eth.src_addr()))
}

/// Group bit set: broadcast or multicast.
fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// 2.6's `mroute_learnable_address` for Ethernet: not all zeros, not all
/// ones, not a group address.
fn learnable(mac: &Mac) -> bool {
    *mac != [0; 6] && !is_group(mac)
}

/// Why a source MAC was not learnt (counted by the caller as a bad source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnRefused {
    /// All zeros, broadcast or multicast.
    NotLearnable,
    /// The client owns `max-routes-per-client` addresses already.
    QuotaExceeded,
}

/// MAC address -> client, with per-client counts for the quota.
#[derive(Debug)]
pub struct MacTable {
    owners: HashMap<Key, PeerId>,
    counts: HashMap<PeerId, u32>,
    max_per_client: u32,
}

impl MacTable {
    /// An empty table allowing `max_per_client` MACs per client (at least 1).
    pub fn new(max_per_client: u32) -> Self {
        Self {
            owners: HashMap::new(),
            counts: HashMap::new(),
            max_per_client: max_per_client.max(1),
        }
    }

    /// Number of learnt addresses.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether nothing is learnt.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The client owning `mac` in VLAN `vid`.
    pub fn lookup(&self, vid: u16, mac: &Mac) -> Option<PeerId> {
        self.owners.get(&(vid, *mac)).copied()
    }

    /// Makes `id` the owner of `mac` (2.6 `multi_learn_addr`): a MAC owned
    /// by another client moves when `id` still has quota.
    pub fn learn(&mut self, vid: u16, mac: Mac, id: PeerId) -> Result<(), LearnRefused> {
        let old = self.owners.get(&(vid, mac)).copied();
        if old == Some(id) {
            return Ok(());
        }
        if !learnable(&mac) {
            return Err(LearnRefused::NotLearnable);
        }
        let count = self.counts.get(&id).copied().unwrap_or(0);
        if count >= self.max_per_client {
            return Err(LearnRefused::QuotaExceeded);
        }
        if let Some(prev) = old {
            self.dec(prev);
            tracing::debug!(mac = %MacDisplay(&mac), vid, from = prev, to = id, "MAC moved");
        } else {
            tracing::debug!(mac = %MacDisplay(&mac), vid, peer_id = id, "MAC learnt");
        }
        self.owners.insert((vid, mac), id);
        self.counts.insert(id, count + 1);
        Ok(())
    }

    fn dec(&mut self, id: PeerId) {
        if let Some(c) = self.counts.get_mut(&id) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.counts.remove(&id);
            }
        }
    }

    /// Forgets every address of a client that is gone.
    pub fn remove_peer(&mut self, id: PeerId) {
        if self.counts.remove(&id).is_some() {
            self.owners.retain(|_, owner| *owner != id);
        }
    }

    /// The addresses and their owners (status file), in no order.
    pub fn entries(&self) -> impl Iterator<Item = (u16, Mac, PeerId)> + '_ {
        self.owners.iter().map(|((v, m), id)| (*v, *m, *id))
    }

    /// The internal multiplexer's decision for one Ethernet frame (2.6
    /// `multi_process_incoming_tun` / `_link` for `dev tap`):
    ///
    /// - from tap: broadcast/multicast to every client; unicast to the
    ///   client owning the destination MAC, else dropped (2.6 floods no
    ///   unknown unicast to clients);
    /// - from a client: its source MAC is learnt (or the frame dropped as a
    ///   bad source); without `client-to-client` every frame goes to tap;
    ///   with it, broadcast/multicast goes to the other clients and tap,
    ///   unicast to another client straight to it, the rest to tap.
    ///
    /// `vid` is the frame's VLAN (0 without `vlan-tagging`): addresses are
    /// learnt and looked up per VLAN; the caller limits a broadcast to the
    /// clients of that VLAN.
    pub fn route(
        &mut self,
        from: PacketSource,
        vid: u16,
        frame: &[u8],
        client_to_client: bool,
    ) -> RouteDecision {
        let Some((dst, src)) = frame_macs(frame) else {
            return RouteDecision::Drop(RouteDrop::Malformed);
        };
        match from {
            PacketSource::Tun => {
                if is_group(&dst) {
                    return RouteDecision::Broadcast {
                        except: None,
                        also_tun: false,
                    };
                }
                match self.lookup(vid, &dst) {
                    Some(id) => RouteDecision::Peer(id),
                    None => RouteDecision::Drop(RouteDrop::NoRoute),
                }
            }
            PacketSource::Peer(id) => {
                if self.learn(vid, src, id).is_err() {
                    return RouteDecision::Drop(RouteDrop::BadSource);
                }
                if !client_to_client {
                    return RouteDecision::Tun;
                }
                if is_group(&dst) {
                    return RouteDecision::Broadcast {
                        except: Some(id),
                        also_tun: true,
                    };
                }
                match self.lookup(vid, &dst) {
                    Some(to) if to != id => RouteDecision::Peer(to),
                    _ => RouteDecision::Tun,
                }
            }
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`, as 2.6 prints MAC routes.
pub struct MacDisplay<'a>(pub &'a Mac);

impl std::fmt::Display for MacDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0x02, 0, 0, 0, 0, 0x0a];
    const B: Mac = [0x02, 0, 0, 0, 0, 0x0b];
    const LAN: Mac = [0x02, 0, 0, 0, 0, 0x99];
    const BCAST: Mac = [0xff; 6];
    const MCAST: Mac = [0x33, 0x33, 0, 0, 0, 1];

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45; 20]);
        f
    }

    #[test]
    fn client_frames_teach_their_source_and_tap_frames_follow_it() {
        let mut t = MacTable::new(DEFAULT_MAX_ROUTES_PER_CLIENT);
        assert_eq!(
            t.route(PacketSource::Tun, 0, &frame(A, LAN), false),
            RouteDecision::Drop(RouteDrop::NoRoute)
        );
        assert_eq!(
            t.route(PacketSource::Peer(3), 0, &frame(LAN, A), false),
            RouteDecision::Tun
        );
        assert_eq!(
            t.route(PacketSource::Tun, 0, &frame(A, LAN), false),
            RouteDecision::Peer(3)
        );
        // The tap side's own source is never learnt.
        assert_eq!(t.lookup(0, &LAN), None);
    }

    #[test]
    fn broadcast_and_multicast_from_tap_reach_every_client() {
        let mut t = MacTable::new(8);
        for dst in [BCAST, MCAST] {
            assert_eq!(
                t.route(PacketSource::Tun, 0, &frame(dst, LAN), false),
                RouteDecision::Broadcast {
                    except: None,
                    also_tun: false
                }
            );
        }
    }

    #[test]
    fn client_to_client_switches_between_clients_and_floods_broadcast() {
        let mut t = MacTable::new(8);
        t.route(PacketSource::Peer(1), 0, &frame(BCAST, A), true);
        t.route(PacketSource::Peer(2), 0, &frame(BCAST, B), true);
        assert_eq!(
            t.route(PacketSource::Peer(1), 0, &frame(B, A), true),
            RouteDecision::Peer(2)
        );
        assert_eq!(
            t.route(PacketSource::Peer(1), 0, &frame(BCAST, A), true),
            RouteDecision::Broadcast {
                except: Some(1),
                also_tun: true
            }
        );
        assert_eq!(
            t.route(PacketSource::Peer(1), 0, &frame(LAN, A), true),
            RouteDecision::Tun
        );
        // Without client-to-client the other client is reached via tap.
        assert_eq!(
            t.route(PacketSource::Peer(1), 0, &frame(B, A), false),
            RouteDecision::Tun
        );
    }

    #[test]
    fn group_and_zero_sources_are_bad_sources() {
        let mut t = MacTable::new(8);
        for src in [BCAST, MCAST, [0; 6]] {
            assert_eq!(
                t.route(PacketSource::Peer(1), 0, &frame(LAN, src), false),
                RouteDecision::Drop(RouteDrop::BadSource)
            );
        }
        assert!(t.is_empty());
    }

    #[test]
    fn quota_bounds_each_client_and_a_mac_moves_to_its_latest_sender() {
        let mut t = MacTable::new(2);
        for i in 0..2u8 {
            t.learn(0, [2, 0, 0, 0, 1, i], 1).unwrap();
        }
        assert_eq!(
            t.learn(0, [2, 0, 0, 0, 1, 9], 1),
            Err(LearnRefused::QuotaExceeded)
        );
        assert_eq!(
            t.route(
                PacketSource::Peer(1),
                0,
                &frame(LAN, [2, 0, 0, 0, 1, 9]),
                false
            ),
            RouteDecision::Drop(RouteDrop::BadSource)
        );
        // A known MAC still passes at full quota.
        assert_eq!(
            t.route(
                PacketSource::Peer(1),
                0,
                &frame(LAN, [2, 0, 0, 0, 1, 0]),
                false
            ),
            RouteDecision::Tun
        );
        // Client 2 takes one over: client 1 has room again.
        t.learn(0, [2, 0, 0, 0, 1, 0], 2).unwrap();
        assert_eq!(t.lookup(0, &[2, 0, 0, 0, 1, 0]), Some(2));
        t.learn(0, [2, 0, 0, 0, 1, 9], 1).unwrap();
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn removing_a_client_forgets_its_addresses_only() {
        let mut t = MacTable::new(8);
        t.learn(0, A, 1).unwrap();
        t.learn(0, B, 2).unwrap();
        t.remove_peer(1);
        assert_eq!(t.lookup(0, &A), None);
        assert_eq!(t.lookup(0, &B), Some(2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn short_frames_are_malformed() {
        let mut t = MacTable::new(8);
        assert_eq!(
            t.route(PacketSource::Peer(1), 0, &[0u8; 13], false),
            RouteDecision::Drop(RouteDrop::Malformed)
        );
        assert_eq!(
            t.route(PacketSource::Tun, 0, &[], false),
            RouteDecision::Drop(RouteDrop::Malformed)
        );
    }

    proptest::proptest! {
        #[test]
        fn route_never_panics_and_stays_bounded(
            frames in proptest::collection::vec(
                (0u32..4, proptest::collection::vec(proptest::num::u8::ANY, 0..32)),
                0..64,
            )
        ) {
            let mut t = MacTable::new(3);
            for (peer, f) in &frames {
                let _ = t.route(PacketSource::Peer(*peer), 0, f, true);
                let _ = t.route(PacketSource::Tun, 0, f, true);
            }
            proptest::prop_assert!(t.len() <= 4 * 3);
        }
    }
}

#[cfg(test)]
mod vlan_tests {
    use super::*;

    #[test]
    fn the_same_mac_is_two_addresses_in_two_vlans() {
        let mut t = MacTable::new(8);
        let m = [2, 0, 0, 0, 0, 1];
        t.learn(10, m, 1).unwrap();
        t.learn(20, m, 2).unwrap();
        assert_eq!(
            (t.lookup(10, &m), t.lookup(20, &m), t.lookup(0, &m)),
            (Some(1), Some(2), None)
        );
    }
}
