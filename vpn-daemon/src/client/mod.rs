//! The client side (`client` / `pull` / `tls-client`): one peer, the
//! server, reached through the `remote` list.

pub mod dns;
pub mod p2p;
pub mod proxy;
pub mod walk;
