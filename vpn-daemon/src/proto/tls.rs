//! `TlsSession`: OpenSSL running over in-memory buffers, one per key state.
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

use crate::proto::cert_checks::{ExtraCertChecks, ExtraCertError};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::dh::Dh;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{
    CrlStatus, X509, X509Crl, X509ExtendedKeyUsage, X509NameRef, X509Ref, X509StoreContextRef,
};

/// "EXPORTER-OpenVPN-datakeys": data-channel key block with tls-ekm (doc §6.2).
pub const EKM_LABEL_DATAKEYS: &str = "EXPORTER-OpenVPN-datakeys";
/// "EXPORTER-OpenVPN-dynamic-tls-crypt": dynamic tls-crypt key (doc §3.6).
pub const EKM_LABEL_DYN_TLS_CRYPT: &str = "EXPORTER-OpenVPN-dynamic-tls-crypt";
/// Both exports are 256 bytes, laid out like a static key file.
pub const EKM_LEN: usize = 256;

/// Largest plaintext record we read in one go (TLS maximum fragment).
const MAX_RECORD: usize = 16 * 1024;

// X509_V_ERR_* values (stable OpenSSL ABI) that we report by name.
const V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const V_ERR_CERT_SIGNATURE_FAILURE: i32 = 7;
const V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const V_ERR_CERT_HAS_EXPIRED: i32 = 10;
const V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const V_ERR_CERT_REVOKED: i32 = 23;
const V_ERR_INVALID_PURPOSE: i32 = 26;
// ERR_LIB_SSL and SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: a server with
// `verify-client-cert require` fails this way, not through the verify callback.
const ERR_LIB_SSL: i32 = 20;
const SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;

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

/// Shared, immutable TLS settings; one per configuration, many sessions.
pub struct TlsContext {
    ctx: SslContext,
    role: TlsRole,
    checks: Arc<PeerChecks>,
    verify_time: Option<i64>,
    verify_mode: SslVerifyMode,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("role", &self.role)
            .field("verify_time", &self.verify_time)
            .finish_non_exhaustive()
    }
}

/// Checks our verify callback applies on top of OpenSSL's chain check.
struct PeerChecks {
    remote_cert_tls: Option<CertType>,
    verify_x509_name: Option<X509NameCheck>,
    crl: Option<X509Crl>,
    extra: ExtraCertChecks,
    /// `peer-fingerprint` without `ca`: chain errors are forgiven.
    fingerprint_only: bool,
}

fn pem_certs(pem: &[u8]) -> Result<Vec<X509>, ErrorStack> {
    X509::stack_from_pem(pem)
}

impl TlsContext {
    /// Build the OpenSSL context for `cfg`.
    pub fn new(cfg: &TlsConfig) -> Result<Self, TlsConfigError> {
        let method = match cfg.role {
            TlsRole::Client => SslMethod::tls_client(),
            TlsRole::Server => SslMethod::tls_server(),
        };
        let mut b = SslContextBuilder::new(method).map_err(TlsConfigError::OpenSsl)?;
        if cfg.version_max.is_some_and(|max| max < cfg.version_min) {
            return Err(TlsConfigError::VersionRange);
        }
        b.set_min_proto_version(Some(cfg.version_min.to_openssl()))
            .map_err(TlsConfigError::OpenSsl)?;
        b.set_max_proto_version(cfg.version_max.map(TlsVersion::to_openssl))
            .map_err(TlsConfigError::OpenSsl)?;
        // OpenVPN disables session tickets and TLS renegotiation: every key
        // state runs a full, fresh handshake.
        b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);

        let mut extra_ca = Vec::new();
        match &cfg.identity {
            Some(Identity::Pem { cert, key }) => {
                let chain = pem_certs(cert).map_err(TlsConfigError::Cert)?;
                let mut chain = chain.into_iter();
                let leaf = chain.next().ok_or(TlsConfigError::NoCert)?;
                let key = PKey::private_key_from_pem(key).map_err(TlsConfigError::Key)?;
                install_identity(&mut b, &leaf, &key, chain)?;
            }
            Some(Identity::Pkcs12 { der, password }) => {
                if password.contains('\0') {
                    return Err(TlsConfigError::Pkcs12Password);
                }
                let p12 = Pkcs12::from_der(der).map_err(TlsConfigError::Pkcs12)?;
                let parsed = p12.parse2(password).map_err(TlsConfigError::Pkcs12)?;
                let leaf = parsed
                    .cert
                    .ok_or(TlsConfigError::Pkcs12Missing("certificate"))?;
                let key = parsed
                    .pkey
                    .ok_or(TlsConfigError::Pkcs12Missing("private key"))?;
                if let Some(ca) = parsed.ca {
                    extra_ca.extend(ca);
                }
                install_identity(&mut b, &leaf, &key, std::iter::empty())?;
            }
            None if cfg.role == TlsRole::Server => {
                return Err(TlsConfigError::ServerWithoutIdentity);
            }
            None => {}
        }

        let mut store = X509StoreBuilder::new().map_err(TlsConfigError::OpenSsl)?;
        let mut n_ca = 0;
        if !cfg.ca.is_empty() {
            for c in pem_certs(&cfg.ca).map_err(TlsConfigError::Ca)? {
                store.add_cert(c).map_err(TlsConfigError::Ca)?;
                n_ca += 1;
            }
        } else {
            for c in extra_ca {
                store.add_cert(c).map_err(TlsConfigError::Ca)?;
                n_ca += 1;
            }
        }
        let fingerprint_only = cfg.extra_checks.fingerprint_only(n_ca > 0);
        if n_ca == 0 && !fingerprint_only {
            return Err(TlsConfigError::NoCa);
        }
        b.set_verify_cert_store(store.build())
            .map_err(TlsConfigError::OpenSsl)?;

