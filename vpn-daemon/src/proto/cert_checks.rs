//! OpenVPN 2.6's optional checks on the peer's certificate beyond the chain:
//! `ns-cert-type`, `remote-cert-ku`, `remote-cert-eku`, and the fingerprint
//! lists of `peer-fingerprint` (depth 0) and `verify-hash` (depth 1).
//!
//! The certificate's extensions are read with `x509-parser` (the openssl
//! crate exposes neither unknown EKU OIDs nor nsCertType); names of OIDs are
//! OpenSSL's long names, which is what 2.6 compares `remote-cert-eku` with.

use openssl::{asn1::Asn1Object, hash::MessageDigest, x509::X509Ref};
use x509_parser::{certificate::X509Certificate, extensions::ParsedExtension, prelude::FromDer};

use super::tls::CertType;

/// `remote-cert-ku`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUsageRule {
    /// The extension must be present (any value).
    Required,
    /// The first key-usage byte must contain all bits of one of these.
    AnyOf(Vec<u32>),
}

/// `peer-fingerprint` / `verify-hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintRule {
    /// Which certificate of the chain (0 = the peer's, 1 = its issuer).
    pub depth: u32,
    /// SHA-256 (else SHA-1).
    pub sha256: bool,
    /// Accepted fingerprints.
    pub hashes: Vec<Vec<u8>>,
}

/// The optional checks, all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraCertChecks {
    /// `ns-cert-type`.
    pub ns_cert_type: Option<CertType>,
    /// `remote-cert-ku`.
    pub key_usage: Option<KeyUsageRule>,
    /// `remote-cert-eku` (an OID or OpenSSL's long name).
    pub ext_key_usage: Option<String>,
    /// `peer-fingerprint` / `verify-hash`.
    pub fingerprints: Option<FingerprintRule>,
    /// `x509-username-field`: the fields that make the common name, joined
    /// with `_` (empty = the subject's CN).
    pub username_fields: Vec<String>,
}

/// Why one of these checks refused the certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtraCertError {
    /// `ns-cert-type`: the certificate is not for that purpose.
    #[error("ns-cert-type {expected:?}: the certificate is not a TLS {expected:?} certificate")]
    NsCertType {
        /// The required type.
        expected: CertType,
    },
    /// `remote-cert-ku`: no keyUsage extension.
    #[error("remote-cert-ku: certificate has no keyUsage extension")]
    NoKeyUsage,
    /// `remote-cert-ku`: none of the expected values matched.
    #[error(
        "remote-cert-ku: certificate has key usage {actual:04x}, expected one of {expected:x?}"
    )]
    KeyUsage {
        /// The certificate's first key-usage byte.
        actual: u32,
        /// The configured values.
        expected: Vec<u32>,
    },
    /// `remote-cert-eku`: the purpose is not listed.
    #[error("remote-cert-eku: certificate lacks extended key usage {expected:?}")]
    ExtKeyUsage {
        /// The configured OID or name.
        expected: String,
    },
    /// `peer-fingerprint` / `verify-hash`: no fingerprint matched.
    #[error("certificate fingerprint at depth {depth} is not accepted (got {got})")]
    Fingerprint {
        /// The chain position checked.
        depth: u32,
        /// The certificate's fingerprint, `AB:CD:...`.
        got: String,
    },
    /// `x509-username-field`: the field is not in the certificate.
    #[error("x509-username-field: could not extract {field} from the certificate")]
    UsernameField {
        /// The configured field.
        field: String,
    },
    /// The certificate's extensions could not be read.
    #[error("certificate extensions cannot be parsed")]
    Unparsable,
}

impl ExtraCertChecks {
    /// Whether any check is configured.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a chain error is forgiven: `peer-fingerprint` without `ca`
    /// trusts the listed certificates themselves (2.6 `verify_hash_no_ca`).
    pub fn fingerprint_only(&self, have_ca: bool) -> bool {
        !have_ca && self.fingerprints.as_ref().is_some_and(|f| f.depth == 0)
    }

