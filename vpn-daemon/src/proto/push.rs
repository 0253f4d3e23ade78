//! PUSH_REPLY options (doc §9.2): parse into typed [`PushedOptions`],
//! reassemble `push-continuation` parts, and build a server's reply split
//! into ≤ 940-byte parts as 2.6 does.
//!
//! Each pushed option is one config line (no commas inside); options are
//! separated by commas after `PUSH_REPLY`. Options we do not know are kept
//! as raw strings in [`PushedOptions::unknown`] and reported, not fatal, as
//! in 2.6. A known option with bad arguments is an error for the whole reply.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bitflags::bitflags;
use ipnet::Ipv6Net;

use crate::proto::data::compress::{CompressOptionError, CompressOptions};

/// 2.6 cuts reply parts at PUSH_BUNDLE_SIZE − 84 bytes.
pub const PUSH_PART_MAX: usize = 1024 - 84;
/// A client gives up on a reply with more parts than this (memory bound).
pub const MAX_PUSH_PARTS: usize = 64;

/// A pushed option that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// A known option with missing or malformed arguments.
    #[error("pushed option {option:?}: {reason}")]
    BadOption {
        /// The option line.
        option: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An unterminated quote in an option line.
    #[error("pushed option {0:?}: unterminated quote")]
    UnterminatedQuote(String),
    /// More than [`MAX_PUSH_PARTS`] continuation parts.
    #[error("PUSH_REPLY has more than {MAX_PUSH_PARTS} parts")]
    TooManyParts,
    /// A part arrived after the final one.
    #[error("PUSH_REPLY part after the final part")]
    AfterFinal,
    /// Builder: an option contains a comma or a non-printable byte.
    #[error("option {0:?} cannot be pushed (comma or non-printable byte)")]
    Unpushable(String),
    /// Builder: a single option is longer than a part.
    #[error("option {0:?} does not fit in one PUSH_REPLY part")]
    OptionTooLong(String),
    /// `pull-filter reject` matched: 2.6 restarts the client.
    #[error("pushed option rejected by pull-filter: {0:?}")]
    RejectedByFilter(String),
}

/// `pull-filter accept|ignore|reject TEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFilterAction {
    /// Take the option (and stop looking at later rules).
    Accept,
    /// Drop the option with a log line.
    Ignore,
    /// Restart the client.
    Reject,
}

/// What the client lets through of a PUSH_REPLY: `pull-filter` rules (the
/// first whose text is a prefix of the option line decides, as 2.6's
/// `apply_pull_filter`), then `route-nopull` (2.6 drops the option classes
/// `OPT_P_ROUTE` and `OPT_P_DHCPDNS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullFilter {
    /// The rules in configuration order.
    pub rules: Vec<(PullFilterAction, String)>,
    /// `route-nopull`.
    pub route_nopull: bool,
}

/// What [`PullFilter::decide`] says of one option line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullVerdict {
    /// Apply it.
    Apply,
    /// Leave it out (filter `ignore`, or `route-nopull`).
    Drop,
    /// `pull-filter reject`.
    Reject,
}

impl PullFilter {
    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && !self.route_nopull
    }

    /// The verdict for one option line (leading blanks already trimmed).
    pub fn decide(&self, line: &str) -> PullVerdict {
        for (action, text) in &self.rules {
            if line.starts_with(text.as_str()) {
                return match action {
                    PullFilterAction::Accept => self.nopull(line),
                    PullFilterAction::Ignore => PullVerdict::Drop,
                    PullFilterAction::Reject => PullVerdict::Reject,
                };
            }
        }
        self.nopull(line)
    }

    // route-nopull acts on permissions, after the filter has let a line
    // through, as in 2.6 where the filter runs before option permissions.
    fn nopull(&self, line: &str) -> PullVerdict {
        let name = line.split_ascii_whitespace().next().unwrap_or("");
        if self.route_nopull && PUSHED.iter().any(|p| p.route_class && p.name == name) {
            PullVerdict::Drop
        } else {
            PullVerdict::Apply
        }
    }
}

/// `topology`, in a config file or pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// `net30`: a /30 per client (2.6's default, also when nothing is
    /// pushed; deprecated).
    Net30,
    /// `p2p`: point-to-point addresses, no /30 per client.
    P2p,
    /// `subnet`: one subnet, the server is a gateway in it.
    Subnet,
}

impl Topology {
    /// The word OpenVPN writes for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::Net30 => "net30",
            Topology::P2p => "p2p",
            Topology::Subnet => "subnet",
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route endpoint: an address or one of OpenVPN's keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAddr {
    /// A literal IPv4 address.
    Addr(Ipv4Addr),
    /// `vpn_gateway`.
    VpnGateway,
    /// `net_gateway`.
    NetGateway,
    /// `remote_host`.
    RemoteHost,
}

/// `route NETWORK [NETMASK [GATEWAY [METRIC]]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub network: RouteAddr,
    /// Netmask (default 255.255.255.255).
    pub netmask: Ipv4Addr,
    /// Gateway; `None` = `route-gateway` / vpn_gateway.
    pub gateway: Option<RouteAddr>,
    /// Metric.
    pub metric: Option<u32>,
}

/// `route-ipv6 NETWORK/BITS [GATEWAY [METRIC]]`, in a config file or pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteIpv6 {
    /// Destination prefix, host bits kept as written.
    pub network: Ipv6Net,
    /// Gateway; `None` means the tunnel's remote end.
    pub gateway: Option<Ipv6Addr>,
    /// Route metric.
    pub metric: Option<u32>,
}

/// `route-gateway GW|dhcp`, in a config file or pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGateway {
    /// A literal gateway.
    Addr(Ipv4Addr),
    /// `dhcp`: learn it by DHCP (tap only in OpenVPN).
    Dhcp,
}

bitflags! {
    /// `redirect-gateway` / `redirect-private` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct RedirectFlags: u16 {
        /// `local`.
        const LOCAL = 1 << 0;
        /// `autolocal`.
        const AUTO_LOCAL = 1 << 1;
        /// `def1`: two /1 routes instead of replacing the default route.
        const DEF1 = 1 << 2;
        /// `bypass-dhcp`.
        const BYPASS_DHCP = 1 << 3;
        /// `bypass-dns`.
        const BYPASS_DNS = 1 << 4;
        /// `block-local`.
        const BLOCK_LOCAL = 1 << 5;
        /// `ipv6`: redirect IPv6 too.
        const IPV6 = 1 << 6;
        /// `!ipv4`: do not redirect IPv4.
        const NOT_IPV4 = 1 << 7;
    }
}

