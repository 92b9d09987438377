//! Tests of libvirt's post-parse defaults.

use crate::domain::Domain;

fn filled_with(machine: &str, top: &str, devices: &str) -> Result<Domain, crate::ConfError> {
    let mut d = Domain::parse(&format!(
        "<domain type='kvm'><name>g</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory>1048576</memory><os><type arch='x86_64' machine='{machine}'>hvm</type></os>{top}\
         <devices>{devices}</devices></domain>"
    ))?;
    d.fill_defaults()?;
    Ok(d)
}

fn devices_xml(d: &Domain) -> String {
    crate::xml::write_document(&d.devices.to_element())
}

#[test]
fn serial_only_gets_a_console_and_console_only_gets_a_serial() {
    let d = filled_with("pc", "", "<serial type='pty'/>").unwrap();
    let out = devices_xml(&d);
    assert!(out.contains(
        "<serial type='pty'>\n    <target type='isa-serial' port='0'>\n      <model name='isa-serial'/>\n    </target>\n  </serial>\n  <console type='pty'>\n    <target type='serial' port='0'/>\n  </console>"
    ), "{out}");
    let d = filled_with(
        "pc",
        "",
        "<console type='file'><source path='/log'/></console>",
    )
    .unwrap();
    let out = devices_xml(&d);
    assert!(out.contains("<serial type='file'>\n    <source path='/log'/>\n    <target type='isa-serial' port='0'>"), "{out}");
    assert!(out.contains("<console type='file'>\n    <source path='/log'/>\n    <target type='serial' port='0'/>"), "{out}");
    let e = filled_with(
        "pc",
        "",
        "<console type='pty'/><console type='pty'><target type='serial'/></console>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("Only the first console"), "{e}");
}

#[test]
fn implicit_disk_controllers_and_drive_addresses() {
    let d = filled_with(
        "pc",
        "",
        "<disk type='file' device='cdrom'><target dev='hdd'/></disk>\
         <disk type='block'><source dev='/dev/sdx'/><target dev='sdj'/></disk>",
    )
    .unwrap();
    let out = devices_xml(&d);
    assert!(
        out.contains("<address type='drive' controller='0' bus='1' target='0' unit='1'/>"),
        "{out}"
    );
    assert!(
        out.contains("<address type='drive' controller='1' bus='0' target='0' unit='2'/>"),
        "{out}"
    );
    assert!(d
        .devices
        .controller("scsi", 0)
        .is_some_and(|c| c.model() == Some("lsilogic")));
    assert!(d.devices.controller("scsi", 1).is_some());
    // The IDE controller sits on the PIIX3; the SCSI ones get slots.
    let ide = d.devices.controller("ide", 0).unwrap();
    assert_eq!(ide.info.pci().unwrap().to_string(), "0000:00:01.1");
    assert!(d
        .devices
        .controller("scsi", 1)
        .unwrap()
        .info
        .pci()
        .is_some());
}

#[test]
fn q35_defaults() {
    let d = filled_with("pc-q35-9.2", "", "").unwrap();
    let out = devices_xml(&d);
    for want in [
        "<controller type='usb' index='0' model='qemu-xhci'>",
        "<controller type='sata' index='0'>\n    <address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>",
        "<controller type='pci' index='0' model='pcie-root'/>",
        "<watchdog model='itco' action='reset'/>",
    ] {
        assert!(out.contains(want), "{want} missing in\n{out}");
    }
    let e = filled_with(
        "q35",
        "",
        "<controller type='pci' index='0' model='pci-root'/>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("pcie-root"), "{e}");
    let e = filled_with(
        "pc",
        "",
        "<controller type='pci' index='1' model='pci-root'/>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("index 0"), "{e}");
}

#[test]
fn cpu_defaults() {
    let cpu = |top: &str| {
        filled_with("pc", top, "")
            .unwrap()
            .cpu
            .unwrap()
            .to_element()
    };
    let w = |e: crate::xml::Element| crate::xml::write_document(&e);
    assert_eq!(
        w(cpu("<cpu mode='host-passthrough'/>")),
        "<cpu mode='host-passthrough' check='none' migratable='on'/>\n"
    );
    assert_eq!(
        w(cpu("<cpu mode='host-model'/>")),
        "<cpu mode='host-model' check='partial'/>\n"
    );
    assert_eq!(
        w(cpu("<cpu><model>Haswell</model></cpu>")),
        "<cpu mode='custom' match='exact' check='partial'>\n  <model fallback='allow'>Haswell</model>\n</cpu>\n"
    );
    assert_eq!(
        w(cpu("<vcpu>4</vcpu><cpu><topology sockets='1' cores='2' threads='2'/></cpu>")),
        "<cpu mode='custom' match='exact' check='none'>\n  <model fallback='forbid'>qemu64</model>\n  <topology sockets='1' dies='1' clusters='1' cores='2' threads='2'/>\n</cpu>\n"
    );
}

#[test]
fn boot_order_rules() {
    let d = filled_with(
        "pc",
        "",
        "<disk><target dev='vda'/><boot order='1'/></disk>",
    )
    .unwrap();
    assert!(d.os.boot.is_empty());
    let mut d = Domain::parse(
        "<domain type='qemu'><name>g</name><memory>1024</memory><os><type>hvm</type><boot dev='cdrom'/></os>\
         <devices><disk><target dev='vda'/><boot order='1'/></disk></devices></domain>",
    )
    .unwrap();
    let e = d.fill_defaults().unwrap_err();
    assert!(e.to_string().contains("per-device boot"), "{e}");
    assert!(e.pos().is_known());
}

#[test]
fn inputs_audio_and_video() {
    let d = filled_with("pc", "<features><ps2 state='off'/></features>", "").unwrap();
    assert!(d.devices.inputs.is_empty());
    let d = filled_with(
        "pc",
        "",
        "<graphics type='spice'/><video><model type='qxl'/></video><video><model type='vga' primary='yes'/></video>",
    )
    .unwrap();
    let out = devices_xml(&d);
    assert!(out.contains("<audio id='1' type='spice'/>"), "{out}");
    let vga = out
        .find("<model type='vga' vram='16384' heads='1' primary='yes'/>")
        .expect(&out);
    let qxl = out
        .find("<model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1'/>")
        .expect(&out);
    assert!(vga < qxl, "primary video first:\n{out}");
    assert!(out.contains("slot='0x02'"));
}

#[test]
fn duplicate_controllers_and_usb_ports() {
    let e = filled_with(
        "pc",
        "",
        "<controller type='scsi' index='0'/><controller type='scsi' index='0'/>",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("Multiple 'scsi' controllers with index '0'"),
        "{e}"
    );
    let e = filled_with(
        "q35",
        "",
        "<controller type='usb' index='0' model='qemu-xhci' ports='16'/>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("up to '15' ports"), "{e}");
    let d = filled_with(
        "pc",
        "",
        "<controller type='scsi'/><controller type='scsi'/>",
    )
    .unwrap();
    assert!(d.devices.controller("scsi", 1).is_some());
}

/// Fuzzer find: a USB controller without an index and the implicit USB controller 0 came
/// out as index 1 before index 0, and a re-read put them the other way round.
#[test]
fn controllers_are_in_canonical_order_after_defaults() {
    use crate::test_util::{assert_formats_stably, domain_with};
    let out = assert_formats_stably(&domain_with(
        "pc",
        "<controller type='usb' nidex='0'/><controller type='ide' index='0'/>\
         <controller type='pci' index='0' model='pci-root'/>",
    ));
    let usb0 = out.find("<controller type='usb' index='0'").expect("usb 0");
    let usb1 = out.find("<controller type='usb' index='1'").expect("usb 1");
    let ide = out.find("<controller type='ide'").expect("ide");
    assert!(usb0 < usb1 && usb1 < ide, "{out}");
    // Without an index, several of a type are numbered in order and stay grouped.
    let out = assert_formats_stably(&domain_with(
        "q35",
        "<controller type='scsi'/><controller type='usb' index='3' model='qemu-xhci'/>\
         <controller type='scsi' index='0' model='virtio-scsi'/><controller type='scsi'/>",
    ));
    let scsi: Vec<usize> = ["0", "1", "2"]
        .iter()
        .map(|i| {
            out.find(&format!("<controller type='scsi' index='{i}'"))
                .unwrap()
        })
        .collect();
    assert!(scsi[0] < scsi[1] && scsi[1] < scsi[2], "{out}");
}

/// Fuzzer find: `<controller type='usb' index='1' model='none'/>` got a default USB
/// controller 0 next to it, and our own output was refused ("USB is disabled").
#[test]
fn usb_disabled_at_any_index_gets_no_default_usb_controller() {
    use crate::test_util::{assert_formats_stably, domain_with};
    let out = assert_formats_stably(&domain_with(
        "pc",
        "<controller type='usb' index='1' model='none'/>",
    ));
    assert_eq!(out.matches("<controller type='usb'").count(), 1, "{out}");
    assert!(
        out.contains("<controller type='usb' index='1' model='none'/>"),
        "{out}"
    );
}

/// A disk's drive address (or a target name like 'sdzzzzz') on a huge controller index used
/// to make the defaults add that many controllers: the fuzzer's run hung on it.
#[test]
fn huge_implied_controller_counts_are_refused() {
    for disk in [
        "<disk><target dev='sda' bus='scsi'/><address type='drive' controller='4000000000' bus='0' target='0' unit='0'/></disk>",
        "<disk><target dev='sdzzzzz'/></disk>",
    ] {
        let e = filled_with("pc", "", disk).unwrap_err();
        assert!(e.to_string().contains("which would add"), "{e}");
        assert!(e.pos().is_known());
    }
    // Up to 256 are added.
    let d = filled_with(
        "pc",
        "",
        "<disk><target dev='sda' bus='scsi'/><address type='drive' controller='255' bus='0' target='0' unit='0'/></disk>",
    )
    .unwrap();
    assert_eq!(
        d.devices
            .controllers
            .iter()
            .filter(|c| c.kind == "scsi")
            .count(),
        256
    );
}

/// NUMA cells summing past 16 EiB gave a `<memory>` our own reader refuses.
#[test]
fn numa_memory_beyond_64_bits_of_bytes_is_refused() {
    let cells = "<cell id='0' cpus='0' memory='18014398509481983'/>".repeat(2);
    let text = format!(
        "<domain type='kvm'><name>g</name><os><type>hvm</type></os>\
         <cpu><numa>{cells}</numa></cpu></domain>"
    );
    let mut d = Domain::parse(&text).unwrap();
    let e = d.fill_defaults().unwrap_err();
    assert!(e.to_string().contains("16 EiB"), "{e}");
    assert!(e.pos().is_known());
    // Just below the limit works and formats stably.
    let ok = text.replace("18014398509481983", "9007199254740991");
    crate::test_util::assert_formats_stably(&ok);
}

/// Fuzzer find: with two serial ports, a second console without a target type was written
/// as an alias of the second serial port (`<target type='serial'>`), which a re-read refuses
/// ("Only the first console can be a serial port").
#[test]
fn only_the_first_console_is_written_as_a_serial_port() {
    use crate::test_util::{assert_formats_stably, domain_with};
    let out = assert_formats_stably(&domain_with(
        "pc",
        "<serial type='pty'/><serial type='pty'/><console type='pty'/><console type='pty'/>",
    ));
    assert_eq!(out.matches("<target type='serial'").count(), 1, "{out}");
}
