//! Delivering a batch of frames into one receive queue of a guest, adapting the offload
//! metadata to what that guest negotiated.

use virtio_bindings::bindings::virtio_net::{
    VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_MRG_RXBUF,
};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, GuestAddress};

use crate::backend::prefetch;
use crate::counters::{DropReason, PortCounters};
use crate::frame::Frame;
use crate::gso::segment_tcp;
use crate::guestmem::GuestView;
use crate::ring::AvailCursor;
use crate::rx::{write_frame, RxScratch};
use crate::vnet_hdr::{
    complete_checksum, F_DATA_VALID, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6,
};

fn has(features: u64, bit: u32) -> bool {
    features & (1u64 << bit) != 0
}

/// Delivers `frames[idx]` into receive queue `q` of the guest memory `mem` (the caller
/// holds the vring's lock and checked that the queue runs), for a guest that
/// acknowledged `features` and uses `hdr_len`-byte virtio-net headers: a partial checksum
/// is completed in software for a guest without GUEST_CSUM; a TCP GSO frame to a guest
/// without the matching GUEST_TSO4/6 (or GUEST_ECN) is segmented in software; other GSO
/// types it cannot take (UDP) are dropped (`offload_unsupported`). Counts what was
/// delivered and every drop in `counters`; returns whether the driver asked to be
/// notified of the new used entries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn deliver_pass(
    mem: &GuestView<'_>,
    q: &mut Queue,
    f: u64,
    hdr_len: usize,
    counters: &PortCounters,
    frames: &mut [Frame],
    idx: &[usize],
    sc: &mut RxScratch,
) -> bool {
    let mrg = has(f, VIRTIO_NET_F_MRG_RXBUF);
    let csum = has(f, VIRTIO_NET_F_GUEST_CSUM);
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut avail = AvailCursor::new(q);
    let mut used = std::mem::take(&mut sc.used);
    // Start fetching the receive buffers this batch will most likely fill.
    let table = GuestAddress(q.desc_table());
    for k in 0..idx.len().min(64) as u16 {
        let Some(head) = avail.peek(mem, k) else {
            break;
        };
        if head < q.size() {
            let at = table.unchecked_add(u64::from(head) * 16);
            if let Some(d) = mem.read_obj::<Descriptor>(at) {
                prefetch(mem, d.addr());
            }
        }
    }
    for &i in idx {
        let frame = &mut frames[i];
        let kind = frame.hdr.gso_kind();
        if kind != GSO_NONE {
            let ok = match kind {
                GSO_TCPV4 => has(f, VIRTIO_NET_F_GUEST_TSO4),
                GSO_TCPV6 => has(f, VIRTIO_NET_F_GUEST_TSO6),
                _ => false,
            } && (frame.hdr.gso_type & GSO_ECN == 0 || has(f, VIRTIO_NET_F_GUEST_ECN));
            if !ok {
                if kind != GSO_TCPV4 && kind != GSO_TCPV6 {
                    counters.drop_frame(DropReason::OffloadUnsupported);
                    continue;
                }
                // Cut it into MSS-sized segments in software.
                let mut seg = sc.seg.take().unwrap_or_else(|| Box::new(Frame::full()));
                let res = segment_tcp(frame, &mut seg, csum, |s| {
                    match write_frame(mem, q, &mut avail, &mut used, s, hdr_len, mrg, sc) {
                        Ok(()) => {
                            packets += 1;
                            bytes += s.len as u64;
                        }
                        Err(r) => counters.drop_frame(r),
                    }
                });
                sc.seg = Some(seg);
                if let Err(r) = res {
                    counters.drop_frame(r);
                }
                continue;
            }
        }
        if !csum {
            if frame.hdr.flags & F_NEEDS_CSUM != 0 {
                let mut h = frame.hdr;
                if !complete_checksum(&mut h, frame.bytes_mut()) {
                    counters.drop_frame(DropReason::BadHeader);
                    continue;
                }
                frame.hdr = h;
            }
            frame.hdr.flags &= !(F_NEEDS_CSUM | F_DATA_VALID);
        }
        match write_frame(mem, q, &mut avail, &mut used, frame, hdr_len, mrg, sc) {
            Ok(()) => {
                packets += 1;
                bytes += frame.len as u64;
            }
            Err(r) => counters.drop_frame(r),
        }
    }
    counters.add_tx(packets, bytes);
    avail.commit(q);
    let notify = used.flush(mem, q);
    sc.used = used;
    notify
}
