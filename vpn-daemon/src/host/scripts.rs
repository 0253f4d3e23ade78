//! OpenVPN-style hook scripts (`up`, `down`, `client-connect`,
//! `client-disconnect`, `auth-user-pass-verify`...): the environment
//! OpenVPN sets, the `script-security` rules, credentials via env or via a
//! temporary file, a timeout, and exit status 0 meaning success.
//!
//! `script-security` levels (OpenVPN's `SSEC_*`):
//!
//! | level | what may run |
//! |---|---|
//! | 0 | no external program at all |
//! | 1 | built-in programs only (`ip`...): user scripts are refused |
//! | 2 | user scripts |
//! | 3 | user scripts, and passwords may be passed in the environment |
//!
//! Below level 3 the `password` variable is left out of the environment,
//! as OpenVPN does (`env_allowed`), so a `via-env` verify script sees no
//! password and fails. The command line is split with the config lexer's
//! rules (quotes, backslash escapes), as OpenVPN does with `argv_parse_cmd`.
//! Scripts get a clean environment: OpenVPN's variables plus `PATH`.

use std::{
    collections::BTreeMap,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    config::{Config, DhcpOption, Dns, DnsSec, DnsTransport, Topology, lexer::tokenize_line},
    io::clock::{TimeZone, format_time},
};

/// The `PATH` scripts run with.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default time a script may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this much of a script's stdout+stderr is kept.
const OUTPUT_MAX: usize = 64 * 1024;

/// `script-security` 1: built-in programs only.
pub const SSEC_BUILT_IN: u8 = 1;
/// `script-security` 2: user scripts.
pub const SSEC_SCRIPTS: u8 = 2;
/// `script-security` 3: passwords in the environment.
pub const SSEC_PW_ENV: u8 = 3;

/// Which hook is running (the `script_type` variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptType {
    /// `up`.
    Up,
    /// `down`.
    Down,
    /// `route-up`.
    RouteUp,
    /// `route-pre-down`.
    RoutePreDown,
    /// `ipchange`.
    IpChange,
    /// `tls-verify`.
    TlsVerify,
    /// `auth-user-pass-verify`.
    UserPassVerify,
    /// `client-connect`.
    ClientConnect,
    /// `client-disconnect`.
    ClientDisconnect,
    /// `learn-address`.
    LearnAddress,
}

impl ScriptType {
    /// The `script_type` value OpenVPN sets.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptType::Up => "up",
            ScriptType::Down => "down",
            ScriptType::RouteUp => "route-up",
            ScriptType::RoutePreDown => "route-pre-down",
            ScriptType::IpChange => "ipchange",
            ScriptType::TlsVerify => "tls-verify",
            ScriptType::UserPassVerify => "user-pass-verify",
            ScriptType::ClientConnect => "client-connect",
            ScriptType::ClientDisconnect => "client-disconnect",
            ScriptType::LearnAddress => "learn-address",
        }
    }
}

/// How a username/password reaches a verify script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `via-env`: `username` and `password` variables (the password only
    /// with `script-security 3`).
    ViaEnv {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// `via-file`: a mode-0600 temporary file with the username and the
    /// password on two lines, named as the last argument and deleted
    /// afterwards.
    ViaFile {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
}

/// Why a script did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// `script-security` forbids running it.
    #[error(
        "script-security {level} forbids running '{command}' (user scripts need script-security 2 or higher)"
    )]
    Refused {
        /// The configured level.
        level: u8,
        /// The command.
        command: String,
    },
    /// The command line is empty or badly quoted.
    #[error("cannot parse script command {command:?}: {reason}")]
    BadCommand {
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The program could not be started.
    #[error("cannot run '{program}': {source}")]
    Spawn {
        /// argv\[0\].
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran longer than allowed and was killed.
    #[error("'{program}' did not finish within {timeout:?} and was killed")]
    Timeout {
        /// argv\[0\].
        program: String,
        /// The limit.
        timeout: Duration,
    },
    /// A temporary file could not be written.
    #[error("cannot create temporary file in {dir}: {source}")]
    TempFile {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutcome {
    /// Exit status 0.
    pub success: bool,
    /// The exit code, if it exited.
    pub exit_code: Option<i32>,
    /// What it printed (stdout then stderr), truncated to 64 KiB, for the
    /// log.
    pub output: String,
}

/// The environment OpenVPN gives a script: an ordered name → value map.
///
/// Names are reduced to `[A-Za-z0-9_]` (others become `_`) and values to
/// printable ASCII (others become `?`), as OpenVPN's `setenv_str` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptEnv {
    vars: BTreeMap<String, String>,
}

fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn clean_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl ScriptEnv {
    /// An empty environment.
    pub fn new() -> Self {
        ScriptEnv::default()
    }

    /// Sets a variable (replacing it).
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) -> &mut Self {
        self.vars
            .insert(clean_name(name), clean_value(value.as_ref()));
        self
    }

    /// Sets a variable if `value` is `Some`.
    pub fn set_opt(&mut self, name: &str, value: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }

    /// Removes a variable.
    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.vars.remove(&clean_name(name));
        self
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The transport address of a not-yet-authenticated client
    /// (`untrusted_ip`/`untrusted_ip6`, `untrusted_port`).
    pub fn set_untrusted(&mut self, addr: std::net::SocketAddr) -> &mut Self {
        self.set_addr("untrusted", addr)
    }

    /// The transport address of an authenticated client (`trusted_ip`...).
    pub fn set_trusted(&mut self, addr: std::net::SocketAddr) -> &mut Self {
        self.set_addr("trusted", addr)
    }

    fn set_addr(&mut self, prefix: &str, addr: std::net::SocketAddr) -> &mut Self {
        let ip = match addr.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            ip => ip,
        };
        match ip {
            IpAddr::V4(a) => self.set(&format!("{prefix}_ip"), a.to_string()),
            IpAddr::V6(a) => self.set(&format!("{prefix}_ip6"), a.to_string()),
        };
        self.set(&format!("{prefix}_port"), addr.port().to_string())
    }

    /// `foreign_option_N` (1-based) for options a client received by push
    /// that the OS side must apply (`dhcp-option ...`, `dns ...`), as
    /// OpenVPN exports them to `up` scripts.
    pub fn set_foreign_options<S: AsRef<str>>(&mut self, options: &[S]) -> &mut Self {
        for (i, o) in options.iter().enumerate() {
            self.set(&format!("foreign_option_{}", i + 1), o);
        }
        self
    }
}