    /// The checks that apply to the certificate at `depth`.
    pub fn check(&self, cert: &X509Ref, depth: u32) -> Result<(), ExtraCertError> {
        if let Some(f) = &self.fingerprints
            && f.depth == depth
        {
            check_fingerprint(f, cert)?;
        }
        if depth != 0
            || (self.ns_cert_type.is_none()
                && self.key_usage.is_none()
                && self.ext_key_usage.is_none())
        {
            return Ok(());
        }
        let der = cert.to_der().map_err(|_| ExtraCertError::Unparsable)?;
        let (_, parsed) =
            X509Certificate::from_der(&der).map_err(|_| ExtraCertError::Unparsable)?;
        let ext = Extensions::of(&parsed)?;
        if let Some(expected) = self.ns_cert_type
            && !ext.purpose_ok(expected)
        {
            return Err(ExtraCertError::NsCertType { expected });
        }
        if let Some(rule) = &self.key_usage {
            let ku = ext.key_usage.ok_or(ExtraCertError::NoKeyUsage)?;
            if let KeyUsageRule::AnyOf(v) = rule
                && !v.iter().any(|&e| e != 0 && ku & e == e)
            {
                return Err(ExtraCertError::KeyUsage {
                    actual: ku,
                    expected: v.clone(),
                });
            }
        }
        if let Some(want) = &self.ext_key_usage
            && !ext.eku.iter().any(|oid| eku_matches(oid, want))
        {
            return Err(ExtraCertError::ExtKeyUsage {
                expected: want.clone(),
            });
        }
        Ok(())
    }
}

/// The common name as 2.6 builds it from `x509-username-field` (default
/// CN): each field's value (the last one when the subject has several;
/// the last e-mail address of `ext:subjectAltName`/`ext:issuerAltName`;
/// `serialNumber` as `0x` + hex), joined with `_`, bytes outside printable
/// ASCII replaced by `_`.
pub fn username(cert: &X509Ref, fields: &[String]) -> Result<String, ExtraCertError> {
    const CN: &[String] = &[];
    let cn = ["CN".to_string()];
    let fields = if fields == CN { &cn[..] } else { fields };
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let missing = || ExtraCertError::UsernameField { field: f.clone() };
        let v = if let Some(ext) = f.strip_prefix("ext:") {
            alt_name_email(cert, ext).ok_or_else(missing)?
        } else if f == "serialNumber" {
            let serial = cert
                .serial_number()
                .to_bn()
                .map_err(|_| missing())?
                .to_vec();
            let hex: String = serial.iter().map(|b| format!("{b:02X}")).collect();
            format!("0x{}", if hex.is_empty() { "00".into() } else { hex })
        } else {
            let obj = Asn1Object::from_str(f).map_err(|_| missing())?;
            let nid = obj.nid();
            cert.subject_name()
                .entries()
                .filter(|e| {
                    if nid == openssl::nid::Nid::UNDEF {
                        e.object().to_string() == obj.to_string()
                    } else {
                        e.object().nid() == nid
                    }
                })
                .last()
                .and_then(|e| e.data().to_string().ok())
                .ok_or_else(missing)?
        };
        out.push(v);
    }
    Ok(remap_common_name(&out.join("_")))
}

