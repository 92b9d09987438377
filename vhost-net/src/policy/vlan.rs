//! 802.1Q VLANs at a port (libvirt `<vlan>`, with Open vSwitch's meaning):
//! - no `<vlan>`: the port is in the untagged network ([`NO_VLAN`]), which is apart from
//!   every VLAN. Its frames cross the switch as they are (an 802.1Q tag in them is payload
//!   to the switch and never puts them into a VLAN). The uplink tap is such a port.
//! - access port (one `<tag id>`, not a trunk): the guest sends and receives untagged
//!   frames, which belong to that VLAN; a tagged frame from the guest is dropped.
//! - trunk (`<vlan trunk='yes'>`): the guest sends and receives frames tagged with any of
//!   its ids; the native VLAN (`nativeMode`) also takes the guest's untagged frames and is
//!   delivered untagged (`untagged`) or tagged (`tagged`). Frames with another id, and
//!   untagged frames on a trunk without a native VLAN, are dropped.
//!
//! Inside the switch frames are untagged and carry their VLAN beside them: the tag is
//! removed when a trunk's frame comes in and added when one goes out to a trunk.

use virtnet_vswitch_control::{NativeMode, PortVlan};

use crate::counters::DropReason;
use crate::frame::{Frame, ETH_HLEN, HEADROOM};
use crate::vnet_hdr::{F_NEEDS_CSUM, GSO_NONE};

/// A VLAN inside the switch: 0..=4095, or [`NO_VLAN`].
pub type Vid = u16;

/// The untagged network of ports without `<vlan>` (and of the uplink).
pub const NO_VLAN: Vid = u16::MAX;

/// The 802.1Q tag protocol id.
const TPID: u16 = 0x8100;
/// Bytes of one 802.1Q tag.
const TAG_LEN: usize = 4;

/// How a frame leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    /// As it is inside the switch: untagged.
    Untagged,
    /// With an 802.1Q tag carrying this VLAN id.
    Tagged(Vid),
}

/// A port's VLAN membership, compiled for the forwarding path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// No `<vlan>`: the untagged network.
    None,
    /// An access port of this VLAN.
    Access(Vid),
    /// A trunk.
    Trunk {
        /// Member VLANs, one bit per id.
        members: Box<[u64; 64]>,
        /// The VLAN of untagged frames from the guest, and whether it leaves tagged.
        native: Option<(Vid, NativeMode)>,
    },
}

impl VlanMode {
    /// Compiles a port's `<vlan>` (checked by `PortVlan::problem`).
    pub fn new(v: Option<&PortVlan>) -> Self {
        let Some(v) = v else {
            return VlanMode::None;
        };
        if !v.trunk {
            return VlanMode::Access(v.tags.first().copied().unwrap_or(0) & 0xfff);
        }
        let mut members = Box::new([0u64; 64]);
        for &t in &v.tags {
            let t = usize::from(t & 0xfff);
            members[t / 64] |= 1 << (t % 64);
        }
        VlanMode::Trunk {
            members,
            native: v.native.map(|n| (n.id & 0xfff, n.mode)),
        }
    }

    fn member(members: &[u64; 64], vid: Vid) -> bool {
        vid <= 0xfff && members[usize::from(vid) / 64] & (1 << (vid % 64)) != 0
    }

    /// The VLAN of a frame the port sent (a trunk's tag removed from the frame), or
    /// `vlan_not_allowed`.
    pub fn ingress(&self, f: &mut Frame) -> Result<Vid, DropReason> {
        match self {
            VlanMode::None => Ok(NO_VLAN),
            VlanMode::Access(t) => match tag_of(f) {
                None => Ok(*t),
                Some(_) => Err(DropReason::VlanNotAllowed),
            },
            VlanMode::Trunk { members, native } => match tag_of(f) {
                Some(v) if Self::member(members, v) => {
                    pop(f);
                    Ok(v)
                }
                Some(_) => Err(DropReason::VlanNotAllowed),
                None if is_tagged(f) => Err(DropReason::VlanNotAllowed), // truncated tag
                None => native.map(|(n, _)| n).ok_or(DropReason::VlanNotAllowed),
            },
        }
    }

