//! Static-key mode (`secret`) between our daemon and stock openvpn 2.6.14:
//! both key-direction orders, 2.6's default cipher (BF-CBC, with
//! `providers legacy default`) and `cipher AES-256-CBC`, UDP and one TCP
//! cell; pings through the tunnel both ways and a bulk transfer whose
//! SHA-256 is checked. The keys come from our `--genkey secret` (used by
//! openvpn) and from openvpn's (used by us), and both files have the same
//! layout. Neither side may report an OCC options mismatch, and ours must
//! get its OCC request answered. Also: `comp-lzo no` framing, IPv6 inside
//! the tunnel, `route`, the status file, float, ping-restart after the
//! peer restarts, `inactive`, and the start-up refusals both share
//! (BF-CBC without the legacy provider, AEAD ciphers).
//!
//! ```text
//!   ns srv 10.200.0.1 (listens, no remote)  ── bridge ──  ns cli 10.200.0.10 (remote 10.200.0.1)
//!   tunnel: 10.9.0.1 (srv) <-> 10.9.0.2 (cli), net30/p2p ifconfig
//! ```

use std::{fs, net::Ipv4Addr, path::Path, process::Command, time::Duration};

use tests::{
    Netns, daemon_binary,
    openvpn::{self, Impl, Peer},
    require_root,
    topology::{Topology, bulk_transfer, client_addr, float_client, ping, ping_until},
};

const SRV_TUN: &str = "10.9.0.1";
const SRV_TUN6: &str = "fd00:9::1";
const CLI_TUN6: &str = "fd00:9::2";
/// A network our end routes into the tunnel.
const ROUTED: &str = "10.77.0.0";
const CLI_TUN: &str = "10.9.0.2";
/// Small enough for BF-CBC in a debug build, large enough for many
/// full-size packets and TCP windows.
const BULK: u64 = 8 << 20;

