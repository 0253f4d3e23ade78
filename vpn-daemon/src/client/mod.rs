//! The client side (`client` / `pull` / `tls-client`): one peer, the
//! server, reached through the `remote` list.

pub mod dhcp_router;
pub mod dns;
pub mod p2p;
pub mod proxy;
pub mod static_key;
pub mod walk;
