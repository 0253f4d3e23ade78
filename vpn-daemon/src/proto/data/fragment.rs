//! `fragment N`: OpenVPN's own fragmentation of data-channel plaintexts (2.6 `fragment.c`).
//!
//! With `fragment` on, every data-channel plaintext (after compression
//! framing, before encryption) starts with a 4-byte big-endian header.
//! A plaintext longer than the maximum fragment size is cut into up to 32
//! pieces, each encrypted as a packet of its own; the receiver decrypts
//! each piece and joins them again.
//!
//! ```text
//!  31               17 16 15        10 9              2 1   0
//! +-------------------+--+------------+----------------+-----+
//! | size >> 2 (LAST)  |  | frag id    | seq id         | type|   type: 0 WHOLE, 1 NOT LAST,
//! |  14 bits          |  |  5 bits    |  8 bits        |     |         2 LAST, 3 TEST
//! +-------------------+--+------------+----------------+-----+
//!  bits 15..30 hold the size field, which only LAST carries; WHOLE and
//!  NOT LAST leave them free ("extra").
//! ```
//!
//! Reassembly keeps 2.6's bounds: 25 sequence slots per peer, each holding
//! one packet of at most the configured capacity, a packet still
//! incomplete 10 s after its last piece is forgotten (checked every 5 s),
//! and at most 32 pieces per packet. Everything a peer sends that 2.6
//! would refuse is a [`DropReason`]; in addition we refuse what a 2.6
//! sender never produces (a piece that repeats or overlaps one already
//! held, a last piece longer than the size it announces, empty pieces), so
//! a peer cannot make us build a packet out of overwritten parts.
//!
//! Nothing here allocates after [`Fragmenter::new`]: outgoing pieces are
//! built in an owned buffer, reassembly uses preallocated slots.

use crate::proto::error::DropReason;

/// Bytes of the fragment header.
pub const HEADER_LEN: usize = 4;
/// Reassembly slots (2.6 `N_FRAG_BUF`).
pub const N_FRAG_BUF: usize = 25;
/// Seconds an incomplete packet is kept after its last piece (2.6 `FRAG_TTL_SEC`).
pub const FRAG_TTL_SECS: u64 = 10;
/// Seconds between expiry sweeps (2.6 `FRAG_WAKEUP_INTERVAL`).
pub const FRAG_WAKEUP_SECS: u64 = 5;
/// Most pieces one packet may be cut into (2.6 `MAX_FRAGS`).
pub const MAX_FRAGS: usize = 32;
/// The smallest `fragment N` 2.6 accepts.
pub const MIN_FRAGMENT: u32 = 68;

const TYPE_MASK: u32 = 0x3;
const SEQ_ID_SHIFT: u32 = 2;
const SEQ_ID_MASK: u32 = 0xff;
const FRAG_ID_SHIFT: u32 = 10;
const FRAG_ID_MASK: u32 = 0x1f;
const SIZE_SHIFT: u32 = 15;
const SIZE_MASK: u32 = 0x3fff;
const SIZE_ROUND_SHIFT: u32 = 2;
const SIZE_ROUND_MASK: usize = (1 << SIZE_ROUND_SHIFT) - 1;
const MAP_FULL: u32 = u32::MAX;
/// The largest size the 14-bit field can carry.
const MAX_WIRE_SIZE: usize = (SIZE_MASK as usize) << SIZE_ROUND_SHIFT;

/// What a fragment header says the piece is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragType {
    /// A packet that was not cut.
    Whole,
    /// A piece followed by more.
    NotLast,
    /// The final piece; carries the piece size of the packet.
    Last,
    /// Reserved by 2.6 for MTU probing, never sent.
    Test,
}

/// A parsed fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Piece type.
    pub kind: FragType,
    /// Packet sequence number (shared by all pieces of one packet).
    pub seq_id: u8,
    /// Index of the piece within the packet.
    pub frag_id: u8,
    /// Size field (LAST only, already multiplied by 4).
    pub size: usize,
}

