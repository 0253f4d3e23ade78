//! `client-config-dir` files and client-connect output: per-client options
//! read with the config lexer and parsed through the directive table with
//! the instance scope ([`Scope::INSTANCE`]), into typed [`CcdOptions`].
//!
//! What OpenVPN 2.6 allows in these files is what its option parser lets
//! through `CLIENT_CONNECT_OPT_MASK` (the rows whose scope has
//! [`Scope::INSTANCE`], taken from each directive's `OPT_P_*` class): the instance options (`ifconfig-push`,
//! `ifconfig-ipv6-push`, `iroute`, `iroute-ipv6`, `push-reset`,
//! `push-remove`, `disable`, `cipher`...), `push`, the timers (`ping`,
//! `ping-restart`, `ping-exit`, `ping-timer-rem`, `inactive`,
//! `session-timeout`), `echo`/`parameter`, the compression framings,
//! `socket-flags`/`bind-dev`, `max-routes-per-client`, and `config` to
//! include another file. Everything else is refused with the file and line
//! (2.6 logs "option cannot be used in this context" and ignores the line;
//! we refuse the client instead, so a typo never goes unnoticed).
//!
//! File names: 2.6 (`platform_gen_path`) replaces every non-printable
//! character and `/` of the common name by `_` and refuses `.` and `..`,
//! so a certificate cannot name a file outside the directory.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::config::{
    Config,
    directives::{self, Scope},
    lexer::{LexedLine, lex},
};
use crate::proto::session::InstanceTimers;

/// The file read when there is none for the common name.
pub const CCD_DEFAULT: &str = "DEFAULT";

/// How deep `config` may nest inside a ccd file (OpenVPN's limit).
pub const MAX_DEPTH: usize = 10;

/// Where a ccd error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcdSpan {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: u32,
}

impl std::fmt::Display for CcdSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// A client-config-dir problem.
#[derive(Debug, thiserror::Error)]
pub enum CcdError {
    /// The common name cannot name a file (empty, `.`, `..`).
    #[error("common name {0:?} cannot be used as a client-config-dir file name")]
    UnsafeName(String),
    /// `ccd-exclusive` and no file for this common name.
    #[error("ccd-exclusive: no client-config-dir file for common name {cn:?} ({path})")]
    ExclusiveNoFile {
        /// The common name.
        cn: String,
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tokenizer refused a line.
    #[error("{span}: {kind}")]
    Lex {
        /// Where.
        span: CcdSpan,
        /// What.
        kind: crate::config::LexErrorKind,
    },
    /// A directive OpenVPN does not allow in a ccd file.
    #[error("{span}: option '{name}' cannot be used in a client-config-dir file")]
    NotAllowed {
        /// Where.
        span: CcdSpan,
        /// The directive.
        name: String,
    },
    /// Wrong parameter count or a value that does not parse.
    #[error("{span}: {name}: {message}")]
    Invalid {
        /// Where.
        span: CcdSpan,
        /// The directive.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// `config` nests too deep.
    #[error("{span}: config files nested more than {MAX_DEPTH} levels deep")]
    TooDeep {
        /// Where.
        span: CcdSpan,
    },
}

/// `ifconfig-push LOCAL REMOTE_NETMASK [ALIAS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfconfigPush {
    /// The client's address.
    pub local: Ipv4Addr,
    /// Netmask (subnet) or the server end (net30/p2p).
    pub remote_netmask: Ipv4Addr,
    /// Pushed instead of `local` when given (2.6 `push_ifconfig_local_alias`).
    pub alias: Option<Ipv4Addr>,
}

/// `ifconfig-ipv6-push ADDR/BITS [REMOTE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfconfigIpv6Push {
    /// The client's address and prefix length (default /64).
    pub local: Ipv6Net,
    /// The server end; without it, our `ifconfig-ipv6` address.
    pub remote: Ipv6Addr,
}

/// One step applied to the inherited push list, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEdit {
    /// `push-reset`: start from an empty list.
    Reset,
    /// `push-remove TEXT`: drop options starting with TEXT (`ifconfig` /
    /// `ifconfig-ipv6` block the per-client address instead).
    Remove(String),
    /// `push "OPTION"`: append.
    Push(String),
}

/// A directive allowed in a ccd file that this module does not interpret
/// (`echo`, `compress`, `cipher`...): the driver decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherDirective {
    /// Where.
    pub line: u32,
    /// The words, directive first.
    pub words: Vec<String>,
}

