//! VM NICs on switch networks: `<interface type='network'>` resolved to a vhost-user NIC
//! (QEMU listens on `RUN_DIR/networks/NET/VM-MAC.sock`, the switch connects), the switch
//! ports added before QEMU starts (or the NIC is plugged), and removed when the VM stops or
//! the NIC is unplugged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use virtnet_conf::interface::InterfaceKind;
use virtnet_conf::{Domain, Interface};
use virtnet_vm::plan::{defined_network_interface, resolve_network_interface, ResolvedNetwork};
use virtnet_vswitch_control::Request;

use super::{add_port, no_such, switch, Active, Networks, Port};
use crate::error::{DaemonError, Result};
use virtnet_vswitch_control::PortPolicy;

/// A switch port a VM NIC needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPort {
    /// The network.
    pub network: String,
    /// The port's name on the switch (`VM-MAC`, the MAC without colons).
    pub port: String,
    /// The vhost-user socket.
    pub socket: PathBuf,
    /// Queue pairs (`<driver queues='N'/>`, else 1): the port must offer as many as QEMU's
    /// NIC uses, or the guest's extra queues never carry traffic.
    pub queues: u32,
    /// What the port enforces ([`super::policy::port_policy`]).
    pub policy: PortPolicy,
}

impl Networks {
    /// `domain` with each `<interface type='network'>` on a switch network turned into a
    /// vhost-user NIC (QEMU the server) on the socket the daemon picks, each on an Open vSwitch
    /// network into the bridge form ([`super::ovs::bridge_form`]), and the switch ports those
    /// NICs need. Refused: an unknown or inactive network, a NIC without MAC, a socket path
    /// too long, and a domain without shared memory (conf's validation message).
    pub async fn resolve(&self, vm: &str, domain: &Domain) -> Result<(Domain, Vec<NetPort>)> {
        let mut resolved = domain.clone();
        let mut ports = Vec::new();
        for iface in resolved.devices.interfaces.iter_mut() {
            let (r, port) = self.resolve_interface(vm, iface).await?;
            *iface = r;
            ports.extend(port);
        }
        if !ports.is_empty() {
            let shared: Vec<String> = virtnet_conf::validate(&resolved)
                .iter()
                .filter(|e| e.to_string().contains("requires shared memory"))
                .map(|e| e.located())
                .collect();
            if !shared.is_empty() {
                return Err(DaemonError::InvalidXml { problems: shared });
            }
        }
        Ok((resolved, ports))
    }

    /// One interface: on a switch network it becomes vhost-user on the socket the daemon
    /// picks, with the port it needs; on an Open vSwitch network the bridge form (no switch
    /// port: `None`); any other interface comes back unchanged with `None`.
    /// The caller checks shared memory (conf's validation of the domain with it).
    pub async fn resolve_interface(
        &self,
        vm: &str,
        iface: &Interface,
    ) -> Result<(Interface, Option<NetPort>)> {
        let InterfaceKind::Network { network, .. } = &iface.kind else {
            return Ok((iface.clone(), None));
        };
        let net = network.value.clone();
        let table = self.table.lock().await;
        let entry = table.get(&net).ok_or_else(|| no_such(&net))?;
        match &entry.run {
            None => {
                return Err(DaemonError::NetworkState {
                    name: net.to_string(),
                    state: "inactive".into(),
                    hint: format!("start it with `virtnet net-start {net}` first"),
                })
            }
            Some(Active::Ovs(_)) => {
                // The definition it was started with (a net-define since applies at the next
                // net-start).
                let def = entry.running_def();
                let Some(o) = def.ovs() else {
                    return Err(DaemonError::Internal(format!(
                        "network '{net}' runs as Open vSwitch without an Open vSwitch definition"
                    )));
                };
                return Ok((super::ovs::bridge_form(iface, &net, o)?, None));
            }
            Some(Active::Switch(_)) => {}
        }
        let networks = BTreeMap::from([(
            net.clone(),
            ResolvedNetwork {
                socket_dir: self.net_dir(&net),
            },
        )]);
        let (r, port) = resolve_network_interface(vm, iface, &networks).map_err(DaemonError::vm)?;
        let policy = super::policy::port_policy(iface)?;
        Ok((
            r,
            port.map(|p| NetPort {
                network: p.network,
                port: p.port,
                socket: p.socket,
                queues: iface.queues().unwrap_or(1).max(1),
                policy,
            }),
        ))
    }

    /// `iface` of `vm` as users see it: a NIC [`Self::resolve_interface`] made vhost-user is
    /// `<interface type='network'>` again, `<source network='NET' portid='PORT'/>` naming its
    /// switch port; any other interface as it is.
    pub fn as_defined(&self, vm: &str, iface: &Interface) -> Interface {
        if let Some(shown) = self.ovs_as_defined(vm, iface) {
            return shown;
        }
        defined_network_interface(vm, iface, |n| self.net_dir(n)).unwrap_or_else(|| iface.clone())
    }

    /// `domain` (live, of `vm`) as users see it: each NIC as [`Self::as_defined`] shows it.
    pub fn domain_as_defined(&self, vm: &str, domain: &Domain) -> Domain {
        let mut shown = domain.clone();
        for iface in shown.devices.interfaces.iter_mut() {
            *iface = self.as_defined(vm, iface);
        }
        shown
    }

    /// Adds `ports` for `vm` to their switches (client mode: the switch connects when QEMU
    /// listens). All or nothing.
    pub async fn add_ports(&self, vm: &str, ports: &[NetPort]) -> Result<()> {
        let mut done: Vec<&NetPort> = Vec::new();
        for p in ports {
            if let Err(e) = self.add_one(vm, p).await {
                for d in done {
                    self.remove_port(&d.network, &d.port).await;
                }
                return Err(e);
            }
            done.push(p);
        }
        Ok(())
    }

