//! Parsers for the directives stored in [`Extras`](crate::config::extras::Extras):
//! route timing and scripts, extra peer-certificate checks, and the
//! directives Linux OpenVPN accepts without an effect.

use super::{Args, Builder, ConfigErrorKind};
use crate::config::{
    extras::{CertHashes, HashAlgo, KeyUsageCheck, RouteDelay},
    types::CertUsage,
};

/// The names `remote-cert-tls` stands for, as OpenSSL's long names
/// (what OpenVPN compares `remote-cert-eku` against).
pub(super) const EKU_TLS_SERVER: &str = "TLS Web Server Authentication";
pub(super) const EKU_TLS_CLIENT: &str = "TLS Web Client Authentication";

pub(super) fn route_metric(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let n: u32 = a.num(0)?;
    // OpenVPN stores 0 as "no default metric".
    b.cfg.extras.route_metric = (n > 0).then_some(n);
    Ok(())
}

pub(super) fn route_delay(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let seconds = if a.words.is_empty() { 0 } else { a.num(0)? };
    // OpenVPN's default window is 30 s (only used on Windows).
    let window = if a.words.len() > 1 { a.num(1)? } else { 30 };
    b.cfg.extras.route_delay = Some(RouteDelay { seconds, window });
    Ok(())
}

/// The per-client directives, refused in a main configuration as 2.6
/// refuses them there.
#[cfg(test)]
pub(in crate::config) const CLIENT_ONLY: &[&str] = &[
    "iroute",
    "iroute-ipv6",
    "ifconfig-push",
    "ifconfig-ipv6-push",
    "push-reset",
    "disable",
];

/// OpenVPN's reason for the per-client directives outside a client context.
pub(super) fn not_in_config(name: &str) -> ConfigErrorKind {
    ConfigErrorKind::Invalid(format!(
        "option '{name}' cannot be used in this context (it belongs in a client-config-dir file or a client-connect script's output)"
    ))
}

/// The config-file parser of an instance-only row: [`super::run`] refuses
/// by scope before it is reached; kept so the refusal does not depend on
/// that order.
pub(super) fn client_only(_: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    Err(not_in_config(a.name))
}

pub(super) fn ns_cert_type(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    b.cfg.extras.ns_cert_type = Some(match a.word(0)? {
        "client" => CertUsage::Client,
        "server" => CertUsage::Server,
        _ => return Err(a.invalid(0, "client or server")),
    });
    b.warn(
        a.span,
        "'ns-cert-type' is DEPRECATED (as OpenVPN says); use 'remote-cert-tls' instead".into(),
    );
    Ok(())
}

/// `remote-cert-tls` is OpenVPN's shorthand for a KU and an EKU check; a
/// later `remote-cert-ku`/`-eku` replaces its half, so split it first.
fn split_remote_cert_tls(b: &mut Builder) {
    if let Some(u) = b.cfg.remote_cert_tls.take() {
        let e = &mut b.cfg.extras;
        e.remote_cert_ku.get_or_insert(KeyUsageCheck::Required);
        e.remote_cert_eku.get_or_insert_with(|| {
            match u {
                CertUsage::Server => EKU_TLS_SERVER,
                CertUsage::Client => EKU_TLS_CLIENT,
            }
            .to_string()
        });
    }
}

pub(super) fn remote_cert_ku(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let check = if a.words.is_empty() {
        KeyUsageCheck::Required
    } else {
        let mut v = Vec::with_capacity(a.words.len());
        for (i, w) in a.words.iter().enumerate() {
            let hex = w
                .strip_prefix("0x")
                .or_else(|| w.strip_prefix("0X"))
                .unwrap_or(w);
            v.push(
                u32::from_str_radix(hex, 16)
                    .map_err(|_| a.invalid(i, "hexadecimal key usage values such as a0 or 88"))?,
            );
        }
        KeyUsageCheck::AnyOf(v)
    };
    split_remote_cert_tls(b);
    b.cfg.extras.remote_cert_ku = Some(check);
    Ok(())
}

