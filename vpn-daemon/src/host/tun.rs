//! The tun side shared by the client and server loops: opening or
//! re-addressing the device, `route`/`route-ipv6`/`redirect-gateway`,
//! mssfix limits, and the `up`/`down` scripts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::types::{MssfixMode, RouteAddr};
use crate::config::{Config, DevType, Topology};
use crate::host::scripts::{
    ScriptContext, ScriptEnv, ScriptRunner, ScriptType, TunInfo, up_down_args,
};
use crate::io::internal::tun::{Tun, TunConfig, TunIpv4};
use crate::io::mssfix::{
    AEAD_DATA_V2_OVERHEAD, OuterTransport, clamp_ethernet, clamp_ip, mss_for_mssfix,
};
use crate::io::route::{Route as IpRoute, RouteTable};

use crate::error::DaemonError;

/// The addresses and MTU a tun device should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunSetup {
    /// `tun-mtu` (pushed or configured).
    pub mtu: u16,
    /// `topology` (decides how `ifconfig`'s second address is read).
    pub topology: Topology,
    /// `ifconfig LOCAL REMOTE_OR_NETMASK`.
    pub ipv4: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `ifconfig-ipv6 ADDR/BITS [REMOTE]`.
    pub ipv6: Option<(Ipv6Addr, u8, Option<Ipv6Addr>)>,
}

impl TunSetup {
    fn tun_ipv4(&self) -> Option<TunIpv4> {
        self.ipv4.map(|(local, other)| match self.topology {
            Topology::Subnet => TunIpv4::Subnet {
                local,
                prefix: u32::from(other).leading_ones() as u8,
            },
            Topology::Net30 | Topology::P2p => TunIpv4::PointToPoint {
                local,
                remote: other,
            },
        })
    }

    /// What `up`/`down` scripts are told about the device.
    pub fn tun_info(&self, dev: &str, gateway: Option<Ipv4Addr>) -> TunInfo {
        TunInfo {
            dev: dev.to_owned(),
            tun_mtu: u32::from(self.mtu),
            topology: self.topology,
            ifconfig_local: self.ipv4.map(|a| a.0),
            ifconfig_remote_netmask: self.ipv4.map(|a| a.1),
            ifconfig_ipv6_local: self.ipv6.map(|a| (a.0, a.1)),
            ifconfig_ipv6_remote: self.ipv6.and_then(|a| a.2),
            route_vpn_gateway: gateway,
        }
    }
}

/// Opens the device named by `dev` with `setup` (one queue, no offload).
pub fn open_tun(cfg: &Config, setup: &TunSetup, queues: usize) -> Result<Tun, DaemonError> {
    let mut tc = TunConfig::from_dev(cfg.dev_name.as_deref().unwrap_or(&cfg.dev));
    tc.mtu = setup.mtu;
    if cfg.host.ifconfig_noexec {
        // 2.6: the addresses and MTU only reach the scripts.
        tracing::info!(?setup, "ifconfig-noexec: tun device left unconfigured");
    } else {
        tc.ipv4 = setup.tun_ipv4();
        tc.ipv6 = setup.ipv6.map(|(a, l, _)| (a, l));
    }
    tc.queues = queues.max(1);
    tc.tx_queue_len = cfg.txqueuelen;
    tc.tap = cfg.dev_type == DevType::Tap;
    // The kernel refuses a group or all-zero address; 2.6 only warns then.
    tc.mac = cfg.lladdr.filter(|m| {
        let unicast = m[0] & 1 == 0 && *m != [0; 6];
        if !unicast {
            tracing::warn!(lladdr = ?m, "lladdr is not a unicast MAC address; not set");
        }
        unicast
    });
    if let Some(node) = &cfg.dev_node {
        check_dev_node(node)?;
    }
    // TSO/USO offload: one read brings a whole 64 KiB TCP train, one
    // write takes a coalesced one; far fewer syscalls on bulk TCP. A
    // kernel without IFF_VNET_HDR support gets the plain device.
    tc.offload = !tc.tap;
    match Tun::open(&tc) {
        Ok(t) => Ok(t),
        Err(e) => {
            tracing::debug!(error = %e, "tun offload refused, opening without");
            tc.offload = false;
            Ok(Tun::open(&tc)?)
        }
    }
}