/// `inactive SECONDS [BYTES]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcdInactive {
    /// Period.
    pub seconds: u32,
    /// Minimum bytes per period.
    pub bytes: u64,
}

/// Everything a ccd file (with its `config` includes) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CcdOptions {
    /// The file that was read.
    pub file: PathBuf,
    /// `ifconfig-push`.
    pub ifconfig_push: Option<IfconfigPush>,
    /// `ifconfig-ipv6-push`.
    pub ifconfig_ipv6_push: Option<IfconfigIpv6Push>,
    /// `iroute` networks.
    pub iroutes_v4: Vec<Ipv4Net>,
    /// `iroute-ipv6` networks.
    pub iroutes_v6: Vec<Ipv6Net>,
    /// `push`, `push-reset`, `push-remove` in order.
    pub push_edits: Vec<PushEdit>,
    /// `disable`: refuse this client.
    pub disable: bool,
    /// `ping`.
    pub ping: Option<u32>,
    /// `ping-restart`.
    pub ping_restart: Option<u32>,
    /// `ping-exit`.
    pub ping_exit: Option<u32>,
    /// `ping-timer-rem`.
    pub ping_timer_rem: bool,
    /// `inactive`.
    pub inactive: Option<CcdInactive>,
    /// `session-timeout`.
    pub session_timeout: Option<u32>,
    /// Other allowed directives, as written.
    pub other: Vec<OtherDirective>,
    /// Lines skipped, with why (file:line first): a directive not allowed
    /// here or that does not parse. 2.6 skips such a line with a warning
    /// and honours the rest of the file (`disable` included), so do we; a
    /// file that cannot be read or tokenized refuses the client instead.
    pub skipped: Vec<String>,
}

/// A static address assignment found in a ccd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAddress {
    /// The file.
    pub file: PathBuf,
    /// Its `ifconfig-push` address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its `ifconfig-ipv6-push` address.
    pub ipv6: Option<Ipv6Addr>,
}

/// Which file answered a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CcdLookup {
    /// The common name's own file.
    Client(CcdOptions),
    /// No own file; `DEFAULT` was read.
    Default(CcdOptions),
    /// Neither exists.
    None,
}

impl CcdLookup {
    /// The options, whichever file they came from.
    pub fn options(&self) -> Option<&CcdOptions> {
        match self {
            CcdLookup::Client(o) | CcdLookup::Default(o) => Some(o),
            CcdLookup::None => None,
        }
    }
}

/// The file name 2.6 derives from a common name: non-printable
/// characters and `/` become `_`; empty, `.` and `..` are refused.
pub fn ccd_file_name(cn: &str) -> Result<String, CcdError> {
    // Byte-wise, as 2.6 does: each byte of a multi-byte UTF-8 character
    // becomes its own `_`.
    let safe: String = cn
        .bytes()
        .map(|b| {
            if b == b'/' || !(b.is_ascii_graphic() || b == b' ') {
                '_'
            } else {
                char::from(b)
            }
        })
        .collect();
    if safe.is_empty() || safe == "." || safe == ".." {
        return Err(CcdError::UnsafeName(cn.to_string()));
    }
    Ok(safe)
}

/// A `client-config-dir` and how to read it.
#[derive(Debug, Clone)]
pub struct ClientConfigDir {
    /// The directory.
    pub dir: PathBuf,
    /// `ccd-exclusive`.
    pub exclusive: bool,
    /// Where relative `config` names inside ccd files start (OpenVPN: the
    /// process's directory after `cd`).
    pub cwd: PathBuf,
    /// Our `ifconfig-ipv6` address: the default REMOTE of
    /// `ifconfig-ipv6-push`.
    pub ifconfig_ipv6_local: Option<Ipv6Addr>,
}

impl ClientConfigDir {
    /// From a server configuration; `None` without `client-config-dir`.
    pub fn from_config(cfg: &Config, cwd: impl Into<PathBuf>) -> Option<Self> {
        let dir = cfg.client_config_dir.clone()?;
        Some(ClientConfigDir {
            dir,
            exclusive: cfg.ccd_exclusive,
            cwd: cfg.cd.clone().unwrap_or_else(|| cwd.into()),
            ifconfig_ipv6_local: cfg.ifconfig_ipv6.map(|i| i.local.addr()),
        })
    }

