//! Key derivation helpers: the TLS 1.0 PRF, OpenVPN's legacy key expansion
//! (section 6.3), the EKM labels (6.2, 3.6) and OVPN-Expand-Label (7.5).
//!
//! The TLS exporter itself runs inside the TLS session; callers hand us the
//! 256 exported bytes.

use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use crate::proto::keys::{KEY2_LEN, Key2};
use crate::proto::wire::control::SessionId;

/// Exporter label for the data-channel key block (`tls-ekm`).
pub const EKM_LABEL_DATA_KEYS: &str = "EXPORTER-OpenVPN-datakeys";
/// Exporter label for the dynamic tls-crypt key.
pub const EKM_LABEL_DYNAMIC_TLS_CRYPT: &str = "EXPORTER-OpenVPN-dynamic-tls-crypt";
/// Number of bytes exported for either label.
pub const EKM_LEN: usize = KEY2_LEN;

/// Label of the legacy master-secret step.
pub const MASTER_SECRET_LABEL: &[u8] = b"OpenVPN master secret";
/// Label of the legacy key-expansion step.
pub const KEY_EXPANSION_LABEL: &[u8] = b"OpenVPN key expansion";

/// `P_hash(secret, seed)` XORed into `out` (RFC 2246, 5).
fn p_hash_xor<M: Mac + Clone>(mac: &M, seed: &[&[u8]], out: &mut [u8]) {
    // A(1) = HMAC(secret, seed)
    let mut a = {
        let mut m = mac.clone();
        for s in seed {
            m.update(s);
        }
        m.finalize().into_bytes()
    };
    let mut pos = 0;
    while pos < out.len() {
        let mut m = mac.clone();
        m.update(&a);
        for s in seed {
            m.update(s);
        }
        let block = m.finalize().into_bytes();
        for (o, b) in out[pos..].iter_mut().zip(block.iter()) {
            *o ^= b;
        }
        pos += block.len();
        let mut m = mac.clone();
        m.update(&a);
        a = m.finalize().into_bytes();
    }
}

/// TLS 1.0 PRF: `P_MD5(S1, seed) XOR P_SHA1(S2, seed)`, S1/S2 the two
/// (overlapping when odd) halves of `secret`. `seed` is the concatenation
/// of its parts (the label is simply the first part).
pub fn tls1_prf(secret: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    out.fill(0);
    let half = secret.len().div_ceil(2);
    let s1 = &secret[..half];
    let s2 = &secret[secret.len() - half..];
    // HMAC takes keys of any length: these constructors do not fail.
    if let Ok(md5) = <Hmac<md5::Md5> as Mac>::new_from_slice(s1) {
        p_hash_xor(&md5, seed, out);
    }
    if let Ok(sha1) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(s2) {
        p_hash_xor(&sha1, seed, out);
    }
}

/// What one side contributed to the key-method-2 exchange (section 5.1).
#[derive(Clone, Copy, Debug)]
pub struct KeySource<'a> {
    /// 32 random bytes, used in the master secret.
    pub random1: &'a [u8; 32],
    /// 32 random bytes, used in the key expansion.
    pub random2: &'a [u8; 32],
}

/// OpenVPN's legacy key expansion (pre-EKM peers, section 6.3).
pub fn legacy_key_expansion(
    pre_master: &[u8; 48],
    client: KeySource<'_>,
    server: KeySource<'_>,
    client_sid: SessionId,
    server_sid: SessionId,
) -> Key2 {
    let mut master = Zeroizing::new([0u8; 48]);
    tls1_prf(
        pre_master,
        &[MASTER_SECRET_LABEL, client.random1, server.random1],
        &mut master[..],
    );
    let mut block = Zeroizing::new([0u8; KEY2_LEN]);
    tls1_prf(
        &master[..],
        &[
            KEY_EXPANSION_LABEL,
            client.random2,
            server.random2,
            &client_sid.0,
            &server_sid.0,
        ],
        &mut block[..],
    );
    Key2::from_bytes(*block)
}

/// `OVPN-Expand-Label(secret, label, context, len)`: HKDF-Expand-SHA256 with
/// a TLS 1.3 style info using the prefix "ovpn " (2.7 epoch keys).
/// Returns `None` if `out` is longer than HKDF allows or labels overflow a byte.
pub fn ovpn_expand_label(
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?;
    let label_len = u8::try_from(5 + label.len()).ok()?;
    let ctx_len = u8::try_from(context.len()).ok()?;
    let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(secret).ok()?;
    let len_bytes = len.to_be_bytes();
    let info: [&[u8]; 6] = [
        &len_bytes,
        &[label_len],
        b"ovpn ",
        label,
        &[ctx_len],
        context,
    ];
    hk.expand_multi_info(&info, out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls1_prf_matches_upstream_vector_12_5() {
        let secret = b"Lorem ipsum dolor sit amet, consectetur adipisici elit, sed eiusmod tempor incidunt ut labore et dolore magna aliqua.";
        assert_eq!(secret.len(), 117);
        let seed = b"Quis aute iure reprehenderit in voluptate velit esse cillum dolore";
        let mut out = [0u8; 32];
        tls1_prf(secret, &[seed], &mut out);
        assert_eq!(
            hex::encode(out),
            "d98c8518c85e946927916acfc2d592fbb1567e4b4b1459e6a904ac2ddab72d67"
        );
        // Splitting the seed into parts changes nothing.
        let mut out2 = [0u8; 32];
        tls1_prf(secret, &[&seed[..10], &seed[10..]], &mut out2);
        assert_eq!(out, out2);
    }

    #[test]
    fn ovpn_expand_label_matches_upstream_vector_12_6() {
        let secret =
            hex::decode("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
                .unwrap();
        let mut out = [0u8; 16];
        ovpn_expand_label(&secret, b"unit test", b"", &mut out).unwrap();
        assert_eq!(hex::encode(out), "185eaa1c7f228ab8eb29773214d92046");
    }

    #[test]
    fn legacy_expansion_depends_on_every_input() {
        let pm = [1u8; 48];
        let (r1, r2, r3, r4) = ([2u8; 32], [3u8; 32], [4u8; 32], [5u8; 32]);
        let c = KeySource {
            random1: &r1,
            random2: &r2,
        };
        let s = KeySource {
            random1: &r3,
            random2: &r4,
        };
        let a = legacy_key_expansion(&pm, c, s, SessionId([6; 8]), SessionId([7; 8]));
        let b = legacy_key_expansion(&pm, c, s, SessionId([7; 8]), SessionId([6; 8]));
        assert_ne!(a.as_bytes(), b.as_bytes());
        // The same inputs through the generic PRF, spelled out.
        let mut master = [0u8; 48];
        tls1_prf(&pm, &[b"OpenVPN master secret", &r1, &r3], &mut master);
        let mut block = [0u8; 256];
        tls1_prf(
            &master,
            &[b"OpenVPN key expansion", &r2, &r4, &[6; 8], &[7; 8]],
            &mut block,
        );
        assert_eq!(a.as_bytes(), &block);
    }
}
