//! OpenVPN config files and command-line flags -> one typed, validated
//! [`Config`], with errors that name the file and line.
//!
//! The pipeline is OpenVPN's: the command line and every config file feed
//! the same directive table ([`directives`]) in the order they are read,
//! later directives override earlier ones (list directives such as `remote`,
//! `route` and `push` accumulate), and `config FILE` nests a file at the
//! point where it appears. When everything is read, the helper directives
//! (`server`, `server-ipv6`, `client`, `keepalive`) are expanded, the result
//! is validated, and file names are resolved against `cd` (or the directory
//! the daemon was started in) and checked. `docs/directives.md` lists every
//! directive and every place where we differ from OpenVPN.

pub mod ccd;
mod compress;
mod connection;
pub mod directives;
pub mod error;
mod expand;
pub mod extras;
pub mod host;
pub mod lexer;
pub mod management;
mod static_key;
mod tap;
pub mod types;

use std::{
    collections::{HashMap, HashSet},
    fmt,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Arc,
};

use ipnet::{Ipv4Net, Ipv6Net};

pub use self::{
    connection::{
        ALLOWED as CONNECTION_OPTIONS, Connection, HttpProxy, HttpProxyAuth, NamedRoute,
        RouteTarget, SocksProxy,
    },
    error::{ConfigError, ConfigErrorKind, LexErrorKind, Origin, Span},
    types::*,
};

