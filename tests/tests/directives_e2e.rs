//! The directives real configurations carry, end to end against stock
//! openvpn 2.6: `route-up` (its environment and its place after `up` and
//! the routes), `route-metric`, `route-delay`, `down-pre`, `tls-exit`,
//! `peer-fingerprint` without `ca`, `ns-cert-type` / `remote-cert-ku` /
//! `remote-cert-eku`. Where both implementations can run the same client
//! config, both do, against one openvpn server, and their observations are
//! compared.
//!
//! Needs root, `openvpn` and the daemon binary (`cargo build -p vpn-daemon`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::openvpn::{Cipher, Impl, Proto, TlsWrap, TunnelSpec, client_config};
use tests::require_root;
use tests::topology::{READY_TIMEOUT, SERVER_ADDR, Tunnel};

fn spec() -> TunnelSpec {
    let mut s = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    s.server_extra = vec!["push \"route 10.77.0.0 255.255.0.0 vpn_gateway 5\"".into()];
    s
}

fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A hook writing, for `$script_type` and tag `$1`: the route-related
/// environment (sorted) to `<type>-<tag>.env`, the routing table to
/// `<type>-<tag>.routes`, whether tun0 exists to `<type>-<tag>.dev`, and
/// the time to `<type>-<tag>.t`.
fn dump_script(dir: &Path) -> PathBuf {
    let p = dir.join("dump.sh");
    let d = dir.display();
    write_exec(
        &p,
        &format!(
            "#!/bin/sh\n\
             f={d}/\"$script_type-$1\"\n\
             env | grep -E '^(route_|redirect_gateway=|script_type=|script_context=|dev=|tun_mtu=|ifconfig_netmask=)' | LC_ALL=C sort > \"$f.env.tmp\"\n\
             ip -4 route show > \"$f.routes\"\n\
             if ip link show tun0 >/dev/null 2>&1; then echo present; else echo absent; fi > \"$f.dev\"\n\
             date +%s.%N > \"$f.t\"\n\
             mv \"$f.env.tmp\" \"$f.env\"\n"
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

fn client_text(t: &Tunnel, extra: &str) -> String {
    format!(
        "{}{extra}",
        client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None)
    )
}

fn route_line<'a>(routes: &'a str, prefix: &str) -> Option<&'a str> {
    routes.lines().find(|l| l.starts_with(prefix))
}

/// `route-up` runs after `up` and after the routes, with 2.6's
/// environment; `route-metric` is the metric of routes without one.
/// openvpn and our client run the same config side by side.
#[test]
fn route_up_env_order_and_route_metric_match_openvpn() {
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
        let text = client_text(
            &t,
            &format!(
                "route 10.66.0.0 255.255.255.0\nroute-metric 9\nscript-security 2\nup \"{d} {tag}\"\nroute-up \"{d} {tag}\"\n",
                d = dump.display()
            ),
        );
        t.add_client(i, imp, &text).wait_ready(READY_TIMEOUT);
    }
    let wait = Duration::from_secs(10);
    let theirs = wait_file(&dir.join("route-up-openvpn.env"), wait);
    let ours = wait_file(&dir.join("route-up-ours.env"), wait);
    assert!(
        theirs.contains("route_network_1=10.66.0.0\n") && theirs.contains("route_metric_1=9\n"),
        "openvpn's route-up env:\n{theirs}"
    );
    assert_eq!(ours, theirs, "our route-up env differs from openvpn's");
    for tag in ["openvpn", "ours"] {
        let up = read(&dir.join(format!("up-{tag}.routes")));
        let after = read(&dir.join(format!("route-up-{tag}.routes")));
        assert!(
            route_line(&up, "10.66.0.0/24").is_none(),
            "{tag}: route already there when up ran:\n{up}"
        );
        let own = route_line(&after, "10.66.0.0/24")
            .unwrap_or_else(|| panic!("{tag}: no route when route-up ran:\n{after}"));
        assert!(own.contains("metric 9"), "{tag}: {own}");
        // The pushed route keeps its own metric.
        let pushed = route_line(&after, "10.77.0.0/16")
            .unwrap_or_else(|| panic!("{tag}: no pushed route:\n{after}"));
        assert!(pushed.contains("metric 5"), "{tag}: {pushed}");
    }
}

