//! Routes and addresses the tunnel installs (`route`, `route-ipv6`,
//! `redirect-gateway def1`, `ifconfig`), remembered and removed again on
//! teardown, in reverse order.
//!
//! Changes go through iproute2's `ip` (as OpenVPN's `--enable-iproute2`
//! build does): it is on every gateway, its error messages are what an
//! operator knows, and a netns is one flag (`ip -n`). These calls happen at
//! connect and disconnect only, never on the data path; they block for a
//! few milliseconds, so call them from `spawn_blocking` in async code.
//!
//! `redirect-gateway def1` does not replace the default route; it adds
//! two halves that are more specific and so win:
//!
//! ```text
//! <server>/32   via <old default gateway> dev <old dev>   (keep the tunnel itself off the tunnel)
//! 0.0.0.0/1     via <tun gateway> dev tun0
//! 128.0.0.0/1   via <tun gateway> dev tun0
//! ```
//!
//! and `redirect-gateway ipv6` does the same with `::/3`, `2000::/4`,
//! `3000::/4` and `fc00::/7`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Command, Output},
};

use ipnet::IpNet;
use thiserror::Error;

/// Errors of changing routes or addresses.
#[derive(Debug, Error)]
pub enum RouteError {
    /// `ip` could not be started (iproute2 missing?).
    #[error("cannot run `ip {args}`: {source}")]
    Spawn {
        /// The arguments.
        args: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `ip` refused the change (route exists, no such device, ...).
    #[error("`ip {args}` failed: {stderr}")]
    Command {
        /// The arguments.
        args: String,
        /// What `ip` printed on stderr.
        stderr: String,
    },
    /// `ip route get` printed nothing we could read.
    #[error("no route to {0} found to keep the server reachable")]
    NoRouteToServer(IpAddr),
}

/// One route to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dst: IpNet,
    /// Next hop; `None` for a route straight out of `dev`.
    pub via: Option<IpAddr>,
    /// Output device.
    pub dev: Option<String>,
    /// Route metric, `None` for the kernel default.
    pub metric: Option<u32>,
}

/// How the kernel reaches an address now (`ip route get`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Gateway, `None` when the address is on a connected network.
    pub via: Option<IpAddr>,
    /// Output device.
    pub dev: Option<String>,
}

#[derive(Clone, Debug)]
enum Installed {
    Route(Route),
    Address {
        dev: String,
        addr: IpNet,
        peer: Option<IpAddr>,
    },
}

/// Everything this tunnel added to the routing table and to interfaces.
/// Dropping it removes all of it (errors are logged); call
/// [`Self::teardown`] to see them.
#[derive(Debug, Default)]
pub struct RouteTable {
    netns: Option<String>,
    installed: Vec<Installed>,
    noexec: bool,
}

impl RouteTable {
    /// Changes in the current network namespace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes inside the named network namespace (`ip -n`), for tests and
    /// namespaced deployments.
    pub fn in_netns(name: &str) -> Self {
        Self {
            netns: Some(name.to_owned()),
            installed: Vec::new(),
            noexec: false,
        }
    }

    /// `route-noexec`: routes are computed (and handed to scripts) but
    /// never given to the kernel, as 2.6 does.
    pub fn noexec(mut self, on: bool) -> Self {
        self.noexec = on;
        self
    }

    /// Adds `route` and remembers it.
    pub fn add_route(&mut self, route: Route) -> Result<(), RouteError> {
        if self.noexec {
            tracing::info!(route = %route_args("add", &route).join(" "), "route-noexec: route not added");
            return Ok(());
        }
        self.ip(&route_args("add", &route))?;
        self.installed.push(Installed::Route(route));
        Ok(())
    }

    /// Adds `addr` (with its prefix) to `dev`, as a point-to-point address
    /// to `peer` when given (`ifconfig` in net30/p2p), and remembers it.
    pub fn add_address(
        &mut self,
        dev: &str,
        addr: IpNet,
        peer: Option<IpAddr>,
    ) -> Result<(), RouteError> {
        self.ip(&addr_args("add", dev, addr, peer))?;
        self.installed.push(Installed::Address {
            dev: dev.to_owned(),
            addr,
            peer,
        });
        Ok(())
    }

    /// How `dst` is reached now (before the tunnel's routes change it).
    pub fn next_hop(&self, dst: IpAddr) -> Result<NextHop, RouteError> {
        let fam = if dst.is_ipv4() { "-4" } else { "-6" };
        let out = self.ip(&[fam, "route", "get", &dst.to_string()])?;
        parse_route_get(&String::from_utf8_lossy(&out.stdout))
            .ok_or(RouteError::NoRouteToServer(dst))
    }

    /// `redirect-gateway def1`: a host route to the VPN `server` through the
    /// current next hop, then `0.0.0.0/1` and `128.0.0.0/1` into `tun_dev`
    /// (via `tun_gateway`, the `route-gateway`, when the topology has one).
    pub fn redirect_gateway_def1(
        &mut self,
        server: IpAddr,
        tun_dev: &str,
        tun_gateway: Option<Ipv4Addr>,
    ) -> Result<(), RouteError> {
        self.keep_server_off_tunnel(server, tun_dev)?;
        self.add_halves(
            &["0.0.0.0/1", "128.0.0.0/1"],
            tun_dev,
            tun_gateway.map(IpAddr::V4),
        )
    }

