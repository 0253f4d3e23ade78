//! DNS settings of a client tunnel: the configured `dhcp-option`/`dns`
//! options merged with the pushed ones as OpenVPN 2.6 does, and, when no
//! `up` script takes care of them, applied to the tun link through
//! systemd-resolved's `resolvectl` (reverted when the tunnel goes down).
//!
//! ```text
//!   config dhcp-option ─┐                       ┌─> up/down env (foreign_option_N, dns_*)
//!   pushed dhcp-option ─┼─> DnsSettings ────────┤
//!   config dns  ┐       │   (2.6 merge rules)   └─> resolvectl dns|domain|dnssec|dnsovertls <dev>
//!   pushed dns  ┴─merge─┘                            (only without an `up` script)
//! ```
//!
//! Nothing here is fatal: a missing `resolvectl`, a failing call or a
//! pushed value we cannot use is a warning, the tunnel keeps running.

use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, DnsSec, DnsServer, DnsTransport};
use crate::host::scripts::{DnsSettings, SSEC_BUILT_IN, ScriptEnv};
use crate::proto::push::PushedOptions;

/// How long one `resolvectl` call may take.
const RESOLVECTL_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings after a push (2.6 `options_postprocess_pull`): configured
/// `dhcp-option` lines then pushed ones (a pushed one with more than two
/// words is dropped, as 2.6 on Linux refuses it); configured search domains
/// then pushed ones; servers in priority order, a pushed server replacing a
/// configured one of the same priority. Also returns warnings to log.
pub fn pulled(cfg: &Config, pushed: &PushedOptions) -> (DnsSettings, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = DnsSettings::from_config(cfg);
    let lines = PushedOptions {
        dhcp_options: pushed.dhcp_options.clone(),
        ..PushedOptions::default()
    }
    .to_lines();
    for l in lines {
        if l.split_whitespace().count() > 3 {
            warnings.push(format!("pushed {l:?} is Windows only: ignored"));
        } else {
            out.dhcp_options.push(l);
        }
    }
    out.dns
        .search_domains
        .extend(pushed.dns.search_domains.iter().cloned());
    let mut from_push: Vec<DnsServer> = pushed
        .dns
        .servers
        .iter()
        .filter_map(|s| DnsServer::from_pushed(s, &mut warnings))
        .collect();
    from_push.sort_by_key(|s| s.priority);
    let mut servers: Vec<DnsServer> = out
        .dns
        .servers
        .drain(..)
        .filter(|c| from_push.iter().all(|p| p.priority != c.priority))
        .collect();
    servers.append(&mut from_push);
    // Stable: equal priorities cannot remain after the filter above.
    servers.sort_by_key(|s| s.priority);
    out.dns.servers = servers;
    (out, warnings)
}

/// [`pulled`], its warnings logged.
pub fn pulled_logged(cfg: &Config, pushed: &PushedOptions) -> DnsSettings {
    let (d, warnings) = pulled(cfg, pushed);
    for w in warnings {
        tracing::warn!("{w}");
    }
    d
}

/// The `up`/`down` variables of `dns` (`foreign_option_N`, `dns_*`).
pub fn script_env(dns: &DnsSettings) -> ScriptEnv {
    let mut env = ScriptEnv::new();
    env.set_dns(dns);
    env
}

/// `resolvectl` in `path` (the daemon's `PATH`), if there is an executable
/// one.
pub fn find_resolvectl(path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|d| d.join("resolvectl"))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// One server address as `resolvectl dns` takes it:
/// `ADDR[:PORT]` / `[ADDR6]:PORT`, with `#SNI` for DNS over TLS.
fn resolvectl_address(a: IpAddr, port: Option<u16>, sni: Option<&str>) -> String {
    let mut s = match port {
        Some(p) => SocketAddr::new(a, p).to_string(),
        None => a.to_string(),
    };
    if let Some(n) = sni {
        s.push('#');
        s.push_str(n);
    }
    s
}

