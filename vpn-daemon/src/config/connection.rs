//! `<connection>` blocks and the list of connection entries, as OpenVPN
//! 2.6 builds them (`connection_entry`, `options_postprocess_mutate_ce` in
//! `options.c`).
//!
//! A block starts from a copy of the connection options given so far
//! outside any block, then applies its own lines, which may only be the
//! `OPT_P_CONNECTION` directives ([`ALLOWED`]); it must hold a `remote`.
//! When at least one block exists, plain `remote` lines are ignored, and
//! connection options given after a block do not reach that block (OpenVPN
//! warns, so do we). Without blocks, every `remote` line becomes an entry
//! with the connection options as they are at the end of the
//! configuration.
//!
//! Of the per-connection options, those the client walk uses (remote,
//! proto, port, local, lport, nobind, connect-retry, connect-timeout,
//! explicit-exit-notify) are kept per entry in [`Connection`]. The others
//! (tun-mtu, tun-mtu-max, mssfix, float, tls-auth, tls-crypt,
//! tls-crypt-v2, key-direction) are accepted in blocks when every block
//! agrees on them; they then become the global value. Blocks that differ
//! there are refused with a clear reason instead of silently using one.

use std::path::PathBuf;

use super::{
    Builder, ConfigError, ConfigErrorKind, RawProto, RawRemote, Source, Span, lexer,
    types::{ConnectRetry, KeyDirection, Mode, Mssfix, Remote, RouteAddr, Transport},
};

/// The directives OpenVPN 2.6 allows inside a `<connection>` block
/// (`OPT_P_CONNECTION`).
pub const ALLOWED: &[&str] = &[
    "bind",
    "connect-retry",
    "connect-retry-max",
    "connect-timeout",
    "explicit-exit-notify",
    "float",
    "fragment",
    "http-proxy",
    "http-proxy-option",
    "http-proxy-retry",
    "http-proxy-timeout",
    "key-direction",
    "link-mtu",
    "local",
    "lport",
    "max-packet-size",
    "mssfix",
    "mtu-disc",
    "mtu-dynamic",
    "nobind",
    "port",
    "proto",
    "remote",
    "rport",
    "server-poll-timeout",
    "socks-proxy",
    "socks-proxy-retry",
    "tls-auth",
    "tls-crypt",
    "tls-crypt-v2",
    "tun-mtu",
    "tun-mtu-extra",
    "tun-mtu-max",
    "udp-mtu",
];

/// One connection entry: a remote and the options used to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Where to connect (host, port, protocol).
    pub remote: Remote,
    /// `local`: the address (or name) to bind.
    pub local: Option<String>,
    /// The local port to bind; `None` for an ephemeral port (`nobind`, or a
    /// client that gave neither `local` nor `lport`, as in OpenVPN).
    pub bind_port: Option<u16>,
    /// `connect-retry N [MAX]`.
    pub connect_retry: ConnectRetry,
    /// `connect-timeout` / `server-poll-timeout` seconds (default 120; 0
    /// is no limit).
    pub connect_timeout: u32,
    /// `explicit-exit-notify` (never over TCP).
    pub explicit_exit_notify: Option<u32>,
    /// `http-proxy`: reach the (TCP) server through an HTTP CONNECT proxy.
    pub http_proxy: Option<HttpProxy>,
    /// `socks-proxy`: reach the (TCP) server through a SOCKS5 proxy.
    pub socks_proxy: Option<SocksProxy>,
}

/// `http-proxy` (with its `http-proxy-option`s) of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpProxy {
    /// The proxy's address or name; empty when only `http-proxy-option`
    /// was given (an error after the last directive).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// How to authenticate.
    pub auth: HttpProxyAuth,
    /// `http-proxy-option VERSION` (default 1.0).
    pub version: String,
    /// `http-proxy-option AGENT`.
    pub agent: Option<String>,
    /// `http-proxy-option CUSTOM-HEADER|EXT1|EXT2 NAME [CONTENT]`.
    pub headers: Vec<(String, Option<String>)>,
    /// `http-proxy-user-pass FILE` or its inline block: the credentials,
    /// in place of the authfile.
    pub user_pass: Option<Source>,
}

