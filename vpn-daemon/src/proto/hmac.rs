//! Keyed HMAC contexts for the `--auth` digests (SHA1, SHA256, SHA512).
//!
//! Used by tls-auth, tls-crypt, tls-crypt-v2 and the CBC data channel. The
//! key is absorbed once; each packet clones the keyed state (a copy on the
//! stack, no allocation) and the comparison is constant time. OpenSSL's
//! HMAC through the `openssl` crate allocates a context per message, which
//! is why the RustCrypto `hmac` crate is used here.
//!
//! Under `cfg(fuzzing)`, [`HmacKey::verify`] accepts any tag so that the
//! fuzzer reaches the parsers behind the authentication (style habit 10).

use hmac::{Hmac, Mac};

/// Largest digest output (SHA512).
pub const MAX_DIGEST_LEN: usize = 64;

/// An `--auth` digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA1, 20 bytes (OpenVPN's default `--auth`).
    Sha1,
    /// SHA256, 32 bytes.
    Sha256,
    /// SHA512, 64 bytes.
    Sha512,
}

impl Digest {
    /// Output length; also the HMAC key length OpenVPN uses.
    pub const fn output_len(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha512 => 64,
        }
    }

    /// From an OpenVPN/OpenSSL name (`SHA1`, `SHA256`, `SHA512`, any case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" | "SHA-1" => Some(Digest::Sha1),
            "SHA256" | "SHA-256" => Some(Digest::Sha256),
            "SHA512" | "SHA-512" => Some(Digest::Sha512),
            _ => None,
        }
    }

    /// Canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "SHA1",
            Digest::Sha256 => "SHA256",
            Digest::Sha512 => "SHA512",
        }
    }
}

#[derive(Clone)]
enum Inner {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

/// An HMAC key, ready to authenticate many messages.
#[derive(Clone)]
pub struct HmacKey {
    inner: Inner,
    digest: Digest,
}

impl core::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HmacKey({})", self.digest.name())
    }
}

impl HmacKey {
    /// Key from the first `digest.output_len()` bytes of `key` (an hmac slot);
    /// shorter keys are used as they are.
    pub fn new(digest: Digest, key: &[u8]) -> Self {
        let key = key.get(..digest.output_len()).unwrap_or(key);
        // HMAC accepts keys of any length, so new_from_slice cannot fail.
        let inner = match digest {
            Digest::Sha1 => Inner::Sha1(
                <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
            ),
            Digest::Sha256 => Inner::Sha256(
                <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
            ),
            Digest::Sha512 => Inner::Sha512(
                <Hmac<sha2::Sha512> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
            ),
        };
        Self { inner, digest }
    }

    /// The digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Output length.
    pub fn len(&self) -> usize {
        self.digest.output_len()
    }

    /// Always false: a digest has output.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// HMAC over the concatenation of `parts`; returns the tag (first
    /// `len()` bytes of the array).
    pub fn compute(&self, parts: &[&[u8]]) -> [u8; MAX_DIGEST_LEN] {
        let mut out = [0u8; MAX_DIGEST_LEN];
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]], out: &mut [u8]) {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            let tag = m.finalize().into_bytes();
            let n = tag.len().min(out.len());
            out[..n].copy_from_slice(&tag[..n]);
        }
        match &self.inner {
            Inner::Sha1(m) => run(m, parts, &mut out),
            Inner::Sha256(m) => run(m, parts, &mut out),
            Inner::Sha512(m) => run(m, parts, &mut out),
        }
        out
    }

    /// Constant-time check of `tag` (must be exactly `len()` bytes).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]], tag: &[u8]) -> bool {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            m.verify_slice(tag).is_ok()
        }
        let ok = match &self.inner {
            Inner::Sha1(m) => run(m, parts, tag),
            Inner::Sha256(m) => run(m, parts, tag),
            Inner::Sha512(m) => run(m, parts, tag),
        };
        ok || cfg!(fuzzing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_sha256() {
        let k = HmacKey::new(Digest::Sha256, b"Jefe");
        let tag = k.compute(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(&tag[..32]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(k.verify(&[b"what do ya want for nothing?"], &tag[..32]));
        assert!(!k.verify(&[b"what do ya want for nothing!"], &tag[..32]));
        assert!(!k.verify(&[b"what do ya want for nothing?"], &tag[..31]));
    }

    #[test]
    fn names_parse() {
        assert_eq!(Digest::from_name("sha512"), Some(Digest::Sha512));
        assert_eq!(Digest::from_name("MD5"), None);
    }
}
