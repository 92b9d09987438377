//! What a port enforces besides forwarding, compiled from its [`PortPolicy`]: VLAN
//! membership and tagging ([`vlan`]), port isolation ([`isolation`]) and rate limits
//! ([`bucket`], [`queue`]). The forwarding core calls [`PortRuntime::admit`] once per frame
//! a port sends and [`PortRuntime::egress`] / [`PortRuntime::shape_inbound`] per frame it is
//! about to receive; nothing else in the forwarding path knows about policies.
//!
//! Rate limits shape (frames wait) rather than police (frames dropped), so that TCP gets the
//! configured rate: over its `outbound` rate a port's transmit queue is not read (the guest's
//! ring fills and its own queueing discipline holds the rest, as with a slow NIC); over its
//! `inbound` rate frames for it wait in its queue ([`queue`]), released by the switch's
//! releaser thread, and are dropped (`rate_limited`) only when that queue is full.

pub mod bucket;
pub mod isolation;
pub mod queue;
pub mod release;
pub mod vlan;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use virtnet_vswitch_control::PortPolicy;

use crate::counters::{DropReason, PortCounters};
use crate::frame::Frame;
use bucket::Shaper;
use queue::InboundQueue;
use vlan::{Tagging, Vid, VlanMode};

/// A port's policy, shared by the forwarding core and the port's transmit path; replaced
/// whole by `set-policy`.
pub type PolicyCell = Arc<RwLock<Arc<PortRuntime>>>;

/// A port's policy as the forwarding path uses it. Replaced whole (an `Arc` swap) by
/// `set-policy`, so a frame sees either the old or the new policy, never a mix.
pub struct PortRuntime {
    /// The policy this was compiled from (what `set-policy` last gave).
    pub policy: PortPolicy,
    vlan: VlanMode,
    isolated: bool,
    /// Frames waiting for the inbound rate.
    pub inbound: Option<Mutex<InboundQueue>>,
    outbound: Option<Mutex<Shaper>>,
}

impl Default for PortRuntime {
    fn default() -> Self {
        PortRuntime::new(PortPolicy::default())
    }
}

/// What may leave a port's transmit queue now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxBudget {
    /// No outbound limit.
    Unlimited,
    /// About this many bytes (at least one frame, which may take the bucket into debt).
    Bytes(u64),
    /// Nothing until then.
    Wait(Instant),
}

impl PortRuntime {
    /// Compiles `policy` (already checked by [`PortPolicy::check_enforced`]); buckets start full.
    pub fn new(policy: PortPolicy) -> Self {
        let now = Instant::now();
        PortRuntime {
            vlan: VlanMode::new(policy.vlan.as_ref()),
            isolated: policy.isolated,
            inbound: policy
                .inbound
                .map(|b| Mutex::new(InboundQueue::new(Shaper::new(&b, now)))),
            outbound: policy.outbound.map(|b| Mutex::new(Shaper::new(&b, now))),
            policy,
        }
    }

    /// A new cell holding `policy`.
    pub fn cell(policy: PortPolicy) -> PolicyCell {
        Arc::new(RwLock::new(Arc::new(PortRuntime::new(policy))))
    }

    /// Whether this port is isolated (`<port isolated='yes'/>`).
    pub fn isolated(&self) -> bool {
        self.isolated
    }

    /// How much the port's transmit path may read from the guest now.
    pub fn tx_budget(&self) -> TxBudget {
        match &self.outbound {
            None => TxBudget::Unlimited,
            Some(s) => match s
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .budget(Instant::now())
            {
                Ok(b) => TxBudget::Bytes(b),
                Err(at) => TxBudget::Wait(at),
            },
        }
    }

    /// A frame this port sent: its VLAN (the 802.1Q tag of a trunk's frame is removed:
    /// inside the switch frames are untagged and carry their VLAN beside them), or why it
    /// is dropped (a VLAN the port is not in). Its bytes count against the outbound rate.
    pub fn admit(&self, f: &mut Frame) -> Result<Vid, DropReason> {
        let vid = self.vlan.ingress(f)?;
        if let Some(s) = &self.outbound {
            s.lock().unwrap_or_else(|e| e.into_inner()).charge(f.len);
        }
        Ok(vid)
    }

    /// Whether (and how) this port receives a frame of VLAN `vid`.
    pub fn egress(&self, vid: Vid) -> Option<Tagging> {
        self.vlan.egress(vid)
    }

    /// Keeps in `idx` the frames the inbound rate lets through to this port now; the others
    /// are copied into its queue (tagged `vids[i]` when `tagged`), or dropped and counted
    /// `rate_limited` on it when the queue is full. Returns whether the queue was empty and
    /// is not any more (the releaser must be woken).
    #[allow(clippy::too_many_arguments)]
    pub fn shape_inbound(
        &self,
        frames: &[Frame],
        idx: &mut Vec<usize>,
        tagged: bool,
        vids: &[Vid],
        counters: &PortCounters,
        now: Instant,
    ) -> bool {
        let Some(q) = &self.inbound else {
            return false;
        };
        let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        idx.retain(|&i| {
            let vid = tagged.then(|| vids[i]);
            match q.offer(&frames[i], vid, now) {
                queue::Offer::Now => true,
                queue::Offer::Held { dropped } => {
                    for _ in 0..dropped {
                        counters.drop_frame(DropReason::RateLimited);
                    }
                    false
                }
            }
        });
        was_empty && !q.is_empty()
    }
}
