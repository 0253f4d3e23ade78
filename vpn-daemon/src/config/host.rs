//! Options that tune the host rather than the protocol: sockets, the
//! process, what the client takes from a PUSH_REPLY, extra scripts and the
//! server's per-client bounds, with OpenVPN 2.6's defaults.
//!
//! They are grouped here (and parsed by `directives::host`) so that one
//! place shows every directive of this kind and the default each has.

use std::path::PathBuf;

use super::{Builder, ConfigError, ConfigErrorKind, Mode, Transport};
pub use crate::proto::push::{PullFilter, PullFilterAction};

/// `mtu-disc no|maybe|yes`: the socket's `IP_MTU_DISCOVER` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtuDisc {
    /// `IP_PMTUDISC_DONT`: never set DF.
    No,
    /// `IP_PMTUDISC_WANT`: the kernel's per-route choice.
    Maybe,
    /// `IP_PMTUDISC_DO`: always set DF.
    Yes,
}

/// `remap-usr1 SIGHUP|SIGTERM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapUsr1 {
    /// SIGUSR1 acts as SIGHUP (re-read the config).
    Hup,
    /// SIGUSR1 acts as SIGTERM (exit).
    Term,
}

/// Where foreign connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortShare {
    /// `HOST` (a name is resolved at each connection).
    pub host: String,
    /// `PORT`.
    pub port: u16,
    /// `DIR`: a file per relayed connection, named after the relay's local
    /// address and holding the client's, for the receiving service.
    pub journal: Option<PathBuf>,
}

/// OpenVPN's informational modes (printed by `daemon::info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// `--show-ciphers`.
    Ciphers,
    /// `--show-digests`.
    Digests,
    /// `--show-tls`.
    Tls,
    /// `--show-curves` / `--show-groups`.
    Curves,
    /// `--show-engines`.
    Engines,
}

impl Show {
    /// The mode an argument (`--show-ciphers`) or a directive name
    /// (`show-ciphers`) asks for, if it is one.
    pub fn from_arg(arg: &str) -> Option<Self> {
        Some(match arg.strip_prefix("--").unwrap_or(arg) {
            "show-ciphers" => Self::Ciphers,
            "show-digests" => Self::Digests,
            "show-tls" => Self::Tls,
            "show-curves" | "show-groups" => Self::Curves,
            "show-engines" => Self::Engines,
            _ => return None,
        })
    }
}

