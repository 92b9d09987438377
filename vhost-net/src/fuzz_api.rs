//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`): the switch's
//! guest-facing passes over a bare `virtio_queue::Queue` and a guest memory map, without
//! a vhost-user connection. Not a stable API; the switch never enables the feature.

use virtio_queue::Queue;

pub use crate::backend::{TxPass, Worker, TX_BATCH};
use crate::counters::PortCounters;
use crate::frame::Frame;
use crate::guestmem::GuestView;
use crate::rx::RxScratch;

/// One transmit pass (what a polling thread does to a transmit queue under its lock):
/// up to [`TX_BATCH`] chains taken, their frames copied into `w`, drops counted.
pub fn tx_pass(
    mem: &GuestView<'_>,
    q: &mut Queue,
    hdr_len: usize,
    mtu: usize,
    w: &mut Worker,
    counters: &PortCounters,
) -> TxPass {
    crate::backend::tx_pass(mem, q, hdr_len, mtu, w, counters)
}

/// The frames of `w`'s last transmit pass (the first [`TxPass::frames`] are good).
pub fn frames(w: &mut Worker) -> &mut [Frame] {
    &mut w.frames
}

/// Delivers `frames[idx]` into receive queue `q` of a guest that acknowledged
/// `features` and uses `hdr_len`-byte headers (what a port's `deliver` does under the
/// vring lock). Returns whether the driver asked for a notification.
#[allow(clippy::too_many_arguments)]
pub fn deliver_pass(
    mem: &GuestView<'_>,
    q: &mut Queue,
    features: u64,
    hdr_len: usize,
    counters: &PortCounters,
    frames: &mut [Frame],
    idx: &[usize],
    sc: &mut RxScratch,
) -> bool {
    crate::deliver::deliver_pass(mem, q, features, hdr_len, counters, frames, idx, sc)
}

/// The rust-vmm crates at the versions the switch is built with, so that the fuzz
/// crate builds its fake guests with exactly the same types.
pub use {virtio_queue, vm_memory};
