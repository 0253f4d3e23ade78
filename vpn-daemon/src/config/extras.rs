//! Settings of the OpenVPN 2.6 directives that real configurations carry
//! beyond the core set (route timing and scripts, peer-certificate checks,
//! Linux no-ops), kept in one struct so the core `Config` stays readable.

use super::{Builder, ConfigError, ConfigErrorKind, Mode, types::CertUsage};

/// `route-delay [N [W]]`: add routes N seconds after the tunnel is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDelay {
    /// N (0 without a parameter: routes are added on the next timer tick,
    /// after the rest of start-up).
    pub seconds: u32,
    /// W: how long OpenVPN waits for a Windows adapter; unused on Linux,
    /// kept so the value is checked as OpenVPN checks it.
    pub window: u32,
}

/// Which certificate `verify-hash` / `peer-fingerprint` fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgo {
    /// `verify-hash … SHA1` (and `verify-hash` without an algorithm).
    Sha1,
    /// `SHA256` (always for `peer-fingerprint`).
    Sha256,
}

/// `verify-hash` (depth 1: the CA that signed the peer) or
/// `peer-fingerprint` (depth 0: the peer's own certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertHashes {
    /// 0 for `peer-fingerprint`, 1 for `verify-hash`.
    pub depth: u32,
    /// The digest over the DER certificate.
    pub algo: HashAlgo,
    /// Accepted fingerprints, in the order given.
    pub hashes: Vec<Vec<u8>>,
}

/// `remote-cert-ku [v...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUsageCheck {
    /// No values: the extension must be present (as `remote-cert-tls`).
    Required,
    /// The peer's key usage must contain all bits of one of these (hex as
    /// written, in OpenVPN's byte order: `80` = digitalSignature).
    AnyOf(Vec<u32>),
}

/// `auth-retry none|nointeract|interact`: what a client does on AUTH_FAILED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthRetry {
    /// Exit (2.6's default).
    #[default]
    None,
    /// Reconnect with the same credentials.
    NoInteract,
    /// Reconnect, reading the credentials again (we have no terminal
    /// prompt: the `auth-user-pass` file is read again).
    Interact,
}

/// The directives of this struct, all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Extras {
    /// `route-metric N`: the metric of routes that give none (0 = none).
    pub route_metric: Option<u32>,
    /// `route-delay`.
    pub route_delay: Option<RouteDelay>,
    /// `route-up CMD`.
    pub route_up: Option<String>,
    /// `down-pre`: run `down` before the device is closed.
    pub down_pre: bool,
    /// `tls-exit`: exit (not restart) when a TLS negotiation fails.
    pub tls_exit: bool,
    /// `fast-io` (accepted: our I/O is always non-blocking and batched).
    pub fast_io: bool,
    /// `disable-occ`: do not send the OCC options string checks.
    pub disable_occ: bool,
    /// `ifconfig-nowarn`.
    pub ifconfig_nowarn: bool,
    /// `ns-cert-type client|server`.
    pub ns_cert_type: Option<CertUsage>,
    /// `remote-cert-ku` (also set by `remote-cert-tls`).
    pub remote_cert_ku: Option<KeyUsageCheck>,
    /// `remote-cert-eku OID|name` (also set by `remote-cert-tls`).
    pub remote_cert_eku: Option<String>,
    /// `verify-hash` / `peer-fingerprint`.
    pub cert_hashes: Option<CertHashes>,
    /// `x509-username-field FIELD...` as 2.6 stores them (all-lower-case
    /// subject names upcased).
    pub x509_username_field: Vec<String>,
    /// `auth-retry`.
    pub auth_retry: AuthRetry,
    /// `providers NAME...`: OpenSSL providers to load (e.g. `legacy default`).
    pub providers: Vec<String>,
    /// `keying-material-exporter LABEL LEN`.
    pub keying_material_exporter: Option<(String, u32)>,
    /// `auth-user-pass-optional` (server).
    pub auth_user_pass_optional: bool,
    /// `session-timeout N`: end the session N seconds after it started.
    pub session_timeout: Option<u32>,
    /// `askpass [FILE]`: the private key's (or PKCS#12) password from the
    /// first line of FILE; `Some(None)` is 2.6's console prompt.
    pub askpass: Option<Option<std::path::PathBuf>>,
    /// `replay-persist FILE` (only static-key mode uses it; see the docs).
    pub replay_persist: Option<std::path::PathBuf>,
}

/// What 2.6 refuses once everything is read.
pub(super) fn validate(b: &Builder) -> Result<(), ConfigError> {
    if b.cfg.mode == Mode::Server && b.cfg.extras.session_timeout.is_some() {
        return Err(ConfigError::at(
            &b.span_of("session-timeout"),
            ConfigErrorKind::Invalid(
                "'session-timeout' is only implemented for clients and p2p so far (2.6 also applies it to each client of a server)".into(),
            ),
        ));
    }
    if b.cfg.mode == Mode::Server && b.cfg.extras.route_delay.is_some() {
        return Err(ConfigError::at(
            &b.span_of("route-delay"),
            ConfigErrorKind::Invalid(
                "'route-delay' cannot be used with 'mode server' (as in OpenVPN)".into(),
            ),
        ));
    }
    Ok(())
}