/// `dev-node PATH`: on Linux the node is only the tun/tap clone device
/// that is opened; tun-rs always opens `/dev/net/tun`, which is the same
/// device when PATH is that character device (10, 200) under another name.
fn check_dev_node(node: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const TUN_CLONE: (u32, u32) = (10, 200);
    let md = std::fs::metadata(node).map_err(|e| DaemonError::io("dev-node", e))?;
    let rdev = md.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    if md.file_type().is_char_device() && (major, minor) == TUN_CLONE {
        return Ok(());
    }
    Err(DaemonError::Unsupported(format!(
        "dev-node {}: not the tun/tap clone device (char 10:200); only that device is supported on Linux",
        node.display()
    )))
}

/// Moves an open (persisted) device from `old` to `new` addresses and MTU.
pub fn readdress_tun(tun: &Tun, old: &TunSetup, new: &TunSetup) -> Result<(), DaemonError> {
    if old.mtu != new.mtu {
        tun.set_mtu(new.mtu)?;
    }
    if old.ipv4 != new.ipv4 || old.topology != new.topology {
        if let Some((a, _)) = old.ipv4 {
            tun.remove_address(IpAddr::V4(a))?;
        }
        if let Some(v4) = new.tun_ipv4() {
            tun.add_ipv4(v4)?;
        }
    }
    if old.ipv6 != new.ipv6 {
        if let Some((a, _, _)) = old.ipv6 {
            tun.remove_address(IpAddr::V6(a))?;
        }
        if let Some((a, l, _)) = new.ipv6 {
            tun.add_ipv6(a, l)?;
        }
    }
    Ok(())
}

/// Resolves a `route` address keyword.
fn route_addr(
    a: RouteAddr,
    remote_host: Option<IpAddr>,
    net_gateway: Option<IpAddr>,
) -> Option<IpAddr> {
    match a {
        RouteAddr::Addr(v4) => Some(IpAddr::V4(v4)),
        RouteAddr::RemoteHost => remote_host,
        RouteAddr::NetGateway => net_gateway,
        // On a tun device the next hop inside the tunnel is only a label:
        // routes go out of the device itself.
        RouteAddr::VpnGateway => None,
    }
}

/// One IPv4 `route` to install on `dev`.
#[allow(clippy::too_many_arguments)]
pub fn add_route_v4(
    rt: &mut RouteTable,
    dev: &str,
    network: RouteAddr,
    netmask: Ipv4Addr,
    gateway: Option<RouteAddr>,
    metric: Option<u32>,
    remote_host: Option<IpAddr>,
    tun_local: Option<Ipv4Addr>,
) -> Result<(), DaemonError> {
    let net_gw = match gateway {
        Some(RouteAddr::NetGateway) => remote_host
            .and_then(|h| rt.next_hop(h).ok())
            .and_then(|h| h.via),
        _ => None,
    };
    let Some(IpAddr::V4(net)) = route_addr(network, remote_host, None) else {
        return Err(DaemonError::Unsupported(format!(
            "route {network:?}: network is not an IPv4 address"
        )));
    };
    let prefix = u32::from(netmask).leading_ones() as u8;
    let dst = Ipv4Net::new(net, prefix)
        .map_err(|_| DaemonError::Unsupported(format!("route {net} {netmask}: bad netmask")))?
        .trunc();
    let (via, out_dev) = match gateway {
        // Through the pre-tunnel gateway: the kernel picks the device.
        Some(RouteAddr::NetGateway) => (net_gw, None),
        // A literal next hop (usually a client inside the tunnel subnet).
        Some(g @ (RouteAddr::Addr(_) | RouteAddr::RemoteHost)) => {
            match route_addr(g, remote_host, None) {
                Some(v) if Some(v) != tun_local.map(IpAddr::V4) => (Some(v), None),
                _ => (None, Some(dev.to_owned())),
            }
        }
        // On a tun device the tunnel's far end is only a label.
        Some(RouteAddr::VpnGateway) | None => (None, Some(dev.to_owned())),
    };
    rt.add_route(IpRoute {
        dst: IpNet::V4(dst),
        via,
        dev: out_dev,
        metric,
    })?;
    Ok(())
}

/// A tap is a broadcast link: a route must name its next hop on it, so
/// routes without a gateway (or via `vpn_gateway`) go via the
/// `route-gateway` (2.6 adds every route via it).
pub fn tap_route_gateway(
    gateway: Option<RouteAddr>,
    tap_gw: Option<Ipv4Addr>,
) -> Option<RouteAddr> {
    match (tap_gw, gateway) {
        (Some(a), None | Some(RouteAddr::VpnGateway)) => Some(RouteAddr::Addr(a)),
        _ => gateway,
    }
}