const REDIRECT_FLAG_NAMES: &[(&str, RedirectFlags)] = &[
    ("local", RedirectFlags::LOCAL),
    ("autolocal", RedirectFlags::AUTO_LOCAL),
    ("def1", RedirectFlags::DEF1),
    ("bypass-dhcp", RedirectFlags::BYPASS_DHCP),
    ("bypass-dns", RedirectFlags::BYPASS_DNS),
    ("block-local", RedirectFlags::BLOCK_LOCAL),
    ("ipv6", RedirectFlags::IPV6),
    ("!ipv4", RedirectFlags::NOT_IPV4),
];

/// `dhcp-option TYPE VALUE` (legacy DNS and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    /// `DNS addr` / `DNS6 addr`.
    Dns(IpAddr),
    /// `DOMAIN name`.
    Domain(String),
    /// `DOMAIN-SEARCH name`.
    DomainSearch(String),
    /// `WINS addr`.
    Wins(Ipv4Addr),
    /// `NTP addr`.
    Ntp(Ipv4Addr),
    /// Any other type, with its arguments.
    Other {
        /// The type word.
        kind: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// One `dns server N …` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsServer {
    /// Priority (−128..127, lower first).
    pub priority: i8,
    /// `address A[:port] …` as written.
    pub addresses: Vec<String>,
    /// `resolve-domains D …`.
    pub resolve_domains: Vec<String>,
    /// `dnssec yes|optional|no`.
    pub dnssec: Option<String>,
    /// `transport plain|DoH|DoT`.
    pub transport: Option<String>,
    /// `sni NAME`.
    pub sni: Option<String>,
}

/// The 2.6 `dns` option family (only pushed to IV_PROTO DNS_OPTION clients).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsOptions {
    /// `dns search-domains D …`.
    pub search_domains: Vec<String>,
    /// `dns server N …`, in first-seen order.
    pub servers: Vec<DnsServer>,
}

impl DnsOptions {
    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.search_domains.is_empty() && self.servers.is_empty()
    }
}

bitflags! {
    /// `protocol-flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct ProtocolFlags: u8 {
        /// `cc-exit`: EXIT on the control channel.
        const CC_EXIT = 1 << 0;
        /// `tls-ekm`: data keys from the TLS exporter.
        const TLS_EKM = 1 << 1;
        /// `dyn-tls-crypt`: dynamic tls-crypt for renegotiations.
        const DYN_TLS_CRYPT = 1 << 2;
        /// `aead-epoch` (2.7).
        const AEAD_EPOCH = 1 << 3;
    }
}

const PROTOCOL_FLAG_NAMES: &[(&str, ProtocolFlags)] = &[
    ("cc-exit", ProtocolFlags::CC_EXIT),
    ("tls-ekm", ProtocolFlags::TLS_EKM),
    ("dyn-tls-crypt", ProtocolFlags::DYN_TLS_CRYPT),
    ("aead-epoch", ProtocolFlags::AEAD_EPOCH),
];

/// `key-derivation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDerivation {
    /// `tls-ekm`.
    TlsEkm,
}

/// `comp-lzo` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompLzoMode {
    /// `yes`.
    Yes,
    /// `no`: framing byte 0xFA, never compresses.
    No,
    /// `adaptive`.
    Adaptive,
    /// A bare `comp-lzo` (adaptive too; pushed again as written).
    Bare,
}

/// `compress` algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressAlgo {
    /// Bare `compress` or `compress stub`: swap framing, no compression.
    Stub,
    /// `compress stub-v2`.
    StubV2,
    /// `compress lzo`.
    Lzo,
    /// `compress lz4`.
    Lz4,
    /// `compress lz4-v2`.
    Lz4V2,
}

/// A pushed compression option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushedCompression {
    /// `comp-lzo [mode]`.
    CompLzo(CompLzoMode),
    /// `compress [algo]`.
    Compress(CompressAlgo),
}

impl PushedCompression {
    /// Apply the pushed option to our compression options the way 2.6's
    /// `add_option` does for a pushed line; `Ok(true)` when 2.6 prints its
    /// "compression for receiving" warning. [`CompressOptions::check`]
    /// then decides whether the result is allowed.
    pub fn apply_to(self, c: &mut CompressOptions) -> Result<bool, CompressOptionError> {
        match self {
            PushedCompression::CompLzo(m) => c.comp_lzo(match m {
                CompLzoMode::Yes => Some("yes"),
                CompLzoMode::No => Some("no"),
                CompLzoMode::Adaptive => Some("adaptive"),
                CompLzoMode::Bare => None,
            }),
            PushedCompression::Compress(a) => c.compress(Some(match a {
                CompressAlgo::Stub => "stub",
                CompressAlgo::StubV2 => "stub-v2",
                CompressAlgo::Lzo => "lzo",
                CompressAlgo::Lz4 => "lz4",
                CompressAlgo::Lz4V2 => "lz4-v2",
            })),
        }
    }
}

/// Everything a PUSH_REPLY (all parts) may carry, typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushedOptions {
    /// `topology`.
    pub topology: Option<Topology>,
    /// `ifconfig A M` (subnet: address, netmask; net30/p2p: local, remote).
    pub ifconfig: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `ifconfig-ipv6 A/bits [R]`.
    pub ifconfig_ipv6: Option<(Ipv6Addr, u8, Option<Ipv6Addr>)>,
    /// `route-gateway`.
    pub route_gateway: Option<RouteGateway>,
    /// `route …`, in order.
    pub routes: Vec<Route>,
    /// `route-ipv6 …`, in order.
    pub routes_ipv6: Vec<RouteIpv6>,
    /// `route-metric`.
    pub route_metric: Option<u32>,
    /// `redirect-gateway`.
    pub redirect_gateway: Option<RedirectFlags>,
    /// `redirect-private`.
    pub redirect_private: Option<RedirectFlags>,
    /// `dhcp-option …`, in order.
    pub dhcp_options: Vec<DhcpOption>,
    /// `dns …`.
    pub dns: DnsOptions,
    /// `block-ipv6`.
    pub block_ipv6: bool,
    /// `ping N` seconds.
    pub ping: Option<u32>,
    /// `ping-restart N` seconds.
    pub ping_restart: Option<u32>,
    /// `ping-exit N` seconds.
    pub ping_exit: Option<u32>,
    /// `explicit-exit-notify [N]`.
    pub explicit_exit_notify: Option<u32>,
    /// `peer-id N` (24 bits).
    pub peer_id: Option<u32>,
    /// `cipher NAME`.
    pub cipher: Option<String>,
    /// `protocol-flags …`.
    pub protocol_flags: Option<ProtocolFlags>,
    /// `protocol-flags` words we do not know.
    pub unknown_protocol_flags: Vec<String>,
    /// `key-derivation tls-ekm`.
    pub key_derivation: Option<KeyDerivation>,
    /// `tun-mtu N`.
    pub tun_mtu: Option<u16>,
    /// `auth-token T`.
    pub auth_token: Option<String>,
    /// `auth-token-user U` (base64).
    pub auth_token_user: Option<String>,
    /// `comp-lzo` / `compress`.
    pub compression: Option<PushedCompression>,
    /// `push-continuation N` of the last part seen (2 = more follow).
    pub push_continuation: Option<u8>,
    /// Options we do not know, verbatim, in order.
    pub unknown: Vec<String>,
}

