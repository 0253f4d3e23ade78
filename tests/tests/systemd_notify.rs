//! sd_notify messages as systemd receives them: our server and client run
//! in test namespaces with `NOTIFY_SOCKET` pointing at a datagram socket the
//! test binds; the messages are read in order. Covers READY=1 once the
//! tunnel is up (with the tunnel then usable), STATUS lines, the watchdog,
//! RELOADING=1 on SIGHUP, STOPPING=1 at exit, and failed starts (no READY,
//! a STATUS naming the reason).

use std::{
    fs,
    net::UdpSocket,
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    thread,
    time::Duration,
};

use tests::{
    Netns,
    openvpn::{
        Cipher, Impl, PORT, Pki, Proto, SERVER_TUN_ADDR, TlsWrap, TunnelSpec, client_config,
        command, server_config,
    },
    require_root,
    topology::{SERVER_ADDR, Topology, ping},
};
use vpn_daemon::io::clock;

const WAIT: Duration = Duration::from_secs(30);

/// The test's end of `NOTIFY_SOCKET`: every datagram the daemon sent, in
/// order of arrival.
struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path, name: &str) -> Self {
        let path = dir.join(format!("{name}.notify"));
        let sock =
            UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        Self {
            sock,
            path,
            seen: Vec::new(),
        }
    }

    /// Reads until a message satisfies `want` (returns its index) or
    /// `timeout` passes (None).
    fn until(&mut self, timeout: Duration, want: impl Fn(&str) -> bool) -> Option<usize> {
        self.until_after(0, timeout, want)
    }

    /// [`Self::until`] looking only at messages from index `from` on.
    fn until_after(
        &mut self,
        from: usize,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Option<usize> {
        if let Some(i) = self.seen.iter().skip(from).position(|m| want(m)) {
            return Some(from + i);
        }
        let end = clock::now() + timeout;
        let mut buf = [0u8; 4096];
        while clock::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg);
                if want(self.seen.last().map_or("", String::as_str)) {
                    return Some(self.seen.len() - 1);
                }
            }
        }
        None
    }

    /// Reads whatever arrives within `d`.
    fn drain(&mut self, d: Duration) {
        let _ = self.until(d, |_| false);
    }
}

