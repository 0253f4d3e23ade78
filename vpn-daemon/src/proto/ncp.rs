//! Data-channel cipher negotiation (NCP, doc §6.5), as 2.6's `ssl_ncp.c`
//! and `multi_client_set_protocol_options` do it.
//!
//! Server: walk our `--data-ciphers` in order and take the first cipher the
//! client offers (IV_CIPHERS, or AES-256-GCM:AES-128-GCM for a bare
//! IV_NCP=2) or that equals the cipher in the client's OCC options string;
//! failing that, `--data-ciphers-fallback`; failing that, the client gets
//! `AUTH_FAILED` with [`NcpRefusal::auth_failed_reason`].
//!
//! Client: a pushed `cipher X` is used only if X is in our data-ciphers;
//! without a pushed cipher, the server's OCC cipher if acceptable, else the
//! fallback, else the connection fails.

use crate::proto::key_method::PeerInfo;

/// 2.6's default `--data-ciphers`.
pub const DEFAULT_DATA_CIPHERS: &str = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305";
/// What IV_NCP=2 without IV_CIPHERS stands for.
pub const IV_NCP2_CIPHERS: &[&str] = &["AES-256-GCM", "AES-128-GCM"];

/// An ordered, colon-separated cipher list (`--data-ciphers`, IV_CIPHERS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CipherList(Vec<String>);

impl CipherList {
    /// Split `A:B:C`; names are kept upper-case (OpenSSL style), empty
    /// entries dropped.
    pub fn parse(s: &str) -> Self {
        Self(
            s.split(':')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_ascii_uppercase)
                .collect(),
        )
    }

    /// From individual names.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        Self(
            names
                .iter()
                .map(|n| n.as_ref().to_ascii_uppercase())
                .collect(),
        )
    }

    /// Whether `cipher` is in the list (case-insensitive).
    pub fn contains(&self, cipher: &str) -> bool {
        self.0.iter().any(|c| c.eq_ignore_ascii_case(cipher))
    }

    /// The names in order.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for CipherList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(":"))
    }
}

/// Where the server's choice came from (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcpSource {
    /// The client's IV_CIPHERS.
    IvCiphers,
    /// The client's bare IV_NCP=2.
    IvNcp2,
    /// The `cipher` in the client's OCC options string (pre-2.4 client).
    OccCipher,
    /// `--data-ciphers-fallback`.
    Fallback,
}

/// The negotiated data cipher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcpChoice {
    /// Cipher name to push as `cipher NAME`.
    pub cipher: String,
    /// How it was chosen.
    pub source: NcpSource,
}

/// Why the server could not pick a cipher: the client gets `AUTH_FAILED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NcpRefusal {
    /// No overlap and no fallback configured.
    #[error(
        "no common cipher: server data-ciphers '{server}', client offers '{client}'{}",
        occ.as_deref().map(|c| format!(", client OCC cipher '{c}'")).unwrap_or_default()
    )]
    NoSharedCipher {
        /// Our data-ciphers.
        server: CipherList,
        /// What the client offered via peer-info.
        client: CipherList,
        /// The client's OCC cipher, if any.
        occ: Option<String>,
    },
}

impl NcpRefusal {
    /// The text after `AUTH_FAILED,` (2.6's wording).
    pub fn auth_failed_reason(&self) -> &'static str {
        match self {
            NcpRefusal::NoSharedCipher { .. } => {
                "Data channel cipher negotiation failed (no shared cipher)"
            }
        }
    }
}

