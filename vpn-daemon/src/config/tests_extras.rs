//! Unit tests of the directives in `extras.rs` that need more than one line
//! of the directive table: interplay, refusals, and 2.6's special forms.

use super::{
    extras::{KeyUsageCheck, RouteDelay},
    *,
};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Loader::new("/nonexistent-base")
        .check_files(false)
        .load_str("test.conf", text)
}

const SERVER: &str = "dev tun\nserver 10.8.0.0 255.255.255.0\nca ca.crt\ncert s.crt\nkey s.key\n";
const CLIENT: &str = "client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n";

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("{text:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn per_client_directives_are_refused_in_a_main_config_with_openvpns_reason() {
    for line in [
        "iroute 10.9.0.0 255.255.255.0",
        "iroute-ipv6 fd00:9::/64",
        "ifconfig-push 10.8.0.5 255.255.255.0",
        "ifconfig-ipv6-push fd00::5/64 fd00::1",
        "push-reset",
        "disable",
    ] {
        let e = err(&format!("{SERVER}{line}\n"));
        assert_eq!(e.line, 6, "{line}");
        assert!(
            e.to_string().contains("cannot be used in this context"),
            "{line}: {e}"
        );
    }
}

#[test]
fn ping_restart_and_ping_exit_zero_turn_the_timeout_off() {
    let c = ok(&format!("{CLIENT}ping-restart 0\n"));
    assert_eq!(c.ping_rec, None);
    let c = ok(&format!("{CLIENT}ping-exit 0\n"));
    assert_eq!(c.ping_rec, None);
    // 0 does not count as given: keepalive may still set its own.
    let c = ok(&format!("{CLIENT}ping-restart 0\nkeepalive 10 60\n"));
    assert_eq!(c.ping_rec.map(|p| p.timeout), Some(60));
}

#[test]
fn server_network_may_carry_bits_which_the_netmask_overrides() {
    let base = "dev tun\nca ca.crt\ncert s.crt\nkey s.key\ntopology subnet\n";
    let c = ok(&format!("{base}server 10.42.42.0/25 255.255.255.128\n"));
    assert_eq!(c.server, Some("10.42.42.0/25".parse().unwrap()));
    let c = ok(&format!("{base}server 10.42.42.0/24 255.255.255.128\n"));
    assert_eq!(c.server, Some("10.42.42.0/25".parse().unwrap()));
    for bad in ["10.42.42.0/abc", "10.42.42.0/33", "10.42.42.0/"] {
        let e = err(&format!("{base}server {bad} 255.255.255.128\n"));
        assert_eq!(e.line, 6, "{bad}");
    }
}

#[test]
fn cipher_bf_cbc_is_ignored_with_a_warning_where_26_ignores_it() {
    let c = ok(&format!("{CLIENT}cipher BF-CBC\n"));
    assert_eq!(c.cipher.as_deref(), Some("BF-CBC"));
    assert!(c.warnings.iter().any(|w| w.message.contains("BF-CBC")));
    let c = ok(&format!("{SERVER}cipher bf-cbc\n"));
    assert_eq!(c.cipher.as_deref(), Some("BF-CBC"));
    // p2p without pull: 2.6 would run the data channel with it.
    let p2p = "tls-client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n";
    assert_eq!(err(&format!("{p2p}cipher BF-CBC\n")).line, 7);
    assert!(err(&format!("{CLIENT}data-ciphers-fallback BF-CBC\n")).line == 7);
}

#[test]
fn keying_material_exporter_is_checked_as_26_checks_it() {
    for bad in [
        "keying-material-exporter foo 32",
        "keying-material-exporter EXPORTER-OpenVPN-datakeys 32",
        "keying-material-exporter EXPORTER-x 15",
        "keying-material-exporter EXPORTER-x 4096",
    ] {
        assert_eq!(err(&format!("{CLIENT}{bad}\n")).line, 7, "{bad}");
    }
}

