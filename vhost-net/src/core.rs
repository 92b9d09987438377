//! The forwarding core: port registry, MAC learning and the per-batch forwarding decision.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::config::SwitchConfig;
use crate::counters::PortCounters;
use crate::filter::Filter;
use crate::frame::Frame;
use crate::mac_table::{MacTable, PortId};
use crate::policy::isolation::may_reach;
use crate::policy::release::Releaser;
use crate::policy::vlan::{self, Tagging, Vid, NO_VLAN};
use crate::policy::{PolicyCell, PortRuntime};
use crate::poller::Poller;
use crate::rx::RxScratch;
use crate::tap::TapPort;
use crate::vhost_port::VhostPort;

/// What is behind a port.
pub enum PortKind {
    /// A vhost-user NIC.
    Vhost(Arc<VhostPort>),
    /// The uplink tap.
    Tap(Arc<TapPort>),
}

/// A port as the forwarding core sees it.
pub struct PortEntry {
    /// Switch-unique id.
    pub id: PortId,
    /// Name given at add-port.
    pub name: String,
    /// Live counters.
    pub counters: Arc<PortCounters>,
    /// Where frames for this port go.
    pub kind: PortKind,
    /// VLAN, isolation and rate limits (replaced whole by `set-policy`), shared with the
    /// port's transmit path.
    pub policy: PolicyCell,
    /// The anti-spoofing filter (`<filterref>`), checked on every frame from the port and
    /// delivered to it.
    pub filter: Option<Filter>,
}

