//! 802.1Q on a tap server (`vlan-tagging`, `vlan-accept`, `vlan-pvid`), as
//! 2.6's `vlan.c`: clients always send and receive untagged frames; each
//! client belongs to one VLAN (its ccd `vlan-pvid`, else the global one);
//! frames to the tap device are tagged with the client's VID when the
//! port needs it, frames from it are untagged and go only to clients of
//! their VID.
//!
//! ```text
//!  dst MAC (6) | src MAC (6) | TPID 0x8100 | PCP/DEI/VID (2) | EtherType | ...
//! ```

use crate::{
    config::{Vlan, VlanAccept},
    packet::{
        EthernetFrame,
        ethernet::{ETHERTYPE_VLAN, HEADER_LEN, VLAN_TAG_LEN},
    },
};

/// The 802.1Q tag protocol identifier.
const TPID: [u8; 2] = ETHERTYPE_VLAN.to_be_bytes();
/// Both MAC addresses.
const MACS: usize = 12;
/// The tag's length.
const TAG: usize = VLAN_TAG_LEN;
/// An untagged Ethernet header.
const ETH_HLEN: usize = HEADER_LEN;

/// The VID of a frame carrying an 802.1Q tag (0: priority-tagged only).
fn tag_vid(frame: &[u8]) -> Option<u16> {
    EthernetFrame::new_unchecked(frame)
        .vlan_tci()
        .map(|tci| tci & 0x0fff)
}

/// 2.6's `vlan_is_tagged`: a tag with a VID (not priority-only).
pub fn is_tagged(frame: &[u8]) -> bool {
    frame.len() >= ETH_HLEN + TAG && tag_vid(frame).is_some_and(|v| v != 0)
}

/// 2.6's `vlan_decapsulate` of a frame read from tap: its VID and the
/// offset at which the (now untagged) frame starts, or `None` to drop it.
/// A priority-tagged frame keeps its tag and belongs to the PVID.
pub fn decapsulate(frame: &mut [u8], v: &Vlan) -> Option<(u16, usize)> {
    if frame.len() < ETH_HLEN {
        return None;
    }
    let Some(vid) = tag_vid(frame) else {
        return (v.accept != VlanAccept::Tagged).then_some((v.pvid, 0));
    };
    if frame.len() < ETH_HLEN + TAG {
        return None;
    }
    if vid == 0 {
        return Some((v.pvid, 0));
    }
    if v.accept == VlanAccept::Untagged {
        return None;
    }
    // Slide the MACs over the tag; the inner EtherType is already next.
    frame.copy_within(0..MACS, TAG);
    Some((vid, TAG))
}

/// What a frame from a client of VID `client_pvid` needs on its way to
/// the tap device (2.6 `vlan_process_outgoing_tun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToTap {
    /// Write it as it is.
    AsIs,
    /// Tag it with this VID.
    Tag(u16),
    /// Not allowed on the port.
    Drop,
}

/// The port's rule for a client's frame.
pub fn to_tap(v: &Vlan, client_pvid: u16) -> ToTap {
    match v.accept {
        VlanAccept::Untagged if client_pvid != v.pvid => ToTap::Drop,
        VlanAccept::Untagged => ToTap::AsIs,
        VlanAccept::All if client_pvid == v.pvid => ToTap::AsIs,
        VlanAccept::All | VlanAccept::Tagged => ToTap::Tag(client_pvid),
    }
}

