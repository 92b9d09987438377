//! libvirt's Open vSwitch network: an existing OVS bridge that guests' taps join.
//!
//! ```xml
//! <network>
//!   <name>ovs</name>
//!   <forward mode='bridge'/>
//!   <bridge name='br-int'/>
//!   <virtualport type='openvswitch'/>
//!   <portgroup name='blue' default='yes'>
//!     <vlan><tag id='42'/></vlan>
//!     <virtualport><parameters profileid='gold'/></virtualport>
//!   </portgroup>
//! </network>
//! ```
//!
//! A NIC `<interface type='network'><source network='ovs' portgroup='blue'/>` runs as the
//! bridge form (`<interface type='bridge'><source bridge='br-int'/><virtualport
//! type='openvswitch'>`) with the settings merged as libvirt merges them
//! ([`OvsNetwork::merge`]): the `<vlan>` of the interface, else of its port group, else of the
//! network; the virtual port's parameters from all three, a value given twice differently
//! refused. Per-port `interfaceid`s belong to interfaces: one on the network or a port group
//! is refused (every port would share it).

use crate::domain::Uuid;
use crate::error::ConfError;
use crate::interface::{InterfaceKind, Spanned, VirtualPort, Vlan};
use crate::xml::{Element, Extra, Pos};
use crate::Interface;

/// What an Open vSwitch network's definition holds besides its name and UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsNetwork {
    /// `<bridge name>`: the Open vSwitch bridge (it must exist when the network starts).
    pub bridge: String,
    /// `<virtualport type='openvswitch'><parameters profileid/>`.
    pub profileid: Option<String>,
    /// `<vlan>` of every port without one of its own or its port group's.
    pub vlan: Option<Vlan>,
    /// `<portgroup>`s, in order.
    pub portgroups: Vec<PortGroup>,
}

/// `<portgroup name default><vlan/><virtualport><parameters profileid/></virtualport>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    /// Its name (unique in the network).
    pub name: String,
    /// `default='yes'`: the group of NICs that name none (one group at most).
    pub default: bool,
    /// Its `<vlan>`.
    pub vlan: Option<Vlan>,
    /// Its virtual port's `profileid`.
    pub profileid: Option<String>,
}

const SHAPE: &str = "an Open vSwitch network has <name>, <uuid>, <forward mode='bridge'/>, \
                     <bridge name='BR'/>, <virtualport type='openvswitch'/> (with <parameters \
                     profileid='...'/>), <vlan> and <portgroup name='...'>s with <vlan> and \
                     <virtualport><parameters profileid='...'/></virtualport>";

/// The first unknown attribute, child or text of `el` as a positioned refusal.
fn unknown(el: &Element) -> Result<(), ConfError> {
    if let Some(a) = el.attrs.first() {
        let pos = if a.pos.is_known() { a.pos } else { el.pos };
        return Err(ConfError::unsupported(
            pos,
            format!("unknown attribute '{}' in <{}>: {SHAPE}", a.name, el.name),
        ));
    }
    if let Some(c) = el.children.first() {
        return Err(ConfError::unsupported(
            c.pos,
            format!("unknown element <{}> in <{}>: {SHAPE}", c.name, el.name),
        ));
    }
    if let Some(t) = &el.text {
        return Err(ConfError::unsupported(
            el.pos,
            format!("unexpected text '{t}' in <{}>", el.name),
        ));
    }
    Ok(())
}

fn extra_refused(extra: &Extra, name: &str, pos: Pos) -> Result<(), ConfError> {
    unknown(&Element {
        name: name.into(),
        attrs: extra.attrs.clone(),
        children: extra.children.clone(),
        text: extra.text.clone(),
        pos,
    })
}

/// A `<vlan>` with nothing unknown in it.
fn read_vlan(el: Element) -> Result<Vlan, ConfError> {
    let v = Vlan::from_element(el)?;
    extra_refused(&v.extra, "vlan", v.pos)?;
    for t in &v.tags {
        extra_refused(&t.extra, "tag", v.pos)?;
    }
    Ok(v)
}

/// A network's or port group's `<virtualport>`: its `profileid` (the type, when given, must
/// be `openvswitch`; `required` for the network's own).
fn virtualport(el: Element, required: bool) -> Result<Option<String>, ConfError> {
    let pos = el.pos;
    let vp = VirtualPort::from_element(el)?;
    match vp.kind.as_deref() {
        Some("openvswitch") => {}
        None if !required => {}
        other => {
            return Err(ConfError::unsupported(
                pos,
                format!(
                    "<virtualport type='{}'> on an Open vSwitch network: use \
                     type='openvswitch'",
                    other.unwrap_or("")
                ),
            ))
        }
    }
    let foreign = vp
        .interfaceid
        .as_ref()
        .map(|_| "interfaceid")
        .or_else(|| vp.qbg_param());
    if let Some(name) = foreign {
        let why = if name == "interfaceid" {
            "each port's interfaceid is its interface's (every port would share this one): \
             put it in the domain's <interface><virtualport>"
        } else {
            "Open vSwitch ports take only profileid"
        };
        return Err(ConfError::unsupported(
            pos,
            format!("<parameters {name}='...'> in a network's <virtualport>: {why}"),
        ));
    }
    extra_refused(&vp.extra[0], "virtualport", pos)?;
    extra_refused(&vp.extra[1], "parameters", pos)?;
    Ok(vp.profileid)
}

