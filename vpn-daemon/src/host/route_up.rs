//! `route-up`: the script OpenVPN 2.6 runs once the tunnel's routes are
//! added, with the environment it gives it (the device variables, each
//! route as `route_network_N`/`route_netmask_N`/`route_gateway_N`/
//! `route_metric_N`, the IPv6 routes, the VPN and net gateways and
//! `redirect_gateway`), and `route-metric`'s default.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

use crate::config::{Config, RouteAddr};
use crate::host::scripts::{ScriptContext, ScriptEnv, ScriptRunner, ScriptType, TunInfo};

/// One IPv4 route as the scripts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvRoute {
    /// Destination network.
    pub network: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// The next hop OpenVPN resolved (`vpn_gateway` when none was given).
    pub gateway: Option<Ipv4Addr>,
    /// The route's metric, or `route-metric`'s.
    pub metric: Option<u32>,
}

/// One IPv6 route as the scripts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvRoute6 {
    /// Destination prefix.
    pub network: Ipv6Net,
    /// Next hop (the tunnel's far end when none was given).
    pub gateway: Option<Ipv6Addr>,
    /// Metric.
    pub metric: Option<u32>,
}

/// The addresses a route's keywords stand for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gateways {
    /// `vpn_gateway`: `route-gateway`, else the far end of a net30/p2p tunnel.
    pub vpn: Option<Ipv4Addr>,
    /// `net_gateway`: the default gateway before the tunnel.
    pub net: Option<Ipv4Addr>,
    /// `remote_host`: the peer's address.
    pub remote_host: Option<Ipv4Addr>,
}

impl Gateways {
    fn resolve(&self, a: RouteAddr) -> Option<Ipv4Addr> {
        match a {
            RouteAddr::Addr(v) => Some(v),
            RouteAddr::VpnGateway => self.vpn,
            RouteAddr::NetGateway => self.net,
            RouteAddr::RemoteHost => self.remote_host,
        }
    }

    /// A `route` line as the scripts see it (`None` when its network is a
    /// keyword we cannot resolve, as OpenVPN then skips the route).
    pub fn env_route(
        &self,
        network: RouteAddr,
        netmask: Ipv4Addr,
        gateway: Option<RouteAddr>,
        metric: Option<u32>,
    ) -> Option<EnvRoute> {
        Some(EnvRoute {
            network: self.resolve(network)?,
            netmask,
            gateway: gateway.map_or(self.vpn, |g| self.resolve(g)),
            metric,
        })
    }
}

/// The IPv4 default gateway from `/proc/net/route` (what 2.6 exports as
/// `route_net_gateway`), `None` without a default route via a gateway.
pub fn default_gateway_v4() -> Option<Ipv4Addr> {
    parse_proc_net_route(&std::fs::read_to_string("/proc/net/route").ok()?)
}

fn parse_proc_net_route(text: &str) -> Option<Ipv4Addr> {
    const RTF_GATEWAY: u32 = 0x2;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|v| u32::from_str_radix(v, 16).ok());
        let (dst, gw, flags, mask) = (hex(1)?, hex(2)?, hex(3)?, hex(7)?);
        // The kernel prints the addresses in host (little-endian) order.
        (dst == 0 && mask == 0 && flags & RTF_GATEWAY != 0).then(|| Ipv4Addr::from(gw.swap_bytes()))
    })
}

/// The IPv4 address of `ip`, if it is one.
pub fn v4(ip: Option<IpAddr>) -> Option<Ipv4Addr> {
    match ip {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    }
}

