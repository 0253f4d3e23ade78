//! Tests of the whole pipeline: config text, files and arguments in, a
//! typed `Config` or a located error out.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use proptest::strategy::Strategy as _;

use super::management::Listen;
use super::*;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn configs() -> PathBuf {
    testdata().join("configs")
}

/// Parses text without touching the file system.
fn parse(text: &str) -> Result<Config, ConfigError> {
    Loader::new("/nonexistent-base")
        .check_files(false)
        .load_str("test.conf", text)
}

const SERVER: &str = "dev tun\nserver 10.8.0.0 255.255.255.0\nca ca.crt\ncert s.crt\nkey s.key\n";
const CLIENT: &str = "client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n";
const P2P: &str = "tls-client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n";

fn with(base: &str, extra: &str) -> Result<Config, ConfigError> {
    parse(&format!("{base}{extra}\n"))
}

fn ok(base: &str, extra: &str) -> Config {
    match with(base, extra) {
        Ok(c) => c,
        Err(e) => panic!("{extra:?} failed: {e}"),
    }
}

/// The error for `extra` appended to `base`, which must be on the
/// appended line.
fn err_at_extra(base: &str, extra: &str) -> ConfigErrorKind {
    let e = match with(base, extra) {
        Ok(_) => panic!("{extra:?} was accepted"),
        Err(e) => e,
    };
    let line = u32::try_from(base.lines().count() + 1).unwrap();
    assert_eq!(e.line, line, "{extra:?}: {e}");
    assert_eq!(e.file, Origin::File(PathBuf::from("test.conf").into()));
    e.kind
}

fn src(p: &str) -> Option<Source> {
    Some(Source::File(PathBuf::from("/nonexistent-base").join(p)))
}

const STATIC_KEY: &str = "#\n# key\n#\n-----BEGIN OpenVPN Static key V1-----\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    00112233445566778899aabbccddeeff\n00112233445566778899aabbccddeeff\n\
    -----END OpenVPN Static key V1-----\n";

type Check = fn(&Config) -> bool;

