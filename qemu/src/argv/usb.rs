//! USB ports for USB devices without an address (USB inputs, `usb-net` NICs), given at
//! command-line time as libvirt does (it does not keep them in the definition either).

use std::borrow::Cow;

use virtnet_conf::address::DeviceAddress;
use virtnet_conf::xml::Extra;
use virtnet_conf::Domain;

use crate::error::QemuError;

/// Root ports of a USB controller model (libvirt's counts; xHCI: `ports`, default 4).
fn port_count(model: Option<&str>, ports: Option<u32>) -> u32 {
    match model {
        Some("ehci" | "ich9-ehci1") => 6,
        Some("qemu-xhci" | "nec-xhci") => ports.unwrap_or(4),
        Some("pci-ohci") => 3,
        _ => 2,
    }
}

/// `domain` with a USB address on every USB input and `usb-net` NIC that has none: the first
/// free root port of USB controller 0, inputs first, then NICs. Borrowed unchanged when
/// nothing needs a port.
pub(crate) fn with_usb_ports(domain: &Domain) -> Result<Cow<'_, Domain>, QemuError> {
    let d = &domain.devices;
    let input_needs =
        |i: usize| d.inputs[i].bus.as_deref() == Some("usb") && d.inputs[i].info.address.is_none();
    let net_needs = |i: usize| {
        d.interfaces[i].model().is_some_and(|m| m.is_usb()) && d.interfaces[i].address.is_none()
    };
    let inputs: Vec<usize> = (0..d.inputs.len()).filter(|i| input_needs(*i)).collect();
    let nets: Vec<usize> = (0..d.interfaces.len()).filter(|i| net_needs(*i)).collect();
    if inputs.is_empty() && nets.is_empty() {
        return Ok(Cow::Borrowed(domain));
    }
    let controller = d
        .controller("usb", 0)
        .filter(|c| c.model() != Some("none"))
        .ok_or_else(|| QemuError::UnsupportedDevice {
            device: "USB devices".into(),
            message: "USB inputs and usb-net NICs need a USB controller: add <controller \
                      type='usb' index='0' model='qemu-xhci'/> (model='none' has no bus)"
                .into(),
        })?;
    let total = port_count(controller.model(), controller.ports);
    let mut used: Vec<String> = Vec::new();
    let mut note = |a: &Option<DeviceAddress>| {
        if let Some(DeviceAddress::Usb {
            bus: 0,
            port: Some(p),
            ..
        }) = a
        {
            used.push(p.clone());
        }
    };
    d.inputs.iter().for_each(|i| note(&i.info.address));
    d.interfaces.iter().for_each(|i| note(&i.address));
    let mut free = (1..=total)
        .map(|p| p.to_string())
        .filter(|p| !used.contains(p))
        .collect::<Vec<_>>()
        .into_iter();
    let mut next = || {
        free.next()
            .map(|port| DeviceAddress::Usb {
                bus: 0,
                port: Some(port),
                extra: Extra::default(),
            })
            .ok_or_else(|| QemuError::UnsupportedDevice {
                device: "USB devices".into(),
                message: format!(
                    "more USB devices than the {total} ports of USB controller 0: remove some, \
                     or use a controller with more ports (qemu-xhci ports='8')"
                ),
            })
    };
    let mut out = domain.clone();
    for i in inputs {
        out.devices.inputs[i].info.address = Some(next()?);
    }
    for i in nets {
        out.devices.interfaces[i].address = Some(next()?);
    }
    Ok(Cow::Owned(out))
}
