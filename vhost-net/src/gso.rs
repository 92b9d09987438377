//! Software TCP segmentation, for a GSO frame going to a port that did not negotiate
//! the matching GUEST_TSO4/6 offload: the frame is cut into MSS-sized TCP segments with
//! their IP and TCP headers fixed up, each checksummed (or left as a partial checksum
//! when the destination negotiated GUEST_CSUM).

use crate::counters::DropReason;
use crate::frame::{Frame, HEADROOM};
use crate::vnet_hdr::{
    checksum, fold, sum16, VnetHdr, F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6,
};

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Cuts the TCP GSO frame `frame` into segments built one at a time in `seg` and handed
/// to `emit`. `partial_csum`: leave the TCP checksum for the receiver (NEEDS_CSUM with
/// the pseudo-header sum) instead of computing it.
pub fn segment_tcp(
    frame: &Frame,
    seg: &mut Frame,
    partial_csum: bool,
    mut emit: impl FnMut(&mut Frame),
) -> Result<(), DropReason> {
    let b = frame.bytes();
    let bad = DropReason::BadHeader;
    let mut l2 = 14usize;
    let mut ethertype = be16(b, 12);
    if ethertype == 0x8100 {
        l2 = 18;
        if b.len() < 18 {
            return Err(bad);
        }
        ethertype = be16(b, 16);
    }
    let v4 = match (ethertype, frame.hdr.gso_kind()) {
        (0x0800, GSO_TCPV4) => true,
        (0x86dd, GSO_TCPV6) => false,
        _ => return Err(bad),
    };
    let l3len = if v4 {
        let ihl = (*b.get(l2).ok_or(bad)? as usize & 0xf) * 4;
        if ihl < 20 || b.get(l2 + 9) != Some(&6) {
            return Err(bad);
        }
        ihl
    } else {
        if b.get(l2 + 6) != Some(&6) {
            return Err(bad); // extension headers are not segmented
        }
        40
    };
    let l4 = l2 + l3len;
    let doff = (*b.get(l4 + 12).ok_or(bad)? as usize >> 4) * 4;
    let hlen = l4 + doff;
    if doff < 20 || hlen > b.len() {
        return Err(bad);
    }
    let mss = frame.hdr.gso_size as usize;
    if mss == 0 {
        return Err(bad);
    }
    let payload = &b[hlen..];
    let seq0 = u32::from_be_bytes([b[l4 + 4], b[l4 + 5], b[l4 + 6], b[l4 + 7]]);
    let id0 = if v4 { be16(b, l2 + 4) } else { 0 };
    let flags0 = b[l4 + 13];
    let count = payload.len().div_ceil(mss).max(1);
    for i in 0..count {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let len = hlen + chunk.len();
        let out = &mut seg.data[HEADROOM..HEADROOM + len];
        out[..hlen].copy_from_slice(&b[..hlen]);
        out[hlen..].copy_from_slice(chunk);
        let tcp_len = (doff + chunk.len()) as u16;
        if v4 {
            out[l2 + 2..l2 + 4].copy_from_slice(&((l3len as u16) + tcp_len).to_be_bytes());
            out[l2 + 4..l2 + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            out[l2 + 10..l2 + 12].copy_from_slice(&[0, 0]);
            let c = checksum(0, &out[l2..l2 + l3len]);
            out[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            out[l2 + 4..l2 + 6].copy_from_slice(&tcp_len.to_be_bytes());
        }
        let seq = seq0.wrapping_add((i * mss) as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < count {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            flags &= !TCP_CWR;
        }
        out[l4 + 13] = flags;
        // Pseudo-header: addresses, protocol, TCP length.
        let mut pseudo = if v4 {
            sum16(0, &out[l2 + 12..l2 + 20])
        } else {
            sum16(0, &out[l2 + 8..l2 + 40])
        };
        pseudo = sum16(pseudo, &[0, 6]);
        pseudo = sum16(pseudo, &tcp_len.to_be_bytes());
        out[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let mut hdr = VnetHdr {
            gso_type: GSO_NONE,
            ..VnetHdr::default()
        };
        if partial_csum {
            out[l4 + 16..l4 + 18].copy_from_slice(&fold(pseudo).to_be_bytes());
            hdr.flags = F_NEEDS_CSUM;
            hdr.csum_start = l4 as u16;
            hdr.csum_offset = 16;
        } else {
            let c = checksum(pseudo, &out[l4..]);
            out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        }
        seg.hdr = hdr;
        seg.len = len;
        emit(seg);
    }
    Ok(())
}