/// `route-delay N`: the routes and `route-up` come N seconds after `up`
/// (openvpn: N less up to one second of its coarse timer), for both
/// implementations.
#[test]
fn route_delay_adds_routes_and_runs_route_up_later() {
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
        let text = client_text(
            &t,
            &format!(
                "route 10.66.0.0 255.255.255.0\nroute-delay 2\nscript-security 2\nup \"{d} {tag}\"\nroute-up \"{d} {tag}\"\n",
                d = dump.display()
            ),
        );
        t.add_client(i, imp, &text).wait_ready(READY_TIMEOUT);
    }
    for tag in ["openvpn", "ours"] {
        wait_file(
            &dir.join(format!("route-up-{tag}.env")),
            Duration::from_secs(15),
        );
        let time = |kind: &str| -> f64 {
            read(&dir.join(format!("{kind}-{tag}.t")))
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{tag}: no {kind} time"))
        };
        let gap = time("route-up") - time("up");
        // 2.6's timers tick in whole seconds from a coarse clock, so its
        // delay can be up to a second short; ours waits the full N.
        let least = if tag == "openvpn" { 1.0 } else { 2.0 };
        assert!(gap >= least, "{tag}: route-up only {gap:.2} s after up");
        let after = read(&dir.join(format!("route-up-{tag}.routes")));
        assert!(
            route_line(&after, "10.66.0.0/24").is_some(),
            "{tag}: no route when route-up ran:\n{after}"
        );
    }
}

/// 2.6 closes the device before `down`; `down-pre` runs `down` first.
#[test]
fn down_pre_runs_down_while_the_device_exists() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 4);
    let dir = t.topo.path().to_path_buf();
    let dump = dump_script(&dir);
    let runs = [
        (Impl::OpenVpn, "openvpn", ""),
        (Impl::Ours, "ours", ""),
        (Impl::OpenVpn, "openvpn-pre", "down-pre\n"),
        (Impl::Ours, "ours-pre", "down-pre\n"),
    ];
    for (i, (imp, tag, extra)) in runs.into_iter().enumerate() {
        let text = client_text(
            &t,
            &format!(
                "{extra}script-security 2\ndown \"{d} {tag}\"\n",
                d = dump.display()
            ),
        );
        t.add_client(i, imp, &text).wait_ready(READY_TIMEOUT);
    }
    for c in &mut t.clients {
        c.stop();
    }
    let seen = |tag: &str| wait_file(&dir.join(format!("down-{tag}.dev")), Duration::from_secs(5));
    assert_eq!(seen("openvpn").trim(), "absent", "openvpn without down-pre");
    assert_eq!(
        seen("ours").trim(),
        seen("openvpn").trim(),
        "ours without down-pre"
    );
    assert_eq!(
        seen("openvpn-pre").trim(),
        "present",
        "openvpn with down-pre"
    );
    assert_eq!(seen("ours-pre").trim(), "present", "ours with down-pre");
}

/// `tls-exit`: a server certificate our CA did not sign ends the client
/// (status 0, as 2.6's soft SIGTERM) instead of retrying.
#[test]
fn tls_exit_ends_the_client_like_openvpn() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 2);
    t.pki.foreign_client();
    let wrong_ca = t.pki.dir.join("evil-ca.crt");
    for (i, imp) in [Impl::OpenVpn, Impl::Ours].into_iter().enumerate() {
        let text = client_text(&t, "tls-exit\nhand-window 20\n").replace(
            &format!("ca {}", t.pki.ca.display()),
            &format!("ca {}", wrong_ca.display()),
        );
        let c = t.add_client(i, imp, &text);
        let status = c.wait_exit(Duration::from_secs(30));
        let log = c.log_text();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{} did not exit 0 on the TLS failure; log:\n{log}",
            imp.label()
        );
    }
}

/// The SHA-256 fingerprint of a certificate file, `AB:CD:...`.
fn fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .split_once('=')
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
}