/// How deep `config` files may nest (OpenVPN's limit).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// A complete, validated daemon configuration.
///
/// Helper directives are already expanded: after `server 10.8.0.0
/// 255.255.255.0` the fields `mode`, `tls_role`, `ifconfig`,
/// `ifconfig_pool` and `push` hold what OpenVPN would derive. Relative file
/// names are already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Config {
    // --- role ---
    /// `mode` (`server` sets it).
    pub mode: Mode,
    /// `tls-client` / `tls-server` (`client`, `server` set them).
    pub tls_role: TlsRole,
    /// `pull`: accept options pushed by the server.
    pub pull: bool,
    /// The `client` helper was used.
    pub client: bool,

    // --- tun device ---
    /// `dev` as written (`tun`, `tun0`, `vpn-a`).
    pub dev: String,
    /// The interface name to create, `None` for the kernel's next `tunN`.
    pub dev_name: Option<String>,
    /// `dev-type`, or inferred from `dev`.
    pub dev_type: DevType,
    /// `dev-node`: the clone device to open instead of `/dev/net/tun`.
    pub dev_node: Option<PathBuf>,
    /// `lladdr`: the tap device's MAC address.
    pub lladdr: Option<[u8; 6]>,
    /// `tun-mtu-extra`, or 32 for tap (2.6's default): room beyond
    /// `tun-mtu` for the link-layer header in buffers and the OCC link-mtu.
    pub tun_mtu_extra: Option<u32>,
    /// `server-bridge` as written (its expansion is in `mode`, `push`,
    /// `ifconfig_pool`).
    pub server_bridge: Option<ServerBridge>,
    /// `vlan-tagging` (with `vlan-accept`, `vlan-pvid`); `None` without it.
    pub vlan: Option<Vlan>,
    /// `tun-mtu` (default 1500).
    pub tun_mtu: u32,
    /// `tun-mtu-max` (default 1600): the largest MTU a server may push.
    pub tun_mtu_max: u32,
    /// `mssfix`; `None` after `mssfix 0`. Default 1492 encapsulated.
    pub mssfix: Option<Mssfix>,
    /// `fragment N [mtu]` (UDP only).
    pub fragment: Option<Fragment>,
    /// `txqueuelen`.
    pub txqueuelen: Option<u32>,
    /// `persist-tun`.
    pub persist_tun: bool,
    /// `persist-key`.
    pub persist_key: bool,

    // --- link ---
    /// `proto`, with `tcp` resolved to a side.
    pub proto: Proto,
    /// `local`: address or name to bind.
    pub local: Option<String>,
    /// `lport` (or `port`): local port (default 1194).
    pub lport: u16,
    /// `rport` (or `port`): default remote port (default 1194).
    pub rport: u16,
    /// `remote` entries in order, defaults filled in: the remote of each
    /// of [`Config::connections`].
    pub remotes: Vec<Remote>,
    /// The connection entries in order (`<connection>` blocks, else one per
    /// `remote`): each remote with the options used to reach it.
    pub connections: Vec<Connection>,
    /// `connect-timeout` / `server-poll-timeout` outside blocks (default
    /// 120 s); each entry has its own in [`Connection::connect_timeout`].
    pub connect_timeout: u32,
    /// `persist-remote-ip`: keep the resolved server address across
    /// restarts.
    pub persist_remote_ip: bool,
    /// `remote-random-hostname`: prefix host names with random hex.
    pub remote_random_hostname: bool,
    /// `remote-random`.
    pub remote_random: bool,
    /// `connect-retry` (default 1 s, max 300 s).
    pub connect_retry: ConnectRetry,
    /// `connect-retry-max`: attempts per remote; `None` is unlimited.
    pub connect_retry_max: Option<u32>,
    /// `nobind`.
    pub nobind: bool,
    /// `float`: accept authenticated packets from a new address.
    pub float: bool,
    /// `resolv-retry` (default infinite).
    pub resolv_retry: ResolvRetry,
    /// `sndbuf`.
    pub sndbuf: Option<u32>,
    /// `rcvbuf`.
    pub rcvbuf: Option<u32>,
    /// `explicit-exit-notify [N]`: `None` when off.
    pub explicit_exit_notify: Option<u32>,

    // --- addressing and routing ---
    /// `topology` (2.6 default net30).
    pub topology: Topology,
    /// `ifconfig` (or from `server`).
    pub ifconfig: Option<Ifconfig>,
    /// `ifconfig-ipv6` (or from `server-ipv6`).
    pub ifconfig_ipv6: Option<IfconfigIpv6>,
    /// `ifconfig-pool` (or from `server`).
    pub ifconfig_pool: Option<IfconfigPool>,
    /// `ifconfig-pool-persist`.
    pub ifconfig_pool_persist: Option<PoolPersist>,
    /// `ifconfig-ipv6-pool` (or from `server-ipv6`): first address/bits.
    pub ifconfig_ipv6_pool: Option<Ipv6Net>,
    /// `server NET MASK` as given.
    pub server: Option<Ipv4Net>,
    /// `server-ipv6 NET/BITS` as given.
    pub server_ipv6: Option<Ipv6Net>,
    /// Options pushed to every client: `push` lines first, then what the
    /// helpers add (`route-gateway`, `topology`, `ping`, ...).
    pub push: Vec<String>,
    /// `route` entries (plus the tunnel network route of a net30 `server`).
    pub routes: Vec<Route>,
    /// `route` entries whose network or gateway is a host name, resolved
    /// when the routes are added.
    pub route_hosts: Vec<NamedRoute>,
    /// `route-ipv6` entries.
    pub routes_ipv6: Vec<RouteIpv6>,
    /// `route-gateway`.
    pub route_gateway: Option<RouteGateway>,
    /// `redirect-gateway` / `redirect-private`.
    pub redirect_gateway: Option<RedirectGateway>,
    /// `dhcp-option` entries.
    pub dhcp_options: Vec<DhcpOption>,
    /// `dns` (2.6 syntax).
    pub dns: Dns,

    // --- server ---
    /// `client-config-dir`.
    pub client_config_dir: Option<PathBuf>,
    /// `ccd-exclusive`.
    pub ccd_exclusive: bool,
    /// `client-to-client`.
    pub client_to_client: bool,
    /// `duplicate-cn`.
    pub duplicate_cn: bool,
    /// `max-clients` (default 1024).
    pub max_clients: u32,

    // --- TLS ---
    /// `ca`.
    pub ca: Option<Source>,
    /// `cert`.
    pub cert: Option<Source>,
    /// `key`.
    pub key: Option<Source>,
    /// `pkcs12` (DER; an inline block is base64).
    pub pkcs12: Option<Source>,
    /// `extra-certs`.
    pub extra_certs: Option<Source>,
    /// `dh`: accepted and ignored (ECDHE is used).
    pub dh: Option<Dh>,
    /// `ecdh-curve`.
    pub ecdh_curve: Option<String>,
    /// `crl-verify FILE` (or, with `crl_verify_dir`, a directory).
    pub crl_verify: Option<Source>,
    /// `crl-verify DIR dir`.
    pub crl_verify_dir: bool,
    /// `remote-cert-tls`.
    pub remote_cert_tls: Option<CertUsage>,
    /// `verify-x509-name`.
    pub verify_x509_name: Option<X509NameCheck>,
    /// `verify-client-cert` (default require).
    pub verify_client_cert: VerifyClientCert,
    /// `tls-auth` / `tls-crypt` / `tls-crypt-v2`.
    pub tls_wrap: TlsWrap,
    /// `key-direction` as written.
    pub key_direction: Option<KeyDirection>,
    /// `tls-version-min`.
    pub tls_version_min: Option<TlsVersionMin>,
    /// `tls-version-max`.
    pub tls_version_max: Option<TlsVersion>,
    /// `hand-window` seconds (default 60).
    pub hand_window: u32,
    /// `tls-timeout` seconds (default 2).
    pub tls_timeout: u32,
    /// `tran-window` seconds (default 3600).
    pub tran_window: u32,
    /// `tls-cipher` (TLS 1.2 cipher list, OpenSSL syntax).
    pub tls_cipher: Option<String>,
    /// `tls-ciphersuites` (TLS 1.3 suites, OpenSSL syntax).
    pub tls_ciphersuites: Option<String>,
    /// `tls-groups` (key exchange groups, OpenSSL syntax).
    pub tls_groups: Option<String>,
    /// `reneg-sec` (default 3600).
    pub reneg_sec: RenegSec,
    /// `reneg-bytes`.
    pub reneg_bytes: Option<u64>,
    /// `reneg-pkts`.
    pub reneg_pkts: Option<u64>,

    // --- data channel ---
    /// `auth` digest for tls-auth and CBC data (default SHA1), upper case.
    pub auth: String,
    /// `data-ciphers` (default AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305),
    /// canonical names.
    pub data_ciphers: Vec<String>,
    /// `data-ciphers-fallback`.
    pub data_ciphers_fallback: Option<String>,
    /// `cipher` (2.6 ignores it for negotiation).
    pub cipher: Option<String>,
    /// `replay-window` (default 64 packets, 15 s).
    pub replay_window: ReplayWindow,
    /// `compress` / `comp-lzo` / `allow-compression` / `comp-noadapt`, as
    /// 2.6 resolves them (algorithm + flags).
    pub compression: Compression,
    /// `secret`: static-key mode (no TLS), see `config/static_key.rs`.
    pub secret: Option<StaticSecret>,
    /// `no-replay`: no packet ids in static-key mode.
    pub no_replay: bool,
    /// `providers NAME...`: OpenSSL providers to load at start.
    pub providers: Vec<String>,
    /// `genkey`: write a key and exit (nothing else is validated).
    pub genkey: Option<GenKey>,

    // --- keepalive ---
    /// `ping` seconds (or from `keepalive`).
    pub ping: Option<u32>,
    /// `ping-restart` / `ping-exit` (or from `keepalive`).
    pub ping_rec: Option<PingRec>,
    /// `ping-timer-rem`.
    pub ping_timer_rem: bool,
    /// `keepalive N M` as given.
    pub keepalive: Option<(u32, u32)>,
    /// `inactive`.
    pub inactive: Option<Inactive>,

    // --- authentication and scripts ---
    /// `auth-user-pass` (client).
    pub auth_user_pass: Option<AuthUserPass>,
    /// `auth-user-pass-verify` (server).
    pub auth_user_pass_verify: Option<AuthUserPassVerify>,
    /// `username-as-common-name`.
    pub username_as_common_name: bool,
    /// `auth-nocache`.
    pub auth_nocache: bool,
    /// `script-security` (default 1).
    pub script_security: u8,
    /// `up`, `down`, `client-connect`, `client-disconnect`.
    pub scripts: Scripts,

    // --- process ---
    /// `user`.
    pub user: Option<String>,
    /// `group`.
    pub group: Option<String>,
    /// `daemon [NAME]`: `Some(name)` to detach, the name for syslog.
    pub daemon: Option<Option<String>>,
    /// `syslog [NAME]`: log to the system logger under NAME (default
    /// `openvpn`), unless `log`/`log-append` is given.
    pub syslog: Option<Option<String>>,
    /// `plugin FILE [ARGS...]`, in order.
    pub plugins: Vec<PluginOption>,
    /// `writepid`.
    pub writepid: Option<PathBuf>,
    /// `cd` (absolute).
    pub cd: Option<PathBuf>,
    /// `log` / `log-append`.
    pub log: Option<LogFile>,
    /// `verb` 0..=11 (default 1).
    pub verb: u8,
    /// `mute`.
    pub mute: Option<u32>,
    /// `mute-replay-warnings`.
    pub mute_replay_warnings: bool,
    /// `status`.
    pub status: Option<StatusFile>,
    /// `status-version` 1..=3 (default 1).
    pub status_version: u8,
    /// `management` and its modifiers.
    pub management: management::Management,
    /// `setenv NAME VALUE` for scripts, in order.
    pub setenv: Vec<(String, String)>,
    /// `setenv PUSH_PEER_INFO`.
    pub push_peer_info: bool,

    // --- XDP (this daemon's own) ---
    /// `xdp` (default auto).
    pub xdp: XdpMode,
    /// `xdp-interface`: where to attach; default the interface of `local`.
    pub xdp_interface: Option<String>,
    /// `xdp-drop-unknown` (default yes): drop data packets for unknown
    /// peer-ids in XDP.
    pub xdp_drop_unknown: bool,

    /// Sockets, process, pull filtering, extra scripts, server bounds.
    pub host: host::HostOptions,
    /// Route timing, route-up, extra certificate checks, Linux no-ops.
    pub extras: extras::Extras,

    /// Notes that are not errors, in the order found.
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// Reads `path` as `vpn-daemon --config path` would, relative names
    /// resolved against the current directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Loader::from_current_dir()?.load_file(path.as_ref())
    }

    /// Reads OpenVPN-style arguments (argv without the program name):
    /// `--name args...` repeated, or a lone config file name.
    pub fn from_args<I, S>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Loader::from_current_dir()?.load_args(args)
    }

    /// One paragraph describing what this configuration will run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let role = match (self.mode, self.tls_role) {
            _ if self.secret.is_some() => "static-key point-to-point",
            (Mode::Server, _) => "server",
            (Mode::PointToPoint, TlsRole::Client) if self.pull => "client",
            (Mode::PointToPoint, TlsRole::Client) => "point-to-point TLS client",
            (Mode::PointToPoint, TlsRole::Server) => "point-to-point TLS server",
        };
        let transport = match self.proto.transport {
            Transport::Udp => "UDP",
            Transport::TcpServer => "TCP (listening)",
            Transport::TcpClient => "TCP (connecting)",
        };
        s.push_str(&format!(
            "{role} over {transport} on {} ({}, topology {})",
            self.dev_name.as_deref().unwrap_or(match self.dev_type {
                DevType::Tun => "a new tun device",
                DevType::Tap => "a new tap device",
                DevType::Null => "no device",
            }),
            self.dev_type.as_str(),
            self.topology
        ));
        if self.mode == Mode::Server {
            s.push_str(&format!(
                ", listening on {}:{}",
                self.local.as_deref().unwrap_or("*"),
                self.lport
            ));
            if let Some(n) = self.server {
                s.push_str(&format!(", tunnel network {n}"));
            }
            if let Some(p) = self.ifconfig_pool {
                s.push_str(&format!(", pool {}-{}", p.start, p.end));
            }
            if let Some(n) = self.server_ipv6 {
                s.push_str(&format!(", IPv6 tunnel network {n}"));
            }
            s.push_str(&format!(
                ", up to {} clients, {} pushed option(s)",
                self.max_clients,
                self.push.len()
            ));
        } else {
            let remotes: Vec<String> = self
                .remotes
                .iter()
                .map(|r| format!("{}:{}", r.host, r.port))
                .collect();
            if !remotes.is_empty() {
                s.push_str(&format!(", remote(s) {}", remotes.join(", ")));
            }
        }
        let wrap = match &self.tls_wrap {
            _ if self.secret.is_some() => "none (static key)",
            TlsWrap::None => "no tls-auth/tls-crypt",
            TlsWrap::Auth { .. } => "tls-auth",
            TlsWrap::Crypt { .. } => "tls-crypt",
            TlsWrap::CryptV2 { .. } => "tls-crypt-v2",
        };
        if self.secret.is_some() {
            s.push_str(&format!(
                "; no control channel, static key, cipher {}, auth {}",
                self.cipher.as_deref().unwrap_or("BF-CBC"),
                self.auth
            ));
        } else {
            s.push_str(&format!(
                "; control channel {wrap}, data ciphers {}",
                self.data_ciphers.join(":")
            ));
        }
        if let Some(p) = self.ping {
            s.push_str(&format!(", ping {p}s"));
        }
        if let Some(r) = self.ping_rec {
            s.push_str(&format!(
                ", ping-{} {}s",
                match r.action {
                    PingAction::Restart => "restart",
                    PingAction::Exit => "exit",
                },
                r.timeout
            ));
        }
        s.push_str(&format!(
            "; XDP {}.",
            match self.xdp {
                XdpMode::Auto => "auto",
                XdpMode::Native => "native",
                XdpMode::Generic => "generic",
                XdpMode::Off => "off",
            }
        ));
        s
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Reads configurations: where relative names start from, and whether the
/// files named by directives must exist.
#[derive(Debug, Clone)]
pub struct Loader {
    cwd: PathBuf,
    check_files: bool,
}

