//! After the last directive: OpenVPN's helper expansions (`client`,
//! `server`, `server-ipv6`, `keepalive`), defaults that depend on other
//! directives, cross-directive validation, and file resolution.
//!
//! The order follows OpenVPN's post-processing: helpers first (they set
//! the mode and the role), then the checks that depend on the mode.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{
    Builder, ConfigError, ConfigErrorKind, Span,
    types::{
        AuthUserPass, DevType, Dh, Ifconfig, IfconfigIpv6, IfconfigPool, Mode, PingAction, PingRec,
        Proto, RawTransport, Route, RouteAddr, RouteGateway, Source, TlsRole, TlsWrap, Topology,
        Transport, VerifyClientCert, XdpMode,
    },
};

/// 2.6's default `data-ciphers`.
const DEFAULT_DATA_CIPHERS: &[&str] = &["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"];

/// The smallest `server` network OpenVPN accepts (/16: the pool's limit).
const POOL_MIN_NETBITS: u32 = 16;

pub(super) fn invalid(span: Span, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(&span, ConfigErrorKind::Invalid(msg.into()))
}

pub(super) fn finish(b: &mut Builder) -> Result<(), ConfigError> {
    device(b)?;
    client_helper(b)?;
    server_helper(b)?;
    super::tap::server_bridge_helper(b)?;
    server_ipv6_helper(b)?;
    mode_and_role(b)?;
    super::tap::mode_checks(b)?;
    transport(b)?;
    keepalive(b)?;
    mode_specific(b)?;
    tls(b)?;
    data_channel(b)?;
    fragment(b)?;
    super::compress::finish(b)?;
    misc(b)?;
    super::host::check(b)?;
    super::extras::validate(b)?;
    files(b)?;
    found_at_run_time(b)
}

/// Configuration errors the tunnel loops used to find only when they
/// started (`DaemonError::Unsupported` there, with the same message); run
/// last so every other check keeps its place before them. The loops' own
/// checks are unreachable for a validated `Config` now.
fn found_at_run_time(b: &Builder) -> Result<(), ConfigError> {
    // The informational modes print and exit before any loop starts.
    if b.cfg.host.show.is_some() {
        return Ok(());
    }
    if b.cfg.secret.is_none() {
        // daemon::setup::tls_context, for every TLS loop.
        if b.cfg.crl_verify.is_some() && b.cfg.crl_verify_dir {
            return Err(invalid(
                b.span_of("crl-verify"),
                "crl-verify DIR dir is not supported",
            ));
        }
    } else if let Some(l) = &b.cfg.local {
        // client::static_key::local_addr binds UDP and TCP listeners to a
        // literal address only (it does not resolve names).
        let binds = |t: Transport| matches!(t, Transport::Udp | Transport::TcpServer);
        let bound = if b.cfg.remotes.is_empty() {
            binds(b.cfg.proto.transport)
        } else {
            b.cfg.remotes.iter().any(|r| binds(r.proto.transport))
        };
        if bound && l.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                b.span_of("local"),
                format!("local {l}: not an IP address"),
            ));
        }
    }
    Ok(())
}

fn device(b: &mut Builder) -> Result<(), ConfigError> {
    // OpenVPN 2.7's default; 2.6 refuses a config without `dev`, so no
    // config 2.6 runs changes meaning.
    let dev = b.raw.dev.clone().unwrap_or_else(|| "tun".to_string());
    let span = b.span_of("dev");
    // 2.6's dev_type_enum: dev-type wins, else the start of the name.
    let dev_type = match b.raw.dev_type {
        Some(t) => t,
        None if dev.starts_with("tun") => DevType::Tun,
        None if dev.starts_with("tap") => DevType::Tap,
        None if dev.starts_with("null") => DevType::Null,
        None => {
            return Err(invalid(
                span,
                format!(
                    "cannot tell the device type of 'dev {dev}': add 'dev-type tun' or 'dev-type tap'"
                ),
            ));
        }
    };
    // Only the bare "tun"/"tap" let the kernel pick the name (tun.c).
    b.cfg.dev_name =
        (dev_type != DevType::Null && dev != "tun" && dev != "tap").then(|| dev.clone());
    b.cfg.dev = dev;
    b.cfg.dev_type = dev_type;
    // A tap's ifconfig is always ADDRESS NETMASK and its pool one address
    // per client (tun.c, multi.c test "tap OR topology subnet"): the
    // subnet topology means exactly that here, whatever `topology` says.
    b.cfg.topology = match dev_type {
        DevType::Tap => Topology::Subnet,
        _ => b.raw.topology.unwrap_or(Topology::Net30),
    };
    super::tap::device_checks(b)
}

