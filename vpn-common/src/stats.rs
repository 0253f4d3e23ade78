//! Slots of the per-CPU `STATS` array: one counter per verdict and reason.
//!
//! The user side sums each slot over all CPUs. Names are stable: they appear
//! in the status output.

/// Every frame the program saw.
pub const RX_TOTAL: u32 = 0;
/// Passed: not IPv4/IPv6 (ARP, LLDP, stacked VLANs, ...).
pub const PASS_NOT_IP: u32 = 1;
/// Passed: IP but not UDP (or IPv6 with an extension header first).
pub const PASS_NOT_UDP: u32 = 2;
/// Passed: UDP to a port that is not ours.
pub const PASS_OTHER_PORT: u32 = 3;
/// Passed: IPv4 fragment; the kernel reassembles it.
pub const PASS_IP_FRAGMENT: u32 = 4;
/// Passed: frame ended inside a header we needed.
pub const PASS_TRUNCATED: u32 = 5;
/// Passed: OpenVPN control packet (or P_DATA_V1) for the socket path.
pub const PASS_CONTROL: u32 = 6;
/// Passed: P_DATA_V2 with a peer-id not in `PEERS`, dropping disabled.
pub const PASS_UNKNOWN_PEER: u32 = 7;
/// Dropped: P_DATA_V2 with a peer-id not in `PEERS`.
pub const DROP_UNKNOWN_PEER: u32 = 8;
/// Passed: known peer-id from another address or port (float is decided by user space).
pub const PASS_WRONG_SOURCE: u32 = 9;
/// Passed: known peer but no AF_XDP socket on this receive queue.
pub const PASS_NO_XSK: u32 = 10;
/// Redirected to the AF_XDP socket of the receiving queue.
pub const REDIRECT: u32 = 11;
/// Bytes (whole frames) redirected.
pub const REDIRECT_BYTES: u32 = 12;
/// Number of slots in `STATS`.
pub const STAT_SLOTS: u32 = 16;

/// Human-readable names of the used slots, index = slot.
pub const STAT_NAMES: [&str; 13] = [
    "rx_total",
    "pass_not_ip",
    "pass_not_udp",
    "pass_other_port",
    "pass_ip_fragment",
    "pass_truncated",
    "pass_control",
    "pass_unknown_peer",
    "drop_unknown_peer",
    "pass_wrong_source",
    "pass_no_xsk",
    "redirect",
    "redirect_bytes",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_every_used_slot_and_fit() {
        assert_eq!(STAT_NAMES.len() as u32, REDIRECT_BYTES + 1);
        assert!((STAT_NAMES.len() as u32) <= STAT_SLOTS);
        assert_eq!(STAT_NAMES[DROP_UNKNOWN_PEER as usize], "drop_unknown_peer");
        assert_eq!(STAT_NAMES[REDIRECT as usize], "redirect");
    }

    #[test]
    fn reason_slots_are_the_contiguous_range_after_rx_total() {
        // Tests and status output sum PASS_NOT_IP..=REDIRECT as "one reason
        // per frame"; a new reason must extend that range, not leave a gap.
        let reasons = [
            PASS_NOT_IP,
            PASS_NOT_UDP,
            PASS_OTHER_PORT,
            PASS_IP_FRAGMENT,
            PASS_TRUNCATED,
            PASS_CONTROL,
            PASS_UNKNOWN_PEER,
            DROP_UNKNOWN_PEER,
            PASS_WRONG_SOURCE,
            PASS_NO_XSK,
            REDIRECT,
        ];
        for (i, slot) in reasons.iter().enumerate() {
            assert_eq!(*slot, RX_TOTAL + 1 + i as u32);
        }
    }

    // Checked at compile time: the byte counter is not a reason and fits.
    const _: () = assert!(REDIRECT_BYTES > REDIRECT && REDIRECT_BYTES < STAT_SLOTS);
}
