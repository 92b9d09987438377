//! Host-side network settings: `<vlan>`, `<virtualport>`, `<bandwidth>`.

use super::util::{take_choice, take_str, take_uint, take_with};
use crate::domain::Uuid;
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// `<vlan trunk='yes'><tag id='42' nativeMode='untagged'/></vlan>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vlan {
    /// Trunk port: written as `trunk='yes'`; always true with more than one tag.
    pub trunk: bool,
    /// The tags, in order.
    pub tags: Vec<VlanTag>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// One `<tag id='N' nativeMode='tagged|untagged'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanTag {
    /// VLAN id, 0..=4095.
    pub id: u16,
    /// Native VLAN mode for this tag, if it is the native one.
    pub native_mode: Option<String>,
    /// Unknown content.
    pub extra: Extra,
}

impl Vlan {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let pos = el.pos;
        let trunk = take_with(&mut el, "trunk", "'yes' or 'no'", |v| match v {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        })?;
        let mut tags = Vec::new();
        let mut native_seen = false;
        for mut t in el.take_children("tag") {
            let id = take_with(&mut t, "id", "a VLAN id from 0 to 4095", |v| {
                v.parse::<u16>().ok().filter(|n| *n <= 4095)
            })?
            .ok_or_else(|| ConfError::MissingAttr {
                pos: t.pos,
                element: "tag".into(),
                attr: "id".into(),
                hint: "; e.g. <tag id='42'/>".into(),
            })?;
            let native = take_choice(&mut t, "nativeMode", &["tagged", "untagged"])?;
            if let Some(n) = &native {
                if native_seen {
                    return Err(ConfError::unsupported(
                        n.pos,
                        "nativeMode may be set on one <tag> of a <vlan> only",
                    ));
                }
                native_seen = true;
            }
            tags.push(VlanTag {
                id: id.value,
                native_mode: native.map(|n| n.value),
                extra: t.into_extra(),
            });
        }
        if tags.is_empty() {
            return Err(ConfError::MissingElement {
                pos,
                element: "vlan".into(),
                child: "tag".into(),
                hint: "; e.g. <vlan><tag id='42'/></vlan>".into(),
            });
        }
        if let Some(t) = &trunk {
            if !t.value && tags.len() > 1 {
                return Err(ConfError::unsupported(
                    t.pos,
                    "invalid trunk='no' in <vlan>: trunking is required when more than one \
                     <tag> is given; remove trunk='no' or keep one tag",
                ));
            }
        }
        Ok(Vlan {
            trunk: trunk.map_or(tags.len() > 1, |t| t.value),
            tags,
            pos,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        let mut el = Element::new("vlan");
        if self.trunk {
            el.push_attr("trunk", "yes");
        }
        for t in &self.tags {
            el.children.push(
                Element::new("tag")
                    .attr("id", t.id)
                    .attr_opt("nativeMode", t.native_mode.as_deref())
                    .with_extra(&t.extra),
            );
        }
        el.with_extra(&self.extra)
    }
}

/// `<virtualport type='openvswitch'><parameters interfaceid='...'/></virtualport>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualPort {
    /// `802.1Qbg`, `802.1Qbh`, `openvswitch` or `midonet`; none lets the network decide.
    pub kind: Option<String>,
    /// 802.1Qbg manager id.
    pub managerid: Option<String>,
    /// 802.1Qbg type id.
    pub typeid: Option<String>,
    /// 802.1Qbg type id version.
    pub typeidversion: Option<String>,
    /// 802.1Qbg instance UUID.
    pub instanceid: Option<String>,
    /// Open vSwitch / MidoNet interface UUID.
    pub interfaceid: Option<String>,
    /// Port profile (802.1Qbh, Open vSwitch).
    pub profileid: Option<String>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content of `<virtualport>` and of `<parameters>`.
    pub extra: [Extra; 2],
}

impl VirtualPort {
    /// The first 802.1Qbg-only parameter given (`managerid`, `typeid`, `typeidversion`,
    /// `instanceid`), if any: an Open vSwitch port takes only `interfaceid` and `profileid`.
    pub fn qbg_param(&self) -> Option<&'static str> {
        [
            ("instanceid", &self.instanceid),
            ("managerid", &self.managerid),
            ("typeid", &self.typeid),
            ("typeidversion", &self.typeidversion),
        ]
        .into_iter()
        .find_map(|(name, v)| v.is_some().then_some(name))
    }
}

/// The virtual port types libvirt knows.
pub const VIRTUALPORT_TYPES: &[&str] = &["802.1Qbg", "802.1Qbh", "openvswitch", "midonet"];

/// libvirt's buffer for a profile id, with its NUL: ids are shorter.
const PROFILEID_BUF: usize = 40;