/// `http-proxy`'s third (and fourth) parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HttpProxyAuth {
    /// No third parameter.
    #[default]
    None,
    /// `auto` / `auto-nct` (`nct`: never basic, which is clear text):
    /// with `http-proxy-user-pass` and not `nct`, basic credentials are
    /// sent at once; otherwise none, and a proxy that asks for them fails
    /// the attempt (OpenVPN would retry with credentials it prompts for).
    Auto {
        /// `auto-nct`.
        nct: bool,
    },
    /// An authfile (username line, password line) and `basic`.
    Basic(PathBuf),
}

/// The most `http-proxy-option CUSTOM-HEADER`s (OpenVPN's
/// `MAX_CUSTOM_HTTP_HEADER`).
pub(super) const MAX_CUSTOM_HTTP_HEADER: usize = 10;

/// `socks-proxy HOST [PORT [AUTHFILE]]` of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocksProxy {
    /// The proxy's address or name.
    pub host: String,
    /// Its port (default 1080).
    pub port: u16,
    /// A username line and a password line, for SOCKS5 user/password
    /// authentication.
    pub authfile: Option<PathBuf>,
}

/// A `route` whose network or gateway is a host name: OpenVPN resolves it
/// when it adds the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRoute {
    /// Destination: a host name or what [`RouteAddr`] holds.
    pub network: RouteTarget,
    /// Netmask (default 255.255.255.255).
    pub netmask: std::net::Ipv4Addr,
    /// Gateway; `None` = `route-gateway` / vpn_gateway.
    pub gateway: Option<RouteTarget>,
    /// Metric.
    pub metric: Option<u32>,
}

/// One end of a [`NamedRoute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// An address or keyword.
    Addr(RouteAddr),
    /// A host name, resolved to its first IPv4 address.
    Host(String),
}

/// The connection options of OpenVPN's `struct connection_entry`, in the
/// places the directive parsers store them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CeState {
    proto: Option<RawProto>,
    local: Option<String>,
    lport: u16,
    rport: u16,
    nobind: bool,
    float: bool,
    connect_retry: ConnectRetry,
    connect_timeout: u32,
    explicit_exit_notify: Option<u32>,
    tun_mtu: u32,
    tun_mtu_max: u32,
    mssfix: Option<Mssfix>,
    key_direction: Option<KeyDirection>,
    tls_auth: Option<(Source, Option<KeyDirection>)>,
    tls_crypt: Option<Source>,
    tls_crypt_v2: Option<(Source, bool)>,
    http_proxy: Option<HttpProxy>,
    socks_proxy: Option<SocksProxy>,
    /// `lport` was given (OpenVPN's `local_port_defined`: binding is then
    /// wanted even for a client).
    lport_given: bool,
}

/// A block as read, before defaults and `proto tcp` resolution.
#[derive(Debug, Clone)]
pub(super) struct RawConnection {
    span: Span,
    remote: RawRemote,
    ce: CeState,
}

impl CeState {
    fn capture(b: &Builder, lport_given: bool) -> Self {
        CeState {
            proto: b.raw.proto,
            local: b.cfg.local.clone(),
            lport: b.cfg.lport,
            rport: b.cfg.rport,
            nobind: b.cfg.nobind,
            float: b.cfg.float,
            connect_retry: b.cfg.connect_retry,
            connect_timeout: b.cfg.connect_timeout,
            explicit_exit_notify: b.cfg.explicit_exit_notify,
            tun_mtu: b.cfg.tun_mtu,
            tun_mtu_max: b.cfg.tun_mtu_max,
            mssfix: b.cfg.mssfix,
            key_direction: b.cfg.key_direction,
            tls_auth: b.raw.tls_auth.clone(),
            tls_crypt: b.raw.tls_crypt.clone(),
            tls_crypt_v2: b.raw.tls_crypt_v2.clone(),
            http_proxy: b.raw.http_proxy.clone(),
            socks_proxy: b.raw.socks_proxy.clone(),
            lport_given,
        }
    }

