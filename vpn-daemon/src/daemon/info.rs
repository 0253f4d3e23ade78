//! OpenVPN's informational modes (`--show-ciphers`, `--show-digests`,
//! `--show-tls`, `--show-curves`/`--show-groups`, `--show-engines`): print
//! what this daemon can use, in openvpn's layout, and exit.
//!
//! The cipher and digest lists are this daemon's own (what the data
//! channel implements), not everything OpenSSL has, since a name we list
//! must work in `data-ciphers`/`auth`. The TLS and curve lists come from the
//! OpenSSL library the daemon runs with, as openvpn's do.

use std::ffi::{CStr, c_char, c_int};

pub use crate::config::host::Show;
use crate::proto::data::{DataCipher, Digest};

/// The text openvpn would print for `mode`, with our lists.
pub fn render(mode: Show) -> String {
    match mode {
        Show::Ciphers => ciphers(),
        Show::Digests => digests(),
        Show::Tls => tls(),
        Show::Curves => curves(),
        Show::Engines => {
            "Sorry, OpenSSL hardware crypto engine functionality is not available.\n".to_string()
        }
    }
}

fn ciphers() -> String {
    let mut s = String::from(
        "The following ciphers and cipher modes are available for use\n\
         with OpenVPN.  Each cipher shown below may be used as a\n\
         parameter to the --data-ciphers (or --cipher) option. In static \n\
         key mode only CBC mode is allowed.\n\
         See also openssl list -cipher-algorithms\n\n",
    );
    for c in [
        DataCipher::Aes128Cbc,
        DataCipher::Aes128Gcm,
        DataCipher::Aes256Cbc,
        DataCipher::Aes256Gcm,
        DataCipher::ChaCha20Poly1305,
    ] {
        let name = c.name();
        let (key, block) = match c {
            DataCipher::Aes128Cbc | DataCipher::Aes128Gcm => (128, 128),
            DataCipher::Aes256Cbc | DataCipher::Aes256Gcm => (256, 128),
            DataCipher::ChaCha20Poly1305 => (256, 8),
        };
        let tls_only = if name.ends_with("-CBC") {
            ""
        } else {
            ", TLS client/server mode only"
        };
        let block = if matches!(c, DataCipher::ChaCha20Poly1305) {
            "stream cipher".to_string()
        } else {
            format!("{block} bit block")
        };
        s.push_str(&format!("{name}  ({key} bit key, {block}{tls_only})\n"));
    }
    s
}

fn digests() -> String {
    let mut s = String::from(
        "The following message digests are available for use with\n\
         OpenVPN.  A message digest is used in conjunction with\n\
         the HMAC function, to authenticate received packets.\n\
         You can specify a message digest as parameter to\n\
         the --auth option.\n\
         See also openssl list -digest-algorithms\n\n",
    );
    for d in [Digest::Sha1, Digest::Sha256, Digest::Sha512] {
        s.push_str(&format!(
            "{} {} bit digest size\n",
            d.name(),
            d.output_len() * 8
        ));
    }
    s
}

// libssl/libcrypto functions the openssl crate does not wrap; the daemon
// links both already.
#[repr(C)]
struct EcBuiltinCurve {
    nid: c_int,
    comment: *const c_char,
}

unsafe extern "C" {
    fn SSL_get_cipher_list(ssl: *const openssl_sys::SSL, n: c_int) -> *const c_char;
    fn EC_get_builtin_curves(r: *mut EcBuiltinCurve, nitems: usize) -> usize;
}

fn tls() -> String {
    let mut s = String::from(
        "Available TLS Ciphers, listed in order of preference:\n\n\
         For TLS 1.3 and newer (--tls-ciphersuites):\n\n",
    );
    let Ok(ctx) = openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls()) else {
        return s;
    };
    let ctx = ctx.build();
    let Ok(ssl) = openssl::ssl::Ssl::new(&ctx) else {
        return s;
    };
    let mut v13 = Vec::new();
    let mut older = Vec::new();
    for i in 0..1024 {
        use foreign_types::ForeignTypeRef as _;
        // SAFETY: a live SSL; OpenSSL returns null past the last entry and
        // otherwise a static string.
        let p = unsafe { SSL_get_cipher_list(ssl.as_ptr(), i) };
        if p.is_null() {
            break;
        }
        // SAFETY: non-null NUL-terminated static string from OpenSSL.
        let name = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        if name.starts_with("TLS_") {
            v13.push(name);
        } else {
            older.push(name);
        }
    }
    for n in v13 {
        s.push_str(&format!("{n}\n"));
    }
    s.push_str("\nFor TLS 1.2 and older (--tls-cipher):\n\n");
    for n in older {
        s.push_str(&format!("{n}\n"));
    }
    s
}

fn curves() -> String {
    let mut s = String::from(
        "Consider using 'openssl ecparam -list_curves' as alternative to running\n\
         this command.\n\
         Note this output does only list curves/groups that OpenSSL considers as\n\
         builtin EC curves. It does not list additional curves nor X448 or X25519\n\n\
         Available Elliptic curves/groups:\n",
    );
    // SAFETY: a null buffer asks only for the count.
    let n = unsafe { EC_get_builtin_curves(std::ptr::null_mut(), 0) };
    let mut v: Vec<EcBuiltinCurve> = (0..n)
        .map(|_| EcBuiltinCurve {
            nid: 0,
            comment: std::ptr::null(),
        })
        .collect();
    // SAFETY: `v` has room for `n` entries.
    let got = unsafe { EC_get_builtin_curves(v.as_mut_ptr(), n) };
    for c in v.iter().take(got) {
        // SAFETY: plain lookup; returns null or a static string.
        let sn = unsafe { openssl_sys::OBJ_nid2sn(c.nid) };
        if !sn.is_null() {
            // SAFETY: non-null static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(sn) };
            s.push_str(&format!("{}\n", name.to_string_lossy()));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_cipher_and_digest_is_one_the_data_channel_takes() {
        for line in ciphers().lines().filter(|l| l.contains(" bit key")) {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(DataCipher::from_name(name).is_some(), "{name}");
        }
        for line in digests().lines().filter(|l| l.ends_with("digest size")) {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(Digest::from_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn tls_and_curve_lists_come_from_openssl() {
        let t = tls();
        assert!(t.contains("TLS_AES_256_GCM_SHA384"), "{t}");
        assert!(t.contains("ECDHE-"), "{t}");
        let c = curves();
        assert!(c.contains("prime256v1") && c.contains("secp384r1"), "{c}");
    }
}