#[test]
fn session_timeout_is_refused_in_server_mode_until_it_is_per_client() {
    let e = err(&format!("{SERVER}session-timeout 60\n"));
    assert!(e.to_string().contains("session-timeout"), "{e}");
    assert_eq!(
        ok(&format!("{CLIENT}session-timeout 0\n"))
            .extras
            .session_timeout,
        None
    );
}

#[test]
fn route_delay_is_refused_in_server_mode_and_defaults_like_openvpn() {
    let e = err(&format!("{SERVER}route-delay 5\n"));
    assert!(e.to_string().contains("mode server"), "{e}");
    let c = ok(&format!("{CLIENT}route-delay\n"));
    assert_eq!(
        c.extras.route_delay,
        Some(RouteDelay {
            seconds: 0,
            window: 30
        })
    );
}

#[test]
fn remote_cert_ku_and_eku_replace_their_half_of_remote_cert_tls() {
    // remote-cert-tls then remote-cert-eku: KU still required, EKU replaced.
    let c = ok(&format!(
        "{CLIENT}remote-cert-tls server\nremote-cert-eku 1.2.3.4\n"
    ));
    assert_eq!(c.remote_cert_tls, None);
    assert_eq!(c.extras.remote_cert_ku, Some(KeyUsageCheck::Required));
    assert_eq!(c.extras.remote_cert_eku.as_deref(), Some("1.2.3.4"));
    // remote-cert-ku then remote-cert-tls: remote-cert-tls wins entirely.
    let c = ok(&format!(
        "{CLIENT}remote-cert-ku 80\nremote-cert-tls server\n"
    ));
    assert_eq!(c.remote_cert_tls, Some(CertUsage::Server));
    assert_eq!(c.extras.remote_cert_ku, None);
    // remote-cert-tls then remote-cert-ku: the EKU half stays.
    let c = ok(&format!(
        "{CLIENT}remote-cert-tls server\nremote-cert-ku 80\n"
    ));
    assert_eq!(
        c.extras.remote_cert_eku.as_deref(),
        Some("TLS Web Server Authentication")
    );
    assert_eq!(
        c.extras.remote_cert_ku,
        Some(KeyUsageCheck::AnyOf(vec![0x80]))
    );
    assert!(err(&format!("{CLIENT}remote-cert-ku xyz\n")).line == 7);
}

#[test]
fn peer_fingerprint_replaces_ca_and_takes_inline_lists() {
    let fp = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    let fp2 = fp.replace("00:11", "FF:11");
    let text = format!(
        "client\ndev tun\nremote 192.0.2.1\ncert c.crt\nkey c.key\n<peer-fingerprint>\n# comment\n{fp}\n\n  {fp2}\n</peer-fingerprint>\n"
    );
    let c = ok(&text);
    let h = c.extras.cert_hashes.expect("hashes");
    assert_eq!((h.depth, h.hashes.len()), (0, 2));
    assert_eq!(h.hashes[1][0], 0xff);
    // Without ca or peer-fingerprint a client is still refused.
    assert!(parse("client\ndev tun\nremote 192.0.2.1\ncert c.crt\nkey c.key\n").is_err());
    // Wrong length, and mixing with verify-hash, are errors.
    assert!(err(&format!("{CLIENT}peer-fingerprint 00:11\n")).line == 7);
    let e = err(&format!(
        "{CLIENT}peer-fingerprint {fp}\nverify-hash 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33\n"
    ));
    assert!(e.to_string().contains("mutually exclusive"), "{e}");
}

