//! From a validated [`Config`] to what the protocol core needs: the TLS
//! context, the control-channel wrapping and the [`SessionConfig`] shared
//! by every session of this process. Files are read here, once, before
//! privileges are dropped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::config::host::MtuDisc;
use crate::config::types::{self as ct, AuthUserPass, Compression, PingAction, Source, TlsWrap};
use crate::io::external::tcp::TcpOptions;
use crate::io::external::udp::UdpConfig;
use crate::proto::data::{CompressFraming, Digest};
use crate::proto::key_method::{OccProto, OptionsString, PeerInfo};
use crate::proto::keys::{Key2, KeyDirection, Role};
use crate::proto::ncp::CipherList;
use crate::proto::replay::ReplayConfig;
use crate::proto::session::{SessionConfig, Transport, WrapConfig};
use crate::proto::tls::{Identity, TlsConfig, TlsContext, TlsVersion};
use crate::proto::wire::tls_crypt::{TlsCryptV2ClientKey, TlsCryptV2ServerKey};

use crate::error::DaemonError;

/// Reads key or certificate material: a file's bytes or an inline block's text.
pub fn read_source(src: &Source, what: &str) -> Result<Vec<u8>, DaemonError> {
    match src {
        Source::Inline(text) => Ok(text.clone().into_bytes()),
        Source::File(path) => read_file(path, what),
    }
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, DaemonError> {
    std::fs::read(path)
        .map_err(|e| DaemonError::io(format!("reading {what} {}", path.display()), e))
}

fn read_text(src: &Source, what: &'static str) -> Result<String, DaemonError> {
    let bytes = read_source(src, what)?;
    String::from_utf8(bytes).map_err(|_| DaemonError::Unusable {
        what: what.into(),
        problem: "is not text",
    })
}

/// The TLS context of `cfg` (our role from `tls-client`/`tls-server`).
pub fn tls_context(cfg: &Config) -> Result<TlsContext, DaemonError> {
    load_providers(&cfg.providers)?;
    let role = cfg.tls_role;
    let ca = match &cfg.ca {
        Some(s) => read_source(s, "ca")?,
        None => Vec::new(),
    };
    let identity = match (&cfg.pkcs12, &cfg.cert, &cfg.key) {
        (Some(p), _, _) => {
            let der = match p {
                Source::File(path) => read_file(path, "pkcs12")?,
                Source::Inline(b64) => {
                    use base64::Engine;
                    let clean: String = b64.split_whitespace().collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(clean)
                        .map_err(|_| DaemonError::Unusable {
                            what: "inline pkcs12".into(),
                            problem: "is not base64",
                        })?
                }
            };
            Some(Identity::Pkcs12 {
                password: pkcs12_password(cfg, &der)?,
                der,
            })
        }
        (None, Some(c), Some(k)) => {
            let mut cert = read_source(c, "cert")?;
            if let Some(extra) = &cfg.extra_certs {
                cert.push(b'\n');
                cert.extend(read_source(extra, "extra-certs")?);
            }
            Some(Identity::Pem {
                cert,
                key: decrypt_key(cfg, read_source(k, "key")?)?,
            })
        }
        _ => None,
    };
    let mut t = TlsConfig::new(role, ca, identity);
    // 1.0/1.1 are below what OpenSSL allows us; 1.2 is the floor, and a
    // maximum of 1.3 is no maximum.
    if let Some(v) = cfg.tls_version_min {
        t.version_min = v.version.max(TlsVersion::Tls12);
    }
    t.version_max = cfg
        .tls_version_max
        .filter(|v| *v < TlsVersion::Tls13)
        .map(|v| v.max(TlsVersion::Tls12));
    t.remote_cert_tls = cfg.remote_cert_tls;
    t.extra_checks = extra_cert_checks(cfg);
    t.verify_x509_name = cfg.verify_x509_name.clone();
    if let Some(crl) = &cfg.crl_verify {
        // `crl-verify DIR dir` is refused at validation (config/expand.rs).
        t.crl = Some(read_source(crl, "crl-verify")?);
    }
    t.verify_client_cert = cfg.verify_client_cert;
    t.groups = cfg.tls_groups.clone().or_else(|| cfg.ecdh_curve.clone());
    t.tls_cipher = cfg.tls_cipher.clone();
    t.tls_ciphersuites = cfg.tls_ciphersuites.clone();
    Ok(TlsContext::new(&t)?)
}

fn key_direction(d: Option<KeyDirection>) -> KeyDirection {
    d.unwrap_or_default()
}

/// The control-channel wrapping of `cfg` for `role`.
pub fn wrap_config(cfg: &Config, role: Role) -> Result<WrapConfig, DaemonError> {
    let digest = Digest::from_name(&cfg.auth).unwrap_or(Digest::Sha1);
    Ok(match &cfg.tls_wrap {
        TlsWrap::None => WrapConfig::None,
        TlsWrap::Auth { key, direction } => {
            let text = read_text(key, "tls-auth")?;
            let key = Key2::from_static_key_file(&text).map_err(|source| DaemonError::Key {
                what: "tls-auth key",
                source,
            })?;
            WrapConfig::Auth {
                key,
                direction: key_direction(direction.or(cfg.key_direction)),
                digest,
            }
        }
        TlsWrap::Crypt { key } => {
            let text = read_text(key, "tls-crypt")?;
            let key = Key2::from_static_key_file(&text).map_err(|source| DaemonError::Key {
                what: "tls-crypt key",
                source,
            })?;
            WrapConfig::Crypt { key }
        }
        TlsWrap::CryptV2 { key, .. } => {
            let text = read_text(key, "tls-crypt-v2")?;
            match role {
                Role::Client => {
                    let k = TlsCryptV2ClientKey::from_pem(&text).map_err(|source| {
                        DaemonError::Key {
                            what: "tls-crypt-v2 client key",
                            source,
                        }
                    })?;
                    WrapConfig::CryptV2Client {
                        kc: k.kc.clone(),
                        wkc: k.wkc.clone(),
                    }
                }
                Role::Server => {
                    let k = TlsCryptV2ServerKey::from_pem(&text).map_err(|source| {
                        DaemonError::Key {
                            what: "tls-crypt-v2 server key",
                            source,
                        }
                    })?;
                    WrapConfig::CryptV2Server {
                        server_key: Arc::new(k),
                    }
                }
            }
        }
    })
}

/// `auth-user-pass FILE`: the first two lines.
pub fn auth_user_pass(cfg: &Config) -> Result<Option<(String, String)>, DaemonError> {
    match &cfg.auth_user_pass {
        None => Ok(None),
        Some(AuthUserPass::Prompt) => Err(DaemonError::Unsupported(
            "auth-user-pass without a file (terminal prompt) is not supported; give a file".into(),
        )),
        Some(AuthUserPass::Source(src)) => {
            let text = read_text(src, "auth-user-pass")?;
            let mut lines = text.lines();
            let user = lines.next().unwrap_or_default().trim_end().to_owned();
            let pass = lines.next().unwrap_or_default().trim_end().to_owned();
            if user.is_empty() {
                return Err(DaemonError::Unusable {
                    what: "auth-user-pass file".into(),
                    problem: "has no username line",
                });
            }
            Ok(Some((user, pass)))
        }
    }
}

/// Compression framing for the configured `compress`/`comp-lzo`.
pub fn framing(c: Compression) -> CompressFraming {
    c.framing()
}

/// The IV_LZO / IV_LZ4 / IV_COMP_STUB lines 2.6 sends for `c`.
fn compression_peer_info(pi: &mut PeerInfo, c: Compression) {
    for line in c.peer_info() {
        match line.trim_end_matches("=1") {
            "IV_LZO_STUB" => pi.lzo_stub = true,
            "IV_COMP_STUB" => pi.comp_stub = true,
            "IV_COMP_STUBv2" => pi.comp_stub_v2 = true,
            k => pi.real_compression.push(k.to_string()),
        }
    }
}

/// The link socket as the config asks: buffers, `mark`, `bind ipv6only`,
/// `mtu-disc`.
pub fn udp_config(cfg: &Config, bind: std::net::SocketAddr) -> UdpConfig {
    let mut uc = UdpConfig::new(bind);
    uc.sndbuf = cfg.sndbuf.map(|b| b as usize);
    uc.rcvbuf = cfg.rcvbuf.map(|b| b as usize);
    uc.mark = cfg.host.mark;
    uc.v6_only = cfg.host.bind_ipv6only;
    uc.mtu_discover = cfg.host.mtu_disc.map(|m| match m {
        MtuDisc::No => libc::IP_PMTUDISC_DONT,
        MtuDisc::Maybe => libc::IP_PMTUDISC_WANT,
        MtuDisc::Yes => libc::IP_PMTUDISC_DO,
    });
    uc
}

/// The TCP link's options as the config asks (TCP_NODELAY is always on, so
/// `tcp-nodelay` / `socket-flags TCP_NODELAY` need nothing more here).
pub fn tcp_options(cfg: &Config) -> TcpOptions {
    TcpOptions {
        sndbuf: cfg.sndbuf.map(|b| b as usize),
        rcvbuf: cfg.rcvbuf.map(|b| b as usize),
        mark: cfg.host.mark,
        // tcp-queue-limit counts packets; ours is bytes. Never below our
        // default, which already holds more than 2.6's 64 full packets.
        write_queue: (cfg.host.tcp_queue_limit as usize)
            .saturating_mul(1600)
            .max(TcpOptions::default().write_queue),
        ..TcpOptions::default()
    }
}

fn secs(n: u32) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(u64::from(n)))
}

