//! Test helpers: a guest memory map, a split queue placed in it, and descriptors and
//! avail entries written the way a driver writes them.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use crate::rx::Mem;

/// Descriptor flag: another descriptor follows.
pub const NEXT: u16 = 1;
/// Descriptor flag: device-writable.
pub const WRITE: u16 = 2;
/// Descriptor flag: refers to an indirect table.
pub const INDIRECT: u16 = 4;

/// Descriptor table, avail ring and used ring of [`queue`].
pub const DESC: u64 = 0x1000;
/// Avail ring.
pub const AVAIL: u64 = 0x2000;
/// Used ring.
pub const USED: u64 = 0x3000;
/// Buffers start here.
pub const BUF: u64 = 0x4000;

/// One region `[0, len)`.
pub fn mem(len: usize) -> Mem {
    Mem::from_ranges(&[(GuestAddress(0), len)]).unwrap()
}

/// A ready queue of `size` at [`DESC`], [`AVAIL`], [`USED`].
pub fn queue(size: u16) -> Queue {
    queue_at(size, DESC, AVAIL, USED)
}

/// A ready queue of `size` with its rings where given.
pub fn queue_at(size: u16, desc: u64, avail: u64, used: u64) -> Queue {
    let mut q = Queue::new(1024).unwrap();
    q.set_size(size);
    q.set_desc_table_address(Some(desc as u32), Some((desc >> 32) as u32));
    q.set_avail_ring_address(Some(avail as u32), Some((avail >> 32) as u32));
    q.set_used_ring_address(Some(used as u32), Some((used >> 32) as u32));
    q.set_ready(true);
    q
}

/// Writes descriptor `i` of the table at `table`.
pub fn desc(m: &Mem, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..16].copy_from_slice(&next.to_le_bytes());
    m.write_slice(&b, GuestAddress(table + 16 * u64::from(i)))
        .unwrap();
}

/// Publishes `heads` in the avail ring of `q` (from its next_avail on).
pub fn publish(m: &Mem, q: &Queue, heads: &[u16]) {
    let avail = q.avail_ring();
    for (k, h) in heads.iter().enumerate() {
        let pos = q.next_avail().wrapping_add(k as u16) % q.size();
        m.write_obj(h.to_le(), GuestAddress(avail + 4 + 2 * u64::from(pos)))
            .unwrap();
    }
    let idx = q.next_avail().wrapping_add(heads.len() as u16);
    m.write_obj(idx.to_le(), GuestAddress(avail + 2)).unwrap();
}

/// The used entries (id, len) from position `from` to the queue's next_used, and the
/// published used index.
pub fn used(m: &Mem, q: &Queue, from: u16) -> (Vec<(u32, u32)>, u16) {
    let mut out = Vec::new();
    let mut i = from;
    while i != q.next_used() {
        let at = q.used_ring() + 4 + 8 * u64::from(i % q.size());
        let id: u32 = m.read_obj(GuestAddress(at)).unwrap();
        let len: u32 = m.read_obj(GuestAddress(at + 4)).unwrap();
        out.push((id, len));
        i = i.wrapping_add(1);
    }
    let idx: u16 = m.read_obj(GuestAddress(q.used_ring() + 2)).unwrap();
    (out, idx)
}

/// Frame builders for filter tests: Ethernet, IPv4, UDP, ARP, VLAN tags.
pub mod frames {
    /// An Ethernet frame `dst`, `src`, `ethertype`, then `payload`.
    pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + payload.len());
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A 20-byte IPv4 header (`proto`, `src` → `dst`) followed by `payload`.
    pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        let total = (20 + payload.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    /// A UDP datagram `sport` → `dport` inside IPv4 `src` → `dst`.
    pub fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&[0, 8, 0, 0]);
        ipv4(src, dst, 17, &u)
    }

    /// An ICMP echo request inside IPv4 `src` → `dst`.
    pub fn icmp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        ipv4(src, dst, 1, &[8, 0, 0, 0, 0, 1, 0, 1])
    }

    /// An ARP (or, `rarp`, RARP) packet: Ethernet/IPv4, opcode `op`, sender and target.
    pub fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4];
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&sha);
        a.extend_from_slice(&spa);
        a.extend_from_slice(&tha);
        a.extend_from_slice(&tpa);
        a
    }

    /// `frame` with an 802.1Q tag of VLAN `id` inserted after the MAC addresses.
    pub fn tagged(frame: &[u8], id: u16) -> Vec<u8> {
        let mut f = frame[..12].to_vec();
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&frame[12..]);
        f
    }
}