/// `client` = `pull` + `tls-client`.
fn client_helper(b: &mut Builder) -> Result<(), ConfigError> {
    if b.raw.client {
        b.raw.pull = true;
        b.raw.tls_client = true;
        b.cfg.client = true;
    }
    b.cfg.pull = b.raw.pull;
    Ok(())
}

/// `server NET MASK [nopool]` as OpenVPN 2.6 expands it for tun (see
/// `docs/directives.md`, "Helper expansions").
fn server_helper(b: &mut Builder) -> Result<(), ConfigError> {
    let Some((net, mask, nopool)) = b.raw.server else {
        return Ok(());
    };
    let span = b.span_of("server");
    if b.raw.client {
        return Err(invalid(
            b.latest_of(&["server", "client"]),
            "'server' and 'client' cannot be used together",
        ));
    }
    if !nopool && b.cfg.ifconfig_pool.is_some() {
        return Err(invalid(
            b.span_of("ifconfig-pool"),
            format!(
                "'server' (at {span}) already defines an ifconfig-pool; remove ifconfig-pool or use 'server ... nopool'"
            ),
        ));
    }
    let bits = u32::from(mask).leading_ones();
    if bits < POOL_MIN_NETBITS {
        return Err(invalid(
            span,
            format!("'server' netmask allows too many addresses (/{bits}); use /16 or longer"),
        ));
    }
    let tap = b.cfg.dev_type == DevType::Tap;
    if b.cfg.dev_type == DevType::Null {
        return Err(invalid(
            span,
            "'server' only makes sense with dev tun or dev tap",
        ));
    }
    if tap && bits > 30 {
        return Err(invalid(
            span,
            format!("'server' with dev tap needs a /30 or larger network, got /{bits}"),
        ));
    }
    if !tap && bits > 29 {
        return Err(invalid(
            span,
            format!("'server' with dev tun needs a /29 or larger network, got /{bits}"),
        ));
    }
    let n = u32::from(net);
    let broadcast = n | !u32::from(mask);
    let ip = Ipv4Addr::from;
    b.raw.mode_server = true;
    b.raw.tls_server = true;
    b.cfg.server = Some(
        Ipv4Net::new(net, bits as u8).map_err(|_| invalid(span.clone(), "bad server network"))?,
    );
    let mut push = Vec::new();
    match b.cfg.topology {
        Topology::Net30 | Topology::P2p => {
            b.cfg.ifconfig = Some(Ifconfig {
                local: ip(n + 1),
                remote_netmask: ip(n + 2),
            });
            if !nopool {
                let reserve = if bits == 29 { 0 } else { 4 };
                b.cfg.ifconfig_pool = Some(IfconfigPool {
                    start: ip(n + 4),
                    end: ip(broadcast - reserve),
                    netmask: None,
                });
            }
            b.cfg.routes.push(Route {
                network: RouteAddr::Addr(net),
                netmask: mask,
                gateway: None,
                metric: None,
            });
            if b.cfg.client_to_client {
                push.push(format!("route {net} {mask}"));
            } else if b.cfg.topology == Topology::Net30 {
                push.push(format!("route {}", ip(n + 1)));
            }
        }
        Topology::Subnet => {
            b.cfg.ifconfig = Some(Ifconfig {
                local: ip(n + 1),
                remote_netmask: mask,
            });
            if !nopool {
                b.cfg.ifconfig_pool = Some(IfconfigPool {
                    start: ip(n + 2),
                    end: ip(broadcast - 1),
                    netmask: Some(mask),
                });
            }
            push.push(format!("route-gateway {}", ip(n + 1)));
            // 2.6's tap branch sets neither a local route-gateway nor
            // pushes a topology: a tap is always "subnet".
            if !tap && b.cfg.route_gateway.is_none() {
                b.cfg.route_gateway = Some(RouteGateway::Addr(ip(n + 2)));
            }
        }
    }
    if !tap {
        push.push(format!("topology {}", b.cfg.topology));
    }
    b.cfg.push.extend(push);
    if b.cfg.topology == Topology::Net30 && !nopool {
        b.warn(
            &span,
            "topology net30 (2.6's default) is deprecated for servers with a pool; consider 'topology subnet'".into(),
        );
    }
    Ok(())
}

