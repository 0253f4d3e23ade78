//! Bad input: a configuration with an unknown directive is refused with a
//! clear message and exit code 1 (as openvpn does); a client certificate
//! from another CA is refused while the server keeps serving the others; a
//! bounded burst of random UDP datagrams at the server does not disturb a
//! real client's transfer.

use std::{fs, net::SocketAddrV4, time::Duration};

use tests::{
    openvpn::{
        Cipher,
        Impl::{self, OpenVpn, Ours},
        PORT, Pki, Proto, READY_LINE, TlsWrap, TunnelSpec, client_config, run_to_exit,
    },
    topology::{BULK, SERVER_ADDR, TempDir, Tunnel, udp_garbage},
};

fn spec() -> TunnelSpec {
    TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm)
}

fn unknown_directive(imp: Impl) {
    let dir = TempDir::new("vpnbad");
    let pki = Pki::new(&dir.path().join("pki"));
    let mut text = client_config(&spec(), &pki, "10.200.0.1", None, None);
    text.push_str("frobnicate-the-tunnel 1\n");
    let path = dir.path().join("bad.conf");
    fs::write(&path, text).expect("write config");
    let (code, out) = run_to_exit(imp, &path, Duration::from_secs(10));
    assert_eq!(code, Some(1), "{} exit code; output:\n{out}", imp.label());
    assert!(
        out.contains("frobnicate-the-tunnel"),
        "{}'s error does not name the directive:\n{out}",
        imp.label()
    );
    assert!(!out.contains(READY_LINE));
}

#[test]
fn unknown_directive_ours() {
    unknown_directive(Ours);
}

#[test]
fn unknown_directive_openvpn_reference() {
    unknown_directive(OpenVpn);
}

/// Client 0 is legitimate; client 1 presents a certificate of a CA made a
/// moment ago. Client 1 never gets a tunnel; client 0 keeps working and a
/// transfer still goes through.
fn foreign_ca_refused(server: Impl, client: Impl) {
    let mut t = Tunnel::start_server(spec(), server, 2);
    let good = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, client, &good)
        .wait_ready(Duration::from_secs(30));
    let (crt, key) = t.pki.foreign_client();
    let evil = client_config(
        &t.spec,
        &t.pki,
        &SERVER_ADDR.to_string(),
        Some((&crt, &key)),
        None,
    );
    t.add_client(1, client, &evil);
    assert!(
        !t.clients[1].wait_for_nth(READY_LINE, 1, Duration::from_secs(15)),
        "a client of another CA got a tunnel; logs in {}",
        t.topo.path().display()
    );
    t.assert_ping_both_ways(0);
    t.assert_bulk(0, 4 << 20, None);
    assert!(t.server.exited().is_none(), "the server died");
}

/// 20 000 datagrams of noise over ~5 s at the server's port from another
/// namespace while client 0 moves 50 MiB: the transfer completes intact.
fn garbage_during_transfer(server: Impl, client: Impl) {
    // Namespace 1 has no client: it is where the noise comes from.
    let mut t = Tunnel::start_server(spec(), server, 2);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, client, &text)
        .wait_ready(Duration::from_secs(30));
    t.assert_ping_both_ways(0);
    std::thread::scope(|s| {
        let noise = s.spawn(|| {
            udp_garbage(
                &t.topo.clients[1],
                SocketAddrV4::new(SERVER_ADDR, PORT),
                20_000,
                Duration::from_secs(5),
            )
        });
        t.assert_bulk(0, BULK, None);
        noise
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
    t.assert_ping_both_ways(0);
    assert!(t.server.exited().is_none(), "the server died");
}

tests::interop_scenario!(foreign_ca_refused);
tests::interop_scenario!(garbage_during_transfer);