    /// `redirect-gateway ipv6`: the IPv6 counterpart OpenVPN installs,
    /// `::/3`, `2000::/4`, `3000::/4` and `fc00::/7` into `tun_dev` (all of
    /// global unicast and ULA, leaving link-local and multicast alone), plus
    /// a host route to an IPv6 `server` through its current next hop.
    pub fn redirect_gateway_ipv6(
        &mut self,
        server: IpAddr,
        tun_dev: &str,
        tun_gateway: Option<Ipv6Addr>,
    ) -> Result<(), RouteError> {
        if server.is_ipv6() {
            self.keep_server_off_tunnel(server, tun_dev)?;
        }
        self.add_halves(
            &["::/3", "2000::/4", "3000::/4", "fc00::/7"],
            tun_dev,
            tun_gateway.map(IpAddr::V6),
        )
    }

    fn keep_server_off_tunnel(&mut self, server: IpAddr, tun_dev: &str) -> Result<(), RouteError> {
        let hop = self.next_hop(server)?;
        // Reached through the tunnel's own device: nothing to protect.
        if hop.dev.as_deref() == Some(tun_dev) {
            return Ok(());
        }
        self.add_route(Route {
            dst: IpNet::from(server),
            via: hop.via,
            dev: hop.dev,
            metric: None,
        })
    }

    fn add_halves(
        &mut self,
        nets: &[&str],
        tun_dev: &str,
        via: Option<IpAddr>,
    ) -> Result<(), RouteError> {
        for n in nets {
            let dst: IpNet = n.parse().map_err(|_| RouteError::Command {
                args: (*n).to_owned(),
                stderr: "bad prefix".to_owned(),
            })?;
            self.add_route(Route {
                dst,
                via,
                dev: Some(tun_dev.to_owned()),
                metric: None,
            })?;
        }
        Ok(())
    }

    /// Number of routes and addresses currently installed by this table.
    pub fn installed(&self) -> usize {
        self.installed.len()
    }

    /// Removes everything added, newest first; returns the failures (a
    /// route already gone with its device is not an error worth failing on).
    pub fn teardown(&mut self) -> Vec<RouteError> {
        let mut errors = Vec::new();
        while let Some(item) = self.installed.pop() {
            let args = match &item {
                Installed::Route(r) => route_args("del", r),
                Installed::Address { dev, addr, peer } => addr_args("del", dev, *addr, *peer),
            };
            if let Err(e) = self.ip(&args) {
                errors.push(e);
            }
        }
        errors
    }

    fn ip<S: AsRef<str>>(&self, args: &[S]) -> Result<Output, RouteError> {
        let mut cmd = Command::new("ip");
        if let Some(ns) = &self.netns {
            cmd.args(["-n", ns]);
        }
        cmd.args(args.iter().map(AsRef::as_ref));
        let joined = || args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
        let out = cmd.output().map_err(|source| RouteError::Spawn {
            args: joined(),
            source,
        })?;
        if !out.status.success() {
            return Err(RouteError::Command {
                args: joined(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out)
    }
}

impl Drop for RouteTable {
    fn drop(&mut self) {
        for e in self.teardown() {
            tracing::warn!(error = %e, "route teardown");
        }
    }
}

fn route_args(verb: &str, r: &Route) -> Vec<String> {
    let fam = if r.dst.addr().is_ipv4() { "-4" } else { "-6" };
    let mut a = vec![
        fam.to_owned(),
        "route".to_owned(),
        verb.to_owned(),
        r.dst.trunc().to_string(),
    ];
    if let Some(via) = r.via {
        a.extend(["via".to_owned(), via.to_string()]);
    }
    if let Some(dev) = &r.dev {
        a.extend(["dev".to_owned(), dev.clone()]);
    }
    if let Some(m) = r.metric {
        a.extend(["metric".to_owned(), m.to_string()]);
    }
    a
}

fn addr_args(verb: &str, dev: &str, addr: IpNet, peer: Option<IpAddr>) -> Vec<String> {
    let mut a = vec!["addr".to_owned(), verb.to_owned(), addr.to_string()];
    if let Some(p) = peer {
        a.extend(["peer".to_owned(), p.to_string()]);
    }
    a.extend(["dev".to_owned(), dev.to_owned()]);
    a
}

/// Reads `via` and `dev` out of `ip route get` output such as
/// `192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.0.2 uid 0`.
fn parse_route_get(out: &str) -> Option<NextHop> {
    let line = out.lines().next()?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    let dev = after("dev").map(str::to_owned);
    let via = after("via").and_then(|v| v.parse().ok());
    if dev.is_none() && via.is_none() {
        return None;
    }
    Some(NextHop { via, dev })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_route_get_with_and_without_gateway() {
        let h =
            parse_route_get("192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.0.2 uid 0 \n    cache \n")
                .expect("hop");
        assert_eq!(h.via, Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(h.dev.as_deref(), Some("eth0"));
        let h = parse_route_get("10.0.0.7 dev veth0 src 10.0.0.2 uid 0\n").expect("hop");
        assert_eq!(h.via, None);
        assert_eq!(h.dev.as_deref(), Some("veth0"));
        assert_eq!(parse_route_get(""), None);
        assert_eq!(parse_route_get("local 127.0.0.1"), None);
    }

    #[test]
    fn builds_ip_arguments() {
        let r = Route {
            dst: "10.9.0.7/24".parse().expect("net"),
            via: Some("10.8.0.1".parse().expect("ip")),
            dev: Some("tun0".into()),
            metric: Some(5),
        };
        assert_eq!(
            route_args("add", &r).join(" "),
            "-4 route add 10.9.0.0/24 via 10.8.0.1 dev tun0 metric 5"
        );
        let a = addr_args(
            "del",
            "tun1",
            "10.8.0.6/32".parse().expect("net"),
            Some("10.8.0.5".parse().expect("ip")),
        );
        assert_eq!(a.join(" "), "addr del 10.8.0.6/32 peer 10.8.0.5 dev tun1");
    }
}