    /// Whether the port receives frames of VLAN `vid`, and how.
    pub fn egress(&self, vid: Vid) -> Option<Tagging> {
        match self {
            VlanMode::None => (vid == NO_VLAN).then_some(Tagging::Untagged),
            VlanMode::Access(t) => (vid == *t).then_some(Tagging::Untagged),
            VlanMode::Trunk { members, native } => {
                if !Self::member(members, vid) {
                    return None;
                }
                Some(match native {
                    Some((n, NativeMode::Untagged)) if *n == vid => Tagging::Untagged,
                    _ => Tagging::Tagged(vid),
                })
            }
        }
    }
}

fn is_tagged(f: &Frame) -> bool {
    let b = f.bytes();
    b.len() >= ETH_HLEN && u16::from_be_bytes([b[12], b[13]]) == TPID
}

/// The VLAN id of an 802.1Q-tagged frame (`None`: untagged, or too short to hold a tag
/// and an ethertype).
pub fn tag_of(f: &Frame) -> Option<Vid> {
    let b = f.bytes();
    if b.len() < ETH_HLEN + TAG_LEN || !is_tagged(f) {
        return None;
    }
    Some(u16::from_be_bytes([b[14], b[15]]) & 0xfff)
}

/// Offsets in the virtio-net header count from the frame's start: they move with the tag.
fn shift_offsets(f: &mut Frame, by: isize) {
    if f.hdr.flags & F_NEEDS_CSUM != 0 {
        f.hdr.csum_start = (f.hdr.csum_start as isize + by).max(0) as u16;
    }
    if f.hdr.gso_kind() != GSO_NONE || f.hdr.hdr_len as usize > ETH_HLEN {
        f.hdr.hdr_len = (f.hdr.hdr_len as isize + by).max(0) as u16;
    }
}

/// Removes the 802.1Q tag of a tagged frame (checked by [`tag_of`]).
pub fn pop(f: &mut Frame) {
    let (s, len) = (HEADROOM, f.len);
    f.data.copy_within(s + 12 + TAG_LEN..s + len, s + 12);
    f.len -= TAG_LEN;
    shift_offsets(f, -(TAG_LEN as isize));
}