/// Split one option line into words: whitespace separated, `"…"` with
/// backslash escapes and `'…'` literal, as the config lexer does.
pub fn split_words(line: &str) -> Result<Vec<String>, PushError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err(PushError::UnterminatedQuote(line.to_string())),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(PushError::UnterminatedQuote(line.to_string())),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(PushError::UnterminatedQuote(line.to_string())),
                    }
                }
            }
            c if c.is_ascii_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

struct Opt<'a> {
    line: &'a str,
    args: &'a [String],
}

impl Opt<'_> {
    fn bad(&self, reason: &'static str) -> PushError {
        PushError::BadOption {
            option: self.line.to_string(),
            reason,
        }
    }

    fn arg(&self, i: usize) -> Result<&str, PushError> {
        self.args
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| self.bad("missing argument"))
    }

    fn opt_arg(&self, i: usize) -> Option<&str> {
        self.args
            .get(i)
            .map(String::as_str)
            .filter(|a| *a != "default")
    }

    fn num<T: std::str::FromStr>(&self, i: usize) -> Result<T, PushError> {
        self.arg(i)?.parse().map_err(|_| self.bad("not a number"))
    }

    fn v4(&self, s: &str) -> Result<Ipv4Addr, PushError> {
        s.parse().map_err(|_| self.bad("not an IPv4 address"))
    }

    fn v6(&self, s: &str) -> Result<Ipv6Addr, PushError> {
        s.parse().map_err(|_| self.bad("not an IPv6 address"))
    }

    fn v6_prefix(&self, s: &str) -> Result<(Ipv6Addr, u8), PushError> {
        let (a, bits) = s.split_once('/').unwrap_or((s, "128"));
        let bits: u8 = bits.parse().map_err(|_| self.bad("bad prefix length"))?;
        if bits > 128 {
            return Err(self.bad("bad prefix length"));
        }
        Ok((self.v6(a)?, bits))
    }

    fn route_addr(&self, s: &str) -> Result<RouteAddr, PushError> {
        Ok(match s {
            "vpn_gateway" => RouteAddr::VpnGateway,
            "net_gateway" => RouteAddr::NetGateway,
            "remote_host" => RouteAddr::RemoteHost,
            a => RouteAddr::Addr(self.v4(a)?),
        })
    }
}

