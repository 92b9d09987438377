//! `<filterref>`: libvirt's nwfilter reference, and what virtnet makes of it.
//!
//! virtnet has no nwfilter driver with user-defined filters. It knows libvirt's stock
//! `clean-traffic` filter and the parts it is built from, and expands a `<filterref>` into a
//! [`TrafficFilter`]: the one description both enforcers (nftables on taps, in
//! `virtnet_host`, and the switch's port filter, in `virtnet-vswitch`) implement. The
//! expansion lives here and nowhere else.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::util::{require_str, Spanned};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// `<filterref filter='clean-traffic'><parameter name='IP' value='...'/></filterref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRef {
    /// The nwfilter name.
    pub filter: Spanned<String>,
    /// `<parameter name value>` children, in input order.
    pub params: Vec<FilterParam>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content, kept as written.
    pub extra: Extra,
}

/// One `<parameter name='IP' value='10.0.0.2'/>` of a `<filterref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterParam {
    /// The variable name (`IP`, `MAC`, `CTRL_IP_LEARNING`, ...).
    pub name: String,
    /// Its value as written.
    pub value: String,
    /// Position of the `<parameter>` element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// A building block of libvirt's `clean-traffic` filter (each is also a libvirt filter of
/// the same name, usable on its own in `<filterref filter='...'>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterPart {
    /// `no-mac-spoofing`: frames from the guest must carry its own source MAC.
    NoMacSpoofing,
    /// `no-ip-spoofing`: IPv4 from the guest must carry one of its addresses (0.0.0.0 only
    /// for a DHCP request).
    NoIpSpoofing,
    /// `no-arp-spoofing`: ARP from the guest must name its own MAC and one of its addresses,
    /// and be a request or a reply.
    NoArpSpoofing,
    /// `allow-dhcp`: DHCP requests out, replies in.
    AllowDhcp,
    /// `allow-arp`: ARP in both directions.
    AllowArp,
    /// `no-other-l2-traffic`: in both directions only IPv4, ARP and QEMU's announce-self
    /// RARP pass; every other ethertype is dropped (as clean-traffic does in libvirt).
    NoOtherL2Traffic,
}

impl FilterPart {
    /// libvirt's name of the filter.
    pub fn name(self) -> &'static str {
        match self {
            FilterPart::NoMacSpoofing => "no-mac-spoofing",
            FilterPart::NoIpSpoofing => "no-ip-spoofing",
            FilterPart::NoArpSpoofing => "no-arp-spoofing",
            FilterPart::AllowDhcp => "allow-dhcp",
            FilterPart::AllowArp => "allow-arp",
            FilterPart::NoOtherL2Traffic => "no-other-l2-traffic",
        }
    }

    /// Every part, in libvirt's order inside `clean-traffic`.
    pub const ALL: [FilterPart; 6] = [
        FilterPart::NoMacSpoofing,
        FilterPart::NoIpSpoofing,
        FilterPart::AllowDhcp,
        FilterPart::NoArpSpoofing,
        FilterPart::AllowArp,
        FilterPart::NoOtherL2Traffic,
    ];
}

/// Serialised as libvirt's filter name (`"no-mac-spoofing"`), read back by that name.
#[cfg(feature = "serde")]
impl serde::Serialize for FilterPart {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for FilterPart {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        FilterPart::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown filter part '{s}'")))
    }
}

/// The filter names virtnet enforces (what a refusal lists).
pub const SUPPORTED_FILTERS: &[&str] = &[
    "clean-traffic",
    "no-mac-spoofing",
    "no-ip-spoofing",
    "no-arp-spoofing",
    "allow-dhcp",
    "allow-arp",
    "no-other-l2-traffic",
];

/// The `<parameter>` names virtnet understands.
pub const SUPPORTED_FILTER_PARAMS: &[&str] = &["IP", "CTRL_IP_LEARNING"];

/// How the guest's addresses are known (libvirt's `CTRL_IP_LEARNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpLearning {
    /// `<parameter name='IP'>` given: exactly those addresses, nothing learnt.
    Fixed,
    /// No `IP` parameter (`CTRL_IP_LEARNING` absent or `any`): the first IPv4 address the
    /// guest uses as a source (a DHCP-assigned address or an ARP sender) becomes its address.
    FirstUsed,
}

/// What a `<filterref>` asks to enforce, expanded ([`FilterRef::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficFilter {
    /// The filter name as written (for messages and reports).
    pub name: String,
    /// The parts to enforce.
    pub parts: BTreeSet<FilterPart>,
    /// Addresses from `<parameter name='IP'>`, in order.
    pub ips: Vec<IpAddr>,
    /// How the guest's addresses are known.
    pub learning: IpLearning,
}

impl TrafficFilter {
    /// Whether `part` is enforced.
    pub fn has(&self, part: FilterPart) -> bool {
        self.parts.contains(&part)
    }
}

