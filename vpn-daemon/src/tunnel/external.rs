//! The external multiplexer (OpenVPN's `mudp.c` and the link half of
//! `multi.c`): where a packet from the network goes. [`dispatch`] is
//! sans-IO in the manner of quinn-proto's `Endpoint`: it looks at the
//! source address and the first bytes and says who owns the packet (a
//! session, a floating client, or the stateless front door), and the
//! driver does what it says. [`FrontDoor`] answers first contacts with
//! the cookie exchange before any state exists.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::io::internal::tun::TunTxBatch;
use crate::proto::cookie::{FirstContact, StatelessResponder};
use crate::proto::session::{DataOutcome, Session};
use crate::proto::wire::PeerId as WirePeerId;
use crate::proto::wire::data::DataPacket;
use crate::proto::wire::opcode::{Opcode, split_first_byte};
use crate::server::peers::{PeerId, PeerTable};
use crate::tunnel::multi::{Client, Multi};
use crate::tunnel::output::LinkOut;

/// Who owns a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// The session of this client (its known address).
    Session(PeerId),
    /// A data packet from a new address naming this client by peer-id:
    /// it floats there if the packet decrypts.
    Float(PeerId),
    /// The stateless front door: a first contact, or a client restarting
    /// from the address of `restart` (its reset goes through the cookie
    /// like a new client's, and the old instance goes once it is answered).
    FrontDoor {
        /// The instance at that address, if any.
        restart: Option<PeerId>,
    },
    /// A data packet for no one we know.
    Drop,
}

/// Where the datagram `data` from `from` goes.
pub fn dispatch<T>(peers: &PeerTable<T>, from: SocketAddr, data: &[u8]) -> Dispatch {
    let op = data
        .first()
        .and_then(|b| split_first_byte(*b).ok())
        .map(|(o, _)| o);
    // A client reset from a known address is a restarted client: it goes
    // through the cookie like a new one.
    let reset = op.is_some_and(Opcode::is_client_reset);
    let known = peers.by_transport(from);
    if let Some(id) = known.filter(|_| !reset) {
        return Dispatch::Session(id);
    }
    if op == Some(Opcode::DataV2) {
        // Float: the peer-id names the instance, the decryption proves it
        // is that client.
        let named = DataPacket::new_checked(data)
            .ok()
            .and_then(|p| p.peer_id())
            .map(WirePeerId::value);
        return match named {
            Some(id) if peers.get(id).is_some() => Dispatch::Float(id),
            _ => Dispatch::Drop,
        };
    }
    Dispatch::FrontDoor {
        restart: known.filter(|_| reset),
    }
}

/// What the front door says to a first contact.
pub enum FrontAction<'a> {
    /// Send this reply (the cookie) back; no state was made.
    Reply(&'a [u8]),
    /// The contact proved its address: a new session.
    Accept(Box<Session>),
    /// Ignore it (counted).
    Drop,
}

/// The stateless cookie front door and its counters.
pub struct FrontDoor {
    responder: StatelessResponder,
    reply: Vec<u8>,
    /// First contacts dropped (bad or unauthenticated resets, strangers'
    /// data packets), for SIGUSR2's statistics.
    pub drops: u64,
}

impl FrontDoor {
    /// A front door answering with `responder`.
    pub fn new(responder: StatelessResponder) -> Self {
        Self {
            responder,
            reply: vec![0u8; 2048],
            drops: 0,
        }
    }

    /// A datagram [`dispatch`] sent to the front door.
    pub fn first_contact(
        &mut self,
        now: Instant,
        unix: u64,
        from: SocketAddr,
        data: &[u8],
    ) -> FrontAction<'_> {
        match self
            .responder
            .handle_initial(now, unix, from, data, &mut self.reply)
        {
            FirstContact::Reply(r) => FrontAction::Reply(r),
            FirstContact::Accept(s) => FrontAction::Accept(s),
            FirstContact::Drop(r) => {
                self.drops += 1;
                tracing::trace!(reason = ?r, %from, "first contact dropped");
                FrontAction::Drop
            }
        }
    }
}

