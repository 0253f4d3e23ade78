//! The few rtnetlink questions the fast path asks the kernel, once at
//! start or once per peer (never per packet): which interface a route
//! leaves by, which interfaces are up, the interface's MAC and attached XDP
//! program, a next hop's MAC from the neighbour table, and detaching a
//! stale XDP program.
//!
//! Every call opens its own `NETLINK_ROUTE` socket in the calling thread's
//! network namespace, with a receive timeout so a silent kernel cannot
//! block the caller for long.

use std::{io, net::IpAddr, os::fd::AsRawFd, time::Duration};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{
        InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, LinkXdp,
        XdpAttached,
    },
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
    route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage},
};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

/// How long one netlink answer may take before the question is abandoned.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Dumps of a huge routing table end here rather than keep the caller waiting.
const MAX_REPLIES: usize = 100_000;

/// Errors of the rtnetlink exchanges.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening, sending or receiving failed (or timed out).
    #[error("netlink {0}")]
    Io(&'static str, #[source] io::Error),
    /// The kernel answered with an error code.
    #[error("netlink request refused")]
    Refused(#[source] io::Error),
    /// An answer that does not parse.
    #[error("malformed netlink answer: {0}")]
    Decode(String),
}

/// Sends `msg` and collects the answers (all parts of a dump, or the one
/// reply or acknowledgement of a request).
fn request(msg: RouteNetlinkMessage, flags: u16) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| NetlinkError::Io("socket", e))?;
    socket
        .bind_auto()
        .map_err(|e| NetlinkError::Io("bind", e))?;
    set_timeout(&socket)?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket
        .send(&buf, 0)
        .map_err(|e| NetlinkError::Io("send", e))?;

    let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
    let mut out = Vec::new();
    let mut rx: Vec<u8> = Vec::with_capacity(1 << 16);
    loop {
        rx.clear();
        let n = socket
            .recv(&mut rx, 0)
            .map_err(|e| NetlinkError::Io("recv", e))?;
        let mut at = 0usize;
        while at < n {
            let rest = rx.get(at..n).unwrap_or_default();
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                .map_err(|e| NetlinkError::Decode(e.to_string()))?;
            let len = msg.header.length as usize;
            if len == 0 {
                return Err(NetlinkError::Decode("zero-length message".into()));
            }
            // Messages are 4-byte aligned inside one datagram.
            at += (len + 3) & !3;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        None => Ok(out),
                        Some(code) => Err(NetlinkError::Refused(io::Error::from_raw_os_error(
                            -code.get(),
                        ))),
                    };
                }
                NetlinkPayload::InnerMessage(m) => {
                    out.push(m);
                    if !dump && flags & NLM_F_ACK == 0 {
                        return Ok(out);
                    }
                    if out.len() > MAX_REPLIES {
                        return Err(NetlinkError::Decode("dump too long".into()));
                    }
                }
                _ => {}
            }
        }
    }
}

fn set_timeout(socket: &Socket) -> Result<(), NetlinkError> {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: TIMEOUT.as_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid timeval of the size passed, on an open socket.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(NetlinkError::Io("SO_RCVTIMEO", io::Error::last_os_error()));
    }
    Ok(())
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Where the kernel would send a packet to some address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Output interface index.
    pub oif: u32,
    /// The gateway, when the destination is not on-link.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would pick.
    pub prefsrc: Option<IpAddr>,
}

fn route_info(m: &RouteMessage) -> Option<RouteInfo> {
    let mut oif = None;
    let mut gateway = None;
    let mut prefsrc = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(g) => gateway = route_ip(g),
            RouteAttribute::PrefSource(s) => prefsrc = route_ip(s),
            _ => {}
        }
    }
    Some(RouteInfo {
        oif: oif?,
        gateway,
        prefsrc,
    })
}

/// `ip route get DST`: the route the kernel picks for `dst`.
pub fn route_get(dst: IpAddr) -> Result<Option<RouteInfo>, NetlinkError> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(dst);
    msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(dst)));
    let replies = request(RouteNetlinkMessage::GetRoute(msg), 0)?;
    Ok(replies.iter().find_map(|r| match r {
        RouteNetlinkMessage::NewRoute(m) => route_info(m),
        _ => None,
    }))
}

/// The output interface of the main table's default route (IPv4 first,
/// then IPv6).
pub fn default_route_oif() -> Result<Option<u32>, NetlinkError> {
    for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = fam;
        let replies = request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
        let found = replies.iter().find_map(|r| match r {
            RouteNetlinkMessage::NewRoute(m)
                if m.header.destination_prefix_length == 0
                    && m.header.table == RouteHeader::RT_TABLE_MAIN =>
            {
                route_info(m).map(|i| i.oif)
            }
            _ => None,
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// One interface as the link dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSummary {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Administratively up.
    pub up: bool,
    /// The loopback device.
    pub loopback: bool,
    /// An Ethernet device (not tun, not a tap: those are VPN interfaces,
    /// never the underlay).
    pub ethernet: bool,
}

/// Every interface of the namespace.
pub fn links() -> Result<Vec<LinkSummary>, NetlinkError> {
    let replies = request(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(LinkSummary {
                index: m.header.index,
                name: m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })?,
                up: m.header.flags.contains(LinkFlags::Up),
                loopback: m.header.flags.contains(LinkFlags::Loopback),
                ethernet: m.header.link_layer_type == LinkLayerType::Ether
                    && !m.attributes.iter().any(|a| {
                        matches!(a, LinkAttribute::LinkInfo(infos)
                            if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Tun))))
                    }),
            }),
            _ => None,
        })
        .collect())
}

