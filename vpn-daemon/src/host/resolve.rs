//! Name resolution of the host side the loops share: `local HOST` of a socket, a static-key `remote`.

use std::net::{IpAddr, SocketAddr};

use crate::config as cfgt;
use crate::error::DaemonError;

/// `local HOST`: an address, or a name resolved to one of the family of
/// the server's address.
pub async fn resolve_local(local: &str, peer: SocketAddr) -> Result<IpAddr, DaemonError> {
    if let Ok(ip) = local.parse::<IpAddr>() {
        return Ok(ip);
    }
    let err = |detail: String| DaemonError::Resolve {
        host: local.to_string(),
        port: 0,
        detail,
    };
    tokio::net::lookup_host((local, 0))
        .await
        .map_err(|e| err(e.to_string()))?
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4() == peer.is_ipv4())
        .ok_or_else(|| err("no address of the server's family".into()))
}

/// A static-key `remote`: its first address of the wanted family, IPv4
/// before IPv6.
pub async fn resolve_remote(remote: &cfgt::Remote) -> Result<SocketAddr, DaemonError> {
    let want_v4 = remote.proto.family != cfgt::AddrFamily::V6;
    let want_v6 = remote.proto.family != cfgt::AddrFamily::V4;
    let err = |detail: String| DaemonError::Resolve {
        host: remote.host.clone(),
        port: remote.port,
        detail,
    };
    tokio::net::lookup_host((remote.host.as_str(), remote.port))
        .await
        .map_err(|e| err(e.to_string()))?
        .filter(|a| (a.is_ipv4() && want_v4) || (a.is_ipv6() && want_v6))
        .min_by_key(|a| a.is_ipv6())
        .ok_or_else(|| err("no address of the wanted family".into()))
}
