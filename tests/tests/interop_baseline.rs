//! openvpn ↔ openvpn through the interop harness: validates the harness
//! itself (namespaces, configs rendered from one [`TunnelSpec`], readiness,
//! pings, the hashed bulk transfer) independently of our daemon. Every
//! cell of the matrix the mixed tests use, with the bulk transfer on the
//! same representative subset.

use tests::{
    openvpn::{Cipher, Impl::OpenVpn, Proto, TlsWrap, TunnelSpec},
    require_root,
    topology::check_cell,
};

macro_rules! cell {
    ($name:ident, $proto:ident, $wrap:ident, $cipher:ident, $bulk:expr) => {
        #[test]
        fn $name() {
            if !require_root() {
                return;
            }
            let spec = TunnelSpec::new(Proto::$proto, TlsWrap::$wrap, Cipher::$cipher);
            check_cell(spec, OpenVpn, OpenVpn, $bulk);
        }
    };
}

cell!(udp_tls_crypt_aes256gcm, Udp, TlsCrypt, Aes256Gcm, true);
cell!(udp_tls_auth_chacha20, Udp, TlsAuth, Chacha20Poly1305, false);
cell!(udp_plain_aes128gcm, Udp, None, Aes128Gcm, false);
cell!(tcp_tls_auth_chacha20, Tcp, TlsAuth, Chacha20Poly1305, true);
cell!(tcp_plain_aes256gcm, Tcp, None, Aes256Gcm, false);
cell!(tcp_tls_crypt_aes128gcm, Tcp, TlsCrypt, Aes128Gcm, false);