/// `peer-fingerprint` without `ca` connects to the openvpn server whose
/// certificate it names (and carries traffic), and refuses it otherwise;
/// the extra certificate checks pass on the right certificate.
#[test]
fn peer_fingerprint_and_certificate_checks_against_openvpn() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 2);
    let fp = fingerprint(&t.pki.server_cert);
    let no_ca = |t: &Tunnel, extra: &str| {
        client_text(t, extra).replace(&format!("ca {}\n", t.pki.ca.display()), "")
    };
    let good = no_ca(
        &t,
        &format!(
            "<peer-fingerprint>\n# the server\n{fp}\n</peer-fingerprint>\nns-cert-type server\nremote-cert-ku 80\nremote-cert-eku \"TLS Web Server Authentication\"\n"
        ),
    );
    assert!(!good.contains("\nca "), "{good}");
    t.add_client(0, Impl::Ours, &good).wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    // Same certificate, one wrong byte in the fingerprint: refused (and
    // tls-exit makes the refusal visible as an exit).
    let wrong = format!(
        "{}{}",
        if fp.starts_with("00") { "01" } else { "00" },
        &fp[2..]
    );
    let bad = no_ca(&t, &format!("peer-fingerprint {wrong}\ntls-exit\n"));
    let c = t.add_client(1, Impl::Ours, &bad);
    let status = c.wait_exit(Duration::from_secs(30));
    let log = c.log_text();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "log:\n{log}");
    assert!(log.contains("fingerprint"), "log:\n{log}");
}

/// `auth-retry`: `none` ends the client with status 0 on AUTH_FAILED, as
/// 2.6; `interact` reads the `auth-user-pass` file again and gets in once
/// it holds the right password (both implementations); `nointeract` keeps
/// retrying with the same credentials (ours: still running after two
/// refusals).
#[test]
fn auth_retry_exit_retry_and_reread_like_openvpn() {
    if !require_root() {
        return;
    }
    let mut s = spec();
    let dir0 = tests::topology::TempDir::new("authretry");
    s.verify_script = Some(tests::openvpn::write_verify_script(
        dir0.path(),
        "alice",
        "s3cret",
    ));
    let mut t = Tunnel::start_server(s, Impl::OpenVpn, 5);
    let dir = t.topo.path().to_path_buf();
    let creds = |name: &str, pass: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("alice\n{pass}\n")).unwrap();
        p
    };
    // none: exit 0, both.
    for (i, imp) in [Impl::OpenVpn, Impl::Ours].into_iter().enumerate() {
        let f = creds(&format!("none-{i}.txt"), "wrong");
        let text = client_text(&t, &format!("auth-user-pass {}\n", f.display()));
        let c = t.add_client(i, imp, &text);
        let status = c.wait_exit(Duration::from_secs(30));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{}: log:\n{}",
            imp.label(),
            c.log_text()
        );
    }
    // interact: the file is read again after AUTH_FAILED.
    for (i, imp) in [(2, Impl::OpenVpn), (3, Impl::Ours)] {
        let f = creds(&format!("interact-{i}.txt"), "wrong");
        let text = client_text(
            &t,
            &format!("auth-user-pass {}\nauth-retry interact\n", f.display()),
        );
        let c = t.add_client(i, imp, &text);
        assert!(
            c.wait_for_nth("AUTH_FAILED", 1, Duration::from_secs(30)),
            "{}: no AUTH_FAILED; log:\n{}",
            imp.label(),
            c.log_text()
        );
        std::fs::write(&f, "alice\ns3cret\n").unwrap();
        c.wait_ready(READY_TIMEOUT);
    }
    // nointeract: keeps trying with the same (wrong) credentials.
    let f = creds("nointeract.txt", "wrong");
    let text = client_text(
        &t,
        &format!("auth-user-pass {}\nauth-retry nointeract\n", f.display()),
    );
    let c = t.add_client(4, Impl::Ours, &text);
    assert!(
        c.wait_for_nth("AUTH_FAILED", 2, Duration::from_secs(30)),
        "no second AUTH_FAILED; log:\n{}",
        c.log_text()
    );
    assert!(c.exited().is_none(), "log:\n{}", c.log_text());
}

