//! Compression inside the data channel (section 8), as OpenVPN 2.6 does it.
//!
//! Every plaintext carries the framing of the configured algorithm; with
//! real compression (`comp-lzo`, `compress lzo|lz4|lz4-v2`) a packet may be
//! LZO1X- or LZ4-compressed. [`CompressOptions`] is 2.6's
//! `struct compress_options` (algorithm plus flags, edited by the
//! directives in the order they appear, pushed ones included), and
//! [`Compressor`] is the per-peer `compress_context`: it frames and, when
//! 2.6 would, compresses what we send, and unframes and decompresses what
//! the peer sends, into caller-owned or once-allocated buffers.
//!
//! ```text
//! None       | ip packet ...                         |
//! LzoStub    | 0xFA | ip packet ...                  |   (0x66 is dropped: stub)
//! Lzo        | 0xFA | ip packet ... | or | 0x66 | lzo1x data |
//! StubSwap   | 0xFB | ip[1..] ... | ip[0]            |   (0x69 is dropped: stub)
//! Lz4        | 0xFB | ip[1..] ... | ip[0] | or | 0x69 | lz4[1..] | lz4[0] |
//! StubV2     | ip packet ...                         |   if ip[0] == 0x50: | 0x50 0x00 | ip ... |
//! Lz4V2      | as StubV2, or | 0x50 0x01 | lz4 block |
//! ```

use bitflags::bitflags;

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

/// 2.6's `COMPRESS_THRESHOLD`: shorter packets are never compressed.
pub const COMPRESS_THRESHOLD: usize = 100;

/// Which framing is in force for a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompressFraming {
    /// No framing (2.6 default).
    #[default]
    None,
    /// `comp-lzo no`: prefix 0xFA.
    LzoStub,
    /// `compress` (stub): swap form with 0xFB.
    StubSwap,
    /// `compress stub-v2`: escape only packets starting with 0x50.
    StubV2,
    /// `comp-lzo [yes|adaptive]`, `compress lzo`: 0xFA or 0x66 + LZO1X.
    Lzo,
    /// `compress lz4`: swap form, 0xFB or 0x69 + LZ4.
    Lz4,
    /// `compress lz4-v2`: v2 form, escape or 0x50 0x01 + LZ4.
    Lz4V2,
}

impl CompressFraming {
    /// Extra bytes `frame` may add.
    pub const fn max_overhead(self) -> usize {
        match self {
            CompressFraming::None => 0,
            CompressFraming::LzoStub
            | CompressFraming::StubSwap
            | CompressFraming::Lzo
            | CompressFraming::Lz4 => 1,
            CompressFraming::StubV2 | CompressFraming::Lz4V2 => 2,
        }
    }

    /// What 2.6 counts against the MTU (`frame_calculate_payload_overhead`):
    /// one byte for the v1 schemes, none for v2 (it ignores the rare
    /// escape).
    pub const fn mtu_overhead(self) -> usize {
        match self {
            CompressFraming::LzoStub
            | CompressFraming::StubSwap
            | CompressFraming::Lzo
            | CompressFraming::Lz4 => 1,
            CompressFraming::None | CompressFraming::StubV2 | CompressFraming::Lz4V2 => 0,
        }
    }

    /// The framing that carries an uncompressed packet the same way.
    const fn plain(self) -> CompressFraming {
        match self {
            CompressFraming::Lzo => CompressFraming::LzoStub,
            CompressFraming::Lz4 => CompressFraming::StubSwap,
            CompressFraming::Lz4V2 => CompressFraming::StubV2,
            f => f,
        }
    }

    /// Bytes `frame` writes for `packet`.
    pub fn framed_len(self, packet: &[u8]) -> usize {
        match self.plain() {
            CompressFraming::LzoStub | CompressFraming::StubSwap => packet.len() + 1,
            CompressFraming::StubV2 => {
                packet.len()
                    + if packet.first() == Some(&V2_INDICATOR) {
                        2
                    } else {
                        0
                    }
            }
            _ => packet.len(),
        }
    }

    /// Frame `packet` uncompressed into `dst` for sending; `None` if `dst`
    /// is too small.
    ///
    /// An empty packet stays empty (the sealer refuses it anyway).
    pub fn frame<'d>(self, packet: &[u8], dst: &'d mut [u8]) -> Option<&'d [u8]> {
        let n = self.framed_len(packet);
        let out = dst.get_mut(..n)?;
        match self.plain() {
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
            CompressFraming::StubV2 if packet.first() == Some(&V2_INDICATOR) => {
                out[0] = V2_INDICATOR;
                out[1] = V2_UNCOMPRESSED;
                out[2..].copy_from_slice(packet);
            }
            _ => out.copy_from_slice(packet),
        }
        Some(out)
    }

    /// Remove the framing from a decrypted plaintext, in place (the swap form
    /// needs to move a byte); returns the inner packet. A compressed packet
    /// is [`DropReason::PeerCompresses`]: see [`Compressor::unframe`] for the
    /// framings that decompress.
    pub fn unframe(self, plaintext: &mut [u8]) -> Result<&mut [u8], DropReason> {
        match unframe(self, plaintext)? {
            Unframed::Plain(r) => Ok(&mut plaintext[r.0..r.1]),
            Unframed::Compressed { .. } => Err(DropReason::PeerCompresses),
        }
    }
}

