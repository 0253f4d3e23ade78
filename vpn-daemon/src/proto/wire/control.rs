//! Plain control packets (section 2.2): hard/soft resets, P_CONTROL_V1, P_ACK_V1, P_CONTROL_WKC_V1.
//!
//! This is the layout without tls-auth or tls-crypt. The wrappers in
//! [`super::tls_auth`] and [`super::tls_crypt`] turn a wrapped packet into
//! exactly these bytes (and back), so one parser serves all three modes.
//!
//! ```text
//!  0      1                9        10
//! +------+----------------+--------+-------------------+--------------------+------------+---------+
//! |op_kid| own session id |ack cnt | acked ids (4 × n) | remote sid (8)     | message id | payload |
//! |  1   |       8        |   1    |   n ≤ 8           | only if n > 0      | 4, not ACK |   ...   |
//! +------+----------------+--------+-------------------+--------------------+------------+---------+
//! ```

use super::opcode::{KeyId, Opcode, first_byte, split_first_byte};
use super::{ensure_len, read_u32};
use crate::proto::error::WireError;

/// At most this many acks are accepted on parse (RELIABLE_ACK_SIZE).
pub const MAX_ACKS: usize = 8;
/// OpenVPN puts at most this many acks on a packet that also carries a message.
pub const MAX_PIGGYBACK_ACKS: usize = 4;
/// Length of a session id.
pub const SESSION_ID_LEN: usize = 8;

/// Byte ranges of the fixed part.
pub mod field {
    use core::ops::Range;

    /// Opcode and key id.
    pub const OP_KID: usize = 0;
    /// Sender's own session id.
    pub const SESSION_ID: Range<usize> = 1..9;
    /// Number of acks that follow.
    pub const ACK_COUNT: usize = 9;
    /// First acked id.
    pub const ACKS: usize = 10;
}

/// Length of `op_kid || session id`: the part every wrapper keeps in clear.
pub const HEADER_LEN: usize = 9;

/// An 8-byte control-channel session id; chosen at random, never zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; SESSION_ID_LEN]);

impl SessionId {
    /// True for the all-zero id, which no valid session uses.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; SESSION_ID_LEN]
    }

    /// Random non-zero session id.
    pub fn random() -> Result<Self, openssl::error::ErrorStack> {
        loop {
            let mut b = [0u8; SESSION_ID_LEN];
            openssl::rand::rand_bytes(&mut b)?;
            let id = Self(b);
            if !id.is_zero() {
                return Ok(id);
            }
        }
    }

    fn read(b: &[u8], off: usize) -> Result<Self, WireError> {
        let s = b
            .get(off..off + SESSION_ID_LEN)
            .ok_or(WireError::Truncated)?;
        let mut id = [0u8; SESSION_ID_LEN];
        id.copy_from_slice(s);
        Ok(Self(id))
    }
}

/// The ack block: up to 8 acked message ids and, if any, the peer's session id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckBlock {
    ids: [u32; MAX_ACKS],
    len: u8,
    remote: Option<SessionId>,
}

impl AckBlock {
    /// No acks.
    pub const EMPTY: AckBlock = AckBlock {
        ids: [0; MAX_ACKS],
        len: 0,
        remote: None,
    };

    /// Acks for `ids` of the session `remote` (the receiver's own id).
    pub fn new(ids: &[u32], remote: SessionId) -> Result<Self, WireError> {
        if ids.len() > MAX_ACKS {
            // ids.len() > 8 and the error reports it as u8, saturating.
            return Err(WireError::TooManyAcks(
                u8::try_from(ids.len()).unwrap_or(u8::MAX),
            ));
        }
        if ids.is_empty() {
            return Ok(Self::EMPTY);
        }
        let mut a = Self {
            ids: [0; MAX_ACKS],
            len: 0,
            remote: Some(remote),
        };
        a.ids[..ids.len()].copy_from_slice(ids);
        a.len = ids.len() as u8;
        Ok(a)
    }

