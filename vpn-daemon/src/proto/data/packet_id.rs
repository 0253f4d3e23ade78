//! Send-side data-channel packet id (section 7.1): starts at 1, never wraps.
//!
//! From [`RENEGOTIATE_AT`] on every id comes with a "renegotiate now" flag,
//! as OpenVPN's `packet_id_close_to_wrapping`; the key stays usable until
//! the 32-bit space is really used up, after which sealing fails with
//! `CryptoError::PacketIdExhausted` instead of reusing a nonce.

/// From this id on, a renegotiation must be started.
pub const RENEGOTIATE_AT: u32 = 0xFF00_0000;

/// One id handed out by [`PacketIdSend::next_id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendId {
    /// The id to put on the packet.
    pub id: u32,
    /// The counter is close to its end: start a renegotiation now.
    pub renegotiate: bool,
}

/// Per-key, per-direction send counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketIdSend {
    last: u32,
}

impl PacketIdSend {
    /// Counter whose first id is 1.
    pub const fn new() -> Self {
        Self { last: 0 }
    }

    /// Counter whose next id is `last + 1` (tests and benchmarks).
    pub const fn starting_after(last: u32) -> Self {
        Self { last }
    }

    /// Next id, or `None` once `u32::MAX` was used.
    pub fn next_id(&mut self) -> Option<SendId> {
        self.last = self.last.checked_add(1)?;
        Some(SendId {
            id: self.last,
            renegotiate: self.last >= RENEGOTIATE_AT,
        })
    }

    /// The last id handed out (0 if none).
    pub const fn last(&self) -> u32 {
        self.last
    }

    /// True once ids reached the renegotiation threshold.
    pub const fn needs_renegotiation(&self) -> bool {
        self.last >= RENEGOTIATE_AT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_one() {
        let mut p = PacketIdSend::new();
        assert_eq!(
            p.next_id(),
            Some(SendId {
                id: 1,
                renegotiate: false
            })
        );
        assert_eq!(p.next_id().map(|s| s.id), Some(2));
    }

    #[test]
    fn asks_for_renegotiation_near_the_end_and_never_wraps() {
        let mut p = PacketIdSend::starting_after(RENEGOTIATE_AT - 2);
        assert!(!p.next_id().unwrap().renegotiate);
        assert!(p.next_id().unwrap().renegotiate);
        assert!(p.needs_renegotiation());
        let mut p = PacketIdSend::starting_after(u32::MAX - 1);
        assert_eq!(p.next_id().map(|s| s.id), Some(u32::MAX));
        assert_eq!(p.next_id(), None);
        assert_eq!(p.next_id(), None);
    }
}
