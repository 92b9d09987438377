//! Open vSwitch networks (libvirt's `<forward mode='bridge'/>` with `<bridge name='BR'/>` and
//! `<virtualport type='openvswitch'/>`): no process of their own.
//!
//! - `net-start` checks that Open vSwitch has the bridge (`ovs-vsctl br-exists`; refused
//!   otherwise, nothing recorded) and marks the network active (`RUN_DIR/networks/NAME.active`,
//!   the definition it started with, so it stays active across a virtnetd restart).
//! - `net-destroy` marks it inactive. As libvirt does for a `<forward mode='bridge'/>` network
//!   (networkShutdownNetwork has nothing to tear down for one), it is not refused while VMs use
//!   it: their ports stay on the bridge until the VMs stop or the NICs are detached; new NICs
//!   cannot join until it is started again.
//! - A NIC `<interface type='network'><source network='NAME'/>` resolves at start and attach to
//!   the bridge form ([`bridge_form`]: the one rule), `<interface type='bridge'><source
//!   bridge='BR'/><virtualport type='openvswitch'>` with the interface's, port group's and
//!   network's settings merged, which the VM plan runs like any bridge-form Open vSwitch NIC
//!   (tap, `AddOvsPort` with libvirt's `external_ids`, its undo at unplug, stop and failure).
//! - Live XML shows such a NIC as libvirt does ([`network_form`]): `type='network'` with
//!   `<source network='NAME' portgroup='..' bridge='BR'/>` and the merged `<virtualport>` and
//!   `<vlan>`. Which NICs those are is kept per VM NIC ([`OvsNics`], in
//!   `RUN_DIR/networks/ovs-nics.json`) from start/attach until stop/detach, independent of the
//!   network's state (a NIC stays on its network after `net-destroy`, as in libvirt).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use virtnet_conf::domain::Uuid;
use virtnet_conf::interface::{InterfaceKind, Spanned};
use virtnet_conf::network::{parse_network, Network, OvsNetwork};
use virtnet_conf::Interface;
use virtnet_qemu::validate::port_name;
use virtnet_vm::VmError;

use super::{scan, Active, Net, Networks};
use crate::error::{DaemonError, Result};
use crate::store::atomic::{remove_durable, write_atomic};

/// What `RUN_DIR/networks/NAME.active` records about an active Open vSwitch network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OvsActive {
    /// The network.
    pub name: String,
    /// The definition it was started with (canonical XML): its NICs join that bridge until it
    /// is started again.
    pub xml: String,
}

/// A VM NIC that joined an Open vSwitch network: what its live XML shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OvsNic {
    /// The VM.
    pub vm: String,
    /// The network.
    pub network: String,
    /// `<source portgroup>` as the NIC gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portgroup: Option<String>,
    /// The bridge it joined.
    pub bridge: String,
}

/// The NICs on Open vSwitch networks, by `VM-MAC`, kept in a file.
pub(super) struct OvsNics {
    path: PathBuf,
    map: Mutex<BTreeMap<String, OvsNic>>,
}

impl OvsNics {
    /// Reads `path` (absent or unreadable: none).
    pub(super) fn load(path: &Path) -> OvsNics {
        let map = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        OvsNics {
            path: path.to_path_buf(),
            map: Mutex::new(map),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OvsNic>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, map: &BTreeMap<String, OvsNic>) {
        let written = serde_json::to_vec_pretty(map)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                write_atomic(&self.path, &b, 0o600).map_err(|(a, e)| format!("{a}: {e}"))
            });
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "cannot save the NICs on Open vSwitch networks");
        }
    }

    fn get(&self, vm: &str, mac: &str) -> Option<OvsNic> {
        self.lock().get(&port_name(vm, mac)).cloned()
    }

    fn insert(&self, mac: &str, nic: OvsNic) {
        let mut map = self.lock();
        map.insert(port_name(&nic.vm, mac), nic);
        self.save(&map);
    }

    fn remove(&self, vm: &str, mac: &str) {
        let mut map = self.lock();
        if map.remove(&port_name(vm, mac)).is_some() {
            self.save(&map);
        }
    }

    fn remove_vm(&self, vm: &str) {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, n| n.vm != vm);
        if map.len() != before {
            self.save(&map);
        }
    }
}

