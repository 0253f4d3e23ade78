//! The client side (`client` / `pull` / `tls-client`): one peer, the
//! server, reached through the `remote` list.

pub mod dhcp_router;
pub mod walk;
