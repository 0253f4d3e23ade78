//! Our client's walk over its servers against a stock openvpn server: a
//! `<connection>` list whose first entry never answers (server poll
//! timeout, then the second entry), and a remote given by a host name
//! resolved through an `/etc/hosts` that `ip netns exec` bind-mounts from
//! `/etc/netns/NAME/hosts` for the client's namespace only; and the TCP
//! tunnel through a real HTTP proxy (tinyproxy, basic authentication) and
//! a real SOCKS5 proxy (dante) run in the server's namespace; and SIGUSR1
//! after the name moved, with and without persist-remote-ip.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use tests::{
    NsProcess,
    openvpn::{
        Cipher,
        Impl::{OpenVpn, Ours},
        PORT, Proto, READY_LINE, TlsWrap, TunnelSpec, client_config,
    },
    require_root,
    topology::{READY_TIMEOUT, SERVER_ADDR, Tunnel},
};

fn spec() -> TunnelSpec {
    TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm)
}

/// The generated client config with its `remote` line replaced by `with`.
fn client_text(t: &Tunnel, with: &str) -> String {
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    let plain = format!("remote {SERVER_ADDR} {PORT}\n");
    assert!(text.contains(&plain), "the harness's remote line moved");
    text.replace(&plain, with)
}

/// `/etc/netns/<ns>/hosts`, and a `resolv.conf` pointing at the
/// namespace's own loopback (where nothing answers, so a name missing from
/// `hosts` fails at once and no query leaves the namespace); removed (with
/// the directory) on drop.
struct NetnsHosts(PathBuf);

impl NetnsHosts {
    fn new(ns: &str, text: &str) -> Self {
        let dir = PathBuf::from("/etc/netns").join(ns);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let me = Self(dir);
        fs::write(me.0.join("hosts"), text).unwrap_or_else(|e| panic!("write hosts: {e}"));
        fs::write(
            me.0.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )
        .unwrap_or_else(|e| panic!("write resolv.conf: {e}"));
        me
    }
}

