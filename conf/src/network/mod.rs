//! Network definitions (`<network>`), libvirt style, for networks virtnet runs itself.
//!
//! The one network type today is a `virtnet-vswitch` (a vhost-user L2 switch):
//!
//! ```xml
//! <network>
//!   <name>sw0</name>
//!   <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>
//!   <virtualport type='virtnet-vswitch'/>
//!   <uplink dev='sw0-up'>
//!     <ip address='10.20.0.1' prefix='24'/>
//!   </uplink>
//! </network>
//! ```
//!
//! `<uuid>` is optional: virtnetd generates one at define when it is absent, and keeps a
//! network's UUID when it is redefined without one (as libvirt does).
//! `<uplink>` is optional: a tap the switch adds as a port, so guests reach the host; with
//! `<ip>`, the host side of the tap gets that address. Guests join with
//! `<interface type='network'><source network='sw0'/></interface>` (vhost-user: the domain
//! needs shared memory).
//!
//! The other kind is libvirt's Open vSwitch network ([`ovs`]): `<forward mode='bridge'/>`,
//! `<bridge name='br-int'/>`, `<virtualport type='openvswitch'/>`, optional `<vlan>` and
//! `<portgroup>`s. It has no process: its NICs are taps on that OVS bridge
//! ([`NetworkKind`] tells the two apart).

use std::net::Ipv4Addr;

use crate::domain::Uuid;
use crate::error::ConfError;
use crate::xml::{parse_document, write_document, Element, Limits};

pub mod ovs;
pub use ovs::{OvsNetwork, PortGroup};

/// The `<virtualport type>` of a network served by `virtnet-vswitch`.
pub const VSWITCH_TYPE: &str = "virtnet-vswitch";

/// A network definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `<name>`: 1–32 characters of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
    pub name: String,
    /// `<uuid>` (the daemon fills it in at define when absent).
    pub uuid: Option<Uuid>,
    /// What runs the network.
    pub kind: NetworkKind,
}

/// The kinds of network virtnet serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkKind {
    /// A `virtnet-vswitch` process (`<virtualport type='virtnet-vswitch'/>`).
    Vswitch {
        /// `<uplink>`: the switch's tap port towards the host.
        uplink: Option<Uplink>,
    },
    /// An existing Open vSwitch bridge (`<forward mode='bridge'/>` with
    /// `<virtualport type='openvswitch'/>`): no process, NICs are taps on the bridge.
    Openvswitch(OvsNetwork),
}

/// `<uplink dev='TAP'>`, with an optional `<ip address prefix>` for the host side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The tap's name (1–15 characters, a Linux interface name).
    pub dev: String,
    /// The host's address on the tap and its prefix length.
    pub ip: Option<(Ipv4Addr, u8)>,
}

fn unknown_vswitch(el: &Element) -> Option<ConfError> {
    if let Some(a) = el.attrs.first() {
        return Some(ConfError::unsupported(
            a.pos,
            format!(
                "unknown attribute '{}' in <{}>: a virtnet-vswitch network has only <name>, <uuid>, \
                 <virtualport type='virtnet-vswitch'/> and <uplink dev='...'><ip address='...' \
                 prefix='...'/></uplink>",
                a.name, el.name
            ),
        ));
    }
    if let Some(c) = el.children.first() {
        return Some(ConfError::unsupported(
            c.pos,
            format!(
                "unknown element <{}> in <{}>: a virtnet-vswitch network has only <name>, <uuid>, \
                 <virtualport type='virtnet-vswitch'/> and <uplink dev='...'><ip address='...' \
                 prefix='...'/></uplink>",
                c.name, el.name
            ),
        ));
    }
    if let Some(t) = &el.text {
        return Some(ConfError::unsupported(
            el.pos,
            format!("unexpected text '{t}' in <{}>", el.name),
        ));
    }
    None
}

/// Whether `name` is a valid network name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_ifname(dev: &str) -> bool {
    !dev.is_empty()
        && dev.len() <= 15
        && dev != "."
        && dev != ".."
        && dev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Reads and validates a network definition. Every error is positioned.
