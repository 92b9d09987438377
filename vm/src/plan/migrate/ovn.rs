//! OVN's part of a migration plan: the logical switch ports of the VM's Open vSwitch NICs
//! move from the source's chassis to the destination's as OVN documents it for live migration
//! (ovn-nb(5), `Logical_Switch_Port` options): before the destination's port exists,
//! `requested-chassis=SRC,DST` (the source stays the main chassis, the destination becomes an
//! additional one) and `activation-strategy=rarp` (the destination's port stays blocked until
//! the guest's RARP, which QEMU's `announce-self` sends there, unblocks it); once the guest
//! runs there, `requested-chassis=DST` and no `activation-strategy`. Undone on failure: both
//! options put back as they were (removed when they were not set).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use virtnet_conf::Domain;
use virtnet_host::ovn::{ACTIVATION_STRATEGY, REQUESTED_CHASSIS};
use virtnet_host::LspOptionsChange;

/// What the daemon found out for OVN's part (`virtnetd --ovn-nb`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvnMove {
    /// The source's chassis (its Open vSwitch `external_ids:system-id`).
    pub source_chassis: String,
    /// The destination's chassis.
    pub dest_chassis: String,
    /// Each logical switch port the Northbound database has, by name (a NIC's `iface-id`),
    /// with its `options` before the move. A NIC whose `iface-id` names no port there is not
    /// OVN's and is left alone.
    pub ports: BTreeMap<String, BTreeMap<String, String>>,
}

/// The `interfaceid`s of `live`'s Open vSwitch NICs, in device order: the logical switch
/// ports to look up.
pub fn ovs_iface_ids(live: &Domain) -> Vec<String> {
    live.devices
        .interfaces
        .iter()
        .filter_map(|i| i.virtualport.as_ref().filter(|v| v.is_openvswitch()))
        .filter_map(|v| v.interfaceid.clone())
        .collect()
}

/// The changes for `live`'s ports, in device order: `(begin, restore, complete)` per port.
pub(super) fn port_changes(
    live: &Domain,
    ovn: &OvnMove,
) -> Vec<(LspOptionsChange, LspOptionsChange, LspOptionsChange)> {
    let mut seen = std::collections::BTreeSet::new();
    ovs_iface_ids(live)
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .filter_map(|id| {
            let before = ovn.ports.get(&id)?;
            let begin = LspOptionsChange {
                port: id.clone(),
                set: vec![
                    (
                        REQUESTED_CHASSIS.into(),
                        format!("{},{}", ovn.source_chassis, ovn.dest_chassis),
                    ),
                    (ACTIVATION_STRATEGY.into(), "rarp".into()),
                ],
                remove: vec![],
            };
            let restore =
                LspOptionsChange::restoring(&id, &[REQUESTED_CHASSIS, ACTIVATION_STRATEGY], before);
            let complete = LspOptionsChange {
                port: id,
                set: vec![(REQUESTED_CHASSIS.into(), ovn.dest_chassis.clone())],
                remove: vec![ACTIVATION_STRATEGY.into()],
            };
            Some((begin, restore, complete))
        })
        .collect()
}
