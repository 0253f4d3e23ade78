//! The management interface of our server against real management clients:
//! raw sockets for the byte-exact parts (prompt, tries, greeting, CRLF,
//! several sessions, a client that never reads) and the `openvpn-api`
//! library from PyPI (in the venv `cargo xtask setup` makes) for what
//! tools parse; a stock openvpn client is connected throughout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vpn_daemon::io::clock;

use tests::{
    Netns,
    openvpn::{Cipher, Impl, Proto, TlsWrap, TunnelSpec},
    require_root,
    topology::{TempDir, Tunnel},
};

const PORT: u16 = 7505;
const PASSWORD: &str = "s3cret-pw";
const PROMPT: &str = "ENTER PASSWORD:";
const GREETING: &str =
    ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(ns: &Netns) -> TcpStream {
    let s = ns
        .run(|| TcpStream::connect(("127.0.0.1", PORT)))
        .expect("connect to the management port");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// Reads until `buf` ends with `end` (bounded by the read timeout).
fn read_until<S: Read>(s: &mut S, end: &str) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    let deadline = clock::now() + IO_TIMEOUT;
    while !out.ends_with(end.as_bytes()) {
        assert!(
            clock::now() < deadline,
            "no {end:?} in {:?}",
            String::from_utf8_lossy(&out)
        );
        match s.read(&mut b) {
            Ok(0) => panic!("closed before {end:?}: {:?}", String::from_utf8_lossy(&out)),
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) => panic!("read: {e} (got {:?})", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// Reads exactly `text.len()` bytes and checks they are `text`.
fn expect_exact<S: Read>(s: &mut S, text: &str) {
    let mut b = vec![0u8; text.len()];
    s.read_exact(&mut b).expect("read");
    assert_eq!(String::from_utf8_lossy(&b), text);
}

/// True when the peer closes without sending anything more.
fn closed_silently<S: Read>(s: &mut S) -> bool {
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0))
}

fn login(ns: &Netns) -> TcpStream {
    let mut s = connect(ns);
    expect_exact(&mut s, PROMPT);
    s.write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write");
    expect_exact(
        &mut s,
        &format!("SUCCESS: password is correct\r\n{GREETING}"),
    );
    s
}

fn cmd(s: &mut TcpStream, c: &str, end: &str) -> String {
    s.write_all(format!("{c}\r\n").as_bytes()).expect("write");
    read_until(s, end)
}

fn every_line_crlf(text: &str) {
    assert!(text.ends_with("\r\n"), "{text:?}");
    for l in text.split_inclusive('\n') {
        assert!(l.ends_with("\r\n"), "line without CRLF: {l:?} in {text:?}");
    }
}

fn server_with_management(extra: Vec<String>, clients: &[Impl]) -> Tunnel {
    server_over(Proto::Udp, extra, clients)
}

fn server_over(proto: Proto, extra: Vec<String>, clients: &[Impl]) -> Tunnel {
    let mut spec = TunnelSpec::new(proto, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    spec.server_extra = extra;
    Tunnel::start(spec, Impl::Ours, clients)
}

fn nclients(s: &mut TcpStream) -> String {
    cmd(s, "nclients", "\r\n")
}

fn wait_nclients(s: &mut TcpStream, want: &str) {
    let deadline = clock::now() + Duration::from_secs(40);
    loop {
        let got = nclients(s);
        if got == format!("SUCCESS: nclients={want}\r\n") {
            return;
        }
        assert!(
            clock::now() < deadline,
            "nclients stayed {got:?}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The venv `cargo xtask setup` fills.
fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py-mgmt/bin/python")
}

/// Drives the management port with `openvpn-api` (its own parsing), the
/// password given on the socket before the library takes it over (the
/// library has no password support).
const PY_CLIENT: &str = r#"
import json, socket, sys
import openvpn_api
port, pw = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
buf = b""
while not buf.endswith(b"ENTER PASSWORD:"):
    buf += s.recv(100)
s.sendall(pw.encode() + b"\n")
buf = b""
while b">INFO:" not in buf:
    buf += s.recv(4096)
v = openvpn_api.VPN("127.0.0.1", port)
v._socket = s
stats = v.get_stats()
# The library's get_status() hands `status 1` to openvpn-status 0.2.2,
# which only knows the time format of 2.4 and older (stock 2.6 fails it
# too), so the client list is read from `status 3` through its framing.
rows = [l.split("\t") for l in v.send_command("status 3").splitlines()]
clients = [r for r in rows if r[0] == "CLIENT_LIST"]
out = {
    "release": v.release,
    "version": v.version,
    "nclients": int(stats.client_count),
    "bytes_in": int(stats.bytes_in),
    "bytes_out": int(stats.bytes_out),
    "clients": sorted(r[2] for r in clients),
    "names": sorted(r[1] for r in clients),
}
print(json.dumps(out))
v.disconnect()
"#;

fn python(ns: &Netns, script: &str, args: &[&str]) -> String {
    let py = venv_python();
    assert!(
        py.exists(),
        "{} missing: run `cargo xtask setup`",
        py.display()
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(&py)
        .args(["-c", script])
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn management_over_tcp_with_a_password_and_a_stock_client() {
    if !require_root() {
        return;
    }
    let pw = TempDir::new("mgmtpw");
    let pw_file = pw.path().join("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).expect("pw file");
    let mut t = server_with_management(
        vec![format!("management 127.0.0.1 {PORT} {}", pw_file.display())],
        &[Impl::OpenVpn],
    );
    let ns = &t.topo.server;

    // The prompt has no line end; a wrong password gets the prompt again,
    // and the third wrong one closes the connection without a word.
    let mut s = connect(ns);
    expect_exact(&mut s, PROMPT);
    s.write_all(b"nope\n").expect("write");
    expect_exact(&mut s, PROMPT);
    s.write_all(b"nope2\r\n").expect("write");
    expect_exact(&mut s, PROMPT);
    s.write_all(b"nope3\n").expect("write");
    assert!(
        closed_silently(&mut s),
        "third wrong password did not close"
    );

    // Two sessions at once, each answered on its own.
    let mut a = login(ns);
    let mut b = login(ns);
    let pid = t.server.pid().expect("server pid");
    assert_eq!(
        cmd(&mut b, "pid", "\r\n"),
        format!("SUCCESS: pid={pid}\r\n")
    );
    assert_eq!(
        cmd(&mut a, "pid", "\r\n"),
        format!("SUCCESS: pid={pid}\r\n")
    );

    let version = cmd(&mut a, "version", "END\r\n");
    every_line_crlf(&version);
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(lines.len(), 3, "{version:?}");
    assert!(
        lines[0].starts_with("OpenVPN Version: OpenVPN 2.6.14 "),
        "{version:?}"
    );
    assert_eq!(lines[1], "Management Version: 5");
    // `version N` is silent in 2.6: the next reply is the pid's.
    assert_eq!(
        cmd(&mut a, "version 4\r\npid", "\r\n"),
        format!("SUCCESS: pid={pid}\r\n")
    );
    let help = cmd(&mut a, "help", "END\r\n");
    every_line_crlf(&help);
    assert!(
        help.starts_with("Management Interface for OpenVPN\r\n"),
        "{help:?}"
    );
    assert_eq!(
        cmd(&mut a, "frobnicate", "\r\n"),
        "ERROR: unknown command, enter 'help' for more options\r\n"
    );

    wait_nclients(&mut a, "1");
    let status = cmd(&mut a, "status 2", "END\r\n");
    every_line_crlf(&status);
    assert!(
        status.contains("\r\nCLIENT_LIST,client,10.200.0.10:"),
        "{status:?}"
    );
    let status3 = cmd(&mut a, "status 3", "END\r\n");
    assert!(
        status3.contains("CLIENT_LIST\tclient\t10.200.0.10:"),
        "{status3:?}"
    );
    let stats = cmd(&mut a, "load-stats", "\r\n");
    assert!(
        stats.starts_with("SUCCESS: nclients=1,bytesin="),
        "{stats:?}"
    );

    // A real management client library, through its own parsing.
    let out = python(ns, PY_CLIENT, &[&PORT.to_string(), PASSWORD]);
    assert!(out.contains("\"version\": \"2.6.14\""), "{out}");
    assert!(out.contains("\"nclients\": 1,"), "{out}");
    assert!(out.contains("\"names\": [\"client\"]"), "{out}");
    assert!(out.contains("\"clients\": [\"10.200.0.10:"), "{out}");

    // A session that never reads is disconnected; the others and the
    // tunnel go on.
    let mut flood = login(ns);
    let started = clock::now();
    let many = "help\n".repeat(20_000);
    flood.write_all(many.as_bytes()).expect("flood write");
    assert_eq!(
        cmd(&mut b, "pid", "\r\n"),
        format!("SUCCESS: pid={pid}\r\n")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    t.assert_ping_both_ways(0);
    // Draining it now ends in EOF (it was dropped), within a bounded read.
    let mut total = 0usize;
    let mut buf = vec![0u8; 65536];
    loop {
        match flood.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("flooding session not closed: {e} after {total} bytes"),
        }
        assert!(total < 64 << 20, "flooding session kept being served");
    }
    assert!(
        t.server
            .wait_for_nth("does not read its replies", 1, IO_TIMEOUT),
        "no log line for the dropped session"
    );

    // client-kill: the client gets RESTART, reconnects.
    let status = cmd(&mut a, "status 2", "END\r\n");
    let cid = status
        .lines()
        .find(|l| l.starts_with("CLIENT_LIST,client,"))
        .and_then(|l| l.split(',').nth(10))
        .expect("client id column")
        .to_string();
    assert_eq!(
        cmd(&mut a, &format!("client-kill {cid}"), "\r\n"),
        "SUCCESS: client-kill command succeeded\r\n"
    );
    assert!(
        t.clients[0].wait_for_nth("server-pushed-connection-reset", 1, IO_TIMEOUT),
        "the client did not get RESTART: {}",
        t.clients[0].log_text()
    );
    assert_eq!(
        cmd(&mut a, "client-kill 999999", "\r\n"),
        "ERROR: client-kill command failed\r\n"
    );
    wait_nclients(&mut a, "1");

    // kill CN: that client goes; load-stats' totals are since start, so
    // they keep its bytes.
    let bytes_in = |s: &str| -> u64 {
        s.split("bytesin=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no bytesin in {s:?}"))
    };
    let before = bytes_in(&cmd(&mut a, "load-stats", "\r\n"));
    assert!(before > 0);
    assert_eq!(
        cmd(&mut a, "kill client", "\r\n"),
        "SUCCESS: common name 'client' found, 1 client(s) killed\r\n"
    );
    wait_nclients(&mut a, "0");
    let after = cmd(&mut a, "load-stats", "\r\n");
    assert!(after.starts_with("SUCCESS: nclients=0,"), "{after:?}");
    assert!(bytes_in(&after) >= before, "{after:?} after {before}");
    assert_eq!(
        cmd(&mut a, "kill nobody", "\r\n"),
        "ERROR: common name 'nobody' not found\r\n"
    );
    assert_eq!(
        cmd(&mut a, "kill 10.200.0.99:1194", "\r\n"),
        "ERROR: client at address 10.200.0.99:1194 not found\r\n"
    );

    // signal goes the way of a real one: SIGUSR2 logs statistics, SIGTERM
    // ends the server.
    assert_eq!(
        cmd(&mut a, "signal SIGUSR2", "\r\n"),
        "SUCCESS: signal SIGUSR2 thrown\r\n"
    );
    assert_eq!(
        cmd(&mut a, "signal SIGTERM", "\r\n"),
        "SUCCESS: signal SIGTERM thrown\r\n"
    );
    assert!(
        t.server.wait_exit(Duration::from_secs(15)).is_some(),
        "signal SIGTERM did not end the server"
    );
    // quit on the other session was never needed: the listener went with
    // the loop.
    assert!(closed_silently(&mut b));
}

#[test]
fn management_unix_socket_checks_the_peer_user() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("mgmtunix");
    let root_sock = dir.path().join("root.sock");
    let t = server_with_management(
        vec![
            format!("management {} unix", root_sock.display()),
            "management-client-user root".to_string(),
        ],
        &[],
    );
    let mut s = UnixStream::connect(&root_sock).expect("connect as root");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    expect_exact(&mut s, GREETING);
    s.write_all(b"pid\n").expect("write");
    let pid = t.server.pid().expect("pid");
    assert_eq!(
        read_until(&mut s, "\r\n"),
        format!("SUCCESS: pid={pid}\r\n")
    );
    s.write_all(b"quit\n").expect("write");
    assert!(closed_silently(&mut s));
    drop(t);

    // Another user only: root is turned away without a word.
    let nobody_sock = dir.path().join("nobody.sock");
    let _t = server_with_management(
        vec![
            format!("management {} unix", nobody_sock.display()),
            "management-client-user nobody".to_string(),
        ],
        &[],
    );
    let mut s = UnixStream::connect(&nobody_sock).expect("connect as root");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    assert!(
        closed_silently(&mut s),
        "root was served on a nobody-only socket"
    );
}

#[test]
fn management_on_a_tcp_server_without_a_password() {
    if !require_root() {
        return;
    }
    let t = server_over(
        Proto::Tcp,
        vec![format!("management localhost {PORT}")],
        &[Impl::OpenVpn],
    );
    let ns = &t.topo.server;
    let mut s = connect(ns);
    expect_exact(&mut s, GREETING);
    wait_nclients(&mut s, "1");
    let status = cmd(&mut s, "status 2", "END\r\n");
    every_line_crlf(&status);
    let real = status
        .lines()
        .find(|l| l.starts_with("CLIENT_LIST,client,"))
        .and_then(|l| l.split(',').nth(2))
        .expect("real address column")
        .to_string();
    assert_eq!(
        cmd(&mut s, &format!("kill {real}"), "\r\n"),
        format!("SUCCESS: 1 client(s) at address {real} killed\r\n")
    );
    // SIGHUP restarts the server; the listener comes back with it.
    assert_eq!(
        cmd(&mut s, "signal SIGHUP", "\r\n"),
        "SUCCESS: signal SIGHUP thrown\r\n"
    );
    assert!(closed_silently(&mut s), "the session outlived the restart");
    let deadline = clock::now() + Duration::from_secs(20);
    let mut s = loop {
        if let Ok(s) = ns.run(|| TcpStream::connect(("127.0.0.1", PORT))) {
            break s;
        }
        assert!(clock::now() < deadline, "no listener after SIGHUP");
        std::thread::sleep(Duration::from_millis(200));
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    expect_exact(&mut s, GREETING);
    wait_nclients(&mut s, "1");
    s.write_all(b"exit\n").expect("write");
    assert!(closed_silently(&mut s));
    t.assert_ping_both_ways(0);
}

/// In client mode the listener runs too: the session's own commands are
/// answered and the tunnel is unaffected.
#[test]
fn management_on_our_client() {
    if !require_root() {
        return;
    }
    let mut spec = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    spec.client_extra = vec![format!("management 127.0.0.1 {PORT}")];
    let t = Tunnel::start(spec, Impl::OpenVpn, &[Impl::Ours]);
    let mut s = connect(&t.topo.clients[0]);
    expect_exact(&mut s, GREETING);
    let version = cmd(&mut s, "version", "END\r\n");
    assert!(
        version.starts_with("OpenVPN Version: OpenVPN 2.6.14 "),
        "{version:?}"
    );
    let help = cmd(&mut s, "help", "END\r\n");
    every_line_crlf(&help);
    t.assert_ping_both_ways(0);
    s.write_all(b"quit\n").expect("write");
    assert!(closed_silently(&mut s));
}