/// The [`SessionConfig`] for every session of this process.
pub fn session_config(
    cfg: &Config,
    tls: Arc<TlsContext>,
    transport: Transport,
    ipv6_link: bool,
) -> Result<SessionConfig, DaemonError> {
    let role = match cfg.tls_role {
        ct::TlsRole::Client => Role::Client,
        ct::TlsRole::Server => Role::Server,
    };
    let tls_role = tls.role();
    let wrap = wrap_config(cfg, role)?;
    let mut s = SessionConfig::new(role, tls, wrap);
    s.transport = transport;
    s.hand_window = Duration::from_secs(u64::from(cfg.hand_window));
    s.tls_timeout = Duration::from_secs(u64::from(cfg.tls_timeout.max(1)));
    s.reneg_sec = secs(cfg.reneg_sec.max);
    s.reneg_bytes = cfg.reneg_bytes.filter(|b| *b > 0);
    s.reneg_pkts = cfg.reneg_pkts.filter(|p| *p > 0);
    s.transition_window = Duration::from_secs(u64::from(cfg.tran_window));
    s.ping = cfg.ping.and_then(secs);
    if let Some(pr) = cfg.ping_rec {
        match pr.action {
            PingAction::Restart => s.ping_restart = secs(pr.timeout),
            PingAction::Exit => s.ping_exit = secs(pr.timeout),
        }
    }
    s.inactive = cfg.inactive.and_then(|i| secs(i.seconds));
    if !cfg.data_ciphers.is_empty() {
        s.data_ciphers = CipherList::from_names(&cfg.data_ciphers);
    }
    s.data_ciphers_fallback = cfg.data_ciphers_fallback.clone();
    s.auth_digest = Digest::from_name(&cfg.auth).unwrap_or(Digest::Sha1);
    s.replay = ReplayConfig::new(cfg.replay_window.size, u64::from(cfg.replay_window.seconds));
    s.compress = cfg.compression;
    let tun_mtu = u16::try_from(cfg.tun_mtu).unwrap_or(1500);
    s.tun_mtu = tun_mtu;
    let names: Vec<&str> = s.data_ciphers.names().iter().map(String::as_str).collect();
    s.peer_info = PeerInfo::ours(
        env!("CARGO_PKG_VERSION"),
        &names,
        u16::try_from(cfg.tun_mtu_max).unwrap_or(tun_mtu),
    );
    if transport == Transport::Tcp {
        s.peer_info.tcpnl = true;
    }
    if cfg.pull || cfg.push_peer_info {
        // 2.6's push_peer_info_detail 2 and 3: pull clients announce compression.
        compression_peer_info(&mut s.peer_info, cfg.compression);
    }
    s.peer_info
        .other
        .extend(crate::host::peer_info::extra_lines(cfg));
    let mut occ = OptionsString::default_udp(tls_role);
    occ.tun_mtu = cfg.tun_mtu;
    occ.proto = match (transport, ipv6_link) {
        (Transport::Udp, false) => OccProto::UdpV4,
        (Transport::Udp, true) => OccProto::UdpV6,
        (Transport::Tcp, false) => OccProto::TcpV4,
        (Transport::Tcp, true) => OccProto::TcpV6,
    };
    // 2.6's OCC link-mtu: tun-mtu + AEAD/P_DATA overhead (+2 for TCP framing).
    occ.link_mtu = cfg.tun_mtu + if transport == Transport::Tcp { 43 } else { 41 };
    // 2.6 counts tun-mtu-extra (32 by default on tap) in the payload.
    occ.link_mtu += cfg.tun_mtu_extra.unwrap_or(0);
    occ.dev_type = cfg.dev_type.as_str().into();
    if let Some(f) = cfg.fragment {
        // 2.6 counts the fragment header in the OCC link-mtu.
        occ.link_mtu += 4;
        occ.mtu_dynamic = true;
        s.fragment = Some(fragment_config(cfg, f, ipv6_link));
    }
    // 2.6 counts the v1 compression byte in link-mtu too (mtu.c).
    occ.link_mtu += cfg.compression.framing().mtu_overhead() as u32;
    occ.comp_lzo = cfg.compression.occ_comp_lzo();
    occ.auth = s.auth_digest.name().to_owned();
    if let TlsWrap::Auth { direction, .. } = &cfg.tls_wrap {
        occ.tls_auth = true;
        occ.keydir = match direction.or(cfg.key_direction) {
            Some(KeyDirection::Normal) => Some(0),
            Some(KeyDirection::Inverse) => Some(1),
            Some(KeyDirection::Bidirectional) | None => None,
        };
    }
    occ.cipher = cfg.cipher.clone().filter(|c| s.data_ciphers.contains(c));
    s.options_string = occ;
    s.explicit_exit_notify = cfg.explicit_exit_notify.filter(|n| *n > 0);
    s.auth_user_pass = auth_user_pass(cfg)?;
    s.pull_filter = cfg.host.pull_filter.clone();
    s.pull_filter.route_nopull = cfg.host.route_nopull;
    Ok(s)
}