/// `iface` (`type='network'` on Open vSwitch network `net`) in the bridge form the VM plan
/// runs ([`OvsNetwork::bridge_form`], the one rule; an `interfaceid` generated when none was
/// given); a refusal names the NIC and the network.
pub fn bridge_form(iface: &Interface, net: &str, o: &OvsNetwork) -> Result<Interface> {
    o.bridge_form(iface, Uuid::new_random).map_err(|reason| {
        DaemonError::vm(VmError::UnsupportedInterface {
            nic: iface.describe(),
            reason: format!("on Open vSwitch network '{net}': {reason}"),
        })
    })
}

/// `iface` (the bridge form a NIC on an Open vSwitch network runs as) as live XML shows it:
/// `type='network'`, `<source network portgroup bridge>`, with the merged virtual port and VLAN
/// (libvirt shows the actual ones). `None` when it is not `nic`'s bridge form.
pub fn network_form(iface: &Interface, nic: &OvsNic) -> Option<Interface> {
    let InterfaceKind::Bridge { bridge } = &iface.kind else {
        return None;
    };
    if bridge.value != nic.bridge || !iface.virtualport.as_ref()?.is_openvswitch() {
        return None;
    }
    let mut shown = iface.clone();
    shown.kind = InterfaceKind::Network {
        network: Spanned::at(nic.network.clone(), bridge.pos),
        portgroup: nic.portgroup.clone(),
        portid: None,
        bridge: Some(bridge.value.clone()),
    };
    Some(shown)
}

impl Networks {
    /// Uses `vsctl` to ask Open vSwitch about networks' bridges (`virtnetd --ovsdb`); the
    /// default is ovs-vsctl's own database. Set once, before networks start.
    pub fn set_vsctl(&self, vsctl: virtnet_host::Vsctl) {
        let _ = self.vsctl.set(vsctl);
    }

    fn active_path(&self, name: &str) -> PathBuf {
        self.run_dir.join(format!("{name}.active"))
    }

    /// `net-start` of Open vSwitch network `def`: refused unless Open vSwitch has its bridge;
    /// then recorded active.
    pub(super) async fn start_ovs(&self, def: &Network, o: &OvsNetwork) -> Result<OvsActive> {
        let vsctl = self.vsctl.get().cloned().unwrap_or_default();
        let bridge = o.bridge.clone();
        let db = vsctl.db().to_string();
        let found = tokio::task::spawn_blocking(move || vsctl.bridge_exists(&bridge))
            .await
            .map_err(|e| DaemonError::Internal(format!("ovs-vsctl task: {e}")))?
            .map_err(|e| {
                DaemonError::vm(VmError::Host {
                    what: format!("start network '{}'", def.name),
                    source: e,
                })
            })?;
        if !found {
            return Err(DaemonError::NetworkState {
                name: def.name.clone(),
                state: format!(
                    "not startable: Open vSwitch has no bridge '{}' (ovs-vsctl br-exists, \
                     database {db})",
                    o.bridge
                ),
                hint: format!(
                    "create it with `ovs-vsctl add-br {}`, or give the network another \
                     <bridge name> with net-define",
                    o.bridge
                ),
            });
        }
        let active = OvsActive {
            name: def.name.clone(),
            xml: def.to_xml(),
        };
        let path = self.active_path(&def.name);
        let bytes = serde_json::to_vec_pretty(&active)
            .map_err(|e| DaemonError::Internal(format!("network status: {e}")))?;
        write_atomic(&path, &bytes, 0o600).map_err(|(a, e)| DaemonError::store(a, &path, e))?;
        Ok(active)
    }

    /// `net-destroy` of an active Open vSwitch network: its record removed (its NICs' ports
    /// stay, as in libvirt).
    pub(super) fn destroy_ovs(&self, name: &str) -> Result<()> {
        let path = self.active_path(name);
        remove_durable(&path).map_err(|e| DaemonError::store("remove", &path, e))?;
        tracing::info!(network = %name, "Open vSwitch network stopped (its VMs' ports stay until they stop or detach)");
        Ok(())
    }

