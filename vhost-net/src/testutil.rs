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