    /// Reads the options for `cn`: its own file, else `DEFAULT` (not both,
    /// as in 2.6). With `ccd-exclusive` a missing own file (or the name
    /// `DEFAULT`) refuses the client.
    pub fn load(&self, cn: &str) -> Result<CcdLookup, CcdError> {
        let own = self.dir.join(ccd_file_name(cn)?);
        if self.exclusive && (cn == CCD_DEFAULT || !own.is_file()) {
            return Err(CcdError::ExclusiveNoFile {
                cn: cn.to_string(),
                path: own,
            });
        }
        if own.is_file() {
            let o = self.read_file(&own)?;
            o.warn_not_applied();
            return Ok(CcdLookup::Client(o));
        }
        let def = self.dir.join(CCD_DEFAULT);
        if def.is_file() {
            let o = self.read_file(&def)?;
            o.warn_not_applied();
            return Ok(CcdLookup::Default(o));
        }
        Ok(CcdLookup::None)
    }

    /// Reads and parses one ccd file.
    pub fn read_file(&self, path: &Path) -> Result<CcdOptions, CcdError> {
        let mut opts = CcdOptions {
            file: path.to_path_buf(),
            ..CcdOptions::default()
        };
        self.read_into(path, &mut opts, 0)?;
        Ok(opts)
    }

    fn read_into(&self, path: &Path, opts: &mut CcdOptions, depth: usize) -> Result<(), CcdError> {
        let bytes = std::fs::read(path).map_err(|source| CcdError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse_into(&bytes, path, self, opts, depth)
    }

    /// Static addresses of every file in the directory (for
    /// [`AddressPool::reserve`](crate::server::pool::AddressPool::reserve)), with
    /// the errors of files that could not be read or parsed.
    pub fn scan_static_addresses(&self) -> Result<(Vec<StaticAddress>, Vec<CcdError>), CcdError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|source| CcdError::Read {
            path: self.dir.clone(),
            source,
        })?;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        let mut paths: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            match self.read_file(&p) {
                Ok(o) => {
                    let v4 = o.ifconfig_push.map(|i| i.local);
                    let v6 = o.ifconfig_ipv6_push.map(|i| i.local.addr());
                    if v4.is_some() || v6.is_some() {
                        found.push(StaticAddress {
                            file: p,
                            ipv4: v4,
                            ipv6: v6,
                        });
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        Ok((found, errors))
    }
}

/// Parses ccd text (`path` names it in errors and anchors nothing else).
pub fn parse_ccd(bytes: &[u8], path: &Path, dir: &ClientConfigDir) -> Result<CcdOptions, CcdError> {
    let mut opts = CcdOptions {
        file: path.to_path_buf(),
        ..CcdOptions::default()
    };
    parse_into(bytes, path, dir, &mut opts, 0)?;
    opts.warn_not_applied();
    Ok(opts)
}

impl CcdOptions {
    /// The per-instance timers this file sets (`ping`, `ping-restart`,
    /// `ping-exit`, `inactive` without a byte threshold), for
    /// [`Session::override_timers`](crate::proto::session::Session::override_timers).
    pub fn instance_timers(&self) -> InstanceTimers {
        let secs = |v: Option<u32>| v.map(|s| Duration::from_secs(u64::from(s)));
        InstanceTimers {
            ping: secs(self.ping),
            ping_restart: secs(self.ping_restart),
            ping_exit: secs(self.ping_exit),
            inactive: secs(
                self.inactive
                    .filter(|i| i.bytes == 0 && i.seconds > 0)
                    .map(|i| i.seconds),
            ),
        }
    }

    /// Directives 2.6 honours per client that this daemon reads but does
    /// not act on yet: `ping-timer-rem`, `inactive` with a byte threshold,
    /// `session-timeout`, and the kept [`OtherDirective`]s other than
    /// `echo`/`parameter` (which only talk to a management client, and
    /// there is none) and the compression lines (`server::compress`).
    pub fn not_applied(&self) -> Vec<&str> {
        let timers = [
            ("ping-timer-rem", self.ping_timer_rem),
            ("inactive", self.inactive.is_some_and(|i| i.bytes > 0)),
            ("session-timeout", self.session_timeout.is_some()),
        ];
        timers
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(n, _)| n)
            .chain(
                self.other
                    .iter()
                    .filter_map(|o| o.words.first().map(String::as_str))
                    .filter(|n| {
                        !matches!(
                            *n,
                            "echo"
                                | "parameter"
                                | "vlan-pvid"
                                | "comp-lzo"
                                | "compress"
                                | "comp-noadapt"
                        )
                    }),
            )
            .collect()
    }

    /// Logs [`not_applied`](Self::not_applied), so nothing in a ccd file is
    /// ignored silently.
    /// Records a skipped line.
    fn skip(&mut self, e: CcdError) {
        self.skipped.push(e.to_string());
    }

    fn warn_not_applied(&self) {
        for s in &self.skipped {
            tracing::warn!("{s}: line skipped");
        }
        let names = self.not_applied();
        if !names.is_empty() {
            tracing::warn!(
                file = %self.file.display(),
                directives = %names.join(", "),
                "client-config-dir directives read but not applied by this daemon"
            );
        }
    }
}

/// One instance directive's parameters, for the instance parsers the
/// directive table names (`Spec::instance`).
pub(super) struct InstanceArgs<'a> {
    pub(super) name: &'a str,
    pub(super) args: &'a [String],
    pub(super) span: &'a CcdSpan,
    pub(super) dir: &'a ClientConfigDir,
}

