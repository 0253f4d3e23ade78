//! Early-negotiation TLVs carried in the payload of a hard reset (section 4.3).
//!
//! ```text
//! +-------------+---------------+------------------+
//! | type (u16)  | length (u16)  | value[length]    |   repeated until the payload ends
//! +-------------+---------------+------------------+
//! ```
//!
//! Unknown types are skipped; a list that ends in the middle of a TLV is
//! fatal for the handshake (2.6 aborts it), so it is a [`WireError::BadTlv`].

use super::{ensure_len, read_u16};
use crate::proto::error::WireError;

/// TLV type of the early-negotiation flags.
pub const TLV_EARLY_NEG_FLAGS: u16 = 0x0001;
/// Flag in `EARLY_NEG_FLAGS`: the client must resend its WKc (tls-crypt-v2).
pub const EARLY_NEG_FLAG_RESEND_WKC: u16 = 0x0001;

/// One TLV, borrowed from the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Type.
    pub kind: u16,
    /// Value bytes.
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        4 + self.value.len()
    }

    /// Write at the start of `dst`; returns the bytes written.
    pub fn emit(&self, dst: &mut [u8]) -> Result<usize, WireError> {
        let len = u16::try_from(self.value.len()).map_err(|_| WireError::BadTlv)?;
        ensure_len(dst, self.buffer_len())?;
        dst[..2].copy_from_slice(&self.kind.to_be_bytes());
        dst[2..4].copy_from_slice(&len.to_be_bytes());
        dst[4..4 + self.value.len()].copy_from_slice(self.value);
        Ok(self.buffer_len())
    }
}

/// Iterator over a TLV list; yields an error once and then stops.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> TlvIter<'a> {
    /// Iterate over `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        Self { rest: payload }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let kind = read_u16(self.rest, 0).map_err(|_| WireError::BadTlv)?;
            let len = usize::from(read_u16(self.rest, 2).map_err(|_| WireError::BadTlv)?);
            let value = self.rest.get(4..4 + len).ok_or(WireError::BadTlv)?;
            Ok((Tlv { kind, value }, 4 + len))
        })();
        match parsed {
            Ok((tlv, used)) => {
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(tlv))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// What the early-negotiation TLVs of a hard reset said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EarlyNegotiation {
    /// `EARLY_NEG_FLAGS` value, 0 if absent.
    pub flags: u16,
}

impl EarlyNegotiation {
    /// The server asks the client to resend its WKc in P_CONTROL_WKC_V1.
    pub fn resend_wkc(&self) -> bool {
        self.flags & EARLY_NEG_FLAG_RESEND_WKC != 0
    }

    /// Parse a hard-reset payload. `EARLY_NEG_FLAGS` must have length 2.
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut out = Self::default();
        for tlv in TlvIter::new(payload) {
            let tlv = tlv?;
            if tlv.kind == TLV_EARLY_NEG_FLAGS {
                let v: [u8; 2] = tlv.value.try_into().map_err(|_| WireError::BadTlv)?;
                out.flags = u16::from_be_bytes(v);
            }
        }
        Ok(out)
    }

    /// Bytes `emit` writes: nothing when no flag is set, as 2.6 does.
    pub fn buffer_len(&self) -> usize {
        if self.flags == 0 { 0 } else { 6 }
    }

    /// Write the TLV list into `dst`; returns the bytes written.
    pub fn emit(&self, dst: &mut [u8]) -> Result<usize, WireError> {
        if self.flags == 0 {
            return Ok(0);
        }
        Tlv {
            kind: TLV_EARLY_NEG_FLAGS,
            value: &self.flags.to_be_bytes(),
        }
        .emit(dst)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_resend_wkc_flag() {
        let e = EarlyNegotiation::parse(&[0, 1, 0, 2, 0, 1]).unwrap();
        assert!(e.resend_wkc());
        let mut out = [0u8; 6];
        assert_eq!(e.emit(&mut out), Ok(6));
        assert_eq!(out, [0, 1, 0, 2, 0, 1]);
    }

    #[test]
    fn skips_unknown_types() {
        let e = EarlyNegotiation::parse(&[0, 9, 0, 1, 0xaa, 0, 1, 0, 2, 0, 1]).unwrap();
        assert!(e.resend_wkc());
        assert_eq!(
            EarlyNegotiation::parse(&[]).unwrap(),
            EarlyNegotiation::default()
        );
    }

    #[test]
    fn rejects_truncated_or_overrunning_tlvs() {
        assert_eq!(EarlyNegotiation::parse(&[0, 1, 0]), Err(WireError::BadTlv));
        assert_eq!(
            EarlyNegotiation::parse(&[0, 1, 0, 3, 0, 1]),
            Err(WireError::BadTlv)
        );
        assert_eq!(
            EarlyNegotiation::parse(&[0, 1, 0, 1, 0]),
            Err(WireError::BadTlv)
        );
    }

    proptest! {
        #[test]
        fn tlv_parser_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = EarlyNegotiation::parse(&b);
            prop_assert!(TlvIter::new(&b).count() <= b.len() / 4 + 1);
        }
    }
}
