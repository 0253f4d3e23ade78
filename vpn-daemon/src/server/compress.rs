//! A client's own compression on the server, as 2.6's client-connect
//! handlers decide it: `compress migrate` first (multi.c
//! `multi_client_connect_compress_migrate`), then the `comp-lzo` /
//! `compress` / `comp-noadapt` lines of its client-config-dir file, then
//! `check_compression_settings_valid` (an invalid result rejects the client).

use crate::proto::data::compress::{CompFlags, CompressOptionError, CompressOptions};
use crate::proto::key_method::PeerInfo;
use crate::server::ccd::CcdOptions;

/// What the server uses and pushes for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCompression {
    /// Our compression towards this client.
    pub options: CompressOptions,
    /// An option `compress migrate` pushes (after the global push list).
    pub push: Option<&'static str>,
}

/// Why a client is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCompressionError {
    /// A compression line of the ccd file is malformed or not allowed.
    #[error("client-config-dir line {line}: {error}")]
    Ccd {
        /// Line in the ccd file.
        line: u32,
        /// 2.6's message.
        error: CompressOptionError,
    },
    /// The result is not allowed (2.6: "client has been rejected due to
    /// invalid compression options").
    #[error("client has been rejected due to invalid compression options: {0}")]
    Invalid(CompressOptionError),
}

/// The compression for a client with `peer_info` whose OCC options string
/// does (`uses_comp`) or does not announce `comp-lzo`.
pub fn client_compression(
    base: CompressOptions,
    peer_info: Option<&PeerInfo>,
    uses_comp: bool,
    ccd: Option<&CcdOptions>,
) -> Result<ClientCompression, ClientCompressionError> {
    let mut options = base;
    let mut push = None;
    if base.flags.contains(CompFlags::MIGRATE) && uses_comp {
        if peer_info.is_some_and(|p| p.comp_stub_v2) {
            // Our side stays unframed: stub-v2 only escapes a leading 0x50,
            // which no IP packet has.
            push = Some("compress stub-v2");
        } else {
            push = Some("comp-lzo no");
            options.alg = crate::proto::data::compress::CompAlg::Stub;
        }
    }
    for d in ccd.map(|c| c.other.as_slice()).unwrap_or_default() {
        let arg = d.words.get(1).map(String::as_str);
        let r = match d.words.first().map(String::as_str) {
            Some("comp-lzo") => options.comp_lzo(arg).map(|_| ()),
            Some("compress") => options.compress(arg).map(|_| ()),
            Some("comp-noadapt") => {
                options.comp_noadapt();
                Ok(())
            }
            _ => continue,
        };
        r.map_err(|error| ClientCompressionError::Ccd {
            line: d.line,
            error,
        })?;
    }
    options.check().map_err(ClientCompressionError::Invalid)?;
    Ok(ClientCompression { options, push })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::data::compress::CompressFraming;
    use crate::server::ccd::OtherDirective;

    fn opts(f: impl FnOnce(&mut CompressOptions)) -> CompressOptions {
        let mut o = CompressOptions::default();
        f(&mut o);
        o.apply_default();
        o
    }

    fn ccd(lines: &[&[&str]]) -> CcdOptions {
        let mut c = CcdOptions::default();
        for (i, l) in lines.iter().enumerate() {
            c.other.push(OtherDirective {
                line: i as u32 + 1,
                words: l.iter().map(|w| w.to_string()).collect(),
            });
        }
        c
    }

    #[test]
    fn migrate_pushes_stub_v2_or_comp_lzo_no_to_compressing_clients() {
        let migrate = opts(|o| {
            o.compress(Some("migrate")).unwrap();
        });
        let v2 = PeerInfo {
            comp_stub_v2: true,
            ..PeerInfo::default()
        };
        let c = client_compression(migrate, Some(&v2), true, None).unwrap();
        assert_eq!(c.push, Some("compress stub-v2"));
        assert_eq!(c.options.framing(), CompressFraming::None);
        let c = client_compression(migrate, Some(&PeerInfo::default()), true, None).unwrap();
        assert_eq!(c.push, Some("comp-lzo no"));
        assert_eq!(c.options.framing(), CompressFraming::LzoStub);
        let c = client_compression(migrate, Some(&v2), false, None).unwrap();
        assert_eq!(c.push, None);
        assert_eq!(c.options.framing(), CompressFraming::None);
    }

    #[test]
    fn ccd_lines_set_the_clients_compression_and_are_checked() {
        let base = opts(|_| {});
        let c =
            client_compression(base, None, false, Some(&ccd(&[&["compress", "stub-v2"]]))).unwrap();
        assert_eq!(c.options.framing(), CompressFraming::StubV2);
        // 2.6's default allows stubs only: real compression rejects the client.
        assert!(matches!(
            client_compression(base, None, false, Some(&ccd(&[&["comp-lzo"]]))),
            Err(ClientCompressionError::Invalid(
                CompressOptionError::StubOnly
            ))
        ));
        let mut asym = CompressOptions::default();
        asym.allow_compression("asym").unwrap();
        let c = client_compression(
            asym,
            None,
            false,
            Some(&ccd(&[&["comp-lzo"], &["comp-noadapt"]])),
        )
        .unwrap();
        assert_eq!(c.options.framing(), CompressFraming::Lzo);
        assert!(!c.options.flags.contains(CompFlags::ADAPTIVE));
        assert!(matches!(
            client_compression(base, None, false, Some(&ccd(&[&["compress", "zstd"]]))),
            Err(ClientCompressionError::Ccd { line: 1, .. })
        ));
    }
}
