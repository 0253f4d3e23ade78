//! Compression framing inside the data channel (section 8), without any compression.
//!
//! Even with compression off, a peer configured with `comp-lzo no`,
//! `compress` or `compress stub-v2` expects a framing byte in every
//! plaintext. We speak those framings and never compress; a packet that the
//! peer really compressed is dropped as [`DropReason::PeerCompresses`].
//!
//! ```text
//! None       | ip packet ...                         |
//! LzoStub    | 0xFA | ip packet ...                  |   (0x66 = LZO-compressed)
//! StubSwap   | 0xFB | ip[1..] ... | ip[0]            |   (0x69 = LZ4-compressed)
//! StubV2     | ip packet ...                         |   if ip[0] == 0x50: | 0x50 0x00 | ip ... |
//!                                                        (0x50 0x01 = LZ4-compressed)
//! ```
//!
//! [`DropReason::PeerCompresses`]: crate::proto::error::DropReason::PeerCompresses

use crate::proto::error::DropReason;

/// `comp-lzo no` / LZO "not compressed" byte.
pub const LZO_NO_COMPRESS: u8 = 0xFA;
/// LZO-compressed packet.
pub const LZO_COMPRESS: u8 = 0x66;
/// Swap-form "not compressed" byte (`compress` stub, `compress lz4`).
pub const NO_COMPRESS_SWAP: u8 = 0xFB;
/// LZ4-compressed packet in swap form.
pub const LZ4_COMPRESS: u8 = 0x69;
/// Version-2 indicator byte (`compress stub-v2`, `lz4-v2`).
pub const V2_INDICATOR: u8 = 0x50;
/// Version-2 "uncompressed" algorithm byte.
pub const V2_UNCOMPRESSED: u8 = 0x00;
/// Version-2 LZ4 algorithm byte.
pub const V2_LZ4: u8 = 0x01;

/// Which framing is in force for a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompressFraming {
    /// No framing (2.6 default).
    #[default]
    None,
    /// `comp-lzo no` (and `comp-lzo` when we never compress): prefix 0xFA.
    LzoStub,
    /// `compress` (stub) / `compress lz4`: swap form with 0xFB.
    StubSwap,
    /// `compress stub-v2` / `lz4-v2`: escape only packets starting with 0x50.
    StubV2,
}

impl CompressFraming {
    /// Extra bytes `frame` may add.
    pub const fn max_overhead(self) -> usize {
        match self {
            CompressFraming::None => 0,
            CompressFraming::LzoStub | CompressFraming::StubSwap => 1,
            CompressFraming::StubV2 => 2,
        }
    }

    /// Bytes `frame` writes for `packet`.
    pub fn framed_len(self, packet: &[u8]) -> usize {
        match self {
            CompressFraming::None => packet.len(),
            CompressFraming::LzoStub | CompressFraming::StubSwap => packet.len() + 1,
            CompressFraming::StubV2 => {
                packet.len()
                    + if packet.first() == Some(&V2_INDICATOR) {
                        2
                    } else {
                        0
                    }
            }
        }
    }

