//! Guest PCI address assignment, as libvirt's QEMU driver does it for i440FX (`pc`) and q35
//! machines (qemuDomainAssignPCIAddresses).
//!
//! Two passes: a first "dry run" reserves every explicit address, the chipset's fixed slots
//! and one slot per device that needs one, adding buses (pci-bridge, pcie-root-port) when the
//! existing ones are full; the controllers for those buses are then added to the domain. The
//! second pass assigns the real addresses in libvirt's device order on the first free slot.

mod devs;
mod set;

use crate::address::{DeviceAddress, PciAddress};
use crate::devices::Controller;
use crate::domain::Domain;
use crate::error::ConfError;
use crate::xml::Pos;
use devs::Dev;
use set::{controller_connect, AddrSet, Bus, Flags};

fn err(d: &Domain, r: Option<Dev>, message: String) -> ConfError {
    let pos = r.map_or(d.devices.pos, |r| devs::pos(d, r));
    let pos = if pos.is_known() { pos } else { d.pos };
    ConfError::unsupported(pos, message)
}

fn has_root(d: &Domain, model: &str) -> bool {
    d.devices
        .controllers
        .iter()
        .any(|c| c.kind == "pci" && c.idx() == 0 && c.model() == Some(model))
}

fn max_pci_index(d: &Domain) -> Option<u32> {
    d.devices
        .controllers
        .iter()
        .filter(|c| c.kind == "pci")
        .map(Controller::idx)
        .max()
}

/// Assigns guest PCI addresses to every device that needs one (called by
/// [`Domain::fill_defaults`] after the other defaults).
pub(crate) fn assign_addresses(d: &mut Domain) -> Result<(), ConfError> {
    let pcie_root = has_root(d, "pcie-root");
    let pci_root = has_root(d, "pci-root");
    let Some(max_idx) = max_pci_index(d) else {
        return Ok(());
    };
    // First pass: how many buses are needed.
    let mut set = create_set(d, max_idx as usize + 1, true)?;
    validate_chipset(d, &mut set)?;
    if pci_root && !set.buses.iter().all(Bus::is_fully_reserved) {
        // Keep one slot for a future pci-bridge.
        set.reserve_next(Flags::PCI_DEVICE | Flags::AUTOASSIGN, None)
            .map_err(|m| err(d, None, m))?;
    }
    assign_slots(d, &mut set, pcie_root)?;
    if max_idx == 0 && set.buses.len() > 1 && pcie_root {
        // A new PCIe topology gets one free root port for hot-plug.
        set.reserve_next(Flags::PCIE_DEVICE | Flags::AUTOASSIGN, None)
            .map_err(|m| err(d, None, m))?;
    }
    for i in 1..set.buses.len() {
        if d.devices.controller("pci", i as u32).is_some() {
            continue;
        }
        let model = set.buses[i].model.clone();
        d.devices
            .insert_controller(Controller::new("pci", i as u32, Some(&model)));
        if model != "pci-root" && model != "pcie-root" {
            set.reserve_next(controller_connect(&model), None)
                .map_err(|m| err(d, None, m))?;
        }
    }
    let nbuses = set.buses.len();
    // Second pass: the real addresses.
    let mut set = create_set(d, nbuses, false)?;
    validate_chipset(d, &mut set)?;
    assign_slots(d, &mut set, pcie_root)?;
    set_all_multifunction(d);
    pci_controller_defaults(d)
}

/// The buses of the domain's PCI controllers, with every explicit address reserved.
fn create_set(d: &Domain, nbuses: usize, dry_run: bool) -> Result<AddrSet, ConfError> {
    let pcie_root = has_root(d, "pcie-root");
    let default_model = if pcie_root {
        "pcie-root-port"
    } else {
        "pci-bridge"
    };
    let mut models: Vec<Option<(String, bool)>> = vec![None; nbuses];
    for c in d.devices.controllers.iter().filter(|c| c.kind == "pci") {
        let i = c.idx() as usize;
        if i < nbuses {
            let hotplug = !c
                .target
                .attrs
                .iter()
                .any(|a| a.name == "hotplug" && a.value == "off");
            models[i] = Some((c.model().unwrap_or("pci-root").to_string(), hotplug));
        }
    }
    let buses = models
        .into_iter()
        .enumerate()
        .map(|(i, m)| match m {
            Some((model, hp)) => Bus::new(&model, hp),
            None if i == 0 => Bus::new("pci-root", true),
            None => Bus::new(default_model, true),
        })
        .collect();
    let mut set = AddrSet::new(buses, dry_run);
    for r in devs::all(d) {
        let Some(addr) = devs::pci_present(d, r) else {
            continue;
        };
        if is_piix3_integrated(d, r, &addr) {
            continue;
        }
        let mut f = devs::flags(d, r, pcie_root);
        if f.is_none() {
            f = Flags::PCI_DEVICE;
        }
        set.reserve(&addr, f, true)
            .map_err(|m| err(d, Some(r), format!("{}: {m}", devs::describe(d, r))))?;
    }
    Ok(set)
}

