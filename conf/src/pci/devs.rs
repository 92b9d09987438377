//! Which devices of a domain take guest PCI addresses, and with which connection type.

use super::set::{controller_connect, Flags};
use crate::address::{DeviceAddress, PciAddress};
use crate::domain::Domain;
use crate::interface::NicModel;
use crate::xml::{Extra, Pos};

/// A device of a domain, by kind and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dev {
    Disk(usize),
    Controller(usize),
    Iface(usize),
    Serial(usize),
    Input(usize),
    Memballoon,
    Other(usize),
}

/// Every device that can have an address, in libvirt's iteration order.
pub(crate) fn all(d: &Domain) -> Vec<Dev> {
    let v = &d.devices;
    let mut out: Vec<Dev> = (0..v.disks.len()).map(Dev::Disk).collect();
    out.extend((0..v.interfaces.len()).map(Dev::Iface));
    out.extend((0..v.controllers.len()).map(Dev::Controller));
    out.extend((0..v.serials.len()).map(Dev::Serial));
    out.extend((0..v.inputs.len()).map(Dev::Input));
    out.extend((0..v.others.len()).map(Dev::Other));
    if v.memballoon.is_some() {
        out.push(Dev::Memballoon);
    }
    out
}

pub(crate) fn address(d: &Domain, r: Dev) -> Option<&DeviceAddress> {
    let v = &d.devices;
    match r {
        Dev::Disk(i) => v.disks[i].info.address.as_ref(),
        Dev::Controller(i) => v.controllers[i].info.address.as_ref(),
        Dev::Iface(i) => v.interfaces[i].address.as_ref(),
        Dev::Serial(i) => v.serials[i].info.address.as_ref(),
        Dev::Input(i) => v.inputs[i].info.address.as_ref(),
        Dev::Memballoon => v.memballoon.as_ref().and_then(|m| m.info.address.as_ref()),
        Dev::Other(i) => v.others[i].address.as_ref(),
    }
}

fn address_mut(d: &mut Domain, r: Dev) -> &mut Option<DeviceAddress> {
    let v = &mut d.devices;
    match r {
        Dev::Disk(i) => &mut v.disks[i].info.address,
        Dev::Controller(i) => &mut v.controllers[i].info.address,
        Dev::Iface(i) => &mut v.interfaces[i].address,
        Dev::Serial(i) => &mut v.serials[i].info.address,
        Dev::Input(i) => &mut v.inputs[i].info.address,
        Dev::Memballoon => {
            &mut v
                .memballoon
                .as_mut()
                .expect("memballoon present")
                .info
                .address
        }
        Dev::Other(i) => &mut v.others[i].address,
    }
}

/// Sets a PCI address, keeping `multifunction` and unknown content of an empty
/// `<address type='pci'/>` the user wrote.
pub(crate) fn set_pci(d: &mut Domain, r: Dev, addr: PciAddress, multifunction: Option<&str>) {
    let slot = address_mut(d, r);
    let (mf, extra) = match slot.take() {
        Some(DeviceAddress::Pci {
            multifunction,
            extra,
            ..
        }) => (multifunction, extra),
        _ => (None, Extra::default()),
    };
    *slot = Some(DeviceAddress::Pci {
        addr,
        multifunction: mf.or(multifunction.map(str::to_string)),
        extra,
    });
}

/// Sets `multifunction='on'` when it was not written.
pub(crate) fn set_multifunction_on(d: &mut Domain, r: Dev) {
    if let Some(DeviceAddress::Pci { multifunction, .. }) = address_mut(d, r) {
        if multifunction.is_none() {
            *multifunction = Some("on".into());
        }
    }
}

/// The PCI address, if the device has a non-empty one.
pub(crate) fn pci_present(d: &Domain, r: Dev) -> Option<PciAddress> {
    address(d, r)
        .and_then(DeviceAddress::pci)
        .filter(|a| *a != PciAddress::default())
}

/// Whether the device still wants a PCI address: none yet, or an empty `<address type='pci'/>`.
pub(crate) fn wanted(d: &Domain, r: Dev) -> bool {
    match address(d, r) {
        None => true,
        Some(a) => a.pci() == Some(PciAddress::default()),
    }
}

pub(crate) fn pos(d: &Domain, r: Dev) -> Pos {
    let v = &d.devices;
    let p = match r {
        Dev::Disk(i) => v.disks[i].pos,
        Dev::Controller(i) => v.controllers[i].pos,
        Dev::Iface(i) => v.interfaces[i].pos,
        Dev::Serial(i) => v.serials[i].pos,
        Dev::Input(i) => v.inputs[i].pos,
        Dev::Memballoon => v.memballoon.as_ref().map_or(Pos::UNKNOWN, |m| m.pos),
        Dev::Other(i) => v.others[i].pos,
    };
    if p.is_known() {
        p
    } else {
        v.pos
    }
}

/// A short description for messages.
pub(crate) fn describe(d: &Domain, r: Dev) -> String {
    let v = &d.devices;
    match r {
        Dev::Disk(i) => format!("disk '{}'", v.disks[i].target.dev),
        Dev::Controller(i) => v.controllers[i].describe(),
        Dev::Iface(i) => {
            let iface = &v.interfaces[i];
            // As written (an all-zero MAC included), unlike `Interface::mac()`.
            match iface.mac.as_ref().and_then(|m| m.address.as_ref()) {
                Some(mac) => format!("interface {} (mac {})", i + 1, mac.value),
                None => format!("interface {}", i + 1),
            }
        }
        Dev::Serial(i) => format!("serial port {}", v.serials[i].target.port.unwrap_or(0)),
        Dev::Input(i) => format!("input '{}'", v.inputs[i].input_type),
        Dev::Memballoon => "memballoon".into(),
        Dev::Other(i) => {
            let o = &v.others[i];
            let n = v.others[..i]
                .iter()
                .filter(|x| x.kind() == o.kind())
                .count()
                + 1;
            match o.model() {
                Some(m) => format!("{} {n} (model '{m}')", o.kind()),
                None => format!("{} {n}", o.kind()),
            }
        }
    }
}