    fn restore(self, b: &mut Builder) {
        b.raw.proto = self.proto;
        b.cfg.local = self.local;
        b.cfg.lport = self.lport;
        b.cfg.rport = self.rport;
        b.cfg.nobind = self.nobind;
        b.cfg.float = self.float;
        b.cfg.connect_retry = self.connect_retry;
        b.cfg.connect_timeout = self.connect_timeout;
        b.cfg.explicit_exit_notify = self.explicit_exit_notify;
        b.cfg.tun_mtu = self.tun_mtu;
        b.cfg.tun_mtu_max = self.tun_mtu_max;
        b.cfg.mssfix = self.mssfix;
        b.cfg.key_direction = self.key_direction;
        b.raw.tls_auth = self.tls_auth;
        b.raw.tls_crypt = self.tls_crypt;
        b.raw.tls_crypt_v2 = self.tls_crypt_v2;
        b.raw.http_proxy = self.http_proxy;
        b.raw.socks_proxy = self.socks_proxy;
    }
}

/// Reads one `<connection>` block whose `<connection>` line is at `span`.
pub(super) fn apply_block(b: &mut Builder, span: &Span, body: &str) -> Result<(), ConfigError> {
    if b.in_connection {
        return Err(ConfigError::at(
            span,
            ConfigErrorKind::Invalid("a <connection> block cannot hold another one".into()),
        ));
    }
    let lines = lexer::lex(body.as_bytes()).map_err(|e| ConfigError {
        file: span.file.clone(),
        line: span.line.saturating_add(e.line),
        kind: ConfigErrorKind::Lex(e.kind),
    })?;
    let global = CeState::capture(b, b.given("lport"));
    let spans = b.spans.clone();
    let outer_remotes = std::mem::take(&mut b.raw.remotes);
    b.in_connection = true;
    let mut lport_given = global.lport_given;
    let r = (|| {
        for l in lines {
            let at = Span {
                file: span.file.clone(),
                line: span.line.saturating_add(l.line),
            };
            let name = l
                .words
                .first()
                .map(|w| w.strip_prefix("--").unwrap_or(w).to_string())
                .unwrap_or_default();
            if !ALLOWED.contains(&name.as_str()) {
                // Unknown names stay unknown; known ones are out of place.
                if !matches!(
                    super::directives::lookup(&name),
                    super::directives::Lookup::Unknown
                ) {
                    return Err(ConfigError::at(
                        &at,
                        ConfigErrorKind::Invalid(format!(
                            "option '{name}' cannot be used in a <connection> block"
                        )),
                    ));
                }
            }
            lport_given |= name == "lport";
            b.apply(&at, l.words, l.inline)?;
        }
        Ok(())
    })();
    b.in_connection = false;
    let block = CeState::capture(b, lport_given);
    let remotes = std::mem::replace(&mut b.raw.remotes, outer_remotes);
    global.restore(b);
    b.spans = spans;
    r?;
    // Each `remote` overwrites what the previous one gave (OpenVPN's
    // connection_entry_load_re): host always, port and proto if present.
    let mut it = remotes.into_iter();
    let Some(mut remote) = it.next() else {
        return Err(ConfigError::at(
            span,
            ConfigErrorKind::Invalid(
                "each <connection> block must contain exactly one 'remote' directive".into(),
            ),
        ));
    };
    for r in it {
        remote.host = r.host;
        remote.span = r.span;
        remote.port = r.port.or(remote.port);
        remote.proto = r.proto.or(remote.proto);
    }
    b.raw.connections.push(RawConnection {
        span: span.clone(),
        remote,
        ce: block,
    });
    Ok(())
}

/// Called for every directive outside blocks: OpenVPN's warning that a
/// connection option after a block does not reach it.
pub(super) fn note_global(b: &mut Builder, span: &Span, name: &str) {
    if !b.in_connection
        && !b.raw.connections.is_empty()
        && name != "connection"
        && ALLOWED.contains(&name)
    {
        b.warn(
            span,
            format!("option '{name}' is ignored by previous <connection> blocks"),
        );
    }
}