/// Server: choose the data cipher for a client.
pub fn server_select(
    data_ciphers: &CipherList,
    peer_info: &PeerInfo,
    occ_cipher: Option<&str>,
    fallback: Option<&str>,
) -> Result<NcpChoice, NcpRefusal> {
    let (offered, offered_source) = match (&peer_info.ciphers, peer_info.ncp) {
        (Some(list), _) => (CipherList::from_names(list), NcpSource::IvCiphers),
        (None, Some(n)) if n >= 2 => (CipherList::from_names(IV_NCP2_CIPHERS), NcpSource::IvNcp2),
        _ => (CipherList::default(), NcpSource::IvCiphers),
    };
    for c in data_ciphers.names() {
        if offered.contains(c) {
            return Ok(NcpChoice {
                cipher: c.clone(),
                source: offered_source,
            });
        }
        if occ_cipher.is_some_and(|o| o.eq_ignore_ascii_case(c)) {
            return Ok(NcpChoice {
                cipher: c.clone(),
                source: NcpSource::OccCipher,
            });
        }
    }
    if let Some(fb) = fallback {
        return Ok(NcpChoice {
            cipher: fb.to_ascii_uppercase(),
            source: NcpSource::Fallback,
        });
    }
    Err(NcpRefusal::NoSharedCipher {
        server: data_ciphers.clone(),
        client: offered,
        occ: occ_cipher.map(str::to_string),
    })
}

/// Why a client refuses the server's cipher choice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NcpClientError {
    /// The server pushed a cipher outside our data-ciphers.
    #[error("server pushed cipher {pushed} which is not in data-ciphers '{allowed}'")]
    PushedCipherNotAllowed {
        /// What was pushed.
        pushed: String,
        /// Our list.
        allowed: CipherList,
    },
    /// Nothing pushed, the server's OCC cipher is unusable, no fallback.
    #[error("server pushed no cipher and none of its OCC cipher / data-ciphers-fallback is usable")]
    NoCipher,
}