pub(super) fn remote_cert_eku(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let eku = a.nonempty(0)?.to_string();
    split_remote_cert_tls(b);
    b.cfg.extras.remote_cert_eku = Some(eku);
    Ok(())
}

/// `remote-cert-tls` replaces both halves set by `remote-cert-ku`/`-eku`.
pub(super) fn clear_ku_eku(b: &mut Builder) {
    b.cfg.extras.remote_cert_ku = None;
    b.cfg.extras.remote_cert_eku = None;
}

/// `verify-hash HASH [SHA1|SHA256]` and `peer-fingerprint HASH` (both also
/// inline, one fingerprint per line, `#`/`;` comment lines skipped).
pub(super) fn cert_hash(b: &mut Builder, a: &Args<'_>) -> Result<(), ConfigErrorKind> {
    let peer = a.name == "peer-fingerprint";
    let depth = if peer { 0 } else { 1 };
    let algo = if peer {
        HashAlgo::Sha256
    } else {
        match a.words.get(1).map(String::as_str) {
            // OpenVPN: SHA1 unless said otherwise, but an inline block is SHA256.
            None if a.inline.is_none() => HashAlgo::Sha1,
            None => HashAlgo::Sha256,
            Some("SHA1") => HashAlgo::Sha1,
            Some("SHA256") => HashAlgo::Sha256,
            Some(_) => return Err(a.invalid(1, "SHA1 or SHA256")),
        }
    };
    if peer && a.inline.is_none() && a.words.len() > 1 {
        return Err(ConfigErrorKind::Arity {
            name: a.name.into(),
            expected: "1".into(),
            got: a.words.len(),
        });
    }
    if let Some(prev) = &b.cfg.extras.cert_hashes
        && prev.depth != depth
    {
        return Err(ConfigErrorKind::Invalid(format!(
            "setting '{}' not allowed: 'verify-hash' and 'peer-fingerprint' are mutually exclusive",
            a.name
        )));
    }
    let len = match algo {
        HashAlgo::Sha1 => 20,
        HashAlgo::Sha256 => 32,
    };
    let text = match a.inline {
        Some(body) => body,
        None => a.word(0)?,
    };
    let mut hashes = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        hashes.push(parse_fingerprint(line.trim_end(), len).map_err(|why| {
            ConfigErrorKind::InvalidValue {
                name: a.name.into(),
                value: line.to_string(),
                expected: why,
            }
        })?);
    }
    if !peer {
        b.warn(
            a.span,
            "'verify-hash' is deprecated (as OpenVPN says): use the level-1 certificate as 'ca', 'tls-verify' or 'peer-fingerprint'".into(),
        );
    }
    match &mut b.cfg.extras.cert_hashes {
        // Later lines add to the list, as in OpenVPN (the algorithm of the
        // last one applies to all).
        Some(prev) => {
            prev.algo = algo;
            prev.hashes.extend(hashes);
        }
        None => {
            b.cfg.extras.cert_hashes = Some(CertHashes {
                depth,
                algo,
                hashes,
            })
        }
    }
    Ok(())
}

/// `AB:CD:...`: exactly `len` bytes of two hex digits, colon-separated.
fn parse_fingerprint(s: &str, len: usize) -> Result<Vec<u8>, String> {
    let want = format!("{len} colon-separated hex bytes (AB:CD:...)");
    let out: Option<Vec<u8>> = s
        .split(':')
        .map(|p| {
            (p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect();
    match out {
        Some(v) if v.len() == len => Ok(v),
        _ => Err(want),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fingerprint;

    #[test]
    fn fingerprints_need_exact_length_and_two_digit_segments() {
        let sha1 = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33";
        assert_eq!(parse_fingerprint(sha1, 20).map(|v| v[10]), Ok(0xaa));
        assert!(parse_fingerprint(sha1, 32).is_err());
        assert!(parse_fingerprint("0:11", 2).is_err());
        assert!(parse_fingerprint("00:11:", 2).is_err());
        assert!(parse_fingerprint("zz:11", 2).is_err());
    }
}