/// `fragment N [mtu]` for the data channel: `mtu` counts the outer IP + UDP
/// headers (2.6 `datagram_overhead`); reassembly holds packets up to the
/// largest tun MTU we may run with, plus framing.
fn fragment_config(
    cfg: &Config,
    f: crate::config::Fragment,
    ipv6_link: bool,
) -> crate::proto::data::fragment::FragmentConfig {
    crate::proto::data::fragment::FragmentConfig {
        size: f.size,
        encap_overhead: f.mtu.then_some(if ipv6_link { 48 } else { 28 }),
        capacity: cfg.tun_mtu.max(cfg.tun_mtu_max) as usize + 128,
    }
}
/// `ns-cert-type`, `remote-cert-ku/-eku`, `peer-fingerprint`, `verify-hash`.
fn extra_cert_checks(cfg: &Config) -> crate::proto::cert_checks::ExtraCertChecks {
    use crate::config::extras::{HashAlgo, KeyUsageCheck};
    use crate::proto::cert_checks::{ExtraCertChecks, FingerprintRule, KeyUsageRule};
    let e = &cfg.extras;
    ExtraCertChecks {
        ns_cert_type: e.ns_cert_type,
        key_usage: e.remote_cert_ku.as_ref().map(|k| match k {
            KeyUsageCheck::Required => KeyUsageRule::Required,
            KeyUsageCheck::AnyOf(v) => KeyUsageRule::AnyOf(v.clone()),
        }),
        ext_key_usage: e.remote_cert_eku.clone(),
        username_fields: e.x509_username_field.clone(),
        fingerprints: e.cert_hashes.as_ref().map(|h| FingerprintRule {
            depth: h.depth,
            sha256: h.algo == HashAlgo::Sha256,
            hashes: h.hashes.clone(),
        }),
    }
}