/// Everything in this module, with 2.6's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct HostOptions {
    // --- what the client takes from the server ---
    /// `route-nopull`: pushed routes and DHCP/DNS options are not applied.
    pub route_nopull: bool,
    /// `pull-filter accept|ignore|reject TEXT`, in order.
    pub pull_filter: PullFilter,
    // --- host effects ---
    /// `route-noexec`: routes go to the scripts only, never to the kernel.
    pub route_noexec: bool,
    /// `ifconfig-noexec`: the tun device is not addressed.
    pub ifconfig_noexec: bool,
    /// `block-ipv6`: IPv6 is answered with ICMPv6 "no route", not carried.
    pub block_ipv6: bool,
    // --- sockets ---
    /// `mark N`: `SO_MARK` on the link socket.
    pub mark: Option<u32>,
    /// `bind`: bind even where 2.6 would not (a `client`).
    pub bind: bool,
    /// `bind ipv6only`: `IPV6_V6ONLY` on a dual-stack listener.
    pub bind_ipv6only: bool,
    /// `mtu-disc TYPE`.
    pub mtu_disc: Option<MtuDisc>,
    /// `tcp-nodelay` (server: also pushed as `socket-flags TCP_NODELAY`)
    /// or `socket-flags TCP_NODELAY`.
    pub tcp_nodelay: bool,
    /// `tcp-nodelay` itself, which 2.6 also pushes to clients.
    pub push_tcp_nodelay: bool,
    /// `link-mtu N` / `udp-mtu N` (deprecated): the largest datagram.
    pub link_mtu: Option<u32>,
    /// `shaper BYTES-PER-SECOND`: pace what we send on the link.
    pub shaper: Option<u32>,
    // --- process ---
    /// `nice N`.
    pub nice: Option<i32>,
    /// `mlock`: lock all pages in memory.
    pub mlock: bool,
    /// `chroot DIR`, entered after initialisation.
    pub chroot: Option<PathBuf>,
    /// `tmp-dir DIR` for the files handed to scripts (default `$TMPDIR`
    /// or `/tmp`).
    pub tmp_dir: Option<PathBuf>,
    /// `remap-usr1 SIGNAL`.
    pub remap_usr1: Option<RemapUsr1>,
    /// `suppress-timestamps`.
    pub suppress_timestamps: bool,
    /// `machine-readable-output`.
    pub machine_readable_output: bool,
    /// `up-delay`: tun and `up` wait for the first connection.
    pub up_delay: bool,
    /// `up-restart`: `down`/`up` run again on every SIGUSR1 restart.
    pub up_restart: bool,
    /// `persist-local-ip`.
    pub persist_local_ip: bool,
    /// `mtu-test`.
    pub mtu_test: bool,
    /// `allow-recursive-routing`.
    pub allow_recursive_routing: bool,
    /// `echo` / `parameter` lines, logged in order.
    pub echo: Vec<String>,
    // --- scripts ---
    /// `learn-address CMD` (server).
    pub learn_address: Option<String>,
    /// `ipchange CMD` (client and p2p).
    pub ipchange: Option<String>,
    /// `route-pre-down CMD`.
    pub route_pre_down: Option<String>,
    // --- the server's bounds ---
    /// `connect-freq N SECONDS`: at most N new connections per SECONDS.
    pub connect_freq: Option<(u32, u32)>,
    /// `max-routes-per-client N` (2.6 default 256).
    pub max_routes_per_client: u32,
    /// `stale-routes-check AGE [INTERVAL]`.
    pub stale_routes_check: Option<(u32, u32)>,
    /// `tcp-queue-limit N` (2.6 default 64).
    pub tcp_queue_limit: u32,
    /// `bcast-buffers N` (2.6 default 256).
    pub bcast_buffers: u32,
    /// `hash-size REAL VIRTUAL` (2.6 default 256 256).
    pub hash_size: (u32, u32),
    /// `show-ciphers` & co. in a file: print that and exit.
    pub show: Option<Show>,
    /// `tls-verify CMD`: run for each certificate of the peer's chain.
    pub tls_verify: Option<String>,
    /// `multihome`: answer from the address a datagram came to (always so
    /// here: the UDP server reads each datagram's destination address).
    pub multihome: bool,
    /// `opt-verify` (deprecated): refuse clients whose options string is
    /// not the one this server expects.
    pub opt_verify: bool,
    /// `port-share HOST PORT [DIR]` (TCP server).
    pub port_share: Option<PortShare>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            route_nopull: false,
            pull_filter: PullFilter::default(),
            route_noexec: false,
            ifconfig_noexec: false,
            block_ipv6: false,
            mark: None,
            bind: false,
            bind_ipv6only: false,
            mtu_disc: None,
            tcp_nodelay: false,
            push_tcp_nodelay: false,
            link_mtu: None,
            shaper: None,
            nice: None,
            mlock: false,
            chroot: None,
            tmp_dir: None,
            remap_usr1: None,
            suppress_timestamps: false,
            machine_readable_output: false,
            up_delay: false,
            up_restart: false,
            persist_local_ip: false,
            mtu_test: false,
            allow_recursive_routing: false,
            echo: Vec::new(),
            learn_address: None,
            ipchange: None,
            route_pre_down: None,
            connect_freq: None,
            max_routes_per_client: 256,
            stale_routes_check: None,
            tcp_queue_limit: 64,
            bcast_buffers: 256,
            hash_size: (256, 256),
            port_share: None,
            opt_verify: false,
            multihome: false,
            tls_verify: None,
            show: None,
        }
    }
}

fn invalid(span: super::Span, msg: &str) -> ConfigError {
    ConfigError::at(&span, ConfigErrorKind::Invalid(msg.into()))
}