/// What a plaintext holds once its framing bytes are read.
enum Unframed {
    /// An uncompressed packet at `plaintext[start..end]`.
    Plain((usize, usize)),
    /// Compressed data at `plaintext[start..end]` (already swapped back).
    Compressed { lz4: bool, range: (usize, usize) },
}

/// Reads the framing the way 2.6's `*_decompress` functions do; a stub
/// framing reports compressed data as a drop.
fn unframe(f: CompressFraming, plaintext: &mut [u8]) -> Result<Unframed, DropReason> {
    let len = plaintext.len();
    let Some(&first) = plaintext.first() else {
        return Ok(Unframed::Plain((0, 0)));
    };
    match f {
        CompressFraming::None => Ok(Unframed::Plain((0, len))),
        CompressFraming::LzoStub | CompressFraming::Lzo => match first {
            LZO_NO_COMPRESS => Ok(Unframed::Plain((1, len))),
            LZO_COMPRESS if f == CompressFraming::Lzo => Ok(Unframed::Compressed {
                lz4: false,
                range: (1, len),
            }),
            LZO_COMPRESS => Err(DropReason::PeerCompresses),
            _ => Err(DropReason::BadCompressionHeader),
        },
        CompressFraming::StubSwap | CompressFraming::Lz4 => {
            // The last byte goes back to the front, whatever the header.
            plaintext[0] = plaintext[len - 1];
            match first {
                NO_COMPRESS_SWAP => Ok(Unframed::Plain((0, len - 1))),
                LZ4_COMPRESS if f == CompressFraming::Lz4 => Ok(Unframed::Compressed {
                    lz4: true,
                    range: (0, len - 1),
                }),
                LZ4_COMPRESS | LZO_COMPRESS => Err(DropReason::PeerCompresses),
                _ => Err(DropReason::BadCompressionHeader),
            }
        }
        CompressFraming::StubV2 | CompressFraming::Lz4V2 => match plaintext {
            [V2_INDICATOR] => Err(DropReason::BadCompressionHeader),
            [V2_INDICATOR, V2_UNCOMPRESSED, ..] => Ok(Unframed::Plain((2, len))),
            [V2_INDICATOR, V2_LZ4, ..] if f == CompressFraming::Lz4V2 => Ok(Unframed::Compressed {
                lz4: true,
                range: (2, len),
            }),
            [V2_INDICATOR, V2_LZ4, ..] => Err(DropReason::PeerCompresses),
            [V2_INDICATOR, ..] => Err(DropReason::BadCompressionHeader),
            _ => Ok(Unframed::Plain((0, len))),
        },
    }
}

// ----- options: 2.6's struct compress_options --------------------------------

/// `compress_options.alg` (`COMP_ALG_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompAlg {
    /// `COMP_ALG_UNDEF`: no framing at all.
    #[default]
    Undef,
    /// `COMP_ALG_STUB`: `comp-lzo no`, `compress` / `compress stub`.
    Stub,
    /// `COMP_ALG_LZO`: `comp-lzo [yes|adaptive]`, `compress lzo`.
    Lzo,
    /// `COMP_ALG_LZ4`: `compress lz4`.
    Lz4,
    /// `COMP_ALGV2_UNCOMPRESSED`: `compress stub-v2`.
    StubV2,
    /// `COMP_ALGV2_LZ4`: `compress lz4-v2`.
    Lz4V2,
}

bitflags! {
    /// `compress_options.flags` (`COMP_F_*`, same bits as 2.6).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct CompFlags: u16 {
        /// LZO switches itself off while packets do not shrink.
        const ADAPTIVE = 1 << 0;
        /// We compress what we send too (`allow-compression yes`).
        const ALLOW_COMPRESS = 1 << 1;
        /// Swap the header byte with the last byte (`compress`, `lz4`).
        const SWAP = 1 << 2;
        /// Peer-info announces the stubs only.
        const ADVERTISE_STUBS_ONLY = 1 << 3;
        /// Only stub framings may be configured or pushed (`allow-compression no`).
        const ALLOW_STUB_ONLY = 1 << 4;
        /// `compress migrate`.
        const MIGRATE = 1 << 5;
        /// `allow-compression asym` was given.
        const ALLOW_ASYM = 1 << 6;
        /// No framing allowed at all (2.6 with DCO; never set here).
        const ALLOW_NOCOMP_ONLY = 1 << 7;
    }
}