/// The PIIX3 IDE (0:1.1) and USB (0:1.2) controllers are part of the i440FX chipset.
fn is_piix3_integrated(d: &Domain, r: Dev, a: &PciAddress) -> bool {
    let Dev::Controller(i) = r else { return false };
    let c = &d.devices.controllers[i];
    a.domain == 0
        && a.bus == 0
        && a.slot == 1
        && c.idx() == 0
        && ((c.kind == "ide" && a.function == 1)
            || (c.kind == "usb"
                && matches!(c.model(), None | Some("piix3-uhci"))
                && a.function == 2))
}

fn controller_index(d: &Domain, kind: &str, idx: u32) -> Option<usize> {
    d.devices
        .controllers
        .iter()
        .position(|c| c.kind == kind && c.idx() == idx)
}

/// The fixed slots of the chipset (qemuDomainValidateDevicePCISlotsPIIX3 / Q35).
fn validate_chipset(d: &mut Domain, set: &mut AddrSet) -> Result<(), ConfError> {
    let pci_flags = Flags::PCI_DEVICE | Flags::AUTOASSIGN;
    if d.os.is_i440fx() {
        for (kind, func, what) in [
            ("ide", 1u8, "Primary IDE controller"),
            ("usb", 2, "PIIX3 USB controller at index 0"),
        ] {
            let Some(i) = controller_index(d, kind, 0) else {
                continue;
            };
            let r = Dev::Controller(i);
            if kind == "usb"
                && !matches!(d.devices.controllers[i].model(), None | Some("piix3-uhci"))
            {
                continue;
            }
            let fixed = PciAddress {
                function: func,
                ..PciAddress::slot(1)
            };
            match devs::pci_present(d, r) {
                Some(a) if a != fixed => {
                    return Err(err(
                        d,
                        Some(r),
                        format!("{what} must have PCI address 0:0:1.{func}"),
                    ))
                }
                Some(_) => {}
                None => devs::set_pci(d, r, fixed, None),
            }
            set.reserve(&fixed, pci_flags, true)
                .map_err(|m| err(d, Some(r), m))?;
        }
        for f in [0u8, 3] {
            let a = PciAddress {
                function: f,
                ..PciAddress::slot(1)
            };
            set.reserve(&a, pci_flags, true)
                .map_err(|m| err(d, None, m))?;
        }
        primary_video(d, set, 2, pci_flags)?;
    } else if d.os.is_q35() {
        let pcie_flags = Flags::PCIE_DEVICE;
        if let Some(i) = controller_index(d, "sata", 0) {
            let r = Dev::Controller(i);
            let fixed = PciAddress {
                function: 2,
                ..PciAddress::slot(0x1f)
            };
            match devs::pci_present(d, r) {
                Some(a) if a != fixed => {
                    return Err(err(
                        d,
                        Some(r),
                        "Primary SATA controller must have PCI address 0:0:1f.2".into(),
                    ))
                }
                Some(_) => {}
                None => devs::set_pci(d, r, fixed, None),
            }
        }
        for i in 0..d.devices.controllers.len() {
            let c = &d.devices.controllers[i];
            let r = Dev::Controller(i);
            let (slots, multi): (&[u8], Option<&str>) = match (c.kind.as_str(), c.model()) {
                ("usb", Some("ich9-uhci1")) => (&[0x1d, 0x1a], Some("on")),
                ("pci", Some("dmi-to-pci-bridge")) => (&[0x1e], None),
                _ => continue,
            };
            if c.info.address.is_some() {
                continue;
            }
            if let Some(&s) = slots
                .iter()
                .find(|s| !set.slot_in_use(&PciAddress::slot(**s)))
            {
                set.reserve(&PciAddress::slot(s), pcie_flags, true)
                    .map_err(|m| err(d, Some(r), m))?;
                devs::set_pci(d, r, PciAddress::slot(s), multi);
            }
        }
        for f in [0u8, 3] {
            let a = PciAddress {
                function: f,
                ..PciAddress::slot(0x1f)
            };
            set.reserve(&a, pcie_flags, true)
                .map_err(|m| err(d, None, m))?;
        }
        primary_video(d, set, 1, pcie_flags)?;
        let hda = PciAddress::slot(0x1b);
        if !set.slot_in_use(&hda) {
            let ich9 = (0..d.devices.others.len()).find(|&i| {
                let o = &d.devices.others[i];
                o.kind() == "sound"
                    && o.model().as_deref() == Some("ich9")
                    && devs::wanted(d, Dev::Other(i))
            });
            if let Some(i) = ich9 {
                set.reserve(&hda, pcie_flags, true)
                    .map_err(|m| err(d, Some(Dev::Other(i)), m))?;
                devs::set_pci(d, Dev::Other(i), hda, None);
            }
        }
    }
    Ok(())
}

