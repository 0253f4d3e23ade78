//! The interop scenarios of the client/server issue again, with the XDP
//! fast path forced on at our side(s): our server with a stock openvpn
//! client, a stock openvpn server with our client, and ours with ours
//! (there once with `xdp native` and once with the default `auto`, which
//! must find the interface and pick native mode on veth by itself); a
//! renegotiation during a transfer, a server restart the clients survive by
//! ping-restart (the new process attaches afresh), and two clients on one
//! server, each with its own `PEERS` entry.
//!
//! Every cell also proves that the fast path carried the traffic: the
//! classifier is attached to our side's underlay interface in the mode
//! asked for (read from the kernel, `ip link` + `bpftool`), and its
//! redirect counter grew by at least the packets the transfer needed.

use std::time::Duration;

use std::{collections::BTreeMap, net::SocketAddr};

use tests::{
    bpftool::ClassifierMaps,
    fastpath::{FastPathMode, assert_logged_mode, classifier, min_packets, server_status},
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn, Ours},
        Peer, Proto, READY_LINE, TlsWrap, TunnelSpec,
    },
    require_root,
    status::column_u64,
    topology::Tunnel,
};
use vpn_common::stats::REDIRECT;

/// Bytes of the bulk cells: enough for thousands of data packets, small
/// enough for the CI budget.
const BULK: u64 = 20 << 20;

/// Our sides' classifiers (server, client), each asserted in `mode`.
fn our_classifiers(
    t: &Tunnel,
    server: Impl,
    client: Impl,
    mode: FastPathMode,
) -> [Option<ClassifierMaps>; 2] {
    let side = |imp: Impl, ns, who: &str, peer| {
        (imp == Ours).then(|| {
            assert_logged_mode(peer, mode);
            classifier(ns, mode, who).unwrap_or_else(|| panic!("{who}: no XDP program"))
        })
    };
    [
        side(server, &t.topo.server, "server", &t.server),
        side(client, &t.topo.clients[0], "client", &t.clients[0]),
    ]
}

fn redirected(m: &Option<ClassifierMaps>) -> u64 {
    m.as_ref().map_or(0, |m| m.stat(REDIRECT))
}

/// One cell: pings both ways, optionally a hashed bulk upload; both our
/// sides must have redirected packets, the server at least the upload's.
fn xdp_cell(spec: TunnelSpec, server: Impl, client: Impl, mode: FastPathMode, bulk: bool) {
    let mut spec = spec;
    mode.apply(&mut spec, server, client);
    let t = Tunnel::start(spec, server, &[client]);
    let maps = our_classifiers(&t, server, client, mode);
    t.assert_ping_both_ways(0);
    for (m, who) in maps.iter().zip(["server", "client"]) {
        if m.is_some() {
            assert!(
                redirected(m) > 0,
                "{who}: no packet went through the fast path; logs in {}",
                t.topo.path().display()
            );
        }
    }
    if bulk {
        let before = redirected(&maps[0]);
        let x = t.assert_bulk(0, BULK, None);
        eprintln!(
            "{} {}->{} xdp {mode:?}: {:.0} Mbit/s",
            t.spec.label(),
            client.label(),
            server.label(),
            x.mbit_s()
        );
        if maps[0].is_some() {
            let delta = redirected(&maps[0]) - before;
            assert!(
                delta >= min_packets(BULK),
                "the server redirected {delta} packets for a {BULK}-byte upload"
            );
        }
    }
}

macro_rules! cell {
    ($name:ident, $srv:expr, $cli:expr, $mode:ident, $wrap:ident, $cipher:ident, $bulk:expr) => {
        #[test]
        fn $name() {
            if !require_root() {
                return;
            }
            let spec = TunnelSpec::new(Proto::Udp, TlsWrap::$wrap, Cipher::$cipher);
            xdp_cell(spec, $srv, $cli, FastPathMode::$mode, $bulk);
        }
    };
}

/// A renegotiation every 5 s while 8 MiB flow for 12 s: the data keys
/// change under the fast path (peer-id and address stay, key_id moves)
/// and nothing is lost; the server's classifier redirected the upload.
fn renegotiation(server: Impl, client: Impl) {
    let mut spec = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    spec.reneg_sec = Some(5);
    let mode = FastPathMode::Native;
    mode.apply(&mut spec, server, client);
    let t = Tunnel::start(spec, server, &[client]);
    let maps = our_classifiers(&t, server, client, mode);
    t.assert_ping_both_ways(0);
    let before = redirected(&maps[0]);
    let bytes = 8 << 20;
    t.assert_bulk(0, bytes, Some(Duration::from_secs(12)));
    let reference = if server == OpenVpn {
        &t.server
    } else {
        &t.clients[0]
    };
    if reference.imp == OpenVpn {
        let sessions = reference.count("Control Channel:");
        assert!(
            sessions >= 3,
            "expected the first handshake and two renegotiations, saw {sessions}; log {}",
            reference.log.display()
        );
    }
    if maps[0].is_some() {
        let delta = redirected(&maps[0]) - before;
        assert!(
            delta >= min_packets(bytes),
            "the server redirected {delta} packets across renegotiations"
        );
    }
    t.assert_ping_both_ways(0);
}

