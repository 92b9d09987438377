//! One scrape: the daemon's state turned into the text exposition.

use virtnet_api::{InterfaceRow, VmState};
use virtnet_host::LinkCounters;
use virtnet_vswitch_control::{CounterSnapshot, DropReason};

use super::text::{Exposition, Kind};
use crate::daemon::Daemon;
use crate::networks::health::SwitchReport;

/// Every state a VM can be in, with its label.
const STATES: [(VmState, &str); 5] = [
    (VmState::Running, "running"),
    (VmState::ShutOff, "shut_off"),
    (VmState::Starting, "starting"),
    (VmState::ShuttingDown, "shutting_down"),
    (VmState::Unknown, "unknown"),
];

/// Drop reasons counted on the port a frame went to: the guest did not receive it.
const RX_REASONS: [DropReason; 5] = [
    DropReason::RxNoBuffer,
    DropReason::RxBufferTooSmall,
    DropReason::OffloadUnsupported,
    DropReason::QueueNotReady,
    DropReason::L2NotAllowedIn,
];

/// A NIC's counters, the guest's view.
#[derive(Debug, Clone, Copy, Default)]
struct NicCounters {
    rx_packets: u64,
    rx_bytes: u64,
    rx_drops: u64,
    rx_errors: Option<u64>,
    tx_packets: u64,
    tx_bytes: u64,
    tx_drops: u64,
    tx_errors: Option<u64>,
}

impl NicCounters {
    /// A tap's (`swapped`: its rx is the guest's tx) or a macvtap's counters.
    fn from_link(c: &LinkCounters, swapped: bool) -> Self {
        let (rx_packets, rx_bytes, rx_drops, rx_errors, tx_packets, tx_bytes, tx_drops, tx_errors) =
            if swapped {
                (
                    c.tx_packets,
                    c.tx_bytes,
                    c.tx_dropped,
                    c.tx_errors,
                    c.rx_packets,
                    c.rx_bytes,
                    c.rx_dropped,
                    c.rx_errors,
                )
            } else {
                (
                    c.rx_packets,
                    c.rx_bytes,
                    c.rx_dropped,
                    c.rx_errors,
                    c.tx_packets,
                    c.tx_bytes,
                    c.tx_dropped,
                    c.tx_errors,
                )
            };
        NicCounters {
            rx_packets,
            rx_bytes,
            rx_drops,
            rx_errors: Some(rx_errors),
            tx_packets,
            tx_bytes,
            tx_drops,
            tx_errors: Some(tx_errors),
        }
    }

    /// A switch port's counters (the switch's rx is what the guest sent). Drops for want of
    /// room or readiness at the guest, or refused by its port filter on the way in, are rx
    /// drops; the rest (malformed or filtered frames from the guest) are tx drops. The switch
    /// keeps no separate error counts.
    fn from_port(c: &CounterSnapshot) -> Self {
        let rx_drops: u64 = RX_REASONS.iter().map(|r| c.drop_count(*r)).sum();
        NicCounters {
            rx_packets: c.tx_packets,
            rx_bytes: c.tx_bytes,
            rx_drops,
            rx_errors: None,
            tx_packets: c.rx_packets,
            tx_bytes: c.rx_bytes,
            tx_drops: c.total_drops().saturating_sub(rx_drops),
            tx_errors: None,
        }
    }
}

/// One VM NIC with its counters.
struct Nic {
    domain: String,
    row: InterfaceRow,
    counters: NicCounters,
}

impl Daemon {
    /// The text exposition of every metric (`GET /metrics`).
    pub async fn metrics_text(&self) -> String {
        let list = self.list();
        let switches = self.networks.reports().await;
        let mut nics = Vec::new();
        for vm in list.domains.iter().filter(|d| d.state == VmState::Running) {
            let Ok(ifaces) = self.interfaces(&vm.name, false) else {
                continue;
            };
            if ifaces.inactive {
                continue;
            }
            for row in ifaces.interfaces {
                if let Some(counters) = self.nic_counters(&vm.name, &row, &switches) {
                    nics.push(Nic {
                        domain: vm.name.clone(),
                        row,
                        counters,
                    });
                }
            }
        }

        let mut e = Exposition::default();
        e.family(
            "virtnet_domains",
            "VMs virtnetd knows, by state.",
            Kind::Gauge,
        );
        for (state, label) in STATES {
            let n = list.domains.iter().filter(|d| d.state == state).count();
            e.sample("virtnet_domains", &[("state", label)], n as f64);
        }
        encode_nics(&mut e, &nics);
        encode_switches(&mut e, &switches);
        self.latencies.encode(&mut e);
        e.finish()
    }

    /// The counters of one live NIC: its switch port's (a NIC on a switch network, found by
    /// VM and MAC), else its tap's or macvtap's; `None` for a NIC without either.
    fn nic_counters(
        &self,
        vm: &str,
        row: &InterfaceRow,
        switches: &[SwitchReport],
    ) -> Option<NicCounters> {
        if let Some(mac) = &row.mac {
            let suffix = format!("-{}", mac.replace(':', ""));
            let port = switches
                .iter()
                .flat_map(|s| &s.ports)
                .find(|p| p.vm.as_deref() == Some(vm) && p.port.ends_with(&suffix));
            if let Some(p) = port {
                return Some(NicCounters::from_port(&p.counters));
            }
        }
        let dev = row.interface.as_deref()?;
        let link = self.host().ok()?.link(dev).ok()??;
        let stats = link.stats?;
        let macvtap = link.kind.as_deref() == Some("macvtap");
        Some(NicCounters::from_link(&stats, !macvtap))
    }
}