impl InstanceArgs<'_> {
    fn bad(&self, message: String) -> CcdError {
        CcdError::Invalid {
            span: self.span.clone(),
            name: self.name.to_string(),
            message,
        }
    }

    fn arg(&self, i: usize) -> &str {
        self.args.get(i).map(String::as_str).unwrap_or_default()
    }

    fn v4(&self, i: usize) -> Result<Ipv4Addr, CcdError> {
        self.arg(i)
            .parse::<Ipv4Addr>()
            .map_err(|_| self.bad(format!("bad IPv4 address {:?}", self.arg(i))))
    }

    fn num(&self, i: usize) -> Result<u32, CcdError> {
        self.arg(i)
            .parse::<u32>()
            .map_err(|_| self.bad(format!("bad number {:?}", self.arg(i))))
    }
}

/// What the directive table's instance parsers have the type of.
pub(super) type InstanceApply = fn(&mut CcdOptions, &InstanceArgs<'_>) -> Result<(), CcdError>;

fn parse_into(
    bytes: &[u8],
    path: &Path,
    dir: &ClientConfigDir,
    opts: &mut CcdOptions,
    depth: usize,
) -> Result<(), CcdError> {
    let span = |line| CcdSpan {
        file: path.to_path_buf(),
        line,
    };
    let lines = lex(bytes).map_err(|e| CcdError::Lex {
        span: span(e.line),
        kind: e.kind,
    })?;
    for LexedLine {
        line,
        mut words,
        inline,
    } in lines
    {
        let sp = span(line);
        // OpenVPN accepts `--name` in files too.
        if let Some(first) = words.first_mut()
            && let Some(stripped) = first.strip_prefix("--")
        {
            *first = stripped.to_string();
        }
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        let name = name.as_str();
        if inline.is_some() {
            opts.skip(CcdError::NotAllowed {
                span: sp,
                name: format!("<{name}>"),
            });
            continue;
        }
        // The table's scope mask decides, as CLIENT_CONNECT_OPT_MASK does
        // in 2.6's add_option.
        let Some(spec) = directives::lookup_scoped(name, Scope::INSTANCE) else {
            opts.skip(CcdError::NotAllowed {
                span: sp,
                name: name.to_string(),
            });
            continue;
        };
        let a = InstanceArgs {
            name,
            args,
            span: &sp,
            dir,
        };
        // A row without an instance parser is kept as written for the
        // driver, without an arity check.
        let Some(apply) = spec.instance else {
            opts.other.push(OtherDirective {
                line,
                words: words.clone(),
            });
            continue;
        };
        if args.len() < spec.min || args.len() > spec.max {
            let want = if spec.min == spec.max {
                format!("{}", spec.min)
            } else {
                format!("{} to {}", spec.min, spec.max)
            };
            opts.skip(a.bad(format!("takes {want} parameter(s), got {}", args.len())));
            continue;
        }
        if spec.name == "config" {
            if depth + 1 >= MAX_DEPTH {
                opts.skip(CcdError::TooDeep { span: sp });
                continue;
            }
            let p = Path::new(a.arg(0));
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.cwd.join(p)
            };
            let bytes = std::fs::read(&p).map_err(|source| CcdError::Read {
                path: p.clone(),
                source,
            })?;
            parse_into(&bytes, &p, dir, opts, depth + 1)?;
            continue;
        }
        if let Err(e) = apply(opts, &a) {
            opts.skip(e);
        }
    }
    Ok(())
}

