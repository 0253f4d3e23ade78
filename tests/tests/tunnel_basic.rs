//! Our server and our client, each in its own network namespace joined by
//! a veth pair: the tunnel comes up over UDP and over TCP and carries
//! pings both ways; a bad configuration exits with status 1.
//!
//! Needs root and the daemon binary (`cargo build -p vpn-daemon` first,
//! see [`tests::daemon_binary`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::{
    Netns, NsProcess, VethPair, daemon_binary, ping_until, require_root, unique_name,
    workspace_root,
};

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(unique_name("vpn-tunnel-"));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pki(name: &str) -> String {
    workspace_root()
        .join("testdata/configs")
        .join(name)
        .display()
        .to_string()
}

fn server_conf(proto: &str, status: &Path) -> String {
    format!(
        "port 1194\nproto {proto}\ndev tun\ntopology subnet\nserver 10.77.0.0 255.255.255.0\n\
         ca {}\ncert {}\nkey {}\ndh none\ntls-crypt {}\nkeepalive 2 10\n\
         status {} 1\nverb 4\n",
        pki("ca.crt"),
        pki("server.crt"),
        pki("server.key"),
        pki("tc.key"),
        status.display()
    )
}

fn client_conf(proto: &str, server: &str) -> String {
    format!(
        "client\ndev tun\nproto {proto}\nremote {server} 1194\nnobind\nconnect-retry 1 2\n\
         ca {}\ncert {}\nkey {}\ntls-crypt {}\nremote-cert-tls server\nverb 4\n",
        pki("ca.crt"),
        pki("client.crt"),
        pki("client.key"),
        pki("tc.key")
    )
}

/// Two namespaces joined by a veth pair (server 10.99.0.1, client
/// 10.99.0.2) and a scratch directory; dropped in reverse order.
struct Lab {
    dir: TempDir,
    sns: Netns,
    cns: Netns,
    bin: PathBuf,
}

impl Lab {
    fn new() -> Self {
        let dir = TempDir::new();
        let sns = Netns::new("tus");
        let cns = Netns::new("tuc");
        VethPair::new(&sns, &cns)
            .addr_a([10, 99, 0, 1])
            .addr_b([10, 99, 0, 2])
            .create();
        Self {
            dir,
            sns,
            cns,
            bin: daemon_binary(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Writes `conf` to `<name>.conf` and starts the daemon on it in `ns`
    /// (log in `<name>.log`).
    fn start(&self, server: bool, name: &str, conf: &str) -> NsProcess {
        let c = self.path(&format!("{name}.conf"));
        std::fs::write(&c, conf).expect("write config");
        let ns = if server { &self.sns } else { &self.cns };
        NsProcess::spawn(
            ns,
            &self.bin,
            &["--config", &c.display().to_string()],
            &self.path(&format!("{name}.log")),
        )
    }

    /// Stops `server` (SIGTERM, exit 0) and starts it again as `name` on
    /// `conf`; the client must be back through the tunnel in `secs`.
    fn restart_server(
        &self,
        server: &mut NsProcess,
        name: &str,
        conf: &str,
        secs: u32,
    ) -> NsProcess {
        let s = server.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
        assert_eq!(
            s.and_then(|s| s.code()),
            Some(0),
            "server exit\n{}",
            self.logs()
        );
        let again = self.start(true, name, conf);
        assert!(
            ping_until(&self.cns, "10.77.0.1", secs),
            "no reconnection after the server restart\n{}\n{name} log:\n{}",
            self.logs(),
            std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
        );
        again
    }

    /// Sends `sig` to the client: it must live on and be back in 20 s.
    fn client_survives(&self, client: &mut NsProcess, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(client.pid() as i32, sig) };
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            client.try_exit().is_none(),
            "signal {sig} ended the client\n{}",
            self.logs()
        );
        assert!(
            ping_until(&self.cns, "10.77.0.1", 20),
            "not back after signal {sig}\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        ["server", "client"]
            .iter()
            .map(|n| {
                format!(
                    "{n} log:\n{}\n",
                    std::fs::read_to_string(self.path(&format!("{n}.log"))).unwrap_or_default()
                )
            })
            .collect()
    }
}

/// Server and client up over `proto`, pings both ways, clean exit.
fn tunnel_over(server_proto: &str, client_proto: &str) {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let status = lab.path("status.log");
    let client_status = lab.path("client-status.log");
    let mut server = lab.start(true, "server", &server_conf(server_proto, &status));
    let conf = format!(
        "{}status {} 1\n",
        client_conf(client_proto, "10.99.0.1"),
        client_status.display()
    );
    let mut client = lab.start(false, "client", &conf);
    let (sns, cns) = (&lab.sns, &lab.cns);
    let logs = || lab.logs();
    assert!(
        ping_until(cns, "10.77.0.1", 20),
        "client -> server ping failed\n{}",
        logs()
    );
    assert!(
        ping_until(sns, "10.77.0.2", 5),
        "server -> client ping failed\n{}",
        logs()
    );
    // The status file lists the client within its 1 s interval.
    let listed = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&status).is_ok_and(|s| s.contains("client,10.99.0.2"))
    });
    assert!(listed, "status file without the client\n{}", logs());
    // The client's status file is OpenVPN's STATISTICS block, with the
    // pings counted on both sides of the tunnel.
    let counted = |text: &str, row: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(row)?.strip_prefix(',')?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut text = String::new();
    let complete = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        text = std::fs::read_to_string(&client_status).unwrap_or_default();
        text.starts_with("OpenVPN STATISTICS\n")
            && text.ends_with("END\n")
            && [
                "TUN/TAP read bytes",
                "TUN/TAP write bytes",
                "TCP/UDP read bytes",
                "TCP/UDP write bytes",
                "Auth read bytes",
            ]
            .iter()
            .all(|r| counted(&text, r) > 0)
    });
    assert!(complete, "client status file:\n{text}\n{}", logs());
    let c = client.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(c.and_then(|s| s.code()), Some(0), "client exit\n{}", logs());
    let s = server.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(s.and_then(|s| s.code()), Some(0), "server exit\n{}", logs());
}