/// Every implemented directive: a line, the base it goes on, and what it
/// must produce. `every_directive_has_a_table_row` keeps it complete.
#[rustfmt::skip]
fn table() -> Vec<(&'static str, &'static str, Check)> {
    let mut rows: Vec<(&'static str, &'static str, Check)> = vec![
        ("config /dev/null", P2P, |c| c.verb == 1), // see nested_config_files_apply_in_place
        ("mode server", "dev tun\ntls-server\nca a\ncert b\nkey c\n", |c| c.mode == Mode::Server),
        ("mode p2p", P2P, |c| c.mode == Mode::PointToPoint),
        ("client", "dev tun\nremote h\nca a\ncert b\nkey c\n", |c| c.client && c.pull && c.tls_role == TlsRole::Client),
        ("pull", P2P, |c| c.pull),
        ("tls-client", "dev tun\nca a\ncert b\nkey c\n", |c| c.tls_role == TlsRole::Client && !c.pull),
        ("tls-server", "dev tun\nca a\ncert b\nkey c\n", |c| c.tls_role == TlsRole::Server && c.mode == Mode::PointToPoint),
        ("server 10.9.0.0 255.255.255.0", "dev tun\nca a\ncert b\nkey c\n", |c| c.server == Some("10.9.0.0/24".parse().unwrap())),
        ("server-ipv6 fd00::/64", SERVER, |c| c.server_ipv6 == Some("fd00::/64".parse().unwrap())),
        ("dev tun0", P2P, |c| c.dev_name.as_deref() == Some("tun0") && c.dev_type == DevType::Tun),
        ("dev-type tun", P2P, |c| c.dev_type == DevType::Tun),
        ("dev-type tap", P2P, |c| c.dev_type == DevType::Tap && c.tun_mtu_extra == Some(32)),
        ("dev-node /dev/net/tun", P2P, |c| c.dev_node.as_deref() == Some(std::path::Path::new("/dev/net/tun"))),
        ("lladdr 02:00:5e:10:00:01", "client\ndev tap\nremote h\nca a\ncert b\nkey c\n", |c| c.lladdr == Some([2, 0, 0x5e, 0x10, 0, 1])),
        ("tun-mtu-extra 32", P2P, |c| c.tun_mtu_extra == Some(32)),
        ("server-bridge 10.8.0.4 255.255.255.0 10.8.0.128 10.8.0.254", "dev tap\nca a\ncert b\nkey c\n", |c| c.mode == Mode::Server && c.push == ["route-gateway 10.8.0.4"]),
        ("vlan-tagging", "dev tap\nca a\ncert b\nkey c\nserver-bridge\n", |c| c.vlan.is_some()),
        ("vlan-accept all", "dev tap\nca a\ncert b\nkey c\nserver-bridge\nvlan-tagging\n", |c| c.vlan.is_some_and(|v| v.accept == VlanAccept::All)),
        ("vlan-pvid 7", "dev tap\nca a\ncert b\nkey c\nserver-bridge\nvlan-tagging\n", |c| c.vlan.is_some_and(|v| v.pvid == 7)),
        ("topology subnet", P2P, |c| c.topology == Topology::Subnet),
        ("tun-mtu 1400", P2P, |c| c.tun_mtu == 1400),
        ("tun-mtu-max 9000", P2P, |c| c.tun_mtu_max == 9000),
        ("mssfix 1400 mtu", P2P, |c| c.mssfix == Some(Mssfix { size: 1400, mode: MssfixMode::Mtu })),
        ("fragment 1300", P2P, |c| c.fragment == Some(Fragment { size: 1300, mtu: false })),
        ("txqueuelen 1000", P2P, |c| c.txqueuelen == Some(1000)),
        ("persist-tun", P2P, |c| c.persist_tun),
        ("persist-key", P2P, |c| c.persist_key),
        ("disable-dco", P2P, |c| c.warnings.is_empty()),
        ("tun-ipv6", P2P, |c| c.warnings.len() == 1),
        ("proto tcp-client", P2P, |c| c.proto.transport == Transport::TcpClient),
        ("port 1195", P2P, |c| c.lport == 1195 && c.rport == 1195 && c.remotes[0].port == 1195),
        ("lport 5000", P2P, |c| c.lport == 5000 && c.rport == 1194),
        ("rport 5001", P2P, |c| c.rport == 5001 && c.remotes[0].port == 5001),
        ("local 192.0.2.9", P2P, |c| c.local.as_deref() == Some("192.0.2.9")),
        ("remote vpn.example.org 443 tcp", CLIENT, |c| c.remotes.len() == 2 && c.remotes[1] == Remote { host: "vpn.example.org".into(), port: 443, proto: Proto { transport: Transport::TcpClient, family: AddrFamily::Any } }),
        ("remote-random", CLIENT, |c| c.remote_random),
        ("connect-retry 5 120", CLIENT, |c| c.connect_retry == ConnectRetry { initial: 5, max: 120 }),
        ("connect-retry-max 3", CLIENT, |c| c.connect_retry_max == Some(3)),
        ("connect-timeout 7", CLIENT, |c| c.connect_timeout == 7 && c.connections[0].connect_timeout == 7),
        ("server-poll-timeout 4", CLIENT, |c| c.connect_timeout == 4 && c.connections[0].connect_timeout == 4),
        ("persist-remote-ip", CLIENT, |c| c.persist_remote_ip),
        ("remote-random-hostname", CLIENT, |c| c.remote_random_hostname),
        ("http-proxy p.example 3128\nproto tcp", CLIENT, |c| c.connections[0].http_proxy.as_ref().is_some_and(|h| h.port == 3128)),
        ("http-proxy-option AGENT x\nhttp-proxy p 80\nproto tcp", CLIENT, |c| c.connections[0].http_proxy.as_ref().is_some_and(|h| h.agent.as_deref() == Some("x"))),
        ("socks-proxy s.example 1081 auth.txt\nproto tcp", CLIENT, |c| c.connections[0].socks_proxy.as_ref().is_some_and(|s| s.port == 1081)),
        ("http-proxy-user-pass up.txt\nhttp-proxy p 80 auto\nproto tcp", CLIENT, |c| c.connections[0].http_proxy.as_ref().is_some_and(|h| h.user_pass.is_some())),
        ("http-proxy-retry", CLIENT, |c| c.warnings.len() == 1),
        ("socks-proxy-retry", CLIENT, |c| c.warnings.len() == 1),
        ("http-proxy-timeout 5", CLIENT, |c| c.warnings.len() == 1),
        ("connection x", CLIENT, |c| c.warnings.len() == 1 && c.connections.len() == 1),
        ("nobind", CLIENT, |c| c.nobind),
        ("float", CLIENT, |c| c.float),
        ("resolv-retry 30", CLIENT, |c| c.resolv_retry == ResolvRetry::Seconds(30)),
        ("sndbuf 393216", CLIENT, |c| c.sndbuf == Some(393_216)),
        ("rcvbuf 393216", CLIENT, |c| c.rcvbuf == Some(393_216)),
        ("explicit-exit-notify", CLIENT, |c| c.explicit_exit_notify == Some(1)),
        ("ifconfig 10.1.0.1 10.1.0.2", P2P, |c| c.ifconfig == Some(Ifconfig { local: Ipv4Addr::new(10, 1, 0, 1), remote_netmask: Ipv4Addr::new(10, 1, 0, 2) })),
        ("ifconfig-ipv6 fd01::1/64 fd01::2", P2P, |c| c.ifconfig_ipv6.is_some_and(|i| i.local == "fd01::1/64".parse().unwrap() && i.remote == "fd01::2".parse::<Ipv6Addr>().unwrap())),
        ("ifconfig-pool 10.8.0.10 10.8.0.20 255.255.255.0", "dev tun\nmode server\ntls-server\ntopology subnet\nca a\ncert b\nkey c\n", |c| c.ifconfig_pool == Some(IfconfigPool { start: Ipv4Addr::new(10, 8, 0, 10), end: Ipv4Addr::new(10, 8, 0, 20), netmask: Some(Ipv4Addr::new(255, 255, 255, 0)) })),
        ("ifconfig-pool-persist ipp.txt 0", SERVER, |c| c.ifconfig_pool_persist.as_ref().is_some_and(|p| p.seconds == 0 && p.file.ends_with("ipp.txt"))),
        ("ifconfig-ipv6-pool fd00::1000/64", "dev tun\nmode server\ntls-server\nifconfig-ipv6 fd00::1/64 fd00::2\nca a\ncert b\nkey c\n", |c| c.ifconfig_ipv6_pool == Some("fd00::1000/64".parse().unwrap())),
        ("push \"route 10.0.0.0 255.0.0.0\"", SERVER, |c| c.push.first().map(String::as_str) == Some("route 10.0.0.0 255.0.0.0")),
        ("route 10.0.0.0 255.0.0.0 net_gateway 5", P2P, |c| c.routes == [Route { network: RouteAddr::Addr(Ipv4Addr::new(10, 0, 0, 0)), netmask: Ipv4Addr::new(255, 0, 0, 0), gateway: Some(RouteAddr::NetGateway), metric: Some(5) }]),
        ("route-ipv6 2001:db8::/32 default 7", P2P, |c| c.routes_ipv6 == [RouteIpv6 { network: "2001:db8::/32".parse().unwrap(), gateway: None, metric: Some(7) }]),
        ("route-gateway dhcp", P2P, |c| c.route_gateway == Some(RouteGateway::Dhcp)),
        // extras.rs
        ("x509-username-field emailAddress ext:subjectAltName ou", SERVER, |c| c.extras.x509_username_field == ["emailAddress", "ext:subjectAltName", "OU"] && c.warnings.iter().any(|w| w.message.contains("upcased"))),
        ("auth-user-pass-optional", SERVER, |c| c.extras.auth_user_pass_optional),
        ("keying-material-exporter EXPORTER-test 32", CLIENT, |c| c.extras.keying_material_exporter == Some(("EXPORTER-test".into(), 32))),
        ("providers legacy default", CLIENT, |c| c.providers == ["legacy", "default"]),
        ("session-timeout 3600", CLIENT, |c| c.extras.session_timeout == Some(3600)),
        ("askpass pass.txt", CLIENT, |c| c.extras.askpass == Some(Some("/nonexistent-base/pass.txt".into()))),
        ("push-peer-info", CLIENT, |c| c.push_peer_info),
        ("auth-retry nointeract", CLIENT, |c| c.extras.auth_retry == extras::AuthRetry::NoInteract),
        ("route-metric 7", CLIENT, |c| c.extras.route_metric == Some(7)),
        ("route-delay 2 10", CLIENT, |c| c.extras.route_delay == Some(extras::RouteDelay { seconds: 2, window: 10 })),
        ("route-up \"/bin/echo up\"", CLIENT, |c| c.extras.route_up.as_deref() == Some("/bin/echo up")),
        ("route-method exe", CLIENT, |c| c.extras == extras::Extras::default() && c.warnings.is_empty()),
        ("down-pre", CLIENT, |c| c.extras.down_pre),
        ("tls-exit", CLIENT, |c| c.extras.tls_exit),
        ("fast-io", CLIENT, |c| c.extras.fast_io && c.warnings.is_empty()),
        ("disable-occ", CLIENT, |c| c.extras.disable_occ),
        ("ifconfig-nowarn", CLIENT, |c| c.extras.ifconfig_nowarn),
        ("replay-persist rp.txt", CLIENT, |c| c.extras.replay_persist == Some("/nonexistent-base/rp.txt".into())),
        ("ns-cert-type server", CLIENT, |c| c.extras.ns_cert_type == Some(CertUsage::Server) && c.warnings.iter().any(|w| w.message.contains("DEPRECATED"))),
        ("remote-cert-ku a0 0x88", CLIENT, |c| c.extras.remote_cert_ku == Some(extras::KeyUsageCheck::AnyOf(vec![0xa0, 0x88]))),
        ("remote-cert-eku 1.3.6.1.5.5.7.3.1", CLIENT, |c| c.extras.remote_cert_eku.as_deref() == Some("1.3.6.1.5.5.7.3.1")),
        ("verify-hash 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33", CLIENT, |c| c.extras.cert_hashes.as_ref().is_some_and(|h| h.depth == 1 && h.algo == extras::HashAlgo::Sha1 && h.hashes[0][10] == 0xaa)),
        ("peer-fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF", CLIENT, |c| c.extras.cert_hashes.as_ref().is_some_and(|h| h.depth == 0 && h.algo == extras::HashAlgo::Sha256 && h.hashes.len() == 1)),
        ("redirect-gateway def1 bypass-dhcp ipv6 !ipv4", CLIENT, |c| c.redirect_gateway.is_some_and(|r| r.def1 && r.bypass_dhcp && r.ipv6 && !r.ipv4 && r.default_route)),
        ("redirect-private local", CLIENT, |c| c.redirect_gateway.is_some_and(|r| r.local && !r.default_route)),
        ("dhcp-option DNS 10.8.0.1", CLIENT, |c| c.dhcp_options == [DhcpOption::Dns(IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1)))]),
        ("dns server -2 transport DoT", CLIENT, |c| c.dns.servers.first().is_some_and(|s| s.priority == -2 && s.transport == Some(DnsTransport::Tls))),
        ("client-config-dir ccd", SERVER, |c| c.client_config_dir.as_ref().is_some_and(|p| p.ends_with("ccd"))),
        ("ccd-exclusive", "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\nclient-config-dir ccd\n", |c| c.ccd_exclusive),
        ("client-to-client", SERVER, |c| c.client_to_client),
        ("duplicate-cn", SERVER, |c| c.duplicate_cn),
        ("max-clients 10", SERVER, |c| c.max_clients == 10),
        ("ca other.crt", P2P, |c| c.ca == src("other.crt")),
        ("cert other.crt", P2P, |c| c.cert == src("other.crt")),
        ("key other.key", P2P, |c| c.key == src("other.key")),
        ("extra-certs chain.pem", P2P, |c| c.extra_certs == src("chain.pem")),
        ("pkcs12 id.p12", "client\ndev tun\nremote h\n", |c| c.pkcs12 == src("id.p12")),
        ("dh dh.pem", SERVER, |c| c.dh == Some(Dh::Ignored(Source::File("/nonexistent-base/dh.pem".into()))) && c.warnings.iter().any(|w| w.message.contains("ignored"))),
        ("ecdh-curve secp384r1", SERVER, |c| c.ecdh_curve.as_deref() == Some("secp384r1")),
        ("crl-verify crl.pem", SERVER, |c| c.crl_verify == src("crl.pem") && !c.crl_verify_dir),
        ("remote-cert-tls server", CLIENT, |c| c.remote_cert_tls == Some(CertUsage::Server)),
        ("verify-x509-name vpn.example.org name-prefix", CLIENT, |c| c.verify_x509_name == Some(X509NameCheck::NamePrefix("vpn.example.org".into()))),
        ("verify-client-cert optional", "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\nauth-user-pass-verify /bin/true via-env\n", |c| c.verify_client_cert == VerifyClientCert::Optional),
        ("tls-auth ta.key 1", CLIENT, |c| c.tls_wrap == TlsWrap::Auth { key: Source::File("/nonexistent-base/ta.key".into()), direction: Some(KeyDirection::Inverse) }),
        ("key-direction 1", CLIENT, |c| c.key_direction == Some(KeyDirection::Inverse)),
        ("tls-crypt tc.key", CLIENT, |c| c.tls_wrap == TlsWrap::Crypt { key: Source::File("/nonexistent-base/tc.key".into()) }),
        ("tls-crypt-v2 v2.key allow-noncookie", SERVER, |c| matches!(c.tls_wrap, TlsWrap::CryptV2 { force_cookie: false, .. })),
        ("tls-version-min 1.3", CLIENT, |c| c.tls_version_min == Some(TlsVersionMin { version: TlsVersion::Tls13, or_highest: false })),
        ("tls-version-max 1.2", CLIENT, |c| c.tls_version_max == Some(TlsVersion::Tls12)),
        ("tls-cipher TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", CLIENT, |c| c.tls_cipher.is_some()),
        ("tls-ciphersuites TLS_AES_256_GCM_SHA384", CLIENT, |c| c.tls_ciphersuites.as_deref() == Some("TLS_AES_256_GCM_SHA384")),
        ("tls-groups X25519:prime256v1", CLIENT, |c| c.tls_groups.as_deref() == Some("X25519:prime256v1")),
        ("hand-window 30", CLIENT, |c| c.hand_window == 30),
        ("tls-timeout 5", CLIENT, |c| c.tls_timeout == 5),
        ("tran-window 60", CLIENT, |c| c.tran_window == 60),
        ("reneg-sec 600 300", CLIENT, |c| c.reneg_sec == RenegSec { max: 600, min: Some(300) }),
        ("reneg-bytes 1000000", CLIENT, |c| c.reneg_bytes == Some(1_000_000)),
        ("reneg-pkts 5000", CLIENT, |c| c.reneg_pkts == Some(5000)),
        ("auth sha256", CLIENT, |c| c.auth == "SHA256"),
        ("data-ciphers aes-128-gcm:?BF-CBC:CHACHA20-POLY1305", CLIENT, |c| c.data_ciphers == ["AES-128-GCM", "CHACHA20-POLY1305"] && c.warnings.len() == 1),
        ("ncp-ciphers AES-256-GCM", CLIENT, |c| c.data_ciphers == ["AES-256-GCM"]),
        ("data-ciphers-fallback AES-256-CBC", CLIENT, |c| c.data_ciphers_fallback.as_deref() == Some("AES-256-CBC")),
        ("cipher AES-256-GCM", CLIENT, |c| c.cipher.as_deref() == Some("AES-256-GCM") && c.warnings.is_empty()),
        ("replay-window 128 30", CLIENT, |c| c.replay_window == ReplayWindow { size: 128, seconds: 30 }),
        ("secret static.key 1", "dev tun\n", |c| c.secret == Some(StaticSecret { key: Source::File("/nonexistent-base/static.key".into()), direction: Some(KeyDirection::Inverse) }) && c.warnings.len() == 2),
        ("no-replay", "dev tun\nsecret s.key\n", |c| c.no_replay),
        ("providers legacy default", CLIENT, |c| c.providers == ["legacy", "default"]),
        ("genkey secret k.key", "", |c| c.genkey.as_ref().is_some_and(|g| g.kind == GenKeyKind::Secret && g.file == Some("/nonexistent-base/k.key".into()))),
        ("compress stub-v2", CLIENT, |c| c.compression.alg == CompAlg::StubV2),
        ("comp-lzo no", CLIENT, |c| c.compression.alg == CompAlg::Stub && !c.compression.flags.contains(CompFlags::SWAP)),
        ("allow-compression no", CLIENT, |c| c.compression == Compression::stub_only_default()),
        ("comp-noadapt", CLIENT, |c| c.compression == Compression::stub_only_default()),
        ("keepalive 10 60", CLIENT, |c| c.ping == Some(10) && c.ping_rec == Some(PingRec { timeout: 60, action: PingAction::Restart }) && c.push.is_empty()),
        ("ping 15", CLIENT, |c| c.ping == Some(15)),
        ("ping-restart 90", CLIENT, |c| c.ping_rec == Some(PingRec { timeout: 90, action: PingAction::Restart })),
        ("ping-exit 90", CLIENT, |c| c.ping_rec == Some(PingRec { timeout: 90, action: PingAction::Exit })),
        ("ping-timer-rem", CLIENT, |c| c.ping_timer_rem),
        ("inactive 3600 1000", CLIENT, |c| c.inactive == Some(Inactive { seconds: 3600, bytes: 1000 })),
        ("auth-user-pass", CLIENT, |c| c.auth_user_pass == Some(AuthUserPass::Prompt)),
        ("auth-user-pass-verify \"/usr/bin/check arg\" via-file", SERVER, |c| c.auth_user_pass_verify == Some(AuthUserPassVerify { command: "/usr/bin/check arg".into(), method: VerifyMethod::ViaFile })),
        ("username-as-common-name", "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\nauth-user-pass-verify /bin/v via-env\n", |c| c.username_as_common_name),
        ("auth-nocache", CLIENT, |c| c.auth_nocache),
        ("script-security 2", CLIENT, |c| c.script_security == 2),
        ("up /etc/openvpn/up.sh", "client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\nscript-security 2\n", |c| c.scripts.up.as_deref() == Some("/etc/openvpn/up.sh") && c.warnings.is_empty()),
        ("down /etc/openvpn/down.sh", CLIENT, |c| c.scripts.down.is_some()),
        ("client-connect /bin/cc", SERVER, |c| c.scripts.client_connect.as_deref() == Some("/bin/cc")),
        ("client-disconnect /bin/cd", SERVER, |c| c.scripts.client_disconnect.as_deref() == Some("/bin/cd")),
        ("user nobody", CLIENT, |c| c.user.as_deref() == Some("nobody")),
        ("group nogroup", CLIENT, |c| c.group.as_deref() == Some("nogroup")),
        ("daemon vpn1", CLIENT, |c| c.daemon == Some(Some("vpn1".into())) && c.syslog == Some(Some("vpn1".into()))),
        ("syslog vpn2", CLIENT, |c| c.syslog == Some(Some("vpn2".into())) && c.daemon.is_none()),
        ("plugin openvpn-plugin-auth-pam.so \"login login USERNAME password PASSWORD\"", SERVER, |c| {
            c.plugins.len() == 1
                && c.plugins[0].path == Path::new("/usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-auth-pam.so")
                && c.plugins[0].argv == ["openvpn-plugin-auth-pam.so", "login login USERNAME password PASSWORD"]
        }),
        ("writepid /run/vpn.pid", CLIENT, |c| c.writepid == Some(PathBuf::from("/run/vpn.pid"))),
        ("cd /etc", CLIENT, |c| c.cd == Some(PathBuf::from("/etc")) && c.ca == Some(Source::File("/etc/ca.crt".into()))),
        ("log vpn.log", CLIENT, |c| c.log == Some(LogFile { path: "/nonexistent-base/vpn.log".into(), append: false })),
        ("log-append /var/log/vpn.log", CLIENT, |c| c.log.as_ref().is_some_and(|l| l.append)),
        ("verb 4", CLIENT, |c| c.verb == 4),
        ("mute 20", CLIENT, |c| c.mute == Some(20)),
        ("mute-replay-warnings", CLIENT, |c| c.mute_replay_warnings),
        ("status /tmp/st.log 10", CLIENT, |c| c.status == Some(StatusFile { path: "/tmp/st.log".into(), interval: 10 })),
        ("status-version 3", CLIENT, |c| c.status_version == 3),
        ("management 127.0.0.1 7505 pw.txt", SERVER, |c| c.management.listen == Some(Listen::Tcp { host: "127.0.0.1".into(), port: 7505 }) && c.management.password_file == Some("pw.txt".into())),
        ("management localhost 7505", SERVER, |c| c.management.listen == Some(Listen::Tcp { host: "localhost".into(), port: 7505 }) && c.management.password_file.is_none()),
        ("management /run/m.sock unix", SERVER, |c| c.management.listen == Some(Listen::Unix("/run/m.sock".into()))),
        ("management-client-user nobody", "dev tun\nserver 10.8.0.0 255.255.255.0\nca ca.crt\ncert s.crt\nkey s.key\nmanagement /run/m.sock unix\n", |c| c.management.client_user.as_deref() == Some("nobody")),
        ("management-client-group nogroup", "dev tun\nserver 10.8.0.0 255.255.255.0\nca ca.crt\ncert s.crt\nkey s.key\nmanagement /run/m.sock unix\n", |c| c.management.client_group.as_deref() == Some("nogroup")),
        ("setenv FOO \"bar baz\"", CLIENT, |c| c.setenv == [("FOO".to_string(), "bar baz".to_string())]),
        ("ignore-unknown-option foo bar", CLIENT, |c| c.warnings.is_empty()),
        ("xdp native", SERVER, |c| c.xdp == XdpMode::Native),
        ("xdp-interface eth0", SERVER, |c| c.xdp_interface.as_deref() == Some("eth0")),
        ("xdp-drop-unknown no", SERVER, |c| !c.xdp_drop_unknown),
    ];
    rows.extend(host_table());
    rows
}