/// Inserts an 802.1Q tag with `vid` after the MAC addresses.
pub fn push(f: &mut Frame, vid: Vid) {
    let (s, len) = (HEADROOM, f.len);
    if f.data.len() < s + len + TAG_LEN {
        f.grow();
    }
    f.data.copy_within(s + 12..s + len, s + 12 + TAG_LEN);
    f.data[s + 12..s + 14].copy_from_slice(&TPID.to_be_bytes());
    f.data[s + 14..s + 16].copy_from_slice(&(vid & 0xfff).to_be_bytes());
    f.len += TAG_LEN;
    shift_offsets(f, TAG_LEN as isize);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vnet_hdr::{VnetHdr, GSO_TCPV4};
    use virtnet_vswitch_control::NativeVlan;

    fn frame(bytes: &[u8]) -> Frame {
        let mut f = Frame::default();
        f.data[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
        f.len = bytes.len();
        f
    }

    fn untagged() -> Vec<u8> {
        let mut b = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        b.extend((0..50).map(|i| i as u8));
        b
    }

    fn tagged(vid: u16) -> Vec<u8> {
        let u = untagged();
        let mut b = u[..12].to_vec();
        b.extend_from_slice(&[0x81, 0x00]);
        b.extend_from_slice(&(0x2000 | vid).to_be_bytes()); // PCP 1
        b.extend_from_slice(&u[12..]);
        b
    }

    fn trunk(tags: &[u16], native: Option<(u16, NativeMode)>) -> VlanMode {
        VlanMode::new(Some(&PortVlan {
            tags: tags.to_vec(),
            trunk: true,
            native: native.map(|(id, mode)| NativeVlan { id, mode }),
        }))
    }

    #[test]
    fn a_port_without_vlan_is_in_the_untagged_network_and_tags_are_payload() {
        let m = VlanMode::new(None);
        let mut f = frame(&tagged(42));
        assert_eq!(m.ingress(&mut f), Ok(NO_VLAN));
        assert_eq!(f.bytes(), &tagged(42)[..], "left as it is");
        assert_eq!(m.egress(NO_VLAN), Some(Tagging::Untagged));
        assert_eq!(m.egress(42), None);
        assert_eq!(m.egress(0), None);
    }

    #[test]
    fn an_access_port_takes_untagged_frames_into_its_vlan_and_drops_tagged_ones() {
        let m = VlanMode::new(Some(&PortVlan {
            tags: vec![42],
            trunk: false,
            native: None,
        }));
        assert_eq!(m.ingress(&mut frame(&untagged())), Ok(42));
        assert_eq!(
            m.ingress(&mut frame(&tagged(42))),
            Err(DropReason::VlanNotAllowed)
        );
        assert_eq!(m.egress(42), Some(Tagging::Untagged));
        assert_eq!(m.egress(43), None);
        assert_eq!(m.egress(NO_VLAN), None);
    }

    #[test]
    fn a_trunk_strips_its_tags_drops_others_and_untagged_without_native() {
        let m = trunk(&[10, 20], None);
        let mut f = frame(&tagged(20));
        assert_eq!(m.ingress(&mut f), Ok(20));
        assert_eq!(f.bytes(), &untagged()[..], "tag removed inside the switch");
        assert_eq!(
            m.ingress(&mut frame(&tagged(30))),
            Err(DropReason::VlanNotAllowed)
        );
        assert_eq!(
            m.ingress(&mut frame(&untagged())),
            Err(DropReason::VlanNotAllowed)
        );
        // A tag protocol id with the tag cut off.
        let mut short = untagged()[..16].to_vec();
        short[12..14].copy_from_slice(&[0x81, 0]);
        assert_eq!(
            m.ingress(&mut frame(&short)),
            Err(DropReason::VlanNotAllowed)
        );
        assert_eq!(m.egress(10), Some(Tagging::Tagged(10)));
        assert_eq!(m.egress(30), None);
        assert_eq!(m.egress(NO_VLAN), None);
    }

    #[test]
    fn native_untagged_and_native_tagged_as_libvirt_and_ovs_define_them() {
        let m = trunk(&[10, 20], Some((10, NativeMode::Untagged)));
        assert_eq!(m.ingress(&mut frame(&untagged())), Ok(10));
        assert_eq!(m.ingress(&mut frame(&tagged(10))), Ok(10));
        assert_eq!(m.egress(10), Some(Tagging::Untagged));
        assert_eq!(m.egress(20), Some(Tagging::Tagged(20)));
        let m = trunk(&[10, 20], Some((10, NativeMode::Tagged)));
        assert_eq!(m.ingress(&mut frame(&untagged())), Ok(10));
        assert_eq!(m.egress(10), Some(Tagging::Tagged(10)));
    }

    #[test]
    fn push_and_pop_move_the_header_offsets_with_the_tag() {
        let mut f = frame(&untagged());
        f.hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        push(&mut f, 42);
        assert_eq!(tag_of(&f), Some(42));
        assert_eq!(&f.bytes()[..12], &untagged()[..12]);
        assert_eq!(&f.bytes()[16..], &untagged()[12..]);
        assert_eq!((f.hdr.csum_start, f.hdr.hdr_len), (38, 58));
        pop(&mut f);
        assert_eq!(f.bytes(), &untagged()[..]);
        assert_eq!((f.hdr.csum_start, f.hdr.hdr_len), (34, 54));
        // A full-size small buffer grows to take the tag.
        let mut big = Frame::default();
        big.len = big.data.len() - HEADROOM;
        push(&mut big, 1);
        assert_eq!(big.len, 2048 - HEADROOM + 4);
    }
}