/// `server-ipv6 NET/BITS`: our address +1, the pool from +0x1000 (or +2
/// for small prefixes), and `tun-ipv6` pushed.
fn server_ipv6_helper(b: &mut Builder) -> Result<(), ConfigError> {
    let Some(net) = b.raw.server_ipv6 else {
        return Ok(());
    };
    let span = b.span_of("server-ipv6");
    if b.raw.client {
        return Err(invalid(
            b.latest_of(&["server-ipv6", "client"]),
            "'server-ipv6' and 'client' cannot be used together",
        ));
    }
    if b.cfg.ifconfig_ipv6_pool.is_some() {
        return Err(invalid(
            b.span_of("ifconfig-ipv6-pool"),
            format!("'server-ipv6' (at {span}) already defines an ifconfig-ipv6-pool"),
        ));
    }
    let bits = net.prefix_len();
    if !(64..=124).contains(&bits) {
        return Err(invalid(
            span,
            format!("'server-ipv6' prefix length must be 64 to 124, got /{bits}"),
        ));
    }
    if net.trunc() != net {
        return Err(invalid(
            span,
            format!(
                "'server-ipv6' {net} has host bits set; did you mean {}?",
                net.trunc()
            ),
        ));
    }
    let base = u128::from(net.addr());
    let add = |k: u128| Ipv6Addr::from(base.wrapping_add(k));
    let local = Ipv6Net::new(add(1), bits).map_err(|_| invalid(span.clone(), "bad prefix"))?;
    b.raw.mode_server = true;
    b.raw.tls_server = true;
    b.cfg.server_ipv6 = Some(net);
    b.cfg.ifconfig_ipv6 = Some(IfconfigIpv6 {
        local,
        remote: add(2),
    });
    let pool_start = add(if bits < 112 { 0x1000 } else { 2 });
    b.cfg.ifconfig_ipv6_pool =
        Some(Ipv6Net::new(pool_start, bits).map_err(|_| invalid(span.clone(), "bad prefix"))?);
    b.cfg.push.push("tun-ipv6".into());
    Ok(())
}

fn mode_and_role(b: &mut Builder) -> Result<(), ConfigError> {
    if b.cfg.secret.is_some() {
        return super::static_key::mode_and_role(b);
    }
    if b.raw.tls_client && b.raw.tls_server {
        let why = if b.raw.client {
            " ('client' implies tls-client)"
        } else {
            ""
        };
        let other = if b.raw.server.is_some() || b.raw.server_ipv6.is_some() {
            " ('server' implies tls-server)"
        } else {
            ""
        };
        return Err(invalid(
            b.latest_of(&[
                "tls-client",
                "tls-server",
                "client",
                "server",
                "server-ipv6",
            ]),
            format!("tls-client and tls-server cannot be used together{why}{other}"),
        ));
    }
    b.cfg.mode = if b.raw.mode_server {
        Mode::Server
    } else {
        Mode::PointToPoint
    };
    if b.cfg.mode == Mode::Server {
        if b.raw.client || b.raw.pull {
            return Err(invalid(
                b.latest_of(&["client", "pull", "mode"]),
                "'mode server' cannot be used with 'client' or 'pull'",
            ));
        }
        if !b.raw.tls_server {
            return Err(invalid(
                b.span_of("mode"),
                "'mode server' requires 'tls-server'",
            ));
        }
    }
    b.cfg.tls_role = if b.raw.tls_server {
        TlsRole::Server
    } else if b.raw.tls_client {
        TlsRole::Client
    } else {
        return Err(invalid(
            b.root_span(),
            "neither 'client'/'tls-client' nor 'server'/'tls-server' given: static-key and cleartext tunnels are not supported",
        ));
    };
    if b.raw.pull && b.cfg.tls_role != TlsRole::Client {
        return Err(invalid(b.span_of("pull"), "'pull' requires 'tls-client'"));
    }
    Ok(())
}

pub(super) fn resolve_proto(
    b: &Builder,
    raw: (RawTransport, super::types::AddrFamily),
    span: &Span,
) -> Result<Proto, ConfigError> {
    let (t, family) = raw;
    let transport = match t {
        RawTransport::Udp => Transport::Udp,
        RawTransport::TcpServer => Transport::TcpServer,
        RawTransport::TcpClient => Transport::TcpClient,
        // OpenVPN gives `proto tcp` a side only through the helpers.
        RawTransport::Tcp if b.raw.server.is_some() || b.raw.server_ipv6.is_some() => {
            Transport::TcpServer
        }
        RawTransport::Tcp if b.raw.client => Transport::TcpClient,
        RawTransport::Tcp => {
            return Err(invalid(
                span.clone(),
                "'proto tcp' is ambiguous here: use tcp-server or tcp-client",
            ));
        }
    };
    Ok(Proto { transport, family })
}

