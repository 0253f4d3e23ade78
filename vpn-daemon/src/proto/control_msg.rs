//! Control-channel messages after key-method 2 (doc §9): framing and the
//! typed messages other than the PUSH_REPLY option list (see `push`).
//!
//! Framing: each message is printable ASCII followed by one NUL, written as
//! one TLS record. A receiver splits every record it reads on NUL, strips
//! trailing CR/LF, drops strings with non-printable bytes, and throws away a
//! trailing fragment without NUL — 2.6 never joins it with the next record.
//!
//! Messages are recognised by prefix, in 2.6's order (`INFO_PRE` before
//! `INFO`, since one is a prefix of the other).

use std::fmt;

/// Largest message we send, NUL included (PUSH_BUNDLE_SIZE).
pub const MAX_CONTROL_MESSAGE: usize = 1024;

/// A message we refuse to frame (our fault) or one the peer sent malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlMsgError {
    /// The text contains a NUL or another non-printable byte.
    #[error("control message contains a non-printable byte at offset {offset}")]
    NonPrintable {
        /// Byte offset.
        offset: usize,
    },
    /// The text (plus NUL) exceeds [`MAX_CONTROL_MESSAGE`].
    #[error("control message of {len} bytes exceeds {MAX_CONTROL_MESSAGE}")]
    TooLong {
        /// Length including the NUL.
        len: usize,
    },
}

fn check_printable(text: &[u8]) -> Result<(), ControlMsgError> {
    match text.iter().position(|b| !(0x20..0x7f).contains(b)) {
        Some(offset) => Err(ControlMsgError::NonPrintable { offset }),
        None => Ok(()),
    }
}

/// Frame one message for [`crate::proto::tls::TlsSession::write_plaintext`].
pub fn encode(text: &str) -> Result<Vec<u8>, ControlMsgError> {
    check_printable(text.as_bytes())?;
    let len = text.len() + 1;
    if len > MAX_CONTROL_MESSAGE {
        return Err(ControlMsgError::TooLong { len });
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    Ok(out)
}

/// What one plaintext record held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitRecord {
    /// Complete, printable messages in order (CR/LF stripped).
    pub messages: Vec<String>,
    /// Complete strings dropped for non-printable bytes.
    pub rejected: usize,
    /// Bytes of a trailing fragment without NUL, discarded.
    pub discarded_tail: usize,
}

/// Split one TLS plaintext record into messages.
pub fn split_record(record: &[u8]) -> SplitRecord {
    let mut out = SplitRecord::default();
    let mut parts = record.split(|b| *b == 0).peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            // Last piece: after the final NUL (empty) or an unterminated tail.
            out.discarded_tail = part.len();
            break;
        }
        let mut end = part.len();
        while end > 0 && matches!(part[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        let text = &part[..end];
        if text.is_empty() {
            continue;
        }
        match check_printable(text) {
            // Printable ASCII is valid UTF-8.
            Ok(()) => out
                .messages
                .push(String::from_utf8_lossy(text).into_owned()),
            Err(_) => out.rejected += 1,
        }
    }
    out
}

/// `AUTH_FAILED` variants (doc §9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailed {
    /// `AUTH_FAILED` or `AUTH_FAILED,<reason>` (reason may be empty).
    Plain {
        /// The reason text, if any.
        reason: Option<String>,
    },
    /// `AUTH_FAILED,SESSION:<msg>`: drop the auth-token and reconnect.
    Session {
        /// The message.
        message: String,
    },
    /// `AUTH_FAILED,TEMP[flags]:<msg>`: temporary, retry later.
    Temp {
        /// `backoff N` seconds.
        backoff: Option<u32>,
        /// `advance no|addr|remote`.
        advance: Option<TempAdvance>,
        /// The message.
        message: String,
    },
    /// `AUTH_FAILED,CRV1:<challenge>`: challenge/response.
    Crv1 {
        /// The challenge fields as sent.
        challenge: String,
    },
}

