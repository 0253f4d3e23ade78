//! Bounds-checked reads of the headers the classifier needs: Ethernet, at
//! most one 802.1Q/802.1ad tag, IPv4 (any IHL) or IPv6, UDP, then the OpenVPN
//! opcode byte and the 24-bit peer-id of a P_DATA_V2 packet.
//!
//! Every read goes through [`check`], which compares `data + off + len`
//! against `data_end` in a shape the verifier can follow (packet pointer plus
//! a bounded offset). A frame that ends inside a header we need is passed and
//! counted as `PASS_TRUNCATED`: the kernel stack decides what to do with it.
//!
//! ```text
//! | eth (14) | [vlan (4)] | ipv4 (ihl*4) / ipv6 (40) | udp (8) | op|kid | peer-id (3) | ...
//!                                                              `-- P_DATA_V2 only --'
//! ```

use aya_ebpf::programs::XdpContext;
use vpn_common::{
    maps::{FAMILY_V4, FAMILY_V6},
    opcode::{self, DATA_V2_HEADER_LEN, P_DATA_V2, PEER_ID_MASK},
    stats,
};

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const UDP_HLEN: usize = 8;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;

/// IPv4 flags/fragment-offset field: "more fragments" bit and offset bits.
const IPV4_MF_AND_OFFSET: u16 = 0x3fff;

/// Why a frame goes to the kernel stack: the `STATS` slot to count.
#[derive(Clone, Copy)]
pub(crate) struct Pass(pub(crate) u32);

/// Where a datagram came from, in the representation of `PeerEntry`.
#[derive(Clone, Copy)]
pub(crate) struct Source {
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub(crate) family: u8,
    /// Address bytes as on the wire, as native words; IPv4 uses word 0 only.
    pub(crate) addr: [u32; 4],
    /// UDP source port as on the wire (network order kept in memory order).
    pub(crate) port: u16,
}

/// A UDP datagram that is neither a fragment nor truncated in its headers.
#[derive(Clone, Copy)]
pub(crate) struct Udp {
    pub(crate) source: Source,
    /// Destination port, host order.
    pub(crate) dst_port: u16,
    /// Offset of the UDP payload from the start of the frame.
    pub(crate) payload_off: usize,
    /// Payload length claimed by the UDP header (Ethernet padding excluded).
    pub(crate) payload_len: usize,
}

/// Returns the address of `len` bytes at `off`, or `PASS_TRUNCATED` when the
/// frame is shorter.
#[inline(always)]
fn check(ctx: &XdpContext, off: usize, len: usize) -> Result<usize, Pass> {
    let start = ctx.data();
    let end = ctx.data_end();
    // Opaque to LLVM, a known constant to the verifier (spilled and
    // reloaded): otherwise LLVM folds `p + 1 > end` into `p >= end`, from
    // which the verifier learns no readable range.
    let len = core::hint::black_box(len);
    if start + off + len > end {
        return Err(Pass(stats::PASS_TRUNCATED));
    }
    Ok(start + off)
}

/// Reads `N` bytes at `addr`, which [`check`] proved to be inside the frame.
///
/// # Safety
/// `addr..addr + N` must lie inside the packet (a successful [`check`]).
#[inline(always)]
unsafe fn bytes<const N: usize>(addr: usize) -> [u8; N] {
    // SAFETY: in bounds per the caller's contract; packet data has no
    // alignment guarantee, hence the unaligned read.
    unsafe { core::ptr::read_unaligned(addr as *const [u8; N]) }
}

/// Reads a big-endian u16 at `addr`, which [`check`] proved to be inside the frame.
///
/// # Safety
/// As for [`bytes`].
#[inline(always)]
unsafe fn be16(addr: usize) -> u16 {
    // SAFETY: forwarded contract.
    u16::from_be_bytes(unsafe { bytes::<2>(addr) })
}

/// Four wire bytes as one native word, so addresses compare word by word
/// (no `memcmp` in BPF).
#[inline(always)]
fn word(b: [u8; 4]) -> u32 {
    u32::from_ne_bytes(b)
}

