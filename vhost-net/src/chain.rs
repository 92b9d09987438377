//! Walking a descriptor chain with every guest-supplied value checked.
//!
//! virtio-queue's own `DescriptorChain` iterator stops silently on a loop or a bad
//! address; the switch needs to tell those cases apart (to count them) and to bound the
//! work per chain, so it walks the table itself, reading descriptors only through
//! the bounds-checked [`GuestView`]. Buffers are not touched here: the copies that read or
//! write them (`read_slice`/`write_slice`) check every byte against guest memory and
//! fail, counted as `bad_address`, on anything outside it.

use vm_memory::{Address, GuestAddress};

use virtio_queue::desc::split::Descriptor;

use crate::counters::DropReason;
use crate::guestmem::GuestView;

/// Hard cap on descriptors per chain, whatever the queue size.
pub const MAX_CHAIN_DESCRIPTORS: usize = 1024;

/// One guest buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
}

/// The buffer of the chain at `head` when that chain is a single direct descriptor of
/// direction `writable` and non-zero length (the usual case, checked in a few steps);
/// `None` means "not that simple" (or unreadable): use [`walk`], which says why.
#[inline]
pub fn single(
    mem: &GuestView<'_>,
    desc_table: GuestAddress,
    queue_size: u16,
    head: u16,
    writable: bool,
) -> Option<Segment> {
    if head >= queue_size {
        return None;
    }
    let d: Descriptor = mem.read_obj(desc_table.checked_add(u64::from(head) * 16)?)?;
    (!d.refers_to_indirect_table() && !d.has_next() && d.is_write_only() == writable && d.len() > 0)
        .then(|| Segment {
            addr: d.addr(),
            len: d.len(),
        })
}

