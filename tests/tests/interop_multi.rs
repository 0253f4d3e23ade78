//! Several clients at once on one server, ours and openvpn mixed: every
//! client reaches the server, and a client reaches another client's tunnel
//! address exactly when `client-to-client` is on (off, the packet goes up
//! the server's tun into a namespace that does not forward).

use std::time::Duration;

use tests::{
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn, Ours},
        Proto, TlsWrap, TunnelSpec,
    },
    require_root,
    topology::{Tunnel, ping},
};

const MIXED: [Impl; 3] = [Ours, OpenVpn, Ours];

fn three_clients(server: Impl, clients: [Impl; 3], proto: Proto, c2c: bool) {
    if !require_root() {
        return;
    }
    let mut spec = TunnelSpec::new(proto, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    spec.client_to_client = c2c;
    let t = Tunnel::start(spec, server, &clients);
    for i in 0..clients.len() {
        t.assert_ping_both_ways(i);
    }
    // Each client tries the next one's tunnel address (ours → openvpn,
    // openvpn → ours, ours → ours).
    for i in 0..clients.len() {
        let j = (i + 1) % clients.len();
        let dst = t.client_tun_addr(j).to_string();
        let ok = ping(&t.topo.clients[i], &dst, 3);
        assert_eq!(
            ok,
            c2c,
            "client {i} ({}) -> client {j} ({}) at {dst} with client-to-client {}; logs in {}",
            clients[i].label(),
            clients[j].label(),
            if c2c { "on" } else { "off" },
            t.topo.path().display()
        );
    }
    // Nothing above may have knocked a client off.
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..clients.len() {
        t.assert_ping_both_ways(i);
    }
}

#[test]
fn ours_server_udp_client_to_client_on() {
    three_clients(Ours, MIXED, Proto::Udp, true);
}

#[test]
fn ours_server_udp_client_to_client_off() {
    three_clients(Ours, MIXED, Proto::Udp, false);
}

#[test]
fn ours_server_tcp_client_to_client_on() {
    three_clients(Ours, MIXED, Proto::Tcp, true);
}

#[test]
fn openvpn_server_udp_client_to_client_on() {
    three_clients(OpenVpn, MIXED, Proto::Udp, true);
}

#[test]
fn openvpn_server_udp_client_to_client_off() {
    three_clients(OpenVpn, MIXED, Proto::Udp, false);
}

/// The harness's own check: openvpn everywhere.
#[test]
fn openvpn_only_udp_client_to_client_on() {
    three_clients(OpenVpn, [OpenVpn; 3], Proto::Udp, true);
}

/// The harness's own check: openvpn everywhere.
#[test]
fn openvpn_only_udp_client_to_client_off() {
    three_clients(OpenVpn, [OpenVpn; 3], Proto::Udp, false);
}
