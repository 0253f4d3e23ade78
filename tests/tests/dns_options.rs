//! Pushed `dhcp-option` and `dns` options reach the client's system side:
//! the `up`/`down` scripts get `foreign_option_N` and `dns_*` exactly as
//! stock openvpn 2.6 sets them (both clients run the same dump script
//! against one server and their dumps are compared), and without an `up`
//! script our client hands them to `resolvectl`.
//!
//! The resolvectl test puts a fake `resolvectl` (a script that records its
//! arguments) first in the daemon's `PATH`; the host's real resolver is
//! never touched.
//!
//! Needs root, `openvpn` and the daemon binary (`cargo build -p vpn-daemon`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::openvpn::{Cipher, Impl, Proto, TlsWrap, TunnelSpec, client_config};
use tests::topology::{READY_TIMEOUT, SERVER_ADDR, Tunnel};
use tests::{NsProcess, daemon_binary, require_root};

/// What the server pushes (one line each) besides its defaults.
const PUSHES: &[&str] = &[
    "push \"dhcp-option DNS 10.8.0.53\"",
    "push \"dhcp-option DOMAIN corp.example\"",
    "push \"dhcp-option NTP 10.8.0.9\"",
    "push \"dns search-domains search.example\"",
    "push \"dns server 1 address 10.8.0.1 [fd00:8::1]:5353\"",
    "push \"dns server 1 resolve-domains corp.example\"",
    "push \"dns server 0 address 10.8.0.2\"",
    "push \"dns server 0 dnssec yes\"",
    "push \"dns server 0 transport DoH\"",
];

/// A client-side option that comes before the pushed ones.
const CLIENT_DHCP: &str = "dhcp-option DOMAIN-SEARCH local.example";

fn spec() -> TunnelSpec {
    let mut s = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    s.server_extra = PUSHES.iter().map(|l| (*l).to_string()).collect();
    s
}

fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A hook that writes the DNS part of its environment, sorted, to
/// `<dir>/<script_type>-<tag>.env`.
fn dump_script(dir: &Path) -> PathBuf {
    let p = dir.join("dump.sh");
    write_exec(
        &p,
        &format!(
            "#!/bin/sh\nenv | grep -E '^(foreign_option_|dns_)' | LC_ALL=C sort > {}/\"$script_type-$1.env\"\n",
            dir.display()
        ),
    );
    p
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits (bounded) until `path` has content.
fn wait_file(path: &Path, timeout: Duration) -> String {
    let end = vpn_daemon::io::clock::now() + timeout;
    loop {
        let t = read(path);
        if !t.is_empty() || vpn_daemon::io::clock::now() >= end {
            return t;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The environment 2.6 gives an `up` script for [`PUSHES`] after
/// [`CLIENT_DHCP`]: the dhcp-option DNS and DOMAIN-SEARCH lines replaced by
/// the `dns` servers (priority order) and search domains.
const EXPECTED_ENV: &str = "\
dns_search_domain_1=search.example
dns_server_1_address_1=10.8.0.2
dns_server_1_dnssec=yes
dns_server_1_transport=DoH
dns_server_2_address_1=10.8.0.1
dns_server_2_address_2=fd00:8::1
dns_server_2_port_2=5353
dns_server_2_resolve_domain_1=corp.example
foreign_option_1=dhcp-option DOMAIN corp.example
foreign_option_2=dhcp-option NTP 10.8.0.9
foreign_option_3=dhcp-option DNS 10.8.0.2
foreign_option_4=dhcp-option DNS 10.8.0.1
foreign_option_5=dhcp-option DNS6 fd00:8::1
foreign_option_6=dhcp-option DOMAIN-SEARCH search.example
";

/// Stock openvpn and our client, side by side on one openvpn server, each
/// with `up`/`down` = the dump script: the same DNS environment, and the
/// one 2.6's sources describe.
#[test]
fn up_script_env_matches_openvpn() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 2);
    let dir = t.topo.path().to_path_buf();
    let dump = dump_script(&dir);
    for (i, (imp, tag)) in [(Impl::OpenVpn, "openvpn"), (Impl::Ours, "ours")]
        .into_iter()
        .enumerate()
    {
        let text = format!(
            "{}{CLIENT_DHCP}\nscript-security 2\nup \"{d} {tag}\"\ndown \"{d} {tag}\"\n",
            client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None),
            d = dump.display()
        );
        t.add_client(i, imp, &text).wait_ready(READY_TIMEOUT);
    }
    let theirs = wait_file(&dir.join("up-openvpn.env"), Duration::from_secs(5));
    let ours = wait_file(&dir.join("up-ours.env"), Duration::from_secs(5));
    assert_eq!(theirs, EXPECTED_ENV, "openvpn 2.6 as read from its sources");
    assert_eq!(ours, theirs, "our up env differs from openvpn's");
    // `down` sees the same variables.
    t.clients[1].stop();
    let down = wait_file(&dir.join("down-ours.env"), Duration::from_secs(5));
    assert_eq!(down, theirs, "our down env");
}

/// Without an `up` script our client applies the settings with
/// `resolvectl` on tun0 and reverts them when it exits.
#[test]
fn resolvectl_applies_and_reverts() {
    if !require_root() {
        return;
    }
    let t = Tunnel::start_server(spec(), Impl::Ours, 1);
    let dir = t.topo.path().to_path_buf();
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).expect("mkdir fakebin");
    let calls = dir.join("resolvectl.calls");
    let fake = bin.join("resolvectl");
    write_exec(
        &fake,
        &format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    );
    // The fake must be what the daemon finds first: never the real one.
    assert!(
        fake.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    );
    let path = format!("PATH={}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let conf = dir.join("client0.conf");
    std::fs::write(
        &conf,
        format!(
            "{}{CLIENT_DHCP}\n",
            client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None)
        ),
    )
    .expect("write client config");
    let log = dir.join("client0.log");
    let daemon = daemon_binary().display().to_string();
    let conf_s = conf.display().to_string();
    let mut client = NsProcess::spawn(
        &t.topo.clients[0],
        Path::new("/usr/bin/env"),
        &[&path, &daemon, "--config", &conf_s],
        &log,
    );
    let applied = wait_file(&calls, READY_TIMEOUT);
    // All calls of one connection are made back to back; give the last a moment.
    std::thread::sleep(Duration::from_millis(500));
    let applied_now = read(&calls);
    assert!(!applied.is_empty(), "no resolvectl call\n{}", read(&log));
    // Server 0 is DNS over HTTPS, which resolved cannot do: server 1 is used.
    assert_eq!(
        applied_now,
        "dns tun0 10.8.0.1 [fd00:8::1]:5353\ndomain tun0 search.example corp.example\n",
        "{}",
        read(&log)
    );
    let exit = client.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "{}", read(&log));
    assert_eq!(
        read(&calls),
        format!("{applied_now}revert tun0\n"),
        "{}",
        read(&log)
    );
}

/// A server's own `dhcp-option`/`dns` lines reach its `up` script as
/// openvpn 2.6 exports them for an instance that does not pull.
#[test]
fn server_up_env_matches_openvpn() {
    if !require_root() {
        return;
    }
    let scratch = tests::topology::TempDir::new("vpndnssrv");
    let dump = dump_script(scratch.path());
    let mut envs = Vec::new();
    for (imp, tag) in [(Impl::OpenVpn, "openvpn"), (Impl::Ours, "ours")] {
        let mut s = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
        s.server_extra = vec![
            "dhcp-option DNS 10.1.1.1".into(),
            "dhcp-option DOMAIN srv.example".into(),
            "dhcp-option DOMAIN-SEARCH old.example".into(),
            "dns search-domains s.example".into(),
            "dns server 2 address 10.2.2.2:5353".into(),
            "script-security 2".into(),
            format!("up \"{} {tag}\"", dump.display()),
        ];
        let _t = Tunnel::start_server(s, imp, 0);
        envs.push(wait_file(
            &scratch.path().join(format!("up-{tag}.env")),
            Duration::from_secs(5),
        ));
    }
    assert_eq!(
        envs[0],
        "dns_search_domain_1=s.example\n\
         dns_server_1_address_1=10.2.2.2\n\
         dns_server_1_port_1=5353\n\
         foreign_option_1=dhcp-option DOMAIN srv.example\n\
         foreign_option_2=dhcp-option DNS 10.2.2.2\n\
         foreign_option_3=dhcp-option DOMAIN-SEARCH s.example\n",
        "openvpn 2.6 as read from its sources"
    );
    assert_eq!(
        envs[1], envs[0],
        "our server's up env differs from openvpn's"
    );
}
