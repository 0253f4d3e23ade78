//! The two proxy framings a TCP client may need before the OpenVPN stream
//! starts: HTTP CONNECT (`http-proxy`, basic authentication) and SOCKS5
//! (`socks-proxy`, no authentication or username/password, RFC 1928 and
//! RFC 1929), as OpenVPN's `proxy.c` and `socks.c` speak them.
//!
//! The request builders and reply parsers are pure functions over bytes
//! (bounded, never panicking on what a proxy sends); [`http_connect`] and
//! [`socks5_connect`] drive them over a connected stream, reading no byte
//! past the proxy's reply so that what follows belongs to the tunnel.

use std::{io, path::Path};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::config::{HttpProxy, HttpProxyAuth, SocksProxy, Source};

/// The longest HTTP reply head we read (status line and headers).
pub const MAX_HTTP_REPLY: usize = 8192;

/// Why a proxy did not give us the tunnel.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Reading or writing the proxy connection failed.
    #[error("proxy connection: {0}")]
    Io(#[from] io::Error),
    /// The credentials file could not be read or is malformed.
    #[error("proxy credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP proxy answered something other than 200.
    #[error("HTTP proxy returned: {0}")]
    HttpStatus(String),
    /// The HTTP proxy's reply is not HTTP or too long.
    #[error("HTTP proxy reply is malformed: {0}")]
    HttpMalformed(&'static str),
    /// The SOCKS proxy refused or answered out of protocol.
    #[error("SOCKS proxy: {0}")]
    Socks(String),
}

/// A username and password read from an authfile.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The first line.
    pub user: String,
    /// The second line.
    pub pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Reads an authfile: a username line and a password line.
pub fn read_credentials(path: &Path) -> Result<Credentials, ProxyError> {
    let err = |reason: String| ProxyError::Credentials {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse_credentials(&text).map_err(err)
}

/// Credentials from `http-proxy-user-pass` (a file or an inline block).
pub fn credentials_from(src: &Source) -> Result<Credentials, ProxyError> {
    match src {
        Source::File(p) => read_credentials(p),
        Source::Inline(text) => parse_credentials(text).map_err(|reason| ProxyError::Credentials {
            path: "<http-proxy-user-pass>".into(),
            reason,
        }),
    }
}

fn parse_credentials(text: &str) -> Result<Credentials, String> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let user = lines.next().unwrap_or_default().to_string();
    let pass = lines.next().unwrap_or_default().to_string();
    if user.is_empty() {
        return Err("the first line must be the username".into());
    }
    Ok(Credentials { user, pass })
}

/// The CONNECT request OpenVPN sends: request line, custom headers, `Host`
/// (unless a custom header gave it), `User-Agent`, basic authorization,
/// blank line.
pub fn http_connect_request(
    p: &HttpProxy,
    host: &str,
    port: u16,
    creds: Option<&Credentials>,
) -> String {
    let mut r = format!("CONNECT {host}:{port} HTTP/{}\r\n", p.version);
    let mut host_sent = false;
    for (name, content) in &p.headers {
        match content {
            Some(c) => {
                host_sent |= name.eq_ignore_ascii_case("Host");
                r.push_str(&format!("{name}: {c}\r\n"));
            }
            None => {
                host_sent |= name
                    .get(..5)
                    .is_some_and(|h| h.eq_ignore_ascii_case("Host:"));
                r.push_str(&format!("{name}\r\n"));
            }
        }
    }
    if !host_sent {
        r.push_str(&format!("Host: {host}\r\n"));
    }
    if let Some(a) = &p.agent {
        r.push_str(&format!("User-Agent: {a}\r\n"));
    }
    if let Some(c) = creds {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.pass));
        r.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// Checks a complete reply head (up to and including the blank line): a
/// `HTTP/1.x 200` status line is success.
pub fn parse_http_reply(head: &[u8]) -> Result<(), ProxyError> {
    let text = std::str::from_utf8(head).map_err(|_| ProxyError::HttpMalformed("not text"))?;
    let status = text.lines().next().unwrap_or_default().trim_end();
    let mut parts = status.split_ascii_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(ProxyError::HttpMalformed("no status line"));
    };
    if !version.starts_with("HTTP/") {
        return Err(ProxyError::HttpMalformed("no HTTP status line"));
    }
    if code == "200" {
        Ok(())
    } else {
        Err(ProxyError::HttpStatus(status.to_string()))
    }
}