/// How one pushed option updates [`PushedOptions`].
type PushApply = fn(&mut PushedOptions, &Opt<'_>) -> Result<(), PushError>;

/// One row of the pushed-option table: the option name, whether 2.6
/// classes it `OPT_P_ROUTE` / `OPT_P_DHCPDNS` (which `route-nopull` keeps
/// out), and its parser. [`PushedOptions::to_lines`] is its inverse.
pub struct PushedOption {
    /// Option name.
    pub name: &'static str,
    /// Left out by `route-nopull`.
    pub route_class: bool,
    apply: PushApply,
}

const fn pushed(name: &'static str, apply: PushApply) -> PushedOption {
    PushedOption {
        name,
        route_class: false,
        apply,
    }
}

const fn pushed_route(name: &'static str, apply: PushApply) -> PushedOption {
    PushedOption {
        name,
        route_class: true,
        apply,
    }
}

/// `redirect-gateway` / `redirect-private` flags.
fn redirect_flags(o: &Opt<'_>) -> Result<RedirectFlags, PushError> {
    let mut flags = RedirectFlags::empty();
    for a in o.args {
        match REDIRECT_FLAG_NAMES.iter().find(|(n, _)| n == a) {
            Some((_, f)) => flags |= *f,
            None => return Err(o.bad("unknown redirect flag")),
        }
    }
    Ok(flags)
}

/// Known but not parsed: kept verbatim in [`PushedOptions::unknown`].
fn keep(s: &mut PushedOptions, o: &Opt<'_>) -> Result<(), PushError> {
    s.unknown.push(o.line.to_string());
    Ok(())
}

/// Every pushed option the client knows; a name not here is kept verbatim
/// in [`PushedOptions::unknown`] (2.6 logs and ignores it).
pub static PUSHED: &[PushedOption] = &[
    pushed("topology", |s, o| {
        s.topology = Some(match o.arg(0)? {
            "net30" => Topology::Net30,
            "p2p" => Topology::P2p,
            "subnet" => Topology::Subnet,
            _ => return Err(o.bad("unknown topology")),
        });
        Ok(())
    }),
    pushed("ifconfig", |s, o| {
        s.ifconfig = Some((o.v4(o.arg(0)?)?, o.v4(o.arg(1)?)?));
        Ok(())
    }),
    pushed("ifconfig-ipv6", |s, o| {
        let (a, bits) = o.v6_prefix(o.arg(0)?)?;
        let remote = o.opt_arg(1).map(|r| o.v6(r)).transpose()?;
        s.ifconfig_ipv6 = Some((a, bits, remote));
        Ok(())
    }),
    pushed("route-gateway", |s, o| {
        s.route_gateway = Some(match o.arg(0)? {
            "dhcp" => RouteGateway::Dhcp,
            a => RouteGateway::Addr(o.v4(a)?),
        });
        Ok(())
    }),
    pushed_route("route", |s, o| {
        let network = o.route_addr(o.arg(0)?)?;
        let netmask = match o.opt_arg(1) {
            Some(m) => o.v4(m)?,
            None => Ipv4Addr::BROADCAST,
        };
        let gateway = o.opt_arg(2).map(|g| o.route_addr(g)).transpose()?;
        let metric = match o.opt_arg(3) {
            Some(_) => Some(o.num(3)?),
            None => None,
        };
        s.routes.push(Route {
            network,
            netmask,
            gateway,
            metric,
        });
        Ok(())
    }),
    pushed_route("route-ipv6", |s, o| {
        let (addr, prefix_len) = o.v6_prefix(o.arg(0)?)?;
        let network = Ipv6Net::new(addr, prefix_len).map_err(|_| o.bad("bad prefix length"))?;
        let gateway = o.opt_arg(1).map(|g| o.v6(g)).transpose()?;
        let metric = match o.opt_arg(2) {
            Some(_) => Some(o.num(2)?),
            None => None,
        };
        s.routes_ipv6.push(RouteIpv6 {
            network,
            gateway,
            metric,
        });
        Ok(())
    }),
    pushed_route("route-metric", |s, o| {
        s.route_metric = Some(o.num(0)?);
        Ok(())
    }),
    pushed_route("redirect-gateway", |s, o| {
        s.redirect_gateway = Some(redirect_flags(o)?);
        Ok(())
    }),
    pushed_route("redirect-private", |s, o| {
        s.redirect_private = Some(redirect_flags(o)?);
        Ok(())
    }),
    pushed_route("dhcp-option", |s, o| {
        let kind = o.arg(0)?;
        let opt = match kind {
            "DNS" | "DNS6" => {
                DhcpOption::Dns(o.arg(1)?.parse().map_err(|_| o.bad("not an address"))?)
            }
            "DOMAIN" => DhcpOption::Domain(o.arg(1)?.to_string()),
            "DOMAIN-SEARCH" => DhcpOption::DomainSearch(o.arg(1)?.to_string()),
            "WINS" => DhcpOption::Wins(o.v4(o.arg(1)?)?),
            "NTP" => DhcpOption::Ntp(o.v4(o.arg(1)?)?),
            _ => DhcpOption::Other {
                kind: kind.to_string(),
                args: o.args[1..].to_vec(),
            },
        };
        s.dhcp_options.push(opt);
        Ok(())
    }),
    pushed_route("dns", |s, o| {
        s.apply_dns(o)?;
        Ok(())
    }),
    pushed_route("block-ipv6", |s, _| {
        s.block_ipv6 = true;
        Ok(())
    }),
    pushed("ping", |s, o| {
        s.ping = Some(o.num(0)?);
        Ok(())
    }),
    pushed("ping-restart", |s, o| {
        s.ping_restart = Some(o.num(0)?);
        Ok(())
    }),
    pushed("ping-exit", |s, o| {
        s.ping_exit = Some(o.num(0)?);
        Ok(())
    }),
    pushed("explicit-exit-notify", |s, o| {
        s.explicit_exit_notify = Some(match o.opt_arg(0) {
            Some(_) => o.num(0)?,
            None => 1,
        });
        Ok(())
    }),
    pushed("peer-id", |s, o| {
        let id: u32 = o.num(0)?;
        if id > 0xFF_FFFF {
            return Err(o.bad("peer-id above 24 bits"));
        }
        s.peer_id = Some(id);
        Ok(())
    }),
    pushed("cipher", |s, o| {
        s.cipher = Some(o.arg(0)?.to_string());
        Ok(())
    }),
    pushed("protocol-flags", |s, o| {
        let mut flags = ProtocolFlags::empty();
        for a in o.args {
            match PROTOCOL_FLAG_NAMES.iter().find(|(n, _)| n == a) {
                Some((_, f)) => flags |= *f,
                None => s.unknown_protocol_flags.push(a.clone()),
            }
        }
        s.protocol_flags = Some(flags);
        Ok(())
    }),
    pushed("key-derivation", |s, o| {
        match o.arg(0)? {
            "tls-ekm" => s.key_derivation = Some(KeyDerivation::TlsEkm),
            _ => return Err(o.bad("unknown key-derivation")),
        };
        Ok(())
    }),
    pushed("tun-mtu", |s, o| {
        s.tun_mtu = Some(o.num(0)?);
        Ok(())
    }),
    pushed("auth-token", |s, o| {
        s.auth_token = Some(o.arg(0)?.to_string());
        Ok(())
    }),
    pushed("auth-token-user", |s, o| {
        s.auth_token_user = Some(o.arg(0)?.to_string());
        Ok(())
    }),
    pushed("comp-lzo", |s, o| {
        s.compression = Some(PushedCompression::CompLzo(
            match o.args.first().map(String::as_str) {
                None => CompLzoMode::Bare,
                Some("adaptive") => CompLzoMode::Adaptive,
                Some("yes") => CompLzoMode::Yes,
                Some("no") => CompLzoMode::No,
                Some(_) => return Err(o.bad("unknown comp-lzo mode")),
            },
        ));
        Ok(())
    }),
    pushed("compress", |s, o| {
        s.compression = Some(PushedCompression::Compress(
            match o.args.first().map(String::as_str) {
                None | Some("stub") => CompressAlgo::Stub,
                Some("stub-v2") => CompressAlgo::StubV2,
                Some("lzo") => CompressAlgo::Lzo,
                Some("lz4") => CompressAlgo::Lz4,
                Some("lz4-v2") => CompressAlgo::Lz4V2,
                Some(_) => return Err(o.bad("unknown compression algorithm")),
            },
        ));
        Ok(())
    }),
    pushed("push-continuation", |s, o| {
        s.push_continuation = Some(match o.arg(0)? {
            "1" => 1,
            "2" => 2,
            _ => return Err(o.bad("push-continuation must be 1 or 2")),
        });
        Ok(())
    }),
    // Deprecated no-op that 2.6 servers still push.
    pushed("tun-ipv6", |_, _| Ok(())),
    // 2.6's OPT_P_ROUTE / OPT_P_DHCPDNS options we do not parse (Windows
    // ones, client-nat): kept as unknown, but still left out by route-nopull.
    pushed_route("client-nat", keep),
    pushed_route("block-outside-dns", keep),
    pushed_route("register-dns", keep),
    pushed_route("dhcp-renew", keep),
    pushed_route("dhcp-pre-release", keep),
    pushed_route("ip-win32", keep),
    pushed_route("tap-sleep", keep),
];

impl PushedOptions {
    /// Parse a complete single-part reply's option text (after `PUSH_REPLY,`).
    pub fn parse(options: &str) -> Result<Self, PushError> {
        let mut o = Self::default();
        o.apply(options)?;
        Ok(o)
    }

    /// Apply one part's comma-separated options on top of what is there
    /// (lists append, single values are replaced, as 2.6 applies each part).
    pub fn apply(&mut self, options: &str) -> Result<(), PushError> {
        self.apply_filtered(options, &PullFilter::default(), &mut Vec::new())
    }

    /// [`apply`](Self::apply) through the client's `pull-filter` and
    /// `route-nopull`; the lines left out are appended to `dropped` (2.6
    /// logs each).
    pub fn apply_filtered(
        &mut self,
        options: &str,
        filter: &PullFilter,
        dropped: &mut Vec<String>,
    ) -> Result<(), PushError> {
        for line in options.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            match filter.decide(line) {
                PullVerdict::Apply => self.apply_line(line)?,
                PullVerdict::Drop => dropped.push(line.to_string()),
                PullVerdict::Reject => return Err(PushError::RejectedByFilter(line.to_string())),
            }
        }
        Ok(())
    }

    fn apply_line(&mut self, line: &str) -> Result<(), PushError> {
        let words = split_words(line)?;
        let Some((name, args)) = words.split_first() else {
            return Ok(());
        };
        let o = Opt { line, args };
        match PUSHED.iter().find(|p| p.name == name.as_str()) {
            Some(p) => (p.apply)(self, &o)?,
            None => self.unknown.push(line.to_string()),
        }
        Ok(())
    }

    fn apply_dns(&mut self, o: &Opt<'_>) -> Result<(), PushError> {
        match o.arg(0)? {
            "search-domains" => {
                if o.args.len() < 2 {
                    return Err(o.bad("missing argument"));
                }
                self.dns.search_domains.extend(o.args[1..].iter().cloned());
            }
            "server" => {
                let priority: i8 = o.num(1)?;
                let attr = o.arg(2)?;
                let values = o.args.get(3..).unwrap_or_default();
                if values.is_empty() {
                    return Err(o.bad("missing argument"));
                }
                let idx = match self.dns.servers.iter().position(|s| s.priority == priority) {
                    Some(i) => i,
                    None => {
                        self.dns.servers.push(DnsServer {
                            priority,
                            ..DnsServer::default()
                        });
                        self.dns.servers.len() - 1
                    }
                };
                let Some(server) = self.dns.servers.get_mut(idx) else {
                    return Err(o.bad("dns server"));
                };
                match attr {
                    "address" => server.addresses.extend(values.iter().cloned()),
                    "resolve-domains" => server.resolve_domains.extend(values.iter().cloned()),
                    "dnssec" => server.dnssec = Some(values[0].clone()),
                    "transport" => server.transport = Some(values[0].clone()),
                    "sni" => server.sni = Some(values[0].clone()),
                    _ => return Err(o.bad("unknown dns server attribute")),
                }
            }
            _ => return Err(o.bad("unknown dns sub-option")),
        }
        Ok(())
    }

    /// Whether the server announced that more parts follow.
    pub fn expects_more(&self) -> bool {
        self.push_continuation == Some(2)
    }

    /// Whether data keys come from the TLS exporter (pushed either way, §6.2).
    pub fn uses_tls_ekm(&self) -> bool {
        self.key_derivation == Some(KeyDerivation::TlsEkm)
            || self
                .protocol_flags
                .is_some_and(|f| f.contains(ProtocolFlags::TLS_EKM))
    }

    /// The option lines in 2.6's push order (§9.2): global options first
    /// (route-gateway, topology, ping, ping-restart, then routes, DNS, …),
    /// then the per-client ones (ifconfig-ipv6, ifconfig, peer-id,
    /// auth-token, cipher, key-derivation / protocol-flags, tun-mtu).
    /// `push-continuation` is added by [`build_push_reply`].
    pub fn to_lines(&self) -> Vec<String> {
        let mut l = Vec::new();
        if let Some(g) = self.route_gateway {
            l.push(match g {
                RouteGateway::Addr(a) => format!("route-gateway {a}"),
                RouteGateway::Dhcp => "route-gateway dhcp".to_string(),
            });
        }
        if let Some(t) = self.topology {
            l.push(format!("topology {t}"));
        }
        if let Some(p) = self.ping {
            l.push(format!("ping {p}"));
        }
        if let Some(p) = self.ping_restart {
            l.push(format!("ping-restart {p}"));
        }
        if let Some(p) = self.ping_exit {
            l.push(format!("ping-exit {p}"));
        }
        for (name, flags) in [
            ("redirect-gateway", self.redirect_gateway),
            ("redirect-private", self.redirect_private),
        ] {
            if let Some(flags) = flags {
                let mut s = name.to_string();
                for (n, f) in REDIRECT_FLAG_NAMES {
                    if flags.contains(*f) {
                        let _ = write!(s, " {n}");
                    }
                }
                l.push(s);
            }
        }
        for r in &self.routes {
            l.push(route_line(r));
        }
        for r in &self.routes_ipv6 {
            let mut s = format!("route-ipv6 {}", r.network);
            match (r.gateway, r.metric) {
                (Some(g), Some(m)) => {
                    let _ = write!(s, " {g} {m}");
                }
                (Some(g), None) => {
                    let _ = write!(s, " {g}");
                }
                (None, Some(m)) => {
                    let _ = write!(s, " default {m}");
                }
                (None, None) => {}
            }
            l.push(s);
        }
        if let Some(m) = self.route_metric {
            l.push(format!("route-metric {m}"));
        }
        for d in &self.dhcp_options {
            l.push(match d {
                DhcpOption::Dns(IpAddr::V4(a)) => format!("dhcp-option DNS {a}"),
                DhcpOption::Dns(IpAddr::V6(a)) => format!("dhcp-option DNS6 {a}"),
                DhcpOption::Domain(x) => format!("dhcp-option DOMAIN {x}"),
                DhcpOption::DomainSearch(x) => format!("dhcp-option DOMAIN-SEARCH {x}"),
                DhcpOption::Wins(a) => format!("dhcp-option WINS {a}"),
                DhcpOption::Ntp(a) => format!("dhcp-option NTP {a}"),
                DhcpOption::Other { kind, args } if args.is_empty() => {
                    format!("dhcp-option {kind}")
                }
                DhcpOption::Other { kind, args } => {
                    format!("dhcp-option {kind} {}", args.join(" "))
                }
            });
        }
        if !self.dns.search_domains.is_empty() {
            l.push(format!(
                "dns search-domains {}",
                self.dns.search_domains.join(" ")
            ));
        }
        for s in &self.dns.servers {
            let p = s.priority;
            if !s.addresses.is_empty() {
                l.push(format!("dns server {p} address {}", s.addresses.join(" ")));
            }
            if !s.resolve_domains.is_empty() {
                l.push(format!(
                    "dns server {p} resolve-domains {}",
                    s.resolve_domains.join(" ")
                ));
            }
            for (attr, v) in [
                ("dnssec", &s.dnssec),
                ("transport", &s.transport),
                ("sni", &s.sni),
            ] {
                if let Some(v) = v {
                    l.push(format!("dns server {p} {attr} {v}"));
                }
            }
        }
        if self.block_ipv6 {
            l.push("block-ipv6".to_string());
        }
        if let Some(n) = self.explicit_exit_notify {
            l.push(format!("explicit-exit-notify {n}"));
        }
        if let Some(c) = self.compression {
            l.push(
                match c {
                    PushedCompression::CompLzo(CompLzoMode::Yes) => "comp-lzo yes",
                    PushedCompression::CompLzo(CompLzoMode::No) => "comp-lzo no",
                    PushedCompression::CompLzo(CompLzoMode::Adaptive) => "comp-lzo adaptive",
                    PushedCompression::CompLzo(CompLzoMode::Bare) => "comp-lzo",
                    PushedCompression::Compress(CompressAlgo::Stub) => "compress",
                    PushedCompression::Compress(CompressAlgo::StubV2) => "compress stub-v2",
                    PushedCompression::Compress(CompressAlgo::Lzo) => "compress lzo",
                    PushedCompression::Compress(CompressAlgo::Lz4) => "compress lz4",
                    PushedCompression::Compress(CompressAlgo::Lz4V2) => "compress lz4-v2",
                }
                .to_string(),
            );
        }
        l.extend(self.unknown.iter().cloned());
        // Per-client part.
        if let Some((a, bits, remote)) = self.ifconfig_ipv6 {
            l.push(match remote {
                Some(r) => format!("ifconfig-ipv6 {a}/{bits} {r}"),
                None => format!("ifconfig-ipv6 {a}/{bits}"),
            });
        }
        if let Some((a, m)) = self.ifconfig {
            l.push(format!("ifconfig {a} {m}"));
        }
        if let Some(id) = self.peer_id {
            l.push(format!("peer-id {id}"));
        }
        if let Some(t) = &self.auth_token_user {
            l.push(format!("auth-token-user {t}"));
        }
        if let Some(t) = &self.auth_token {
            l.push(format!("auth-token {t}"));
        }
        if let Some(c) = &self.cipher {
            l.push(format!("cipher {c}"));
        }
        if self.key_derivation == Some(KeyDerivation::TlsEkm) {
            l.push("key-derivation tls-ekm".to_string());
        }
        if let Some(flags) = self.protocol_flags {
            let mut s = "protocol-flags".to_string();
            for (n, f) in PROTOCOL_FLAG_NAMES {
                if flags.contains(*f) {
                    let _ = write!(s, " {n}");
                }
            }
            for u in &self.unknown_protocol_flags {
                let _ = write!(s, " {u}");
            }
            l.push(s);
        }
        if let Some(m) = self.tun_mtu {
            l.push(format!("tun-mtu {m}"));
        }
        l
    }
}

