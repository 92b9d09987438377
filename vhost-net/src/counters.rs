//! Per-port counters: packets, bytes and drops by reason, all lock-free.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Why a frame was dropped. Every drop is counted under exactly one reason, on the
/// port the bad frame came from (guest-caused errors) or went to (no room there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Shorter than the virtio-net header plus a 14-byte Ethernet header.
    ShortFrame,
    /// Longer than 65535 + Ethernet header, or longer than the port MTU without GSO.
    OversizedFrame,
    /// A descriptor (or the table it lives in) points outside the guest's memory.
    BadAddress,
    /// The descriptor chain loops (more descriptors than its table has).
    DescriptorLoop,
    /// The chain has more descriptors than the queue size (or the hard cap).
    ChainTooLong,
    /// Malformed descriptor: index out of range, wrong direction, bad indirect table.
    BadDescriptor,
    /// Inconsistent virtio-net header (GSO or checksum fields out of range).
    BadHeader,
    /// The destination had no free receive buffer.
    RxNoBuffer,
    /// The destination's receive buffer is too small for the frame (no MRG_RXBUF).
    RxBufferTooSmall,
    /// A GSO frame to a port that did not negotiate that offload and could not be segmented.
    OffloadUnsupported,
    /// The destination queue is not running (guest driver not up, or reconnecting).
    QueueNotReady,
    /// Reading from or writing to the uplink tap failed.
    TapError,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 12] = [
        DropReason::ShortFrame,
        DropReason::OversizedFrame,
        DropReason::BadAddress,
        DropReason::DescriptorLoop,
        DropReason::ChainTooLong,
        DropReason::BadDescriptor,
        DropReason::BadHeader,
        DropReason::RxNoBuffer,
        DropReason::RxBufferTooSmall,
        DropReason::OffloadUnsupported,
        DropReason::QueueNotReady,
        DropReason::TapError,
    ];

    /// The snake_case name used in the control protocol.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::ShortFrame => "short_frame",
            DropReason::OversizedFrame => "oversized_frame",
            DropReason::BadAddress => "bad_address",
            DropReason::DescriptorLoop => "descriptor_loop",
            DropReason::ChainTooLong => "chain_too_long",
            DropReason::BadDescriptor => "bad_descriptor",
            DropReason::BadHeader => "bad_header",
            DropReason::RxNoBuffer => "rx_no_buffer",
            DropReason::RxBufferTooSmall => "rx_buffer_too_small",
            DropReason::OffloadUnsupported => "offload_unsupported",
            DropReason::QueueNotReady => "queue_not_ready",
            DropReason::TapError => "tap_error",
        }
    }
}

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

/// A copy of a port's counters, as reported by `list-ports`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Frames received from the port (sent by the guest).
    pub rx_packets: u64,
    /// Bytes of those frames (Ethernet frame, without virtio-net header).
    pub rx_bytes: u64,
    /// Frames delivered to the port.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Drops by reason (every reason present, zero or not).
    pub drops: std::collections::BTreeMap<String, u64>,
    /// How many times the vhost-user connection was established.
    pub connections: u64,
}

impl CounterSnapshot {
    /// Drops for a reason name (0 if unknown).
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.name()).copied().unwrap_or(0)
    }

    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}