impl FragmentHeader {
    /// Decode the 32-bit header word.
    pub fn from_word(w: u32) -> Self {
        let kind = match w & TYPE_MASK {
            0 => FragType::Whole,
            1 => FragType::NotLast,
            2 => FragType::Last,
            _ => FragType::Test,
        };
        Self {
            kind,
            seq_id: ((w >> SEQ_ID_SHIFT) & SEQ_ID_MASK) as u8,
            frag_id: ((w >> FRAG_ID_SHIFT) & FRAG_ID_MASK) as u8,
            size: (((w >> SIZE_SHIFT) & SIZE_MASK) << SIZE_ROUND_SHIFT) as usize,
        }
    }

    /// Encode as 2.6 does (`fragment_prepend_flags`): the size only on LAST.
    pub fn to_word(self) -> u32 {
        let t = match self.kind {
            FragType::Whole => 0,
            FragType::NotLast => 1,
            FragType::Last => 2,
            FragType::Test => 3,
        };
        let mut w = t
            | ((u32::from(self.seq_id) & SEQ_ID_MASK) << SEQ_ID_SHIFT)
            | ((u32::from(self.frag_id) & FRAG_ID_MASK) << FRAG_ID_SHIFT);
        if self.kind == FragType::Last {
            w |= (((self.size >> SIZE_ROUND_SHIFT) as u32) & SIZE_MASK) << SIZE_SHIFT;
        }
        w
    }
}

/// 2.6's `optimal_fragment_size`: without needing more pieces, shrink the
/// piece size so that the last piece is not much smaller than the others.
/// Always a multiple of 4 (the size field counts 4-byte units).
pub fn optimal_fragment_size(len: usize, max_frag_size: usize) -> usize {
    let mfs_aligned = (max_frag_size & !SIZE_ROUND_MASK).max(4);
    let div = len / mfs_aligned;
    let rem = len % mfs_aligned;
    if div > 0 && rem > 0 && rem < mfs_aligned * 3 / 4 {
        let shrunk = (max_frag_size - (max_frag_size.saturating_sub(rem)) / (div + 1)
            + SIZE_ROUND_MASK)
            & !SIZE_ROUND_MASK;
        mfs_aligned.min(shrunk)
    } else {
        mfs_aligned
    }
}

/// How the data-channel key wraps each piece, for [`max_fragment_size`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyOverhead {
    /// Opcode byte (+ 3 bytes peer-id for P_DATA_V2).
    pub header: usize,
    /// AEAD: packet id + tag. CBC: IV + HMAC (the packet id is inside the ciphertext).
    pub crypto: usize,
    /// CBC cipher (block size 16): ciphertext is padded.
    pub cbc: bool,
}

/// CBC block size of every CBC cipher we speak (AES).
const CBC_BLOCK: usize = 16;
/// Short-form packet id inside a CBC plaintext.
const CBC_PACKET_ID: usize = 4;

/// 2.6's `frame_calculate_fragment`: the largest plaintext (after
/// compression framing, before the fragment header) one packet may carry
/// so that the UDP payload stays within `fragment` bytes, or within
/// `fragment` bytes of outer IP packet with `fragment N mtu`
/// (`encap_overhead` = IP + UDP header, 28 or 48).
pub fn max_fragment_size(fragment: u32, encap_overhead: Option<usize>, key: KeyOverhead) -> usize {
    let overhead = key.header + key.crypto + encap_overhead.unwrap_or(0);
    let mut target = (fragment as usize).saturating_sub(overhead);
    if key.cbc {
        // One padding byte at least, and the padded length within target.
        target = (target / CBC_BLOCK * CBC_BLOCK).saturating_sub(1);
    }
    let mut max = target.saturating_sub(HEADER_LEN);
    if key.cbc {
        max = max.saturating_sub(CBC_PACKET_ID);
    }
    // 2.6 underflows on absurd combinations; we keep a usable minimum.
    max.max(4)
}

