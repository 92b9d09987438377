//! Delivering frames into a guest's receive queue (plain or mergeable buffers).

use vm_memory::{Address, GuestAddress, GuestMemoryAtomic, GuestMemoryMmap};

use virtio_queue::{Queue, QueueT};

use crate::chain::{single, walk, Segment};
use crate::counters::DropReason;
use crate::frame::Frame;
use crate::guestmem::GuestView;
use crate::ring::{AvailCursor, UsedBatch};

/// Guest memory as the switch maps it.
pub type Mem = GuestMemoryMmap<()>;
/// Guest memory that the vhost-user handler may swap at run time.
pub type Gm = GuestMemoryAtomic<Mem>;
/// A vring as vhost-user-backend hands it out.
pub type Vring = vhost_user_backend::VringMutex<Gm>;

/// Reused per-thread buffers for the receive path.
#[derive(Default)]
pub struct RxScratch {
    segs: Vec<Segment>,
    tmp: Vec<Segment>,
    /// (head, first segment, end segment, capacity) per chain used for the frame.
    chains: Vec<(u16, usize, usize, u64)>,
    /// Used entries of the delivery in progress.
    pub used: UsedBatch,
    /// Segment buffer for software segmentation (allocated on first use).
    pub seg: Option<Box<Frame>>,
}

fn give_back(avail: &mut AvailCursor, n: usize) {
    for _ in 0..n {
        avail.unpop();
    }
}

/// Writes `frame` (with its header, `hdr_len` bytes in this guest's layout) into the
/// next available receive chain(s) of `q`. With `mrg` the frame may span several chains
/// and `num_buffers` says how many; without, one chain must hold it all. Chains that
/// turn out too small are given back untouched; malformed chains are consumed with a
/// zero length (the guest driver counts them as errors) and the frame is dropped.
#[allow(clippy::too_many_arguments)]
pub fn write_frame(
    mem: &GuestView<'_>,
    q: &Queue,
    avail: &mut AvailCursor,
    used: &mut UsedBatch,
    frame: &mut Frame,
    hdr_len: usize,
    mrg: bool,
    sc: &mut RxScratch,
) -> Result<(), DropReason> {
    let need = (hdr_len + frame.len) as u64;
    let table = GuestAddress(q.desc_table());
    let qsize = q.size();
    // Fast path, the usual case: the next chain is one direct writable descriptor that
    // holds the whole frame. Same checks and outcome as the general path below.
    if let Some(head) = avail.pop(mem) {
        match single(mem, table, qsize, head, true) {
            Some(s) if u64::from(s.len) >= need => {
                if !mem.write_slice(frame.with_header(hdr_len, 1), s.addr) {
                    used.push(head, 0);
                    return Err(DropReason::BadAddress);
                }
                used.push(head, need as u32);
                return Ok(());
            }
            _ => avail.unpop(),
        }
    }
    sc.segs.clear();
    sc.chains.clear();
    let mut cap = 0u64;
    while cap < need {
        let Some(head) = avail.pop(mem) else {
            give_back(avail, sc.chains.len());
            return Err(DropReason::RxNoBuffer);
        };
        match walk(mem, table, qsize, head, true, &mut sc.tmp) {
            Ok(len) if mrg && sc.chains.is_empty() && len < hdr_len as u64 => {
                // The driver reads a packet's header (with num_buffers) from its first
                // buffer, and each mergeable buffer must hold at least a header (virtio
                // 1.2, 5.1.6.3.1): a chain too small for one cannot start a packet. It
                // is returned empty on its own (before any chain of this frame, so
                // giving chains back below stays in ring order).
                used.push(head, 0);
                continue;
            }
            Ok(len) => {
                let start = sc.segs.len();
                sc.segs.extend_from_slice(&sc.tmp);
                sc.chains.push((head, start, sc.segs.len(), len));
                cap += len;
            }
            Err(reason) => {
                for &(h, ..) in sc.chains.iter() {
                    used.push(h, 0);
                }
                used.push(head, 0);
                return Err(reason);
            }
        }
        if cap < need && !mrg {
            give_back(avail, 1);
            return Err(DropReason::RxBufferTooSmall);
        }
        if sc.chains.len() >= u16::MAX as usize {
            give_back(avail, sc.chains.len());
            return Err(DropReason::RxNoBuffer);
        }
    }

    let pieces: [&[u8]; 1] = [frame.with_header(hdr_len, sc.chains.len() as u16)];
    let (mut piece, mut off) = (0usize, 0usize);
    let mut failed = false;
    for ci in 0..sc.chains.len() {
        let (head, s0, s1, _) = sc.chains[ci];
        let mut written = 0u32;
        'segs: for s in &sc.segs[s0..s1] {
            let mut seg_off = 0u32;
            while seg_off < s.len {
                let Some(src) = pieces.get(piece) else {
                    break 'segs;
                };
                if off == src.len() {
                    piece += 1;
                    off = 0;
                    continue;
                }
                let n = ((s.len - seg_off) as usize).min(src.len() - off);
                let addr = s.addr.checked_add(u64::from(seg_off));
                if !failed && !addr.is_some_and(|a| mem.write_slice(&src[off..off + n], a)) {
                    failed = true;
                }
                off += n;
                seg_off += n as u32;
                written += n as u32;
            }
        }
        used.push(head, if failed { 0 } else { written });
    }
    if failed {
        return Err(DropReason::BadAddress);
    }
    Ok(())
}
