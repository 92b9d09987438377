//! The vhost-user back end of one port connection: features, config space, and the
//! transmit path (guest → switch) run on vhost-user-backend's vring worker threads.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringT};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_net::{
    VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
    VIRTIO_NET_F_MQ, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS,
    VIRTIO_NET_S_LINK_UP,
};
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestAddressSpace};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use crate::chain::{single, walk, Segment};
use crate::config::PortConfig;
use crate::core::{FwdScratch, SwitchCore};
use crate::counters::{DropReason, PortCounters};
use crate::frame::{read_tx_frame, Frame};
use crate::guestmem::GuestView;
use crate::mac_table::PortId;
use crate::policy::{PolicyCell, TxBudget};
use crate::ring::{AvailCursor, UsedBatch};
use crate::rx::{Gm, Mem, Vring};
use crate::vhost_port::ConnState;

/// Frames taken from a transmit queue before they are forwarded.
pub const TX_BATCH: usize = 128;
/// Largest queue size offered.
pub const MAX_QUEUE_SIZE: usize = 1024;

/// Virtio features the switch offers on every port (MQ only with more than one pair).
pub fn offered_features(queue_pairs: u16) -> u64 {
    let bits = [
        VIRTIO_F_VERSION_1,
        VIRTIO_RING_F_EVENT_IDX,
        VIRTIO_RING_F_INDIRECT_DESC,
        VIRTIO_NET_F_CSUM,
        VIRTIO_NET_F_GUEST_CSUM,
        VIRTIO_NET_F_MTU,
        VIRTIO_NET_F_GUEST_TSO4,
        VIRTIO_NET_F_GUEST_TSO6,
        VIRTIO_NET_F_GUEST_ECN,
        VIRTIO_NET_F_HOST_TSO4,
        VIRTIO_NET_F_HOST_TSO6,
        VIRTIO_NET_F_HOST_ECN,
        VIRTIO_NET_F_MRG_RXBUF,
        VIRTIO_NET_F_STATUS,
    ];
    let mut f = bits.iter().fold(0u64, |acc, b| acc | (1u64 << b));
    if queue_pairs > 1 {
        f |= 1 << VIRTIO_NET_F_MQ;
    }
    f | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
}

/// vhost-user protocol features the switch offers.
pub fn offered_protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
}

/// Asks the CPU to start loading the cache line of guest address `addr` (a hint only:
/// the address is translated by the view's checked lookup and never dereferenced here).
pub(crate) fn prefetch(mem: &GuestView<'_>, addr: GuestAddress) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = mem.host_address(addr) {
        // SAFETY: a prefetch is a hint that never faults nor reads into the program.
        unsafe { std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (mem, addr);
}

/// A polling thread's snapshot of one connection's guest memory, reloaded only when the
/// connection's memory generation moves (saves an `ArcSwap` load and release per poll).
#[derive(Default)]
pub struct MemCache {
    gen: u64,
    mem: Option<Arc<Mem>>,
}

/// Reused buffers of one polling thread.
pub struct Worker {
    chains: Vec<(u16, usize, usize, Result<u64, DropReason>)>,
    tmp: Vec<Segment>,
    used: UsedBatch,
    pub(crate) frames: Vec<Frame>,
    segs: Vec<Segment>,
    fwd: FwdScratch,
    /// Bytes the next pass may take (the outbound rate's budget; at least one frame).
    pub(crate) budget: u64,
    /// Set by a pass that took nothing because of the outbound rate.
    pub(crate) throttled: bool,
    /// The earliest time a throttled queue may be read again.
    pub(crate) wake_at: Option<Instant>,
}

impl Default for Worker {
    fn default() -> Self {
        Worker {
            chains: Vec::with_capacity(TX_BATCH),
            tmp: Vec::with_capacity(16),
            used: UsedBatch::default(),
            frames: (0..TX_BATCH).map(|_| Frame::default()).collect(),
            segs: Vec::with_capacity(64),
            fwd: FwdScratch::default(),
            budget: u64::MAX,
            throttled: false,
            wake_at: None,
        }
    }
}

/// What one pass over a transmit queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPass {
    /// Chains taken from the avail ring (each returned in the used ring, length 0).
    pub popped: usize,
    /// Good frames, now in `Worker::frames[..frames]`.
    pub frames: usize,
    /// Their total length (Ethernet frames, without virtio-net header).
    pub bytes: u64,
    /// Whether the driver asked to be notified of the used entries.
    pub notify: bool,
}

