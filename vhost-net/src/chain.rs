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
