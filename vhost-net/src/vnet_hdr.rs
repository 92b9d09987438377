//! The virtio-net header that precedes every frame, and software checksum completion.

/// `flags`: the checksum from `csum_start` on is still to be computed.
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was already verified.
pub const F_DATA_VALID: u8 = 2;
/// `gso_type`: not a GSO frame.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: TCP over IPv4.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation offload.
pub const GSO_UDP: u8 = 3;
/// `gso_type`: TCP over IPv6.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: UDP segmentation (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the ECN/CWR flag is set in the TCP header.
pub const GSO_ECN: u8 = 0x80;

/// Length of the header with `num_buffers` (VERSION_1 or MRG_RXBUF negotiated).
pub const HDR_LEN_MRG: usize = 12;
/// Length of the legacy header without `num_buffers`.
pub const HDR_LEN_LEGACY: usize = 10;

/// A parsed virtio-net header (`struct virtio_net_hdr_mrg_rxbuf`, little endian).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM` / `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers before the GSO payload.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts.
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum is stored.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Parses the first 10 bytes of `b` (callers guarantee the length).
    pub fn parse(b: &[u8]) -> VnetHdr {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// Writes the header into `out` (10 or 12 bytes); `num_buffers` goes into bytes 10..12
    /// when `out` is 12 bytes long.
    pub fn write(&self, out: &mut [u8], num_buffers: u16) {
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        if out.len() >= HDR_LEN_MRG {
            out[10..12].copy_from_slice(&num_buffers.to_le_bytes());
        }
    }

    /// The GSO type without the ECN bit.
    pub fn gso_kind(&self) -> u8 {
        self.gso_type & !GSO_ECN
    }

    /// Checks the fields against the frame length: the checksum position must lie in the
    /// frame, and a GSO frame must carry a segment size and a known type.
    pub fn is_consistent(&self, frame_len: usize) -> bool {
        if self.flags & F_NEEDS_CSUM != 0 {
            let end = self.csum_start as usize + self.csum_offset as usize + 2;
            if end > frame_len {
                return false;
            }
        }
        match self.gso_kind() {
            GSO_NONE => true,
            GSO_TCPV4 | GSO_TCPV6 | GSO_UDP | GSO_UDP_L4 => self.gso_size != 0,
            _ => false,
        }
    }
}

/// Adds `data` to a ones' complement running sum (not folded, not complemented).
pub fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
        if acc > 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Folds a running sum to 16 bits (not complemented).
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Internet checksum of `data` starting from the partial sum `acc`.
pub fn checksum(acc: u32, data: &[u8]) -> u16 {
    !fold(sum16(acc, data))
}

/// Completes a partial checksum in software (`F_NEEDS_CSUM` for a destination that did
/// not negotiate GUEST_CSUM): the field at `csum_start + csum_offset` holds the
/// pseudo-header sum, the result replaces it. Returns false if the offsets are outside
/// the frame. Clears `F_NEEDS_CSUM` on success.
pub fn complete_checksum(hdr: &mut VnetHdr, frame: &mut [u8]) -> bool {
    let start = hdr.csum_start as usize;
    let at = start + hdr.csum_offset as usize;
    if at + 2 > frame.len() || start > frame.len() {
        return false;
    }
    let mut c = checksum(0, &frame[start..]);
    if c == 0 && hdr.csum_offset == 6 {
        c = 0xffff; // UDP: a zero checksum means "none"
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    hdr.flags &= !F_NEEDS_CSUM;
    hdr.flags |= F_DATA_VALID;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut b = [0u8; 12];
        h.write(&mut b, 3);
        assert_eq!(VnetHdr::parse(&b), h);
        assert_eq!(u16::from_le_bytes([b[10], b[11]]), 3);
        assert_eq!(h.gso_kind(), GSO_TCPV4);
        assert!(h.is_consistent(60));
        assert!(!h.is_consistent(40), "checksum field past the end");
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example: sum of these words is 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(0, &data), !0xddf2u16);
    }

    #[test]
    fn completes_partial_checksum() {
        let mut frame = vec![0u8; 20];
        frame[4..6].copy_from_slice(&[0x12, 0x34]); // pseudo-header sum
        frame[10..20].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let mut h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 0,
            csum_offset: 4,
            ..Default::default()
        };
        assert!(complete_checksum(&mut h, &mut frame));
        assert_eq!(
            checksum(0x1234, &frame),
            0,
            "pseudo-header sum plus the completed segment verifies to zero"
        );
        assert_eq!(h.flags, F_DATA_VALID);
        let mut bad = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 19,
            csum_offset: 4,
            ..Default::default()
        };
        assert!(!complete_checksum(&mut bad, &mut frame));
    }
}
