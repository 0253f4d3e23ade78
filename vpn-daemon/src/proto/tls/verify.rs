//! Certificate policy as OpenVPN 2.6 applies it: OpenSSL verify errors
//! mapped to [`CertRejection`], `remote-cert-tls`, `verify-x509-name`,
//! `crl-verify` on the leaf, and the subject string scripts see.

use std::sync::{Arc, Mutex};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::x509::{CrlStatus, X509ExtendedKeyUsage, X509NameRef, X509StoreContextRef};

use super::context::PeerChecks;
use super::*;

// X509_V_ERR_* values (stable OpenSSL ABI) that we report by name.
pub(super) const V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
pub(super) const V_ERR_CERT_SIGNATURE_FAILURE: i32 = 7;
pub(super) const V_ERR_CERT_NOT_YET_VALID: i32 = 9;
pub(super) const V_ERR_CERT_HAS_EXPIRED: i32 = 10;
pub(super) const V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
pub(super) const V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
pub(super) const V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
pub(super) const V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
pub(super) const V_ERR_CERT_REVOKED: i32 = 23;
pub(super) const V_ERR_INVALID_PURPOSE: i32 = 26;
/// The outcome of verifying the peer, recorded by the verify callback.
pub(super) type VerifySlot = Arc<Mutex<Option<CertRejection>>>;

pub(super) fn record(slot: &VerifySlot, r: CertRejection) {
    if let Ok(mut g) = slot.lock() {
        g.get_or_insert(r);
    }
}

pub(super) fn common_name(name: &X509NameRef) -> Option<String> {
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

pub(super) fn map_verify_error(
    code: i32,
    depth: u32,
    detail: &str,
    role: TlsRole,
) -> CertRejection {
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

pub(super) fn asn1_before(a: &Asn1TimeRef, b: &Asn1TimeRef) -> bool {
    a.compare(b).is_ok_and(|o| o == std::cmp::Ordering::Less)
}

/// OpenVPN's extra checks on the leaf (depth 0) after OpenSSL's chain check passed.
pub(super) fn check_leaf(
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