/// One line `KEY=...` of a message.
fn has(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

fn status_of(msg: &str) -> Option<&str> {
    msg.lines().find_map(|l| l.strip_prefix("STATUS="))
}

/// Our daemon in `ns` with `NOTIFY_SOCKET` (and `extra` variables); killed
/// on drop. The log goes next to the config.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn start(ns: &Netns, config: &Path, notify: &NotifySocket, extra: &[(&str, &str)]) -> Self {
        let log = config.with_extension("log");
        let out = fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("dup log");
        let mut cmd = command(Impl::Ours, ns, config);
        cmd.env("NOTIFY_SOCKET", &notify.path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start vpn-daemon");
        Self {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        if let Ok(pid) = i32::try_from(self.pid()) {
            // SAFETY: kill on our own child's pid, not yet reaped.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Waits (bounded) for the process to end by itself.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = clock::now() + timeout;
        while clock::now() < end {
            if let Some(s) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Some(s);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn spec() -> TunnelSpec {
    let mut s = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    // The plain socket path: these tests are about the notifications.
    s.server_extra.push("xdp off".into());
    s.client_extra.push("xdp off".into());
    s
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.conf"));
    fs::write(&p, text).expect("write config");
    p
}

#[test]
fn server_and_client_ready_status_watchdog_reload_stopping() {
    if !require_root() {
        return;
    }
    let topo = Topology::new(1);
    let dir = topo.path().to_path_buf();
    let pki = Pki::new(&dir.join("pki"));
    let spec = spec();

    let mut srv_sock = NotifySocket::bind(&dir, "server");
    let srv_conf = write(
        &dir,
        "server",
        &server_config(
            &spec,
            &pki,
            &SERVER_ADDR.to_string(),
            &dir.join("status.txt"),
        ),
    );
    // WATCHDOG_USEC without WATCHDOG_PID: for whichever process reads it.
    let mut srv = Daemon::start(
        &topo.server,
        &srv_conf,
        &srv_sock,
        &[("WATCHDOG_USEC", "400000")],
    );
    let ready = srv_sock
        .until(WAIT, |m| has(m, "READY=1"))
        .unwrap_or_else(|| {
            panic!(
                "server: no READY=1 in {:?}; log:\n{}",
                srv_sock.seen,
                srv.log_text()
            )
        });
    let msg = srv_sock.seen[ready].clone();
    assert_eq!(
        status_of(&msg),
        Some("Initialization Sequence Completed"),
        "{msg:?}"
    );
    assert!(
        has(&msg, &format!("MAINPID={}", srv.pid())),
        "{msg:?} (pid {})",
        srv.pid()
    );
    // The watchdog pings come from the running daemon.
    assert!(
        srv_sock.until(WAIT, |m| has(m, "WATCHDOG=1")).is_some(),
        "no WATCHDOG=1: {:?}",
        srv_sock.seen
    );

    let mut cli_sock = NotifySocket::bind(&dir, "client");
    let cli_conf = write(
        &dir,
        "client",
        &client_config(&spec, &pki, &SERVER_ADDR.to_string(), None, None),
    );
    let mut cli = Daemon::start(&topo.clients[0], &cli_conf, &cli_sock, &[]);
    let ready = cli_sock
        .until(WAIT, |m| has(m, "READY=1"))
        .unwrap_or_else(|| {
            panic!(
                "client: no READY=1 in {:?}; log:\n{}",
                cli_sock.seen,
                cli.log_text()
            )
        });
    // Nothing before READY=1 claimed the tunnel was up or failed.
    assert_eq!(
        ready, 0,
        "client messages before READY: {:?}",
        cli_sock.seen
    );
    let msg = &cli_sock.seen[ready];
    assert_eq!(
        status_of(msg),
        Some("Initialization Sequence Completed"),
        "{msg:?}"
    );
    assert!(has(msg, &format!("MAINPID={}", cli.pid())), "{msg:?}");
    // READY=1 means connected: the tunnel carries traffic now.
    assert!(
        ping(&topo.clients[0], SERVER_TUN_ADDR, 1),
        "READY=1 but no ping through the tunnel"
    );
    // No watchdog asked of the client, none sent.
    cli_sock.drain(Duration::from_millis(300));
    assert!(
        !cli_sock.seen.iter().any(|m| has(m, "WATCHDOG=1")),
        "{:?}",
        cli_sock.seen
    );

    // SIGHUP on the server: RELOADING=1, then READY=1 again once it is back.
    srv.signal(libc::SIGHUP);
    let reloading = srv_sock
        .until(WAIT, |m| has(m, "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1: {:?}", srv_sock.seen));
    assert!(
        srv_sock.seen[reloading]
            .lines()
            .any(|l| l.starts_with("MONOTONIC_USEC="))
    );
    let again = srv_sock.until_after(reloading + 1, WAIT, |m| has(m, "READY=1"));
    assert!(
        again.is_some(),
        "no READY=1 after the reload: {:?}",
        srv_sock.seen
    );

    // SIGTERM: STOPPING=1, and the process ends.
    cli.signal(libc::SIGTERM);
    assert!(
        cli_sock.until(WAIT, |m| has(m, "STOPPING=1")).is_some(),
        "client: no STOPPING=1: {:?}",
        cli_sock.seen
    );
    assert!(cli.wait_exit(WAIT).is_some(), "client did not exit");
    srv.signal(libc::SIGTERM);
    assert!(
        srv_sock.until(WAIT, |m| has(m, "STOPPING=1")).is_some(),
        "server: no STOPPING=1: {:?}",
        srv_sock.seen
    );
    assert!(srv.wait_exit(WAIT).is_some(), "server did not exit");
}

/// Starts a server that must fail; returns every message and the log.
fn failed_start(topo: &Topology, name: &str, config_text: &str) -> (Vec<String>, String) {
    let dir = topo.path();
    let mut sock = NotifySocket::bind(dir, name);
    let conf = write(dir, name, config_text);
    let mut d = Daemon::start(&topo.server, &conf, &sock, &[]);
    let status = d.wait_exit(WAIT);
    let log = d.log_text();
    assert!(
        status.is_some_and(|s| !s.success()),
        "{name}: expected a failed exit, got {status:?}; log:\n{log}"
    );
    sock.drain(Duration::from_millis(200));
    assert!(
        !sock.seen.iter().any(|m| has(m, "READY=1")),
        "{name}: READY=1 from a failed start: {:?}",
        sock.seen
    );
    (sock.seen, log)
}

#[test]
fn failed_starts_send_no_ready_and_name_the_reason() {
    if !require_root() {
        return;
    }
    let topo = Topology::new(0);
    let dir = topo.path().to_path_buf();
    let pki = Pki::new(&dir.join("pki"));
    let good = server_config(
        &spec(),
        &pki,
        &SERVER_ADDR.to_string(),
        &dir.join("status.txt"),
    );

    // A certificate file that is not there (a configuration error).
    let missing = dir.join("no-such-server.crt");
    let text: String = good
        .lines()
        .map(|l| {
            if l.starts_with("cert ") {
                format!("cert {}", missing.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (msgs, log) = failed_start(&topo, "nocert", &text);
    let failed: Vec<&str> = msgs.iter().filter_map(|m| status_of(m)).collect();
    assert!(
        failed
            .iter()
            .any(|s| s.starts_with("Failed to start up:") && s.contains("no-such-server.crt")),
        "no STATUS naming the missing file: {msgs:?}; log:\n{log}"
    );
    assert!(msgs.iter().any(|m| has(m, "ERRNO=1")), "{msgs:?}");

    // The port is taken (a failure while starting the tunnel).
    let _taken = topo.server.run(|| {
        UdpSocket::bind((SERVER_ADDR, PORT)).unwrap_or_else(|e| panic!("bind the port first: {e}"))
    });
    let (msgs, log) = failed_start(&topo, "busy", &good);
    assert!(
        msgs.iter()
            .filter_map(|m| status_of(m))
            .any(|s| s.starts_with("Failed to start up:")
                && (s.contains("in use") || s.contains(&PORT.to_string()))),
        "no STATUS naming the busy port: {msgs:?}; log:\n{log}"
    );
}