/// Writes a static key with `imp`'s `--genkey secret` to `path`.
fn genkey(imp: Impl, path: &Path) {
    let mut cmd = match imp {
        Impl::OpenVpn => Command::new("openvpn"),
        Impl::Ours => Command::new(daemon_binary()),
    };
    let out = cmd
        .args(["--genkey", "secret"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{} --genkey: {e}", imp.label()));
    assert!(
        out.status.success(),
        "{} --genkey failed: {}",
        imp.label(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One end's config.
fn config(
    key: &Path,
    direction: Option<u8>,
    cipher: Option<&str>,
    proto: &str,
    remote: Option<Ipv4Addr>,
    local_tun: &str,
    remote_tun: &str,
) -> String {
    let mut c = format!(
        "dev tun\nproto {proto}\nlport 1194\nifconfig {local_tun} {remote_tun}\nsecret {}{}\nping 1\nping-restart 20\nverb 3\n",
        key.display(),
        direction.map(|d| format!(" {d}")).unwrap_or_default()
    );
    match cipher {
        Some(c2) => c.push_str(&format!("cipher {c2}\n")),
        // 2.6's default BF-CBC lives in OpenSSL 3's legacy provider.
        None => c.push_str("providers legacy default\n"),
    }
    if let Some(r) = remote {
        c.push_str(&format!("remote {r} 1194\n"));
    }
    c
}

struct Cell {
    /// Listening end (no remote) and its key direction.
    server: (Impl, Option<u8>),
    /// Connecting end.
    client: (Impl, Option<u8>),
    cipher: Option<&'static str>,
    tcp: bool,
    /// Who generates the key.
    keygen: Impl,
    bulk: bool,
    /// Lines both ends get.
    extra: &'static str,
    /// IPv6 inside the tunnel too (`ifconfig-ipv6`), pinged both ways.
    v6: bool,
}

fn run_cell(cell: Cell) {
    let topo = Topology::new(1);
    let dir = topo.path();
    let key = dir.join("static.key");
    genkey(cell.keygen, &key);
    let (sp, cp) = if cell.tcp {
        ("tcp-server", "tcp-client")
    } else {
        ("udp", "udp")
    };
    let mut srv_conf = config(&key, cell.server.1, cell.cipher, sp, None, SRV_TUN, CLI_TUN);
    let cli_conf = config(
        &key,
        cell.client.1,
        cell.cipher,
        cp,
        Some(Ipv4Addr::new(10, 200, 0, 1)),
        CLI_TUN,
        SRV_TUN,
    );
    let mut cli_conf = cli_conf;
    srv_conf.push_str(cell.extra);
    cli_conf.push_str(cell.extra);
    if cell.v6 {
        srv_conf.push_str(&format!("ifconfig-ipv6 {SRV_TUN6}/64 {CLI_TUN6}\n"));
        cli_conf.push_str(&format!("ifconfig-ipv6 {CLI_TUN6}/64 {SRV_TUN6}\n"));
    }
    // Site-to-site configs route a network through the tunnel.
    for (imp, conf) in [
        (cell.server.0, &mut srv_conf),
        (cell.client.0, &mut cli_conf),
    ] {
        if imp == Impl::Ours {
            conf.push_str(&format!("route {ROUTED} 255.255.255.0\n"));
            conf.push_str(&format!(
                "status {} 1\n",
                dir.join("ours-status.log").display()
            ));
        }
    }
    let mut srv = Peer::start(cell.server.0, &topo.server, dir, "srv", &srv_conf);
    // The listening end is ready once its socket is: openvpn completes
    // its initialisation only when the first packet of its peer came.
    let listening = match (cell.server.0, cell.tcp) {
        (_, true) => "Listening for incoming TCP connection",
        (Impl::OpenVpn, false) => "link local (bound)",
        (Impl::Ours, false) => "UDP link",
    };
    assert!(
        srv.wait_for_nth(listening, 1, Duration::from_secs(20)),
        "listening end not ready:\n{}",
        srv.log_text()
    );
    let mut cli = Peer::start(cell.client.0, &topo.clients[0], dir, "cli", &cli_conf);
    cli.wait_ready(Duration::from_secs(20));
    let cli_ns = &topo.clients[0];
    assert!(
        ping_until(cli_ns, SRV_TUN, Duration::from_secs(20)),
        "no ping client->server through the tunnel; server log:\n{}\nclient log:\n{}",
        srv.log_text(),
        cli.log_text()
    );
    assert!(
        ping_until(&topo.server, CLI_TUN, Duration::from_secs(10)),
        "no ping server->client; server log:\n{}\nclient log:\n{}",
        srv.log_text(),
        cli.log_text()
    );
    if cell.v6 {
        assert!(
            ping_until(cli_ns, SRV_TUN6, Duration::from_secs(10)),
            "no IPv6 ping client->server; server log:\n{}\nclient log:\n{}",
            srv.log_text(),
            cli.log_text()
        );
        assert!(
            ping_until(&topo.server, CLI_TUN6, Duration::from_secs(10)),
            "no IPv6 ping server->client"
        );
    }
    if cell.bulk {
        let t = bulk_transfer(
            cli_ns,
            &topo.server,
            SRV_TUN.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            5001,
            BULK,
            None,
        )
        .unwrap_or_else(|e| {
            panic!(
                "bulk transfer failed: {e}\nserver log:\n{}\nclient log:\n{}",
                srv.log_text(),
                cli.log_text()
            )
        });
        assert!(
            t.intact(BULK),
            "bulk transfer damaged: {} of {BULK} bytes",
            t.bytes
        );
        eprintln!(
            "static key {:?} tcp={}: {:.0} Mbit/s",
            cell.cipher,
            cell.tcp,
            t.mbit_s()
        );
    }
    // openvpn compares OCC strings and warns on every difference; we do too.
    for p in [&srv, &cli] {
        let log = p.log_text();
        assert!(
            !log.contains("inconsistently") && !log.contains("options of the peer differ"),
            "{} reported an OCC options mismatch:\n{log}",
            p.imp.label()
        );
        assert!(
            !log.contains("packet HMAC authentication failed")
                && !log.contains("Authenticate/Decrypt packet error"),
            "{} dropped packets of its peer:\n{log}",
            p.imp.label()
        );
    }
    for (p, ns) in [(&srv, &topo.server), (&cli, cli_ns)] {
        if p.imp != Impl::Ours {
            continue;
        }
        // Our OCC request was answered with the string we expected.
        assert!(
            p.log_text()
                .contains("OCC: the peer's options string is the one expected"),
            "no OCC reply reached ours:\n{}",
            p.log_text()
        );
        let out = Command::new("ip")
            .args(["-n", ns.name(), "route", "show", &format!("{ROUTED}/24")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        assert!(
            out.contains("dev tun"),
            "route {ROUTED}/24 not on the tun device: {out:?}"
        );
        // The status file's STATISTICS block counts the traffic (rewritten every second).
        let mut counted = false;
        for _ in 0..50 {
            let st = fs::read_to_string(dir.join("ours-status.log")).unwrap_or_default();
            let tun_read = st
                .lines()
                .find_map(|l| l.strip_prefix("TUN/TAP read bytes,"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            if tun_read.is_some_and(|n| n > 0) {
                counted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(counted, "status file without tun traffic");
    }
    srv.stop();
    cli.stop();
}

#[test]
fn udp_default_cipher_ours_dir0_listens_openvpn_dir1_connects_with_our_key() {
    if !require_root() {
        return;
    }
    run_cell(Cell {
        server: (Impl::Ours, Some(0)),
        client: (Impl::OpenVpn, Some(1)),
        cipher: None,
        tcp: false,
        keygen: Impl::Ours,
        bulk: true,
        extra: "",
        v6: false,
    });
}

#[test]
fn udp_aes256cbc_openvpn_dir0_listens_ours_dir1_connects_with_openvpn_key() {
    if !require_root() {
        return;
    }
    run_cell(Cell {
        server: (Impl::OpenVpn, Some(0)),
        client: (Impl::Ours, Some(1)),
        cipher: Some("AES-256-CBC"),
        tcp: false,
        keygen: Impl::OpenVpn,
        bulk: true,
        extra: "",
        v6: false,
    });
}

/// Also with `comp-lzo no` on both ends: the 0xFA framing byte, and the
/// `comp-lzo` OCC field with its byte in link-mtu.
#[test]
fn udp_aes256cbc_ours_dir1_listens_openvpn_dir0_connects_with_comp_lzo_no() {
    if !require_root() {
        return;
    }
    run_cell(Cell {
        server: (Impl::Ours, Some(1)),
        client: (Impl::OpenVpn, Some(0)),
        cipher: Some("AES-256-CBC"),
        tcp: false,
        keygen: Impl::Ours,
        bulk: false,
        extra: "comp-lzo no\n",
        v6: false,
    });
}

#[test]
fn udp_default_cipher_openvpn_listens_ours_connects_bidirectional_key() {
    if !require_root() {
        return;
    }
    run_cell(Cell {
        server: (Impl::OpenVpn, None),
        client: (Impl::Ours, None),
        cipher: None,
        tcp: false,
        keygen: Impl::OpenVpn,
        bulk: false,
        extra: "",
        v6: false,
    });
}

#[test]
fn tcp_aes256cbc_ours_tcp_server_openvpn_tcp_client_with_ipv6_inside() {
    if !require_root() {
        return;
    }
    run_cell(Cell {
        server: (Impl::Ours, Some(0)),
        client: (Impl::OpenVpn, Some(1)),
        cipher: Some("AES-256-CBC"),
        tcp: true,
        keygen: Impl::Ours,
        bulk: true,
        extra: "",
        v6: true,
    });
}

/// Our `--genkey secret` file has openvpn's layout line for line (only the
/// hex differs), and each implementation reads the other's file: openvpn
/// in its crypto self-test, ours in `--check-config` plus the cells above.
#[test]
fn genkey_secret_files_have_the_same_layout_and_openvpn_reads_ours() {
    let dir = tests::topology::TempDir::new("skgen");
    let ours = dir.path().join("ours.key");
    let theirs = dir.path().join("theirs.key");
    genkey(Impl::Ours, &ours);
    genkey(Impl::OpenVpn, &theirs);
    let a = fs::read_to_string(&ours).unwrap_or_default();
    let b = fs::read_to_string(&theirs).unwrap_or_default();
    assert_eq!(a.len(), b.len(), "ours:\n{a}\ntheirs:\n{b}");
    assert_ne!(a, b, "two fresh keys must differ");
    for (la, lb) in a.lines().zip(b.lines()) {
        if la.chars().all(|c| c.is_ascii_hexdigit()) {
            assert_eq!(la.len(), lb.len());
            assert!(lb.chars().all(|c| c.is_ascii_hexdigit()), "{lb}");
        } else {
            assert_eq!(la, lb);
        }
    }
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(&ours)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    // openvpn's self-test decrypts what it encrypted with our key.
    let out = Command::new("openvpn")
        .args(["--test-crypto", "--cipher", "AES-256-CBC", "--secret"])
        .arg(&ours)
        .output()
        .unwrap_or_else(|e| panic!("openvpn --test-crypto: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("crypto self-test mode SUCCEEDED"),
        "{text}"
    );
    // And ours reads openvpn's.
    let out = Command::new(daemon_binary())
        .args([
            "--check-config",
            "--dev",
            "tun",
            "--cipher",
            "AES-256-CBC",
            "--secret",
        ])
        .arg(&theirs)
        .output()
        .unwrap_or_else(|e| panic!("vpn-daemon --check-config: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ping 1` keeps an idle tunnel up in both directions (no ping-restart
/// fires while nothing else is sent); when openvpn goes away ours
/// restarts on ping-restart, and when openvpn comes back (a new packet-id
/// time) traffic flows again.
#[test]
fn pings_keep_an_idle_tunnel_up_and_ping_restart_recovers_from_a_peer_restart() {
    if !require_root() {
        return;
    }
    let topo = Topology::new(1);
    let dir = topo.path();
    let key = dir.join("static.key");
    genkey(Impl::Ours, &key);
    let srv_conf = config(
        &key,
        Some(0),
        Some("AES-128-CBC"),
        "udp",
        None,
        SRV_TUN,
        CLI_TUN,
    )
    .replace("ping-restart 20", "ping-restart 4");
    let cli_conf = config(
        &key,
        Some(1),
        Some("AES-128-CBC"),
        "udp",
        Some(Ipv4Addr::new(10, 200, 0, 1)),
        CLI_TUN,
        SRV_TUN,
    )
    .replace("ping-restart 20", "ping-restart 4");
    let mut srv = Peer::start(Impl::Ours, &topo.server, dir, "srv", &srv_conf);
    assert!(
        srv.wait_for_nth("UDP link", 1, Duration::from_secs(20)),
        "{}",
        srv.log_text()
    );
    let mut cli = Peer::start(Impl::OpenVpn, &topo.clients[0], dir, "cli", &cli_conf);
    cli.wait_ready(Duration::from_secs(20));
    assert!(
        ping_until(&topo.clients[0], SRV_TUN, Duration::from_secs(20)),
        "{}",
        srv.log_text()
    );
    // Idle for longer than ping-restart: only the pings cross.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        srv.count("Inactivity timeout"),
        0,
        "ours restarted:\n{}",
        srv.log_text()
    );
    assert_eq!(
        cli.count("Inactivity timeout"),
        0,
        "openvpn restarted:\n{}",
        cli.log_text()
    );
    cli.stop();
    assert!(
        srv.wait_for_nth(
            "Inactivity timeout (--ping-restart), restarting",
            1,
            Duration::from_secs(15)
        ),
        "ours did not restart after its peer left:\n{}",
        srv.log_text()
    );
    let mut cli = Peer::start(Impl::OpenVpn, &topo.clients[0], dir, "cli", &cli_conf);
    cli.wait_ready(Duration::from_secs(20));
    assert!(
        ping_until(&topo.clients[0], SRV_TUN, Duration::from_secs(20)),
        "no traffic after the restart:\n{}",
        srv.log_text()
    );
}

/// With `remote` set, `float` lets ours follow its peer to a new address
/// (after an authenticated packet); without it, packets from the new
/// address are dropped, as 2.6 does.
#[test]
fn float_follows_the_peer_to_a_new_address_and_without_float_it_is_dropped() {
    if !require_root() {
        return;
    }
    for float in [true, false] {
        let topo = Topology::new(1);
        let dir = topo.path();
        let key = dir.join("static.key");
        genkey(Impl::OpenVpn, &key);
        let mut srv_conf = config(
            &key,
            Some(0),
            Some("AES-256-CBC"),
            "udp",
            Some(client_addr(0)),
            SRV_TUN,
            CLI_TUN,
        );
        if float {
            srv_conf.push_str("float\n");
        }
        let cli_conf = config(
            &key,
            Some(1),
            Some("AES-256-CBC"),
            "udp",
            Some(Ipv4Addr::new(10, 200, 0, 1)),
            CLI_TUN,
            SRV_TUN,
        );
        let mut srv = Peer::start(Impl::Ours, &topo.server, dir, "srv", &srv_conf);
        srv.wait_ready(Duration::from_secs(20));
        let mut cli = Peer::start(Impl::OpenVpn, &topo.clients[0], dir, "cli", &cli_conf);
        cli.wait_ready(Duration::from_secs(20));
        assert!(
            ping_until(&topo.clients[0], SRV_TUN, Duration::from_secs(20)),
            "{}",
            srv.log_text()
        );
        let new = Ipv4Addr::new(10, 200, 0, 50);
        float_client(&topo.clients[0], client_addr(0), new);
        if float {
            assert!(
                ping_until(&topo.clients[0], SRV_TUN, Duration::from_secs(20)),
                "no traffic after the float:\n{}",
                srv.log_text()
            );
            assert!(
                srv.log_text().contains(&format!("{new}:1194")),
                "ours did not move to {new}:\n{}",
                srv.log_text()
            );
        } else {
            assert!(
                !ping(&topo.clients[0], SRV_TUN, 5),
                "a packet from {new} got through without float"
            );
            assert!(
                !srv.log_text().contains(&format!("{new}:1194")),
                "{}",
                srv.log_text()
            );
        }
    }
}

/// Runs `imp` on `config_text` in a namespace of its own until it exits
/// (at most 20 s); its exit code and output.
fn run_alone(imp: Impl, dir: &Path, config_text: &str) -> (Option<i32>, String) {
    let ns = Netns::new("skx");
    let conf = dir.join(format!("alone-{}.conf", imp.label()));
    fs::write(&conf, config_text).unwrap_or_else(|e| panic!("write config: {e}"));
    let mut child = openvpn::command(imp, &ns, &conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", imp.label()));
    let end = vpn_daemon::io::clock::now() + Duration::from_secs(20);
    let code = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            _ if vpn_daemon::io::clock::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = child
        .wait_with_output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    (code, out)
}

/// 2.6's default cipher needs OpenSSL's legacy provider: without
/// `providers legacy default` both implementations stop at start with
/// the same message; an AEAD cipher is refused by both as well.
#[test]
fn bf_cbc_without_the_legacy_provider_and_aead_ciphers_stop_both_at_start() {
    if !require_root() {
        return;
    }
    let dir = tests::topology::TempDir::new("skbf");
    let key = dir.path().join("static.key");
    genkey(Impl::Ours, &key);
    let base = format!(
        "dev tun\nifconfig {SRV_TUN} {CLI_TUN}\nsecret {}\n",
        key.display()
    );
    for (extra, message) in [
        ("", "Cipher BF-CBC not supported"),
        (
            "cipher AES-256-GCM\n",
            "Cipher 'AES-256-GCM' mode not supported",
        ),
    ] {
        for imp in [Impl::OpenVpn, Impl::Ours] {
            let (code, out) = run_alone(imp, dir.path(), &format!("{base}{extra}"));
            assert!(
                code.is_some_and(|c| c != 0),
                "{} did not fail ({code:?}):\n{out}",
                imp.label()
            );
            assert!(
                out.contains(message),
                "{} did not say {message:?}:\n{out}",
                imp.label()
            );
        }
    }
}

/// The PEM key types: our tls-crypt-v2 server key makes openvpn write a
/// client key and openvpn's makes ours write one (so each reads the
/// other's server key), each client key unwraps with its server key, and
/// the auth-token key has 2.6's label and size.
#[test]
fn genkey_pem_types_are_read_by_the_other_implementation() {
    let dir = tests::topology::TempDir::new("skpem");
    let d = dir.path();
    let make = |imp: Impl, args: &[&str]| {
        let mut cmd = match imp {
            Impl::OpenVpn => Command::new("openvpn"),
            Impl::Ours => Command::new(daemon_binary()),
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", imp.label()));
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            imp.label(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p = |n: &str| d.join(n).to_string_lossy().into_owned();
    make(
        Impl::Ours,
        &["--genkey", "tls-crypt-v2-server", &p("ours-srv.key")],
    );
    make(
        Impl::OpenVpn,
        &["--genkey", "tls-crypt-v2-server", &p("theirs-srv.key")],
    );
    // Each makes a client key from the other's server key.
    make(
        Impl::OpenVpn,
        &[
            "--tls-crypt-v2",
            &p("ours-srv.key"),
            "--genkey",
            "tls-crypt-v2-client",
            &p("theirs-cli.key"),
        ],
    );
    make(
        Impl::Ours,
        &[
            "--tls-crypt-v2",
            &p("theirs-srv.key"),
            "--genkey",
            "tls-crypt-v2-client",
            &p("ours-cli.key"),
            "bWV0YWRhdGE=",
        ],
    );
    // The client keys unwrap with the server key they were made for.
    for (srv, cli) in [
        ("ours-srv.key", "theirs-cli.key"),
        ("theirs-srv.key", "ours-cli.key"),
    ] {
        let s = fs::read_to_string(d.join(srv)).unwrap_or_default();
        let c = fs::read_to_string(d.join(cli)).unwrap_or_default();
        let server = vpn_daemon::proto::wire::tls_crypt::TlsCryptV2ServerKey::from_pem(&s)
            .unwrap_or_else(|e| panic!("{srv}: {e}"));
        let client = vpn_daemon::proto::wire::tls_crypt::TlsCryptV2ClientKey::from_pem(&c)
            .unwrap_or_else(|e| panic!("{cli}: {e}"));
        let (kc, _) = server
            .unwrap_client_key(&client.wkc)
            .unwrap_or_else(|e| panic!("{cli} does not unwrap with {srv}: {e}"));
        assert_eq!(kc.as_bytes(), client.kc.as_bytes());
    }
    make(Impl::Ours, &["--genkey", "auth-token", &p("ours-tok.key")]);
    make(
        Impl::OpenVpn,
        &["--genkey", "auth-token", &p("theirs-tok.key")],
    );
    let a = fs::read_to_string(d.join("ours-tok.key")).unwrap_or_default();
    let b = fs::read_to_string(d.join("theirs-tok.key")).unwrap_or_default();
    assert_eq!(a.len(), b.len());
    assert_eq!(a.lines().next(), b.lines().next());
    assert_eq!(a.lines().last(), b.lines().last());
}

/// `inactive 2`: with no tunnel traffic (nobody connects), ours exits on
/// its own, with status 0, as 2.6's SIGTERM "inactive".
#[test]
fn inactive_exits_when_the_tunnel_carries_nothing() {
    if !require_root() {
        return;
    }
    let dir = tests::topology::TempDir::new("skin");
    let key = dir.path().join("static.key");
    genkey(Impl::Ours, &key);
    let conf = format!(
        "dev tun\nifconfig {SRV_TUN} {CLI_TUN}\nsecret {}\ncipher AES-256-CBC\ninactive 2\nverb 3\n",
        key.display()
    );
    let (code, out) = run_alone(Impl::Ours, dir.path(), &conf);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Inactivity timeout (--inactive), exiting"),
        "{out}"
    );
}

/// `explicit-exit-notify`: whichever side leaves with SIGTERM tells the
/// other with OCC_EXIT, and the other restarts at once ("remote-exit")
/// instead of waiting for its ping-restart.
#[test]
fn explicit_exit_notify_makes_the_peer_restart_both_ways() {
    if !require_root() {
        return;
    }
    for leaver in [Impl::Ours, Impl::OpenVpn] {
        let stayer = match leaver {
            Impl::Ours => Impl::OpenVpn,
            Impl::OpenVpn => Impl::Ours,
        };
        let topo = Topology::new(1);
        let dir = topo.path();
        let key = dir.join("static.key");
        genkey(Impl::Ours, &key);
        let srv_conf = config(
            &key,
            Some(0),
            Some("AES-256-CBC"),
            "udp",
            None,
            SRV_TUN,
            CLI_TUN,
        );
        let cli_conf = config(
            &key,
            Some(1),
            Some("AES-256-CBC"),
            "udp",
            Some(Ipv4Addr::new(10, 200, 0, 1)),
            CLI_TUN,
            SRV_TUN,
        ) + "explicit-exit-notify 1\n";
        // The connecting end leaves; the listening end stays.
        let mut srv = Peer::start(stayer, &topo.server, dir, "srv", &srv_conf);
        let listening = match stayer {
            Impl::OpenVpn => "link local (bound)",
            Impl::Ours => "UDP link",
        };
        assert!(
            srv.wait_for_nth(listening, 1, Duration::from_secs(20)),
            "{}",
            srv.log_text()
        );
        let mut cli = Peer::start(leaver, &topo.clients[0], dir, "cli", &cli_conf);
        cli.wait_ready(Duration::from_secs(20));
        assert!(
            ping_until(&topo.clients[0], SRV_TUN, Duration::from_secs(20)),
            "{}",
            srv.log_text()
        );
        cli.stop();
        let said = match stayer {
            Impl::OpenVpn => "remote-exit",
            Impl::Ours => "OCC exit message received by peer",
        };
        assert!(
            srv.wait_for_nth(said, 1, Duration::from_secs(10)),
            "{} did not see {} leave:\n{}",
            stayer.label(),
            leaver.label(),
            srv.log_text()
        );
        assert_eq!(srv.count("Inactivity timeout"), 0);
    }
}
