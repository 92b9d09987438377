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