/// A compression directive or combination that 2.6 refuses, with its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressOptionError {
    /// `comp-lzo X` with X not yes/no/adaptive.
    #[error("bad comp-lzo option: {0} -- must be 'yes', 'no', or 'adaptive'")]
    BadCompLzo(String),
    /// `compress X` with an unknown algorithm.
    #[error("bad comp option: {0}")]
    BadCompress(String),
    /// `allow-compression X` with X not yes/no/asym.
    #[error("bad allow-compression option: {0} -- must be 'yes', 'no', or 'asym'")]
    BadAllow(String),
    /// `allow-compression yes|asym` after `allow-compression no`.
    #[error("Cannot set allow-compression to '{0}' after set to 'no'")]
    AllowAfterNo(String),
    /// `allow-compression no` after a directive enabling compression.
    #[error("'--allow-compression no' conflicts with  enabling compression")]
    NoConflicts,
    /// Real compression with `allow-compression no` (or by default).
    #[error("Compression is not allowed since allow-compression is set to 'stub-only'")]
    StubOnly,
}

/// 2.6's warning when compressed packets will be accepted.
pub const RECEIVE_WARNING: &str = "WARNING: Compression for receiving enabled. Compression has been used in the past to break encryption. Sent packets are not compressed unless \"allow-compression yes\" is also set.";
/// 2.6's warning for `allow-compression yes`.
pub const ALLOW_YES_WARNING: &str = "WARNING: Compression for sending and receiving enabled. Compression has been used in the past to break encryption. Allowing compression allows attacks that break encryption. Using \"--allow-compression yes\" is strongly discouraged for common usage. See --compress in the manual page for more information ";
/// 2.6's refusal of a pushed compression its `allow-compression` forbids.
pub const PUSH_REFUSED: &str = "OPTIONS ERROR: server pushed compression settings that are not allowed and will result in a non-working connection. See also allow-compression in the manual.";

/// 2.6's `struct compress_options`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CompressOptions {
    /// Algorithm.
    pub alg: CompAlg,
    /// Flags.
    pub flags: CompFlags,
}

impl CompressOptions {
    /// What 2.6 uses with no compression directive at all.
    pub fn stub_only_default() -> Self {
        let mut o = Self::default();
        o.apply_default();
        o
    }

    /// `comp_non_stub_enabled`: real compression is configured.
    pub const fn non_stub_enabled(&self) -> bool {
        !matches!(self.alg, CompAlg::StubV2 | CompAlg::Stub | CompAlg::Undef)
    }

    /// `comp-lzo [arg]` (options.c); `Ok(true)` when 2.6 prints
    /// [`RECEIVE_WARNING`].
    pub fn comp_lzo(&mut self, arg: Option<&str>) -> Result<bool, CompressOptionError> {
        self.flags.remove(CompFlags::SWAP);
        match arg {
            Some("no") => {
                self.alg = CompAlg::Stub;
                self.flags.remove(CompFlags::ADAPTIVE);
            }
            Some("yes") => {
                self.alg = CompAlg::Lzo;
                self.flags.remove(CompFlags::ADAPTIVE);
            }
            None | Some("adaptive") => {
                self.alg = CompAlg::Lzo;
                self.flags.insert(CompFlags::ADAPTIVE);
            }
            Some(other) => return Err(CompressOptionError::BadCompLzo(other.into())),
        }
        Ok(self.receive_warning())
    }

    /// `comp-noadapt`.
    pub fn comp_noadapt(&mut self) {
        self.flags.remove(CompFlags::ADAPTIVE);
    }

    /// `compress [alg]`; `Ok(true)` when 2.6 prints [`RECEIVE_WARNING`].
    pub fn compress(&mut self, arg: Option<&str>) -> Result<bool, CompressOptionError> {
        match arg.unwrap_or("stub") {
            "stub" => {
                self.alg = CompAlg::Stub;
                self.flags |= CompFlags::SWAP | CompFlags::ADVERTISE_STUBS_ONLY;
            }
            "stub-v2" => {
                self.alg = CompAlg::StubV2;
                self.flags |= CompFlags::ADVERTISE_STUBS_ONLY;
            }
            "migrate" => {
                self.alg = CompAlg::Undef;
                self.flags = CompFlags::MIGRATE;
            }
            "lzo" => {
                self.alg = CompAlg::Lzo;
                self.flags.remove(CompFlags::ADAPTIVE | CompFlags::SWAP);
            }
            "lz4" => {
                self.alg = CompAlg::Lz4;
                self.flags |= CompFlags::SWAP;
            }
            "lz4-v2" => self.alg = CompAlg::Lz4V2,
            other => return Err(CompressOptionError::BadCompress(other.into())),
        }
        Ok(self.receive_warning())
    }

