//! DNS settings (2.6's `dns` option) in their checked form: what the
//! configuration gives and what a pushed `dns` option becomes once its
//! text ([`crate::proto::push::DnsServer`], kept as the server wrote it
//! for the scripts' `foreign_option_N`) has been checked.

use std::net::{IpAddr, SocketAddr};

use crate::proto::push;

/// `dns server N dnssec ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsSec {
    /// `yes`.
    Yes,
    /// `no`.
    No,
    /// `optional`.
    Optional,
}

/// `dns server N transport ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    /// `plain`.
    Plain,
    /// `DoH`.
    Https,
    /// `DoT`.
    Tls,
}

/// One `dns server PRIORITY ...` group (2.6 syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServer {
    /// Priority, -128..=127; lower is preferred.
    pub priority: i8,
    /// `address ADDR[:PORT]...` (up to 8).
    pub addresses: Vec<(IpAddr, Option<u16>)>,
    /// `resolve-domains DOMAIN...`.
    pub resolve_domains: Vec<String>,
    /// `dnssec yes|no|optional`.
    pub dnssec: Option<DnsSec>,
    /// `transport plain|DoH|DoT`.
    pub transport: Option<DnsTransport>,
    /// `sni NAME`.
    pub sni: Option<String>,
}

/// All `dns` directives together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    /// `dns search-domains DOMAIN...`.
    pub search_domains: Vec<String>,
    /// Server groups, sorted by priority.
    pub servers: Vec<DnsServer>,
}

/// `ADDR`, `ADDR:PORT`, `[ADDR6]:PORT` or a bare IPv6 address (2.6
/// `dns_server_addr_parse`); port 0 is refused.
fn parse_server_address(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let sa = s.parse::<SocketAddr>().ok()?;
    (sa.port() != 0).then(|| (sa.ip(), Some(sa.port())))
}

impl DnsServer {
    /// A pushed `dns server` block in the checked form; `None` (with the
    /// reasons in `warnings`) when it has no usable address, which 2.6
    /// refuses too (`dns_options_verify`).
    pub fn from_pushed(s: &push::DnsServer, warnings: &mut Vec<String>) -> Option<DnsServer> {
        let p = s.priority;
        if p < 0 {
            // 2.6 keeps negative priorities for the local configuration.
            warnings.push(format!("pushed dns server {p}: negative priority refused"));
            return None;
        }
        let mut addresses = Vec::new();
        for a in &s.addresses {
            match parse_server_address(a) {
                Some(x) => addresses.push(x),
                None => warnings.push(format!("pushed dns server {p}: bad address {a:?}")),
            }
        }
        if addresses.is_empty() {
            warnings.push(format!("pushed dns server {p} has no address: ignored"));
            return None;
        }
        let dnssec = match s.dnssec.as_deref() {
            None => None,
            Some("yes") => Some(DnsSec::Yes),
            Some("no") => Some(DnsSec::No),
            Some("optional") => Some(DnsSec::Optional),
            Some(o) => {
                warnings.push(format!("pushed dns server {p}: unknown dnssec {o:?}"));
                None
            }
        };
        let transport = match s.transport.as_deref() {
            None => None,
            Some("plain") => Some(DnsTransport::Plain),
            Some("DoH") => Some(DnsTransport::Https),
            Some("DoT") => Some(DnsTransport::Tls),
            Some(o) => {
                warnings.push(format!("pushed dns server {p}: unknown transport {o:?}"));
                None
            }
        };
        Some(DnsServer {
            priority: p,
            addresses,
            resolve_domains: s.resolve_domains.clone(),
            dnssec,
            transport,
            sni: s.sni.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_parse_like_2_6() {
        assert_eq!(
            parse_server_address("10.0.0.1"),
            Some(("10.0.0.1".parse().unwrap(), None))
        );
        assert_eq!(
            parse_server_address("10.0.0.1:853"),
            Some(("10.0.0.1".parse().unwrap(), Some(853)))
        );
        assert_eq!(
            parse_server_address("[fd00::1]:53"),
            Some(("fd00::1".parse().unwrap(), Some(53)))
        );
        assert_eq!(
            parse_server_address("fd00::1"),
            Some(("fd00::1".parse().unwrap(), None))
        );
        for bad in ["10.0.0.1:0", "dns.example", "[fd00::1]", "10.0.0.1:x", ""] {
            assert_eq!(parse_server_address(bad), None, "{bad}");
        }
    }
}
