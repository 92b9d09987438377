//! Fuzz target: software checksum completion and TCP segmentation (`gso.rs`,
//! `vnet_hdr.rs`) on arbitrary virtio-net headers and frames — built TCP/IPv4 and
//! TCP/IPv6 packets (with VLAN tags, IP and TCP options, any flags, payloads up to
//! 64 KiB, any MSS) or raw bytes, each first checked as the switch checks every frame
//! it takes in. Checks: segmentation succeeds exactly when the headers parse; every
//! segment is at most MSS + headers; the payloads concatenate to the original; IPv4
//! total length / IPv6 payload length match the segment, the IPv4 header checksum and
//! the TCP checksum (or, when left partial, its completion) verify; sequence numbers,
//! IP IDs and FIN/PSH/CWR are fixed up; checksum completion changes only its field.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtnet_fuzz::FrameSpec;
use virtnet_vhost_net::frame::{Frame, MAX_FRAME_LEN};
use virtnet_vhost_net::gso::segment_tcp;
use virtnet_vhost_net::vnet_hdr::{
    checksum, complete_checksum, fold, sum16, VnetHdr, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4,
    GSO_TCPV6,
};

#[derive(Arbitrary, Debug)]
struct Tcp {
    vlan: bool,
    v6: bool,
    ip_opt_words: u8,
    tcp_opt_words: u8,
    flags: u8,
    seq: u32,
    id: u16,
    addrs: [u8; 32],
    payload_head: Vec<u8>,
    payload_len: u16,
    mss: u16,
    ecn: bool,
    partial: bool,
    /// Break one header byte (offset, value).
    poke: Option<(u16, u8)>,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Tcp(Tcp),
    Raw(FrameSpec),
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Builds a TCP packet and its header (`partial`: NEEDS_CSUM with the pseudo-header sum).
fn build(t: &Tcp, f: &mut Frame) {
    let mut b = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    if t.vlan {
        b.extend([0x81, 0x00, 0x00, 0x05]);
    }
    let l2 = b.len() + 2;
    let iphl;
    if t.v6 {
        b.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 6, 64]);
        b.extend(&t.addrs);
        iphl = 40;
    } else {
        iphl = 20 + 4 * usize::from(t.ip_opt_words % 11);
        b.extend([0x08, 0x00, 0x40 | (iphl / 4) as u8, 0, 0, 0]);
        b.extend(t.id.to_be_bytes());
        b.extend([0x40, 0, 64, 6, 0, 0]);
        b.extend(&t.addrs[..8]);
        b.extend(std::iter::repeat_n(1u8, iphl - 20)); // NOP options
    }
    let doff = 20 + 4 * usize::from(t.tcp_opt_words % 11);
    b.extend([0x30, 0x39, 0x00, 0x50]);
    b.extend(t.seq.to_be_bytes());
    b.extend([
        0,
        0,
        0,
        0,
        ((doff / 4) << 4) as u8,
        t.flags,
        0xff,
        0xff,
        0,
        0,
        0,
        0,
    ]);
    b.extend(std::iter::repeat_n(1u8, doff - 20));
    let hlen = b.len();
    let plen = usize::from(t.payload_len).min(MAX_FRAME_LEN - hlen);
    b.extend(t.payload_head.iter().take(plen));
    while b.len() < hlen + plen {
        b.push(b.len() as u8);
    }
    let l4 = l2 + iphl;
    let tcp_len = (b.len() - l4) as u16;
    if t.v6 {
        b[l2 + 4..l2 + 6].copy_from_slice(&tcp_len.to_be_bytes());
    } else {
        let tot = (b.len() - l2).min(65535) as u16;
        b[l2 + 2..l2 + 4].copy_from_slice(&tot.to_be_bytes());
    }
    let pseudo = pseudo_sum(&b, l2, !t.v6, tcp_len);
    if t.partial {
        b[l4 + 16..l4 + 18].copy_from_slice(&fold(pseudo).to_be_bytes());
    }
    if let Some((at, v)) = t.poke {
        let at = usize::from(at) % hlen;
        b[at] = v;
    }
    let spec = FrameSpec {
        hdr: [0; 10],
        head: b,
        extra: 0,
    };
    spec.fill(f);
    let mut gso_type = if t.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    if t.ecn {
        gso_type |= GSO_ECN;
    }
    f.hdr = VnetHdr {
        flags: if t.partial { F_NEEDS_CSUM } else { 0 },
        gso_type,
        hdr_len: hlen as u16,
        gso_size: t.mss,
        csum_start: l4 as u16,
        csum_offset: 16,
    };
}

fn pseudo_sum(b: &[u8], l2: usize, v4: bool, tcp_len: u16) -> u32 {
    let s = if v4 {
        sum16(0, &b[l2 + 12..l2 + 20])
    } else {
        sum16(0, &b[l2 + 8..l2 + 40])
    };
    sum16(sum16(s, &[0, 6]), &tcp_len.to_be_bytes())
}

