//! TLS for the control channel: OpenSSL running over in-memory buffers, one
//! [`TlsSession`] per key state, from one shared [`TlsContext`].
//!
//! Parts: `context` (the OpenSSL context and peer checks), `verify`
//! (certificate policy), `session` (the memory-pipe session); this module
//! holds the configuration and error types they share.
//!
//! OpenVPN carries TLS inside its own reliable control channel, so the TLS
//! engine never sees a socket: the session feeds it the concatenated
//! P_CONTROL_V1 payloads ([`TlsSession::handle_ciphertext`]), drains the
//! records it produces ([`TlsSession::poll_ciphertext`], cut to the control
//! packet budget), writes control messages as plaintext records
//! ([`TlsSession::write_plaintext`], one record per call) and reads the
//! peer's plaintext one record at a time ([`TlsSession::poll_plaintext`]).
//!
//! Certificate checks follow OpenVPN 2.6: CA chain (`ca`), `remote-cert-tls`
//! (keyUsage present **and** EKU serverAuth/clientAuth), `verify-x509-name`
//! (subject / name / name-prefix), `crl-verify` (leaf only, like 2.6 with
//! OpenSSL), `verify-client-cert none|optional|require`.
//!
//! Time: the one exception to "time is a parameter" in `proto`. OpenSSL
//! checks certificate validity against the wall clock inside the handshake;
//! [`TlsConfig::verify_time`] pins that check (and our CRL expiry check) to
//! a given unix time via `X509_VERIFY_PARAM_set_time`, which tests always do.
//! With `None`, OpenSSL reads the wall clock itself; nothing here calls
//! `SystemTime::now`.
//!
//! Files: like the rest of `proto`, this module reads no files. The config
//! layer reads `ca`/`cert`/`key`/`crl-verify`/`pkcs12` files (or takes the
//! inline `<ca>…</ca>` text) and hands over the bytes.

use openssl::error::ErrorStack;
use openssl::ssl::SslVersion;

use crate::proto::cert_checks::{ExtraCertChecks, ExtraCertError};

mod context;
mod session;
#[cfg(test)]
pub(crate) mod tests;
mod verify;

pub use context::TlsContext;
pub use session::TlsSession;
pub use verify::subject_string;

/// "EXPORTER-OpenVPN-datakeys": data-channel key block with tls-ekm (doc §6.2).
pub const EKM_LABEL_DATAKEYS: &str = "EXPORTER-OpenVPN-datakeys";
/// "EXPORTER-OpenVPN-dynamic-tls-crypt": dynamic tls-crypt key (doc §3.6).
pub const EKM_LABEL_DYN_TLS_CRYPT: &str = "EXPORTER-OpenVPN-dynamic-tls-crypt";
/// Both exports are 256 bytes, laid out like a static key file.
pub const EKM_LEN: usize = 256;

/// Which end of the TLS handshake we are (the OpenVPN client is always the TLS client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRole {
    /// `tls-client`.
    Client,
    /// `tls-server`.
    Server,
}

/// TLS protocol versions for `tls-version-min` / `tls-version-max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (a config may name it; the daemon raises it to 1.2).
    Tls10,
    /// TLS 1.1 (likewise).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    fn to_openssl(self) -> SslVersion {
        match self {
            TlsVersion::Tls10 => SslVersion::TLS1,
            TlsVersion::Tls11 => SslVersion::TLS1_1,
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        }
    }
}

/// `remote-cert-tls server|client`: the peer's certificate must be of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertType {
    /// EKU "TLS Web Server Authentication" (serverAuth).
    Server,
    /// EKU "TLS Web Client Authentication" (clientAuth).
    Client,
}

/// `verify-x509-name NAME TYPE`, checked on the peer's leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum X509NameCheck {
    /// `subject`: the whole subject DN as OpenVPN prints it (`C=US, O=x, CN=y`).
    Subject(String),
    /// `name`: the common name, exactly.
    Name(String),
    /// `name-prefix`: the common name starts with this.
    NamePrefix(String),
}

/// `verify-client-cert` (server only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyClientCert {
    /// Do not ask for a client certificate.
    None,
    /// Ask; verify one if presented.
    Optional,
    /// Ask and fail without one (OpenVPN's default).
    #[default]
    Require,
}

