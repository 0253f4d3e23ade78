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

/// Server and client up over `proto`, pings both ways, clean exit.
fn tunnel_over(server_proto: &str, client_proto: &str) {
    if !require_root() {
        return;
    }
    let bin = daemon_binary();
    let dir = TempDir::new();
    let sns = Netns::new("tus");
    let cns = Netns::new("tuc");
    VethPair::new(&sns, &cns)
        .addr_a([10, 99, 0, 1])
        .addr_b([10, 99, 0, 2])
        .create();
    let status = dir.0.join("status.log");
    let sconf = dir.0.join("server.conf");
    let cconf = dir.0.join("client.conf");
    std::fs::write(&sconf, server_conf(server_proto, &status)).expect("write");
    std::fs::write(&cconf, client_conf(client_proto, "10.99.0.1")).expect("write");
    let slog = dir.0.join("server.log");
    let clog = dir.0.join("client.log");
    let mut server = NsProcess::spawn(
        &sns,
        &bin,
        &["--config", &sconf.display().to_string()],
        &slog,
    );
    let mut client = NsProcess::spawn(
        &cns,
        &bin,
        &["--config", &cconf.display().to_string()],
        &clog,
    );
    let logs = || {
        format!(
            "server log:\n{}\nclient log:\n{}",
            std::fs::read_to_string(&slog).unwrap_or_default(),
            std::fs::read_to_string(&clog).unwrap_or_default()
        )
    };
    assert!(
        ping_until(&cns, "10.77.0.1", 20),
        "client -> server ping failed\n{}",
        logs()
    );
    assert!(
        ping_until(&sns, "10.77.0.2", 5),
        "server -> client ping failed\n{}",
        logs()
    );
    // The status file lists the client within its 1 s interval.
    let listed = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&status).is_ok_and(|s| s.contains("client,10.99.0.2"))
    });
    assert!(listed, "status file without the client\n{}", logs());
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
