//! Errors of the wire formats and the crypto layers, and the drop reasons they map to.
//!
//! Two kinds of failure meet here, following "who is at fault":
//!
//! - the peer (or an attacker) sent something we refuse: [`WireError`] and
//!   [`CryptoError`] describe it, and every one of them maps to exactly one
//!   [`DropReason`], a `Copy` tag that the I/O layer counts per reason;
//! - we configured something wrong (a key file, a buffer too small): those
//!   errors say so ([`KeyFileError`], [`CryptoError::BufferTooSmall`]) and are
//!   not the peer's fault.
//!
//! None of these types allocate: a packet that fails costs no heap traffic.

use thiserror::Error;

/// Why a received packet was dropped; one variant per reason, for counters.
///
/// [`DropReason::as_str`] is stable: metrics and logs key on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Fewer bytes than the format needs.
    Truncated,
    /// Opcode outside the table of section 1.3.
    UnknownOpcode,
    /// Key-method 1 hard reset (opcodes 1 and 2), refused since 2.4.
    ObsoleteOpcode,
    /// More than 8 acknowledgements in one control packet.
    TooManyAcks,
    /// A malformed early-negotiation TLV list in a hard reset.
    BadTlv,
    /// TCP record with length 0.
    ZeroLengthRecord,
    /// TCP record longer than we are willing to buffer.
    OversizedRecord,
    /// tls-auth HMAC did not verify.
    BadHmac,
    /// tls-crypt / AEAD authentication tag did not verify.
    BadTag,
    /// Packet id 0, a duplicate, or too old for the replay window.
    Replay,
    /// Data packet whose key_id has no key installed.
    UnknownKeyId,
    /// Data packet whose opcode does not match the key's format.
    WrongDataOpcode,
    /// AEAD packet with no ciphertext, which 2.6 also refuses.
    EmptyPayload,
    /// CBC plaintext whose PKCS#7 padding is malformed.
    BadPadding,
    /// CBC ciphertext that is not a whole number of blocks.
    BadCiphertextLength,
    /// The peer sent a really compressed packet although only a stub framing
    /// (`comp-lzo no`, `compress`, `compress stub-v2`) is in force; 2.6 drops
    /// these too.
    PeerCompresses,
    /// Compression framing byte that none of the configured framings allows.
    BadCompressionHeader,
    /// tls-crypt-v2 wrapped client key that is malformed or too long.
    BadWrappedKey,
    /// tls-crypt-v2 wrapped client key whose tag did not verify.
    BadWrappedKeyTag,
    /// The crypto backend reported an internal failure.
    CryptoBackend,
    /// Control packet whose session id (own or acked) is not this session's.
    BadSessionId,
    /// Control packet for a key_id other than the primary key state's (doc §10).
    KeyIdMismatch,
    /// A valid opcode that is not acceptable here (role, key_id or state).
    UnexpectedOpcode,
    /// First contact whose echoed server session id is not a valid cookie (doc §4.2).
    BadCookie,
    /// Reliable message id beyond the receive window (dropped without ack).
    OutOfWindow,
    /// Stateless answers over `--connect-freq-initial` (first contact only).
    RateLimited,
    /// `fragment`: a header 2.6 refuses (spurious WHOLE bits, TEST type, bad size) or none.
    BadFragmentHeader,
    /// `fragment`: a piece beyond the reassembly buffer or longer than its announced size.
    OversizedFragment,
    /// `fragment`: a piece that repeats or overlaps one already held.
    OverlappingFragment,
    /// LZO / LZ4 data that does not decompress, or decompresses to more than
    /// the tun MTU allows.
    BadCompressedData,
}

impl DropReason {
    /// Every reason, for counter tables.
    pub const ALL: [DropReason; 30] = [
        DropReason::Truncated,
        DropReason::UnknownOpcode,
        DropReason::ObsoleteOpcode,
        DropReason::TooManyAcks,
        DropReason::BadTlv,
        DropReason::ZeroLengthRecord,
        DropReason::OversizedRecord,
        DropReason::BadHmac,
        DropReason::BadTag,
        DropReason::Replay,
        DropReason::UnknownKeyId,
        DropReason::WrongDataOpcode,
        DropReason::EmptyPayload,
        DropReason::BadPadding,
        DropReason::BadCiphertextLength,
        DropReason::PeerCompresses,
        DropReason::BadCompressionHeader,
        DropReason::BadWrappedKey,
        DropReason::BadWrappedKeyTag,
        DropReason::CryptoBackend,
        DropReason::BadSessionId,
        DropReason::KeyIdMismatch,
        DropReason::UnexpectedOpcode,
        DropReason::BadCookie,
        DropReason::OutOfWindow,
        DropReason::RateLimited,
        DropReason::BadFragmentHeader,
        DropReason::OversizedFragment,
        DropReason::OverlappingFragment,
        DropReason::BadCompressedData,
    ];