        if let Some(groups) = &cfg.groups {
            b.set_groups_list(groups)
                .map_err(|source| TlsConfigError::Groups {
                    groups: groups.clone(),
                    source,
                })?;
        }
        if let Some(dh) = &cfg.dh {
            let dh = Dh::params_from_pem(dh).map_err(TlsConfigError::Dh)?;
            b.set_tmp_dh(&dh).map_err(TlsConfigError::Dh)?;
        }
        if let Some(list) = &cfg.tls_cipher {
            b.set_cipher_list(list)
                .map_err(|source| TlsConfigError::Ciphers {
                    list: list.clone(),
                    source,
                })?;
        }
        if let Some(list) = &cfg.tls_ciphersuites {
            b.set_ciphersuites(list)
                .map_err(|source| TlsConfigError::Ciphers {
                    list: list.clone(),
                    source,
                })?;
        }

        let crl = match &cfg.crl {
            Some(bytes) => Some(
                X509Crl::from_pem(bytes)
                    .or_else(|_| X509Crl::from_der(bytes))
                    .map_err(TlsConfigError::Crl)?,
            ),
            None => None,
        };

        let verify_mode = match (cfg.role, cfg.verify_client_cert) {
            (TlsRole::Client, _) => SslVerifyMode::PEER,
            (TlsRole::Server, VerifyClientCert::None) => SslVerifyMode::NONE,
            (TlsRole::Server, VerifyClientCert::Optional) => SslVerifyMode::PEER,
            (TlsRole::Server, VerifyClientCert::Require) => {
                SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
            }
        };

        Ok(Self {
            ctx: b.build(),
            role: cfg.role,
            checks: Arc::new(PeerChecks {
                remote_cert_tls: cfg.remote_cert_tls,
                verify_x509_name: cfg.verify_x509_name.clone(),
                crl,
                extra: cfg.extra_checks.clone(),
                fingerprint_only,
            }),
            verify_time: cfg.verify_time,
            verify_mode,
        })
    }

    /// Our role.
    pub fn role(&self) -> TlsRole {
        self.role
    }
}

fn install_identity(
    b: &mut SslContextBuilder,
    leaf: &X509Ref,
    key: &PKey<Private>,
    chain: impl Iterator<Item = X509>,
) -> Result<(), TlsConfigError> {
    b.set_certificate(leaf).map_err(TlsConfigError::Cert)?;
    for c in chain {
        b.add_extra_chain_cert(c).map_err(TlsConfigError::Cert)?;
    }
    // The key parsed already, so a refusal here means it is not the cert's key.
    b.set_private_key(key)
        .map_err(TlsConfigError::KeyMismatch)?;
    b.check_private_key().map_err(TlsConfigError::KeyMismatch)
}

/// In-memory duplex under `SslStream`: reads what the reliability layer
/// delivered, collects what TLS wants to send.
#[derive(Debug, Default)]
struct MemPipe {
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
}

impl Read for MemPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.incoming.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.incoming.len());
        buf[..n].copy_from_slice(&self.incoming[..n]);
        self.incoming.drain(..n);
        Ok(n)
    }
}

impl Write for MemPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The outcome of verifying the peer, recorded by the verify callback.
type VerifySlot = Arc<Mutex<Option<CertRejection>>>;

fn record(slot: &VerifySlot, r: CertRejection) {
    if let Ok(mut g) = slot.lock() {
        g.get_or_insert(r);
    }
}

fn common_name(name: &X509NameRef) -> Option<String> {
    name.entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

/// The subject DN as OpenVPN's `x509_get_subject` prints it (the string
/// `verify-x509-name … subject` compares against): attributes in certificate
/// order, short names (dotted OID when OpenSSL has none), `=`, joined with
/// ", ", control characters escaped as `\XX`. Multi-valued RDNs are joined
/// with ", " too (2.6 uses " + "; the openssl crate does not expose RDN sets).
pub fn subject_string(name: &X509NameRef) -> String {
    let mut out = String::new();
    for (i, e) in name.entries().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let obj = e.object();
        match obj.nid().short_name() {
            Ok(sn) => out.push_str(sn),
            Err(_) => out.push_str(&obj.to_string()),
        }
        out.push('=');
        for c in e.data().to_string().unwrap_or_default().chars() {
            if c.is_control() && (c as u32) < 0x80 {
                out.push_str(&format!("\\{:02X}", c as u32));
            } else {
                out.push(c);
            }
        }
    }
    out
}

fn map_verify_error(code: i32, depth: u32, detail: &str, role: TlsRole) -> CertRejection {
    match code {
        // OpenSSL's own purpose check (a TLS client checks for a server
        // certificate and vice versa) fails on the EKU before ours runs.
        V_ERR_INVALID_PURPOSE if depth == 0 => CertRejection::WrongExtendedKeyUsage {
            expected: match role {
                TlsRole::Client => CertType::Server,
                TlsRole::Server => CertType::Client,
            },
        },
        V_ERR_CERT_HAS_EXPIRED => CertRejection::Expired { depth },
        V_ERR_CERT_NOT_YET_VALID => CertRejection::NotYetValid { depth },
        V_ERR_CERT_SIGNATURE_FAILURE => CertRejection::BadSignature { depth },
        V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => CertRejection::UntrustedIssuer {
            depth,
            detail: detail.to_string(),
        },
        V_ERR_CERT_REVOKED => CertRejection::Revoked {
            serial: String::new(),
        },
        _ => CertRejection::Other {
            code,
            depth,
            detail: detail.to_string(),
        },
    }
}

fn asn1_before(a: &Asn1TimeRef, b: &Asn1TimeRef) -> bool {
    a.compare(b).is_ok_and(|o| o == std::cmp::Ordering::Less)
}