fn route_addr_str(a: &RouteAddr) -> String {
    match a {
        RouteAddr::Addr(a) => a.to_string(),
        RouteAddr::VpnGateway => "vpn_gateway".into(),
        RouteAddr::NetGateway => "net_gateway".into(),
        RouteAddr::RemoteHost => "remote_host".into(),
    }
}

fn route_line(r: &Route) -> String {
    let mut s = format!("route {} {}", route_addr_str(&r.network), r.netmask);
    match (&r.gateway, r.metric) {
        (Some(g), Some(m)) => {
            let _ = write!(s, " {} {m}", route_addr_str(g));
        }
        (Some(g), None) => {
            let _ = write!(s, " {}", route_addr_str(g));
        }
        (None, Some(m)) => {
            let _ = write!(s, " default {m}");
        }
        (None, None) => {}
    }
    s
}

impl fmt::Display for PushedOptions {
    /// The option list as one comma-separated string (no `PUSH_REPLY` prefix).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_lines().join(","))
    }
}

/// Server: build the `PUSH_REPLY` message(s) for `lines`.
///
/// Options are packed greedily into parts of at most `part_max` bytes
/// (`PUSH_REPLY` + `,option`s; 2.6 uses [`PUSH_PART_MAX`]). With more
/// than one part, every part but the last ends in `,push-continuation 2`
/// and the last in `,push-continuation 1` (doc §9.2: the final marker is
/// required because 2.6 clients remember the last value).
pub fn build_push_reply(lines: &[String], part_max: usize) -> Result<Vec<String>, PushError> {
    const HEAD: &str = "PUSH_REPLY";
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::from(HEAD);
    for line in lines {
        if line.contains(',') || line.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
            return Err(PushError::Unpushable(line.clone()));
        }
        if HEAD.len() + 1 + line.len() > part_max {
            return Err(PushError::OptionTooLong(line.clone()));
        }
        if cur.len() + 1 + line.len() > part_max {
            parts.push(std::mem::replace(&mut cur, String::from(HEAD)));
        }
        cur.push(',');
        cur.push_str(line);
    }
    parts.push(cur);
    if parts.len() > 1 {
        let last = parts.len() - 1;
        for (i, p) in parts.iter_mut().enumerate() {
            p.push_str(if i == last {
                ",push-continuation 1"
            } else {
                ",push-continuation 2"
            });
        }
    }
    Ok(parts)
}

