//! OpenVPN opcode values and the masks the classifier needs to read a data packet.
//!
//! ```text
//!  byte 0          bytes 1..4 (P_DATA_V2 only)
//! +-------+-----+  +------------------------+
//! |opcode |keyid|  |  peer-id, 24 bit, BE   |
//! | 7..3  | 2..0|  +------------------------+
//! +-------+-----+
//! ```

/// Obsolete key-method 1 client reset; rejected.
pub const P_CONTROL_HARD_RESET_CLIENT_V1: u8 = 1;
/// Obsolete key-method 1 server reset; rejected.
pub const P_CONTROL_HARD_RESET_SERVER_V1: u8 = 2;
/// Starts a renegotiation with a new key id.
pub const P_CONTROL_SOFT_RESET_V1: u8 = 3;
/// Reliable control packet carrying TLS bytes.
pub const P_CONTROL_V1: u8 = 4;
/// Acknowledgements only.
pub const P_ACK_V1: u8 = 5;
/// Data packet with a one-byte header.
pub const P_DATA_V1: u8 = 6;
/// Client's first packet.
pub const P_CONTROL_HARD_RESET_CLIENT_V2: u8 = 7;
/// Server's first packet.
pub const P_CONTROL_HARD_RESET_SERVER_V2: u8 = 8;
/// Data packet with a four-byte header carrying the 24-bit peer-id.
pub const P_DATA_V2: u8 = 9;
/// Client's first packet with tls-crypt-v2.
pub const P_CONTROL_HARD_RESET_CLIENT_V3: u8 = 10;
/// P_CONTROL_V1 with the tls-crypt-v2 wrapped client key appended.
pub const P_CONTROL_WKC_V1: u8 = 11;

/// Shift that moves the opcode out of the first byte.
pub const OPCODE_SHIFT: u8 = 3;
/// Mask of the key id in the first byte.
pub const KEY_ID_MASK: u8 = 0x07;
/// Mask of the 24-bit peer-id once the first four bytes are read as a BE u32.
pub const PEER_ID_MASK: u32 = 0x00ff_ffff;
/// Peer-id value meaning "not assigned".
pub const PEER_ID_UNDEF: u32 = 0x00ff_ffff;
/// Length of the P_DATA_V2 header (opcode/key-id + peer-id).
pub const DATA_V2_HEADER_LEN: usize = 4;

/// Opcode part of the first byte of an OpenVPN packet.
#[inline(always)]
pub const fn opcode(first: u8) -> u8 {
    first >> OPCODE_SHIFT
}

/// Key-id part of the first byte of an OpenVPN packet.
#[inline(always)]
pub const fn key_id(first: u8) -> u8 {
    first & KEY_ID_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_match_protocol_doc_12_1() {
        assert_eq!(P_CONTROL_HARD_RESET_CLIENT_V2 << OPCODE_SHIFT, 0x38);
        assert_eq!(P_CONTROL_HARD_RESET_SERVER_V2 << OPCODE_SHIFT, 0x40);
        assert_eq!(P_CONTROL_V1 << OPCODE_SHIFT, 0x20);
        assert_eq!(P_ACK_V1 << OPCODE_SHIFT, 0x28);
        assert_eq!((P_CONTROL_SOFT_RESET_V1 << OPCODE_SHIFT) | 1, 0x19);
        assert_eq!(P_DATA_V2 << OPCODE_SHIFT, 0x48);
        assert_eq!(P_DATA_V1 << OPCODE_SHIFT, 0x30);
        assert_eq!(opcode(0x49), P_DATA_V2);
        assert_eq!(key_id(0x49), 1);
    }
}