/// Asks the HTTP proxy on `s` for a tunnel to `host:port`.
pub async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    p: &HttpProxy,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let creds = match (&p.auth, &p.user_pass) {
        (HttpProxyAuth::None | HttpProxyAuth::Auto { nct: true }, _)
        | (HttpProxyAuth::Auto { nct: false }, None) => None,
        (HttpProxyAuth::Basic(_) | HttpProxyAuth::Auto { nct: false }, Some(src)) => {
            Some(credentials_from(src)?)
        }
        (HttpProxyAuth::Basic(path), None) => Some(read_credentials(path)?),
    };
    s.write_all(http_connect_request(p, host, port, creds.as_ref()).as_bytes())
        .await?;
    s.flush().await?;
    // Byte by byte: the stream's next bytes after the blank line are the
    // server's, not ours to take.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_HTTP_REPLY {
            return Err(ProxyError::HttpMalformed("reply head too long"));
        }
        head.push(s.read_u8().await?);
    }
    parse_http_reply(&head)
}

/// The SOCKS5 greeting: no authentication, plus username/password when we
/// have credentials.
pub fn socks5_greeting(with_password: bool) -> Vec<u8> {
    if with_password {
        vec![5, 2, 0, 2]
    } else {
        vec![5, 1, 0]
    }
}

/// RFC 1929 username/password request; `None` if a field exceeds 255
/// bytes.
pub fn socks5_password_request(c: &Credentials) -> Option<Vec<u8>> {
    let u = u8::try_from(c.user.len()).ok()?;
    let p = u8::try_from(c.pass.len()).ok()?;
    let mut v = vec![1, u];
    v.extend_from_slice(c.user.as_bytes());
    v.push(p);
    v.extend_from_slice(c.pass.as_bytes());
    Some(v)
}

/// CONNECT to `host:port`, the host sent as a domain name unless it is an
/// address literal; `None` for a name over 255 bytes.
pub fn socks5_connect_request(host: &str, port: u16) -> Option<Vec<u8>> {
    let mut v = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            v.push(1);
            v.extend_from_slice(&a.octets());
        }
        Ok(std::net::IpAddr::V6(a)) => {
            v.push(4);
            v.extend_from_slice(&a.octets());
        }
        Err(_) => {
            v.push(3);
            v.push(u8::try_from(host.len()).ok()?);
            v.extend_from_slice(host.as_bytes());
        }
    }
    v.extend_from_slice(&port.to_be_bytes());
    Some(v)
}

/// How many more bytes a CONNECT reply whose first 5 bytes are `head`
/// has (the bound address and port), or why it failed.
pub fn socks5_reply_rest(head: [u8; 5]) -> Result<usize, ProxyError> {
    let [ver, rep, _, atyp, first] = head;
    if ver != 5 {
        return Err(ProxyError::Socks(format!("reply version {ver}, not 5")));
    }
    if rep != 0 {
        return Err(ProxyError::Socks(match rep {
            1 => "general SOCKS server failure".into(),
            2 => "connection not allowed by ruleset".into(),
            3 => "network unreachable".into(),
            4 => "host unreachable".into(),
            5 => "connection refused".into(),
            6 => "TTL expired".into(),
            7 => "command not supported".into(),
            8 => "address type not supported".into(),
            n => format!("reply code {n}"),
        }));
    }
    // The first address byte is already in `head`.
    match atyp {
        1 => Ok(4 - 1 + 2),
        4 => Ok(16 - 1 + 2),
        3 => Ok(usize::from(first) + 2),
        t => Err(ProxyError::Socks(format!("reply address type {t}"))),
    }
}

