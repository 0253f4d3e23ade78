//! Keeps the classifier's `PEERS` map in step with the sessions: insert
//! when a peer's data keys are established, update on float (new source
//! address) and renegotiation, remove on disconnect.
//!
//! The map holds where a peer's packets must come from, never key material.

use std::net::{IpAddr, SocketAddr};

use vpn_common::{
    maps::{PeerEntry, PeerKey},
    opcode::PEER_ID_UNDEF,
};

use super::loader::{Classifier, XdpError};

/// Errors of peer map updates.
#[derive(Debug, thiserror::Error)]
pub enum PeerMapError {
    /// Peer-ids are 24 bits, and `0xffffff` means "none assigned".
    #[error("peer-id {0:#x} cannot be steered (24 bits, 0xffffff reserved)")]
    InvalidPeerId(u32),
    /// The map update itself failed.
    #[error(transparent)]
    Map(#[from] XdpError),
}

/// The entry the XDP program compares a packet's source against.
///
/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
/// peer) becomes an IPv4 entry: on the wire, where XDP looks, the packet
/// is IPv4.
pub fn entry_for(source: SocketAddr) -> PeerEntry {
    let ip = match source.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) => PeerEntry::v4(a.octets(), source.port()),
        IpAddr::V6(a) => PeerEntry::v6(a.octets(), source.port()),
    }
}

fn key(peer_id: u32) -> Result<PeerKey, PeerMapError> {
    if peer_id >= PEER_ID_UNDEF {
        return Err(PeerMapError::InvalidPeerId(peer_id));
    }
    Ok(PeerKey { peer_id })
}

impl Classifier {
    /// Steers `peer_id`'s data packets from `source`; also the update on
    /// float (the entry is replaced).
    pub fn insert_peer(&mut self, peer_id: u32, source: SocketAddr) -> Result<(), PeerMapError> {
        let key = key(peer_id)?;
        Ok(self.set_peer(key, entry_for(source))?)
    }

    /// Stops steering `peer_id` (disconnect); absent peers are fine.
    pub fn remove_peer(&mut self, peer_id: u32) -> Result<(), PeerMapError> {
        let key = key(peer_id)?;
        Ok(self.delete_peer(key)?)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use vpn_common::maps::{FAMILY_V4, FAMILY_V6};

    use super::*;

    #[test]
    fn ipv4_source_becomes_v4_entry() {
        let e = entry_for(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 1194)));
        assert_eq!(e, PeerEntry::v4([192, 0, 2, 7], 1194));
    }

    #[test]
    fn ipv4_mapped_source_becomes_v4_entry() {
        let mapped = Ipv4Addr::new(198, 51, 100, 1).to_ipv6_mapped();
        let e = entry_for(SocketAddr::from((mapped, 40000)));
        assert_eq!(e.family, FAMILY_V4);
        assert_eq!(e, PeerEntry::v4([198, 51, 100, 1], 40000));
    }

    #[test]
    fn ipv6_source_keeps_all_bytes() {
        let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);
        let e = entry_for(SocketAddr::from((a, 5000)));
        assert_eq!(e.family, FAMILY_V6);
        assert_eq!(e.addr, a.octets());
        assert_eq!(e.port, 5000u16.to_be());
    }

    #[test]
    fn rejects_undefined_and_oversized_peer_ids() {
        assert!(matches!(
            key(PEER_ID_UNDEF),
            Err(PeerMapError::InvalidPeerId(_))
        ));
        assert!(matches!(
            key(0x0100_0000),
            Err(PeerMapError::InvalidPeerId(_))
        ));
        assert_eq!(key(0xfffffe).ok(), Some(PeerKey { peer_id: 0xfffffe }));
    }
}
