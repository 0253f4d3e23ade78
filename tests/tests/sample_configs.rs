//! The configurations an administrator already runs start unchanged:
//! OpenVPN's sample `server.conf`/`client.conf` and a typical 2.6 pair
//! (`server-2.6.conf`/`client-2.6.conf`: tls-crypt, EC certificates,
//! subnet topology, dual stack, pushed redirect-gateway and DNS), each file
//! byte for byte as committed in `testdata/configs`, with only the files it
//! names beside it in the process's working directory.
//!
//! Every pair runs both ways (our daemon on one end, stock openvpn 2.6 on
//! the other) and carries pings through the tunnel in both directions.
//! The clients' `remote` host names resolve inside the client namespace
//! through `/etc/netns/<ns>/hosts`, which `ip netns exec` bind-mounts over
//! `/etc/hosts`; the file is removed afterwards, also on failure.
//!
//! ```text
//!   ns srv  <server addr>/24 ──veth── <client addr>/24  ns cli
//!                                      default via the server
//! ```
//!
//! Our daemon runs with a fake `resolvectl` first in its `PATH` (the
//! 2.6 client pushes and configures DNS): the host's resolver is never
//! touched, and the fake's record proves the settings were applied.
//!
//! Needs root, `openvpn` and the daemon binary (`cargo build -p vpn-daemon`).

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tests::openvpn::{Impl, READY_LINE};
use tests::topology::{TempDir, iface_addr, ping_until};
use tests::{Netns, VethPair, daemon_binary, require_root, workspace_root};

/// How long a client may take to connect.
const READY: Duration = Duration::from_secs(40);

fn configs() -> PathBuf {
    workspace_root().join("testdata/configs")
}

/// Copies `names` (files or directories) from `testdata/configs` into `dir`.
fn provide(dir: &Path, names: &[&str]) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    for n in names {
        let from = configs().join(n);
        let to = dir.join(n);
        if from.is_dir() {
            fs::create_dir_all(&to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
            for e in fs::read_dir(&from).unwrap_or_else(|e| panic!("read {n}: {e}")) {
                let e = e.unwrap_or_else(|e| panic!("read {n}: {e}"));
                fs::copy(e.path(), to.join(e.file_name()))
                    .unwrap_or_else(|err| panic!("copy {}: {err}", e.path().display()));
            }
        } else {
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {n}: {e}"));
        }
    }
}

/// `/etc/netns/<ns>/hosts` for the lifetime of the value.
struct NetnsHosts(PathBuf);

impl NetnsHosts {
    fn new(ns: &Netns, entries: &str) -> Self {
        let dir = Path::new("/etc/netns").join(ns.name());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        // Owned before the write, so a failed write still cleans up.
        let me = Self(dir);
        fs::write(
            me.0.join("hosts"),
            format!("127.0.0.1 localhost\n{entries}\n"),
        )
        .unwrap_or_else(|e| panic!("write hosts: {e}"));
        me
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("remove {}: {e}", self.0.display());
        }
    }
}

/// A daemon (ours or openvpn) in a namespace with its own working
/// directory; SIGTERM, then SIGKILL, on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Runs `imp --config <config>` in `ns` from `cwd` (log `cwd/<config>.log`).
    /// Ours gets `fakebin` first in its `PATH`.
    fn start(imp: Impl, ns: &Netns, cwd: &Path, config: &str, fakebin: &Path) -> Self {
        let log = cwd.join(format!("{config}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("dup log: {e}"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name()]);
        match imp {
            Impl::OpenVpn => cmd.arg("openvpn"),
            Impl::Ours => cmd
                .arg("/usr/bin/env")
                .arg(format!(
                    "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
                    fakebin.display()
                ))
                .arg(daemon_binary()),
        };
        let child = cmd
            .args(["--config", config])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", imp.label()));
        Self { child, log }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for `line` in the log; false if it exited first.
    fn wait_for(&mut self, line: &str, timeout: Duration) -> bool {
        let end = vpn_daemon::io::clock::now() + timeout;
        while vpn_daemon::io::clock::now() < end {
            if self.log_text().contains(line) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.log_text().contains(line);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// SIGTERM and wait up to 10 s; the exit code.
    fn stop(&mut self) -> Option<i32> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return s.code();
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let end = vpn_daemon::io::clock::now() + Duration::from_secs(10);
        while vpn_daemon::io::clock::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One pair of sample files and where they expect each other.
struct Pair {
    server_conf: &'static str,
    server_files: &'static [&'static str],
    client_conf: &'static str,
    client_files: &'static [&'static str],
    /// The server's underlay address (the client's `remote` resolves to it).
    server_addr: [u8; 4],
    client_addr: [u8; 4],
    /// `/etc/hosts` lines for the client namespace.
    hosts: &'static str,
    /// The server's tunnel address.
    server_tun: &'static str,
    /// The server's `status` file, relative to its working directory.
    status: &'static str,
}

/// OpenVPN's sample files (`sample/sample-config-files` in its sources).
const SAMPLE: Pair = Pair {
    server_conf: "server.conf",
    server_files: &["ca.crt", "server.crt", "server.key", "dh2048.pem", "ta.key"],
    client_conf: "client.conf",
    client_files: &["ca.crt", "client.crt", "client.key", "ta.key"],
    server_addr: [10, 61, 0, 1],
    client_addr: [10, 61, 0, 2],
    hosts: "10.61.0.1 my-server-1",
    server_tun: "10.8.0.1",
    status: "openvpn-status.log",
};

/// A typical 2.6 pair. `remote-random` picks either remote: the name and
/// the literal address both lead to the server.
const TYPICAL_2_6: Pair = Pair {
    server_conf: "server-2.6.conf",
    server_files: &["ca.crt", "server.crt", "server.key", "tc.key", "ccd"],
    client_conf: "client-2.6.conf",
    client_files: &["ca.crt", "client.crt", "client.key", "tc.key"],
    server_addr: [198, 51, 100, 7],
    client_addr: [198, 51, 100, 8],
    hosts: "198.51.100.7 vpn.example.net",
    server_tun: "10.20.0.1",
    status: "server-2.6-status.log",
};

/// A fake `resolvectl` that appends its arguments to `<dir>/resolvectl.calls`.
fn fake_resolvectl(dir: &Path) -> PathBuf {
    let bin = dir.join("fakebin");
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("mkdir fakebin: {e}"));
    let fake = bin.join("resolvectl");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\n",
            dir.join("resolvectl.calls").display()
        ),
    )
    .unwrap_or_else(|e| panic!("write fake resolvectl: {e}"));
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod fake resolvectl: {e}"));
    bin
}

