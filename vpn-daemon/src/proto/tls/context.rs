//! `TlsContext`: the shared OpenSSL context built once per configuration
//! (identity, CA, versions, ciphers, DH / curves) and the peer checks it
//! carries for every session.

use std::sync::Arc;

use openssl::dh::Dh;
use openssl::error::ErrorStack;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslContext, SslContextBuilder, SslMethod, SslOptions, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Crl, X509Ref};

use super::*;
use crate::proto::cert_checks::ExtraCertChecks;

/// Shared, immutable TLS settings; one per configuration, many sessions.
pub struct TlsContext {
    pub(super) ctx: SslContext,
    pub(super) role: TlsRole,
    pub(super) checks: Arc<PeerChecks>,
    pub(super) verify_time: Option<i64>,
    pub(super) verify_mode: SslVerifyMode,
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
pub(super) struct PeerChecks {
    pub(super) remote_cert_tls: Option<CertType>,
    pub(super) verify_x509_name: Option<X509NameCheck>,
    pub(super) crl: Option<X509Crl>,
    pub(super) extra: ExtraCertChecks,
    /// `peer-fingerprint` without `ca`: chain errors are forgiven.
    pub(super) fingerprint_only: bool,
}

pub(super) fn pem_certs(pem: &[u8]) -> Result<Vec<X509>, ErrorStack> {
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

pub(super) fn install_identity(
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