#[test]
fn tunnel_udp_ping_both_ways() {
    tunnel_over("udp", "udp");
}

#[test]
fn tunnel_tcp_ping_both_ways() {
    tunnel_over("tcp-server", "tcp-client");
}

#[test]
fn bad_config_exits_1() {
    let bin = daemon_binary();
    for args in [
        vec!["--no-such-directive"],
        vec!["--config", "/nonexistent/vpn-daemon.conf"],
        vec!["--dev", "tun", "--proto", "udp", "--remote"],
    ] {
        let out = Command::new(&bin).args(&args).output().expect("run daemon");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}

/// The server restarts (sending RESTART to the client on its way out);
/// the client reconnects by itself, keeping its tun device (persist-tun).
#[test]
fn tunnel_udp_client_reconnects_after_server_restart() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let status = lab.path("status.log");
    let sconf = server_conf("udp", &status);
    let mut server = lab.start(true, "server", &sconf);
    let _client = lab.start(
        false,
        "client",
        &format!("{}persist-tun\n", client_conf("udp", "10.99.0.1")),
    );
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 20),
        "first connection\n{}",
        lab.logs()
    );
    let _server2 = lab.restart_server(&mut server, "server", &sconf, 20);
}

/// `auth-user-pass-verify` via-file decides: the right password connects,
/// a wrong one gets AUTH_FAILED and the client exits with status 0 (2.6's
/// soft SIGTERM "auth-failure"; `auth-retry` is in directives_e2e.rs).
#[test]
fn tunnel_udp_auth_user_pass_verify() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let script = lab.path("verify.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n{ read -r u; read -r p; } < \"$1\"\n[ \"$u\" = alice ] && [ \"$p\" = s3cret ]\n",
    )
    .expect("write script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let status = lab.path("status.log");
    let sconf = format!(
        "{}script-security 2\nauth-user-pass-verify {} via-file\nusername-as-common-name\n",
        server_conf("udp", &status),
        script.display()
    );
    let _server = lab.start(true, "server", &sconf);
    let good = lab.path("good.txt");
    std::fs::write(&good, "alice\ns3cret\n").expect("write");
    let bad = lab.path("bad.txt");
    std::fs::write(&bad, "alice\nwrong\n").expect("write");

    let mut client = lab.start(
        false,
        "client",
        &format!(
            "{}auth-user-pass {}\n",
            client_conf("udp", "10.99.0.1"),
            bad.display()
        ),
    );
    let exited = (0..150).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        client.try_exit()
    });
    assert_eq!(
        exited.and_then(|s| s.code()),
        Some(0),
        "bad password must end the client\n{}",
        lab.logs()
    );
    drop(client);

    let _client = lab.start(
        false,
        "client",
        &format!(
            "{}auth-user-pass {}\n",
            client_conf("udp", "10.99.0.1"),
            good.display()
        ),
    );
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 20),
        "good password\n{}",
        lab.logs()
    );
    // username-as-common-name: the status file shows the user name.
    let listed = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&status).is_ok_and(|s| s.contains("alice,10.99.0.2"))
    });
    assert!(listed, "status without alice\n{}", lab.logs());
}

