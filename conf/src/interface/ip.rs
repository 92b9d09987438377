//! IP configuration: `<ip>` and `<route>` (guest side, or host side inside `<source>`), and
//! passt's `<portForward>`.

use std::net::IpAddr;

use super::util::{
    attr_pos, take_choice, take_str, take_uint, take_with, take_yes_no, yes_no, Spanned,
};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

const IP_EXPECTED: &str = "an IPv4 or IPv6 address";

fn take_ip(el: &mut Element, name: &str) -> Result<Option<Spanned<IpAddr>>, ConfError> {
    take_with(el, name, IP_EXPECTED, |v| v.parse().ok())
}

/// `<ip address='192.168.1.2' family='ipv4' prefix='24' peer='192.168.1.1'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddress {
    /// The address.
    pub address: Spanned<IpAddr>,
    /// Prefix length (0 = unset).
    pub prefix: Option<u32>,
    /// Point-to-point peer.
    pub peer: Option<IpAddr>,
    /// Unknown content.
    pub extra: Extra,
}

/// `<route family='ipv4' address='10.0.0.0' prefix='8' gateway='192.168.1.1' metric='1'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `ipv4` / `ipv6`, as written.
    pub family: Option<String>,
    /// Destination network (none: default route).
    pub address: Option<IpAddr>,
    /// Destination netmask (IPv4 alternative to `prefix`).
    pub netmask: Option<IpAddr>,
    /// Destination prefix length.
    pub prefix: Option<u32>,
    /// Next hop.
    pub gateway: Spanned<IpAddr>,
    /// Route metric (0 = unset).
    pub metric: Option<u32>,
    /// Unknown content.
    pub extra: Extra,
}

/// A list of `<ip>` then `<route>` elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpInfo {
    /// Addresses.
    pub ips: Vec<IpAddress>,
    /// Routes.
    pub routes: Vec<Route>,
}

fn family_of(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

impl IpAddress {
    fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let address = take_ip(&mut el, "address")?.ok_or_else(|| ConfError::MissingAttr {
            pos: el.pos,
            element: "ip".into(),
            attr: "address".into(),
            hint: "; e.g. <ip address='192.168.122.10' prefix='24'/>".into(),
        })?;
        if let Some(a) = el.take_attr("family") {
            if a.value != family_of(&address.value) {
                let pos = attr_pos(&el, &a);
                return Err(ConfError::InvalidAttr {
                    pos,
                    element: "ip".into(),
                    attr: "family".into(),
                    value: a.value,
                    expected: format!(
                        "'{}' for address {} (or leave family out)",
                        family_of(&address.value),
                        address.value
                    ),
                });
            }
        }
        let max = if address.value.is_ipv4() { 32 } else { 128 };
        let prefix = take_with(
            &mut el,
            "prefix",
            &format!("a prefix length from 0 to {max}"),
            |v| v.parse::<u32>().ok().filter(|p| *p <= max),
        )?
        .map(|p| p.value)
        .filter(|p| *p > 0);
        let peer = take_ip(&mut el, "peer")?.map(|p| p.value);
        Ok(IpAddress {
            address,
            prefix,
            peer,
            extra: el.into_extra(),
        })
    }

    fn to_element(&self) -> Element {
        Element::new("ip")
            .attr("address", self.address.value)
            .attr("family", family_of(&self.address.value))
            .attr_opt("prefix", self.prefix)
            .attr_opt("peer", self.peer)
            .with_extra(&self.extra)
    }
}