/// Takes up to [`TX_BATCH`] chains from transmit queue `q` of the guest memory `mem`
/// (the caller holds the vring's lock), copies their frames (each with its
/// `hdr_len`-byte virtio-net header, non-GSO frames at most `mtu` bytes plus an
/// Ethernet header) into `w`'s frames, counts every bad one under its reason, and
/// returns every chain in the used ring.
pub(crate) fn tx_pass(
    mem: &GuestView<'_>,
    q: &mut Queue,
    hdr_len: usize,
    mtu: usize,
    w: &mut Worker,
    counters: &PortCounters,
) -> TxPass {
    let (mut n, mut popped) = (0usize, 0usize);
    let mut bytes = 0u64;
    let mut notify = false;
    let table = GuestAddress(q.desc_table());
    let qsize = q.size();
    let mut avail = AvailCursor::new(q);
    // Phase 1: take the chains and start fetching their first bytes.
    w.chains.clear();
    w.segs.clear();
    let mut taken = 0u64;
    while w.chains.len() < TX_BATCH && taken < w.budget {
        let Some(head) = avail.pop(mem) else {
            break;
        };
        let start = w.segs.len();
        let res = if let Some(s) = single(mem, table, qsize, head, false) {
            w.segs.push(s);
            prefetch(mem, s.addr);
            Ok(u64::from(s.len))
        } else {
            let res = walk(mem, table, qsize, head, false, &mut w.tmp);
            if res.is_ok() {
                w.segs.extend_from_slice(&w.tmp);
                if let Some(first) = w.tmp.first() {
                    prefetch(mem, first.addr);
                }
            }
            res
        };
        taken = taken.saturating_add(*res.as_ref().unwrap_or(&0));
        w.chains.push((head, start, w.segs.len(), res));
    }
    // Phase 2: copy them out.
    for &(head, s0, s1, res) in w.chains.iter() {
        let res = res.and_then(|total| {
            read_tx_frame(mem, &w.segs[s0..s1], total, hdr_len, mtu, &mut w.frames[n])
        });
        w.used.push(head, 0);
        popped += 1;
        match res {
            Ok(()) => {
                bytes += w.frames[n].len as u64;
                n += 1;
            }
            Err(reason) => counters.drop_frame(reason),
        }
    }
    if popped > 0 {
        avail.commit(q);
        notify = w.used.flush(mem, q);
    }
    TxPass {
        popped,
        frames: n,
        bytes,
        notify,
    }
}

/// The back end of one connection of one port.
pub struct NetBackend {
    core: Arc<SwitchCore>,
    id: PortId,
    counters: Arc<PortCounters>,
    conn: Arc<ConnState>,
    config: PortConfig,
    policy: PolicyCell,
    registered: Vec<AtomicBool>,
    me: Mutex<Weak<NetBackend>>,
}

impl NetBackend {
    /// A back end for port `id`, whose per-connection state is `conn`.
    pub fn new(
        core: Arc<SwitchCore>,
        id: PortId,
        counters: Arc<PortCounters>,
        conn: Arc<ConnState>,
        config: PortConfig,
        policy: PolicyCell,
    ) -> Self {
        let qps = config.queues as usize;
        NetBackend {
            core,
            id,
            counters,
            conn,
            config,
            policy,
            registered: (0..qps).map(|_| AtomicBool::new(false)).collect(),
            me: Mutex::new(Weak::new()),
        }
    }

    /// Lets the back end hand itself to the polling threads (call once, after wrapping
    /// it in an `Arc`).
    pub fn set_self(self: &Arc<Self>) {
        *self.me.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(self);
    }

    fn config_space(&self) -> [u8; 12] {
        // struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu (LE).
        let mut c = [0u8; 12];
        c[6..8].copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        c[8..10].copy_from_slice(&self.config.queues.to_le_bytes());
        c[10..12].copy_from_slice(&self.config.mtu.to_le_bytes());
        c
    }