fn transport(b: &mut Builder) -> Result<(), ConfigError> {
    super::connection::lift(b)?;
    let proto_span = b.span_of("proto");
    let raw = b
        .raw
        .proto
        .unwrap_or((RawTransport::Udp, super::types::AddrFamily::Any));
    b.cfg.proto = resolve_proto(b, raw, &proto_span)?;
    let server = b.cfg.mode == Mode::Server;
    if server && b.cfg.proto.transport == Transport::TcpClient {
        return Err(invalid(
            proto_span,
            "a server must use udp or tcp-server, not tcp-client",
        ));
    }
    if b.cfg.pull && b.cfg.proto.transport == Transport::TcpServer {
        return Err(invalid(
            proto_span,
            "a client must use udp or tcp-client, not tcp-server",
        ));
    }
    super::connection::finish(b)?;
    Ok(())
}

/// `keepalive N M`: `ping N` + `ping-restart M` locally; a server uses
/// `2*M` itself and pushes `ping N`, `ping-restart M`.
fn keepalive(b: &mut Builder) -> Result<(), ConfigError> {
    let Some((ping, restart)) = b.cfg.keepalive else {
        return Ok(());
    };
    let span = b.span_of("keepalive");
    if ping == 0 || restart == 0 {
        return Err(invalid(span, "'keepalive' parameters must be > 0"));
    }
    if u64::from(ping) * 2 > u64::from(restart) {
        return Err(invalid(
            span,
            format!(
                "the second 'keepalive' parameter (restart timeout {restart}) must be at least twice the first (ping interval {ping}); 'keepalive 10 60' is typical"
            ),
        ));
    }
    // By value, as 2.6: `ping-restart 0` / `ping-exit 0` do not count.
    if b.cfg.ping.is_some() || b.cfg.ping_rec.is_some() {
        return Err(invalid(
            b.latest_of(&["keepalive", "ping", "ping-restart", "ping-exit"]),
            "'keepalive' conflicts with 'ping', 'ping-restart' and 'ping-exit'; keepalive sets them",
        ));
    }
    b.cfg.ping = Some(ping);
    let timeout = if b.cfg.mode == Mode::Server {
        b.cfg.push.push(format!("ping {ping}"));
        b.cfg.push.push(format!("ping-restart {restart}"));
        restart.saturating_mul(2)
    } else {
        restart
    };
    b.cfg.ping_rec = Some(PingRec {
        timeout,
        action: PingAction::Restart,
    });
    Ok(())
}

/// Directives that only make sense on one side.
fn mode_specific(b: &mut Builder) -> Result<(), ConfigError> {
    const SERVER_ONLY: &[&str] = &[
        "ifconfig-pool",
        "ifconfig-pool-persist",
        "ifconfig-ipv6-pool",
        "client-config-dir",
        "ccd-exclusive",
        "client-to-client",
        "duplicate-cn",
        "max-clients",
        "auth-user-pass-verify",
        "username-as-common-name",
        "client-connect",
        "client-disconnect",
        "verify-client-cert",
        "auth-user-pass-optional",
    ];
    if b.cfg.mode != Mode::Server
        && let Some(name) = SERVER_ONLY.iter().find(|n| b.given(n))
    {
        return Err(invalid(
            b.span_of(name),
            format!("'{name}' requires server mode ('server' or 'mode server')"),
        ));
    }
    if b.given("auth-user-pass") && !b.cfg.pull {
        return Err(invalid(
            b.span_of("auth-user-pass"),
            "'auth-user-pass' requires 'client' or 'pull'",
        ));
    }
    if b.cfg.mode == Mode::Server {
        server_consistency(b)?;
    }
    binding_consistency(b)
}