impl Loader {
    /// A loader resolving relative names against `cwd` (which should be
    /// absolute), checking that named files exist.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        Loader {
            cwd: cwd.into(),
            check_files: true,
        }
    }

    /// A loader for the process's current directory.
    pub fn from_current_dir() -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().map_err(|e| ConfigError {
            file: Origin::Builtin,
            line: 0,
            kind: ConfigErrorKind::Read {
                path: PathBuf::from("."),
                source: e,
            },
        })?;
        Ok(Loader::new(cwd))
    }

    /// Whether files named by directives (`ca`, `tls-crypt`, scripts...)
    /// are checked to exist; on by default. Tests of the directive table
    /// and the fuzzer turn it off.
    pub fn check_files(mut self, yes: bool) -> Self {
        self.check_files = yes;
        self
    }

    /// Reads one config file (`--config path`).
    pub fn load_file(&self, path: &Path) -> Result<Config, ConfigError> {
        let mut b = Builder::new(self);
        let span = Span {
            file: Origin::Builtin,
            line: 0,
        };
        b.include(path, &span)?;
        b.finish()
    }

    /// Reads configuration text as if it were the file `name`.
    pub fn load_str(&self, name: &str, text: &str) -> Result<Config, ConfigError> {
        self.load_bytes(name, text.as_bytes())
    }

    /// Reads configuration bytes as if they were the file `name` (the
    /// whole pipeline over untrusted bytes, for fuzzing).
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Config, ConfigError> {
        let mut b = Builder::new(self);
        b.apply_text(Origin::File(Arc::new(PathBuf::from(name))), bytes)?;
        b.finish()
    }

    /// Reads OpenVPN-style arguments (without the program name). As in
    /// OpenVPN, a single argument that does not start with `--` is a config
    /// file name.
    pub fn load_args<I, S>(&self, args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|s| s.as_ref().to_string()).collect();
        let mut b = Builder::new(self);
        if let [only] = args.as_slice()
            && !only.starts_with("--")
        {
            let span = Span {
                file: Origin::CommandLine,
                line: 1,
            };
            b.include(Path::new(only), &span)?;
            return b.finish();
        }
        let mut i = 0;
        while let Some(arg) = args.get(i) {
            let span = Span {
                file: Origin::CommandLine,
                line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            };
            let Some(name) = arg.strip_prefix("--") else {
                return Err(ConfigError::at(
                    &span,
                    ConfigErrorKind::ExpectedDoubleDash { word: arg.clone() },
                ));
            };
            let mut words = vec![name.to_string()];
            let mut j = i + 1;
            while let Some(a) = args.get(j) {
                if a.starts_with("--") {
                    break;
                }
                words.push(a.clone());
                j += 1;
            }
            b.apply(&span, words, None)?;
            i = j;
        }
        if b.root.is_none() {
            b.root = Some(Origin::CommandLine);
        }
        b.finish()
    }
}

