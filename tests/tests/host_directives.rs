//! The network, process and script directives that 2.6 accepts on Linux
//! (`config/host.rs`) do what they do in openvpn: each cell runs our
//! daemon and stock openvpn 2.6 on the same configuration against the same
//! peer and compares what the kernel, the scripts or the log show.
//!
//! Needs root, `openvpn`, `nft` and the daemon binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::openvpn::{Cipher, Impl, Proto, TlsWrap, TunnelSpec, client_config};
use tests::topology::{READY_TIMEOUT, SERVER_ADDR, Tunnel, iface_addr, ping_until};
use tests::{Netns, require_root};

fn spec() -> TunnelSpec {
    TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm)
}

fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits (bounded) until `path` holds at least `lines` lines.
fn wait_lines(path: &Path, lines: usize, timeout: Duration) -> String {
    let end = vpn_daemon::io::clock::now() + timeout;
    loop {
        let t = read(path);
        if t.lines().count() >= lines || vpn_daemon::io::clock::now() >= end {
            return t;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A script that appends `script_type` and its arguments to `out`.
fn recorder(dir: &Path, name: &str, out: &Path) -> PathBuf {
    let p = dir.join(name);
    write_exec(
        &p,
        &format!("#!/bin/sh\necho \"$script_type $*\" >> {}\n", out.display()),
    );
    p
}

/// The IPv4 routes of `ns` that use `dev`, as `ip route` prints them
/// (destination only).
fn routes_on(ns: &Netns, dev: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-4", "route", "show", "dev", dev])
        .output()
        .expect("ip route");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// One client of `imp` with `extra` lines against a stock openvpn server
/// that pushes two routes and a DNS server; returns the client's tun
/// routes once it is up.
fn pulled_routes(imp: Impl, extra: &[&str]) -> (Vec<String>, String) {
    let mut s = spec();
    s.server_extra = vec![
        "push \"route 10.99.1.0 255.255.255.0\"".into(),
        "push \"route 10.99.2.0 255.255.255.0\"".into(),
        "push \"dhcp-option DNS 10.8.0.53\"".into(),
    ];
    s.client_extra = extra.iter().map(|l| (*l).to_string()).collect();
    let t = Tunnel::start(s, Impl::OpenVpn, &[imp]);
    assert!(
        ping_until(&t.topo.clients[0], "10.8.0.1", Duration::from_secs(10)),
        "{} client: no ping through the tunnel",
        imp.label()
    );
    (
        routes_on(&t.topo.clients[0], "tun0"),
        t.clients[0].log_text(),
    )
}

/// `pull-filter ignore` drops exactly the matching pushed route, and
/// `route-nopull` every pushed route, as they do in stock openvpn.
#[test]
fn pull_filter_and_route_nopull_act_as_in_openvpn() {
    if !require_root() {
        return;
    }
    let filter = ["pull-filter ignore \"route 10.99.2.\""];
    let (ours, log) = pulled_routes(Impl::Ours, &filter);
    let (theirs, _) = pulled_routes(Impl::OpenVpn, &filter);
    assert!(ours.contains(&"10.99.1.0/24".to_string()), "{ours:?}");
    assert!(!ours.contains(&"10.99.2.0/24".to_string()), "{ours:?}");
    assert_eq!(ours, theirs, "our pulled routes differ from openvpn's");
    assert!(
        log.contains("Pushed option removed by filter: 'route 10.99.2.0 255.255.255.0'"),
        "{log}"
    );
    let (ours, _) = pulled_routes(Impl::Ours, &["route-nopull"]);
    let (theirs, _) = pulled_routes(Impl::OpenVpn, &["route-nopull"]);
    assert!(!ours.iter().any(|r| r.starts_with("10.99.")), "{ours:?}");
    assert_eq!(
        ours, theirs,
        "route-nopull: our routes differ from openvpn's"
    );
}

/// `pull-filter reject` restarts the client instead of connecting.
#[test]
fn pull_filter_reject_restarts_as_in_openvpn() {
    if !require_root() {
        return;
    }
    let mut s = spec();
    s.server_extra = vec!["push \"route 10.99.1.0 255.255.255.0\"".into()];
    s.client_extra = vec!["pull-filter reject \"route 10.99.1.\"".into()];
    let mut t = Tunnel::start_server(s, Impl::OpenVpn, 2);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    for (i, imp) in [Impl::Ours, Impl::OpenVpn].into_iter().enumerate() {
        let c = t.add_client(i, imp, &text);
        let needle =
            "Pushed option rejected by filter: 'route 10.99.1.0 255.255.255.0'. Restarting.";
        // Two rejections: the client restarted and was rejected again.
        assert!(
            c.wait_for_nth(needle, 2, READY_TIMEOUT),
            "{}: {}",
            imp.label(),
            c.log_text()
        );
        assert_eq!(
            c.count("Initialization Sequence Completed"),
            0,
            "{}",
            c.log_text()
        );
    }
}

/// `ifconfig-noexec` and `route-noexec`: the device stays unaddressed and
/// the routes stay out of the kernel, while the `up` script still gets the
/// addresses; both as openvpn does.
#[test]
fn noexec_leaves_device_and_routes_to_the_scripts() {
    if !require_root() {
        return;
    }
    for imp in [Impl::Ours, Impl::OpenVpn] {
        let mut s = spec();
        s.server_extra = vec!["push \"route 10.99.1.0 255.255.255.0\"".into()];
        let mut t = Tunnel::start_server(s, Impl::OpenVpn, 1);
        let dir = t.topo.path().to_path_buf();
        let out = dir.join("up.out");
        let up = dir.join("up.sh");
        write_exec(
            &up,
            &format!(
                "#!/bin/sh\necho \"$ifconfig_local $ifconfig_netmask\" >> {}\n",
                out.display()
            ),
        );
        let text = format!(
            "{}script-security 2\nup {}\nifconfig-noexec\nroute-noexec\n",
            client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None),
            up.display()
        );
        t.add_client(0, imp, &text).wait_ready(READY_TIMEOUT);
        let env = wait_lines(&out, 1, Duration::from_secs(5));
        assert_eq!(env.trim(), "10.8.0.2 255.255.255.0", "{}", imp.label());
        assert_eq!(
            iface_addr(&t.topo.clients[0], "tun0"),
            None,
            "{}",
            imp.label()
        );
        assert!(
            routes_on(&t.topo.clients[0], "tun0").is_empty(),
            "{}",
            imp.label()
        );
    }
}

/// `learn-address` on the server is told of a client's address when it
/// connects, with the same arguments as openvpn's, and of its departure.
/// (openvpn 2.6 reports the delete only when its route reaper reaches the
/// address, which can take minutes; we report it when the client goes.)
#[test]
fn learn_address_calls_match_openvpn() {
    if !require_root() {
        return;
    }
    let mut calls = Vec::new();
    for imp in [Impl::Ours, Impl::OpenVpn] {
        let tmp = tests::topology::TempDir::new("learn");
        let out = tmp.path().join("learn.out");
        let script = recorder(tmp.path(), "learn.sh", &out);
        let mut s = spec();
        s.server_extra = vec![
            "script-security 2".into(),
            format!("learn-address {}", script.display()),
        ];
        // The client says goodbye, so the server forgets it at once.
        s.client_extra = vec!["explicit-exit-notify 1".into()];
        let mut t = Tunnel::start(s, imp, &[Impl::OpenVpn]);
        let added = wait_lines(&out, 1, Duration::from_secs(10));
        if imp == Impl::Ours {
            t.clients[0].stop();
            let all = wait_lines(&out, 2, Duration::from_secs(10));
            assert_eq!(
                all.lines().nth(1),
                Some("learn-address delete 10.8.0.2"),
                "{all}"
            );
        }
        calls.push(added.lines().next().unwrap_or_default().to_owned());
        drop(t);
    }
    assert_eq!(calls[0], "learn-address add 10.8.0.2 client");
    assert_eq!(
        calls[0], calls[1],
        "our learn-address add differs from openvpn's"
    );
}

/// `ipchange` runs with the server's address once the link is up, and
/// `route-pre-down` before the routes go at exit, with openvpn's
/// arguments.
#[test]
fn ipchange_and_route_pre_down_match_openvpn() {
    if !require_root() {
        return;
    }
    let mut seen = Vec::new();
    for imp in [Impl::Ours, Impl::OpenVpn] {
        let mut s = spec();
        s.server_extra = vec!["push \"route 10.99.1.0 255.255.255.0\"".into()];
        let mut t = Tunnel::start_server(s, Impl::OpenVpn, 1);
        let dir = t.topo.path().to_path_buf();
        let out = dir.join("scripts.out");
        let ipc = recorder(&dir, "ipchange.sh", &out);
        let rpd = recorder(&dir, "rpd.sh", &out);
        let text = format!(
            "{}script-security 2\nipchange {}\nroute-pre-down {}\n",
            client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None),
            ipc.display(),
            rpd.display()
        );
        t.add_client(0, imp, &text).wait_ready(READY_TIMEOUT);
        wait_lines(&out, 1, Duration::from_secs(5));
        t.clients[0].stop();
        seen.push(wait_lines(&out, 2, Duration::from_secs(5)));
    }
    // One argument, "[AF_INET]IP PORT", as ipchange_fmt prints it.
    let ipc_line = format!("ipchange [AF_INET]{SERVER_ADDR} 1194");
    assert!(
        seen[0].lines().next() == Some(ipc_line.as_str()),
        "{}",
        seen[0]
    );
    // route-pre-down gets down's arguments: device, MTUs, addresses, "init".
    assert!(
        seen[0]
            .lines()
            .any(|l| l.starts_with("route-pre-down tun0 1500 ")),
        "{}",
        seen[0]
    );
    let shape = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        shape(&seen[0]),
        shape(&seen[1]),
        "ours:\n{}\nopenvpn:\n{}",
        seen[0],
        seen[1]
    );
}

/// `mark N` marks the link socket: an nftables counter on the client's
/// output path sees the tunnel's packets carry the mark.
#[test]
fn mark_sets_the_socket_mark() {
    if !require_root() {
        return;
    }
    let mut s = spec();
    s.client_extra = vec!["mark 42".into()];
    let mut t = Tunnel::start_server(s, Impl::OpenVpn, 1);
    let ns_name = t.topo.clients[0].name().to_owned();
    let nft = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns_name, "nft"])
            .args(args)
            .output()
            .expect("nft")
    };
    // The table lives in the client's namespace and goes with it.
    for cmd in [
        "add table inet vpnmark",
        "add chain inet vpnmark out { type filter hook output priority 0 ; }",
        "add rule inet vpnmark out meta mark 42 udp dport 1194 counter",
    ] {
        let o = nft(&cmd.split(' ').collect::<Vec<_>>());
        assert!(
            o.status.success(),
            "nft {cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, Impl::Ours, &text).wait_ready(READY_TIMEOUT);
    assert!(ping_until(
        &t.topo.clients[0],
        "10.8.0.1",
        Duration::from_secs(10)
    ));
    let list = nft(&["list", "table", "inet", "vpnmark"]);
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let packets: u64 = text
        .split("counter packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(packets >= 3, "marked packets: {packets}\n{text}");
}

/// `chroot`, `nice`, `echo msg`, `suppress-timestamps` and `remap-usr1` on
/// our server: the process is in the directory, at the priority, says the
/// echo without a time stamp, and SIGUSR1 ends it as SIGTERM would.
#[test]
fn process_directives_take_effect() {
    if !require_root() {
        return;
    }
    let jail = tests::topology::TempDir::new("jail");
    let mut s = spec();
    s.server_extra = vec![
        format!("chroot {}", jail.path().display()),
        "nice 7".into(),
        "echo msg hello from the config".into(),
        "suppress-timestamps".into(),
        "remap-usr1 SIGTERM".into(),
    ];
    let mut t = Tunnel::start(s, Impl::Ours, &[Impl::OpenVpn]);
    t.assert_ping_both_ways(0);
    let pid = t.server.pid().expect("server pid");
    let root = std::fs::read_link(format!("/proc/{pid}/root")).expect("root link");
    assert_eq!(root, jail.path(), "chroot");
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    // Field 19 is nice (after the parenthesised command name).
    let nice = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(16))
        .unwrap_or("");
    assert_eq!(nice, "7", "{stat}");
    let log = t.server.log_text();
    let echo = log
        .lines()
        .find(|l| l.contains("ECHO:msg hello from the config"))
        .unwrap_or_else(|| panic!("no echo line:\n{log}"));
    let before = &echo[..echo.find("INFO").unwrap_or(0)];
    assert!(!before.contains(':'), "time stamp kept: {echo}");
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
    let exit = t.server.wait_exit(Duration::from_secs(10));
    assert_eq!(
        exit.and_then(|e| e.code()),
        Some(0),
        "{}",
        t.server.log_text()
    );
}

/// `block-ipv6` on the client: an IPv6 ping into the tunnel is answered by
/// the client itself with ICMPv6 "no route", from the tunnel's IPv6 peer
/// address, exactly as openvpn's client answers it.
#[test]
fn block_ipv6_answers_like_openvpn() {
    if !require_root() {
        return;
    }
    let mut answers = Vec::new();
    for imp in [Impl::Ours, Impl::OpenVpn] {
        let mut s = spec();
        s.server_extra = vec!["server-ipv6 fd00:8::/64".into()];
        s.client_extra = vec!["block-ipv6".into()];
        let t = Tunnel::start(s, Impl::OpenVpn, &[imp]);
        let ns = &t.topo.clients[0];
        ns.ip(&["-6", "route", "add", "2001:db8::/32", "dev", "tun0"]);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "ping",
                "-6",
                "-c",
                "1",
                "-W",
                "3",
            ])
            .arg("2001:db8::1")
            .output()
            .expect("ping");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text
            .lines()
            .find(|l| l.starts_with("From "))
            .unwrap_or_else(|| panic!("{}: no ICMPv6 answer:\n{text}", imp.label()))
            .split(" icmp_seq")
            .collect::<Vec<_>>()
            .join(" ");
        answers.push(line);
    }
    assert!(
        answers[0].contains("Destination unreachable: No route"),
        "{}",
        answers[0]
    );
    assert_eq!(answers[0], answers[1], "ours vs openvpn");
}