/// OpenVPN's `--mode server` consistency checks that concern directives we
/// implement.
fn server_consistency(b: &Builder) -> Result<(), ConfigError> {
    let c = &b.cfg;
    if c.nobind {
        return Err(invalid(
            b.span_of("nobind"),
            "'nobind' cannot be used in server mode",
        ));
    }
    if c.redirect_gateway.is_some() {
        let name = if b.given("redirect-gateway") {
            "redirect-gateway"
        } else {
            "redirect-private"
        };
        return Err(invalid(
            b.span_of(name),
            format!(
                "'{name}' cannot be used in server mode (push \"redirect-gateway ...\" to clients instead)"
            ),
        ));
    }
    if c.ccd_exclusive && c.client_config_dir.is_none() {
        return Err(invalid(
            b.span_of("ccd-exclusive"),
            "'ccd-exclusive' needs 'client-config-dir'",
        ));
    }
    // A plugin may verify passwords (its hooks are known only once loaded).
    if c.username_as_common_name && c.auth_user_pass_verify.is_none() && c.plugins.is_empty() {
        return Err(invalid(
            b.span_of("username-as-common-name"),
            "'username-as-common-name' needs 'auth-user-pass-verify'",
        ));
    }
    if c.ifconfig_pool_persist.is_some()
        && c.ifconfig_pool.is_none()
        && c.ifconfig_ipv6_pool.is_none()
    {
        return Err(invalid(
            b.span_of("ifconfig-pool-persist"),
            "'ifconfig-pool-persist' needs an address pool ('server', 'ifconfig-pool' or 'ifconfig-ipv6-pool')",
        ));
    }
    if c.ifconfig_ipv6_pool.is_some() && c.ifconfig_ipv6.is_none() {
        return Err(invalid(
            b.span_of("ifconfig-ipv6-pool"),
            "'ifconfig-ipv6-pool' needs 'ifconfig-ipv6'",
        ));
    }
    if c.topology != Topology::Subnet
        && c.ifconfig_pool.is_some_and(|p| p.netmask.is_some())
        && b.given("ifconfig-pool")
    {
        return Err(invalid(
            b.span_of("ifconfig-pool"),
            "the netmask of 'ifconfig-pool' is only valid with 'topology subnet'",
        ));
    }
    Ok(())
}

/// `local`/`lport`/`nobind`/`remote` combinations OpenVPN refuses.
fn binding_consistency(b: &Builder) -> Result<(), ConfigError> {
    let c = &b.cfg;
    if c.nobind {
        for name in ["local", "lport"] {
            if b.given(name) {
                return Err(invalid(
                    b.latest_of(&[name, "nobind"]),
                    format!("'{name}' and 'nobind' do not make sense together"),
                ));
            }
        }
        if c.remotes.is_empty() {
            return Err(invalid(
                b.span_of("nobind"),
                "'nobind' does not make sense without 'remote'",
            ));
        }
    }
    if c.proto.transport == Transport::TcpClient && c.remotes.is_empty() {
        return Err(invalid(
            b.span_of("proto"),
            "'proto tcp-client' needs a 'remote'",
        ));
    }
    if c.proto.transport == Transport::TcpServer && c.remotes.len() > 1 {
        return Err(invalid(
            b.span_of("remote"),
            "TCP server mode allows at most one 'remote'",
        ));
    }
    if let Some(i) = c.ifconfig
        && i.local == i.remote_netmask
    {
        return Err(invalid(
            b.span_of("ifconfig"),
            "the two 'ifconfig' addresses must differ",
        ));
    }
    Ok(())
}

