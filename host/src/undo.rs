//! Undo steps: a record of what was created, and how to revert it.

use serde::{Deserialize, Serialize};
use virtnet_conf::interface::MacAddr;

use crate::api::HostNet;
use crate::cgroup::CgroupGroup;
use crate::dac::DacGrant;
use crate::error::{HostError, Result};
use crate::script::ScriptRun;
use crate::vf::SavedVf;

/// One step that reverts one host change. Plain data: it is stored as JSON (the VM's
/// `host_resources.undo` in the daemon's status file, `{"undo":"delete_link",...}`) and
/// applied later, after a restart. Applying is idempotent: a step whose object is already
/// gone succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum HostUndo {
    /// Delete a link we created (tap, macvtap). `ifindex` guards against deleting another
    /// device that reused the name.
    DeleteLink {
        /// Interface name.
        name: String,
        /// Index it had when created.
        ifindex: Option<u32>,
    },
    /// Take a port off a bridge.
    DetachFromBridge {
        /// The port (tap).
        port: String,
        /// The bridge it was attached to.
        bridge: String,
    },
    /// Remove a tap's Open vSwitch port ([`crate::ovs`]). Idempotent: a missing port is fine.
    OvsDelPort {
        /// The OVS bridge it was added to.
        bridge: String,
        /// The port (the tap's name).
        port: String,
    },
    /// Give a link back a MAC it had (e.g. the lower device of a passthrough macvtap).
    SetMac {
        /// Interface name.
        name: String,
        /// The MAC to set.
        mac: MacAddr,
    },
    /// Give a VF back its saved MAC, VLAN and driver.
    RestoreVf(SavedVf),
    /// Run an interface's `<downscript>` (recorded once its `<script>`, if any, succeeded).
    /// Not idempotent: the script decides what running it twice does.
    RunScript(ScriptRun),
    /// Remove the VM's cgroup (after QEMU exited: undo runs newest first, and the group is
    /// made before anything else of the VM).
    RemoveCgroup(CgroupGroup),
    /// Remove a tap's `<bandwidth>` limits ([`crate::shaping`]): its nft table, and its root
    /// qdisc if the device still has index `ifindex`. Idempotent.
    Unshape {
        /// The tap.
        dev: String,
        /// Its index when shaped.
        ifindex: u32,
    },
    /// Give a file QEMU's user was made owner of back to its original owner (or drop this
    /// VM's hold when another VM still holds it): see [`crate::dac`]. Idempotent.
    RestoreOwner(DacGrant),
    /// Delete an nftables table virtnet loaded (a tap's filter: [`crate::nwfilter`]).
    /// Idempotent: a missing table is fine.
    DeleteNftTable {
        /// Its family (`bridge`).
        family: String,
        /// Its name.
        name: String,
    },
}

impl HostUndo {
    /// Performs the step on `host`.
    pub fn apply(&self, host: &dyn HostNet) -> Result<()> {
        match self {
            HostUndo::DeleteLink { name, ifindex } => host.delete_link(name, *ifindex),
            HostUndo::DetachFromBridge { port, bridge } => host.detach_from_bridge(port, bridge),
            HostUndo::OvsDelPort { port, .. } => host.ovs_del_port(port),
            HostUndo::SetMac { name, mac } => host.set_mac(name, *mac),
            HostUndo::RestoreVf(saved) => host.restore_vf(saved),
            HostUndo::RunScript(run) => host.run_script(run),
            HostUndo::RemoveCgroup(group) => host.remove_cgroup(group),
            HostUndo::Unshape { dev, ifindex } => host.unshape(dev, *ifindex),
            HostUndo::DeleteNftTable { family, name } => host.delete_nft_table(family, name),
            // The filesystem, not the network: the same on every host.
            HostUndo::RestoreOwner(grant) => crate::dac::release(grant),
        }
    }
}

/// Undo steps in the order things were done; [`UndoStack::rollback`] applies them in reverse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoStack {
    steps: Vec<HostUndo>,
}

impl UndoStack {
    /// An empty stack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a step (after the change it reverts succeeded).
    pub fn push(&mut self, step: HostUndo) {
        self.steps.push(step);
    }

    /// Records several steps, in order.
    pub fn extend(&mut self, steps: impl IntoIterator<Item = HostUndo>) {
        self.steps.extend(steps);
    }

