//! The data channel: packet protection, packet ids, compression framing, ping/OCC recognition.
//!
//! Everything here works on caller-owned buffers and allocates nothing per
//! packet: contexts are set up once per key, then reused.

pub mod compress;
pub mod crypto;
pub mod fragment;
pub use crate::proto::hmac;
pub mod keyring;
pub mod packet_id;
pub mod payload;

pub use compress::CompressFraming;
pub use crypto::{DataCipher, DataKey, Opened, RecvKey, SendKey};
pub use fragment::Fragmenter;
pub use hmac::{Digest, HmacKey};
pub use keyring::RecvKeyRing;
pub use packet_id::{PacketIdSend, SendId};
pub use payload::{Payload, classify};