/// A client killed without notice comes back from the same address and
/// port: its new handshake replaces the old instance at once (not after
/// the old one's ping-restart).
#[test]
fn tunnel_udp_client_restart_same_port() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let status = lab.path("status.log");
    let _server = lab.start(true, "server", &server_conf("udp", &status));
    let cconf = client_conf("udp", "10.99.0.1").replace("nobind\n", "lport 5555\n");
    let mut client = lab.start(false, "client", &cconf);
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 20),
        "first connection\n{}",
        lab.logs()
    );
    client.signal_and_wait(libc::SIGKILL, Duration::from_secs(5));
    drop(client);
    let _client = lab.start(false, "client", &cconf);
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 8),
        "restarted client not accepted\n{}",
        lab.logs()
    );
}

/// Kills a daemonized (not our child) process on drop.
struct PidGuard(i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the daemon this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// `daemon`, `writepid`, `log`: the started process returns at once, the
/// detached daemon writes its pid and logs to the file, SIGTERM ends it.
#[test]
fn tunnel_daemon_writepid_log() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let pidfile = lab.path("daemon.pid");
    let logfile = lab.path("daemon.log");
    let conf = format!(
        "{}daemon\nwritepid {}\nlog {}\n",
        server_conf("udp", &lab.path("status.log")),
        pidfile.display(),
        logfile.display()
    );
    let mut starter = lab.start(true, "server", &conf);
    let started = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        starter.try_exit()
    });
    assert_eq!(started.and_then(|s| s.code()), Some(0), "{}", lab.logs());
    let pid = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        })
        .expect("pid file written");
    let _guard = PidGuard(pid);
    let listening = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(&logfile).is_ok_and(|s| s.contains("UDP server listening"))
    });
    assert!(
        listening,
        "log file: {:?}",
        std::fs::read_to_string(&logfile)
    );
    // SAFETY: kill(2) on the daemon started above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone, "daemon did not exit on SIGTERM");
}

/// `client-to-client`: two clients reach each other through the daemon's
/// internal routing (the server namespace has ip_forward off, so the
/// kernel could not do it); both use the same certificate: duplicate-cn.
#[test]
fn tunnel_udp_client_to_client() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let bns = Netns::new("tub");
    VethPair::new(&lab.sns, &bns)
        .addr_a([10, 98, 0, 1])
        .addr_b([10, 98, 0, 2])
        .create();
    let status = lab.path("status.log");
    let _server = lab.start(
        true,
        "server",
        &format!(
            "{}client-to-client\nduplicate-cn\n",
            server_conf("udp", &status)
        ),
    );
    let _a = lab.start(false, "client", &client_conf("udp", "10.99.0.1"));
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 20),
        "client a\n{}",
        lab.logs()
    );
    let bconf = lab.path("b.conf");
    std::fs::write(&bconf, client_conf("udp", "10.98.0.1")).expect("write");
    let _b = NsProcess::spawn(
        &bns,
        &lab.bin,
        &["--config", &bconf.display().to_string()],
        &lab.path("b.log"),
    );
    assert!(
        ping_until(&bns, "10.77.0.1", 20),
        "client b\n{}",
        lab.logs()
    );
    assert!(
        ping_until(&lab.cns, "10.77.0.3", 5),
        "a -> b\n{}\nb log:\n{}",
        lab.logs(),
        std::fs::read_to_string(lab.path("b.log")).unwrap_or_default()
    );
}