/// Client: decide the data cipher after the (final) PUSH_REPLY.
pub fn client_accept(
    data_ciphers: &CipherList,
    pushed: Option<&str>,
    server_occ_cipher: Option<&str>,
    fallback: Option<&str>,
) -> Result<String, NcpClientError> {
    if let Some(p) = pushed {
        return if data_ciphers.contains(p) {
            Ok(p.to_ascii_uppercase())
        } else {
            Err(NcpClientError::PushedCipherNotAllowed {
                pushed: p.to_string(),
                allowed: data_ciphers.clone(),
            })
        };
    }
    if let Some(o) = server_occ_cipher
        && data_ciphers.contains(o)
    {
        return Ok(o.to_ascii_uppercase());
    }
    fallback
        .map(str::to_ascii_uppercase)
        .ok_or(NcpClientError::NoCipher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi(ciphers: Option<&str>, ncp: Option<u32>) -> PeerInfo {
        PeerInfo {
            ciphers: ciphers.map(|c| CipherList::parse(c).names().to_vec()),
            ncp,
            ..PeerInfo::default()
        }
    }

    /// (server list, IV_CIPHERS, IV_NCP, OCC cipher, fallback, expected cipher and source)
    type Case<'a> = (
        &'a CipherList,
        Option<&'a str>,
        Option<u32>,
        Option<&'a str>,
        Option<&'a str>,
        Option<(&'a str, NcpSource)>,
    );

    #[test]
    fn server_selection_table() {
        let ours = CipherList::parse(DEFAULT_DATA_CIPHERS);
        let chacha_first = CipherList::parse("CHACHA20-POLY1305:AES-256-GCM");
        // (server list, IV_CIPHERS, IV_NCP, OCC cipher, fallback) -> cipher, source
        let cases: &[Case<'_>] = &[
            // 2.6 client: server order wins.
            (
                &ours,
                Some("AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"),
                Some(2),
                None,
                None,
                Some(("AES-256-GCM", NcpSource::IvCiphers)),
            ),
            (
                &chacha_first,
                Some("AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"),
                Some(2),
                None,
                None,
                Some(("CHACHA20-POLY1305", NcpSource::IvCiphers)),
            ),
            // Only the second of ours is offered; case does not matter.
            (
                &ours,
                Some("aes-128-gcm"),
                None,
                None,
                None,
                Some(("AES-128-GCM", NcpSource::IvCiphers)),
            ),
            // 2.4 client: IV_NCP=2 only.
            (
                &chacha_first,
                None,
                Some(2),
                None,
                None,
                Some(("AES-256-GCM", NcpSource::IvNcp2)),
            ),
            // IV_NCP=1 means nothing; OCC cipher in our list is taken.
            (
                &CipherList::parse("AES-256-GCM:AES-256-CBC"),
                None,
                Some(1),
                Some("AES-256-CBC"),
                None,
                Some(("AES-256-CBC", NcpSource::OccCipher)),
            ),
            // OCC cipher not in our list, fallback configured.
            (
                &ours,
                None,
                None,
                Some("BF-CBC"),
                Some("AES-256-CBC"),
                Some(("AES-256-CBC", NcpSource::Fallback)),
            ),
            // IV_CIPHERS without overlap: fallback even though the client is NCP capable.
            (
                &ours,
                Some("AES-192-GCM"),
                Some(2),
                None,
                Some("AES-128-CBC"),
                Some(("AES-128-CBC", NcpSource::Fallback)),
            ),
            // Nothing: refusal.
            (&ours, Some("AES-192-GCM"), None, Some("BF-CBC"), None, None),
            (&ours, None, None, None, None, None),
        ];
        for (i, (server, ivc, ncp, occ, fb, want)) in cases.iter().enumerate() {
            let got = server_select(server, &pi(*ivc, *ncp), *occ, *fb);
            match want {
                Some((c, src)) => assert_eq!(
                    got,
                    Ok(NcpChoice {
                        cipher: c.to_string(),
                        source: *src
                    }),
                    "case {i}"
                ),
                None => assert!(got.is_err(), "case {i}: {got:?}"),
            }
        }
    }

    #[test]
    fn refusal_names_both_lists_and_gives_the_auth_failed_reason() {
        let err = server_select(
            &CipherList::parse("AES-256-GCM"),
            &pi(Some("CHACHA20-POLY1305"), None),
            Some("BF-CBC"),
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("'AES-256-GCM'")
                && text.contains("'CHACHA20-POLY1305'")
                && text.contains("BF-CBC"),
            "{text}"
        );
        assert_eq!(
            err.auth_failed_reason(),
            "Data channel cipher negotiation failed (no shared cipher)"
        );
    }

    #[test]
    fn client_accepts_only_pushed_ciphers_in_its_list() {
        let ours = CipherList::parse(DEFAULT_DATA_CIPHERS);
        assert_eq!(
            client_accept(&ours, Some("AES-256-GCM"), None, None),
            Ok("AES-256-GCM".into())
        );
        assert!(matches!(
            client_accept(
                &ours,
                Some("AES-256-CBC"),
                Some("AES-256-GCM"),
                Some("AES-256-CBC")
            ),
            Err(NcpClientError::PushedCipherNotAllowed { .. })
        ));
        // Nothing pushed: the server's OCC cipher if acceptable, then fallback.
        assert_eq!(
            client_accept(&ours, None, Some("aes-128-gcm"), None),
            Ok("AES-128-GCM".into())
        );
        assert_eq!(
            client_accept(&ours, None, Some("BF-CBC"), Some("AES-256-CBC")),
            Ok("AES-256-CBC".into())
        );
        assert_eq!(
            client_accept(&ours, None, Some("BF-CBC"), None),
            Err(NcpClientError::NoCipher)
        );
    }

    #[test]
    fn cipher_list_parse_normalises() {
        let l = CipherList::parse(" aes-256-gcm::AES-128-GCM ");
        assert_eq!(l.names(), ["AES-256-GCM", "AES-128-GCM"]);
        assert_eq!(l.to_string(), "AES-256-GCM:AES-128-GCM");
        assert!(CipherList::parse("").is_empty());
    }
}
