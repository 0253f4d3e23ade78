//! What a decrypted, unframed data-channel plaintext is: ping, OCC message, or a tun packet.
//!
//! ```text
//! ping : | 2a 18 7b f3 64 1e b4 cb 07 ed 2d 0a 98 1f c7 48 |                   (exactly 16 bytes)
//! OCC  : | 28 7f 34 6b d4 ef 7a 81 2d 56 b8 d3 af c5 45 9c | opcode | args... |
//! ```
//!
//! Sections 9.6 and 9.7. Pings are dropped after decryption; OCC_EXIT is the
//! one OCC message that matters (the peer is leaving).

/// Keepalive ping plaintext.
pub const PING_MAGIC: [u8; 16] = [
    0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb, 0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48,
];

/// Prefix of every OCC message.
pub const OCC_MAGIC: [u8; 16] = [
    0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81, 0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c,
];

/// OCC opcodes (section 9.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OccOpcode {
    /// Ask for the options string.
    Request,
    /// Options string, NUL-terminated.
    Reply,
    /// MTU test: please send a load of this size.
    MtuLoadRequest,
    /// MTU test filler.
    MtuLoad,
    /// MTU test: report sizes.
    MtuRequest,
    /// MTU test result.
    MtuReply,
    /// The peer is exiting.
    Exit,
    /// A code 2.6 does not define; ignored.
    Unknown(u8),
}

impl OccOpcode {
    /// From the wire byte.
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Request,
            1 => Self::Reply,
            2 => Self::MtuLoadRequest,
            3 => Self::MtuLoad,
            4 => Self::MtuRequest,
            5 => Self::MtuReply,
            6 => Self::Exit,
            o => Self::Unknown(o),
        }
    }

    /// The wire byte.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Request => 0,
            Self::Reply => 1,
            Self::MtuLoadRequest => 2,
            Self::MtuLoad => 3,
            Self::MtuRequest => 4,
            Self::MtuReply => 5,
            Self::Exit => 6,
            Self::Unknown(o) => o,
        }
    }
}

/// Classification of a data-channel plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Keepalive ping: resets ping-restart, never goes to tun.
    Ping,
    /// OCC message with its arguments.
    Occ(OccOpcode, &'a [u8]),
    /// Anything else: a packet for the tun device.
    TunPacket(&'a [u8]),
}

/// Classify an unframed plaintext. An IP packet cannot start with either
/// magic (the first nibble would be 2), so nothing is misread.
pub fn classify(plaintext: &[u8]) -> Payload<'_> {
    if plaintext == PING_MAGIC {
        return Payload::Ping;
    }
    if let Some(rest) = plaintext.strip_prefix(&OCC_MAGIC)
        && let Some((&code, args)) = rest.split_first()
    {
        return Payload::Occ(OccOpcode::from_u8(code), args);
    }
    Payload::TunPacket(plaintext)
}

/// Write an OCC message into `dst`; `None` if it does not fit.
pub fn emit_occ<'d>(op: OccOpcode, args: &[u8], dst: &'d mut [u8]) -> Option<&'d [u8]> {
    let n = OCC_MAGIC.len() + 1 + args.len();
    let out = dst.get_mut(..n)?;
    out[..16].copy_from_slice(&OCC_MAGIC);
    out[16] = op.as_u8();
    out[17..].copy_from_slice(args);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ping_occ_and_tun_packets() {
        assert_eq!(classify(&PING_MAGIC), Payload::Ping);
        let mut dst = [0u8; 32];
        let exit = emit_occ(OccOpcode::Exit, &[], &mut dst).unwrap().to_vec();
        assert_eq!(classify(&exit), Payload::Occ(OccOpcode::Exit, &[]));
        let reply = emit_occ(OccOpcode::Reply, b"V4\0", &mut dst)
            .unwrap()
            .to_vec();
        assert_eq!(classify(&reply), Payload::Occ(OccOpcode::Reply, b"V4\0"));
        // Ping magic with a trailing byte is not a ping.
        let mut longer = PING_MAGIC.to_vec();
        longer.push(0);
        assert_eq!(classify(&longer), Payload::TunPacket(&longer));
        // OCC magic alone (no opcode) is not OCC.
        assert_eq!(classify(&OCC_MAGIC), Payload::TunPacket(&OCC_MAGIC));
        assert_eq!(classify(&[0x45, 0]), Payload::TunPacket(&[0x45, 0]));
    }
}
