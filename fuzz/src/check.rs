//! What the guest-facing targets check after each pass: an independent reference walker
//! (vm-memory's own checked reads, written from the rules in `chain.rs`'s documentation,
//! not from its code), the transmit verdicts and counters it predicts, and for receive
//! queues that every byte the switch changed lies in the used ring or in a buffer the
//! guest handed over, that used entries are in range and that what arrived is what was
//! sent.

use virtnet_vhost_net::counters::{DropReason, PortCounters};
use virtnet_vhost_net::frame::{Frame, ETH_HLEN, MAX_FRAME_LEN};
use virtnet_vhost_net::fuzz_api::virtio_queue::{Queue, QueueT};
use virtnet_vhost_net::fuzz_api::vm_memory::{Bytes, GuestAddress};
use virtnet_vhost_net::vnet_hdr::{VnetHdr, GSO_NONE};

use virtnet_vhost_net::rx::Mem;

use crate::guest::{Guest, F_INDIRECT, F_NEXT, F_WRITE};

/// Reference walk of the chain at `head`: its (addr, len) buffers (zero-length ones
/// left out) or why it is refused.
pub fn ref_walk(
    mem: &Mem,
    table: u64,
    qsize: u16,
    head: u16,
    writable: bool,
) -> Result<Vec<(u64, u32)>, DropReason> {
    let cap = usize::from(qsize).min(1024);
    let (mut table, mut n) = (table, usize::from(qsize));
    let (mut i, mut in_table, mut count) = (usize::from(head), 0usize, 0usize);
    let mut indirect = false;
    let mut out = Vec::new();
    loop {
        if i >= n {
            return Err(DropReason::BadDescriptor);
        }
        let at = table
            .checked_add(16 * i as u64)
            .ok_or(DropReason::BadAddress)?;
        let mut d = [0u8; 16];
        mem.read_slice(&mut d, GuestAddress(at))
            .map_err(|_| DropReason::BadAddress)?;
        let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
        let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
        let flags = u16::from_le_bytes([d[12], d[13]]);
        let next = u16::from_le_bytes([d[14], d[15]]);
        if flags & F_INDIRECT != 0 {
            // Only one level, never combined with NEXT, a whole number of entries.
            if indirect || flags & F_NEXT != 0 || len == 0 || len % 16 != 0 || len / 16 > 65535 {
                return Err(DropReason::BadDescriptor);
            }
            (table, n, i, in_table, indirect) = (addr, len as usize / 16, 0, 0, true);
            continue;
        }
        in_table += 1;
        if in_table > n {
            return Err(DropReason::DescriptorLoop);
        }
        count += 1;
        if count > cap {
            return Err(DropReason::ChainTooLong);
        }
        if (flags & F_WRITE != 0) != writable {
            return Err(DropReason::BadDescriptor);
        }
        if len > 0 {
            out.push((addr, len));
        }
        if flags & F_NEXT == 0 {
            return Ok(out);
        }
        i = usize::from(next);
    }
}

/// What the reference predicts for one transmit chain: the header-and-frame bytes, or
/// the drop reason.
pub fn ref_tx(
    g: &Guest,
    q: &Queue,
    head: u16,
    hdr_len: usize,
    mtu: usize,
) -> Result<Vec<u8>, DropReason> {
    let segs = ref_walk(&g.mem, q.desc_table(), q.size(), head, false)?;
    let total: u64 = segs.iter().map(|s| u64::from(s.1)).sum();
    if total < (hdr_len + ETH_HLEN) as u64 {
        return Err(DropReason::ShortFrame);
    }
    if total - hdr_len as u64 > MAX_FRAME_LEN as u64 {
        return Err(DropReason::OversizedFrame);
    }
    let mut bytes = vec![0u8; total as usize];
    let mut pos = 0;
    for (addr, len) in segs {
        let dst = &mut bytes[pos..pos + len as usize];
        g.mem
            .read_slice(dst, GuestAddress(addr))
            .map_err(|_| DropReason::BadAddress)?;
        pos += len as usize;
    }
    let hdr = VnetHdr::parse(&bytes[..hdr_len]);
    let len = bytes.len() - hdr_len;
    if hdr.gso_kind() == GSO_NONE && len > mtu + 18 {
        return Err(DropReason::OversizedFrame);
    }
    if !hdr.is_consistent(len) {
        return Err(DropReason::BadHeader);
    }
    Ok(bytes)
}

/// The avail heads a pass starting at `next` may take (at most `max`), as the guest
/// published them; stops where the ring cannot be read.
pub fn avail_heads(g: &Guest, q: &Queue, next: u16, max: usize) -> Vec<u16> {
    let size = q.size();
    let ring = q.avail_ring();
    let Some(idx) = ring.checked_add(2).and_then(|a| g.u16_at(a)) else {
        return Vec::new();
    };
    let n = idx.wrapping_sub(next);
    if n > size {
        return Vec::new(); // a lying index is ignored
    }
    let mut out = Vec::new();
    for k in 0..usize::from(n).min(max) {
        let pos = next.wrapping_add(k as u16) % size;
        match ring
            .checked_add(4 + 2 * u64::from(pos))
            .and_then(|a| g.u16_at(a))
        {
            Some(h) => out.push(h),
            None => break,
        }
    }
    out
}

