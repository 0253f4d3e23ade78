//! TCP record framing (section 1.2) as a sans-IO codec.
//!
//! ```text
//! +-------------+------------------------+-------------+-----
//! | len (u16 BE)| OpenVPN packet [len]   | len (u16 BE)| ...
//! +-------------+------------------------+-------------+-----
//! ```
//!
//! [`TcpDecoder`] takes bytes as they come from the stream (any split: half
//! a length prefix, several records at once) and hands out whole packets.
//! Its buffer is allocated once and holds one maximal record, so a reader
//! never has to grow anything per packet. A zero-length or oversized record
//! poisons the decoder: OpenVPN closes the connection in that case, and the
//! stream cannot be resynchronised anyway.

use super::ensure_len;
use crate::proto::error::WireError;

/// Length of the record prefix.
pub const LEN_PREFIX: usize = 2;
/// Default largest record accepted; OpenVPN's control and data packets stay
/// well below this with tun-mtu 1500, and the prefix cannot express more.
pub const DEFAULT_MAX_RECORD: usize = u16::MAX as usize;

/// Incremental decoder of the TCP record stream.
#[derive(Debug)]
pub struct TcpDecoder {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max_record: usize,
    poisoned: Option<WireError>,
}

impl TcpDecoder {
    /// Decoder refusing records longer than `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        let max_record = max_record.clamp(1, DEFAULT_MAX_RECORD);
        Self {
            buf: vec![0u8; LEN_PREFIX + max_record].into_boxed_slice(),
            start: 0,
            end: 0,
            max_record,
            poisoned: None,
        }
    }

    /// Bytes buffered but not yet returned as a packet.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Take as many bytes of `input` as fit; returns the part not taken.
    ///
    /// Call [`Self::next_packet`] until it returns `Ok(None)` and then feed
    /// the rest again: the buffer always has room for at least one record.
    pub fn feed<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.buf.len() - self.end;
        let n = room.min(input.len());
        self.buf[self.end..self.end + n].copy_from_slice(&input[..n]);
        self.end += n;
        &input[n..]
    }

    /// The next whole packet, `Ok(None)` if more bytes are needed.
    ///
    /// After an error every later call returns the same error.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, WireError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let avail = &self.buf[self.start..self.end];
        let Some(prefix) = avail.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if len == 0 {
            self.poisoned = Some(WireError::ZeroLengthRecord);
            return Err(WireError::ZeroLengthRecord);
        }
        if len > self.max_record {
            let e = WireError::OversizedRecord {
                len,
                max: self.max_record,
            };
            self.poisoned = Some(e);
            return Err(e);
        }
        if avail.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let from = self.start + LEN_PREFIX;
        self.start = from + len;
        Ok(self.buf.get(from..from + len))
    }
}

/// Write `packet` with its length prefix into `dst`; returns the framed bytes.
pub fn encode<'d>(packet: &[u8], dst: &'d mut [u8]) -> Result<&'d [u8], WireError> {
    let prefix = length_prefix(packet.len())?;
    let total = LEN_PREFIX + packet.len();
    ensure_len(dst, total)?;
    dst[..LEN_PREFIX].copy_from_slice(&prefix);
    dst[LEN_PREFIX..total].copy_from_slice(packet);
    Ok(&dst[..total])
}

/// Appends `packet` as one record to `out`, the one framing every TCP
/// writer uses. An empty or over-65535-byte packet is refused and nothing
/// is appended. `out` only grows while it is below its high-water mark, so
/// a reused buffer allocates nothing in steady state.
pub fn push_record(out: &mut Vec<u8>, packet: &[u8]) -> Result<(), WireError> {
    let prefix = length_prefix(packet.len())?;
    out.extend_from_slice(&prefix);
    out.extend_from_slice(packet);
    Ok(())
}

/// Appends one record whose packet `fill` writes in place into `max_len`
/// bytes (encrypting straight into the outgoing buffer, no copy). `fill`
/// returns the length it wrote, clamped to `max_len`; 0 appends nothing.
/// Refused like [`push_record`] when `max_len` cannot be framed, before
/// `fill` runs. Returns the packet length appended.
pub fn push_record_with(
    out: &mut Vec<u8>,
    max_len: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> Result<usize, WireError> {
    length_prefix(max_len)?;
    let start = out.len();
    out.resize(start + LEN_PREFIX + max_len, 0);
    let n = out
        .get_mut(start + LEN_PREFIX..)
        .map_or(0, |b| fill(b).min(max_len));
    match length_prefix(n) {
        Ok(prefix) => {
            out[start..start + LEN_PREFIX].copy_from_slice(&prefix);
            out.truncate(start + LEN_PREFIX + n);
            Ok(n)
        }
        // n == 0 (n <= max_len, which was accepted): nothing to send.
        Err(_) => {
            out.truncate(start);
            Ok(0)
        }
    }
}

/// The packets of a buffer of records built by [`push_record`] (trusted,
/// our own): stops at the end or at a torn last record.
pub fn records(buf: &[u8]) -> Records<'_> {
    Records { buf }
}

/// Iterator returned by [`records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.buf.split_first_chunk::<LEN_PREFIX>()?;
        let (p, tail) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        self.buf = tail;
        Some(p)
    }
}