/// Reads the Open vSwitch form from `root` (`<network>`, its `<name>` and `<uuid>` taken).
pub(super) fn parse(root: &mut Element) -> Result<OvsNetwork, ConfError> {
    let mut fw = root.require_one("forward", "give <forward mode='bridge'/>")?;
    let mode = fw.require_attr(
        "mode",
        "an Open vSwitch network is mode='bridge' (libvirt's default, nat, is not supported)",
    )?;
    if mode.value != "bridge" {
        return Err(fw.invalid_attr(
            &mode,
            "'bridge' (the forward mode of an Open vSwitch network; virtnet runs no nat, \
             route, open or passthrough networks)",
        ));
    }
    unknown(&fw)?;
    let mut br = root.require_one(
        "bridge",
        "name the Open vSwitch bridge, e.g. <bridge name='br-int'/>",
    )?;
    let name = br.require_attr("name", "e.g. <bridge name='br-int'/>")?;
    if !super::valid_ifname(&name.value) {
        return Err(br.invalid_attr(&name, "a bridge name: 1-15 letters, digits, '_', '.', '-'"));
    }
    unknown(&br)?;
    let vp = root.take_one("virtualport")?.ok_or_else(|| {
        ConfError::unsupported(
            fw.pos,
            "<forward mode='bridge'/> without <virtualport type='openvswitch'/> is a Linux \
             bridge network, which virtnet does not run: give the domain's NIC <interface \
             type='bridge'><source bridge='BR'/></interface>, or add <virtualport \
             type='openvswitch'/> for an Open vSwitch bridge",
        )
    })?;
    let profileid = virtualport(vp, true)?;
    let vlan = root.take_one("vlan")?.map(read_vlan).transpose()?;
    let mut portgroups: Vec<PortGroup> = Vec::new();
    for mut pg in root.take_children("portgroup") {
        let pos = pg.pos;
        let gname = pg.require_attr("name", "e.g. <portgroup name='blue'>")?;
        if gname.value.is_empty() || portgroups.iter().any(|g| g.name == gname.value) {
            return Err(pg.invalid_attr(&gname, "a name no other <portgroup> has"));
        }
        let default = match pg.take_attr("default") {
            None => false,
            Some(a) if a.value == "yes" => true,
            Some(a) if a.value == "no" => false,
            Some(a) => return Err(pg.invalid_attr(&a, "'yes' or 'no'")),
        };
        if default && portgroups.iter().any(|g| g.default) {
            return Err(ConfError::unsupported(
                pos,
                "more than one <portgroup default='yes'>: one group at most is the default",
            ));
        }
        let vlan = pg.take_one("vlan")?.map(read_vlan).transpose()?;
        let profileid = match pg.take_one("virtualport")? {
            Some(v) => virtualport(v, false)?,
            None => None,
        };
        unknown(&pg)?;
        portgroups.push(PortGroup {
            name: gname.value,
            default,
            vlan,
            profileid,
        });
    }
    unknown(root)?;
    Ok(OvsNetwork {
        bridge: name.value,
        profileid,
        vlan,
        portgroups,
    })
}

fn vp_element(kind: Option<&str>, profileid: Option<&str>) -> Element {
    Element::new("virtualport")
        .attr_opt("type", kind)
        .child_opt(profileid.map(|p| Element::new("parameters").attr("profileid", p)))
}

impl OvsNetwork {
    /// `head` (`<network>` with name and UUID) with this network's elements, libvirt's order.
    pub(super) fn append_to(&self, head: Element) -> Element {
        let mut root = head
            .child(Element::new("forward").attr("mode", "bridge"))
            .child(Element::new("bridge").attr("name", &self.bridge))
            .child(vp_element(Some("openvswitch"), self.profileid.as_deref()))
            .child_opt(self.vlan.as_ref().map(Vlan::to_element));
        for g in &self.portgroups {
            let mut el = Element::new("portgroup").attr("name", &g.name);
            if g.default {
                el.push_attr("default", "yes");
            }
            let el = el
                .child_opt(g.vlan.as_ref().map(Vlan::to_element))
                .child_opt(g.profileid.as_deref().map(|p| vp_element(None, Some(p))));
            root = root.child(el);
        }
        root
    }