/// Where our own certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `cert` (PEM, leaf first, then optional intermediates) and `key` (PEM).
    Pem {
        /// Certificate chain in PEM.
        cert: Vec<u8>,
        /// Private key in PEM.
        key: Vec<u8>,
    },
    /// `pkcs12` (DER) with its password (empty if none); its CA certs are
    /// used as `ca` when [`TlsConfig::ca`] is empty.
    Pkcs12 {
        /// The PKCS#12 file contents.
        der: Vec<u8>,
        /// Its password.
        password: String,
    },
}

/// Everything needed to build a [`TlsContext`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Our role.
    pub role: TlsRole,
    /// Trusted CA certificates (PEM, one or more).
    pub ca: Vec<u8>,
    /// Our certificate and key; `None` for a client using only auth-user-pass.
    pub identity: Option<Identity>,
    /// `tls-version-min` (OpenVPN default 1.2).
    pub version_min: TlsVersion,
    /// `tls-version-max`, `None` = highest supported.
    pub version_max: Option<TlsVersion>,
    /// `remote-cert-tls`.
    pub remote_cert_tls: Option<CertType>,
    /// `verify-x509-name`.
    pub verify_x509_name: Option<X509NameCheck>,
    /// `crl-verify` file contents (PEM or DER).
    pub crl: Option<Vec<u8>>,
    /// `verify-client-cert` (server only).
    pub verify_client_cert: VerifyClientCert,
    /// `ecdh-curve` / `tls-groups` (colon list of group names).
    pub groups: Option<String>,
    /// `dh FILE` contents (PEM); `None` = `dh none` (ECDHE only).
    pub dh: Option<Vec<u8>>,
    /// `tls-cipher` (TLS ≤ 1.2 cipher list).
    pub tls_cipher: Option<String>,
    /// `tls-ciphersuites` (TLS 1.3).
    pub tls_ciphersuites: Option<String>,
    /// Unix time to check certificate validity at; `None` = OpenSSL's wall clock.
    pub verify_time: Option<i64>,
    /// `ns-cert-type`, `remote-cert-ku/-eku`, `peer-fingerprint`, `verify-hash`.
    pub extra_checks: ExtraCertChecks,
}

impl TlsConfig {
    /// A config with OpenVPN's defaults for `role`.
    pub fn new(role: TlsRole, ca: Vec<u8>, identity: Option<Identity>) -> Self {
        Self {
            role,
            ca,
            identity,
            version_min: TlsVersion::Tls12,
            version_max: None,
            remote_cert_tls: None,
            verify_x509_name: None,
            crl: None,
            verify_client_cert: VerifyClientCert::Require,
            groups: None,
            dh: None,
            tls_cipher: None,
            tls_ciphersuites: None,
            verify_time: None,
            extra_checks: ExtraCertChecks::default(),
        }
    }
}

