//! Long-lived behaviour against stock openvpn: a renegotiation (reneg-sec
//! 10) in the middle of a transfer loses nothing; a client whose server was
//! killed and restarted comes back by ping-restart; a UDP client whose
//! address changes keeps its tunnel (float); an auth-user-pass-verify
//! script accepts one user and refuses another.
//!
//! Each scenario runs openvpn ↔ openvpn (the harness's reference), our
//! server with an openvpn client, an openvpn server with our client, and
//! ours with ours.

use std::{fs, net::Ipv4Addr, time::Duration};

use tests::{
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn},
        Peer, Proto, READY_LINE, SERVER_TUN_ADDR, TlsWrap, TunnelSpec, client_config,
        write_verify_script,
    },
    topology::{READY_TIMEOUT, SERVER_ADDR, Tunnel, client_addr, float_client, ping, ping_until},
};

fn spec() -> TunnelSpec {
    TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm)
}

/// 24 MiB spread over 25 s with reneg-sec 10: at least two new key_states
/// while data flows; the hash proves nothing was lost or reordered.
fn renegotiation_during_transfer(server: Impl, client: Impl) {
    let mut s = spec();
    s.reneg_sec = Some(10);
    let t = Tunnel::start(s, server, &[client]);
    t.assert_ping_both_ways(0);
    t.assert_bulk(0, 24 << 20, Some(Duration::from_secs(25)));
    // openvpn logs one "Control Channel:" line per TLS session; read the
    // openvpn side of the pair.
    let reference = if server == OpenVpn {
        &t.server
    } else {
        &t.clients[0]
    };
    if reference.imp == OpenVpn {
        let sessions = reference.count("Control Channel:");
        assert!(
            sessions >= 3,
            "expected the initial handshake and two renegotiations, saw {sessions}; log {}",
            reference.log.display()
        );
    }
    t.assert_ping_both_ways(0);
}

/// keepalive 1 5 (pushed): the server is killed, comes back 2 s later on
/// the same config, and the client reconnects by itself.
fn ping_restart_after_server_restart(server: Impl, client: Impl) {
    let mut s = spec();
    s.keepalive = Some((1, 5));
    let mut t = Tunnel::start(s, server, &[client]);
    t.assert_ping_both_ways(0);
    let (config, log) = (t.server.config.clone(), t.server.log.clone());
    t.server.stop();
    std::thread::sleep(Duration::from_secs(2));
    t.server = Peer::start_file(server, &t.topo.server, &config, &log);
    t.server.wait_ready(READY_TIMEOUT);
    assert!(
        t.clients[0].wait_for_nth(READY_LINE, 2, Duration::from_secs(45)),
        "the client did not reconnect after ping-restart; log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
}

/// The client's packets start coming from 10.200.0.110 (stateless NAT in
/// its namespace): the tunnel keeps working and the server's status file
/// shows the new address.
fn float_to_new_address(server: Impl, client: Impl) {
    let t = Tunnel::start(spec(), server, &[client]);
    t.assert_ping_both_ways(0);
    let new = Ipv4Addr::new(10, 200, 0, 110);
    float_client(&t.topo.clients[0], client_addr(0), new);
    assert!(
        ping_until(&t.topo.clients[0], SERVER_TUN_ADDR, Duration::from_secs(15)),
        "no tunnel traffic after the client floated; logs in {}",
        t.topo.path().display()
    );
    t.assert_ping_both_ways(0);
    let end = vpn_daemon::io::clock::now() + Duration::from_secs(5);
    while !t.status().contains(&new.to_string()) {
        assert!(
            vpn_daemon::io::clock::now() < end,
            "the server's status file does not show {new}:\n{}",
            t.status()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// alice/secret is let in; bob is told AUTH_FAILED and never gets a
/// tunnel; alice keeps hers.
fn verify_script_accepts_one_user(server: Impl, client: Impl) {
    let mut s = spec();
    // The server's config names the script, so it must exist before the
    // topology's own directory does; this one outlives the tunnel.
    let topo_dir = tests::topology::TempDir::new("vpnauth");
    s.verify_script = Some(write_verify_script(topo_dir.path(), "alice", "secret"));
    let mut t = Tunnel::start_server(s, server, 2);
    for (i, (user, pass)) in [("alice", "secret"), ("bob", "secret")].iter().enumerate() {
        let creds = t.topo.path().join(format!("creds{i}"));
        fs::write(&creds, format!("{user}\n{pass}\n")).expect("write creds");
        // openvpn's default auth-retry is none: a refused client stops.
        let text = client_config(
            &t.spec,
            &t.pki,
            &SERVER_ADDR.to_string(),
            None,
            Some(&creds),
        );
        t.add_client(i, client, &text);
    }
    t.clients[0].wait_ready(READY_TIMEOUT);
    t.assert_ping_both_ways(0);
    assert!(
        t.clients[1].wait_for_nth("AUTH_FAILED", 1, Duration::from_secs(30)),
        "bob was not refused with AUTH_FAILED; log {}",
        t.clients[1].log.display()
    );
    assert_eq!(t.clients[1].count(READY_LINE), 0, "bob got a tunnel");
    assert!(
        !ping(&t.topo.clients[1], SERVER_TUN_ADDR, 1),
        "bob reaches the server's tunnel address"
    );
    t.assert_ping_both_ways(0);
}

tests::interop_scenario!(renegotiation_during_transfer);
tests::interop_scenario!(ping_restart_after_server_restart);
tests::interop_scenario!(float_to_new_address);
tests::interop_scenario!(verify_script_accepts_one_user);