/// `advance` flag of `AUTH_FAILED,TEMP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempAdvance {
    /// Retry the same server.
    No,
    /// Next address of the same remote.
    Addr,
    /// Next remote.
    Remote,
}

impl AuthFailed {
    /// A human-readable reason for events and logs.
    pub fn reason(&self) -> String {
        match self {
            AuthFailed::Plain { reason } => reason.clone().unwrap_or_default(),
            AuthFailed::Session { message } | AuthFailed::Temp { message, .. } => message.clone(),
            AuthFailed::Crv1 { challenge } => challenge.clone(),
        }
    }
}

/// `RESTART` / `HALT` argument: `[flags]message` (doc §9.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSignal {
    /// Flag `N`: go to the next server.
    pub next_server: bool,
    /// Flag `P`: keep cached credentials (default is to purge them).
    pub preserve_credentials: bool,
    /// Optional message.
    pub message: Option<String>,
}

/// A control-channel message, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    /// `PUSH_REQUEST` (client → server).
    PushRequest,
    /// `PUSH_REPLY[,options]` (server → client): the raw option list after
    /// the first comma; parse with `push::PushedOptions`.
    PushReply {
        /// Comma-separated options (empty for a bare `PUSH_REPLY`).
        options: String,
    },
    /// `AUTH_FAILED…`.
    AuthFailed(AuthFailed),
    /// `RESTART[,[flags]msg]`.
    Restart(ServerSignal),
    /// `HALT[,[flags]msg]`.
    Halt(ServerSignal),
    /// `EXIT`: the peer is terminating.
    Exit,
    /// `INFO_PRE,<extra>`.
    InfoPre(String),
    /// `INFO,<extra>`.
    Info(String),
    /// `AUTH_PENDING[,timeout N]`.
    AuthPending {
        /// Seconds the client should wait.
        timeout: Option<u32>,
    },
    /// `CR_RESPONSE,<base64>` (client → server).
    CrResponse(String),
    /// Anything else; 2.6 logs and ignores it.
    Unknown(String),
}

fn strip_prefix_arg<'a>(msg: &'a str, prefix: &str) -> Option<Option<&'a str>> {
    let rest = msg.strip_prefix(prefix)?;
    Some(
        rest.strip_prefix(',')
            .or(if rest.is_empty() { None } else { Some(rest) }),
    )
}

fn parse_signal(arg: Option<&str>) -> ServerSignal {
    let mut s = ServerSignal::default();
    let Some(mut text) = arg else {
        return s;
    };
    if let Some(rest) = text.strip_prefix('[')
        && let Some((flags, msg)) = rest.split_once(']')
    {
        s.next_server = flags.contains('N');
        s.preserve_credentials = flags.contains('P');
        text = msg;
    }
    s.message = (!text.is_empty()).then(|| text.to_string());
    s
}

fn parse_auth_failed(arg: Option<&str>) -> AuthFailed {
    let Some(arg) = arg else {
        return AuthFailed::Plain { reason: None };
    };
    if let Some(m) = arg.strip_prefix("SESSION:") {
        return AuthFailed::Session {
            message: m.to_string(),
        };
    }
    if let Some(c) = arg.strip_prefix("CRV1:") {
        return AuthFailed::Crv1 {
            challenge: c.to_string(),
        };
    }
    if let Some(rest) = arg.strip_prefix("TEMP") {
        let (flags, message) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((flags, tail)) => (flags, tail),
            None => ("", rest),
        };
        if message.is_empty() || message.starts_with(':') {
            let mut backoff = None;
            let mut advance = None;
            for f in flags.split(',').map(str::trim) {
                match f.split_once(' ') {
                    Some(("backoff", n)) => backoff = n.trim().parse().ok(),
                    Some(("advance", "no")) => advance = Some(TempAdvance::No),
                    Some(("advance", "addr")) => advance = Some(TempAdvance::Addr),
                    Some(("advance", "remote")) => advance = Some(TempAdvance::Remote),
                    _ => {}
                }
            }
            return AuthFailed::Temp {
                backoff,
                advance,
                message: message.strip_prefix(':').unwrap_or(message).to_string(),
            };
        }
    }
    AuthFailed::Plain {
        reason: Some(arg.to_string()),
    }
}

