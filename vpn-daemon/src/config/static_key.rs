//! Static-key mode (`secret`) and `genkey` in the configuration: their
//! directive parsers and the checks OpenVPN 2.6 makes when a tunnel runs
//! without TLS (options.c `options_postprocess_verify_ce`, init.c
//! `do_genkey`).

use super::{
    Builder, ConfigError, ConfigErrorKind, Span,
    directives::{Args, PemCheck, key_direction},
    types::{GenKey, GenKeyKind, Mode, Source, StaticSecret, TlsRole},
};

fn invalid(span: Span, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(&span, ConfigErrorKind::Invalid(msg.into()))
}

/// `secret FILE [direction]` or `<secret>`.
pub(super) fn secret(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.warn(
        a.span,
        "DEPRECATED OPTION: The option --secret is deprecated.".into(),
    );
    let key = a.source(0, PemCheck::StaticKey)?;
    // As OpenVPN: an inline key takes no direction here (use key-direction).
    let direction = if a.inline.is_none() && a.words.len() > 1 {
        Some(key_direction(a, 1)?)
    } else {
        None
    };
    b.cfg.secret = Some(StaticSecret { key, direction });
    Ok(())
}

/// `genkey [TYPE [FILE [METADATA]]]`.
pub(super) fn genkey(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let kind = match a.words.first().map(String::as_str) {
        None | Some("secret" | "tls-auth" | "tls-crypt") => GenKeyKind::Secret,
        Some("tls-crypt-v2-server") => GenKeyKind::TlsCryptV2Server,
        Some("tls-crypt-v2-client") => GenKeyKind::TlsCryptV2Client,
        Some("auth-token") => GenKeyKind::AuthToken,
        Some(_) => {
            return Err(a.invalid(
                0,
                "secret, tls-auth, tls-crypt, tls-crypt-v2-server, tls-crypt-v2-client or auth-token",
            ));
        }
    };
    let metadata = match kind {
        GenKeyKind::TlsCryptV2Client => a.words.get(2).cloned(),
        _ => None,
    };
    b.cfg.genkey = Some(GenKey {
        kind,
        file: a.words.get(1).map(Into::into),
        metadata,
        secret_file: None,
        tls_crypt_v2_server: None,
    });
    Ok(())
}

/// With `genkey`: settles its file names (the old `--genkey --secret FILE`
/// form included) and says whether the rest of the checks are skipped.
pub(super) fn finish_genkey(b: &mut Builder) -> Result<bool, ConfigError> {
    let Some(mut g) = b.cfg.genkey.take() else {
        return Ok(false);
    };
    let span = b.span_of("genkey");
    if let Some(s) = b.cfg.secret.clone() {
        let Source::File(p) = s.key else {
            return Err(invalid(
                b.span_of("secret"),
                "--genkey --secret needs a file name, not an inline key",
            ));
        };
        if g.kind != GenKeyKind::Secret {
            return Err(invalid(
                span,
                "Using --genkey type with --secret filename is not supported.  Use --genkey type filename instead.",
            ));
        }
        if g.file.is_some() {
            return Err(invalid(
                span,
                "You must provide a filename to either --genkey or --secret, not both",
            ));
        }
        b.warn(
            &span,
            "WARNING: Using --genkey --secret filename is DEPRECATED.  Use --genkey secret filename instead.".into(),
        );
        g.secret_file = Some(p);
    }
    if g.kind == GenKeyKind::TlsCryptV2Client {
        let Some((key, _)) = b.raw.tls_crypt_v2.take() else {
            return Err(invalid(
                span,
                "--genkey tls-crypt-v2-client requires a server key to be set via --tls-crypt-v2 to create a client key",
            ));
        };
        g.tls_crypt_v2_server = Some(key);
    }
    let base = b.base_dir().to_path_buf();
    for p in [&mut g.file, &mut g.secret_file].into_iter().flatten() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    if let Some(Source::File(p)) = &mut g.tls_crypt_v2_server
        && p.is_relative()
    {
        *p = base.join(&*p);
    }
    b.cfg.genkey = Some(g);
    Ok(true)
}

