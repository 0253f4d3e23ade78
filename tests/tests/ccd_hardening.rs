//! client-config-dir fails closed, as openvpn 2.6 does: a line that is not
//! allowed in a ccd file (or does not parse) is skipped with a warning and
//! the rest of the file still applies — `disable` above all. Each scenario
//! runs against our server and stock openvpn's, with a stock client.

use std::{fs, time::Duration};

use tests::{
    openvpn::{Cipher, Impl, Proto, TlsWrap, TunnelSpec, client_config},
    topology::{READY_TIMEOUT, SERVER_ADDR, TempDir, Tunnel},
};

/// The common name of the test PKI's client certificate.
const CLIENT_CN: &str = "client";
/// What openvpn logs when a client's tunnel is up.
const READY_LINE: &str = "Initialization Sequence Completed";

/// A server whose ccd file for the client holds `text`, and that client.
fn tunnel_with_ccd(server: Impl, text: &str) -> (Tunnel, TempDir) {
    let ccd = TempDir::new("vpnccd");
    fs::write(ccd.path().join(CLIENT_CN), text).expect("write the ccd file");
    let mut s = TunnelSpec::new(Proto::Udp, TlsWrap::TlsCrypt, Cipher::Aes256Gcm);
    s.server_extra
        .push(format!("client-config-dir {}", ccd.path().display()));
    let mut t = Tunnel::start_server(s, server, 1);
    let text = client_config(&t.spec, &t.pki, &SERVER_ADDR.to_string(), None, None);
    t.add_client(0, Impl::OpenVpn, &text);
    (t, ccd)
}

/// The review's demonstration: `disable` plus one line a ccd file may not
/// hold. The client must be refused (before: the bad line made the whole
/// file count as absent, and the client got in).
fn disable_survives_a_bad_line(server: Impl) {
    let (mut t, _ccd) = tunnel_with_ccd(server, "route 10.0.0.0 255.0.0.0\ndisable\n");
    assert!(
        t.clients[0].wait_for_nth("AUTH_FAILED", 1, Duration::from_secs(30)),
        "the disabled client was not refused; logs in {}",
        t.topo.path().display()
    );
    assert_eq!(
        t.clients[0].count(READY_LINE),
        0,
        "the disabled client got a tunnel"
    );
}

/// A bad line skipped, the address the same file gives is still the
/// client's.
fn the_rest_of_the_file_applies(server: Impl) {
    let (mut t, _ccd) = tunnel_with_ccd(
        server,
        "route 10.0.0.0 255.0.0.0\nifconfig-push 10.8.0.77 255.255.255.0\n",
    );
    t.clients[0].wait_ready(READY_TIMEOUT);
    assert_eq!(t.client_tun_addr(0).to_string(), "10.8.0.77");
    t.assert_ping_both_ways(0);
}

macro_rules! both_servers {
    ($f:ident) => {
        mod $f {
            use super::*;
            #[test]
            fn ours() {
                if tests::require_root() {
                    $f(Impl::Ours);
                }
            }
            #[test]
            fn openvpn() {
                if tests::require_root() {
                    $f(Impl::OpenVpn);
                }
            }
        }
    };
}

both_servers!(disable_survives_a_bad_line);
both_servers!(the_rest_of_the_file_applies);
