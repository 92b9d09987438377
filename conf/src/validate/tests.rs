//! Tests of the validation rules, on interfaces read from XML (with positions).

use super::*;
use crate::interface::Interface;
use crate::xml::{parse_document, Limits};

/// Reads `<devices>` holding interfaces, one per line, so that positions differ.
fn ifaces(xml: &str) -> Vec<Interface> {
    let doc = parse_document(&format!("<devices>\n{xml}\n</devices>"), Limits::default())
        .expect("well-formed");
    doc.children
        .into_iter()
        .map(|c| {
            let mut i = Interface::from_element(c).expect("parses");
            i.fill_defaults();
            i
        })
        .collect()
}

fn errors_shared(xml: &str, shared: bool) -> Vec<String> {
    let list = ifaces(xml);
    let ctx = Context {
        interfaces: &list,
        shared_memory: shared,
        ..Context::default()
    };
    list.iter()
        .flat_map(validate_interface)
        .chain(check_conflicts(&ctx))
        .map(|e| e.located())
        .collect()
}

fn errors(xml: &str) -> Vec<String> {
    errors_shared(xml, true)
}

fn one_error(xml: &str) -> String {
    let e = errors(xml);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn valid_interfaces_pass() {
    let e = errors(
        "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/><target dev='vnet7'/><model type='virtio'/><driver queues='4' rx_queue_size='512' tx_queue_size='1024'/><alias name='ua-a'/></interface>
<interface type='vhostuser'><mac address='52:54:00:00:00:02'/><source type='unix' path='/run/a.sock' mode='client'/></interface>
<interface type='vhostuser'><mac address='52:54:00:00:00:03'/><source type='unix' path='/run/b.sock' mode='server'/></interface>
<interface type='user'><mac address='52:54:00:00:00:04'/><backend type='passt'/><portForward proto='tcp'><range start='22'/></portForward><source dev='eth0'/></interface>
<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:05'/><source><address type='pci' bus='3' slot='7' function='1'/></source></interface>",
    );
    assert!(e.is_empty(), "{e:#?}");
}

#[test]
fn same_vhostuser_socket_names_both_and_the_path() {
    let e = one_error(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/><source type='unix' path='/tmp/v.sock' mode='client'/></interface>
<interface type='vhostuser'><alias name='ua-second'/><mac address='52:54:00:00:00:02'/><source type='unix' path='/tmp/v.sock' mode='client'/></interface>",
    );
    assert!(e.starts_with("3:"), "{e}");
    assert!(e.contains("interface 52:54:00:00:00:02 (line 3)"), "{e}");
    assert!(e.contains("interface 52:54:00:00:00:01 (line 2)"), "{e}");
    assert!(e.contains("'/tmp/v.sock'"), "{e}");
}

#[test]
fn vhostuser_needs_shared_memory() {
    let e = errors_shared(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/><source type='unix' path='/tmp/v.sock' mode='client'/></interface>",
        false,
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("2:1: unsupported configuration: 'interface' requires shared memory"),
        "{}",
        e[0]
    );
    assert!(e[0]
        .contains("<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"));
    assert!(e[0].contains("memAccess='shared'"));
    // Other vhost-user devices too.
    let list = Vec::new();
    let ctx = Context {
        interfaces: &list,
        other_vhost_user: vec![("disk".into(), "disk vda".into(), Pos { line: 9, col: 5 })],
        ..Context::default()
    };
    let e = check_conflicts(&ctx);
    assert_eq!(e.len(), 1);
    assert!(e[0].to_string().contains("'disk' requires shared memory"));
}

use crate::xml::Pos;

#[test]
fn duplicate_macs_refused_except_failover_pairs() {
    let e = one_error(
        "<interface type='user'><mac address='00:11:22:33:44:58'/><model type='virtio'/></interface>
<interface type='user'><mac address='00:11:22:33:44:58'/><model type='pcnet'/></interface>",
    );
    assert!(e.starts_with("3:"), "{e}");
    assert!(e.contains("00:11:22:33:44:58"), "{e}");
    let pair = errors(
        "<interface type='user'><mac address='00:11:22:33:44:55'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-backup0'/></interface>
<interface type='hostdev' managed='yes'><mac address='00:11:22:33:44:55'/><source><address type='pci' bus='3' slot='7' function='1'/></source><teaming type='transient' persistent='ua-backup0'/></interface>",
    );
    assert!(pair.is_empty(), "{pair:#?}");
    // A teaming pair pointing at the wrong alias is no excuse.
    let bad = errors(
        "<interface type='user'><mac address='00:11:22:33:44:55'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-backup0'/></interface>
<interface type='hostdev' managed='yes'><mac address='00:11:22:33:44:55'/><source><address type='pci' bus='3' slot='7' function='1'/></source><teaming type='transient' persistent='ua-other'/></interface>",
    );
    assert_eq!(bad.len(), 2, "{bad:#?}");
}

#[test]
fn duplicate_names_and_addresses() {
    let e = errors(
        "<interface type='ethernet'><mac address='52:54:00:00:00:01'/><target dev='tap0'/><alias name='ua-x'/><address type='pci' slot='3'/></interface>
<interface type='ethernet'><mac address='52:54:00:00:00:02'/><target dev='tap0'/><alias name='ua-x'/><address type='pci' slot='3'/></interface>
<interface type='hostdev'><mac address='52:54:00:00:00:03'/><source><address type='pci' bus='3' slot='7' function='1'/></source></interface>
<interface type='hostdev'><mac address='52:54:00:00:00:04'/><source><address type='pci' bus='3' slot='7' function='1'/></source></interface>",
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].contains("target dev 'tap0'"), "{}", e[0]);
    assert!(e[1].contains("alias 'ua-x'"), "{}", e[1]);
    assert!(e[2].contains("guest PCI address 0000:00:03.0"), "{}", e[2]);
    assert!(e[3].contains("host PCI device 0000:03:07.1"), "{}", e[3]);
    assert!(
        e.iter().all(|m| m.starts_with("3:") || m.starts_with("5:")),
        "{e:#?}"
    );
}