impl PortEntry {
    /// The port's policy now.
    pub fn runtime(&self) -> Arc<PortRuntime> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the port's policy: frames forwarded from now on follow `rt`.
    pub fn set_runtime(&self, rt: PortRuntime) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rt);
    }

    pub(crate) fn deliver(
        &self,
        frames: &mut [Frame],
        idx: &[usize],
        src_qp: usize,
        sc: &mut RxScratch,
    ) {
        match &self.kind {
            PortKind::Vhost(p) => p.deliver(&self.counters, frames, idx, src_qp, sc),
            PortKind::Tap(t) => t.deliver(&self.counters, frames, idx),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dst {
    Nowhere,
    Flood,
    Port(PortId),
}

/// Reused buffers for one forwarding thread.
#[derive(Default)]
pub struct FwdScratch {
    dst: Vec<Dst>,
    vid: Vec<Vid>,
    idx: Vec<usize>,
    tagged: Vec<usize>,
    rx: RxScratch,
}

/// State shared by every thread of one switch.
pub struct SwitchCore {
    /// Settings.
    pub config: SwitchConfig,
    /// Learned addresses.
    pub macs: MacTable,
    /// Threads polling the transmit queues.
    pub poller: Poller,
    /// The thread releasing frames held for ports' inbound rates.
    pub releaser: Releaser,
    ports: RwLock<Arc<Vec<Arc<PortEntry>>>>,
}

impl SwitchCore {
    /// An empty switch.
    pub fn new(config: SwitchConfig) -> Self {
        SwitchCore {
            macs: MacTable::new(config.ageing, config.mac_capacity),
            poller: Poller::new(config.poll_threads, config.poll),
            releaser: Releaser::default(),
            config,
            ports: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// The current ports (a cheap snapshot: forwarding never holds the registry lock).
    pub fn ports(&self) -> Arc<Vec<Arc<PortEntry>>> {
        self.ports.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds a port to the registry.
    pub fn insert(&self, entry: Arc<PortEntry>) {
        let mut g = self.ports.write().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = g.iter().cloned().collect();
        v.push(entry);
        *g = Arc::new(v);
    }

    /// Removes a port from the registry and forgets its addresses.
    pub fn remove(&self, id: PortId) -> Option<Arc<PortEntry>> {
        let mut g = self.ports.write().unwrap_or_else(|e| e.into_inner());
        let found = g.iter().find(|p| p.id == id).cloned();
        let v: Vec<_> = g.iter().filter(|p| p.id != id).cloned().collect();
        *g = Arc::new(v);
        drop(g);
        self.macs.flush_port(id);
        found
    }

    /// Forwards a batch of frames received on `src` (queue pair `src_qp`): applies the
    /// source port's policy (VLAN, outbound rate), learns the source addresses per VLAN,
    /// then delivers each frame to the port its destination was learned on in its VLAN, or
    /// floods it (broadcast, multicast, unknown unicast) to every other port of that VLAN,
    /// isolated ports reaching only ports that are not, within each port's inbound rate.
    /// Never sends a frame back where it came from.
    /// A frame the source port's filter refuses goes nowhere (counted on that port, and
    /// its address is not learned); a frame a destination's filter refuses is not
    /// delivered there (counted on the destination). Filters see frames untagged.
    pub fn forward(&self, src: PortId, src_qp: usize, frames: &mut [Frame], sc: &mut FwdScratch) {
        let ports = self.ports();
        // A port being added or removed: its frames go nowhere (its policy is not known).
        let Some(sp) = ports.iter().find(|p| p.id == src) else {
            return;
        };
        let srt = sp.runtime();
        let now = Instant::now();
        sc.dst.clear();
        sc.vid.clear();
        // Frames of a batch mostly share addresses: learn and look up once per change.
        let mut last_src = None;
        let mut last: Option<(Vid, [u8; 6], Dst)> = None;
        for f in frames.iter_mut() {
            let admitted = srt.admit(f).and_then(|vid| match &sp.filter {
                Some(filter) => filter.from_guest(f.bytes()).map(|()| vid),
                None => Ok(vid),
            });
            let vid = match admitted {
                Ok(v) => v,
                Err(reason) => {
                    sp.counters.drop_frame(reason);
                    sc.dst.push(Dst::Nowhere);
                    sc.vid.push(NO_VLAN);
                    continue;
                }
            };
            let src_mac = f.src_mac();
            if last_src != Some((vid, src_mac)) {
                self.macs.learn(vid, &src_mac, src);
                last_src = Some((vid, src_mac));
                last = None;
            }
            let dst_mac = f.dst_mac();
            let d = match last {
                Some((v, m, d)) if v == vid && m == dst_mac => d,
                _ => {
                    let d = if dst_mac[0] & 1 != 0 {
                        Dst::Flood
                    } else {
                        match self.macs.lookup(vid, &dst_mac) {
                            Some(p) if p == src => Dst::Nowhere,
                            Some(p) => Dst::Port(p),
                            None => Dst::Flood,
                        }
                    };
                    last = Some((vid, dst_mac, d));
                    d
                }
            };
            sc.dst.push(d);
            sc.vid.push(vid);
        }
        for port in ports.iter() {
            if port.id == src {
                continue;
            }
            let rt = port.runtime();
            if !may_reach(srt.isolated(), rt.isolated()) {
                continue;
            }
            sc.idx.clear();
            sc.tagged.clear();
            for (i, d) in sc.dst.iter().enumerate() {
                if *d != Dst::Flood && *d != Dst::Port(port.id) {
                    continue;
                }
                match rt.egress(sc.vid[i]) {
                    None => {}
                    Some(Tagging::Untagged) => sc.idx.push(i),
                    Some(Tagging::Tagged(_)) => sc.tagged.push(i),
                }
            }
            if let Some(filter) = &port.filter {
                for list in [&mut sc.idx, &mut sc.tagged] {
                    list.retain(|&i| match filter.to_guest(frames[i].bytes()) {
                        Ok(()) => true,
                        Err(reason) => {
                            port.counters.drop_frame(reason);
                            false
                        }
                    });
                }
            }
            // Over the inbound rate: held (in order) in the port's queue.
            let held = rt.shape_inbound(frames, &mut sc.idx, false, &sc.vid, &port.counters, now)
                | rt.shape_inbound(frames, &mut sc.tagged, true, &sc.vid, &port.counters, now);
            if held {
                self.releaser.wake();
            }
            if !sc.idx.is_empty() {
                port.deliver(frames, &sc.idx, src_qp, &mut sc.rx);
            }
            if !sc.tagged.is_empty() {
                // Tagged for this port only: the tag comes off again for the next one.
                for &i in &sc.tagged {
                    vlan::push(&mut frames[i], sc.vid[i]);
                }
                port.deliver(frames, &sc.tagged, src_qp, &mut sc.rx);
                for &i in &sc.tagged {
                    vlan::pop(&mut frames[i]);
                }
            }
        }
    }
}