    async fn add_one(&self, vm: &str, p: &NetPort) -> Result<()> {
        let mut table = self.table.lock().await;
        let net = table
            .get_mut(&p.network)
            .ok_or_else(|| no_such(&p.network))?;
        let st = net
            .run
            .as_mut()
            .and_then(Active::switch_mut)
            .ok_or_else(|| DaemonError::NetworkState {
                name: p.network.clone(),
                state: "inactive, or not a virtnet-vswitch network".into(),
                hint: format!("start it with `virtnet net-start {}` first", p.network),
            })?;
        if let Some(old) = st.ports.get(&p.port) {
            return Err(DaemonError::Conflict(format!(
                "network '{}' has a port '{}' of VM '{}' already",
                p.network, p.port, old.vm
            )));
        }
        let port = Port {
            vm: vm.into(),
            socket: p.socket.clone(),
            queues: p.queues,
            policy: p.policy.clone(),
        };
        let dir = self.net_dir(&p.network);
        let dir = st.in_dir.then_some(dir.as_path());
        switch::request(&st.control, &add_port(dir, &p.port, &port)).await?;
        st.ports.insert(p.port.clone(), port);
        if let Err(e) = self.save_status(st) {
            tracing::error!(network = %p.network, error = %e, "cannot save the network status");
        }
        Ok(())
    }

    /// Gives port `port` of network `network` the policy of `iface` (its `<bandwidth>`,
    /// `<vlan>`, `<port isolated>`), replaced whole by the switch (`set-policy`); returns the
    /// policy it had, to put back if what follows fails.
    pub async fn set_port_policy(
        &self,
        network: &str,
        port: &str,
        iface: &Interface,
    ) -> Result<PortPolicy> {
        let policy = super::policy::port_policy(iface)?;
        self.set_policy(network, port, policy).await
    }

    /// Sets a port's policy on its switch and in the network's status; returns the old one.
    pub async fn set_policy(
        &self,
        network: &str,
        port: &str,
        policy: PortPolicy,
    ) -> Result<PortPolicy> {
        let mut table = self.table.lock().await;
        let st = table
            .get_mut(network)
            .ok_or_else(|| no_such(network))?
            .run
            .as_mut()
            .and_then(Active::switch_mut)
            .ok_or_else(|| DaemonError::NetworkState {
                name: network.into(),
                state: "inactive, or not a virtnet-vswitch network".into(),
                hint: format!("start it with `virtnet net-start {network}` first"),
            })?;
        let Some(old) = st.ports.get(port).map(|p| p.policy.clone()) else {
            return Err(DaemonError::Conflict(format!(
                "network '{network}' has no port '{port}'"
            )));
        };
        switch::request(
            &st.control,
            &Request::SetPolicy {
                name: port.to_string(),
                policy: policy.clone(),
            },
        )
        .await?;
        if let Some(p) = st.ports.get_mut(port) {
            p.policy = policy;
        }
        if let Err(e) = self.save_status(st) {
            tracing::error!(network, error = %e, "cannot save the network status");
        }
        Ok(old)
    }

    /// Removes port `port` from network `network` (the switch, the record, the socket file).
    pub async fn remove_port(&self, network: &str, port: &str) {
        let mut table = self.table.lock().await;
        let Some(st) = table
            .get_mut(network)
            .and_then(|n| n.run.as_mut())
            .and_then(Active::switch_mut)
        else {
            return;
        };
        let Some(p) = st.ports.remove(port) else {
            return;
        };
        if let Err(e) = switch::request(
            &st.control,
            &Request::DelPort {
                name: port.to_string(),
            },
        )
        .await
        {
            tracing::warn!(network, port, error = %e, "cannot remove a port from the switch");
        }
        let _ = std::fs::remove_file(&p.socket);
        if let Err(e) = self.save_status(st) {
            tracing::error!(network, error = %e, "cannot save the network status");
        }
    }

    /// Removes every port of `vm` (it stopped), and forgets its NICs on Open vSwitch networks
    /// (their ports went with the VM's plan's undo).
    pub async fn release_vm(&self, vm: &str) {
        self.release_ovs_vm(vm);
        let mut owned: Vec<(String, String)> = Vec::new();
        {
            let table = self.table.lock().await;
            for (n, net) in table.iter() {
                if let Some(st) = net.switch() {
                    for (port, p) in &st.ports {
                        if p.vm == vm {
                            owned.push((n.clone(), port.clone()));
                        }
                    }
                }
            }
        }
        for (n, port) in owned {
            self.remove_port(&n, &port).await;
        }
    }
}

impl Networks {
    /// A NIC of `vm` left QEMU: removes its switch port, if it had one (found by its
    /// vhost-user socket).
    pub async fn release_interface(&self, vm: &str, iface: &Interface) {
        self.release_ovs_interface(vm, iface);
        let InterfaceKind::VhostUser { socket: Some(sock) } = &iface.kind else {
            return;
        };
        let path = PathBuf::from(&sock.path.value);
        let found: Option<(String, String)> = {
            let table = self.table.lock().await;
            table.iter().find_map(|(n, net)| {
                net.switch().and_then(|st| {
                    st.ports
                        .iter()
                        .find(|(_, p)| p.vm == vm && p.socket == path)
                        .map(|(port, _)| (n.clone(), port.clone()))
                })
            })
        };
        if let Some((n, port)) = found {
            self.remove_port(&n, &port).await;
        }
    }
}