#[test]
fn pci_conflict_with_other_devices() {
    let list = ifaces("<interface type='user'><address type='pci' slot='5'/></interface>");
    let ctx = Context {
        interfaces: &list,
        shared_memory: true,
        pci_in_use: Some(vec![
            (
                "video (line 30)".into(),
                crate::address::PciAddress::slot(5),
                Pos { line: 30, col: 5 },
            ),
            (
                who(&list[0]),
                crate::address::PciAddress::slot(5),
                list[0].pos,
            ),
        ]),
        ..Context::default()
    };
    let e = check_conflicts(&ctx);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].to_string().contains("video (line 30)"));
}

#[test]
fn values_qemu_would_misread() {
    for (xml, needle) in [
        ("<interface type='ethernet'><target dev='tap0,vhost=on'/></interface>", "'tap0,vhost=on'"),
        ("<interface type='ethernet'><target dev='averyveryverylongname'/></interface>", "15 bytes"),
        ("<interface type='ethernet'><target dev='a/b'/></interface>", "'/'"),
        ("<interface type='ethernet'><target dev='..'/></interface>", "'..'"),
        ("<interface type='ethernet'><target dev='a b'/></interface>", "white space"),
        ("<interface type='bridge'><source bridge='br0,x=y'/></interface>", "'bridge'"),
        ("<interface type='direct'><source dev='eth0:1'/></interface>", "':'"),
        ("<interface type='user'><alias name='ua-a,addr=0x5'/></interface>", "device alias"),
        ("<interface type='vhostuser'><source type='unix' path='/tmp/a,server=on' mode='client'/></interface>", "-chardev"),
        ("<interface type='vhostuser'><source type='unix' path='rel.sock' mode='client'/></interface>", "absolute"),
        ("<interface type='user'><rom file='/a,b'/></interface>", "'rom'"),
        ("<interface type='user'><mac address='01:00:5e:00:00:01'/></interface>", "expected unicast mac address, found multicast '01:00:5e:00:00:01'"),
    ] {
        let e = one_error(xml);
        assert!(e.contains(needle), "{xml}: {e}");
        assert!(e.starts_with("2:"), "{xml}: {e}");
    }
}

