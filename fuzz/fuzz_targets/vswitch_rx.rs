//! Fuzz target: delivery into a guest's receive queue, plain and mergeable. Arbitrary
//! receive rings and buffer layouts (a fake guest as in `vswitch_tx`), arbitrary frames
//! up to 64 KiB (checked as the switch checks every frame it takes in), and arbitrary
//! negotiated features (checksum completion and software segmentation run for a guest
//! without offloads). Checks: used entries in range and no more than the chains taken,
//! the guest's memory changes only in its used ring and the buffers returned in it,
//! the packets found in the ring match the counters, and with every offload negotiated
//! they are exactly the frames sent, in order.
#![no_main]

use std::cell::RefCell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtnet_fuzz::check::{check_rx_ring, originals, RxBefore, RxLayout};
use virtnet_fuzz::guest::GuestSpec;
use virtnet_fuzz::{feature, FrameSpec, RxFeatures};
use virtnet_vhost_net::counters::PortCounters;
use virtnet_vhost_net::frame::Frame;
use virtnet_vhost_net::fuzz_api;
use virtnet_vhost_net::guestmem::GuestView;
use virtnet_vhost_net::rx::RxScratch;

#[derive(Arbitrary, Debug)]
struct Input {
    rx: GuestSpec,
    features: RxFeatures,
    frames: Vec<FrameSpec>,
    /// Delivery order: indexes into `frames` (all of them, in order, when empty).
    order: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<(Vec<Frame>, RxScratch)> = RefCell::new(Default::default());
}

fuzz_target!(|input: Input| {
    let Some(mut rx) = input.rx.build() else {
        return;
    };
    STATE.with(|s| {
        let (frames, sc) = &mut *s.borrow_mut();
        frames.clear();
        for spec in input.frames.iter().take(8) {
            let mut f = Frame::default();
            spec.fill(&mut f);
            // Only frames the switch would take in (from a guest or the tap) get here.
            if f.validate(65535).is_ok() {
                frames.push(f);
            }
        }
        if frames.is_empty() {
            return;
        }
        let idx: Vec<usize> = if input.order.is_empty() {
            (0..frames.len()).collect()
        } else {
            let mut v: Vec<usize> = input
                .order
                .iter()
                .take(16)
                .map(|&i| usize::from(i) % frames.len())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let sent: Vec<_> = idx
            .iter()
            .map(|&i| originals(&frames[i..=i])[0].clone())
            .collect();
        let f = input.features.word();
        let hdr_len = input.features.hdr_len();
        let before = RxBefore::of(&rx);
        let counters = PortCounters::default();
        let view = GuestView::new(&rx.mem);
        fuzz_api::deliver_pass(
            &view,
            &mut rx.queue,
            f,
            hdr_len,
            &counters,
            frames,
            &idx,
            sc,
        );
        let layout = RxLayout {
            hdr_len,
            mrg: f & feature::MRG_RXBUF != 0,
            exact: f & feature::ALL_OFFLOADS == feature::ALL_OFFLOADS,
        };
        check_rx_ring(&rx, &before, layout, &counters, &sent);
    });
});
