//! A NIC's `<vlan>`, `<port isolated>`, `<bandwidth>` and `<filterref>`, mapped onto the
//! switch's [`PortPolicy`]: the one place that says what a switch port enforces for a NIC.

use virtnet_conf::interface::{FilterPart as ConfPart, Interface, IpLearning, Rate};
use virtnet_vswitch_control::{
    FilterPart, NativeMode, NativeVlan, PortFilter, PortPolicy, PortVlan, TokenBucket,
};

use crate::error::{DaemonError, Result};

/// The policy the switch port of `iface` enforces. Refused (a user error naming the
/// element): a `<filterref>` that [`virtnet_conf::interface::FilterRef::resolve`] refuses.
/// `floor` is refused by the validation layer before this is reached.
pub fn port_policy(iface: &Interface) -> Result<PortPolicy> {
    let vlan = iface.vlan.as_ref().map(|v| PortVlan {
        tags: v.tags.iter().map(|t| t.id).collect(),
        trunk: v.trunk,
        native: v.tags.iter().find_map(|t| {
            let mode = match t.native_mode.as_deref()? {
                "tagged" => NativeMode::Tagged,
                _ => NativeMode::Untagged,
            };
            Some(NativeVlan { id: t.id, mode })
        }),
    });
    let bucket = |r: &Option<Rate>| {
        r.as_ref().and_then(|r| {
            Some(TokenBucket {
                average_kib: r.average?,
                peak_kib: r.peak,
                burst_kib: r.burst,
            })
        })
    };
    let (inbound, outbound) = match &iface.bandwidth {
        Some(b) => (bucket(&b.inbound), bucket(&b.outbound)),
        None => (None, None),
    };
    let filter = match &iface.filterref {
        None => None,
        Some(f) => {
            let tf = f.resolve().map_err(|e| DaemonError::InvalidXml {
                problems: vec![e.located()],
            })?;
            Some(PortFilter {
                mac: iface.mac().map(|m| m.to_string()).unwrap_or_default(),
                parts: tf.parts.iter().map(|p| part(*p)).collect(),
                ips: tf
                    .ips
                    .iter()
                    .filter_map(|ip| match ip {
                        std::net::IpAddr::V4(v4) => Some(*v4),
                        std::net::IpAddr::V6(_) => None,
                    })
                    .collect(),
                learn: tf.learning == IpLearning::FirstUsed,
            })
        }
    };
    Ok(PortPolicy {
        vlan,
        isolated: iface.port_isolated.as_ref().is_some_and(|p| p.value),
        inbound,
        outbound,
        filter,
    })
}

/// The vhost-user NIC a switch-network NIC runs as (`resolved`), as conf's checks of the
/// live domain and the hot-plug plan see it: without its `<filterref>`, which the switch port
/// enforces ([`port_policy`]) and which conf refuses on a vhost-user NIC (there it would have
/// to act on a host tap). The live definition keeps it.
pub fn without_port_filter(resolved: &Interface) -> Interface {
    Interface {
        filterref: None,
        ..resolved.clone()
    }
}

fn part(p: ConfPart) -> FilterPart {
    match p {
        ConfPart::NoMacSpoofing => FilterPart::NoMacSpoofing,
        ConfPart::NoIpSpoofing => FilterPart::NoIpSpoofing,
        ConfPart::NoArpSpoofing => FilterPart::NoArpSpoofing,
        ConfPart::AllowDhcp => FilterPart::AllowDhcp,
        ConfPart::AllowArp => FilterPart::AllowArp,
        ConfPart::NoOtherL2Traffic => FilterPart::NoOtherL2Traffic,
    }
}