fn tls(b: &mut Builder) -> Result<(), ConfigError> {
    // Static-key mode: no TLS; its refusals were made in mode_and_role.
    if b.cfg.secret.is_some() {
        return Ok(());
    }
    let server = b.cfg.tls_role == TlsRole::Server;
    if b.cfg.pkcs12.is_some() {
        for name in ["cert", "key"] {
            if b.given(name) {
                return Err(invalid(
                    b.span_of(name),
                    format!("'{name}' cannot be used together with 'pkcs12'"),
                ));
            }
        }
    } else {
        match (b.cfg.cert.is_some(), b.cfg.key.is_some()) {
            (true, false) => {
                return Err(invalid(b.span_of("cert"), "'cert' given without 'key'"));
            }
            (false, true) => {
                return Err(invalid(b.span_of("key"), "'key' given without 'cert'"));
            }
            _ => {}
        }
    }
    let has_identity = b.cfg.pkcs12.is_some() || b.cfg.cert.is_some();
    // `peer-fingerprint` without `ca` trusts the listed certificates (2.6).
    let has_ca = b.cfg.pkcs12.is_some()
        || b.cfg.ca.is_some()
        || b.cfg
            .extras
            .cert_hashes
            .as_ref()
            .is_some_and(|h| h.depth == 0);
    if server {
        if !has_identity {
            return Err(invalid(
                b.root_span(),
                "a TLS server needs its certificate: 'cert' and 'key' (or 'pkcs12')",
            ));
        }
        if !has_ca && b.cfg.verify_client_cert != VerifyClientCert::None {
            return Err(invalid(
                b.root_span(),
                "a TLS server needs 'ca' to verify client certificates (or 'verify-client-cert none' with 'auth-user-pass-verify')",
            ));
        }
        if b.cfg.verify_client_cert != VerifyClientCert::Require
            && b.cfg.auth_user_pass_verify.is_none()
            && b.cfg.plugins.is_empty()
        {
            return Err(invalid(
                b.span_of("verify-client-cert"),
                "'verify-client-cert none|optional' needs another way to authenticate clients: 'auth-user-pass-verify'",
            ));
        }
    } else {
        if !has_ca {
            return Err(invalid(
                b.root_span(),
                "a TLS client needs 'ca' to verify the server (or 'pkcs12')",
            ));
        }
        if !has_identity && b.cfg.auth_user_pass.is_none() {
            return Err(invalid(
                b.root_span(),
                "no client authentication: give 'cert' and 'key', 'pkcs12', or 'auth-user-pass'",
            ));
        }
    }
    let wraps: Vec<&str> = ["tls-auth", "tls-crypt", "tls-crypt-v2"]
        .into_iter()
        .filter(|n| match *n {
            "tls-auth" => b.raw.tls_auth.is_some(),
            "tls-crypt" => b.raw.tls_crypt.is_some(),
            _ => b.raw.tls_crypt_v2.is_some(),
        })
        .collect();
    if let [first, second, ..] = wraps.as_slice() {
        return Err(invalid(
            b.latest_of(&wraps),
            format!(
                "'{first}' (at {}) and '{second}' (at {}) cannot be used together: choose one control-channel protection",
                b.span_of(first),
                b.span_of(second)
            ),
        ));
    }
    b.cfg.tls_wrap = if let Some((key, dir)) = b.raw.tls_auth.take() {
        TlsWrap::Auth {
            key,
            direction: dir.or(b.cfg.key_direction),
        }
    } else if let Some(key) = b.raw.tls_crypt.take() {
        TlsWrap::Crypt { key }
    } else if let Some((key, force_cookie)) = b.raw.tls_crypt_v2.take() {
        if let Source::Inline(body) = &key {
            let want = if server { "server" } else { "client" };
            let tag = format!("OpenVPN tls-crypt-v2 {want} key");
            let ok = pem::parse(body.as_bytes()).is_ok_and(|p| p.tag() == tag);
            if !ok {
                return Err(ConfigError::at(
                    &b.span_of("tls-crypt-v2"),
                    ConfigErrorKind::MalformedInline {
                        tag: "tls-crypt-v2".into(),
                        reason: format!("a {want} needs a '{tag}' block"),
                    },
                ));
            }
        }
        TlsWrap::CryptV2 { key, force_cookie }
    } else {
        TlsWrap::None
    };
    if let (Some(min), Some(max)) = (b.cfg.tls_version_min, b.cfg.tls_version_max)
        && min.version > max
    {
        return Err(invalid(
            b.latest_of(&["tls-version-min", "tls-version-max"]),
            "'tls-version-min' is above 'tls-version-max'",
        ));
    }
    Ok(())
}

fn data_channel(b: &mut Builder) -> Result<(), ConfigError> {
    b.cfg.data_ciphers = match b.raw.data_ciphers.take() {
        Some(l) => l,
        None => DEFAULT_DATA_CIPHERS.iter().map(|c| c.to_string()).collect(),
    };
    if b.cfg.secret.is_some() {
        return Ok(());
    }
    if b.cfg.no_replay {
        b.warn(
            &b.span_of("no-replay"),
            "'no-replay' only takes effect in static-key mode here; with TLS the data channel keeps its replay protection".into(),
        );
    }
    if let Some(c) = b.cfg.cipher.clone()
        && !super::directives::CIPHERS.contains(&c.as_str())
        && !(b.cfg.pull || b.cfg.mode == Mode::Server)
    {
        return Err(ConfigError::at(
            &b.span_of("cipher"),
            ConfigErrorKind::InvalidValue {
                name: "cipher".into(),
                value: c,
                expected: format!(
                    "one of {} (without 'pull' or 'mode server' 2.6 uses 'cipher' for the data channel)",
                    super::directives::CIPHERS.join(", ")
                ),
            },
        ));
    }
    if let Some(c) = b.cfg.cipher.clone()
        && b.cfg.data_ciphers_fallback.is_none()
        && !b.cfg.data_ciphers.contains(&c)
    {
        let list = b.cfg.data_ciphers.join(":");
        b.warn(
            &b.span_of("cipher"),
            format!(
                "'cipher {c}' is not in data-ciphers ({list}); as in OpenVPN 2.6 it is ignored for cipher negotiation (use data-ciphers or data-ciphers-fallback)"
            ),
        );
    }
    Ok(())
}

