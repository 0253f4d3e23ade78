//! Route installation, written once for every mode: `route` /
//! `route-ipv6` (configured, named, pulled) on the device, and the
//! client's `redirect-gateway`, with what `route-up` is told about them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

use crate::config::{self as cfgt, Config, Topology};
use crate::error::DaemonError;
use crate::host::route_up;
use crate::host::tun::{self as host_tun, TunSetup};
use crate::io::route::RouteTable;
use crate::proto::push::{self, PushedOptions, RedirectFlags};

/// One `route-ipv6`: network, gateway, metric.
pub type Route6 = (Ipv6Net, Option<Ipv6Addr>, Option<u32>);

/// Where and how a mode's routes go.
pub struct RouteTarget<'a> {
    /// The device.
    pub dev: &'a str,
    /// Its addresses (the IPv4 local one is never a next hop; the IPv6
    /// remote one is `route-up`'s default IPv6 gateway).
    pub setup: &'a TunSetup,
    /// `remote_host` of the routes (the peer's address), if known.
    pub remote_host: Option<IpAddr>,
    /// A tap's `route-gateway`: the next hop of routes that name none.
    pub tap_gw: Option<Ipv4Addr>,
    /// `route-metric` (configured or pulled).
    pub default_metric: Option<u32>,
    /// The gateways `route-up`'s variables resolve against; `None` when
    /// nobody is told about the routes (static key).
    pub gateways: Option<route_up::Gateways>,
}

/// The routes as `route-up` is told about them.
#[derive(Default)]
pub struct RoutesAdded {
    /// `route_network_N` …
    pub v4: Vec<route_up::EnvRoute>,
    /// `route_ipv6_network_N` …
    pub v6: Vec<route_up::EnvRoute6>,
    /// `route_vpn_gateway`, `route_net_gateway`, …
    pub gateways: route_up::Gateways,
    /// `redirect-gateway` took the IPv4 default route.
    pub redirect: bool,
}

/// Adds `v4` then `v6` routes; the failures go to `errs` (the caller
/// logs them, a failed route never stops the others).
pub fn install<'r>(
    rt: &mut RouteTable,
    t: &RouteTarget<'_>,
    v4: impl IntoIterator<Item = &'r cfgt::Route>,
    v6: impl IntoIterator<Item = Route6>,
    added: &mut RoutesAdded,
    errs: &mut Vec<DaemonError>,
) {
    let local = t.setup.ipv4.map(|a| a.0);
    for r in v4 {
        let metric = r.metric.or(t.default_metric);
        if let Some(g) = &t.gateways {
            added
                .v4
                .extend(g.env_route(r.network, r.netmask, r.gateway, metric));
        }
        if let Err(e) = host_tun::add_route_v4(
            rt,
            t.dev,
            r.network,
            r.netmask,
            host_tun::tap_route_gateway(r.gateway, t.tap_gw),
            metric,
            t.remote_host,
            local,
        ) {
            errs.push(e);
        }
    }
    for (n, gateway, metric) in v6 {
        let metric = metric.or(t.default_metric);
        if t.gateways.is_some() {
            added.v6.push(route_up::EnvRoute6 {
                network: n,
                gateway: gateway.or(t.setup.ipv6.and_then(|a| a.2)),
                metric,
            });
        }
        if let Err(e) = host_tun::add_route_v6(rt, t.dev, n, gateway, metric) {
            errs.push(e);
        }
    }
}

/// The configured `route-ipv6` lines as [`Route6`].
pub fn configured_v6(cfg: &Config) -> impl Iterator<Item = Route6> + '_ {
    cfg.routes_ipv6
        .iter()
        .map(|r| (r.network, r.gateway, r.metric))
}

/// Logs the routes that did not go in.
pub fn log_failures(errs: Vec<DaemonError>) {
    for e in errs {
        tracing::warn!(error = %e, "route not installed");
    }
}

/// Takes every installed route down again.
pub fn teardown(rt: &mut RouteTable) {
    for e in rt.teardown() {
        tracing::warn!(error = %e, "removing route");
    }
}