// The instance parsers, named by the directive table's rows.

/// `config FILE` is read by [`parse_into`] itself (it recurses).
pub(super) fn config(_: &mut CcdOptions, _: &InstanceArgs<'_>) -> Result<(), CcdError> {
    Ok(())
}

pub(super) fn ifconfig_push(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    let local = a.v4(0)?;
    let remote_netmask = a.v4(1)?;
    if local.is_unspecified() || remote_netmask.is_unspecified() {
        return Err(a.bad("cannot parse --ifconfig-push addresses".into()));
    }
    let alias = if a.args.len() == 3 {
        Some(a.v4(2)?)
    } else {
        None
    };
    opts.ifconfig_push = Some(IfconfigPush {
        local,
        remote_netmask,
        alias,
    });
    Ok(())
}

pub(super) fn ifconfig_ipv6_push(
    opts: &mut CcdOptions,
    a: &InstanceArgs<'_>,
) -> Result<(), CcdError> {
    let local = parse_v6_prefix(a.arg(0)).ok_or_else(|| {
        a.bad(format!(
            "cannot parse --ifconfig-ipv6-push address {:?}",
            a.arg(0)
        ))
    })?;
    let remote = if a.args.len() == 2 {
        a.arg(1).parse::<Ipv6Addr>().map_err(|_| {
            a.bad(format!(
                "cannot parse --ifconfig-ipv6-push remote {:?}",
                a.arg(1)
            ))
        })?
    } else {
        a.dir.ifconfig_ipv6_local.ok_or_else(|| {
            a.bad("second argument missing and no global --ifconfig-ipv6 address set".into())
        })?
    };
    opts.ifconfig_ipv6_push = Some(IfconfigIpv6Push { local, remote });
    Ok(())
}

pub(super) fn iroute(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    let net = a.v4(0)?;
    let bits = if a.args.len() == 2 {
        let mask = a.v4(1)?;
        let m = u32::from(mask);
        if m.leading_ones() + m.trailing_zeros() != 32 {
            return Err(a.bad(format!(
                "{} {}: bad network/subnet specification",
                a.arg(0),
                a.arg(1)
            )));
        }
        u8::try_from(m.leading_ones()).unwrap_or(32)
    } else {
        32
    };
    let n = Ipv4Net::new(net, bits).map_err(|e| a.bad(e.to_string()))?;
    opts.iroutes_v4.push(n.trunc());
    Ok(())
}

pub(super) fn iroute_ipv6(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    let n = parse_v6_prefix(a.arg(0))
        .ok_or_else(|| a.bad(format!("bad IPv6 prefix {:?}", a.arg(0))))?;
    opts.iroutes_v6.push(n.trunc());
    Ok(())
}

pub(super) fn push(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.push_edits.push(PushEdit::Push(a.arg(0).to_string()));
    Ok(())
}

pub(super) fn push_reset(opts: &mut CcdOptions, _: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.push_edits.push(PushEdit::Reset);
    Ok(())
}

pub(super) fn push_remove(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.push_edits.push(PushEdit::Remove(a.arg(0).to_string()));
    Ok(())
}

pub(super) fn disable(opts: &mut CcdOptions, _: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.disable = true;
    Ok(())
}

pub(super) fn ping(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.ping = Some(a.num(0)?);
    Ok(())
}

pub(super) fn ping_restart(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.ping_restart = Some(a.num(0)?);
    Ok(())
}

pub(super) fn ping_exit(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.ping_exit = Some(a.num(0)?);
    Ok(())
}

pub(super) fn ping_timer_rem(opts: &mut CcdOptions, _: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.ping_timer_rem = true;
    Ok(())
}

pub(super) fn session_timeout(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    opts.session_timeout = Some(a.num(0)?);
    Ok(())
}

pub(super) fn inactive(opts: &mut CcdOptions, a: &InstanceArgs<'_>) -> Result<(), CcdError> {
    let seconds = a.num(0)?;
    let bytes = if a.args.len() == 2 {
        a.arg(1)
            .parse::<u64>()
            .map_err(|_| a.bad(format!("bad byte count {:?}", a.arg(1))))?
    } else {
        0
    };
    opts.inactive = Some(CcdInactive { seconds, bytes });
    Ok(())
}