#[test]
fn every_directive_parses_into_its_field() {
    for (line, base, check) in table() {
        let c = ok(base, line);
        assert!(
            check(&c),
            "{line:?} did not produce the expected field: {c:#?}"
        );
    }
}

/// The same rows as command-line flags: one directive table for both.
#[test]
fn every_directive_works_on_the_command_line() {
    for (line, base, check) in table() {
        let mut args = Vec::new();
        for l in base.lines().chain(line.lines()) {
            let words = lexer::tokenize_line(l.as_bytes()).unwrap();
            for (i, w) in words.into_iter().enumerate() {
                args.push(if i == 0 { format!("--{w}") } else { w });
            }
        }
        let c = Loader::new("/nonexistent-base")
            .check_files(false)
            .load_args(&args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(check(&c), "{args:?} did not produce the expected field");
    }
}

#[test]
fn every_directive_has_a_table_row() {
    let rows: Vec<String> = table()
        .iter()
        .map(|(l, _, _)| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    for spec in directives::all() {
        // The per-client directives are refused in a main config (tests_extras.rs).
        if directives::CLIENT_ONLY.contains(&spec.name) {
            continue;
        }
        assert!(
            rows.iter().any(|r| r == spec.name),
            "no table row for '{}'",
            spec.name
        );
    }
}

#[test]
fn directive_tables_have_no_duplicates_or_overlap() {
    let mut names: Vec<&str> = directives::all().map(|s| s.name).collect();
    names.extend(directives::UNSUPPORTED.iter().map(|(n, _)| *n));
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a name appears twice");
}

#[test]
fn defaults_are_openvpn_2_6s() {
    let c = parse(CLIENT).unwrap();
    assert_eq!(c.lport, 1194);
    assert_eq!(c.remotes[0].port, 1194);
    assert_eq!(c.proto.transport, Transport::Udp);
    assert_eq!(c.topology, Topology::Net30);
    assert_eq!(
        c.data_ciphers,
        ["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"]
    );
    assert_eq!(c.auth, "SHA1");
    assert_eq!(c.tun_mtu, 1500);
    assert_eq!(
        c.mssfix,
        Some(Mssfix {
            size: 1492,
            mode: MssfixMode::Encapsulated
        })
    );
    assert_eq!(c.reneg_sec.max, 3600);
    assert_eq!(c.hand_window, 60);
    assert_eq!(c.verb, 1);
    assert_eq!(c.xdp, XdpMode::Auto);
    assert_eq!(c.dev_name, None);
    assert_eq!(c.compression, Compression::stub_only_default());
}

#[test]
fn errors_name_the_line_and_the_problem() {
    type Case = (&'static str, &'static str, fn(&ConfigErrorKind) -> bool);
    let cases: Vec<Case> = vec![
        (
            CLIENT,
            "frobnicate 1",
            |k| matches!(k, ConfigErrorKind::UnknownDirective { name } if name == "frobnicate"),
        ),
        (
            CLIENT,
            "management-hold",
            |k| matches!(k, ConfigErrorKind::Unsupported { name, .. } if name == "management-hold"),
        ),
        (
            SERVER,
            "management-client-user nobody",
            |k| matches!(k, ConfigErrorKind::Invalid(m) if m.starts_with("--management is not specified")),
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nca ca.crt\ncert s.crt\nkey s.key\nmanagement 127.0.0.1 7505\n",
            "management-client-user nobody",
            |k| matches!(k, ConfigErrorKind::Invalid(m) if m == "--management-client-(user|group) can only be used on unix domain sockets"),
        ),
        (SERVER, "management bad/host 7505", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (
            CLIENT,
            "secret static.key",
            |k| matches!(k, ConfigErrorKind::Invalid(m) if m == "specify only one of --tls-server, --tls-client, or --secret"),
        ),
        (CLIENT, "verb", |k| {
            matches!(k, ConfigErrorKind::Arity { got: 0, .. })
        }),
        (CLIENT, "nobind yes", |k| {
            matches!(k, ConfigErrorKind::Arity { got: 1, .. })
        }),
        (CLIENT, "verb 12", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "verb three", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "port 70000", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "remote host 0", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "remote host 1194 sctp", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "proto udp5", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "ifconfig 10.0.0.300 10.0.0.2", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "route 10.0.0.1 255.0.0.0", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "route 10.0.0.0 255.0.255.0", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "route-ipv6 2001:db8::", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "dhcp-option DNS", |k| {
            matches!(k, ConfigErrorKind::Arity { .. })
        }),
        (CLIENT, "dhcp-option FOO x", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "dns server 1 address 10.0.0.1:0", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "dns server 300 address 10.0.0.1", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "topology star", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "dev-type bridge", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "lladdr 02-00-5e-00-00-01", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "lladdr 02:00:5e:00:00", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (
            CLIENT,
            "server-bridge 10.0.0.1 255.255.255.0 10.0.0.9",
            |k| matches!(k, ConfigErrorKind::InvalidValue { .. }),
        ),
        (CLIENT, "vlan-pvid 0", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        // `cipher BF-CBC` is ignored with a warning, as 2.6 (tests_extras.rs).
        (CLIENT, "data-ciphers-fallback BF-CBC", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (
            CLIENT,
            "data-ciphers AES-256-GCM:DES-CBC",
            |k| matches!(k, ConfigErrorKind::InvalidValue { value, .. } if value == "DES-CBC"),
        ),
        (CLIENT, "data-ciphers ?DES-CBC", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "auth MD5", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (
            CLIENT,
            "compress zstd",
            |k| matches!(k, ConfigErrorKind::Compression { detail, .. } if detail == "bad comp option: zstd"),
        ),
        (CLIENT, "comp-lzo maybe", |k| {
            matches!(k, ConfigErrorKind::Compression { .. })
        }),
        (CLIENT, "allow-compression maybe", |k| {
            matches!(k, ConfigErrorKind::Compression { .. })
        }),
        (CLIENT, "tls-version-min 1.4", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "tls-version-min 1.2 or-lowest", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "tls-auth ta.key 2", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "xdp fast", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "xdp-interface this-name-is-too-long", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "xdp-drop-unknown maybe", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "redirect-gateway everything", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "setenv GENERIC_CONFIG 1", |k| {
            matches!(k, ConfigErrorKind::Invalid(_))
        }),
        (CLIENT, "connect-retry x", |k| {
            matches!(k, ConfigErrorKind::InvalidValue { .. })
        }),
        (CLIENT, "remote \"unclosed", |k| {
            matches!(k, ConfigErrorKind::Lex(LexErrorKind::UnclosedDoubleQuote))
        }),
        (CLIENT, "cd C:\\dir", |k| {
            matches!(k, ConfigErrorKind::Lex(LexErrorKind::BadBackslash))
        }),
        (CLIENT, "<dev>\ntun\n</dev>", |k| {
            matches!(k, ConfigErrorKind::InlineNotAllowed { .. })
        }),
        (CLIENT, "<ca>\nnot a certificate\n</ca>", |k| {
            matches!(k, ConfigErrorKind::MalformedInline { .. })
        }),
        (
            CLIENT,
            "<ca>\n-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n</ca>",
            |k| matches!(k, ConfigErrorKind::MalformedInline { .. }),
        ),
        (
            CLIENT,
            "<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\n0011\n-----END OpenVPN Static key V1-----\n</tls-crypt>",
            |k| matches!(k, ConfigErrorKind::MalformedInline { .. }),
        ),
        (CLIENT, "<pkcs12>\nnot*base64\n</pkcs12>", |k| {
            matches!(k, ConfigErrorKind::MalformedInline { .. })
        }),
        (
            CLIENT,
            "<connection>\nproto udp\n</connection>",
            |k| matches!(k, ConfigErrorKind::Invalid(m) if m.contains("exactly one 'remote'")),
        ),
        (CLIENT, "<ca>\nabc", |k| {
            matches!(k, ConfigErrorKind::Lex(LexErrorKind::UnclosedInline(_)))
        }),
    ];
    for (base, extra, pred) in cases {
        let kind = err_at_extra(base, extra);
        assert!(pred(&kind), "{extra:?} gave the wrong error: {kind:?}");
    }
}

#[test]
fn error_display_is_file_line_message() {
    let e = with(CLIENT, "frobnicate 1").unwrap_err();
    assert_eq!(e.to_string(), "test.conf:7: unknown directive 'frobnicate'");
    let e = with(CLIENT, "management-hold").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("test.conf:7: directive 'management-hold' is not supported"),
        "{e}"
    );
}

/// Validation errors: each names a line of one of the offending directives.
#[test]
fn conflicts_and_missing_pieces_are_errors() {
    let cases: Vec<(&str, u32, &str)> = vec![
        (
            "client\ntls-server\ndev tun\nremote h\nca a\ncert b\nkey c\n",
            2,
            "tls-client and tls-server",
        ),
        (
            "tls-client\ntls-server\ndev tun\nca a\ncert b\nkey c\n",
            2,
            "tls-client and tls-server",
        ),
        (
            "client\nserver 10.8.0.0 255.255.255.0\ndev tun\nca a\ncert b\nkey c\n",
            2,
            "'server' and 'client'",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\n",
            0,
            "needs its certificate",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\ncert b\nkey c\n",
            0,
            "needs 'ca'",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\n",
            4,
            "'cert' given without 'key'",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\nverify-client-cert none\n",
            6,
            "auth-user-pass-verify",
        ),
        (
            "client\ndev tun\nca a\ncert b\nkey c\n",
            1,
            "at least one 'remote'",
        ),
        (
            "client\ndev tun\nremote h\ncert b\nkey c\n",
            0,
            "needs 'ca'",
        ),
        (
            "client\ndev tun\nremote h\nca a\n",
            0,
            "no client authentication",
        ),
        (
            "client\ndev tun\nremote h\nca a\ncert b\nkey c\ntls-auth t 1\ntls-crypt k\n",
            8,
            "cannot be used together",
        ),
        (
            "client\ndev tun\nremote h\nca a\ncert b\nkey c\ntls-crypt k\ntls-crypt-v2 k2\n",
            8,
            "cannot be used together",
        ),
        (
            "client\ndev vpn0\nremote h\nca a\ncert b\nkey c\n",
            2,
            "dev-type tun",
        ),
        (
            "client\ndev tun\nremote h\nca a\ncert b\nkey c\nlladdr 02:00:00:00:00:01\n",
            7,
            "only be used with dev tap",
        ),
        (
            "dev tun\nca a\ncert b\nkey c\nserver-bridge\n",
            5,
            "only makes sense with dev tap",
        ),
        (
            "dev tap\nca a\ncert b\nkey c\nserver 10.8.0.0 255.255.255.0\nserver-bridge\n",
            6,
            "cannot be used together",
        ),
        (
            "dev tap\nca a\ncert b\nkey c\nserver-bridge 10.0.0.1 255.255.255.0 10.0.1.10 10.0.1.20\n",
            5,
            "not in the same 255.255.255.0 subnet",
        ),
        (
            "dev tap\nca a\ncert b\nkey c\nserver-bridge 10.0.0.1 255.255.255.0 10.0.0.20 10.0.0.10\n",
            5,
            "greater than",
        ),
        (
            "dev tap\nca a\ncert b\nkey c\nifconfig-pool 10.0.0.5 10.0.0.9 255.255.255.0\nserver-bridge nogw\n",
            5,
            "already defines an ifconfig-pool",
        ),
        (
            "dev tap\nca a\ncert b\nkey c\nserver 10.8.0.0 255.255.255.254\n",
            5,
            "/30 or larger",
        ),
        (
            "dev null\nca a\ncert b\nkey c\nserver 10.8.0.0 255.255.255.0\n",
            5,
            "only makes sense with dev tun or dev tap",
        ),
        (
            "dev null\nmode server\ntls-server\nca a\ncert b\nkey c\n",
            2,
            "only works with dev tun or dev tap",
        ),
        ("dev tun\nca a\ncert b\nkey c\n", 0, "neither"),
        (
            "dev tun\nmode server\nca a\ncert b\nkey c\n",
            2,
            "requires 'tls-server'",
        ),
        (
            "dev tun\nmode server\ntls-server\npull\nca a\ncert b\nkey c\n",
            4,
            "cannot be used with 'client' or 'pull'",
        ),
        (
            "dev tun\nmode server\ntls-server\nproto tcp\nca a\ncert b\nkey c\n",
            4,
            "ambiguous",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nproto tcp-client\nca a\ncert b\nkey c\n",
            3,
            "tcp-server",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nremote h\nca a\ncert b\nkey c\n",
            3,
            "'remote' cannot be used in server mode",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nifconfig-pool 10.8.0.10 10.8.0.20\nca a\ncert b\nkey c\n",
            3,
            "already defines an ifconfig-pool",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.252\nca a\ncert b\nkey c\n",
            2,
            "/29",
        ),
        (
            "dev tun\nserver 10.0.0.0 255.0.0.0\nca a\ncert b\nkey c\n",
            2,
            "too many",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00::/48\nca a\ncert b\nkey c\n",
            3,
            "64 to 124",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00::1/64\nca a\ncert b\nkey c\n",
            3,
            "host bits",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nkeepalive 10 15\nca a\ncert b\nkey c\n",
            3,
            "at least twice",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nkeepalive 0 15\nca a\ncert b\nkey c\n",
            3,
            "> 0",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nping 5\nkeepalive 10 60\nca a\ncert b\nkey c\n",
            4,
            "conflicts",
        ),
        (
            "client\ndev tun\nremote h\nca a\ncert b\nkey c\nclient-to-client\n",
            7,
            "requires server mode",
        ),
        (
            "client\ndev tun\nremote h\nca a\ncert b\nkey c\nmax-clients 5\n",
            7,
            "requires server mode",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\nauth-user-pass u.txt\n",
            6,
            "requires 'client'",
        ),
        (
            "dev tun\nserver 10.8.0.0 255.255.255.0\nca a\npkcs12 p\ncert b\nkey c\n",
            5,
            "cannot be used together with 'pkcs12'",
        ),
        (
            "client\ndev tun\nremote h\nca a\ncert b\nkey c\ntls-version-min 1.3\ntls-version-max 1.2\n",
            8,
            "above",
        ),
        (
            "client\ndev tun\nremote h 1194 tcp-server\nca a\ncert b\nkey c\n",
            3,
            "tcp-client",
        ),
    ];
    let more: Vec<(String, u32, &str)> = vec![
        (format!("{SERVER}nobind\n"), 6, "'nobind' cannot be used in server mode"),
        (format!("{SERVER}redirect-gateway def1\n"), 6, "push \"redirect-gateway"),
        (format!("{SERVER}ccd-exclusive\n"), 6, "needs 'client-config-dir'"),
        (format!("{SERVER}username-as-common-name\n"), 6, "needs 'auth-user-pass-verify'"),
        ("dev tun\nmode server\ntls-server\nca a\ncert b\nkey c\nifconfig-pool-persist ipp.txt\n".into(), 7, "needs an address pool"),
        ("dev tun\nmode server\ntls-server\nca a\ncert b\nkey c\nifconfig-ipv6-pool fd00::1000/64\n".into(), 7, "needs 'ifconfig-ipv6'"),
        ("dev tun\nmode server\ntls-server\nca a\ncert b\nkey c\nifconfig-pool 10.8.0.4 10.8.0.9 255.255.255.0\n".into(), 7, "only valid with 'topology subnet'"),
        (format!("{CLIENT}nobind\nlport 5000\n"), 8, "do not make sense together"),
        (format!("{CLIENT}local 192.0.2.5\nnobind\n"), 8, "do not make sense together"),
        ("tls-client\ndev tun\nnobind\nca a\ncert b\nkey c\n".into(), 3, "without 'remote'"),
        ("tls-client\ndev tun\nproto tcp-client\nca a\ncert b\nkey c\n".into(), 3, "needs a 'remote'"),
        ("tls-client\ndev tun\nproto tcp-server\nremote a\nremote b\nca a\ncert b\nkey c\n".into(), 5, "at most one"),
        (format!("{P2P}ifconfig 10.0.0.1 10.0.0.1\n"), 7, "must differ"),
    ];
    let cases = cases
        .into_iter()
        .chain(more.iter().map(|(t, l, n)| (t.as_str(), *l, *n)));
    for (text, line, needle) in cases {
        let e = match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        };
        assert_eq!(e.line, line, "{text}\n-> {e}");
        assert!(
            e.to_string().contains(needle),
            "{text}\n-> {e} (wanted {needle:?})"
        );
    }
}

#[test]
fn server_helper_subnet_expands_like_openvpn() {
    let c = ok(
        SERVER,
        "topology subnet\npush \"route 192.168.1.0 255.255.255.0\"",
    );
    assert_eq!(c.mode, Mode::Server);
    assert_eq!(c.tls_role, TlsRole::Server);
    assert_eq!(
        c.ifconfig,
        Some(Ifconfig {
            local: Ipv4Addr::new(10, 8, 0, 1),
            remote_netmask: Ipv4Addr::new(255, 255, 255, 0)
        })
    );
    assert_eq!(
        c.ifconfig_pool,
        Some(IfconfigPool {
            start: Ipv4Addr::new(10, 8, 0, 2),
            end: Ipv4Addr::new(10, 8, 0, 254),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 0)),
        })
    );
    // User pushes first, then what the helper adds.
    assert_eq!(
        c.push,
        [
            "route 192.168.1.0 255.255.255.0",
            "route-gateway 10.8.0.1",
            "topology subnet"
        ]
    );
    assert_eq!(
        c.route_gateway,
        Some(RouteGateway::Addr(Ipv4Addr::new(10, 8, 0, 2)))
    );
    assert!(c.routes.is_empty());
}

#[test]
fn server_helper_net30_expands_like_openvpn() {
    let c = parse(SERVER).unwrap();
    assert_eq!(c.topology, Topology::Net30);
    assert_eq!(
        c.ifconfig,
        Some(Ifconfig {
            local: Ipv4Addr::new(10, 8, 0, 1),
            remote_netmask: Ipv4Addr::new(10, 8, 0, 2)
        })
    );
    assert_eq!(
        c.ifconfig_pool,
        Some(IfconfigPool {
            start: Ipv4Addr::new(10, 8, 0, 4),
            end: Ipv4Addr::new(10, 8, 0, 251),
            netmask: None
        })
    );
    assert_eq!(c.push, ["route 10.8.0.1", "topology net30"]);
    assert_eq!(c.routes.len(), 1);
    assert_eq!(
        c.routes[0].network,
        RouteAddr::Addr(Ipv4Addr::new(10, 8, 0, 0))
    );
    assert_eq!(c.warnings.len(), 1, "net30 deprecation note");

    let c = ok(SERVER, "client-to-client");
    assert_eq!(c.push, ["route 10.8.0.0 255.255.255.0", "topology net30"]);
    let c = ok(SERVER, "topology p2p");
    assert_eq!(c.push, ["topology p2p"]);
    let c = ok(
        "dev tun\nserver 10.8.0.0 255.255.255.248\nca a\ncert b\nkey c\n",
        "",
    );
    assert_eq!(
        c.ifconfig_pool.unwrap().end,
        Ipv4Addr::new(10, 8, 0, 7),
        "/29 keeps no reserve"
    );
    let c = ok(
        SERVER,
        "server 10.8.0.0 255.255.255.0 nopool\ntopology subnet",
    );
    assert_eq!(c.ifconfig_pool, None);
}

#[test]
fn server_ipv6_helper_expands_like_openvpn() {
    let c = ok(SERVER, "server-ipv6 fd00:1::/64");
    let i = c.ifconfig_ipv6.unwrap();
    assert_eq!(i.local, "fd00:1::1/64".parse().unwrap());
    assert_eq!(i.remote, "fd00:1::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        c.ifconfig_ipv6_pool,
        Some("fd00:1::1000/64".parse().unwrap())
    );
    assert!(c.push.contains(&"tun-ipv6".to_string()));
    let c = ok(SERVER, "server-ipv6 fd00:1::/120");
    assert_eq!(c.ifconfig_ipv6_pool, Some("fd00:1::2/120".parse().unwrap()));
    // server-ipv6 alone also makes a server.
    let c = ok("dev tun\nca a\ncert b\nkey c\n", "server-ipv6 fd00:1::/64");
    assert_eq!(c.mode, Mode::Server);
}

#[test]
fn keepalive_on_a_server_doubles_restart_and_pushes() {
    let c = ok(SERVER, "topology subnet\nkeepalive 10 60");
    assert_eq!(c.ping, Some(10));
    assert_eq!(
        c.ping_rec,
        Some(PingRec {
            timeout: 120,
            action: PingAction::Restart
        })
    );
    assert_eq!(
        c.push,
        [
            "route-gateway 10.8.0.1",
            "topology subnet",
            "ping 10",
            "ping-restart 60"
        ]
    );
}

#[test]
fn later_directives_override_earlier_ones() {
    let c = ok(CLIENT, "verb 3\nverb 5\nproto udp\nproto tcp");
    assert_eq!(c.verb, 5);
    assert_eq!(c.proto.transport, Transport::TcpClient);
    // `port` sets both ends at the point where it appears.
    let c = ok(CLIENT, "lport 2000\nport 3000");
    assert_eq!((c.lport, c.rport), (3000, 3000));
    let c = ok(CLIENT, "port 3000\nlport 2000");
    assert_eq!((c.lport, c.rport), (2000, 3000));
    // ping-exit and ping-restart share one timeout: the last wins.
    let c = ok(CLIENT, "ping-restart 60\nping-exit 30");
    assert_eq!(
        c.ping_rec,
        Some(PingRec {
            timeout: 30,
            action: PingAction::Exit
        })
    );
}

#[test]
fn list_directives_accumulate() {
    let c = ok(
        CLIENT,
        "remote b 1195\nremote c 1196 tcp-client\nroute 10.1.0.0 255.255.0.0\nroute 10.2.0.0 255.255.0.0",
    );
    assert_eq!(c.remotes.len(), 3);
    assert_eq!(c.remotes[2].proto.transport, Transport::TcpClient);
    assert_eq!(c.remotes[1].proto.transport, Transport::Udp);
    assert_eq!(c.routes.len(), 2);
}

#[test]
fn proto_variants_have_openvpns_meaning() {
    let fam = |c: &Config| (c.proto.transport, c.proto.family);
    assert_eq!(
        fam(&ok(CLIENT, "proto udp4")),
        (Transport::Udp, AddrFamily::V4)
    );
    assert_eq!(
        fam(&ok(CLIENT, "proto udp6")),
        (Transport::Udp, AddrFamily::V6)
    );
    assert_eq!(
        fam(&ok(CLIENT, "proto tcp")),
        (Transport::TcpClient, AddrFamily::Any)
    );
    assert_eq!(
        fam(&ok(CLIENT, "proto tcp6-client")),
        (Transport::TcpClient, AddrFamily::V6)
    );
    assert_eq!(
        fam(&ok(SERVER, "proto tcp")),
        (Transport::TcpServer, AddrFamily::Any)
    );
    assert_eq!(
        fam(&ok(SERVER, "proto tcp4-server")),
        (Transport::TcpServer, AddrFamily::V4)
    );
    assert_eq!(
        fam(&ok(P2P, "proto tcp-server")),
        (Transport::TcpServer, AddrFamily::Any)
    );
}

#[test]
fn explicit_exit_notify_is_dropped_for_tcp_with_a_warning() {
    let c = ok(CLIENT, "proto tcp\nexplicit-exit-notify 2");
    assert_eq!(c.explicit_exit_notify, None);
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        ok(CLIENT, "explicit-exit-notify 2").explicit_exit_notify,
        Some(2)
    );
    assert_eq!(
        ok(CLIENT, "explicit-exit-notify 0").explicit_exit_notify,
        None
    );
}

#[test]
fn tls_auth_direction_comes_from_key_direction_when_not_on_the_line() {
    let c = ok(CLIENT, "key-direction 1\ntls-auth ta.key");
    assert!(matches!(
        c.tls_wrap,
        TlsWrap::Auth {
            direction: Some(KeyDirection::Inverse),
            ..
        }
    ));
    let c = ok(CLIENT, "key-direction 1\ntls-auth ta.key 0");
    assert!(matches!(
        c.tls_wrap,
        TlsWrap::Auth {
            direction: Some(KeyDirection::Normal),
            ..
        }
    ));
    let c = ok(CLIENT, "tls-auth ta.key");
    assert!(matches!(
        c.tls_wrap,
        TlsWrap::Auth {
            direction: None,
            ..
        }
    ));
}

#[test]
fn cipher_missing_from_data_ciphers_warns_as_openvpn_does() {
    let c = ok(CLIENT, "cipher AES-256-CBC");
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0]
            .message
            .contains("ignored for cipher negotiation")
    );
    let c = ok(
        CLIENT,
        "cipher AES-256-CBC\ndata-ciphers-fallback AES-256-CBC",
    );
    assert!(c.warnings.is_empty());
}

