//! Guest addresses as `-device` properties.

use virtnet_conf::address::{DeviceAddress, PciAddress};

use super::caps::GuestCtx;
use super::opts::Props;

/// The id of USB controller `index`, as libvirt names it: `usb`, `usb1`, ...
pub(crate) fn usb_controller_id(index: u32) -> String {
    if index == 0 {
        "usb".to_string()
    } else {
        format!("usb{index}")
    }
}

/// Adds `bus`/`multifunction`/`addr` for a PCI address or `bus`/`port` for a USB one; nothing
/// when there is no address. Other address types: `Err` with a reason for the caller's error.
pub(crate) fn address_props(
    guest: &GuestCtx,
    address: Option<&DeviceAddress>,
    p: &mut Props,
) -> Result<(), String> {
    match address {
        None => Ok(()),
        Some(DeviceAddress::Pci {
            addr,
            multifunction,
            ..
        }) => {
            if addr.domain != 0 {
                return Err(format!(
                    "guest PCI domain {:#06x} is not supported: x86 guests have PCI domain 0 only",
                    addr.domain
                ));
            }
            pci_address_props(guest, addr, multifunction.as_deref(), p);
            Ok(())
        }
        Some(DeviceAddress::Usb { bus, port, .. }) => {
            p.put("bus", format!("{}.0", usb_controller_id(*bus)))
                .put_opt("port", port.clone());
            Ok(())
        }
        Some(DeviceAddress::Drive { .. }) => {
            Err("a drive address only fits disks: remove the <address>".into())
        }
        Some(DeviceAddress::Other(el)) => Err(format!(
            "<address type='{}'> is not supported here: remove it to get a PCI address",
            el.get_attr("type").unwrap_or("?")
        )),
    }
}

/// `"bus":"pci.0","multifunction":true,"addr":"0x3.0x1"` as libvirt writes a PCI address.
pub(crate) fn pci_address_props(
    guest: &GuestCtx,
    addr: &PciAddress,
    multifunction: Option<&str>,
    p: &mut Props,
) {
    p.put("bus", guest.pci_bus_name(addr.bus));
    match multifunction {
        Some("on") => {
            p.put("multifunction", true);
        }
        Some("off") => {
            p.put("multifunction", false);
        }
        _ => {}
    }
    let a = if addr.function != 0 {
        format!("{:#x}.{:#x}", addr.slot, addr.function)
    } else {
        format!("{:#x}", addr.slot)
    };
    p.put("addr", a);
}