/// What 2.6's `options_postprocess_verify_ce` refuses among these, with its
/// words, and the notes it logs.
pub(super) fn check(b: &mut Builder) -> Result<(), ConfigError> {
    let c = &b.cfg;
    let server = c.mode == Mode::Server;
    if c.host.bind && c.nobind {
        return Err(invalid(
            b.latest_of(&["bind", "nobind"]),
            "--bind and --nobind can't be used together",
        ));
    }
    if c.host.link_mtu.is_some() && b.given("tun-mtu") {
        return Err(invalid(
            b.latest_of(&["link-mtu", "udp-mtu", "tun-mtu"]),
            "only one of --tun-mtu or --link-mtu may be defined",
        ));
    }
    let server_only = [
        ("learn-address", c.host.learn_address.is_some()),
        ("connect-freq", c.host.connect_freq.is_some()),
        ("stale-routes-check", c.host.stale_routes_check.is_some()),
    ];
    if !server {
        for (name, set) in server_only {
            if set {
                return Err(invalid(
                    b.span_of(name),
                    &format!("--{name} requires --mode server"),
                ));
            }
        }
    }
    // helper_tcp_nodelay: a server also pushes the flag to its clients.
    if server && c.host.push_tcp_nodelay {
        b.cfg.push.push("socket-flags TCP_NODELAY".into());
    }
    let c = &b.cfg;
    if c.host.port_share.is_some() && !(server && c.proto.transport == Transport::TcpServer) {
        return Err(invalid(
            b.span_of("port-share"),
            "--port-share requires TCP server mode (--mode server --proto tcp-server)",
        ));
    }
    if c.host.opt_verify && !server {
        return Err(invalid(
            b.span_of("opt-verify"),
            "--opt-verify requires --mode server",
        ));
    }
    // 2.6 runs `up` with S_FATAL: below script-security 2 it stops at
    // start-up, so such a configuration never runs there either.
    if c.scripts.up.is_some() && c.script_security < 2 {
        return Err(invalid(
            b.span_of("up"),
            "'up' is disallowed by 'script-security' below 2: OpenVPN 2.6 stops at start-up \
             (Failed running command (--up/--down): disallowed by script-security setting)",
        ));
    }
    // Static-key mode runs its `cipher` (default BF-CBC) itself: 2.6 stops
    // with "Cipher X not supported" when OpenSSL lacks it (BF-CBC needs
    // `providers legacy default` on OpenSSL 3). Like the file checks, this
    // looks at the host, so it runs only when those do.
    if b.check_files && c.secret.is_some() && c.providers.is_empty() {
        let name = c.static_cipher();
        if !name.eq_ignore_ascii_case("none")
            && openssl::cipher::Cipher::fetch(None, name, None).is_err()
        {
            return Err(invalid(
                b.latest_of(&["cipher", "secret"]),
                &format!(
                    "Cipher {name} not supported (OpenSSL 3 has it only with 'providers legacy default')"
                ),
            ));
        }
    }
    let mut notes = Vec::new();
    if c.host.opt_verify {
        notes.push((
            "opt-verify",
            "DEPRECATION: opt-verify is deprecated and will be removed in OpenVPN 2.7".to_string(),
        ));
    }
    if server && !c.host.pull_filter.rules.is_empty() {
        notes.push((
            "pull-filter",
            "--pull-filter ignored for --mode server".to_string(),
        ));
    }
    if c.host.tcp_nodelay && !server && b.given("tcp-nodelay") {
        notes.push((
            "tcp-nodelay",
            "setting tcp-nodelay on the client side will not affect the server. To have \
             TCP_NODELAY in both direction use tcp-nodelay in the server configuration instead."
                .to_string(),
        ));
    }
    if c.host.link_mtu.is_some() {
        let name = if b.given("udp-mtu") {
            "udp-mtu"
        } else {
            "link-mtu"
        };
        notes.push((
            name,
            "link-mtu is deprecated: the tun MTU is derived from it as in OpenVPN 2.6 \
             (use tun-mtu)"
                .to_string(),
        ));
    }
    if c.host.mtu_test {
        notes.push((
            "mtu-test",
            "mtu-test: the empirical MTU test is not run (OpenVPN 2.6 runs it only when \
             both peers ask for it; the tunnel works without it)"
                .to_string(),
        ));
    }
    for (name, msg) in notes {
        let span = b.span_of(name);
        b.warn(&span, msg);
    }
    Ok(())
}
