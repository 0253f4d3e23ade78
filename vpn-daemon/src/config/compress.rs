//! `comp-lzo`, `compress`, `allow-compression` and `comp-noadapt`, parsed and
//! validated exactly as OpenVPN 2.6's options.c does it.
//!
//! The directives edit one [`CompressOptions`] (2.6's algorithm + flags) in
//! the order they appear, so every order-dependent quirk of 2.6 (a later
//! `allow-compression no` dropping the swap flag of `compress`, `yes` after
//! `no` refused, ...) comes out the same. After the last line the 2.6.0
//! default (stubs only) and `check_compression_settings_valid` apply.

use super::{Builder, ConfigError, ConfigErrorKind, Span};
use crate::proto::data::compress::{CompressOptionError, RECEIVE_WARNING};

fn refused(name: &str, e: CompressOptionError) -> ConfigErrorKind {
    ConfigErrorKind::Compression {
        name: name.into(),
        detail: e.to_string(),
    }
}

/// `comp-lzo [yes|no|adaptive]`.
pub(super) fn comp_lzo(
    b: &mut Builder,
    name: &str,
    arg: Option<&str>,
    span: &Span,
) -> Result<(), ConfigErrorKind> {
    if b.cfg
        .compression
        .comp_lzo(arg)
        .map_err(|e| refused(name, e))?
    {
        b.warn(span, RECEIVE_WARNING.into());
    }
    Ok(())
}

/// `compress [stub|stub-v2|migrate|lzo|lz4|lz4-v2]`.
pub(super) fn compress(
    b: &mut Builder,
    name: &str,
    arg: Option<&str>,
    span: &Span,
) -> Result<(), ConfigErrorKind> {
    if b.cfg
        .compression
        .compress(arg)
        .map_err(|e| refused(name, e))?
    {
        b.warn(span, RECEIVE_WARNING.into());
    }
    Ok(())
}

/// `comp-noadapt`.
pub(super) fn comp_noadapt(b: &mut Builder) {
    b.cfg.compression.comp_noadapt();
}

/// `allow-compression no|asym|yes`.
pub(super) fn allow_compression(
    b: &mut Builder,
    name: &str,
    arg: &str,
    span: &Span,
) -> Result<(), ConfigErrorKind> {
    if let Some(w) = b
        .cfg
        .compression
        .allow_compression(arg)
        .map_err(|e| refused(name, e))?
    {
        b.warn(span, w.into());
    }
    Ok(())
}

/// 2.6's default and final check, once every line is read.
pub(super) fn finish(b: &mut Builder) -> Result<(), ConfigError> {
    b.cfg.compression.apply_default();
    b.cfg.compression.check().map_err(|e| {
        let names = ["comp-lzo", "compress", "allow-compression"];
        let name = names
            .into_iter()
            .filter_map(|n| b.spans.get(n).map(|(seq, _)| (*seq, n)))
            .max()
            .map_or("compress", |(_, n)| n);
        ConfigError::at(&b.latest_of(&names), refused(name, e))
    })
}

#[cfg(test)]
mod tests {
    use super::super::{CompAlg, CompFlags, Config, ConfigErrorKind, Loader};
    use crate::proto::data::compress::{ALLOW_YES_WARNING, CompressFraming, RECEIVE_WARNING};

    const CLIENT: &str = "client\ndev tun\nremote 192.0.2.1\nca ca.crt\ncert c.crt\nkey c.key\n";

    fn parse(extra: &str) -> Result<Config, super::ConfigError> {
        Loader::new("/nonexistent-base")
            .check_files(false)
            .load_str("test.conf", &format!("{CLIENT}{extra}\n"))
    }

    fn warnings(c: &Config) -> Vec<&str> {
        c.warnings.iter().map(|w| w.message.as_str()).collect()
    }

