//! Reading `<interface>` into [`Interface`].

use super::driver::Driver;
use super::filter::FilterRef;
use super::ip::{IpInfo, PortForward};
use super::kind::{parse_kind, InterfaceType};
use super::model::NicModel;
use super::netdev::{Bandwidth, VirtualPort, Vlan};
use super::parts::{
    read_acpi, read_mtu, read_port, Backend, Boot, Coalesce, GuestName, Leaf, LinkState, Rom,
    Target, Teaming, Tune,
};
use super::util::{one_of, refuse_control_chars, take_choice, take_with, take_yes_no};
use super::{Interface, Mac, MacAddr};
use crate::address::DeviceAddress;
use crate::error::ConfError;
use crate::xml::Element;

fn parse_mac(mut el: Element) -> Result<Mac, ConfError> {
    let address = take_with(
        &mut el,
        "address",
        "a MAC address: six hex bytes separated by ':', e.g. 52:54:00:12:34:56",
        |v| v.parse::<MacAddr>().ok(),
    )?;
    Ok(Mac {
        address,
        kind: take_choice(&mut el, "type", &["generated", "static"])?.map(|t| t.value),
        check: take_yes_no(&mut el, "check")?,
        pos: el.pos,
        extra: el.into_extra(),
    })
}

fn parse_model(el: Element) -> Result<Leaf<NicModel>, ConfError> {
    Leaf::read(
        el,
        "type",
        "a model name made of letters, digits, '_' and '-' such as 'virtio' or 'e1000' \
         (libvirt: Model name contains invalid characters)",
        NicModel::parse,
    )
}

impl Interface {
    /// Reads an `<interface>` element.
    ///
    /// Errors (with the position of the offending element or attribute): an unknown type
    /// (the message lists the valid ones), a missing or incomplete `<source>` for the type,
    /// values that cannot be read, and control characters in any value.
    pub fn from_element(mut el: Element) -> Result<Interface, ConfError> {
        refuse_control_chars(&el)?;
        let names: Vec<&str> = InterfaceType::ALL.iter().map(|t| t.as_str()).collect();
        let ty = take_with(&mut el, "type", &one_of(&names), InterfaceType::parse)?
            .map_or(InterfaceType::User, |t| t.value);
        let trust = take_yes_no(&mut el, "trustGuestRxFilters")?;

        let backend = el
            .take_one("backend")?
            .map(Backend::from_element)
            .transpose()?;
        let passt = backend.as_ref().is_some_and(Backend::is_passt);

        let mut source = el.take_one("source")?;
        let host_ip = match source.as_mut() {
            Some(s) => IpInfo::take_from(s)?,
            None => IpInfo::default(),
        };
        let (kind, rest) = parse_kind(ty, &mut el, source, passt)?;

        let mut iface = Interface::new(kind);
        iface.pos = el.pos;
        iface.trust_guest_rx_filters = trust;
        iface.backend = backend;
        iface.host_ip = host_ip;
        iface.source_dev = rest.dev;
        iface.source_extra = rest.extra;
        iface.source_pos = rest.pos;

        iface.mac = el.take_one("mac")?.map(parse_mac).transpose()?;
        iface.model = el.take_one("model")?.map(parse_model).transpose()?;
        let hostdev = ty == InterfaceType::Hostdev;
        iface.driver = el
            .take_one("driver")?
            .map(|d| Driver::from_element(d, hostdev))
            .transpose()?;

        iface.vlan = el.take_one("vlan")?.map(Vlan::from_element).transpose()?;
        if let Some(vp) = el.take_one("virtualport")? {
            if !matches!(
                ty,
                InterfaceType::Network
                    | InterfaceType::Bridge
                    | InterfaceType::Direct
                    | InterfaceType::Hostdev
            ) {
                return Err(ConfError::unsupported(
                    vp.pos,
                    format!(
                        "<virtualport> element unsupported for <interface type='{ty}'>: it \
                         applies to types network, bridge, direct and hostdev"
                    ),
                ));
            }
            iface.virtualport = Some(VirtualPort::from_element(vp)?);
        }
        iface.bandwidth = el
            .take_one("bandwidth")?
            .map(Bandwidth::from_element)
            .transpose()?;
        iface.port_isolated = el.take_one("port")?.map(read_port).transpose()?;
        iface.guest_ip = IpInfo::take_from(&mut el)?;
        iface.port_forwards = el
            .take_children("portForward")
            .into_iter()
            .map(PortForward::from_element)
            .collect::<Result<_, _>>()?;
        iface.script = el
            .take_one("script")?
            .map(|s| Leaf::read_str(s, "path"))
            .transpose()?;
        iface.downscript = el
            .take_one("downscript")?
            .map(|s| Leaf::read_str(s, "path"))
            .transpose()?;
        iface.backend_domain = el
            .take_one("backenddomain")?
            .map(|s| Leaf::read_str(s, "name"))
            .transpose()?;
        iface.target = el
            .take_one("target")?
            .map(Target::from_element)
            .transpose()?;
        iface.guest = el.take_one("guest")?.map(GuestName::from_element);
        iface.filterref = el
            .take_one("filterref")?
            .map(FilterRef::from_element)
            .transpose()?;
        iface.tune = el.take_one("tune")?.map(Tune::from_element).transpose()?;
        iface.teaming = el
            .take_one("teaming")?
            .map(Teaming::from_element)
            .transpose()?;
        iface.link = el.take_one("link")?.map(LinkState::read).transpose()?;
        iface.mtu = el.take_one("mtu")?.map(read_mtu).transpose()?;
        iface.coalesce = el
            .take_one("coalesce")?
            .map(Coalesce::from_element)
            .transpose()?;
        iface.boot = el.take_one("boot")?.map(Boot::from_element).transpose()?;
        iface.alias = el
            .take_one("alias")?
            .map(|a| Leaf::read_str(a, "name"))
            .transpose()?;
        iface.rom = el.take_one("rom")?.map(Rom::from_element).transpose()?;
        iface.acpi_index = el.take_one("acpi")?.map(read_acpi).transpose()?;
        iface.address = el
            .take_one("address")?
            .map(DeviceAddress::from_element)
            .transpose()?;
        iface.extra = el.into_extra();
        Ok(iface)
    }
}