/// One `route-ipv6` on `dev`.
pub fn add_route_v6(
    rt: &mut RouteTable,
    dev: &str,
    network: Ipv6Net,
    gateway: Option<Ipv6Addr>,
    metric: Option<u32>,
) -> Result<(), DaemonError> {
    rt.add_route(IpRoute {
        dst: IpNet::V6(network.trunc()),
        via: gateway.map(IpAddr::V6),
        dev: Some(dev.to_owned()),
        metric,
    })?;
    Ok(())
}

/// `mssfix` ceilings for TCP inside the device's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MssLimits {
    /// For TCP over IPv4.
    pub v4: u16,
    /// For TCP over IPv6.
    pub v6: u16,
    /// The device carries Ethernet frames (tap): the IP packet follows a
    /// 14-byte header, and only untagged IPv4/IPv6 frames are clamped (2.6's
    /// `is_ipv4`/`is_ipv6` for tap).
    pub l2: bool,
}

/// MSS ceilings for `mssfix`, or `None` when off.
pub fn mss_limits(cfg: &Config, outer: OuterTransport, framing_overhead: u16) -> Option<MssLimits> {
    let m = cfg.mssfix?;
    // The fragment header is inside every encrypted payload (2.6
    // frame_calculate_payload_overhead).
    let framing_overhead = framing_overhead + if cfg.fragment.is_some() { 4 } else { 0 };
    let size = u16::try_from(m.size).unwrap_or(u16::MAX);
    let (v4, v6) = match m.mode {
        MssfixMode::Fixed => (size.saturating_sub(40), size.saturating_sub(60)),
        MssfixMode::Encapsulated | MssfixMode::Mtu => {
            let oh = AEAD_DATA_V2_OVERHEAD + framing_overhead;
            (
                mss_for_mssfix(size, outer, oh, false),
                mss_for_mssfix(size, outer, oh, true),
            )
        }
    };
    Some(MssLimits {
        v4,
        v6,
        l2: cfg.dev_type == DevType::Tap,
    })
}

/// Clamps a TCP SYN's MSS in `packet` (either direction).
#[inline]
pub fn clamp(packet: &mut [u8], limits: Option<MssLimits>) {
    let Some(l) = limits else { return };
    let _ = if l.l2 {
        clamp_ethernet(packet, l.v4, l.v6)
    } else {
        clamp_ip(packet, l.v4, l.v6)
    };
}

/// An Ethernet header without VLAN tag.
pub const ETH_HLEN: usize = 14;

/// Runs `up` or `down` (if configured) with OpenVPN's arguments and env,
/// plus `extra` (the DNS variables).
pub async fn run_up_down(
    cfg: &Config,
    runner: &ScriptRunner,
    down: bool,
    info: &TunInfo,
    context: ScriptContext,
    signal: Option<&str>,
    extra: &ScriptEnv,
) {
    let (cmd, kind) = if down {
        (&cfg.scripts.down, ScriptType::Down)
    } else {
        (&cfg.scripts.up, ScriptType::Up)
    };
    let mut env = ScriptEnv::new();
    env.set_tun(info, context, signal).extend(extra);
    // The plugin first, then the script, with the same arguments (2.6's
    // run_up_down).
    if let Some(h) = crate::plugin::host() {
        let hook = if down {
            crate::plugin::Hook::Down
        } else {
            h.export(&env);
            crate::plugin::Hook::Up
        };
        let r = h.call(hook, None, &up_down_args(info, context), &env).await;
        if r.status != crate::plugin::Status::Success {
            tracing::error!("ERROR: up/down plugin call failed");
        }
    }
    if let Some(cmd) = cmd {
        run_tun_script(runner, cmd, kind, info, context, signal, extra).await;
    }
}

/// `route-pre-down` (if configured), before the routes go: 2.6 gives it
/// the arguments and environment of `down`.
///
/// The ROUTE_PREDOWN plugin hook goes first, as in 2.6; the script only
/// when `script` says there are routes to take down.
pub async fn run_route_pre_down(
    cfg: &Config,
    runner: &ScriptRunner,
    info: &TunInfo,
    signal: Option<&str>,
    extra: &ScriptEnv,
    script: bool,
) {
    route_predown_plugin(info, ScriptContext::Init, signal, extra).await;
    if !script {
        return;
    }
    if let Some(cmd) = &cfg.host.route_pre_down {
        let kind = ScriptType::RoutePreDown;
        run_tun_script(runner, cmd, kind, info, ScriptContext::Init, signal, extra).await;
    }
}

