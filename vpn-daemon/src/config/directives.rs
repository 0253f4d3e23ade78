//! The directive table: one row per OpenVPN directive, giving its name, how
//! many parameters it takes, whether it may be an inline `<name>` block, and
//! the parser that stores it in the [`Config`](super::Config) (or in the
//! written-form state the helpers need). A second table lists the OpenVPN
//! directives we recognise but do not implement, with the reason.
//!
//! Parsers only check and store one directive; everything that depends on
//! other directives (helpers, defaults, conflicts, file existence) happens
//! after the last one is read, in `expand`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    str::FromStr,
};

use base64::Engine as _;
use ipnet::Ipv6Net;

use bitflags::bitflags;

use super::{
    Builder, ConfigError, ConfigErrorKind, HttpProxy, HttpProxyAuth, NamedRoute, RawRemote,
    RouteTarget, SocksProxy, Span,
    connection::MAX_CUSTOM_HTTP_HEADER,
    types::{
        AddrFamily, AuthUserPass, AuthUserPassVerify, CertUsage, ConnectRetry, DevType, Dh,
        DhcpOption, DnsSec, DnsServer, DnsTransport, Fragment, Ifconfig, IfconfigIpv6,
        IfconfigPool, Inactive, KeyDirection, LogFile, Mssfix, MssfixMode, PingAction, PingRec,
        PoolPersist, RawTransport, RedirectGateway, RenegSec, ReplayWindow, ResolvRetry, Route,
        RouteAddr, RouteGateway, RouteIpv6, ServerBridge, Source, StatusFile, TlsVersion,
        TlsVersionMin, Topology, VerifyClientCert, VerifyMethod, VlanAccept, X509NameCheck,
        XdpMode,
    },
};

mod host;
pub(crate) use host::HOST_DIRECTIVES;
mod extra;
#[cfg(test)]
pub(super) use extra::CLIENT_ONLY;

/// One directive's parameters as the parser sees them.
pub(super) struct Args<'a> {
    pub(super) name: &'a str,
    pub(super) words: &'a [String],
    pub(super) inline: Option<&'a str>,
    pub(super) span: &'a Span,
}

type Apply = fn(&mut Builder, &Args<'_>) -> Result<(), ConfigErrorKind>;

bitflags! {
    /// Where a directive may appear: 2.6's `OPT_P_*` permission classes
    /// folded into the three places that read options. Each row's scope
    /// is taken from the `VERIFY_PERMISSION` of its `add_option` branch.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Scope: u8 {
        /// A config file or the command line (`OPT_P_DEFAULT`: every class
        /// but `OPT_P_INSTANCE`).
        const CONFIG = 1 << 0;
        /// A client-config-dir file or client-connect output
        /// (`CLIENT_CONNECT_OPT_MASK`: `OPT_P_INSTANCE`, `OPT_P_INHERIT`,
        /// `OPT_P_PUSH`, `OPT_P_TIMER`, `OPT_P_CONFIG`, `OPT_P_ECHO`,
        /// `OPT_P_COMP`, `OPT_P_SOCKFLAGS`).
        const INSTANCE = 1 << 1;
        /// Both of the above.
        const CONFIG_INSTANCE = Self::CONFIG.bits() | Self::INSTANCE.bits();
    }
}

/// One row of the directive table.
pub struct Spec {
    /// Directive name, without `--`.
    pub name: &'static str,
    /// Fewest parameters.
    pub min: usize,
    /// Most parameters.
    pub max: usize,
    /// Whether an inline `<name>...</name>` block may give its (first)
    /// parameter.
    pub inline: bool,
    /// Where it may appear.
    pub scope: Scope,
    apply: Apply,
    /// With [`Scope::INSTANCE`]: the parser into
    /// [`CcdOptions`](super::ccd::CcdOptions) (arity checked against
    /// `min`/`max` first); `None` keeps the line as written for the driver.
    pub(super) instance: Option<super::ccd::InstanceApply>,
}

impl Spec {
    /// The row with scope `scope` instead of config-only.
    const fn scope(mut self, scope: Scope) -> Spec {
        self.scope = scope;
        self
    }

    /// The row with an instance-scope parser.
    const fn instance(mut self, f: super::ccd::InstanceApply) -> Spec {
        self.instance = Some(f);
        self
    }
}

const fn d(name: &'static str, min: usize, max: usize, apply: Apply) -> Spec {
    Spec {
        name,
        min,
        max,
        inline: false,
        scope: Scope::CONFIG,
        apply,
        instance: None,
    }
}

const fn inl(name: &'static str, min: usize, max: usize, apply: Apply) -> Spec {
    Spec {
        inline: true,
        ..d(name, min, max, apply)
    }
}

/// Instance-scope rows 2.6 has no config-file meaning for and that the
/// config file refuses otherwise (`push-remove` and the auth tokens with
/// their own [`UNSUPPORTED`] reason; `bind-dev` as unknown), kept out of
/// [`all`] so the config file's answers stay those.
pub(super) static INSTANCE_ONLY: &[Spec] = &[
    d("push-remove", 1, 1, |_, _| Ok(()))
        .scope(Scope::INSTANCE)
        .instance(super::ccd::push_remove),
    d("auth-token", 0, 255, |_, _| Ok(())).scope(Scope::INSTANCE),
    d("auth-token-user", 0, 255, |_, _| Ok(())).scope(Scope::INSTANCE),
    d("bind-dev", 0, 255, |_, _| Ok(())).scope(Scope::INSTANCE),
];

/// The row for `name` if it may appear in `scope`.
pub(super) fn lookup_scoped(name: &str, scope: Scope) -> Option<&'static Spec> {
    all()
        .chain(INSTANCE_ONLY)
        .find(|s| s.name == name)
        .filter(|s| s.scope.contains(scope))
}