/// The tun device as scripts see it (`up`/`down` arguments and env).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunInfo {
    /// Device name (`dev`).
    pub dev: String,
    /// `tun_mtu`.
    pub tun_mtu: u32,
    /// `topology`: decides `ifconfig_remote` vs `ifconfig_netmask`.
    pub topology: Topology,
    /// Our tun IPv4 address.
    pub ifconfig_local: Option<Ipv4Addr>,
    /// The `ifconfig` second parameter: peer (net30/p2p) or netmask (subnet).
    pub ifconfig_remote_netmask: Option<Ipv4Addr>,
    /// Our tun IPv6 address and prefix length.
    pub ifconfig_ipv6_local: Option<(Ipv6Addr, u8)>,
    /// The IPv6 peer address.
    pub ifconfig_ipv6_remote: Option<Ipv6Addr>,
    /// `route_vpn_gateway` (the pushed route-gateway or the peer).
    pub route_vpn_gateway: Option<Ipv4Addr>,
}

/// `up`/`down` context argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptContext {
    /// First start.
    Init,
    /// After a SIGUSR1 restart.
    Restart,
}

impl ScriptContext {
    /// The word OpenVPN passes.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptContext::Init => "init",
            ScriptContext::Restart => "restart",
        }
    }
}

/// The arguments OpenVPN 2.6 appends to an `up`/`down` command
/// (`run_up_down`): `dev tun_mtu 0 ifconfig_local ifconfig_remote context`
/// (the `0` is the retired link-mtu; empty strings for missing addresses).
pub fn up_down_args(tun: &TunInfo, context: ScriptContext) -> Vec<String> {
    let opt = |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
    vec![
        tun.dev.clone(),
        tun.tun_mtu.to_string(),
        "0".into(),
        opt(tun.ifconfig_local),
        opt(tun.ifconfig_remote_netmask),
        context.as_str().into(),
    ]
}

impl ScriptEnv {
    /// `dev`, `dev_type`, `tun_mtu`, `script_context`, `ifconfig_*`,
    /// `route_vpn_gateway`, and `signal` for `down` (2.6 `run_up_down`,
    /// `do_ifconfig_setenv`).
    pub fn set_tun(
        &mut self,
        tun: &TunInfo,
        context: ScriptContext,
        signal: Option<&str>,
    ) -> &mut Self {
        self.set("dev", &tun.dev)
            .set("dev_type", "tun")
            .set("tun_mtu", tun.tun_mtu.to_string())
            .set("script_context", context.as_str())
            .set_opt("signal", signal)
            .set_opt("ifconfig_local", tun.ifconfig_local.map(|a| a.to_string()))
            .set_opt(
                "route_vpn_gateway",
                tun.route_vpn_gateway.map(|a| a.to_string()),
            );
        let rn = tun.ifconfig_remote_netmask.map(|a| a.to_string());
        match tun.topology {
            Topology::Subnet => self.set_opt("ifconfig_netmask", rn),
            Topology::Net30 | Topology::P2p => self.set_opt("ifconfig_remote", rn),
        };
        if let Some((a, bits)) = tun.ifconfig_ipv6_local {
            self.set("ifconfig_ipv6_local", a.to_string())
                .set("ifconfig_ipv6_netbits", bits.to_string());
        }
        self.set_opt(
            "ifconfig_ipv6_remote",
            tun.ifconfig_ipv6_remote.map(|a| a.to_string()),
        )
    }