fn get_link(ifindex: u32) -> Result<Option<LinkMessage>, NetlinkError> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let replies = request(RouteNetlinkMessage::GetLink(msg), 0)?;
    Ok(replies.into_iter().find_map(|r| match r {
        RouteNetlinkMessage::NewLink(m) => Some(m),
        _ => None,
    }))
}

/// The interface's hardware address, when it has an Ethernet one.
pub fn link_mac(ifindex: u32) -> Result<Option<[u8; 6]>, NetlinkError> {
    Ok(get_link(ifindex)?.and_then(|m| {
        m.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => None,
        })
    }))
}

/// XDP attach mode flags of `IFLA_XDP_FLAGS` (linux/if_link.h).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// Driver (native) mode.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// Offloaded to the NIC.
pub const XDP_FLAGS_HW_MODE: u32 = 1 << 3;

/// An XDP program attached to an interface: its id and the mode flag to
/// detach it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachedXdp {
    /// Kernel program id.
    pub prog_id: u32,
    /// `XDP_FLAGS_*_MODE` of the attachment.
    pub mode_flags: u32,
}

/// The XDP programs attached to `ifindex` (none, one, or one per mode).
pub fn attached_xdp(ifindex: u32) -> Result<Vec<AttachedXdp>, NetlinkError> {
    let Some(m) = get_link(ifindex)? else {
        return Ok(Vec::new());
    };
    let Some(xdp) = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(x) => Some(x),
        _ => None,
    }) else {
        return Ok(Vec::new());
    };
    let mut attached = XdpAttached::None;
    let mut single = None;
    let mut per_mode = Vec::new();
    for a in xdp {
        match a {
            LinkXdp::Attached(x) => attached = *x,
            LinkXdp::ProgId(id) => single = Some(*id),
            LinkXdp::DrvProgId(id) => per_mode.push(AttachedXdp {
                prog_id: *id,
                mode_flags: XDP_FLAGS_DRV_MODE,
            }),
            LinkXdp::SkbProgId(id) => per_mode.push(AttachedXdp {
                prog_id: *id,
                mode_flags: XDP_FLAGS_SKB_MODE,
            }),
            LinkXdp::HwProgId(id) => per_mode.push(AttachedXdp {
                prog_id: *id,
                mode_flags: XDP_FLAGS_HW_MODE,
            }),
            _ => {}
        }
    }
    let mode_flags = match attached {
        XdpAttached::None => return Ok(Vec::new()),
        XdpAttached::Driver => XDP_FLAGS_DRV_MODE,
        XdpAttached::SocketBuffer => XDP_FLAGS_SKB_MODE,
        XdpAttached::Hardware => XDP_FLAGS_HW_MODE,
        _ => return Ok(per_mode),
    };
    Ok(single
        .map(|prog_id| AttachedXdp {
            prog_id,
            mode_flags,
        })
        .into_iter()
        .collect())
}

/// Detaches a netlink-attached XDP program (`ip link set dev X xdp off`).
/// A program attached through a bpf_link refuses this with `EBUSY`.
pub fn detach_xdp(ifindex: u32, mode_flags: u32) -> Result<(), NetlinkError> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(vec![
        LinkXdp::Fd(-1),
        LinkXdp::Flags(mode_flags),
    ]));
    request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK).map(|_| ())
}

/// The link-layer address of neighbour `ip` on `ifindex` from the kernel's
/// neighbour table, when it is resolved (not incomplete or failed).
pub fn neighbour_mac(ifindex: u32, ip: IpAddr) -> Result<Option<[u8; 6]>, NetlinkError> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family(ip);
    let replies = request(RouteNetlinkMessage::GetNeighbour(msg), NLM_F_DUMP)?;
    Ok(replies.iter().find_map(|r| {
        let RouteNetlinkMessage::NewNeighbour(m) = r else {
            return None;
        };
        if m.header.ifindex != ifindex
            || matches!(
                m.header.state,
                NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
            )
        {
            return None;
        }
        let mut dst = None;
        let mut mac = None;
        for a in &m.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    dst = Some(IpAddr::V4(*v4))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    dst = Some(IpAddr::V6(*v6))
                }
                NeighbourAttribute::LinkLayerAddress(b) => {
                    mac = <[u8; 6]>::try_from(b.as_slice()).ok()
                }
                _ => {}
            }
        }
        (dst == Some(ip)).then_some(mac).flatten()
    }))
}

#[cfg(test)]
mod tests {
    //! Read-only questions about the test process's own namespace: every
    //! namespace has `lo`, and routes to its addresses go through it.

    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn lo_index() -> u32 {
        let idx = super::super::iface::index_of("lo");
        idx.expect("every namespace has lo")
    }

    #[test]
    fn link_dump_lists_lo_as_loopback_not_ethernet() {
        let links = links().expect("link dump");
        let lo = links
            .iter()
            .find(|l| l.name == "lo")
            .expect("lo in the dump");
        assert_eq!(lo.index, lo_index());
        assert!(lo.loopback);
        assert!(!lo.ethernet);
    }

    #[test]
    fn route_to_a_local_address_leaves_by_lo() {
        let r = route_get(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .expect("route lookup")
            .expect("a route to 127.0.0.1");
        assert_eq!(r.oif, lo_index());
        assert_eq!(r.gateway, None);
    }

    #[test]
    fn lo_has_no_ethernet_address_and_answers_xdp_queries() {
        // lo's address is six zero bytes: it parses as a MAC.
        assert_eq!(link_mac(lo_index()).expect("link query"), Some([0; 6]));
        // Whatever is attached, the query itself works.
        attached_xdp(lo_index()).expect("xdp query");
    }

    #[test]
    fn unknown_interface_is_refused() {
        assert!(matches!(
            link_mac(u32::MAX - 1),
            Err(NetlinkError::Refused(_))
        ));
    }
}