/// The primary video card goes to slot 2 (i440FX) or 1 (q35) when that slot is free.
fn primary_video(
    d: &mut Domain,
    set: &mut AddrSet,
    slot: u8,
    flags: Flags,
) -> Result<(), ConfError> {
    let Some(i) = d.devices.others.iter().position(|o| o.kind() == "video") else {
        return Ok(());
    };
    let r = Dev::Other(i);
    if matches!(
        d.devices.others[i].model().as_deref(),
        Some("none" | "ramfb")
    ) || !devs::wanted(d, r)
    {
        return Ok(());
    }
    let a = PciAddress::slot(slot);
    set.validate(&a, flags, true)
        .map_err(|m| err(d, Some(r), m))?;
    if set.slot_in_use(&a) {
        let f = devs::flags(d, r, has_root(d, "pcie-root"));
        reserve_next_for(d, set, r, f)?;
    } else {
        set.reserve(&a, flags, true)
            .map_err(|m| err(d, Some(r), m))?;
        devs::set_pci(d, r, a, None);
    }
    Ok(())
}

fn reserve_next_for(d: &mut Domain, set: &mut AddrSet, r: Dev, f: Flags) -> Result<(), ConfError> {
    if f.is_none() {
        return Ok(());
    }
    let a = set.reserve_next(f, None).map_err(|m| {
        err(
            d,
            Some(r),
            format!(
                "{}: {m}; the PCI buses are full: free a slot or add a PCI controller (pci-bridge or pcie-root-port)",
                devs::describe(d, r)
            ),
        )
    })?;
    if !set.dry_run {
        devs::set_pci(d, r, a, None);
    }
    Ok(())
}

fn wanted_with(d: &Domain, r: Dev, pcie_root: bool) -> Option<Flags> {
    if !devs::wanted(d, r) {
        return None;
    }
    let f = devs::flags(d, r, pcie_root);
    (!f.is_none()).then_some(f)
}

