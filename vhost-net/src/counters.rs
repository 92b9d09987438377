//! Per-port counters: packets, bytes and drops by reason, all lock-free.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use virtnet_vswitch_control::{CounterSnapshot, DropReason};

/// Live counters of one port. "rx" is what the switch received from the port (the
/// guest transmitted it), "tx" what the switch delivered to the port.
#[derive(Debug, Default)]
pub struct PortCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
    reconnects: AtomicU64,
}

impl PortCounters {
    /// Counts `packets` frames of `bytes` total received from the port.
    pub fn add_rx(&self, packets: u64, bytes: u64) {
        self.rx_packets.fetch_add(packets, Relaxed);
        self.rx_bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts `packets` frames of `bytes` total delivered to the port.
    pub fn add_tx(&self, packets: u64, bytes: u64) {
        self.tx_packets.fetch_add(packets, Relaxed);
        self.tx_bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts one dropped frame.
    pub fn drop_frame(&self, reason: DropReason) {
        self.drops[reason as usize].fetch_add(1, Relaxed);
    }

    /// Counts one (re)connection of the vhost-user socket.
    pub fn add_connection(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    /// Number of drops for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Relaxed)
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> CounterSnapshot {
        let drops = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), self.drops(*r)))
            .collect();
        CounterSnapshot {
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            tx_packets: self.tx_packets.load(Relaxed),
            tx_bytes: self.tx_bytes.load(Relaxed),
            drops,
            connections: self.reconnects.load(Relaxed),
        }
    }
}
