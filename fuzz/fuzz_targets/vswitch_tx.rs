//! Fuzz target: the transmit path. Arbitrary input builds a fake guest (a few memory
//! regions with gaps, a descriptor table, indirect tables, buffers, the avail ring) and
//! the switch's transmit pass (chain walker, frame copy, header checks) runs over it;
//! the good frames are then delivered into a second fake guest's receive queue.
//! Checks: the verdict of every chain and the frames match an independent reference
//! walker, the counters add up, the transmit guest's memory changes only in its used
//! ring, and the receive guest's only in its used ring and the buffers returned in it.
#![no_main]

use std::cell::RefCell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtnet_fuzz::check::{
    avail_heads, check_rx_ring, check_tx_ring, drops_total, originals, ref_tx, RxBefore, RxLayout,
};
use virtnet_fuzz::guest::GuestSpec;
use virtnet_fuzz::{feature, RxFeatures};
use virtnet_vhost_net::counters::{DropReason, PortCounters};
use virtnet_vhost_net::fuzz_api::virtio_queue::QueueT;
use virtnet_vhost_net::fuzz_api::{self, Worker, TX_BATCH};
use virtnet_vhost_net::guestmem::GuestView;
use virtnet_vhost_net::rx::RxScratch;

#[derive(Arbitrary, Debug)]
struct Input {
    tx: GuestSpec,
    legacy_hdr: bool,
    mtu: u16,
    rx: GuestSpec,
    rx_features: RxFeatures,
}

thread_local! {
    // Reused across runs, as a polling thread reuses them across batches.
    static STATE: RefCell<(Worker, RxScratch)> = RefCell::new(Default::default());
}

fuzz_target!(|input: Input| {
    let Some(mut tx) = input.tx.build() else {
        return;
    };
    let hdr_len = if input.legacy_hdr { 10 } else { 12 };
    let mtu = usize::from(input.mtu.max(68));
    let before = tx.snapshot();
    let (avail0, used0) = (tx.queue.next_avail(), tx.queue.next_used());
    let heads = avail_heads(&tx, &tx.queue, avail0, TX_BATCH);
    let expect: Vec<_> = heads
        .iter()
        .map(|&h| ref_tx(&tx, &tx.queue, h, hdr_len, mtu))
        .collect();
    let counters = PortCounters::default();
    STATE.with(|s| {
        let (w, sc) = &mut *s.borrow_mut();
        let view = GuestView::new(&tx.mem);
        let pass = fuzz_api::tx_pass(&view, &mut tx.queue, hdr_len, mtu, w, &counters);
        // The chains taken, and what became of each.
        assert_eq!(pass.popped, heads.len(), "chains taken");
        assert_eq!(
            tx.queue.next_avail(),
            avail0.wrapping_add(heads.len() as u16)
        );
        let good: Vec<&Vec<u8>> = expect.iter().filter_map(|e| e.as_ref().ok()).collect();
        assert_eq!(pass.frames, good.len(), "good frames: {expect:?}");
        for r in DropReason::ALL {
            let n = expect
                .iter()
                .filter(|e| e.as_ref().err() == Some(&r))
                .count();
            assert_eq!(counters.drops(r), n as u64, "drops for {r:?}");
        }
        assert_eq!(
            drops_total(&counters) + pass.frames as u64,
            pass.popped as u64
        );
        let frames = &mut fuzz_api::frames(w)[..pass.frames];
        let mut bytes = 0u64;
        for (f, e) in frames.iter().zip(good.iter()) {
            let mut hb = [0u8; 12];
            f.hdr.write(&mut hb[..hdr_len], 0);
            assert_eq!(&hb[..10], &e[..10], "header");
            assert_eq!(f.bytes(), &e[hdr_len..], "frame bytes");
            bytes += f.len as u64;
        }
        assert_eq!(pass.bytes, bytes);
        check_tx_ring(&tx, &tx.queue, &before, &heads, used0);

        // Forward the good frames to the other guest.
        let Some(mut rx) = input.rx.build() else {
            return;
        };
        let f = input.rx_features.word();
        let rx_hdr = input.rx_features.hdr_len();
        let sent = originals(frames);
        let before = RxBefore::of(&rx);
        let rc = PortCounters::default();
        let idx: Vec<usize> = (0..frames.len()).collect();
        let view = GuestView::new(&rx.mem);
        fuzz_api::deliver_pass(&view, &mut rx.queue, f, rx_hdr, &rc, frames, &idx, sc);
        let layout = RxLayout {
            hdr_len: rx_hdr,
            mrg: f & feature::MRG_RXBUF != 0,
            exact: f & feature::ALL_OFFLOADS == feature::ALL_OFFLOADS,
        };
        check_rx_ring(&rx, &before, layout, &rc, &sent);
    });
});