#[test]
fn libvirt_texts() {
    let e = one_error(
        "<interface type='user'><model type='virtio'/><driver rx_queue_size='511'/></interface>",
    );
    assert!(
        e.ends_with("unsupported configuration: rx_queue_size has to be a power of two"),
        "{e}"
    );
    let e = one_error(
        "<interface type='user'><model type='virtio'/><driver tx_queue_size='2048'/></interface>",
    );
    assert!(
        e.contains("tx_queue_size has to be between 256 and 1024"),
        "{e}"
    );
    let e = one_error(
        "<interface type='vhostuser'><mac address='52:54:00:ee:96:6b'/><source type='unix' path='/tmp/vhost0.sock' mode='server'/><backend tap='/dev/mytap'/></interface>",
    );
    assert!(e.ends_with("unsupported configuration: interface 52:54:00:ee:96:6b - custom tap device path is not supported for network interfaces of type vhostuser"), "{e}");
    let e = one_error(
        "<interface type='hostdev' managed='yes'><mac address='00:11:22:33:44:55'/><source><address type='pci' bus='6' slot='0x12' function='1'/></source><model type='virtio'/><driver queues='4'/><backend tap='/dev/mytap'/></interface>",
    );
    assert!(e.ends_with("interface 00:11:22:33:44:55 - custom tap device path is not supported for network interfaces of type hostdev"), "{e}");
    let e = one_error("<interface type='user'><portForward proto='tcp'><range start='443' to='344'/></portForward><model type='virtio'/></interface>");
    assert!(e.ends_with("unsupported configuration: The <portForward> element can only be used with the 'passt' backend of interface type='user' or type='vhostuser'"), "{e}");
    let e = one_error(
        "<interface type='bridge'><source bridge='br0'/><backend type='passt'/></interface>",
    );
    assert!(e.contains("The 'passt' backend can only be used"), "{e}");
}

#[test]
fn model_and_type_rules() {
    let e = one_error("<interface type='vhostuser'><source type='unix' path='/a' mode='client'/><model type='e1000'/></interface>");
    assert!(e.contains("requires the virtio-net* frontend"), "{e}");
    let e = one_error("<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/><model type='rtl8139'/></interface>");
    assert!(e.contains("vdpa requires the virtio-net"), "{e}");
    let e =
        one_error("<interface type='user'><model type='virtio'/><driver queues='4'/></interface>");
    assert!(
        e.contains("Multiqueue network is not supported for: user"),
        "{e}"
    );
    let e = one_error(
        "<interface type='ethernet'><model type='virtio'/><driver queues='600'/></interface>",
    );
    assert!(e.contains("511"), "{e}");
    // A USB hostdev NIC is kept (virtnet_qemu::validate refuses starting it).
    assert_eq!(
        errors("<interface type='hostdev'><source><vendor id='0x1234'/><product id='0xbeef'/></source></interface>"),
        Vec::<String>::new()
    );
    let e = one_error("<interface type='vhostuser'><source type='unix' path='/a' mode='client'/><filterref filter='clean-traffic'/></interface>");
    assert!(
        e.contains("<filterref> is not supported on interface type='vhostuser'"),
        "{e}"
    );
    let e = one_error("<interface type='user'><script path='/bin/up'/></interface>");
    assert!(e.contains("<script>"), "{e}");
    let e = one_error("<interface type='ethernet'><script path='qemu-ifup'/></interface>");
    assert!(e.contains("must be an absolute path"), "{e}");
    let e = one_error("<interface type='ethernet'><downscript path=''/></interface>");
    assert!(
        e.contains("<downscript path=''> must be an absolute path"),
        "{e}"
    );
    let e = one_error("<interface type='bridge'><source bridge='br0'/><bandwidth><inbound floor='5'/></bandwidth></interface>");
    assert!(e.contains("floor"), "{e}");
    let e =
        one_error("<interface type='network'><source network='n'/><mtu size='20'/></interface>");
    assert!(e.contains("mtu size 20"), "{e}");
    let e = one_error("<interface type='user'><source dev='eth0'/></interface>");
    assert!(e.contains("<backend type='passt'/>"), "{e}");
}