/// Asks the SOCKS5 proxy on `s` for a TCP connection to `host:port`.
pub async fn socks5_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    p: &SocksProxy,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let creds = p.authfile.as_deref().map(read_credentials).transpose()?;
    s.write_all(&socks5_greeting(creds.is_some())).await?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await?;
    match (m, &creds) {
        ([5, 0], _) => {}
        ([5, 2], Some(c)) => {
            let req = socks5_password_request(c).ok_or_else(|| {
                ProxyError::Socks("username or password longer than 255 bytes".into())
            })?;
            s.write_all(&req).await?;
            let mut r = [0u8; 2];
            s.read_exact(&mut r).await?;
            if r[1] != 0 {
                return Err(ProxyError::Socks("username/password refused".into()));
            }
        }
        ([5, 0xff], _) => {
            return Err(ProxyError::Socks(
                "no acceptable authentication method".into(),
            ));
        }
        (m, _) => {
            return Err(ProxyError::Socks(format!(
                "unexpected method reply {:02x} {:02x}",
                m[0], m[1]
            )));
        }
    }
    let req = socks5_connect_request(host, port)
        .ok_or_else(|| ProxyError::Socks("host name longer than 255 bytes".into()))?;
    s.write_all(&req).await?;
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await?;
    let mut rest = vec![0u8; socks5_reply_rest(head)?];
    s.read_exact(&mut rest).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> HttpProxy {
        HttpProxy {
            host: "proxy".into(),
            port: 8080,
            auth: HttpProxyAuth::None,
            version: "1.0".into(),
            agent: None,
            headers: Vec::new(),
            user_pass: None,
        }
    }

    #[test]
    fn connect_request_is_what_openvpn_sends() {
        let c = Credentials {
            user: "Aladdin".into(),
            pass: "open sesame".into(),
        };
        let mut p = proxy();
        p.agent = Some("OpenVPN".into());
        assert_eq!(
            http_connect_request(&p, "vpn.example.org", 443, Some(&c)),
            "CONNECT vpn.example.org:443 HTTP/1.0\r\nHost: vpn.example.org\r\nUser-Agent: OpenVPN\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    #[test]
    fn a_custom_host_header_replaces_ours() {
        let mut p = proxy();
        p.version = "1.1".into();
        p.headers = vec![
            ("Host".into(), Some("front.example".into())),
            ("X-A: b".into(), None),
        ];
        let r = http_connect_request(&p, "10.0.0.1", 1194, None);
        assert_eq!(
            r,
            "CONNECT 10.0.0.1:1194 HTTP/1.1\r\nHost: front.example\r\nX-A: b\r\n\r\n"
        );
    }

    #[test]
    fn http_replies_are_judged_by_their_status() {
        assert!(parse_http_reply(b"HTTP/1.0 200 Connection established\r\n\r\n").is_ok());
        assert!(matches!(
            parse_http_reply(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
            Err(ProxyError::HttpStatus(s)) if s.contains("407")
        ));
        assert!(parse_http_reply(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_http_reply(b"\xff\xfe\r\n\r\n").is_err());
    }

    #[test]
    fn socks5_messages() {
        assert_eq!(socks5_greeting(false), [5, 1, 0]);
        assert_eq!(socks5_greeting(true), [5, 2, 0, 2]);
        let c = Credentials {
            user: "u".into(),
            pass: "pw".into(),
        };
        assert_eq!(
            socks5_password_request(&c).unwrap(),
            [1, 1, b'u', 2, b'p', b'w']
        );
        assert_eq!(
            socks5_connect_request("192.0.2.1", 1194).unwrap(),
            [5, 1, 0, 1, 192, 0, 2, 1, 0x04, 0xaa]
        );
        assert_eq!(
            socks5_connect_request("ab", 80).unwrap(),
            [5, 1, 0, 3, 2, b'a', b'b', 0, 80]
        );
        assert!(socks5_connect_request(&"a".repeat(256), 1).is_none());
        assert_eq!(socks5_reply_rest([5, 0, 0, 1, 10]).unwrap(), 5);
        assert_eq!(socks5_reply_rest([5, 0, 0, 4, 0]).unwrap(), 17);
        assert_eq!(socks5_reply_rest([5, 0, 0, 3, 7]).unwrap(), 9);
        assert!(socks5_reply_rest([5, 5, 0, 1, 0]).is_err());
        assert!(socks5_reply_rest([4, 0, 0, 1, 0]).is_err());
        assert!(socks5_reply_rest([5, 0, 0, 9, 0]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_http_reply(&bytes);
            let mut h = [0u8; 5];
            for (d, s) in h.iter_mut().zip(&bytes) {
                *d = *s;
            }
            let _ = socks5_reply_rest(h);
        }
    }

    #[tokio::test]
    async fn socks5_with_password_against_a_scripted_proxy() {
        let dir = std::env::temp_dir().join(format!("socks-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let auth = dir.join("auth");
        std::fs::write(&auth, "alice\nsecret\n").unwrap();
        let p = SocksProxy {
            host: "proxy".into(),
            port: 1080,
            authfile: Some(auth),
        };
        let (mut ours, mut theirs) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move {
            let mut g = [0u8; 4];
            theirs.read_exact(&mut g).await.unwrap();
            assert_eq!(g, [5, 2, 0, 2]);
            theirs.write_all(&[5, 2]).await.unwrap();
            let mut a = [0u8; 14];
            theirs.read_exact(&mut a).await.unwrap();
            assert_eq!(&a, b"\x01\x05alice\x06secret");
            theirs.write_all(&[1, 0]).await.unwrap();
            let mut c = [0u8; 10];
            theirs.read_exact(&mut c).await.unwrap();
            assert_eq!(c, [5, 1, 0, 1, 10, 0, 0, 1, 0x04, 0xaa]);
            // Reply, then the first tunnel bytes right behind it.
            theirs
                .write_all(&[5, 0, 0, 1, 10, 0, 0, 9, 0x30, 0x39, 0xAB])
                .await
                .unwrap();
        });
        socks5_connect(&mut ours, &p, "10.0.0.1", 1194)
            .await
            .unwrap();
        // The byte after the reply is left for the tunnel.
        assert_eq!(ours.read_u8().await.unwrap(), 0xAB);
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