#[test]
fn dns_directives_build_server_groups() {
    let c = ok(
        CLIENT,
        "dns search-domains a.example b.example\ndns server 5 address 10.0.0.53 [fd00::53]:853\n\
         dns server -1 address 1.1.1.1:5353\ndns server 5 resolve-domains corp.example\n\
         dns server 5 sni dns.corp.example",
    );
    assert_eq!(c.dns.search_domains, ["a.example", "b.example"]);
    assert_eq!(c.dns.servers.len(), 2);
    assert_eq!(c.dns.servers[0].priority, -1);
    assert_eq!(
        c.dns.servers[0].addresses,
        [(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), Some(5353))]
    );
    let s = &c.dns.servers[1];
    assert_eq!(s.addresses.len(), 2);
    assert_eq!(s.addresses[1], ("fd00::53".parse().unwrap(), Some(853)));
    assert_eq!(s.resolve_domains, ["corp.example"]);
    assert_eq!(s.sni.as_deref(), Some("dns.corp.example"));
}

#[test]
fn setenv_opt_ignores_unknown_and_unsupported_with_a_warning() {
    let c = ok(
        CLIENT,
        "setenv opt block-outside-dns\nsetenv opt frobnicate 3",
    );
    assert_eq!(c.warnings.len(), 2);
    assert!(
        c.warnings[0]
            .to_string()
            .starts_with("test.conf:7: warning:")
    );
    // A known directive is still applied, and still checked.
    assert_eq!(ok(CLIENT, "setenv opt verb 4").verb, 4);
    assert!(matches!(
        err_at_extra(CLIENT, "setenv opt verb x"),
        ConfigErrorKind::InvalidValue { .. }
    ));
}