/// A `proto`-like value as written, before defaults and `tcp` resolution.
type RawProto = (RawTransport, AddrFamily);

/// A `remote` as written.
#[derive(Debug, Clone)]
struct RawRemote {
    span: Span,
    host: String,
    port: Option<u16>,
    proto: Option<RawProto>,
}

/// Directive state that the helpers and validation need in its written
/// form.
#[derive(Debug, Default)]
#[allow(clippy::struct_excessive_bools)]
struct Raw {
    mode_server: bool,
    tls_client: bool,
    tls_server: bool,
    client: bool,
    pull: bool,
    proto: Option<RawProto>,
    remotes: Vec<RawRemote>,
    dev: Option<String>,
    dev_type: Option<DevType>,
    vlan_tagging: bool,
    vlan_accept: Option<VlanAccept>,
    vlan_pvid: Option<u16>,
    topology: Option<Topology>,
    server: Option<(Ipv4Addr, Ipv4Addr, bool)>,
    server_ipv6: Option<Ipv6Net>,
    tls_auth: Option<(Source, Option<KeyDirection>)>,
    tls_crypt: Option<Source>,
    tls_crypt_v2: Option<(Source, bool)>,
    data_ciphers: Option<Vec<String>>,
    /// `mssfix` not given or given without a value: 2.6's `mssfix_default`.
    mssfix_unset: bool,
    /// `<connection>` blocks as read.
    connections: Vec<connection::RawConnection>,
    /// `http-proxy` / `http-proxy-option` so far.
    http_proxy: Option<HttpProxy>,
    /// `socks-proxy` so far.
    socks_proxy: Option<SocksProxy>,
}