/// qemuDomainAssignDevicePCISlots: libvirt's order of auto-assignment.
fn assign_slots(d: &mut Domain, set: &mut AddrSet, pcie_root: bool) -> Result<(), ConfError> {
    let mut order: Vec<Dev> = Vec::new();
    let v = &d.devices;
    let others_of = |kind: &str, ok: &dyn Fn(&crate::devices::GenericDevice) -> bool| -> Vec<Dev> {
        (0..v.others.len())
            .filter(|&i| v.others[i].kind() == kind && ok(&v.others[i]))
            .map(Dev::Other)
            .collect()
    };
    let any = |_: &crate::devices::GenericDevice| true;
    // PCI controllers.
    order.extend(
        (0..v.controllers.len())
            .filter(|&i| v.controllers[i].kind == "pci" && !v.controllers[i].is_pci_root())
            .map(Dev::Controller),
    );
    order.extend(others_of("filesystem", &any));
    order.extend(
        (0..v.interfaces.len())
            .filter(|&i| !v.interfaces[i].is_hostdev())
            .map(Dev::Iface),
    );
    order.extend(others_of("sound", &|o| {
        !matches!(o.model().as_deref(), Some("sb16" | "pcspk" | "usb"))
    }));
    let mut usb2: Vec<usize> = Vec::new();
    for (i, c) in v.controllers.iter().enumerate() {
        let skip = c.kind == "pci"
            || (c.kind == "usb" && c.model() == Some("none"))
            || c.kind == "fdc"
            || c.kind == "ccid"
            || (c.kind == "ide" && c.idx() == 0)
            || (c.kind == "scsi" && c.model() == Some("ncr53c90"));
        if skip {
            continue;
        }
        if usb2_function(c).is_some() {
            usb2.push(i);
        }
        order.push(Dev::Controller(i));
    }
    for (i, disk) in v.disks.iter().enumerate() {
        if disk.bus() != Some("virtio") {
            continue;
        }
        let r = Dev::Disk(i);
        if devs::pci_present(d, r).is_some() {
            continue;
        }
        match &disk.info.address {
            Some(DeviceAddress::Other(el))
                if matches!(el.get_attr("type"), Some("ccw" | "virtio-mmio")) =>
            {
                continue
            }
            Some(a) if a.pci().is_none() => {
                let t = a
                    .to_element()
                    .get_attr("type")
                    .unwrap_or_default()
                    .to_string();
                return Err(err(
                    d,
                    Some(r),
                    format!("virtio disk cannot have an address of type '{t}'"),
                ));
            }
            _ => order.push(r),
        }
    }
    order.extend(
        (0..v.interfaces.len())
            .filter(|&i| v.interfaces[i].is_hostdev())
            .map(Dev::Iface),
    );
    order.extend(others_of("hostdev", &|o| {
        o.attr("mode").unwrap_or("subsystem") == "subsystem"
            && (matches!(o.attr("type"), Some("pci" | "scsi_host"))
                || (o.attr("type") == Some("mdev") && o.attr("model") == Some("vfio-pci")))
    }));
    if v.memballoon.is_some() {
        order.push(Dev::Memballoon);
    }
    order.extend(others_of("rng", &any));
    order.extend(others_of("watchdog", &any));
    order.extend(others_of("video", &any));
    order.extend(others_of("shmem", &any));
    order.extend((0..v.inputs.len()).map(Dev::Input));
    order.extend((0..v.serials.len()).map(Dev::Serial));
    for kind in ["iommu", "vsock", "memory", "crypto", "panic"] {
        order.extend(others_of(kind, &any));
    }
    for r in order {
        if let Dev::Controller(i) = r {
            if usb2.contains(&i) {
                assign_usb2(d, set, i, pcie_root)?;
                continue;
            }
        }
        let skip_unassigned = matches!(devs::address(d, r), Some(DeviceAddress::Other(el)) if el.get_attr("type") == Some("unassigned"));
        if skip_unassigned {
            continue;
        }
        if let Some(f) = wanted_with(d, r, pcie_root) {
            reserve_next_for(d, set, r, f)?;
        }
    }
    Ok(())
}

/// The slot function of a USB2 EHCI/UHCI companion controller.
fn usb2_function(c: &Controller) -> Option<(u8, Option<&'static str>)> {
    if c.kind != "usb" {
        return None;
    }
    match c.model() {
        Some("ich9-ehci1") => Some((7, None)),
        Some("ich9-uhci1") => Some((0, Some("on"))),
        Some("ich9-uhci2") => Some((1, None)),
        Some("ich9-uhci3") => Some((2, None)),
        _ => None,
    }
}

/// USB2 companions of one index share a slot.
fn assign_usb2(
    d: &mut Domain,
    set: &mut AddrSet,
    i: usize,
    pcie_root: bool,
) -> Result<(), ConfError> {
    let r = Dev::Controller(i);
    let Some(f) = wanted_with(d, r, pcie_root) else {
        return Ok(());
    };
    let c = &d.devices.controllers[i];
    let (function, multi) = usb2_function(c).expect("usb2 controller");
    let idx = c.idx();
    let sibling = d.devices.controllers.iter().enumerate().find_map(|(j, o)| {
        (usb2_function(o).is_some() && o.idx() == idx)
            .then(|| devs::pci_present(d, Dev::Controller(j)))
            .flatten()
    });
    let addr = match sibling {
        Some(s) => {
            let a = PciAddress { function, ..s };
            set.reserve(&a, f, false).map_err(|m| err(d, Some(r), m))?;
            a
        }
        None => set
            .reserve_next(f, Some(function))
            .map_err(|m| err(d, Some(r), m))?,
    };
    if !set.dry_run {
        devs::set_pci(d, r, addr, multi);
    }
    Ok(())
}