/// Every directive this daemon implements.
pub static DIRECTIVES: &[Spec] = &[
    // role
    // `config FILE` is read by `run` itself: its errors are located in
    // the nested file, not here.
    d("config", 1, 1, |_, _| Ok(()))
        .scope(Scope::CONFIG_INSTANCE)
        .instance(super::ccd::config),
    d("mode", 1, 1, mode),
    d("client", 0, 0, |b, _| {
        b.raw.client = true;
        Ok(())
    }),
    d("pull", 0, 0, |b, _| {
        b.raw.pull = true;
        Ok(())
    }),
    d("tls-client", 0, 0, |b, _| {
        b.raw.tls_client = true;
        Ok(())
    }),
    d("tls-server", 0, 0, |b, _| {
        b.raw.tls_server = true;
        Ok(())
    }),
    d("server", 2, 3, server),
    d("server-ipv6", 1, 1, |b, a| {
        b.raw.server_ipv6 = Some(a.ipv6net(0)?);
        Ok(())
    }),
    // device
    d("dev", 1, 1, |b, a| {
        b.raw.dev = Some(ifname(a, 0)?);
        Ok(())
    }),
    d("dev-type", 1, 1, |b, a| {
        b.raw.dev_type = Some(dev_type(a, a.word(0)?)?);
        Ok(())
    }),
    d("dev-node", 1, 1, |b, a| {
        b.cfg.dev_node = Some(a.path(0)?);
        Ok(())
    }),
    d("lladdr", 1, 1, |b, a| {
        b.cfg.lladdr = Some(lladdr(a, 0)?);
        Ok(())
    }),
    d("tun-mtu-extra", 1, 1, |b, a| {
        // 2.6 reads it with positive_atoi: anything else is 0.
        b.cfg.tun_mtu_extra = Some(a.num_range(0, 0, 65535)?);
        Ok(())
    }),
    d("server-bridge", 0, 4, server_bridge),
    d("vlan-tagging", 0, 0, |b, _| {
        b.raw.vlan_tagging = true;
        Ok(())
    }),
    d("vlan-accept", 1, 1, |b, a| {
        b.raw.vlan_accept = Some(match a.word(0)? {
            "all" => VlanAccept::All,
            "tagged" => VlanAccept::Tagged,
            "untagged" => VlanAccept::Untagged,
            _ => return Err(a.invalid(0, "'tagged', 'untagged' or 'all'")),
        });
        Ok(())
    }),
    d("vlan-pvid", 1, 1, |b, a| {
        b.raw.vlan_pvid = Some(a.num_range(0, 1, 4094)?);
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("topology", 1, 1, |b, a| {
        b.raw.topology = Some(match a.word(0)? {
            "subnet" => Topology::Subnet,
            "net30" => Topology::Net30,
            "p2p" => Topology::P2p,
            _ => return Err(a.invalid(0, "subnet, net30 or p2p")),
        });
        Ok(())
    }),
    d("tun-mtu", 1, 2, |b, a| {
        b.cfg.tun_mtu = a.num_range(0, 68, 65535)?;
        if a.words.len() > 1 {
            // OpenVPN's second value only changes what OCC reports.
            a.num_range::<u32>(1, 68, 65535)?;
        }
        Ok(())
    }),
    d("tun-mtu-max", 1, 1, |b, a| {
        b.cfg.tun_mtu_max = a.num_range(0, 68, 65536)?;
        Ok(())
    }),
    d("mssfix", 0, 2, mssfix),
    d("fragment", 1, 2, fragment),
    d("txqueuelen", 1, 1, |b, a| {
        b.cfg.txqueuelen = Some(a.num(0)?);
        Ok(())
    }),
    d("persist-tun", 0, 0, |b, _| {
        b.cfg.persist_tun = true;
        Ok(())
    }),
    d("persist-key", 0, 0, |b, _| {
        b.cfg.persist_key = true;
        Ok(())
    }),
    d("disable-dco", 0, 0, |_, _| Ok(())),
    d("tun-ipv6", 0, 0, |b, a| {
        b.warn(
            a.span,
            "'tun-ipv6' is obsolete (IPv6 is always available) and has no effect".into(),
        );
        Ok(())
    }),
    // link
    d("proto", 1, 1, |b, a| {
        b.raw.proto = Some(proto(a, 0)?);
        Ok(())
    }),
    d("port", 1, 1, |b, a| {
        let p = a.port(0)?;
        b.cfg.lport = p;
        b.cfg.rport = p;
        Ok(())
    }),
    d("lport", 1, 1, |b, a| {
        b.cfg.lport = a.num(0)?;
        Ok(())
    }),
    d("rport", 1, 1, |b, a| {
        b.cfg.rport = a.port(0)?;
        Ok(())
    }),
    d("local", 1, 1, |b, a| {
        b.cfg.local = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("remote", 1, 3, remote),
    d("remote-random", 0, 0, |b, _| {
        b.cfg.remote_random = true;
        Ok(())
    }),
    d("connect-retry", 1, 2, |b, a| {
        let mut initial: u32 = a.num(0)?;
        // OpenVPN keeps the base in 16 bits so the backoff cannot overflow.
        if initial > 0xFFFF {
            initial = 0xFFFF;
            b.warn(
                a.span,
                format!("connect retry wait interval truncated to {initial}"),
            );
        }
        // A maximum below the base is raised to it; without one the
        // previous maximum stays (OpenVPN sets it only when given).
        let max = if a.words.len() > 1 {
            a.num::<u32>(1)?.max(initial)
        } else {
            b.cfg.connect_retry.max
        };
        b.cfg.connect_retry = ConnectRetry { initial, max };
        Ok(())
    }),
    d("connect-retry-max", 1, 1, |b, a| {
        let n: u32 = a.num(0)?;
        b.cfg.connect_retry_max = (n > 0).then_some(n);
        Ok(())
    }),
    d("connect-timeout", 1, 1, |b, a| {
        b.cfg.connect_timeout = a.num(0)?;
        Ok(())
    }),
    d("server-poll-timeout", 1, 1, |b, a| {
        b.cfg.connect_timeout = a.num(0)?;
        Ok(())
    }),
    d("persist-remote-ip", 0, 0, |b, _| {
        b.cfg.persist_remote_ip = true;
        Ok(())
    }),
    d("remote-random-hostname", 0, 0, |b, _| {
        b.cfg.remote_random_hostname = true;
        Ok(())
    }),
    d("http-proxy", 1, 4, http_proxy),
    d("http-proxy-option", 1, 3, http_proxy_option),
    inl("http-proxy-user-pass", 1, 1, |b, a| {
        let src = match a.inline {
            Some(_) => a.source(0, PemCheck::UserPass)?,
            None => Source::File(b.base_dir().join(a.path(0)?)),
        };
        b.raw
            .http_proxy
            .get_or_insert_with(new_http_proxy)
            .user_pass = Some(src);
        Ok(())
    }),
    d("http-proxy-retry", 0, 0, proxy_retry_deprecated),
    d("socks-proxy-retry", 0, 0, proxy_retry_deprecated),
    d("http-proxy-timeout", 1, 1, |b, a| {
        a.num::<u32>(0)?;
        b.warn(
            a.span,
            "DEPRECATED OPTION: http-proxy-timeout: the timeout until a connection to a server is established is managed with a single timeout set by connect-timeout".into(),
        );
        Ok(())
    }),
    d("socks-proxy", 1, 3, |b, a| {
        let port = if a.words.len() > 1 { a.port(1)? } else { 1080 };
        let authfile = match a.words.get(2) {
            Some(_) => Some(b.base_dir().join(a.path(2)?)),
            None => None,
        };
        b.raw.socks_proxy = Some(SocksProxy {
            host: a.nonempty(0)?.to_string(),
            port,
            authfile,
        });
        Ok(())
    }),
    // Read by `run` itself: the block's lines carry their own positions.
    inl("connection", 1, 2, |b, a| {
        b.warn(
            a.span,
            "'connection' outside a <connection> block has no effect".into(),
        );
        Ok(())
    }),
    d("nobind", 0, 0, |b, _| {
        b.cfg.nobind = true;
        Ok(())
    }),
    d("float", 0, 0, |b, _| {
        b.cfg.float = true;
        Ok(())
    }),
    d("resolv-retry", 1, 1, |b, a| {
        b.cfg.resolv_retry = match a.word(0)? {
            "infinite" => ResolvRetry::Infinite,
            _ => ResolvRetry::Seconds(a.num(0)?),
        };
        Ok(())
    }),
    d("sndbuf", 1, 1, |b, a| {
        b.cfg.sndbuf = Some(a.num(0)?);
        Ok(())
    }),
    d("rcvbuf", 1, 1, |b, a| {
        b.cfg.rcvbuf = Some(a.num(0)?);
        Ok(())
    }),
    d("explicit-exit-notify", 0, 1, |b, a| {
        let n = if a.words.is_empty() { 1 } else { a.num(0)? };
        b.cfg.explicit_exit_notify = (n > 0).then_some(n);
        Ok(())
    }),
    // addressing and routing
    d("ifconfig", 2, 2, |b, a| {
        b.cfg.ifconfig = Some(Ifconfig {
            local: a.ipv4(0)?,
            remote_netmask: a.ipv4(1)?,
        });
        Ok(())
    }),
    d("ifconfig-ipv6", 2, 2, |b, a| {
        b.cfg.ifconfig_ipv6 = Some(IfconfigIpv6 {
            local: a.ipv6net(0)?,
            remote: a.ipv6(1)?,
        });
        Ok(())
    }),
    d("ifconfig-pool", 2, 3, |b, a| {
        let start = a.ipv4(0)?;
        let end = a.ipv4(1)?;
        if u32::from(start) > u32::from(end) {
            return Err(a.invalid(1, "an end address not below the start address"));
        }
        let netmask = if a.words.len() > 2 {
            Some(a.netmask(2)?)
        } else {
            None
        };
        b.cfg.ifconfig_pool = Some(IfconfigPool {
            start,
            end,
            netmask,
        });
        Ok(())
    }),
    d("ifconfig-pool-persist", 1, 2, |b, a| {
        let seconds = if a.words.len() > 1 { a.num(1)? } else { 600 };
        b.cfg.ifconfig_pool_persist = Some(PoolPersist {
            file: a.path(0)?,
            seconds,
        });
        Ok(())
    }),
    d("ifconfig-ipv6-pool", 1, 1, |b, a| {
        b.cfg.ifconfig_ipv6_pool = Some(a.ipv6net(0)?);
        Ok(())
    }),
    d("push", 1, 1, |b, a| {
        let opt = a.nonempty(0)?;
        b.cfg.push.push(opt.to_string());
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::push),
    d("route", 1, 4, route),
    d("route-ipv6", 1, 3, |b, a| {
        let gateway = match a.words.get(1).map(String::as_str) {
            None | Some("default") => None,
            Some(_) => Some(a.ipv6(1)?),
        };
        let metric = match a.words.get(2).map(String::as_str) {
            None | Some("default") => None,
            Some(_) => Some(a.num(2)?),
        };
        b.cfg.routes_ipv6.push(RouteIpv6 {
            network: a.ipv6net(0)?,
            gateway,
            metric,
        });
        Ok(())
    }),
    d("route-gateway", 1, 1, |b, a| {
        b.cfg.route_gateway = Some(match a.word(0)? {
            "dhcp" => RouteGateway::Dhcp,
            _ => RouteGateway::Addr(a.ipv4(0)?),
        });
        Ok(())
    }),
    d("redirect-gateway", 0, 8, |b, a| redirect(b, a, true)),
    d("redirect-private", 0, 8, |b, a| redirect(b, a, false)),
    d("dhcp-option", 1, 3, dhcp_option),
    d("dns", 2, 16, dns),
    // route timing, scripts, certificate checks, Linux no-ops (extra.rs)
    d("route-metric", 1, 1, extra::route_metric),
    d("route-delay", 0, 2, extra::route_delay),
    d("route-up", 1, 1, |b, a| {
        b.cfg.extras.route_up = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    // Windows only; Linux openvpn accepts any value without a word.
    d("route-method", 1, 1, |_, _| Ok(())),
    d("down-pre", 0, 0, |b, _| {
        b.cfg.extras.down_pre = true;
        Ok(())
    }),
    d("tls-exit", 0, 0, |b, _| {
        b.cfg.extras.tls_exit = true;
        Ok(())
    }),
    d("fast-io", 0, 0, |b, _| {
        b.cfg.extras.fast_io = true;
        Ok(())
    }),
    d("disable-occ", 0, 0, |b, _| {
        b.cfg.extras.disable_occ = true;
        Ok(())
    }),
    d("ifconfig-nowarn", 0, 0, |b, _| {
        b.cfg.extras.ifconfig_nowarn = true;
        Ok(())
    }),
    d("replay-persist", 1, 1, |b, a| {
        b.cfg.extras.replay_persist = Some(a.path(0)?);
        Ok(())
    }),
    d("ns-cert-type", 1, 1, extra::ns_cert_type),
    d("askpass", 0, 1, |b, a| {
        b.cfg.extras.askpass = Some(if a.words.is_empty() {
            None
        } else {
            Some(a.path(0)?)
        });
        Ok(())
    }),
    d("session-timeout", 1, 1, |b, a| {
        let n: u32 = a.num(0)?;
        b.cfg.extras.session_timeout = (n > 0).then_some(n);
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::session_timeout),
    d("keying-material-exporter", 2, 2, |b, a| {
        let label = a.nonempty(0)?;
        // 2.6's checks: an RFC 5705 exporter label, not the one of our own
        // data keys, 16..4095 bytes.
        if !label.starts_with("EXPORTER") || label == crate::proto::tls::EKM_LABEL_DATAKEYS {
            return Err(a.invalid(
                0,
                "a label starting with EXPORTER (and not EXPORTER-OpenVPN-datakeys)",
            ));
        }
        let len = a.num_range(1, 16, 4095)?;
        b.cfg.extras.keying_material_exporter = Some((label.to_string(), len));
        Ok(())
    }),
    d("auth-user-pass-optional", 0, 0, |b, _| {
        b.cfg.extras.auth_user_pass_optional = true;
        Ok(())
    }),
    d("x509-username-field", 1, 15, |b, a| {
        let mut fields = Vec::with_capacity(a.words.len());
        for (i, w) in a.words.iter().enumerate() {
            if let Some(ext) = w.strip_prefix("ext:") {
                if ext != "subjectAltName" && ext != "issuerAltName" {
                    return Err(a.invalid(
                        i,
                        "ext:subjectAltName, ext:issuerAltName or a subject field",
                    ));
                }
                fields.push(w.clone());
            } else if !w.is_empty() && !w.chars().any(|c| c.is_ascii_uppercase()) {
                // 2.6 upcases an all-lower-case name, with this warning.
                let up = w.to_ascii_uppercase();
                b.warn(
                    a.span,
                    format!("DEPRECATED FEATURE: automatically upcased the --x509-username-field parameter to '{up}'; please update your configuration"),
                );
                fields.push(up);
            } else {
                fields.push(w.clone());
            }
        }
        b.cfg.extras.x509_username_field = fields;
        Ok(())
    }),
    d("push-peer-info", 0, 0, |b, _| {
        b.cfg.push_peer_info = true;
        Ok(())
    }),
    d("auth-retry", 1, 1, |b, a| {
        b.cfg.extras.auth_retry = match a.word(0)? {
            "none" => crate::config::extras::AuthRetry::None,
            "nointeract" => crate::config::extras::AuthRetry::NoInteract,
            "interact" => crate::config::extras::AuthRetry::Interact,
            _ => return Err(a.invalid(0, "none, nointeract or interact")),
        };
        Ok(())
    }),
    d("remote-cert-ku", 0, 15, extra::remote_cert_ku),
    d("remote-cert-eku", 1, 1, extra::remote_cert_eku),
    inl("verify-hash", 1, 2, extra::cert_hash),
    inl("peer-fingerprint", 1, 2, extra::cert_hash),
    d("iroute", 1, 2, extra::client_only)
        .scope(Scope::INSTANCE)
        .instance(super::ccd::iroute),
    d("iroute-ipv6", 1, 1, extra::client_only)
        .scope(Scope::INSTANCE)
        .instance(super::ccd::iroute_ipv6),
    d("ifconfig-push", 2, 3, extra::client_only)
        .scope(Scope::INSTANCE)
        .instance(super::ccd::ifconfig_push),
    d("ifconfig-ipv6-push", 1, 2, extra::client_only)
        .scope(Scope::INSTANCE)
        .instance(super::ccd::ifconfig_ipv6_push),
    d("push-reset", 0, 0, extra::client_only)
        .scope(Scope::INSTANCE)
        .instance(super::ccd::push_reset),
    d("disable", 0, 0, extra::client_only)
        .scope(Scope::INSTANCE)
        .instance(super::ccd::disable),
    // server
    d("client-config-dir", 1, 1, |b, a| {
        b.cfg.client_config_dir = Some(a.path(0)?);
        Ok(())
    }),
    d("ccd-exclusive", 0, 0, |b, _| {
        b.cfg.ccd_exclusive = true;
        Ok(())
    }),
    d("client-to-client", 0, 0, |b, _| {
        b.cfg.client_to_client = true;
        Ok(())
    }),
    d("duplicate-cn", 0, 0, |b, _| {
        b.cfg.duplicate_cn = true;
        Ok(())
    }),
    d("max-clients", 1, 1, |b, a| {
        b.cfg.max_clients = a.num_range(0, 1, 0x00ff_ffff)?;
        Ok(())
    }),
    // TLS
    inl("ca", 1, 1, |b, a| {
        b.cfg.ca = Some(a.source(0, PemCheck::Certs)?);
        Ok(())
    }),
    inl("cert", 1, 1, |b, a| {
        b.cfg.cert = Some(a.source(0, PemCheck::Certs)?);
        Ok(())
    }),
    inl("extra-certs", 1, 1, |b, a| {
        b.cfg.extra_certs = Some(a.source(0, PemCheck::Certs)?);
        Ok(())
    }),
    inl("key", 1, 1, |b, a| {
        b.cfg.key = Some(a.source(0, PemCheck::PrivateKey)?);
        Ok(())
    }),
    inl("pkcs12", 1, 1, |b, a| {
        b.cfg.pkcs12 = Some(a.source(0, PemCheck::Base64)?);
        Ok(())
    }),
    inl("dh", 1, 1, |b, a| {
        b.cfg.dh = Some(if a.inline.is_none() && a.word(0)? == "none" {
            Dh::None
        } else {
            let src = a.source(0, PemCheck::Dh)?;
            b.warn(
                a.span,
                "'dh' parameters are accepted and ignored: this daemon only uses ECDHE key exchange ('dh none' says the same)".into(),
            );
            Dh::Ignored(src)
        });
        Ok(())
    }),
    d("ecdh-curve", 1, 1, |b, a| {
        b.cfg.ecdh_curve = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    inl("crl-verify", 1, 2, |b, a| {
        let dir = match a.words.get(1).map(String::as_str) {
            None => false,
            Some("dir") if a.inline.is_none() => true,
            Some(_) => return Err(a.invalid(1, "'dir' or nothing")),
        };
        b.cfg.crl_verify = Some(if dir {
            Source::File(a.path(0)?)
        } else {
            a.source(0, PemCheck::Crl)?
        });
        b.cfg.crl_verify_dir = dir;
        Ok(())
    }),
    d("remote-cert-tls", 1, 1, |b, a| {
        extra::clear_ku_eku(b);
        b.cfg.remote_cert_tls = Some(match a.word(0)? {
            "client" => CertUsage::Client,
            "server" => CertUsage::Server,
            _ => return Err(a.invalid(0, "client or server")),
        });
        Ok(())
    }),
    d("verify-x509-name", 1, 2, |b, a| {
        let kind: fn(String) -> X509NameCheck = match a.words.get(1).map(String::as_str) {
            None | Some("subject") => X509NameCheck::Subject,
            Some("name") => X509NameCheck::Name,
            Some("name-prefix") => X509NameCheck::NamePrefix,
            Some(_) => return Err(a.invalid(1, "subject, name or name-prefix")),
        };
        b.cfg.verify_x509_name = Some(kind(a.nonempty(0)?.to_string()));
        Ok(())
    }),
    d("verify-client-cert", 0, 1, |b, a| {
        b.cfg.verify_client_cert = match a.words.first().map(String::as_str) {
            None | Some("require") => VerifyClientCert::Require,
            Some("optional") => VerifyClientCert::Optional,
            Some("none") => VerifyClientCert::None,
            Some(_) => return Err(a.invalid(0, "none, optional or require")),
        };
        Ok(())
    }),
    inl("tls-auth", 1, 2, |b, a| {
        let key = a.source(0, PemCheck::StaticKey)?;
        let direction = if a.words.len() > 1 {
            Some(key_direction(a, 1)?)
        } else {
            None
        };
        b.raw.tls_auth = Some((key, direction));
        Ok(())
    }),
    inl("secret", 1, 2, super::static_key::secret),
    d("genkey", 0, 3, super::static_key::genkey),
    d("no-replay", 0, 0, |b, _| {
        b.cfg.no_replay = true;
        Ok(())
    }),
    d("providers", 1, 16, |b, a| {
        b.cfg.providers = a.words.to_vec();
        Ok(())
    }),
    d("key-direction", 1, 1, |b, a| {
        b.cfg.key_direction = Some(key_direction(a, 0)?);
        Ok(())
    }),
    inl("tls-crypt", 1, 1, |b, a| {
        b.raw.tls_crypt = Some(a.source(0, PemCheck::StaticKey)?);
        Ok(())
    }),
    inl("tls-crypt-v2", 1, 2, |b, a| {
        let force_cookie = match a.words.get(1).map(String::as_str) {
            None | Some("force-cookie") => true,
            Some("allow-noncookie") => false,
            Some(_) => return Err(a.invalid(1, "force-cookie or allow-noncookie")),
        };
        b.raw.tls_crypt_v2 = Some((a.source(0, PemCheck::TlsCryptV2)?, force_cookie));
        Ok(())
    }),
    d("tls-version-min", 1, 2, |b, a| {
        let or_highest = match a.words.get(1).map(String::as_str) {
            None => false,
            Some("or-highest") => true,
            Some(_) => return Err(a.invalid(1, "or-highest or nothing")),
        };
        b.cfg.tls_version_min = Some(TlsVersionMin {
            version: tls_version(a, 0)?,
            or_highest,
        });
        Ok(())
    }),
    d("tls-version-max", 1, 1, |b, a| {
        b.cfg.tls_version_max = Some(tls_version(a, 0)?);
        Ok(())
    }),
    d("tls-cipher", 1, 1, |b, a| {
        b.cfg.tls_cipher = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("tls-ciphersuites", 1, 1, |b, a| {
        b.cfg.tls_ciphersuites = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("tls-groups", 1, 1, |b, a| {
        b.cfg.tls_groups = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("hand-window", 1, 1, |b, a| {
        b.cfg.hand_window = a.num_range(0, 1, u32::MAX)?;
        Ok(())
    }),
    d("tls-timeout", 1, 1, |b, a| {
        b.cfg.tls_timeout = a.num_range(0, 1, u32::MAX)?;
        Ok(())
    }),
    d("tran-window", 1, 1, |b, a| {
        b.cfg.tran_window = a.num(0)?;
        Ok(())
    }),
    d("reneg-sec", 1, 2, |b, a| {
        let max = a.num(0)?;
        let min = if a.words.len() > 1 {
            Some(a.num(1)?)
        } else {
            None
        };
        if min.is_some_and(|m| m > max) {
            return Err(a.invalid(1, "a minimum not above the maximum"));
        }
        b.cfg.reneg_sec = RenegSec { max, min };
        Ok(())
    }),
    d("reneg-bytes", 1, 1, |b, a| {
        let n: u64 = a.num(0)?;
        b.cfg.reneg_bytes = (n > 0).then_some(n);
        Ok(())
    }),
    d("reneg-pkts", 1, 1, |b, a| {
        let n: u64 = a.num(0)?;
        b.cfg.reneg_pkts = (n > 0).then_some(n);
        Ok(())
    }),
    // data channel
    d("auth", 1, 1, |b, a| {
        b.cfg.auth = digest(a, 0)?;
        Ok(())
    }),
    d("data-ciphers", 1, 1, data_ciphers),
    d("ncp-ciphers", 1, 1, data_ciphers).scope(Scope::CONFIG_INSTANCE),
    d("data-ciphers-fallback", 1, 1, |b, a| {
        b.cfg.data_ciphers_fallback = Some(cipher_name(a, 0)?);
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE),
    // Static-key mode takes any CBC cipher OpenSSL has (BF-CBC is its
    // default): the name is checked when the mode is known, in `expand`.
    d("cipher", 1, 1, |b, a| {
        // 2.6 ignores `cipher` in pull and server mode unless it is in
        // data-ciphers, so any name (`BF-CBC` in old configs) is kept here;
        // `expand` refuses one we cannot run where it would be used.
        let w = a.nonempty(0)?;
        b.cfg.cipher =
            Some(canonical_cipher(w).map_or_else(|| w.to_ascii_uppercase(), str::to_string));
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("replay-window", 1, 2, |b, a| {
        let size = a.num_range(0, 1, 65536)?;
        let seconds = if a.words.len() > 1 { a.num(1)? } else { 15 };
        b.cfg.replay_window = ReplayWindow { size, seconds };
        Ok(())
    }),
    d("compress", 0, 1, |b, a| {
        let arg = a.words.first().map(String::as_str);
        super::compress::compress(b, a.name, arg, a.span)
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("comp-lzo", 0, 1, |b, a| {
        let arg = a.words.first().map(String::as_str);
        super::compress::comp_lzo(b, a.name, arg, a.span)
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("comp-noadapt", 0, 0, |b, _| {
        super::compress::comp_noadapt(b);
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE),
    d("allow-compression", 1, 1, |b, a| {
        super::compress::allow_compression(b, a.name, a.word(0)?, a.span)
    }),
    // keepalive
    d("keepalive", 2, 2, |b, a| {
        b.cfg.keepalive = Some((a.num(0)?, a.num(1)?));
        Ok(())
    }),
    d("ping", 1, 1, |b, a| {
        b.cfg.ping = Some(a.num_range(0, 1, u32::MAX)?);
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::ping),
    d("ping-restart", 1, 1, |b, a| {
        // 0 turns the timeout off, as in OpenVPN.
        let timeout: u32 = a.num(0)?;
        b.cfg.ping_rec = (timeout > 0).then_some(PingRec {
            timeout,
            action: PingAction::Restart,
        });
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::ping_restart),
    d("ping-exit", 1, 1, |b, a| {
        // 0 turns the timeout off, as in OpenVPN.
        let timeout: u32 = a.num(0)?;
        b.cfg.ping_rec = (timeout > 0).then_some(PingRec {
            timeout,
            action: PingAction::Exit,
        });
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::ping_exit),
    d("ping-timer-rem", 0, 0, |b, _| {
        b.cfg.ping_timer_rem = true;
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::ping_timer_rem),
    d("inactive", 1, 2, |b, a| {
        let bytes = if a.words.len() > 1 { a.num(1)? } else { 0 };
        b.cfg.inactive = Some(Inactive {
            seconds: a.num(0)?,
            bytes,
        });
        Ok(())
    })
    .scope(Scope::CONFIG_INSTANCE)
    .instance(super::ccd::inactive),
    // authentication and scripts
    inl("auth-user-pass", 0, 1, |b, a| {
        b.cfg.auth_user_pass = Some(if a.words.is_empty() && a.inline.is_none() {
            AuthUserPass::Prompt
        } else {
            AuthUserPass::Source(a.source(0, PemCheck::UserPass)?)
        });
        Ok(())
    }),
    d("auth-user-pass-verify", 2, 2, |b, a| {
        let method = match a.word(1)? {
            "via-env" => VerifyMethod::ViaEnv,
            "via-file" => VerifyMethod::ViaFile,
            _ => return Err(a.invalid(1, "via-env or via-file")),
        };
        b.cfg.auth_user_pass_verify = Some(AuthUserPassVerify {
            command: a.nonempty(0)?.to_string(),
            method,
        });
        Ok(())
    }),
    d("username-as-common-name", 0, 0, |b, _| {
        b.cfg.username_as_common_name = true;
        Ok(())
    }),
    d("auth-nocache", 0, 0, |b, _| {
        b.cfg.auth_nocache = true;
        Ok(())
    }),
    d("script-security", 1, 1, |b, a| {
        b.cfg.script_security = a.num_range(0, 0, 3)?;
        Ok(())
    }),
    d("up", 1, 1, |b, a| {
        b.cfg.scripts.up = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("down", 1, 1, |b, a| {
        b.cfg.scripts.down = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("client-connect", 1, 1, |b, a| {
        b.cfg.scripts.client_connect = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("client-disconnect", 1, 1, |b, a| {
        b.cfg.scripts.client_disconnect = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    // process
    d("user", 1, 1, |b, a| {
        b.cfg.user = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("group", 1, 1, |b, a| {
        b.cfg.group = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("daemon", 0, 1, |b, a| {
        b.cfg.daemon = Some(a.words.first().cloned());
        // As in 2.6, 'daemon' also opens the system logger (the first of
        // 'syslog'/'daemon' names it).
        if b.cfg.syslog.is_none() {
            b.cfg.syslog = Some(a.words.first().cloned());
        }
        Ok(())
    }),
    d("syslog", 0, 1, |b, a| {
        // 2.6 opens the system logger at this line; a later 'daemon NAME'
        // does not rename it.
        if b.cfg.syslog.is_none() {
            b.cfg.syslog = Some(a.words.first().cloned());
        }
        Ok(())
    }),
    d("plugin", 1, 255, |b, a| {
        let p = crate::config::types::PluginOption::new(a.nonempty(0)?, a.words);
        if b.cfg.plugins.len() >= crate::config::types::MAX_PLUGINS {
            return Err(a.invalid(0, "at most 16 plugins (OpenVPN's MAX_PLUGINS)"));
        }
        b.cfg.plugins.push(p);
        Ok(())
    }),
    d("writepid", 1, 1, |b, a| {
        b.cfg.writepid = Some(a.path(0)?);
        Ok(())
    }),
    d("cd", 1, 1, cd),
    d("log", 1, 1, |b, a| {
        b.cfg.log = Some(LogFile {
            path: a.path(0)?,
            append: false,
        });
        Ok(())
    }),
    d("log-append", 1, 1, |b, a| {
        b.cfg.log = Some(LogFile {
            path: a.path(0)?,
            append: true,
        });
        Ok(())
    }),
    d("verb", 1, 1, |b, a| {
        b.cfg.verb = a.num_range(0, 0, 11)?;
        Ok(())
    }),
    d("mute", 1, 1, |b, a| {
        let n: u32 = a.num(0)?;
        b.cfg.mute = (n > 0).then_some(n);
        Ok(())
    }),
    d("mute-replay-warnings", 0, 0, |b, _| {
        b.cfg.mute_replay_warnings = true;
        Ok(())
    }),
    d("status", 1, 2, |b, a| {
        let interval = if a.words.len() > 1 { a.num(1)? } else { 60 };
        b.cfg.status = Some(StatusFile {
            path: a.path(0)?,
            interval,
        });
        Ok(())
    }),
    d("status-version", 1, 1, |b, a| {
        b.cfg.status_version = a.num_range(0, 1, 3)?;
        Ok(())
    }),
    d("management", 2, 3, management),
    d("management-client-user", 1, 1, |b, a| {
        b.cfg.management.client_user = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("management-client-group", 1, 1, |b, a| {
        b.cfg.management.client_group = Some(a.nonempty(0)?.to_string());
        Ok(())
    }),
    d("setenv", 1, 2, setenv),
    d("ignore-unknown-option", 1, 15, |b, a| {
        for w in a.words {
            b.ignore_unknown.insert(w.clone());
        }
        Ok(())
    }),
    // XDP (ours)
    d("xdp", 1, 1, |b, a| {
        b.cfg.xdp = match a.word(0)? {
            "auto" => XdpMode::Auto,
            "native" => XdpMode::Native,
            "generic" => XdpMode::Generic,
            "off" => XdpMode::Off,
            _ => return Err(a.invalid(0, "auto, native, generic or off")),
        };
        Ok(())
    }),
    d("xdp-interface", 1, 1, |b, a| {
        b.cfg.xdp_interface = Some(ifname(a, 0)?);
        Ok(())
    }),
    d("xdp-drop-unknown", 1, 1, |b, a| {
        b.cfg.xdp_drop_unknown = match a.word(0)? {
            "yes" => true,
            "no" => false,
            _ => return Err(a.invalid(0, "yes or no")),
        };
        Ok(())
    }),
];

/// OpenVPN 2.6 directives we recognise but do not implement, with the
/// reason given to the user.
pub static UNSUPPORTED: &[(&str, &str)] = &[
    (
        "management-client-auth",
        "the management interface is not implemented",
    ),
    (
        "management-hold",
        "the management interface is not implemented",
    ),
    (
        "management-query-passwords",
        "the management interface is not implemented",
    ),
    (
        "management-query-proxy",
        "the management interface is not implemented",
    ),
    (
        "management-query-remote",
        "the management interface is not implemented",
    ),
    (
        "management-signal",
        "the management interface is not implemented",
    ),
    (
        "management-forget-disconnect",
        "the management interface is not implemented",
    ),
    (
        "management-log-cache",
        "the management interface is not implemented",
    ),
    (
        "management-up-down",
        "the management interface is not implemented",
    ),
    (
        "management-client",
        "the management interface is not implemented",
    ),
    (
        "management-external-key",
        "the management interface is not implemented",
    ),
    (
        "management-external-cert",
        "the management interface is not implemented",
    ),
    (
        "mtu-dynamic",
        "--mtu-dynamic has been replaced by --fragment",
    ),
    (
        "tls-export-cert",
        "tls-export-cert is not implemented (it only serves tls-verify, which is not implemented either)",
    ),
    (
        "auth-gen-token",
        "auth tokens are not implemented (2.6's HMAC token format and renewal are not built yet)",
    ),
    (
        "auth-gen-token-secret",
        "auth tokens are not implemented (see auth-gen-token)",
    ),
    (
        "static-challenge",
        "challenge/response needs an interactive prompt or the management interface, neither of which this daemon has",
    ),
    (
        "push-remove",
        "option 'push-remove' cannot be used in this context (client-config-dir files only, as in OpenVPN 2.6)",
    ),
    (
        "capath",
        "capath (a hashed CA directory, which 2.6 also requires CRLs for) is not implemented; use ca",
    ),
    (
        "x509-track",
        "x509-track is not implemented (no extra X509_* variables are exported to scripts)",
    ),
    (
        "pkcs11-providers",
        "PKCS#11 is not implemented: the TLS key would have to live in the token behind OpenSSL (2.6 uses pkcs11-helper), which the openssl crate cannot do without an OpenSSL pkcs11 provider",
    ),
    (
        "pkcs11-id",
        "PKCS#11 is not implemented (see pkcs11-providers)",
    ),
    (
        "engine",
        "OpenSSL engines are not implemented (deprecated in OpenSSL 3; use providers)",
    ),
    (
        "single-session",
        "single-session is not implemented (refusing every TLS session after the first)",
    ),
    (
        "tls-crypt-v2-verify",
        "tls-crypt-v2-verify scripts are not implemented (2.6 calls them before the handshake, with the client key's metadata in a file)",
    ),
    (
        "tls-crypt-v2-max-age",
        "an OpenVPN 2.7 option (2.6 does not know it); not implemented",
    ),
    ("ncp-disable", "removed from OpenVPN 2.6; use data-ciphers"),
    (
        "client-cert-not-required",
        "removed from OpenVPN; use 'verify-client-cert none'",
    ),
    (
        "key-method",
        "removed from OpenVPN; key-method 2 is always used",
    ),
    ("keysize", "removed from OpenVPN"),
    (
        "passtos",
        "passtos is not implemented (copying the inner TOS to each outgoing datagram does not fit our batched sends yet)",
    ),
    ("client-nat", "client-nat is not implemented"),
    ("compat-mode", "compat-mode is not implemented"),
    (
        "auth-token",
        "auth tokens are not implemented (a pushed auth-token is refused with the rest of auth-gen-token)",
    ),
    (
        "auth-token-user",
        "auth tokens are not implemented (see auth-token)",
    ),
    (
        "test-crypto",
        "informational modes are not implemented; use openvpn",
    ),
    ("mktun", "persistent tun creation mode is not implemented"),
    ("rmtun", "persistent tun creation mode is not implemented"),
];

/// Every row of the directive table, wherever it is kept.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    DIRECTIVES.iter().chain(HOST_DIRECTIVES)
}

/// Directives of OpenVPN's other platforms: 2.6.14 on Linux does not know
/// them ("Unrecognized option"), so they are refused as unknown, with the
/// reason, and `setenv FORWARD_COMPATIBLE 1` / `ignore-unknown-option`
/// turn them into warnings there as here. A server may still push the
/// Windows ones; the client ignores those (see `proto::push`).
pub static NOT_ON_LINUX: &[(&str, &str)] = &[
    ("block-outside-dns", "Windows only"),
    ("register-dns", "Windows only"),
    ("ip-win32", "Windows only"),
    ("dhcp-release", "Windows only"),
    ("dhcp-renew", "Windows only"),
    ("dhcp-pre-release", "Windows only"),
    ("tap-sleep", "Windows only"),
    ("win-sys", "Windows only"),
    ("cryptoapicert", "Windows only"),
    ("windows-driver", "Windows only"),
    ("allow-nonadmin", "Windows only"),
    ("show-adapters", "Windows only"),
    ("show-valid-subnets", "Windows only"),
    ("show-net", "Windows only"),
    ("show-net-up", "Windows only"),
    ("pause-exit", "Windows only"),
    ("service", "Windows only"),
    ("inetd", "removed in OpenVPN 2.6"),
    ("setcon", "SELinux support is not in Debian's openvpn build"),
];

/// What a name is.
pub(super) enum Lookup {
    Known(&'static Spec),
    Unsupported(&'static str),
    NotOnLinux(&'static str),
    Unknown,
}

pub(super) fn lookup(name: &str) -> Lookup {
    if let Some(s) = all().find(|s| s.name == name) {
        return Lookup::Known(s);
    }
    if let Some((_, reason)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        return Lookup::Unsupported(reason);
    }
    match NOT_ON_LINUX.iter().find(|(n, _)| *n == name) {
        Some((_, reason)) => Lookup::NotOnLinux(reason),
        None => Lookup::Unknown,
    }
}

/// Checks arity and inline use, records the span, and runs the parser.
pub(super) fn run(
    b: &mut Builder,
    spec: &'static Spec,
    span: &Span,
    name: &str,
    words: &[String],
    inline: Option<&str>,
) -> Result<(), ConfigError> {
    let err = |kind| ConfigError::at(span, kind);
    if inline.is_some() {
        if !spec.inline {
            return Err(err(ConfigErrorKind::InlineNotAllowed { name: name.into() }));
        }
    } else if !spec.scope.contains(Scope::CONFIG) {
        return Err(err(extra::not_in_config(name)));
    } else if words.len() < spec.min || words.len() > spec.max {
        let expected = if spec.min == spec.max {
            spec.min.to_string()
        } else {
            format!("{} to {}", spec.min, spec.max)
        };
        return Err(err(ConfigErrorKind::Arity {
            name: name.into(),
            expected,
            got: words.len(),
        }));
    }
    b.mark(spec.name, span);
    if spec.name == "config" {
        let path = words.first().map(PathBuf::from).unwrap_or_default();
        return b.include(&path, span);
    }
    if spec.name == "connection"
        && let Some(body) = inline
    {
        return super::connection::apply_block(b, span, body);
    }
    let args = Args {
        name: spec.name,
        words,
        inline,
        span,
    };
    (spec.apply)(b, &args).map_err(err)
}

impl Args<'_> {
    pub(super) fn invalid(&self, i: usize, expected: &str) -> ConfigErrorKind {
        ConfigErrorKind::InvalidValue {
            name: self.name.into(),
            value: self.words.get(i).cloned().unwrap_or_default(),
            expected: expected.into(),
        }
    }

    pub(super) fn word(&self, i: usize) -> Result<&str, ConfigErrorKind> {
        self.words
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| ConfigErrorKind::Arity {
                name: self.name.into(),
                expected: format!("at least {}", i + 1),
                got: self.words.len(),
            })
    }

    fn nonempty(&self, i: usize) -> Result<&str, ConfigErrorKind> {
        let w = self.word(i)?;
        if w.is_empty() {
            return Err(self.invalid(i, "a non-empty value"));
        }
        Ok(w)
    }

    fn num<T: FromStr>(&self, i: usize) -> Result<T, ConfigErrorKind> {
        self.word(i)?
            .parse()
            .map_err(|_| self.invalid(i, "a non-negative decimal number"))
    }

    fn num_range<T: FromStr + PartialOrd + std::fmt::Display>(
        &self,
        i: usize,
        min: T,
        max: T,
    ) -> Result<T, ConfigErrorKind> {
        let v: T = self.num(i)?;
        if v < min || v > max {
            return Err(self.invalid(i, &format!("a number from {min} to {max}")));
        }
        Ok(v)
    }

    fn port(&self, i: usize) -> Result<u16, ConfigErrorKind> {
        self.num_range(i, 1, 65535)
    }

    fn ipv4(&self, i: usize) -> Result<Ipv4Addr, ConfigErrorKind> {
        self.word(i)?
            .parse()
            .map_err(|_| self.invalid(i, "an IPv4 address"))
    }

    fn ipv6(&self, i: usize) -> Result<Ipv6Addr, ConfigErrorKind> {
        self.word(i)?
            .parse()
            .map_err(|_| self.invalid(i, "an IPv6 address"))
    }

    fn ipv6net(&self, i: usize) -> Result<Ipv6Net, ConfigErrorKind> {
        self.word(i)?
            .parse()
            .map_err(|_| self.invalid(i, "an IPv6 address/prefix length"))
    }

    /// A netmask must be contiguous ones then zeros.
    fn netmask(&self, i: usize) -> Result<Ipv4Addr, ConfigErrorKind> {
        let m = self.ipv4(i)?;
        let bits = u32::from(m);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            return Err(self.invalid(i, "a netmask (contiguous 1 bits)"));
        }
        Ok(m)
    }

    pub(super) fn path(&self, i: usize) -> Result<PathBuf, ConfigErrorKind> {
        Ok(PathBuf::from(self.nonempty(i)?))
    }

    /// A file name, or the inline block's body after checking its shape.
    pub(super) fn source(&self, i: usize, check: PemCheck) -> Result<Source, ConfigErrorKind> {
        match self.inline {
            Some(body) => {
                check
                    .check(body)
                    .map_err(|reason| ConfigErrorKind::MalformedInline {
                        tag: self.name.into(),
                        reason,
                    })?;
                Ok(Source::Inline(body.to_string()))
            }
            None => Ok(Source::File(self.path(i)?)),
        }
    }
}

/// What an inline block must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemCheck {
    /// One or more PEM certificates.
    Certs,
    /// A PEM private key (other PEM blocks such as EC PARAMETERS allowed).
    PrivateKey,
    /// PEM DH parameters.
    Dh,
    /// A PEM CRL.
    Crl,
    /// base64 of DER (pkcs12).
    Base64,
    /// `-----BEGIN OpenVPN Static key V1-----` with 256 bytes of hex.
    StaticKey,
    /// A PEM tls-crypt-v2 client or server key.
    TlsCryptV2,
    /// A username line and an optional password line.
    UserPass,
}

impl PemCheck {
    pub(crate) fn check(self, body: &str) -> Result<(), String> {
        let pem_labels = |body: &str| -> Result<Vec<String>, String> {
            let blocks = pem::parse_many(body).map_err(|e| format!("bad PEM: {e}"))?;
            if blocks.is_empty() {
                return Err("no PEM block (-----BEGIN ...-----) found".into());
            }
            Ok(blocks.iter().map(|b| b.tag().to_string()).collect())
        };
        match self {
            PemCheck::Certs => {
                let labels = pem_labels(body)?;
                if let Some(bad) = labels.iter().find(|l| {
                    !matches!(
                        l.as_str(),
                        "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE"
                    )
                }) {
                    return Err(format!("expected CERTIFICATE blocks, found {bad}"));
                }
                Ok(())
            }
            PemCheck::PrivateKey => {
                let labels = pem_labels(body)?;
                if labels.iter().any(|l| l.ends_with("PRIVATE KEY")) {
                    Ok(())
                } else {
                    Err("no PRIVATE KEY block".into())
                }
            }
            PemCheck::Dh => {
                let labels = pem_labels(body)?;
                if labels.iter().all(|l| l.ends_with("DH PARAMETERS")) {
                    Ok(())
                } else {
                    Err("expected a DH PARAMETERS block".into())
                }
            }
            PemCheck::Crl => {
                let labels = pem_labels(body)?;
                if labels.iter().all(|l| l == "X509 CRL") {
                    Ok(())
                } else {
                    Err("expected X509 CRL blocks".into())
                }
            }
            PemCheck::TlsCryptV2 => {
                let labels = pem_labels(body)?;
                match labels.as_slice() {
                    [l] if l == "OpenVPN tls-crypt-v2 client key"
                        || l == "OpenVPN tls-crypt-v2 server key" =>
                    {
                        Ok(())
                    }
                    _ => Err("expected one OpenVPN tls-crypt-v2 client or server key".into()),
                }
            }
            PemCheck::Base64 => {
                let compact: String = body.split_ascii_whitespace().collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|e| format!("bad base64: {e}"))?;
                if der.is_empty() {
                    return Err("empty".into());
                }
                Ok(())
            }
            PemCheck::StaticKey => check_static_key(body),
            PemCheck::UserPass => {
                let mut lines = body.lines();
                match lines.next() {
                    Some(u) if !u.trim().is_empty() => {}
                    _ => return Err("the first line must be the username".into()),
                }
                if lines.skip(1).any(|l| !l.trim().is_empty()) {
                    return Err("expected a username line and a password line only".into());
                }
                Ok(())
            }
        }
    }
}

/// The shape of an "OpenVPN Static key V1" (protocol doc section 3.1):
/// free text before, then the marker lines around 512 hex digits.
fn check_static_key(body: &str) -> Result<(), String> {
    const BEGIN: &str = "-----BEGIN OpenVPN Static key V1-----";
    const END: &str = "-----END OpenVPN Static key V1-----";
    let mut lines = body.lines().map(str::trim);
    if !lines.by_ref().any(|l| l == BEGIN) {
        return Err(format!("no '{BEGIN}' line"));
    }
    let mut digits = 0usize;
    let mut ended = false;
    for l in lines.by_ref() {
        if l == END {
            ended = true;
            break;
        }
        if !l.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("non-hex line inside the key: {l:?}"));
        }
        digits += l.len();
    }
    if !ended {
        return Err(format!("no '{END}' line"));
    }
    if digits != 512 {
        return Err(format!(
            "expected 256 key bytes (512 hex digits), found {digits} digits"
        ));
    }
    Ok(())
}

fn cd(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let dir = b.base_dir().join(a.path(0)?);
    if b.check_files && !dir.is_dir() {
        return Err(ConfigErrorKind::File {
            name: a.name.into(),
            what: "directory",
            path: dir,
            reason: "not an existing directory".into(),
        });
    }
    b.cd = Some(dir.clone());
    b.cfg.cd = Some(dir);
    Ok(())
}

fn mode(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.raw.mode_server = match a.word(0)? {
        "server" => true,
        "p2p" => false,
        _ => return Err(a.invalid(0, "server or p2p")),
    };
    Ok(())
}

fn server(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    // OpenVPN's address parser takes `A.B.C.D/bits` (bits 0-32) and keeps
    // only the address: the netmask parameter decides.
    let net = match a.word(0)?.split_once('/') {
        Some((addr, bits)) => {
            let ok = !bits.is_empty()
                && bits.bytes().all(|c| c.is_ascii_digit())
                && bits.parse::<u8>().is_ok_and(|n| n <= 32);
            match addr.parse::<Ipv4Addr>() {
                Ok(v) if ok => v,
                _ => return Err(a.invalid(0, "an IPv4 address (optionally with /bits)")),
            }
        }
        None => a.ipv4(0)?,
    };
    let mask = a.netmask(1)?;
    let nopool = match a.words.get(2).map(String::as_str) {
        None => false,
        Some("nopool") => true,
        Some(_) => return Err(a.invalid(2, "nopool or nothing")),
    };
    if u32::from(net) & !u32::from(mask) != 0 {
        return Err(ConfigErrorKind::InvalidValue {
            name: a.name.into(),
            value: format!("{net} {mask}"),
            expected: "a network address (no host bits set under the netmask)".into(),
        });
    }
    b.raw.server = Some((net, mask, nopool));
    Ok(())
}

fn dev_type(a: &Args<'_>, v: &str) -> Result<DevType, ConfigErrorKind> {
    match v {
        "tun" => Ok(DevType::Tun),
        "tap" => Ok(DevType::Tap),
        "null" => Ok(DevType::Null),
        _ => Err(ConfigErrorKind::InvalidValue {
            name: a.name.into(),
            value: v.into(),
            expected: "tun, tap or null".into(),
        }),
    }
}

/// A MAC address as 2.6's `mac_addr_safe` takes it: hex groups of one or
/// two digits joined by ':'; we also ask for exactly six groups (2.6 scans
/// six and leaves the missing bytes unset).
fn lladdr(a: &Args<'_>, i: usize) -> Result<[u8; 6], ConfigErrorKind> {
    let w = a.word(i)?;
    let bad = || a.invalid(i, "a MAC address such as 02:00:5e:10:00:01");
    let mut mac = [0u8; 6];
    let mut parts = w.split(':');
    for byte in &mut mac {
        let p = parts.next().ok_or_else(bad)?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// `server-bridge IP MASK START END`, `server-bridge nogw`, `server-bridge`.
fn server_bridge(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let sb = match a.words.len() {
        0 => ServerBridge::Dhcp { push_gateway: true },
        1 if a.word(0)? == "nogw" => ServerBridge::Dhcp {
            push_gateway: false,
        },
        4 => {
            let sb = ServerBridge::Pool {
                gateway: a.ipv4(0)?,
                netmask: a.ipv4(1)?,
                start: a.ipv4(2)?,
                end: a.ipv4(3)?,
            };
            if let ServerBridge::Pool {
                gateway,
                netmask,
                start,
                end,
            } = sb
                && [gateway, netmask, start, end].contains(&Ipv4Addr::UNSPECIFIED)
            {
                return Err(ConfigErrorKind::InvalidValue {
                    name: a.name.into(),
                    value: a.words.join(" "),
                    expected: "IP NETMASK POOL-START POOL-END (no 0.0.0.0), 'nogw' or nothing"
                        .into(),
                });
            }
            sb
        }
        _ => {
            return Err(ConfigErrorKind::InvalidValue {
                name: a.name.into(),
                value: a.words.join(" "),
                expected: "IP NETMASK POOL-START POOL-END, 'nogw' or nothing".into(),
            });
        }
    };
    b.cfg.server_bridge = Some(sb);
    Ok(())
}

fn proto(a: &Args<'_>, i: usize) -> Result<(RawTransport, AddrFamily), ConfigErrorKind> {
    let v = a.word(i)?;
    let (kind, rest) = if let Some(rest) = v.strip_prefix("udp") {
        ("udp", rest)
    } else if let Some(rest) = v.strip_prefix("tcp") {
        ("tcp", rest)
    } else {
        ("", v)
    };
    let (family, rest) = if let Some(r) = rest.strip_prefix('4') {
        (AddrFamily::V4, r)
    } else if let Some(r) = rest.strip_prefix('6') {
        (AddrFamily::V6, r)
    } else {
        (AddrFamily::Any, rest)
    };
    let transport = match (kind, rest) {
        ("udp", "") => RawTransport::Udp,
        ("tcp", "") => RawTransport::Tcp,
        ("tcp", "-server") => RawTransport::TcpServer,
        ("tcp", "-client") => RawTransport::TcpClient,
        _ => {
            return Err(a.invalid(
                i,
                "udp, udp4, udp6, tcp, tcp-server, tcp-client (tcp4/tcp6 forms too)",
            ));
        }
    };
    Ok((transport, family))
}

fn remote(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let host = a.nonempty(0)?.to_string();
    let port = if a.words.len() > 1 {
        Some(a.port(1)?)
    } else {
        None
    };
    let proto = if a.words.len() > 2 {
        Some(proto(a, 2)?)
    } else {
        None
    };
    b.raw.remotes.push(RawRemote {
        span: a.span.clone(),
        host,
        port,
        proto,
    });
    Ok(())
}

fn http_proxy(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    if a.words.len() < 2 {
        return Err(ConfigErrorKind::Invalid(
            "http-proxy port number not defined".into(),
        ));
    }
    let host = a.nonempty(0)?.to_string();
    let port = a.port(1)?;
    let auth = match a.words.get(2).map(String::as_str) {
        None => HttpProxyAuth::None,
        Some("auto") => HttpProxyAuth::Auto { nct: false },
        Some("auto-nct") => HttpProxyAuth::Auto { nct: true },
        Some(_) => {
            let file = b.base_dir().join(a.path(2)?);
            match a.words.get(3).map(String::as_str).unwrap_or("basic") {
                "basic" => HttpProxyAuth::Basic(file),
                "none" => HttpProxyAuth::None,
                "ntlm" | "ntlm2" | "digest" => {
                    return Err(ConfigErrorKind::Unsupported {
                        name: format!("http-proxy ... {}", a.words[3]),
                        reason: "only basic proxy authentication is implemented",
                    });
                }
                _ => return Err(a.invalid(3, "basic or none")),
            }
        }
    };
    let p = b.raw.http_proxy.get_or_insert_with(new_http_proxy);
    p.host = host;
    p.port = port;
    p.auth = auth;
    Ok(())
}

fn proxy_retry_deprecated(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.warn(
        a.span,
        "DEPRECATED OPTION: http-proxy-retry and socks-proxy-retry: proxy connection retries are handled like regular connections; use connect-retry-max 1 to get a similar behavior as before".into(),
    );
    Ok(())
}

fn new_http_proxy() -> HttpProxy {
    HttpProxy {
        version: "1.0".into(),
        ..HttpProxy::default()
    }
}

fn http_proxy_option(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let p = b.raw.http_proxy.get_or_insert_with(new_http_proxy);
    match (a.word(0)?, a.words.len()) {
        ("VERSION", 2) => p.version = a.nonempty(1)?.to_string(),
        ("AGENT", 2) => p.agent = Some(a.nonempty(1)?.to_string()),
        ("EXT1" | "EXT2" | "CUSTOM-HEADER", 2 | 3) => {
            if p.headers.len() >= MAX_CUSTOM_HTTP_HEADER {
                return Err(ConfigErrorKind::Invalid(format!(
                    "Cannot use more than {MAX_CUSTOM_HTTP_HEADER} http-proxy-option CUSTOM-HEADER"
                )));
            }
            let name = a.nonempty(1)?.to_string();
            p.headers.push((name, a.words.get(2).cloned()));
        }
        _ => {
            return Err(ConfigErrorKind::Invalid(format!(
                "Bad http-proxy-option or missing or extra parameter: '{}'",
                a.words[0]
            )));
        }
    }
    Ok(())
}

fn mssfix(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.raw.mssfix_unset = a.words.is_empty();
    if a.words.is_empty() {
        b.cfg.mssfix = Some(Mssfix {
            size: 1492,
            mode: MssfixMode::Encapsulated,
        });
        return Ok(());
    }
    let size: u32 = a.num_range(0, 0, 65535)?;
    let mode = match a.words.get(1).map(String::as_str) {
        None => MssfixMode::Encapsulated,
        Some("mtu") => MssfixMode::Mtu,
        Some("fixed") => MssfixMode::Fixed,
        Some(_) => return Err(a.invalid(1, "mtu, fixed or nothing")),
    };
    b.cfg.mssfix = (size > 0).then_some(Mssfix { size, mode });
    Ok(())
}

/// `fragment N [mtu]`, with 2.6's checks (`N` at least 68; only `mtu` may follow).
fn fragment(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let size: u32 = a.num(0).ok().filter(|n| *n >= 68).ok_or_else(|| {
        a.invalid(
            0,
            "a number of at least 68 (--fragment needs to be at least 68)",
        )
    })?;
    let mtu = match a.words.get(1).map(String::as_str) {
        None => false,
        Some("mtu") => true,
        Some(_) => return Err(a.invalid(1, "mtu or nothing")),
    };
    b.cfg.fragment = Some(Fragment { size, mtu });
    Ok(())
}

fn route_addr(a: &Args<'_>, i: usize) -> Result<RouteAddr, ConfigErrorKind> {
    match a.word(i)? {
        "vpn_gateway" => Ok(RouteAddr::VpnGateway),
        "net_gateway" => Ok(RouteAddr::NetGateway),
        "remote_host" => Ok(RouteAddr::RemoteHost),
        _ => a.ipv4(i).map(RouteAddr::Addr).map_err(|_| {
            a.invalid(
                i,
                "an IPv4 address, a host name, vpn_gateway, net_gateway or remote_host",
            )
        }),
    }
}

fn route(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    // OpenVPN takes host names for the network and the gateway and
    // resolves them when it adds the route.
    let target = |i: usize| match route_addr(a, i) {
        Ok(r) => Ok(RouteTarget::Addr(r)),
        Err(e) => match a.word(i) {
            Ok(w) if super::connection::is_host_name(w) && w.parse::<Ipv4Addr>().is_err() => {
                Ok(RouteTarget::Host(w.to_string()))
            }
            _ => Err(e),
        },
    };
    let network_t = target(0)?;
    let netmask = match a.words.get(1).map(String::as_str) {
        None | Some("default") => Ipv4Addr::BROADCAST,
        Some(_) => a.netmask(1)?,
    };
    if let RouteTarget::Addr(RouteAddr::Addr(n)) = network_t
        && u32::from(n) & !u32::from(netmask) != 0
    {
        return Err(ConfigErrorKind::InvalidValue {
            name: a.name.into(),
            value: format!("{n} {netmask}"),
            expected: "a network address consistent with the netmask".into(),
        });
    }
    let gateway_t = match a.words.get(2).map(String::as_str) {
        None | Some("default") => None,
        Some(_) => Some(target(2)?),
    };
    let metric = match a.words.get(3).map(String::as_str) {
        None | Some("default") => None,
        Some(_) => Some(a.num(3)?),
    };
    match (network_t, gateway_t) {
        (RouteTarget::Addr(network), g @ (None | Some(RouteTarget::Addr(_)))) => {
            let gateway = match g {
                Some(RouteTarget::Addr(g)) => Some(g),
                _ => None,
            };
            b.cfg.routes.push(Route {
                network,
                netmask,
                gateway,
                metric,
            });
        }
        (network, gateway) => b.cfg.route_hosts.push(NamedRoute {
            network,
            netmask,
            gateway,
            metric,
        }),
    }
    Ok(())
}

fn redirect(b: &mut Builder, a: &Args<'_>, default_route: bool) -> Result<(), ConfigErrorKind> {
    let mut r = RedirectGateway {
        ipv4: true,
        default_route,
        ..RedirectGateway::default()
    };
    for (i, w) in a.words.iter().enumerate() {
        match w.as_str() {
            "local" => r.local = true,
            "autolocal" => r.autolocal = true,
            "def1" => r.def1 = true,
            "bypass-dhcp" => r.bypass_dhcp = true,
            "bypass-dns" => r.bypass_dns = true,
            "block-local" => r.block_local = true,
            "ipv6" => r.ipv6 = true,
            "!ipv4" => r.ipv4 = false,
            _ => {
                return Err(a.invalid(
                    i,
                    "local, autolocal, def1, bypass-dhcp, bypass-dns, block-local, ipv6 or !ipv4",
                ));
            }
        }
    }
    b.cfg.redirect_gateway = Some(r);
    Ok(())
}

fn dhcp_option(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let kind = a.word(0)?;
    let want = |n: usize| -> Result<(), ConfigErrorKind> {
        if a.words.len() == n + 1 {
            Ok(())
        } else {
            Err(ConfigErrorKind::Arity {
                name: format!("dhcp-option {kind}"),
                expected: n.to_string(),
                got: a.words.len() - 1,
            })
        }
    };
    let opt = match kind {
        "DNS" => {
            want(1)?;
            DhcpOption::Dns(
                a.word(1)?
                    .parse::<IpAddr>()
                    .map_err(|_| a.invalid(1, "an IP address"))?,
            )
        }
        "DNS6" => {
            want(1)?;
            DhcpOption::Dns6(a.ipv6(1)?)
        }
        "DOMAIN" => {
            want(1)?;
            DhcpOption::Domain(a.nonempty(1)?.into())
        }
        "ADAPTER_DOMAIN_SUFFIX" => {
            want(1)?;
            DhcpOption::AdapterDomainSuffix(a.nonempty(1)?.into())
        }
        "DOMAIN-SEARCH" => {
            want(1)?;
            DhcpOption::DomainSearch(a.nonempty(1)?.into())
        }
        "WINS" => {
            want(1)?;
            DhcpOption::Wins(a.ipv4(1)?)
        }
        "NBDD" => {
            want(1)?;
            DhcpOption::Nbdd(a.ipv4(1)?)
        }
        "NTP" => {
            want(1)?;
            DhcpOption::Ntp(a.ipv4(1)?)
        }
        "NBT" => {
            want(1)?;
            let t: u8 = a.num(1)?;
            if ![1, 2, 4, 8].contains(&t) {
                return Err(a.invalid(1, "1, 2, 4 or 8"));
            }
            DhcpOption::NbtType(t)
        }
        "NBS" => {
            want(1)?;
            DhcpOption::NbtScope(a.nonempty(1)?.into())
        }
        "DISABLE-NBT" => {
            want(0)?;
            DhcpOption::DisableNbt
        }
        "PROXY_HTTP" => {
            want(2)?;
            DhcpOption::ProxyHttp(a.nonempty(1)?.into(), a.port(2)?)
        }
        _ => {
            return Err(a.invalid(
                0,
                "DNS, DNS6, DOMAIN, ADAPTER_DOMAIN_SUFFIX, DOMAIN-SEARCH, WINS, NBDD, NTP, NBT, NBS, DISABLE-NBT or PROXY_HTTP",
            ));
        }
    };
    b.cfg.dhcp_options.push(opt);
    Ok(())
}

/// `ADDR` or `ADDR:PORT` or `[ADDR6]:PORT` or a bare IPv6 address.
fn dns_address(a: &Args<'_>, i: usize) -> Result<(IpAddr, Option<u16>), ConfigErrorKind> {
    let w = a.word(i)?;
    if let Ok(ip) = w.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Ok(sa) = w.parse::<std::net::SocketAddr>() {
        if sa.port() == 0 {
            return Err(a.invalid(i, "a port from 1 to 65535"));
        }
        return Ok((sa.ip(), Some(sa.port())));
    }
    Err(a.invalid(i, "an IP address, ADDR:PORT or [ADDR6]:PORT"))
}

fn dns(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    match a.word(0)? {
        "search-domains" => {
            b.cfg
                .dns
                .search_domains
                .extend(a.words.iter().skip(1).cloned());
            Ok(())
        }
        "server" => {
            if a.words.len() < 4 {
                return Err(ConfigErrorKind::Arity {
                    name: "dns server".into(),
                    expected: "PRIORITY KEY VALUE...".into(),
                    got: a.words.len() - 1,
                });
            }
            let priority: i8 = a
                .word(1)?
                .parse()
                .map_err(|_| a.invalid(1, "a priority from -128 to 127"))?;
            let servers = &mut b.cfg.dns.servers;
            let idx = match servers.iter().position(|s| s.priority == priority) {
                Some(i) => i,
                None => {
                    servers.push(DnsServer {
                        priority,
                        addresses: Vec::new(),
                        resolve_domains: Vec::new(),
                        dnssec: None,
                        transport: None,
                        sni: None,
                    });
                    servers.sort_by_key(|s| s.priority);
                    servers
                        .iter()
                        .position(|s| s.priority == priority)
                        .unwrap_or(0)
                }
            };
            let mut parsed_addrs = Vec::new();
            let key = a.word(2)?;
            let single = |n: usize| -> Result<(), ConfigErrorKind> {
                if a.words.len() == n {
                    Ok(())
                } else {
                    Err(ConfigErrorKind::Arity {
                        name: format!("dns server {priority} {key}"),
                        expected: "1".into(),
                        got: a.words.len() - 3,
                    })
                }
            };
            let (mut dnssec, mut transport, mut sni) = (None, None, None);
            match key {
                "address" => {
                    for i in 3..a.words.len() {
                        parsed_addrs.push(dns_address(a, i)?);
                    }
                }
                "resolve-domains" => {}
                "dnssec" => {
                    single(4)?;
                    dnssec = Some(match a.word(3)? {
                        "yes" => DnsSec::Yes,
                        "no" => DnsSec::No,
                        "optional" => DnsSec::Optional,
                        _ => return Err(a.invalid(3, "yes, no or optional")),
                    });
                }
                "transport" => {
                    single(4)?;
                    transport = Some(match a.word(3)? {
                        "plain" => DnsTransport::Plain,
                        "DoH" => DnsTransport::Https,
                        "DoT" => DnsTransport::Tls,
                        _ => return Err(a.invalid(3, "plain, DoH or DoT")),
                    });
                }
                "sni" => {
                    single(4)?;
                    sni = Some(a.nonempty(3)?.to_string());
                }
                _ => {
                    return Err(a.invalid(2, "address, resolve-domains, dnssec, transport or sni"));
                }
            }
            let Some(s) = b.cfg.dns.servers.get_mut(idx) else {
                return Err(ConfigErrorKind::Invalid(
                    "dns server table inconsistent".into(),
                ));
            };
            match key {
                "address" => {
                    s.addresses.extend(parsed_addrs);
                    if s.addresses.len() > 8 {
                        return Err(ConfigErrorKind::Invalid(format!(
                            "dns server {priority}: more than 8 addresses"
                        )));
                    }
                }
                "resolve-domains" => s.resolve_domains.extend(a.words.iter().skip(3).cloned()),
                "dnssec" => s.dnssec = dnssec,
                "transport" => s.transport = transport,
                _ => s.sni = sni,
            }
            Ok(())
        }
        _ => Err(a.invalid(0, "search-domains or server")),
    }
}

pub(super) fn key_direction(a: &Args<'_>, i: usize) -> Result<KeyDirection, ConfigErrorKind> {
    match a.word(i)? {
        "0" | "normal" => Ok(KeyDirection::Normal),
        "1" | "inverse" => Ok(KeyDirection::Inverse),
        _ => Err(a.invalid(i, "0 or 1")),
    }
}

fn tls_version(a: &Args<'_>, i: usize) -> Result<TlsVersion, ConfigErrorKind> {
    match a.word(i)? {
        "1.0" => Ok(TlsVersion::Tls10),
        "1.1" => Ok(TlsVersion::Tls11),
        "1.2" => Ok(TlsVersion::Tls12),
        "1.3" => Ok(TlsVersion::Tls13),
        _ => Err(a.invalid(i, "1.0, 1.1, 1.2 or 1.3")),
    }
}

/// Digests the data channel and tls-auth can use.
const DIGESTS: &[&str] = &["SHA1", "SHA224", "SHA256", "SHA384", "SHA512"];

fn digest(a: &Args<'_>, i: usize) -> Result<String, ConfigErrorKind> {
    let up = a.word(i)?.to_ascii_uppercase();
    let up = match up.as_str() {
        "SHA-1" => "SHA1".to_string(),
        "SHA-224" | "SHA2-224" => "SHA224".to_string(),
        "SHA-256" | "SHA2-256" => "SHA256".to_string(),
        "SHA-384" | "SHA2-384" => "SHA384".to_string(),
        "SHA-512" | "SHA2-512" => "SHA512".to_string(),
        _ => up,
    };
    if DIGESTS.contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(a.invalid(i, "SHA1, SHA224, SHA256, SHA384 or SHA512"))
    }
}

/// Data-channel ciphers this daemon implements, canonical spelling.
pub const CIPHERS: &[&str] = &[
    "AES-128-GCM",
    "AES-192-GCM",
    "AES-256-GCM",
    "CHACHA20-POLY1305",
    "AES-128-CBC",
    "AES-192-CBC",
    "AES-256-CBC",
];

fn canonical_cipher(name: &str) -> Option<&'static str> {
    let up = name.to_ascii_uppercase();
    CIPHERS.iter().copied().find(|c| *c == up)
}

fn cipher_name(a: &Args<'_>, i: usize) -> Result<String, ConfigErrorKind> {
    canonical_cipher(a.word(i)?)
        .map(str::to_string)
        .ok_or_else(|| a.invalid(i, &format!("one of {}", CIPHERS.join(", "))))
}

fn data_ciphers(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let mut list = Vec::new();
    for item in a.word(0)?.split(':') {
        let (optional, name) = match item.strip_prefix('?') {
            Some(n) => (true, n),
            None => (false, item),
        };
        match canonical_cipher(name) {
            Some(c) if !list.iter().any(|x: &String| x == c) => list.push(c.to_string()),
            Some(_) => {}
            None if optional => b.warn(
                a.span,
                format!(
                    "optional cipher '{name}' in {} is not supported; skipped",
                    a.name
                ),
            ),
            None => {
                return Err(ConfigErrorKind::InvalidValue {
                    name: a.name.into(),
                    value: name.into(),
                    expected: format!(
                        "a supported cipher ({}), or '?{name}' to make it optional",
                        CIPHERS.join(", ")
                    ),
                });
            }
        }
    }
    if list.is_empty() {
        return Err(a.invalid(0, "at least one supported cipher"));
    }
    b.raw.data_ciphers = Some(list);
    Ok(())
}

fn management(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    use super::management::Listen;
    // Check the address the way OpenVPN reads it, so a typo is reported as
    // such; host names are resolved when the listener starts, as 2.6 does.
    let host = a.word(0)?;
    let listen = if a.word(1)? == "unix" {
        Listen::Unix(a.path(0)?)
    } else {
        if host.parse::<IpAddr>().is_err() && !super::connection::is_host_name(host) {
            return Err(a.invalid(
                0,
                "an IP address or host name (or a socket path with 'unix')",
            ));
        }
        Listen::Tcp {
            host: host.to_string(),
            port: a.num_range::<u16>(1, 0, 65535)?,
        }
    };
    b.cfg.management.listen = Some(listen);
    b.cfg.management.password_file = match a.words.get(2) {
        Some(_) => Some(a.path(2)?),
        None => None,
    };
    Ok(())
}

fn setenv(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let name = a.nonempty(0)?;
    let value = a.words.get(1).cloned().unwrap_or_default();
    match name {
        "FORWARD_COMPATIBLE" => b.forward_compatible = value == "1",
        "GENERIC_CONFIG" => {
            return Err(ConfigErrorKind::Invalid(
                "this is a generic configuration (setenv GENERIC_CONFIG) and cannot be used directly"
                    .into(),
            ));
        }
        "PUSH_PEER_INFO" => b.cfg.push_peer_info = true,
        // OpenVPN reads these two as options, not as script variables.
        "REMOTE_RANDOM_HOSTNAME" if a.words.len() == 1 => {
            b.cfg.remote_random_hostname = true;
            return Ok(());
        }
        "SERVER_POLL_TIMEOUT" if a.words.len() == 2 => {
            b.cfg.connect_timeout = a.num(1)?;
            return Ok(());
        }
        _ => {}
    }
    b.cfg.setenv.push((name.to_string(), value));
    Ok(())
}

/// Linux interface names: 1 to 15 bytes, no '/' or white space.
fn ifname(a: &Args<'_>, i: usize) -> Result<String, ConfigErrorKind> {
    let w = a.word(i)?;
    let ok = !w.is_empty()
        && w.len() < 16
        && w != "."
        && w != ".."
        && !w
            .bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace());
    if ok {
        Ok(w.to_string())
    } else {
        Err(a.invalid(i, "a network interface name (1 to 15 characters)"))
    }
}
