//! Frames in flight: pre-allocated buffers and copying a transmit chain out of a guest.

use crate::chain::Segment;
use crate::counters::DropReason;
use crate::guestmem::GuestView;
use crate::vnet_hdr::{VnetHdr, GSO_NONE};

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// Ethernet header with one 802.1Q tag.
pub const ETH_VLAN_HLEN: usize = 18;
/// Largest frame the switch carries (a 64 KiB GSO packet plus a tagged Ethernet header).
pub const MAX_FRAME_LEN: usize = 65535 + ETH_VLAN_HLEN;
/// Room for a virtio-net header in front of the frame, so header and frame move to and
/// from guest memory in one contiguous copy.
pub const HEADROOM: usize = 12;

/// One frame and its virtio-net header, in a buffer allocated once and reused.
pub struct Frame {
    /// Offload metadata that travels with the frame.
    pub hdr: VnetHdr,
    /// The Ethernet frame is `data[HEADROOM..HEADROOM + len]`; the bytes before it are
    /// scratch space for a virtio-net header. Starts small (most frames are) and grows,
    /// once, to the largest frame size the first time a big frame needs it.
    pub data: Vec<u8>,
    /// Frame length.
    pub len: usize,
}

/// Initial buffer size: a full-size Ethernet frame and its header fit.
const SMALL: usize = 2048;

impl Default for Frame {
    fn default() -> Self {
        Frame {
            hdr: VnetHdr::default(),
            data: vec![0u8; SMALL],
            len: 0,
        }
    }
}

impl Frame {
    /// A frame whose buffer already holds the largest frame.
    pub fn full() -> Self {
        let mut f = Frame::default();
        f.grow();
        f
    }

    /// Makes room for the largest frame (no-op when already there).
    pub fn grow(&mut self) {
        if self.data.len() < HEADROOM + MAX_FRAME_LEN {
            self.data.resize(HEADROOM + MAX_FRAME_LEN, 0);
        }
    }
}

impl Frame {
    /// The Ethernet frame.
    pub fn bytes(&self) -> &[u8] {
        &self.data[HEADROOM..HEADROOM + self.len]
    }

    /// The Ethernet frame, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data[HEADROOM..HEADROOM + self.len]
    }

    /// Writes `hdr` (`hdr_len` bytes, with `num_buffers`) right before the frame and
    /// returns header and frame as one slice.
    pub fn with_header(&mut self, hdr_len: usize, num_buffers: u16) -> &[u8] {
        let hdr = self.hdr;
        let start = HEADROOM - hdr_len;
        hdr.write(&mut self.data[start..HEADROOM], num_buffers);
        &self.data[start..HEADROOM + self.len]
    }

    /// Destination MAC address.
    pub fn dst_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.data[HEADROOM..HEADROOM + 6]);
        m
    }

    /// Source MAC address.
    pub fn src_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.data[HEADROOM + 6..HEADROOM + 12]);
        m
    }

    /// Checks length and header of a frame just received; `mtu` bounds non-GSO frames.
    pub fn validate(&self, mtu: usize) -> Result<(), DropReason> {
        if self.len < ETH_HLEN {
            return Err(DropReason::ShortFrame);
        }
        if self.len > MAX_FRAME_LEN {
            return Err(DropReason::OversizedFrame);
        }
        if self.hdr.gso_kind() == GSO_NONE && self.len > mtu + ETH_VLAN_HLEN {
            return Err(DropReason::OversizedFrame);
        }
        if !self.hdr.is_consistent(self.len) {
            return Err(DropReason::BadHeader);
        }
        Ok(())
    }
}