/// The `resolvectl` argument lists that apply `dns` to link `dev`, in
/// order; empty when there is nothing to apply.
///
/// The server used is the first (by priority) that is not DNS over HTTPS,
/// which resolved cannot do; without `dns server`s the `dhcp-option
/// DNS`/`DNS6` addresses are used. Search domains are `dns search-domains`,
/// then `dhcp-option DOMAIN` and `DOMAIN-SEARCH` (the latter only without
/// `dns search-domains`, as in the `foreign_option` rewrite). The server's
/// `resolve-domains` become routing-only domains (`~name`); without them
/// the link gets `~.`, so resolved sends every query to the VPN's servers
/// as OpenVPN's own systemd-resolved hook does.
pub fn resolvectl_calls(dev: &str, dns: &DnsSettings) -> Vec<Vec<String>> {
    let mut legacy_addrs = Vec::new();
    let mut domains: Vec<String> = dns.dns.search_domains.clone();
    // The lines after 2.6's rewrite: `dns` options supersede the
    // `dhcp-option` DNS and DOMAIN-SEARCH ones.
    for l in dns.foreign_options() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["dhcp-option", "DNS" | "DNS6", a] if dns.dns.servers.is_empty() => {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    legacy_addrs.push(ip);
                }
            }
            ["dhcp-option", "DOMAIN" | "DOMAIN-SEARCH", d] => domains.push((*d).to_string()),
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    domains.retain(|d| seen.insert(d.clone()));
    let server = dns
        .dns
        .servers
        .iter()
        .find(|s| s.transport != Some(DnsTransport::Https) && !s.addresses.is_empty());
    let addrs: Vec<String> = match server {
        Some(s) => {
            let sni = match s.transport {
                Some(DnsTransport::Tls) => s.sni.as_deref(),
                _ => None,
            };
            s.addresses
                .iter()
                .map(|(a, p)| resolvectl_address(*a, *p, sni))
                .collect()
        }
        None => legacy_addrs.iter().map(ToString::to_string).collect(),
    };
    let cmd = |verb: &str, rest: Vec<String>| {
        let mut v = vec![verb.to_string(), dev.to_string()];
        v.extend(rest);
        v
    };
    let mut calls = Vec::new();
    if !addrs.is_empty() {
        calls.push(cmd("dns", addrs));
        match server.filter(|s| !s.resolve_domains.is_empty()) {
            Some(s) => {
                for r in &s.resolve_domains {
                    if !domains.contains(r) {
                        domains.push(format!("~{r}"));
                    }
                }
            }
            None => domains.push("~.".into()),
        }
    }
    if !domains.is_empty() {
        calls.push(cmd("domain", domains));
    }
    if let Some(s) = server {
        if let Some(d) = s.dnssec {
            let v = match d {
                DnsSec::Yes => "yes",
                DnsSec::No => "no",
                DnsSec::Optional => "allow-downgrade",
            };
            calls.push(cmd("dnssec", vec![v.into()]));
        }
        if let Some(t) = s.transport {
            let v = if t == DnsTransport::Tls { "yes" } else { "no" };
            calls.push(cmd("dnsovertls", vec![v.into()]));
        }
    }
    calls
}

/// Runs `resolvectl args`; a warning when it fails.
async fn run_resolvectl(program: &Path, args: &[String]) -> bool {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(RESOLVECTL_TIMEOUT, cmd.output()).await {
        Ok(Ok(o)) if o.status.success() => true,
        Ok(Ok(o)) => {
            tracing::warn!(
                args = %args.join(" "),
                code = ?o.status.code(),
                stderr = %String::from_utf8_lossy(&o.stderr).trim(),
                "resolvectl failed"
            );
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(args = %args.join(" "), error = %e, "cannot run resolvectl");
            false
        }
        Err(_) => {
            tracing::warn!(args = %args.join(" "), "resolvectl timed out");
            false
        }
    }
}

/// The link whose resolved settings we changed, to revert on the way down.
#[derive(Debug, Default)]
pub struct ResolvedLink {
    applied: Option<(PathBuf, String)>,
}