    /// At load: the Open vSwitch networks that were active stay active (no process to adopt);
    /// a record without an Open vSwitch definition is removed.
    pub(super) fn load_ovs_active(&self, table: &mut BTreeMap<String, Net>) {
        for (name, path) in scan(&self.run_dir, "active") {
            let active: Option<OvsActive> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .filter(|a: &OvsActive| parse_network(&a.xml).is_ok_and(|d| d.ovs().is_some()));
            match (active, table.get_mut(&name)) {
                (Some(a), Some(net)) if net.def.ovs().is_some() => {
                    tracing::info!(network = %name, "Open vSwitch network still active");
                    net.run = Some(Active::Ovs(a));
                }
                _ => {
                    tracing::warn!(path = %path.display(), "stale Open vSwitch network record; removed");
                    let _ = remove_durable(&path);
                }
            }
        }
    }

    /// Records the NICs of `vm` that joined Open vSwitch networks: each of `given` (as
    /// defined) that [`Self::resolve`] made the bridge form in `resolved` (same order).
    pub fn record_ovs(&self, vm: &str, given: &[Interface], resolved: &[Interface]) {
        for (g, r) in given.iter().zip(resolved) {
            let (
                InterfaceKind::Network {
                    network, portgroup, ..
                },
                InterfaceKind::Bridge { bridge },
            ) = (&g.kind, &r.kind)
            else {
                continue;
            };
            let Some(mac) = r.mac() else { continue };
            self.ovs_nics.insert(
                &mac.to_string(),
                OvsNic {
                    vm: vm.to_string(),
                    network: network.value.clone(),
                    portgroup: portgroup.clone(),
                    bridge: bridge.value.clone(),
                },
            );
        }
    }

    /// `iface` of `vm` as live XML shows it if it is on an Open vSwitch network.
    pub(super) fn ovs_as_defined(&self, vm: &str, iface: &Interface) -> Option<Interface> {
        let mac = iface.mac()?.to_string();
        network_form(iface, &self.ovs_nics.get(vm, &mac)?)
    }

    /// `vm` stopped: its NICs left their Open vSwitch networks.
    pub(super) fn release_ovs_vm(&self, vm: &str) {
        self.ovs_nics.remove_vm(vm);
    }

