//! Shared by the guest-facing fuzz targets: fake guests ([`guest`]) and the checks run
//! after each pass of the switch over them ([`check`]).

pub mod check;
pub mod guest;

use arbitrary::Arbitrary;
use virtnet_vhost_net::frame::{Frame, HEADROOM, MAX_FRAME_LEN};
use virtnet_vhost_net::vnet_hdr::VnetHdr;

/// Feature bits the delivery path looks at (virtio 1.2, 5.1.3).
pub mod feature {
    /// The guest takes partial checksums.
    pub const GUEST_CSUM: u64 = 1 << 1;
    /// The guest takes TCPv4 GSO frames.
    pub const GUEST_TSO4: u64 = 1 << 7;
    /// The guest takes TCPv6 GSO frames.
    pub const GUEST_TSO6: u64 = 1 << 8;
    /// The guest takes GSO frames with ECN.
    pub const GUEST_ECN: u64 = 1 << 9;
    /// Mergeable receive buffers.
    pub const MRG_RXBUF: u64 = 1 << 15;
    /// Virtio 1.0 (12-byte header).
    pub const VERSION_1: u64 = 1 << 32;
    /// Every offload: frames pass unchanged.
    pub const ALL_OFFLOADS: u64 = GUEST_CSUM | GUEST_TSO4 | GUEST_TSO6 | GUEST_ECN;
}

/// What a receiving guest negotiated.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct RxFeatures {
    /// Raw bits; only the ones in [`feature`] matter.
    pub bits: u16,
    /// Virtio 1.0.
    pub version_1: bool,
}

impl RxFeatures {
    /// The 64-bit feature word.
    pub fn word(self) -> u64 {
        let mut f = 0u64;
        for b in [1u64, 7, 8, 9, 15] {
            if self.bits & (1 << (b % 16)) != 0 {
                f |= 1 << b;
            }
        }
        if self.version_1 {
            f |= feature::VERSION_1;
        }
        f
    }

    /// Header length in this guest's layout (as `ConnState::hdr_len`).
    pub fn hdr_len(self) -> usize {
        if self.word() & (feature::VERSION_1 | feature::MRG_RXBUF) != 0 {
            12
        } else {
            10
        }
    }
}

/// A frame made from input: a header, the first bytes, then `extra` bytes of a
/// pattern (up to a 64 KiB frame from a few input bytes).
#[derive(Arbitrary, Debug, Clone)]
pub struct FrameSpec {
    /// The virtio-net header (10 bytes).
    pub hdr: [u8; 10],
    /// The first bytes of the Ethernet frame.
    pub head: Vec<u8>,
    /// Pattern bytes after them.
    pub extra: u16,
}

impl FrameSpec {
    /// Builds the frame into `f` (whose buffer grows as needed).
    pub fn fill(&self, f: &mut Frame) {
        let len = (self.head.len() + usize::from(self.extra)).min(MAX_FRAME_LEN);
        if HEADROOM + len > f.data.len() {
            f.grow();
        }
        let out = &mut f.data[HEADROOM..HEADROOM + len];
        let n = self.head.len().min(len);
        out[..n].copy_from_slice(&self.head[..n]);
        for (i, b) in out[n..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        f.len = len;
        f.hdr = VnetHdr::parse(&self.hdr);
    }
}