/// Runs `pair` with `server` and `client`: the client connects, pings
/// cross the tunnel both ways, both ends exit cleanly on SIGTERM. Returns
/// the fake resolvectl's record.
fn run_pair(pair: &Pair, server: Impl, client: Impl) -> String {
    let tmp = TempDir::new("vpnsample");
    let sdir = tmp.path().join("server");
    let cdir = tmp.path().join("client");
    provide(&sdir, &[pair.server_conf]);
    provide(&sdir, pair.server_files);
    provide(&cdir, &[pair.client_conf]);
    provide(&cdir, pair.client_files);
    // Unchanged, byte for byte.
    for (dir, name) in [(&sdir, pair.server_conf), (&cdir, pair.client_conf)] {
        assert_eq!(
            fs::read(dir.join(name)).ok(),
            fs::read(configs().join(name)).ok(),
            "{name}"
        );
    }
    let fakebin = fake_resolvectl(tmp.path());
    let sns = Netns::new("sps");
    let cns = Netns::new("spc");
    let [a, b, c, d] = pair.server_addr;
    VethPair::new(&sns, &cns)
        .addr_a(pair.server_addr)
        .addr_b(pair.client_addr)
        .create();
    let server_ip = format!("{a}.{b}.{c}.{d}");
    // A default route, so redirect-gateway has a gateway to keep the
    // server reachable through.
    cns.ip(&["route", "add", "default", "via", &server_ip]);
    let _hosts = NetnsHosts::new(&cns, pair.hosts);

    let mut srv = Proc::start(server, &sns, &sdir, pair.server_conf, &fakebin);
    let server_ready = match server {
        Impl::Ours => "server listening",
        Impl::OpenVpn => READY_LINE,
    };
    assert!(
        srv.wait_for(server_ready, READY),
        "{} server not ready:\n{}",
        server.label(),
        srv.log_text()
    );
    let mut cli = Proc::start(client, &cns, &cdir, pair.client_conf, &fakebin);
    let logs = |srv: &Proc, cli: &Proc| {
        format!(
            "server log:\n{}\nclient log:\n{}",
            srv.log_text(),
            cli.log_text()
        )
    };
    assert!(
        cli.wait_for(READY_LINE, READY),
        "{} client did not connect\n{}",
        client.label(),
        logs(&srv, &cli)
    );
    assert!(
        ping_until(&cns, pair.server_tun, Duration::from_secs(10)),
        "client -> server ping\n{}",
        logs(&srv, &cli)
    );
    let caddr = iface_addr(&cns, "tun0")
        .unwrap_or_else(|| panic!("no address on the client's tun0\n{}", logs(&srv, &cli)));
    assert!(
        ping_until(&sns, &caddr.to_string(), Duration::from_secs(10)),
        "server -> client {caddr} ping\n{}",
        logs(&srv, &cli)
    );
    let c = cli.stop();
    let s = srv.stop();
    let text = logs(&srv, &cli);
    assert_eq!(c, Some(0), "client exit\n{text}");
    assert_eq!(s, Some(0), "server exit\n{text}");
    // Written at start and at exit; with `user nobody` (2.6 pair) through
    // the descriptor opened before the privilege drop.
    let status = fs::read_to_string(sdir.join(pair.status)).unwrap_or_default();
    assert!(
        status.contains("ROUTING TABLE") || status.contains("ROUTING_TABLE"),
        "status file {}: {status:?}\n{text}",
        pair.status
    );
    assert!(
        !srv.log_text().contains("status file"),
        "status file warnings\n{text}"
    );
    fs::read_to_string(tmp.path().join("resolvectl.calls")).unwrap_or_default()
}

#[test]
fn sample_server_ours_client_openvpn() {
    if require_root() {
        run_pair(&SAMPLE, Impl::Ours, Impl::OpenVpn);
    }
}

#[test]
fn sample_server_openvpn_client_ours() {
    if require_root() {
        let calls = run_pair(&SAMPLE, Impl::OpenVpn, Impl::Ours);
        assert_eq!(calls, "", "no DNS in the sample pair");
    }
}

#[test]
fn typical_2_6_server_ours_client_openvpn() {
    if require_root() {
        run_pair(&TYPICAL_2_6, Impl::Ours, Impl::OpenVpn);
    }
}

#[test]
fn typical_2_6_server_openvpn_client_ours() {
    if require_root() {
        let calls = run_pair(&TYPICAL_2_6, Impl::OpenVpn, Impl::Ours);
        // client-2.6.conf's own `dns` options (server 1, search domain)
        // replace the pushed dhcp-option DNS; the pushed `dns server 0`
        // sorts first.
        assert_eq!(
            calls,
            "dns tun0 10.20.0.1\n\
             domain tun0 corp.example.net ~.\n\
             revert tun0\n"
        );
    }
}
