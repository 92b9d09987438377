//! Inputs, plain `<hostdev>`s, watchdogs and the balloon; refusal of the devices virtnet does
//! not build (graphics, video, sound, filesystems, ...).

use virtnet_conf::address::PciAddress;
use virtnet_conf::devices::GenericDevice;
use virtnet_conf::Domain;

use super::caps::GuestCtx;
use super::devaddr::address_props;
use super::opts::{id_is_safe, json_arg, Props};
use crate::error::QemuError;

fn unsupported(device: String, message: impl Into<String>) -> QemuError {
    QemuError::UnsupportedDevice {
        device,
        message: message.into(),
    }
}

fn describe(g: &GenericDevice) -> String {
    let mut s = format!("<{}", g.kind());
    for a in ["type", "model"] {
        if let Some(v) = g.attr(a) {
            s.push_str(&format!(" {a}='{v}'"));
        }
    }
    s.push('>');
    s
}

/// Refuses the generic devices the builder cannot express, before anything is built.
pub(crate) fn check_generic(domain: &Domain) -> Result<(), QemuError> {
    for g in &domain.devices.others {
        match g.kind() {
            "hostdev" | "watchdog" => {}
            "video" if g.model().as_deref() == Some("none") => {}
            "video" | "graphics" => {
                return Err(unsupported(
                    describe(g),
                    "graphics are not supported: virtnet runs guests headless (-display none); \
                     remove <graphics> and <video> and use a serial console",
                ))
            }
            "sound" => {
                return Err(unsupported(
                    describe(g),
                    "sound devices are not supported: remove it",
                ))
            }
            _ => {
                return Err(unsupported(
                    describe(g),
                    "this device is not supported yet: remove it",
                ))
            }
        }
    }
    for a in &domain.devices.audios {
        if a.audio_type != "none" {
            return Err(unsupported(
                format!("<audio type='{}'>", a.audio_type),
                "audio back ends are not supported: remove it (or use type='none')",
            ));
        }
    }
    Ok(())
}

/// `-device` arguments of the USB and virtio input devices (PS/2 ones are built in).
pub(crate) fn input_args(domain: &Domain, guest: &GuestCtx) -> Result<Vec<String>, QemuError> {
    let mut args = Vec::new();
    for (i, input) in domain.devices.inputs.iter().enumerate() {
        let bus = input.bus.as_deref().unwrap_or("ps2");
        let t = input.input_type.as_str();
        let driver = match (t, bus) {
            ("mouse" | "keyboard", "ps2") => continue,
            ("tablet", "usb") => "usb-tablet",
            ("mouse", "usb") => "usb-mouse",
            ("keyboard", "usb") => "usb-kbd",
            ("tablet", "virtio") => "virtio-tablet-pci",
            ("mouse", "virtio") => "virtio-mouse-pci",
            ("keyboard", "virtio") => "virtio-keyboard-pci",
            _ => {
                return Err(unsupported(
                    format!("<input type='{t}' bus='{bus}'>"),
                    "this input device is not supported: use bus='usb' or bus='virtio'",
                ))
            }
        };
        let id = input
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("input{i}"));
        let mut p = Props::new();
        p.put("driver", driver).put("id", id);
        address_props(guest, input.info.address.as_ref(), &mut p)
            .map_err(|m| unsupported(format!("<input type='{t}' bus='{bus}'>"), m))?;
        args.push("-device".into());
        args.push(json_arg(&p.into_value()));
    }
    Ok(args)
}