/// Collects the buffers of the chain starting at `head` into `segs`, checking that every
/// descriptor has the expected direction (`writable`), that the chain neither loops nor
/// exceeds the queue size (nor [`MAX_CHAIN_DESCRIPTORS`]), that indirect tables are
/// well-formed and not nested. Returns the chain's total length.
#[inline]
pub fn walk(
    mem: &GuestView<'_>,
    desc_table: GuestAddress,
    queue_size: u16,
    head: u16,
    writable: bool,
    segs: &mut Vec<Segment>,
) -> Result<u64, DropReason> {
    segs.clear();
    let cap = (queue_size as usize).min(MAX_CHAIN_DESCRIPTORS);
    let mut table = desc_table;
    let mut table_len = queue_size as usize;
    let mut idx = head as usize;
    let mut indirect = false;
    let mut in_table = 0usize;
    let mut count = 0usize;
    let mut total_len = 0u64;
    loop {
        if idx >= table_len {
            return Err(DropReason::BadDescriptor);
        }
        let at = table
            .checked_add(idx as u64 * 16)
            .ok_or(DropReason::BadAddress)?;
        let d: Descriptor = mem.read_obj(at).ok_or(DropReason::BadAddress)?;
        if d.refers_to_indirect_table() {
            if indirect || d.has_next() {
                return Err(DropReason::BadDescriptor);
            }
            let len = d.len() as usize;
            if len == 0 || len % 16 != 0 || len / 16 > u16::MAX as usize {
                return Err(DropReason::BadDescriptor);
            }
            table = d.addr();
            table_len = len / 16;
            idx = 0;
            indirect = true;
            in_table = 0;
            continue;
        }
        in_table += 1;
        if in_table > table_len {
            // More steps than the table has entries: some entry was visited twice.
            return Err(DropReason::DescriptorLoop);
        }
        count += 1;
        if count > cap {
            return Err(DropReason::ChainTooLong);
        }
        if d.is_write_only() != writable {
            return Err(DropReason::BadDescriptor);
        }
        if d.len() > 0 {
            segs.push(Segment {
                addr: d.addr(),
                len: d.len(),
            });
            total_len += u64::from(d.len());
        }
        if !d.has_next() {
            return Ok(total_len);
        }
        idx = d.next() as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{desc, mem, DESC, INDIRECT, NEXT, WRITE};

    const T: GuestAddress = GuestAddress(DESC);

    fn walk_of(
        m: &crate::rx::Mem,
        qsize: u16,
        head: u16,
        writable: bool,
    ) -> Result<Vec<(u64, u32)>, DropReason> {
        let v = GuestView::new(m);
        let mut segs = Vec::new();
        let total = walk(&v, T, qsize, head, writable, &mut segs)?;
        assert_eq!(total, segs.iter().map(|s| u64::from(s.len)).sum::<u64>());
        Ok(segs.iter().map(|s| (s.addr.0, s.len)).collect())
    }

    #[test]
    fn single_takes_only_one_direct_non_empty_descriptor_of_the_asked_direction() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0x4000, 100, 0, 0);
        desc(&m, DESC, 1, 0x4000, 100, WRITE, 0);
        desc(&m, DESC, 2, 0x4000, 100, NEXT, 3);
        desc(&m, DESC, 3, 0x4000, 0, 0, 0);
        desc(&m, DESC, 4, 0x5000, 32, INDIRECT, 0);
        let v = GuestView::new(&m);
        let seg = Segment {
            addr: GuestAddress(0x4000),
            len: 100,
        };
        assert_eq!(single(&v, T, 8, 0, false), Some(seg));
        assert_eq!(single(&v, T, 8, 1, true), Some(seg));
        assert_eq!(single(&v, T, 8, 0, true), None, "wrong direction");
        assert_eq!(single(&v, T, 8, 2, false), None, "a chain");
        assert_eq!(single(&v, T, 8, 3, false), None, "empty");
        assert_eq!(single(&v, T, 8, 4, false), None, "indirect");
        assert_eq!(single(&v, T, 8, 8, false), None, "head out of range");
    }

    #[test]
    fn walk_follows_next_in_any_order_and_leaves_out_empty_buffers() {
        let m = mem(0x10000);
        desc(&m, DESC, 2, 0x4000, 10, NEXT, 0);
        desc(&m, DESC, 0, 0x5000, 0, NEXT, 3);
        desc(&m, DESC, 3, 0x6000, 20, 0, 0);
        assert_eq!(
            walk_of(&m, 4, 2, false),
            Ok(vec![(0x4000, 10), (0x6000, 20)])
        );
    }

    #[test]
    fn a_chain_that_comes_back_to_itself_is_a_loop() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0x4000, 10, NEXT, 1);
        desc(&m, DESC, 1, 0x4000, 10, NEXT, 0);
        assert_eq!(walk_of(&m, 4, 0, false), Err(DropReason::DescriptorLoop));
        // A descriptor pointing at itself.
        desc(&m, DESC, 2, 0x4000, 10, NEXT, 2);
        assert_eq!(walk_of(&m, 4, 2, false), Err(DropReason::DescriptorLoop));
    }

    #[test]
    fn an_indirect_table_loop_is_caught_too() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0x5000, 32, INDIRECT, 0);
        desc(&m, 0x5000, 0, 0x4000, 10, NEXT, 1);
        desc(&m, 0x5000, 1, 0x4000, 10, NEXT, 0);
        assert_eq!(walk_of(&m, 4, 0, false), Err(DropReason::DescriptorLoop));
    }

    #[test]
    fn an_indirect_chain_longer_than_the_queue_is_too_long() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0x5000, 16 * 8, INDIRECT, 0);
        for i in 0..8 {
            desc(
                &m,
                0x5000,
                i,
                0x4000,
                10,
                if i < 7 { NEXT } else { 0 },
                i + 1,
            );
        }
        assert_eq!(walk_of(&m, 4, 0, false), Err(DropReason::ChainTooLong));
        assert_eq!(walk_of(&m, 8, 0, false).map(|s| s.len()), Ok(8));
    }

    #[test]
    fn a_direct_prefix_then_an_indirect_table_is_one_chain() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0x4000, 12, NEXT, 1);
        desc(&m, DESC, 1, 0x5000, 32, INDIRECT, 0);
        desc(&m, 0x5000, 0, 0x6000, 100, NEXT, 1);
        desc(&m, 0x5000, 1, 0x7000, 200, 0, 0);
        assert_eq!(
            walk_of(&m, 4, 0, false),
            Ok(vec![(0x4000, 12), (0x6000, 100), (0x7000, 200)])
        );
    }

    #[test]
    fn malformed_indirect_descriptors_are_refused() {
        let m = mem(0x10000);
        let bad = |flags: u16, len: u32| {
            desc(&m, DESC, 0, 0x5000, len, flags, 1);
            desc(&m, DESC, 1, 0x4000, 10, 0, 0);
            walk_of(&m, 4, 0, false)
        };
        desc(&m, 0x5000, 0, 0x4000, 10, 0, 0);
        assert_eq!(
            bad(INDIRECT | NEXT, 16),
            Err(DropReason::BadDescriptor),
            "with NEXT"
        );
        assert_eq!(
            bad(INDIRECT, 0),
            Err(DropReason::BadDescriptor),
            "empty table"
        );
        assert_eq!(
            bad(INDIRECT, 24),
            Err(DropReason::BadDescriptor),
            "not whole entries"
        );
        assert_eq!(bad(INDIRECT, 16), Ok(vec![(0x4000, 10)]));
        // An indirect descriptor inside an indirect table.
        desc(&m, 0x5000, 0, 0x6000, 16, INDIRECT, 0);
        assert_eq!(bad(INDIRECT, 16), Err(DropReason::BadDescriptor), "nested");
    }

    #[test]
    fn tables_outside_memory_are_bad_addresses_even_at_the_top_of_the_space() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0xffff_0000, 32, INDIRECT, 0);
        assert_eq!(walk_of(&m, 4, 0, false), Err(DropReason::BadAddress));
        // A table (indirect here) whose entries lie past the end of the address space.
        desc(&m, DESC, 0, u64::MAX - 15, 32, INDIRECT, 0);
        desc(&m, DESC, 1, 0x4000, 16, NEXT, 0);
        let v = GuestView::new(&m);
        let mut segs = Vec::new();
        assert_eq!(
            walk(&v, T, 4, 0, false, &mut segs),
            Err(DropReason::BadAddress)
        );
        let top = GuestAddress(u64::MAX - 15);
        assert_eq!(
            walk(&v, top, 4, 3, false, &mut segs),
            Err(DropReason::BadAddress)
        );
        assert_eq!(single(&v, top, 4, 3, false), None);
    }

    #[test]
    fn indexes_past_the_table_and_wrong_directions_are_bad_descriptors() {
        let m = mem(0x10000);
        desc(&m, DESC, 0, 0x4000, 10, NEXT, 4);
        assert_eq!(
            walk_of(&m, 4, 0, false),
            Err(DropReason::BadDescriptor),
            "next"
        );
        assert_eq!(
            walk_of(&m, 4, 4, false),
            Err(DropReason::BadDescriptor),
            "head"
        );
        desc(&m, DESC, 0, 0x4000, 10, NEXT, 1);
        desc(&m, DESC, 1, 0x4000, 10, WRITE, 0);
        assert_eq!(
            walk_of(&m, 4, 0, false),
            Err(DropReason::BadDescriptor),
            "a writable buffer in a transmit chain"
        );
        assert_eq!(
            walk_of(&m, 4, 0, true),
            Err(DropReason::BadDescriptor),
            "a read-only buffer in a receive chain"
        );
        assert_eq!(walk_of(&m, 4, 1, true), Ok(vec![(0x4000, 10)]));
    }
}