#[test]
fn ignore_unknown_option_applies_only_to_listed_names_given_later() {
    let c = ok(
        CLIENT,
        "ignore-unknown-option frob block-outside-dns\nfrob 1 2\nblock-outside-dns",
    );
    assert_eq!(c.warnings.len(), 2);
    let e = with(CLIENT, "ignore-unknown-option frob\nother 1").unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::UnknownDirective { .. }));
    assert_eq!(e.line, 8);
    let e = parse(&format!("{CLIENT}frob 1\nignore-unknown-option frob\n")).unwrap_err();
    assert_eq!(e.line, 7);
}

#[test]
fn forward_compatible_turns_unknown_directives_into_warnings() {
    let c = ok(CLIENT, "setenv FORWARD_COMPATIBLE 1\nfrobnicate");
    assert_eq!(c.warnings.len(), 1);
    // Unsupported ones are still refused: they are known, not unknown.
    let e = with(CLIENT, "setenv FORWARD_COMPATIBLE 1\nmanagement-hold").unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Unsupported { .. }));
    assert_eq!(e.line, 8);
}

#[test]
fn double_dash_names_work_inside_files() {
    assert_eq!(ok(CLIENT, "--verb 6").verb, 6);
}

#[test]
fn inline_blocks_become_inline_sources() {
    let c = ok(
        "client\ndev tun\nremote h\n",
        &format!(
            "<ca>\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n</ca>\n\
             <cert>\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n</cert>\n\
             <key>\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
             -----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n</key>\n\
             <tls-auth>\n{STATIC_KEY}</tls-auth>\nkey-direction 1\n\
             <auth-user-pass>\nalice\nsecret\n</auth-user-pass>\n\
             <extra-certs>\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n</extra-certs>\n\
             <crl-verify>\n-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n</crl-verify>\n\
             <dh>\n-----BEGIN DH PARAMETERS-----\nMAA=\n-----END DH PARAMETERS-----\n</dh>"
        ),
    );
    assert!(
        matches!(&c.ca, Some(Source::Inline(t)) if t.starts_with("-----BEGIN CERTIFICATE-----\n"))
    );
    assert!(matches!(&c.key, Some(Source::Inline(t)) if t.contains("EC PRIVATE KEY")));
    assert!(
        matches!(&c.tls_wrap, TlsWrap::Auth { key: Source::Inline(t), direction: Some(KeyDirection::Inverse) } if t == STATIC_KEY)
    );
    assert_eq!(
        c.auth_user_pass,
        Some(AuthUserPass::Source(Source::Inline(
            "alice\nsecret\n".into()
        )))
    );
    assert!(matches!(c.extra_certs, Some(Source::Inline(_))));
    assert!(matches!(c.crl_verify, Some(Source::Inline(_))));
    assert!(matches!(c.dh, Some(Dh::Ignored(Source::Inline(_)))));
}

#[test]
fn inline_pkcs12_and_tls_crypt_v2_are_checked() {
    let c = ok(
        "client\ndev tun\nremote h\n",
        "<pkcs12>\nMIIBAgEDMAAA\nAAAA\n</pkcs12>",
    );
    assert!(matches!(c.pkcs12, Some(Source::Inline(_))));
    let v2 = "-----BEGIN OpenVPN tls-crypt-v2 client key-----\nAAAA\n-----END OpenVPN tls-crypt-v2 client key-----\n";
    let c = ok(CLIENT, &format!("<tls-crypt-v2>\n{v2}</tls-crypt-v2>"));
    assert!(matches!(
        c.tls_wrap,
        TlsWrap::CryptV2 {
            key: Source::Inline(_),
            force_cookie: true
        }
    ));
    // A server must not be given a client key.
    let e = with(SERVER, &format!("<tls-crypt-v2>\n{v2}</tls-crypt-v2>")).unwrap_err();
    assert!(
        matches!(e.kind, ConfigErrorKind::MalformedInline { .. }),
        "{e}"
    );
    assert_eq!(e.line, 6);
}

#[test]
fn inline_auth_user_pass_needs_a_username() {
    assert!(matches!(
        err_at_extra(CLIENT, "<auth-user-pass>\n\n</auth-user-pass>"),
        ConfigErrorKind::MalformedInline { .. }
    ));
}

// --- files, nesting and the command line ---

fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(testdata().join("openvpn-2.6.14"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("server.conf").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn the_six_captured_scenarios_parse() {
    let dirs = scenario_dirs();
    assert_eq!(dirs.len(), 6);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let loader = Loader::new(&dir);
        let s = loader
            .load_file(Path::new("server.conf"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = loader
            .load_file(Path::new("client.conf"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.mode, Mode::Server, "{name}");
        assert_eq!(s.tls_role, TlsRole::Server);
        assert_eq!(s.topology, Topology::Subnet);
        assert_eq!(s.server, Some("10.9.0.0/24".parse().unwrap()));
        assert_eq!(s.local.as_deref(), Some("10.204.0.1"));
        assert_eq!(s.dh, Some(Dh::None));
        assert_eq!(s.remote_cert_tls, Some(CertUsage::Client));
        assert_eq!(s.verb, 9);
        assert_eq!(s.ca, Some(Source::File(dir.join("../pki/ca.crt"))));
        assert_eq!(c.tls_role, TlsRole::Client);
        assert!(c.pull);
        assert_eq!(c.remotes[0].host, "10.204.0.1");
        assert_eq!(c.remotes[0].port, 1194);
        assert_eq!(c.remote_cert_tls, Some(CertUsage::Server));
        assert_eq!(s.data_ciphers, c.data_ciphers, "{name}");
        let tcp = name.starts_with("tcp");
        assert_eq!(
            s.proto.transport,
            if tcp {
                Transport::TcpServer
            } else {
                Transport::Udp
            }
        );
        assert_eq!(
            c.proto.transport,
            if tcp {
                Transport::TcpClient
            } else {
                Transport::Udp
            }
        );
        match name.as_str() {
            "udp-tlsauth-chacha" => {
                assert!(matches!(
                    s.tls_wrap,
                    TlsWrap::Auth {
                        direction: Some(KeyDirection::Normal),
                        ..
                    }
                ));
                assert!(matches!(
                    c.tls_wrap,
                    TlsWrap::Auth {
                        direction: Some(KeyDirection::Inverse),
                        ..
                    }
                ));
                assert_eq!(c.auth, "SHA256");
                assert_eq!(c.data_ciphers, ["CHACHA20-POLY1305"]);
            }
            "udp-plain-aes128gcm" => {
                assert_eq!(s.tls_wrap, TlsWrap::None);
                assert_eq!(c.data_ciphers, ["AES-128-GCM"]);
            }
            "udp-aes256cbc-sha256" => {
                assert_eq!(c.data_ciphers, ["AES-256-CBC"]);
                assert_eq!(s.auth, "SHA256");
            }
            "udp-reneg" => assert_eq!(c.reneg_sec.max, 10),
            _ => assert!(matches!(s.tls_wrap, TlsWrap::Crypt { .. }), "{name}"),
        }
        if !tcp {
            assert_eq!(c.explicit_exit_notify, Some(1));
        }
    }
}

#[test]
fn sample_server_conf_parses_to_the_expected_fields() {
    let dir = configs();
    let c = Loader::new(&dir)
        .load_file(Path::new("server.conf"))
        .unwrap();
    assert_eq!(c.mode, Mode::Server);
    assert_eq!(c.lport, 1194);
    assert_eq!(c.proto.transport, Transport::Udp);
    assert_eq!(c.dev_name, None);
    assert_eq!(c.ca, Some(Source::File(dir.join("ca.crt"))));
    assert_eq!(c.key, Some(Source::File(dir.join("server.key"))));
    assert_eq!(
        c.dh,
        Some(Dh::Ignored(Source::File(dir.join("dh2048.pem"))))
    );
    assert_eq!(c.topology, Topology::Net30);
    assert_eq!(c.server, Some("10.8.0.0/24".parse().unwrap()));
    assert_eq!(
        c.ifconfig_pool_persist,
        Some(PoolPersist {
            file: dir.join("ipp.txt"),
            seconds: 600
        })
    );
    assert_eq!(c.ping, Some(10));
    assert_eq!(
        c.ping_rec,
        Some(PingRec {
            timeout: 240,
            action: PingAction::Restart
        })
    );
    assert_eq!(
        c.push,
        [
            "route 10.8.0.1",
            "topology net30",
            "ping 10",
            "ping-restart 120"
        ]
    );
    assert_eq!(
        c.tls_wrap,
        TlsWrap::Auth {
            key: Source::File(dir.join("ta.key")),
            direction: Some(KeyDirection::Normal)
        }
    );
    assert_eq!(c.cipher.as_deref(), Some("AES-256-CBC"));
    assert!(c.persist_key && c.persist_tun);
    assert_eq!(
        c.status,
        Some(StatusFile {
            path: dir.join("openvpn-status.log"),
            interval: 60
        })
    );
    assert_eq!(c.verb, 3);
    assert_eq!(c.explicit_exit_notify, Some(1));
    // dh ignored, net30 deprecation, cipher-not-negotiated (the last two
    // as OpenVPN 2.6 prints them).
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert!(c.warnings[0].message.contains("ECDHE"));
}

#[test]
fn sample_client_conf_parses_to_the_expected_fields() {
    let dir = configs();
    let c = Loader::new(&dir)
        .load_file(Path::new("client.conf"))
        .unwrap();
    assert!(c.client && c.pull);
    assert_eq!(
        c.remotes,
        [Remote {
            host: "my-server-1".into(),
            port: 1194,
            proto: Proto {
                transport: Transport::Udp,
                family: AddrFamily::Any
            }
        }]
    );
    assert_eq!(c.resolv_retry, ResolvRetry::Infinite);
    assert!(c.nobind);
    assert_eq!(c.remote_cert_tls, Some(CertUsage::Server));
    assert_eq!(
        c.tls_wrap,
        TlsWrap::Auth {
            key: Source::File(dir.join("ta.key")),
            direction: Some(KeyDirection::Inverse)
        }
    );
    assert_eq!(c.verb, 3);
}

#[test]
fn typical_2_6_server_with_tls_crypt_parses() {
    let dir = configs();
    let c = Loader::new(&dir)
        .load_file(Path::new("server-2.6.conf"))
        .unwrap();
    assert_eq!(
        c.proto,
        Proto {
            transport: Transport::Udp,
            family: AddrFamily::V6
        }
    );
    assert_eq!(c.topology, Topology::Subnet);
    assert_eq!(c.dh, Some(Dh::None));
    assert_eq!(c.ecdh_curve.as_deref(), Some("prime256v1"));
    assert_eq!(
        c.tls_wrap,
        TlsWrap::Crypt {
            key: Source::File(dir.join("tc.key"))
        }
    );
    assert_eq!(
        c.tls_version_min,
        Some(TlsVersionMin {
            version: TlsVersion::Tls12,
            or_highest: false
        })
    );
    assert_eq!(c.data_ciphers_fallback.as_deref(), Some("AES-256-CBC"));
    assert_eq!(
        c.ifconfig_ipv6_pool,
        Some("fd00:20::1000/64".parse().unwrap())
    );
    assert_eq!(c.client_config_dir, Some(dir.join("ccd")));
    assert_eq!(c.reneg_sec.max, 0);
    assert_eq!(c.max_clients, 200);
    assert_eq!(
        c.status,
        Some(StatusFile {
            path: dir.join("server-2.6-status.log"),
            interval: 30
        })
    );
    assert_eq!(c.status_version, 2);
    assert_eq!(c.mute, Some(20));
    assert_eq!(c.routes.len(), 1);
    assert_eq!(
        c.push,
        [
            "redirect-gateway def1 ipv6 bypass-dhcp",
            "dhcp-option DNS 10.20.0.1",
            "dns server 0 address 10.20.0.1",
            "route 192.168.50.0 255.255.255.0",
            "route-gateway 10.20.0.1",
            "topology subnet",
            "tun-ipv6",
            "ping 10",
            "ping-restart 60",
        ]
    );
    assert!(c.xdp_drop_unknown);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn typical_2_6_client_parses() {
    let dir = configs();
    let c = Loader::new(&dir)
        .load_file(Path::new("client-2.6.conf"))
        .unwrap();
    assert_eq!(c.remotes.len(), 2);
    assert_eq!(c.remotes[1].proto.family, AddrFamily::V4);
    assert!(c.remote_random);
    assert_eq!(
        c.connect_retry,
        ConnectRetry {
            initial: 2,
            max: 60
        }
    );
    assert_eq!(
        c.verify_x509_name,
        Some(X509NameCheck::Name("server".into()))
    );
    assert_eq!(
        c.tls_version_min,
        Some(TlsVersionMin {
            version: TlsVersion::Tls12,
            or_highest: true
        })
    );
    assert_eq!(c.data_ciphers, ["AES-256-GCM", "CHACHA20-POLY1305"]);
    assert_eq!(c.dns.servers[0].addresses.len(), 2);
    assert_eq!(c.dns.servers[0].dnssec, Some(DnsSec::Optional));
    assert!(c.auth_nocache);
}

#[test]
fn inline_client_profile_parses() {
    let dir = configs();
    let c = Loader::new(&dir)
        .load_file(Path::new("client-inline.ovpn"))
        .unwrap();
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let key = std::fs::read_to_string(dir.join("client.key")).unwrap();
    let tc = std::fs::read_to_string(dir.join("tc.key")).unwrap();
    assert_eq!(c.ca, Some(Source::Inline(ca)));
    assert_eq!(c.key, Some(Source::Inline(key)));
    assert_eq!(
        c.tls_wrap,
        TlsWrap::Crypt {
            key: Source::Inline(tc)
        }
    );
    assert_eq!(c.remotes[0].host, "203.0.113.5");
}

#[test]
fn missing_files_are_errors_at_their_line() {
    let dir = configs();
    let e = Loader::new(&dir)
        .load_str(
            "x.conf",
            "client\ndev tun\nremote h\nca ca.crt\ncert client.crt\nkey nope.key\n",
        )
        .unwrap_err();
    assert_eq!(e.line, 6);
    assert!(
        matches!(&e.kind, ConfigErrorKind::File { name, path, .. } if name == "key" && *path == dir.join("nope.key")),
        "{e}"
    );
    let e = Loader::new(&dir)
        .load_str("x.conf", "client\ndev tun\nremote h\nca ca.crt\ncert client.crt\nkey client.key\nstatus /no/such/dir/st.log\n")
        .unwrap_err();
    assert_eq!(e.line, 7, "{e}");
    let e = Loader::new(&dir)
        .load_str("x.conf", "client\ndev tun\nremote h\nca ca.crt\ncert client.crt\nkey client.key\nscript-security 2\nup \"./ca.crt arg\"\n")
        .unwrap_err();
    assert!(
        matches!(
            &e.kind,
            ConfigErrorKind::File {
                what: "command",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn server_with_verify_client_cert_none_and_a_verify_script() {
    let dir = configs();
    let c = Loader::new(&dir)
        .load_str(
            "x.conf",
            "dev tun\nserver 10.8.0.0 255.255.255.0\ncert server.crt\nkey server.key\n\
             verify-client-cert none\nscript-security 2\nauth-user-pass-verify \"scripts/checkpsw.sh --strict\" via-file\n\
             username-as-common-name\n",
        )
        .unwrap();
    assert_eq!(c.verify_client_cert, VerifyClientCert::None);
    assert!(
        c.warnings
            .iter()
            .all(|w| !w.message.contains("script-security"))
    );
}

#[test]
fn relative_paths_follow_cd() {
    let c = Loader::new("/")
        .load_str(
            "x.conf",
            &format!(
                "cd {}\nclient\ndev tun\nremote h\nca ca.crt\ncert client.crt\nkey client.key\n",
                configs().display()
            ),
        )
        .unwrap();
    assert_eq!(c.ca, Some(Source::File(configs().join("ca.crt"))));
    // Files named before `cd` are resolved after it too, as in OpenVPN.
    let c = Loader::new("/")
        .load_str(
            "x.conf",
            &format!(
                "client\ndev tun\nremote h\nca ca.crt\ncert client.crt\nkey client.key\ncd {}\n",
                configs().display()
            ),
        )
        .unwrap();
    assert_eq!(c.key, Some(Source::File(configs().join("client.key"))));
    let e = Loader::new("/")
        .load_str("x.conf", "cd /no/such/dir\n")
        .unwrap_err();
    assert_eq!(e.line, 1);
}

#[test]
fn nested_config_files_apply_in_place() {
    let tmp = std::env::temp_dir().join(format!("vpn-config-nest-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(
        tmp.join("common.conf"),
        "dev tun\nverb 4\nca a\ncert b\nkey c\n",
    )
    .unwrap();
    std::fs::write(
        tmp.join("main.conf"),
        "client\nverb 2\nconfig common.conf\nremote h\n",
    )
    .unwrap();
    std::fs::write(tmp.join("bad.conf"), "client\nconfig broken.conf\n").unwrap();
    std::fs::write(tmp.join("broken.conf"), "dev tun\n\nfrobnicate\n").unwrap();
    std::fs::write(tmp.join("loop.conf"), "config loop.conf\n").unwrap();
    let loader = Loader::new(&tmp).check_files(false);
    let c = loader.load_file(Path::new("main.conf")).unwrap();
    assert_eq!(c.verb, 4, "the nested file's verb comes later");
    let e = loader.load_file(Path::new("bad.conf")).unwrap_err();
    assert_eq!((e.file.to_string(), e.line), ("broken.conf".to_string(), 3));
    let e = loader.load_file(Path::new("loop.conf")).unwrap_err();
    assert!(
        matches!(e.kind, ConfigErrorKind::IncludeDepth { .. }),
        "{e}"
    );
    let e = loader.load_file(Path::new("missing.conf")).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Read { .. }), "{e}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn command_line_feeds_the_same_table() {
    let loader = Loader::new(configs());
    let c = loader
        .load_args([
            "--config",
            "client.conf",
            "--verb",
            "5",
            "--remote",
            "other",
            "1195",
            "--x509-track",
            "CN",
        ])
        .map(|_| ())
        .unwrap_err();
    // x509-track is recognised but unsupported, at argv index 8.
    assert_eq!((c.file.clone(), c.line), (Origin::CommandLine, 8));
    let c = loader
        .load_args([
            "--config",
            "client.conf",
            "--verb",
            "5",
            "--remote",
            "other",
            "1195",
        ])
        .unwrap();
    assert_eq!(c.verb, 5, "later command-line directives override the file");
    assert_eq!(c.remotes.len(), 2);
    assert_eq!(c.remotes[1].port, 1195);
    let c = loader
        .load_args(["--verb", "5", "--config", "client.conf"])
        .unwrap();
    assert_eq!(c.verb, 3, "the file comes later and overrides");
    // A lone argument is a config file.
    assert!(loader.load_args(["client.conf"]).is_ok());
    // Quoted values arrive as one argument.
    let c = loader
        .load_args([
            "--config",
            "server.conf",
            "--push",
            "route 10.9.0.0 255.255.0.0",
        ])
        .unwrap();
    assert_eq!(
        c.push.first().map(String::as_str),
        Some("route 10.9.0.0 255.255.0.0")
    );
}

#[test]
fn command_line_errors_name_the_argument() {
    let loader = Loader::new(configs());
    let e = loader
        .load_args(["--config", "client.conf", "--frobnicate", "x"])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[command line]:3: unknown directive 'frobnicate'"
    );
    let e = loader.load_args(["stray", "--verb", "3"]).unwrap_err();
    assert_eq!(e.line, 1);
    assert!(matches!(e.kind, ConfigErrorKind::ExpectedDoubleDash { .. }));
    let e = loader
        .load_args(["--config", "client.conf", "--verb"])
        .unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Arity { .. }));
    let e = loader.load_args(["--config", "nope.conf"]).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Read { .. }));
    assert_eq!(e.line, 1);
}

#[test]
fn summary_describes_the_mode() {
    let c = Loader::new(configs())
        .load_file(Path::new("server-2.6.conf"))
        .unwrap();
    let s = c.summary();
    assert!(s.starts_with("server over UDP"), "{s}");
    assert!(s.contains("10.20.0.0/24"), "{s}");
    assert!(s.contains("tls-crypt"), "{s}");
}

proptest::proptest! {
    /// Whatever the text, parsing returns (no panic), and any error names
    /// a line that exists.
    #[test]
    fn parsing_never_panics(lines in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::sample::select(directives::all().map(|s| s.name).collect::<Vec<_>>()).prop_map(|s| s.to_string()),
            "[a-z-]{1,12}",
        ].prop_flat_map(|name| proptest::collection::vec("[a-z0-9.:/\"' -]{0,10}", 0..4).prop_map(move |args| format!("{name} {}", args.join(" ")))),
        0..12,
    )) {
        let text = lines.join("\n");
        if let Err(e) = parse(&text) {
            proptest::prop_assert!(e.line as usize <= lines.len());
        }
    }
}

#[test]
fn docs_list_every_directive() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/directives.md"),
    )
    .expect("docs/directives.md");
    let mentioned = |name: &str| {
        doc.contains(&format!("`{name} "))
            || doc.contains(&format!("`{name}`"))
            || doc.contains(&format!("`{name},"))
    };
    for spec in directives::all() {
        assert!(
            mentioned(spec.name),
            "docs/directives.md does not describe '{}'",
            spec.name
        );
    }
    for (name, _) in directives::UNSUPPORTED {
        assert!(
            mentioned(name),
            "docs/directives.md does not list unsupported '{name}'"
        );
    }
    for (name, _) in directives::NOT_ON_LINUX {
        assert!(
            mentioned(name),
            "docs/directives.md does not list other platforms' '{name}'"
        );
    }
}