/// Accumulates directives in order, then expands and validates.
struct Builder {
    cfg: Config,
    raw: Raw,
    cwd: PathBuf,
    check_files: bool,
    /// Absolute directory of the last `cd`, for later `config` includes.
    cd: Option<PathBuf>,
    depth: usize,
    /// Where each directive was last given (with a sequence number, to
    /// tell which of two came later), for errors found after parsing.
    spans: HashMap<&'static str, (u64, Span)>,
    seq: u64,
    /// The first file read, or the command line: where errors that belong
    /// to no line (a missing `dev`) are reported.
    root: Option<Origin>,
    /// `ignore-unknown-option` names.
    ignore_unknown: HashSet<String>,
    /// `setenv FORWARD_COMPATIBLE 1`.
    forward_compatible: bool,
    /// Inside a `<connection>` block.
    in_connection: bool,
}

impl Builder {
    fn new(loader: &Loader) -> Self {
        Builder {
            cfg: Config::defaults(),
            raw: Raw::default(),
            cwd: loader.cwd.clone(),
            check_files: loader.check_files,
            cd: None,
            depth: 0,
            spans: HashMap::new(),
            seq: 0,
            root: None,
            ignore_unknown: HashSet::new(),
            forward_compatible: false,
            in_connection: false,
        }
    }