/// (l2, l3 length, TCP header length, IPv4?) when the frame's headers are ones
/// segmentation takes.
fn parse(f: &Frame) -> Option<(usize, usize, usize, bool)> {
    let b = f.bytes();
    let (l2, et) = match be16(b, 12) {
        0x8100 if b.len() >= 18 => (18, be16(b, 16)),
        0x8100 => return None,
        et => (14, et),
    };
    let v4 = match (et, f.hdr.gso_kind()) {
        (0x0800, GSO_TCPV4) => true,
        (0x86dd, GSO_TCPV6) => false,
        _ => return None,
    };
    let l3 = if v4 {
        let ihl = usize::from(*b.get(l2)? & 0xf) * 4;
        if ihl < 20 || *b.get(l2 + 9)? != 6 {
            return None;
        }
        ihl
    } else {
        if *b.get(l2 + 6)? != 6 {
            return None;
        }
        40
    };
    let doff = usize::from(*b.get(l2 + l3 + 12)? >> 4) * 4;
    if doff < 20 || l2 + l3 + doff > b.len() {
        return None;
    }
    Some((l2, l3, doff, v4))
}

fn check_segments(f: &Frame, partial: bool) {
    let mut seg = Frame::full();
    let mut out: Vec<(VnetHdr, Vec<u8>)> = Vec::new();
    let res = segment_tcp(f, &mut seg, partial, |s| {
        out.push((s.hdr, s.bytes().to_vec()))
    });
    let Some((l2, l3, doff, v4)) = parse(f) else {
        assert!(res.is_err(), "segmented a frame whose headers do not parse");
        return;
    };
    let b = f.bytes();
    let l4 = l2 + l3;
    let hlen = l4 + doff;
    let mss = usize::from(f.hdr.gso_size);
    if v4 && hlen + mss.min(b.len() - hlen) - l2 > 65535 {
        // A segment would not fit an IPv4 total length: must be refused.
        assert!(res.is_err(), "made an IPv4 segment longer than 65535 bytes");
        return;
    }
    res.expect("a well-formed TCP GSO frame is segmented");
    let payload = &b[hlen..];
    assert_eq!(
        out.len(),
        payload.len().div_ceil(mss).max(1),
        "segment count"
    );
    let seq0 = u32::from_be_bytes(b[l4 + 4..l4 + 8].try_into().unwrap());
    let mut joined = Vec::new();
    for (i, (h, s)) in out.iter().enumerate() {
        assert!(
            s.len() >= hlen && s.len() <= hlen + mss,
            "segment length {}",
            s.len()
        );
        assert_eq!(h.gso_type, GSO_NONE);
        assert_eq!(&s[..l2], &b[..l2], "Ethernet header");
        joined.extend_from_slice(&s[hlen..]);
        let tcp_len = (s.len() - l4) as u16;
        if v4 {
            assert_eq!(
                usize::from(be16(s, l2 + 2)),
                s.len() - l2,
                "IPv4 total length"
            );
            assert_eq!(checksum(0, &s[l2..l4]), 0, "IPv4 header checksum");
            assert_eq!(
                be16(s, l2 + 4),
                be16(b, l2 + 4).wrapping_add(i as u16),
                "IP ID"
            );
        } else {
            assert_eq!(
                usize::from(be16(s, l2 + 4)),
                s.len() - l4,
                "IPv6 payload length"
            );
        }
        let seq = u32::from_be_bytes(s[l4 + 4..l4 + 8].try_into().unwrap());
        assert_eq!(seq, seq0.wrapping_add((i * mss) as u32), "sequence number");
        let (fl, fl0) = (s[l4 + 13], b[l4 + 13]);
        let last = i + 1 == out.len();
        assert_eq!(fl & 0x09, if last { fl0 & 0x09 } else { 0 }, "FIN/PSH");
        assert_eq!(fl & 0x80, if i == 0 { fl0 & 0x80 } else { 0 }, "CWR");
        let pseudo = pseudo_sum(s, l2, v4, tcp_len);
        if partial {
            assert_eq!(h.flags, F_NEEDS_CSUM);
            assert_eq!((usize::from(h.csum_start), h.csum_offset), (l4, 16));
            let mut h2 = *h;
            let mut s2 = s.clone();
            assert!(complete_checksum(&mut h2, &mut s2));
            assert_eq!(
                fold(sum16(pseudo, &s2[l4..])),
                0xffff,
                "completed TCP checksum"
            );
        } else {
            assert_eq!(fold(sum16(pseudo, &s[l4..])), 0xffff, "TCP checksum");
        }
    }
    assert_eq!(joined, payload, "payload preserved");
}

fn check_completion(f: &Frame) {
    let mut h = f.hdr;
    let mut b = f.bytes().to_vec();
    let ok = complete_checksum(&mut h, &mut b);
    let at = usize::from(f.hdr.csum_start) + usize::from(f.hdr.csum_offset);
    assert_eq!(
        ok,
        at + 2 <= b.len(),
        "completion refused only when out of the frame"
    );
    for (i, (x, y)) in b.iter().zip(f.bytes()).enumerate() {
        assert!(
            x == y || (ok && i >= at && i < at + 2),
            "completion changed byte {i}"
        );
    }
}

fuzz_target!(|input: Input| {
    let mut f = Frame::default();
    let partial = match &input {
        Input::Tcp(t) => {
            build(t, &mut f);
            t.partial
        }
        Input::Raw(spec) => {
            spec.fill(&mut f);
            f.hdr.flags & F_NEEDS_CSUM != 0
        }
    };
    // Only frames the switch would take in get here.
    if f.validate(65535).is_err() {
        return;
    }
    if f.hdr.flags & F_NEEDS_CSUM != 0 {
        check_completion(&f);
    }
    if matches!(f.hdr.gso_kind(), GSO_TCPV4 | GSO_TCPV6) {
        check_segments(&f, partial);
    }
});
