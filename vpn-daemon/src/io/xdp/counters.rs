//! The fast path's global counters as one plain value, filled by
//! [`super::fastpath`] and rendered by `mgmt::status` (which only reads it,
//! so io does not depend on mgmt).

/// Global XDP counters (extra GLOBAL_STATS rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XdpCounters {
    /// Packets redirected to AF_XDP sockets.
    pub redirected: u64,
    /// Packets passed to the kernel stack.
    pub passed: u64,
    /// The passed packets by reason (`control`, `other_port`, ...), each an
    /// `XDP passed <reason>` row after the total.
    pub passed_by_reason: Vec<(String, u64)>,
    /// Drops by reason (reason names must not contain the separators).
    pub dropped: Vec<(String, u64)>,
    /// Fast-path faults that are not drops (failed peer map updates, tx
    /// kicks), each an `XDP errors <what>` row.
    pub errors: Vec<(String, u64)>,
}