/// `push-peer-info`: the openvpn server's `client-connect` sees the same
/// extra peer-info variables from our client as from openvpn's
/// (`IV_SSL`, `IV_PLAT_VER`, `UV_*`, `IV_GUI_VER`, and `IV_HWADDR` = the
/// MAC of the interface of the default route).
#[test]
fn push_peer_info_sends_what_openvpn_sends() {
    if !require_root() {
        return;
    }
    let mut s = spec();
    let dir0 = tests::topology::TempDir::new("peerinfo");
    let hook = dir0.path().join("cc.sh");
    write_exec(
        &hook,
        &format!(
            "#!/bin/sh\nenv | grep -E '^(IV_HWADDR|IV_SSL|IV_PLAT_VER|IV_GUI_VER|UV_)' | LC_ALL=C sort > {}/\"cc-$IV_PLAT_VER-$UV_TAG.env\"\nexit 0\n",
            dir0.path().display()
        ),
    );
    s.server_extra.push(format!(
        "script-security 2\nclient-connect {}",
        hook.display()
    ));
    let mut t = Tunnel::start_server(s, Impl::OpenVpn, 2);
    for (i, (imp, tag)) in [(Impl::OpenVpn, "openvpn"), (Impl::Ours, "ours")]
        .into_iter()
        .enumerate()
    {
        let ns = &t.topo.clients[i];
        ns.ip(&["route", "add", "default", "via", &SERVER_ADDR.to_string()]);
        let text = client_text(
            &t,
            &format!("push-peer-info\nsetenv UV_TAG {tag}\nsetenv IV_GUI_VER \"test gui 1\"\n"),
        );
        t.add_client(i, imp, &text).wait_ready(READY_TIMEOUT);
    }
    let rel = read(Path::new("/proc/sys/kernel/osrelease"));
    let rel = rel.trim();
    let theirs = wait_file(
        &dir0.path().join(format!("cc-{rel}-openvpn.env")),
        Duration::from_secs(10),
    );
    let ours = wait_file(
        &dir0.path().join(format!("cc-{rel}-ours.env")),
        Duration::from_secs(10),
    );
    assert!(
        theirs.contains("IV_SSL=") && theirs.contains("IV_HWADDR="),
        "openvpn's peer-info:\n{theirs}"
    );
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("IV_HWADDR=") && !l.starts_with("UV_TAG="))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(strip(&ours), strip(&theirs), "peer-info differs");
    // IV_HWADDR is each namespace's own eth0.
    for (i, env) in [(0, &theirs), (1, &ours)] {
        let out = Command::new("ip")
            .args(["-n", t.topo.clients[i].name(), "-o", "link", "show", "eth0"])
            .output()
            .unwrap_or_else(|e| panic!("ip: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let mac = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC in {text:?}"));
        assert!(
            env.contains(&format!("IV_HWADDR={mac}\n")),
            "client {i}: eth0 {mac}, env:\n{env}"
        );
    }
}

/// `askpass FILE`: an encrypted client key opens with the password from
/// FILE, for openvpn and for us; a wrong password stops our client at
/// start-up.
#[test]
fn askpass_opens_an_encrypted_key_like_openvpn() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 2);
    let dir = t.topo.path().to_path_buf();
    let pass = dir.join("pass.txt");
    std::fs::write(&pass, "open sesame\n").unwrap();
    let enc = dir.join("client-enc.key");
    let st = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(&t.pki.client_key)
        .arg("-out")
        .arg(&enc)
        .arg("-passout")
        .arg(format!("file:{}", pass.display()))
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(st.success());
    assert!(read(&enc).contains("ENCRYPTED PRIVATE KEY"));
    for (i, imp) in [Impl::OpenVpn, Impl::Ours].into_iter().enumerate() {
        let text = client_text(&t, &format!("askpass {}\n", pass.display())).replace(
            &format!("key {}", t.pki.client_key.display()),
            &format!("key {}", enc.display()),
        );
        assert!(text.contains(&enc.display().to_string()));
        t.add_client(i, imp, &text).wait_ready(READY_TIMEOUT);
        t.assert_ping_both_ways(i);
    }
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "not it\n").unwrap();
    let text = client_text(&t, &format!("askpass {}\n", wrong.display())).replace(
        &format!("key {}", t.pki.client_key.display()),
        &format!("key {}", enc.display()),
    );
    let cfg = dir.join("wrong.conf");
    std::fs::write(&cfg, text).unwrap();
    let (code, out) = tests::openvpn::run_to_exit(Impl::Ours, &cfg, Duration::from_secs(20));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("askpass"), "{out}");
}