/// The environment of `route-up` (and the route part OpenVPN also gives
/// later scripts).
pub fn route_env(
    info: &TunInfo,
    routes: &[EnvRoute],
    routes6: &[EnvRoute6],
    gw: &Gateways,
    redirect: bool,
    extra: &ScriptEnv,
) -> ScriptEnv {
    let mut env = ScriptEnv::new();
    env.set_tun(info, ScriptContext::Init, None).extend(extra);
    for (i, r) in routes.iter().enumerate() {
        let n = i + 1;
        env.set(&format!("route_network_{n}"), r.network.to_string())
            .set(&format!("route_netmask_{n}"), r.netmask.to_string())
            .set_opt(
                &format!("route_gateway_{n}"),
                r.gateway.map(|g| g.to_string()),
            )
            .set_opt(
                &format!("route_metric_{n}"),
                r.metric.map(|m| m.to_string()),
            );
    }
    for (i, r) in routes6.iter().enumerate() {
        let n = i + 1;
        env.set(&format!("route_ipv6_network_{n}"), r.network.to_string())
            .set_opt(
                &format!("route_ipv6_gateway_{n}"),
                r.gateway.map(|g| g.to_string()),
            )
            .set_opt(
                &format!("route_ipv6_metric_{n}"),
                r.metric.map(|m| m.to_string()),
            );
    }
    env.set_opt("route_vpn_gateway", gw.vpn.map(|a| a.to_string()));
    // 2.6 exports the pre-tunnel gateway it found, 0.0.0.0 when there is none.
    env.set(
        "route_net_gateway",
        gw.net.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
    );
    env.set("redirect_gateway", if redirect { "1" } else { "0" });
    env
}

/// Runs `route-up` if configured (no arguments, as in 2.6).
pub async fn run_route_up(cfg: &Config, runner: &ScriptRunner, env: &ScriptEnv) {
    let Some(cmd) = &cfg.extras.route_up else {
        return;
    };
    match runner.run(cmd, ScriptType::RouteUp, &[], env, None).await {
        Ok(o) if o.success => tracing::info!(script = %cmd, "route-up script done"),
        Ok(o) => {
            tracing::warn!(script = %cmd, code = ?o.exit_code, output = %o.output, "route-up script failed")
        }
        Err(e) => tracing::warn!(error = %e, "route-up script not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Topology;

    #[test]
    fn default_gateway_is_read_from_proc_net_route() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(parse_proc_net_route(t), Some(Ipv4Addr::new(192, 168, 2, 1)));
        assert_eq!(parse_proc_net_route("Iface\n"), None);
    }

    #[test]
    fn route_env_numbers_routes_and_resolves_the_vpn_gateway() {
        let info = TunInfo {
            dev: "tun7".into(),
            tun_mtu: 1500,
            topology: Topology::Subnet,
            ifconfig_local: Some(Ipv4Addr::new(10, 8, 0, 2)),
            ifconfig_remote_netmask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            ifconfig_ipv6_local: None,
            ifconfig_ipv6_remote: None,
            route_vpn_gateway: None,
        };
        let gw = Gateways {
            vpn: Some(Ipv4Addr::new(10, 8, 0, 1)),
            net: None,
            remote_host: Some(Ipv4Addr::new(192, 0, 2, 1)),
        };
        let r1 = gw
            .env_route(
                RouteAddr::Addr(Ipv4Addr::new(10, 99, 0, 0)),
                Ipv4Addr::new(255, 255, 255, 0),
                None,
                Some(7),
            )
            .unwrap();
        let r2 = gw
            .env_route(
                RouteAddr::RemoteHost,
                Ipv4Addr::BROADCAST,
                Some(RouteAddr::NetGateway),
                None,
            )
            .unwrap();
        let r6 = EnvRoute6 {
            network: "fd00:99::/64".parse().unwrap(),
            gateway: None,
            metric: Some(3),
        };
        let env = route_env(&info, &[r1, r2], &[r6], &gw, false, &ScriptEnv::new());
        assert_eq!(env.get("route_network_1"), Some("10.99.0.0"));
        assert_eq!(env.get("route_gateway_1"), Some("10.8.0.1"));
        assert_eq!(env.get("route_metric_1"), Some("7"));
        assert_eq!(env.get("route_network_2"), Some("192.0.2.1"));
        assert_eq!(env.get("route_gateway_2"), None);
        assert_eq!(env.get("route_metric_2"), None);
        assert_eq!(env.get("route_ipv6_network_1"), Some("fd00:99::/64"));
        assert_eq!(env.get("route_ipv6_metric_1"), Some("3"));
        assert_eq!(env.get("route_vpn_gateway"), Some("10.8.0.1"));
        assert_eq!(env.get("route_net_gateway"), Some("0.0.0.0"));
        assert_eq!(env.get("redirect_gateway"), Some("0"));
        assert_eq!(env.get("dev"), Some("tun7"));
    }
}
