//! What `/metrics` reports about the switches: each running network's health (answers on its
//! control socket, restarts) and its ports' counters with the VM that owns each port.

use virtnet_vswitch_control::{CounterSnapshot, Request};

use super::{switch, Networks};

/// One running network's switch, as scraped.
#[derive(Debug, Clone)]
pub struct SwitchReport {
    /// The network.
    pub network: String,
    /// The switch answered `list-ports`.
    pub up: bool,
    /// Restarts after the switch died.
    pub restarts: u32,
    /// Its ports (empty when it did not answer).
    pub ports: Vec<PortReport>,
}

/// One switch port's counters.
#[derive(Debug, Clone)]
pub struct PortReport {
    /// The port's name (`VM-MAC` for a VM NIC, the MAC without colons).
    pub port: String,
    /// The VM whose NIC it is; `None` for the uplink.
    pub vm: Option<String>,
    /// The switch's counters (from the switch's side: `rx` is what the guest sent).
    pub counters: CounterSnapshot,
    /// The IPv4 address the port's filter learned, if it has a filter and has learned one.
    pub learned_ip: Option<std::net::Ipv4Addr>,
}

/// A running network as read under the table's lock: name, control socket, restarts, and
/// port name → owning VM.
type Running = (String, std::path::PathBuf, u32, Vec<(String, String)>);

impl Networks {
    /// Every running network's switch with its ports' counters (one `list-ports` each).
    pub async fn reports(&self) -> Vec<SwitchReport> {
        let running: Vec<Running> = {
            let table = self.table.lock().await;
            table
                .iter()
                .filter_map(|(n, net)| {
                    // An Open vSwitch network has no switch to scrape.
                    let st = net.switch()?;
                    let owners = st
                        .ports
                        .iter()
                        .map(|(p, port)| (p.clone(), port.vm.clone()))
                        .collect();
                    Some((n.clone(), st.control.clone(), st.restarts, owners))
                })
                .collect()
        };
        let mut out = Vec::new();
        for (network, control, restarts, owners) in running {
            let listed = switch::request(&control, &Request::ListPorts).await.ok();
            let up = listed.as_ref().is_some_and(|r| r.ok);
            let ports = listed
                .and_then(|r| r.ports)
                .unwrap_or_default()
                .into_iter()
                .map(|p| PortReport {
                    vm: owners
                        .iter()
                        .find(|(name, _)| *name == p.name)
                        .map(|(_, vm)| vm.clone()),
                    port: p.name,
                    counters: p.counters,
                    learned_ip: p.learned_ip,
                })
                .collect();
            out.push(SwitchReport {
                network,
                up,
                restarts,
                ports,
            });
        }
        out
    }
}
