//! What the switch reports: ports with their counters (`list-ports`), learned addresses
//! (`mac-table`).

use serde::{Deserialize, Serialize};

use crate::policy::PortPolicy;
use crate::port::SocketMode;

/// One port as reported by `list-ports`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortInfo {
    /// Port name.
    pub name: String,
    /// `vhost-user` or `tap`.
    pub kind: String,
    /// Socket path (vhost-user) or interface name (tap).
    pub path: String,
    /// `client` or `server` (vhost-user ports).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<SocketMode>,
    /// Queue pairs offered.
    pub queues: u16,
    /// Whether a frontend is connected (always true for a tap).
    pub connected: bool,
    /// Receive queues the guest driver has started (a port forwards to it once > 0).
    pub ready_queues: u16,
    /// Virtio features the driver acknowledged (hex), if connected.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub features: Option<String>,
    /// Counters.
    pub counters: CounterSnapshot,
    /// The IPv4 address the port filter learned (`<filterref>` without an `IP` parameter:
    /// the first address the guest used), once it has.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub learned_ip: Option<std::net::Ipv4Addr>,
    /// What the port enforces (as `add-port` or the last `set-policy` gave it); left out
    /// when it enforces nothing.
    #[serde(default, skip_serializing_if = "PortPolicy::is_default")]
    pub policy: PortPolicy,
}

/// A copy of a port's counters, as reported by `list-ports`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

/// Why a frame was dropped. Every drop is counted under exactly one reason, on the
/// port the bad frame came from (guest-caused errors) or went to (no room there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Port filter (`no-mac-spoofing`): the guest sent a frame whose source MAC is not its own.
    SpoofedMac,
    /// Port filter (`no-ip-spoofing`): the guest sent IPv4 from an address that is not its
    /// own (0.0.0.0 passes only as a DHCP request).
    SpoofedIp,
    /// Port filter (`no-arp-spoofing`): the guest sent ARP naming another MAC or address, an
    /// opcode other than request or reply, or a malformed ARP packet.
    SpoofedArp,
    /// Port filter (`no-other-l2-traffic`): the guest sent a frame that is neither IPv4,
    /// ARP nor QEMU's announce-self RARP.
    L2NotAllowed,
    /// Port filter (`no-other-l2-traffic`, incoming direction): a frame for the guest that
    /// is neither IPv4, ARP nor an announce-self RARP of its own MAC.
    L2NotAllowedIn,
    /// Over the port's `inbound` rate (`<bandwidth>`) with its queue full; counted on that
    /// port (over `outbound` nothing is dropped: the guest's transmit ring waits).
    RateLimited,
    /// From the guest, a frame of a VLAN the port is not in: a tagged frame on an access
    /// port, a tag not in a trunk's list, an untagged frame on a trunk without a native VLAN.
    VlanNotAllowed,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 19] = [
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
        DropReason::SpoofedMac,
        DropReason::SpoofedIp,
        DropReason::SpoofedArp,
        DropReason::L2NotAllowed,
        DropReason::L2NotAllowedIn,
        DropReason::RateLimited,
        DropReason::VlanNotAllowed,
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
            DropReason::SpoofedMac => "spoofed_mac",
            DropReason::SpoofedIp => "spoofed_ip",
            DropReason::SpoofedArp => "spoofed_arp",
            DropReason::L2NotAllowed => "l2_not_allowed",
            DropReason::L2NotAllowedIn => "l2_not_allowed_in",
            DropReason::RateLimited => "rate_limited",
            DropReason::VlanNotAllowed => "vlan_not_allowed",
        }
    }
}

/// One learned address, as reported by the control interface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MacEntry {
    /// The address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Port name it was learned on.
    pub port: String,
    /// The VLAN it was learned in (`None`: the untagged network of ports without `<vlan>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Seconds since a frame from it was last seen.
    pub age_secs: u64,
}