impl VirtualPort {
    /// Whether it is an Open vSwitch port (`type='openvswitch'`).
    pub fn is_openvswitch(&self) -> bool {
        self.kind.as_deref() == Some("openvswitch")
    }

    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let pos = el.pos;
        let kind = take_choice(&mut el, "type", VIRTUALPORT_TYPES)?.map(|k| k.value);
        let mut vp = VirtualPort {
            kind,
            pos,
            ..Default::default()
        };
        let mut params_extra = Extra::default();
        if let Some(mut p) = el.take_one("parameters")? {
            for (name, slot) in [
                ("managerid", &mut vp.managerid),
                ("typeid", &mut vp.typeid),
                ("typeidversion", &mut vp.typeidversion),
            ] {
                *slot = take_str(&mut p, name).map(|s| s.value);
            }
            // UUIDs as libvirt reads them (virUUIDParse), kept in canonical form.
            for (name, slot) in [
                ("instanceid", &mut vp.instanceid),
                ("interfaceid", &mut vp.interfaceid),
            ] {
                *slot = take_with(
                    &mut p,
                    name,
                    "a UUID, e.g. '09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'",
                    |v| Uuid::parse(v).map(|u| u.to_string()),
                )?
                .map(|s| s.value);
            }
            // libvirt's profileid is at most 39 bytes (LIBVIRT_PROFILEID_BUF_SIZE).
            vp.profileid = take_with(
                &mut p,
                "profileid",
                "a profile name of 1 to 39 bytes",
                |v| (!v.is_empty() && v.len() < PROFILEID_BUF).then(|| v.to_string()),
            )?
            .map(|s| s.value);
            params_extra = p.into_extra();
        }
        vp.extra = [el.into_extra(), params_extra];
        Ok(vp)
    }

    pub(crate) fn to_element(&self) -> Element {
        let params = Element::new("parameters")
            .attr_opt("managerid", self.managerid.as_deref())
            .attr_opt("typeid", self.typeid.as_deref())
            .attr_opt("typeidversion", self.typeidversion.as_deref())
            .attr_opt("instanceid", self.instanceid.as_deref())
            .attr_opt("interfaceid", self.interfaceid.as_deref())
            .attr_opt("profileid", self.profileid.as_deref())
            .with_extra(&self.extra[1]);
        Element::new("virtualport")
            .attr_opt("type", self.kind.as_deref())
            .child_opt((!params.is_empty()).then_some(params))
            .with_extra(&self.extra[0])
    }
}

/// `<bandwidth><inbound .../><outbound .../></bandwidth>` (tc on the host tap).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bandwidth {
    /// Traffic towards the guest.
    pub inbound: Option<Rate>,
    /// Traffic from the guest.
    pub outbound: Option<Rate>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// One direction's rates, in kibibytes per second (burst in kibibytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rate {
    /// Average rate.
    pub average: Option<u64>,
    /// Peak rate.
    pub peak: Option<u64>,
    /// Guaranteed minimum (inbound, type='network' only).
    pub floor: Option<u64>,
    /// Burst size.
    pub burst: Option<u64>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

impl Rate {
    fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let mut r = Rate {
            pos: el.pos,
            ..Default::default()
        };
        for (name, slot) in [
            ("average", &mut r.average),
            ("peak", &mut r.peak),
            ("floor", &mut r.floor),
            ("burst", &mut r.burst),
        ] {
            *slot = take_uint::<u64>(&mut el, name)?.map(|v| v.value);
        }
        if r.average.is_none() && r.floor.is_none() {
            return Err(ConfError::MissingAttr {
                pos: r.pos,
                element: el.name.clone(),
                attr: "average".into(),
                hint: "; libvirt: missing mandatory average or floor attributes, e.g. \
                       average='1000' (KiB/s)"
                    .into(),
            });
        }
        r.extra = el.into_extra();
        Ok(r)
    }

    fn to_element(&self, name: &str) -> Element {
        Element::new(name)
            .attr_opt("average", self.average)
            .attr_opt("peak", self.peak)
            .attr_opt("floor", self.floor)
            .attr_opt("burst", self.burst)
            .with_extra(&self.extra)
    }
}

impl Bandwidth {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let inbound = el
            .take_one("inbound")?
            .map(Rate::from_element)
            .transpose()?;
        let outbound = el
            .take_one("outbound")?
            .map(Rate::from_element)
            .transpose()?;
        Ok(Bandwidth {
            inbound,
            outbound,
            pos: el.pos,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Option<Element> {
        let el = Element::new("bandwidth")
            .child_opt(self.inbound.as_ref().map(|r| r.to_element("inbound")))
            .child_opt(self.outbound.as_ref().map(|r| r.to_element("outbound")))
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}