/// Our server (native) is stopped and started again on the same config
/// (keepalive 1 5): the new process attaches afresh, the stock client
/// comes back by ping-restart, and its traffic is redirected again.
fn server_restart(client: Impl) {
    let mut spec = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    spec.keepalive = Some((1, 5));
    let mode = FastPathMode::Native;
    mode.apply(&mut spec, Ours, client);
    let mut t = Tunnel::start(spec, Ours, &[client]);
    our_classifiers(&t, Ours, client, mode);
    t.assert_ping_both_ways(0);
    let (config, log) = (t.server.config.clone(), t.server.log.clone());
    t.server.stop();
    std::thread::sleep(Duration::from_secs(2));
    t.server = Peer::start_file_with_args(Ours, &t.topo.server, &config, &log, &t.spec.server_args);
    // The log is appended to: wait for the second fast-path line.
    assert!(
        t.server
            .wait_for_nth("XDP fast path running", 2, Duration::from_secs(20)),
        "the restarted server did not start its fast path; log {}",
        log.display()
    );
    let m = classifier(&t.topo.server, mode, "restarted server").expect("attached");
    assert!(
        t.clients[0].wait_for_nth(READY_LINE, 2, Duration::from_secs(45)),
        "the client did not reconnect; log {}",
        t.clients[0].log.display()
    );
    t.assert_ping_both_ways(0);
    let before = m.stat(REDIRECT);
    let bytes = 4 << 20;
    t.assert_bulk(0, bytes, None);
    assert!(m.stat(REDIRECT) - before >= min_packets(bytes));
}

/// Two clients (a stock openvpn and ours) on our server in native mode
/// (our client in `auto`): `PEERS` holds exactly the two peer-ids of the
/// status file at their addresses, and both carry traffic.
fn two_clients() {
    let mut spec = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    let mode = FastPathMode::Native;
    // Client lines go to every client and openvpn refuses `xdp`: our
    // client runs the default `auto`, which picks native on veth.
    mode.apply(&mut spec, Ours, OpenVpn);
    let t = Tunnel::start(spec, Ours, &[OpenVpn, Ours]);
    assert_logged_mode(&t.clients[1], FastPathMode::Auto);
    assert_logged_mode(&t.server, mode);
    let m = classifier(&t.topo.server, mode, "server").expect("attached");
    let st = server_status(&t, 2);
    let want: BTreeMap<u32, SocketAddr> = st
        .clients
        .iter()
        .map(|row| {
            let id = column_u64(row, "Peer ID")
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or_else(|| panic!("no Peer ID in {row:?}"));
            let addr = row
                .get("Real Address")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no Real Address in {row:?}"));
            (id, addr)
        })
        .collect();
    assert_eq!(want.len(), 2, "two distinct peer-ids: {st:?}");
    assert_eq!(m.peers(), want, "PEERS holds exactly the two clients");
    for i in 0..2 {
        t.assert_ping_both_ways(i);
        let before = m.stat(REDIRECT);
        let bytes = 4 << 20;
        t.assert_bulk(i, bytes, None);
        assert!(
            m.stat(REDIRECT) - before >= min_packets(bytes),
            "client {i}'s upload was not redirected"
        );
    }
}

#[test]
fn ours_server_two_clients_native() {
    if require_root() {
        two_clients();
    }
}

mod ours_server_openvpn_client {
    use super::*;
    cell!(
        udp_tls_crypt_aes256gcm,
        Ours,
        OpenVpn,
        Native,
        TlsCrypt,
        Aes256Gcm,
        true
    );
    cell!(
        udp_tls_auth_chacha20,
        Ours,
        OpenVpn,
        Native,
        TlsAuth,
        Chacha20Poly1305,
        false
    );
    cell!(
        udp_plain_aes128gcm,
        Ours,
        OpenVpn,
        Native,
        None,
        Aes128Gcm,
        false
    );
    cell!(
        generic_udp_tls_auth_aes256gcm,
        Ours,
        OpenVpn,
        Generic,
        TlsAuth,
        Aes256Gcm,
        true
    );
    #[test]
    fn renegotiation_during_transfer() {
        if require_root() {
            renegotiation(Ours, OpenVpn);
        }
    }
    #[test]
    fn ping_restart_after_server_restart() {
        if require_root() {
            server_restart(OpenVpn);
        }
    }
}

mod openvpn_server_ours_client {
    use super::*;
    cell!(
        udp_tls_crypt_aes256gcm,
        OpenVpn,
        Ours,
        Native,
        TlsCrypt,
        Aes256Gcm,
        true
    );
    cell!(
        udp_tls_auth_chacha20,
        OpenVpn,
        Ours,
        Native,
        TlsAuth,
        Chacha20Poly1305,
        false
    );
    cell!(
        udp_plain_aes128gcm,
        OpenVpn,
        Ours,
        Native,
        None,
        Aes128Gcm,
        false
    );
    #[test]
    fn renegotiation_during_transfer() {
        if require_root() {
            renegotiation(OpenVpn, Ours);
        }
    }
}

mod ours_server_ours_client {
    use super::*;
    cell!(
        udp_tls_crypt_aes256gcm,
        Ours,
        Ours,
        Native,
        TlsCrypt,
        Aes256Gcm,
        true
    );
    cell!(
        udp_tls_auth_chacha20_auto,
        Ours,
        Ours,
        Auto,
        TlsAuth,
        Chacha20Poly1305,
        true
    );
    cell!(
        udp_plain_aes128gcm_generic,
        Ours,
        Ours,
        Generic,
        None,
        Aes128Gcm,
        false
    );
    #[test]
    fn ping_restart_after_server_restart() {
        if require_root() {
            server_restart(Ours);
        }
    }
}