    /// `time_unix` and `time_ascii` (client-connect).
    pub fn set_time(&mut self, unix: u64, tz: &dyn TimeZone) -> &mut Self {
        self.set("time_unix", unix.to_string())
            .set("time_ascii", format_time(unix, tz))
    }

    /// `bytes_received`, `bytes_sent`, `time_duration` (client-disconnect).
    pub fn set_disconnect(
        &mut self,
        bytes_received: u64,
        bytes_sent: u64,
        seconds: u64,
    ) -> &mut Self {
        self.set("bytes_received", bytes_received.to_string())
            .set("bytes_sent", bytes_sent.to_string())
            .set("time_duration", seconds.to_string())
    }
}

/// The DNS settings a tunnel ends up with, as OpenVPN 2.6 on Linux hands
/// them to `up`/`down` scripts: `dhcp-option` lines (configured ones first,
/// then pushed ones, each `dhcp-option TYPE [VALUE]`) and the `dns` options
/// (search domains, servers sorted by priority).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSettings {
    /// `dhcp-option` lines in the order they were read or pushed.
    pub dhcp_options: Vec<String>,
    /// `dns search-domains` and `dns server` blocks.
    pub dns: Dns,
}

/// The words of a `dhcp-option` line, or `None` for one 2.6 refuses on
/// Linux (more than two words after `dhcp-option`, e.g. `PROXY_HTTP host
/// port`, which only the Windows build knows).
fn dhcp_option_words(o: &DhcpOption) -> Option<Vec<String>> {
    let (kind, value): (&str, Option<String>) = match o {
        DhcpOption::Dns(a) => ("DNS", Some(a.to_string())),
        DhcpOption::Dns6(a) => ("DNS6", Some(a.to_string())),
        DhcpOption::Domain(d) => ("DOMAIN", Some(d.clone())),
        DhcpOption::AdapterDomainSuffix(d) => ("ADAPTER_DOMAIN_SUFFIX", Some(d.clone())),
        DhcpOption::DomainSearch(d) => ("DOMAIN-SEARCH", Some(d.clone())),
        DhcpOption::Wins(a) => ("WINS", Some(a.to_string())),
        DhcpOption::Nbdd(a) => ("NBDD", Some(a.to_string())),
        DhcpOption::Ntp(a) => ("NTP", Some(a.to_string())),
        DhcpOption::NbtType(t) => ("NBT", Some(t.to_string())),
        DhcpOption::NbtScope(s) => ("NBS", Some(s.clone())),
        DhcpOption::DisableNbt => ("DISABLE-NBT", None),
        DhcpOption::ProxyHttp(..) => return None,
    };
    let mut w = vec!["dhcp-option".to_string(), kind.to_string()];
    w.extend(value);
    Some(w)
}

impl DnsSettings {
    /// What a configuration alone sets (no `pull`, or before a push):
    /// its `dhcp-option` lines and `dns` options.
    pub fn from_config(cfg: &Config) -> Self {
        DnsSettings {
            dhcp_options: cfg
                .dhcp_options
                .iter()
                .filter_map(dhcp_option_words)
                .map(|w| w.join(" "))
                .collect(),
            dns: cfg.dns.clone(),
        }
    }

    /// Whether there is nothing to pass on.
    pub fn is_empty(&self) -> bool {
        self.dhcp_options.is_empty()
            && self.dns.search_domains.is_empty()
            && self.dns.servers.is_empty()
    }

    /// The `foreign_option_N` values, 2.6's `foreign_options_copy_dns`:
    /// when `dns` servers exist they replace every `dhcp-option DNS`/`DNS6`
    /// line, when `dns` search domains exist they replace every
    /// `dhcp-option DOMAIN-SEARCH` line; the other lines keep their order
    /// and the replacements follow (each server address as `dhcp-option
    /// DNS`/`DNS6`, then each search domain as `dhcp-option DOMAIN-SEARCH`).
    pub fn foreign_options(&self) -> Vec<String> {
        let servers = !self.dns.servers.is_empty();
        let domains = !self.dns.search_domains.is_empty();
        if !servers && !domains {
            return self.dhcp_options.clone();
        }
        let mut out: Vec<String> = self
            .dhcp_options
            .iter()
            .filter(|l| {
                !(domains && l.starts_with("dhcp-option DOMAIN-SEARCH")
                    || servers && l.starts_with("dhcp-option DNS"))
            })
            .cloned()
            .collect();
        for s in &self.dns.servers {
            for (a, _) in &s.addresses {
                out.push(match a {
                    IpAddr::V4(a) => format!("dhcp-option DNS {a}"),
                    IpAddr::V6(a) => format!("dhcp-option DNS6 {a}"),
                });
            }
        }
        for d in &self.dns.search_domains {
            out.push(format!("dhcp-option DOMAIN-SEARCH {d}"));
        }
        out
    }
}