#[test]
fn teaming_rules() {
    let e = one_error("<interface type='user'><model type='virtio'/><teaming type='persistent' persistent='x'/></interface>");
    assert!(
        e.contains("not allowed if teaming type is 'persistent'"),
        "{e}"
    );
    let e = errors("<interface type='user'><teaming type='transient'/></interface>");
    assert!(
        e.iter()
            .any(|m| m.contains("is required if teaming type is 'transient'")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("must be type='hostdev', not 'user'")),
        "{e:#?}"
    );
    let e = one_error("<interface type='hostdev'><source><address type='pci' bus='3'/></source><teaming type='transient' persistent='ua-none'/></interface>");
    assert!(e.contains("persistent='ua-none'"), "{e}");
}

/// A small domain with the given devices (after `<emulator>`), parsed and defaulted.
fn domain(devices: &str, memory_backing: &str) -> crate::Domain {
    let xml = format!(
        "<domain type='qemu'>
  <name>t</name>
  <memory unit='KiB'>219136</memory>
  {memory_backing}
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{devices}
  </devices>
</domain>"
    );
    let mut d = crate::Domain::parse(&xml).expect("parses");
    d.fill_defaults().expect("defaults");
    d
}

fn domain_errors(devices: &str, memory_backing: &str) -> Vec<String> {
    validate(&domain(devices, memory_backing))
        .iter()
        .map(|e| e.located())
        .collect()
}

const SHARED: &str = "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>";

#[test]
fn whole_domain_rules() {
    // A vhost-user disk needs shared memory as well.
    let disk = "<disk type='vhostuser' device='disk'><driver name='qemu' type='raw'/>\
                <source type='unix' path='/tmp/vhost1.sock'/><target dev='vda' bus='virtio'/></disk>";
    let e = domain_errors(disk, "");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("'disk' requires shared memory"), "{}", e[0]);
    assert!(domain_errors(disk, SHARED).is_empty());

    // A VF given to an interface and to a <hostdev>.
    let e = domain_errors(
        "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x07' function='0x1'/></source></hostdev>
<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:01'/><source><address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/></source></interface>",
        "",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("host PCI device 0000:03:07.1"), "{}", e[0]);

    // An interface on the guest PCI address of another device (fill_defaults refuses this
    // too; validation catches it in definitions checked without defaults).
    let text = "<domain type='qemu'><name>t</name><memory>1024</memory><os><type>hvm</type></os><devices>
<interface type='user'><mac address='52:54:00:00:00:01'/><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></interface>
<sound model='ich6'><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></sound>
</devices></domain>";
    let e: Vec<String> = validate(&crate::Domain::parse(text).unwrap())
        .iter()
        .map(|e| e.located())
        .collect();
    assert!(
        e.iter()
            .any(|m| m.contains("guest PCI address 0000:00:05.0")),
        "{e:#?}"
    );

    // An alias used by a disk and an interface.
    let e = domain_errors(
        "<disk type='file' device='disk'><source file='/x.img'/><target dev='vda' bus='virtio'/><alias name='ua-x'/></disk>
<interface type='user'><mac address='52:54:00:00:00:01'/><alias name='ua-x'/></interface>",
        "",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].contains("alias 'ua-x'") && e[0].contains("disk 'vda'"),
        "{}",
        e[0]
    );
}

#[test]
fn new_interface_reports_only_its_own_problems() {
    let d = domain(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/><source type='unix' path='/run/a.sock' mode='client'/></interface>
<interface type='user'><mac address='52:54:00:00:00:01'/></interface>",
        SHARED,
    );
    assert_eq!(validate(&d).len(), 1, "the domain has one problem already");
    let new = Interface::from_element(
        parse_document(
            "<interface type='vhostuser'><mac address='52:54:00:00:00:02'/><source type='unix' path='/run/a.sock' mode='client'/></interface>",
            Limits::default(),
        )
        .unwrap(),
    )
    .unwrap();
    let e = validate_new_interface(&d, &new);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].to_string().contains("'/run/a.sock'"));
    let mut ok = new.clone();
    if let crate::interface::InterfaceKind::VhostUser { socket: Some(s) } = &mut ok.kind {
        s.path.value = "/run/b.sock".into();
    }
    assert!(validate_new_interface(&d, &ok).is_empty());
}
