//! The interop matrix: our server with a stock openvpn client, a stock
//! openvpn server with our client, and ours with ours; UDP and TCP;
//! tls-crypt, tls-auth and no wrapping; AES-256-GCM, AES-128-GCM and
//! CHACHA20-POLY1305. Every cell pings both ways through the tunnel; the
//! 50 MiB hashed bulk transfer runs on a representative subset (one cell
//! per protocol, wrapping and cipher, in each direction of mixing), so the
//! suite stays within a 2-core CI budget.

use tests::{
    openvpn::{
        Cipher,
        Impl::{OpenVpn, Ours},
        Proto, TlsWrap, TunnelSpec,
    },
    require_root,
    topology::check_cell,
};

macro_rules! cell {
    ($name:ident, $srv:expr, $cli:expr, $proto:ident, $wrap:ident, $cipher:ident, $bulk:expr) => {
        #[test]
        fn $name() {
            if !require_root() {
                return;
            }
            let spec = TunnelSpec::new(Proto::$proto, TlsWrap::$wrap, Cipher::$cipher);
            check_cell(spec, $srv, $cli, $bulk);
        }
    };
}

/// All 18 cells for one (server, client) pair, bulk on three of them.
macro_rules! matrix {
    ($m:ident, $srv:expr, $cli:expr) => {
        mod $m {
            use super::*;
            cell!(
                udp_tls_crypt_aes256gcm,
                $srv,
                $cli,
                Udp,
                TlsCrypt,
                Aes256Gcm,
                true
            );
            cell!(
                udp_tls_crypt_aes128gcm,
                $srv,
                $cli,
                Udp,
                TlsCrypt,
                Aes128Gcm,
                false
            );
            cell!(
                udp_tls_crypt_chacha20,
                $srv,
                $cli,
                Udp,
                TlsCrypt,
                Chacha20Poly1305,
                false
            );
            cell!(
                udp_tls_auth_aes256gcm,
                $srv,
                $cli,
                Udp,
                TlsAuth,
                Aes256Gcm,
                false
            );
            cell!(
                udp_tls_auth_aes128gcm,
                $srv,
                $cli,
                Udp,
                TlsAuth,
                Aes128Gcm,
                false
            );
            cell!(
                udp_tls_auth_chacha20,
                $srv,
                $cli,
                Udp,
                TlsAuth,
                Chacha20Poly1305,
                true
            );
            cell!(udp_plain_aes256gcm, $srv, $cli, Udp, None, Aes256Gcm, false);
            cell!(udp_plain_aes128gcm, $srv, $cli, Udp, None, Aes128Gcm, false);
            cell!(
                udp_plain_chacha20,
                $srv,
                $cli,
                Udp,
                None,
                Chacha20Poly1305,
                false
            );
            cell!(
                tcp_tls_crypt_aes256gcm,
                $srv,
                $cli,
                Tcp,
                TlsCrypt,
                Aes256Gcm,
                false
            );
            cell!(
                tcp_tls_crypt_aes128gcm,
                $srv,
                $cli,
                Tcp,
                TlsCrypt,
                Aes128Gcm,
                false
            );
            cell!(
                tcp_tls_crypt_chacha20,
                $srv,
                $cli,
                Tcp,
                TlsCrypt,
                Chacha20Poly1305,
                false
            );
            cell!(
                tcp_tls_auth_aes256gcm,
                $srv,
                $cli,
                Tcp,
                TlsAuth,
                Aes256Gcm,
                false
            );
            cell!(
                tcp_tls_auth_aes128gcm,
                $srv,
                $cli,
                Tcp,
                TlsAuth,
                Aes128Gcm,
                false
            );
            cell!(
                tcp_tls_auth_chacha20,
                $srv,
                $cli,
                Tcp,
                TlsAuth,
                Chacha20Poly1305,
                false
            );
            cell!(tcp_plain_aes256gcm, $srv, $cli, Tcp, None, Aes256Gcm, false);
            cell!(tcp_plain_aes128gcm, $srv, $cli, Tcp, None, Aes128Gcm, true);
            cell!(
                tcp_plain_chacha20,
                $srv,
                $cli,
                Tcp,
                None,
                Chacha20Poly1305,
                false
            );
        }
    };
}

matrix!(ours_server_openvpn_client, Ours, OpenVpn);
matrix!(openvpn_server_ours_client, OpenVpn, Ours);

mod ours_server_ours_client {
    use super::*;
    cell!(
        udp_tls_crypt_aes256gcm,
        Ours,
        Ours,
        Udp,
        TlsCrypt,
        Aes256Gcm,
        true
    );
    cell!(
        tcp_tls_auth_chacha20,
        Ours,
        Ours,
        Tcp,
        TlsAuth,
        Chacha20Poly1305,
        true
    );
    cell!(udp_plain_aes128gcm, Ours, Ours, Udp, None, Aes128Gcm, false);
}