/// What the client's routes step needs, kept while `route-delay` runs.
pub struct PendingRoutes {
    /// The pulled options.
    pub pushed: PushedOptions,
    /// The device's addresses.
    pub setup: TunSetup,
    /// The device's name.
    pub dev: String,
    /// The server's address (`remote_host`, and the host route of
    /// `redirect-gateway`).
    pub server: IpAddr,
    /// `route` lines given by host name, resolved.
    pub named: Vec<cfgt::Route>,
    /// Add the routes (none are installed yet).
    pub install: bool,
    /// Run `route-up` (the device was opened for this connection).
    pub route_up: bool,
}

/// The client's routes: `redirect-gateway`, then configured, named and
/// pulled `route`s, then configured and pulled `route-ipv6`s. A tap's
/// routes go via the pushed (or DHCP-learnt, or configured) gateway.
#[allow(clippy::too_many_arguments)]
pub fn install_client(
    cfg: &Config,
    p: &PushedOptions,
    setup: &TunSetup,
    dev: &str,
    server: IpAddr,
    named: &[cfgt::Route],
    dhcp_router: Option<Ipv4Addr>,
    rt: &mut RouteTable,
) -> RoutesAdded {
    let mut errs = Vec::new();
    let tap_gw = if cfg.dev_type == cfgt::DevType::Tap {
        let gw = match p.route_gateway {
            Some(push::RouteGateway::Addr(a)) => Some(a),
            Some(push::RouteGateway::Dhcp) => dhcp_router,
            None => match cfg.route_gateway {
                Some(cfgt::RouteGateway::Addr(a)) => Some(a),
                _ => None,
            },
        };
        if gw.is_none() && (!p.routes.is_empty() || !cfg.routes.is_empty()) {
            tracing::warn!(
                "routes on a tap need an IPv4 route-gateway; they go out of the device without a next hop"
            );
        }
        gw
    } else {
        None
    };
    let gateways = route_up::Gateways {
        vpn: match p.route_gateway {
            Some(push::RouteGateway::Addr(a)) => Some(a),
            _ => setup
                .ipv4
                .filter(|_| setup.topology != Topology::Subnet)
                .map(|a| a.1),
        },
        net: route_up::default_gateway_v4(),
        remote_host: route_up::v4(Some(server)),
    };
    let mut added = RoutesAdded {
        gateways,
        ..RoutesAdded::default()
    };
    let redirect = p
        .redirect_gateway
        .or(cfg.redirect_gateway.filter(|r| r.default_route).map(|r| {
            let mut f = RedirectFlags::empty();
            if r.def1 {
                f |= RedirectFlags::DEF1;
            }
            if r.ipv6 {
                f |= RedirectFlags::IPV6;
            }
            if !r.ipv4 {
                f |= RedirectFlags::NOT_IPV4;
            }
            f
        }));
    if let Some(f) = redirect {
        added.redirect = !f.contains(RedirectFlags::NOT_IPV4);
        // Always the def1 form: the old default route stays, two more
        // specific halves win, and the host route keeps the server
        // reachable through the old gateway.
        if !f.contains(RedirectFlags::NOT_IPV4)
            && let Err(e) = rt.redirect_gateway_def1(server, dev, tap_gw)
        {
            errs.push(DaemonError::from(e));
        }
        if f.contains(RedirectFlags::IPV6)
            && let Err(e) = rt.redirect_gateway_ipv6(server, dev, None)
        {
            errs.push(DaemonError::from(e));
        }
    }
    let pulled6 = p
        .routes_ipv6
        .iter()
        .map(|r| (r.network, r.gateway, r.metric));
    let v6 = configured_v6(cfg).chain(pulled6);
    let target = RouteTarget {
        dev,
        setup,
        remote_host: Some(server),
        tap_gw,
        // A pushed `route-metric` replaces ours, as pulled options do in 2.6.
        default_metric: p.route_metric.or(cfg.extras.route_metric),
        gateways: Some(added.gateways),
    };
    // Configured routes first, then pulled ones: 2.6's numbering.
    let v4 = cfg.routes.iter().chain(named).chain(&p.routes);
    install(rt, &target, v4, v6, &mut added, &mut errs);
    log_failures(errs);
    added
}
