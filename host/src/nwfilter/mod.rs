//! `<filterref>` on a tap: libvirt's clean-traffic and its parts (as
//! [`virtnet_conf::interface::FilterRef::resolve`] expands them) enforced with nftables, one
//! table per NIC ([`table_name`]: deleting it is the whole undo).
//!
//! A tap that is a port of a Linux bridge (`type='bridge'`) is filtered in the bridge family
//! (prerouting/postrouting, rules keyed on `iifname`/`oifname`); a tap on no bridge
//! (`type='ethernet'`) in the netdev family (ingress/egress hooks bound to the tap itself):
//! [`FilterFamily`]. The rules are in [`rules`]; each drop goes through a named counter
//! ([`DropCounter`]), so forged frames are counted; [`status`] reads the counters and the
//! learnt address back.

pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use virtnet_conf::interface::{FilterPart, IpLearning, MacAddr, TrafficFilter};

use crate::error::{HostError, Result};
use crate::nft;
use crate::undo::HostUndo;

/// Every filter table's name starts with this (how leftovers are found: [`tables`]).
pub const TABLE_PREFIX: &str = "virtnet-filter-";
/// The set holding the learnt address (learning filters only).
pub const LEARNED_SET: &str = "learned";

/// What a NIC's filter enforces: a [`TrafficFilter`] as plain, serialisable data (it is part
/// of a plan step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSpec {
    /// The filter name as written (`clean-traffic`).
    pub name: String,
    /// The parts enforced.
    pub parts: BTreeSet<FilterPart>,
    /// The guest's addresses (`<parameter name='IP'>`); empty when learning.
    pub ips: Vec<Ipv4Addr>,
    /// Learn the first address the guest uses (no `IP` parameter).
    pub learning: bool,
}

impl From<&TrafficFilter> for FilterSpec {
    fn from(f: &TrafficFilter) -> Self {
        FilterSpec {
            name: f.name.clone(),
            parts: f.parts.clone(),
            // conf refuses every IP parameter that is not IPv4.
            ips: f
                .ips
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            learning: f.learning == IpLearning::FirstUsed,
        }
    }
}

/// Where a tap's filter hooks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterFamily {
    /// The tap is a bridge port: bridge family, prerouting (from the guest) and postrouting
    /// (to the guest), keyed on the tap's name.
    Bridge,
    /// The tap is on no bridge: netdev family, ingress and egress hooks of the tap.
    Netdev,
}

impl FilterFamily {
    /// Both, in the order [`status`] looks.
    pub const ALL: [FilterFamily; 2] = [FilterFamily::Bridge, FilterFamily::Netdev];

    /// nftables' name of the family.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterFamily::Bridge => "bridge",
            FilterFamily::Netdev => "netdev",
        }
    }
}

/// One tap's filter: what to enforce, on which tap, for which MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapFilter {
    /// The nftables table ([`table_name`]).
    pub table: String,
    /// The tap.
    pub tap: String,
    /// Bridge port or tap on its own.
    pub family: FilterFamily,
    /// The guest's MAC (frames from the guest must carry it).
    pub mac: MacAddr,
    /// What to enforce.
    pub filter: FilterSpec,
}

/// `virtnet-filter-VM-TAP`: the VM's name with every character nft's names do not allow
/// replaced by `_` (and cut to 64), then the tap's (unique on the host: the table is too).
pub fn table_name(vm: &str, tap: &str) -> String {
    let vm: String = vm
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{TABLE_PREFIX}{vm}-{tap}")
}

/// Whether `table` is the filter table of tap `tap` (made by [`table_name`] for any VM).
pub fn is_table_of(table: &str, tap: &str) -> bool {
    table.starts_with(TABLE_PREFIX)
        && table
            .strip_suffix(tap)
            .is_some_and(|rest| rest.ends_with('-'))
}

/// A named counter of dropped frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropCounter {
    /// From the guest with another source MAC.
    MacSpoofing,
    /// IPv4 from the guest with a source address not its own.
    IpSpoofing,
    /// ARP from the guest: other sender MAC or address, other opcode, not Ethernet/IPv4.
    ArpSpoofing,
    /// From the guest: another ethertype (or a VLAN tag hiding one).
    OtherL2,
    /// To the guest: another ethertype.
    OtherL2In,
}