/// `port-share` on our TCP server: a stock openvpn TCP client connects and
/// pings through the tunnel while an HTTP request to the same port is
/// relayed to the shared service, which finds the client's address in the
/// journal directory, as with 2.6's ps.c.
#[test]
fn port_share_relays_foreign_connections() {
    if !require_root() {
        return;
    }
    let tmp = tests::topology::TempDir::new("pshare");
    let journal = tmp.path().join("journal");
    std::fs::create_dir_all(&journal).expect("mkdir journal");
    let mut s = TunnelSpec::new(Proto::Tcp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    s.server_extra = vec![format!("port-share 127.0.0.1 8080 {}", journal.display())];
    let t = Tunnel::start(s, Impl::Ours, &[Impl::OpenVpn]);
    // The shared service: answers one request with the journal's contents.
    let service = tmp.path().join("service.py");
    std::fs::write(
        &service,
        format!(
            "import os, socket\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', 8080)); s.listen(1); s.settimeout(20)\n\
             c, _ = s.accept(); c.settimeout(10); c.recv(1024)\n\
             seen = ' '.join(open(os.path.join('{j}', f)).read() for f in os.listdir('{j}'))\n\
             c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nfrom ' + seen.encode())\n\
             c.close()\n",
            j = journal.display()
        ),
    )
    .expect("write service");
    let log = tmp.path().join("service.log");
    let mut svc = tests::NsProcess::spawn(
        &t.topo.server,
        Path::new("/usr/bin/python3"),
        &[&service.display().to_string()],
        &log,
    );
    std::thread::sleep(Duration::from_millis(500));
    let client = &t.topo.clients[0];
    let out = Command::new("ip")
        .args(["netns", "exec", client.name(), "python3", "-c"])
        .arg(format!(
            "import socket; c = socket.create_connection(('{SERVER_ADDR}', 1194), 10); \
             c.settimeout(10); c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); \
             print(c.recv(4096).decode())"
        ))
        .output()
        .expect("http client");
    let reply = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = svc.try_exit();
    assert!(
        reply.starts_with("HTTP/1.0 200 OK"),
        "reply: {reply}\n{}",
        read(&log)
    );
    assert!(
        reply.contains(&format!("from {}:", tests::topology::client_addr(0))),
        "journal: {reply}"
    );
    // The OpenVPN client on the same port is unaffected.
    t.assert_ping_both_ways(0);
    // The relay's journal entry went with its connection.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(9),
        0
    );
}