    #[test]
    fn accepted_configurations_resolve_as_2_6_does() {
        // (lines, framing, we compress, peer-info announces real compression)
        let cases = [
            ("", CompressFraming::None, false, false),
            ("comp-lzo", CompressFraming::Lzo, false, true),
            ("comp-lzo adaptive", CompressFraming::Lzo, false, true),
            ("comp-lzo yes", CompressFraming::Lzo, false, true),
            ("comp-lzo no", CompressFraming::LzoStub, false, false),
            (
                "comp-lzo\nallow-compression yes",
                CompressFraming::Lzo,
                true,
                true,
            ),
            (
                "allow-compression yes\ncomp-lzo",
                CompressFraming::Lzo,
                true,
                true,
            ),
            (
                "allow-compression asym\ncomp-lzo",
                CompressFraming::Lzo,
                false,
                true,
            ),
            ("compress", CompressFraming::StubSwap, false, false),
            ("compress stub-v2", CompressFraming::StubV2, false, false),
            ("compress lzo", CompressFraming::Lzo, false, true),
            ("compress lz4", CompressFraming::Lz4, false, true),
            ("compress lz4-v2", CompressFraming::Lz4V2, false, true),
            (
                "compress lz4-v2\nallow-compression yes",
                CompressFraming::Lz4V2,
                true,
                true,
            ),
            ("compress migrate", CompressFraming::None, false, true),
            // allow-compression no replaces all flags: the swap of `compress` goes.
            (
                "compress\nallow-compression no",
                CompressFraming::LzoStub,
                false,
                false,
            ),
            (
                "allow-compression no\ncompress stub-v2",
                CompressFraming::StubV2,
                false,
                false,
            ),
        ];
        for (lines, framing, compresses, real) in cases {
            let c = parse(lines).unwrap_or_else(|e| panic!("{lines:?}: {e}"));
            assert_eq!(c.compression.framing(), framing, "{lines:?}");
            assert_eq!(c.compression.compresses(), compresses, "{lines:?}");
            assert_eq!(
                c.compression.peer_info().contains(&"IV_LZO=1"),
                real,
                "{lines:?}"
            );
        }
    }

    #[test]
    fn comp_noadapt_and_comp_lzo_order_matters() {
        let c = parse("comp-lzo\ncomp-noadapt").unwrap();
        assert!(!c.compression.flags.contains(CompFlags::ADAPTIVE));
        let c = parse("comp-noadapt\ncomp-lzo").unwrap();
        assert!(c.compression.flags.contains(CompFlags::ADAPTIVE));
        let c = parse("comp-lzo yes").unwrap();
        assert_eq!(c.compression.alg, CompAlg::Lzo);
        assert!(!c.compression.flags.contains(CompFlags::ADAPTIVE));
    }

    #[test]
    fn warnings_are_the_ones_2_6_prints() {
        let c = parse("comp-lzo").unwrap();
        assert_eq!(warnings(&c), [RECEIVE_WARNING]);
        let c = parse("allow-compression yes\ncompress lz4-v2").unwrap();
        assert_eq!(warnings(&c), [ALLOW_YES_WARNING]);
        // The receive warning comes from the compress line, before `yes`.
        let c = parse("compress lz4-v2\nallow-compression yes").unwrap();
        assert_eq!(warnings(&c), [RECEIVE_WARNING, ALLOW_YES_WARNING]);
        let c = parse("comp-lzo no\ncompress stub-v2").unwrap();
        assert!(warnings(&c).is_empty());
    }

    #[test]
    fn refusals_carry_2_6_messages_and_lines() {
        let cases = [
            (
                "comp-lzo maybe",
                7,
                "bad comp-lzo option: maybe -- must be 'yes', 'no', or 'adaptive'",
            ),
            ("compress zstd", 7, "bad comp option: zstd"),
            (
                "allow-compression maybe",
                7,
                "bad allow-compression option: maybe -- must be 'yes', 'no', or 'asym'",
            ),
            (
                "comp-lzo\nallow-compression no",
                8,
                "'--allow-compression no' conflicts with  enabling compression",
            ),
            (
                "allow-compression no\nallow-compression yes",
                8,
                "Cannot set allow-compression to 'yes' after set to 'no'",
            ),
            (
                "allow-compression no\ncomp-lzo",
                8,
                "Compression is not allowed since allow-compression is set to 'stub-only'",
            ),
            (
                "allow-compression no\ncompress lz4",
                8,
                "Compression is not allowed since allow-compression is set to 'stub-only'",
            ),
        ];
        for (lines, line, msg) in cases {
            let e = parse(lines)
                .err()
                .unwrap_or_else(|| panic!("{lines:?} accepted"));
            assert_eq!(e.line, line, "{lines:?}");
            assert!(
                matches!(&e.kind, ConfigErrorKind::Compression { detail, .. } if detail == msg),
                "{lines:?}: {e}"
            );
        }
        assert!(matches!(
            parse("comp-lzo yes no").err().map(|e| e.kind),
            Some(ConfigErrorKind::Arity { .. })
        ));
        assert!(matches!(
            parse("comp-noadapt x").err().map(|e| e.kind),
            Some(ConfigErrorKind::Arity { .. })
        ));
    }
}