    /// `allow-compression no|asym|yes`; `Ok(Some(w))` is a warning 2.6
    /// prints.
    pub fn allow_compression(
        &mut self,
        arg: &str,
    ) -> Result<Option<&'static str>, CompressOptionError> {
        if arg == "no" {
            self.flags = CompFlags::ALLOW_STUB_ONLY | CompFlags::ADVERTISE_STUBS_ONLY;
            if self.non_stub_enabled() {
                return Err(CompressOptionError::NoConflicts);
            }
            return Ok(None);
        }
        if self.flags.contains(CompFlags::ALLOW_STUB_ONLY) {
            return Err(CompressOptionError::AllowAfterNo(arg.into()));
        }
        match arg {
            "asym" => {
                self.flags.remove(CompFlags::ALLOW_COMPRESS);
                self.flags.insert(CompFlags::ALLOW_ASYM);
                Ok(None)
            }
            "yes" => {
                self.flags.insert(CompFlags::ALLOW_COMPRESS);
                Ok(Some(ALLOW_YES_WARNING))
            }
            other => Err(CompressOptionError::BadAllow(other.into())),
        }
    }

    /// Whether 2.6's `show_compression_warning` prints [`RECEIVE_WARNING`].
    pub fn receive_warning(&self) -> bool {
        self.non_stub_enabled() && !self.flags.contains(CompFlags::ALLOW_COMPRESS)
    }

    /// 2.6's default once all directives are read: with no compression
    /// directive at all (flags still empty), only stubs are allowed and
    /// announced.
    pub fn apply_default(&mut self) {
        if self.flags.is_empty() && !self.non_stub_enabled() {
            self.flags = CompFlags::ALLOW_STUB_ONLY | CompFlags::ADVERTISE_STUBS_ONLY;
        }
    }

    /// `check_compression_settings_valid` (both LZO and LZ4 are built in).
    pub fn check(&self) -> Result<(), CompressOptionError> {
        if self.flags.contains(CompFlags::ALLOW_STUB_ONLY) && self.non_stub_enabled() {
            return Err(CompressOptionError::StubOnly);
        }
        Ok(())
    }

    /// The wire framing of this configuration.
    pub fn framing(&self) -> CompressFraming {
        match self.alg {
            CompAlg::Undef => CompressFraming::None,
            CompAlg::Stub if self.flags.contains(CompFlags::SWAP) => CompressFraming::StubSwap,
            CompAlg::Stub => CompressFraming::LzoStub,
            CompAlg::StubV2 => CompressFraming::StubV2,
            CompAlg::Lzo => CompressFraming::Lzo,
            CompAlg::Lz4 => CompressFraming::Lz4,
            CompAlg::Lz4V2 => CompressFraming::Lz4V2,
        }
    }

    /// Whether we compress what we send (2.6 needs `allow-compression yes`).
    pub fn compresses(&self) -> bool {
        self.non_stub_enabled() && self.flags.contains(CompFlags::ALLOW_COMPRESS)
    }

    /// `comp_generate_peer_info_string`: the IV_ lines 2.6 (built with LZO
    /// and LZ4) sends.
    pub fn peer_info(&self) -> &'static [&'static str] {
        if self.flags.contains(CompFlags::ALLOW_NOCOMP_ONLY) {
            &[]
        } else if self.flags.contains(CompFlags::ADVERTISE_STUBS_ONLY) {
            &["IV_LZO_STUB=1", "IV_COMP_STUB=1", "IV_COMP_STUBv2=1"]
        } else {
            &[
                "IV_LZ4=1",
                "IV_LZ4v2=1",
                "IV_LZO=1",
                "IV_COMP_STUB=1",
                "IV_COMP_STUBv2=1",
            ]
        }
    }

    /// Whether the OCC options string says `,comp-lzo` (any algorithm,
    /// stubs included).
    pub fn occ_comp_lzo(&self) -> bool {
        self.alg != CompAlg::Undef
    }
}

// ----- the per-peer compression context ----------------------------------------

/// 2.6's adaptive LZO sampling (`lzo.c`): `AC_SAMP_SEC`, `AC_MIN_BYTES`,
/// `AC_SAVE_PCT`, `AC_OFF_SEC`.
const AC_SAMP_SEC: u64 = 2;
const AC_MIN_BYTES: u64 = 1000;
const AC_SAVE_PCT: u64 = 5;
const AC_OFF_SEC: u64 = 60;

/// `struct lzo_adaptive_compress`.
#[derive(Debug, Default, Clone, Copy)]
struct Adaptive {
    /// Compression switched off (2.6 calls it `compress_state`).
    off: bool,
    next: u64,
    n_total: u64,
    n_comp: u64,
}

