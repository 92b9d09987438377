//! One scrape: the daemon's state turned into the text exposition.

use virtnet_api::{InterfaceRow, VmState};

use super::text::{Exposition, Kind};
use crate::daemon::Daemon;
use crate::networks::health::SwitchReport;
use crate::ops::ifstats::NicCounters;

/// Every state a VM can be in, with its label.
const STATES: [(VmState, &str); 5] = [
    (VmState::Running, "running"),
    (VmState::ShutOff, "shut_off"),
    (VmState::Starting, "starting"),
    (VmState::ShuttingDown, "shutting_down"),
    (VmState::Unknown, "unknown"),
];

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
