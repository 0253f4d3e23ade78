//! The server's own tun device: opened with `ifconfig`/`ifconfig-ipv6`,
//! `route`/`route-ipv6` added, `up` and `route-up` run, privileges
//! dropped; and the reverse at shutdown. Shared by the UDP and TCP
//! server loops.

use std::sync::Arc;

use crate::config::{Config, DevType, RouteGateway};
use crate::error::DaemonError;
use crate::host::route_up;
use crate::host::routes;
use crate::host::scripts::{DnsSettings, ScriptContext, ScriptEnv, ScriptRunner};
use crate::host::tun::{self as host_tun, TunSetup};
use crate::io::internal::tun::{Tun, TunQueue};
use crate::io::route::RouteTable;

/// The server's own tun device, routes and `up` state.
pub(crate) struct ServerTun {
    pub(crate) tun: Tun,
    pub(crate) queue: Arc<TunQueue>,
    pub(crate) setup: TunSetup,
    routes: RouteTable,
    runner: ScriptRunner,
}

impl ServerTun {
    /// Routes off, `down`, device closed.
    pub(crate) async fn shutdown(mut self, cfg: &Config) {
        let info = self.setup.tun_info(self.tun.name(), None);
        let routes = self.routes.installed() > 0 || cfg.host.route_noexec;
        let env = dns_env(cfg);
        host_tun::run_route_pre_down(cfg, &self.runner, &info, Some("sigterm"), &env, routes).await;
        routes::teardown(&mut self.routes);
        // 2.6 closes the device before `down` unless `down-pre` is given.
        let tun = if cfg.extras.down_pre {
            Some(self.tun)
        } else {
            drop(self.tun);
            None
        };
        host_tun::run_up_down(
            cfg,
            &self.runner,
            true,
            &info,
            ScriptContext::Init,
            Some("sigterm"),
            &dns_env(cfg),
        )
        .await;
        drop(tun);
    }
}

/// The server's own `dhcp-option`/`dns` lines as its `up`/`down` scripts
/// see them (2.6 exports a non-pulling instance's options at start-up).
fn dns_env(cfg: &Config) -> ScriptEnv {
    let mut env = ScriptEnv::new();
    env.set_dns(&DnsSettings::from_config(cfg));
    env
}

/// The device as the configuration gives it (`tun-mtu`, `topology`,
/// `ifconfig`, `ifconfig-ipv6`): the server's, and a static-key peer's.
pub(crate) fn configured_setup(cfg: &Config) -> TunSetup {
    TunSetup {
        mtu: u16::try_from(cfg.tun_mtu).unwrap_or(1500),
        topology: cfg.topology,
        ipv4: cfg.ifconfig.map(|i| (i.local, i.remote_netmask)),
        ipv6: cfg
            .ifconfig_ipv6
            .map(|i| (i.local.addr(), i.local.prefix_len(), Some(i.remote))),
    }
}

/// Opens the server's tun (`ifconfig`, `ifconfig-ipv6`), adds `route` /
/// `route-ipv6`, runs `up`, then drops privileges.
pub(crate) async fn bring_up_server_tun(cfg: &Config) -> Result<ServerTun, DaemonError> {
    let setup = configured_setup(cfg);
    let tun = host_tun::open_tun(cfg, &setup, 1)?;
    let queue = tun
        .queues()
        .first()
        .cloned()
        .ok_or(DaemonError::NoTunQueue)?;
    tracing::info!(dev = tun.name(), ?setup, "tun device opened");
    let mut routes = RouteTable::new().noexec(cfg.host.route_noexec);
    let dev = tun.name().to_owned();
    let runner = host_tun::script_runner(cfg);
    let info = setup.tun_info(&dev, None);
    // 2.6 order: `up`, then the routes, then `route-up`.
    host_tun::run_up_down(
        cfg,
        &runner,
        false,
        &info,
        ScriptContext::Init,
        None,
        &dns_env(cfg),
    )
    .await;
    let default_metric = cfg.extras.route_metric;
    let gw = route_up::Gateways {
        vpn: match cfg.route_gateway {
            Some(RouteGateway::Addr(a)) => Some(a),
            _ => setup
                .ipv4
                .filter(|_| cfg.topology != crate::config::Topology::Subnet)
                .map(|a| a.1),
        },
        net: route_up::default_gateway_v4(),
        remote_host: None,
    };
    let tap_gw = match (cfg.dev_type, cfg.route_gateway) {
        (DevType::Tap, Some(RouteGateway::Addr(a))) => Some(a),
        _ => None,
    };
    let named = crate::host::named_routes::resolve(cfg).await;
    let target = routes::RouteTarget {
        dev: &dev,
        setup: &setup,
        remote_host: None,
        tap_gw,
        default_metric,
        gateways: Some(gw),
    };
    let mut added = routes::RoutesAdded::default();
    let mut errs = Vec::new();
    routes::install(
        &mut routes,
        &target,
        cfg.routes.iter().chain(&named),
        routes::configured_v6(cfg),
        &mut added,
        &mut errs,
    );
    routes::log_failures(errs);
    let (env_routes, env_routes6) = (added.v4, added.v6);
    let env = route_up::route_env(&info, &env_routes, &env_routes6, &gw, false, &dns_env(cfg));
    host_tun::route_up_plugin().await;
    route_up::run_route_up(cfg, &runner, &env).await;
    crate::io::files::hold_rewritten_files(cfg);
    crate::host::process::drop_privileges(cfg)?;
    Ok(ServerTun {
        tun,
        queue,
        setup,
        routes,
        runner,
    })
}
