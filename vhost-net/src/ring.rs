//! Batched access to a split virtqueue's avail and used rings: the avail index is read
//! once per batch and the used index written once per batch (fewer cache-line transfers
//! with the guest's CPU than one `pop`/`add_used` per descriptor). All accesses go
//! through the bounds-checked [`GuestView`].

use std::sync::atomic::{fence, Ordering};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, GuestAddress};

use crate::guestmem::GuestView;

const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// A cursor over the avail ring of one queue.
pub struct AvailCursor {
    ring: GuestAddress,
    size: u16,
    next: u16,
    end: u16,
}

impl AvailCursor {
    /// Starts at the queue's next available position.
    pub fn new(q: &Queue) -> Self {
        AvailCursor {
            ring: GuestAddress(q.avail_ring()),
            size: q.size().max(1),
            next: q.next_avail(),
            end: q.next_avail(),
        }
    }

    fn refresh(&mut self, mem: &GuestView<'_>) {
        let Some(at) = self.ring.checked_add(2) else {
            return;
        };
        if let Some(idx) = mem.load_u16(at, Ordering::Acquire) {
            let idx = u16::from_le(idx);
            // A guest claiming more entries than the ring holds is lying: ignore it.
            if idx.wrapping_sub(self.next) <= self.size {
                self.end = idx;
            }
        }
    }

    /// The next chain head, re-reading the avail index only when the snapshot is used up.
    #[inline]
    pub fn pop(&mut self, mem: &GuestView<'_>) -> Option<u16> {
        if self.next == self.end {
            self.refresh(mem);
            if self.next == self.end {
                return None;
            }
        }
        let at = self
            .ring
            .checked_add(4 + 2 * u64::from(self.next % self.size))?;
        let head = u16::from_le(mem.read_obj::<u16>(at)?);
        self.next = self.next.wrapping_add(1);
        Some(head)
    }

    /// The head `k` places ahead of the next one, without consuming anything.
    pub fn peek(&mut self, mem: &GuestView<'_>, k: u16) -> Option<u16> {
        if self.end.wrapping_sub(self.next) <= k {
            self.refresh(mem);
            if self.end.wrapping_sub(self.next) <= k {
                return None;
            }
        }
        let pos = self.next.wrapping_add(k);
        let at = self.ring.checked_add(4 + 2 * u64::from(pos % self.size))?;
        mem.read_obj::<u16>(at).map(u16::from_le)
    }

    /// Puts the last popped head back.
    pub fn unpop(&mut self) {
        self.next = self.next.wrapping_sub(1);
    }

    /// Records the consumed position in the queue.
    pub fn commit(&self, q: &mut Queue) {
        q.set_next_avail(self.next);
    }
}

/// Used-ring entries waiting to be published.
#[derive(Default)]
pub struct UsedBatch {
    items: Vec<(u16, u32)>,
}

impl UsedBatch {
    /// Queues one used chain.
    #[inline]
    pub fn push(&mut self, head: u16, len: u32) {
        self.items.push((head, len));
    }