    /// A NIC of `vm` was unplugged.
    pub(super) fn release_ovs_interface(&self, vm: &str, iface: &Interface) {
        if let (InterfaceKind::Bridge { .. }, Some(mac)) = (&iface.kind, iface.mac()) {
            self.ovs_nics.remove(vm, &mac.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_conf::network::parse_network;

    const NET: &str = "<network><name>ovs</name><forward mode='bridge'/><bridge name='br-int'/>\
        <virtualport type='openvswitch'/><portgroup name='blue' default='yes'><vlan><tag \
        id='42'/></vlan></portgroup><portgroup name='gold'><virtualport><parameters \
        profileid='gold'/></virtualport></portgroup></network>";

    fn iface(xml: &str) -> Interface {
        let dom = format!(
            "<domain type='qemu'><name>vm1</name><memory unit='MiB'>64</memory>\
             <os><type>hvm</type></os><devices>{xml}</devices></domain>"
        );
        virtnet_conf::load_domain(&dom).unwrap().devices.interfaces[0].clone()
    }

    fn ovs() -> OvsNetwork {
        parse_network(NET).unwrap().ovs().unwrap().clone()
    }

    #[test]
    fn a_network_nic_becomes_the_bridge_form_with_merged_settings() {
        let given = iface(
            "<interface type='network'><mac address='52:54:00:00:00:01'/>\
             <source network='ovs' portgroup='gold'/><virtualport><parameters \
             interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>\
             <model type='virtio'/></interface>",
        );
        let r = bridge_form(&given, "ovs", &ovs()).unwrap();
        assert!(
            matches!(&r.kind, InterfaceKind::Bridge { bridge } if bridge.value == "br-int"),
            "{:?}",
            r.kind
        );
        let vp = r.virtualport.clone().unwrap();
        assert!(vp.is_openvswitch());
        assert_eq!(
            vp.interfaceid.as_deref(),
            Some("09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")
        );
        assert_eq!(vp.profileid.as_deref(), Some("gold"));
        assert_eq!(r.vlan, None, "the gold group has no VLAN, nor the network");
        assert_eq!(r.mac(), given.mac());
        assert_eq!(r.model(), given.model());
        // Shown back as libvirt's live XML shows it.
        let nic = OvsNic {
            vm: "vm1".into(),
            network: "ovs".into(),
            portgroup: Some("gold".into()),
            bridge: "br-int".into(),
        };
        let shown = network_form(&r, &nic).unwrap();
        let xml = virtnet_conf::xml::write_document(&shown.to_element());
        assert!(
            xml.contains("<source network='ovs' portgroup='gold' bridge='br-int'/>"),
            "{xml}"
        );
        assert!(xml.contains("type='openvswitch'"), "{xml}");
        assert!(xml.contains("profileid='gold'"), "{xml}");
        // Another bridge's NIC is not this one.
        let other = OvsNic {
            bridge: "br-ex".into(),
            ..nic
        };
        assert_eq!(network_form(&r, &other), None);
    }

    #[test]
    fn default_portgroup_vlan_and_a_generated_interfaceid() {
        let given = iface(
            "<interface type='network'><mac address='52:54:00:00:00:02'/>\
             <source network='ovs'/><model type='virtio'/></interface>",
        );
        let a = bridge_form(&given, "ovs", &ovs()).unwrap();
        let b = bridge_form(&given, "ovs", &ovs()).unwrap();
        let id = |i: &Interface| i.virtualport.as_ref().unwrap().interfaceid.clone().unwrap();
        assert!(Uuid::parse(&id(&a)).is_some());
        assert_ne!(
            id(&a),
            id(&b),
            "generated per resolution when none was given"
        );
        assert_eq!(a.vlan.unwrap().tags[0].id, 42);
        // The NIC's own VLAN wins.
        let own = iface(
            "<interface type='network'><mac address='52:54:00:00:00:02'/>\
             <source network='ovs'/><vlan><tag id='7'/></vlan></interface>",
        );
        let r = bridge_form(&own, "ovs", &ovs()).unwrap();
        assert_eq!(r.vlan.unwrap().tags[0].id, 7);
    }

    #[test]
    fn refusals_name_the_nic_and_the_network() {
        for (xml, want) in [
            (
                "<source network='ovs' portgroup='red'/>",
                "no port group 'red' (it has: blue, gold)",
            ),
            (
                "<source network='ovs' bridge='br-ex'/>",
                "not the network's bridge 'br-int'",
            ),
            (
                "<source network='ovs' portid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/>",
                "remove portid",
            ),
            (
                "<source network='ovs' portgroup='gold'/><virtualport><parameters \
                 profileid='silver'/></virtualport>",
                "conflicts with the port group's profileid 'gold'",
            ),
        ] {
            let given = iface(&format!(
                "<interface type='network'><mac address='52:54:00:00:00:03'/>{xml}</interface>"
            ));
            let e = bridge_form(&given, "ovs", &ovs()).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains("Open vSwitch network 'ovs'"),
                "{xml}: {e}"
            );
        }
        // The bridge the network has is fine (live XML given back).
        let given = iface(
            "<interface type='network'><mac address='52:54:00:00:00:03'/>\
             <source network='ovs' bridge='br-int'/></interface>",
        );
        assert!(bridge_form(&given, "ovs", &ovs()).is_ok());
    }

    #[test]
    fn nics_are_kept_in_a_file_per_vm_mac() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ovs-nics.json");
        let nics = OvsNics::load(&path);
        let nic = |vm: &str| OvsNic {
            vm: vm.into(),
            network: "ovs".into(),
            portgroup: None,
            bridge: "br-int".into(),
        };
        nics.insert("52:54:00:00:00:01", nic("a"));
        nics.insert("52:54:00:00:00:02", nic("a"));
        nics.insert("52:54:00:00:00:01", nic("b"));
        let again = OvsNics::load(&path);
        assert_eq!(again.get("a", "52:54:00:00:00:02"), Some(nic("a")));
        again.remove("a", "52:54:00:00:00:02");
        again.remove_vm("b");
        let last = OvsNics::load(&path);
        assert_eq!(last.get("a", "52:54:00:00:00:01"), Some(nic("a")));
        assert_eq!(last.get("a", "52:54:00:00:00:02"), None);
        assert_eq!(last.get("b", "52:54:00:00:00:01"), None);
    }
}
