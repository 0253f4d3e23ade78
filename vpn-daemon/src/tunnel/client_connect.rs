//! How the client reaches the server: the `remote` entry's host resolved
//! as `resolv-retry` says (signals still heard), and the TCP connection,
//! direct or through the entry's HTTP / SOCKS5 proxy.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::client::walk::{Ending, randomize_hostname};
use crate::config::{self as cfgt, Config};
use crate::error::DaemonError;
use crate::host::process::Signal;
use crate::host::resolve::resolve_local;
use crate::io::external::proxy;
use crate::io::external::tcp::{self, TcpOptions};
use crate::tunnel::Outcome;
use crate::tunnel::input::Inputs;

/// How one connection attempt ended.
pub(crate) enum End {
    /// Try again; `connected` says whether it got that far, `how` what the
    /// walk needs to pick the next entry.
    Restart { connected: bool, how: Ending },
    /// Leave the loop with this outcome.
    Stop(Outcome),
}

pub(super) fn on_idle_signal(s: Signal) -> End {
    match s {
        Signal::Term => End::Stop(Outcome::Exit(0)),
        Signal::Hup => End::Stop(Outcome::Reload),
        Signal::Usr1 | Signal::Usr2 => End::Restart {
            connected: false,
            how: Ending {
                hard_signal: true,
                ..Ending::default()
            },
        },
    }
}

/// The TCP connection to the server: direct, or through the entry's HTTP
/// or SOCKS5 proxy at `addr`.
pub(super) async fn connect_tcp(
    conn: &cfgt::Connection,
    addr: SocketAddr,
    opts: &TcpOptions,
) -> Result<tcp::TcpLink, DaemonError> {
    let direct = conn.http_proxy.is_none() && conn.socks_proxy.is_none();
    // `local`/`lport` bind the TCP socket too (OpenVPN binds whenever one
    // was given); otherwise the kernel picks.
    let bind = match (&conn.local, conn.bind_port) {
        (None, None) => None,
        (local, port) => {
            let ip = match local {
                Some(l) => resolve_local(l, addr).await?,
                None if addr.is_ipv4() => IpAddr::from([0, 0, 0, 0]),
                None => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            };
            Some(SocketAddr::new(ip, port.unwrap_or(0)))
        }
    };
    if direct && bind.is_none() {
        return Ok(tcp::connect(addr, opts).await?);
    }
    let what = if direct { "" } else { "proxy " };
    let mut s = match bind {
        None => tokio::net::TcpStream::connect(addr).await,
        Some(b) => {
            let sock = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(|e| DaemonError::io("TCP socket", e))?;
            sock.set_reuseaddr(true)
                .map_err(|e| DaemonError::io("SO_REUSEADDR", e))?;
            sock.bind(b)
                .map_err(|e| DaemonError::io(format!("TCP bind {b}"), e))?;
            sock.connect(addr).await
        }
    }
    .map_err(|e| DaemonError::io(format!("TCP connect to {what}{addr}"), e))?;
    if direct {
        return tcp::TcpLink::from_stream(s, opts).map_err(|e| DaemonError::io("TCP set-up", e));
    }
    let (host, port) = (conn.remote.host.as_str(), conn.remote.port);
    let r = match (&conn.http_proxy, &conn.socks_proxy) {
        (Some(h), _) => proxy::http_connect(&mut s, h, host, port).await,
        (None, Some(p)) => proxy::socks5_connect(&mut s, p, host, port).await,
        (None, None) => Ok(()),
    };
    r.map_err(|e| {
        DaemonError::io(
            format!("proxy {addr} to {host}:{port}"),
            io::Error::other(e),
        )
    })?;
    tracing::info!(proxy = %addr, "proxy connection to {host}:{port} established");
    tcp::TcpLink::from_stream(s, opts).map_err(|e| DaemonError::io("TCP set-up", e))
}

/// How resolving an entry's host ended.
pub(super) enum Resolved {
    /// Its addresses, in the resolver's order, of the wanted family.
    Addrs(Vec<SocketAddr>),
    /// It failed: this attempt fails (`resolv-retry infinite`).
    Failed,
    /// It failed for `resolv-retry N` seconds: exit.
    GiveUp,
    /// A signal ended the wait.
    Stop(Outcome),
}

/// How long `resolv-retry N` waits between tries (OpenVPN's).
const RESOLVE_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Resolves the entry's host as OpenVPN's `openvpn_getaddrinfo` does:
/// `resolv-retry infinite` tries once per attempt (the walk goes on),
/// `resolv-retry N` tries up to ceil(N/5) times 5 s apart, then gives up.
pub(super) async fn resolve_entry(
    cfg: &Config,
    conn: &cfgt::Connection,
    signals: &mut Inputs,
) -> Resolved {
    let remote = &conn.remote;
    // Through a proxy, the proxy's name is the one to resolve; the server's
    // goes to the proxy as written.
    let (name, port) = match (&conn.http_proxy, &conn.socks_proxy) {
        (Some(h), _) => (h.host.as_str(), h.port),
        (None, Some(p)) => (p.host.as_str(), p.port),
        (None, None) => (remote.host.as_str(), remote.port),
    };
    let literal = name.parse::<IpAddr>().is_ok();
    let tries = match cfg.resolv_retry {
        cfgt::ResolvRetry::Infinite => 1,
        cfgt::ResolvRetry::Seconds(n) => n.div_ceil(5).max(1),
    };
    if cfg.remote_random_hostname && literal {
        tracing::warn!(
            "WARNING: ignoring --remote-random-hostname because the hostname is an IP address"
        );
    }
    for i in 0..tries {
        let host = if cfg.remote_random_hostname && !literal {
            let mut b = [0u8; 6];
            let _ = openssl::rand::rand_bytes(&mut b);
            randomize_hostname(name, b)
        } else {
            name.to_string()
        };
        let r = tokio::select! {
            r = tokio::net::lookup_host((host.as_str(), port)) => r,
            s = signals.signal() => match s {
                Signal::Term => return Resolved::Stop(Outcome::Exit(0)),
                Signal::Hup => return Resolved::Stop(Outcome::Reload),
                // OpenVPN ignores SIGUSR1 while resolving.
                Signal::Usr1 | Signal::Usr2 => continue,
            },
        };
        match r {
            Ok(addrs) => {
                let family = remote.proto.family;
                let v: Vec<SocketAddr> = addrs
                    .filter(|a| match family {
                        cfgt::AddrFamily::Any => true,
                        cfgt::AddrFamily::V4 => a.is_ipv4(),
                        cfgt::AddrFamily::V6 => a.is_ipv6(),
                    })
                    .collect();
                tracing::debug!(host = %host, addrs = ?v, "resolved");
                return Resolved::Addrs(v);
            }
            Err(e) => {
                tracing::warn!(
                    "RESOLVE: Cannot resolve host address: {host}:{} ({e})",
                    remote.port
                );
            }
        }
        if i + 1 < tries {
            tokio::select! {
                _ = tokio::time::sleep(RESOLVE_RETRY_WAIT) => {}
                s = signals.signal() => match s {
                    Signal::Term => return Resolved::Stop(Outcome::Exit(0)),
                    Signal::Hup => return Resolved::Stop(Outcome::Reload),
                    Signal::Usr1 | Signal::Usr2 => {}
                },
            }
        }
    }
    match cfg.resolv_retry {
        cfgt::ResolvRetry::Infinite => Resolved::Failed,
        cfgt::ResolvRetry::Seconds(n) => {
            tracing::error!(
                "resolv-retry {n}: could not resolve {}, exiting",
                remote.host
            );
            Resolved::GiveUp
        }
    }
}