    /// Takes one batch (up to [`TX_BATCH`] frames) from transmit queue `vring` of queue
    /// pair `qp` and forwards it. Returns whether any descriptor was consumed; with
    /// nothing to do it leaves guest notifications as they are.
    pub fn tx_batch(&self, qp: usize, vring: &Vring, w: &mut Worker, mc: &mut MemCache) -> bool {
        if self.conn.exit.load(Ordering::Acquire) {
            return false;
        }
        // Under the read lock, no Arc clone: this runs on every poll of the queue.
        let budget = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .tx_budget();
        w.budget = match budget {
            TxBudget::Unlimited => u64::MAX,
            TxBudget::Bytes(b) => b,
            TxBudget::Wait(at) => {
                // Over the outbound rate: the frames stay in the guest's ring until then.
                w.throttled = true;
                w.wake_at = Some(w.wake_at.map_or(at, |t| t.min(at)));
                return false;
            }
        };
        let hdr_len = self.conn.hdr_len();
        let mtu = self.config.mtu as usize;
        // A memory update bumps the generation after replacing the map: a changed
        // generation always finds the new map.
        let gen = self.conn.mem_gen.load(Ordering::Acquire);
        let snapshot = match &mc.mem {
            Some(m) if mc.gen == gen => m,
            _ => {
                mc.gen = gen;
                mc.mem.insert(self.conn.mem.memory().into_inner())
            }
        };
        let mem = GuestView::new(snapshot);
        let pass = {
            let mut st = vring.get_mut();
            if !st.get_queue().ready() || !st.is_enabled() {
                return false;
            }
            let pass = tx_pass(&mem, st.get_queue_mut(), hdr_len, mtu, w, &self.counters);
            if pass.notify {
                let _ = st.signal_used_queue();
            }
            pass
        };
        let (n, bytes) = (pass.frames, pass.bytes);
        if n > 0 {
            self.counters.add_rx(n as u64, bytes);
            self.core
                .forward(self.id, qp, &mut w.frames[..n], &mut w.fwd);
        }
        pass.popped > 0
    }

    /// Turns guest kicks for transmit queue `vring` on (`true`) or off. When turning them
    /// on, returns whether frames arrived meanwhile (the caller must then poll again).
    pub fn set_tx_notification(&self, vring: &Vring, on: bool) -> bool {
        let mem = self.conn.mem.memory();
        let mut st = vring.get_mut();
        if !st.get_queue().ready() {
            return false;
        }
        let q = st.get_queue_mut();
        if on {
            q.enable_notification(&*mem).unwrap_or(false)
        } else {
            let _ = q.disable_notification(&*mem);
            false
        }
    }

    /// Whether the connection this back end serves has ended.
    pub fn gone(&self) -> bool {
        self.conn.exit.load(Ordering::Acquire)
    }
}

impl VhostUserBackend for NetBackend {
    type Bitmap = ();
    type Vring = Vring;

    fn num_queues(&self) -> usize {
        self.config.queues as usize * 2
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        offered_features(self.config.queues)
    }

    fn acked_features(&self, features: u64) {
        self.conn.features.store(features, Ordering::Relaxed);
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        offered_protocol_features()
    }

    fn set_event_idx(&self, _enabled: bool) {}

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let c = self.config_space();
        let start = (offset as usize).min(c.len());
        let end = start.saturating_add(size as usize).min(c.len());
        c[start..end].to_vec()
    }

    fn update_memory(&self, _mem: Gm) -> io::Result<()> {
        // `conn.mem` is the same GuestMemoryAtomic the handler just updated; polling
        // threads reload their snapshot when they see the generation move.
        self.conn.mem_gen.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn queues_per_thread(&self) -> Vec<u64> {
        // One worker thread per queue pair: queues 2k (rx) and 2k+1 (tx).
        (0..self.config.queues as u64)
            .map(|k| 0b11 << (2 * k))
            .collect()
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        new_event_consumer_and_notifier(EventFlag::NONBLOCK | EventFlag::CLOEXEC).ok()
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[Vring],
        thread_id: usize,
    ) -> io::Result<()> {
        let qp = thread_id;
        log::debug!(
            "port {}: event {device_event} on queue pair {qp} ({} vrings)",
            self.config.name,
            vrings.len()
        );
        if device_event as usize >= self.num_queues()
            || vrings.len() < 2
            || qp >= self.registered.len()
        {
            return Ok(());
        }
        {
            let mut slot = self.conn.rx[qp].write().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(vrings[0].clone());
            }
        }
        if device_event % 2 == 1 {
            // The transmit queue is served by a polling thread; a kick only wakes it.
            if !self.registered[qp].swap(true, Ordering::AcqRel) {
                let me = self.me.lock().unwrap_or_else(|e| e.into_inner()).upgrade();
                if let Some(me) = me {
                    self.core.poller.add(me, qp, vrings[1].clone());
                }
            }
            self.core.poller.kick();
        } else {
            // Receive buffers are filled when frames arrive; the switch never waits
            // for receive kicks.
            let _ = vrings[0].disable_notification();
        }
        Ok(())
    }
}