impl ScriptEnv {
    /// `foreign_option_N` and the `dns_*` variables of 2.6
    /// (`setenv_dns_options`): `dns_search_domain_{i}`,
    /// `dns_server_{n}_address_{j}` and `_port_{j}` (only when a port was
    /// given), `dns_server_{n}_resolve_domain_{j}`, `_dnssec`, `_transport`,
    /// `_sni`; `n` counts servers in priority order from 1.
    pub fn set_dns(&mut self, dns: &DnsSettings) -> &mut Self {
        self.set_foreign_options(&dns.foreign_options());
        for (i, d) in dns.dns.search_domains.iter().enumerate() {
            self.set(&format!("dns_search_domain_{}", i + 1), d);
        }
        for (n, s) in dns.dns.servers.iter().enumerate() {
            let n = n + 1;
            for (j, (a, port)) in s.addresses.iter().enumerate() {
                let j = j + 1;
                self.set(&format!("dns_server_{n}_address_{j}"), a.to_string());
                self.set_opt(
                    &format!("dns_server_{n}_port_{j}"),
                    port.map(|p| p.to_string()),
                );
            }
            for (j, d) in s.resolve_domains.iter().enumerate() {
                self.set(&format!("dns_server_{n}_resolve_domain_{}", j + 1), d);
            }
            self.set_opt(
                &format!("dns_server_{n}_dnssec"),
                s.dnssec.map(|d| match d {
                    DnsSec::Yes => "yes",
                    DnsSec::No => "no",
                    DnsSec::Optional => "optional",
                }),
            );
            self.set_opt(
                &format!("dns_server_{n}_transport"),
                s.transport.map(|t| match t {
                    DnsTransport::Plain => "plain",
                    DnsTransport::Https => "DoH",
                    DnsTransport::Tls => "DoT",
                }),
            );
            self.set_opt(&format!("dns_server_{n}_sni"), s.sni.as_deref());
        }
        self
    }

    /// Adds every variable of `other` (replacing same-named ones).
    pub fn extend(&mut self, other: &ScriptEnv) -> &mut Self {
        for (k, v) in other.iter() {
            self.vars.insert(k.to_string(), v.to_string());
        }
        self
    }
}

/// Runs scripts with a `script-security` level, a timeout and a directory
/// for temporary files (OpenVPN's `tmp-dir`).
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    /// `script-security`.
    pub security: u8,
    /// Kill the script after this long.
    pub timeout: Duration,
    /// Where via-file and client-connect files are created.
    pub tmp_dir: PathBuf,
    /// `setenv` pairs from the configuration, added to every script.
    pub setenv: Vec<(String, String)>,
}

impl ScriptRunner {
    /// A runner with the default timeout and the system temp directory.
    pub fn new(security: u8) -> Self {
        ScriptRunner {
            security,
            timeout: DEFAULT_TIMEOUT,
            tmp_dir: std::env::temp_dir(),
            setenv: Vec::new(),
        }
    }

    /// Runs `command` (a command line, split like a config line) as hook
    /// `kind`, with `args` after the command's own words, the environment
    /// `env` (plus `script_type` and any `setenv`), and credentials if given.
    pub async fn run(
        &self,
        command: &str,
        kind: ScriptType,
        args: &[String],
        env: &ScriptEnv,
        credentials: Option<&Credentials>,
    ) -> Result<ScriptOutcome, ScriptError> {
        if self.security < SSEC_SCRIPTS {
            return Err(ScriptError::Refused {
                level: self.security,
                command: command.to_string(),
            });
        }
        let argv = split_command(command)?;
        let mut env = env.clone();
        for (k, v) in &self.setenv {
            env.set(k, v);
        }
        env.set("script_type", kind.as_str());
        let mut args = args.to_vec();
        let mut temp = None;
        match credentials {
            None => {}
            Some(Credentials::ViaEnv { username, password }) => {
                env.set("username", username);
                env.set("password", password);
            }
            Some(Credentials::ViaFile { username, password }) => {
                env.set("username", username);
                let t = TempFile::create(&self.tmp_dir, "up", format!("{username}\n{password}\n"))?;
                args.push(t.path.display().to_string());
                temp = Some(t);
            }
        }
        if self.security < SSEC_PW_ENV {
            env.unset("password");
        }
        let out = self.spawn(&argv, &args, &env).await;
        drop(temp);
        out
    }

    /// Runs a `client-connect` script: its last argument is a temporary
    /// file in which it may write config lines (`push ...`,
    /// `ifconfig-push ...`), returned as text when it succeeds (parse it
    /// with [`crate::server::ccd::parse_ccd`]).
    pub async fn run_client_connect(
        &self,
        command: &str,
        env: &ScriptEnv,
    ) -> Result<(ScriptOutcome, Option<String>), ScriptError> {
        let t = TempFile::create(&self.tmp_dir, "cc", String::new())?;
        let path = t.path.display().to_string();
        let outcome = self
            .run(command, ScriptType::ClientConnect, &[path], env, None)
            .await?;
        let text = if outcome.success {
            std::fs::read(&t.path)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .filter(|s| !s.is_empty())
        } else {
            None
        };
        Ok((outcome, text))
    }

