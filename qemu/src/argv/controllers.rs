//! `<controller>` elements as `-device` arguments: PCI bridges and root ports, USB, SATA,
//! SCSI and virtio-serial controllers. The PCI root, the i440fx IDE controller and the q35
//! SATA controller are part of the machine and need no argument.

use virtnet_conf::devices::Controller;
use virtnet_conf::Domain;

use super::caps::GuestCtx;
use super::devaddr::{address_props, usb_controller_id};
use super::opts::{json_arg, Props};
use crate::error::QemuError;

/// libvirt's order of controller types on the command line (PCI first: the others sit on it).
const TYPE_ORDER: &[&str] = &["pci", "usb", "scsi", "ide", "sata", "fdc", "virtio-serial"];

fn unsupported(c: &Controller, message: impl Into<String>) -> QemuError {
    QemuError::UnsupportedDevice {
        device: format!("<{}>", c.describe()),
        message: message.into(),
    }
}

/// The `-device` arguments of every controller that is not built into the machine.
pub(crate) fn controller_args(domain: &Domain, guest: &GuestCtx) -> Result<Vec<String>, QemuError> {
    let mut ordered: Vec<&Controller> = domain.devices.controllers.iter().collect();
    ordered.sort_by_key(|c| {
        (
            TYPE_ORDER
                .iter()
                .position(|t| *t == c.kind)
                .unwrap_or(TYPE_ORDER.len()),
            c.idx(),
        )
    });
    let mut args = Vec::new();
    for c in ordered {
        if let Some(props) = controller_props(domain, guest, c)? {
            args.push("-device".to_string());
            args.push(json_arg(&props));
        }
    }
    Ok(args)
}

fn controller_props(
    domain: &Domain,
    guest: &GuestCtx,
    c: &Controller,
) -> Result<Option<serde_json::Value>, QemuError> {
    let q35 = domain.machine_is_q35();
    let idx = c.idx();
    let mut p = Props::new();
    match c.kind.as_str() {
        "pci" => {
            let id = format!("pci.{idx}");
            match c.model() {
                Some("pci-root") | Some("pcie-root") => return Ok(None),
                Some("pci-bridge") => {
                    p.put("driver", "pci-bridge")
                        .put("chassis_nr", c.target.chassis_nr.unwrap_or(idx))
                        .put("id", id);
                }
                Some("pcie-root-port") => {
                    let driver = c.model_name.as_deref().unwrap_or("pcie-root-port");
                    p.put("driver", driver)
                        .put_opt("port", c.target.port)
                        .put("chassis", c.target.chassis.unwrap_or(idx))
                        .put("id", id);
                }
                Some("dmi-to-pci-bridge") => {
                    p.put("driver", "i82801b11-bridge").put("id", id);
                }
                Some("pcie-to-pci-bridge") => {
                    p.put("driver", "pcie-pci-bridge").put("id", id);
                }
                Some("pcie-switch-upstream-port") => {
                    p.put("driver", "x3130-upstream").put("id", id);
                }
                Some("pcie-switch-downstream-port") => {
                    p.put("driver", "xio3130-downstream")
                        .put_opt("port", c.target.port)
                        .put("chassis", c.target.chassis.unwrap_or(idx))
                        .put("id", id);
                }
                other => {
                    return Err(unsupported(
                        c,
                        format!(
                            "PCI controller model '{}' is not supported: use pci-bridge, \
                             pcie-root-port, dmi-to-pci-bridge, pcie-to-pci-bridge or PCIe \
                             switch ports",
                            other.unwrap_or("(none)")
                        ),
                    ))
                }
            }
        }
        "usb" => {
            let driver = match c.model() {
                Some("none") => return Ok(None),
                Some("piix3-uhci") | None => "piix3-usb-uhci",
                Some("piix4-uhci") => "piix4-usb-uhci",
                Some("ehci") => "usb-ehci",
                Some("ich9-ehci1") => "ich9-usb-ehci1",
                Some("ich9-uhci1") => "ich9-usb-uhci1",
                Some("ich9-uhci2") => "ich9-usb-uhci2",
                Some("ich9-uhci3") => "ich9-usb-uhci3",
                Some("qemu-xhci") => "qemu-xhci",
                Some("nec-xhci") => "nec-usb-xhci",
                Some("pci-ohci") => "pci-ohci",
                Some(m) => {
                    return Err(unsupported(
                        c,
                        format!("USB controller model '{m}' is not supported: use qemu-xhci"),
                    ))
                }
            };
            p.put("driver", driver);
            if driver.ends_with("xhci") {
                p.put_opt("p2", c.ports).put_opt("p3", c.ports);
            }
            match &c.info.master {
                Some(m) => {
                    let first: u32 = m
                        .get_attr("startport")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    p.put("masterbus", format!("{}.0", usb_controller_id(idx)))
                        .put("firstport", first);
                }
                None => {
                    p.put("id", usb_controller_id(idx));
                }
            }
        }
        "ide" => {
            if q35 || idx != 0 {
                return Err(unsupported(
                    c,
                    "only the i440fx machine's own IDE controller (index 0) exists: use SATA \
                     (q35) or virtio disks",
                ));
            }
            return Ok(None);
        }
        "fdc" if idx == 0 && !q35 => return Ok(None),
        "sata" => {
            if q35 && idx == 0 {
                // The ICH9 AHCI controller built into q35 (libvirt's alias "ide").
                return Ok(None);
            }
            p.put("driver", "ahci").put("id", format!("sata{idx}"));
        }
        "scsi" => {
            let driver = match c.model() {
                Some("virtio-scsi") | None => "virtio-scsi-pci",
                Some("lsilogic") => "lsi",
                Some(m) => {
                    return Err(unsupported(
                        c,
                        format!("SCSI controller model '{m}' is not supported: use virtio-scsi"),
                    ))
                }
            };
            p.put("driver", driver).put("id", format!("scsi{idx}"));
        }
        "virtio-serial" => {
            p.put("driver", "virtio-serial-pci")
                .put("id", format!("virtio-serial{idx}"))
                .put_opt("max_ports", c.ports)
                .put_opt("vectors", c.vectors);
        }
        other => {
            return Err(unsupported(
                c,
                format!("controller type '{other}' is not supported"),
            ))
        }
    }
    address_props(guest, c.info.address.as_ref(), &mut p).map_err(|m| unsupported(c, m))?;
    Ok(Some(p.into_value()))
}

/// The bus of a drive on controller `index` of `kind` (`ide`, `sata`): libvirt's aliases, where
/// the q35 built-in SATA controller is `ide`.
pub(crate) fn drive_controller_alias(domain: &Domain, kind: &str, index: u32) -> String {
    match kind {
        "ide" => "ide".to_string(),
        "sata" if domain.machine_is_q35() && index == 0 => "ide".to_string(),
        "sata" => format!("sata{index}"),
        other => format!("{other}{index}"),
    }
}
