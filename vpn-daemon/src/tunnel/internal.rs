//! The internal multiplexer (OpenVPN's `multi_process_incoming_tun` and
//! the routing half of `multi.c`): a packet from tun, or one a client
//! sent, goes to its owner by the routing table (by MAC with `dev tap`):
//! a client, every client (broadcast), or the tun device; and is sealed
//! into that client's data channel.

use std::time::Instant;

use crate::host::tun as host_tun;
use crate::io::icmp6;
use crate::io::internal::tun::TunTxBatch;
use crate::server::peers::{PacketSource, PeerId, RouteDecision, RouteDrop, RouteDropCounters};
use crate::server::vlan;
use crate::tunnel::multi::Multi;
use crate::tunnel::output::LinkOut;

impl Multi {
    /// The decrypted packet (`n` bytes at the start of the scratch
    /// buffer) of client `id`: to tun, to another client, to all of them.
    pub(super) fn route_decrypted(
        &mut self,
        id: PeerId,
        n: usize,
        now: Instant,
        out: &mut dyn LinkOut,
        ttx: &mut TunTxBatch,
    ) {
        // Out of `self` while it is routed, so that sealing it for other
        // clients (which needs `self`) takes no copy.
        let mut scratch = std::mem::take(&mut self.scratch);
        if let Some(pkt) = scratch.get_mut(..n) {
            self.route_from_peer(id, pkt, now, out, ttx);
        }
        self.scratch = scratch;
    }

    fn route_from_peer(
        &mut self,
        id: PeerId,
        pkt: &mut [u8],
        now: Instant,
        out: &mut dyn LinkOut,
        ttx: &mut TunTxBatch,
    ) {
        let mss = self.mss;
        // A tap server learns source MACs from these frames: only from a
        // client whose authentication finished (a tun server checks the
        // source against the addresses given at that point instead).
        if self.macs.is_some() && !self.peers.get(id).is_some_and(|p| p.payload.connected) {
            self.route_drops.count(RouteDrop::NotConnected);
            return;
        }
        host_tun::clamp(pkt, mss);
        let c2c = self.cfg.client_to_client;
        // vlan-tagging: clients send untagged frames, in their own VLAN.
        let vlan = self.cfg.vlan;
        let vid = match vlan {
            Some(_) if vlan::is_tagged(pkt) => {
                self.route_drops.count(RouteDrop::Vlan);
                return;
            }
            Some(v) => self
                .peers
                .get(id)
                .map_or(v.pvid, |p| p.payload.vlan_pvid.unwrap_or(v.pvid)),
            None => 0,
        };
        let decision = match &mut self.macs {
            Some(macs) => macs.route(PacketSource::Peer(id), vid, pkt, c2c),
            None => self.peers.route(PacketSource::Peer(id), pkt, c2c),
        };
        match decision {
            RouteDecision::Tun => to_tap(ttx, pkt, vlan, vid, &mut self.route_drops),
            RouteDecision::Peer(to) => self.send_to_peer(to, pkt, now, out),
            RouteDecision::Broadcast { except, also_tun } => {
                if also_tun {
                    to_tap(ttx, pkt, vlan, vid, &mut self.route_drops);
                }
                self.broadcast(except, vid, pkt, now, out);
            }
            RouteDecision::Drop(r) => {
                self.route_drops.count(r);
            }
        }
    }

    /// An IP packet read from tun (an Ethernet frame from tap).
    pub fn tun_packet(&mut self, pkt: &mut [u8], now: Instant, out: &mut dyn LinkOut) {
        let c2c = self.cfg.client_to_client;
        let (pkt, vid) = match &self.cfg.vlan {
            Some(v) => match vlan::decapsulate(pkt, v) {
                Some((vid, off)) if off <= pkt.len() => (&mut pkt[off..], vid),
                _ => {
                    self.route_drops.count(RouteDrop::Vlan);
                    return;
                }
            },
            None => (pkt, 0),
        };
        // After the tag is gone, as 2.6 (mssfix looks at untagged frames).
        host_tun::clamp(pkt, self.mss);
        let decision = match &mut self.macs {
            Some(macs) => macs.route(PacketSource::Tun, vid, pkt, c2c),
            None => self.peers.route(PacketSource::Tun, pkt, c2c),
        };
        match decision {
            RouteDecision::Peer(to) => self.send_to_peer(to, pkt, now, out),
            RouteDecision::Broadcast { except, .. } => self.broadcast(except, vid, pkt, now, out),
            RouteDecision::Tun => {}
            RouteDecision::Drop(r) => {
                self.route_drops.count(r);
            }
        }
    }