/// TLS-only directives and the name of the `options` field OpenVPN 2.6
/// reports for each (its message names the field), in its order.
const TLS_ONLY: &[(&str, &str)] = &[
    ("ca", "ca_file"),
    ("dh", "dh_file"),
    ("cert", "cert_file"),
    ("key", "priv_key_file"),
    ("pkcs12", "pkcs12_file"),
    ("tls-cipher", "cipher_list"),
    ("tls-ciphersuites", "cipher_list_tls13"),
    ("verify-x509-name", "verify_x509_name"),
    ("tls-timeout", "tls_timeout"),
    ("reneg-bytes", "renegotiate_bytes"),
    ("reneg-pkts", "renegotiate_packets"),
    ("reneg-sec", "renegotiate_seconds"),
    ("hand-window", "handshake_window"),
    ("tran-window", "transition_window"),
    ("tls-auth", "tls_auth_file"),
    ("tls-crypt", "tls_crypt_file"),
    ("tls-crypt-v2", "tls_crypt_v2_file"),
    ("crl-verify", "crl_file"),
    ("remote-cert-tls", "remote_cert_ku[0]"),
];

/// In place of the TLS role checks when `secret` is given: what 2.6
/// refuses in static-key mode, with its messages, and its deprecation note.
pub(super) fn mode_and_role(b: &mut Builder) -> Result<(), ConfigError> {
    if b.raw.server.is_some() {
        return Err(invalid(
            b.span_of("server"),
            "--server and --secret cannot be used together (you must use SSL/TLS keys)",
        ));
    }
    if b.raw.tls_client || b.raw.tls_server {
        return Err(invalid(
            b.latest_of(&["secret", "tls-client", "tls-server", "client", "server"]),
            "specify only one of --tls-server, --tls-client, or --secret",
        ));
    }
    if b.raw.mode_server {
        return Err(invalid(
            b.span_of("mode"),
            "--mode server requires --tls-server",
        ));
    }
    let err = |p: &str| {
        format!(
            "Parameter {p} can only be specified in TLS-mode, i.e. where --tls-server or --tls-client is also specified."
        )
    };
    for (name, field) in TLS_ONLY {
        if b.given(name) {
            return Err(invalid(b.span_of(name), err(field)));
        }
    }
    if b.raw.pull {
        return Err(invalid(b.span_of("pull"), err("--pull")));
    }
    if b.cfg.no_replay && b.given("replay-window") {
        return Err(invalid(
            b.span_of("replay-window"),
            "--replay-window doesn't make sense when replay protection is disabled with --no-replay",
        ));
    }
    if let Some(s) = &mut b.cfg.secret {
        s.direction = s.direction.or(b.cfg.key_direction);
    }
    b.cfg.mode = Mode::PointToPoint;
    // No TLS runs; the role only names the side in logs.
    b.cfg.tls_role = TlsRole::Client;
    for name in ["xdp", "xdp-interface", "xdp-drop-unknown"] {
        if b.given(name) {
            let span = b.span_of(name);
            b.warn(
                &span,
                format!("'{name}' has no effect in static-key mode (plain sockets are used)"),
            );
        }
    }
    let root = b.root_span();
    b.warn(
        &root,
        "DEPRECATION: No tls-client or tls-server option in configuration detected. OpenVPN 2.7 will remove the functionality to run a VPN without TLS. See the examples section in the manual page for examples of a similar quick setup with peer-fingerprint.".into(),
    );
    Ok(())
}

/// The cipher of static-key mode: `cipher`, else 2.6's old default BF-CBC
/// (which OpenSSL 3 only has with `providers legacy default`).
pub(crate) const DEFAULT_STATIC_CIPHER: &str = "BF-CBC";