/// `opt-verify` on our server: a stock openvpn client with matching
/// options connects (so our idea of the client's options string is
/// openvpn's own), one with another `tun-mtu` is refused, as by openvpn.
#[test]
fn opt_verify_admits_matching_clients_only() {
    if !require_root() {
        return;
    }
    for server in [Impl::Ours, Impl::OpenVpn] {
        let mut s = spec();
        s.wrap = TlsWrap::TlsAuth;
        s.server_extra = vec!["opt-verify".into()];
        let mut t = Tunnel::start_server(s, server, 2);
        let good = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
        t.add_client(0, Impl::OpenVpn, &good)
            .wait_ready(READY_TIMEOUT);
        let bad = format!("{good}tun-mtu 1400\n");
        let c = t.add_client(1, Impl::OpenVpn, &bad);
        assert!(
            c.wait_for_nth("AUTH_FAILED", 1, READY_TIMEOUT),
            "{} server: mismatching client not refused:\n{}",
            server.label(),
            c.log_text()
        );
        t.assert_ping_both_ways(0);
    }
}

/// `tls-verify` on the server: the script sees each certificate of the
/// client's chain with the arguments stock openvpn gives it, and a script
/// that fails keeps the client out.
#[test]
fn tls_verify_script_runs_per_certificate_as_in_openvpn() {
    if !require_root() {
        return;
    }
    let mut seen = Vec::new();
    for server in [Impl::Ours, Impl::OpenVpn] {
        let tmp = tests::topology::TempDir::new("tlsv");
        let out = tmp.path().join("tlsv.out");
        let script = recorder(tmp.path(), "tlsv.sh", &out);
        let mut s = spec();
        s.server_extra = vec![
            "script-security 2".into(),
            format!("tls-verify {}", script.display()),
        ];
        let t = Tunnel::start(s, server, &[Impl::OpenVpn]);
        t.assert_ping_both_ways(0);
        seen.push(wait_lines(&out, 2, Duration::from_secs(5)));
    }
    assert_eq!(seen[0].lines().count(), 2, "{}", seen[0]);
    assert!(seen[0].starts_with("tls-verify 1 "), "{}", seen[0]);
    assert_eq!(seen[0], seen[1], "ours vs openvpn");
    // A refusing script: the client gets no tunnel.
    let mut s = spec();
    s.server_extra = vec!["script-security 2".into(), "tls-verify /bin/false".into()];
    let mut t = Tunnel::start_server(s, Impl::Ours, 1);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    let c = t.add_client(0, Impl::OpenVpn, &text);
    assert!(
        c.wait_for_nth("AUTH_FAILED", 1, READY_TIMEOUT),
        "{}",
        c.log_text()
    );
}