/// `fragment N [mtu]` as the data channel applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentConfig {
    /// N: the largest UDP payload (or, with `mtu`, outer IP packet).
    pub size: u32,
    /// With `mtu`: the IP + UDP header bytes N includes (28 IPv4, 48 IPv6).
    pub encap_overhead: Option<usize>,
    /// Largest packet (after compression framing) cut or joined.
    pub capacity: usize,
}

impl FragmentConfig {
    /// The piece payload limit with a key of this overhead.
    pub fn max_fragment_size(&self, key: KeyOverhead) -> usize {
        max_fragment_size(self.size, self.encap_overhead, key)
    }
}

/// Counters of what the fragment layer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmentStats {
    /// Packets sent whole (with a WHOLE header).
    pub tx_whole: u64,
    /// Packets sent cut into pieces.
    pub tx_fragmented: u64,
    /// Pieces sent.
    pub tx_pieces: u64,
    /// Outgoing pieces discarded because a new packet came before they were sent.
    pub tx_abandoned: u64,
    /// Pieces received.
    pub rx_pieces: u64,
    /// Packets completed from pieces.
    pub rx_reassembled: u64,
    /// Incomplete packets forgotten after [`FRAG_TTL_SECS`] or pushed out of the window.
    pub rx_expired: u64,
}