impl Route {
    fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let family = take_choice(&mut el, "family", &["ipv4", "ipv6"])?.map(|f| f.value);
        let address = take_ip(&mut el, "address")?.map(|a| a.value);
        let netmask = take_ip(&mut el, "netmask")?.map(|a| a.value);
        let prefix = take_uint::<u32>(&mut el, "prefix")?.map(|p| p.value);
        let gateway = take_ip(&mut el, "gateway")?.ok_or_else(|| ConfError::MissingAttr {
            pos: el.pos,
            element: "route".into(),
            attr: "gateway".into(),
            hint: "; e.g. <route gateway='192.168.122.1'/>".into(),
        })?;
        let metric = take_uint::<u32>(&mut el, "metric")?
            .map(|m| m.value)
            .filter(|m| *m > 0);
        Ok(Route {
            family,
            address,
            netmask,
            prefix,
            gateway,
            metric,
            extra: el.into_extra(),
        })
    }

    fn to_element(&self) -> Element {
        Element::new("route")
            .attr_opt("family", self.family.as_deref())
            .attr_opt("address", self.address)
            .attr_opt("netmask", self.netmask)
            .attr_opt("prefix", self.prefix)
            .attr("gateway", self.gateway.value)
            .attr_opt("metric", self.metric)
            .with_extra(&self.extra)
    }
}

impl IpInfo {
    /// Takes every `<ip>` and `<route>` child of `parent`.
    pub(crate) fn take_from(parent: &mut Element) -> Result<Self, ConfError> {
        let ips = parent
            .take_children("ip")
            .into_iter()
            .map(IpAddress::from_element)
            .collect::<Result<_, _>>()?;
        let routes = parent
            .take_children("route")
            .into_iter()
            .map(Route::from_element)
            .collect::<Result<_, _>>()?;
        Ok(IpInfo { ips, routes })
    }

    /// Whether there is nothing.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.routes.is_empty()
    }

    /// Appends the `<ip>` then `<route>` elements to `el`.
    pub(crate) fn put_into(&self, el: &mut Element) {
        el.children
            .extend(self.ips.iter().map(IpAddress::to_element));
        el.children
            .extend(self.routes.iter().map(Route::to_element));
    }
}

/// passt `<portForward proto='tcp' address='...' dev='...'><range .../></portForward>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Host address to listen on.
    pub address: Option<IpAddr>,
    /// Host interface to listen on.
    pub dev: Option<Spanned<String>>,
    /// Port ranges.
    pub ranges: Vec<PortRange>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// `<range start='22' end='30' to='2022' exclude='yes'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortRange {
    /// First host port.
    pub start: Option<u16>,
    /// Last host port.
    pub end: Option<u16>,
    /// First guest port.
    pub to: Option<u16>,
    /// Exclude this range from a wider one.
    pub exclude: Option<bool>,
    /// Unknown content.
    pub extra: Extra,
}

fn take_port(el: &mut Element, name: &str) -> Result<Option<u16>, ConfError> {
    Ok(take_with(el, name, "a port number from 1 to 65535", |v| {
        v.parse::<u16>().ok().filter(|p| *p > 0)
    })?
    .map(|p| p.value))
}

impl PortForward {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let pos = el.pos;
        let proto = take_choice(&mut el, "proto", &["tcp", "udp"])?
            .ok_or_else(|| ConfError::MissingAttr {
                pos,
                element: "portForward".into(),
                attr: "proto".into(),
                hint: "; use proto='tcp' or proto='udp'".into(),
            })?
            .value;
        let address = take_ip(&mut el, "address")?.map(|a| a.value);
        let dev = take_str(&mut el, "dev");
        let mut ranges = Vec::new();
        for mut r in el.take_children("range") {
            ranges.push(PortRange {
                start: take_port(&mut r, "start")?,
                end: take_port(&mut r, "end")?,
                to: take_port(&mut r, "to")?,
                exclude: take_yes_no(&mut r, "exclude")?,
                extra: r.into_extra(),
            });
        }
        Ok(PortForward {
            proto,
            address,
            dev,
            ranges,
            pos,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        let mut el = Element::new("portForward")
            .attr("proto", &self.proto)
            .attr_opt("address", self.address)
            .attr_opt("dev", self.dev.as_ref().map(|d| d.value.clone()));
        for r in &self.ranges {
            let mut re = Element::new("range");
            if let Some(start) = r.start {
                re.push_attr("start", start);
                if let Some(end) = r.end {
                    re.push_attr("end", end);
                }
                if let Some(to) = r.to {
                    re.push_attr("to", to);
                }
            }
            if let Some(x) = r.exclude {
                re.push_attr("exclude", yes_no(x));
            }
            el.children.push(re.with_extra(&r.extra));
        }
        el.with_extra(&self.extra)
    }
}