    /// The port group a NIC naming `portgroup` is in: that one (refused when the network has
    /// none of that name), else the default group, if any.
    pub fn portgroup(&self, portgroup: Option<&str>) -> Result<Option<&PortGroup>, String> {
        match portgroup {
            Some(n) => self
                .portgroups
                .iter()
                .find(|g| g.name == n)
                .map(Some)
                .ok_or_else(|| {
                    let have: Vec<&str> = self.portgroups.iter().map(|g| g.name.as_str()).collect();
                    format!(
                        "the network has no port group '{n}' (it has: {})",
                        if have.is_empty() {
                            "none".to_string()
                        } else {
                            have.join(", ")
                        }
                    )
                }),
            None => Ok(self.portgroups.iter().find(|g| g.default)),
        }
    }

    /// The virtual port and VLAN of a NIC on this network with `portgroup`, its own
    /// `<virtualport>` `iface_vp` and `<vlan>` `iface_vlan`, merged as libvirt merges them
    /// (virNetDevVPortProfileMerge3, networkAllocatePort): type `openvswitch`; `interfaceid`
    /// the NIC's (none when it has none: the caller generates one, as libvirt does);
    /// `profileid` from the NIC, the port group and the network, refused when two of them
    /// differ; the VLAN of the NIC, else of its port group, else of the network. Refused: a
    /// NIC virtual port of another type, and the 802.1Qbg/h parameters.
    pub fn merge(
        &self,
        portgroup: Option<&str>,
        iface_vp: Option<&VirtualPort>,
        iface_vlan: Option<&Vlan>,
    ) -> Result<(VirtualPort, Option<Vlan>), String> {
        let group = self.portgroup(portgroup)?;
        let mut vp = iface_vp.cloned().unwrap_or_default();
        if let Some(k) = vp.kind.as_deref().filter(|k| *k != "openvswitch") {
            return Err(format!(
                "<virtualport type='{k}'> on an Open vSwitch network: use type='openvswitch' \
                 or leave type out"
            ));
        }
        if let Some(name) = vp.qbg_param() {
            return Err(format!(
                "<parameters {name}='...'> is an 802.1Qbg parameter: an Open vSwitch port takes \
                 interfaceid and profileid"
            ));
        }
        vp.kind = Some("openvswitch".into());
        for (from, p) in [
            ("port group", group.and_then(|g| g.profileid.as_ref())),
            ("network", self.profileid.as_ref()),
        ] {
            let Some(p) = p else { continue };
            match &vp.profileid {
                Some(have) if have != p => {
                    return Err(format!(
                        "profileid '{have}' conflicts with the {from}'s profileid '{p}': give \
                         the same or leave one out"
                    ))
                }
                Some(_) => {}
                None => vp.profileid = Some(p.clone()),
            }
        }
        let vlan = iface_vlan
            .or_else(|| group.and_then(|g| g.vlan.as_ref()))
            .or(self.vlan.as_ref())
            .cloned();
        Ok((vp, vlan))
    }

    /// `iface` (`type='network'` on this network) in the bridge form a VM runs:
    /// `<source bridge>` this network's, the `<virtualport>` and `<vlan>` merged
    /// ([`Self::merge`]), an `interfaceid` from `new_id` when neither the NIC nor define gave
    /// one (libvirt's virNetDevVPortProfileCheckComplete generates it too). Refused: a
    /// `<source bridge>` other than this network's (live XML shows it), a `portid` (virtnet
    /// gives these ports none), an unknown port group, conflicting settings. Any other
    /// interface comes back unchanged.
    pub fn bridge_form(
        &self,
        iface: &Interface,
        new_id: impl FnOnce() -> Uuid,
    ) -> Result<Interface, String> {
        let InterfaceKind::Network {
            network,
            portgroup,
            portid,
            bridge,
        } = &iface.kind
        else {
            return Ok(iface.clone());
        };
        if let Some(b) = bridge.as_ref().filter(|b| **b != self.bridge) {
            return Err(format!(
                "<source bridge='{b}'> is not the network's bridge '{}': remove bridge (live \
                 XML shows the network's)",
                self.bridge
            ));
        }
        if let Some(p) = portid {
            return Err(format!(
                "<source portid='{p}'>: ports on Open vSwitch networks have no port id in \
                 virtnet (the port is the tap, named by <target dev>); remove portid"
            ));
        }
        let (mut vp, vlan) = self.merge(
            portgroup.as_deref(),
            iface.virtualport.as_ref(),
            iface.vlan.as_ref(),
        )?;
        if vp.interfaceid.is_none() {
            vp.interfaceid = Some(new_id().to_string());
        }
        let mut r = iface.clone();
        r.kind = InterfaceKind::Bridge {
            bridge: Spanned::at(self.bridge.clone(), network.pos),
        };
        r.virtualport = Some(vp);
        r.vlan = vlan;
        Ok(r)
    }
}