/// The used entries (id, len) published from position `from` to the queue's next_used.
pub fn used_entries(g: &Guest, q: &Queue, from: u16) -> Vec<(u32, u32)> {
    let size = q.size();
    let mut out = Vec::new();
    let mut i = from;
    while i != q.next_used() {
        let at = q.used_ring().wrapping_add(4 + 8 * u64::from(i % size));
        let mut e = [0u8; 8];
        g.mem
            .read_slice(&mut e, GuestAddress(at))
            .expect("a published used entry is in guest memory");
        out.push((
            u32::from_le_bytes(e[0..4].try_into().unwrap()),
            u32::from_le_bytes(e[4..8].try_into().unwrap()),
        ));
        i = i.wrapping_add(1);
    }
    out
}

/// Whether two (start, len) ranges share a byte.
fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// Whether `a` lies in the used ring's idx or entries.
fn in_used_ring(q: &Queue, a: u64) -> bool {
    let off = a.wrapping_sub(q.used_ring());
    (2..4 + 8 * u64::from(q.size())).contains(&off)
}

/// Checks a transmit queue after a pass: the switch wrote nothing but the used ring,
/// every taken chain came back with length 0, and the published used index moved by
/// exactly that many entries.
pub fn check_tx_ring(g: &Guest, q: &Queue, before: &[Vec<u8>], heads: &[u16], used_from: u16) {
    for a in g.changed(before) {
        assert!(
            in_used_ring(q, a),
            "transmit pass wrote guest byte {a:#x} outside the used ring"
        );
    }
    let used = used_entries(g, q, used_from);
    let expect: Vec<(u32, u32)> = heads
        .iter()
        .filter(|&&h| h < q.size())
        .map(|&h| (u32::from(h), 0))
        .collect();
    let ring_ok = g.readable(q.used_ring(), 4 + 8 * u64::from(q.size()));
    if ring_ok && !expect.is_empty() {
        assert_eq!(used, expect, "used entries of a transmit pass");
        assert_eq!(
            g.u16_at(q.used_ring().wrapping_add(2)),
            Some(q.next_used()),
            "published used index"
        );
    } else {
        assert!(used.len() <= expect.len());
    }
}

/// Whole counters of a port.
pub fn drops_total(c: &PortCounters) -> u64 {
    DropReason::ALL.iter().map(|r| c.drops(*r)).sum()
}

/// A receive guest's state before a delivery pass.
pub struct RxBefore {
    mem: Vec<Vec<u8>>,
    /// A copy of the memory, to walk chains as they were before the pass.
    copy: Mem,
    avail: u16,
    used: u16,
}

impl RxBefore {
    /// Records `g`'s memory and queue positions.
    pub fn of(g: &Guest) -> RxBefore {
        RxBefore {
            mem: g.snapshot(),
            copy: g.copy_mem(),
            avail: g.queue.next_avail(),
            used: g.queue.next_used(),
        }
    }
}

/// How the receiving guest reads its queue.
#[derive(Clone, Copy)]
pub struct RxLayout {
    /// Its virtio-net header length.
    pub hdr_len: usize,
    /// Mergeable receive buffers.
    pub mrg: bool,
    /// It negotiated every offload, so frames must arrive unchanged.
    pub exact: bool,
}