    /// The acked message ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..usize::from(self.len).min(MAX_ACKS)]
    }

    /// The acknowledged session (present iff there is at least one ack).
    pub fn remote_session_id(&self) -> Option<SessionId> {
        self.remote
    }

    /// No acks at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Encoded length: count byte, ids, remote session id if any.
    pub fn buffer_len(&self) -> usize {
        1 + 4 * self.ids().len() + if self.is_empty() { 0 } else { SESSION_ID_LEN }
    }

    /// Parse an ack block at the start of `b`; returns it and its length.
    pub fn parse(b: &[u8]) -> Result<(Self, usize), WireError> {
        let n = *b.first().ok_or(WireError::Truncated)?;
        if usize::from(n) > MAX_ACKS {
            return Err(WireError::TooManyAcks(n));
        }
        let mut a = Self::EMPTY;
        let mut off = 1;
        for i in 0..usize::from(n) {
            a.ids[i] = read_u32(b, off)?;
            off += 4;
        }
        a.len = n;
        if n > 0 {
            a.remote = Some(SessionId::read(b, off)?);
            off += SESSION_ID_LEN;
        }
        Ok((a, off))
    }

    /// Write at the start of `dst`; returns the bytes written.
    pub fn emit(&self, dst: &mut [u8]) -> Result<usize, WireError> {
        ensure_len(dst, self.buffer_len())?;
        dst[0] = self.len;
        let mut off = 1;
        for id in self.ids() {
            dst[off..off + 4].copy_from_slice(&id.to_be_bytes());
            off += 4;
        }
        if let Some(r) = self.remote.filter(|_| !self.is_empty()) {
            dst[off..off + SESSION_ID_LEN].copy_from_slice(&r.0);
            off += SESSION_ID_LEN;
        }
        Ok(off)
    }
}

/// Zero-copy view of a plain control packet.
#[derive(Debug, Clone)]
pub struct ControlPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ControlPacket<T> {
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

    /// Validate every length the accessors rely on.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let first = *b.first().ok_or(WireError::Truncated)?;
        let (op, _) = split_first_byte(first)?;
        if op.is_data() {
            return Err(WireError::UnexpectedOpcode(op.as_u8()));
        }
        if b.len() < field::ACK_COUNT + 1 {
            return Err(WireError::Truncated);
        }
        let n = usize::from(b[field::ACK_COUNT]);
        if n > MAX_ACKS {
            return Err(WireError::TooManyAcks(b[field::ACK_COUNT]));
        }
        if b.len() < self.message_id_offset_unchecked(op, n) {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    fn message_id_offset_unchecked(&self, op: Opcode, n: usize) -> usize {
        let after_acks = field::ACKS + 4 * n + if n > 0 { SESSION_ID_LEN } else { 0 };
        after_acks + if op.has_message_id() { 4 } else { 0 }
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Opcode (validated by `check_len`; a bad byte reads as P_CONTROL_V1).
    pub fn opcode(&self) -> Opcode {
        split_first_byte(self.buffer.as_ref()[field::OP_KID]).map_or(Opcode::ControlV1, |(o, _)| o)
    }

    /// Key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::from_bits(self.buffer.as_ref()[field::OP_KID])
    }

    /// Sender's own session id.
    pub fn session_id(&self) -> SessionId {
        let mut id = [0u8; SESSION_ID_LEN];
        id.copy_from_slice(&self.buffer.as_ref()[field::SESSION_ID]);
        SessionId(id)
    }

    /// Number of acks.
    pub fn ack_count(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::ACK_COUNT]).min(MAX_ACKS)
    }

    /// Acked id `i`, `None` past the count.
    pub fn ack(&self, i: usize) -> Option<u32> {
        if i >= self.ack_count() {
            return None;
        }
        read_u32(self.buffer.as_ref(), field::ACKS + 4 * i).ok()
    }

    /// The whole ack block.
    pub fn acks(&self) -> AckBlock {
        AckBlock::parse(&self.buffer.as_ref()[field::ACK_COUNT..])
            .map_or(AckBlock::EMPTY, |(a, _)| a)
    }

    /// Remote session id (present iff there are acks).
    pub fn remote_session_id(&self) -> Option<SessionId> {
        let n = self.ack_count();
        if n == 0 {
            return None;
        }
        SessionId::read(self.buffer.as_ref(), field::ACKS + 4 * n).ok()
    }

    fn after_acks(&self) -> usize {
        let n = self.ack_count();
        field::ACKS + 4 * n + if n > 0 { SESSION_ID_LEN } else { 0 }
    }

    /// Message packet-id; `None` for P_ACK_V1.
    pub fn message_id(&self) -> Option<u32> {
        if !self.opcode().has_message_id() {
            return None;
        }
        read_u32(self.buffer.as_ref(), self.after_acks()).ok()
    }

    /// Offset of the payload.
    pub fn payload_offset(&self) -> usize {
        self.after_acks() + if self.opcode().has_message_id() { 4 } else { 0 }
    }

    /// Payload after the message id (TLS bytes, or TLVs in a hard reset).
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(self.payload_offset()..)
            .unwrap_or(&[])
    }
}

