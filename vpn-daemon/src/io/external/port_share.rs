//! `port-share HOST PORT [DIR]`: a TCP server hands connections that do not
//! start like an OpenVPN client to another service (typically HTTPS on the
//! same port) and relays them, as 2.6's ps.c does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use crate::config::host::PortShare;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::proto::wire::opcode::Opcode;

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// An OpenVPN client's first packet (or too little to tell yet).
    OpenVpn,
    /// Something else: relay it.
    Foreign,
}

/// 2.6's `is_openvpn_protocol` on the bytes seen so far: a 16-bit length
/// then a client hard reset (V2 of 14 to 255 bytes, or V3 of 336 to 1278,
/// which carries a tls-crypt-v2 wrapped key).
pub fn sniff(first: &[u8]) -> Sniff {
    let ok = match *first {
        [h, l, op, ..] => {
            let len = u16::from_be_bytes([h, l]);
            let v3 = Opcode::HardResetClientV3 as u8;
            let v2 = Opcode::HardResetClientV2 as u8;
            if op >> 3 == v3 {
                (336..1024 + 255).contains(&len)
            } else {
                (14..=255).contains(&len) && op >> 3 == v2
            }
        }
        [h, l] => (14..=255).contains(&u16::from_be_bytes([h, l])),
        _ => true,
    };
    if ok { Sniff::OpenVpn } else { Sniff::Foreign }
}

/// Looks at a new connection's first bytes without consuming them (waiting
/// at most `patience` for three of them).
pub async fn classify(stream: &TcpStream, patience: Duration) -> Sniff {
    let mut buf = [0u8; 3];
    let end = tokio::time::Instant::now() + patience;
    loop {
        let n = match tokio::time::timeout_at(end, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            // Closed, failed or silent: let the OpenVPN side deal with it.
            _ => return Sniff::OpenVpn,
        };
        if n == 0 {
            return Sniff::OpenVpn;
        }
        if n >= 3 || sniff(&buf[..n]) == Sniff::Foreign {
            return sniff(&buf[..n]);
        }
        // peek returns at once while bytes are pending: wait a little.
        tokio::time::sleep(Duration::from_millis(5)).await;
        if tokio::time::Instant::now() >= end {
            return sniff(&buf[..n]);
        }
    }
}

/// Relays a foreign connection to the shared service until either side
/// closes; the journal file (if any) lives as long as the relay.
pub async fn relay(mut client: TcpStream, from: SocketAddr, to: &PortShare) {
    let mut server = match TcpStream::connect((to.host.as_str(), to.port)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(client = %from, host = %to.host, port = to.port, error = %e, "PORT SHARE PROXY: connect to the shared service failed");
            let _ = client.shutdown().await;
            return;
        }
    };
    let journal = to
        .journal
        .as_deref()
        .and_then(|d| journal_add(d, &server, from));
    tracing::info!(client = %from, "PORT SHARE PROXY: new connection");
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(client = %from, error = %e, "PORT SHARE PROXY: relay ended");
    }
    if let Some(j) = journal {
        let _ = std::fs::remove_file(j);
    }
}

/// `DIR/<relay's local address>` holding `<client address>`, mode 0640.
fn journal_add(dir: &Path, server: &TcpStream, from: SocketAddr) -> Option<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let local = server.local_addr().ok()?;
    let path = dir.join(local.to_string());
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o640)
        .open(&path);
    match f.and_then(|mut f| f.write_all(from.to_string().as_bytes())) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "PORT SHARE: unable to write journal file");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openvpn_first_packets_are_recognised_as_2_6_does() {
        // A V2 reset of 14 bytes (opcode 7), and a V3 one of 500 (opcode 10).
        assert_eq!(sniff(&[0, 14, 7 << 3]), Sniff::OpenVpn);
        assert_eq!(sniff(&[0x01, 0xF4, 10 << 3]), Sniff::OpenVpn);
        // HTTP and TLS client hellos are foreign.
        assert_eq!(sniff(b"GET / HTTP/1.1"), Sniff::Foreign);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x02]), Sniff::Foreign);
        // A V3 reset too short to hold a wrapped key, or a V2 too long.
        assert_eq!(sniff(&[0x00, 0xF0, 10 << 3]), Sniff::Foreign);
        assert_eq!(sniff(&[0x01, 0x00, 7 << 3]), Sniff::Foreign);
        // Too little to tell: give it to OpenVPN, as 2.6 does.
        assert_eq!(sniff(&[0]), Sniff::OpenVpn);
        assert_eq!(sniff(&[0, 20]), Sniff::OpenVpn);
        assert_eq!(sniff(&[0x47, 0x45]), Sniff::Foreign);
    }
}
