//! TLS over memory: handshakes, EKM, certificate policy, against the
//! committed 2.6.14 test PKI.

use openssl::asn1::Asn1Time;
use openssl::dh::Dh;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Ref};

use openssl::asn1::Asn1Integer;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, ExtendedKeyUsage, KeyUsage,
};
use openssl::x509::{X509CrlBuilder, X509Name, X509RevokedBuilder};

use super::context::*;
use super::session::*;
use super::verify::*;
use super::*;
use crate::proto::cert_checks::{ExtraCertChecks, ExtraCertError};

pub(crate) const CA: &[u8] = include_bytes!("../../../../testdata/openvpn-2.6.14/pki/ca.crt");
const CA_KEY: &[u8] = include_bytes!("../../../../testdata/openvpn-2.6.14/pki/ca.key");
pub(crate) const SERVER_CRT: &[u8] =
    include_bytes!("../../../../testdata/openvpn-2.6.14/pki/server.crt");
pub(crate) const SERVER_KEY: &[u8] =
    include_bytes!("../../../../testdata/openvpn-2.6.14/pki/server.key");
pub(crate) const CLIENT_CRT: &[u8] =
    include_bytes!("../../../../testdata/openvpn-2.6.14/pki/client.crt");
pub(crate) const CLIENT_KEY: &[u8] =
    include_bytes!("../../../../testdata/openvpn-2.6.14/pki/client.key");

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
fn pump(c: &mut TlsSession, s: &mut TlsSession) -> (Result<(), TlsError>, Result<(), TlsError>) {
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

fn issue(spec: &LeafSpec<'_>, issuer: Option<(&X509Ref, &PKey<Private>)>) -> (X509, PKey<Private>) {
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
    sc.dh = Some(b"-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n".to_vec());
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