/// After the last directive: the connection list, `proto tcp` resolved,
/// binding decided, and the checks OpenVPN makes per entry.
pub(super) fn finish(b: &mut Builder) -> Result<(), ConfigError> {
    let server = b.cfg.mode == Mode::Server;
    let blocks = std::mem::take(&mut b.raw.connections);
    let from_blocks = !blocks.is_empty();
    let entries: Vec<(RawRemote, CeState)> = if blocks.is_empty() {
        let ce = CeState::capture(b, b.given("lport"));
        std::mem::take(&mut b.raw.remotes)
            .into_iter()
            .map(|r| (r, ce.clone()))
            .collect()
    } else {
        b.raw.remotes.clear();
        blocks.into_iter().map(|c| (c.remote, c.ce)).collect()
    };
    if server && let Some((r, _)) = entries.first() {
        return Err(super::expand::invalid(
            r.span.clone(),
            "'remote' cannot be used in server mode",
        ));
    }
    if b.cfg.pull && entries.is_empty() {
        return Err(super::expand::invalid(
            b.span_of("client"),
            "a client needs at least one 'remote'",
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (r, ce) in entries {
        let raw = r.proto.or(ce.proto).unwrap_or((
            super::types::RawTransport::Udp,
            super::types::AddrFamily::Any,
        ));
        let proto = super::expand::resolve_proto(b, raw, &r.span)?;
        if proto.transport == Transport::TcpServer && b.cfg.pull {
            return Err(super::expand::invalid(
                r.span.clone(),
                "a client's remote must use udp or tcp-client",
            ));
        }
        let need_bind = ce.local.is_some() || ce.lport_given;
        let bind =
            !ce.nobind && (need_bind || !(proto.transport == Transport::TcpClient || b.cfg.pull));
        let explicit_exit_notify = match ce.explicit_exit_notify {
            Some(_) if proto.transport != Transport::Udp => {
                // Outside blocks `misc` says so once for the global value.
                if from_blocks {
                    b.warn(
                        &r.span,
                        "'explicit-exit-notify' is ignored with TCP (as in OpenVPN)".into(),
                    );
                }
                None
            }
            e => e,
        };
        verify_proxies(b, &r.span, &ce, proto.transport)?;
        out.push(Connection {
            remote: Remote {
                host: r.host,
                port: r.port.unwrap_or(ce.rport),
                proto,
            },
            local: ce.local,
            bind_port: bind.then_some(ce.lport),
            connect_retry: ce.connect_retry,
            connect_timeout: ce.connect_timeout,
            explicit_exit_notify,
            http_proxy: ce.http_proxy,
            socks_proxy: ce.socks_proxy,
        });
    }
    b.cfg.remotes = out.iter().map(|c| c.remote.clone()).collect();
    b.cfg.connections = out;
    Ok(())
}

/// OpenVPN's proxy checks of `options_postprocess_verify_ce`.
fn verify_proxies(
    b: &Builder,
    span: &Span,
    ce: &CeState,
    transport: Transport,
) -> Result<(), ConfigError> {
    let at = |name: &str| {
        if b.given(name) {
            b.span_of(name)
        } else {
            span.clone()
        }
    };
    if let Some(h) = &ce.http_proxy {
        if h.host.is_empty() {
            return Err(super::expand::invalid(
                at("http-proxy-option"),
                "--http-proxy not specified but other http proxy options present",
            ));
        }
        if transport != Transport::TcpClient {
            return Err(super::expand::invalid(
                at("http-proxy"),
                "--http-proxy MUST be used in TCP Client mode (i.e. --proto tcp-client)",
            ));
        }
        if ce.socks_proxy.is_some() {
            return Err(super::expand::invalid(
                at("http-proxy"),
                "--http-proxy can not be used together with --socks-proxy",
            ));
        }
    }
    if ce.socks_proxy.is_some() && transport == Transport::Udp {
        return Err(ConfigError::at(
            &at("socks-proxy"),
            ConfigErrorKind::Unsupported {
                name: "socks-proxy".into(),
                reason: "SOCKS over UDP (UDP ASSOCIATE) is not implemented; use proto tcp-client",
            },
        ));
    }
    Ok(())
}

/// Before the global checks: blocks are refused in server mode, and the
/// per-connection options we only implement globally must agree between
/// the blocks; their value becomes the global one.
pub(super) fn lift(b: &mut Builder) -> Result<(), ConfigError> {
    let blocks = &b.raw.connections;
    let Some(first) = blocks.first() else {
        return Ok(());
    };
    if b.cfg.mode == Mode::Server {
        return Err(super::expand::invalid(
            first.span.clone(),
            "<connection> cannot be used with 'mode server'",
        ));
    }
    // A block without tls-auth/tls-crypt/tls-crypt-v2 takes the global
    // ones as they are at the end, key-direction with them
    // (options_postprocess_mutate_ce), wherever they were given.
    let (g_auth, g_crypt, g_v2, g_dir) = (
        b.raw.tls_auth.clone(),
        b.raw.tls_crypt.clone(),
        b.raw.tls_crypt_v2.clone(),
        b.cfg.key_direction,
    );
    let effective = |ce: &CeState| {
        let mut ce = ce.clone();
        if ce.tls_auth.is_none() && ce.tls_crypt.is_none() && ce.tls_crypt_v2.is_none() {
            ce.tls_auth = g_auth.clone();
            ce.tls_crypt = g_crypt.clone();
            ce.tls_crypt_v2 = g_v2.clone();
            ce.key_direction = g_dir;
        }
        ce
    };
    let f = effective(&first.ce);
    for c in blocks.iter().skip(1) {
        let e = effective(&c.ce);
        for (name, differs) in [
            ("tun-mtu", e.tun_mtu != f.tun_mtu),
            ("tun-mtu-max", e.tun_mtu_max != f.tun_mtu_max),
            ("mssfix", e.mssfix != f.mssfix),
            ("float", e.float != f.float),
            ("key-direction", e.key_direction != f.key_direction),
            ("tls-auth", e.tls_auth != f.tls_auth),
            ("tls-crypt", e.tls_crypt != f.tls_crypt),
            ("tls-crypt-v2", e.tls_crypt_v2 != f.tls_crypt_v2),
        ] {
            if differs {
                return Err(ConfigError::at(
                    &c.span,
                    ConfigErrorKind::Invalid(format!(
                        "'{name}' differs between <connection> blocks; this daemon applies it to all connections, so give it once outside the blocks"
                    )),
                ));
            }
        }
    }
    let proto = first.remote.proto.or(f.proto);
    b.cfg.tun_mtu = f.tun_mtu;
    b.cfg.tun_mtu_max = f.tun_mtu_max;
    b.cfg.mssfix = f.mssfix;
    b.cfg.float = f.float;
    b.cfg.key_direction = f.key_direction;
    b.raw.tls_auth = f.tls_auth;
    b.raw.tls_crypt = f.tls_crypt;
    b.raw.tls_crypt_v2 = f.tls_crypt_v2;
    // The global `proto` is what the first entry uses (the checks on the
    // transport look at it).
    if proto.is_some() {
        b.raw.proto = proto;
    }
    Ok(())
}

/// Whether `s` is shaped like a DNS host name (letters, digits, `-`, `_`
/// and dots, labels of 1 to 63 bytes, at most 253 bytes), as the names
/// getaddrinfo takes.
pub(crate) fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AddrFamily, Config, ConfigError, HttpProxyAuth, Loader};

    const BASE: &str = "client\ndev tun\nca ca.crt\ncert c.crt\nkey c.key\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Loader::new("/nonexistent-base")
            .check_files(false)
            .load_str("test.conf", &format!("{BASE}{text}"))
    }

    fn ok(text: &str) -> Config {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn blocks_become_entries_with_their_own_options() {
        let c = ok("connect-retry 2 20\n\
             <connection>\nremote 192.0.2.1 1194 udp\nexplicit-exit-notify 3\nconnect-timeout 5\n</connection>\n\
             <connection>\nremote vpn.example.org 443\nproto tcp\nconnect-retry 7\n</connection>\n");
        assert_eq!(c.connections.len(), 2);
        let [a, b] = &c.connections[..] else {
            panic!("two entries")
        };
        assert_eq!(a.remote.host, "192.0.2.1");
        assert_eq!(a.remote.proto.transport, Transport::Udp);
        assert_eq!(a.explicit_exit_notify, Some(3));
        assert_eq!(a.connect_timeout, 5);
        // Inherited from before the block.
        assert_eq!(
            a.connect_retry,
            ConnectRetry {
                initial: 2,
                max: 20
            }
        );
        assert_eq!(b.remote.host, "vpn.example.org");
        assert_eq!(b.remote.port, 443);
        assert_eq!(b.remote.proto.transport, Transport::TcpClient);
        // Only the base changes: the maximum is the inherited one.
        assert_eq!(
            b.connect_retry,
            ConnectRetry {
                initial: 7,
                max: 20
            }
        );
        assert_eq!(b.connect_timeout, 120);
        assert_eq!(b.explicit_exit_notify, None);
        // `remotes` mirrors the entries.
        assert_eq!(c.remotes, [a.remote.clone(), b.remote.clone()]);
        // A client binds no port unless asked (OpenVPN's bind_local rule).
        assert_eq!(a.bind_port, None);
    }

    #[test]
    fn a_block_does_not_leak_into_the_global_options_or_later_blocks() {
        let c = ok(
            "<connection>\nremote 192.0.2.1\nport 2000\nconnect-retry 9\n</connection>\n\
             <connection>\nremote 192.0.2.2\n</connection>\n",
        );
        assert_eq!(c.connections[0].remote.port, 2000);
        assert_eq!(c.connections[1].remote.port, 1194);
        assert_eq!(c.connections[1].connect_retry.initial, 1);
        assert_eq!(c.rport, 1194);
        assert_eq!(c.connect_retry.initial, 1);
    }

    #[test]
    fn plain_remotes_are_ignored_once_blocks_exist_and_later_options_warn() {
        let c = ok(
            "remote 198.51.100.1\n<connection>\nremote 192.0.2.1\n</connection>\n\
             remote 198.51.100.2\nconnect-timeout 9\n",
        );
        assert_eq!(c.connections.len(), 1);
        assert_eq!(c.remotes.len(), 1);
        assert_eq!(c.connections[0].connect_timeout, 120);
        let w: Vec<_> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            w.iter()
                .any(|m| m.contains("'remote' is ignored by previous <connection> blocks")),
            "{w:?}"
        );
        assert!(w.iter().any(|m| m.contains("'connect-timeout' is ignored")));
    }

    #[test]
    fn without_blocks_each_remote_takes_the_final_options() {
        let c = ok(
            "remote 198.51.100.1\nremote 198.51.100.2 1195 tcp\nconnect-timeout 9\nlport 5000\n",
        );
        assert_eq!(c.connections.len(), 2);
        assert!(c.connections.iter().all(|e| e.connect_timeout == 9));
        // An explicit `lport` makes even a client bind, over TCP too.
        assert_eq!(c.connections[0].bind_port, Some(5000));
        assert_eq!(c.connections[1].bind_port, Some(5000));
        assert_eq!(
            c.connections[1].remote.proto.transport,
            Transport::TcpClient
        );
    }

    #[test]
    fn only_connection_options_are_allowed_in_a_block() {
        let e = err("<connection>\nremote 192.0.2.1\nverb 4\n</connection>\n");
        // The line inside the block: BASE has 5 lines, the block starts on 6.
        assert_eq!(e.line, 8, "{e}");
        assert!(
            e.to_string()
                .contains("cannot be used in a <connection> block")
        );
        let e = err("<connection>\nremote 192.0.2.1\nfrobnicate\n</connection>\n");
        assert!(
            matches!(e.kind, ConfigErrorKind::UnknownDirective { .. }),
            "{e}"
        );
        let e = err("<connection>\nremote 192.0.2.1\nproto bogus\n</connection>\n");
        assert_eq!(e.line, 8);
    }

    #[test]
    fn a_block_needs_a_remote_and_the_last_one_wins() {
        let e = err("<connection>\nproto tcp\n</connection>\n");
        assert_eq!(e.line, 6);
        let c = ok("<connection>\nremote 192.0.2.1 2000 udp6\nremote 192.0.2.2\n</connection>\n");
        let r = &c.connections[0].remote;
        assert_eq!(
            (r.host.as_str(), r.port, r.proto.family),
            ("192.0.2.2", 2000, AddrFamily::V6)
        );
    }

    #[test]
    fn blocks_are_refused_in_server_mode() {
        let e = Loader::new("/x")
            .check_files(false)
            .load_str(
                "s.conf",
                "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\ndh none\n<connection>\nremote 192.0.2.1\n</connection>\n",
            )
            .unwrap_err();
        assert!(e.to_string().contains("<connection>"), "{e}");
    }

    #[test]
    fn uniform_options_in_blocks_are_lifted_and_differing_ones_refused() {
        let c = ok(
            "<connection>\nremote 192.0.2.1\ntun-mtu 1400\n</connection>\n\
             <connection>\nremote 192.0.2.2\ntun-mtu 1400\n</connection>\n",
        );
        assert_eq!(c.tun_mtu, 1400);
        let e = err(
            "<connection>\nremote 192.0.2.1\ntun-mtu 1400\n</connection>\n\
             <connection>\nremote 192.0.2.2\n</connection>\n",
        );
        assert!(e.to_string().contains("'tun-mtu' differs"), "{e}");
    }

    #[test]
    fn blocks_work_through_config_includes_and_nested_inline_keys() {
        let dir = std::env::temp_dir().join(format!("conn-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("inner.conf"),
            "<connection>\nremote 192.0.2.7 1300\n</connection>\n",
        )
        .unwrap();
        let c = Loader::new(&dir)
            .check_files(false)
            .load_str("outer.conf", &format!("{BASE}config inner.conf\n"));
        let _ = std::fs::remove_dir_all(&dir);
        let c = c.unwrap();
        assert_eq!(c.connections[0].remote.port, 1300);
        let key = "-----BEGIN OpenVPN Static key V1-----\n".to_string()
            + &"ab"
                .repeat(16)
                .repeat(16)
                .as_bytes()
                .chunks(32)
                .map(|c| String::from_utf8_lossy(c).into_owned() + "\n")
                .collect::<String>()
            + "-----END OpenVPN Static key V1-----\n";
        let c = ok(&format!(
            "<connection>\nremote 192.0.2.1\n<tls-crypt>\n{key}</tls-crypt>\n</connection>\n"
        ));
        assert!(matches!(c.tls_wrap, crate::config::TlsWrap::Crypt { .. }));
    }

    #[test]
    fn global_tls_wrapping_after_the_blocks_still_reaches_them() {
        let c = ok("<connection>\nremote 192.0.2.1\n</connection>\ntls-crypt tc.key\n");
        assert!(matches!(c.tls_wrap, crate::config::TlsWrap::Crypt { .. }));
    }

    #[test]
    fn proxies_are_per_entry_and_checked_as_openvpn_does() {
        let c = ok(
            "<connection>\nremote 192.0.2.1 443 tcp\nhttp-proxy proxy.example 3128 auth.txt\nhttp-proxy-option VERSION 1.1\n</connection>\n\
             <connection>\nremote 192.0.2.2 1194 tcp\nsocks-proxy 10.0.0.1\n</connection>\n",
        );
        let h = c.connections[0].http_proxy.as_ref().unwrap();
        assert_eq!(
            (h.host.as_str(), h.port, h.version.as_str()),
            ("proxy.example", 3128, "1.1")
        );
        assert!(matches!(&h.auth, HttpProxyAuth::Basic(p) if p.ends_with("auth.txt")));
        assert_eq!(c.connections[0].socks_proxy, None);
        let s = c.connections[1].socks_proxy.as_ref().unwrap();
        assert_eq!((s.host.as_str(), s.port), ("10.0.0.1", 1080));
        assert!(
            err("remote 192.0.2.1\nhttp-proxy p 80\n")
                .to_string()
                .contains("TCP Client mode")
        );
        assert!(
            err("remote 192.0.2.1\nproto tcp\nhttp-proxy-option AGENT x\n")
                .to_string()
                .contains("not specified")
        );
        assert!(
            err("remote 192.0.2.1\nproto tcp\nhttp-proxy p\n")
                .to_string()
                .contains("port number not defined")
        );
        assert!(
            err("remote 192.0.2.1\nproto tcp\nhttp-proxy p 80\nsocks-proxy q\n")
                .to_string()
                .contains("together")
        );
        assert!(matches!(
            err("remote 192.0.2.1\nsocks-proxy q\n").kind,
            ConfigErrorKind::Unsupported { .. }
        ));
        assert!(matches!(
            err("remote 192.0.2.1\nproto tcp\nhttp-proxy p 80 f ntlm\n").kind,
            ConfigErrorKind::Unsupported { .. }
        ));
        let c = ok("remote 192.0.2.1\nproto tcp\nhttp-proxy p 80 auto\n");
        assert_eq!(
            c.connections[0].http_proxy.as_ref().unwrap().auth,
            HttpProxyAuth::Auto { nct: false }
        );
        let c = ok(
            "remote 192.0.2.1\nproto tcp\nhttp-proxy p 80 auto-nct\n<http-proxy-user-pass>\nu\np\n</http-proxy-user-pass>\nhttp-proxy-retry\n",
        );
        let h = c.connections[0].http_proxy.as_ref().unwrap();
        assert_eq!(h.auth, HttpProxyAuth::Auto { nct: true });
        assert_eq!(h.user_pass, Some(Source::Inline("u\np\n".into())));
        assert_eq!(c.warnings.len(), 1);
    }

    /// A provider-style profile; the expected values are what `openvpn
    /// --verb 4` 2.6.14 prints as its "Connection profiles" for it.
    #[test]
    fn provider_profile_matches_openvpns_connection_profiles() {
        let c = ok(
            "nobind\npersist-key\nremote-random\nresolv-retry infinite\nserver-poll-timeout 4\nconnect-retry 2 30\n\
             <connection>\nremote 198.51.100.10 1194 udp\nexplicit-exit-notify 2\n</connection>\n\
             <connection>\nremote vpn-b.example.net 443 tcp-client\nconnect-retry 5\n</connection>\n\
             <connection>\nremote 198.51.100.12\nport 1195\nproto udp4\nserver-poll-timeout 10\n</connection>\n\
             remote-cert-tls server\n",
        );
        let got: Vec<_> = c
            .connections
            .iter()
            .map(|e| {
                (
                    e.remote.host.as_str(),
                    e.remote.port,
                    e.remote.proto.transport,
                    e.remote.proto.family,
                    e.bind_port,
                    e.connect_retry.initial,
                    e.connect_timeout,
                    e.explicit_exit_notify,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "198.51.100.10",
                    1194,
                    Transport::Udp,
                    AddrFamily::Any,
                    None,
                    2,
                    4,
                    Some(2)
                ),
                (
                    "vpn-b.example.net",
                    443,
                    Transport::TcpClient,
                    AddrFamily::Any,
                    None,
                    5,
                    4,
                    None
                ),
                (
                    "198.51.100.12",
                    1195,
                    Transport::Udp,
                    AddrFamily::V4,
                    None,
                    2,
                    10,
                    None
                ),
            ]
        );
        assert!(c.remote_random);
        // connect-retry's maximum came from before the blocks.
        assert!(c.connections.iter().all(|e| e.connect_retry.max == 30));
    }

    #[test]
    fn route_takes_host_names_for_network_and_gateway() {
        let c = ok(
            "remote 192.0.2.1\nroute gw.example 255.255.255.255\nroute 10.9.0.0 255.255.0.0 next.example 3\nroute 10.1.0.0 255.255.0.0\n",
        );
        assert_eq!(c.routes.len(), 1);
        assert_eq!(
            c.route_hosts,
            [
                NamedRoute {
                    network: RouteTarget::Host("gw.example".into()),
                    netmask: std::net::Ipv4Addr::BROADCAST,
                    gateway: None,
                    metric: None,
                },
                NamedRoute {
                    network: RouteTarget::Addr(RouteAddr::Addr([10, 9, 0, 0].into())),
                    netmask: [255, 255, 0, 0].into(),
                    gateway: Some(RouteTarget::Host("next.example".into())),
                    metric: Some(3),
                },
            ]
        );
        // Not a name: still an error.
        assert!(
            err("remote 192.0.2.1\nroute 10.0.0.x/8\n")
                .to_string()
                .contains("host name")
        );
    }

    #[test]
    fn setenv_spellings_of_the_walk_options() {
        let c =
            ok("remote 192.0.2.1\nsetenv REMOTE_RANDOM_HOSTNAME\nsetenv SERVER_POLL_TIMEOUT 7\n");
        assert!(c.remote_random_hostname);
        assert_eq!(c.connections[0].connect_timeout, 7);
        // Consumed as options, not passed to scripts.
        assert!(c.setenv.is_empty());
        // With a value REMOTE_RANDOM_HOSTNAME is an ordinary variable.
        let c = ok("remote 192.0.2.1\nsetenv REMOTE_RANDOM_HOSTNAME 1\n");
        assert!(!c.remote_random_hostname);
        assert_eq!(c.setenv.len(), 1);
    }

    #[test]
    fn host_names_have_a_shape() {
        for good in ["localhost", "vpn.example.org", "a-b.c_d.example.", "x1"] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in ["", "a..b", "-a.b", "a b", "a/b", &"x".repeat(64)] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