/// Copies the transmit chain `segs` (total `total` bytes: a `hdr_len`-byte virtio-net
/// header, then the frame) out of guest memory into `frame`, with checked reads only.
pub fn read_tx_frame(
    mem: &GuestView<'_>,
    segs: &[Segment],
    total: u64,
    hdr_len: usize,
    mtu: usize,
    frame: &mut Frame,
) -> Result<(), DropReason> {
    if total < (hdr_len + ETH_HLEN) as u64 {
        return Err(DropReason::ShortFrame);
    }
    if total - hdr_len as u64 > MAX_FRAME_LEN as u64 {
        return Err(DropReason::OversizedFrame);
    }
    if (HEADROOM as u64 + total - hdr_len as u64) > frame.data.len() as u64 {
        frame.grow();
    }
    // Header and frame land contiguously: the header in the headroom.
    let base = HEADROOM - hdr_len;
    let mut pos = 0usize;
    for s in segs {
        let len = s.len as usize;
        let dst = frame
            .data
            .get_mut(base + pos..base + pos + len)
            .ok_or(DropReason::OversizedFrame)?;
        if !mem.read_slice(dst, s.addr) {
            return Err(DropReason::BadAddress);
        }
        pos += len;
    }
    frame.len = pos - hdr_len;
    frame.hdr = VnetHdr::parse(&frame.data[base..HEADROOM]);
    frame.validate(mtu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::mem;
    use crate::vnet_hdr::{F_NEEDS_CSUM, GSO_TCPV4};
    use vm_memory::{Bytes, GuestAddress};

    fn seg(addr: u64, len: u32) -> Segment {
        Segment {
            addr: GuestAddress(addr),
            len,
        }
    }

    /// Reads the chain `segs` from a guest holding `bytes` at 0x4000.
    fn read(
        bytes: &[u8],
        segs: &[Segment],
        hdr_len: usize,
        mtu: usize,
    ) -> (Result<(), DropReason>, Frame) {
        let m = mem(0x30000);
        m.write_slice(bytes, GuestAddress(0x4000)).unwrap();
        let v = GuestView::new(&m);
        let total = segs.iter().map(|s| u64::from(s.len)).sum();
        let mut f = Frame::default();
        let r = read_tx_frame(&v, segs, total, hdr_len, mtu, &mut f);
        (r, f)
    }

    fn packet(hdr: &VnetHdr, hdr_len: usize, frame_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; hdr_len + frame_len];
        hdr.write(&mut b[..hdr_len], 0);
        for (i, x) in b[hdr_len..].iter_mut().enumerate() {
            *x = i as u8;
        }
        b
    }

    #[test]
    fn header_and_frame_are_gathered_from_any_split_of_the_chain() {
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let p = packet(&hdr, 12, 100);
        // Header split over two buffers, the frame over three, out of address order.
        let segs = [
            seg(0x4000, 5),
            seg(0x4005, 10),
            seg(0x4050, 62),
            seg(0x400f, 35),
        ];
        let m = mem(0x10000);
        m.write_slice(&p[..5], GuestAddress(0x4000)).unwrap();
        m.write_slice(&p[5..15], GuestAddress(0x4005)).unwrap();
        m.write_slice(&p[15..77], GuestAddress(0x4050)).unwrap();
        m.write_slice(&p[77..], GuestAddress(0x400f)).unwrap();
        let v = GuestView::new(&m);
        let mut f = Frame::default();
        assert_eq!(read_tx_frame(&v, &segs, 112, 12, 1500, &mut f), Ok(()));
        assert_eq!(f.hdr, hdr);
        assert_eq!(f.bytes(), &p[12..]);
        assert_eq!(
            f.with_header(12, 3)[10..12],
            [3, 0],
            "num_buffers written on the way out"
        );
    }

    #[test]
    fn frames_shorter_than_header_plus_ethernet_header_are_short() {
        let p = packet(&VnetHdr::default(), 10, 13);
        assert_eq!(
            read(&p, &[seg(0x4000, 23)], 10, 1500).0,
            Err(DropReason::ShortFrame)
        );
        let p = packet(&VnetHdr::default(), 10, 14);
        assert_eq!(read(&p, &[seg(0x4000, 24)], 10, 1500).0, Ok(()));
    }

    #[test]
    fn frames_over_the_mtu_without_gso_or_over_64k_with_it_are_oversized() {
        let p = packet(&VnetHdr::default(), 12, 1518);
        assert_eq!(
            read(&p, &[seg(0x4000, 12 + 1518)], 12, 1500).0,
            Ok(()),
            "MTU + tagged header"
        );
        let p = packet(&VnetHdr::default(), 12, 1519);
        assert_eq!(
            read(&p, &[seg(0x4000, 12 + 1519)], 12, 1500).0,
            Err(DropReason::OversizedFrame)
        );
        let gso = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 1448,
            ..VnetHdr::default()
        };
        let p = packet(&gso, 12, MAX_FRAME_LEN);
        let (r, f) = read(&p, &[seg(0x4000, (12 + MAX_FRAME_LEN) as u32)], 12, 1500);
        assert_eq!(r, Ok(()), "the largest GSO frame");
        assert_eq!(
            f.data.len(),
            HEADROOM + MAX_FRAME_LEN,
            "the buffer grew to fit it"
        );
        let p = packet(&gso, 12, MAX_FRAME_LEN + 1);
        let segs = [seg(0x4000, (12 + MAX_FRAME_LEN + 1) as u32)];
        assert_eq!(read(&p, &segs, 12, 1500).0, Err(DropReason::OversizedFrame));
        // A chain whose lengths add up past 4 GiB.
        let segs = [seg(0x4000, u32::MAX), seg(0x4000, u32::MAX)];
        assert_eq!(read(&p, &segs, 12, 1500).0, Err(DropReason::OversizedFrame));
    }

    #[test]
    fn inconsistent_headers_are_bad_headers() {
        let bad = [
            // The checksum field lies past the frame's end.
            VnetHdr {
                flags: F_NEEDS_CSUM,
                csum_start: 90,
                csum_offset: 9,
                ..VnetHdr::default()
            },
            // GSO without a segment size.
            VnetHdr {
                gso_type: GSO_TCPV4,
                ..VnetHdr::default()
            },
            // An unknown GSO type.
            VnetHdr {
                gso_type: 2,
                gso_size: 100,
                ..VnetHdr::default()
            },
        ];
        for h in bad {
            let p = packet(&h, 12, 100);
            assert_eq!(
                read(&p, &[seg(0x4000, 112)], 12, 1500).0,
                Err(DropReason::BadHeader),
                "{h:?}"
            );
        }
    }

    #[test]
    fn a_buffer_outside_memory_or_straddling_its_end_is_a_bad_address() {
        let p = packet(&VnetHdr::default(), 12, 100);
        let segs = [seg(0x4000, 12), seg(0x2fff0, 100)];
        assert_eq!(read(&p, &segs, 12, 1500).0, Err(DropReason::BadAddress));
        let segs = [seg(0x4000, 12), seg(u64::MAX - 10, 100)];
        assert_eq!(read(&p, &segs, 12, 1500).0, Err(DropReason::BadAddress));
    }
}