/// What [`Fragmenter::incoming`] made of a plaintext.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a, 'p> {
    /// An unfragmented packet: the input without its header.
    Whole(&'p mut [u8]),
    /// The last missing piece arrived: the joined packet.
    Complete(&'a [u8]),
    /// A piece was stored; nothing to deliver yet.
    Pending,
}

#[derive(Debug)]
struct Slot {
    defined: bool,
    size: usize,
    map: u32,
    len: usize,
    timestamp: u64,
}

/// Fragmentation and reassembly state of one peer (2.6 `fragment_master`).
#[derive(Debug)]
pub struct Fragmenter {
    max_frag_size: usize,
    capacity: usize,
    // --- outgoing ---
    out_seq_id: u8,
    out_frag_id: u8,
    out_frag_size: usize,
    /// The packet being cut, and how much of it was sent.
    pending: Box<[u8]>,
    pending_len: usize,
    pending_pos: usize,
    /// Header + one piece, handed to the sealer.
    piece: Box<[u8]>,
    // --- incoming ---
    seq_id: u8,
    index: usize,
    slots: Vec<Slot>,
    /// `N_FRAG_BUF` buffers of `capacity` bytes, back to back.
    bufs: Box<[u8]>,
    next_sweep: u64,
    stats: FragmentStats,
}

impl Fragmenter {
    /// State for packets (after compression framing) of at most `capacity`
    /// bytes, cut into pieces of at most `max_frag_size` bytes.
    /// `initial_seq_id` should be random (2.6 does so to make collisions
    /// across restarts unlikely).
    pub fn new(capacity: usize, max_frag_size: usize, initial_seq_id: u8) -> Self {
        let capacity = capacity.max(1);
        Self {
            max_frag_size: max_frag_size.clamp(4, MAX_WIRE_SIZE),
            capacity,
            out_seq_id: initial_seq_id,
            out_frag_id: 0,
            out_frag_size: 0,
            pending: vec![0u8; capacity].into_boxed_slice(),
            pending_len: 0,
            pending_pos: 0,
            piece: vec![0u8; capacity + HEADER_LEN].into_boxed_slice(),
            seq_id: 0,
            index: 0,
            slots: (0..N_FRAG_BUF)
                .map(|_| Slot {
                    defined: false,
                    size: 0,
                    map: 0,
                    len: 0,
                    timestamp: 0,
                })
                .collect(),
            bufs: vec![0u8; capacity * N_FRAG_BUF].into_boxed_slice(),
            next_sweep: 0,
            stats: FragmentStats::default(),
        }
    }

    /// Largest piece payload (recomputed when a key with another cipher is installed).
    pub fn max_frag_size(&self) -> usize {
        self.max_frag_size
    }

    /// Change the largest piece payload.
    pub fn set_max_frag_size(&mut self, max_frag_size: usize) {
        self.max_frag_size = max_frag_size.clamp(4, MAX_WIRE_SIZE);
    }

    /// Largest packet sent or reassembled.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters.
    pub fn stats(&self) -> FragmentStats {
        self.stats
    }

    // ----- outgoing --------------------------------------------------------

    /// Start sending `packet`: returns the first plaintext to encrypt
    /// (header + whole packet, or header + first piece). Further pieces
    /// come from [`Self::next_piece`]. `None` if `packet` is larger than
    /// the capacity or would need more than [`MAX_FRAGS`] pieces.
    pub fn outgoing(&mut self, packet: &[u8]) -> Option<&[u8]> {
        if self.pending_pos < self.pending_len {
            self.stats.tx_abandoned += 1;
        }
        self.pending_len = 0;
        self.pending_pos = 0;
        if packet.len() > self.capacity {
            return None;
        }
        if packet.len() <= self.max_frag_size {
            let n = HEADER_LEN + packet.len();
            let out = self.piece.get_mut(..n)?;
            let h = FragmentHeader {
                kind: FragType::Whole,
                seq_id: 0,
                frag_id: 0,
                size: 0,
            };
            out[..HEADER_LEN].copy_from_slice(&h.to_word().to_be_bytes());
            out[HEADER_LEN..].copy_from_slice(packet);
            self.stats.tx_whole += 1;
            return self.piece.get(..n);
        }
        let size = optimal_fragment_size(packet.len(), self.max_frag_size);
        if packet.len() > size * MAX_FRAGS {
            return None;
        }
        self.pending
            .get_mut(..packet.len())?
            .copy_from_slice(packet);
        self.pending_len = packet.len();
        self.out_frag_size = size;
        self.out_seq_id = self.out_seq_id.wrapping_add(1);
        self.out_frag_id = 0;
        self.stats.tx_fragmented += 1;
        self.next_piece()
    }

    /// Whether pieces of the current packet are still to be sent.
    pub fn has_pending(&self) -> bool {
        self.pending_pos < self.pending_len
    }

    /// The next piece (header + payload) of the packet being cut, if any.
    pub fn next_piece(&mut self) -> Option<&[u8]> {
        if !self.has_pending() {
            return None;
        }
        let left = self.pending_len - self.pending_pos;
        let last = left <= self.out_frag_size;
        let take = if last { left } else { self.out_frag_size };
        let h = FragmentHeader {
            kind: if last {
                FragType::Last
            } else {
                FragType::NotLast
            },
            seq_id: self.out_seq_id,
            frag_id: self.out_frag_id,
            size: self.out_frag_size,
        };
        let src = self
            .pending
            .get(self.pending_pos..self.pending_pos + take)?;
        let n = HEADER_LEN + take;
        let out = self.piece.get_mut(..n)?;
        out[..HEADER_LEN].copy_from_slice(&h.to_word().to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(src);
        self.pending_pos += take;
        self.out_frag_id = self.out_frag_id.wrapping_add(1);
        self.stats.tx_pieces += 1;
        self.piece.get(..n)
    }

    // ----- incoming --------------------------------------------------------

    /// Handle a decrypted plaintext with its fragment header (2.6
    /// `fragment_incoming`). `now_secs` is monotonic seconds.
    pub fn incoming<'a, 'p>(
        &'a mut self,
        now_secs: u64,
        plaintext: &'p mut [u8],
    ) -> Result<Incoming<'a, 'p>, DropReason> {
        if now_secs >= self.next_sweep {
            self.sweep(now_secs);
        }
        let (hdr, payload) = plaintext
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(DropReason::BadFragmentHeader)?;
        let word = u32::from_be_bytes(*hdr);
        let h = FragmentHeader::from_word(word);
        match h.kind {
            FragType::Whole => {
                // 2.6 tests the low byte against both id masks unshifted.
                if word & (SEQ_ID_MASK | FRAG_ID_MASK) != 0 {
                    return Err(DropReason::BadFragmentHeader);
                }
                Ok(Incoming::Whole(payload))
            }
            FragType::Test => Err(DropReason::BadFragmentHeader),
            FragType::NotLast | FragType::Last => {
                self.stats.rx_pieces += 1;
                self.piece_in(now_secs, h, payload)
            }
        }
    }

    fn piece_in<'a, 'p>(
        &'a mut self,
        now_secs: u64,
        h: FragmentHeader,
        payload: &[u8],
    ) -> Result<Incoming<'a, 'p>, DropReason> {
        let last = h.kind == FragType::Last;
        let size = if last { h.size } else { payload.len() };
        let n = usize::from(h.frag_id);
        if size & SIZE_ROUND_MASK != 0 || size == 0 || payload.is_empty() {
            return Err(DropReason::BadFragmentHeader);
        }
        // A NOT LAST piece at the highest id could never be followed by its LAST.
        if !last && n == MAX_FRAGS - 1 {
            return Err(DropReason::BadFragmentHeader);
        }
        if payload.len() > size {
            return Err(DropReason::OversizedFragment);
        }
        let offset = n * size;
        let end = offset + payload.len();
        if end > self.capacity {
            return Err(DropReason::OversizedFragment);
        }
        let bits = if last { MAP_FULL << n } else { 1u32 << n };
        let cap = self.capacity;
        let i = self.slot_for(h.seq_id);
        let slot = self.slots.get_mut(i).ok_or(DropReason::BadFragmentHeader)?;
        if !slot.defined || slot.size != size {
            slot.defined = true;
            slot.size = size;
            slot.map = 0;
            slot.len = 0;
        }
        if slot.map & bits != 0 {
            return Err(DropReason::OverlappingFragment);
        }
        let buf = self
            .bufs
            .get_mut(i * cap..(i + 1) * cap)
            .ok_or(DropReason::OversizedFragment)?;
        buf.get_mut(offset..end)
            .ok_or(DropReason::OversizedFragment)?
            .copy_from_slice(payload);
        slot.map |= bits;
        slot.len = slot.len.max(end);
        slot.timestamp = now_secs;
        if slot.map != MAP_FULL {
            return Ok(Incoming::Pending);
        }
        slot.defined = false;
        let len = slot.len;
        self.stats.rx_reassembled += 1;
        Ok(Incoming::Complete(
            self.bufs
                .get(i * cap..i * cap + len)
                .ok_or(DropReason::OversizedFragment)?,
        ))
    }

    /// 2.6 `fragment_list_get_buf`: a window of 25 sequence ids ending at
    /// the newest seen; moving it forward frees the slots it passes, a jump
    /// of 25 or more (either way) resets it.
    fn slot_for(&mut self, seq_id: u8) -> usize {
        // modulo_subtract(seq_id, list_seq, 256) in -128..=127.
        let mut diff = i32::from(seq_id.wrapping_sub(self.seq_id) as i8);
        if diff.unsigned_abs() as usize >= N_FRAG_BUF {
            for s in &mut self.slots {
                if s.defined {
                    self.stats.rx_expired += 1;
                }
                s.defined = false;
            }
            self.index = 0;
            self.seq_id = seq_id;
            diff = 0;
        }
        while diff > 0 {
            self.index = (self.index + 1) % N_FRAG_BUF;
            if let Some(s) = self.slots.get_mut(self.index) {
                if s.defined {
                    self.stats.rx_expired += 1;
                }
                s.defined = false;
            }
            self.seq_id = self.seq_id.wrapping_add(1);
            diff -= 1;
        }
        // diff is in -24..=0 here.
        (self.index + N_FRAG_BUF - diff.unsigned_abs() as usize) % N_FRAG_BUF
    }

    /// 2.6 `fragment_ttl_reap`, run at most every [`FRAG_WAKEUP_SECS`].
    fn sweep(&mut self, now_secs: u64) {
        for s in &mut self.slots {
            if s.defined && s.timestamp + FRAG_TTL_SECS <= now_secs {
                s.defined = false;
                self.stats.rx_expired += 1;
            }
        }
        self.next_sweep = now_secs + FRAG_WAKEUP_SECS;
    }

    /// Incomplete packets currently held.
    pub fn incomplete(&self) -> usize {
        self.slots.iter().filter(|s| s.defined).count()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pieces(f: &mut Fragmenter, packet: &[u8]) -> Vec<Vec<u8>> {
        let mut v = vec![f.outgoing(packet).expect("fits").to_vec()];
        while let Some(p) = f.next_piece() {
            v.push(p.to_vec());
        }
        v
    }

    fn deliver(f: &mut Fragmenter, now: u64, p: &[u8]) -> Result<Option<Vec<u8>>, DropReason> {
        let mut c = p.to_vec();
        Ok(match f.incoming(now, &mut c)? {
            Incoming::Whole(w) => Some(w.to_vec()),
            Incoming::Complete(w) => Some(w.to_vec()),
            Incoming::Pending => None,
        })
    }

    fn word(kind: u32, seq: u32, id: u32, size: u32) -> [u8; 4] {
        (kind | seq << 2 | id << 10 | (size >> 2) << 15).to_be_bytes()
    }

    #[test]
    fn header_layout_matches_2_6() {
        // LAST, seq 7, frag 3, size 872: 2 | 7<<2 | 3<<10 | 218<<15.
        let h = FragmentHeader {
            kind: FragType::Last,
            seq_id: 7,
            frag_id: 3,
            size: 872,
        };
        assert_eq!(h.to_word(), 2 | 7 << 2 | 3 << 10 | 218 << 15);
        assert_eq!(FragmentHeader::from_word(h.to_word()), h);
        // NOT LAST leaves the size bits clear.
        let nl = FragmentHeader {
            kind: FragType::NotLast,
            ..h
        };
        assert_eq!(nl.to_word(), 1 | 7 << 2 | 3 << 10);
    }

    #[test]
    fn optimal_size_evens_out_the_last_piece() {
        // 1400 bytes in 872-byte pieces: 872 + 528 -> 700 + 700.
        assert_eq!(optimal_fragment_size(1400, 872), 700);
        // The remainder is already large: keep the maximum.
        assert_eq!(optimal_fragment_size(1700, 872), 872);
        // Exact multiple: keep the maximum (aligned down).
        assert_eq!(optimal_fragment_size(1744, 873), 872);
    }

    #[test]
    fn max_fragment_size_follows_frame_calculate_fragment() {
        let aead_v2 = KeyOverhead {
            header: 4,
            crypto: 20,
            cbc: false,
        };
        assert_eq!(max_fragment_size(900, None, aead_v2), 872);
        assert_eq!(max_fragment_size(900, Some(28), aead_v2), 844);
        let aead_v1 = KeyOverhead {
            header: 1,
            ..aead_v2
        };
        assert_eq!(max_fragment_size(900, None, aead_v1), 875);
        // AES-256-CBC + SHA1, P_DATA_V2: 900-40=860 -> 848-1=847 -> -4 -4.
        let cbc = KeyOverhead {
            header: 4,
            crypto: 36,
            cbc: true,
        };
        assert_eq!(max_fragment_size(900, None, cbc), 839);
    }

    #[test]
    fn small_packets_go_whole_with_a_zero_header() {
        let mut f = Fragmenter::new(2000, 872, 0);
        let p = f.outgoing(&[0x45, 1, 2]).unwrap().to_vec();
        assert_eq!(p, [0, 0, 0, 0, 0x45, 1, 2]);
        assert!(!f.has_pending());
        assert_eq!(deliver(&mut f, 0, &p), Ok(Some(vec![0x45, 1, 2])));
    }

    #[test]
    fn large_packet_is_cut_and_joined() {
        let mut tx = Fragmenter::new(2000, 872, 41);
        let mut rx = Fragmenter::new(2000, 872, 0);
        let packet: Vec<u8> = (0..1400u32).map(|i| i as u8).collect();
        let ps = pieces(&mut tx, &packet);
        assert_eq!(ps.len(), 2);
        assert_eq!(&ps[0][..4], word(1, 42, 0, 0));
        assert_eq!(&ps[1][..4], word(2, 42, 1, 700));
        assert!(ps.iter().all(|p| p.len() <= 872 + HEADER_LEN));
        assert_eq!(deliver(&mut rx, 0, &ps[1]), Ok(None));
        assert_eq!(rx.incomplete(), 1);
        assert_eq!(deliver(&mut rx, 0, &ps[0]), Ok(Some(packet)));
        assert_eq!(rx.incomplete(), 0);
        assert_eq!(rx.stats().rx_reassembled, 1);
    }

    #[test]
    fn rejects_spurious_whole_flags_and_test_type() {
        let mut f = Fragmenter::new(2000, 872, 0);
        assert_eq!(
            deliver(&mut f, 0, &[0, 0, 0, 4, 0x45]),
            Err(DropReason::BadFragmentHeader)
        );
        assert_eq!(
            deliver(&mut f, 0, &[0, 0, 0, 3, 0x45]),
            Err(DropReason::BadFragmentHeader)
        );
        assert_eq!(
            deliver(&mut f, 0, &[0, 0, 0]),
            Err(DropReason::BadFragmentHeader)
        );
    }

    #[test]
    fn rejects_duplicate_and_overlapping_pieces() {
        let mut f = Fragmenter::new(2000, 872, 0);
        let mut a = word(1, 5, 0, 0).to_vec();
        a.extend_from_slice(&[1; 8]);
        assert_eq!(deliver(&mut f, 0, &a), Ok(None));
        assert_eq!(deliver(&mut f, 0, &a), Err(DropReason::OverlappingFragment));
        // LAST at id 2, then a NOT LAST above it.
        let mut l = word(2, 5, 2, 8).to_vec();
        l.extend_from_slice(&[3; 4]);
        assert_eq!(deliver(&mut f, 0, &l), Ok(None));
        let mut b = word(1, 5, 3, 0).to_vec();
        b.extend_from_slice(&[4; 8]);
        assert_eq!(deliver(&mut f, 0, &b), Err(DropReason::OverlappingFragment));
        let mut m = word(1, 5, 1, 0).to_vec();
        m.extend_from_slice(&[2; 8]);
        let mut want = vec![1u8; 8];
        want.extend_from_slice(&[2; 8]);
        want.extend_from_slice(&[3; 4]);
        assert_eq!(deliver(&mut f, 0, &m), Ok(Some(want)));
    }

    #[test]
    fn rejects_oversized_and_misaligned_pieces() {
        let mut f = Fragmenter::new(100, 48, 0);
        // Offset 3*48 is beyond the 100-byte capacity.
        let mut p = word(1, 1, 3, 0).to_vec();
        p.extend_from_slice(&[0; 48]);
        assert_eq!(deliver(&mut f, 0, &p), Err(DropReason::OversizedFragment));
        // A LAST piece longer than the size it announces.
        let mut l = word(2, 1, 0, 8).to_vec();
        l.extend_from_slice(&[0; 12]);
        assert_eq!(deliver(&mut f, 0, &l), Err(DropReason::OversizedFragment));
        // NOT LAST pieces must be a multiple of 4 long.
        let mut m = word(1, 1, 0, 0).to_vec();
        m.extend_from_slice(&[0; 7]);
        assert_eq!(deliver(&mut f, 0, &m), Err(DropReason::BadFragmentHeader));
        // Too big to send at all.
        assert!(f.outgoing(&[0; 101]).is_none());
        let mut tiny = Fragmenter::new(2000, 4, 0);
        assert!(tiny.outgoing(&[0; 200]).is_none(), "needs 50 pieces");
    }

    #[test]
    fn incomplete_packets_expire_after_ttl() {
        let mut f = Fragmenter::new(2000, 872, 0);
        let mut a = word(1, 9, 0, 0).to_vec();
        a.extend_from_slice(&[1; 8]);
        assert_eq!(deliver(&mut f, 100, &a), Ok(None));
        // A whole packet 11 s later runs the sweep.
        assert_eq!(
            deliver(&mut f, 111, &[0, 0, 0, 0, 0x45]),
            Ok(Some(vec![0x45]))
        );
        assert_eq!(f.incomplete(), 0);
        assert_eq!(f.stats().rx_expired, 1);
        // The late LAST does not complete the forgotten packet.
        let mut l = word(2, 9, 1, 8).to_vec();
        l.extend_from_slice(&[2; 4]);
        assert_eq!(deliver(&mut f, 111, &l), Ok(None));
    }

    #[test]
    fn window_holds_25_sequence_ids() {
        let mut f = Fragmenter::new(2000, 872, 0);
        for seq in 0..30u32 {
            let mut a = word(1, seq, 0, 0).to_vec();
            a.extend_from_slice(&[seq as u8; 8]);
            assert_eq!(deliver(&mut f, 0, &a), Ok(None));
        }
        assert_eq!(f.incomplete(), N_FRAG_BUF);
        // seq 0..=4 were pushed out; seq 5 is the oldest still held.
        assert_eq!(f.stats().rx_expired, 5);
        let mut l5 = word(2, 5, 1, 8).to_vec();
        l5.extend_from_slice(&[7; 4]);
        let mut want = vec![5u8; 8];
        want.extend_from_slice(&[7; 4]);
        assert_eq!(deliver(&mut f, 0, &l5), Ok(Some(want)));
        // seq 4 is 25 behind the newest: 2.6 restarts the window there.
        let mut l4 = word(2, 4, 1, 8).to_vec();
        l4.extend_from_slice(&[0; 4]);
        assert_eq!(deliver(&mut f, 0, &l4), Ok(None));
        assert_eq!(f.incomplete(), 1);
    }

    proptest! {
        #[test]
        fn fragment_then_reassemble_in_any_order(
            len in 1usize..3000,
            max in 4usize..1500,
            seed in any::<u64>(),
            seq in any::<u8>(),
        ) {
            let packet: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
            let mut tx = Fragmenter::new(3000, max, seq);
            let mut rx = Fragmenter::new(3000, max, 0);
            let Some(first) = tx.outgoing(&packet).map(<[u8]>::to_vec) else {
                // Only refused when more than 32 pieces would be needed.
                prop_assert!(len > optimal_fragment_size(len, max) * MAX_FRAGS);
                return Ok(());
            };
            let mut ps = vec![first];
            while let Some(p) = tx.next_piece() {
                ps.push(p.to_vec());
            }
            prop_assert!(ps.len() <= MAX_FRAGS);
            prop_assert!(ps.iter().all(|p| p.len() <= HEADER_LEN + max.max(4)));
            // A deterministic shuffle from the seed.
            let mut s = seed;
            for i in (1..ps.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ps.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut got = None;
            for (k, p) in ps.iter().enumerate() {
                let r = deliver(&mut rx, 0, p).expect("valid piece");
                if k + 1 < ps.len() {
                    prop_assert!(r.is_none());
                } else {
                    got = r;
                }
            }
            prop_assert_eq!(got, Some(packet));
        }

        #[test]
        fn fuzz_entry_point_holds_on_random_input(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            crate::fuzzing::fragment_stream(&data);
        }

        #[test]
        fn random_bytes_never_panic(
            inputs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..40),
            cap in 1usize..200,
        ) {
            let mut f = Fragmenter::new(cap, 16, 0);
            for (t, mut i) in inputs.into_iter().enumerate() {
                if let Ok(Incoming::Complete(p)) = f.incoming(t as u64, &mut i) {
                    prop_assert!(p.len() <= cap);
                }
                prop_assert!(f.incomplete() <= N_FRAG_BUF);
            }
        }
    }
}