/// OpenVPN's extra checks on the leaf (depth 0) after OpenSSL's chain check passed.
fn check_leaf(
    checks: &PeerChecks,
    verify_time: Option<i64>,
    ctx: &X509StoreContextRef,
) -> Result<(), CertRejection> {
    let leaf = ctx.current_cert().ok_or(CertRejection::NoCertificate)?;
    if let Some(expected) = checks.remote_cert_tls {
        // 2.6 `remote-cert-tls` = `remote-cert-ku` (extension must be
        // present, any value) + `remote-cert-eku` with the TLS purpose.
        if leaf.key_usage().is_none() {
            return Err(CertRejection::MissingKeyUsage { expected });
        }
        let want = match expected {
            CertType::Server => X509ExtendedKeyUsage::SSL_SERVER,
            CertType::Client => X509ExtendedKeyUsage::SSL_CLIENT,
        };
        if !leaf
            .extended_key_usage()
            .is_some_and(|eku| eku.contains(want))
        {
            return Err(CertRejection::WrongExtendedKeyUsage { expected });
        }
    }
    // 2.6 fails the certificate when an x509-username-field is missing, and
    // `verify-x509-name … name` compares the name built from those fields.
    let cn = if checks.extra.username_fields.is_empty() {
        common_name(leaf.subject_name()).unwrap_or_default()
    } else {
        crate::proto::cert_checks::username(leaf, &checks.extra.username_fields)
            .map_err(CertRejection::Extra)?
    };
    if let Some(check) = &checks.verify_x509_name {
        let (ok, actual) = match check {
            X509NameCheck::Subject(s) => {
                let subj = subject_string(leaf.subject_name());
                (subj == *s, subj)
            }
            X509NameCheck::Name(n) => (cn == *n, cn),
            X509NameCheck::NamePrefix(p) => (cn.starts_with(p.as_str()), cn),
        };
        if !ok {
            return Err(CertRejection::X509NameMismatch {
                expected: check.clone(),
                actual,
            });
        }
    }
    if let Some(crl) = &checks.crl {
        let issuer = ctx
            .chain()
            .and_then(|c| c.get(1))
            .ok_or(CertRejection::CrlIssuerMismatch)?;
        let same_issuer = crl
            .issuer_name()
            .try_cmp(issuer.subject_name())
            .is_ok_and(|o| o == std::cmp::Ordering::Equal);
        if !same_issuer {
            return Err(CertRejection::CrlIssuerMismatch);
        }
        let key = issuer
            .public_key()
            .map_err(|_| CertRejection::CrlBadSignature)?;
        if !crl.verify(&key).unwrap_or(false) {
            return Err(CertRejection::CrlBadSignature);
        }
        // Documented wall-clock exception: without an injected time,
        // OpenSSL's notion of "now" decides, as for certificate expiry.
        let at = match verify_time {
            Some(t) => Asn1Time::from_unix(t),
            None => Asn1Time::days_from_now(0),
        };
        if let (Some(next), Ok(at)) = (crl.next_update(), at)
            && asn1_before(next, &at)
        {
            return Err(CertRejection::CrlExpired);
        }
        if let CrlStatus::Revoked(entry) = crl.get_by_serial(leaf.serial_number()) {
            let serial = entry
                .serial_number()
                .to_bn()
                .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(CertRejection::Revoked { serial });
        }
    }
    Ok(())
}