    /// Position of `self` in [`DropReason::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name, used as the counter label.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnknownOpcode => "unknown_opcode",
            DropReason::ObsoleteOpcode => "obsolete_opcode",
            DropReason::TooManyAcks => "too_many_acks",
            DropReason::BadTlv => "bad_tlv",
            DropReason::ZeroLengthRecord => "zero_length_record",
            DropReason::OversizedRecord => "oversized_record",
            DropReason::BadHmac => "bad_hmac",
            DropReason::BadTag => "bad_tag",
            DropReason::Replay => "replay",
            DropReason::UnknownKeyId => "unknown_key_id",
            DropReason::WrongDataOpcode => "wrong_data_opcode",
            DropReason::EmptyPayload => "empty_payload",
            DropReason::BadPadding => "bad_padding",
            DropReason::BadCiphertextLength => "bad_ciphertext_length",
            DropReason::PeerCompresses => "peer_compresses",
            DropReason::BadCompressionHeader => "bad_compression_header",
            DropReason::BadWrappedKey => "bad_wrapped_key",
            DropReason::BadWrappedKeyTag => "bad_wrapped_key_tag",
            DropReason::CryptoBackend => "crypto_backend",
            DropReason::BadSessionId => "bad_session_id",
            DropReason::KeyIdMismatch => "key_id_mismatch",
            DropReason::UnexpectedOpcode => "unexpected_opcode",
            DropReason::BadCookie => "bad_cookie",
            DropReason::OutOfWindow => "out_of_window",
            DropReason::RateLimited => "rate_limited",
            DropReason::BadFragmentHeader => "bad_fragment_header",
            DropReason::OversizedFragment => "oversized_fragment",
            DropReason::OverlappingFragment => "overlapping_fragment",
            DropReason::BadCompressedData => "bad_compressed_data",
        }
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A packet that does not follow the wire format (section 1, 2, 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    /// The buffer ends before the field that was being read.
    #[error("packet truncated")]
    Truncated,
    /// The opcode (first byte >> 3) is not one OpenVPN 2.6 defines.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    /// Key-method 1 resets (opcodes 1, 2) are not accepted by 2.6 either.
    #[error("obsolete key-method 1 opcode {0}")]
    ObsoleteOpcode(u8),
    /// A data opcode where a control packet was expected, or the reverse.
    #[error("opcode {0} is not valid here")]
    UnexpectedOpcode(u8),
    /// The ack array holds more than [`crate::proto::wire::control::MAX_ACKS`] ids.
    #[error("{0} acks in one packet (at most 8)")]
    TooManyAcks(u8),
    /// An early-negotiation TLV list that overruns or leaves stray bytes.
    #[error("malformed early-negotiation TLV list")]
    BadTlv,
    /// A TCP record of length zero.
    #[error("zero-length TCP record")]
    ZeroLengthRecord,
    /// A TCP record longer than the configured maximum.
    #[error("TCP record of {len} bytes exceeds the {max}-byte limit")]
    OversizedRecord {
        /// Length announced by the record.
        len: usize,
        /// Largest record accepted.
        max: usize,
    },
    /// The destination buffer cannot hold what `emit` must write (our bug).
    #[error("destination buffer too small: need {need}, have {have}")]
    BufferTooSmall {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

impl WireError {
    /// The counter this error feeds.
    pub const fn drop_reason(self) -> DropReason {
        match self {
            WireError::Truncated | WireError::BufferTooSmall { .. } => DropReason::Truncated,
            WireError::UnknownOpcode(_) | WireError::UnexpectedOpcode(_) => {
                DropReason::UnknownOpcode
            }
            WireError::ObsoleteOpcode(_) => DropReason::ObsoleteOpcode,
            WireError::TooManyAcks(_) => DropReason::TooManyAcks,
            WireError::BadTlv => DropReason::BadTlv,
            WireError::ZeroLengthRecord => DropReason::ZeroLengthRecord,
            WireError::OversizedRecord { .. } => DropReason::OversizedRecord,
        }
    }
}

/// A failure to protect or unprotect a packet (control wrap or data channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// The packet is shorter than its fixed overhead.
    #[error("packet truncated")]
    Truncated,
    /// The packet header does not parse.
    #[error("malformed packet: {0}")]
    Wire(WireError),
    /// tls-auth HMAC mismatch.
    #[error("HMAC verification failed")]
    BadHmac,
    /// tls-crypt or AEAD tag mismatch.
    #[error("authentication tag verification failed")]
    BadTag,
    /// The replay window refused the packet id (checked after authentication).
    #[error("replayed or too old packet id")]
    Replay,
    /// No key installed for the packet's key_id.
    #[error("no key for key_id {0}")]
    UnknownKeyId(u8),
    /// A data opcode this key cannot open (e.g. P_DATA_V2 on a V1-only key).
    #[error("data opcode {0} not valid for this key")]
    WrongDataOpcode(u8),
    /// Plaintext (send) or ciphertext (receive) of zero length.
    #[error("empty payload")]
    EmptyPayload,
    /// CBC padding does not follow PKCS#7.
    #[error("bad CBC padding")]
    BadPadding,
    /// CBC ciphertext not a multiple of the block size.
    #[error("CBC ciphertext length is not a multiple of the block size")]
    BadCiphertextLength,
    /// The caller's destination buffer is too small (our bug, not the peer's).
    #[error("destination buffer too small: need {need}, have {have}")]
    BufferTooSmall {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The send packet id reached its end; the key must be renegotiated.
    #[error("packet id space exhausted; renegotiate")]
    PacketIdExhausted,
    /// tls-crypt-v2 WKc malformed (length field, size limits).
    #[error("malformed tls-crypt-v2 wrapped client key")]
    BadWrappedKey,
    /// tls-crypt-v2 WKc tag mismatch (wrong server key or tampering).
    #[error("tls-crypt-v2 wrapped client key failed authentication")]
    BadWrappedKeyTag,
    /// OpenSSL failed on input it should accept; details are in its error queue.
    #[error("crypto backend failure")]
    Backend,
    /// `fragment`: the packet would need more than 32 pieces (or exceeds the buffer).
    #[error("packet of {0} bytes cannot be fragmented")]
    TooLargeToFragment(usize),
}

impl From<WireError> for CryptoError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => CryptoError::Truncated,
            WireError::BufferTooSmall { need, have } => CryptoError::BufferTooSmall { need, have },
            other => CryptoError::Wire(other),
        }
    }
}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(_: openssl::error::ErrorStack) -> Self {
        CryptoError::Backend
    }
}