    /// A broadcast to every client but `except`, and with `vlan-tagging`
    /// only to those of VLAN `vid` (2.6 `multi_bcast`). The list of
    /// receivers reuses one buffer: no allocation per packet.
    fn broadcast(
        &mut self,
        except: Option<PeerId>,
        vid: u16,
        pkt: &[u8],
        now: Instant,
        out: &mut dyn LinkOut,
    ) {
        let global = self.cfg.vlan.map_or(0, |v| v.pvid);
        let mut ids = std::mem::take(&mut self.bcast);
        ids.clear();
        ids.extend(
            self.peers
                .iter()
                .filter(|p| {
                    Some(p.id()) != except
                        && (vid == 0 || p.payload.vlan_pvid.unwrap_or(global) == vid)
                })
                .map(|p| p.id()),
        );
        for &to in &ids {
            self.send_to_peer(to, pkt, now, out);
        }
        self.bcast = ids;
    }

    fn send_to_peer(&mut self, to: PeerId, pkt: &[u8], now: Instant, out: &mut dyn LinkOut) {
        if let Some((src, reply)) = &mut self.block_ipv6
            && icmp6::is_ipv6(pkt)
        {
            // 2.6 (multi_get_queue with PIPV6_IMCP_NOHOST_SERVER): the
            // client gets the ICMPv6 answer instead of the packet.
            let mtu = self.cfg.tun_mtu as usize;
            if icmp6::no_route_reply(pkt, *src, mtu, reply) {
                let reply = std::mem::take(reply);
                self.seal_to_peer(to, &reply, now, out);
                if let Some((_, r)) = &mut self.block_ipv6 {
                    *r = reply;
                }
            }
            return;
        }
        self.seal_to_peer(to, pkt, now, out);
    }

    fn seal_to_peer(&mut self, to: PeerId, pkt: &[u8], now: Instant, out: &mut dyn LinkOut) {
        let Some(p) = self.peers.get_mut(to) else {
            return;
        };
        if !p.payload.connected {
            return;
        }
        let addr = p.transport();
        let src = p.payload.local_ip;
        let c = &mut p.payload;
        let Some(max) = c.session.data_channel().seal_buffer_len(pkt.len()) else {
            return;
        };
        let mut sent = 0usize;
        let fast = out.send_data(addr, src, max, &mut |b| {
            let n = c.session.encrypt(now, pkt, b).map(<[u8]>::len).unwrap_or(0);
            sent = n;
            n
        });
        c.bytes_out += sent as u64;
        if fast && sent > 0 {
            c.fast.tx_packets += 1;
            c.fast.tx_bytes += sent as u64;
        }
        // `fragment`: the rest of the pieces, right behind the first.
        while c.session.data_channel().has_pending_fragment() {
            let mut sent = 0usize;
            let fast = out.send_data(addr, src, max, &mut |b| {
                let n = match c.session.encrypt_pending(now, b) {
                    Some(Ok(p)) => p.len(),
                    _ => 0,
                };
                sent = n;
                n
            });
            if sent == 0 {
                break;
            }
            c.bytes_out += sent as u64;
            if fast {
                c.fast.tx_packets += 1;
                c.fast.tx_bytes += sent as u64;
            }
        }
        // Sealing may have moved its timers (keepalive, a renegotiation
        // due by packet count).
        self.reschedule(to);
    }
}

/// Writes a client's frame to tap as the VLAN port needs it (2.6
/// `vlan_process_outgoing_tun`); without `vlan-tagging` as it is.
fn to_tap(
    ttx: &mut TunTxBatch,
    pkt: &[u8],
    vlan_cfg: Option<crate::config::Vlan>,
    vid: u16,
    drops: &mut RouteDropCounters,
) {
    match vlan_cfg.map(|v| vlan::to_tap(&v, vid)) {
        None | Some(vlan::ToTap::AsIs) => ttx.push(pkt),
        Some(vlan::ToTap::Tag(vid)) => {
            ttx.push_with(pkt.len() + 4, |b| vlan::encapsulate(pkt, vid, b));
        }
        Some(vlan::ToTap::Drop) => drops.count(RouteDrop::Vlan),
    }
}