/// The per-NIC families.
fn encode_nics(e: &mut Exposition, nics: &[Nic]) {
    type Get = fn(&NicCounters) -> Option<u64>;
    let families: [(&str, &str, Get); 8] = [
        (
            "virtnet_nic_rx_packets_total",
            "Packets the guest received on the NIC.",
            |c| Some(c.rx_packets),
        ),
        (
            "virtnet_nic_rx_bytes_total",
            "Bytes the guest received on the NIC.",
            |c| Some(c.rx_bytes),
        ),
        (
            "virtnet_nic_rx_drops_total",
            "Packets for the guest dropped before it received them.",
            |c| Some(c.rx_drops),
        ),
        (
            "virtnet_nic_rx_errors_total",
            "Receive errors (taps and macvtaps only).",
            |c| c.rx_errors,
        ),
        (
            "virtnet_nic_tx_packets_total",
            "Packets the guest sent on the NIC.",
            |c| Some(c.tx_packets),
        ),
        (
            "virtnet_nic_tx_bytes_total",
            "Bytes the guest sent on the NIC.",
            |c| Some(c.tx_bytes),
        ),
        (
            "virtnet_nic_tx_drops_total",
            "Packets the guest sent that were dropped.",
            |c| Some(c.tx_drops),
        ),
        (
            "virtnet_nic_tx_errors_total",
            "Transmit errors (taps and macvtaps only).",
            |c| c.tx_errors,
        ),
    ];
    for (name, help, get) in families {
        e.family(name, help, Kind::Counter);
        for n in nics {
            if let Some(v) = get(&n.counters) {
                e.sample(name, &nic_labels(n), v as f64);
            }
        }
    }
    let name = "virtnet_nic_filter_dropped_total";
    e.family(
        name,
        "Frames a tap NIC's <filterref> dropped, per counter (mac_spoofing, ip_spoofing, \
         arp_spoofing, other_l2, other_l2_in).",
        Kind::Counter,
    );
    for n in nics {
        for (counter, v) in n.row.filter.iter().flat_map(|f| &f.dropped) {
            let mut labels = nic_labels(n).to_vec();
            labels.push(("counter", counter));
            e.sample(name, &labels, *v as f64);
        }
    }
}

fn nic_labels(n: &Nic) -> [(&'static str, &str); 5] {
    [
        ("domain", n.domain.as_str()),
        ("mac", n.row.mac.as_deref().unwrap_or("")),
        ("alias", n.row.alias.as_deref().unwrap_or("")),
        ("type", n.row.type_.as_str()),
        ("source", n.row.source.as_deref().unwrap_or("")),
    ]
}

/// The switch families: health, restarts, drops per port and reason.
fn encode_switches(e: &mut Exposition, switches: &[SwitchReport]) {
    e.family(
        "virtnet_switch_up",
        "1 when the network's switch answers on its control socket.",
        Kind::Gauge,
    );
    for s in switches {
        let up = if s.up { 1.0 } else { 0.0 };
        e.sample("virtnet_switch_up", &[("network", &s.network)], up);
    }
    e.family(
        "virtnet_switch_restarts_total",
        "Times virtnetd restarted the network's switch after it died.",
        Kind::Counter,
    );
    for s in switches {
        e.sample(
            "virtnet_switch_restarts_total",
            &[("network", &s.network)],
            f64::from(s.restarts),
        );
    }
    e.family(
        "virtnet_switch_port_drops_total",
        "Frames the switch dropped, by port and reason (since the switch started).",
        Kind::Counter,
    );
    for s in switches {
        for p in &s.ports {
            for (reason, n) in &p.counters.drops {
                e.sample(
                    "virtnet_switch_port_drops_total",
                    &[
                        ("network", &s.network),
                        ("port", &p.port),
                        ("domain", p.vm.as_deref().unwrap_or("")),
                        ("reason", reason),
                    ],
                    *n as f64,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The port filter's drops: those of frames from the guest are its tx drops, those of
    /// frames refused on the way to it its rx drops.
    #[test]
    fn port_filter_drops_count_as_the_guests_tx_or_rx_drops() {
        let drops = DropReason::ALL
            .iter()
            .map(|r| {
                let n = match r {
                    DropReason::SpoofedMac | DropReason::SpoofedIp | DropReason::SpoofedArp => 1,
                    DropReason::L2NotAllowed => 2,
                    DropReason::L2NotAllowedIn => 7,
                    _ => 0,
                };
                (r.name().to_string(), n)
            })
            .collect();
        let c = CounterSnapshot {
            rx_packets: 10,
            rx_bytes: 1000,
            tx_packets: 20,
            tx_bytes: 2000,
            drops,
            connections: 1,
        };
        let n = NicCounters::from_port(&c);
        assert_eq!((n.tx_drops, n.rx_drops), (5, 7));
        assert_eq!((n.tx_packets, n.rx_packets), (10, 20));
    }
}
