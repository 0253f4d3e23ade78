//! OpenVPN's configuration tokenizer, as a pure function over bytes.
//!
//! The rules follow OpenVPN 2.6 (`parse_line`, `read_inline_file` in
//! `options.c`), re-implemented from their documented behaviour:
//!
//! - Words are separated by white space. A word that *starts* with `#` or `;`
//!   starts a comment that runs to the end of the line (`dev tun # x` is a
//!   comment after `tun`; `a#b` is one word).
//! - `"..."` quotes a word; inside it, and in unquoted words, a backslash
//!   escapes `\`, `"` or a white-space character and nothing else (any other
//!   backslash use is an error, as in OpenVPN, which wants `\\` for Windows
//!   paths). A closing quote ends the word even if a letter follows: `"a"b` is
//!   two words.
//! - `'...'` quotes a word literally: no escapes inside.
//! - A line holding exactly one word of the form `<tag>` opens an inline
//!   block: the following lines, verbatim, up to a line whose first
//!   non-blank text starts with `</tag>`, are the block's body.
//! - A UTF-8 byte-order mark at the start of the text is skipped.
//!
//! Differences from OpenVPN: a line with more than [`MAX_WORDS`] words is an
//! error (OpenVPN drops the extra words), NUL bytes and non-UTF-8 text are
//! errors, and there is no 256-byte limit on a word.

use crate::config::error::LexErrorKind;

/// The most words OpenVPN reads from one line (its `MAX_PARMS`).
pub const MAX_WORDS: usize = 16;

/// One directive as read from a file: its words, or an inline block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexedLine {
    /// 1-based line number of the directive (of the `<tag>` line for a block).
    pub line: u32,
    /// The words; for an inline block, just the tag name (`ca` for `<ca>`).
    pub words: Vec<String>,
    /// The body of an inline block, verbatim (line ends included).
    pub inline: Option<String>,
}

/// A tokenizer error and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line number.
    pub line: u32,
    /// What is wrong.
    pub kind: LexErrorKind,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits a configuration text into directives. Never panics, whatever the
/// bytes (this is the fuzz target's entry point).
pub fn lex(input: &[u8]) -> Result<Vec<LexedLine>, LexError> {
    let input = input.strip_prefix(BOM).unwrap_or(input);
    let mut out = Vec::new();
    let mut lines = split_lines(input).enumerate().map(|(i, l)| {
        let n = u32::try_from(i).unwrap_or(u32::MAX - 1).saturating_add(1);
        (n, l)
    });
    while let Some((n, raw)) = lines.next() {
        let err = |kind| LexError { line: n, kind };
        if raw.contains(&0) {
            return Err(err(LexErrorKind::Nul));
        }
        let words = tokenize_line(raw).map_err(err)?;
        if words.is_empty() {
            continue;
        }
        match inline_tag(&words).map_err(err)? {
            None => out.push(LexedLine {
                line: n,
                words,
                inline: None,
            }),
            Some(tag) => {
                let close = format!("</{tag}>");
                let mut body = Vec::new();
                let mut closed = false;
                for (_, l) in lines.by_ref() {
                    if l.contains(&0) {
                        return Err(err(LexErrorKind::Nul));
                    }
                    if l.trim_ascii_start().starts_with(close.as_bytes()) {
                        closed = true;
                        break;
                    }
                    body.extend_from_slice(l);
                }
                if !closed {
                    return Err(err(LexErrorKind::UnclosedInline(tag)));
                }
                let body = String::from_utf8(body).map_err(|_| err(LexErrorKind::NotUtf8))?;
                out.push(LexedLine {
                    line: n,
                    words: vec![tag],
                    inline: Some(body),
                });
            }
        }
    }
    Ok(out)
}

/// Lines with their terminating `\n` kept (as `fgets` gives them to OpenVPN),
/// so an escaped line end behaves as it does there.
fn split_lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input.split_inclusive(|&b| b == b'\n')
}