/// Parses Ethernet, one optional VLAN tag, IPv4/IPv6 and UDP.
#[inline(always)]
pub(crate) fn udp(ctx: &XdpContext) -> Result<Udp, Pass> {
    let eth = check(ctx, 0, ETH_HLEN)?;
    // SAFETY: `eth` covers 14 bytes; the EtherType is at 12..14.
    let mut ethertype = unsafe { be16(eth + 12) };
    let mut l3 = ETH_HLEN;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let vlan = check(ctx, ETH_HLEN, VLAN_HLEN)?;
        // SAFETY: `vlan` covers the 4-byte tag; the inner EtherType is at 2..4.
        ethertype = unsafe { be16(vlan + 2) };
        l3 += VLAN_HLEN;
    }
    // A second tag (QinQ) lands here as "not IP": we steer only what we can
    // reach in a bounded number of steps, the stack handles the rest.
    let (mut source, l4) = match ethertype {
        ETH_P_IP => ipv4(ctx, l3)?,
        ETH_P_IPV6 => ipv6(ctx, l3)?,
        _ => return Err(Pass(stats::PASS_NOT_IP)),
    };
    let udp = check(ctx, l4, UDP_HLEN)?;
    // SAFETY: `udp` covers the 8-byte UDP header.
    let (src_port, dst_port, len) = unsafe { (bytes::<2>(udp), be16(udp + 2), be16(udp + 4)) };
    source.port = u16::from_ne_bytes(src_port);
    Ok(Udp {
        source,
        dst_port,
        payload_off: l4 + UDP_HLEN,
        // A length below the header size is malformed; it leaves no payload
        // and is counted as truncated by `data_v2`.
        payload_len: (len as usize).saturating_sub(UDP_HLEN),
    })
}

/// IPv4 header at `l3`: returns the source and the offset of the UDP header.
#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> Result<(Source, usize), Pass> {
    let ip = check(ctx, l3, IPV4_MIN_HLEN)?;
    // SAFETY: `ip` covers the 20-byte fixed header; all reads are below 20.
    let (vihl, frag, proto, src) = unsafe {
        (
            bytes::<1>(ip)[0],
            be16(ip + 6),
            bytes::<1>(ip + 9)[0],
            bytes::<4>(ip + 12),
        )
    };
    if vihl >> 4 != 4 {
        return Err(Pass(stats::PASS_NOT_IP));
    }
    // Masked to 4 bits, so the verifier sees an offset of at most 60.
    let hlen = ((vihl & 0x0f) as usize) * 4;
    if hlen < IPV4_MIN_HLEN {
        return Err(Pass(stats::PASS_NOT_IP));
    }
    if proto != IPPROTO_UDP {
        return Err(Pass(stats::PASS_NOT_UDP));
    }
    // Any fragment, the first one included: only a whole datagram can be
    // steered, so reassembly stays with the kernel.
    if frag & IPV4_MF_AND_OFFSET != 0 {
        return Err(Pass(stats::PASS_IP_FRAGMENT));
    }
    // Options are skipped, but they must be present in the frame.
    check(ctx, l3, hlen)?;
    let source = Source {
        family: FAMILY_V4,
        addr: [word(src), 0, 0, 0],
        port: 0,
    };
    Ok((source, l3 + hlen))
}

/// IPv6 header at `l3`: returns the source and the offset of the UDP header.
#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize) -> Result<(Source, usize), Pass> {
    let ip = check(ctx, l3, IPV6_HLEN)?;
    // SAFETY: `ip` covers the 40-byte header; all reads are below 40.
    let (ver, next, a, b, c, d) = unsafe {
        (
            bytes::<1>(ip)[0],
            bytes::<1>(ip + 6)[0],
            bytes::<4>(ip + 8),
            bytes::<4>(ip + 12),
            bytes::<4>(ip + 16),
            bytes::<4>(ip + 20),
        )
    };
    if ver >> 4 != 6 {
        return Err(Pass(stats::PASS_NOT_IP));
    }
    // Extension headers (fragments included) are not walked: OpenVPN peers
    // do not send them, and the stack handles whatever does.
    if next != IPPROTO_UDP {
        return Err(Pass(stats::PASS_NOT_UDP));
    }
    let source = Source {
        family: FAMILY_V6,
        addr: [word(a), word(b), word(c), word(d)],
        port: 0,
    };
    Ok((source, l3 + IPV6_HLEN))
}

/// Reads the OpenVPN header of a datagram to one of our ports: the peer-id
/// of a P_DATA_V2 packet, `PASS_CONTROL` for any other opcode.
#[inline(always)]
pub(crate) fn data_v2(ctx: &XdpContext, udp: &Udp) -> Result<u32, Pass> {
    if udp.payload_len == 0 {
        return Err(Pass(stats::PASS_TRUNCATED));
    }
    let first = check(ctx, udp.payload_off, 1)?;
    // SAFETY: `first` covers one byte.
    let op = opcode::opcode(unsafe { bytes::<1>(first)[0] });
    if op != P_DATA_V2 {
        // Control channel, acks and P_DATA_V1 all go to the socket path.
        return Err(Pass(stats::PASS_CONTROL));
    }
    if udp.payload_len < DATA_V2_HEADER_LEN {
        return Err(Pass(stats::PASS_TRUNCATED));
    }
    let hdr = check(ctx, udp.payload_off, DATA_V2_HEADER_LEN)?;
    // SAFETY: `hdr` covers the 4-byte P_DATA_V2 header.
    let raw = u32::from_be_bytes(unsafe { bytes::<4>(hdr) });
    Ok(raw & PEER_ID_MASK)
}