    /// The directory relative names are resolved against right now.
    fn base_dir(&self) -> &Path {
        self.cd.as_deref().unwrap_or(&self.cwd)
    }

    /// Reads and applies a config file (`--config`, `config`).
    fn include(&mut self, path: &Path, from: &Span) -> Result<(), ConfigError> {
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(
                from,
                ConfigErrorKind::IncludeDepth {
                    max: MAX_INCLUDE_DEPTH,
                },
            ));
        }
        let full = self.base_dir().join(path);
        let text = std::fs::read(&full).map_err(|e| {
            ConfigError::at(
                from,
                ConfigErrorKind::Read {
                    path: full.clone(),
                    source: e,
                },
            )
        })?;
        self.depth += 1;
        let r = self.apply_text(Origin::File(Arc::new(path.to_path_buf())), &text);
        self.depth -= 1;
        r
    }

    fn apply_text(&mut self, origin: Origin, text: &[u8]) -> Result<(), ConfigError> {
        if self.root.is_none() {
            self.root = Some(origin.clone());
        }
        let lines = lexer::lex(text).map_err(|e| ConfigError {
            file: origin.clone(),
            line: e.line,
            kind: ConfigErrorKind::Lex(e.kind),
        })?;
        for l in lines {
            let span = Span {
                file: origin.clone(),
                line: l.line,
            };
            self.apply(&span, l.words, l.inline)?;
        }
        Ok(())
    }

    fn warn(&mut self, span: &Span, message: String) {
        self.cfg.warnings.push(ConfigWarning {
            span: span.clone(),
            message,
        });
    }

    /// Applies one directive: `words[0]` is its name.
    fn apply(
        &mut self,
        span: &Span,
        mut words: Vec<String>,
        inline: Option<String>,
    ) -> Result<(), ConfigError> {
        let Some(first) = words.first_mut() else {
            return Ok(());
        };
        // OpenVPN accepts `--dev tun` inside files too.
        if let Some(stripped) = first.strip_prefix("--") {
            *first = stripped.to_string();
        }
        // `setenv opt NAME ARGS`: NAME is optional; unknown means ignore.
        let mut optional = false;
        if let [first, second, rest @ ..] = words.as_slice()
            && first == "setenv"
            && second == "opt"
        {
            if rest.is_empty() {
                return Err(ConfigError::at(
                    span,
                    ConfigErrorKind::Arity {
                        name: "setenv opt".into(),
                        expected: "at least 1".into(),
                        got: 0,
                    },
                ));
            }
            words.drain(..2);
            optional = true;
        }
        if words.is_empty() {
            return Ok(());
        }
        let name = words.remove(0);
        let soft = optional || self.ignore_unknown.contains(&name);
        connection::note_global(self, span, &name);
        match directives::lookup(&name) {
            directives::Lookup::Known(spec) => {
                directives::run(self, spec, span, &name, &words, inline.as_deref())
            }
            directives::Lookup::Unsupported(reason) => {
                if soft {
                    self.warn(
                        span,
                        format!(
                            "'{name}' is not supported ({reason}); ignored because the configuration marks it optional"
                        ),
                    );
                    Ok(())
                } else {
                    Err(ConfigError::at(
                        span,
                        ConfigErrorKind::Unsupported { name, reason },
                    ))
                }
            }
            directives::Lookup::NotOnLinux(reason) => {
                if soft || self.forward_compatible {
                    self.warn(
                        span,
                        format!(
                            "'{name}' ({reason}) is not an option of OpenVPN on Linux; ignored (setenv opt / ignore-unknown-option / FORWARD_COMPATIBLE)"
                        ),
                    );
                    Ok(())
                } else {
                    Err(ConfigError::at(
                        span,
                        ConfigErrorKind::NotOnLinux { name, reason },
                    ))
                }
            }
            directives::Lookup::Unknown => {
                if soft || self.forward_compatible {
                    self.warn(
                        span,
                        format!(
                            "unknown directive '{name}' ignored (setenv opt / ignore-unknown-option / FORWARD_COMPATIBLE)"
                        ),
                    );
                    Ok(())
                } else {
                    Err(ConfigError::at(
                        span,
                        ConfigErrorKind::UnknownDirective { name },
                    ))
                }
            }
        }
    }

    /// Records where a directive was given (for later errors).
    fn mark(&mut self, name: &'static str, span: &Span) {
        self.seq += 1;
        self.spans.insert(name, (self.seq, span.clone()));
    }

    /// Whether a directive was given.
    fn given(&self, name: &str) -> bool {
        self.spans.contains_key(name)
    }

    /// Where a directive was last given, or the root file if never.
    fn span_of(&self, name: &str) -> Span {
        match self.spans.get(name) {
            Some((_, s)) => s.clone(),
            None => self.root_span(),
        }
    }

    /// Of the named directives that were given, the one given last.
    fn latest_of(&self, names: &[&str]) -> Span {
        names
            .iter()
            .filter_map(|n| self.spans.get(n))
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| self.root_span())
    }

    /// Line 0 of the first file (or the command line).
    fn root_span(&self) -> Span {
        Span {
            file: self.root.clone().unwrap_or(Origin::Builtin),
            line: 0,
        }
    }

    fn finish(mut self) -> Result<Config, ConfigError> {
        // As OpenVPN's do_genkey: key generation runs before (and instead
        // of) every check of the tunnel configuration.
        if static_key::finish_genkey(&mut self)? {
            return Ok(self.cfg);
        }
        expand::finish(&mut self)?;
        management::check(&self)?;
        Ok(self.cfg)
    }
}