/// `vfio-pci` devices for plain `<hostdev mode='subsystem' type='pci'>` elements, numbered
/// after the hostdev interfaces (`first_index`), as libvirt does.
pub(crate) fn hostdev_args(
    domain: &Domain,
    guest: &GuestCtx,
    first_index: usize,
) -> Result<Vec<String>, QemuError> {
    let mut args = Vec::new();
    for (n, g) in (first_index..).zip(domain.devices.others_of("hostdev")) {
        let desc = describe(g);
        if g.attr("mode").unwrap_or("subsystem") != "subsystem" || g.attr("type") != Some("pci") {
            return Err(unsupported(
                desc,
                "only PCI host devices (mode='subsystem' type='pci') are supported",
            ));
        }
        if let Some(d) = g.child_attr("driver", "name").filter(|d| *d != "vfio") {
            return Err(unsupported(
                desc,
                format!("<driver name='{d}'/> is not supported: use vfio (or remove <driver>)"),
            ));
        }
        let host = g
            .element
            .get_child("source")
            .and_then(|s| s.get_child("address"))
            .map(|a| PciAddress::take_from(&mut a.clone()))
            .transpose()
            .ok()
            .flatten()
            .ok_or_else(|| {
                unsupported(
                    desc.clone(),
                    "it needs <source><address domain bus slot function/></source>",
                )
            })?;
        let id = g
            .alias()
            .map(str::to_string)
            .unwrap_or_else(|| format!("hostdev{n}"));
        if !id_is_safe(&id) {
            return Err(unsupported(
                desc,
                format!("the id '{id}' cannot be used by QEMU"),
            ));
        }
        let failover = g
            .element
            .get_child("teaming")
            .filter(|t| t.get_attr("type") == Some("transient"))
            .and_then(|t| t.get_attr("persistent"));
        let mut p = Props::new();
        p.put("driver", "vfio-pci")
            .put("host", host.to_string())
            .put("id", id)
            .put_opt("bootindex", g.boot_order())
            .put_opt("failover_pair_id", failover);
        address_props(guest, g.address.as_ref(), &mut p).map_err(|m| unsupported(desc, m))?;
        args.push("-device".into());
        args.push(json_arg(&p.into_value()));
    }
    Ok(args)
}

/// Watchdogs: the q35 built-in iTCO (`-global ICH9-LPC.noreboot=off`) or an `i6300esb`
/// device, and `-watchdog-action`.
pub(crate) fn watchdog_args(domain: &Domain, guest: &GuestCtx) -> Result<Vec<String>, QemuError> {
    let mut args = Vec::new();
    let mut action = None;
    let mut itco = false;
    for (i, w) in domain.devices.others_of("watchdog").enumerate() {
        let model = w.model().unwrap_or_default();
        match model.as_str() {
            "itco" if domain.machine_is_q35() => itco = true,
            "i6300esb" => {
                let id = w
                    .alias()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("watchdog{i}"));
                let mut p = Props::new();
                p.put("driver", "i6300esb").put("id", id);
                address_props(guest, w.address.as_ref(), &mut p)
                    .map_err(|m| unsupported(describe(w), m))?;
                args.push("-device".into());
                args.push(json_arg(&p.into_value()));
            }
            _ => {
                return Err(unsupported(
                    describe(w),
                    "this watchdog is not supported: use model='i6300esb' (or itco on q35)",
                ))
            }
        }
        let a = match w.attr("action").unwrap_or("reset") {
            "dump" => "pause",
            a @ ("reset" | "shutdown" | "poweroff" | "pause" | "none" | "inject-nmi") => a,
            other => {
                return Err(unsupported(
                    describe(w),
                    format!("watchdog action '{other}' is not supported"),
                ))
            }
        };
        action = Some(a);
    }
    if itco {
        args.push("-global".into());
        args.push("ICH9-LPC.noreboot=off".into());
    }
    if let Some(a) = action {
        args.push("-watchdog-action".into());
        args.push(a.into());
    }
    Ok(args)
}

/// `virtio-balloon-pci` for `<memballoon model='virtio'>`; nothing for `none`.
pub(crate) fn balloon_args(domain: &Domain, guest: &GuestCtx) -> Result<Vec<String>, QemuError> {
    let Some(b) = &domain.devices.memballoon else {
        return Ok(Vec::new());
    };
    let desc = || format!("<memballoon model='{}'>", b.model);
    let driver = match b.model.as_str() {
        "none" => return Ok(Vec::new()),
        "virtio" => "virtio-balloon-pci",
        "virtio-transitional" => "virtio-balloon-pci-transitional",
        "virtio-non-transitional" => "virtio-balloon-pci-non-transitional",
        _ => {
            return Err(unsupported(
                desc(),
                "only virtio balloons are supported: use model='virtio' or 'none'",
            ))
        }
    };
    let attr = |n: &str| {
        b.attrs
            .iter()
            .find(|a| a.name == n)
            .map(|a| a.value == "on")
    };
    let mut p = Props::new();
    p.put("driver", driver)
        .put(
            "id",
            b.info.alias.clone().unwrap_or_else(|| "balloon0".into()),
        )
        .put_opt("deflate-on-oom", attr("autodeflate"))
        .put_opt("free-page-reporting", attr("freePageReporting"));
    address_props(guest, b.info.address.as_ref(), &mut p).map_err(|m| unsupported(desc(), m))?;
    Ok(vec!["-device".into(), json_arg(&p.into_value())])
}