/// One script of the tun's life (`up`, `down`, `route-pre-down`...): the
/// device arguments OpenVPN gives, its environment, and the outcome logged.
pub async fn run_tun_script(
    runner: &ScriptRunner,
    cmd: &str,
    kind: ScriptType,
    info: &TunInfo,
    context: ScriptContext,
    signal: Option<&str>,
    extra: &ScriptEnv,
) {
    let mut env = ScriptEnv::new();
    env.set_tun(info, context, signal).extend(extra);
    match runner
        .run(cmd, kind, &up_down_args(info, context), &env, None)
        .await
    {
        Ok(o) if o.success => tracing::info!(script = %cmd, "{} script done", kind.as_str()),
        Ok(o) => {
            tracing::warn!(script = %cmd, code = ?o.exit_code, output = %o.output, "{} script failed", kind.as_str())
        }
        Err(e) => tracing::warn!(error = %e, "{} script not run", kind.as_str()),
    }
}

/// The ROUTE_UP plugin hook once the routes are in: no arguments, and
/// `redirect_gateway` joins the environment (2.6's do_route).
pub async fn route_up_plugin() {
    let Some(h) = crate::plugin::host() else {
        return;
    };
    let mut env = ScriptEnv::new();
    env.set("redirect_gateway", "0");
    h.export(&env);
    let hook = crate::plugin::Hook::RouteUp;
    if h.call(hook, None, &[], &env).await.status != crate::plugin::Status::Success {
        tracing::warn!("WARNING: route-up plugin call failed");
    }
}

/// The ROUTE_PREDOWN plugin hook before the routes go: `up`'s arguments
/// and the `down` environment (2.6 calls it through run_up_down).
async fn route_predown_plugin(
    info: &TunInfo,
    context: ScriptContext,
    signal: Option<&str>,
    extra: &ScriptEnv,
) {
    let Some(h) = crate::plugin::host() else {
        return;
    };
    let mut env = ScriptEnv::new();
    env.set_tun(info, context, signal).extend(extra);
    let hook = crate::plugin::Hook::RoutePredown;
    let r = h.call(hook, None, &up_down_args(info, context), &env).await;
    if r.status != crate::plugin::Status::Success {
        tracing::error!("ERROR: up/down plugin call failed");
    }
}

/// A script runner with the configured `script-security` and `setenv`.
pub fn script_runner(cfg: &Config) -> ScriptRunner {
    let mut r = ScriptRunner::new(cfg.script_security);
    r.setenv = cfg.setenv.clone();
    if let Some(d) = &cfg.host.tmp_dir {
        r.tmp_dir = d.clone();
    }
    r
}

#[cfg(test)]
mod tests {
    use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};

    use super::*;

    fn eth_syn(vlan: bool) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let opts = [TcpOptionElement::MaximumSegmentSize(1460)];
        let mut out = Vec::new();
        if vlan {
            let b = eth
                .single_vlan(20.try_into().unwrap())
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 80, 1, 65535)
                .syn()
                .options(&opts)
                .unwrap();
            b.write(&mut out, &[]).unwrap();
        } else {
            let b = eth
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 80, 1, 65535)
                .syn()
                .options(&opts)
                .unwrap();
            b.write(&mut out, &[]).unwrap();
        }
        out
    }

    fn mss(frame: &[u8]) -> Option<u16> {
        let s = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            return None;
        };
        t.options_iterator().find_map(|o| match o {
            Ok(TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
            _ => None,
        })
    }

    #[test]
    fn tap_frames_are_clamped_past_the_ethernet_header_only_when_untagged() {
        let l2 = Some(MssLimits {
            v4: 1300,
            v6: 1280,
            l2: true,
        });
        let mut f = eth_syn(false);
        clamp(&mut f, l2);
        assert_eq!(mss(&f), Some(1300));
        let mut f = eth_syn(true);
        clamp(&mut f, l2);
        assert_eq!(mss(&f), Some(1460));
        // The same frame read as an IP packet is not touched.
        let mut f = eth_syn(false);
        let before = f.clone();
        clamp(&mut f, l2.map(|l| MssLimits { l2: false, ..l }));
        assert_eq!(f, before);
    }
}

#[cfg(test)]
mod dev_node_tests {
    use super::*;

    #[test]
    fn dev_node_must_be_the_tun_clone_device() {
        if std::path::Path::new("/dev/net/tun").exists() {
            assert!(check_dev_node(std::path::Path::new("/dev/net/tun")).is_ok());
        }
        assert!(check_dev_node(std::path::Path::new("/dev/null")).is_err());
        assert!(check_dev_node(std::path::Path::new("/nonexistent/tun")).is_err());
    }
}