fn misc(b: &mut Builder) -> Result<(), ConfigError> {
    let tcp = b.cfg.proto.transport != Transport::Udp;
    if tcp && b.cfg.explicit_exit_notify.is_some() {
        b.warn(
            &b.span_of("explicit-exit-notify"),
            "'explicit-exit-notify' is ignored with TCP (as in OpenVPN)".into(),
        );
        b.cfg.explicit_exit_notify = None;
    }
    if tcp && matches!(b.cfg.xdp, XdpMode::Native | XdpMode::Generic) {
        b.warn(
            &b.span_of("xdp"),
            "'xdp' only accelerates UDP; with TCP the plain socket path is used".into(),
        );
    }
    let s = &b.cfg.scripts;
    let any_script = s.up.is_some()
        || b.cfg.extras.route_up.is_some()
        || s.down.is_some()
        || s.client_connect.is_some()
        || s.client_disconnect.is_some()
        || b.cfg.auth_user_pass_verify.is_some();
    if any_script && b.cfg.script_security < 2 {
        b.warn(
            &b.latest_of(&[
                "up",
                "route-up",
                "down",
                "client-connect",
                "client-disconnect",
                "auth-user-pass-verify",
            ]),
            "scripts are configured but 'script-security' is below 2, so they will not run".into(),
        );
    }
    if b.cfg.max_clients == 0 {
        return Err(invalid(
            b.span_of("max-clients"),
            "'max-clients' must be > 0",
        ));
    }
    Ok(())
}

/// What a named path must be.
#[derive(Clone, Copy)]
enum Want {
    File,
    Dir,
    /// A file we will create: its directory must exist.
    Output,
    /// A command: its first word must be an executable file.
    Command,
}

/// Resolves relative paths against `cd` (or the start directory) and, if
/// asked, checks they exist.
fn files(b: &mut Builder) -> Result<(), ConfigError> {
    let base = b.base_dir().to_path_buf();
    let check = b.check_files;
    let spans = &b.spans;
    let root = b.root_span();
    let span_of = |n: &str| spans.get(n).map(|(_, s)| s.clone()).unwrap_or(root.clone());
    let fix = |name: &'static str, p: &mut PathBuf, want: Want| -> Result<(), ConfigError> {
        if p.is_relative() {
            *p = base.join(&*p);
        }
        if check {
            check_path(name, p, want).map_err(|k| ConfigError::at(&span_of(name), k))?;
        }
        Ok(())
    };
    let fix_src = |name: &'static str, s: &mut Option<Source>, want: Want| match s {
        Some(Source::File(p)) => fix(name, p, want),
        _ => Ok(()),
    };
    let c = &mut b.cfg;
    fix_src("ca", &mut c.ca, Want::File)?;
    fix_src("cert", &mut c.cert, Want::File)?;
    fix_src("key", &mut c.key, Want::File)?;
    fix_src("pkcs12", &mut c.pkcs12, Want::File)?;
    fix_src("extra-certs", &mut c.extra_certs, Want::File)?;
    let crl_want = if c.crl_verify_dir {
        Want::Dir
    } else {
        Want::File
    };
    fix_src("crl-verify", &mut c.crl_verify, crl_want)?;
    if let Some(Dh::Ignored(Source::File(p))) = &mut c.dh {
        fix("dh", p, Want::File)?;
    }
    if let Some(super::types::StaticSecret {
        key: Source::File(p),
        ..
    }) = &mut c.secret
    {
        fix("secret", p, Want::File)?;
    }
    match &mut c.tls_wrap {
        TlsWrap::Auth {
            key: Source::File(p),
            ..
        } => fix("tls-auth", p, Want::File)?,
        TlsWrap::Crypt {
            key: Source::File(p),
        } => fix("tls-crypt", p, Want::File)?,
        TlsWrap::CryptV2 {
            key: Source::File(p),
            ..
        } => fix("tls-crypt-v2", p, Want::File)?,
        _ => {}
    }
    if let Some(AuthUserPass::Source(Source::File(p))) = &mut c.auth_user_pass {
        fix("auth-user-pass", p, Want::File)?;
    }
    if let Some(p) = &mut c.client_config_dir {
        fix("client-config-dir", p, Want::Dir)?;
    }
    if let Some(pp) = &mut c.ifconfig_pool_persist {
        fix("ifconfig-pool-persist", &mut pp.file, Want::Output)?;
    }
    if let Some(s) = &mut c.status {
        fix("status", &mut s.path, Want::Output)?;
    }
    if let Some(l) = &mut c.log {
        let name = if l.append { "log-append" } else { "log" };
        fix(name, &mut l.path, Want::Output)?;
    }
    if let Some(p) = &mut c.writepid {
        fix("writepid", p, Want::Output)?;
    }
    // Commands stay as written (they are command lines, not paths); only
    // their program is checked, relative to the same directory.
    if let Some(Some(p)) = &mut c.extras.askpass {
        fix("askpass", p, Want::File)?;
    }
    if let Some(p) = &mut c.extras.replay_persist {
        fix("replay-persist", p, Want::Output)?;
    }
    let commands: [(&'static str, Option<&String>); 6] = [
        ("up", c.scripts.up.as_ref()),
        ("route-up", c.extras.route_up.as_ref()),
        ("down", c.scripts.down.as_ref()),
        ("client-connect", c.scripts.client_connect.as_ref()),
        ("client-disconnect", c.scripts.client_disconnect.as_ref()),
        (
            "auth-user-pass-verify",
            c.auth_user_pass_verify.as_ref().map(|v| &v.command),
        ),
    ];
    for (name, cmd) in commands {
        if let Some(program) = cmd.and_then(|c| c.split_ascii_whitespace().next()) {
            let mut p = PathBuf::from(program);
            fix(name, &mut p, Want::Command)?;
        }
    }
    Ok(())
}