/// SIGUSR1 (soft restart) and SIGHUP (re-read the configuration) both
/// bring the client back up; the process lives on.
#[test]
fn tunnel_udp_client_sigusr1_sighup_restart() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let _server = lab.start(true, "server", &server_conf("udp", &lab.path("status.log")));
    let mut client = lab.start(false, "client", &client_conf("udp", "10.99.0.1"));
    assert!(ping_until(&lab.cns, "10.77.0.1", 20), "up\n{}", lab.logs());
    for sig in [libc::SIGUSR1, libc::SIGHUP] {
        lab.client_survives(&mut client, sig);
    }
}

/// `server-ipv6`: the client gets a pushed IPv6 address and IPv6 flows
/// both ways inside the tunnel.
#[test]
fn tunnel_udp_ipv6_inside() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let _server = lab.start(
        true,
        "server",
        &format!(
            "{}server-ipv6 fd00:77::/64\n",
            server_conf("udp", &lab.path("status.log"))
        ),
    );
    let _client = lab.start(false, "client", &client_conf("udp", "10.99.0.1"));
    assert!(ping_until(&lab.cns, "10.77.0.1", 20), "up\n{}", lab.logs());
    assert!(
        ping_until(&lab.cns, "fd00:77::1", 5),
        "client -> server v6\n{}",
        lab.logs()
    );
    assert!(
        ping_until(&lab.sns, "fd00:77::1000", 5),
        "server -> client v6\n{}",
        lab.logs()
    );
}

/// Routes of the client's namespace (`ip route show`), as text.
fn routes(ns: &Netns) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "route", "show"])
        .output()
        .expect("ip route");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pushed `redirect-gateway def1`: 0/1 and 128/1 go into the tunnel, a
/// host route keeps the server on the old path (the tunnel still works),
/// and everything is removed again when the client exits.
#[test]
fn tunnel_udp_redirect_gateway_def1() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    lab.cns.ip(&["route", "add", "default", "via", "10.99.0.1"]);
    let _server = lab.start(
        true,
        "server",
        &format!(
            "{}push \"redirect-gateway def1\"\n",
            server_conf("udp", &lab.path("status.log"))
        ),
    );
    let mut client = lab.start(false, "client", &client_conf("udp", "10.99.0.1"));
    // The default route already reaches the server namespace (which owns
    // 10.77.0.1), so a ping proves nothing here: wait for the routes the
    // client installs once it is connected, bounded.
    let mut r = routes(&lab.cns);
    for _ in 0..100 {
        if r.contains("128.0.0.0/1 dev tun") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        r = routes(&lab.cns);
    }
    assert!(r.contains("0.0.0.0/1 dev tun"), "{r}\n{}", lab.logs());
    assert!(r.contains("128.0.0.0/1 dev tun"), "{r}");
    assert!(
        r.lines().any(|l| l.starts_with("10.99.0.1 ")),
        "no host route to the server: {r}"
    );
    // Still reachable with the halves installed: the host route works.
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 5),
        "tunnel after redirect\n{}",
        lab.logs()
    );
    let c = client.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(c.and_then(|s| s.code()), Some(0), "{}", lab.logs());
    let r = routes(&lab.cns);
    assert!(!r.contains("0.0.0.0/1"), "left behind: {r}");
    assert!(
        !r.lines().any(|l| l.starts_with("10.99.0.1 ")),
        "left behind: {r}"
    );
}

/// `ifconfig-pool-persist FILE 1` records the client's address.
#[test]
fn tunnel_udp_pool_persist_written() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let pp = lab.path("ipp.txt");
    let _server = lab.start(
        true,
        "server",
        &format!(
            "{}ifconfig-pool-persist {} 1\n",
            server_conf("udp", &lab.path("status.log")),
            pp.display()
        ),
    );
    let _client = lab.start(false, "client", &client_conf("udp", "10.99.0.1"));
    assert!(ping_until(&lab.cns, "10.77.0.1", 20), "up\n{}", lab.logs());
    let written = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&pp).is_ok_and(|s| s.contains("client,10.77.0.2"))
    });
    assert!(
        written,
        "{:?}\n{}",
        std::fs::read_to_string(&pp),
        lab.logs()
    );
}

/// `resolv-retry 2` with a name that cannot resolve: exit 1 after ~2 s.
#[test]
fn tunnel_client_resolv_retry_gives_up() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let conf = client_conf("udp", "vpn-test-no-such-host.invalid")
        .replace("connect-retry 1 2\n", "connect-retry 1 1\nresolv-retry 2\n");
    let mut client = lab.start(false, "client", &conf);
    let exited = (0..200).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        client.try_exit()
    });
    assert_eq!(exited.and_then(|s| s.code()), Some(1), "{}", lab.logs());
}