/// 2.6's `string_mod_remap_name`: printable ASCII stays, every other byte
/// (so each byte of a multi-byte character) becomes `_`.
fn remap_common_name(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if (0x20..=0x7e).contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

fn alt_name_email(cert: &X509Ref, ext: &str) -> Option<String> {
    let der = cert.to_der().ok()?;
    let (_, parsed) = X509Certificate::from_der(&der).ok()?;
    let mut found = None;
    for e in parsed.extensions() {
        let names = match (ext, e.parsed_extension()) {
            ("subjectAltName", ParsedExtension::SubjectAlternativeName(s)) => &s.general_names,
            ("issuerAltName", ParsedExtension::IssuerAlternativeName(s)) => &s.general_names,
            _ => continue,
        };
        for n in names {
            if let x509_parser::extensions::GeneralName::RFC822Name(m) = n {
                found = Some((*m).to_string());
            }
        }
    }
    found
}

fn check_fingerprint(f: &FingerprintRule, cert: &X509Ref) -> Result<(), ExtraCertError> {
    let md = if f.sha256 {
        MessageDigest::sha256()
    } else {
        MessageDigest::sha1()
    };
    let got = cert.digest(md).map_err(|_| ExtraCertError::Unparsable)?;
    if f.hashes.iter().any(|h| h.as_slice() == &*got) {
        return Ok(());
    }
    Err(ExtraCertError::Fingerprint {
        depth: f.depth,
        got: got
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    })
}

/// 2.6 compares the configured text with both OpenSSL's name of the OID
/// (`OBJ_obj2txt(.., 0)`) and its dotted form.
fn eku_matches(oid: &str, want: &str) -> bool {
    if oid == want {
        return true;
    }
    Asn1Object::from_str(oid).is_ok_and(|o| o.to_string() == want)
}

/// What `ns-cert-type` and `remote-cert-ku/-eku` look at.
struct Extensions {
    /// The first key-usage byte, as 2.6 reads it (`80` = digitalSignature).
    key_usage: Option<u32>,
    /// Dotted OIDs of the extendedKeyUsage extension (empty if absent).
    eku: Vec<String>,
    has_eku: bool,
    /// nsCertType (SSL client, SSL server), if present.
    ns_cert_type: Option<(bool, bool)>,
}

const OID_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const OID_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

impl Extensions {
    fn of(cert: &X509Certificate<'_>) -> Result<Self, ExtraCertError> {
        let mut out = Extensions {
            key_usage: None,
            eku: Vec::new(),
            has_eku: false,
            ns_cert_type: None,
        };
        for e in cert.extensions() {
            match e.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => {
                    // x509-parser numbers bit 0 (digitalSignature) as 1; 2.6
                    // puts it at 0x80 of the first byte.
                    let flags = u32::from(ku.flags);
                    out.key_usage = Some((0..8).fold(0, |acc, i| {
                        if flags & (1 << i) != 0 {
                            acc | (0x80 >> i)
                        } else {
                            acc
                        }
                    }));
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    out.has_eku = true;
                    let known = [
                        (eku.any, "2.5.29.37.0"),
                        (eku.server_auth, OID_SERVER_AUTH),
                        (eku.client_auth, OID_CLIENT_AUTH),
                        (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
                        (eku.email_protection, "1.3.6.1.5.5.7.3.4"),
                        (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
                        (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
                    ];
                    out.eku.extend(
                        known
                            .iter()
                            .filter(|(set, _)| *set)
                            .map(|(_, o)| o.to_string()),
                    );
                    out.eku.extend(eku.other.iter().map(|o| o.to_id_string()));
                }
                ParsedExtension::NSCertType(ns) => {
                    out.ns_cert_type = Some((ns.ssl_client(), ns.ssl_server()));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// OpenSSL's `X509_check_purpose(SSL_CLIENT|SSL_SERVER)` for a leaf,
    /// then 2.6's fallback to the nsCertType bit alone.
    fn purpose_ok(&self, want: CertType) -> bool {
        const KU_DIGITAL_SIGNATURE: u32 = 0x80;
        const KU_KEY_ENCIPHERMENT: u32 = 0x20;
        const KU_KEY_AGREEMENT: u32 = 0x08;
        let (oid, ku_any) = match want {
            CertType::Client => (OID_CLIENT_AUTH, KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT),
            CertType::Server => (
                OID_SERVER_AUTH,
                KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT,
            ),
        };
        let ns_bit = |(client, server): (bool, bool)| match want {
            CertType::Client => client,
            CertType::Server => server,
        };
        let eku_ok = !self.has_eku || self.eku.iter().any(|o| o == oid);
        let ku_ok = self.key_usage.is_none_or(|ku| ku & ku_any != 0);
        let ns_ok = self.ns_cert_type.is_none_or(ns_bit);
        (eku_ok && ku_ok && ns_ok) || self.ns_cert_type.is_some_and(ns_bit)
    }
}

#[cfg(test)]
mod tests {
    use openssl::x509::X509;

    use super::*;

    const SERVER_CRT: &[u8] = include_bytes!("../../../testdata/openvpn-2.6.14/pki/server.crt");
    const CLIENT_CRT: &[u8] = include_bytes!("../../../testdata/openvpn-2.6.14/pki/client.crt");
    const CA: &[u8] = include_bytes!("../../../testdata/openvpn-2.6.14/pki/ca.crt");

    fn cert(pem: &[u8]) -> X509 {
        X509::from_pem(pem).unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn ns_cert_type_follows_the_tls_purpose_of_the_leaf() {
        let c = ExtraCertChecks {
            ns_cert_type: Some(CertType::Server),
            ..Default::default()
        };
        assert_eq!(c.check(&cert(SERVER_CRT), 0), Ok(()));
        assert_eq!(
            c.check(&cert(CLIENT_CRT), 0),
            Err(ExtraCertError::NsCertType {
                expected: CertType::Server
            })
        );
        // Only the leaf is checked.
        assert_eq!(c.check(&cert(CLIENT_CRT), 1), Ok(()));
    }

    #[test]
    #[allow(deprecated)]
    fn ns_cert_type_accepts_an_old_nscerttype_only_certificate() {
        use openssl::{
            asn1::Asn1Time,
            ec::{EcGroup, EcKey},
            nid::Nid,
            pkey::PKey,
            x509::{X509Extension, X509Name},
        };
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut n = X509Name::builder().unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, "old").unwrap();
        let n = n.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(1 << 31).unwrap())
            .unwrap();
        b.append_extension(
            X509Extension::new_nid(None, None, Nid::NETSCAPE_CERT_TYPE, "server").unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let old = b.build();
        let server = ExtraCertChecks {
            ns_cert_type: Some(CertType::Server),
            ..Default::default()
        };
        let client = ExtraCertChecks {
            ns_cert_type: Some(CertType::Client),
            ..Default::default()
        };
        assert_eq!(server.check(&old, 0), Ok(()));
        assert!(client.check(&old, 0).is_err());
    }

    #[test]
    fn remote_cert_ku_matches_the_first_key_usage_byte() {
        let ku = |rule| ExtraCertChecks {
            key_usage: Some(rule),
            ..Default::default()
        };
        let leaf = cert(SERVER_CRT); // digitalSignature only: 0x80
        assert_eq!(ku(KeyUsageRule::Required).check(&leaf, 0), Ok(()));
        assert_eq!(
            ku(KeyUsageRule::AnyOf(vec![0xa0, 0x80])).check(&leaf, 0),
            Ok(())
        );
        assert_eq!(
            ku(KeyUsageRule::AnyOf(vec![0xa0, 0x88])).check(&leaf, 0),
            Err(ExtraCertError::KeyUsage {
                actual: 0x80,
                expected: vec![0xa0, 0x88]
            })
        );
        // 0 never matches (2.6 skips it).
        assert!(ku(KeyUsageRule::AnyOf(vec![0])).check(&leaf, 0).is_err());
    }

    #[test]
    fn remote_cert_eku_takes_an_oid_or_openssls_long_name() {
        let eku = |s: &str| ExtraCertChecks {
            ext_key_usage: Some(s.into()),
            ..Default::default()
        };
        let leaf = cert(SERVER_CRT);
        assert_eq!(eku("TLS Web Server Authentication").check(&leaf, 0), Ok(()));
        assert_eq!(eku("1.3.6.1.5.5.7.3.1").check(&leaf, 0), Ok(()));
        assert!(
            eku("TLS Web Client Authentication")
                .check(&leaf, 0)
                .is_err()
        );
        assert!(eku("serverAuth").check(&leaf, 0).is_err());
        // The CA has no EKU extension at all.
        assert!(eku("1.3.6.1.5.5.7.3.1").check(&cert(CA), 0).is_err());
    }

    #[test]
    fn fingerprints_apply_at_their_depth_only() {
        let leaf_fp = hex(
            "2E:B8:85:4B:FC:83:12:00:4F:6A:AD:F6:5F:35:25:D2:0C:A7:54:41:0C:2B:7E:31:05:8D:53:55:AB:E9:FA:09",
        );
        let peer = ExtraCertChecks {
            fingerprints: Some(FingerprintRule {
                depth: 0,
                sha256: true,
                hashes: vec![vec![0; 32], leaf_fp],
            }),
            ..Default::default()
        };
        assert_eq!(peer.check(&cert(SERVER_CRT), 0), Ok(()));
        assert!(matches!(
            peer.check(&cert(CLIENT_CRT), 0),
            Err(ExtraCertError::Fingerprint { depth: 0, .. })
        ));
        assert_eq!(peer.check(&cert(CLIENT_CRT), 1), Ok(()));
        assert!(peer.fingerprint_only(false));
        assert!(!peer.fingerprint_only(true));
        let ca = ExtraCertChecks {
            fingerprints: Some(FingerprintRule {
                depth: 1,
                sha256: false,
                hashes: vec![hex(
                    "8E:CA:A5:36:A8:5B:A5:D5:8A:E5:E3:9F:55:ED:7A:CE:45:92:75:4F",
                )],
            }),
            ..Default::default()
        };
        assert_eq!(ca.check(&cert(CA), 1), Ok(()));
        assert!(ca.check(&cert(SERVER_CRT), 1).is_err());
        assert!(!ca.fingerprint_only(false));
    }
}

#[cfg(test)]
mod username_tests {
    use openssl::{
        asn1::{Asn1Integer, Asn1Time},
        bn::BigNum,
        ec::{EcGroup, EcKey},
        nid::Nid,
        pkey::PKey,
        x509::{X509, X509Name, extension::SubjectAlternativeName},
    };

    use super::*;

    fn cert() -> X509 {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut n = X509Name::builder().unwrap();
        n.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "first")
            .unwrap();
        n.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "sales team")
            .unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, "alice").unwrap();
        n.append_entry_by_nid(Nid::PKCS9_EMAILADDRESS, "a@example.org")
            .unwrap();
        let n = n.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial: Asn1Integer = BigNum::from_u32(0x1a2b).unwrap().to_asn1_integer().unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(1 << 31).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("alice.example.org")
            .email("one@example.org")
            .email("two@example.org")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    fn f(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn username_fields_build_the_common_name_as_26() {
        let c = cert();
        assert_eq!(username(&c, &[]).unwrap(), "alice");
        assert_eq!(
            username(&c, &f(&["emailAddress"])).unwrap(),
            "a@example.org"
        );
        // The last of several entries, with 2.6's character remapping.
        assert_eq!(username(&c, &f(&["OU"])).unwrap(), "sales team");
        assert_eq!(username(&c, &f(&["CN", "OU"])).unwrap(), "alice_sales team");
        assert_eq!(
            username(&c, &f(&["ext:subjectAltName"])).unwrap(),
            "two@example.org"
        );
        assert_eq!(username(&c, &f(&["serialNumber"])).unwrap(), "0x1A2B");
        assert_eq!(
            username(&c, &f(&["L"])),
            Err(ExtraCertError::UsernameField { field: "L".into() })
        );
        assert!(username(&c, &f(&["ext:issuerAltName"])).is_err());
        assert_eq!(remap_common_name("a\u{e9}b\n"), "a__b_");
    }
}