/// One TLS session (one key state) over memory buffers.
pub struct TlsSession {
    stream: SslStream<MemPipe>,
    verify: VerifySlot,
    handshake_done: bool,
    /// Plaintext written before the handshake finished, one record each.
    pending_writes: Vec<Vec<u8>>,
    /// Plaintext records read and not yet polled.
    records: std::collections::VecDeque<Vec<u8>>,
    /// Reused for every `SSL_read` (one record at most per read).
    read_buf: Box<[u8]>,
    closed: bool,
    /// A fatal error happened; OpenSSL must not be driven again.
    failed: bool,
    /// `x509-username-field` (empty: the CN).
    username_fields: Vec<String>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshake_done", &self.handshake_done)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// Start a session. A client produces its ClientHello at once
    /// (drain it with [`Self::poll_ciphertext`]).
    pub fn new(ctx: &TlsContext) -> Result<Self, TlsError> {
        let mut ssl = Ssl::new(&ctx.ctx)?;
        if let Some(t) = ctx.verify_time {
            ssl.param_mut().set_time(t as _);
        }
        let verify: VerifySlot = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&verify);
        let checks = Arc::clone(&ctx.checks);
        let verify_time = ctx.verify_time;
        let role = ctx.role;
        ssl.set_verify_callback(ctx.verify_mode, move |preverify_ok, x509| {
            let depth = x509.error_depth();
            if !preverify_ok && !checks.fingerprint_only {
                let err = x509.error();
                record(
                    &slot,
                    map_verify_error(err.as_raw(), depth, err.error_string(), role),
                );
                return false;
            }
            if let Some(cert) = x509.current_cert()
                && let Err(e) = checks.extra.check(cert, depth)
            {
                record(&slot, CertRejection::Extra(e));
                return false;
            }
            if depth == 0
                && let Err(r) = check_leaf(&checks, verify_time, x509)
            {
                record(&slot, r);
                return false;
            }
            true
        });
        match ctx.role {
            TlsRole::Client => ssl.set_connect_state(),
            TlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, MemPipe::default())?;
        let mut s = Self {
            stream,
            verify,
            handshake_done: false,
            pending_writes: Vec::new(),
            records: Default::default(),
            read_buf: vec![0u8; MAX_RECORD].into_boxed_slice(),
            closed: false,
            failed: false,
            username_fields: ctx.checks.extra.username_fields.clone(),
        };
        if ctx.role == TlsRole::Client {
            s.drive()?;
        }
        Ok(s)
    }

    /// Whether the handshake has completed.
    pub fn is_handshake_complete(&self) -> bool {
        self.handshake_done
    }

    /// Feed in-order TLS bytes received from the peer and advance the handshake
    /// and record reading.
    ///
    /// On error the session is dead; [`Self::poll_ciphertext`] may still
    /// hold an alert worth sending.
    pub fn handle_ciphertext(&mut self, bytes: &[u8]) -> Result<(), TlsError> {
        self.stream.get_mut().incoming.extend_from_slice(bytes);
        self.drive()
    }

    fn failure(&self, e: &openssl::ssl::Error) -> TlsError {
        if let Ok(mut g) = self.verify.lock()
            && let Some(r) = g.take()
        {
            return TlsError::PeerCertRejected(r);
        }
        let no_peer_cert = e.ssl_error().is_some_and(|stack| {
            stack.errors().iter().any(|x| {
                x.library_code() == ERR_LIB_SSL
                    && x.reason_code() == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE
            })
        });
        if no_peer_cert {
            return TlsError::PeerCertRejected(CertRejection::NoCertificate);
        }
        TlsError::Protocol {
            message: e.to_string(),
        }
    }

    fn drive(&mut self) -> Result<(), TlsError> {
        let r = self.drive_inner();
        if matches!(
            r,
            Err(TlsError::PeerCertRejected(_) | TlsError::Protocol { .. })
        ) {
            self.failed = true;
        }
        r
    }

    fn drive_inner(&mut self) -> Result<(), TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        if self.failed {
            return Err(TlsError::Failed);
        }
        if !self.handshake_done {
            match self.stream.do_handshake() {
                Ok(()) => {
                    self.handshake_done = true;
                    for msg in std::mem::take(&mut self.pending_writes) {
                        self.write_record(&msg)?;
                    }
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                    return Ok(());
                }
                Err(e) => return Err(self.failure(&e)),
            }
        }
        loop {
            match self.stream.ssl_read(&mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    let record = self.read_buf.get(..n).unwrap_or_default().to_vec();
                    self.records.push_back(record);
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                    break;
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.closed = true;
                    return Err(TlsError::Closed);
                }
                Err(e) => return Err(self.failure(&e)),
            }
        }
        Ok(())
    }

    fn write_record(&mut self, msg: &[u8]) -> Result<(), TlsError> {
        let mut off = 0;
        while off < msg.len() {
            match self.stream.ssl_write(&msg[off..]) {
                Ok(n) => off += n,
                Err(e) => return Err(self.failure(&e)),
            }
        }
        Ok(())
    }

    /// Write one plaintext message as one TLS record (OpenSSL splits
    /// anything above 16 KiB; control messages stay far below).
    ///
    /// Before the handshake finishes the message is held and written as soon
    /// as it does (the client sends key-method 2 this way, doc §4.4).
    pub fn write_plaintext(&mut self, msg: &[u8]) -> Result<(), TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        if self.failed {
            return Err(TlsError::Failed);
        }
        if !self.handshake_done {
            self.pending_writes.push(msg.to_vec());
            return Ok(());
        }
        self.write_record(msg)
    }

    /// The next plaintext record received, in order.
    #[must_use]
    pub fn poll_plaintext(&mut self) -> Option<Vec<u8>> {
        self.records.pop_front()
    }

    /// Up to `max` bytes of TLS ciphertext to send (one P_CONTROL_V1
    /// payload); `None` when nothing is waiting.
    #[must_use]
    pub fn poll_ciphertext(&mut self, max: usize) -> Option<Vec<u8>> {
        let out = &mut self.stream.get_mut().outgoing;
        if out.is_empty() || max == 0 {
            return None;
        }
        let n = max.min(out.len());
        Some(out.drain(..n).collect())
    }

    /// Bytes of ciphertext waiting to be sent.
    pub fn pending_ciphertext(&self) -> usize {
        self.stream.get_ref().outgoing.len()
    }

    /// RFC 5705 / 8446 exporter with **no** context, as OpenVPN calls it.
    pub fn export_keying_material(&self, label: &str) -> Result<[u8; EKM_LEN], TlsError> {
        if !self.handshake_done {
            return Err(TlsError::HandshakeIncomplete);
        }
        let mut out = [0u8; EKM_LEN];
        self.stream
            .ssl()
            .export_keying_material(&mut out, label, None)?;
        Ok(out)
    }

    /// The peer's leaf certificate, once received.
    pub fn peer_certificate(&self) -> Option<X509> {
        self.stream.ssl().peer_certificate()
    }

    /// The peer's verified chain, leaf first (depth 0), for the
    /// certificate variables of scripts and plugins; only the leaf when
    /// OpenSSL kept no chain.
    pub fn peer_chain(&self) -> Vec<X509> {
        match self.stream.ssl().verified_chain() {
            Some(c) if !c.is_empty() => c.iter().map(X509Ref::to_owned).collect(),
            _ => self.peer_certificate().into_iter().collect(),
        }
    }

    /// The common name of the peer's certificate (for
    /// `username-as-common-name`, status and logs).
    pub fn peer_common_name(&self) -> Option<String> {
        let c = self.peer_certificate()?;
        if self.username_fields.is_empty() {
            return common_name(c.subject_name());
        }
        crate::proto::cert_checks::username(&c, &self.username_fields).ok()
    }

    /// The negotiated protocol, e.g. "TLSv1.3".
    pub fn protocol_version(&self) -> &'static str {
        self.stream.ssl().version_str()
    }

    /// The negotiated cipher suite name.
    pub fn cipher_name(&self) -> Option<&'static str> {
        self.stream.ssl().current_cipher().map(|c| c.name())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use openssl::asn1::Asn1Integer;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::x509::extension::{
        AuthorityKeyIdentifier, BasicConstraints, CrlNumber, ExtendedKeyUsage, KeyUsage,
    };
    use openssl::x509::{X509CrlBuilder, X509Name, X509RevokedBuilder};

    use super::*;

    pub(crate) const CA: &[u8] = include_bytes!("../../../testdata/openvpn-2.6.14/pki/ca.crt");
    const CA_KEY: &[u8] = include_bytes!("../../../testdata/openvpn-2.6.14/pki/ca.key");
    pub(crate) const SERVER_CRT: &[u8] =
        include_bytes!("../../../testdata/openvpn-2.6.14/pki/server.crt");
    pub(crate) const SERVER_KEY: &[u8] =
        include_bytes!("../../../testdata/openvpn-2.6.14/pki/server.key");
    pub(crate) const CLIENT_CRT: &[u8] =
        include_bytes!("../../../testdata/openvpn-2.6.14/pki/client.crt");
    pub(crate) const CLIENT_KEY: &[u8] =
        include_bytes!("../../../testdata/openvpn-2.6.14/pki/client.key");

    /// 2027-01-01T00:00:00Z: inside every testdata certificate's validity.
    pub(crate) const T_2027: i64 = 1_798_761_600;
    /// 2040-01-01T00:00:00Z: after every testdata certificate expired.
    const T_2040: i64 = 2_208_988_800;

    fn pem(cert: &[u8], key: &[u8]) -> Option<Identity> {
        Some(Identity::Pem {
            cert: cert.to_vec(),
            key: key.to_vec(),
        })
    }

    pub(crate) fn server_cfg() -> TlsConfig {
        let mut c = TlsConfig::new(TlsRole::Server, CA.to_vec(), pem(SERVER_CRT, SERVER_KEY));
        c.remote_cert_tls = Some(CertType::Client);
        c.verify_time = Some(T_2027);
        c
    }

    pub(crate) fn client_cfg() -> TlsConfig {
        let mut c = TlsConfig::new(TlsRole::Client, CA.to_vec(), pem(CLIENT_CRT, CLIENT_KEY));
        c.remote_cert_tls = Some(CertType::Server);
        c.verify_time = Some(T_2027);
        c
    }

    /// Run both sessions against each other until neither has anything to
    /// send; control-packet-sized chunks exercise the re-assembly.
    fn pump(
        c: &mut TlsSession,
        s: &mut TlsSession,
    ) -> (Result<(), TlsError>, Result<(), TlsError>) {
        let (mut rc, mut rs) = (Ok(()), Ok(()));
        for _ in 0..100 {
            let mut moved = false;
            while let Some(chunk) = c.poll_ciphertext(1100) {
                moved = true;
                if rs.is_ok() {
                    rs = s.handle_ciphertext(&chunk);
                }
            }
            while let Some(chunk) = s.poll_ciphertext(1100) {
                moved = true;
                if rc.is_ok() {
                    rc = c.handle_ciphertext(&chunk);
                }
            }
            if !moved {
                return (rc, rs);
            }
        }
        panic!("TLS pump did not settle");
    }

    fn connect(
        cc: &TlsConfig,
        sc: &TlsConfig,
    ) -> (
        TlsSession,
        TlsSession,
        Result<(), TlsError>,
        Result<(), TlsError>,
    ) {
        let cctx = TlsContext::new(cc).unwrap();
        let sctx = TlsContext::new(sc).unwrap();
        let mut c = TlsSession::new(&cctx).unwrap();
        let mut s = TlsSession::new(&sctx).unwrap();
        let (rc, rs) = pump(&mut c, &mut s);
        (c, s, rc, rs)
    }

    fn ec_key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn name(cn: &str) -> X509Name {
        let mut n = X509Name::builder().unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        n.build()
    }

    struct LeafSpec<'a> {
        cn: &'a str,
        serial: u32,
        key_usage: bool,
        eku: Option<&'a str>,
        not_before: i64,
        not_after: i64,
    }

    fn issue(
        spec: &LeafSpec<'_>,
        issuer: Option<(&X509Ref, &PKey<Private>)>,
    ) -> (X509, PKey<Private>) {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial: Asn1Integer = BigNum::from_u32(spec.serial)
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name(spec.cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(spec.not_before).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(spec.not_after).unwrap())
            .unwrap();
        match issuer {
            None => {
                b.set_issuer_name(&name(spec.cn)).unwrap();
                b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                    .unwrap();
                b.append_extension(KeyUsage::new().key_cert_sign().crl_sign().build().unwrap())
                    .unwrap();
                b.sign(&key, MessageDigest::sha256()).unwrap();
            }
            Some((ca, ca_key)) => {
                b.set_issuer_name(ca.subject_name()).unwrap();
                b.append_extension(BasicConstraints::new().build().unwrap())
                    .unwrap();
                if spec.key_usage {
                    b.append_extension(
                        KeyUsage::new()
                            .critical()
                            .digital_signature()
                            .build()
                            .unwrap(),
                    )
                    .unwrap();
                }
                match spec.eku {
                    Some("server") => b
                        .append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
                        .unwrap(),
                    Some("client") => b
                        .append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
                        .unwrap(),
                    _ => {}
                }
                b.sign(ca_key, MessageDigest::sha256()).unwrap();
            }
        }
        (b.build(), key)
    }

    fn testdata_ca() -> (X509, PKey<Private>) {
        (
            X509::from_pem(CA).unwrap(),
            PKey::private_key_from_pem(CA_KEY).unwrap(),
        )
    }

    fn identity(cert: &X509, key: &PKey<Private>) -> Option<Identity> {
        Some(Identity::Pem {
            cert: cert.to_pem().unwrap(),
            key: key.private_key_to_pem_pkcs8().unwrap(),
        })
    }

    const Y2026: i64 = 1_767_225_600; // 2026-01-01

    #[test]
    fn tls13_handshake_in_memory_gives_equal_256_byte_ekm_on_both_sides() {
        let (c, s, rc, rs) = connect(&client_cfg(), &server_cfg());
        rc.unwrap();
        rs.unwrap();
        assert!(c.is_handshake_complete() && s.is_handshake_complete());
        assert_eq!(c.protocol_version(), "TLSv1.3");
        let ck = c.export_keying_material(EKM_LABEL_DATAKEYS).unwrap();
        let sk = s.export_keying_material(EKM_LABEL_DATAKEYS).unwrap();
        assert_eq!(ck, sk);
        assert_eq!(ck.len(), 256);
        let cd = c.export_keying_material(EKM_LABEL_DYN_TLS_CRYPT).unwrap();
        assert_eq!(
            cd,
            s.export_keying_material(EKM_LABEL_DYN_TLS_CRYPT).unwrap()
        );
        assert_ne!(cd, ck, "labels must separate the exports");
        assert_eq!(c.peer_common_name().as_deref(), Some("server"));
        assert_eq!(s.peer_common_name().as_deref(), Some("client"));
    }

    #[test]
    fn tls12_handshake_in_memory_gives_equal_ekm() {
        let mut cc = client_cfg();
        cc.version_max = Some(TlsVersion::Tls12);
        let (c, s, rc, rs) = connect(&cc, &server_cfg());
        rc.unwrap();
        rs.unwrap();
        assert_eq!(c.protocol_version(), "TLSv1.2");
        assert_eq!(s.protocol_version(), "TLSv1.2");
        let ours = c.export_keying_material(EKM_LABEL_DATAKEYS).unwrap();
        assert_eq!(ours, s.export_keying_material(EKM_LABEL_DATAKEYS).unwrap());
        // In TLS 1.2 "no context" and "empty context" differ; OpenVPN uses no context.
        let mut empty_ctx = [0u8; EKM_LEN];
        c.stream
            .ssl()
            .export_keying_material(&mut empty_ctx, EKM_LABEL_DATAKEYS, Some(&[]))
            .unwrap();
        assert_ne!(ours, empty_ctx);
    }

    #[test]
    fn version_min_above_peer_max_fails_the_handshake() {
        let mut cc = client_cfg();
        cc.version_max = Some(TlsVersion::Tls12);
        let mut sc = server_cfg();
        sc.version_min = TlsVersion::Tls13;
        let (_, _, rc, rs) = connect(&cc, &sc);
        assert!(matches!(rs, Err(TlsError::Protocol { .. })), "{rs:?}");
        assert!(matches!(rc, Err(TlsError::Protocol { .. })), "{rc:?}");
        let mut bad = client_cfg();
        bad.version_min = TlsVersion::Tls13;
        bad.version_max = Some(TlsVersion::Tls12);
        assert!(matches!(
            TlsContext::new(&bad),
            Err(TlsConfigError::VersionRange)
        ));
    }

    #[test]
    fn plaintext_written_before_the_handshake_arrives_as_one_record_per_write() {
        let cctx = TlsContext::new(&client_cfg()).unwrap();
        let sctx = TlsContext::new(&server_cfg()).unwrap();
        let mut c = TlsSession::new(&cctx).unwrap();
        let mut s = TlsSession::new(&sctx).unwrap();
        assert!(matches!(
            c.export_keying_material(EKM_LABEL_DATAKEYS),
            Err(TlsError::HandshakeIncomplete)
        ));
        c.write_plaintext(b"key-method-2 message").unwrap();
        c.write_plaintext(b"PUSH_REQUEST\0").unwrap();
        let (rc, rs) = pump(&mut c, &mut s);
        rc.unwrap();
        rs.unwrap();
        assert_eq!(s.poll_plaintext().unwrap(), b"key-method-2 message");
        assert_eq!(s.poll_plaintext().unwrap(), b"PUSH_REQUEST\0");
        assert_eq!(s.poll_plaintext(), None);
        s.write_plaintext(b"PUSH_REPLY,ping 10\0").unwrap();
        let (rc, rs) = pump(&mut c, &mut s);
        rc.unwrap();
        rs.unwrap();
        assert_eq!(c.poll_plaintext().unwrap(), b"PUSH_REPLY,ping 10\0");
    }

    #[test]
    fn rejects_client_certificate_from_another_ca() {
        let (other_ca, other_key) = issue(
            &LeafSpec {
                cn: "Other CA",
                serial: 1,
                key_usage: true,
                eku: None,
                not_before: Y2026,
                not_after: T_2040,
            },
            None,
        );
        let (cert, key) = issue(
            &LeafSpec {
                cn: "client",
                serial: 2,
                key_usage: true,
                eku: Some("client"),
                not_before: Y2026,
                not_after: T_2040,
            },
            Some((&other_ca, &other_key)),
        );
        let mut cc = client_cfg();
        cc.identity = identity(&cert, &key);
        let (_, _, rc, rs) = connect(&cc, &server_cfg());
        assert!(
            matches!(
                rs,
                Err(TlsError::PeerCertRejected(CertRejection::UntrustedIssuer {
                    depth: 0,
                    ..
                }))
            ),
            "{rs:?}"
        );
        // The client learns of it from the server's alert.
        assert!(matches!(rc, Err(TlsError::Protocol { .. })), "{rc:?}");
    }

    #[test]
    fn garbage_ciphertext_is_a_protocol_error() {
        let sctx = TlsContext::new(&server_cfg()).unwrap();
        let mut s = TlsSession::new(&sctx).unwrap();
        let r = s.handle_ciphertext(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7]);
        assert!(matches!(r, Err(TlsError::Protocol { .. })), "{r:?}");
        // Partial records just wait for more bytes.
        let mut s = TlsSession::new(&sctx).unwrap();
        s.handle_ciphertext(&[0x16, 0x03]).unwrap();
        assert!(!s.is_handshake_complete());
    }

    #[test]
    fn a_failed_session_stays_failed() {
        let mut sc = server_cfg();
        sc.identity = pem(CLIENT_CRT, CLIENT_KEY);
        let cctx = TlsContext::new(&client_cfg()).unwrap();
        let sctx = TlsContext::new(&sc).unwrap();
        let mut c = TlsSession::new(&cctx).unwrap();
        let mut s = TlsSession::new(&sctx).unwrap();
        let (rc, _) = pump(&mut c, &mut s);
        assert!(matches!(rc, Err(TlsError::PeerCertRejected(_))));
        assert!(matches!(
            c.handle_ciphertext(b"\x16\x03\x03"),
            Err(TlsError::Failed)
        ));
        assert!(matches!(c.write_plaintext(b"x"), Err(TlsError::Failed)));
        assert!(!c.is_handshake_complete());
    }

    #[test]
    fn remote_cert_tls_server_rejects_a_client_certificate_presented_as_server() {
        let mut sc = server_cfg();
        sc.identity = pem(CLIENT_CRT, CLIENT_KEY);
        let (_, _, rc, _) = connect(&client_cfg(), &sc);
        assert!(
            matches!(
                rc,
                Err(TlsError::PeerCertRejected(
                    CertRejection::WrongExtendedKeyUsage {
                        expected: CertType::Server
                    }
                ))
            ),
            "{rc:?}"
        );
    }

    #[test]
    fn peer_fingerprint_without_ca_trusts_exactly_the_listed_certificate() {
        use crate::proto::cert_checks::FingerprintRule;
        let fp = X509::from_pem(SERVER_CRT)
            .unwrap()
            .digest(MessageDigest::sha256())
            .unwrap()
            .to_vec();
        let mut cc = TlsConfig::new(TlsRole::Client, Vec::new(), pem(CLIENT_CRT, CLIENT_KEY));
        cc.verify_time = Some(T_2027);
        cc.remote_cert_tls = Some(CertType::Server);
        cc.extra_checks.fingerprints = Some(FingerprintRule {
            depth: 0,
            sha256: true,
            hashes: vec![fp],
        });
        let (_, _, rc, rs) = connect(&cc, &server_cfg());
        assert!(rc.is_ok() && rs.is_ok(), "{rc:?} {rs:?}");
        cc.extra_checks.fingerprints = Some(FingerprintRule {
            depth: 0,
            sha256: true,
            hashes: vec![vec![0; 32]],
        });
        let (_, _, rc, _) = connect(&cc, &server_cfg());
        assert!(
            matches!(
                rc,
                Err(TlsError::PeerCertRejected(CertRejection::Extra(
                    ExtraCertError::Fingerprint { depth: 0, .. }
                )))
            ),
            "{rc:?}"
        );
        // Without a fingerprint list an empty CA is still an error.
        cc.extra_checks = ExtraCertChecks::default();
        assert!(matches!(TlsContext::new(&cc), Err(TlsConfigError::NoCa)));
    }

    #[test]
    fn remote_cert_tls_requires_a_key_usage_extension() {
        let (ca, ca_key) = testdata_ca();
        let (cert, key) = issue(
            &LeafSpec {
                cn: "server",
                serial: 77,
                key_usage: false,
                eku: Some("server"),
                not_before: Y2026,
                not_after: T_2040,
            },
            Some((&ca, &ca_key)),
        );
        let mut sc = server_cfg();
        sc.identity = identity(&cert, &key);
        let (_, _, rc, _) = connect(&client_cfg(), &sc);
        assert!(
            matches!(
                rc,
                Err(TlsError::PeerCertRejected(CertRejection::MissingKeyUsage {
                    expected: CertType::Server
                }))
            ),
            "{rc:?}"
        );
        // Without remote-cert-tls the same certificate is fine.
        let mut cc = client_cfg();
        cc.remote_cert_tls = None;
        let (_, _, rc, rs) = connect(&cc, &sc);
        rc.unwrap();
        rs.unwrap();
    }

    #[test]
    fn subject_string_uses_openvpn_layout() {
        let mut n = X509Name::builder().unwrap();
        n.append_entry_by_nid(Nid::COUNTRYNAME, "KG").unwrap();
        n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Example Org")
            .unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, "srv\u{1}1").unwrap();
        assert_eq!(
            subject_string(&n.build()),
            "C=KG, O=Example Org, CN=srv\\011"
        );
    }

    #[test]
    fn verify_x509_name_matches_subject_name_and_prefix_and_rejects_others() {
        for check in [
            X509NameCheck::Name("server".into()),
            X509NameCheck::NamePrefix("serv".into()),
            X509NameCheck::Subject("CN=server".into()),
        ] {
            let mut cc = client_cfg();
            cc.verify_x509_name = Some(check.clone());
            let (_, _, rc, rs) = connect(&cc, &server_cfg());
            assert!(rc.is_ok() && rs.is_ok(), "{check:?}: {rc:?} {rs:?}");
        }
        let mut cc = client_cfg();
        cc.verify_x509_name = Some(X509NameCheck::Name("vpn.example".into()));
        let (_, _, rc, _) = connect(&cc, &server_cfg());
        match rc {
            Err(TlsError::PeerCertRejected(CertRejection::X509NameMismatch { actual, .. })) => {
                assert_eq!(actual, "server")
            }
            other => panic!("{other:?}"),
        }
    }

    fn crl_revoking(serials: &[&openssl::asn1::Asn1IntegerRef], next_update: i64) -> Vec<u8> {
        let (ca, ca_key) = testdata_ca();
        let mut b = X509CrlBuilder::new().unwrap();
        b.set_issuer_name(ca.subject_name()).unwrap();
        let dummy = X509::builder().unwrap();
        let v3 = dummy.x509v3_context(Some(&ca), None);
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&v3)
            .unwrap();
        b.append_extension(aki).unwrap();
        b.append_extension(
            CrlNumber::new(BigNum::from_u32(1).unwrap())
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.set_last_update(&Asn1Time::from_unix(Y2026).unwrap())
            .unwrap();
        b.set_next_update(&Asn1Time::from_unix(next_update).unwrap())
            .unwrap();
        for s in serials {
            let mut r = X509RevokedBuilder::new().unwrap();
            r.set_serial_number(s).unwrap();
            r.set_revocation_date(&Asn1Time::from_unix(Y2026).unwrap())
                .unwrap();
            b.add_revoked(r.build()).unwrap();
        }
        b.sign(&ca_key, MessageDigest::sha256()).unwrap();
        b.build().unwrap().to_pem().unwrap()
    }

    #[test]
    fn crl_verify_rejects_a_revoked_client_certificate() {
        let client = X509::from_pem(CLIENT_CRT).unwrap();
        let mut sc = server_cfg();
        sc.crl = Some(crl_revoking(&[client.serial_number()], T_2040));
        let (_, _, _, rs) = connect(&client_cfg(), &sc);
        let expected = client
            .serial_number()
            .to_bn()
            .unwrap()
            .to_hex_str()
            .unwrap()
            .to_string();
        match rs {
            Err(TlsError::PeerCertRejected(CertRejection::Revoked { serial })) => {
                assert_eq!(serial, expected)
            }
            other => panic!("{other:?}"),
        }
        // A CRL that lists another serial lets the client in.
        let server = X509::from_pem(SERVER_CRT).unwrap();
        sc.crl = Some(crl_revoking(&[server.serial_number()], T_2040));
        let (_, _, rc, rs) = connect(&client_cfg(), &sc);
        rc.unwrap();
        rs.unwrap();
    }

    #[test]
    fn crl_verify_rejects_an_expired_crl() {
        let mut sc = server_cfg();
        sc.crl = Some(crl_revoking(&[], Y2026 + 86_400));
        let (_, _, _, rs) = connect(&client_cfg(), &sc);
        assert!(
            matches!(
                rs,
                Err(TlsError::PeerCertRejected(CertRejection::CrlExpired))
            ),
            "{rs:?}"
        );
    }

    #[test]
    fn expired_certificate_is_rejected_at_the_injected_time() {
        let mut cc = client_cfg();
        cc.verify_time = Some(T_2040);
        let (_, _, rc, _) = connect(&cc, &server_cfg());
        assert!(
            matches!(
                rc,
                Err(TlsError::PeerCertRejected(CertRejection::Expired { .. }))
            ),
            "{rc:?}"
        );
        // A leaf that expired while its CA is still valid is reported at depth 0.
        let (ca, ca_key) = testdata_ca();
        let (cert, key) = issue(
            &LeafSpec {
                cn: "server",
                serial: 78,
                key_usage: true,
                eku: Some("server"),
                not_before: Y2026,
                not_after: T_2027 - 86_400,
            },
            Some((&ca, &ca_key)),
        );
        let mut sc = server_cfg();
        sc.identity = identity(&cert, &key);
        let (_, _, rc, _) = connect(&client_cfg(), &sc);
        assert!(
            matches!(
                rc,
                Err(TlsError::PeerCertRejected(CertRejection::Expired {
                    depth: 0
                }))
            ),
            "{rc:?}"
        );
        // And a certificate not yet valid at the injected time.
        let mut cc = client_cfg();
        cc.verify_time = Some(Y2026);
        let (_, _, rc, _) = connect(&cc, &server_cfg());
        assert!(
            matches!(
                rc,
                Err(TlsError::PeerCertRejected(
                    CertRejection::NotYetValid { .. }
                ))
            ),
            "{rc:?}"
        );
    }

    #[test]
    fn verify_client_cert_none_optional_require() {
        let mut cc = client_cfg();
        cc.identity = None;
        let mut sc = server_cfg();
        sc.verify_client_cert = VerifyClientCert::Require;
        let (_, _, _, rs) = connect(&cc, &sc);
        assert!(
            matches!(
                rs,
                Err(TlsError::PeerCertRejected(CertRejection::NoCertificate))
            ),
            "{rs:?}"
        );
        for mode in [VerifyClientCert::Optional, VerifyClientCert::None] {
            sc.verify_client_cert = mode;
            let (_, s, rc, rs) = connect(&cc, &sc);
            assert!(rc.is_ok() && rs.is_ok(), "{mode:?}: {rc:?} {rs:?}");
            assert_eq!(s.peer_common_name(), None);
        }
        // Optional still verifies a certificate that is presented.
        sc.verify_client_cert = VerifyClientCert::Optional;
        let mut cc = client_cfg();
        cc.identity = pem(SERVER_CRT, SERVER_KEY);
        let (_, _, _, rs) = connect(&cc, &sc);
        assert!(
            matches!(
                rs,
                Err(TlsError::PeerCertRejected(
                    CertRejection::WrongExtendedKeyUsage { .. }
                ))
            ),
            "{rs:?}"
        );
    }

    #[test]
    fn pkcs12_identity_with_its_own_ca_is_usable() {
        let (ca, _) = testdata_ca();
        let cert = X509::from_pem(SERVER_CRT).unwrap();
        let key = PKey::private_key_from_pem(SERVER_KEY).unwrap();
        let mut cas = openssl::stack::Stack::new().unwrap();
        cas.push(ca).unwrap();
        let p12 = Pkcs12::builder()
            .name("server")
            .pkey(&key)
            .cert(&cert)
            .ca(cas)
            .build2("secret")
            .unwrap()
            .to_der()
            .unwrap();
        let mut sc = server_cfg();
        sc.ca = Vec::new();
        sc.identity = Some(Identity::Pkcs12 {
            der: p12.clone(),
            password: "secret".into(),
        });
        let (c, _, rc, rs) = connect(&client_cfg(), &sc);
        rc.unwrap();
        rs.unwrap();
        assert_eq!(c.peer_common_name().as_deref(), Some("server"));
        sc.identity = Some(Identity::Pkcs12 {
            der: p12,
            password: "wrong".into(),
        });
        assert!(matches!(
            TlsContext::new(&sc),
            Err(TlsConfigError::Pkcs12(_))
        ));
    }

    #[test]
    fn config_errors_name_the_bad_input() {
        let mut sc = server_cfg();
        sc.identity = pem(SERVER_CRT, CLIENT_KEY);
        assert!(matches!(
            TlsContext::new(&sc),
            Err(TlsConfigError::KeyMismatch(_))
        ));
        let mut sc = server_cfg();
        sc.ca = b"not a pem".to_vec();
        assert!(matches!(
            TlsContext::new(&sc),
            Err(TlsConfigError::Ca(_) | TlsConfigError::NoCa)
        ));
        let mut sc = server_cfg();
        sc.groups = Some("no-such-curve".into());
        assert!(matches!(
            TlsContext::new(&sc),
            Err(TlsConfigError::Groups { .. })
        ));
        let mut sc = server_cfg();
        sc.identity = None;
        assert!(matches!(
            TlsContext::new(&sc),
            Err(TlsConfigError::ServerWithoutIdentity)
        ));
        let mut sc = server_cfg();
        sc.crl = Some(b"garbage".to_vec());
        assert!(matches!(TlsContext::new(&sc), Err(TlsConfigError::Crl(_))));
    }

    #[test]
    fn dh_parameters_are_loaded_from_pem_and_garbage_is_refused() {
        // The EC test certificates only allow ECDHE suites, so this checks
        // that `dh FILE` loads and does not disturb the handshake.
        let dh = Dh::get_2048_256().unwrap().params_to_pem().unwrap();
        let mut sc = server_cfg();
        sc.dh = Some(dh);
        let (_, _, rc, rs) = connect(&client_cfg(), &sc);
        rc.unwrap();
        rs.unwrap();
        sc.dh =
            Some(b"-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n".to_vec());
        assert!(matches!(TlsContext::new(&sc), Err(TlsConfigError::Dh(_))));
    }

    #[test]
    fn ecdh_curve_restricts_the_key_exchange_group() {
        let mut sc = server_cfg();
        sc.groups = Some("prime256v1".into());
        let mut cc = client_cfg();
        cc.groups = Some("X25519:prime256v1".into());
        let (_, _, rc, rs) = connect(&cc, &sc);
        rc.unwrap();
        rs.unwrap();
        cc.groups = Some("X25519".into());
        let (_, _, rc, rs) = connect(&cc, &sc);
        assert!(rc.is_err() && rs.is_err());
    }
}
