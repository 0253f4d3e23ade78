//! The tap side of the configuration: `server-bridge`'s expansion and the
//! checks 2.6 makes on `lladdr`, `dev null`, `tun-mtu-extra` and
//! `vlan-*` (`helper.c`, `options.c`), after the device type is known.

use std::net::Ipv4Addr;

use super::{
    Builder, ConfigError, ConfigErrorKind, Span,
    types::{DevType, IfconfigPool, Mode, ServerBridge, Vlan, VlanAccept},
};

/// 2.6's `TAP_MTU_EXTRA_DEFAULT`.
pub(super) const TAP_MTU_EXTRA_DEFAULT: u32 = 32;

/// The largest pool 2.6 accepts (`IFCONFIG_POOL_MAX`).
const POOL_MAX: u32 = 65536;

fn invalid(span: Span, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(&span, ConfigErrorKind::Invalid(msg.into()))
}

/// Checks that only need the device type.
pub(super) fn device_checks(b: &mut Builder) -> Result<(), ConfigError> {
    let tap = b.cfg.dev_type == DevType::Tap;
    if b.cfg.lladdr.is_some() && !tap {
        return Err(invalid(
            b.span_of("lladdr"),
            "'lladdr' can only be used with dev tap",
        ));
    }
    if tap && b.cfg.tun_mtu_extra.is_none() {
        b.cfg.tun_mtu_extra = Some(TAP_MTU_EXTRA_DEFAULT);
    }
    Ok(())
}

/// `server-bridge` as 2.6's `helper_client_server` expands it:
///
/// ```text
/// server-bridge IP MASK START END   mode server, tls-server,
///                                   ifconfig-pool START END MASK,
///                                   push "route-gateway IP"
/// server-bridge                     mode server, tls-server,
///                                   push "route-gateway dhcp"
/// server-bridge nogw                mode server, tls-server
/// ```
pub(super) fn server_bridge_helper(b: &mut Builder) -> Result<(), ConfigError> {
    let Some(sb) = b.cfg.server_bridge else {
        return Ok(());
    };
    let span = b.span_of("server-bridge");
    if b.raw.server.is_some() {
        return Err(invalid(
            b.latest_of(&["server", "server-bridge"]),
            "'server' and 'server-bridge' cannot be used together",
        ));
    }
    if b.raw.client {
        return Err(invalid(
            b.latest_of(&["server-bridge", "client"]),
            "'server-bridge' and 'client' cannot be used together",
        ));
    }
    if b.cfg.ifconfig_pool.is_some() {
        return Err(invalid(
            b.span_of("ifconfig-pool"),
            format!(
                "'server-bridge' (at {span}) already defines an ifconfig-pool, so you can't also specify ifconfig-pool explicitly"
            ),
        ));
    }
    if b.cfg.dev_type != DevType::Tap {
        return Err(invalid(
            span,
            "'server-bridge' only makes sense with dev tap",
        ));
    }
    b.raw.mode_server = true;
    b.raw.tls_server = true;
    match sb {
        ServerBridge::Pool {
            gateway,
            netmask,
            start,
            end,
        } => {
            same_subnet(&span, gateway, start, netmask)?;
            same_subnet(&span, start, end, netmask)?;
            same_subnet(&span, gateway, end, netmask)?;
            let (s, e) = (u32::from(start), u32::from(end));
            if s > e {
                return Err(invalid(
                    span,
                    format!("'server-bridge' pool start {start} is greater than its end {end}"),
                ));
            }
            if e - s >= POOL_MAX {
                return Err(invalid(
                    span,
                    format!(
                        "'server-bridge' pool {start} - {end} is larger than {POOL_MAX} addresses"
                    ),
                ));
            }
            b.cfg.ifconfig_pool = Some(IfconfigPool {
                start,
                end,
                netmask: Some(netmask),
            });
            b.cfg.push.push(format!("route-gateway {gateway}"));
        }
        ServerBridge::Dhcp { push_gateway } => {
            if push_gateway {
                b.cfg.push.push("route-gateway dhcp".into());
            }
        }
    }
    Ok(())
}

/// 2.6's `verify_common_subnet`.
fn same_subnet(span: &Span, a: Ipv4Addr, b: Ipv4Addr, mask: Ipv4Addr) -> Result<(), ConfigError> {
    let m = u32::from(mask);
    if u32::from(a) & m != u32::from(b) & m {
        return Err(invalid(
            span.clone(),
            format!("'server-bridge' IP addresses {a} and {b} are not in the same {mask} subnet"),
        ));
    }
    Ok(())
}

/// Checks that need the mode, and `vlan-*` (2.6's `options_postprocess`).
pub(super) fn mode_checks(b: &mut Builder) -> Result<(), ConfigError> {
    if b.cfg.mode == Mode::Server && b.cfg.dev_type == DevType::Null {
        return Err(invalid(
            b.latest_of(&["mode", "server", "dev"]),
            "'mode server' only works with dev tun or dev tap",
        ));
    }
    let accept = b.raw.vlan_accept.unwrap_or_default();
    let pvid = b.raw.vlan_pvid.unwrap_or(1);
    if b.cfg.mode != Mode::Server {
        // A client or point-to-point peer ignores vlan-accept/-pvid.
        if b.raw.vlan_tagging {
            return Err(invalid(
                b.span_of("vlan-tagging"),
                "'vlan-tagging' requires 'mode server'",
            ));
        }
        return Ok(());
    }
    if b.raw.vlan_tagging && b.cfg.dev_type != DevType::Tap {
        return Err(invalid(
            b.span_of("vlan-tagging"),
            "'vlan-tagging' must be used with dev tap",
        ));
    }
    if !b.raw.vlan_tagging {
        // 2.6 compares with the defaults: `vlan-accept all` alone is fine.
        if accept != VlanAccept::All {
            return Err(invalid(
                b.span_of("vlan-accept"),
                "'vlan-accept' requires 'vlan-tagging'",
            ));
        }
        if pvid != 1 {
            return Err(invalid(
                b.span_of("vlan-pvid"),
                "'vlan-pvid' requires 'vlan-tagging'",
            ));
        }
        return Ok(());
    }
    b.cfg.vlan = Some(Vlan { accept, pvid });
    Ok(())
}