fn check_path(name: &str, p: &Path, want: Want) -> Result<(), ConfigErrorKind> {
    let err = |what: &'static str, reason: String| ConfigErrorKind::File {
        name: name.into(),
        what,
        path: p.to_path_buf(),
        reason,
    };
    match want {
        Want::File => match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(err("file", "not a regular file".into())),
            Err(e) => Err(err("file", e.to_string())),
        },
        Want::Dir => match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(err("directory", "not a directory".into())),
            Err(e) => Err(err("directory", e.to_string())),
        },
        Want::Output => {
            let dir = p.parent().unwrap_or(Path::new("/"));
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(err("file", "its parent is not a directory".into())),
                Err(e) => Err(err("file", format!("its directory: {e}"))),
            }
        }
        Want::Command => {
            use std::os::unix::fs::PermissionsExt as _;
            match std::fs::metadata(p) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
                Ok(_) => Err(err("command", "not an executable file".into())),
                Err(e) => Err(err("command", e.to_string())),
            }
        }
    }
}

/// `fragment` (2.6 `options_postprocess_verify_ce` and `_mutate_ce`, and the
/// advisories of `do_init_frame`): UDP only, and `mssfix` without a value
/// follows it.
fn fragment(b: &mut Builder) -> Result<(), ConfigError> {
    let Some(f) = b.cfg.fragment else {
        return Ok(());
    };
    let span = b.span_of("fragment");
    let udp = b.cfg.proto.transport == Transport::Udp
        && b.cfg
            .remotes
            .iter()
            .all(|r| r.proto.transport == Transport::Udp);
    if !udp {
        return Err(invalid(
            span,
            "--fragment can only be used with --proto udp",
        ));
    }
    // 2.6: "If --mssfix is supplied without a parameter or not specified
    // at all, default it to --fragment value", keeping mssfix's default
    // "mtu" meaning (the outer IP packet).
    let mssfix_unset = !b.spans.contains_key("mssfix") || b.raw.mssfix_unset;
    if mssfix_unset {
        b.cfg.mssfix = Some(super::types::Mssfix {
            size: f.size,
            mode: super::types::MssfixMode::Mtu,
        });
    }
    if let Some(m) = b.cfg.mssfix {
        if m.size > f.size {
            b.warn(
                &span,
                format!(
                    "if you use --mssfix and --fragment, you should set --fragment ({}) larger or equal than --mssfix ({})",
                    f.size, m.size
                ),
            );
        }
        let mssfix_encap = mssfix_unset || m.mode == super::types::MssfixMode::Mtu;
        if f.mtu != mssfix_encap {
            b.warn(
                &span,
                "if you use --mssfix and --fragment, you should use the \"mtu\" flag for both or none of of them (as OpenVPN warns)".into(),
            );
        }
    }
    Ok(())
}