/// `ADDR[/BITS]`, /64 when no length is given (2.6 `get_ipv6_addr`).
fn parse_v6_prefix(s: &str) -> Option<Ipv6Net> {
    let (a, bits) = match s.split_once('/') {
        Some((a, b)) => (a, b.parse::<u8>().ok()?),
        None => (s, 64),
    };
    Ipv6Net::new(a.parse().ok()?, bits).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn ctx(dir: &Path) -> ClientConfigDir {
        ClientConfigDir {
            dir: dir.to_path_buf(),
            exclusive: false,
            cwd: dir.to_path_buf(),
            ifconfig_ipv6_local: Some("fd00:8::1".parse().unwrap()),
        }
    }

    fn parse(text: &str) -> Result<CcdOptions, CcdError> {
        parse_ccd(
            text.as_bytes(),
            Path::new("/ccd/alice"),
            &ctx(Path::new("/ccd")),
        )
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "vpn-ccd-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn parses_every_instance_directive() {
        let o = parse(
            "# alice\n\
             ifconfig-push 10.8.0.50 255.255.255.0\n\
             ifconfig-ipv6-push fd00:8::50/64 fd00:8::1\n\
             iroute 192.168.50.0 255.255.255.0\n\
             iroute 192.168.60.1\n\
             iroute-ipv6 fd00:50::/48\n\
             push-reset\n\
             push \"route 192.168.70.0 255.255.255.0\"\n\
             push-remove dhcp-option\n\
             ping 5\nping-restart 30\nping-timer-rem\ninactive 600 1000\nsession-timeout 3600\n\
             echo hello world\n\
             --compress stub-v2\n",
        )
        .unwrap();
        assert_eq!(
            o.ifconfig_push,
            Some(IfconfigPush {
                local: "10.8.0.50".parse().unwrap(),
                remote_netmask: "255.255.255.0".parse().unwrap(),
                alias: None
            })
        );
        let v6 = o.ifconfig_ipv6_push.unwrap();
        assert_eq!(v6.local, "fd00:8::50/64".parse().unwrap());
        assert_eq!(v6.remote, "fd00:8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            o.iroutes_v4,
            vec![
                "192.168.50.0/24".parse().unwrap(),
                "192.168.60.1/32".parse().unwrap()
            ]
        );
        assert_eq!(o.iroutes_v6, vec!["fd00:50::/48".parse().unwrap()]);
        assert_eq!(
            o.push_edits,
            vec![
                PushEdit::Reset,
                PushEdit::Push("route 192.168.70.0 255.255.255.0".into()),
                PushEdit::Remove("dhcp-option".into())
            ]
        );
        assert_eq!(
            (o.ping, o.ping_restart, o.ping_timer_rem),
            (Some(5), Some(30), true)
        );
        assert_eq!(
            o.inactive,
            Some(CcdInactive {
                seconds: 600,
                bytes: 1000
            })
        );
        assert_eq!(o.session_timeout, Some(3600));
        assert_eq!(o.other.len(), 2);
        assert_eq!(o.other[0].words, vec!["echo", "hello", "world"]);
        assert_eq!(o.other[1].line, 16);
        assert!(!o.disable);
        assert!(parse("disable\n").unwrap().disable);
        assert_eq!(
            o.not_applied(),
            ["ping-timer-rem", "inactive", "session-timeout"],
            "echo has no effect without a management client; the byte threshold of inactive is not applied; compress is applied by server::compress"
        );
        assert_eq!(
            o.instance_timers(),
            InstanceTimers {
                ping: Some(Duration::from_secs(5)),
                ping_restart: Some(Duration::from_secs(30)),
                ping_exit: None,
                inactive: None,
            }
        );
        let plain = parse("inactive 120\nping-exit 90\n").unwrap();
        assert!(plain.not_applied().is_empty(), "{:?}", plain.not_applied());
        assert_eq!(
            plain.instance_timers(),
            InstanceTimers {
                ping_exit: Some(Duration::from_secs(90)),
                inactive: Some(Duration::from_secs(120)),
                ..InstanceTimers::default()
            }
        );
    }

    #[test]
    fn addresses_routes_and_push_edits_are_all_applied() {
        let o = parse(
            "ifconfig-push 10.8.0.50 255.255.255.0\niroute 192.168.50.0 255.255.255.0\n\
             push \"route 10.0.0.0 255.0.0.0\"\necho hi\nparameter x y\n",
        )
        .unwrap();
        assert!(o.not_applied().is_empty(), "{:?}", o.not_applied());
    }

    #[test]
    fn ifconfig_push_alias_and_ipv6_default_remote() {
        let o = parse("ifconfig-push 10.8.0.6 10.8.0.5 10.9.9.9\nifconfig-ipv6-push fd00:8::77\n")
            .unwrap();
        assert_eq!(
            o.ifconfig_push.unwrap().alias,
            Some("10.9.9.9".parse().unwrap())
        );
        let v6 = o.ifconfig_ipv6_push.unwrap();
        assert_eq!(v6.local.prefix_len(), 64);
        assert_eq!(v6.remote, "fd00:8::1".parse::<Ipv6Addr>().unwrap());
        let no_global = ClientConfigDir {
            ifconfig_ipv6_local: None,
            ..ctx(Path::new("/ccd"))
        };
        let o = parse_ccd(
            b"ifconfig-ipv6-push fd00:8::77\n",
            Path::new("/ccd/a"),
            &no_global,
        )
        .unwrap();
        assert!(o.ifconfig_ipv6_push.is_none());
        assert!(
            o.skipped[0].starts_with("/ccd/a:1: ifconfig-ipv6-push:"),
            "{:?}",
            o.skipped
        );
    }

    #[test]
    fn a_bad_line_never_loses_disable() {
        // The review's demonstration: `disable` plus one line we refuse.
        for bad in [
            "route 10.0.0.0 255.0.0.0",
            "ifconfig-push 10.8.0.x 255.255.255.0",
            "bogus",
        ] {
            let o = parse(&format!("disable\n{bad}\n")).unwrap();
            assert!(o.disable, "{bad}");
            let o = parse(&format!("{bad}\ndisable\n")).unwrap();
            assert!(o.disable, "{bad}");
        }
    }

    #[test]
    fn skips_global_only_directives_with_file_and_line() {
        for d in [
            "dev tun",
            "server 10.9.0.0 255.255.255.0",
            "route 10.0.0.0 255.0.0.0",
            "ca x.pem",
            "client-to-client",
            "tls-auth ta.key 0",
            "nonsense",
        ] {
            // 2.6: the line is skipped with a warning, the rest applies.
            let o = parse(&format!("ping 1\n{d}\n")).unwrap();
            assert_eq!(o.ping, Some(1), "{d}");
            assert_eq!(o.skipped.len(), 1, "{d}: {:?}", o.skipped);
            assert!(
                o.skipped[0].starts_with("/ccd/alice:2: option"),
                "{:?}",
                o.skipped
            );
        }
        let o = parse("<ca>\nx\n</ca>\ndisable\n").unwrap();
        assert!(o.disable);
        assert!(o.skipped[0].contains("option '<ca>'"), "{:?}", o.skipped);
    }

    #[test]
    fn reports_each_malformed_directive() {
        let cases = [
            ("ifconfig-push 10.8.0.5\n", "takes 2 to 3"),
            ("ifconfig-push 10.8.0.x 255.255.255.0\n", "bad IPv4"),
            ("ifconfig-push 0.0.0.0 255.255.255.0\n", "cannot parse"),
            ("ifconfig-ipv6-push nope/64\n", "cannot parse"),
            ("ifconfig-ipv6-push fd00::1/200\n", "cannot parse"),
            ("iroute 10.0.0.0 255.0.255.0\n", "bad network/subnet"),
            ("iroute-ipv6 zz::/48\n", "bad IPv6 prefix"),
            ("push\n", "takes 1"),
            ("push-reset now\n", "takes 0"),
            ("ping soon\n", "bad number"),
            ("inactive 5 lots\n", "bad byte count"),
            ("config /nonexistent/vpn-ccd-include\n", "cannot read"),
            ("push \"unterminated\n", "no closing quotation"),
        ];
        for (text, want) in cases {
            // A line that does not parse is skipped (and named); a file
            // that cannot be read or tokenized is an error.
            let e = match parse(text) {
                Ok(o) => o.skipped.join("\n"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(
                e.contains("/ccd/alice") || e.contains("/nonexistent"),
                "{e}"
            );
        }
    }

    #[test]
    fn iroute_with_host_bits_is_truncated() {
        let o = parse("iroute 10.1.2.3 255.255.0.0\n").unwrap();
        assert_eq!(o.iroutes_v4, vec!["10.1.0.0/16".parse().unwrap()]);
    }

    #[test]
    fn file_names_cannot_escape_the_directory() {
        assert_eq!(ccd_file_name("alice").unwrap(), "alice");
        assert_eq!(
            ccd_file_name("../../etc/passwd").unwrap(),
            ".._.._etc_passwd"
        );
        assert_eq!(ccd_file_name("a\nb\u{7f}c").unwrap(), "a_b_c");
        assert_eq!(ccd_file_name("Jos\u{e9} Doe").unwrap(), "Jos__ Doe");
        assert!(ccd_file_name("..").is_err());
        assert!(ccd_file_name(".").is_err());
        assert!(ccd_file_name("").is_err());
    }

    #[test]
    fn loads_own_file_else_default_else_none() {
        let d = TempDir::new();
        d.write("alice", "ifconfig-push 10.8.0.50 255.255.255.0\n");
        d.write("DEFAULT", "push \"dhcp-option DNS 10.8.0.1\"\n");
        let c = ctx(&d.0);
        match c.load("alice").unwrap() {
            CcdLookup::Client(o) => {
                assert!(o.ifconfig_push.is_some());
                assert!(o.push_edits.is_empty(), "DEFAULT is not merged");
                assert_eq!(o.file, d.0.join("alice"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.load("bob").unwrap(), CcdLookup::Default(_)));
        std::fs::remove_file(d.0.join("DEFAULT")).unwrap();
        assert_eq!(c.load("bob").unwrap(), CcdLookup::None);
        // A traversal attempt reads a (missing) file inside the directory.
        assert_eq!(c.load("../alice").unwrap(), CcdLookup::None);
    }

    #[test]
    fn ccd_exclusive_refuses_clients_without_a_file() {
        let d = TempDir::new();
        d.write("alice", "\n");
        d.write("DEFAULT", "\n");
        let c = ClientConfigDir {
            exclusive: true,
            ..ctx(&d.0)
        };
        assert!(matches!(c.load("alice").unwrap(), CcdLookup::Client(_)));
        assert!(matches!(
            c.load("bob"),
            Err(CcdError::ExclusiveNoFile { .. })
        ));
        assert!(matches!(
            c.load("DEFAULT"),
            Err(CcdError::ExclusiveNoFile { .. })
        ));
    }

    #[test]
    fn config_includes_nest_and_errors_name_the_included_file() {
        let d = TempDir::new();
        d.write("common.inc", "push \"route 10.99.0.0 255.255.0.0\"\n");
        d.write("bad.inc", "\n\nroute 10.0.0.0\n");
        d.write("loop.inc", "config loop.inc\n");
        d.write("alice", "config common.inc\niroute 10.77.0.0 255.255.0.0\n");
        d.write("bob", "config bad.inc\n");
        d.write("carol", "config loop.inc\n");
        let c = ctx(&d.0);
        let a = c.load("alice").unwrap();
        let o = a.options().unwrap();
        assert_eq!(o.push_edits.len(), 1);
        assert_eq!(o.iroutes_v4.len(), 1);
        let b = c.load("bob").unwrap();
        let skipped = &b.options().unwrap().skipped;
        assert!(
            skipped[0].contains("bad.inc:3: option 'route'"),
            "{skipped:?}"
        );
        let l = c.load("carol").unwrap();
        let skipped = &l.options().unwrap().skipped;
        assert!(skipped[0].contains("nested more than"), "{skipped:?}");
    }

    #[test]
    fn scans_static_addresses_for_pool_reservation() {
        let d = TempDir::new();
        d.write("a", "ifconfig-push 10.8.0.50 255.255.255.0\n");
        d.write("b", "ifconfig-ipv6-push fd00:8::99/64\n");
        d.write("c", "push \"x\"\n");
        // A skipped line is no error; a file that cannot be tokenized is.
        d.write("d", "dev tun\nifconfig-push 10.8.0.60 255.255.255.0\n");
        d.write("e", "push \"unterminated\n");
        let (found, errors) = ctx(&d.0).scan_static_addresses().unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].ipv4, Some("10.8.0.50".parse().unwrap()));
        assert_eq!(found[1].ipv6, Some("fd00:8::99".parse().unwrap()));
        assert_eq!(found[2].ipv4, Some("10.8.0.60".parse().unwrap()));
        assert_eq!(errors.len(), 1);
    }

    proptest::proptest! {
        /// Any file content: options or an error naming the file, never a
        /// panic (`config` lines may name missing files; that is an error).
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Err(e) = parse_ccd(&bytes, Path::new("/ccd/x"), &ctx(Path::new("/nonexistent-ccd"))) {
                let _ = e.to_string();
            }
        }
    }
}