/// `askpass FILE`: the first line of FILE, as 2.6 reads a private-key
/// password; `None` without `askpass`.
fn askpass(cfg: &Config) -> Result<Option<String>, DaemonError> {
    match &cfg.extras.askpass {
        None => Ok(None),
        Some(None) => Err(DaemonError::Unsupported(
            "askpass without a file (terminal prompt) is not supported; give a file".into(),
        )),
        Some(Some(path)) => {
            let text = String::from_utf8_lossy(&read_file(path, "askpass")?).into_owned();
            Ok(Some(
                text.lines()
                    .next()
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned(),
            ))
        }
    }
}

/// An encrypted `key` is decrypted with the `askpass` password (and handed
/// on as unencrypted PKCS#8); an unencrypted one passes unchanged.
fn decrypt_key(cfg: &Config, pem: Vec<u8>) -> Result<Vec<u8>, DaemonError> {
    let Some(pass) = askpass(cfg)? else {
        return Ok(pem);
    };
    if openssl::pkey::PKey::private_key_from_pem(&pem).is_ok() {
        return Ok(pem);
    }
    let key = openssl::pkey::PKey::private_key_from_pem_passphrase(&pem, pass.as_bytes())
        .map_err(DaemonError::KeyDecrypt)?;
    key.private_key_to_pem_pkcs8()
        .map_err(DaemonError::KeyEncode)
}

