//! The first byte of every packet: opcode (bits 7..3) and key_id (bits 2..0), section 1.3.
//!
//! ```text
//!   7   6   5   4   3   2   1   0
//! +---+---+---+---+---+---+---+---+
//! |      opcode       |  key_id   |
//! +---+---+---+---+---+---+---+---+
//! ```

use vpn_common::opcode as op;

use crate::proto::error::WireError;

/// Every opcode a 2.6 peer may send. Key-method 1 resets are not in here:
/// parsing them yields [`WireError::ObsoleteOpcode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Starts a renegotiation with a new key_id.
    SoftResetV1 = op::P_CONTROL_SOFT_RESET_V1,
    /// Reliable control packet carrying TLS bytes.
    ControlV1 = op::P_CONTROL_V1,
    /// Acknowledgements only.
    AckV1 = op::P_ACK_V1,
    /// Data packet with a one-byte header.
    DataV1 = op::P_DATA_V1,
    /// Client's first packet.
    HardResetClientV2 = op::P_CONTROL_HARD_RESET_CLIENT_V2,
    /// Server's first packet.
    HardResetServerV2 = op::P_CONTROL_HARD_RESET_SERVER_V2,
    /// Data packet with a 24-bit peer-id.
    DataV2 = op::P_DATA_V2,
    /// Client's first packet with tls-crypt-v2 (WKc appended).
    HardResetClientV3 = op::P_CONTROL_HARD_RESET_CLIENT_V3,
    /// P_CONTROL_V1 with the tls-crypt-v2 WKc appended.
    ControlWkcV1 = op::P_CONTROL_WKC_V1,
}

impl Opcode {
    /// Decode the 5-bit opcode value.
    pub fn from_u8(v: u8) -> Result<Self, WireError> {
        Ok(match v {
            op::P_CONTROL_SOFT_RESET_V1 => Self::SoftResetV1,
            op::P_CONTROL_V1 => Self::ControlV1,
            op::P_ACK_V1 => Self::AckV1,
            op::P_DATA_V1 => Self::DataV1,
            op::P_CONTROL_HARD_RESET_CLIENT_V2 => Self::HardResetClientV2,
            op::P_CONTROL_HARD_RESET_SERVER_V2 => Self::HardResetServerV2,
            op::P_DATA_V2 => Self::DataV2,
            op::P_CONTROL_HARD_RESET_CLIENT_V3 => Self::HardResetClientV3,
            op::P_CONTROL_WKC_V1 => Self::ControlWkcV1,
            op::P_CONTROL_HARD_RESET_CLIENT_V1 | op::P_CONTROL_HARD_RESET_SERVER_V1 => {
                return Err(WireError::ObsoleteOpcode(v));
            }
            other => return Err(WireError::UnknownOpcode(other)),
        })
    }

    /// The 5-bit value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// P_DATA_V1 or P_DATA_V2.
    pub const fn is_data(self) -> bool {
        matches!(self, Self::DataV1 | Self::DataV2)
    }

    /// Any control opcode (goes through the reliability layer or is an ack).
    pub const fn is_control(self) -> bool {
        !self.is_data()
    }

    /// One of the hard resets that open a session.
    pub const fn is_hard_reset(self) -> bool {
        matches!(
            self,
            Self::HardResetClientV2 | Self::HardResetServerV2 | Self::HardResetClientV3
        )
    }

    /// A hard reset only a client sends (a client must refuse these).
    pub const fn is_client_reset(self) -> bool {
        matches!(self, Self::HardResetClientV2 | Self::HardResetClientV3)
    }

    /// Carries a message packet-id (everything but P_ACK_V1 among control opcodes).
    pub const fn has_message_id(self) -> bool {
        self.is_control() && !matches!(self, Self::AckV1)
    }

    /// tls-crypt-v2 packets that have the wrapped client key appended.
    pub const fn carries_wkc(self) -> bool {
        matches!(self, Self::HardResetClientV3 | Self::ControlWkcV1)
    }
}

/// The 3-bit key id of a key state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u8);

impl KeyId {
    /// Key id 0, the session's first key.
    pub const ZERO: KeyId = KeyId(0);

    /// Key id from its value, `None` above 7.
    pub const fn new(v: u8) -> Option<Self> {
        if v <= op::KEY_ID_MASK {
            Some(Self(v))
        } else {
            None
        }
    }

    /// Key id from the low 3 bits of `v`.
    pub const fn from_bits(v: u8) -> Self {
        Self(v & op::KEY_ID_MASK)
    }

    /// The value, 0..=7.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The key id of the next renegotiation: 1..=7 then back to 1, never 0.
    pub const fn next(self) -> Self {
        if self.0 >= op::KEY_ID_MASK {
            Self(1)
        } else {
            Self(self.0 + 1)
        }
    }
}

/// Split a first byte into opcode and key id.
pub fn split_first_byte(b: u8) -> Result<(Opcode, KeyId), WireError> {
    Ok((
        Opcode::from_u8(op::opcode(b))?,
        KeyId::from_bits(op::key_id(b)),
    ))
}

/// Build a first byte.
pub const fn first_byte(opcode: Opcode, key_id: KeyId) -> u8 {
    (opcode.as_u8() << op::OPCODE_SHIFT) | key_id.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_match_section_12_1() {
        assert_eq!(first_byte(Opcode::HardResetClientV2, KeyId::ZERO), 0x38);
        assert_eq!(first_byte(Opcode::HardResetServerV2, KeyId::ZERO), 0x40);
        assert_eq!(first_byte(Opcode::ControlV1, KeyId::ZERO), 0x20);
        assert_eq!(first_byte(Opcode::AckV1, KeyId::ZERO), 0x28);
        assert_eq!(first_byte(Opcode::SoftResetV1, KeyId::from_bits(1)), 0x19);
        assert_eq!(first_byte(Opcode::DataV2, KeyId::ZERO), 0x48);
        assert_eq!(first_byte(Opcode::DataV2, KeyId::from_bits(1)), 0x49);
        assert_eq!(first_byte(Opcode::DataV1, KeyId::ZERO), 0x30);
        assert_eq!(
            split_first_byte(0x49),
            Ok((Opcode::DataV2, KeyId::from_bits(1)))
        );
    }

    #[test]
    fn rejects_key_method_1_resets_and_unknown_opcodes() {
        assert_eq!(split_first_byte(0x08), Err(WireError::ObsoleteOpcode(1)));
        assert_eq!(split_first_byte(0x10), Err(WireError::ObsoleteOpcode(2)));
        assert_eq!(split_first_byte(0x00), Err(WireError::UnknownOpcode(0)));
        assert_eq!(split_first_byte(12 << 3), Err(WireError::UnknownOpcode(12)));
        assert_eq!(split_first_byte(0xff), Err(WireError::UnknownOpcode(31)));
    }

    #[test]
    fn key_id_wraps_to_one_not_zero() {
        assert_eq!(KeyId::ZERO.next().value(), 1);
        assert_eq!(KeyId::from_bits(7).next().value(), 1);
        assert_eq!(KeyId::new(8), None);
    }

    #[test]
    fn every_opcode_round_trips() {
        for v in 0u8..32 {
            if let Ok(o) = Opcode::from_u8(v) {
                assert_eq!(o.as_u8(), v);
            }
        }
    }
}