impl ControlMessage {
    /// Recognise one message (as returned by [`split_record`]).
    pub fn parse(msg: &str) -> Self {
        if let Some(arg) = strip_prefix_arg(msg, "AUTH_FAILED") {
            return ControlMessage::AuthFailed(parse_auth_failed(arg));
        }
        if msg.starts_with("PUSH_REQUEST") {
            return ControlMessage::PushRequest;
        }
        if let Some(arg) = strip_prefix_arg(msg, "PUSH_REPLY") {
            return ControlMessage::PushReply {
                options: arg.unwrap_or_default().to_string(),
            };
        }
        if let Some(arg) = strip_prefix_arg(msg, "RESTART") {
            return ControlMessage::Restart(parse_signal(arg));
        }
        if let Some(arg) = strip_prefix_arg(msg, "HALT") {
            return ControlMessage::Halt(parse_signal(arg));
        }
        if let Some(arg) = strip_prefix_arg(msg, "INFO_PRE") {
            return ControlMessage::InfoPre(arg.unwrap_or_default().to_string());
        }
        if let Some(arg) = strip_prefix_arg(msg, "INFO") {
            return ControlMessage::Info(arg.unwrap_or_default().to_string());
        }
        if let Some(arg) = strip_prefix_arg(msg, "CR_RESPONSE") {
            return ControlMessage::CrResponse(arg.unwrap_or_default().to_string());
        }
        if let Some(arg) = strip_prefix_arg(msg, "AUTH_PENDING") {
            let timeout = arg.and_then(|a| {
                a.split(',')
                    .find_map(|kw| kw.trim().strip_prefix("timeout "))
                    .and_then(|n| n.trim().parse().ok())
            });
            return ControlMessage::AuthPending { timeout };
        }
        if msg.starts_with("EXIT") {
            return ControlMessage::Exit;
        }
        ControlMessage::Unknown(msg.to_string())
    }

    /// Frame for sending (text + NUL).
    pub fn encode(&self) -> Result<Vec<u8>, ControlMsgError> {
        encode(&self.to_string())
    }
}

fn write_signal(f: &mut fmt::Formatter<'_>, name: &str, s: &ServerSignal) -> fmt::Result {
    f.write_str(name)?;
    if !s.next_server && !s.preserve_credentials && s.message.is_none() {
        return Ok(());
    }
    f.write_str(",")?;
    if s.next_server || s.preserve_credentials {
        f.write_str("[")?;
        if s.next_server {
            f.write_str("N")?;
        }
        if s.preserve_credentials {
            f.write_str("P")?;
        }
        f.write_str("]")?;
    }
    f.write_str(s.message.as_deref().unwrap_or_default())
}

