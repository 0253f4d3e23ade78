//! Configuration errors: every one names where it came from (file:line, or
//! the command-line argument) and what was wrong.

use std::{fmt, path::PathBuf, sync::Arc};

/// Where a directive came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A configuration file (as named by `--config` or a nested `config`).
    File(Arc<PathBuf>),
    /// The command line; the line number is the index of the `--directive`
    /// argument in argv (argv\[0\] being the program).
    CommandLine,
    /// Options the daemon derived itself (helper expansions such as
    /// `server`), reported against the directive that caused them.
    Builtin,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::CommandLine => f.write_str("[command line]"),
            Origin::Builtin => f.write_str("[builtin]"),
        }
    }
}

/// A place in the configuration: file (or command line) and line (or
/// argument index).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    /// File or command line.
    pub file: Origin,
    /// 1-based line number in the file, or the argv index on the command line.
    pub line: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// A configuration error, with the place it was found.
///
/// Displays as `file:line: message`; a problem that belongs to no single
/// line (a missing `dev`, say) has line 0 and displays as `file: message`.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// File or command line where the offending directive is.
    pub file: Origin,
    /// Line (or argv index) of the offending directive.
    pub line: u32,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.kind)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.kind)
        }
    }
}

impl ConfigError {
    /// Builds an error located at `span`.
    pub fn at(span: &Span, kind: ConfigErrorKind) -> Self {
        ConfigError {
            file: span.file.clone(),
            line: span.line,
            kind,
        }
    }

    /// The place of the error.
    pub fn span(&self) -> Span {
        Span {
            file: self.file.clone(),
            line: self.line,
        }
    }
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// A file given to `--config` / `config` cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The tokenizer rejected the line.
    #[error("{0}")]
    Lex(#[from] LexErrorKind),
    /// `config` files nest deeper than OpenVPN allows.
    #[error("config files nested more than {max} levels deep (loop?)")]
    IncludeDepth {
        /// The limit.
        max: usize,
    },
    /// A command-line word where a `--directive` was expected.
    #[error("expected an --option, found {word:?} (OpenVPN-style arguments are --name args...)")]
    ExpectedDoubleDash {
        /// The word.
        word: String,
    },
    /// Not an OpenVPN directive we know.
    #[error("unknown directive '{name}'")]
    UnknownDirective {
        /// The directive.
        name: String,
    },
    /// A directive of OpenVPN on other platforms, which 2.6 on Linux refuses
    /// as unrecognized.
    #[error(
        "unknown directive '{name}': {reason}; OpenVPN on Linux refuses it too (Unrecognized option)"
    )]
    NotOnLinux {
        /// The directive.
        name: String,
        /// The platform it belongs to.
        reason: &'static str,
    },
    /// An OpenVPN directive this daemon does not implement.
    #[error("directive '{name}' is not supported by this daemon: {reason}")]
    Unsupported {
        /// The directive.
        name: String,
        /// Why, or what to use instead.
        reason: &'static str,
    },
    /// Wrong number of parameters.
    #[error("directive '{name}' takes {expected} parameter(s), got {got}")]
    Arity {
        /// The directive.
        name: String,
        /// A description such as "1" or "1 to 2".
        expected: String,
        /// How many were given.
        got: usize,
    },
    /// A parameter that does not parse.
    #[error("directive '{name}': bad value {value:?}: expected {expected}")]
    InvalidValue {
        /// The directive.
        name: String,
        /// The offending parameter.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A directive given as an inline block that cannot be inline.
    #[error("directive '{name}' cannot be given as an inline <{name}> block")]
    InlineNotAllowed {
        /// The directive.
        name: String,
    },
    /// A directive that needs a file or inline block (e.g. `<ca>`) was given
    /// the `[[INLINE]]` marker without a block.
    #[error("inline block <{tag}> is malformed: {reason}")]
    MalformedInline {
        /// The block's tag.
        tag: String,
        /// What is wrong.
        reason: String,
    },
    /// A file named by a directive does not exist or cannot be used.
    #[error("directive '{name}': {what} {path} cannot be used: {reason}")]
    File {
        /// The directive.
        name: String,
        /// "file", "directory" or "command".
        what: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A compression directive or combination OpenVPN 2.6 refuses (its
    /// message).
    #[error("directive '{name}': {detail}")]
    Compression {
        /// The directive.
        name: String,
        /// What was asked.
        detail: String,
    },
    /// Options that cannot be used together, or a mode that lacks an option.
    #[error("{0}")]
    Invalid(String),
}

/// Errors of the tokenizer (see `lexer`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexErrorKind {
    /// `"` opened and the line ended.
    #[error("no closing quotation (\")")]
    UnclosedDoubleQuote,
    /// `'` opened and the line ended.
    #[error("no closing single quotation (')")]
    UnclosedSingleQuote,
    /// A backslash before something other than `\`, `"` or white space.
    #[error(
        "bad backslash ('\\') usage: only \\\\, \\\" and \\<space> are escapes; write a literal backslash as \\\\ or use single quotes"
    )]
    BadBackslash,
    /// `<tag>` without its `</tag>`.
    #[error("inline block <{0}> has no closing </{0}>")]
    UnclosedInline(String),
    /// `</tag>` outside any block.
    #[error("closing tag </{0}> without an opening <{0}>")]
    StrayClosingTag(String),
    /// `<>` or a tag with characters no directive has.
    #[error("bad inline tag {0:?}")]
    BadTag(String),
    /// More parameters on one line than OpenVPN accepts.
    #[error("more than {0} words on one line")]
    TooManyWords(usize),
    /// The text is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// A NUL byte inside the file.
    #[error("NUL byte in configuration text")]
    Nul,
}