#[test]
fn every_unsupported_directive_is_refused_by_name_at_its_line() {
    for (name, reason) in directives::UNSUPPORTED {
        match err_at_extra(CLIENT, &format!("{name} arg")) {
            ConfigErrorKind::Unsupported { name: n, reason: r } => {
                assert_eq!((n.as_str(), r), (*name, *reason));
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// Rows of `directives::host` (sockets, process, pull filtering, scripts,
/// server bounds).
fn host_table() -> Vec<(&'static str, &'static str, Check)> {
    use super::host::{MtuDisc, PullFilterAction, RemapUsr1, Show};
    vec![
        ("route-nopull", CLIENT, |c| c.host.route_nopull),
        ("multihome", SERVER, |c| c.host.multihome),
        ("tls-verify ./tv.sh", SERVER, |c| {
            c.host.tls_verify.as_deref() == Some("./tv.sh")
        }),
        ("max-routes 100", CLIENT, |c| {
            c.warnings
                .iter()
                .any(|w| w.message.contains("--max-routes option ignored"))
        }),
        ("pull-filter ignore \"route \"", CLIENT, |c| {
            c.host.pull_filter.rules == [(PullFilterAction::Ignore, "route ".to_string())]
        }),
        ("route-noexec", CLIENT, |c| c.host.route_noexec),
        ("ifconfig-noexec", CLIENT, |c| c.host.ifconfig_noexec),
        ("block-ipv6", CLIENT, |c| c.host.block_ipv6),
        ("mark 42", CLIENT, |c| c.host.mark == Some(42)),
        ("bind ipv6only", SERVER, |c| {
            c.host.bind && c.host.bind_ipv6only
        }),
        ("mtu-disc maybe", CLIENT, |c| {
            c.host.mtu_disc == Some(MtuDisc::Maybe)
        }),
        ("tcp-nodelay", SERVER, |c| {
            c.host.tcp_nodelay && c.push.iter().any(|p| p == "socket-flags TCP_NODELAY")
        }),
        ("socket-flags TCP_NODELAY", CLIENT, |c| {
            c.host.tcp_nodelay && !c.host.push_tcp_nodelay
        }),
        ("link-mtu 1400", CLIENT, |c| {
            c.host.link_mtu == Some(1400) && c.warnings.len() == 1
        }),
        ("udp-mtu 1400", CLIENT, |c| c.host.link_mtu == Some(1400)),
        ("shaper 100000", CLIENT, |c| c.host.shaper == Some(100_000)),
        ("nice -5", SERVER, |c| c.host.nice == Some(-5)),
        ("mlock", SERVER, |c| c.host.mlock),
        ("chroot /var/empty", SERVER, |c| {
            c.host.chroot.as_deref() == Some(Path::new("/var/empty"))
        }),
        ("tmp-dir /run/vpn", SERVER, |c| {
            c.host.tmp_dir.as_deref() == Some(Path::new("/run/vpn"))
        }),
        ("remap-usr1 SIGHUP", SERVER, |c| {
            c.host.remap_usr1 == Some(RemapUsr1::Hup)
        }),
        ("suppress-timestamps", SERVER, |c| {
            c.host.suppress_timestamps
        }),
        ("machine-readable-output", SERVER, |c| {
            c.host.machine_readable_output
        }),
        ("up-delay", CLIENT, |c| c.host.up_delay),
        ("up-restart", CLIENT, |c| c.host.up_restart),
        ("persist-local-ip", CLIENT, |c| c.host.persist_local_ip),
        ("mtu-test", CLIENT, |c| {
            c.host.mtu_test && c.warnings.len() == 1
        }),
        ("allow-recursive-routing", CLIENT, |c| {
            c.host.allow_recursive_routing
        }),
        ("echo msg hello world", CLIENT, |c| {
            c.host.echo == ["msg hello world"]
        }),
        ("parameter a b", CLIENT, |c| c.host.echo == ["a b"]),
        ("learn-address ./la.sh", SERVER, |c| {
            c.host.learn_address.as_deref() == Some("./la.sh")
        }),
        ("ipchange ./ip.sh", CLIENT, |c| {
            c.host.ipchange.as_deref() == Some("./ip.sh")
        }),
        ("route-pre-down ./rpd.sh", CLIENT, |c| {
            c.host.route_pre_down.as_deref() == Some("./rpd.sh")
        }),
        ("setenv-safe NAME v", CLIENT, |c| {
            c.setenv
                .iter()
                .any(|(n, v)| n == "OPENVPN_NAME" && v == "v")
        }),
        ("connect-freq 10 60", SERVER, |c| {
            c.host.connect_freq == Some((10, 60))
        }),
        ("max-routes-per-client 0", SERVER, |c| {
            c.host.max_routes_per_client == 1
        }),
        ("stale-routes-check 30", SERVER, |c| {
            c.host.stale_routes_check == Some((30, 30))
        }),
        ("tcp-queue-limit 128", SERVER, |c| {
            c.host.tcp_queue_limit == 128
        }),
        ("bcast-buffers 512", SERVER, |c| c.host.bcast_buffers == 512),
        ("hash-size 1024 1024", SERVER, |c| {
            c.host.hash_size == (1024, 1024)
        }),
        (
            "port-share 127.0.0.1 8443 /run/ps",
            "dev tun\nproto tcp-server\nserver 10.8.0.0 255.255.255.0\nca a\ncert b\nkey c\n",
            |c| {
                c.host
                    .port_share
                    .as_ref()
                    .is_some_and(|p| p.port == 8443 && p.journal.is_some())
            },
        ),
        ("opt-verify", SERVER, |c| {
            c.host.opt_verify
                && c.warnings
                    .iter()
                    .any(|w| w.message.contains("DEPRECATION: opt-verify"))
        }),
        ("show-ciphers", CLIENT, |c| {
            c.host.show == Some(Show::Ciphers)
        }),
        ("show-digests", CLIENT, |c| {
            c.host.show == Some(Show::Digests)
        }),
        ("show-tls", CLIENT, |c| c.host.show == Some(Show::Tls)),
        ("show-curves", CLIENT, |c| c.host.show == Some(Show::Curves)),
        ("show-groups", CLIENT, |c| c.host.show == Some(Show::Curves)),
        ("show-engines", CLIENT, |c| {
            c.host.show == Some(Show::Engines)
        }),
    ]
}

/// Values and combinations 2.6.14 refuses among the host directives, each
/// at its own line (checked against the running 2.6.14).
#[test]
fn host_directives_refuse_what_openvpn_refuses() {
    for (base, extra) in [
        (CLIENT, "pull-filter drop \"route\""),
        (CLIENT, "mtu-disc sometimes"),
        (CLIENT, "remap-usr1 SIGINT"),
        (CLIENT, "socket-flags TCP_CORK"),
        (CLIENT, "shaper 0"),
        (SERVER, "hash-size 0 256"),
        (SERVER, "connect-freq -1 10"),
        (SERVER, "stale-routes-check 0"),
        (SERVER, "tcp-queue-limit 0"),
        (SERVER, "bcast-buffers 0"),
    ] {
        assert!(
            matches!(
                err_at_extra(base, extra),
                ConfigErrorKind::InvalidValue { .. }
            ),
            "{extra}"
        );
    }
    for (extra, needs) in [
        ("learn-address ./x", "requires --mode server"),
        ("connect-freq 1 1", "requires --mode server"),
        ("stale-routes-check 10", "requires --mode server"),
        ("nobind\nbind", "can't be used together"),
        ("opt-verify", "--opt-verify requires --mode server"),
        (
            "port-share 127.0.0.1 443",
            "--port-share requires TCP server mode",
        ),
        (
            "tun-mtu 1400\nlink-mtu 1500",
            "only one of --tun-mtu or --link-mtu",
        ),
    ] {
        let e = with(P2P, extra).expect_err(extra).to_string();
        assert!(e.contains(needs), "{extra}: {e}");
    }
}

#[test]
fn host_notes_are_logged_once() {
    let c = ok(SERVER, "pull-filter accept route");
    let notes: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.message.contains("pull-filter"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", c.warnings);
    assert!(
        notes[0]
            .message
            .contains("--pull-filter ignored for --mode server")
    );
    assert_eq!(notes[0].span.line, 6);
    let c = ok(CLIENT, "tcp-nodelay");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("tcp-nodelay on the client side"))
    );
}

/// 2.6.14 on Linux answers "Unrecognized option" to these: so do we, with
/// the platform named, and FORWARD_COMPATIBLE softens them as it does there.
#[test]
fn other_platforms_directives_are_unknown_as_on_linux_openvpn() {
    for (name, _) in directives::NOT_ON_LINUX {
        match err_at_extra(CLIENT, name) {
            ConfigErrorKind::NotOnLinux { name: n, .. } => assert_eq!(n, *name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let c = ok(CLIENT, "setenv FORWARD_COMPATIBLE 1\nblock-outside-dns");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let c = ok(CLIENT, "ignore-unknown-option register-dns\nregister-dns");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[test]
fn tap_devices_named_or_typed_and_their_mtu_extra() {
    let c = ok(CLIENT.replace("dev tun", "dev tap").as_str(), "");
    assert_eq!((c.dev_type, c.dev_name.as_deref()), (DevType::Tap, None));
    assert_eq!(c.tun_mtu_extra, Some(32));
    assert_eq!(c.topology, Topology::Subnet);
    let c = ok(
        CLIENT.replace("dev tun", "dev tap3").as_str(),
        "lladdr 02:0a:0B:0c:0d:0e",
    );
    assert_eq!(
        (c.dev_type, c.dev_name.as_deref()),
        (DevType::Tap, Some("tap3"))
    );
    assert_eq!(c.lladdr, Some([2, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e]));
    let c = ok(
        CLIENT.replace("dev tun", "dev br-vpn").as_str(),
        "dev-type tap\ntun-mtu-extra 40",
    );
    assert_eq!(
        (c.dev_type, c.dev_name.as_deref()),
        (DevType::Tap, Some("br-vpn"))
    );
    assert_eq!(c.tun_mtu_extra, Some(40));
    // dev-type wins over the name, as in 2.6.
    let c = ok(
        CLIENT.replace("dev tun", "dev tap0").as_str(),
        "dev-type tun",
    );
    assert_eq!(c.dev_type, DevType::Tun);
    // tun-mtu-extra in a tun config is accepted (old configs carry it).
    let c = ok(CLIENT, "tun-mtu-extra 32");
    assert_eq!((c.dev_type, c.tun_mtu_extra), (DevType::Tun, Some(32)));
    assert_eq!(ok(CLIENT, "").tun_mtu_extra, None);
    let c = ok(CLIENT, "dev-node /dev/net/tun");
    assert_eq!(
        c.dev_node.as_deref(),
        Some(std::path::Path::new("/dev/net/tun"))
    );
}

#[test]
fn dev_null_is_a_client_without_device() {
    let c = ok(CLIENT.replace("dev tun", "dev null").as_str(), "");
    assert_eq!((c.dev_type, c.dev_name.as_deref()), (DevType::Null, None));
}

#[test]
fn server_with_tap_is_subnet_without_pushed_topology() {
    let c = ok(
        SERVER.replace("dev tun", "dev tap").as_str(),
        "topology net30",
    );
    assert_eq!(c.topology, Topology::Subnet);
    assert_eq!(
        c.ifconfig,
        Some(Ifconfig {
            local: Ipv4Addr::new(10, 8, 0, 1),
            remote_netmask: Ipv4Addr::new(255, 255, 255, 0)
        })
    );
    assert_eq!(
        c.ifconfig_pool,
        Some(IfconfigPool {
            start: Ipv4Addr::new(10, 8, 0, 2),
            end: Ipv4Addr::new(10, 8, 0, 254),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 0))
        })
    );
    assert_eq!(c.push, ["route-gateway 10.8.0.1"]);
    assert_eq!(c.route_gateway, None);
    assert!(c.routes.is_empty());
    // /30 is the smallest tap server network.
    ok(
        SERVER
            .replace("dev tun", "dev tap")
            .replace("255.255.255.0", "255.255.255.252")
            .as_str(),
        "",
    );
}

#[test]
fn server_bridge_expands_as_2_6() {
    let base = "dev tap0\nca a\ncert b\nkey c\n";
    let c = ok(
        base,
        "server-bridge 10.8.0.4 255.255.255.0 10.8.0.128 10.8.0.254",
    );
    assert_eq!((c.mode, c.tls_role), (Mode::Server, TlsRole::Server));
    assert_eq!(
        c.ifconfig_pool,
        Some(IfconfigPool {
            start: Ipv4Addr::new(10, 8, 0, 128),
            end: Ipv4Addr::new(10, 8, 0, 254),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 0))
        })
    );
    assert_eq!(c.push, ["route-gateway 10.8.0.4"]);
    assert_eq!(c.ifconfig, None);
    let c = ok(base, "server-bridge");
    assert_eq!((c.mode, c.ifconfig_pool), (Mode::Server, None));
    assert_eq!(c.push, ["route-gateway dhcp"]);
    let c = ok(base, "server-bridge nogw");
    assert_eq!((c.mode, c.ifconfig_pool), (Mode::Server, None));
    assert!(c.push.is_empty());
}

#[test]
fn vlan_directives_as_2_6() {
    let tap = "dev tap\nca a\ncert b\nkey c\nserver-bridge\n";
    let c = ok(tap, "vlan-tagging\nvlan-accept tagged\nvlan-pvid 20");
    assert_eq!(
        c.vlan,
        Some(Vlan {
            accept: VlanAccept::Tagged,
            pvid: 20
        })
    );
    assert_eq!(
        ok(tap, "vlan-tagging").vlan,
        Some(Vlan {
            accept: VlanAccept::All,
            pvid: 1
        })
    );
    assert_eq!(ok(tap, "vlan-accept all\nvlan-pvid 1").vlan, None);
    // A client ignores vlan-accept and vlan-pvid, as 2.6.
    assert_eq!(ok(CLIENT, "vlan-accept tagged\nvlan-pvid 3").vlan, None);
    for (extra, msg) in [
        ("vlan-accept untagged", "requires 'vlan-tagging'"),
        ("vlan-pvid 2", "requires 'vlan-tagging'"),
    ] {
        let e = with(tap, extra).unwrap_err();
        assert!(e.to_string().contains(msg), "{extra}: {e}");
    }
    let e = with(SERVER, "vlan-tagging").unwrap_err();
    assert!(e.to_string().contains("must be used with dev tap"), "{e}");
    let e = with(CLIENT, "vlan-tagging").unwrap_err();
    assert!(e.to_string().contains("requires 'mode server'"), "{e}");
    assert!(with(tap, "vlan-pvid 4095").is_err());
    assert!(with(tap, "vlan-accept some").is_err());
}

#[test]
fn sample_server_conf_bridged_as_its_comments_say() {
    let dir = configs();
    let text = std::fs::read_to_string(dir.join("server.conf")).unwrap();
    let text = text.replacen("\ndev tun\n", "\ndev tap0\n", 1).replacen(
        "\nserver 10.8.0.0 255.255.255.0\n",
        "\nserver-bridge 10.8.0.4 255.255.255.0 10.8.0.50 10.8.0.100\n",
        1,
    );
    let c = Loader::new(&dir).load_str("server.conf", &text).unwrap();
    assert_eq!(
        (c.mode, c.dev_type, c.dev_name.as_deref()),
        (Mode::Server, DevType::Tap, Some("tap0"))
    );
    assert_eq!(
        c.ifconfig_pool,
        Some(IfconfigPool {
            start: Ipv4Addr::new(10, 8, 0, 50),
            end: Ipv4Addr::new(10, 8, 0, 100),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 0))
        })
    );
    assert!(c.push.iter().any(|p| p == "route-gateway 10.8.0.4"));
    assert!(c.ifconfig_pool_persist.is_some());
}

#[test]
fn fragment_parses_as_2_6() {
    assert_eq!(
        ok(P2P, "fragment 900 mtu").fragment,
        Some(Fragment {
            size: 900,
            mtu: true
        })
    );
    assert_eq!(ok(P2P, "fragment 68").fragment.map(|f| f.size), Some(68));
    for bad in ["fragment 67", "fragment abc", "fragment 900 foo"] {
        assert!(
            matches!(err_at_extra(P2P, bad), ConfigErrorKind::InvalidValue { .. }),
            "{bad}"
        );
    }
    assert!(matches!(
        err_at_extra(P2P, "fragment 900 mtu x"),
        ConfigErrorKind::Arity { .. }
    ));
    assert!(matches!(
        err_at_extra(P2P, "mtu-dynamic"),
        ConfigErrorKind::Unsupported { .. }
    ));
}

#[test]
fn fragment_is_udp_only() {
    let e = with(P2P, "proto tcp-client\nfragment 900").unwrap_err();
    assert!(
        e.to_string()
            .contains("--fragment can only be used with --proto udp"),
        "{e}"
    );
    let e = with(P2P, "remote 192.0.2.2 1194 tcp-client\nfragment 900").unwrap_err();
    assert!(e.to_string().contains("--proto udp"), "{e}");
}

#[test]
fn mssfix_without_value_follows_fragment() {
    // Not given, or given without a value: mssfix = fragment, "mtu" meaning,
    // and 2.6's advisory about the mismatched "mtu" flags.
    for extra in [
        "fragment 900",
        "mssfix\nfragment 900",
        "fragment 900\nmssfix",
    ] {
        let c = ok(P2P, extra);
        assert_eq!(
            c.mssfix,
            Some(Mssfix {
                size: 900,
                mode: MssfixMode::Mtu
            }),
            "{extra}"
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w.message.contains("\"mtu\" flag")),
            "{extra}"
        );
    }
    let c = ok(P2P, "fragment 900 mtu");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // An explicit value stays, and a larger one is warned about.
    let c = ok(P2P, "fragment 900\nmssfix 1400");
    assert_eq!(c.mssfix.map(|m| m.size), Some(1400));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("larger or equal than --mssfix (1400)"))
    );
    assert_eq!(ok(P2P, "fragment 900\nmssfix 0").mssfix, None);
}