impl Multi {
    /// A packet from `from` for the existing client `id` (control or data).
    #[allow(clippy::too_many_arguments)]
    pub fn link_packet(
        &mut self,
        id: PeerId,
        float_from: Option<SocketAddr>,
        data: &[u8],
        local_ip: Option<IpAddr>,
        now: Instant,
        unix: u64,
        out: &mut dyn LinkOut,
        ttx: &mut TunTxBatch,
    ) {
        let Some(&first) = data.first() else { return };
        let Ok((op, _)) = split_first_byte(first) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if local_ip.is_some() {
            peer.payload.local_ip = local_ip;
        }
        if !op.is_data() {
            peer.payload.session.handle_packet(now, unix, data);
            return;
        }
        peer.payload.bytes_in += data.len() as u64;
        let scratch = &mut self.scratch;
        let base = scratch.as_ptr() as usize;
        let n = match peer.payload.session.decrypt(now, data, scratch) {
            Ok(DataOutcome::Tun(p)) => {
                let off = p.as_ptr() as usize - base;
                let n = p.len();
                if off != 0 {
                    scratch.copy_within(off..off + n, 0);
                }
                n
            }
            Ok(_) => 0,
            Err(_) => return,
        };
        if let Some(to) = float_from {
            self.float(id, to);
        }
        if n == 0 {
            return;
        }
        self.route_decrypted(id, n, now, out, ttx);
    }

    /// `float`: an authenticated packet of `id` came from `to`.
    pub(super) fn float(&mut self, id: PeerId, to: SocketAddr) {
        if !self.cfg.float && self.cfg.proto.transport != crate::config::Transport::Udp {
            return;
        }
        let same = |a: &crate::server::peers::Peer<Client>,
                    b: &crate::server::peers::Peer<Client>| {
            a.common_name().is_some() && a.common_name() == b.common_name()
        };
        match self.peers.float(id, to, same) {
            Ok(crate::server::peers::FloatOutcome::Moved { from }) => {
                tracing::info!(peer_id = id, %from, %to, "client floated");
                self.steer_connected(id);
            }
            Ok(_) => {}
            Err(crate::server::peers::FloatError::TakenBySameClient { stale, .. }) => {
                self.remove(stale);
                if self.peers.float(id, to, same).is_ok() {
                    self.steer_connected(id);
                }
            }
            Err(e) => tracing::debug!(error = %e, "float refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESET: u8 = 7 << 3; // P_CONTROL_HARD_RESET_CLIENT_V2, key 0
    const CONTROL: u8 = 4 << 3; // P_CONTROL_V1
    const DATA_V2: u8 = 9 << 3; // P_DATA_V2

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn each_datagram_goes_to_its_owner() {
        let mut peers: PeerTable<()> = PeerTable::new(10);
        let known = peers.insert(addr(1000), ()).expect("slot");
        let pid = u8::try_from(known).expect("small id");
        // A known address: its session, control or data alike.
        assert_eq!(
            dispatch(&peers, addr(1000), &[CONTROL, 0, 0]),
            Dispatch::Session(known)
        );
        assert_eq!(
            dispatch(&peers, addr(1000), &[DATA_V2, 0, 0, pid, 1]),
            Dispatch::Session(known)
        );
        // A reset from a known address is a restart: front door, naming
        // the instance to replace once the cookie is answered.
        assert_eq!(
            dispatch(&peers, addr(1000), &[RESET, 0]),
            Dispatch::FrontDoor {
                restart: Some(known)
            }
        );
        // A new address: data naming a client floats, data naming no one
        // drops, anything else is a first contact.
        assert_eq!(
            dispatch(&peers, addr(2000), &[DATA_V2, 0, 0, pid, 1]),
            Dispatch::Float(known)
        );
        assert_eq!(
            dispatch(&peers, addr(2000), &[DATA_V2, 0, 0, 9, 1]),
            Dispatch::Drop
        );
        assert_eq!(dispatch(&peers, addr(2000), &[DATA_V2, 0]), Dispatch::Drop);
        assert_eq!(
            dispatch(&peers, addr(2000), &[RESET, 0]),
            Dispatch::FrontDoor { restart: None }
        );
        assert_eq!(
            dispatch(&peers, addr(2000), &[]),
            Dispatch::FrontDoor { restart: None }
        );
    }
}
