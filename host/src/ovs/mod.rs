//! Open vSwitch ports for taps (`<virtualport type='openvswitch'>`), as libvirt makes them
//! (src/util/virnetdevopenvswitch.c): the tap virtnet created is added to an OVS bridge with
//! `external_ids` naming the VM and the interface (what OVN's ovn-controller binds logical
//! ports by), its `<vlan>` as the port's `tag`/`trunks`, and removed again at unplug, stop,
//! failure and recovery.
//!
//! How: virtnet runs `ovs-vsctl` ([`Vsctl`]), as libvirt does, rather than speaking OVSDB's
//! JSON-RPC (RFC 7047) itself. Adding a port with its `external_ids` and VLAN is one
//! `ovs-vsctl` invocation made of several commands, which ovs-vsctl sends as one OVSDB
//! transaction (all applied or none) and then waits until ovs-vswitchd has applied it (so the
//! port exists in the datapath when the call returns). Doing that by hand would mean an
//! OVSDB client (JSON-RPC framing, the schema's `Bridge`/`Port`/`Interface` rows and their
//! UUID references, `wait`/`mutate` operations, `next_cfg` to wait for ovs-vswitchd), all of
//! it already in ovs-vsctl, which the Open vSwitch project maintains together with the schema;
//! there is no maintained Rust OVSDB client crate. The cost is one process per port change
//! (a few milliseconds), irrelevant next to a VM start. Every call has `--timeout`, so a hung
//! ovsdb-server cannot hang virtnetd.
//!
//! The OVSDB socket: ovs-vsctl's default (`unix:/var/run/openvswitch/db.sock`) unless
//! virtnetd is told another (`virtnetd --ovsdb unix:PATH`, [`Vsctl::with_db`]).

mod vsctl;

use serde::{Deserialize, Serialize};
use virtnet_conf::interface::MacAddr;

pub use vsctl::Vsctl;

/// The VLAN settings of an OVS port (`<vlan>`), as libvirt writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsVlan {
    /// The tags, in order (at least one).
    pub tags: Vec<u16>,
    /// `trunk='yes'` (or several tags): the port's `trunks`; else its `tag` (the first).
    pub trunk: bool,
    /// The native VLAN (`nativeMode` on one tag): `vlan_mode=native-tagged|native-untagged`
    /// and `tag=` that tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<OvsNative>,
}

/// A trunk's native VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsNative {
    /// The native VLAN's id.
    pub tag: u16,
    /// `nativeMode='tagged'` (else untagged).
    pub tagged: bool,
}

/// One tap to add to an OVS bridge with the `external_ids` libvirt sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsPortSpec {
    /// The OVS bridge (`<source bridge>`).
    pub bridge: String,
    /// The tap (port and interface name).
    pub port: String,
    /// `external_ids:iface-id` (`<parameters interfaceid>`).
    pub iface_id: String,
    /// `external_ids:attached-mac`: the guest's MAC.
    pub mac: MacAddr,
    /// `external_ids:vm-id`: the domain's UUID.
    pub vm_id: String,
    /// `external_ids:port-profile` (`<parameters profileid>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    /// `<vlan>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<OvsVlan>,
}

/// One Open vSwitch interface as [`Vsctl::interfaces`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsInterface {
    /// Its name (for virtnet's ports, the tap's).
    pub name: String,
    /// `external_ids:vm-id`, if set (libvirt's and virtnet's ports have it).
    pub vm_id: Option<String>,
}

/// Reads `ovs-vsctl --format=json --columns=name,external_ids list Interface`.
pub fn parse_interfaces(json: &str) -> Option<Vec<OvsInterface>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let rows = v.get("data")?.as_array()?;
    rows.iter()
        .map(|row| {
            let name = row.get(0)?.as_str()?.to_string();
            // ["map", [["key", "value"], ...]]
            let pairs = row.get(1)?.get(1)?.as_array()?;
            let vm_id = pairs.iter().find_map(|p| {
                (p.get(0)?.as_str()? == "vm-id").then(|| p.get(1)?.as_str().map(String::from))?
            });
            Some(OvsInterface { name, vm_id })
        })
        .collect()
}

/// The port's columns for `add-port` (`tag=42`, `trunks=42,43`, `vlan_mode=...`), as libvirt
/// writes them.
fn vlan_columns(v: &OvsVlan) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = v.native {
        let mode = if n.tagged {
            "native-tagged"
        } else {
            "native-untagged"
        };
        out.push(format!("vlan_mode={mode}"));
        out.push(format!("tag={}", n.tag));
    }
    if v.trunk {
        let list: Vec<String> = v.tags.iter().map(u16::to_string).collect();
        out.push(format!("trunks={}", list.join(",")));
    } else if let Some(t) = v.tags.first() {
        if v.native.is_none() {
            out.push(format!("tag={t}"));
        }
    }
    out
}

/// The `ovs-vsctl` commands (after the global options) that add `spec`'s port in one
/// transaction: `-- --may-exist add-port BR TAP [vlan] -- set Interface TAP external_ids:...`.
pub fn add_port_args(spec: &OvsPortSpec) -> Vec<String> {
    let mut a: Vec<String> = ["--", "--may-exist", "add-port", &spec.bridge, &spec.port]
        .map(String::from)
        .to_vec();
    if let Some(v) = &spec.vlan {
        a.extend(vlan_columns(v));
    }
    let mut ids = vec![
        format!("external_ids:attached-mac=\"{}\"", spec.mac),
        format!("external_ids:iface-id=\"{}\"", spec.iface_id),
        format!("external_ids:vm-id=\"{}\"", spec.vm_id),
    ];
    if let Some(p) = &spec.profile_id {
        ids.push(format!("external_ids:port-profile=\"{p}\""));
    }
    ids.push("external_ids:iface-status=active".into());
    for id in ids {
        a.extend(["--", "set", "Interface", &spec.port].map(String::from));
        a.push(id);
    }
    a
}

/// The `ovs-vsctl` commands that remove port `port` wherever it is (libvirt's form); a
/// missing port is fine.
pub fn del_port_args(port: &str) -> Vec<String> {
    ["--", "--if-exists", "del-port", port]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests;