impl Config {
    /// OpenVPN 2.6's defaults, before any directive.
    fn defaults() -> Config {
        Config {
            mode: Mode::PointToPoint,
            tls_role: TlsRole::Client,
            pull: false,
            client: false,
            dev: String::new(),
            dev_name: None,
            dev_type: DevType::Tun,
            dev_node: None,
            lladdr: None,
            tun_mtu_extra: None,
            server_bridge: None,
            vlan: None,
            tun_mtu: 1500,
            tun_mtu_max: 1600,
            mssfix: Some(Mssfix {
                size: 1492,
                mode: MssfixMode::Encapsulated,
            }),
            fragment: None,
            txqueuelen: None,
            persist_tun: false,
            persist_key: false,
            proto: Proto {
                transport: Transport::Udp,
                family: AddrFamily::Any,
            },
            local: None,
            lport: 1194,
            rport: 1194,
            remotes: Vec::new(),
            connections: Vec::new(),
            connect_timeout: 120,
            persist_remote_ip: false,
            remote_random_hostname: false,
            remote_random: false,
            connect_retry: ConnectRetry {
                initial: 1,
                max: 300,
            },
            connect_retry_max: None,
            nobind: false,
            float: false,
            resolv_retry: ResolvRetry::Infinite,
            sndbuf: None,
            rcvbuf: None,
            explicit_exit_notify: None,
            topology: Topology::Net30,
            ifconfig: None,
            ifconfig_ipv6: None,
            ifconfig_pool: None,
            ifconfig_pool_persist: None,
            ifconfig_ipv6_pool: None,
            server: None,
            server_ipv6: None,
            push: Vec::new(),
            routes: Vec::new(),
            route_hosts: Vec::new(),
            routes_ipv6: Vec::new(),
            route_gateway: None,
            redirect_gateway: None,
            dhcp_options: Vec::new(),
            dns: Dns::default(),
            client_config_dir: None,
            ccd_exclusive: false,
            client_to_client: false,
            duplicate_cn: false,
            max_clients: 1024,
            ca: None,
            cert: None,
            key: None,
            pkcs12: None,
            extra_certs: None,
            dh: None,
            ecdh_curve: None,
            crl_verify: None,
            crl_verify_dir: false,
            remote_cert_tls: None,
            verify_x509_name: None,
            verify_client_cert: VerifyClientCert::Require,
            tls_wrap: TlsWrap::None,
            key_direction: None,
            tls_version_min: None,
            tls_version_max: None,
            hand_window: 60,
            tls_timeout: 2,
            tran_window: 3600,
            tls_cipher: None,
            tls_ciphersuites: None,
            tls_groups: None,
            reneg_sec: RenegSec {
                max: 3600,
                min: None,
            },
            reneg_bytes: None,
            reneg_pkts: None,
            auth: "SHA1".into(),
            data_ciphers: Vec::new(),
            data_ciphers_fallback: None,
            cipher: None,
            replay_window: ReplayWindow {
                size: 64,
                seconds: 15,
            },
            compression: Compression::default(),
            secret: None,
            no_replay: false,
            providers: Vec::new(),
            genkey: None,
            ping: None,
            ping_rec: None,
            ping_timer_rem: false,
            keepalive: None,
            inactive: None,
            auth_user_pass: None,
            auth_user_pass_verify: None,
            username_as_common_name: false,
            auth_nocache: false,
            script_security: 1,
            scripts: Scripts::default(),
            user: None,
            group: None,
            daemon: None,
            syslog: None,
            plugins: Vec::new(),
            writepid: None,
            cd: None,
            log: None,
            verb: 1,
            mute: None,
            mute_replay_warnings: false,
            status: None,
            status_version: 1,
            management: management::Management::default(),
            setenv: Vec::new(),
            push_peer_info: false,
            xdp: XdpMode::Auto,
            xdp_interface: None,
            xdp_drop_unknown: true,
            host: host::HostOptions::default(),
            extras: extras::Extras::default(),
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extras;
