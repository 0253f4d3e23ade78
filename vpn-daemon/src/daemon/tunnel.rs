//! The tun side shared by the client and server loops: opening or
//! re-addressing the device, `route`/`route-ipv6`/`redirect-gateway`,
//! mssfix limits, and the `up`/`down` scripts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::types::{MssfixMode, RouteAddr};
use crate::config::{Config, Topology};
use crate::io::internal::tun::{Tun, TunConfig, TunIpv4};
use crate::io::mssfix::{AEAD_DATA_V2_OVERHEAD, OuterTransport, clamp_mss, mss_for_mssfix};
use crate::io::route::{Route as IpRoute, RouteTable};
use crate::scripts::{ScriptContext, ScriptEnv, ScriptRunner, ScriptType, TunInfo, up_down_args};

use super::error::DaemonError;

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
    tc.ipv4 = setup.tun_ipv4();
    tc.ipv6 = setup.ipv6.map(|(a, l, _)| (a, l));
    tc.queues = queues.max(1);
    tc.tx_queue_len = cfg.txqueuelen;
    // TSO/USO offload: one read brings a whole 64 KiB TCP train, one
    // write takes a coalesced one; far fewer syscalls on bulk TCP. A
    // kernel without IFF_VNET_HDR support gets the plain device.
    tc.offload = true;
    match Tun::open(&tc) {
        Ok(t) => Ok(t),
        Err(e) => {
            tracing::debug!(error = %e, "tun offload refused, opening without");
            tc.offload = false;
            Ok(Tun::open(&tc)?)
        }
    }
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

/// MSS ceilings (IPv4 inner, IPv6 inner) for `mssfix`, or `None` when off.
pub fn mss_limits(
    cfg: &Config,
    outer: OuterTransport,
    framing_overhead: u16,
) -> Option<(u16, u16)> {
    let m = cfg.mssfix?;
    let size = u16::try_from(m.size).unwrap_or(u16::MAX);
    Some(match m.mode {
        MssfixMode::Fixed => (size.saturating_sub(40), size.saturating_sub(60)),
        MssfixMode::Encapsulated | MssfixMode::Mtu => {
            let oh = AEAD_DATA_V2_OVERHEAD + framing_overhead;
            (
                mss_for_mssfix(size, outer, oh, false),
                mss_for_mssfix(size, outer, oh, true),
            )
        }
    })
}

/// Clamps a TCP SYN's MSS in `packet` (either direction).
#[inline]
pub fn clamp(packet: &mut [u8], limits: Option<(u16, u16)>) {
    if let (Some((v4, v6)), Some(first)) = (limits, packet.first()) {
        let lim = if first >> 4 == 6 { v6 } else { v4 };
        let _ = clamp_mss(packet, lim);
    }
}

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
    let cmd = if down {
        &cfg.scripts.down
    } else {
        &cfg.scripts.up
    };
    let mut env = ScriptEnv::new();
    env.set_tun(info, context, signal).extend(extra);
    let kind = if down {
        ScriptType::Down
    } else {
        ScriptType::Up
    };
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
    let Some(cmd) = cmd else { return };
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
pub async fn route_predown_plugin(
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
    r
}
