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
            // Checked: the guest places the table, possibly at the top of the space.
            let Some(at) = table.checked_add(u64::from(head) * 16) else {
                continue;
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::HEADROOM;
    use crate::testutil::{
        desc, mem, publish, queue, queue_at, used, AVAIL, BUF, DESC, NEXT, USED, WRITE,
    };
    use crate::vnet_hdr::{VnetHdr, GSO_UDP_L4};
    use vm_memory::Bytes;

    const MRG: u64 = 1 << VIRTIO_NET_F_MRG_RXBUF;

    fn frame(len: usize, hdr: VnetHdr) -> Frame {
        let mut f = Frame::full();
        for (i, b) in f.data[HEADROOM..HEADROOM + len].iter_mut().enumerate() {
            *b = i as u8;
        }
        f.data[HEADROOM..HEADROOM + 12]
            .copy_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
        f.len = len;
        f.hdr = hdr;
        f
    }

    /// Delivers `frames` into queue `q` of `m`; returns the counters.
    fn deliver(
        m: &crate::rx::Mem,
        q: &mut Queue,
        f: u64,
        hdr_len: usize,
        frames: &mut [Frame],
    ) -> PortCounters {
        let v = GuestView::new(m);
        let c = PortCounters::default();
        let idx: Vec<usize> = (0..frames.len()).collect();
        deliver_pass(
            &v,
            q,
            f,
            hdr_len,
            &c,
            frames,
            &idx,
            &mut RxScratch::default(),
        );
        c
    }

    /// Regression (fuzz target `vswitch_rx`, crash-ef053dfb): a receive queue whose
    /// descriptor table the guest put at the top of the address space made the
    /// prefetch of the next buffers overflow the table address (a panic with overflow
    /// checks); now the chain is returned unused and the frame counted as bad_address.
    #[test]
    fn a_descriptor_table_at_the_top_of_the_address_space_is_a_bad_address_not_a_panic() {
        let m = mem(0x10000);
        let mut q = queue_at(4, u64::MAX - 15, AVAIL, USED);
        publish(&m, &q, &[1]);
        let c = deliver(&m, &mut q, 0, 10, &mut [frame(60, VnetHdr::default())]);
        assert_eq!(c.drops(DropReason::BadAddress), 1);
        assert_eq!(used(&m, &q, 0), (vec![(1, 0)], 1));
    }

    #[test]
    fn a_mergeable_frame_spans_chains_and_says_how_many() {
        let m = mem(0x20000);
        let mut q = queue(8);
        for i in 0..4u16 {
            desc(&m, DESC, i, BUF + 0x1000 * u64::from(i), 1024, WRITE, 0);
        }
        publish(&m, &q, &[0, 1, 2, 3]);
        let mut fr = [frame(2500, VnetHdr::default())];
        let c = deliver(&m, &mut q, MRG, 12, &mut fr);
        assert_eq!(c.snapshot().tx_packets, 1);
        assert_eq!(used(&m, &q, 0), (vec![(0, 1024), (1, 1024), (2, 464)], 3));
        assert_eq!(q.next_avail(), 3, "the fourth chain stays available");
        let mut got = vec![0u8; 2512];
        for i in 0..3u64 {
            let n = if i < 2 { 1024 } else { 464 };
            let at = (1024 * i) as usize;
            m.read_slice(&mut got[at..at + n], GuestAddress(BUF + 0x1000 * i))
                .unwrap();
        }
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 3, "num_buffers");
        assert_eq!(&got[12..], fr[0].bytes());
    }

    #[test]
    fn without_mergeable_buffers_a_too_small_chain_is_given_back_untouched() {
        let m = mem(0x20000);
        let mut q = queue(8);
        desc(&m, DESC, 0, BUF, 100, WRITE | NEXT, 1);
        desc(&m, DESC, 1, BUF + 0x1000, 100, WRITE, 0);
        publish(&m, &q, &[0]);
        let c = deliver(&m, &mut q, 0, 10, &mut [frame(300, VnetHdr::default())]);
        assert_eq!(c.drops(DropReason::RxBufferTooSmall), 1);
        assert_eq!(q.next_avail(), 0);
        assert_eq!(used(&m, &q, 0).0, vec![]);
        // A frame that fits goes into both buffers of the chain.
        let c = deliver(&m, &mut q, 0, 10, &mut [frame(150, VnetHdr::default())]);
        assert_eq!(c.snapshot().tx_packets, 1);
        assert_eq!(used(&m, &q, 0).0, vec![(0, 160)]);
    }

    #[test]
    fn a_partial_checksum_is_completed_for_a_guest_without_guest_csum() {
        let m = mem(0x20000);
        let mut q = queue(8);
        desc(&m, DESC, 0, BUF, 2048, WRITE, 0);
        publish(&m, &q, &[0]);
        let hdr = VnetHdr {
            flags: crate::vnet_hdr::F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 6,
            ..VnetHdr::default()
        };
        let f = frame(64, hdr);
        let mut expect = f.bytes().to_vec();
        let mut h = hdr;
        assert!(complete_checksum(&mut h, &mut expect));
        deliver(&m, &mut q, 0, 10, &mut [f]);
        let mut got = vec![0u8; 74];
        m.read_slice(&mut got, GuestAddress(BUF)).unwrap();
        assert_eq!(got[0], 0, "no NEEDS_CSUM, no DATA_VALID for this guest");
        assert_eq!(&got[10..], &expect[..]);
    }

    #[test]
    fn udp_gso_to_a_guest_without_it_is_dropped_as_unsupported() {
        let m = mem(0x20000);
        let mut q = queue(8);
        desc(&m, DESC, 0, BUF, 2048, WRITE, 0);
        publish(&m, &q, &[0]);
        let hdr = VnetHdr {
            gso_type: GSO_UDP_L4,
            gso_size: 1000,
            ..VnetHdr::default()
        };
        let c = deliver(&m, &mut q, 0, 10, &mut [frame(1500, hdr)]);
        assert_eq!(c.drops(DropReason::OffloadUnsupported), 1);
        assert_eq!(q.next_avail(), 0, "no buffer taken");
    }

    /// Regression (unit test written for the `vswitch_rx` checks, which assert that a
    /// mergeable packet's header is in its first used buffer): an empty chain at the
    /// front used to become the packet's first buffer (length 0) with the header and
    /// num_buffers = 2 in the next one, which the driver misreads.
    #[test]
    fn an_empty_receive_chain_is_returned_on_its_own_not_as_part_of_a_mergeable_frame() {
        let m = mem(0x20000);
        let mut q = queue(8);
        desc(&m, DESC, 0, BUF, 0, WRITE, 0); // no room at all
        desc(&m, DESC, 1, BUF + 0x1000, 2048, WRITE, 0);
        publish(&m, &q, &[0, 1]);
        let mut fr = [frame(100, VnetHdr::default())];
        let c = deliver(&m, &mut q, MRG, 12, &mut fr);
        assert_eq!(c.snapshot().tx_packets, 1);
        // The driver reads a packet's header from its first buffer: the empty chain
        // must not be that buffer (nor be counted in num_buffers).
        assert_eq!(used(&m, &q, 0), (vec![(0, 0), (1, 112)], 2));
        let mut got = vec![0u8; 112];
        m.read_slice(&mut got, GuestAddress(BUF + 0x1000)).unwrap();
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1, "num_buffers");
        assert_eq!(&got[12..], fr[0].bytes());
    }
}
