//! The underlay interface: which one to attach to (`xdp-interface`, else
//! the one holding `local`, else the route to the peer, else the default
//! route's), how many receive queues it has, and finding a stale XDP
//! program of ours on it to replace.
//!
//! All lookups happen in the calling thread's network namespace, once at
//! start.

use std::{
    ffi::{CStr, CString},
    io,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use vpn_common::maps::{MAX_QUEUES, PROGRAM_NAME};

use super::netlink::{self, NetlinkError};

/// The interface index of `name`, if it exists.
pub fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// The name of interface `index`.
pub fn name_of(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the kernel wrote a NUL-terminated name into `buf`.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    s.to_str().ok().map(str::to_owned)
}

/// The address an IPv4-mapped IPv6 address stands for; others unchanged.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The interface that holds address `ip` (`getifaddrs`).
pub fn holding(ip: IpAddr) -> io::Result<Option<String>> {
    let ip = unmap(ip);
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive
        // until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: non-null sockaddr from getifaddrs; the family says which
        // concrete struct it is.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                    IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes())
                }
                libc::AF_INET6 => {
                    let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                    IpAddr::from(sin6.sin6_addr.s6_addr)
                }
                _ => continue,
            }
        };
        if addr == ip {
            // SAFETY: non-null, NUL-terminated interface name.
            let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
            found = name.to_str().ok().map(str::to_owned);
            break;
        }
    }
    // SAFETY: the list came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// Why an interface was chosen, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Named by `xdp-interface`.
    Configured,
    /// Holds the `local` address.
    Local,
    /// The route to the peer leaves through it.
    RouteToPeer,
    /// The default route leaves through it.
    DefaultRoute,
    /// The only Ethernet interface that is up (tun/tap excluded).
    OnlyInterface,
}

impl Choice {
    /// For log lines.
    pub fn describe(self) -> &'static str {
        match self {
            Choice::Configured => "named by xdp-interface",
            Choice::Local => "holds the local address",
            Choice::RouteToPeer => "route to the peer",
            Choice::DefaultRoute => "default route",
            Choice::OnlyInterface => "only Ethernet interface that is up",
        }
    }
}

