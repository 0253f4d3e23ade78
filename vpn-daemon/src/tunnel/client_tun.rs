//! The client's tun device across connections: opened (or re-addressed
//! with `persist-tun`) after the push, routes installed (after
//! `route-delay` or the DHCP router when it applies), `up`, `route-up`
//! and the privilege drop; closed with `route-pre-down`, `down` and the
//! routes removed (`close_tun`, beside the loop in
//! [`super::point_to_point`], which calls these).

use std::time::Duration;

use crate::config::{self as cfgt, Topology};
use crate::error::DaemonError;
use crate::host::dns;
use crate::host::route_up;
use crate::host::routes::{self, PendingRoutes, RoutesAdded};
use crate::host::scripts::ScriptContext;
use crate::host::tun::{self as host_tun, TunSetup};
use crate::io::mssfix::OuterTransport;
use crate::io::{clock, icmp6};
use crate::proto::push::{self};
use crate::tunnel::client_link::Link;
use crate::tunnel::point_to_point::{Ctx, Persist, Run, TUN_BATCH};
use crate::tunnel::setup;

impl Run {
    /// Opens or re-addresses the tun device, installs routes, runs `up`.
    pub(super) async fn bring_up(
        &mut self,
        ctx: &mut Ctx<'_>,
        link: &Link,
        persist: &mut Persist,
    ) -> Result<(), DaemonError> {
        let cfg = ctx.cfg;
        let p = self.pushed.as_deref().cloned().unwrap_or_default();
        if cfg.dev_type == cfgt::DevType::Null {
            // 2.6's open_null: no device; data from the server is dropped.
            tracing::info!("dev null: no device opened, packets from the peer are discarded");
            return Ok(());
        }
        let topology = match p.topology {
            // A tap's ifconfig is always ADDRESS NETMASK.
            _ if cfg.dev_type == cfgt::DevType::Tap => Topology::Subnet,
            Some(t) => t,
            None if p.ifconfig.is_some() => Topology::Net30,
            None => cfg.topology,
        };
        let setup = TunSetup {
            mtu: p
                .tun_mtu
                .unwrap_or_else(|| u16::try_from(cfg.tun_mtu).unwrap_or(1500)),
            topology,
            ipv4: p
                .ifconfig
                .or_else(|| cfg.ifconfig.map(|i| (i.local, i.remote_netmask))),
            ipv6: p.ifconfig_ipv6.or_else(|| {
                cfg.ifconfig_ipv6
                    .map(|i| (i.local.addr(), i.local.prefix_len(), Some(i.remote)))
            }),
        };
        let fresh = match &mut persist.tun {
            Some((tun, old)) => {
                if *old != setup {
                    if !cfg.host.ifconfig_noexec {
                        host_tun::readdress_tun(tun, old, &setup)?;
                    }
                    *old = setup;
                }
                false
            }
            None => {
                if ctx.privileges_dropped {
                    return Err(DaemonError::Unsupported(
                        "cannot re-open the tun device after dropping privileges (use persist-tun)"
                            .into(),
                    ));
                }
                let tun = host_tun::open_tun(cfg, &setup, 1)?;
                tracing::info!(dev = tun.name(), ?setup, "tun device opened");
                persist.tun = Some((tun, setup));
                true
            }
        };
        let Some((tun, _)) = &persist.tun else {
            return Ok(());
        };
        let dev = tun.name().to_owned();
        self.block_ipv6 = (cfg.host.block_ipv6 || p.block_ipv6).then(|| {
            let src = setup.ipv6.and_then(|v| v.2).unwrap_or(icmp6::FAKE_SOURCE);
            (src, usize::from(setup.mtu), Vec::with_capacity(1400))
        });
        let q = tun.queues().first().cloned();
        self.trx = q.as_ref().map(|q| q.rx_batch(TUN_BATCH, 0, setup.mtu));
        self.ttx = q.as_ref().map(|q| q.tx_batch(TUN_BATCH));
        self.queue = q;
        let outer = match (link, link.peer().is_ipv6()) {
            (Link::Udp { .. }, false) => OuterTransport::Udp4,
            (Link::Udp { .. }, true) => OuterTransport::Udp6,
            (Link::Tcp { .. }, false) => OuterTransport::Tcp4,
            (Link::Tcp { .. }, true) => OuterTransport::Tcp6,
        };
        self.mss = host_tun::mss_limits(
            cfg,
            outer,
            setup::framing(cfg.compression).mtu_overhead() as u16,
        );
        let routes_due = !ctx.privileges_dropped && persist.routes.installed() == 0;
        let server = link.peer().ip();
        self.dhcp_snoop = cfg.dev_type == cfgt::DevType::Tap
            && matches!(p.route_gateway, Some(push::RouteGateway::Dhcp));
        let named = if routes_due {
            crate::host::named_routes::resolve(cfg).await
        } else {
            Vec::new()
        };
        let dns = dns::pulled_logged(cfg, &p);
        persist.dns_env = dns::script_env(&dns);
        if fresh || !persist.up_ran {
            let ctxw = if persist.restarts > 0 {
                ScriptContext::Restart
            } else {
                ScriptContext::Init
            };
            let gw = match p.route_gateway {
                Some(push::RouteGateway::Addr(a)) => Some(a),
                _ => None,
            };
            let info = setup.tun_info(&dev, gw);
            host_tun::run_up_down(cfg, &ctx.runner, false, &info, ctxw, None, &persist.dns_env)
                .await;
            persist.up_ran = true;
            host_tun::route_up_plugin().await;
        }
        persist
            .resolved
            .apply(cfg, ctx.runner.security, &dev, &dns)
            .await;
        let pending = PendingRoutes {
            pushed: p,
            setup,
            dev,
            server,
            named,
            install: routes_due,
            route_up: fresh,
        };
        match cfg.extras.route_delay {
            // 2.6 starts the route-delay timer only for a freshly opened
            // device; the privilege drop waits for the routes.
            Some(d) if fresh => {
                let at = clock::now() + Duration::from_secs(u64::from(d.seconds));
                tracing::info!(seconds = d.seconds, "route-delay: adding routes later");
                self.route_wakeup = Some((at, Box::new(pending)));
                Ok(())
            }
            _ => self.finish_up(ctx, persist, pending).await,
        }
    }

