//! Ethernet II frames as a tap device carries them, with at most the one
//! 802.1Q tag `vlan-tagging` deals in.
//!
//! ```text
//!  0        6        12          14
//! +--------+--------+-----------+------------------------------
//! | dst 6  | src 6  | EtherType | payload (IPv4, IPv6, ARP, ...)
//! +--------+--------+-----------+------------------------------
//!                   | 0x8100 | TCI (PCP 3, DEI 1, VID 12) | EtherType | ...   (802.1Q)
//! ```

use super::{PacketError, array, be16};

/// An untagged Ethernet header: both MACs and the EtherType.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// A MAC address.
pub type MacAddr = [u8; 6];

/// A view of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buf` without checks (accessors still never panic).
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Wraps `buf` if it holds a whole untagged header (14 bytes).
    pub fn new_checked(buf: T) -> Result<Self, PacketError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        Ok(Self { buf })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> MacAddr {
        array(self.buf.as_ref(), 0)
    }

    /// Source MAC.
    pub fn src_addr(&self) -> MacAddr {
        array(self.buf.as_ref(), 6)
    }

    /// The EtherType (0x8100 when tagged).
    pub fn ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), 12)
    }

    /// The bytes after the untagged header.
    pub fn payload(&self) -> &[u8] {
        self.buf.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// The 802.1Q TCI (PCP, DEI, VID) of a tagged frame, when the TCI is
    /// there (the inner EtherType may still be missing: see
    /// [`Self::inner_ethertype`]).
    pub fn vlan_tci(&self) -> Option<u16> {
        let b = self.buf.as_ref();
        if self.ethertype() != ETHERTYPE_VLAN || b.len() < HEADER_LEN + 2 {
            return None;
        }
        Some(be16(b, 14))
    }

    /// The EtherType behind an 802.1Q tag (0 when the frame ends first).
    pub fn inner_ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), HEADER_LEN + 2)
    }

    /// The IP packet of an untagged IPv4 or IPv6 frame (2.6's `is_ipv4` /
    /// `is_ipv6` for tap: a tagged frame is not looked into).
    pub fn untagged_ip_payload(&self) -> Option<&[u8]> {
        match self.ethertype() {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => self.buf.as_ref().get(HEADER_LEN..),
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// The bytes after the untagged header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut().get_mut(HEADER_LEN..).unwrap_or(&mut [])
    }

    /// [`Self::untagged_ip_payload`], writable.
    pub fn untagged_ip_payload_mut(&mut self) -> Option<&mut [u8]> {
        match self.ethertype() {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => self.buf.as_mut().get_mut(HEADER_LEN..),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_macs_type_and_vlan_tag() {
        let mut f = [0u8; 22];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[14..16].copy_from_slice(&[0x20, 0x0a]);
        f[16..18].copy_from_slice(&[0x08, 0x00]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.dst_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(e.src_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(e.ethertype(), ETHERTYPE_VLAN);
        assert_eq!(e.vlan_tci(), Some(0x200a));
        assert_eq!(e.inner_ethertype(), ETHERTYPE_IPV4);
        assert_eq!(
            e.untagged_ip_payload(),
            None,
            "tagged frames are not looked into"
        );
        assert_eq!(e.payload().len(), 8);
    }

    #[test]
    fn rejects_short_frames_and_a_torn_tag() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]),
            Err(PacketError::Truncated)
        );
        let mut f = [0u8; 16];
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[14] = 0x30;
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.vlan_tci(), Some(0x3000));
        assert_eq!(e.inner_ethertype(), 0, "the inner type is past the end");
        assert_eq!(
            EthernetFrame::new_checked(&f[..15]).unwrap().vlan_tci(),
            None
        );
        let mut f = [0u8; 14];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let mut e = EthernetFrame::new_checked(&mut f[..]).unwrap();
        assert_eq!(e.untagged_ip_payload_mut().map(|p| p.len()), Some(0));
    }
}