impl Adaptive {
    /// `lzo_adaptive_compress_test`: whether to try compressing now.
    fn test(&mut self, now: u64) -> bool {
        if now >= self.next {
            if self.off {
                self.next = now + AC_SAMP_SEC;
                self.off = false;
            } else if self.n_total > AC_MIN_BYTES
                && self.n_total.saturating_sub(self.n_comp) < self.n_total / (100 / AC_SAVE_PCT)
            {
                self.off = true;
                self.next = now + AC_OFF_SEC;
            } else {
                self.next = now + AC_SAMP_SEC;
            }
            self.n_total = 0;
            self.n_comp = 0;
        }
        !self.off
    }
}

/// Compression byte counters (`comp_print_stats`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompressStats {
    /// Bytes given to the compressor.
    pub pre_compress: u64,
    /// Bytes it produced.
    pub post_compress: u64,
    /// Compressed bytes received.
    pub pre_decompress: u64,
    /// What they decompressed to.
    pub post_decompress: u64,
}

/// Largest plaintext we frame or decompress (tun-mtu up to 9000 plus
/// headroom).
pub const MAX_PLAINTEXT: usize = 9216;

/// The compression state of one peer: framing, compressor work memory
/// (allocated with the first packet we really compress, then kept) and a
/// scratch buffer, so that no later packet allocates.
pub struct Compressor {
    opts: CompressOptions,
    framing: CompressFraming,
    compress: bool,
    adaptive: Option<Adaptive>,
    lzo: Option<Box<lzokay::compress::Dict>>,
    lz4: Option<lz4_flex::block::CompressTable>,
    /// Most bytes a received packet may decompress to.
    max_plain: usize,
    scratch: Box<[u8]>,
    stats: CompressStats,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("opts", &self.opts)
            .field("compress", &self.compress)
            .field("max_plain", &self.max_plain)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Scratch room: the largest plaintext compressed in the worst case, plus
/// the two framing bytes.
const SCRATCH_LEN: usize = lzokay::compress::compress_worst_size(MAX_PLAINTEXT) + 2;

impl Compressor {
    /// The context for `opts` on a tunnel of `tun_mtu`: decompressed
    /// packets may be as large as 2.6's payload buffer (tun-mtu plus
    /// headroom), never larger.
    pub fn for_tun_mtu(opts: CompressOptions, tun_mtu: u16) -> Self {
        Self::new(opts, usize::from(tun_mtu.max(1500)) + 128)
    }