pub fn parse_network(text: &str) -> Result<Network, ConfError> {
    let limits = Limits {
        max_bytes: 64 << 10,
        max_depth: 8,
        max_elements: 64,
    };
    let mut root = parse_document(text, limits)?;
    if root.name != "network" {
        return Err(ConfError::WrongRoot {
            pos: root.pos,
            expected: "network".into(),
            found: root.name.clone(),
        });
    }
    let (name, name_pos) = match root.take_one_text("name")? {
        Some(n) => n,
        None => {
            return Err(ConfError::MissingElement {
                pos: root.pos,
                element: "network".into(),
                child: "name".into(),
                hint: "; give one, e.g. <name>sw0</name>".into(),
            })
        }
    };
    if !valid_name(&name) {
        return Err(ConfError::unsupported(
            name_pos,
            format!(
                "network name '{name}' is not valid: use 1-32 characters of letters, digits, \
                 '_', '.', '-', not starting with '.' or '-'"
            ),
        ));
    }
    let uuid = match root.take_one_text("uuid")? {
        None => None,
        Some((u, pos)) => Some(Uuid::parse(&u).ok_or_else(|| ConfError::InvalidText {
            pos,
            element: "uuid".into(),
            value: u.clone(),
            expected: "32 hexadecimal digits, e.g. '3e3fce45-4f53-4fa7-bb32-11f34168b82b'".into(),
        })?),
    };
    if root.get_child("forward").is_some() {
        let ovs = ovs::parse(&mut root)?;
        return Ok(Network {
            name,
            uuid,
            kind: NetworkKind::Openvswitch(ovs),
        });
    }
    let mut vp = root.require_one(
        "virtualport",
        "a network virtnet runs needs <virtualport type='virtnet-vswitch'/>",
    )?;
    let ty = vp.require_attr("type", "use type='virtnet-vswitch'")?;
    if ty.value == "openvswitch" {
        return Err(ConfError::unsupported(
            vp.pos,
            "an Open vSwitch network needs <forward mode='bridge'/> and <bridge name='BR'/> \
             (libvirt's form); add them, or use type='virtnet-vswitch' for a virtnet switch",
        ));
    }
    if ty.value != VSWITCH_TYPE {
        return Err(vp.invalid_attr(
            &ty,
            "'virtnet-vswitch' (the only network type virtnet runs)",
        ));
    }
    if let Some(e) = unknown_vswitch(&vp) {
        return Err(e);
    }
    let uplink = match root.take_one("uplink")? {
        None => None,
        Some(mut up) => {
            let dev = up.require_attr("dev", "name the tap, e.g. dev='sw0-up'")?;
            if !valid_ifname(&dev.value) {
                return Err(up.invalid_attr(
                    &dev,
                    "a Linux interface name: 1-15 letters, digits, '_', '.', '-'",
                ));
            }
            let ip = match up.take_one("ip")? {
                None => None,
                Some(mut ip) => {
                    let addr = ip.require_attr("address", "e.g. address='10.20.0.1'")?;
                    let a: Ipv4Addr = ip.parse_attr(&addr, "an IPv4 address")?;
                    let prefix = ip.require_attr("prefix", "e.g. prefix='24'")?;
                    let p: u8 = ip.parse_attr(&prefix, "a prefix length from 1 to 32")?;
                    if !(1..=32).contains(&p) {
                        return Err(ip.invalid_attr(&prefix, "a prefix length from 1 to 32"));
                    }
                    if let Some(e) = unknown_vswitch(&ip) {
                        return Err(e);
                    }
                    Some((a, p))
                }
            };
            if let Some(e) = unknown_vswitch(&up) {
                return Err(e);
            }
            Some(Uplink { dev: dev.value, ip })
        }
    };
    if let Some(e) = unknown_vswitch(&root) {
        return Err(e);
    }
    Ok(Network {
        name,
        uuid,
        kind: NetworkKind::Vswitch { uplink },
    })
}

impl Network {
    /// The switch's uplink (a `virtnet-vswitch` network's; an Open vSwitch network has none).
    pub fn uplink(&self) -> Option<&Uplink> {
        match &self.kind {
            NetworkKind::Vswitch { uplink } => uplink.as_ref(),
            NetworkKind::Openvswitch(_) => None,
        }
    }

    /// The Open vSwitch network's settings, if it is one.
    pub fn ovs(&self) -> Option<&OvsNetwork> {
        match &self.kind {
            NetworkKind::Openvswitch(o) => Some(o),
            NetworkKind::Vswitch { .. } => None,
        }
    }

    /// The canonical XML (what `net-dumpxml` prints).
    pub fn to_xml(&self) -> String {
        let head = Element::new("network")
            .child(Element::new("name").text(&self.name))
            .child_opt(self.uuid.map(|u| Element::new("uuid").text(u)));
        if let NetworkKind::Openvswitch(o) = &self.kind {
            return write_document(&o.append_to(head));
        }
        let uplink = self.uplink().map(|u| {
            Element::new("uplink").attr("dev", &u.dev).child_opt(
                u.ip.map(|(a, p)| Element::new("ip").attr("address", a).attr("prefix", p)),
            )
        });
        let root = head
            .child(Element::new("virtualport").attr("type", VSWITCH_TYPE))
            .child_opt(uplink);
        write_document(&root)
    }
}

#[cfg(test)]
mod tests;