/// Whether the words are a lone `<tag>`; returns the tag.
fn inline_tag(words: &[String]) -> Result<Option<String>, LexErrorKind> {
    let [word] = words else {
        return Ok(None);
    };
    let Some(inner) = word.strip_prefix('<').and_then(|w| w.strip_suffix('>')) else {
        return Ok(None);
    };
    if let Some(closing) = inner.strip_prefix('/') {
        return Err(LexErrorKind::StrayClosingTag(closing.to_string()));
    }
    let valid = !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(LexErrorKind::BadTag(word.clone()));
    }
    Ok(Some(inner.to_string()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    Unquoted,
    DoubleQuoted,
    SingleQuoted,
}

/// White space as OpenVPN's `space()` sees it; `None` is the end of the line.
fn is_space(c: Option<u8>) -> bool {
    match c {
        None => true,
        Some(c) => c.is_ascii_whitespace() || c == 0x0b,
    }
}

/// Splits one line (its `\n` included or not) into words.
pub fn tokenize_line(line: &[u8]) -> Result<Vec<String>, LexErrorKind> {
    let mut words: Vec<String> = Vec::new();
    let mut word: Vec<u8> = Vec::new();
    let mut state = State::Between;
    let mut escaped = false;
    // The end of the line is one more "character" (OpenVPN's terminating
    // NUL), which counts as white space and closes an unquoted word.
    let chars = line.iter().map(|&b| Some(b)).chain(std::iter::once(None));
    for c in chars {
        if !escaped && c == Some(b'\\') && state != State::SingleQuoted {
            escaped = true;
            continue;
        }
        let mut out: Option<u8> = None;
        let mut done = false;
        match state {
            State::Between => {
                if !is_space(c) {
                    match c {
                        // A comment starts at a word boundary, escaped or not.
                        Some(b'#' | b';') => break,
                        Some(b'"') if !escaped => state = State::DoubleQuoted,
                        Some(b'\'') if !escaped => state = State::SingleQuoted,
                        _ => {
                            out = c;
                            state = State::Unquoted;
                        }
                    }
                }
            }
            State::Unquoted => {
                if !escaped && is_space(c) {
                    done = true;
                } else {
                    out = c;
                }
            }
            State::DoubleQuoted => {
                if !escaped && c == Some(b'"') {
                    done = true;
                } else {
                    out = c;
                }
            }
            State::SingleQuoted => {
                if c == Some(b'\'') {
                    done = true;
                } else {
                    out = c;
                }
            }
        }
        if escaped {
            if let Some(o) = out
                && !(o == b'\\' || o == b'"' || is_space(Some(o)))
            {
                return Err(LexErrorKind::BadBackslash);
            }
            escaped = false;
        }
        if let Some(o) = out {
            word.push(o);
        }
        if done {
            if words.len() == MAX_WORDS {
                return Err(LexErrorKind::TooManyWords(MAX_WORDS));
            }
            let w =
                String::from_utf8(std::mem::take(&mut word)).map_err(|_| LexErrorKind::NotUtf8)?;
            words.push(w);
            state = State::Between;
        }
        if c.is_none() {
            break;
        }
    }
    match state {
        State::DoubleQuoted => Err(LexErrorKind::UnclosedDoubleQuote),
        State::SingleQuoted => Err(LexErrorKind::UnclosedSingleQuote),
        // Only a backslash escaping the end of the text leaves a word open
        // (OpenVPN reports a "residual parse state"); dropping the word
        // would lose it silently.
        State::Unquoted => Err(LexErrorKind::BadBackslash),
        State::Between => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        tokenize_line(s.as_bytes()).unwrap()
    }

    fn lex_ok(s: &str) -> Vec<LexedLine> {
        lex(s.as_bytes()).unwrap()
    }

    #[test]
    fn splits_on_white_space() {
        assert_eq!(
            words("remote  vpn.example.com\t1194 udp\n"),
            ["remote", "vpn.example.com", "1194", "udp"]
        );
    }

    #[test]
    fn crlf_line_end_is_white_space() {
        assert_eq!(words("dev tun\r\n"), ["dev", "tun"]);
    }

    #[test]
    fn hash_and_semicolon_comment_whole_lines() {
        assert!(words("# comment").is_empty());
        assert!(words("; dev tap").is_empty());
        assert!(words("   ;indented comment").is_empty());
    }

    #[test]
    fn comment_after_words_needs_a_word_boundary() {
        assert_eq!(words("dev tun # trailing"), ["dev", "tun"]);
        assert_eq!(words("dev tun ;trailing"), ["dev", "tun"]);
        assert_eq!(words("dev tun#0"), ["dev", "tun#0"]);
    }

    #[test]
    fn escaped_hash_at_word_start_is_still_a_comment() {
        // OpenVPN checks for comments before it looks at the backslash.
        assert_eq!(words("a \\#b"), ["a"]);
    }

    #[test]
    fn double_quotes_group_words() {
        assert_eq!(
            words("push \"route 10.0.0.0 255.0.0.0\""),
            ["push", "route 10.0.0.0 255.0.0.0"]
        );
    }

    #[test]
    fn double_quotes_keep_comment_characters() {
        assert_eq!(words("x \"a # b ; c\""), ["x", "a # b ; c"]);
    }

    #[test]
    fn closing_quote_ends_the_word() {
        assert_eq!(words("\"ab\"cd"), ["ab", "cd"]);
    }

    #[test]
    fn empty_quotes_are_an_empty_word() {
        assert_eq!(words("setenv X \"\""), ["setenv", "X", ""]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(words(r"up '/bin/x \n \q'"), ["up", r"/bin/x \n \q"]);
        assert_eq!(words(r#"x 'a"b'"#), ["x", "a\"b"]);
    }

    #[test]
    fn backslash_escapes_backslash_quote_and_space() {
        assert_eq!(words(r"cd C:\\dir"), ["cd", r"C:\dir"]);
        assert_eq!(words(r"x a\ b"), ["x", "a b"]);
        assert_eq!(words(r#"x a\"b"#), ["x", "a\"b"]);
        assert_eq!(words(r#"x "a\"b\\c""#), ["x", "a\"b\\c"]);
        assert_eq!(words(r#"x \"a"#), ["x", "\"a"]);
    }

    #[test]
    fn backslash_before_other_characters_is_an_error() {
        assert_eq!(
            tokenize_line(br"cd C:\dir"),
            Err(LexErrorKind::BadBackslash)
        );
        assert_eq!(
            tokenize_line(br#"x "a\nb""#),
            Err(LexErrorKind::BadBackslash)
        );
    }

    #[test]
    fn escaped_line_end_stays_in_the_word() {
        assert_eq!(words("x a\\\n"), ["x", "a\n"]);
    }

    #[test]
    fn backslash_at_the_very_end_is_an_error() {
        assert_eq!(tokenize_line(b"x a\\"), Err(LexErrorKind::BadBackslash));
        assert_eq!(lex(b"dev tun\nx a\\").unwrap_err().line, 2);
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        assert_eq!(
            tokenize_line(b"x \"abc"),
            Err(LexErrorKind::UnclosedDoubleQuote)
        );
        assert_eq!(
            tokenize_line(b"x 'abc"),
            Err(LexErrorKind::UnclosedSingleQuote)
        );
    }

    #[test]
    fn too_many_words_is_an_error() {
        let line = vec!["w"; MAX_WORDS + 1].join(" ");
        assert_eq!(
            tokenize_line(line.as_bytes()),
            Err(LexErrorKind::TooManyWords(MAX_WORDS))
        );
        let line = vec!["w"; MAX_WORDS].join(" ");
        assert_eq!(words(&line).len(), MAX_WORDS);
    }

    #[test]
    fn non_utf8_word_is_an_error() {
        assert_eq!(tokenize_line(b"x \xff"), Err(LexErrorKind::NotUtf8));
    }

    #[test]
    fn lines_are_numbered_from_one_and_blank_lines_skipped() {
        let l = lex_ok("# head\n\ndev tun\n  \nproto udp");
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].line, l[0].words.clone()),
            (3, vec!["dev".into(), "tun".into()])
        );
        assert_eq!(l[1].line, 5);
    }

    #[test]
    fn bom_is_skipped() {
        let l = lex(b"\xEF\xBB\xBFdev tun\n").unwrap();
        assert_eq!(l[0].words, ["dev", "tun"]);
    }

    #[test]
    fn lex_errors_carry_the_line() {
        let e = lex(b"dev tun\nremote \"x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.kind, LexErrorKind::UnclosedDoubleQuote);
    }

    #[test]
    fn nul_is_an_error() {
        assert_eq!(lex(b"dev\0 tun").unwrap_err().kind, LexErrorKind::Nul);
    }

    #[test]
    fn inline_block_body_is_verbatim() {
        let text = "client\n<ca>\n-----BEGIN CERTIFICATE-----\n  # not a comment; \"x\n-----END CERTIFICATE-----\n</ca>\nverb 3\n";
        let l = lex_ok(text);
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].line, 2);
        assert_eq!(l[1].words, ["ca"]);
        assert_eq!(
            l[1].inline.as_deref(),
            Some(
                "-----BEGIN CERTIFICATE-----\n  # not a comment; \"x\n-----END CERTIFICATE-----\n"
            )
        );
        assert_eq!(l[2].line, 7);
    }

    #[test]
    fn every_listed_inline_tag_opens_a_block() {
        for tag in [
            "ca",
            "cert",
            "key",
            "tls-auth",
            "tls-crypt",
            "tls-crypt-v2",
            "pkcs12",
            "dh",
            "auth-user-pass",
            "crl-verify",
            "extra-certs",
            "secret",
        ] {
            let l = lex_ok(&format!("<{tag}>\nbody\n</{tag}>\n"));
            assert_eq!(l[0].words, [tag]);
            assert_eq!(l[0].inline.as_deref(), Some("body\n"));
        }
    }

    #[test]
    fn closing_tag_may_be_indented_and_followed_by_text() {
        let l = lex_ok("<key>\nk\n   </key> trailing\ndev tun\n");
        assert_eq!(l[0].inline.as_deref(), Some("k\n"));
        assert_eq!(l[1].words, ["dev", "tun"]);
    }

    #[test]
    fn inline_tag_may_carry_a_comment() {
        let l = lex_ok("<ca> # the CA\nx\n</ca>\n");
        assert_eq!(l[0].inline.as_deref(), Some("x\n"));
    }

    #[test]
    fn other_closing_tags_inside_a_block_are_body() {
        let l = lex_ok("<ca>\n</cert>\n</ca>\n");
        assert_eq!(l[0].inline.as_deref(), Some("</cert>\n"));
    }

    #[test]
    fn empty_block_is_an_empty_body() {
        let l = lex_ok("<ca>\n</ca>\n");
        assert_eq!(l[0].inline.as_deref(), Some(""));
    }

    #[test]
    fn unclosed_block_is_an_error_at_its_start() {
        let e = lex(b"dev tun\n<ca>\nabc\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.kind, LexErrorKind::UnclosedInline("ca".into()));
    }

    #[test]
    fn stray_closing_tag_is_an_error() {
        let e = lex(b"dev tun\n</ca>\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.kind, LexErrorKind::StrayClosingTag("ca".into()));
    }

    #[test]
    fn bad_tags_are_errors() {
        assert_eq!(
            lex(b"<>\n").unwrap_err().kind,
            LexErrorKind::BadTag("<>".into())
        );
        assert_eq!(
            lex(b"<a.b>\n").unwrap_err().kind,
            LexErrorKind::BadTag("<a.b>".into())
        );
    }

    #[test]
    fn tag_with_other_words_is_not_a_block() {
        let l = lex_ok("<ca> x\n");
        assert_eq!(l[0].words, ["<ca>", "x"]);
        assert_eq!(l[0].inline, None);
    }

    #[test]
    fn line_numbers_continue_after_a_block() {
        let l = lex_ok("<ca>\na\nb\n</ca>\n\nverb 3\n");
        assert_eq!(l[1].line, 6);
    }

    proptest::proptest! {
        #[test]
        fn lex_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = lex(&bytes);
        }

        #[test]
        fn plain_words_round_trip(ws in proptest::collection::vec("[a-zA-Z0-9./:_-]{1,12}", 1..MAX_WORDS)) {
            let line = ws.join(" ");
            proptest::prop_assert_eq!(tokenize_line(line.as_bytes()).unwrap(), ws);
        }
    }
}