    /// The recorded steps, oldest first.
    pub fn steps(&self) -> &[HostUndo] {
        &self.steps
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True if nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Takes the steps out (e.g. to keep them for when the VM stops), leaving it empty.
    pub fn take(&mut self) -> Vec<HostUndo> {
        std::mem::take(&mut self.steps)
    }

    /// Applies every step, newest first, continuing past failures; empties the stack and
    /// returns the errors (empty = clean rollback).
    pub fn rollback(&mut self, host: &dyn HostNet) -> Vec<HostError> {
        let mut errors = Vec::new();
        while let Some(step) = self.steps.pop() {
            if let Err(e) = step.apply(host) {
                errors.push(e);
            }
        }
        errors
    }
}

impl From<Vec<HostUndo>> for UndoStack {
    fn from(steps: Vec<HostUndo>) -> Self {
        UndoStack { steps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vf::PciAddr;

    /// The stored form is the one status files written by earlier versions hold (as the VM
    /// executor's former `UndoRecord`), and it reads back to the same steps.
    #[test]
    fn stored_form_round_trips() {
        let steps = vec![
            HostUndo::DeleteLink {
                name: "vnet0".into(),
                ifindex: Some(7),
            },
            HostUndo::DetachFromBridge {
                port: "vnet0".into(),
                bridge: "br0".into(),
            },
            HostUndo::SetMac {
                name: "eth0".into(),
                mac: "52:54:00:aa:bb:cc".parse().unwrap(),
            },
            HostUndo::RestoreVf(SavedVf {
                addr: "0000:03:10.2".parse::<PciAddr>().unwrap(),
                pf: "eth1".into(),
                index: 2,
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                vlan: 10,
                qos: 0,
                driver: Some("ixgbevf".into()),
                managed: false,
            }),
        ];
        let json = serde_json::to_string(&steps).unwrap();
        assert_eq!(
            json,
            r#"[{"undo":"delete_link","name":"vnet0","ifindex":7},{"undo":"detach_from_bridge","port":"vnet0","bridge":"br0"},{"undo":"set_mac","name":"eth0","mac":"52:54:00:aa:bb:cc"},{"undo":"restore_vf","pci":"0000:03:10.2","pf":"eth1","index":2,"mac":"02:00:00:00:00:01","vlan":10,"qos":0,"driver":"ixgbevf","managed":false}]"#
        );
        assert_eq!(serde_json::from_str::<Vec<HostUndo>>(&json).unwrap(), steps);
    }

    /// A downscript is stored with everything needed to run it after a restart.
    #[test]
    fn downscript_stored_form() {
        let step = HostUndo::RunScript(ScriptRun {
            kind: crate::script::ScriptKind::Down,
            path: "/etc/virtnet/ifdown".into(),
            ifname: "vnet3".into(),
            nic: "net1".into(),
            log: Some("/run/virtnet/vms/vm1/qemu.log".into()),
            timeout: std::time::Duration::from_secs(10),
        });
        let json = serde_json::to_string(&step).unwrap();
        assert_eq!(
            json,
            r#"{"undo":"run_script","kind":"down","path":"/etc/virtnet/ifdown","ifname":"vnet3","nic":"net1","log":"/run/virtnet/vms/vm1/qemu.log","timeout_ms":10000}"#
        );
        assert_eq!(serde_json::from_str::<HostUndo>(&json).unwrap(), step);
    }

    /// A VM's cgroup is stored with every directory, to be removed after a restart.
    #[test]
    fn cgroup_stored_form() {
        use crate::cgroup::{CgroupDir, CgroupVersion, Controller};
        let step = HostUndo::RemoveCgroup(CgroupGroup {
            version: CgroupVersion::V1,
            dirs: vec![
                CgroupDir {
                    path: "/sys/fs/cgroup/memory/virtnet/u1".into(),
                    controllers: vec![Controller::Memory],
                },
                CgroupDir {
                    path: "/sys/fs/cgroup/cpu,cpuacct/virtnet/u1".into(),
                    controllers: vec![Controller::Cpu],
                },
            ],
        });
        let json = serde_json::to_string(&step).unwrap();
        assert_eq!(
            json,
            r#"{"undo":"remove_cgroup","version":"v1","dirs":[{"path":"/sys/fs/cgroup/memory/virtnet/u1","controllers":["memory"]},{"path":"/sys/fs/cgroup/cpu,cpuacct/virtnet/u1","controllers":["cpu"]}]}"#
        );
        assert_eq!(serde_json::from_str::<HostUndo>(&json).unwrap(), step);
    }

    /// A tap's limits are stored with its name and index, removed after a restart.
    #[test]
    fn unshape_stored_form() {
        let step = HostUndo::Unshape {
            dev: "vnet3".into(),
            ifindex: 12,
        };
        let json = serde_json::to_string(&step).unwrap();
        assert_eq!(json, r#"{"undo":"unshape","dev":"vnet3","ifindex":12}"#);
        assert_eq!(serde_json::from_str::<HostUndo>(&json).unwrap(), step);
    }

    /// A tap filter's table is stored by family and name, to be deleted after a restart.
    #[test]
    fn nft_table_stored_form() {
        let step = HostUndo::DeleteNftTable {
            family: "bridge".into(),
            name: "virtnet-filter-vm1-vnet0".into(),
        };
        let json = serde_json::to_string(&step).unwrap();
        assert_eq!(
            json,
            r#"{"undo":"delete_nft_table","family":"bridge","name":"virtnet-filter-vm1-vnet0"}"#
        );
        assert_eq!(serde_json::from_str::<HostUndo>(&json).unwrap(), step);
    }

    /// A damaged state file is refused when read, not when the step is applied.
    #[test]
    fn damaged_values_are_refused() {
        for bad in [
            r#"{"undo":"set_mac","name":"eth0","mac":"+a:+b:+c:+d:+e:+f"}"#,
            r#"{"undo":"restore_vf","pci":"0000:03:10.+2","pf":"eth1","index":2,"mac":"02:00:00:00:00:01","vlan":0,"qos":0,"driver":null}"#,
        ] {
            assert!(serde_json::from_str::<HostUndo>(bad).is_err(), "{bad}");
        }
        let old = r#"{"undo":"restore_vf","pci":"0000:03:10.2","pf":"eth1","index":2,"mac":"02:00:00:00:00:01","vlan":0,"qos":0,"driver":null}"#;
        let HostUndo::RestoreVf(saved) = serde_json::from_str(old).unwrap() else {
            panic!("not a VF restore")
        };
        assert!(saved.managed, "records without `managed` were managed");
    }
}
