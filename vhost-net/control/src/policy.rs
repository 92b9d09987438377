//! What a port enforces besides forwarding (libvirt's `<vlan>`, `<port isolated>`,
//! `<bandwidth>` and `<filterref>` of a NIC on a virtnet-vswitch network). virtnetd maps a
//! NIC's definition onto a [`PortPolicy`] in one place; the switch enforces it.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::port::InvalidPort;

/// Everything a port enforces. The default enforces nothing (a plain access port in the
/// untagged network, not isolated, no limits, no filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PortPolicy {
    /// VLAN membership (`<vlan>`); `None`: untagged frames only, in the default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<PortVlan>,
    /// `<port isolated='yes'/>`: this port reaches only ports that are not isolated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolated: bool,
    /// Rate limit of traffic towards the guest (libvirt `<inbound>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<TokenBucket>,
    /// Rate limit of traffic from the guest (libvirt `<outbound>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<TokenBucket>,
    /// Anti-spoofing filter (`<filterref>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<PortFilter>,
}

impl PortPolicy {
    /// Whether the policy enforces nothing.
    pub fn is_default(&self) -> bool {
        *self == PortPolicy::default()
    }

    /// Refuses policies that make no sense (a VLAN id over 4095, an access port with several
    /// tags, a native VLAN not in the trunk, a zero rate). The switch enforces every part of
    /// a policy (VLAN, isolation, rate limits, filter); a part it did not enforce would be
    /// refused here, never ignored.
    pub fn check_enforced(&self, port: &str) -> Result<(), InvalidPort> {
        let bad = |what: String| Err(InvalidPort(format!("port '{port}': {what}")));
        if let Some(v) = &self.vlan {
            if let Some(e) = v.problem() {
                return bad(e);
            }
        }
        for (dir, b) in [("inbound", &self.inbound), ("outbound", &self.outbound)] {
            if let Some(b) = b {
                if b.average_kib == 0 {
                    return bad(format!(
                        "{dir} average rate 0 would drop everything; give a rate in KiB/s above 0 or remove <{dir}>"
                    ));
                }
                if b.peak_kib == Some(0) {
                    return bad(format!(
                        "{dir} peak rate 0 would drop everything; give a rate in KiB/s above 0 or remove peak"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Largest 802.1Q VLAN id.
pub const MAX_VLAN_ID: u16 = 4095;

impl PortVlan {
    /// What is wrong with these VLAN settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.tags.is_empty() {
            return Some("<vlan> without a <tag id>: give at least one VLAN id".into());
        }
        if let Some(t) = self.tags.iter().find(|t| **t > MAX_VLAN_ID) {
            return Some(format!(
                "VLAN id {t} is out of range, use 0 to {MAX_VLAN_ID}"
            ));
        }
        if !self.trunk && self.tags.len() > 1 {
            return Some(format!(
                "{} VLAN tags on a port that is not a trunk: set <vlan trunk='yes'> or keep one <tag>",
                self.tags.len()
            ));
        }
        if let Some(n) = &self.native {
            if !self.trunk {
                return Some(
                    "nativeMode is for trunks: set <vlan trunk='yes'> or remove nativeMode".into(),
                );
            }
            if !self.tags.contains(&n.id) {
                return Some(format!(
                    "native VLAN {} is not one of the trunk's tags",
                    n.id
                ));
            }
        }
        None
    }
}

/// A port's VLANs (libvirt `<vlan trunk='yes'><tag id nativeMode/></vlan>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortVlan {
    /// VLAN ids 0..=4095. An access port has exactly one and `trunk` false: the guest sends
    /// and receives untagged frames, tagged with this id inside the switch.
    pub tags: Vec<u16>,
    /// A trunk: the guest sends and receives 802.1Q-tagged frames of every id in `tags`.
    #[serde(default)]
    pub trunk: bool,
    /// On a trunk, the id that travels untagged (or, `Tagged`, tagged and also untagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeVlan>,
}

/// libvirt's `nativeMode` on one `<tag>` of a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeVlan {
    /// The native VLAN id (one of the trunk's tags).
    pub id: u16,
    /// `untagged`: frames of this VLAN leave to the guest untagged; `tagged`: they leave
    /// tagged. Either way, untagged frames from the guest belong to it.
    pub mode: NativeMode,
}

/// libvirt's `nativeMode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NativeMode {
    /// `nativeMode='tagged'`.
    Tagged,
    /// `nativeMode='untagged'`.
    Untagged,
}

/// One direction's token bucket, in libvirt's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    /// Average rate, KiB/s (libvirt `average`).
    pub average_kib: u64,
    /// Peak rate, KiB/s (libvirt `peak`): the rate a burst drains at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_kib: Option<u64>,
    /// Bucket size, KiB (libvirt `burst`); `None`: the switch picks one that lets
    /// `average_kib` through with its own scheduling granularity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_kib: Option<u64>,
}

/// A port's anti-spoofing filter: libvirt's `clean-traffic` parts (virtnetd expands the
/// `<filterref>` with `virtnet_conf`'s `FilterRef::resolve` and copies it here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFilter {
    /// The guest's MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The parts enforced.
    pub parts: Vec<FilterPart>,
    /// The guest's IPv4 addresses; empty with `learn`: the first one it uses.
    #[serde(default)]
    pub ips: Vec<Ipv4Addr>,
    /// Learn the guest's address from the first IPv4 source or ARP sender it uses.
    #[serde(default)]
    pub learn: bool,
}

/// The parts of libvirt's `clean-traffic` (same meaning as `virtnet_conf`'s `FilterPart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterPart {
    /// Frames from the guest carry its MAC.
    NoMacSpoofing,
    /// IPv4 from the guest carries its address (0.0.0.0 only for DHCP).
    NoIpSpoofing,
    /// ARP from the guest names its MAC and address and is a request or reply.
    NoArpSpoofing,
    /// DHCP requests out, replies in.
    AllowDhcp,
    /// ARP in both directions.
    AllowArp,
    /// From the guest, only IPv4, ARP and QEMU's announce-self RARP.
    NoOtherL2Traffic,
}