    /// Frame `packet` into `dst` for sending; `None` if `dst` is too small.
    ///
    /// An empty packet stays empty (the sealer refuses it anyway).
    pub fn frame<'d>(self, packet: &[u8], dst: &'d mut [u8]) -> Option<&'d [u8]> {
        let n = self.framed_len(packet);
        let out = dst.get_mut(..n)?;
        match self {
            CompressFraming::None => out.copy_from_slice(packet),
            CompressFraming::LzoStub => {
                out[0] = LZO_NO_COMPRESS;
                out[1..].copy_from_slice(packet);
            }
            CompressFraming::StubSwap => match packet.split_first() {
                None => out[0] = NO_COMPRESS_SWAP,
                Some((first, rest)) => {
                    out[0] = NO_COMPRESS_SWAP;
                    out[1..packet.len()].copy_from_slice(rest);
                    out[packet.len()] = *first;
                }
            },
            CompressFraming::StubV2 => {
                if packet.first() == Some(&V2_INDICATOR) {
                    out[0] = V2_INDICATOR;
                    out[1] = V2_UNCOMPRESSED;
                    out[2..].copy_from_slice(packet);
                } else {
                    out.copy_from_slice(packet);
                }
            }
        }
        Some(out)
    }

    /// Remove the framing from a decrypted plaintext, in place (the swap form
    /// needs to move a byte); returns the inner packet.
    pub fn unframe(self, plaintext: &mut [u8]) -> Result<&mut [u8], DropReason> {
        match self {
            CompressFraming::None => Ok(plaintext),
            CompressFraming::LzoStub => match plaintext.first().copied() {
                None => Ok(plaintext),
                Some(LZO_NO_COMPRESS) => Ok(&mut plaintext[1..]),
                Some(LZO_COMPRESS) => Err(DropReason::PeerCompresses),
                Some(_) => Err(DropReason::BadCompressionHeader),
            },
            CompressFraming::StubSwap => {
                let len = plaintext.len();
                match plaintext.first().copied() {
                    None => Ok(plaintext),
                    Some(NO_COMPRESS_SWAP) => {
                        if len >= 2 {
                            plaintext[0] = plaintext[len - 1];
                        }
                        Ok(&mut plaintext[..len - 1])
                    }
                    Some(LZ4_COMPRESS) | Some(LZO_COMPRESS) => Err(DropReason::PeerCompresses),
                    Some(_) => Err(DropReason::BadCompressionHeader),
                }
            }
            CompressFraming::StubV2 => match plaintext {
                [V2_INDICATOR, V2_UNCOMPRESSED, ..] => Ok(&mut plaintext[2..]),
                [V2_INDICATOR, V2_LZ4, ..] => Err(DropReason::PeerCompresses),
                [V2_INDICATOR, ..] => Err(DropReason::BadCompressionHeader),
                _ => Ok(plaintext),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ALL: [CompressFraming; 4] = [
        CompressFraming::None,
        CompressFraming::LzoStub,
        CompressFraming::StubSwap,
        CompressFraming::StubV2,
    ];

    #[test]
    fn swap_form_moves_first_byte_to_the_end() {
        let mut dst = [0u8; 8];
        let f = CompressFraming::StubSwap
            .frame(&[0x45, 1, 2], &mut dst)
            .unwrap();
        assert_eq!(f, &[0xFB, 1, 2, 0x45]);
    }

    #[test]
    fn stub_v2_escapes_only_0x50() {
        let mut dst = [0u8; 8];
        assert_eq!(
            CompressFraming::StubV2.frame(&[0x45, 1], &mut dst).unwrap(),
            &[0x45, 1]
        );
        assert_eq!(
            CompressFraming::StubV2.frame(&[0x50, 1], &mut dst).unwrap(),
            &[0x50, 0, 0x50, 1]
        );
    }

    #[test]
    fn compressed_packets_are_dropped_as_peer_compresses() {
        assert_eq!(
            CompressFraming::LzoStub.unframe(&mut [0x66, 1]),
            Err(DropReason::PeerCompresses)
        );
        assert_eq!(
            CompressFraming::StubSwap.unframe(&mut [0x69, 1]),
            Err(DropReason::PeerCompresses)
        );
        assert_eq!(
            CompressFraming::StubV2.unframe(&mut [0x50, 1, 2]),
            Err(DropReason::PeerCompresses)
        );
        assert_eq!(
            CompressFraming::LzoStub.unframe(&mut [0x45]),
            Err(DropReason::BadCompressionHeader)
        );
    }

    proptest! {
        #[test]
        fn frame_then_unframe_is_identity(p in proptest::collection::vec(any::<u8>(), 1..64)) {
            for f in ALL {
                let mut dst = [0u8; 80];
                let n = f.frame(&p, &mut dst).unwrap().len();
                prop_assert_eq!(n, f.framed_len(&p));
                let got = f.unframe(&mut dst[..n]).unwrap();
                prop_assert_eq!(&got[..], &p[..]);
            }
        }

        #[test]
        fn unframe_never_panics(mut p in proptest::collection::vec(any::<u8>(), 0..8)) {
            for f in ALL {
                let mut c = p.clone();
                let _ = f.unframe(&mut c);
            }
            p.clear();
        }
    }
}
