//! OVN's Northbound database as a live migration needs it: reading and changing the options of
//! the logical switch port a NIC's `iface-id` names (`requested-chassis`,
//! `activation-strategy`, ovn-nb(5)), so that OVN moves the port from the source chassis to the
//! destination's.
//!
//! How: virtnet runs `ovn-nbctl` ([`Nbctl`]), for the reasons it runs `ovs-vsctl` for Open
//! vSwitch ports ([`crate::ovs`]): one call is one OVSDB transaction (the options set and
//! removed together or not at all), the client side of OVN's schema stays with the OVN project,
//! there is no maintained Rust OVSDB client, and a migration changes a port twice (a process
//! each, a few milliseconds). Every call has `--timeout`, so a hung database cannot hang
//! virtnetd; `--db` names the database (`virtnetd --ovn-nb`), as virtnet is not the cloud
//! management system and is told where OVN's Northbound database is.

mod nbctl;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use nbctl::Nbctl;

/// `options:requested-chassis` of a logical switch port (ovn-nb(5)): the chassis (one, or a
/// comma-separated list: the first is the main one, the others get the port as additional
/// chassis while a migration runs) that may bind it.
pub const REQUESTED_CHASSIS: &str = "requested-chassis";
/// `options:activation-strategy`: `rarp` keeps the port blocked on the additional chassis
/// until the guest sends a RARP there (QEMU's `announce-self` does).
pub const ACTIVATION_STRATEGY: &str = "activation-strategy";

/// A change of one logical switch port's `options`: keys set, keys removed, in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LspOptionsChange {
    /// The logical switch port (its `name`, what a NIC's `iface-id` names).
    pub port: String,
    /// `(key, value)` set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<(String, String)>,
    /// Keys removed (a missing key is fine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl LspOptionsChange {
    /// `port: set k=v, ...; remove k, ...` for plans and messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            let kv: Vec<String> = self.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("set {}", kv.join(" ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("remove {}", self.remove.join(" ")));
        }
        format!("logical switch port {}: {}", self.port, parts.join("; "))
    }

    /// The change that puts `keys` back as they are in `before` (set when they were there,
    /// removed when not).
    pub fn restoring(port: &str, keys: &[&str], before: &BTreeMap<String, String>) -> Self {
        let mut c = LspOptionsChange {
            port: port.to_string(),
            set: Vec::new(),
            remove: Vec::new(),
        };
        for k in keys {
            match before.get(*k) {
                Some(v) => c.set.push((k.to_string(), v.clone())),
                None => c.remove.push(k.to_string()),
            }
        }
        c
    }
}

/// The `ovn-nbctl` commands (after the global options) that make `change` in one transaction:
/// `set Logical_Switch_Port P options:K="V" ... -- remove Logical_Switch_Port P options K ...`.
/// Values are quoted (a chassis list has commas).
pub fn change_args(change: &LspOptionsChange) -> Vec<String> {
    let mut a = Vec::new();
    if !change.set.is_empty() {
        a.extend(["--", "set", "Logical_Switch_Port", &change.port].map(String::from));
        for (k, v) in &change.set {
            a.push(format!("options:{k}=\"{}\"", v.replace('"', "\\\"")));
        }
    }
    for k in &change.remove {
        a.extend(
            [
                "--",
                "remove",
                "Logical_Switch_Port",
                &change.port,
                "options",
                k,
            ]
            .map(String::from),
        );
    }
    a
}

/// Reads `ovn-nbctl --format=json --columns=options find Logical_Switch_Port name=P`: `None`
/// when no such port, else its options.
pub fn parse_options(json: &str) -> Option<Option<BTreeMap<String, String>>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let rows = v.get("data")?.as_array()?;
    let Some(row) = rows.first() else {
        return Some(None);
    };
    // ["map", [["key", "value"], ...]]
    let pairs = row.get(0)?.get(1)?.as_array()?;
    let mut m = BTreeMap::new();
    for p in pairs {
        m.insert(
            p.get(0)?.as_str()?.to_string(),
            p.get(1)?.as_str()?.to_string(),
        );
    }
    Some(Some(m))
}

#[cfg(test)]
mod tests;