/// `session-timeout N`: the client leaves N seconds after connecting,
/// status 0, like openvpn.
#[test]
fn session_timeout_ends_the_client_like_openvpn() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 2);
    for (i, imp) in [Impl::OpenVpn, Impl::Ours].into_iter().enumerate() {
        let text = client_text(&t, "session-timeout 3\n");
        let c = t.add_client(i, imp, &text);
        c.wait_ready(READY_TIMEOUT);
        let status = c.wait_exit(Duration::from_secs(20));
        let log = c.log_text();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{}: log:\n{log}",
            imp.label()
        );
        assert!(
            log.contains("Session timeout"),
            "{}: log:\n{log}",
            imp.label()
        );
    }
}

/// `providers legacy default` loads OpenSSL's legacy provider and the
/// tunnel works as before; a provider that does not exist stops the start
/// (openvpn and ours).
#[test]
fn providers_load_or_stop_the_start() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), Impl::OpenVpn, 1);
    let text = client_text(&t, "providers legacy default\n");
    let c = t.add_client(0, Impl::Ours, &text);
    c.wait_ready(READY_TIMEOUT);
    assert!(c.log_text().contains("provider loaded"), "{}", c.log_text());
    t.assert_ping_both_ways(0);
    let dir = t.topo.path().to_path_buf();
    let cfg = dir.join("noprov.conf");
    std::fs::write(&cfg, client_text(&t, "providers no-such-provider\n")).unwrap();
    for imp in [Impl::OpenVpn, Impl::Ours] {
        let (code, out) = tests::openvpn::run_to_exit(imp, &cfg, Duration::from_secs(20));
        assert_eq!(code, Some(1), "{}: {out}", imp.label());
        assert!(out.contains("no-such-provider"), "{}: {out}", imp.label());
    }
}

/// `auth-user-pass-optional` on our server: a stock openvpn client with a
/// certificate and no `auth-user-pass` is handed to the verify script
/// (which lets everyone in) and connects; without it the client is refused
/// before the script runs, as 2.6 refuses it.
#[test]
fn auth_user_pass_optional_on_our_server() {
    if !require_root() {
        return;
    }
    let dir0 = tests::topology::TempDir::new("upoptional");
    let script = dir0.path().join("yes.sh");
    write_exec(&script, "#!/bin/sh\nexit 0\n");
    for optional in [true, false] {
        let mut s = spec();
        s.verify_script = Some(script.clone());
        if optional {
            s.server_extra.push("auth-user-pass-optional".into());
        }
        let mut t = Tunnel::start_server(s, Impl::Ours, 1);
        let text = client_text(&t, "");
        let c = t.add_client(0, Impl::OpenVpn, &text);
        let ready = c.wait_for_nth(
            "Initialization Sequence Completed",
            1,
            Duration::from_secs(15),
        );
        assert_eq!(
            ready,
            optional,
            "optional={optional}; client log:\n{}",
            c.log_text()
        );
        if !optional {
            assert!(
                t.server.log_text().contains("not provided by peer"),
                "server log:\n{}",
                t.server.log_text()
            );
        }
    }
}

/// `x509-username-field serialNumber`: openvpn's server and ours give a
/// stock openvpn client the same common name (as `client-connect` sees it).
#[test]
fn x509_username_field_gives_the_same_common_name_as_openvpn() {
    if !require_root() {
        return;
    }
    let dir0 = tests::topology::TempDir::new("x509user");
    for (imp, tag) in [(Impl::OpenVpn, "openvpn"), (Impl::Ours, "ours")] {
        let hook = dir0.path().join(format!("cc-{tag}.sh"));
        write_exec(
            &hook,
            &format!(
                "#!/bin/sh\nprintf '%s' \"$common_name\" > {}/cn-{tag}\nexit 0\n",
                dir0.path().display()
            ),
        );
        let mut s = spec();
        s.server_extra.push(format!(
            "x509-username-field serialNumber\nscript-security 2\nclient-connect {}",
            hook.display()
        ));
        let mut t = Tunnel::start_server(s, imp, 1);
        let text = client_text(&t, "");
        t.add_client(0, Impl::OpenVpn, &text)
            .wait_ready(READY_TIMEOUT);
    }
    let theirs = wait_file(&dir0.path().join("cn-openvpn"), Duration::from_secs(5));
    let ours = wait_file(&dir0.path().join("cn-ours"), Duration::from_secs(5));
    assert!(
        theirs.starts_with("0x"),
        "openvpn's common_name: {theirs:?}"
    );
    assert_eq!(ours, theirs);
}