/// The 2-byte prefix for a packet of `len` bytes, for vectored writes.
pub fn length_prefix(len: usize) -> Result<[u8; LEN_PREFIX], WireError> {
    match u16::try_from(len) {
        Ok(0) => Err(WireError::ZeroLengthRecord),
        Ok(l) => Ok(l.to_be_bytes()),
        Err(_) => Err(WireError::OversizedRecord {
            len,
            max: DEFAULT_MAX_RECORD,
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn push_record_with_frames_what_fill_wrote_and_drops_empty() {
        let mut out = vec![9u8];
        assert_eq!(
            push_record_with(&mut out, 100, |b| {
                b[..3].copy_from_slice(b"xyz");
                3
            }),
            Ok(3)
        );
        assert_eq!(out, [9, 0, 3, b'x', b'y', b'z']);
        assert_eq!(push_record_with(&mut out, 100, |_| 0), Ok(0));
        assert_eq!(out.len(), 6, "an empty fill appends nothing");
        assert_eq!(push_record_with(&mut out, 4, |_| 99), Ok(4), "clamped");
        assert!(matches!(
            push_record_with(&mut out, 70_000, |_| unreachable!()),
            Err(WireError::OversizedRecord { .. })
        ));
        assert_eq!(push_record(&mut out, b""), Err(WireError::ZeroLengthRecord));
        assert_eq!(
            records(&out[1..]).map(<[u8]>::len).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    proptest! {
        #[test]
        fn records_never_panic_and_round_trip(
            pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8),
            junk in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut out = Vec::new();
            for p in &pkts {
                prop_assert!(push_record(&mut out, p).is_ok());
            }
            let got: Vec<&[u8]> = records(&out).collect();
            prop_assert_eq!(got.len(), pkts.len());
            for (g, p) in got.iter().zip(&pkts) {
                prop_assert_eq!(*g, &p[..]);
            }
            let _ = records(&junk).count();
        }
    }

    fn drain(d: &mut TcpDecoder, out: &mut Vec<Vec<u8>>) -> Result<(), WireError> {
        while let Some(p) = d.next_packet()? {
            out.push(p.to_vec());
        }
        Ok(())
    }

    #[test]
    fn splits_several_records_in_one_read() {
        let mut d = TcpDecoder::new(1500);
        let rest = d.feed(&[0, 1, 0xaa, 0, 2, 0xbb, 0xcc, 0]);
        assert!(rest.is_empty());
        let mut out = Vec::new();
        drain(&mut d, &mut out).unwrap();
        assert_eq!(out, vec![vec![0xaa], vec![0xbb, 0xcc]]);
        assert_eq!(d.buffered(), 1);
    }

    #[test]
    fn reassembles_records_split_byte_by_byte() {
        let mut d = TcpDecoder::new(1500);
        let mut out = Vec::new();
        for b in [0u8, 3, 1, 2, 3] {
            d.feed(&[b]);
            drain(&mut d, &mut out).unwrap();
        }
        assert_eq!(out, vec![vec![1, 2, 3]]);
    }

    #[test]
    fn zero_length_record_is_an_error_and_poisons() {
        let mut d = TcpDecoder::new(1500);
        d.feed(&[0, 0, 0, 1, 5]);
        assert_eq!(d.next_packet(), Err(WireError::ZeroLengthRecord));
        assert_eq!(d.next_packet(), Err(WireError::ZeroLengthRecord));
    }

    #[test]
    fn oversized_record_is_an_error() {
        let mut d = TcpDecoder::new(100);
        d.feed(&[0, 101]);
        assert_eq!(
            d.next_packet(),
            Err(WireError::OversizedRecord { len: 101, max: 100 })
        );
    }

    #[test]
    fn feed_returns_what_does_not_fit() {
        let mut d = TcpDecoder::new(4);
        let input = [0u8, 4, 1, 2, 3, 4, 0, 1, 9];
        let rest = d.feed(&input);
        assert_eq!(rest, &[0, 1, 9]);
        assert_eq!(d.next_packet().unwrap(), Some(&[1u8, 2, 3, 4][..]));
        let rest = d.feed(rest);
        assert!(rest.is_empty());
        assert_eq!(d.next_packet().unwrap(), Some(&[9u8][..]));
    }

    #[test]
    fn encoder_refuses_empty_and_small_buffers() {
        let mut dst = [0u8; 4];
        assert_eq!(encode(&[], &mut dst), Err(WireError::ZeroLengthRecord));
        assert!(matches!(
            encode(&[1, 2, 3], &mut dst),
            Err(WireError::BufferTooSmall { .. })
        ));
        assert_eq!(encode(&[1, 2], &mut dst).unwrap(), &[0, 2, 1, 2]);
    }

    proptest! {
        #[test]
        fn any_split_of_an_encoded_stream_decodes_to_the_packets(
            packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..50), 0..10),
            cuts in proptest::collection::vec(1usize..20, 1..40),
        ) {
            let mut stream = Vec::new();
            for p in &packets {
                let mut buf = vec![0u8; p.len() + 2];
                stream.extend_from_slice(encode(p, &mut buf).unwrap());
            }
            let mut d = TcpDecoder::new(64);
            let mut out = Vec::new();
            let mut rest: &[u8] = &stream;
            let mut i = 0;
            while !rest.is_empty() {
                let take = cuts[i % cuts.len()].min(rest.len());
                let (chunk, tail) = rest.split_at(take);
                let mut left = d.feed(chunk);
                drain(&mut d, &mut out).unwrap();
                while !left.is_empty() {
                    left = d.feed(left);
                    drain(&mut d, &mut out).unwrap();
                }
                rest = tail;
                i += 1;
            }
            prop_assert_eq!(out, packets);
        }

        #[test]
        fn decoder_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = TcpDecoder::new(64);
            let mut left: &[u8] = &b;
            for _ in 0..10 {
                left = d.feed(left);
                while let Ok(Some(_)) = d.next_packet() {}
            }
        }
    }
}
