//! `route` entries given with host names, resolved when the routes are
//! added (as OpenVPN's `init_route` does: the first IPv4 address); a name
//! that does not resolve leaves its route out, with a warning.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{Config, NamedRoute, Route, RouteAddr, RouteTarget};

/// The `route_hosts` of `cfg` with their names resolved.
pub(crate) async fn resolve(cfg: &Config) -> Vec<Route> {
    let mut out = Vec::with_capacity(cfg.route_hosts.len());
    for r in &cfg.route_hosts {
        if let Some(route) = resolve_one(r).await {
            out.push(route);
        }
    }
    out
}

async fn resolve_one(r: &NamedRoute) -> Option<Route> {
    let network = target(&r.network).await?;
    let gateway = match &r.gateway {
        Some(g) => Some(target(g).await?),
        None => None,
    };
    if let RouteAddr::Addr(n) = network
        && u32::from(n) & !u32::from(r.netmask) != 0
    {
        tracing::warn!(network = %n, netmask = %r.netmask, "route: resolved network and netmask are inconsistent, route not added");
        return None;
    }
    Some(Route {
        network,
        netmask: r.netmask,
        gateway,
        metric: r.metric,
    })
}

async fn target(t: &RouteTarget) -> Option<RouteAddr> {
    let host = match t {
        RouteTarget::Addr(a) => return Some(*a),
        RouteTarget::Host(h) => h,
    };
    match tokio::net::lookup_host((host.as_str(), 0)).await {
        Ok(addrs) => {
            let v4: Option<Ipv4Addr> = addrs
                .filter_map(|a| match a.ip() {
                    IpAddr::V4(v) => Some(v),
                    IpAddr::V6(_) => None,
                })
                .next();
            if v4.is_none() {
                tracing::warn!(host = %host, "route: no IPv4 address for the name, route not added");
            }
            v4.map(RouteAddr::Addr)
        }
        Err(e) => {
            tracing::warn!(host = %host, error = %e, "route: cannot resolve, route not added");
            None
        }
    }
}