impl FilterRef {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let filter = require_str(
            &mut el,
            "filter",
            "name the nwfilter, e.g. filter='clean-traffic'",
        )?;
        let mut params = Vec::new();
        for mut p in el.take_children("parameter") {
            let name = p.require_attr("name", "; e.g. <parameter name='IP' value='10.0.0.2'/>")?;
            let value =
                p.require_attr("value", "; e.g. <parameter name='IP' value='10.0.0.2'/>")?;
            params.push(FilterParam {
                name: name.value,
                value: value.value,
                pos: p.pos,
                extra: p.into_extra(),
            });
        }
        Ok(FilterRef {
            filter,
            params,
            pos: el.pos,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        let mut el = Element::new("filterref").attr("filter", &self.filter.value);
        for p in &self.params {
            el = el.child(
                Element::new("parameter")
                    .attr("name", &p.name)
                    .attr("value", &p.value)
                    .with_extra(&p.extra),
            );
        }
        el.with_extra(&self.extra)
    }

    /// Expands the reference into what virtnet enforces, or refuses it: an unknown filter
    /// name (the message lists the supported ones), an unknown parameter, an `IP` that is
    /// not an IPv4 address, or `CTRL_IP_LEARNING` other than `any` without an `IP`.
    pub fn resolve(&self) -> Result<TrafficFilter, ConfError> {
        let name = self.filter.value.as_str();
        let parts: BTreeSet<FilterPart> = if name == "clean-traffic" {
            FilterPart::ALL.into_iter().collect()
        } else if let Some(p) = FilterPart::ALL.into_iter().find(|p| p.name() == name) {
            [p].into_iter().collect()
        } else {
            return Err(ConfError::unsupported(
                self.filter.pos,
                format!(
                    "<filterref filter='{name}'>: virtnet has no nwfilter driver and enforces \
                     only libvirt's stock filters {}; use one of those or remove the \
                     <filterref>",
                    SUPPORTED_FILTERS.join(", ")
                ),
            ));
        };
        let mut ips = Vec::new();
        let mut learning_param: Option<&FilterParam> = None;
        for p in &self.params {
            match p.name.as_str() {
                "IP" => match p.value.parse::<IpAddr>() {
                    Ok(ip @ IpAddr::V4(_)) => ips.push(ip),
                    _ => {
                        return Err(ConfError::unsupported(
                            p.pos,
                            format!(
                                "<parameter name='IP' value='{}'>: expected an IPv4 address \
                                 such as 10.0.0.2 (the stock filters cover IPv4 only)",
                                p.value
                            ),
                        ))
                    }
                },
                "CTRL_IP_LEARNING" => learning_param = Some(p),
                other => {
                    return Err(ConfError::unsupported(
                        p.pos,
                        format!(
                            "<parameter name='{other}'> of <filterref>: virtnet understands \
                             only {}; remove it",
                            SUPPORTED_FILTER_PARAMS.join(", ")
                        ),
                    ))
                }
            }
        }
        if let Some(p) = learning_param {
            if p.value != "any" || !ips.is_empty() {
                return Err(ConfError::unsupported(
                    p.pos,
                    format!(
                        "<parameter name='CTRL_IP_LEARNING' value='{}'>: virtnet learns the \
                         first address the guest uses (libvirt's 'any') when no IP parameter \
                         is given; give the guest's addresses as <parameter name='IP'> \
                         instead, or use value='any' without IP",
                        p.value
                    ),
                ));
            }
        }
        let learning = if ips.is_empty() {
            IpLearning::FirstUsed
        } else {
            IpLearning::Fixed
        };
        Ok(TrafficFilter {
            name: name.to_string(),
            parts,
            ips,
            learning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, Limits};

    fn filterref(xml: &str) -> FilterRef {
        FilterRef::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()
    }

    #[test]
    fn clean_traffic_expands_to_every_part_and_learns_without_ip() {
        let f = filterref("<filterref filter='clean-traffic'/>")
            .resolve()
            .unwrap();
        assert_eq!(f.parts.len(), FilterPart::ALL.len());
        assert_eq!(f.learning, IpLearning::FirstUsed);
        assert!(f.ips.is_empty());
    }

    #[test]
    fn ip_parameters_are_kept_in_order_and_round_trip() {
        let r = filterref(
            "<filterref filter='no-ip-spoofing'><parameter name='IP' value='10.0.0.2'/>\
             <parameter name='IP' value='10.0.0.3'/></filterref>",
        );
        let f = r.resolve().unwrap();
        assert_eq!(f.parts, [FilterPart::NoIpSpoofing].into_iter().collect());
        assert_eq!(f.learning, IpLearning::Fixed);
        assert_eq!(f.ips.len(), 2);
        let el = r.to_element();
        assert_eq!(el.children.len(), 2);
        assert_eq!(el.children[1].get_attr("value"), Some("10.0.0.3"));
    }

    #[test]
    fn unknown_filters_and_parameters_are_refused_with_what_works() {
        let e = filterref("<filterref filter='my-own'/>")
            .resolve()
            .unwrap_err();
        assert!(
            e.to_string().contains("clean-traffic, no-mac-spoofing"),
            "{e}"
        );
        let e = filterref(
            "<filterref filter='clean-traffic'><parameter name='DHCPSERVER' value='1.2.3.4'/>\
             </filterref>",
        )
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("DHCPSERVER"), "{e}");
        let e = filterref(
            "<filterref filter='clean-traffic'><parameter name='IP' value='fe80::1'/></filterref>",
        )
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("IPv4"), "{e}");
        let e = filterref(
            "<filterref filter='clean-traffic'><parameter name='CTRL_IP_LEARNING' value='dhcp'/>\
             </filterref>",
        )
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("CTRL_IP_LEARNING"), "{e}");
    }
}