impl NetnsHosts {
    /// Rewrites `hosts` in place: the bind mount `ip netns exec` made
    /// shows the same file, so running processes see the change.
    fn rewrite(&self, text: &str) {
        fs::write(self.0.join("hosts"), text).unwrap_or_else(|e| panic!("rewrite hosts: {e}"));
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn first_connection_entry_silent_client_moves_on_to_the_second() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), OpenVpn, 1);
    // Port 1195 on the server's address: nothing listens, UDP gets no
    // answer (ICMP errors do not reach an unconnected socket).
    let blocks = format!(
        "<connection>\nremote {SERVER_ADDR} 1195 udp\nserver-poll-timeout 3\n</connection>\n\
         <connection>\nremote {SERVER_ADDR} {PORT} udp\nexplicit-exit-notify 1\n</connection>\n"
    );
    let text = client_text(&t, &blocks);
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    let log = t.clients[0].log_text();
    assert!(
        log.contains("Server poll timeout"),
        "the first entry should have timed out; log {}",
        t.clients[0].log.display()
    );
    assert!(
        log.contains(&format!("{SERVER_ADDR}:1195"))
            && log.contains(&format!("{SERVER_ADDR}:{PORT}")),
        "both entries should have been tried; log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

#[test]
fn remote_host_name_resolved_from_the_namespace_hosts_file() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), OpenVpn, 1);
    // Two addresses for the name: 10.200.0.11 (nobody there) and the
    // server. glibc sorts them by RFC 6724 rule 9 (longest prefix shared
    // with our 10.200.0.10), so .11 comes first whatever the file's order:
    // the walk must try it, time out, and take the second address.
    let silent = "10.200.0.11";
    let _hosts = NetnsHosts::new(
        t.topo.clients[0].name(),
        &format!(
            "127.0.0.1 localhost\n{SERVER_ADDR} vpn-gw.test\n{silent} vpn-gw.test\n10.66.0.1 routed.test\n"
        ),
    );
    // A `route` by name too: resolved from the same file when the tunnel
    // comes up.
    let text = client_text(
        &t,
        &format!(
            "remote vpn-gw.test {PORT}\nproto udp4\nserver-poll-timeout 2\nroute routed.test 255.255.255.255\n"
        ),
    );
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    let log = t.clients[0].log_text();
    let first = log.find(&format!("{silent}:{PORT}"));
    let second = log.find(&format!("{SERVER_ADDR}:{PORT}"));
    assert!(
        matches!((first, second), (Some(a), Some(b)) if a < b),
        "the name's two addresses should have been tried in order; log {}",
        t.clients[0].log.display()
    );
    let ns = &t.topo.clients[0];
    let routed = (0..50).any(|_| {
        let out = std::process::Command::new("ip")
            .args(["-n", ns.name(), "route", "show", "10.66.0.1"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.contains("tun0") || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(
        routed,
        "no route to routed.test (10.66.0.1) via tun0; log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

#[test]
fn unresolvable_name_is_skipped_for_the_next_entry() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(spec(), OpenVpn, 1);
    let _hosts = NetnsHosts::new(
        t.topo.clients[0].name(),
        &format!("127.0.0.1 localhost\n{SERVER_ADDR} vpn-gw.test\n"),
    );
    // `.invalid` never resolves (RFC 6761) and the namespace has no DNS.
    let text = client_text(
        &t,
        &format!(
            "remote no-such-host.invalid {PORT}\nremote vpn-gw.test {PORT}\nresolv-retry infinite\n"
        ),
    );
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    assert!(
        t.clients[0]
            .log_text()
            .contains("Cannot resolve host address"),
        "log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

/// tinyproxy in the server's namespace on 10.200.0.1:8888, CONNECT to the
/// OpenVPN port only, basic authentication `alice`/`secret`.
fn start_tinyproxy(t: &Tunnel) -> NsProcess {
    let dir = t.topo.path();
    let conf = dir.join("tinyproxy.conf");
    fs::write(
        &conf,
        format!(
            "User nobody\nGroup nogroup\nPort 8888\nListen {SERVER_ADDR}\nTimeout 60\n\
             Allow 10.200.0.0/24\nBasicAuth alice secret\nConnectPort {PORT}\nLogLevel Info\n"
        ),
    )
    .unwrap_or_else(|e| panic!("write tinyproxy.conf: {e}"));
    NsProcess::spawn(
        &t.topo.server,
        Path::new("tinyproxy"),
        &["-d", "-c", &conf.to_string_lossy()],
        &dir.join("tinyproxy.log"),
    )
}

fn tcp_spec() -> TunnelSpec {
    TunnelSpec::new(Proto::Tcp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm)
}

#[test]
fn http_proxy_with_basic_auth_carries_the_tcp_tunnel() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(tcp_spec(), OpenVpn, 1);
    let _proxy = start_tinyproxy(&t);
    let auth = t.topo.path().join("proxy-auth.txt");
    fs::write(&auth, "alice\nsecret\n").unwrap_or_else(|e| panic!("write auth: {e}"));
    let text = client_text(
        &t,
        &format!(
            "remote {SERVER_ADDR} {PORT}\nhttp-proxy {SERVER_ADDR} 8888 {} basic\nhttp-proxy-option AGENT vpn-daemon-test\n",
            auth.display()
        ),
    );
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    assert!(
        t.clients[0].log_text().contains("proxy connection to"),
        "log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

#[test]
fn http_proxy_refusing_the_password_ends_the_walk() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(tcp_spec(), OpenVpn, 1);
    let _proxy = start_tinyproxy(&t);
    let auth = t.topo.path().join("proxy-auth.txt");
    fs::write(&auth, "alice\nwrong\n").unwrap_or_else(|e| panic!("write auth: {e}"));
    let text = client_text(
        &t,
        &format!(
            "remote {SERVER_ADDR} {PORT}\nhttp-proxy {SERVER_ADDR} 8888 {}\nconnect-retry-max 2\n",
            auth.display()
        ),
    );
    let c = t.add_client(0, Ours, &text);
    let status = c.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the client should give up; log {}",
        c.log.display()
    );
    // tinyproxy answers a bad password with 401 (a 407 would do as well).
    assert!(
        c.log_text().contains("HTTP proxy returned: HTTP/1.0 401"),
        "log {}",
        c.log.display()
    );
}

#[test]
fn socks5_proxy_carries_the_tcp_tunnel() {
    if !require_root() {
        return;
    }
    let mut t = Tunnel::start_server(tcp_spec(), OpenVpn, 1);
    let dir = t.topo.path().to_path_buf();
    let conf = dir.join("danted.conf");
    fs::write(
        &conf,
        format!(
            "logoutput: stderr\ninternal: {SERVER_ADDR} port = 1080\nexternal: {SERVER_ADDR}\n\
             clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n\
             client pass {{ from: 10.200.0.0/24 to: 0.0.0.0/0 }}\n\
             socks pass {{ from: 10.200.0.0/24 to: {SERVER_ADDR}/32 port = {PORT} command: connect }}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("write danted.conf: {e}"));
    let _proxy = NsProcess::spawn(
        &t.topo.server,
        Path::new("danted"),
        &["-f", &conf.to_string_lossy(), "-N", "1"],
        &dir.join("danted.log"),
    );
    let text = client_text(
        &t,
        &format!("remote {SERVER_ADDR} {PORT}\nsocks-proxy {SERVER_ADDR} 1080\n"),
    );
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    assert!(
        t.clients[0].log_text().contains("proxy connection to"),
        "log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

/// The client connects to `vpn-gw.test`, the name then moves to a silent
/// address and the client gets SIGUSR1; `persist` adds persist-remote-ip.
/// Returns the tunnel, client 0 signalled.
fn sigusr1_after_the_name_moved(persist: bool) -> Tunnel {
    let mut t = Tunnel::start_server(spec(), OpenVpn, 1);
    let hosts = NetnsHosts::new(
        t.topo.clients[0].name(),
        &format!("127.0.0.1 localhost\n{SERVER_ADDR} vpn-gw.test\n"),
    );
    let mut extra = format!("remote vpn-gw.test {PORT}\nproto udp4\nserver-poll-timeout 2\n");
    if persist {
        extra.push_str("persist-remote-ip\n");
    }
    let text = client_text(&t, &extra);
    t.add_client(0, Ours, &text).wait_ready(READY_TIMEOUT);
    hosts.rewrite("127.0.0.1 localhost\n10.200.0.77 vpn-gw.test\n");
    let pid = t.clients[0].pid().expect("client running");
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
    t
}

#[test]
fn persist_remote_ip_keeps_the_address_across_sigusr1() {
    if !require_root() {
        return;
    }
    let mut t = sigusr1_after_the_name_moved(true);
    let again = t.clients[0].wait_for_nth(READY_LINE, 2, Duration::from_secs(15));
    let log = t.clients[0].log_text();
    assert!(again, "no reconnect; log {}", t.clients[0].log.display());
    assert!(
        !log.contains("10.200.0.77"),
        "the name was resolved again; log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

#[test]
fn without_persist_remote_ip_sigusr1_resolves_the_name_again() {
    if !require_root() {
        return;
    }
    let mut t = sigusr1_after_the_name_moved(false);
    assert!(
        t.clients[0].wait_for_nth(&format!("10.200.0.77:{PORT}"), 1, Duration::from_secs(10)),
        "SIGUSR1 should re-resolve the name to its new address; log {}",
        t.clients[0].log.display()
    );
}
