//! Tests of the whole-domain model: parsing, defaults, formatting, accessors.

use super::*;

const UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

fn domain(body: &str) -> Result<Domain, ConfError> {
    Domain::parse(&format!(
        "<domain type='kvm'><name>g</name><uuid>{UUID}</uuid><memory unit='MiB'>512</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>{body}</domain>"
    ))
}

fn filled(body: &str) -> Domain {
    let mut d = domain(body).unwrap();
    d.fill_defaults().unwrap();
    d
}

#[test]
fn minimal_domain_gets_libvirt_defaults() {
    let d = filled("");
    assert_eq!(
        d.to_xml(),
        format!(
            "<domain type='kvm'>
  <name>g</name>
  <uuid>{UUID}</uuid>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <audio id='1' type='none'/>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"
        )
    );
    assert_eq!(d.memory_kib(), 524288);
    assert_eq!(d.vcpus(), 1);
    assert_eq!(d.machine(), Some("pc"));
    assert!(d.machine_is_i440fx() && !d.machine_is_q35());
    assert_eq!(d.domain_type(), DomainType::Kvm);
}

#[test]
fn uuid_is_generated_when_missing() {
    let mut d = Domain::parse(
        "<domain type='qemu'><name>g</name><memory>1024</memory><os><type>hvm</type></os></domain>",
    )
    .unwrap();
    assert!(d.uuid().is_none());
    d.fill_defaults_with_uuid(|| Uuid::from_random_bytes([7; 16]))
        .unwrap();
    assert_eq!(
        d.uuid().unwrap().to_string(),
        "07070707-0707-4707-8707-070707070707"
    );
    let mut r = Domain::parse(
        "<domain type='qemu'><name>g</name><memory>1024</memory><os><type>hvm</type></os></domain>",
    )
    .unwrap();
    r.fill_defaults().unwrap();
    assert!(r.uuid().is_some());
}

#[test]
fn unknown_content_is_kept_in_place() {
    let xml = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\
        <qemu:commandline><qemu:arg value='-S'/></qemu:commandline>\
        <name>g</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid><memory>1024</memory>\
        <pm><suspend-to-mem enabled='no'/></pm><os><type>hvm</type><smbios mode='host'/></os>\
        <metadata><x:y xmlns:x='urn:x'/></metadata><cputune><shares>2048</shares></cputune>\
        <devices><graphics type='vnc' port='-1'/><futuredev a='1'/></devices></domain>";
    let mut d = Domain::parse(xml).unwrap();
    d.fill_defaults().unwrap();
    let out = d.to_xml();
    let at = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("{s} missing in\n{out}"))
    };
    assert!(out.starts_with(
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
    ));
    assert!(at("<metadata>") < at("<memory"));
    assert!(at("<cputune>") < at("<os>"));
    assert!(at("<smbios mode='host'/>") > at("<boot dev='hd'/>"));
    assert!(at("<on_crash>") < at("<pm>") && at("<pm>") < at("<devices>"));
    assert!(at("</devices>") < at("<qemu:commandline>"));
    assert!(at("<graphics type='vnc' port='-1'/>") < at("<video>"));
    assert!(at("<futuredev a='1'/>") > at("<memballoon"));
    // A VNC display without sound gets the 'none' audio backend and a cirrus video card.
    assert!(out.contains("<audio id='1' type='none'/>"));
    assert!(out.contains("<model type='cirrus' vram='16384' heads='1' primary='yes'/>"));
    assert!(out.contains("slot='0x02'"));
    let mut again = Domain::parse(&out).unwrap();
    again.fill_defaults().unwrap();
    assert_eq!(again.to_xml(), out);
}

#[test]
fn read_errors_name_element_value_and_position() {
    let e = Domain::parse("<domain type='xen'><name>g</name></domain>").unwrap_err();
    assert!(e.to_string().contains("'xen'"), "{e}");
    assert_eq!(e.pos(), crate::xml::Pos { line: 1, col: 9 });
    let e = domain("<vcpu>lots</vcpu>").unwrap_err();
    assert!(
        e.to_string().contains("'vcpu'") && e.to_string().contains("'lots'"),
        "{e}"
    );
    let e = Domain::parse("<domain type='kvm'>\n<name>g</name>\n<uuid>not-a-uuid</uuid></domain>")
        .unwrap_err();
    assert!(e.to_string().contains("not-a-uuid"), "{e}");
    assert_eq!(e.pos().line, 3);
    let e = Domain::parse("<domain type='kvm'><uuid>x</uuid></domain>").unwrap_err();
    assert!(e.to_string().contains("<name>"), "{e}");
    let e = Domain::parse("<domain type='kvm'><name>g</name></domain>").unwrap_err();
    assert!(e.to_string().contains("<os>"), "{e}");
    let e = domain("<on_reboot>reboot</on_reboot>").unwrap_err();
    assert!(e.to_string().contains("'reboot'"), "{e}");
    let e = domain("<currentMemory unit='XB'>1</currentMemory>").unwrap_err();
    assert!(e.to_string().contains("'XB'") && e.pos().is_known(), "{e}");
    assert!(Domain::parse("<vm/>")
        .unwrap_err()
        .to_string()
        .contains("<domain>"));
    let e = domain("<devices><disk type='file'><target dev='vda' bus='nvme9'/></disk></devices>")
        .unwrap_err();
    assert!(
        e.to_string().contains("'nvme9'") && e.pos().is_known(),
        "{e}"
    );
}