/// 2.6 opens a PKCS#12 file with an empty password first, then with the
/// `askpass` one.
fn pkcs12_password(cfg: &Config, der: &[u8]) -> Result<String, DaemonError> {
    let opens = |p: &str| {
        openssl::pkcs12::Pkcs12::from_der(der)
            .and_then(|p12| p12.parse2(p))
            .is_ok()
    };
    if opens("") {
        return Ok(String::new());
    }
    Ok(askpass(cfg)?.unwrap_or_default())
}

/// `providers NAME...`: loaded into OpenSSL's default library context once
/// per process and kept (2.6 loads them before any crypto; as there, an
/// explicit list replaces OpenSSL's implicit `default`, so configs say
/// `providers legacy default`).
fn load_providers(names: &[String]) -> Result<(), DaemonError> {
    use std::sync::Mutex;
    static LOADED: Mutex<Vec<(String, openssl::provider::Provider)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for name in names {
        if loaded.iter().any(|(n, _)| n == name) {
            continue;
        }
        let p =
            openssl::provider::Provider::load(None, name).map_err(|e| DaemonError::Provider {
                name: name.clone(),
                detail: Some(e.to_string()),
            })?;
        tracing::info!(provider = %name, "OpenSSL provider loaded");
        loaded.push((name.clone(), p));
    }
    Ok(())
}

/// The local address of `local`/`port`/`proto` (dual-stack by default).
pub(crate) fn bind_addr(cfg: &Config) -> Result<std::net::SocketAddr, DaemonError> {
    let ip: std::net::IpAddr = match &cfg.local {
        Some(l) => match l.parse() {
            Ok(ip) => ip,
            // A host name, resolved once at start (OpenVPN resolves it when
            // it binds): the first address of the wanted family.
            Err(_) => {
                use std::net::ToSocketAddrs as _;
                let err = |detail: String| DaemonError::Resolve {
                    host: l.clone(),
                    port: cfg.lport,
                    detail,
                };
                (l.as_str(), cfg.lport)
                    .to_socket_addrs()
                    .map_err(|e| err(e.to_string()))?
                    .map(|a| a.ip())
                    .find(|ip| match cfg.proto.family {
                        crate::config::AddrFamily::V4 => ip.is_ipv4(),
                        crate::config::AddrFamily::V6 => ip.is_ipv6(),
                        crate::config::AddrFamily::Any => true,
                    })
                    .ok_or_else(|| err("no address of the wanted family".into()))?
            }
        },
        None => match cfg.proto.family {
            crate::config::AddrFamily::V4 => std::net::IpAddr::from([0, 0, 0, 0]),
            crate::config::AddrFamily::V6 | crate::config::AddrFamily::Any => {
                std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            }
        },
    };
    Ok(std::net::SocketAddr::new(ip, cfg.lport))
}

/// A TLS client with no check of the server's certificate beyond the CA:
/// 2.6 warns about it at start (init.c `do_option_warnings`), as anyone
/// with a certificate from the same CA could then pose as the server.
pub(crate) fn server_cert_unverified(cfg: &Config) -> bool {
    use crate::config::types::CertUsage;
    cfg.tls_role == crate::config::TlsRole::Client
        && cfg.host.tls_verify.is_none()
        && cfg.verify_x509_name.is_none()
        && cfg.extras.ns_cert_type != Some(CertUsage::Server)
        && cfg.remote_cert_tls.is_none()
        && cfg.extras.remote_cert_eku.is_none()
        && cfg.extras.cert_hashes.as_ref().is_none_or(|h| h.depth != 0)
}

#[cfg(test)]
mod unverified_tests {
    use super::*;

    fn client(extra: &str) -> Config {
        crate::config::Loader::new("/")
            .check_files(false)
            .load_str(
                "c.conf",
                &format!(
                    "client\ndev tun\nremote 192.0.2.1\nca ca.pem\ncert c.pem\nkey k.pem\n{extra}"
                ),
            )
            .expect("config")
    }

    #[test]
    fn a_client_without_a_server_check_is_flagged_as_2_6_does() {
        assert!(server_cert_unverified(&client("")));
        for check in [
            "remote-cert-tls server",
            "verify-x509-name server name",
            "remote-cert-eku \"TLS Web Server Authentication\"",
            "ns-cert-type server",
            "peer-fingerprint 01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f:20",
        ] {
            assert!(!server_cert_unverified(&client(check)), "{check}");
        }
        // ns-cert-type client checks nothing about the server.
        assert!(server_cert_unverified(&client("ns-cert-type client")));
    }
}