/// 2.6's `vlan_encapsulate` into `out` (at least `frame.len() + 4` bytes):
/// an untagged frame gets a tag, a priority-tagged one gets the VID; the
/// length written, 0 to drop.
pub fn encapsulate(frame: &[u8], vid: u16, out: &mut [u8]) -> usize {
    if frame.len() < ETH_HLEN {
        return 0;
    }
    match tag_vid(frame) {
        Some(0) if frame.len() >= ETH_HLEN + TAG => {
            let Some(o) = out.get_mut(..frame.len()) else {
                return 0;
            };
            o.copy_from_slice(frame);
            let pcp = o[MACS + 2] & 0xf0;
            let [hi, lo] = vid.to_be_bytes();
            o[MACS + 2] = pcp | (hi & 0x0f);
            o[MACS + 3] = lo;
            frame.len()
        }
        // Tagged frames from clients were dropped before this point.
        Some(_) => 0,
        None => {
            let n = frame.len() + TAG;
            let Some(o) = out.get_mut(..n) else {
                return 0;
            };
            o[..MACS].copy_from_slice(&frame[..MACS]);
            o[MACS..MACS + 2].copy_from_slice(&TPID);
            o[MACS + 2..MACS + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
            o[MACS + 4..].copy_from_slice(&frame[MACS..]);
            n
        }
    }
}

/// A client's `vlan-pvid` from its ccd file's words, if valid (1..4094).
pub fn ccd_pvid<'a>(mut lines: impl Iterator<Item = &'a [String]>) -> Option<u16> {
    lines.find_map(|w| match w {
        [name, v] if name == "vlan-pvid" => v.parse().ok().filter(|n| (1..=4094).contains(n)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Vlan = Vlan {
        accept: VlanAccept::All,
        pvid: 1,
    };

    fn untagged() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0xaa; 28]);
        f
    }

    fn tagged(vid: u16, pcp: u8) -> Vec<u8> {
        let u = untagged();
        let mut f = u[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&((u16::from(pcp) << 13) | vid).to_be_bytes());
        f.extend_from_slice(&u[12..]);
        f
    }

    #[test]
    fn decapsulation_strips_the_tag_and_keeps_the_frame() {
        let mut f = tagged(20, 0);
        let (vid, off) = decapsulate(&mut f, &ALL).unwrap();
        assert_eq!((vid, &f[off..]), (20, untagged().as_slice()));
        let mut f = untagged();
        assert_eq!(decapsulate(&mut f, &ALL), Some((1, 0)));
        // Priority-tagged: the PVID's, tag kept.
        let mut f = tagged(0, 5);
        assert_eq!(decapsulate(&mut f, &ALL), Some((1, 0)));
    }

    #[test]
    fn accept_modes_drop_what_the_port_does_not_carry() {
        let only_tagged = Vlan {
            accept: VlanAccept::Tagged,
            pvid: 7,
        };
        let only_untagged = Vlan {
            accept: VlanAccept::Untagged,
            pvid: 7,
        };
        assert_eq!(decapsulate(&mut untagged(), &only_tagged), None);
        assert_eq!(decapsulate(&mut tagged(9, 0), &only_untagged), None);
        assert_eq!(decapsulate(&mut tagged(0, 3), &only_untagged), Some((7, 0)));
        assert_eq!(to_tap(&only_untagged, 7), ToTap::AsIs);
        assert_eq!(to_tap(&only_untagged, 8), ToTap::Drop);
        assert_eq!(to_tap(&only_tagged, 7), ToTap::Tag(7));
        assert_eq!(to_tap(&ALL, 1), ToTap::AsIs);
        assert_eq!(to_tap(&ALL, 30), ToTap::Tag(30));
    }

    #[test]
    fn encapsulation_inserts_or_fills_the_tag() {
        let mut out = vec![0u8; 100];
        let n = encapsulate(&untagged(), 20, &mut out);
        assert_eq!(&out[..n], tagged(20, 0).as_slice());
        let n = encapsulate(&tagged(0, 5), 20, &mut out);
        assert_eq!(&out[..n], tagged(20, 5).as_slice());
        assert_eq!(encapsulate(&tagged(3, 0), 20, &mut out), 0);
        assert_eq!(encapsulate(&[0u8; 13], 20, &mut out), 0);
        assert!(is_tagged(&tagged(3, 0)));
        assert!(!is_tagged(&tagged(0, 1)));
        assert!(!is_tagged(&untagged()));
    }

    #[test]
    fn ccd_pvid_takes_a_valid_vid() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let lines = [w("echo x"), w("vlan-pvid 20")];
        assert_eq!(ccd_pvid(lines.iter().map(Vec::as_slice)), Some(20));
        let lines = [w("vlan-pvid 4095")];
        assert_eq!(ccd_pvid(lines.iter().map(Vec::as_slice)), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(mut f in proptest::collection::vec(proptest::num::u8::ANY, 0..40), vid in 0u16..5000) {
            let mut out = vec![0u8; f.len() + 4];
            let _ = encapsulate(&f, vid, &mut out);
            let _ = is_tagged(&f);
            for accept in [VlanAccept::All, VlanAccept::Tagged, VlanAccept::Untagged] {
                let mut g = f.clone();
                if let Some((_, off)) = decapsulate(&mut g, &Vlan { accept, pvid: 1 }) {
                    proptest::prop_assert!(off <= g.len());
                }
            }
            f.clear();
        }
    }
}