/// Configuration that OpenSSL refused: our (the operator's) fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The `ca` bytes hold no parseable certificate.
    #[error("ca: no usable certificate: {0}")]
    Ca(#[source] ErrorStack),
    /// `ca` is empty and the identity brought no CA either.
    #[error("ca: no CA certificate configured")]
    NoCa,
    /// The `cert` bytes could not be parsed.
    #[error("cert: {0}")]
    Cert(#[source] ErrorStack),
    /// The `key` bytes could not be parsed.
    #[error("key: {0}")]
    Key(#[source] ErrorStack),
    /// The `cert` bytes hold no certificate.
    #[error("cert: no certificate found")]
    NoCert,
    /// The private key does not belong to the certificate.
    #[error("key does not match certificate: {0}")]
    KeyMismatch(#[source] ErrorStack),
    /// The PKCS#12 file could not be parsed or decrypted.
    #[error("pkcs12: {0}")]
    Pkcs12(#[source] ErrorStack),
    /// The PKCS#12 file lacks a certificate or key.
    #[error("pkcs12: file holds no {0}")]
    Pkcs12Missing(&'static str),
    /// The PKCS#12 password contains a NUL byte.
    #[error("pkcs12: password contains a NUL byte")]
    Pkcs12Password,
    /// The CRL could not be parsed as PEM or DER.
    #[error("crl-verify: {0}")]
    Crl(#[source] ErrorStack),
    /// Bad `dh` parameters.
    #[error("dh: {0}")]
    Dh(#[source] ErrorStack),
    /// `ecdh-curve` / `tls-groups` named unknown groups.
    #[error("ecdh-curve/tls-groups {groups:?}: {source}")]
    Groups {
        /// The rejected list.
        groups: String,
        /// OpenSSL's reason.
        #[source]
        source: ErrorStack,
    },
    /// `tls-cipher` / `tls-ciphersuites` rejected.
    #[error("tls cipher list {list:?}: {source}")]
    Ciphers {
        /// The rejected list.
        list: String,
        /// OpenSSL's reason.
        #[source]
        source: ErrorStack,
    },
    /// `tls-version-min` above `tls-version-max`.
    #[error("tls-version-min is above tls-version-max")]
    VersionRange,
    /// A server needs a certificate and key.
    #[error("a TLS server needs cert and key (or pkcs12)")]
    ServerWithoutIdentity,
    /// Any other OpenSSL failure while building the context.
    #[error("openssl: {0}")]
    OpenSsl(#[source] ErrorStack),
}

/// Why we refused the peer's certificate (the peer is at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRejection {
    /// The peer sent no certificate although one is required.
    #[error("peer presented no certificate")]
    NoCertificate,
    /// The chain does not lead to our `ca`.
    #[error("certificate at depth {depth} is not signed by a trusted CA ({detail})")]
    UntrustedIssuer {
        /// Position in the chain (0 = leaf).
        depth: u32,
        /// OpenSSL's verify error text.
        detail: String,
    },
    /// A signature in the chain does not verify.
    #[error("bad certificate signature at depth {depth}")]
    BadSignature {
        /// Position in the chain.
        depth: u32,
    },
    /// A certificate's notAfter is before the verification time.
    #[error("certificate at depth {depth} has expired")]
    Expired {
        /// Position in the chain.
        depth: u32,
    },
    /// A certificate's notBefore is after the verification time.
    #[error("certificate at depth {depth} is not yet valid")]
    NotYetValid {
        /// Position in the chain.
        depth: u32,
    },
    /// `crl-verify`: the leaf's serial is on the CRL.
    #[error("certificate serial {serial} is revoked by the CRL")]
    Revoked {
        /// Serial in hex.
        serial: String,
    },
    /// `crl-verify`: the CRL was not issued by the leaf's issuer.
    #[error("CRL issuer does not match the certificate issuer")]
    CrlIssuerMismatch,
    /// `crl-verify`: the CRL signature does not verify with the issuer key.
    #[error("CRL signature does not verify")]
    CrlBadSignature,
    /// `crl-verify`: the CRL's nextUpdate is in the past.
    #[error("CRL has expired")]
    CrlExpired,
    /// `remote-cert-tls`: the keyUsage extension is absent.
    #[error("remote-cert-tls {expected:?}: certificate has no keyUsage extension")]
    MissingKeyUsage {
        /// The required type.
        expected: CertType,
    },
    /// `remote-cert-tls`: the EKU extension is absent or lacks the purpose.
    #[error("remote-cert-tls {expected:?}: extendedKeyUsage lacks the required purpose")]
    WrongExtendedKeyUsage {
        /// The required type.
        expected: CertType,
    },
    /// `verify-x509-name` did not match.
    #[error("verify-x509-name: expected {expected:?}, certificate has {actual:?}")]
    X509NameMismatch {
        /// The configured check.
        expected: X509NameCheck,
        /// What the certificate carries (subject or CN).
        actual: String,
    },
    /// `ns-cert-type`, `remote-cert-ku/-eku`, `peer-fingerprint`, `verify-hash`.
    #[error("{0}")]
    Extra(ExtraCertError),
    /// Another OpenSSL verify error.
    #[error("certificate verify error {code} at depth {depth}: {detail}")]
    Other {
        /// X509_V_ERR_* code.
        code: i32,
        /// Position in the chain.
        depth: u32,
        /// OpenSSL's text.
        detail: String,
    },
}

/// A TLS-level failure of one session.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// We refused the peer's certificate.
    #[error("peer certificate rejected: {0}")]
    PeerCertRejected(#[from] CertRejection),
    /// The handshake or a record failed (bad data, peer alert, version or
    /// cipher mismatch, the peer refused our certificate).
    #[error("TLS failure: {message}")]
    Protocol {
        /// OpenSSL's error text (includes received alerts).
        message: String,
    },
    /// The peer closed the TLS session (close_notify).
    #[error("TLS session closed by peer")]
    Closed,
    /// An earlier error already ended this session.
    #[error("TLS session failed earlier")]
    Failed,
    /// Our misuse: the operation needs a finished handshake.
    #[error("TLS handshake not complete")]
    HandshakeIncomplete,
    /// Creating the per-session OpenSSL object failed.
    #[error("openssl: {0}")]
    OpenSsl(#[from] ErrorStack),
}