#[test]
fn plugin_paths_and_syslog_names_follow_2_6() {
    let c = ok(
        SERVER,
        "plugin ./p.so a\nplugin /opt/q.so\nsyslog first\ndaemon second\nplugin sub/r.so\n",
    );
    let paths: Vec<&Path> = c.plugins.iter().map(|p| p.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("./p.so"),
            Path::new("/opt/q.so"),
            Path::new("/usr/lib/x86_64-linux-gnu/openvpn/plugins/sub/r.so"),
        ]
    );
    // The first of syslog/daemon names the system logger.
    assert_eq!(c.syslog, Some(Some("first".into())));
    assert_eq!(c.daemon, Some(Some("second".into())));
    let bare = ok(CLIENT, "syslog\n");
    assert_eq!(bare.syslog, Some(None), "unnamed: the default 'openvpn'");
    let too_many = (0..17)
        .map(|i| format!("plugin /p{i}.so\n"))
        .collect::<String>();
    assert!(
        Loader::new("/nonexistent-base")
            .check_files(false)
            .load_str("t.conf", &format!("{SERVER}{too_many}"))
            .is_err(),
        "17 plugins: more than MAX_PLUGINS"
    );
}

/// 2.6 runs `up` as fatal: below `script-security 2` it stops at start-up,
/// so we refuse such a configuration at its `up` line.
#[test]
fn up_without_script_security_is_refused_as_openvpn_stops() {
    let e = with(CLIENT, "up ./up.sh")
        .expect_err("accepted")
        .to_string();
    assert!(e.contains("disallowed by script-security setting"), "{e}");
    assert!(
        ok(CLIENT, "script-security 2\nup ./up.sh")
            .scripts
            .up
            .is_some()
    );
    // `down` alone only fails when it runs at exit: accepted with a warning.
    assert_eq!(ok(CLIENT, "down ./down.sh").warnings.len(), 1);
}