impl fmt::Display for ControlMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlMessage::PushRequest => f.write_str("PUSH_REQUEST"),
            ControlMessage::PushReply { options } if options.is_empty() => {
                f.write_str("PUSH_REPLY")
            }
            ControlMessage::PushReply { options } => write!(f, "PUSH_REPLY,{options}"),
            ControlMessage::AuthFailed(a) => match a {
                AuthFailed::Plain { reason: None } => f.write_str("AUTH_FAILED"),
                AuthFailed::Plain { reason: Some(r) } => write!(f, "AUTH_FAILED,{r}"),
                AuthFailed::Session { message } => write!(f, "AUTH_FAILED,SESSION:{message}"),
                AuthFailed::Crv1 { challenge } => write!(f, "AUTH_FAILED,CRV1:{challenge}"),
                AuthFailed::Temp {
                    backoff,
                    advance,
                    message,
                } => {
                    f.write_str("AUTH_FAILED,TEMP")?;
                    let mut flags = Vec::new();
                    if let Some(b) = backoff {
                        flags.push(format!("backoff {b}"));
                    }
                    if let Some(a) = advance {
                        flags.push(
                            match a {
                                TempAdvance::No => "advance no",
                                TempAdvance::Addr => "advance addr",
                                TempAdvance::Remote => "advance remote",
                            }
                            .to_string(),
                        );
                    }
                    if !flags.is_empty() {
                        write!(f, "[{}]", flags.join(","))?;
                    }
                    write!(f, ":{message}")
                }
            },
            ControlMessage::Restart(s) => write_signal(f, "RESTART", s),
            ControlMessage::Halt(s) => write_signal(f, "HALT", s),
            ControlMessage::Exit => f.write_str("EXIT"),
            ControlMessage::InfoPre(x) => write!(f, "INFO_PRE,{x}"),
            ControlMessage::Info(x) => write!(f, "INFO,{x}"),
            ControlMessage::AuthPending { timeout: None } => f.write_str("AUTH_PENDING"),
            ControlMessage::AuthPending { timeout: Some(t) } => {
                write!(f, "AUTH_PENDING,timeout {t}")
            }
            ControlMessage::CrResponse(x) => write!(f, "CR_RESPONSE,{x}"),
            ControlMessage::Unknown(x) => f.write_str(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn encode_appends_one_nul_and_refuses_bad_text() {
        assert_eq!(encode("PUSH_REQUEST").unwrap(), b"PUSH_REQUEST\0");
        assert_eq!(
            encode("a\nb"),
            Err(ControlMsgError::NonPrintable { offset: 1 })
        );
        assert_eq!(
            encode("a\0"),
            Err(ControlMsgError::NonPrintable { offset: 1 })
        );
        assert_eq!(
            encode(&"x".repeat(1024)),
            Err(ControlMsgError::TooLong { len: 1025 })
        );
        assert!(encode(&"x".repeat(1023)).is_ok());
    }

    #[test]
    fn split_handles_several_messages_crlf_and_an_unterminated_tail() {
        let r = split_record(b"PUSH_REQUEST\0INFO,hello\r\n\0\0PUSH_REP");
        assert_eq!(
            r.messages,
            vec!["PUSH_REQUEST".to_string(), "INFO,hello".to_string()]
        );
        assert_eq!(r.discarded_tail, 8);
        assert_eq!(r.rejected, 0);
        let r = split_record(b"EXIT\0");
        assert_eq!(r.messages, vec!["EXIT".to_string()]);
        assert_eq!(r.discarded_tail, 0);
    }

    #[test]
    fn split_rejects_non_printable_strings() {
        let r = split_record(b"INFO,a\x01b\0HALT\0");
        assert_eq!(r.messages, vec!["HALT".to_string()]);
        assert_eq!(r.rejected, 1);
        let r = split_record(b"INFO,\xc3\xa9\0");
        assert_eq!(r.rejected, 1);
    }

    #[test]
    fn auth_failed_variants() {
        use AuthFailed::*;
        let cases = [
            ("AUTH_FAILED", Plain { reason: None }),
            (
                "AUTH_FAILED,bad password",
                Plain {
                    reason: Some("bad password".into()),
                },
            ),
            (
                "AUTH_FAILED,SESSION:token expired",
                Session {
                    message: "token expired".into(),
                },
            ),
            (
                "AUTH_FAILED,TEMP[backoff 30,advance remote]:try later",
                Temp {
                    backoff: Some(30),
                    advance: Some(TempAdvance::Remote),
                    message: "try later".into(),
                },
            ),
            (
                "AUTH_FAILED,TEMP:busy",
                Temp {
                    backoff: None,
                    advance: None,
                    message: "busy".into(),
                },
            ),
            (
                "AUTH_FAILED,CRV1:R,E:Om01u7Fh4LrGBS7uh0SWmzwabUiGiW6l:Y3Ix:Please enter token",
                Crv1 {
                    challenge: "R,E:Om01u7Fh4LrGBS7uh0SWmzwabUiGiW6l:Y3Ix:Please enter token"
                        .into(),
                },
            ),
            // "TEMPORARY" is not the TEMP keyword.
            (
                "AUTH_FAILED,TEMPORARY failure",
                Plain {
                    reason: Some("TEMPORARY failure".into()),
                },
            ),
        ];
        for (text, want) in cases {
            let m = ControlMessage::parse(text);
            assert_eq!(m, ControlMessage::AuthFailed(want), "{text}");
            assert_eq!(m.to_string(), text, "round trip of {text}");
        }
    }

    #[test]
    fn restart_and_halt_flags() {
        let m = ControlMessage::parse("RESTART,[NP]server shutting down");
        assert_eq!(
            m,
            ControlMessage::Restart(ServerSignal {
                next_server: true,
                preserve_credentials: true,
                message: Some("server shutting down".into())
            })
        );
        assert_eq!(m.to_string(), "RESTART,[NP]server shutting down");
        assert_eq!(
            ControlMessage::parse("RESTART"),
            ControlMessage::Restart(ServerSignal::default())
        );
        assert_eq!(
            ControlMessage::parse("RESTART,[N]"),
            ControlMessage::Restart(ServerSignal {
                next_server: true,
                ..ServerSignal::default()
            })
        );
        assert_eq!(
            ControlMessage::parse("HALT,bye"),
            ControlMessage::Halt(ServerSignal {
                message: Some("bye".into()),
                ..ServerSignal::default()
            })
        );
        assert_eq!(ControlMessage::parse("HALT").to_string(), "HALT");
    }

    #[test]
    fn other_messages_are_recognised_by_prefix_in_2_6_order() {
        assert_eq!(
            ControlMessage::parse("PUSH_REQUEST"),
            ControlMessage::PushRequest
        );
        assert_eq!(
            ControlMessage::parse("PUSH_REPLY"),
            ControlMessage::PushReply {
                options: String::new()
            }
        );
        assert_eq!(
            ControlMessage::parse("PUSH_REPLY,ping 10,ping-restart 60"),
            ControlMessage::PushReply {
                options: "ping 10,ping-restart 60".into()
            }
        );
        assert_eq!(ControlMessage::parse("EXIT"), ControlMessage::Exit);
        assert_eq!(
            ControlMessage::parse("INFO_PRE,WEB_AUTH::https://x"),
            ControlMessage::InfoPre("WEB_AUTH::https://x".into())
        );
        assert_eq!(
            ControlMessage::parse("INFO,hi"),
            ControlMessage::Info("hi".into())
        );
        assert_eq!(
            ControlMessage::parse("AUTH_PENDING"),
            ControlMessage::AuthPending { timeout: None }
        );
        assert_eq!(
            ControlMessage::parse("AUTH_PENDING,timeout 300"),
            ControlMessage::AuthPending { timeout: Some(300) }
        );
        assert_eq!(
            ControlMessage::parse("CR_RESPONSE,abc="),
            ControlMessage::CrResponse("abc=".into())
        );
        assert_eq!(
            ControlMessage::parse("PUSH_UPDATE,x"),
            ControlMessage::Unknown("PUSH_UPDATE,x".into())
        );
    }

    proptest! {
        #[test]
        fn split_never_panics_and_yields_only_printable(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = split_record(&bytes);
            for m in &r.messages {
                prop_assert!(m.bytes().all(|b| (0x20..0x7f).contains(&b)));
                let _ = ControlMessage::parse(m);
            }
        }

        #[test]
        fn printable_messages_survive_framing(text in "[ -~]{1,200}") {
            let framed = encode(&text).unwrap();
            let r = split_record(&framed);
            let want = text.trim_end_matches(['\r', '\n']);
            prop_assert_eq!(r.messages, vec![want.to_string()]);
        }
    }
}