/// What a client knows after a PUSH_REPLY part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushProgress {
    /// `push-continuation 2`: wait for more parts.
    NeedMore,
    /// The reply is complete.
    Complete(Box<PushedOptions>),
}

/// Client-side accumulation of a multi-part PUSH_REPLY.
#[derive(Debug, Clone, Default)]
pub struct PushReassembly {
    opts: PushedOptions,
    parts: usize,
    complete: bool,
    filter: PullFilter,
    dropped: Vec<String>,
}

impl PushReassembly {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing received yet; parts go through `filter`.
    pub fn with_filter(filter: PullFilter) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// The option lines the filter left out so far, taken once.
    pub fn take_dropped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped)
    }

    /// Whether at least one part arrived (the client then stops sending
    /// PUSH_REQUEST).
    pub fn started(&self) -> bool {
        self.parts > 0
    }

    /// Apply one part's option text (after `PUSH_REPLY,`).
    pub fn handle_part(&mut self, options: &str) -> Result<PushProgress, PushError> {
        if self.complete {
            return Err(PushError::AfterFinal);
        }
        if self.parts >= MAX_PUSH_PARTS {
            return Err(PushError::TooManyParts);
        }
        self.parts += 1;
        self.opts
            .apply_filtered(options, &self.filter, &mut self.dropped)?;
        if self.opts.expects_more() {
            return Ok(PushProgress::NeedMore);
        }
        self.complete = true;
        Ok(PushProgress::Complete(Box::new(self.opts.clone())))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::control_msg::{ControlMessage, split_record};

    /// Observed from 2.6.14 (doc §9.2).
    const OBSERVED: &str = "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500";

    fn options_of(msg: &str) -> String {
        match ControlMessage::parse(msg) {
            ControlMessage::PushReply { options } => options,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn observed_2_6_14_push_reply_parses_to_typed_options() {
        let o = PushedOptions::parse(&options_of(OBSERVED)).unwrap();
        assert_eq!(
            o.route_gateway,
            Some(RouteGateway::Addr(Ipv4Addr::new(10, 8, 0, 1)))
        );
        assert_eq!(o.topology, Some(Topology::Subnet));
        assert_eq!((o.ping, o.ping_restart), (Some(10), Some(60)));
        assert_eq!(
            o.ifconfig,
            Some((Ipv4Addr::new(10, 8, 0, 2), Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(o.peer_id, Some(0));
        assert_eq!(o.cipher.as_deref(), Some("AES-256-GCM"));
        assert_eq!(
            o.protocol_flags,
            Some(ProtocolFlags::CC_EXIT | ProtocolFlags::TLS_EKM | ProtocolFlags::DYN_TLS_CRYPT)
        );
        assert!(o.uses_tls_ekm());
        assert_eq!(o.tun_mtu, Some(1500));
        assert!(o.unknown.is_empty() && o.push_continuation.is_none());
        // The builder reproduces 2.6's exact order.
        assert_eq!(
            build_push_reply(&o.to_lines(), PUSH_PART_MAX).unwrap(),
            vec![OBSERVED.to_string()]
        );
    }

    #[test]
    fn captured_replies_of_every_scenario_parse_and_rebuild_byte_for_byte() {
        // "PUSH: Received control message" lines of the testdata/openvpn-2.6.14 logs.
        for cipher in [
            "AES-256-GCM",
            "AES-256-CBC",
            "AES-128-GCM",
            "CHACHA20-POLY1305",
        ] {
            let text = format!(
                "PUSH_REPLY,route-gateway 10.9.0.1,topology subnet,ifconfig 10.9.0.2 255.255.255.0,peer-id 0,cipher {cipher},protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500"
            );
            let o = PushedOptions::parse(&options_of(&text)).unwrap();
            assert_eq!(o.cipher.as_deref(), Some(cipher));
            assert_eq!(o.ping, None);
            assert_eq!(
                build_push_reply(&o.to_lines(), PUSH_PART_MAX).unwrap(),
                vec![text]
            );
        }
    }

    #[test]
    fn the_observed_reply_survives_framing() {
        let framed = ControlMessage::parse(OBSERVED).encode().unwrap();
        let r = split_record(&framed);
        assert_eq!(r.messages, vec![OBSERVED.to_string()]);
    }

    fn rich() -> PushedOptions {
        PushedOptions {
            topology: Some(Topology::Net30),
            ifconfig: Some((Ipv4Addr::new(10, 8, 0, 6), Ipv4Addr::new(10, 8, 0, 5))),
            ifconfig_ipv6: Some((
                "fd00::1000".parse().unwrap(),
                64,
                Some("fd00::1".parse().unwrap()),
            )),
            route_gateway: Some(RouteGateway::Dhcp),
            routes: vec![
                Route {
                    network: RouteAddr::Addr(Ipv4Addr::new(10, 8, 0, 1)),
                    netmask: Ipv4Addr::BROADCAST,
                    gateway: None,
                    metric: None,
                },
                Route {
                    network: RouteAddr::Addr(Ipv4Addr::new(192, 168, 0, 0)),
                    netmask: Ipv4Addr::new(255, 255, 0, 0),
                    gateway: Some(RouteAddr::NetGateway),
                    metric: Some(5),
                },
                Route {
                    network: RouteAddr::RemoteHost,
                    netmask: Ipv4Addr::BROADCAST,
                    gateway: None,
                    metric: Some(1),
                },
            ],
            routes_ipv6: vec![
                RouteIpv6 {
                    network: "2001:db8::/32".parse().unwrap(),
                    gateway: None,
                    metric: None,
                },
                RouteIpv6 {
                    network: "::/3".parse().unwrap(),
                    gateway: Some("fd00::1".parse().unwrap()),
                    metric: Some(7),
                },
            ],
            route_metric: Some(3),
            redirect_gateway: Some(
                RedirectFlags::DEF1 | RedirectFlags::BYPASS_DHCP | RedirectFlags::IPV6,
            ),
            redirect_private: Some(RedirectFlags::LOCAL),
            dhcp_options: vec![
                DhcpOption::Dns("10.8.0.1".parse().unwrap()),
                DhcpOption::Dns("fd00::53".parse().unwrap()),
                DhcpOption::Domain("corp.example".into()),
                DhcpOption::DomainSearch("example".into()),
                DhcpOption::Wins(Ipv4Addr::new(10, 8, 0, 9)),
                DhcpOption::Ntp(Ipv4Addr::new(10, 8, 0, 10)),
                DhcpOption::Other {
                    kind: "NBT".into(),
                    args: vec!["2".into()],
                },
            ],
            dns: DnsOptions {
                search_domains: vec!["a.example".into(), "b.example".into()],
                servers: vec![DnsServer {
                    priority: -1,
                    addresses: vec!["10.8.0.1".into(), "[fd00::1]:5353".into()],
                    resolve_domains: vec!["corp.example".into()],
                    dnssec: Some("optional".into()),
                    transport: Some("DoT".into()),
                    sni: Some("dns.example".into()),
                }],
            },
            block_ipv6: true,
            ping: Some(10),
            ping_restart: Some(60),
            ping_exit: Some(120),
            explicit_exit_notify: Some(2),
            peer_id: Some(0xFF_FFFE),
            cipher: Some("CHACHA20-POLY1305".into()),
            protocol_flags: Some(ProtocolFlags::CC_EXIT | ProtocolFlags::TLS_EKM),
            unknown_protocol_flags: vec!["future-flag".into()],
            key_derivation: Some(KeyDerivation::TlsEkm),
            tun_mtu: Some(1400),
            auth_token: Some("SESS_ID_AT_abc".into()),
            auth_token_user: Some("YWxpY2U=".into()),
            compression: Some(PushedCompression::Compress(CompressAlgo::StubV2)),
            push_continuation: None,
            unknown: vec!["setenv-safe FOO bar".into()],
        }
    }

    #[test]
    fn builder_round_trips_every_typed_option() {
        let o = rich();
        let parts = build_push_reply(&o.to_lines(), PUSH_PART_MAX).unwrap();
        assert_eq!(parts.len(), 2, "{parts:?}");
        let mut r = PushReassembly::new();
        assert_eq!(
            r.handle_part(&options_of(&parts[0])).unwrap(),
            PushProgress::NeedMore
        );
        let PushProgress::Complete(got) = r.handle_part(&options_of(&parts[1])).unwrap() else {
            panic!("not complete");
        };
        let mut want = o;
        want.push_continuation = Some(1);
        assert_eq!(*got, want);
    }

    #[test]
    fn long_route_list_is_split_into_parts_of_at_most_940_bytes_and_reassembled() {
        let mut o = PushedOptions::parse(&options_of(OBSERVED)).unwrap();
        for i in 0..200u32 {
            o.routes.push(Route {
                network: RouteAddr::Addr(Ipv4Addr::new(10, (i >> 8) as u8 + 100, i as u8, 0)),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                gateway: None,
                metric: None,
            });
        }
        let parts = build_push_reply(&o.to_lines(), PUSH_PART_MAX).unwrap();
        assert!(parts.len() > 5);
        let (last, rest) = parts.split_last().unwrap();
        for p in rest {
            assert!(p.ends_with(",push-continuation 2"));
            assert!(p.len() <= PUSH_PART_MAX + ",push-continuation 2".len());
            assert!(p.len() < 1024, "fits PUSH_BUNDLE_SIZE with its NUL");
        }
        assert!(last.ends_with(",push-continuation 1"));
        // Every part is a valid control message.
        let mut r = PushReassembly::new();
        let mut result = None;
        for p in &parts {
            let framed = crate::proto::control_msg::encode(p).unwrap();
            let text = split_record(&framed).messages.remove(0);
            match r.handle_part(&options_of(&text)).unwrap() {
                PushProgress::NeedMore => assert!(result.is_none()),
                PushProgress::Complete(got) => result = Some(got),
            }
        }
        let got = result.unwrap();
        assert_eq!(got.routes, o.routes);
        assert_eq!(got.ifconfig, o.ifconfig);
        assert_eq!(got.push_continuation, Some(1));
        assert_eq!(r.handle_part("ping 1"), Err(PushError::AfterFinal));
    }

    #[test]
    fn a_final_part_without_continuation_1_after_a_2_keeps_waiting_like_2_6() {
        let mut r = PushReassembly::new();
        assert_eq!(
            r.handle_part("ping 10,push-continuation 2").unwrap(),
            PushProgress::NeedMore
        );
        assert!(r.started());
        assert_eq!(
            r.handle_part("ping-restart 60").unwrap(),
            PushProgress::NeedMore
        );
        assert!(matches!(
            r.handle_part("push-continuation 1").unwrap(),
            PushProgress::Complete(_)
        ));
    }

    #[test]
    fn reassembly_is_bounded() {
        let mut r = PushReassembly::new();
        for _ in 0..MAX_PUSH_PARTS {
            assert_eq!(
                r.handle_part("push-continuation 2").unwrap(),
                PushProgress::NeedMore
            );
        }
        assert_eq!(
            r.handle_part("push-continuation 1"),
            Err(PushError::TooManyParts)
        );
    }

    #[test]
    fn unknown_options_are_kept_and_not_fatal() {
        let o =
            PushedOptions::parse("ping 5,setenv FOO bar,echo hello world,tun-ipv6,register-dns")
                .unwrap();
        assert_eq!(o.ping, Some(5));
        assert_eq!(
            o.unknown,
            vec!["setenv FOO bar", "echo hello world", "register-dns"]
        );
    }

    #[test]
    fn malformed_known_options_are_typed_errors() {
        for bad in [
            "ifconfig 10.8.0.300 255.255.255.0",
            "ifconfig 10.8.0.2",
            "route 10.0.0.0 255.0.0",
            "ping ten",
            "peer-id 16777216",
            "topology star",
            "redirect-gateway def2",
            "route-ipv6 2001:db8::/129",
            "key-derivation prf",
            "compress zstd",
            "push-continuation 3",
            "dns server x address 1.1.1.1",
            "dns server 0 address",
        ] {
            assert!(
                matches!(PushedOptions::parse(bad), Err(PushError::BadOption { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            PushedOptions::parse("dhcp-option DOMAIN \"x"),
            Err(PushError::UnterminatedQuote(_))
        ));
    }

    #[test]
    fn pushed_compression_is_checked_against_allow_compression() {
        use crate::proto::data::compress::{CompAlg, CompressFraming};
        let stub_only = CompressOptions::stub_only_default();
        let mut asym = CompressOptions::default();
        asym.allow_compression("asym").unwrap();
        let mut yes = CompressOptions::default();
        yes.allow_compression("yes").unwrap();
        let cases = [
            ("comp-lzo no", true, CompressFraming::LzoStub),
            ("compress", true, CompressFraming::StubSwap),
            ("compress stub", true, CompressFraming::StubSwap),
            ("compress stub-v2", true, CompressFraming::StubV2),
            ("comp-lzo", false, CompressFraming::Lzo),
            ("comp-lzo yes", false, CompressFraming::Lzo),
            ("comp-lzo adaptive", false, CompressFraming::Lzo),
            ("compress lz4", false, CompressFraming::Lz4),
            ("compress lz4-v2", false, CompressFraming::Lz4V2),
            ("compress lzo", false, CompressFraming::Lzo),
        ];
        for (line, stub, framing) in cases {
            let c = PushedOptions::parse(line).unwrap().compression.unwrap();
            let mut o = stub_only;
            c.apply_to(&mut o).unwrap();
            assert_eq!(o.check().is_ok(), stub, "{line} with the 2.6 default");
            assert_eq!(o.framing(), framing, "{line}");
            for (base, compresses) in [(asym, false), (yes, true)] {
                let mut o = base;
                c.apply_to(&mut o).unwrap();
                assert!(o.check().is_ok(), "{line}");
                assert_eq!(o.compresses(), compresses && !stub, "{line}");
            }
        }
        let c = PushedOptions::parse("comp-lzo")
            .unwrap()
            .compression
            .unwrap();
        let mut o = yes;
        assert!(!c.apply_to(&mut o).unwrap(), "no receive warning with yes");
        assert_eq!(o.alg, CompAlg::Lzo);
    }

    #[test]
    fn key_derivation_alone_also_means_ekm_and_unknown_flags_are_kept() {
        let o = PushedOptions::parse("key-derivation tls-ekm").unwrap();
        assert!(o.uses_tls_ekm());
        let o = PushedOptions::parse("protocol-flags cc-exit aead-epoch shiny").unwrap();
        assert_eq!(
            o.protocol_flags,
            Some(ProtocolFlags::CC_EXIT | ProtocolFlags::AEAD_EPOCH)
        );
        assert_eq!(o.unknown_protocol_flags, vec!["shiny"]);
        assert!(!o.uses_tls_ekm());
    }

    #[test]
    fn builder_refuses_unpushable_options() {
        assert!(matches!(
            build_push_reply(&["route a,b".into()], PUSH_PART_MAX),
            Err(PushError::Unpushable(_))
        ));
        assert!(matches!(
            build_push_reply(&["x".repeat(1000)], PUSH_PART_MAX),
            Err(PushError::OptionTooLong(_))
        ));
        assert_eq!(
            build_push_reply(&[], PUSH_PART_MAX).unwrap(),
            vec!["PUSH_REPLY".to_string()]
        );
    }

    #[test]
    fn words_honour_quotes_and_escapes() {
        assert_eq!(
            split_words(r#"dhcp-option DOMAIN "my \"corp\" net"  'a b'"#).unwrap(),
            vec!["dhcp-option", "DOMAIN", "my \"corp\" net", "a b"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "[ -~]{0,300}") {
            let _ = PushedOptions::parse(&s);
        }

        #[test]
        fn any_route_list_splits_and_reassembles(n in 0usize..300, max in 200usize..=PUSH_PART_MAX) {
            let lines: Vec<String> = (0..n).map(|i| format!("route 10.{}.{}.0 255.255.255.0", i / 256, i % 256)).collect();
            let parts = build_push_reply(&lines, max).unwrap();
            let mut r = PushReassembly::new();
            let mut done = None;
            for p in &parts {
                prop_assert!(p.len() <= max + ",push-continuation 2".len());
                if let PushProgress::Complete(o) = r.handle_part(&options_of(p)).unwrap() {
                    done = Some(o);
                }
            }
            prop_assert_eq!(done.unwrap().routes.len(), n);
        }
    }
}