/// High-level representation of a plain control packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRepr<'a> {
    /// Control opcode.
    pub opcode: Opcode,
    /// Key id of the key state the packet belongs to.
    pub key_id: KeyId,
    /// Sender's session id.
    pub session_id: SessionId,
    /// Acks carried.
    pub acks: AckBlock,
    /// Message id; must be `Some` exactly when `opcode.has_message_id()`.
    pub message_id: Option<u32>,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> ControlRepr<'a> {
    /// Parse a checked view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a ControlPacket<&'a T>) -> Result<Self, WireError> {
        p.check_len()?;
        Ok(Self {
            opcode: p.opcode(),
            key_id: p.key_id(),
            session_id: p.session_id(),
            acks: p.acks(),
            message_id: p.message_id(),
            payload: p.payload(),
        })
    }

    /// Parse raw bytes.
    pub fn parse_bytes(b: &'a [u8]) -> Result<Self, WireError> {
        let p = ControlPacket::new_checked(b)?;
        Ok(Self {
            opcode: p.opcode(),
            key_id: p.key_id(),
            session_id: p.session_id(),
            acks: p.acks(),
            message_id: p.message_id(),
            payload: b.get(p.payload_offset()..).unwrap_or(&[]),
        })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.acks.buffer_len()
            + if self.opcode.has_message_id() { 4 } else { 0 }
            + self.payload.len()
    }

    /// Write into the start of `dst`; returns the bytes written.
    pub fn emit(&self, dst: &mut [u8]) -> Result<usize, WireError> {
        if self.opcode.is_data() || self.opcode.has_message_id() != self.message_id.is_some() {
            return Err(WireError::UnexpectedOpcode(self.opcode.as_u8()));
        }
        let len = self.buffer_len();
        ensure_len(dst, len)?;
        dst[field::OP_KID] = first_byte(self.opcode, self.key_id);
        dst[field::SESSION_ID].copy_from_slice(&self.session_id.0);
        let mut off = field::ACK_COUNT + self.acks.emit(&mut dst[field::ACK_COUNT..])?;
        if let Some(id) = self.message_id {
            dst[off..off + 4].copy_from_slice(&id.to_be_bytes());
            off += 4;
        }
        dst[off..off + self.payload.len()].copy_from_slice(self.payload);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn parses_plain_client_reset_12_7() {
        let b = h("38 6891923fa3103437 00 00000000");
        let r = ControlRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.opcode, Opcode::HardResetClientV2);
        assert_eq!(
            r.session_id.0,
            [0x68, 0x91, 0x92, 0x3f, 0xa3, 0x10, 0x34, 0x37]
        );
        assert!(r.acks.is_empty());
        assert_eq!(r.message_id, Some(0));
        assert!(r.payload.is_empty());
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn parses_plain_ack_12_7_without_message_id() {
        let b = h("28 aeb9afe1f01d79c8 01 00000000 dd85db535623b02e");
        let p = ControlPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.opcode(), Opcode::AckV1);
        assert_eq!(p.ack(0), Some(0));
        assert_eq!(p.ack(1), None);
        assert_eq!(p.remote_session_id().unwrap().0, h("dd85db535623b02e")[..]);
        assert_eq!(p.message_id(), None);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn parses_plain_control_with_ack_12_7() {
        let b = h("20 7819bf2ebcd19a45 01 00000000 eafebfa4418ae31b 00000001 160301");
        let r = ControlRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.acks.ids(), &[0]);
        assert_eq!(
            r.acks.remote_session_id().unwrap().0,
            h("eafebfa4418ae31b")[..]
        );
        assert_eq!(r.message_id, Some(1));
        assert_eq!(r.payload, &[0x16, 0x03, 0x01]);
    }

    #[test]
    fn rejects_ack_array_overflow() {
        let mut b = vec![0x28, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        b.extend(std::iter::repeat_n(0u8, 9 * 4 + 8));
        assert_eq!(
            ControlPacket::new_checked(&b[..]).err(),
            Some(WireError::TooManyAcks(9))
        );
        b[9] = 8;
        assert!(ControlPacket::new_checked(&b[..]).is_ok());
    }

    #[test]
    fn rejects_missing_remote_session_id_and_message_id() {
        let b = h("28 aeb9afe1f01d79c8 01 00000000 dd85db535623b0");
        assert_eq!(
            ControlPacket::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
        let b = h("20 aeb9afe1f01d79c8 00 000000");
        assert_eq!(
            ControlPacket::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
        let b = h("28 aeb9afe1f01d79c8 00");
        assert!(ControlPacket::new_checked(&b[..]).is_ok());
    }

    #[test]
    fn rejects_data_and_obsolete_opcodes() {
        let b = h("48 aeb9afe1f01d79c8 00 00000000");
        assert_eq!(
            ControlPacket::new_checked(&b[..]).err(),
            Some(WireError::UnexpectedOpcode(9))
        );
        let b = h("08 aeb9afe1f01d79c8 00 00000000");
        assert_eq!(
            ControlPacket::new_checked(&b[..]).err(),
            Some(WireError::ObsoleteOpcode(1))
        );
    }

    #[test]
    fn emit_refuses_small_buffer_and_inconsistent_message_id() {
        let r = ControlRepr {
            opcode: Opcode::ControlV1,
            key_id: KeyId::ZERO,
            session_id: SessionId([1; 8]),
            acks: AckBlock::EMPTY,
            message_id: Some(3),
            payload: b"abc",
        };
        let mut small = [0u8; 5];
        assert!(matches!(
            r.emit(&mut small),
            Err(WireError::BufferTooSmall { .. })
        ));
        let bad = ControlRepr {
            message_id: None,
            ..r
        };
        let mut big = [0u8; 64];
        assert!(bad.emit(&mut big).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = ControlPacket::new_checked(&b[..]) {
                let _ = (p.opcode(), p.key_id(), p.session_id(), p.acks(), p.message_id(), p.payload());
                for i in 0..10 { let _ = p.ack(i); }
                let _ = p.remote_session_id();
            }
        }

        #[test]
        fn parse_then_emit_gives_back_the_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(r) = ControlRepr::parse_bytes(&b) {
                let mut out = vec![0u8; r.buffer_len()];
                prop_assert_eq!(r.emit(&mut out), Ok(b.len()));
                prop_assert_eq!(out, b);
            }
        }

        #[test]
        fn emit_then_parse_gives_back_the_repr(
            op in prop::sample::select(vec![3u8, 4, 5, 7, 8, 10, 11]),
            kid in 0u8..8,
            sid in any::<[u8; 8]>(),
            rsid in any::<[u8; 8]>(),
            acks in proptest::collection::vec(any::<u32>(), 0..=8),
            mid in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let opcode = Opcode::from_u8(op).unwrap();
            let r = ControlRepr {
                opcode,
                key_id: KeyId::from_bits(kid),
                session_id: SessionId(sid),
                acks: AckBlock::new(&acks, SessionId(rsid)).unwrap(),
                message_id: opcode.has_message_id().then_some(mid),
                payload: &payload,
            };
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out).unwrap();
            prop_assert_eq!(ControlRepr::parse_bytes(&out).unwrap(), r);
        }
    }
}
