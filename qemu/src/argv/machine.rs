//! The head of the command line: machine, accelerator, CPU, SMP, clock, boot.

use virtnet_conf::Domain;

use super::caps::Accel;
use super::opts::{escape_comma, id_is_safe};
use crate::error::QemuError;

fn unsupported(device: &str, message: impl Into<String>) -> QemuError {
    QemuError::UnsupportedDevice {
        device: device.to_string(),
        message: message.into(),
    }
}

/// `-name guest=NAME,debug-threads=on`.
pub(crate) fn name_arg(domain: &Domain) -> String {
    format!("guest={},debug-threads=on", escape_comma(domain.name()))
}

/// The `-machine` value: `TYPE,usb=off,dump-guest-core=off[,memory-backend=pc.ram],acpi=on|off`.
///
/// ACPI follows `<features><acpi/>` as libvirt does: without it the guest gets `acpi=off`, and
/// then PCI hot-plug on i440fx does nothing (it is done through ACPI).
pub(crate) fn machine_arg(
    domain: &Domain,
    memory_backend: Option<&str>,
) -> Result<String, QemuError> {
    let machine = domain.machine().unwrap_or("pc");
    if !id_is_safe(machine) {
        return Err(unsupported(
            "<os><type machine>",
            format!("'{machine}' is not a machine type QEMU knows: use e.g. 'pc' or 'q35'"),
        ));
    }
    if !(domain.machine_is_i440fx() || domain.machine_is_q35()) {
        return Err(unsupported(
            "<os><type machine>",
            format!(
                "machine type '{machine}' is not supported: virtnet builds x86 'pc' (i440fx) \
                 and 'q35' guests"
            ),
        ));
    }
    if let Some(arch) = domain.arch().filter(|a| *a != "x86_64") {
        return Err(unsupported(
            "<os><type arch>",
            format!("arch '{arch}' is not supported: virtnet builds x86_64 guests"),
        ));
    }
    let mut m = format!("{machine},usb=off");
    let dump = domain.memory.dump_core.as_deref().unwrap_or("off");
    m.push_str(&format!(",dump-guest-core={dump}"));
    if let Some(b) = memory_backend {
        m.push_str(&format!(",memory-backend={b}"));
    }
    let features = domain.features.as_ref();
    if let Some(vmport) = features.and_then(|f| f.get("vmport")) {
        m.push_str(&format!(
            ",vmport={}",
            vmport.get_attr("state").unwrap_or("on")
        ));
    }
    let acpi = features.is_some_and(|f| f.is_on("acpi"));
    m.push_str(if acpi { ",acpi=on" } else { ",acpi=off" });
    Ok(m)
}

/// Refuses `<features>` the builder does not know how to express; `acpi`, `apic`, `pae`
/// (always on for x86_64) and `vmport` are handled.
pub(crate) fn check_features(domain: &Domain) -> Result<(), QemuError> {
    let Some(f) = &domain.features else {
        return Ok(());
    };
    for el in &f.list {
        if !matches!(el.name.as_str(), "acpi" | "apic" | "pae" | "vmport") {
            return Err(unsupported(
                &format!("<features><{}>", el.name),
                "this feature is not supported yet: remove it (acpi, apic, pae and vmport are \
                 supported)",
            ));
        }
    }
    Ok(())
}

/// The `-cpu` value.
///
/// No `<cpu>` or a custom model: the model (libvirt's default is `qemu64`) with its
/// `<feature>`s as `name=on|off`. `host-passthrough`/`host-model`: `host` under KVM; under TCG,
/// where `host` does not exist, `max` (every feature TCG emulates). `maximum`: `max`.
pub(crate) fn cpu_arg(domain: &Domain, accel: Accel) -> Result<String, QemuError> {
    let Some(cpu) = &domain.cpu else {
        return Ok("qemu64".into());
    };
    let mut arg = match (cpu.mode(), accel) {
        ("host-passthrough" | "host-model", Accel::Kvm) => "host".to_string(),
        ("host-passthrough" | "host-model" | "maximum", _) => "max".to_string(),
        _ => cpu.model_name().unwrap_or("qemu64").to_string(),
    };
    if !id_is_safe(&arg) {
        return Err(unsupported(
            "<cpu><model>",
            format!("'{arg}' is not a CPU model name QEMU knows: use e.g. 'qemu64'"),
        ));
    }
    for f in &cpu.features {
        let Some(name) = f.get_attr("name") else {
            continue;
        };
        if !id_is_safe(name) {
            return Err(unsupported(
                "<cpu><feature>",
                format!("'{name}' is not a CPU feature name"),
            ));
        }
        match f.get_attr("policy").unwrap_or("require") {
            "require" | "force" => arg.push_str(&format!(",{name}=on")),
            "disable" | "forbid" => arg.push_str(&format!(",{name}=off")),
            _ => {}
        }
    }
    Ok(arg)
}