impl CryptoError {
    /// The counter this error feeds.
    pub const fn drop_reason(self) -> DropReason {
        match self {
            CryptoError::Truncated | CryptoError::BufferTooSmall { .. } => DropReason::Truncated,
            CryptoError::Wire(w) => w.drop_reason(),
            CryptoError::BadHmac => DropReason::BadHmac,
            CryptoError::BadTag => DropReason::BadTag,
            CryptoError::Replay => DropReason::Replay,
            CryptoError::UnknownKeyId(_) => DropReason::UnknownKeyId,
            CryptoError::WrongDataOpcode(_) => DropReason::WrongDataOpcode,
            CryptoError::EmptyPayload => DropReason::EmptyPayload,
            CryptoError::BadPadding => DropReason::BadPadding,
            CryptoError::BadCiphertextLength => DropReason::BadCiphertextLength,
            CryptoError::PacketIdExhausted | CryptoError::Backend => DropReason::CryptoBackend,
            CryptoError::TooLargeToFragment(_) => DropReason::OversizedFragment,
            CryptoError::BadWrappedKey => DropReason::BadWrappedKey,
            CryptoError::BadWrappedKeyTag => DropReason::BadWrappedKeyTag,
        }
    }
}

/// A key file or key material that cannot be used; the configuration's fault.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// The `-----BEGIN <label>-----` line is missing.
    #[error("no '-----BEGIN {label}-----' line")]
    MissingBegin {
        /// Expected PEM-style label.
        label: &'static str,
    },
    /// The `-----END <label>-----` line is missing.
    #[error("no '-----END {label}-----' line")]
    MissingEnd {
        /// Expected PEM-style label.
        label: &'static str,
    },
    /// A character that is neither a hex digit nor whitespace inside the block.
    #[error("line {line}: invalid character {ch:?} in key")]
    InvalidCharacter {
        /// 1-based line number in the file.
        line: usize,
        /// The offending character.
        ch: char,
    },
    /// An odd number of hex digits.
    #[error("odd number of hex digits in key")]
    OddHexDigits,
    /// The block decodes to a different number of bytes than the format needs.
    #[error("key has {got} bytes, expected {expected}")]
    WrongLength {
        /// Decoded length.
        got: usize,
        /// Required length.
        expected: usize,
    },
    /// Base64 inside a PEM block does not decode.
    #[error("invalid base64 in key: {0}")]
    Base64(#[from] base64::DecodeError),
    /// A cipher key made only of zero bytes (OpenVPN refuses those too).
    #[error("key material is all zeros")]
    AllZero,
    /// The tls-crypt-v2 client key's wrapped part is malformed.
    #[error("malformed tls-crypt-v2 wrapped client key")]
    BadWrappedKey,
    /// Metadata too long to fit the 1024-byte WKc limit.
    #[error("tls-crypt-v2 metadata of {0} bytes is too long")]
    MetadataTooLong(usize),
    /// OpenSSL refused to set up a context with this key.
    #[error("crypto backend refused the key")]
    Backend(#[source] openssl::error::ErrorStack),
}

impl From<openssl::error::ErrorStack> for KeyFileError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        KeyFileError::Backend(e)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn drop_reason_index_is_the_position_in_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn drop_reason_names_are_unique_and_snake_case() {
        let mut seen = HashSet::new();
        for r in DropReason::ALL {
            let s = r.as_str();
            assert!(seen.insert(s), "duplicate name {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }
}
