//! The running fast path: the classifier attached to the underlay
//! interface, one AF_XDP socket per receive queue, and the link-layer
//! paths to peers learned from their frames. The UDP drivers hand it the
//! peers whose data keys are established and send through it when it
//! knows how to reach a peer; everything else stays on the UDP socket.
//!
//! Starting never fails the daemon: [`FastPath::start`] returns `None`
//! (with a log line saying why) and the caller runs the plain socket path.

use std::net::{IpAddr, SocketAddr};

use crate::config::XdpMode;
use crate::mgmt::status::XdpCounters;

use super::loader::AttachMode;

/// Whose side of the tunnel this daemon is (decides `xdp-drop-unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Many peers, peer-ids assigned by us.
    Server,
    /// One peer (the server); its packets carry our pushed peer-id.
    Client,
}

/// What [`FastPath::start`] needs from the configuration.
#[derive(Debug, Clone)]
pub struct FastPathConfig {
    /// `xdp auto|native|generic|off`.
    pub mode: XdpMode,
    /// `xdp-interface`: where to attach, when set.
    pub interface: Option<String>,
    /// `local`: the interface holding it is the next choice.
    pub local: Option<IpAddr>,
    /// The peer (client mode: the remote): the interface of the route to it.
    pub peer_hint: Option<IpAddr>,
    /// The bound UDP port whose P_DATA_V2 packets are steered.
    pub port: u16,
    /// Drop P_DATA_V2 of unknown peer-ids in XDP (server with
    /// `xdp-drop-unknown yes`; never in client mode).
    pub drop_unknown: bool,
    /// Client or server.
    pub role: Role,
    /// The caller's UDP socket is IPv6 (dual-stack): report IPv4 peers as
    /// IPv4-mapped IPv6 addresses, as that socket does.
    pub mapped_v4: bool,
}

/// One datagram taken off an AF_XDP receive ring.
#[derive(Debug)]
pub struct RxDatagram<'a> {
    /// The peer's transport address (source IP and port of the frame).
    pub from: SocketAddr,
    /// Our address and port it was sent to.
    pub local: SocketAddr,
    /// The UDP payload (an OpenVPN packet), writable in place.
    pub payload: &'a mut [u8],
}

/// The attached classifier and its AF_XDP sockets.
pub struct FastPath {
    mode: AttachMode,
    interface: String,
}

impl FastPath {
    /// Attaches and binds, or says (in the log) why not and returns `None`.
    pub fn start(cfg: &FastPathConfig) -> Option<Self> {
        if cfg.mode == XdpMode::Off {
            tracing::info!("XDP off: plain UDP sockets");
            return None;
        }
        tracing::info!("XDP fast path not available in this build: plain UDP sockets");
        None
    }

    /// Native or generic.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// The underlay interface it is attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Resolves when any receive ring has frames (cancel-safe).
    pub async fn readable(&self) {
        std::future::pending::<()>().await;
    }

    /// Takes up to `max` frames off the receive rings, hands each UDP
    /// datagram to `f` and learns the peer's link-layer path from the
    /// frame. Returns how many frames were taken (malformed ones counted
    /// as dropped, never handed out).
    pub fn recv(&mut self, max: usize, f: &mut dyn FnMut(RxDatagram<'_>)) -> usize {
        let _ = (max, f);
        0
    }

    /// Sends one datagram to `to` when its link-layer path is known: `fill`
    /// writes the UDP payload (at most `max` bytes) straight into a frame
    /// behind the headers built here. `None` when the caller must use the
    /// socket (path unknown, ring full, frame too small); `fill` has then
    /// not been called.
    pub fn send_with(
        &mut self,
        to: SocketAddr,
        max: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> Option<usize> {
        let _ = (to, max, fill);
        None
    }

    /// Kicks the transmit rings and reaps completions; call after a batch.
    pub fn flush(&mut self) {}

    /// Steers `peer_id`'s data packets from `addr` (insert, or update on float).
    pub fn set_peer(&mut self, peer_id: u32, addr: SocketAddr) {
        let _ = (peer_id, addr);
    }

    /// Stops steering `peer_id` (disconnect, timeout, shutdown).
    pub fn remove_peer(&mut self, peer_id: u32) {
        let _ = peer_id;
    }

    /// The classifier's counters summed over CPUs, for the status output.
    pub fn counters(&self) -> XdpCounters {
        XdpCounters::default()
    }

    /// UMEM frames currently out of the kernel's hands (being processed or
    /// waiting for completion): flat over a long transfer.
    pub fn frames_in_flight(&self) -> usize {
        0
    }
}