/// The `-smp` value: `N[,maxcpus=M],sockets=S[,dies=D][,clusters=C],cores=C,threads=T`.
pub(crate) fn smp_arg(domain: &Domain) -> Result<String, QemuError> {
    let max = domain.vcpus().max(1);
    let online = domain.vcpus_online().clamp(1, max);
    let topo = domain.cpu.as_ref().and_then(|c| c.topology.as_ref());
    let (sockets, dies, clusters, cores, threads) = match topo {
        Some(t) => (
            t.sockets.unwrap_or(1),
            t.dies.unwrap_or(1),
            t.clusters.unwrap_or(1),
            t.cores.unwrap_or(1),
            t.threads.unwrap_or(1),
        ),
        None => (max, 1, 1, 1, 1),
    };
    let product = u64::from(sockets)
        * u64::from(dies)
        * u64::from(clusters)
        * u64::from(cores)
        * u64::from(threads);
    if product != u64::from(max) {
        return Err(unsupported(
            "<cpu><topology>",
            format!(
                "sockets*dies*clusters*cores*threads = {product} but <vcpu> is {max}: make them \
                 equal"
            ),
        ));
    }
    let mut s = online.to_string();
    if online != max {
        s.push_str(&format!(",maxcpus={max}"));
    }
    s.push_str(&format!(",sockets={sockets}"));
    if dies != 1 {
        s.push_str(&format!(",dies={dies}"));
    }
    if clusters != 1 {
        s.push_str(&format!(",clusters={clusters}"));
    }
    s.push_str(&format!(",cores={cores},threads={threads}"));
    Ok(s)
}

/// The `-rtc` value from `<clock offset>`.
pub(crate) fn rtc_arg(domain: &Domain) -> Result<String, QemuError> {
    let offset = domain.clock.as_ref().map_or("utc", |c| c.offset.as_str());
    match offset {
        "utc" => Ok("base=utc".into()),
        "localtime" => Ok("base=localtime".into()),
        other => Err(unsupported(
            &format!("<clock offset='{other}'>"),
            "only offset='utc' and offset='localtime' are supported",
        )),
    }
}

/// `-boot` (always `strict=on`, plus the boot menu) and direct kernel boot arguments.
pub(crate) fn boot_args(domain: &Domain) -> Result<Vec<String>, QemuError> {
    let os = &domain.os;
    if os.loader.is_some() || os.nvram.is_some() || os.firmware.as_deref() == Some("efi") {
        return Err(unsupported(
            "<os><loader>/<nvram>/firmware='efi'",
            "UEFI firmware is not supported yet: remove them to boot with SeaBIOS (or use \
             <kernel> for direct kernel boot)",
        ));
    }
    if os.dtb.is_some() {
        return Err(unsupported(
            "<os><dtb>",
            "device trees are not used on x86: remove <dtb>",
        ));
    }
    let mut boot = String::new();
    if let Some(menu) = &os.bootmenu {
        if menu.get_attr("enable") == Some("yes") {
            boot.push_str("menu=on,");
            if let Some(t) = menu.get_attr("timeout") {
                let ms: u32 = t.parse().map_err(|_| {
                    unsupported("<bootmenu timeout>", format!("'{t}' is not a number of ms"))
                })?;
                boot.push_str(&format!("splash-time={ms},"));
            }
        }
    }
    boot.push_str("strict=on");
    let mut args = vec!["-boot".to_string(), boot];
    for (opt, v) in [
        ("-kernel", domain.kernel()),
        ("-initrd", domain.initrd()),
        ("-append", domain.cmdline()),
    ] {
        if let Some(v) = v {
            args.push(opt.into());
            args.push(v.into());
        }
    }
    Ok(args)
}

/// `-no-reboot` when `<on_reboot>destroy</on_reboot>` (QEMU exits instead of resetting).
pub(crate) fn lifecycle_args(domain: &Domain) -> Vec<String> {
    if domain.on_reboot.as_deref() == Some("destroy") {
        vec!["-no-reboot".into()]
    } else {
        Vec::new()
    }
}