/// libvirt's qemuDomainDeviceCalculatePCIConnectFlags: how the device plugs in (NONE when it
/// does not use PCI). `pcie_root`: the machine has a pcie-root (q35).
pub(crate) fn flags(d: &Domain, r: Dev, pcie_root: bool) -> Flags {
    let pci = Flags::PCI_DEVICE | Flags::AUTOASSIGN;
    let pcie = if pcie_root {
        Flags::PCIE_DEVICE | Flags::AUTOASSIGN
    } else {
        pci
    };
    let virtio = pcie;
    let transitional = |m: Option<&str>| m == Some("virtio-transitional");
    let v = &d.devices;
    match r {
        Dev::Controller(i) => {
            let c = &v.controllers[i];
            let m = c.model();
            match c.kind.as_str() {
                "pci" => controller_connect(m.unwrap_or_default()),
                "sata" | "ide" => pci,
                "usb" => match m {
                    None => pci,
                    Some("nec-xhci" | "qemu-xhci") => pcie,
                    Some("qusb1" | "qusb2" | "none") => Flags::NONE,
                    Some(_) => pci,
                },
                "scsi" => match m {
                    None | Some("ncr53c90") => Flags::NONE,
                    Some("virtio-scsi" | "virtio-non-transitional") => virtio,
                    Some(_) => pci,
                },
                "virtio-serial" if transitional(m) => pci,
                "virtio-serial" => virtio,
                "nvme" => pcie,
                _ => Flags::NONE,
            }
        }
        Dev::Disk(i) => {
            let disk = &v.disks[i];
            if disk.bus() != Some("virtio") {
                return Flags::NONE;
            }
            let model = disk
                .attrs
                .iter()
                .find(|a| a.name == "model")
                .map(|a| a.value.as_str());
            if transitional(model) {
                pci
            } else {
                virtio
            }
        }
        Dev::Iface(i) => {
            let iface = &v.interfaces[i];
            // USB NICs (usb-net, USB hostdev) and non-PCI addresses take no PCI slot.
            if !iface.wants_pci_address() {
                return Flags::NONE;
            }
            if iface.is_hostdev() {
                return if pcie_root { pcie } else { pci };
            }
            match iface.model().map(NicModel::as_str) {
                Some("usb-net") => Flags::NONE,
                Some("virtio" | "virtio-non-transitional") => virtio,
                Some("virtio-transitional") => pci,
                Some("e1000e" | "igb") | None => pcie,
                Some(_) => pci,
            }
        }
        Dev::Serial(i) => {
            if v.serials[i].target_type() == Some("pci-serial") {
                pci
            } else {
                Flags::NONE
            }
        }
        Dev::Input(i) => {
            let inp = &v.inputs[i];
            if inp.bus.as_deref() != Some("virtio") {
                return Flags::NONE;
            }
            let model = inp
                .attrs
                .iter()
                .find(|a| a.name == "model")
                .map(|a| a.value.as_str());
            if transitional(model) {
                pci
            } else {
                virtio
            }
        }
        Dev::Memballoon => match v.memballoon.as_ref().map(|m| m.model.as_str()) {
            Some("virtio-transitional") => pci,
            Some("virtio" | "virtio-non-transitional") => virtio,
            _ => Flags::NONE,
        },
        Dev::Other(i) => other_flags(&v.others[i], pci, pcie, virtio),
    }
}

fn other_flags(o: &crate::devices::GenericDevice, pci: Flags, pcie: Flags, virtio: Flags) -> Flags {
    let model = o.model();
    let m = model.as_deref();
    let transitional = m == Some("virtio-transitional");
    match o.kind() {
        "filesystem" => match o.child_attr("driver", "type") {
            None | Some("path" | "handle") if transitional => pci,
            None | Some("path" | "handle" | "virtiofs") => virtio,
            _ => Flags::NONE,
        },
        "sound" => match m {
            Some("es1370" | "ac97" | "ich6" | "ich9") => pci,
            _ => Flags::NONE,
        },
        "hostdev" => {
            let subsys = o.attr("mode").unwrap_or("subsystem") == "subsystem";
            match (subsys, o.attr("type")) {
                (true, Some("pci" | "mdev")) => pcie,
                (true, Some("scsi_host")) if transitional => pci,
                (true, Some("scsi_host")) => virtio,
                _ => Flags::NONE,
            }
        }
        "rng" if transitional => pci,
        "rng" => virtio,
        "watchdog" if m == Some("i6300esb") => pci,
        "video" => match m {
            Some("virtio") => virtio,
            Some("vga" | "cirrus" | "vmvga" | "xen" | "vbox" | "qxl" | "parallels") => pci,
            Some("bochs") => pcie,
            _ => Flags::NONE,
        },
        "shmem" => pci,
        "iommu" if m == Some("virtio") => virtio | Flags::INTEGRATED,
        "vsock" if transitional => pci,
        "vsock" => virtio,
        "memory" if matches!(m, Some("virtio-pmem" | "virtio-mem")) => virtio,
        "crypto" => pci,
        "panic" if m == Some("pvpanic") => pci | Flags::INTEGRATED,
        _ => Flags::NONE,
    }
}