    async fn spawn(
        &self,
        argv: &[String],
        args: &[String],
        env: &ScriptEnv,
    ) -> Result<ScriptOutcome, ScriptError> {
        let Some((program, own_args)) = argv.split_first() else {
            return Err(ScriptError::BadCommand {
                command: String::new(),
                reason: "empty command".into(),
            });
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(own_args)
            .args(args)
            .env_clear()
            .env("PATH", SCRIPT_PATH)
            .envs(env.iter())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| ScriptError::Spawn {
            program: program.clone(),
            source,
        })?;
        // Dropping the child on timeout kills it (kill_on_drop).
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| ScriptError::Timeout {
                program: program.clone(),
                timeout: self.timeout,
            })?
            .map_err(|source| ScriptError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        if output.len() > OUTPUT_MAX {
            let mut cut = OUTPUT_MAX;
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
        }
        Ok(ScriptOutcome {
            success: out.status.success(),
            exit_code: out.status.code(),
            output,
        })
    }
}

/// Splits a script command line like a config line.
pub fn split_command(command: &str) -> Result<Vec<String>, ScriptError> {
    let words = tokenize_line(command.as_bytes()).map_err(|e| ScriptError::BadCommand {
        command: command.to_string(),
        reason: e.to_string(),
    })?;
    if words.is_empty() {
        return Err(ScriptError::BadCommand {
            command: command.to_string(),
            reason: "empty command".into(),
        });
    }
    Ok(words)
}

/// A private temporary file, deleted on drop.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create(dir: &Path, tag: &str, contents: String) -> Result<Self, ScriptError> {
        let err = |source| ScriptError::TempFile {
            dir: dir.to_path_buf(),
            source,
        };
        // Unpredictable names and O_EXCL: nobody can pre-create or guess
        // the file another user's script will read credentials from.
        for _ in 0..8 {
            let mut rnd = [0u8; 8];
            openssl::rand::rand_bytes(&mut rnd)
                .map_err(|e| err(std::io::Error::other(e.to_string())))?;
            let name = format!("openvpn_{tag}_{}.tmp", hex_lower(&rnd));
            let path = dir.join(name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut f) => {
                    let t = TempFile { path };
                    f.write_all(contents.as_bytes()).map_err(err)?;
                    return Ok(t);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Err(err(std::io::Error::other(
            "no unique name after 8 attempts",
        )))
    }
}