/// `up`/`down` run with OpenVPN's arguments (`dev tun_mtu 0 local
/// netmask init`) and environment.
#[test]
fn tunnel_udp_up_down_scripts() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let out = lab.path("hooks.txt");
    let script = lab.path("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$script_type $* ifconfig_local=$ifconfig_local\" >> {}\n",
            out.display()
        ),
    )
    .expect("write script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _server = lab.start(true, "server", &server_conf("udp", &lab.path("status.log")));
    let mut client = lab.start(
        false,
        "client",
        &format!(
            "{}script-security 2\nup {s}\ndown {s}\n",
            client_conf("udp", "10.99.0.1"),
            s = script.display()
        ),
    );
    assert!(ping_until(&lab.cns, "10.77.0.1", 20), "up\n{}", lab.logs());
    let c = client.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(c.and_then(|s| s.code()), Some(0), "{}", lab.logs());
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "up tun0 1500 0 10.77.0.2 255.255.255.0 init ifconfig_local=10.77.0.2",
            "down tun0 1500 0 10.77.0.2 255.255.255.0 init ifconfig_local=10.77.0.2"
        ],
        "{}",
        lab.logs()
    );
}

/// The uid a process runs as (`Uid:` of /proc/PID/status, the real one).
fn uid_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `Gid:` (real) and `Groups:` lines of a process.
fn groups_of(pid: u32) -> Option<(u32, Vec<u32>)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let gid = s
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let groups = s
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))?
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    Some((gid, groups))
}

/// `user nobody` without `group`: nothing of root's groups stays (2.6
/// keeps gid 0 and root's supplementary groups; we take the user's own).
#[test]
fn user_without_group_leaves_no_root_group() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let sconf = format!(
        "{}user nobody\n",
        server_conf("udp", &lab.path("status.log"))
    );
    let server = lab.start(true, "server", &sconf);
    let _client = lab.start(false, "client", &client_conf("udp", "10.99.0.1"));
    assert!(ping_until(&lab.cns, "10.77.0.1", 20), "up\n{}", lab.logs());
    assert_eq!(uid_of(server.pid()), Some(65534), "server uid");
    let (gid, groups) = groups_of(server.pid()).expect("/proc status");
    assert_ne!(gid, 0, "gid 0 kept\n{}", lab.logs());
    assert!(!groups.contains(&0), "root's group kept: {groups:?}");
}

/// `user`/`group` with `persist-tun`/`persist-key` on both ends: after the
/// privilege drop the tunnel still renegotiates (reneg-sec 3) and the
/// client still reconnects (SIGUSR1 and a server restart), pings through
/// each time.
#[test]
fn tunnel_udp_works_after_dropping_privileges() {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let drop = "user nobody\ngroup nogroup\npersist-tun\npersist-key\n";
    let sconf = format!(
        "{}{drop}reneg-sec 3\n",
        server_conf("udp", &lab.path("status.log"))
    );
    let mut server = lab.start(true, "server", &sconf);
    let mut client = lab.start(
        false,
        "client",
        &format!("{}{drop}", client_conf("udp", "10.99.0.1")),
    );
    assert!(ping_until(&lab.cns, "10.77.0.1", 20), "up\n{}", lab.logs());
    let nobody = 65534;
    assert_eq!(uid_of(server.pid()), Some(nobody), "server uid");
    assert_eq!(uid_of(client.pid()), Some(nobody), "client uid");
    let client_log = || std::fs::read_to_string(lab.path("client.log")).unwrap_or_default();
    let renegotiated = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        client_log().contains("renegotiated")
    });
    assert!(renegotiated, "no renegotiation in 10 s\n{}", lab.logs());
    assert!(
        ping_until(&lab.cns, "10.77.0.1", 10),
        "after renegotiation\n{}",
        lab.logs()
    );
    lab.client_survives(&mut client, libc::SIGUSR1);
    // The server goes and comes back: the unprivileged client reconnects
    // on its kept tun device.
    let _server = lab.restart_server(&mut server, "server2", &sconf, 40);
    assert_eq!(
        uid_of(client.pid()),
        Some(nobody),
        "client uid after reconnects"
    );
}