    /// The context for `opts`; received packets decompress to at most
    /// `max_plain` bytes (the tun MTU plus headroom, like 2.6's
    /// `payload_size`).
    pub fn new(opts: CompressOptions, max_plain: usize) -> Self {
        let compress = opts.compresses();
        let framing = opts.framing();
        Self {
            opts,
            framing,
            compress,
            adaptive: (compress
                && framing == CompressFraming::Lzo
                && opts.flags.contains(CompFlags::ADAPTIVE))
            .then(Adaptive::default),
            // Work memory comes with the first packet we compress, so a
            // session that never sends (or a refused handshake) costs none.
            lzo: None,
            lz4: None,
            max_plain: max_plain.min(MAX_PLAINTEXT),
            scratch: if framing == CompressFraming::None {
                Box::default()
            } else {
                vec![0u8; SCRATCH_LEN].into_boxed_slice()
            },
            stats: CompressStats::default(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> CompressOptions {
        self.opts
    }

    /// The wire framing.
    pub fn framing(&self) -> CompressFraming {
        self.framing
    }

    /// Whether we compress what we send.
    pub fn compresses(&self) -> bool {
        self.compress
    }

    /// Counters.
    pub fn stats(&self) -> CompressStats {
        self.stats
    }

    /// Most bytes a received packet may decompress to.
    pub fn max_plain(&self) -> usize {
        self.max_plain
    }

    /// Extra bytes [`Self::frame`] may add to a packet (compression only
    /// ever shrinks it: a larger result is sent uncompressed).
    pub fn max_overhead(&self) -> usize {
        self.framing.max_overhead()
    }

    /// Frame, and compress where 2.6 would, `packet` for sending; the
    /// result lives in the context's scratch buffer. `None` when `packet`
    /// is larger than [`MAX_PLAINTEXT`]. `now` is monotonic seconds
    /// (adaptive LZO's sampling periods).
    pub fn frame(&mut self, packet: &[u8], now: u64) -> Option<&[u8]> {
        if packet.len() > MAX_PLAINTEXT {
            return None;
        }
        if self.compress
            && packet.len() >= COMPRESS_THRESHOLD
            && let Some(n) = self.try_compress(packet, now)
        {
            return self.scratch.get(..n);
        }
        self.framing.frame(packet, &mut self.scratch)
    }

    /// Writes the compressed form into the scratch buffer if it saves
    /// something (the `did compression save us anything` tests of
    /// `lzo.c` / `comp-lz4.c`); its length.
    fn try_compress(&mut self, packet: &[u8], now: u64) -> Option<usize> {
        match self.framing {
            CompressFraming::Lzo => {
                if let Some(a) = &mut self.adaptive
                    && !a.test(now)
                {
                    return None;
                }
                let dict = self.lzo.get_or_insert_with(lzokay::compress::Dict::new);
                let out = self.scratch.get_mut(1..)?;
                let z = lzokay::compress::compress_no_alloc(packet, out, dict).ok()?;
                self.stats.pre_compress += packet.len() as u64;
                self.stats.post_compress += z as u64;
                if let Some(a) = &mut self.adaptive {
                    a.n_total += packet.len() as u64;
                    a.n_comp += z as u64;
                }
                (z < packet.len()).then(|| {
                    self.scratch[0] = LZO_COMPRESS;
                    z + 1
                })
            }
            CompressFraming::Lz4 => {
                let table = self
                    .lz4
                    .get_or_insert_with(lz4_flex::block::CompressTable::small);
                let z = lz4_flex::block::compress_into_with_table(
                    packet,
                    self.scratch.get_mut(..SCRATCH_LEN - 1)?,
                    table,
                )
                .ok()?;
                self.stats.pre_compress += packet.len() as u64;
                self.stats.post_compress += z as u64;
                if z == 0 || z >= packet.len() {
                    return None;
                }
                // Swap form: header first, the first byte moves to the end.
                self.scratch[z] = self.scratch[0];
                self.scratch[0] = LZ4_COMPRESS;
                Some(z + 1)
            }
            CompressFraming::Lz4V2 => {
                let table = self
                    .lz4
                    .get_or_insert_with(lz4_flex::block::CompressTable::small);
                let z = lz4_flex::block::compress_into_with_table(
                    packet,
                    self.scratch.get_mut(2..)?,
                    table,
                )
                .ok()?;
                self.stats.pre_compress += packet.len() as u64;
                self.stats.post_compress += z as u64;
                // v2 counts its two header bytes against the saving.
                if z + 2 >= packet.len() {
                    return None;
                }
                self.scratch[0] = V2_INDICATOR;
                self.scratch[1] = V2_LZ4;
                Some(z + 2)
            }
            _ => None,
        }
    }

    /// Remove the framing from the decrypted `buf[start..end]` and
    /// decompress it if the peer compressed it; returns where the inner
    /// packet now is in `buf` (a decompressed packet is written to the
    /// front of `buf`, bounded by [`Self::max_plain`] and `buf`'s length).
    pub fn unframe(
        &mut self,
        buf: &mut [u8],
        start: usize,
        end: usize,
    ) -> Result<(usize, usize), DropReason> {
        let room = buf.len();
        let plaintext = buf.get_mut(start..end).ok_or(DropReason::Truncated)?;
        match unframe(self.framing, plaintext)? {
            Unframed::Plain((a, b)) => Ok((start + a, start + b)),
            Unframed::Compressed { lz4, range } => {
                let input = plaintext
                    .get(range.0..range.1)
                    .ok_or(DropReason::BadCompressedData)?;
                let limit = self.max_plain.min(room);
                let out = self
                    .scratch
                    .get_mut(..limit)
                    .ok_or(DropReason::BadCompressedData)?;
                let n = if lz4 {
                    lz4_flex::block::decompress_into(input, out)
                        .map_err(|_| DropReason::BadCompressedData)?
                } else {
                    lzokay::decompress::decompress(input, out)
                        .map_err(|_| DropReason::BadCompressedData)?
                };
                self.stats.pre_decompress += input.len() as u64;
                self.stats.post_decompress += n as u64;
                let dst = buf.get_mut(..n).ok_or(DropReason::BadCompressedData)?;
                dst.copy_from_slice(&self.scratch[..n]);
                Ok((0, n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ALL: [CompressFraming; 7] = [
        CompressFraming::None,
        CompressFraming::LzoStub,
        CompressFraming::StubSwap,
        CompressFraming::StubV2,
        CompressFraming::Lzo,
        CompressFraming::Lz4,
        CompressFraming::Lz4V2,
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

    const TEXT: &[u8] = include_bytes!("../../../../testdata/compress/text.bin");
    const MIXED: &[u8] = include_bytes!("../../../../testdata/compress/mixed.bin");
    const LZO_TEXT: &[u8] = include_bytes!("../../../../testdata/compress/lzo1x_1_15.bin");
    const LZO_MIXED: &[u8] = include_bytes!("../../../../testdata/compress/lzo1x_1_15_mixed.bin");
    const LZ4_TEXT: &[u8] = include_bytes!("../../../../testdata/compress/lz4_default.bin");
    const LZ4_MIXED: &[u8] = include_bytes!("../../../../testdata/compress/lz4_default_mixed.bin");

    fn opts(lines: &[(&str, Option<&str>)], allow: Option<&str>) -> CompressOptions {
        let mut o = CompressOptions::default();
        if let Some(a) = allow {
            o.allow_compression(a).unwrap();
        }
        for (d, arg) in lines {
            match *d {
                "comp-lzo" => o.comp_lzo(*arg).map(|_| ()).unwrap(),
                "compress" => o.compress(*arg).map(|_| ()).unwrap(),
                _ => o.comp_noadapt(),
            }
        }
        o.apply_default();
        o.check().unwrap();
        o
    }

    /// Unframes `plaintext` through a buffer of `room` bytes.
    fn receive(c: &mut Compressor, plaintext: &[u8], room: usize) -> Result<Vec<u8>, DropReason> {
        let mut buf = vec![0u8; room.max(plaintext.len())];
        let start = buf.len() - plaintext.len();
        buf[start..].copy_from_slice(plaintext);
        let end = buf.len();
        let (a, b) = c.unframe(&mut buf, start, end)?;
        Ok(buf[a..b].to_vec())
    }

    fn swap_form(head: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![head];
        v.extend_from_slice(&data[1..]);
        v.push(data[0]);
        v
    }

    #[test]
    fn decompresses_what_liblzo2_and_liblz4_compress() {
        let asym = opts(&[("comp-lzo", None)], Some("asym"));
        for (z, plain) in [(LZO_TEXT, TEXT), (LZO_MIXED, MIXED)] {
            let mut c = Compressor::new(asym, 2048);
            let mut p = vec![LZO_COMPRESS];
            p.extend_from_slice(z);
            assert_eq!(receive(&mut c, &p, 2048).unwrap(), plain);
            assert_eq!(c.stats().post_decompress, plain.len() as u64);
        }
        for (z, plain) in [(LZ4_TEXT, TEXT), (LZ4_MIXED, MIXED)] {
            let mut c = Compressor::new(opts(&[("compress", Some("lz4"))], None), 2048);
            assert_eq!(
                receive(&mut c, &swap_form(LZ4_COMPRESS, z), 2048).unwrap(),
                plain
            );
            let mut c = Compressor::new(opts(&[("compress", Some("lz4-v2"))], None), 2048);
            let mut p = vec![V2_INDICATOR, V2_LZ4];
            p.extend_from_slice(z);
            assert_eq!(receive(&mut c, &p, 2048).unwrap(), plain);
        }
    }

    #[test]
    fn sends_compressed_only_with_allow_compression_yes() {
        for (lines, header) in [
            (&[("comp-lzo", None)][..], LZO_COMPRESS),
            (&[("comp-lzo", Some("yes"))][..], LZO_COMPRESS),
            (&[("compress", Some("lzo"))][..], LZO_COMPRESS),
            (&[("compress", Some("lz4"))][..], LZ4_COMPRESS),
            (&[("compress", Some("lz4-v2"))][..], V2_INDICATOR),
        ] {
            for allow in [None, Some("asym"), Some("yes")] {
                let mut c = Compressor::new(opts(lines, allow), 2048);
                let sent = c.frame(TEXT, 0).unwrap().to_vec();
                if allow == Some("yes") {
                    assert_eq!(sent[0], header, "{lines:?}");
                    assert!(sent.len() < TEXT.len() / 4, "{lines:?}: {}", sent.len());
                } else {
                    assert_eq!(
                        sent.len(),
                        c.framing().framed_len(TEXT),
                        "{lines:?} {allow:?}"
                    );
                }
                // Whatever we send, we (and so 2.6) read back.
                let mut r = Compressor::new(opts(lines, Some("asym")), 2048);
                assert_eq!(receive(&mut r, &sent, 2048).unwrap(), TEXT, "{lines:?}");
            }
        }
    }

    #[test]
    fn short_or_incompressible_packets_go_uncompressed() {
        for lines in [
            &[("comp-lzo", Some("yes"))][..],
            &[("compress", Some("lz4"))][..],
            &[("compress", Some("lz4-v2"))][..],
        ] {
            let mut c = Compressor::new(opts(lines, Some("yes")), 2048);
            let short = &TEXT[..COMPRESS_THRESHOLD - 1];
            let mut buf = [0u8; 128];
            let want = c.framing().frame(short, &mut buf).unwrap().to_vec();
            assert_eq!(c.frame(short, 0).unwrap(), want);
            assert_eq!(c.stats().pre_compress, 0, "below the threshold: not tried");
            let random = &MIXED[..600];
            let mut expect = [0u8; 700];
            let want = c.framing().frame(random, &mut expect).unwrap().to_vec();
            assert_eq!(c.frame(random, 0).unwrap(), want, "{lines:?}");
        }
    }

    #[test]
    fn adaptive_lzo_pauses_while_packets_do_not_shrink() {
        let mut c = Compressor::new(opts(&[("comp-lzo", None)], Some("yes")), 2048);
        let random = &MIXED[..600];
        // t=0 opens the first sampling period; it is tried and counted.
        for _ in 0..3 {
            c.frame(random, 0).unwrap();
        }
        let tried = c.stats().pre_compress;
        assert_eq!(tried, 1800);
        // t=2: over 1000 bytes sampled, under 5% saved: off for 60 s.
        c.frame(random, 2).unwrap();
        c.frame(random, 30).unwrap();
        assert_eq!(c.stats().pre_compress, tried, "not even tried while off");
        assert_eq!(c.frame(TEXT, 61).unwrap()[0], LZO_NO_COMPRESS);
        // t=62: back on.
        assert_eq!(c.frame(TEXT, 62).unwrap()[0], LZO_COMPRESS);
        // comp-noadapt: always tried.
        let mut c = Compressor::new(
            opts(&[("comp-lzo", None), ("comp-noadapt", None)], Some("yes")),
            2048,
        );
        for t in 0..5 {
            c.frame(random, t).unwrap();
        }
        assert_eq!(c.stats().pre_compress, 3000);
    }

    #[test]
    fn oversized_or_malformed_compressed_data_is_a_counted_drop() {
        let zeros = [0u8; 20_000];
        let mut z = vec![V2_INDICATOR, V2_LZ4];
        z.extend_from_slice(&lz4_flex::compress(&zeros));
        let mut c = Compressor::for_tun_mtu(opts(&[("compress", Some("lz4-v2"))], None), 1500);
        assert_eq!(
            receive(&mut c, &z, 65_536),
            Err(DropReason::BadCompressedData)
        );
        // Bounded by the caller's buffer too.
        let mut z = vec![V2_INDICATOR, V2_LZ4];
        z.extend_from_slice(LZ4_MIXED);
        assert_eq!(
            receive(&mut c, &z, 1000),
            Err(DropReason::BadCompressedData)
        );
        assert_eq!(
            receive(&mut c, &[V2_INDICATOR, V2_LZ4, 0xFF, 0xFF], 2048),
            Err(DropReason::BadCompressedData)
        );
        let mut c = Compressor::new(opts(&[("comp-lzo", None)], None), 2048);
        assert_eq!(
            receive(&mut c, &[LZO_COMPRESS, 0xFF, 0x00, 0x01], 2048),
            Err(DropReason::BadCompressedData)
        );
        assert_eq!(
            receive(&mut c, &[0x45, 0, 1], 2048),
            Err(DropReason::BadCompressionHeader)
        );
        // 2.6's lzo framing knows nothing of LZ4.
        assert_eq!(
            receive(&mut c, &[LZ4_COMPRESS, 0, 1], 2048),
            Err(DropReason::BadCompressionHeader)
        );
    }

    #[test]
    fn peer_info_and_occ_follow_the_options() {
        let d = CompressOptions::stub_only_default();
        assert_eq!(
            d.peer_info(),
            ["IV_LZO_STUB=1", "IV_COMP_STUB=1", "IV_COMP_STUBv2=1"]
        );
        assert!(!d.occ_comp_lzo());
        let l = opts(&[("comp-lzo", None)], None);
        assert_eq!(l.peer_info()[..3], ["IV_LZ4=1", "IV_LZ4v2=1", "IV_LZO=1"]);
        assert!(l.occ_comp_lzo());
        assert!(opts(&[("compress", Some("stub-v2"))], None).occ_comp_lzo());
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

        #[test]
        fn decompressing_garbage_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            room in 0usize..3000,
        ) {
            for (lines, head) in [
                (&[("comp-lzo", None)][..], &[LZO_COMPRESS][..]),
                (&[("compress", Some("lz4"))][..], &[LZ4_COMPRESS][..]),
                (&[("compress", Some("lz4-v2"))][..], &[V2_INDICATOR, V2_LZ4][..]),
            ] {
                let mut c = Compressor::new(opts(lines, None), 1600);
                let mut p = head.to_vec();
                p.extend_from_slice(&body);
                if let Ok(out) = receive(&mut c, &p, room) {
                    prop_assert!(out.len() <= 1600);
                }
            }
        }

        #[test]
        fn what_we_compress_comes_back(
            p in proptest::collection::vec(0u8..4, 1..1500),
        ) {
            for lines in [
                &[("comp-lzo", Some("yes"))][..],
                &[("compress", Some("lz4"))][..],
                &[("compress", Some("lz4-v2"))][..],
            ] {
                let o = opts(lines, Some("yes"));
                let mut tx = Compressor::new(o, 1600);
                let mut rx = Compressor::new(o, 1600);
                let sent = tx.frame(&p, 0).unwrap().to_vec();
                prop_assert!(sent.len() <= p.len() + o.framing().max_overhead());
                prop_assert_eq!(receive(&mut rx, &sent, 1600).unwrap(), p.clone());
            }
        }
    }
}
