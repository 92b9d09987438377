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
    // An IPv4 total length counts the IP header, TCP header and payload in 16 bits: a
    // frame may be up to 65535 + a tagged Ethernet header long, so an untagged one with
    // an MSS that large would make a segment whose length does not fit.
    if v4 && l3len + doff + mss.min(payload.len()) > usize::from(u16::MAX) {
        return Err(bad);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::MAX_FRAME_LEN;

    /// A TCP GSO frame: optional VLAN tag, IPv4 (or IPv6), `payload` bytes, MSS `mss`,
    /// TCP flags `flags`.
    fn tcp_frame(v6: bool, vlan: bool, payload: usize, mss: u16, flags: u8) -> Frame {
        let mut b = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        if vlan {
            b.extend([0x81, 0x00, 0x00, 0x05]);
        }
        let l2 = b.len() + 2;
        if v6 {
            b.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 6, 64]);
            b.extend((0..32).map(|i| i as u8));
        } else {
            b.extend([0x08, 0x00, 0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
            b.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        }
        let l4 = b.len();
        b.extend([
            0x30, 0x39, 0x00, 0x50, 0, 0, 0, 100, 0, 0, 0, 0, 0x50, flags,
        ]);
        b.extend([0xff, 0xff, 0, 0, 0, 0]);
        b.extend((0..payload).map(|i| (i * 7) as u8));
        let ip_len = (b.len() - l2) as u16;
        if v6 {
            b[l2 + 4..l2 + 6].copy_from_slice(&(ip_len - 40).to_be_bytes());
        } else {
            b[l2 + 2..l2 + 4].copy_from_slice(&ip_len.to_be_bytes());
        }
        let mut f = Frame::full();
        f.data[HEADROOM..HEADROOM + b.len()].copy_from_slice(&b);
        f.len = b.len();
        f.hdr = VnetHdr {
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            gso_size: mss,
            hdr_len: (l4 + 20) as u16,
            ..VnetHdr::default()
        };
        f
    }

    fn segments(f: &Frame, partial: bool) -> Result<Vec<(VnetHdr, Vec<u8>)>, DropReason> {
        let mut seg = Frame::full();
        let mut out = Vec::new();
        segment_tcp(f, &mut seg, partial, |s| {
            out.push((s.hdr, s.bytes().to_vec()))
        })?;
        Ok(out)
    }

    #[test]
    fn ipv4_segments_are_mss_sized_with_lengths_ids_seqs_flags_and_checksums_fixed() {
        let f = tcp_frame(false, false, 3000, 1000, TCP_PSH | TCP_FIN | TCP_CWR);
        let segs = segments(&f, false).unwrap();
        assert_eq!(segs.len(), 3);
        let mut payload = Vec::new();
        for (i, (h, s)) in segs.iter().enumerate() {
            assert_eq!(h.gso_type, GSO_NONE);
            assert_eq!(s.len(), 54 + 1000);
            assert_eq!(be16(s, 16) as usize, s.len() - 14, "IPv4 total length");
            assert_eq!(be16(s, 18), 0x1234 + i as u16, "IP ID");
            assert_eq!(checksum(0, &s[14..34]), 0, "IPv4 header checksum");
            let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
            assert_eq!(seq, 100 + 1000 * i as u32);
            let last = i == 2;
            assert_eq!(
                s[47] & (TCP_FIN | TCP_PSH) != 0,
                last,
                "FIN/PSH only on the last"
            );
            assert_eq!(s[47] & TCP_CWR != 0, i == 0, "CWR only on the first");
            let pseudo = sum16(sum16(sum16(0, &s[26..34]), &[0, 6]), &1020u16.to_be_bytes());
            assert_eq!(checksum(pseudo, &s[34..]), 0, "TCP checksum");
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, f.bytes()[54..], "payload preserved in order");
    }

    #[test]
    fn ipv6_with_vlan_tag_sets_payload_length_and_can_leave_the_checksum_partial() {
        let f = tcp_frame(true, true, 2500, 1200, 0);
        let segs = segments(&f, true).unwrap();
        assert_eq!(
            segs.iter().map(|(_, s)| s.len() - 78).collect::<Vec<_>>(),
            [1200, 1200, 100]
        );
        for (h, s) in &segs {
            assert_eq!(
                be16(s, 18 + 4) as usize,
                s.len() - 18 - 40,
                "IPv6 payload length"
            );
            assert_eq!(
                (h.flags, h.csum_start, h.csum_offset),
                (F_NEEDS_CSUM, 58, 16)
            );
            let mut h = *h;
            let mut s = s.clone();
            assert!(crate::vnet_hdr::complete_checksum(&mut h, &mut s));
            let tcp_len = (s.len() - 58) as u16;
            let pseudo = sum16(sum16(sum16(0, &s[26..58]), &[0, 6]), &tcp_len.to_be_bytes());
            assert_eq!(
                checksum(pseudo, &s[58..]),
                0,
                "completed TCP checksum verifies"
            );
        }
    }

    #[test]
    fn an_empty_payload_makes_one_segment_of_headers_only() {
        let f = tcp_frame(false, false, 0, 1460, TCP_FIN);
        let segs = segments(&f, false).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].1.len(), 54);
        assert_eq!(segs[0].1[47] & TCP_FIN, TCP_FIN);
    }

    #[test]
    fn headers_it_cannot_segment_are_refused() {
        let mut ext = tcp_frame(true, false, 100, 50, 0);
        ext.bytes_mut()[14 + 6] = 0; // IPv6 next header: hop-by-hop options
        let mut short_doff = tcp_frame(false, false, 100, 50, 0);
        short_doff.bytes_mut()[46] = 0x40; // TCP data offset 16 bytes
        let mut kind = tcp_frame(false, false, 100, 50, 0);
        kind.hdr.gso_type = GSO_TCPV6; // IPv4 frame marked TCPv6
        let mut mss0 = tcp_frame(false, false, 100, 50, 0);
        mss0.hdr.gso_size = 0;
        let mut udp = tcp_frame(false, false, 100, 50, 0);
        udp.bytes_mut()[23] = 17;
        for f in [ext, short_doff, kind, mss0, udp] {
            assert_eq!(segments(&f, false), Err(DropReason::BadHeader));
        }
    }

    /// Regression (fuzz target `vswitch_gso`, crash-2bd8f7ae): an untagged IPv4 GSO
    /// frame of the largest size the switch takes (65535 + 18 bytes) with an MSS of
    /// 65535 made one segment whose IPv4 total length (65539) overflowed 16 bits: a
    /// panic with overflow checks, a wrong length without.
    #[test]
    fn an_ipv4_segment_longer_than_65535_bytes_is_refused_not_wrapped() {
        let f = tcp_frame(false, false, MAX_FRAME_LEN - 54, 65535, 0);
        assert_eq!(f.len, MAX_FRAME_LEN);
        assert_eq!(segments(&f, true), Err(DropReason::BadHeader));
        // With a VLAN tag the same IP packet is 4 bytes shorter and fits: segmented.
        let f = tcp_frame(false, true, MAX_FRAME_LEN - 58, 65535, 0);
        let segs = segments(&f, false).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(be16(&segs[0].1, 20), 65535);
        // A smaller MSS cuts it into segments that fit.
        let f = tcp_frame(false, false, MAX_FRAME_LEN - 54, 8000, 0);
        assert_eq!(segments(&f, false).unwrap().len(), 9);
    }
}