#[test]
fn route_up_program_is_resolved_and_checked_like_up() {
    let dir = std::env::temp_dir().join(format!("vpn-route-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["ca.crt", "c.crt", "c.key"] {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    let e = Loader::new(&dir)
        .load_str("t.conf", &format!("{CLIENT}route-up ./missing.sh\n"))
        .expect_err("missing program");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.line, 7, "{e}");
    assert!(e.to_string().contains("route-up"), "{e}");
}

#[test]
fn openvpn_27_defaults_that_26_refused_apply_and_26s_topology_stays() {
    // No `dev`: 2.7's `dev tun` (2.6 refuses the config).
    let c = ok("client\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n");
    assert_eq!((c.dev.as_str(), c.dev_name.as_deref()), ("tun", None));
    // No `dh` on a server: 2.7's `dh none` (2.6 refuses the config).
    let c = ok(SERVER);
    assert_eq!(c.dh, None);
    // No `topology` on a server: 2.6's net30, with its deprecation warning
    // (2.7 would use subnet; see docs/directives.md).
    let c = ok(SERVER);
    assert_eq!(c.topology, Topology::Net30);
    assert!(c.warnings.iter().any(|w| w.message.contains("net30")));
}

#[test]
fn crl_verify_dir_is_refused_at_its_line_not_when_the_loop_starts() {
    let e = err(&format!("{SERVER}crl-verify /etc/crl dir\n"));
    assert_eq!(e.line, 6);
    assert!(
        e.to_string()
            .contains("crl-verify DIR dir is not supported"),
        "{e}"
    );
    ok(&format!("{SERVER}crl-verify crl.pem\n"));
}

#[test]
fn static_key_local_must_be_an_address_where_it_is_bound() {
    let text = "dev tun\nsecret s.key\nlocal vpn.example.org\n";
    let e = err(text);
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .contains("local vpn.example.org: not an IP address"),
        "{e}"
    );
    ok("dev tun\nsecret s.key\nlocal 192.0.2.7\n");
    // A TCP client does not bind `local`: nothing to refuse.
    ok("dev tun\nsecret s.key\nproto tcp-client\nremote 192.0.2.1\nlocal vpn.example.org\n");
    // TLS loops resolve a name (tunnel::setup::bind_addr).
    ok(&format!("{SERVER}local vpn.example.org\n"));
}

#[test]
fn instance_scope_is_2_6s_client_connect_mask() {
    // add_option's VERIFY_PERMISSION classes in 2.6.14 that
    // CLIENT_CONNECT_OPT_MASK lets through, by name.
    let mut want = vec![
        "auth-token",
        "auth-token-user",
        "bind-dev",
        "cipher",
        "comp-lzo",
        "comp-noadapt",
        "compress",
        "config",
        "data-ciphers-fallback",
        "disable",
        "echo",
        "ifconfig-ipv6-push",
        "ifconfig-push",
        "inactive",
        "iroute",
        "iroute-ipv6",
        "max-routes-per-client",
        "ncp-ciphers",
        "parameter",
        "ping",
        "ping-exit",
        "ping-restart",
        "ping-timer-rem",
        "push",
        "push-remove",
        "push-reset",
        "session-timeout",
        "socket-flags",
        "vlan-pvid",
    ];
    want.sort_unstable();
    let mut got: Vec<&str> = directives::all()
        .chain(directives::INSTANCE_ONLY)
        .filter(|s| s.scope.contains(directives::Scope::INSTANCE))
        .map(|s| s.name)
        .collect();
    got.sort_unstable();
    assert_eq!(got, want);
    // Instance-only rows stay out of the config file, with 2.6's reason.
    for s in directives::all().filter(|s| !s.scope.contains(directives::Scope::CONFIG)) {
        let e = err(&format!("{SERVER}{}\n", s.name));
        assert!(
            e.to_string().contains("cannot be used in this context"),
            "{}: {e}",
            s.name
        );
    }
}

#[test]
fn pushed_options_share_the_config_vocabulary() {
    // What only a server sends (no config-file meaning of the same name).
    const PUSH_ONLY: &[&str] = &[
        "peer-id",
        "protocol-flags",
        "key-derivation",
        "push-continuation",
        "tun-ipv6",
    ];
    for p in crate::proto::push::PUSHED {
        if PUSH_ONLY.contains(&p.name) {
            continue;
        }
        assert!(
            !matches!(directives::lookup(p.name), directives::Lookup::Unknown),
            "pushed option {} is not in the directive table",
            p.name
        );
    }
}