    /// Routes, `route-up`, then the privilege drop: the end of 2.6's
    /// start-up (`initialization_sequence_completed`).
    pub(super) async fn finish_up(
        &mut self,
        ctx: &mut Ctx<'_>,
        persist: &mut Persist,
        pending: PendingRoutes,
    ) -> Result<(), DaemonError> {
        let cfg = ctx.cfg;
        let PendingRoutes {
            pushed: p,
            setup,
            dev,
            server,
            named,
            install,
            route_up,
        } = pending;
        let mut added = RoutesAdded::default();
        if install && !ctx.privileges_dropped {
            if self.dhcp_snoop && self.dhcp_router.is_none() {
                tracing::info!(
                    "route-gateway dhcp: routes wait for the router of a DHCP answer to the tap"
                );
                self.routes_pending = Some((setup, dev.clone(), named));
            } else {
                added = routes::install_client(
                    cfg,
                    &p,
                    &setup,
                    &dev,
                    server,
                    &named,
                    self.dhcp_router,
                    &mut persist.routes,
                );
            }
        }
        if route_up {
            let gw = match p.route_gateway {
                Some(push::RouteGateway::Addr(a)) => Some(a),
                _ => None,
            };
            let info = setup.tun_info(&dev, gw);
            let env = route_up::route_env(
                &info,
                &added.v4,
                &added.v6,
                &added.gateways,
                added.redirect,
                &persist.dns_env,
            );
            route_up::run_route_up(cfg, &ctx.runner, &env).await;
        }
        if !ctx.privileges_dropped && crate::host::process::drops_privileges(cfg) {
            // The status file stays writable after the drop, as in OpenVPN.
            crate::io::files::hold_rewritten_files(cfg);
            crate::host::process::drop_privileges(cfg)?;
            ctx.privileges_dropped = true;
        }
        Ok(())
    }
}
