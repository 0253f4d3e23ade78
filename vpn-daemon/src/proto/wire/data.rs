//! Data packet headers, P_DATA_V1 and P_DATA_V2 (sections 7.2 and 7.3).
//!
//! ```text
//! P_DATA_V1:  +--------+----------------------------+
//!             | op_kid | protected payload ...      |
//!             +--------+----------------------------+
//!
//! P_DATA_V2:  +--------+-------------------+---------------------------+
//!             | op_kid | peer_id (24, BE)  | protected payload ...     |
//!             +--------+-------------------+---------------------------+
//! ```
//!
//! What follows the header depends on the cipher (`proto::data::crypto`).

use vpn_common::opcode::{DATA_V2_HEADER_LEN, PEER_ID_UNDEF};

use super::ensure_len;
use super::opcode::{KeyId, Opcode, first_byte, split_first_byte};
use crate::proto::error::WireError;

/// A 24-bit peer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(u32);

impl PeerId {
    /// "Not set" (`0xFFFFFF`).
    pub const UNDEF: PeerId = PeerId(PEER_ID_UNDEF);

    /// Peer id from a value, `None` above 24 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= PEER_ID_UNDEF {
            Some(Self(v))
        } else {
            None
        }
    }

    /// The value.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// Three big-endian bytes.
    pub const fn to_bytes(self) -> [u8; 3] {
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }
}

/// Zero-copy view of a data packet (either version).
#[derive(Debug, Clone)]
pub struct DataPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DataPacket<T> {
    /// Wrap without checks (see the contract in `wire/mod.rs`).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap and validate.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// A data opcode and its full header must be present.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let (op, _) = split_first_byte(*b.first().ok_or(WireError::Truncated)?)?;
        if !op.is_data() {
            return Err(WireError::UnexpectedOpcode(op.as_u8()));
        }
        if b.len() < header_len(op) {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// P_DATA_V1 or P_DATA_V2.
    pub fn opcode(&self) -> Opcode {
        split_first_byte(self.buffer.as_ref()[0]).map_or(Opcode::DataV1, |(o, _)| o)
    }

    /// Key id that encrypted the packet.
    pub fn key_id(&self) -> KeyId {
        KeyId::from_bits(self.buffer.as_ref()[0])
    }

    /// Peer id (P_DATA_V2 only).
    pub fn peer_id(&self) -> Option<PeerId> {
        if self.opcode() != Opcode::DataV2 {
            return None;
        }
        let b = self.buffer.as_ref();
        Some(PeerId(u32::from_be_bytes([0, b[1], b[2], b[3]])))
    }

    /// Header length: 1 or 4.
    pub fn header_len(&self) -> usize {
        header_len(self.opcode())
    }

    /// The header bytes (authenticated as AAD by P_DATA_V2 AEAD).
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

fn header_len(op: Opcode) -> usize {
    if op == Opcode::DataV2 {
        DATA_V2_HEADER_LEN
    } else {
        1
    }
}

/// Representation of a data header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHeader {
    /// Key id.
    pub key_id: KeyId,
    /// `Some` for P_DATA_V2, `None` for P_DATA_V1.
    pub peer_id: Option<PeerId>,
}

impl DataHeader {
    /// Parse from a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &DataPacket<T>) -> Result<Self, WireError> {
        p.check_len()?;
        Ok(Self {
            key_id: p.key_id(),
            peer_id: p.peer_id(),
        })
    }

    /// The opcode this header encodes.
    pub fn opcode(&self) -> Opcode {
        if self.peer_id.is_some() {
            Opcode::DataV2
        } else {
            Opcode::DataV1
        }
    }

    /// 1 or 4.
    pub fn buffer_len(&self) -> usize {
        header_len(self.opcode())
    }

    /// Write at the start of `dst`; returns the bytes written.
    pub fn emit(&self, dst: &mut [u8]) -> Result<usize, WireError> {
        ensure_len(dst, self.buffer_len())?;
        dst[0] = first_byte(self.opcode(), self.key_id);
        if let Some(p) = self.peer_id {
            dst[1..4].copy_from_slice(&p.to_bytes());
        }
        Ok(self.buffer_len())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_v2_peer_id_and_key_id() {
        let b = [0x49, 0x12, 0x34, 0x56, 0, 0, 0, 1];
        let p = DataPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.opcode(), Opcode::DataV2);
        assert_eq!(p.key_id().value(), 1);
        assert_eq!(p.peer_id(), PeerId::new(0x123456));
        assert_eq!(p.payload(), &[0, 0, 0, 1]);
    }

    #[test]
    fn v1_has_one_byte_header() {
        let b = [0x30, 9];
        let p = DataPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.peer_id(), None);
        assert_eq!(p.payload(), &[9]);
    }

    #[test]
    fn rejects_short_v2_and_control_opcodes() {
        assert_eq!(
            DataPacket::new_checked(&[0x48, 0, 0][..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            DataPacket::new_checked(&[0x20][..]).err(),
            Some(WireError::UnexpectedOpcode(4))
        );
        assert_eq!(
            DataPacket::new_checked(&[][..]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn header_parse_emit_round_trips(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(p) = DataPacket::new_checked(&b[..]) {
                let h = DataHeader::parse(&p).unwrap();
                let mut out = [0u8; 4];
                let n = h.emit(&mut out).unwrap();
                prop_assert_eq!(&out[..n], p.header());
            }
        }
    }
}