/// Creates an empty mode-0600 file with an unpredictable name
/// (`openvpn_{tag}_*.tmp`) in `dir` and returns its path; the caller
/// removes it (2.6's `platform_create_temp_file`).
pub fn create_temp_path(dir: &Path, tag: &str) -> std::io::Result<PathBuf> {
    let t = TempFile::create(dir, tag, String::new()).map_err(std::io::Error::other)?;
    let path = t.path.clone();
    std::mem::forget(t);
    Ok(path)
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::fs::PermissionsExt as _,
        sync::atomic::{AtomicU32, Ordering},
    };

    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "vpn-scripts-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        /// Writes an executable shell script and returns its path.
        fn script(&self, name: &str, body: &str) -> String {
            let p = self.0.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p.display().to_string()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn runner(level: u8, dir: &TempDir) -> ScriptRunner {
        ScriptRunner {
            security: level,
            timeout: Duration::from_secs(10),
            tmp_dir: dir.0.clone(),
            setenv: vec![("site".into(), "lab".into())],
        }
    }

    #[tokio::test]
    async fn passes_openvpn_environment_and_args() {
        let d = TempDir::new();
        let s = d.script(
            "up.sh",
            "echo \"$script_type|$dev|$tun_mtu|$ifconfig_local|$ifconfig_netmask|$route_vpn_gateway|$foreign_option_1|$foreign_option_2|$site|$1|$2|$HOME\"",
        );
        let mut env = ScriptEnv::new();
        env.set("dev", "tun0")
            .set("tun_mtu", "1500")
            .set("ifconfig_local", "10.8.0.2")
            .set("ifconfig_netmask", "255.255.255.0")
            .set("route_vpn_gateway", "10.8.0.1");
        env.set_dns(&DnsSettings {
            dhcp_options: vec![
                "dhcp-option DNS 10.8.0.1".to_string(),
                "dhcp-option DOMAIN example.org".to_string(),
            ],
            dns: Dns::default(),
        });
        let out = runner(2, &d)
            .run(
                &format!("{s} tun0"),
                ScriptType::Up,
                &["1500".into()],
                &env,
                None,
            )
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(
            out.output.trim(),
            "up|tun0|1500|10.8.0.2|255.255.255.0|10.8.0.1|dhcp-option DNS 10.8.0.1|dhcp-option DOMAIN example.org|lab|tun0|1500|",
            "clean environment: HOME is not inherited"
        );
    }

    #[tokio::test]
    async fn nonzero_exit_is_failure() {
        let d = TempDir::new();
        let s = d.script("deny.sh", "exit 3");
        let out = runner(2, &d)
            .run(
                &s,
                ScriptType::ClientDisconnect,
                &[],
                &ScriptEnv::new(),
                None,
            )
            .await
            .unwrap();
        assert!(!out.success);
        assert_eq!(out.exit_code, Some(3));
    }

    #[tokio::test]
    async fn script_security_below_2_refuses_user_scripts() {
        let d = TempDir::new();
        let s = d.script("x.sh", "exit 0");
        for level in [0, 1] {
            let e = runner(level, &d)
                .run(&s, ScriptType::Up, &[], &ScriptEnv::new(), None)
                .await
                .unwrap_err();
            assert!(matches!(e, ScriptError::Refused { .. }), "{e}");
        }
    }

    #[tokio::test]
    async fn via_env_password_needs_script_security_3() {
        let d = TempDir::new();
        let s = d.script(
            "verify.sh",
            "[ \"$username\" = alice ] && [ \"$password\" = s3cret ] && [ \"$common_name\" = client1 ] && [ \"$untrusted_ip\" = 198.51.100.7 ] && [ \"$untrusted_port\" = 43451 ]",
        );
        let mut env = ScriptEnv::new();
        env.set("common_name", "client1")
            .set_untrusted("198.51.100.7:43451".parse().unwrap());
        let creds = Credentials::ViaEnv {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let ok = runner(3, &d)
            .run(&s, ScriptType::UserPassVerify, &[], &env, Some(&creds))
            .await
            .unwrap();
        assert!(ok.success);
        let no_pw = runner(2, &d)
            .run(&s, ScriptType::UserPassVerify, &[], &env, Some(&creds))
            .await
            .unwrap();
        assert!(!no_pw.success, "password withheld below level 3");
    }

    #[tokio::test]
    async fn via_file_passes_a_private_file_and_deletes_it() {
        let d = TempDir::new();
        let record = d.0.join("seen");
        let s = d.script(
            "verify.sh",
            &format!(
                "stat -c %a \"$1\" > {r}; cat \"$1\" >> {r}; echo \"$1\" >> {r}; [ \"$(head -1 \"$1\")\" = bob ] && [ \"$(sed -n 2p \"$1\")\" = 'p w' ] && [ -z \"$password\" ]",
                r = record.display()
            ),
        );
        let creds = Credentials::ViaFile {
            username: "bob".into(),
            password: "p w".into(),
        };
        let out = runner(2, &d)
            .run(
                &s,
                ScriptType::UserPassVerify,
                &[],
                &ScriptEnv::new(),
                Some(&creds),
            )
            .await
            .unwrap();
        assert!(out.success, "{}", out.output);
        let seen = std::fs::read_to_string(&record).unwrap();
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(&lines[..3], &["600", "bob", "p w"]);
        assert!(!Path::new(lines[3]).exists(), "temp file removed");
    }

    #[tokio::test]
    async fn client_connect_returns_the_dynamic_config() {
        let d = TempDir::new();
        let s = d.script(
            "cc.sh",
            "[ \"$script_type\" = client-connect ] || exit 1\necho 'ifconfig-push 10.8.0.77 255.255.255.0' > \"$1\"\necho 'push \"route 10.50.0.0 255.255.0.0\"' >> \"$1\"",
        );
        let (out, text) = runner(2, &d)
            .run_client_connect(&s, &ScriptEnv::new())
            .await
            .unwrap();
        assert!(out.success);
        let text = text.unwrap();
        let dir = crate::server::ccd::ClientConfigDir {
            dir: d.0.clone(),
            exclusive: false,
            cwd: d.0.clone(),
            ifconfig_ipv6_local: None,
        };
        let o = crate::server::ccd::parse_ccd(text.as_bytes(), Path::new("client-connect"), &dir)
            .unwrap();
        assert_eq!(
            o.ifconfig_push.unwrap().local,
            "10.8.0.77".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(o.push_edits.len(), 1);
        // Nothing is left behind in tmp-dir but the script itself.
        let left: Vec<_> = std::fs::read_dir(&d.0).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[tokio::test]
    async fn slow_scripts_are_killed_at_the_timeout() {
        let d = TempDir::new();
        let s = d.script("slow.sh", "sleep 30");
        let r = ScriptRunner {
            timeout: Duration::from_millis(200),
            ..runner(2, &d)
        };
        let e = r
            .run(&s, ScriptType::Up, &[], &ScriptEnv::new(), None)
            .await
            .unwrap_err();
        assert!(matches!(e, ScriptError::Timeout { .. }), "{e}");
    }

    #[tokio::test]
    async fn missing_program_and_bad_quoting_are_errors() {
        let d = TempDir::new();
        let e = runner(2, &d)
            .run(
                "/nonexistent/vpn-script",
                ScriptType::Up,
                &[],
                &ScriptEnv::new(),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ScriptError::Spawn { .. }));
        assert!(matches!(
            split_command("a \"b"),
            Err(ScriptError::BadCommand { .. })
        ));
        assert!(matches!(
            split_command("   "),
            Err(ScriptError::BadCommand { .. })
        ));
        assert_eq!(
            split_command("'/opt/my scripts/up.sh' \"a b\" c").unwrap(),
            vec!["/opt/my scripts/up.sh", "a b", "c"]
        );
    }

    #[test]
    fn tun_env_and_up_args_follow_run_up_down() {
        let tun = TunInfo {
            dev: "tun0".into(),
            tun_mtu: 1500,
            topology: Topology::Subnet,
            ifconfig_local: Some("10.8.0.2".parse().unwrap()),
            ifconfig_remote_netmask: Some("255.255.255.0".parse().unwrap()),
            ifconfig_ipv6_local: Some(("fd00:8::1000".parse().unwrap(), 64)),
            ifconfig_ipv6_remote: Some("fd00:8::1".parse().unwrap()),
            route_vpn_gateway: Some("10.8.0.1".parse().unwrap()),
        };
        assert_eq!(
            up_down_args(&tun, ScriptContext::Init),
            vec!["tun0", "1500", "0", "10.8.0.2", "255.255.255.0", "init"]
        );
        let mut e = ScriptEnv::new();
        e.set_tun(&tun, ScriptContext::Restart, Some("SIGUSR1"));
        assert_eq!(e.get("ifconfig_netmask"), Some("255.255.255.0"));
        assert_eq!(e.get("ifconfig_remote"), None);
        assert_eq!(e.get("ifconfig_ipv6_netbits"), Some("64"));
        assert_eq!(e.get("route_vpn_gateway"), Some("10.8.0.1"));
        assert_eq!(e.get("script_context"), Some("restart"));
        assert_eq!(e.get("signal"), Some("SIGUSR1"));
        let net30 = TunInfo {
            topology: Topology::Net30,
            ifconfig_remote_netmask: Some("10.8.0.5".parse().unwrap()),
            ..tun
        };
        let mut e = ScriptEnv::new();
        e.set_tun(&net30, ScriptContext::Init, None);
        assert_eq!(e.get("ifconfig_remote"), Some("10.8.0.5"));
        assert_eq!(e.get("signal"), None);
    }

    #[test]
    fn client_connect_env_matches_the_live_capture() {
        use crate::server::push::{ClientIpv4, ClientIpv6};
        let addrs = crate::server::push::ClientAddresses {
            ipv4: Some(ClientIpv4 {
                local: "10.8.0.2".parse().unwrap(),
                remote_netmask: "255.255.255.0".parse().unwrap(),
                alias: None,
            }),
            ipv6: Some(ClientIpv6 {
                local: "fd00:8::1000".parse().unwrap(),
                prefix_len: 64,
                remote: "fd00:8::1".parse().unwrap(),
            }),
        };
        let mut e = ScriptEnv::new();
        crate::server::cert_env::set_client_addresses(&mut e, &addrs, Topology::Subnet)
            .set_time(1_795_625_095, &crate::mgmt::status::Utc)
            .set_disconnect(2230, 2273, 22);
        assert_eq!(e.get("ifconfig_pool_remote_ip"), Some("10.8.0.2"));
        assert_eq!(e.get("ifconfig_pool_netmask"), Some("255.255.255.0"));
        assert_eq!(e.get("ifconfig_pool_remote_ip6"), Some("fd00:8::1000"));
        assert_eq!(e.get("ifconfig_pool_local_ip6"), Some("fd00:8::1"));
        assert_eq!(e.get("ifconfig_pool_ip6_netbits"), Some("64"));
        assert_eq!(e.get("time_ascii"), Some("2026-11-25 16:44:55"));
        assert_eq!(e.get("time_unix"), Some("1795625095"));
        assert_eq!(e.get("bytes_sent"), Some("2273"));
        assert_eq!(e.get("time_duration"), Some("22"));
        let mut n = ScriptEnv::new();
        crate::server::cert_env::set_client_addresses(&mut n, &addrs, Topology::Net30);
        assert_eq!(n.get("ifconfig_pool_local_ip"), Some("255.255.255.0"));
    }

    fn server(priority: i8, addrs: &[&str]) -> crate::config::DnsServer {
        crate::config::DnsServer {
            priority,
            addresses: addrs
                .iter()
                .map(|a| match a.parse::<IpAddr>() {
                    Ok(ip) => (ip, None),
                    Err(_) => {
                        let sa: std::net::SocketAddr = a.parse().unwrap();
                        (sa.ip(), Some(sa.port()))
                    }
                })
                .collect(),
            resolve_domains: Vec::new(),
            dnssec: None,
            transport: None,
            sni: None,
        }
    }

    #[test]
    fn dhcp_options_alone_are_foreign_options_in_order() {
        let cfg = crate::config::Loader::new("/nonexistent-base")
            .check_files(false)
            .load_str(
                "test.conf",
                "client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n\
             dhcp-option DNS 10.8.0.1\n\
             dhcp-option DNS6 fd00::1\ndhcp-option DOMAIN corp.example\n\
             dhcp-option DISABLE-NBT\ndhcp-option PROXY_HTTP proxy 8080\n",
            )
            .unwrap();
        let d = DnsSettings::from_config(&cfg);
        assert_eq!(
            d.foreign_options(),
            [
                "dhcp-option DNS 10.8.0.1",
                "dhcp-option DNS6 fd00::1",
                "dhcp-option DOMAIN corp.example",
                "dhcp-option DISABLE-NBT",
            ],
            "PROXY_HTTP has three words: 2.6 on Linux does not export it"
        );
        let mut e = ScriptEnv::new();
        e.set_dns(&d);
        assert_eq!(e.get("foreign_option_1"), Some("dhcp-option DNS 10.8.0.1"));
        assert_eq!(e.get("foreign_option_4"), Some("dhcp-option DISABLE-NBT"));
        assert_eq!(e.get("foreign_option_5"), None);
        assert!(e.iter().all(|(k, _)| !k.starts_with("dns_")));
    }

    #[test]
    fn dns_servers_replace_dhcp_dns_and_domain_search_as_2_6_does() {
        let mut s1 = server(-1, &["10.0.0.53", "[fd00::53]:853"]);
        s1.resolve_domains = vec!["corp.example".into(), "lab.example".into()];
        s1.dnssec = Some(DnsSec::Optional);
        s1.transport = Some(DnsTransport::Tls);
        s1.sni = Some("dns.corp.example".into());
        let d = DnsSettings {
            dhcp_options: vec![
                "dhcp-option DNS 10.8.0.1".into(),
                "dhcp-option DOMAIN-SEARCH old.example".into(),
                "dhcp-option DOMAIN corp.example".into(),
                "dhcp-option DNS6 fd00::1".into(),
                "dhcp-option NTP 10.8.0.9".into(),
            ],
            dns: Dns {
                search_domains: vec!["a.example".into(), "b.example".into()],
                servers: vec![s1, server(5, &["1.1.1.1:5353"])],
            },
        };
        assert_eq!(
            d.foreign_options(),
            [
                "dhcp-option DOMAIN corp.example",
                "dhcp-option NTP 10.8.0.9",
                "dhcp-option DNS 10.0.0.53",
                "dhcp-option DNS6 fd00::53",
                "dhcp-option DNS 1.1.1.1",
                "dhcp-option DOMAIN-SEARCH a.example",
                "dhcp-option DOMAIN-SEARCH b.example",
            ]
        );
        let mut e = ScriptEnv::new();
        e.set_dns(&d);
        let want = [
            ("foreign_option_1", "dhcp-option DOMAIN corp.example"),
            ("foreign_option_7", "dhcp-option DOMAIN-SEARCH b.example"),
            ("dns_search_domain_1", "a.example"),
            ("dns_search_domain_2", "b.example"),
            ("dns_server_1_address_1", "10.0.0.53"),
            ("dns_server_1_address_2", "fd00::53"),
            ("dns_server_1_port_2", "853"),
            ("dns_server_1_resolve_domain_1", "corp.example"),
            ("dns_server_1_resolve_domain_2", "lab.example"),
            ("dns_server_1_dnssec", "optional"),
            ("dns_server_1_transport", "DoT"),
            ("dns_server_1_sni", "dns.corp.example"),
            ("dns_server_2_address_1", "1.1.1.1"),
            ("dns_server_2_port_1", "5353"),
        ];
        for (k, v) in want {
            assert_eq!(e.get(k), Some(v), "{k}");
        }
        assert_eq!(e.get("foreign_option_8"), None);
        assert_eq!(e.get("dns_server_1_port_1"), None, "no port given");
        assert_eq!(e.get("dns_server_2_dnssec"), None);
        // Only search domains: DNS lines stay, DOMAIN-SEARCH lines go.
        let only_domains = DnsSettings {
            dhcp_options: vec![
                "dhcp-option DOMAIN-SEARCH old.example".into(),
                "dhcp-option DNS 10.8.0.1".into(),
            ],
            dns: Dns {
                search_domains: vec!["new.example".into()],
                servers: Vec::new(),
            },
        };
        assert_eq!(
            only_domains.foreign_options(),
            [
                "dhcp-option DNS 10.8.0.1",
                "dhcp-option DOMAIN-SEARCH new.example"
            ]
        );
        let mut merged = ScriptEnv::new();
        merged.set("dev", "tun0").extend(&e);
        assert_eq!(merged.get("dev"), Some("tun0"));
        assert_eq!(merged.get("dns_server_2_port_1"), Some("5353"));
    }

    #[test]
    fn env_names_and_values_are_sanitised() {
        let mut e = ScriptEnv::new();
        e.set("X509_0_CN", "a\nb").set("bad-name", "v");
        assert_eq!(e.get("X509_0_CN"), Some("a?b"));
        assert_eq!(e.get("bad_name"), Some("v"));
        e.set_untrusted("[2001:db8::5]:1194".parse().unwrap());
        assert_eq!(e.get("untrusted_ip6"), Some("2001:db8::5"));
        e.set_trusted("[::ffff:192.0.2.1]:5000".parse().unwrap());
        assert_eq!(e.get("trusted_ip"), Some("192.0.2.1"));
        assert_eq!(e.get("trusted_port"), Some("5000"));
        assert_eq!(ScriptType::UserPassVerify.as_str(), "user-pass-verify");
    }
}