impl ResolvedLink {
    /// Applies `dns` to `dev` with `resolvectl` when there is no `up`
    /// script, `script-security` allows built-in programs and `resolvectl`
    /// is in the daemon's `PATH`. Settings applied earlier (by a previous
    /// connection) are reverted when there is nothing to apply now or the
    /// device changed.
    pub async fn apply(&mut self, cfg: &Config, security: u8, dev: &str, dns: &DnsSettings) {
        if cfg.scripts.up.is_some() || security < SSEC_BUILT_IN {
            return;
        }
        let path = std::env::var_os("PATH");
        self.apply_with(|| find_resolvectl(path.as_deref()), dev, dns)
            .await;
    }

    /// [`apply`](Self::apply) once the checks passed; `find` locates
    /// `resolvectl` (only looked for when there is something to apply).
    async fn apply_with(
        &mut self,
        find: impl FnOnce() -> Option<PathBuf>,
        dev: &str,
        dns: &DnsSettings,
    ) {
        let calls = resolvectl_calls(dev, dns);
        if calls.is_empty() {
            // A reconnect to a server that no longer pushes DNS settings.
            self.revert().await;
            return;
        }
        let Some(program) = find() else {
            tracing::info!("no resolvectl in PATH: pushed DNS settings not applied");
            return;
        };
        if self.applied.as_ref().is_some_and(|(_, d)| d != dev) {
            self.revert().await;
        }
        // Even a partly applied configuration must be reverted.
        self.applied = Some((program.clone(), dev.to_string()));
        let mut ok = true;
        for args in &calls {
            ok &= run_resolvectl(&program, args).await;
        }
        if ok {
            tracing::info!(dev, "DNS settings applied with resolvectl");
        }
    }