impl super::Config {
    /// The static-key cipher: `cipher`, else 2.6's default.
    pub fn static_cipher(&self) -> &str {
        self.cipher.as_deref().unwrap_or(DEFAULT_STATIC_CIPHER)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{Config, ConfigError, ConfigErrorKind, KeyDirection, Loader, Source};
    use super::*;

    const KEY: &str = "-----BEGIN OpenVPN Static key V1-----\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\
        -----END OpenVPN Static key V1-----\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Loader::new("/base")
            .check_files(false)
            .load_str("s.conf", text)
    }

    fn refused(extra: &str) -> String {
        match parse(&format!("dev tun\nsecret k.key\n{extra}\n")) {
            Ok(_) => panic!("{extra:?} was accepted"),
            Err(e) => match e.kind {
                ConfigErrorKind::Invalid(m) => m,
                k => panic!("{extra:?}: {k:?}"),
            },
        }
    }

    #[test]
    fn static_key_config_needs_no_tls_and_warns_as_2_6() {
        let c = parse("dev tun\nifconfig 10.9.0.1 10.9.0.2\nsecret k.key 0\nkeepalive 10 60\n")
            .unwrap();
        assert_eq!(
            c.secret.as_ref().map(|s| (&s.key, s.direction)),
            Some((
                &Source::File(PathBuf::from("/base/k.key")),
                Some(KeyDirection::Normal)
            ))
        );
        assert_eq!(c.mode, Mode::PointToPoint);
        assert_eq!(c.static_cipher(), "BF-CBC");
        assert_eq!(c.ping, Some(10));
        let w: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            w[0],
            "DEPRECATED OPTION: The option --secret is deprecated."
        );
        assert!(w[1].starts_with("DEPRECATION: No tls-client or tls-server option"));
        assert!(c.summary().contains("static key, cipher BF-CBC"));
    }

    /// OpenVPN's old static-office / static-home samples with every
    /// optional line switched on (`comp-lzo no` for bare `comp-lzo`, which
    /// asks for compression).
    #[test]
    fn openvpn_static_home_and_office_samples_parse() {
        // `script-security 2`: without it 2.6 stops at the `up` line.
        let common = "script-security 2\nsecret static.key\ncipher AES-256-CBC\nport 1194\nuser nobody\ngroup nobody\ncomp-lzo no\nping 15\nping-restart 45\nping-timer-rem\npersist-tun\npersist-key\nverb 3\n";
        let office = parse(&format!(
            "dev tun\nifconfig 10.1.0.1 10.1.0.2\nup ./office.up\n{common}"
        ))
        .unwrap();
        let home = parse(&format!(
            "dev tun\nremote 1.2.3.4\nifconfig 10.1.0.2 10.1.0.1\nup ./home.up\n{common}"
        ))
        .unwrap();
        for c in [&office, &home] {
            assert!(c.secret.is_some());
            assert_eq!(c.static_cipher(), "AES-256-CBC");
            assert_eq!(c.ping, Some(15));
            assert!(c.ping_timer_rem && c.persist_tun);
        }
        assert!(office.remotes.is_empty());
        assert_eq!(home.remotes.len(), 1);
    }

    #[test]
    fn direction_comes_from_secret_else_key_direction_and_inline_takes_none() {
        let c = parse("dev tun\nkey-direction 1\nsecret k.key\n").unwrap();
        assert_eq!(c.secret.unwrap().direction, Some(KeyDirection::Inverse));
        let c = parse("dev tun\nkey-direction 1\nsecret k.key 0\n").unwrap();
        assert_eq!(c.secret.unwrap().direction, Some(KeyDirection::Normal));
        let c = parse(&format!("dev tun\n<secret>\n{KEY}</secret>\n")).unwrap();
        let s = c.secret.unwrap();
        assert!(matches!(s.key, Source::Inline(_)));
        assert_eq!(s.direction, None);
        let c = parse(&format!(
            "dev tun\nkey-direction 0\n<secret>\n{KEY}</secret>\n"
        ))
        .unwrap();
        assert_eq!(c.secret.unwrap().direction, Some(KeyDirection::Normal));
        assert!(parse("dev tun\nsecret k.key 2\n").is_err());
        assert!(parse("dev tun\n<secret>\nnot a key\n</secret>\n").is_err());
    }

    #[test]
    fn refuses_what_2_6_refuses_in_static_key_mode_with_its_messages() {
        let only_one = "specify only one of --tls-server, --tls-client, or --secret";
        assert_eq!(refused("tls-client"), only_one);
        assert_eq!(refused("tls-server"), only_one);
        assert_eq!(refused("client"), only_one);
        assert_eq!(
            refused("server 10.8.0.0 255.255.255.0"),
            "--server and --secret cannot be used together (you must use SSL/TLS keys)"
        );
        let tls_mode = |p: &str| {
            format!(
                "Parameter {p} can only be specified in TLS-mode, i.e. where --tls-server or --tls-client is also specified."
            )
        };
        for (line, field) in [
            ("ca ca.crt", "ca_file"),
            ("cert c.crt", "cert_file"),
            ("key c.key", "priv_key_file"),
            ("tls-auth ta.key 1", "tls_auth_file"),
            ("tls-crypt tc.key", "tls_crypt_file"),
            ("tls-timeout 3", "tls_timeout"),
            ("reneg-sec 60", "renegotiate_seconds"),
            ("remote-cert-tls server", "remote_cert_ku[0]"),
            ("pull", "--pull"),
        ] {
            assert_eq!(refused(line), tls_mode(field), "{line}");
        }
        assert_eq!(
            refused("no-replay\nreplay-window 128"),
            "--replay-window doesn't make sense when replay protection is disabled with --no-replay"
        );
    }

    #[test]
    fn cbc_ciphers_beyond_the_tls_list_are_for_static_key_mode_only() {
        let c = parse("dev tun\nsecret k.key\ncipher bf-cbc\n").unwrap();
        assert_eq!(c.static_cipher(), "BF-CBC");
        // With TLS and `pull` 2.6 ignores `cipher`; without `pull` it would
        // run the data channel with it.
        assert!(
            parse("client\ndev tun\nremote 192.0.2.1\nca a\ncert b\nkey c\ncipher BF-CBC\n")
                .is_ok()
        );
        let e =
            parse("tls-client\ndev tun\nremote 192.0.2.1\nca a\ncert b\nkey c\ncipher BF-CBC\n")
                .unwrap_err();
        assert!(
            matches!(e.kind, ConfigErrorKind::InvalidValue { .. }),
            "{e}"
        );
    }

    #[test]
    fn genkey_skips_the_tunnel_checks_and_takes_the_old_secret_form() {
        let c = parse("genkey secret out.key\n").unwrap();
        let g = c.genkey.unwrap();
        assert_eq!(g.kind, GenKeyKind::Secret);
        assert_eq!(g.file, Some(PathBuf::from("/base/out.key")));
        let c = Loader::new("/base")
            .check_files(false)
            .load_args(["--genkey", "--secret", "old.key"])
            .unwrap();
        let g = c.genkey.unwrap();
        assert_eq!(g.secret_file, Some(PathBuf::from("/base/old.key")));
        assert!(c.warnings.iter().any(|w| {
            w.message
                .contains("--genkey --secret filename is DEPRECATED")
        }));
        let e = Loader::new("/base")
            .check_files(false)
            .load_args(["--genkey", "secret", "a.key", "--secret", "b.key"])
            .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = Loader::new("/base")
            .check_files(false)
            .load_args(["--genkey", "tls-crypt-v2-client", "c.key"])
            .unwrap_err();
        assert!(e.to_string().contains("requires a server key"), "{e}");
        let c = Loader::new("/base")
            .check_files(false)
            .load_args([
                "--tls-crypt-v2",
                "s.key",
                "--genkey",
                "tls-crypt-v2-client",
                "c.key",
                "bWV0YQ==",
            ])
            .unwrap();
        let g = c.genkey.unwrap();
        assert_eq!(g.metadata.as_deref(), Some("bWV0YQ=="));
        assert_eq!(
            g.tls_crypt_v2_server,
            Some(Source::File("/base/s.key".into()))
        );
        assert!(parse("genkey frob\n").is_err());
    }
}
