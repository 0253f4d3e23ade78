//! The Internet checksum (RFC 1071) in two steps, so a caller can add a
//! pseudo-header, a header and a payload that lie in different places.

/// Adds `data` as big-endian 16-bit words to a one's-complement running
/// sum (an odd last byte is padded with zero).
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks(2);
    for w in &mut words {
        let hi = w.first().copied().unwrap_or(0);
        let lo = w.get(1).copied().unwrap_or(0);
        acc += u64::from(u16::from_be_bytes([hi, lo]));
    }
    acc
}

/// Folds a running sum into the 16-bit one's-complement checksum.
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // At most 16 bits are left after folding.
    !(acc as u16)
}