    /// `resolvectl revert <dev>` if [`apply`](Self::apply) changed it.
    pub async fn revert(&mut self) {
        if let Some((program, dev)) = self.applied.take() {
            run_resolvectl(&program, &["revert".to_string(), dev]).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loader;

    fn config(extra: &str) -> Config {
        Loader::new("/nonexistent-base")
            .check_files(false)
            .load_str(
                "t.conf",
                &format!(
                    "client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n{extra}"
                ),
            )
            .unwrap()
    }

    fn push(lines: &[&str]) -> PushedOptions {
        PushedOptions::parse(&lines.join(",")).unwrap()
    }

    #[test]
    fn pushed_options_follow_configured_ones() {
        let cfg = config(
            "dhcp-option DOMAIN local.example\ndns search-domains cfg.example\n\
             dns server 1 address 10.1.1.1\ndns server 9 address 10.9.9.9\n",
        );
        let p = push(&[
            "dhcp-option DNS 10.8.0.1",
            "dhcp-option PROXY_HTTP proxy 8080",
            "dns search-domains pushed.example",
            "dns server 9 address 10.8.0.53:5353",
            "dns server 9 dnssec yes",
            "dns server 0 address fd00::53",
            "dns server 3 transport DoT",
            "dns server -1 address 10.6.6.6",
        ]);
        let (d, warnings) = pulled(&cfg, &p);
        assert_eq!(
            d.dhcp_options,
            [
                "dhcp-option DOMAIN local.example",
                "dhcp-option DNS 10.8.0.1"
            ]
        );
        assert_eq!(d.dns.search_domains, ["cfg.example", "pushed.example"]);
        let prio: Vec<i8> = d.dns.servers.iter().map(|s| s.priority).collect();
        assert_eq!(prio, [0, 1, 9], "sorted, the pushed 9 replaces ours");
        let s9 = &d.dns.servers[2];
        assert_eq!(
            s9.addresses,
            [("10.8.0.53".parse().unwrap(), Some(5353))],
            "pushed server 9 wins"
        );
        assert_eq!(s9.dnssec, Some(DnsSec::Yes));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("PROXY_HTTP"), "{warnings:?}");
        assert!(warnings[1].contains("server 3"), "{warnings:?}");
        assert!(warnings[2].contains("server -1"), "{warnings:?}");
        assert_eq!(
            d.foreign_options(),
            [
                "dhcp-option DOMAIN local.example",
                "dhcp-option DNS6 fd00::53",
                "dhcp-option DNS 10.1.1.1",
                "dhcp-option DNS 10.8.0.53",
                "dhcp-option DOMAIN-SEARCH cfg.example",
                "dhcp-option DOMAIN-SEARCH pushed.example",
            ]
        );
    }

    fn strs(calls: &[Vec<String>]) -> Vec<String> {
        calls.iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn legacy_dhcp_options_become_resolvectl_calls() {
        let d = DnsSettings {
            dhcp_options: vec![
                "dhcp-option DNS 10.8.0.1".into(),
                "dhcp-option DNS6 fd00::1".into(),
                "dhcp-option DOMAIN corp.example".into(),
                "dhcp-option DOMAIN-SEARCH lab.example".into(),
                "dhcp-option DOMAIN corp.example".into(),
                "dhcp-option NTP 10.8.0.9".into(),
            ],
            ..DnsSettings::default()
        };
        assert_eq!(
            strs(&resolvectl_calls("tun3", &d)),
            [
                "dns tun3 10.8.0.1 fd00::1",
                "domain tun3 corp.example lab.example ~.",
            ]
        );
        assert!(resolvectl_calls("tun3", &DnsSettings::default()).is_empty());
        let only_ntp = DnsSettings {
            dhcp_options: vec!["dhcp-option NTP 10.8.0.9".into()],
            ..DnsSettings::default()
        };
        assert!(resolvectl_calls("tun3", &only_ntp).is_empty());
    }

    #[test]
    fn dns_servers_pick_the_first_resolved_can_use() {
        let cfg = config(
            "dhcp-option DNS 10.8.0.1\ndns search-domains corp.example\n\
             dns server 1 address 10.0.0.1\ndns server 1 transport DoH\n\
             dns server 2 address 10.0.0.53:853 fd00::53\ndns server 2 transport DoT\n\
             dns server 2 sni dns.corp.example\ndns server 2 dnssec optional\n\
             dns server 2 resolve-domains corp.example lab.example\n",
        );
        let d = DnsSettings::from_config(&cfg);
        assert_eq!(
            strs(&resolvectl_calls("tun0", &d)),
            [
                "dns tun0 10.0.0.53:853#dns.corp.example fd00::53#dns.corp.example",
                "domain tun0 corp.example ~lab.example",
                "dnssec tun0 allow-downgrade",
                "dnsovertls tun0 yes",
            ]
        );
    }

    #[tokio::test]
    async fn resolved_link_applies_reverts_and_survives_failures() {
        let dir = std::env::temp_dir().join(format!("vpn-dns-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("calls");
        let fake = dir.join("resolvectl");
        // Records every call; `dnssec` fails, which must not stop the rest.
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\n[ \"$1\" != dnssec ]\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = config("dns server 0 address 10.0.0.1\ndns server 0 dnssec yes\n");
        let dns = DnsSettings::from_config(&cfg);
        let mut link = ResolvedLink::default();
        let found = || Some(fake.clone());
        link.apply_with(found, "tun0", &dns).await;
        // The next connection's server pushes nothing: revert, once.
        link.apply_with(found, "tun0", &DnsSettings::default())
            .await;
        link.revert().await;
        // A device change reverts the old one before applying.
        link.apply_with(found, "tun0", &dns).await;
        link.apply_with(found, "tun1", &dns).await;
        link.revert().await;
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            calls,
            "dns tun0 10.0.0.1\ndomain tun0 ~.\ndnssec tun0 yes\nrevert tun0\n\
             dns tun0 10.0.0.1\ndomain tun0 ~.\ndnssec tun0 yes\nrevert tun0\n\
             dns tun1 10.0.0.1\ndomain tun1 ~.\ndnssec tun1 yes\nrevert tun1\n"
        );
        // No resolvectl: nothing applied, nothing to revert.
        let mut none = ResolvedLink::default();
        none.apply_with(|| None, "tun0", &dns).await;
        assert!(none.applied.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resolvectl_is_found_only_as_an_executable_in_path() {
        let dir = std::env::temp_dir().join(format!("vpn-dns-test-{}", std::process::id()));
        let empty = dir.join("empty");
        let with = dir.join("with");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(&with).unwrap();
        let exe = with.join("resolvectl");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = std::env::join_paths([&empty, &with]).unwrap();
        assert_eq!(find_resolvectl(Some(&path)), None, "not executable");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_resolvectl(Some(&path)), Some(exe));
        assert_eq!(find_resolvectl(None), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
