//! The forwarding core: port registry, MAC learning and the per-batch forwarding decision.

use std::sync::{Arc, RwLock};

use crate::config::SwitchConfig;
use crate::counters::PortCounters;
use crate::filter::Filter;
use crate::frame::Frame;
use crate::mac_table::{MacTable, PortId};
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
    /// The anti-spoofing filter (`<filterref>`), checked on every frame from the port and
    /// delivered to it.
    pub filter: Option<Filter>,
}

impl PortEntry {
    fn deliver(&self, frames: &mut [Frame], idx: &[usize], src_qp: usize, sc: &mut RxScratch) {
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
    idx: Vec<usize>,
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
    ports: RwLock<Arc<Vec<Arc<PortEntry>>>>,
}

impl SwitchCore {
    /// An empty switch.
    pub fn new(config: SwitchConfig) -> Self {
        SwitchCore {
            macs: MacTable::new(config.ageing, config.mac_capacity),
            poller: Poller::new(config.poll_threads, config.poll),
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

    /// Forwards a batch of frames received on `src` (queue pair `src_qp`): learns the
    /// source addresses, then delivers each frame to the port its destination was
    /// learned on, or floods it (broadcast, multicast, unknown unicast) to every other
    /// port. Never sends a frame back where it came from.
    /// A frame the source port's filter refuses goes nowhere (counted on that port, and
    /// its address is not learned); a frame a destination's filter refuses is not
    /// delivered there (counted on the destination).
    pub fn forward(&self, src: PortId, src_qp: usize, frames: &mut [Frame], sc: &mut FwdScratch) {
        let ports = self.ports();
        let src_filter = ports
            .iter()
            .find(|p| p.id == src)
            .and_then(|p| Some((p.filter.as_ref()?, &p.counters)));
        sc.dst.clear();
        // Frames of a batch mostly share addresses: learn and look up once per change.
        let mut last_src = [0u8; 6];
        let mut last: Option<([u8; 6], Dst)> = None;
        for f in frames.iter() {
            if let Some((filter, counters)) = src_filter {
                if let Err(reason) = filter.from_guest(f.bytes()) {
                    counters.drop_frame(reason);
                    sc.dst.push(Dst::Nowhere);
                    continue;
                }
            }
            let src_mac = f.src_mac();
            if src_mac != last_src {
                self.macs.learn(&src_mac, src);
                last_src = src_mac;
                last = None;
            }
            let dst_mac = f.dst_mac();
            let d = match last {
                Some((m, d)) if m == dst_mac => d,
                _ => {
                    let d = if dst_mac[0] & 1 != 0 {
                        Dst::Flood
                    } else {
                        match self.macs.lookup(&dst_mac) {
                            Some(p) if p == src => Dst::Nowhere,
                            Some(p) => Dst::Port(p),
                            None => Dst::Flood,
                        }
                    };
                    last = Some((dst_mac, d));
                    d
                }
            };
            sc.dst.push(d);
        }
        for port in ports.iter() {
            if port.id == src {
                continue;
            }
            sc.idx.clear();
            for (i, d) in sc.dst.iter().enumerate() {
                if *d == Dst::Flood || *d == Dst::Port(port.id) {
                    sc.idx.push(i);
                }
            }
            if let Some(filter) = &port.filter {
                sc.idx
                    .retain(|&i| match filter.to_guest(frames[i].bytes()) {
                        Ok(()) => true,
                        Err(reason) => {
                            port.counters.drop_frame(reason);
                            false
                        }
                    });
            }
            if !sc.idx.is_empty() {
                port.deliver(frames, &sc.idx, src_qp, &mut sc.rx);
            }
        }
    }
}