impl DropCounter {
    /// Every counter.
    pub const ALL: [DropCounter; 5] = [
        DropCounter::MacSpoofing,
        DropCounter::IpSpoofing,
        DropCounter::ArpSpoofing,
        DropCounter::OtherL2,
        DropCounter::OtherL2In,
    ];

    /// Its name in the table (and in reports).
    pub fn name(self) -> &'static str {
        match self {
            DropCounter::MacSpoofing => "mac_spoofing",
            DropCounter::IpSpoofing => "ip_spoofing",
            DropCounter::ArpSpoofing => "arp_spoofing",
            DropCounter::OtherL2 => "other_l2",
            DropCounter::OtherL2In => "other_l2_in",
        }
    }

    /// Whether `f`'s rules count into it.
    pub fn used_by(self, f: &TapFilter) -> bool {
        let has = |p| f.filter.parts.contains(&p);
        match self {
            DropCounter::MacSpoofing => has(FilterPart::NoMacSpoofing),
            DropCounter::IpSpoofing => has(FilterPart::NoIpSpoofing),
            DropCounter::ArpSpoofing => has(FilterPart::NoArpSpoofing),
            DropCounter::OtherL2 => {
                has(FilterPart::NoOtherL2Traffic)
                    || has(FilterPart::NoIpSpoofing)
                    || has(FilterPart::NoArpSpoofing)
            }
            DropCounter::OtherL2In => has(FilterPart::NoOtherL2Traffic),
        }
    }
}

/// Loads `f`'s table (replacing a leftover of the same name) in one transaction; returns the
/// undo that deletes it.
pub fn load(f: &TapFilter) -> Result<HostUndo> {
    if !f.filter.learning && f.filter.ips.is_empty() {
        return Err(HostError::Nft {
            op: format!("load filter table {}", f.table),
            message: "a filter without learning needs the guest's addresses".into(),
        });
    }
    nft::apply(rules::ruleset(f))?;
    Ok(HostUndo::DeleteNftTable {
        family: f.family.as_str().into(),
        name: f.table.clone(),
    })
}

/// What a loaded filter saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterStatus {
    /// Frames dropped, per counter name ([`DropCounter::name`]).
    pub dropped: BTreeMap<String, u64>,
    /// The address learnt (learning filters, once the guest used one).
    pub learned: Option<Ipv4Addr>,
}

/// The counters and learnt address of filter table `table` (in either family); `None` if
/// it does not exist.
pub fn status(table: &str) -> Result<Option<FilterStatus>> {
    Ok(find(table)?.map(|(_, objs)| status_of(&objs)))
}

/// [`status`] with the family the table is in.
pub fn status_in(table: &str) -> Result<Option<(FilterFamily, FilterStatus)>> {
    Ok(find(table)?.map(|(f, objs)| (f, status_of(&objs))))
}

/// The family filter table `table` is in, `None` if it does not exist.
pub fn family_of(table: &str) -> Result<Option<FilterFamily>> {
    Ok(find(table)?.map(|(f, _)| f))
}

fn find(table: &str) -> Result<Option<(FilterFamily, Vec<Value>)>> {
    for family in FilterFamily::ALL {
        if let Some(objs) = nft::list_table(family.as_str(), table)? {
            return Ok(Some((family, objs)));
        }
    }
    Ok(None)
}

fn status_of(objs: &[Value]) -> FilterStatus {
    let mut st = FilterStatus::default();
    for o in objs {
        if let Some(c) = o.get("counter") {
            if let (Some(name), Some(p)) = (c["name"].as_str(), c["packets"].as_u64()) {
                st.dropped.insert(name.to_string(), p);
            }
        }
        if let Some(s) = o.get("set").filter(|s| s["name"] == LEARNED_SET) {
            st.learned = s["elem"]
                .as_array()
                .and_then(|e| e.first())
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok());
        }
    }
    st
}

/// The filter tables present (names starting with [`TABLE_PREFIX`]), in both families.
pub fn tables() -> Result<Vec<(FilterFamily, String)>> {
    let mut all = Vec::new();
    for family in FilterFamily::ALL {
        all.extend(
            nft::list_tables(family.as_str())?
                .into_iter()
                .filter(|t| t.starts_with(TABLE_PREFIX))
                .map(|t| (family, t)),
        );
    }
    Ok(all)
}

#[cfg(test)]
mod tests;
