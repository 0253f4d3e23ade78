//! Zero-copy views and representations of every OpenVPN 2.6 packet format.
//!
//! Each format has two faces, as in smoltcp:
//!
//! - a **view** `XxxPacket<T: AsRef<[u8]>>` that wraps a buffer without
//!   copying and reads (or, with `T: AsMut<[u8]>`, writes) fields in place;
//! - a **representation** `XxxRepr` with `parse` (view → repr), `emit`
//!   (repr → view) and `buffer_len` (how many bytes `emit` writes).
//!
//! # The no-panic contract
//!
//! Written once, here, for every view in this module:
//!
//! - `new_unchecked(buffer)` wraps without looking at the bytes. Accessors on
//!   such a view may panic if the buffer is too short; only use it on a
//!   buffer you sized yourself (typically right before `emit`).
//! - `check_len(&self)` validates every length the accessors rely on (fixed
//!   fields, the ack count and what it implies, the presence of the message
//!   packet-id) and returns [`WireError`] otherwise.
//! - `new_checked(buffer)` = `new_unchecked` + `check_len`.
//! - **After a successful `check_len`, no accessor panics**, whatever the
//!   bytes are. Everything that came from the network goes through
//!   `new_checked` (or a `Repr::parse`, which calls it).
//! - `emit` never panics either: it checks `buffer_len()` against the
//!   destination and returns [`WireError::BufferTooSmall`].
//!
//! Crypto wrappers ([`tls_auth`], [`tls_crypt`]) and the data channel
//! (`proto::data`) follow the same rule with their own error type: malformed
//! input is an error value, never a panic.
//!
//! [`WireError`]: crate::proto::error::WireError
//! [`WireError::BufferTooSmall`]: crate::proto::error::WireError::BufferTooSmall

pub mod control;
pub mod data;
pub mod opcode;
pub mod tcp;
pub mod tls_auth;
pub mod tls_crypt;
pub mod tlv;
pub mod wrap;

pub use control::{AckBlock, ControlPacket, ControlRepr, SessionId};
pub use data::{DataHeader, DataPacket, PeerId};
pub use opcode::{KeyId, Opcode};

use crate::proto::error::WireError;

/// Read a big-endian u32 at `off`, or report truncation.
pub(crate) fn read_u32(b: &[u8], off: usize) -> Result<u32, WireError> {
    let s = b.get(off..off + 4).ok_or(WireError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Read a big-endian u16 at `off`, or report truncation.
pub(crate) fn read_u16(b: &[u8], off: usize) -> Result<u16, WireError> {
    let s = b.get(off..off + 2).ok_or(WireError::Truncated)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

/// Check that `dst` holds at least `need` bytes.
pub(crate) fn ensure_len(dst: &[u8], need: usize) -> Result<(), WireError> {
    if dst.len() < need {
        Err(WireError::BufferTooSmall {
            need,
            have: dst.len(),
        })
    } else {
        Ok(())
    }
}
