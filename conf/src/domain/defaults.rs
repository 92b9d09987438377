//! libvirt's post-parse step for the x86_64 QEMU driver (everything but PCI addresses, which
//! `crate::pci` assigns afterwards): implicit devices, default models, memory, CPU, lifecycle.

use super::cpu::{Cpu, CpuModel, Vcpu};
use super::misc::Clock;
use super::Domain;
use crate::address::DeviceAddress;
use crate::devices::{Audio, Chardev, ChrKind, Controller, GenericDevice, Input, Memballoon};
use crate::error::ConfError;
use crate::xml::{Element, Pos};

/// The default CPU model QEMU reports for x86 machine types.
const DEFAULT_CPU_MODEL: &str = "qemu64";

pub(super) fn fill(d: &mut Domain) -> Result<(), ConfError> {
    let arch = d.os.arch.get_or_insert_with(|| "x86_64".into()).clone();
    if d.devices.emulator.is_none() {
        d.devices.emulator = Some(format!("/usr/bin/qemu-system-{arch}"));
    }
    if d.os.machine.is_none() {
        d.os.machine = Some("pc".into());
    }
    boot_order(d)?;
    console_compat(d)?;
    default_devices(d)?;
    default_cpu(d);
    if d.vcpu.is_none() {
        d.vcpu = Some(Vcpu::default());
    }
    if let Some(v) = d.vcpu.as_mut() {
        if v.placement.is_none() {
            v.placement = Some("static".into());
        }
    }
    device_defaults(d)?;
    memory(d)?;
    if d.clock.is_none() {
        d.clock = Some(Clock::default());
    }
    d.on_poweroff.get_or_insert_with(|| "destroy".into());
    d.on_reboot.get_or_insert_with(|| "restart".into());
    d.on_crash.get_or_insert_with(|| "destroy".into());
    reject_duplicate_controllers(d)?;
    implicit_controllers(d)?;
    virtio_serial_addresses(d)?;
    Ok(())
}