    /// Writes the queued entries, publishes the used index once, and says whether the
    /// driver wants a notification (EVENT_IDX `used_event`, or the NO_INTERRUPT flag).
    pub fn flush(&mut self, mem: &GuestView<'_>, q: &mut Queue) -> bool {
        if self.items.is_empty() {
            return false;
        }
        let size = q.size().max(1);
        let used = GuestAddress(q.used_ring());
        let old = q.next_used();
        let mut idx = old;
        for &(head, len) in &self.items {
            if head >= size {
                continue;
            }
            let Some(at) = used.checked_add(4 + 8 * u64::from(idx % size)) else {
                continue;
            };
            if mem.write_obj(((u64::from(len) << 32) | u64::from(head)).to_le(), at) {
                idx = idx.wrapping_add(1);
            }
        }
        self.items.clear();
        if idx == old {
            return false;
        }
        let Some(idx_at) = used.checked_add(2) else {
            return false;
        };
        if !mem.store_u16(idx.to_le(), idx_at, Ordering::Release) {
            return false;
        }
        q.set_next_used(idx);
        fence(Ordering::SeqCst);
        let avail = GuestAddress(q.avail_ring());
        if q.event_idx_enabled() {
            let Some(at) = avail.checked_add(4 + 2 * u64::from(size)) else {
                return true;
            };
            let Some(ev) = mem.load_u16(at, Ordering::Relaxed) else {
                return true;
            };
            let ev = u16::from_le(ev);
            idx.wrapping_sub(ev).wrapping_sub(1) < idx.wrapping_sub(old)
        } else {
            mem.load_u16(avail, Ordering::Relaxed)
                .is_none_or(|f| u16::from_le(f) & VRING_AVAIL_F_NO_INTERRUPT == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mem, publish, queue, used, AVAIL, USED};
    use vm_memory::Bytes;

    #[test]
    fn the_avail_cursor_pops_published_heads_across_the_index_wrap_and_commits() {
        let m = mem(0x10000);
        let mut q = queue(4);
        q.set_next_avail(u16::MAX - 1);
        publish(&m, &q, &[3, 1, 2]);
        let v = GuestView::new(&m);
        let mut c = AvailCursor::new(&q);
        assert_eq!(c.peek(&v, 2), Some(2), "peek looks ahead");
        assert_eq!(c.peek(&v, 3), None, "not published");
        assert_eq!((c.pop(&v), c.pop(&v)), (Some(3), Some(1)));
        c.unpop();
        assert_eq!((c.pop(&v), c.pop(&v), c.pop(&v)), (Some(1), Some(2), None));
        c.commit(&mut q);
        assert_eq!(q.next_avail(), 1, "wrapped past u16::MAX");
    }

    #[test]
    fn an_avail_index_claiming_more_entries_than_the_ring_holds_is_ignored() {
        let m = mem(0x10000);
        let q = queue(4);
        m.write_obj(5u16.to_le(), GuestAddress(AVAIL + 2)).unwrap();
        let v = GuestView::new(&m);
        let mut c = AvailCursor::new(&q);
        assert_eq!(c.pop(&v), None);
        assert_eq!(c.peek(&v, 0), None);
    }

    #[test]
    fn an_avail_ring_outside_memory_gives_nothing() {
        let m = mem(0x10000);
        let q = crate::testutil::queue_at(4, 0x1000, u64::MAX - 1, USED);
        let v = GuestView::new(&m);
        assert_eq!(AvailCursor::new(&q).pop(&v), None);
        let q = crate::testutil::queue_at(4, 0x1000, 0xfffc, USED);
        m.write_obj(2u16.to_le(), GuestAddress(0xfffe)).unwrap();
        assert_eq!(
            AvailCursor::new(&q).pop(&v),
            None,
            "index readable, entries not"
        );
    }

    #[test]
    fn the_used_batch_publishes_once_and_leaves_out_heads_past_the_queue() {
        let m = mem(0x10000);
        let mut q = queue(4);
        q.set_next_used(u16::MAX);
        let v = GuestView::new(&m);
        let mut b = UsedBatch::default();
        b.push(1, 60);
        b.push(9, 0); // not a head of this queue: cannot be returned
        b.push(3, 0);
        assert!(b.flush(&v, &mut q), "no EVENT_IDX, no NO_INTERRUPT: notify");
        assert_eq!(q.next_used(), 1);
        assert_eq!(used(&m, &q, u16::MAX), (vec![(1, 60), (3, 0)], 1));
        assert!(!b.flush(&v, &mut q), "nothing queued: nothing to say");
    }

    #[test]
    fn notifications_follow_no_interrupt_and_used_event() {
        let m = mem(0x10000);
        let v = GuestView::new(&m);
        let mut q = queue(4);
        let mut b = UsedBatch::default();
        m.write_obj(1u16.to_le(), GuestAddress(AVAIL)).unwrap(); // NO_INTERRUPT
        b.push(0, 0);
        assert!(!b.flush(&v, &mut q));
        q.set_event_idx(true);
        // used_event = 2: notify when the used index passes 2 (from 1 to 3), not before.
        m.write_obj(2u16.to_le(), GuestAddress(AVAIL + 4 + 2 * 4))
            .unwrap();
        b.push(0, 0);
        assert!(!b.flush(&v, &mut q), "1 -> 2 does not pass used_event 2");
        b.push(0, 0);
        assert!(b.flush(&v, &mut q), "2 -> 3 passes it");
    }

    #[test]
    fn a_used_ring_outside_memory_publishes_nothing() {
        let m = mem(0x10000);
        let v = GuestView::new(&m);
        let mut q = crate::testutil::queue_at(4, 0x1000, AVAIL, 0x20000);
        let mut b = UsedBatch::default();
        b.push(0, 10);
        assert!(!b.flush(&v, &mut q));
        assert_eq!(q.next_used(), 0);
        let mut q = crate::testutil::queue_at(4, 0x1000, AVAIL, u64::MAX - 3);
        b.push(0, 10);
        assert!(!b.flush(&v, &mut q), "at the top of the space: no overflow");
    }
}