/// Checks a receive queue after a delivery pass. `sent`: the (header, frame) pairs
/// handed to the pass, before it adapted them.
pub fn check_rx_ring(
    g: &Guest,
    before: &RxBefore,
    layout: RxLayout,
    counters: &PortCounters,
    sent: &[(VnetHdr, Vec<u8>)],
) {
    let RxLayout {
        hdr_len,
        mrg,
        exact,
    } = layout;
    let (q, avail_from, used_from) = (&g.queue, before.avail, before.used);
    let size = q.size();
    let used = used_entries(g, q, used_from);
    let consumed = q.next_avail().wrapping_sub(avail_from);
    assert!(
        used.len() <= usize::from(consumed),
        "{} used entries for {consumed} avail entries taken",
        used.len()
    );
    // Where the switch may have written: the used ring, and of every chain it returned
    // the first `len` bytes (all of it when it returned 0: a failed copy may have
    // written part of it).
    let mut allowed: Vec<(u64, u64)> = Vec::new();
    let mut chains = Vec::new();
    // A guest may point receive buffers at its own rings, tables or other buffers:
    // then the pass changes what it walks while it walks it. Chains are walked as they
    // were before the pass and as they are after it; the packets are reassembled only
    // when no returned buffer overlaps another or the guest's queue structures.
    let mut tangled = false;
    for &(id, len) in &used {
        assert!(
            id < u32::from(size),
            "used id {id} out of range (size {size})"
        );
        let pre = ref_walk(&before.copy, q.desc_table(), size, id as u16, true);
        let post = ref_walk(&g.mem, q.desc_table(), size, id as u16, true);
        let walks: Vec<Vec<(u64, u32)>> = if pre == post {
            pre.into_iter().collect()
        } else {
            tangled = true;
            [pre, post].into_iter().flatten().collect()
        };
        if walks.is_empty() {
            assert_eq!(len, 0, "a malformed chain came back with data");
            chains.push((len, Vec::new()));
            continue;
        }
        for segs in &walks {
            let cap: u64 = segs.iter().map(|s| u64::from(s.1)).sum();
            if walks.len() == 1 || !tangled {
                assert!(
                    u64::from(len) <= cap,
                    "used len {len} > chain capacity {cap}"
                );
            }
            let mut left = if len == 0 { cap } else { u64::from(len) };
            for &(addr, l) in segs {
                let k = left.min(u64::from(l));
                if k > 0 {
                    allowed.push((addr, k));
                    tangled |= g.meta.iter().any(|&m| overlaps(m, (addr, k)));
                    tangled |= allowed[..allowed.len() - 1]
                        .iter()
                        .any(|&r| overlaps(r, (addr, k)));
                }
                left -= k;
            }
        }
        chains.push((len, walks[0].clone()));
    }
    if used.len() < usize::from(consumed) {
        // Some chains taken could not be returned (a used ring outside memory, or ids
        // out of range): the switch may have written any of the chains it took.
        tangled = true;
        for k in 0..consumed {
            let at = q
                .avail_ring()
                .wrapping_add(4 + 2 * u64::from(avail_from.wrapping_add(k) % size));
            for m in [&before.copy, &g.mem] {
                let Ok(head) = m.read_obj::<u16>(GuestAddress(at)) else {
                    continue;
                };
                for w in [&before.copy, &g.mem] {
                    if let Ok(segs) = ref_walk(w, q.desc_table(), size, u16::from_le(head), true) {
                        allowed.extend(segs.iter().map(|&(a, l)| (a, u64::from(l))));
                    }
                }
            }
        }
    }
    for a in g.changed(&before.mem) {
        assert!(
            in_used_ring(q, a) || allowed.iter().any(|&(s, l)| a >= s && a - s < l),
            "delivery wrote guest byte {a:#x} outside the used ring and the buffers returned \
             (used entries {used:?}, buffers {allowed:x?}, desc {:#x} avail {:#x} used {:#x} \
             size {size}, avail {avail_from}->{}, used {used_from}->{})",
            q.desc_table(),
            q.avail_ring(),
            q.used_ring(),
            q.next_avail(),
            q.next_used()
        );
    }
    if tangled {
        return;
    }
    // Reassemble what arrived.
    let read = |segs: &[(u64, u32)], len: u32| {
        let mut v = vec![0u8; len as usize];
        let mut pos = 0usize;
        for &(addr, l) in segs {
            let n = (len as usize - pos).min(l as usize);
            if n == 0 {
                break;
            }
            g.mem
                .read_slice(&mut v[pos..pos + n], GuestAddress(addr))
                .expect("returned buffer readable");
            pos += n;
        }
        v
    };
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut k = 0;
    while k < chains.len() {
        let (len, segs) = &chains[k];
        k += 1;
        if *len == 0 {
            continue; // a failed or refused chain
        }
        let mut p = read(segs, *len);
        assert!(
            p.len() >= hdr_len,
            "a packet's first buffer shorter than its header"
        );
        if mrg {
            let nb = u16::from_le_bytes([p[10], p[11]]) as usize;
            assert!(nb >= 1, "num_buffers 0");
            for _ in 1..nb {
                let (len, segs) = chains.get(k).expect("num_buffers past the used entries");
                k += 1;
                p.extend(read(segs, *len));
            }
        }
        packets.push(p);
    }
    let snap = counters.snapshot();
    assert_eq!(
        snap.tx_packets,
        packets.len() as u64,
        "tx_packets vs packets in the ring"
    );
    let bytes: u64 = packets.iter().map(|p| (p.len() - hdr_len) as u64).sum();
    assert_eq!(snap.tx_bytes, bytes, "tx_bytes vs bytes in the ring");
    for p in &packets {
        assert!(p.len() - hdr_len >= ETH_HLEN && p.len() - hdr_len <= MAX_FRAME_LEN);
    }
    if exact {
        // Each packet is one of the frames sent, in order, with its header.
        let mut j = 0;
        for p in &packets {
            let found = sent[j..].iter().position(|(h, f)| {
                let mut hb = [0u8; 12];
                h.write(&mut hb[..hdr_len], 0);
                p.len() == hdr_len + f.len() && p[..10] == hb[..10] && p[hdr_len..] == f[..]
            });
            let found = found.expect("a delivered packet that was never sent (or out of order)");
            j += found + 1;
        }
        assert_eq!(
            snap.tx_packets + drops_total(counters),
            sent.len() as u64,
            "every frame delivered or dropped once"
        );
    }
}

/// The (header, frame) of each frame, for comparing after a pass.
pub fn originals(frames: &[Frame]) -> Vec<(VnetHdr, Vec<u8>)> {
    frames.iter().map(|f| (f.hdr, f.bytes().to_vec())).collect()
}