fn boot_order(d: &mut Domain) -> Result<(), ConfError> {
    let dev = &d.devices;
    let device_boot = dev
        .disks
        .iter()
        .find_map(|x| x.info.boot_order.map(|_| x.pos))
        .or_else(|| {
            dev.interfaces
                .iter()
                .find(|i| i.boot_order().is_some())
                .map(|i| i.pos)
        })
        .or_else(|| {
            dev.others
                .iter()
                .find(|o| o.boot_order().is_some())
                .map(|o| o.pos)
        });
    match (device_boot, d.os.boot.is_empty()) {
        (Some(pos), false) => Err(ConfError::unsupported(
            pos,
            "per-device boot elements cannot be used together with os/boot elements; use one or the other",
        )),
        (None, true) => {
            d.os.boot.push("hd".into());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// libvirt's console compatibility: the first `<console>` of an HVM guest is an alias of the
/// first serial port (created from the console when there is none), and a serial port without
/// a console gets a stub console.
fn console_compat(d: &mut Domain) -> Result<(), ConfError> {
    let dev = &mut d.devices;
    for c in dev.consoles.iter().skip(1) {
        if c.target_type() == Some("serial") {
            return Err(ConfError::unsupported(
                c.pos,
                "Only the first console can be a serial port",
            ));
        }
    }
    let first_is_serial = dev
        .consoles
        .first()
        .is_some_and(|c| matches!(c.target_type(), None | Some("serial")));
    if first_is_serial {
        if dev.serials.is_empty() {
            let mut s = dev.consoles[0].clone();
            s.kind = ChrKind::Serial;
            s.target = Default::default();
            s.target.port = Some(0);
            dev.serials.push(s);
            let mut stub = Chardev::new(ChrKind::Console, dev.consoles[0].source.clone());
            stub.pos = dev.consoles[0].pos;
            stub.target.port = Some(0);
            dev.consoles[0] = stub;
        }
        dev.consoles[0].target.target_type = Some("serial".into());
    } else if let Some(s) = dev.serials.first() {
        let stubbed = matches!(
            s.target_type(),
            None | Some("isa-serial" | "spapr-vio-serial" | "system-serial" | "sclp-serial")
        );
        if stubbed {
            let mut stub = Chardev::new(ChrKind::Console, s.source.clone());
            stub.target.target_type = Some("serial".into());
            stub.target.port = Some(0);
            dev.consoles.insert(0, stub);
        }
    }
    Ok(())
}

/// qemuDomainDefAddDefaultDevices for x86: PS/2 inputs, USB, SATA (q35), the PCI root,
/// the balloon, the iTCO watchdog (q35) and the audio backend.
fn default_devices(d: &mut Domain) -> Result<(), ConfError> {
    let q35 = d.os.is_q35();
    let i440fx = d.os.is_i440fx();
    let machine = d.os.machine.clone().unwrap_or_default();
    let ps2_off = d
        .features
        .as_ref()
        .and_then(|f| f.get("ps2"))
        .is_some_and(|f| f.get_attr("state") == Some("off"));
    let dev = &mut d.devices;
    if !ps2_off && machine != "microvm" {
        for t in ["mouse", "keyboard"] {
            if !dev.inputs.iter().any(|i| i.is(t, "ps2")) {
                dev.inputs.push(Input::new(t, "ps2"));
            }
        }
    }
    if machine == "isapc" || machine == "microvm" {
        return Ok(());
    }
    // model='none' disables USB: no default controller next to it (a re-read would refuse
    // the pair).
    let usb_disabled = dev
        .controllers
        .iter()
        .any(|c| c.kind == "usb" && c.model() == Some("none"));
    if !usb_disabled && dev.controller("usb", 0).is_none() {
        let model = if q35 { "qemu-xhci" } else { "piix3-uhci" };
        dev.insert_controller(Controller::new("usb", 0, Some(model)));
    }
    if q35 && dev.controller("sata", 0).is_none() {
        dev.insert_controller(Controller::new("sata", 0, None));
    }
    let root = if q35 {
        Some("pcie-root")
    } else if i440fx {
        Some("pci-root")
    } else {
        None
    };
    if let Some(root) = root {
        match dev.controller("pci", 0) {
            Some(c) if c.model() != Some(root) => {
                return Err(ConfError::InvalidAttr {
                    pos: c.pos,
                    element: "controller".into(),
                    attr: "model".into(),
                    value: c.model().unwrap_or_default().to_string(),
                    expected: format!(
                        "'{root}': the PCI controller with index='0' must be model='{root}' for machine type '{machine}'"
                    ),
                })
            }
            Some(_) => {}
            None => dev.insert_controller(Controller::new("pci", 0, Some(root))),
        }
    }
    if dev.memballoon.is_none() {
        dev.memballoon = Some(Memballoon::virtio());
    }
    if q35 {
        let watchdogs: Vec<&GenericDevice> = dev.others_of("watchdog").collect();
        if !watchdogs.iter().any(|w| w.attr("model") == Some("itco")) {
            let action = watchdogs
                .first()
                .and_then(|w| w.attr("action"))
                .unwrap_or("reset")
                .to_string();
            dev.others.push(GenericDevice::new(
                Element::new("watchdog")
                    .attr("model", "itco")
                    .attr("action", action),
            ));
        }
    }
    if dev.audios.is_empty() {
        let mut audio = None;
        let mut graphics = 0;
        for g in dev.others_of("graphics") {
            graphics += 1;
            match g.attr("type") {
                Some("vnc") => audio = Some("none"),
                Some("spice") => audio = Some("spice"),
                Some("sdl") => audio = Some("sdl"),
                _ => {}
            }
        }
        if graphics == 0 {
            audio = Some("none");
        }
        if let Some(a) = audio {
            dev.audios.push(Audio::new(1, a));
        }
    }
    Ok(())
}

/// qemuDomainDefSetDefaultCPU and qemuDomainDefCPUPostParse.
fn default_cpu(d: &mut Domain) {
    let qemu = d.domain_type == super::DomainType::Qemu;
    let cpu = d.cpu.get_or_insert_with(Cpu::default);
    if cpu.mode() == "custom" && cpu.model_name().is_none() {
        cpu.mode = Some("custom".into());
        cpu.match_ = Some("exact".into());
        cpu.check = Some("none".into());
        let extra = cpu.model.take().map(|m| m.extra).unwrap_or_default();
        cpu.model = Some(CpuModel {
            name: Some(DEFAULT_CPU_MODEL.into()),
            fallback: Some("forbid".into()),
            extra,
        });
    }
    if cpu.mode() == "host-passthrough" && cpu.migratable.is_none() {
        cpu.migratable = Some("on".into());
    }
    if cpu.check.is_none() {
        cpu.check = Some(
            match cpu.mode() {
                "host-passthrough" | "maximum" => "none",
                "host-model" => "partial",
                _ if qemu => "none",
                _ => "partial",
            }
            .into(),
        );
    }
    if cpu.mode() == "custom" && cpu.match_.is_none() {
        cpu.match_ = Some("exact".into());
    }
    if let Some(t) = cpu.topology.as_mut() {
        t.dies.get_or_insert(1);
        t.clusters.get_or_insert(1);
    }
}

/// Per-device defaults (libvirt's device post-parse callbacks).
fn device_defaults(d: &mut Domain) -> Result<(), ConfError> {
    let q35 = d.os.is_q35();
    let x86 = matches!(d.os.arch.as_deref(), Some("x86_64" | "i686"));
    let dev = &mut d.devices;
    for i in &mut dev.interfaces {
        i.fill_defaults();
    }
    for disk in &mut dev.disks {
        disk.fill_defaults()?;
    }
    // Controllers without an index get the first unused one of their type.
    for i in 0..dev.controllers.len() {
        if dev.controllers[i].index.is_none() {
            let kind = dev.controllers[i].kind.clone();
            let mut n = 0;
            while dev
                .controllers
                .iter()
                .any(|c| c.kind == kind && c.index == Some(n))
            {
                n += 1;
            }
            dev.controllers[i].index = Some(n);
        }
    }
    // Implicit controllers were added before the indexes were chosen: restore the order a
    // re-read of the output would give.
    dev.sort_controllers();
    for c in &mut dev.controllers {
        match c.kind.as_str() {
            "usb" if c.model.is_none() => {
                c.model = Some(if q35 { "qemu-xhci" } else { "piix3-uhci" }.into());
            }
            "usb" if c.model() == Some("none") => c.info.address = None,
            "scsi" if matches!(c.model(), None | Some("auto")) => c.model = Some("lsilogic".into()),
            "pci" if c.is_pci_root() && c.idx() != 0 => {
                return Err(ConfError::InvalidAttr {
                    pos: c.pos,
                    element: "controller".into(),
                    attr: "index".into(),
                    value: c.idx().to_string(),
                    expected: "0: pci-root and pcie-root controllers should have index 0".into(),
                })
            }
            _ => {}
        }
        if matches!(c.model(), Some("qemu-xhci" | "nec-xhci")) && c.ports.is_some_and(|p| p > 15) {
            return Err(ConfError::unsupported(
                c.pos,
                format!(
                    "'{}' controller only supports up to '15' ports",
                    c.model().unwrap_or_default()
                ),
            ));
        }
    }
    for s in &mut dev.serials {
        if s.target.target_type.is_none() && x86 {
            s.target.target_type = Some("isa-serial".into());
        }
        if s.target.model.is_none() {
            s.target.model = match s.target_type() {
                Some("isa-serial") => Some("isa-serial".into()),
                Some("usb-serial") => Some("usb-serial".into()),
                Some("pci-serial") => Some("pci-serial".into()),
                Some("isa-debug") => Some("isa-debugcon".into()),
                _ => None,
            };
        }
    }
    video_defaults(dev);
    Ok(())
}

const VIDEO_MODEL_ATTRS: &[&str] = &[
    "type", "ram", "vram", "vram64", "vgamem", "heads", "primary",
];

/// Video model defaults (type cirrus, memory sizes, one head) and the primary video first.
fn video_defaults(dev: &mut crate::devices::Devices) {
    if dev.others_of("video").next().is_none() && dev.others_of("graphics").next().is_some() {
        dev.others.push(GenericDevice::new(
            Element::new("video").child(Element::new("model").attr("type", "cirrus")),
        ));
    }
    let primary_idx = dev
        .others
        .iter()
        .position(|o| o.kind() == "video" && o.child_attr("model", "primary") == Some("yes"));
    let first_video = dev.others.iter().position(|o| o.kind() == "video");
    if let (Some(p), Some(f)) = (primary_idx, first_video) {
        if p != f {
            let v = dev.others.remove(p);
            dev.others.insert(f, v);
        }
    }
    let mut first = true;
    for v in dev.others.iter_mut().filter(|o| o.kind() == "video") {
        let el = &mut v.element;
        if el.get_child("model").is_none() {
            el.children.insert(0, Element::new("model"));
        }
        let m = el
            .children
            .iter_mut()
            .find(|c| c.name == "model")
            .expect("model present");
        if m.get_attr("type").is_none() {
            m.push_attr("type", "cirrus");
        }
        let ty = m.get_attr("type").unwrap_or_default().to_string();
        let set = |m: &mut Element, k: &str, v: &str| {
            if m.get_attr(k).is_none() {
                m.push_attr(k, v);
            }
        };
        match ty.as_str() {
            "vga" | "cirrus" | "vmvga" | "bochs" => set(m, "vram", "16384"),
            "qxl" => {
                set(m, "ram", "65536");
                set(m, "vram", "65536");
                set(m, "vgamem", "16384");
            }
            _ => {}
        }
        if ty != "none" {
            set(m, "heads", "1");
        }
        if first && ty != "none" {
            set(m, "primary", "yes");
        }
        first = false;
        m.attrs
            .sort_by_key(|a| super::util::rank(VIDEO_MODEL_ATTRS, &a.name));
    }
}

/// virDomainDefPostParseMemory.
fn memory(d: &mut Domain) -> Result<(), ConfError> {
    let numa = d.cpu.as_ref().map_or(0, Cpu::numa_memory_kib);
    let m = &mut d.memory;
    if m.total_kib == 0 {
        m.total_kib = numa;
        // Written back as <memory unit='KiB'>, it must still fit 64 bits of bytes.
        if numa > u64::MAX / 1024 {
            let pos = d
                .cpu
                .as_ref()
                .and_then(|c| c.numa.first())
                .map_or(d.pos, |c| c.pos);
            return Err(ConfError::unsupported(
                pos,
                "the NUMA cells add up to more than 16 EiB of memory: make the cells smaller",
            ));
        }
    }
    if m.total_kib == 0 {
        return Err(ConfError::MissingElement {
            pos: d.pos,
            element: "domain".into(),
            child: "memory".into(),
            hint: "; Memory size must be specified via <memory> or in the <numa> configuration"
                .into(),
        });
    }
    if m.current_kib.is_none_or(|c| c == 0 || c > m.total_kib) {
        m.current_kib = Some(m.total_kib);
    }
    // <maxMemory>, else <memory>, else <domain> (memory sized by the NUMA cells).
    let max_pos = [m.max_pos, m.pos, d.pos]
        .into_iter()
        .find(Pos::is_known)
        .unwrap_or(d.pos);
    if m.max_kib.is_some() != m.max_slots.is_some() {
        return Err(ConfError::unsupported(
            max_pos,
            "both maximum memory size and memory slot count must be specified (<maxMemory slots='N' unit='KiB'>size</maxMemory>)",
        ));
    }
    if m.max_kib.is_some_and(|max| max < m.total_kib) {
        return Err(ConfError::unsupported(
            max_pos,
            "maximum memory size must be equal or greater than the actual memory size",
        ));
    }
    Ok(())
}

fn reject_duplicate_controllers(d: &Domain) -> Result<(), ConfError> {
    let cs = &d.devices.controllers;
    for (i, c) in cs.iter().enumerate() {
        if cs[..i]
            .iter()
            .any(|o| o.kind == c.kind && o.index == c.index)
        {
            return Err(ConfError::conflict(
                c.pos,
                format!("Multiple '{}' controllers with index '{}'", c.kind, c.idx()),
            ));
        }
    }
    Ok(())
}

/// The most disk controllers of one type the defaults add for a disk's drive address (the
/// address, or a target name such as 'sdzzz', could otherwise ask for billions).
const MAX_IMPLIED_CONTROLLERS: u64 = 256;

/// Controllers implied by disks (SCSI, floppy, IDE, SATA) and by virtio consoles and channels.
fn implicit_controllers(d: &mut Domain) -> Result<(), ConfError> {
    let dev = &mut d.devices;
    for (kind, bus, model) in [
        ("scsi", "scsi", Some("lsilogic")),
        ("fdc", "fdc", None),
        ("ide", "ide", None),
        ("sata", "sata", None),
    ] {
        let max = dev
            .disks
            .iter()
            .filter(|x| x.bus() == Some(bus))
            .filter_map(|x| match &x.info.address {
                Some(DeviceAddress::Drive { controller, .. }) => Some((*controller, x)),
                _ => None,
            })
            .max_by_key(|(c, _)| *c);
        if let Some((max, disk)) = max {
            let present = dev
                .controllers
                .iter()
                .filter(|c| c.kind == kind && c.index.is_some_and(|i| i <= max))
                .count() as u64;
            let missing = (u64::from(max) + 1).saturating_sub(present);
            if missing > MAX_IMPLIED_CONTROLLERS {
                return Err(ConfError::unsupported(
                    disk.pos,
                    format!(
                        "disk '{}' is on {kind} controller {max} (its drive <address>, or \
                         the one its target name implies), which would add {missing} {kind} \
                         controllers; at most {MAX_IMPLIED_CONTROLLERS} are added: give it a \
                         drive address on a lower controller, or define the controllers",
                        disk.target.dev
                    ),
                ));
            }
            for i in 0..=max {
                if dev.controller(kind, i).is_none() {
                    dev.insert_controller(Controller::new(kind, i, model));
                }
            }
        }
    }
    let virtio_serial: Vec<u32> = dev
        .channels
        .iter()
        .chain(&dev.consoles)
        .filter(|c| c.target_type() == Some("virtio"))
        .map(|c| virtio_serial_addr(&c.info.address).map_or(0, |(ctl, _, _)| ctl))
        .collect();
    for i in virtio_serial {
        if dev.controller("virtio-serial", i).is_none() {
            dev.insert_controller(Controller::new("virtio-serial", i, None));
        }
    }
    Ok(())
}

/// (controller, bus, port) of an `<address type='virtio-serial'>`.
fn virtio_serial_addr(a: &Option<DeviceAddress>) -> Option<(u32, u32, Option<u32>)> {
    match a {
        Some(DeviceAddress::Other(el)) if el.get_attr("type") == Some("virtio-serial") => {
            let n = |k: &str| el.get_attr(k).and_then(|v| v.parse::<u32>().ok());
            Some((
                n("controller").unwrap_or(0),
                n("bus").unwrap_or(0),
                n("port"),
            ))
        }
        _ => None,
    }
}

/// Ports on the virtio-serial controllers for virtio consoles (from port 0) and channels
/// (from port 1), as qemuDomainAssignVirtioSerialAddresses does.
fn virtio_serial_addresses(d: &mut Domain) -> Result<(), ConfError> {
    let dev = &mut d.devices;
    let controllers: Vec<(u32, u32)> = dev
        .controllers
        .iter()
        .filter(|c| c.kind == "virtio-serial")
        .map(|c| (c.idx(), c.ports.unwrap_or(31)))
        .collect();
    let mut used: Vec<(u32, u32)> = dev
        .consoles
        .iter()
        .chain(&dev.channels)
        .filter_map(|c| virtio_serial_addr(&c.info.address))
        .filter_map(|(ctl, _, p)| p.map(|p| (ctl, p)))
        .collect();
    let consoles = dev.consoles.iter_mut().map(|c| (c, 0u32));
    let channels = dev.channels.iter_mut().map(|c| (c, 1u32));
    for (c, first_port) in consoles.chain(channels) {
        if c.target_type() != Some("virtio") {
            continue;
        }
        let want_ctl = match virtio_serial_addr(&c.info.address) {
            Some((_, _, Some(_))) => continue,
            Some((ctl, _, None)) => Some(ctl),
            None if c.info.address.is_none() => None,
            None => continue,
        };
        let mut found = None;
        for &(ctl, ports) in &controllers {
            if want_ctl.is_some_and(|w| w != ctl) {
                continue;
            }
            if let Some(p) = (first_port..ports).find(|p| !used.contains(&(ctl, *p))) {
                found = Some((ctl, p));
                break;
            }
        }
        let (ctl, p) = found.ok_or_else(|| {
            ConfError::unsupported(
                c.pos,
                "Unable to find a free virtio-serial port; add a <controller type='virtio-serial'/>",
            )
        })?;
        used.push((ctl, p));
        c.info.address = Some(DeviceAddress::Other(
            Element::new("address")
                .attr("type", "virtio-serial")
                .attr("controller", ctl)
                .attr("bus", 0)
                .attr("port", p),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "defaults_tests.rs"]
mod tests;