/// Sets `multifunction='on'` on function 0 of every slot with more than one function in use.
fn set_all_multifunction(d: &mut Domain) {
    let all = devs::all(d);
    let used: Vec<(Dev, PciAddress)> = all
        .iter()
        .filter_map(|&r| {
            devs::address(d, r)
                .and_then(DeviceAddress::pci)
                .map(|a| (r, a))
        })
        .collect();
    for (_, a) in used.iter().filter(|(_, a)| a.function != 0) {
        if let Some((r0, _)) = used.iter().find(|(_, b)| {
            b.domain == a.domain && b.bus == a.bus && b.slot == a.slot && b.function == 0
        }) {
            devs::set_multifunction_on(d, *r0);
        }
    }
}

/// Model names and target options of PCI controllers (after qemuDomainAssignPCIAddresses).
fn pci_controller_defaults(d: &mut Domain) -> Result<(), ConfError> {
    let lowest_bus_nr = d
        .devices
        .controllers
        .iter()
        .filter(|c| c.kind == "pci")
        .filter_map(|c| c.target.bus_nr)
        .min()
        .unwrap_or(256);
    let mut next_bus_nr = lowest_bus_nr;
    for c in d.devices.controllers.iter_mut().filter(|c| c.kind == "pci") {
        let model = c.model().unwrap_or_default().to_string();
        if c.model_name.is_none() {
            c.model_name = match model.as_str() {
                "pci-bridge" => Some("pci-bridge"),
                "dmi-to-pci-bridge" => Some("i82801b11-bridge"),
                "pcie-to-pci-bridge" => Some("pcie-pci-bridge"),
                "pcie-root-port" => Some("pcie-root-port"),
                "pcie-switch-upstream-port" => Some("x3130-upstream"),
                "pcie-switch-downstream-port" => Some("xio3130-downstream"),
                "pci-expander-bus" => Some("pxb"),
                "pcie-expander-bus" => Some("pxb-pcie"),
                _ => None,
            }
            .map(str::to_string);
        }
        let addr = c.info.pci().unwrap_or_default();
        let idx = c.idx();
        match model.as_str() {
            "pci-bridge" => {
                c.target.chassis_nr.get_or_insert(idx);
                if idx <= u32::from(addr.bus) && c.info.pci().is_some() {
                    return Err(ConfError::unsupported(
                        pos_or(c.pos, d.pos),
                        format!(
                            "PCI controller at index {idx} ({idx:#04x}) has bus='{:#04x}', but index must be larger than bus",
                            addr.bus
                        ),
                    ));
                }
            }
            "pcie-root-port" => {
                c.target.chassis.get_or_insert(idx);
                c.target
                    .port
                    .get_or_insert((u32::from(addr.slot) << 3) + u32::from(addr.function));
            }
            "pcie-switch-downstream-port" => {
                c.target.chassis.get_or_insert(idx);
                c.target.port.get_or_insert(u32::from(addr.slot));
            }
            "pci-expander-bus" | "pcie-expander-bus" if c.target.bus_nr.is_none() => {
                if next_bus_nr <= 2 {
                    return Err(ConfError::unsupported(
                        pos_or(c.pos, d.pos),
                        format!(
                            "No free busNr lower than current lowest busNr is available to auto-assign to bus {}. Must be manually assigned",
                            addr.bus
                        ),
                    ));
                }
                next_bus_nr -= 2;
                c.target.bus_nr = Some(next_bus_nr);
            }
            _ => {}
        }
    }
    Ok(())
}

fn pos_or(p: Pos, fallback: Pos) -> Pos {
    if p.is_known() {
        p
    } else {
        fallback
    }
}

/// Every device's guest PCI address.
pub(crate) fn addresses_in_use(d: &Domain) -> Vec<(String, PciAddress, Pos)> {
    devs::all(d)
        .into_iter()
        .filter_map(|r| {
            devs::address(d, r)
                .and_then(DeviceAddress::pci)
                .map(|a| (devs::describe(d, r), a, devs::pos(d, r)))
        })
        .collect()
}

/// The slot a hot-plugged virtio (PCI Express capable) endpoint would get.
pub(crate) fn next_free_slot(d: &Domain) -> Option<PciAddress> {
    let max_idx = max_pci_index(d)?;
    let mut d = d.clone();
    let mut set = create_set(&d, max_idx as usize + 1, false).ok()?;
    validate_chipset(&mut d, &mut set).ok()?;
    let pcie = if has_root(&d, "pcie-root") {
        Flags::PCIE_DEVICE
    } else {
        Flags::PCI_DEVICE
    };
    set.next_addr(pcie | Flags::AUTOASSIGN | Flags::HOTPLUGGABLE, None)
        .ok()
}

#[cfg(test)]
mod tests;