/// Picks the underlay interface. `server_without_local` enables the last
/// two fallbacks (default route, single interface). Returns `None` with
/// the reason when nothing fits.
pub fn choose(
    configured: Option<&str>,
    local: Option<IpAddr>,
    peer_hint: Option<IpAddr>,
    server_without_local: bool,
) -> Result<(String, Choice), String> {
    if let Some(name) = configured {
        return Ok((name.to_owned(), Choice::Configured));
    }
    let local = local.map(unmap).filter(|ip| !ip.is_unspecified());
    if let Some(ip) = local {
        match holding(ip) {
            Ok(Some(name)) => return Ok((name, Choice::Local)),
            Ok(None) => tracing::info!(%ip, "no interface holds the local address"),
            Err(e) => tracing::warn!(%ip, error = %e, "listing interface addresses failed"),
        }
    }
    if let Some(peer) = peer_hint.map(unmap) {
        match netlink::route_get(peer) {
            Ok(Some(r)) => {
                if let Some(name) = name_of(r.oif) {
                    return Ok((name, Choice::RouteToPeer));
                }
            }
            Ok(None) => tracing::info!(%peer, "no route to the peer"),
            Err(e) => tracing::warn!(%peer, error = %e, "route lookup failed"),
        }
    }
    if server_without_local && local.is_none() {
        match netlink::default_route_oif() {
            Ok(Some(oif)) => {
                if let Some(name) = name_of(oif) {
                    return Ok((name, Choice::DefaultRoute));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "default route lookup failed"),
        }
        match netlink::links() {
            Ok(links) => {
                let mut up = links
                    .into_iter()
                    .filter(|l| l.up && !l.loopback && l.ethernet);
                if let (Some(only), None) = (up.next(), up.next()) {
                    return Ok((only.name, Choice::OnlyInterface));
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing interfaces failed"),
        }
    }
    Err("cannot tell which interface carries the VPN traffic; name it with xdp-interface".into())
}

/// `struct ethtool_channels` (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// Receive queues of `name` per `ETHTOOL_GCHANNELS` (dedicated rx plus
/// combined channels).
fn channels_rx(name: &str) -> io::Result<u32> {
    // SAFETY: plain socket(2); owned right below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: all-zero is a valid ifreq (integers, arrays and pointers).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= ifr.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL with a valid ifreq whose data points to a live
    // ethtool_channels the kernel fills in.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut ifr) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ch.rx_count.saturating_add(ch.combined_count))
}

/// `/sys/class/net/NAME/queues/rx-*`, trusted only when sysfs shows the
/// same interface (sysfs belongs to the namespace it was mounted in, which
/// need not be the caller's).
fn sysfs_rx(name: &str, ifindex: u32) -> Option<u32> {
    let base = format!("/sys/class/net/{name}");
    let idx: u32 = std::fs::read_to_string(format!("{base}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if idx != ifindex {
        return None;
    }
    let n = std::fs::read_dir(format!("{base}/queues"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// How many receive queues need an AF_XDP socket: ethtool's channel
/// count, else sysfs, else one; at most `MAX_QUEUES` (the XSKS map size).
pub fn rx_queues(name: &str, ifindex: u32) -> u32 {
    let n = match channels_rx(name) {
        Ok(n) if n > 0 => n,
        Ok(_) | Err(_) => sysfs_rx(name, ifindex).unwrap_or(1),
    };
    n.min(MAX_QUEUES)
}

/// Errors of clearing a stale attachment.
#[derive(Debug, thiserror::Error)]
pub enum StaleError {
    /// Someone else's XDP program is attached; it is left alone.
    #[error("interface already runs XDP program {name:?} (id {id}), which is not ours")]
    Foreign {
        /// Its name as the kernel reports it.
        name: String,
        /// Its program id.
        id: u32,
    },
    /// Asking or detaching through netlink failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// Detaching a bpf_link failed.
    #[error("detaching XDP link {id}")]
    Link {
        /// Link id.
        id: u32,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// Something is still attached after detaching.
    #[error("an XDP program is still attached after detaching the stale one")]
    StillAttached,
}

/// The name of loaded program `id`, if it is still loaded.
fn program_name(id: u32) -> Option<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .map(|p| p.name_as_str().unwrap_or_default().to_owned())
}

/// Detaches a leftover `vpn_xdp` of an earlier run (crashed or killed) so
/// that ours replaces it instead of stacking beside it, and refuses
/// (without touching it) any other program. Returns the ids replaced.
pub fn clear_stale(ifindex: u32) -> Result<Vec<u32>, StaleError> {
    let attached = netlink::attached_xdp(ifindex)?;
    // Check all before detaching any: a foreign program anywhere means
    // hands off.
    for a in &attached {
        let name = program_name(a.prog_id).unwrap_or_default();
        if name != PROGRAM_NAME {
            return Err(StaleError::Foreign {
                name,
                id: a.prog_id,
            });
        }
    }
    let mut replaced = Vec::new();
    for a in &attached {
        match netlink::detach_xdp(ifindex, a.mode_flags) {
            Ok(()) => {}
            // Attached through a (pinned) bpf_link: netlink may not touch it.
            Err(NetlinkError::Refused(e)) if e.raw_os_error() == Some(libc::EBUSY) => {
                detach_link_of(a.prog_id)?
            }
            Err(e) => return Err(e.into()),
        }
        replaced.push(a.prog_id);
    }
    if !netlink::attached_xdp(ifindex)?.is_empty() {
        return Err(StaleError::StillAttached);
    }
    Ok(replaced)
}

/// `union bpf_attr` for `BPF_LINK_GET_FD_BY_ID` / `BPF_LINK_DETACH`.
#[repr(C)]
#[derive(Default)]
struct LinkAttr {
    id_or_fd: u32,
    next_id: u32,
    open_flags: u32,
}

const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_DETACH: libc::c_long = 34;

fn bpf(cmd: libc::c_long, attr: &mut LinkAttr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, correctly laid out prefix of bpf_attr for
    // these commands; its size is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut LinkAttr,
            size_of::<LinkAttr>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Detaches the XDP bpf_link running program `prog_id`.
fn detach_link_of(prog_id: u32) -> Result<(), StaleError> {
    let link = aya::programs::loaded_links()
        .filter_map(Result::ok)
        .find(|l| {
            l.program_id() == prog_id
                && matches!(l.link_type(), Ok(aya::programs::links::LinkType::Xdp))
        });
    let Some(link) = link else {
        return Err(StaleError::StillAttached);
    };
    let id = link.id();
    let err = |source| StaleError::Link { id, source };
    let mut attr = LinkAttr {
        id_or_fd: id,
        ..Default::default()
    };
    let fd = bpf(BPF_LINK_GET_FD_BY_ID, &mut attr).map_err(err)?;
    let fd = i32::try_from(fd).map_err(|_| err(io::Error::from(io::ErrorKind::InvalidData)))?;
    // SAFETY: the kernel just returned this fd; we own it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut attr = LinkAttr {
        id_or_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(BPF_LINK_DETACH, &mut attr).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn unmap_turns_mapped_addresses_into_ipv4() {
        let v4 = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(unmap(IpAddr::V6(v4.to_ipv6_mapped())), IpAddr::V4(v4));
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(unmap(IpAddr::V6(v6)), IpAddr::V6(v6));
    }

    #[test]
    fn configured_interface_wins_without_lookups() {
        let (name, why) =
            choose(Some("eth7"), Some(Ipv4Addr::LOCALHOST.into()), None, true).unwrap();
        assert_eq!((name.as_str(), why), ("eth7", Choice::Configured));
    }

    #[test]
    fn loopback_address_is_held_by_lo() {
        // Every namespace has lo with 127.0.0.1 once it is up; the test
        // process's namespace does.
        if let Ok(Some(name)) = holding(Ipv4Addr::LOCALHOST.into()) {
            assert_eq!(name, "lo");
        }
        let (name, why) = choose(None, Some(Ipv4Addr::LOCALHOST.into()), None, false).unwrap();
        assert_eq!((name.as_str(), why), ("lo", Choice::Local));
    }

    #[test]
    fn client_without_any_hint_is_told_to_name_it() {
        let e = choose(None, None, None, false).unwrap_err();
        assert!(e.contains("xdp-interface"), "{e}");
    }

    #[test]
    fn lo_has_at_least_one_queue() {
        if let Some(i) = index_of("lo") {
            assert!(rx_queues("lo", i) >= 1);
            assert_eq!(name_of(i).as_deref(), Some("lo"));
        }
    }
}