#[test]
fn shared_memory() {
    assert!(!filled("").has_shared_memory());
    let d = filled("<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>");
    assert!(d.has_shared_memory());
    assert_eq!(
        d.memory_backing().unwrap().source,
        Some(MemorySource::Memfd)
    );
    let numa = |a: &str, b: &str| {
        format!(
            "<cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB' {a}/>\
             <cell id='1' cpus='1' memory='256' unit='MiB' {b}/></numa></cpu><vcpu>2</vcpu>"
        )
    };
    assert!(filled(&numa("memAccess='shared'", "memAccess='shared'")).has_shared_memory());
    assert!(!filled(&numa("memAccess='shared'", "")).has_shared_memory());
    let mixed = format!(
        "<memoryBacking><access mode='shared'/></memoryBacking>{}",
        numa("", "memAccess='private'")
    );
    assert!(!filled(&mixed).has_shared_memory());
}

#[test]
fn memory_from_numa_and_current_memory() {
    let mut d = Domain::parse(
        "<domain type='qemu'><name>g</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <vcpu>2</vcpu><os><type>hvm</type></os><cpu><numa><cell cpus='0' memory='1' unit='GiB'/>\
         <cell cpus='1' memory='512' unit='MiB'/></numa></cpu></domain>",
    )
    .unwrap();
    d.fill_defaults().unwrap();
    assert_eq!(d.memory_kib(), 1572864);
    assert_eq!(d.memory.current_kib, Some(1572864));
    assert_eq!(d.numa_cells()[1].id, 1);
    let d = filled("<currentMemory unit='GiB'>4</currentMemory>");
    assert_eq!(d.memory.current_kib, Some(524288));
    let mut e =
        Domain::parse("<domain type='qemu'><name>g</name><os><type>hvm</type></os></domain>")
            .unwrap();
    assert!(e
        .fill_defaults()
        .unwrap_err()
        .to_string()
        .contains("Memory size"));
    let mut m = domain("<maxMemory unit='GiB'>4</maxMemory>").unwrap();
    assert!(m
        .fill_defaults()
        .unwrap_err()
        .to_string()
        .contains("slot count"));
    let m = filled("<maxMemory slots='16' unit='GiB'>4</maxMemory>");
    assert!(m
        .to_xml()
        .contains("<maxMemory slots='16' unit='KiB'>4194304</maxMemory>\n  <memory"));
}

#[test]
fn accessors_for_the_command_line() {
    let mut d = Domain::parse(
        "<domain type='kvm'><name>g</name><memory>1024</memory>\
         <vcpu current='2'>4</vcpu><os><type arch='x86_64' machine='q35'>hvm</type>\
         <kernel>/boot/vmlinux</kernel><initrd>/boot/initrd</initrd><cmdline>console=ttyS0</cmdline></os>\
         <devices><disk type='file'><source file='/img.qcow2'/><driver name='qemu' type='qcow2'/>\
         <target dev='vda' bus='virtio'/></disk><serial type='unix'><source mode='bind' path='/tmp/s'/></serial>\
         <channel type='unix'><source mode='bind' path='/tmp/ga'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>",
    )
    .unwrap();
    d.fill_defaults().unwrap();
    assert!(d.machine_is_q35());
    // The channel gets port 1 on the virtio-serial controller libvirt adds for it.
    let out = d.to_xml();
    assert!(
        out.contains("<address type='virtio-serial' controller='0' bus='0' port='1'/>"),
        "{out}"
    );
    assert!(
        out.contains("<controller type='virtio-serial' index='0'>"),
        "{out}"
    );
    assert_eq!(d.vcpus(), 4);
    assert_eq!(d.vcpus_online(), 2);
    assert_eq!(d.kernel(), Some("/boot/vmlinux"));
    assert_eq!(d.initrd(), Some("/boot/initrd"));
    assert_eq!(d.cmdline(), Some("console=ttyS0"));
    assert_eq!(d.disks()[0].source_path(), Some("/img.qcow2"));
    assert_eq!(d.disks()[0].format(), Some("qcow2"));
    let kinds: Vec<&str> = d.chardevs().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["serial", "console", "channel"]);
    assert!(matches!(
        &d.devices.serials[0].source,
        crate::devices::ChrSource::Unix { listen: true, path: Some(p), .. } if p == "/tmp/s"
    ));
}

#[test]
fn second_os_block_is_not_silently_lost() {
    // A second <os> is refused (not dropped, not kept to shadow the first on a re-read),
    // with its position.
    let e = domain("<os><type>hvm</type></os>").unwrap_err();
    assert!(e.to_string().contains("<os> appears more than once"), "{e}");
    assert!(e.pos().is_known() && e.pos().col > 100, "{:?}", e.pos());
    // Elements that may repeat still do.
    let d = filled(
        "<devices><disk><target dev='vda'/></disk><disk><target dev='vdb'/></disk></devices>",
    );
    assert_eq!(d.disks().len(), 2);
}
