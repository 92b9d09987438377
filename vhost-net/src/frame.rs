//! Frames in flight: pre-allocated buffers and copying a transmit chain out of a guest.

use vm_memory::{Address, Bytes, GuestMemoryBackend};

use crate::chain::Segment;
use crate::counters::DropReason;
use crate::vnet_hdr::{VnetHdr, GSO_NONE};

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// Ethernet header with one 802.1Q tag.
pub const ETH_VLAN_HLEN: usize = 18;
/// Largest frame the switch carries (a 64 KiB GSO packet plus a tagged Ethernet header).
pub const MAX_FRAME_LEN: usize = 65535 + ETH_VLAN_HLEN;

/// One frame and its virtio-net header, in a buffer allocated once and reused.
pub struct Frame {
    /// Offload metadata that travels with the frame.
    pub hdr: VnetHdr,
    /// The Ethernet frame is `data[..len]`.
    pub data: Box<[u8]>,
    /// Frame length.
    pub len: usize,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            hdr: VnetHdr::default(),
            data: vec![0u8; MAX_FRAME_LEN].into_boxed_slice(),
            len: 0,
        }
    }
}

impl Frame {
    /// The Ethernet frame.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Destination MAC address.
    pub fn dst_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.data[0..6]);
        m
    }

    /// Source MAC address.
    pub fn src_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.data[6..12]);
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
pub fn read_tx_frame<M: GuestMemoryBackend>(
    mem: &M,
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
    let mut hdr_buf = [0u8; 12];
    let mut hdr_got = 0usize;
    let mut pos = 0usize;
    for s in segs {
        let mut addr = s.addr;
        let mut len = s.len as usize;
        if hdr_got < hdr_len {
            let take = len.min(hdr_len - hdr_got);
            mem.read_slice(&mut hdr_buf[hdr_got..hdr_got + take], addr)
                .map_err(|_| DropReason::BadAddress)?;
            hdr_got += take;
            len -= take;
            addr = addr.unchecked_add(take as u64);
        }
        if len > 0 {
            let dst = frame
                .data
                .get_mut(pos..pos + len)
                .ok_or(DropReason::OversizedFrame)?;
            mem.read_slice(dst, addr)
                .map_err(|_| DropReason::BadAddress)?;
            pos += len;
        }
    }
    frame.len = pos;
    frame.hdr = VnetHdr::parse(&hdr_buf);
    frame.validate(mtu)
}
