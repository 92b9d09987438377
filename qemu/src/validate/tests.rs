//! Each interface type (and notable variant) × operation → accepted, or refused with a message
//! containing the given text.

use virtnet_conf::domain::Domain;
use virtnet_conf::interface::{Leaf, LinkState};
use virtnet_conf::xml::{parse_document, Limits};
use virtnet_conf::Interface;

use super::*;
use crate::version::QemuVersion;

/// What an operation must do.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Accepted.
    A,
    /// Refused with a message containing this.
    R(&'static str),
}
use Want::{A, R};

const PASST: Want = R("passt back end");
const SOCKET_PLUG: Want = R("cannot be plugged into a running VM");
const NET: Want = R("virtnet net-start");
const USB: Want = R("<hostdev mode='subsystem' type='usb'>");
const HOSTDEV_LINK: Want = R("link state of a hostdev NIC");
const M: &str = "<mac address='52:54:00:00:00:01'/>";

/// (variant, `<interface>` XML, [define, start, attach, update (live link down)]).
#[rustfmt::skip]
const TABLE: &[(&str, &str, [Want; 4])] = &[
    ("user",                  "<interface type='user'>{M}</interface>", [A, A, A, A]),
    ("user passt",            "<interface type='user'>{M}<backend type='passt'/></interface>", [PASST, PASST, PASST, A]),
    ("ethernet",              "<interface type='ethernet'>{M}</interface>", [A, A, A, A]),
    ("ethernet managed=no",   "<interface type='ethernet'>{M}<target dev='tap9' managed='no'/></interface>", [A, A, A, A]),
    ("ethernet no=no dev",    "<interface type='ethernet'>{M}<target managed='no'/></interface>", [R("existing tap's name"), R("existing tap's name"), R("existing tap's name"), A]),
    ("ethernet script",       "<interface type='ethernet'>{M}<script path='/etc/qemu-ifup'/></interface>", [A, A, A, A]),
    ("bridge script",         "<interface type='bridge'>{M}<source bridge='br0'/><script path='/etc/qemu-ifup'/></interface>", [R("type 'bridge'"), R("type 'bridge'"), R("type 'bridge'"), A]),
    ("ethernet host ip",      "<interface type='ethernet'>{M}<source><ip address='10.0.0.1' family='ipv4' prefix='24'/></source></interface>", [R("host-side <ip>"), R("host-side <ip>"), R("host-side <ip>"), A]),
    ("vhostuser server",      "<interface type='vhostuser'>{M}<source type='unix' path='/run/v0.sock' mode='server'/><model type='virtio'/></interface>", [A, A, A, A]),
    ("vhostuser client",      "<interface type='vhostuser'>{M}<source type='unix' path='/run/v0.sock' mode='client'/><model type='virtio'/></interface>", [A, A, A, A]),
    ("vhostuser srv+reconn",  "<interface type='vhostuser'>{M}<source type='unix' path='/run/v0.sock' mode='server'><reconnect enabled='yes' timeout='5'/></source><model type='virtio'/></interface>", [R("<reconnect>"), R("<reconnect>"), R("<reconnect>"), A]),
    ("vhostuser passt",       "<interface type='vhostuser'>{M}<backend type='passt'/><model type='virtio'/></interface>", [PASST, PASST, PASST, A]),
    ("server",                "<interface type='server'>{M}<source address='127.0.0.1' port='5558'/></interface>", [A, A, SOCKET_PLUG, A]),
    ("client",                "<interface type='client'>{M}<source address='127.0.0.1' port='5558'/></interface>", [A, A, SOCKET_PLUG, A]),
    ("mcast",                 "<interface type='mcast'>{M}<source address='230.0.0.1' port='5558'/></interface>", [A, A, SOCKET_PLUG, A]),
    ("udp",                   "<interface type='udp'>{M}<source address='127.0.0.1' port='5558'><local address='127.0.0.1' port='5559'/></source></interface>", [A, A, SOCKET_PLUG, A]),
    ("network",               "<interface type='network'>{M}<source network='sw0'/></interface>", [A, NET, NET, A]),
    ("bridge",                "<interface type='bridge'>{M}<source bridge='br0'/><model type='virtio'/><driver name='vhost' queues='4'/></interface>", [A, A, A, A]),
    ("bridge managed=no",     "<interface type='bridge'>{M}<source bridge='br0'/><target dev='tap9' managed='no'/></interface>", [R("only for type='ethernet'"), R("only for type='ethernet'"), R("only for type='ethernet'"), A]),
    ("bridge 300 queues",     "<interface type='bridge'>{M}<source bridge='br0'/><model type='virtio'/><driver queues='300'/></interface>", [R("the most a tap has"), R("the most a tap has"), R("the most a tap has"), A]),
    ("bridge virtio usb addr","<interface type='bridge'>{M}<source bridge='br0'/><model type='virtio'/><address type='usb' bus='0' port='1'/></interface>", [R("needs a PCI address"), R("needs a PCI address"), R("needs a PCI address"), A]),
    ("user usb-net + rom",    "<interface type='user'>{M}<model type='usb-net'/><rom bar='off'/></interface>", [R("ROM tuning"), R("ROM tuning"), R("ROM tuning"), A]),
    ("direct",                "<interface type='direct'>{M}<source dev='eth0' mode='bridge'/></interface>", [A, A, A, A]),
    ("hostdev pci managed",   "<interface type='hostdev' managed='yes'>{M}<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>", [A, A, A, HOSTDEV_LINK]),
    ("hostdev pci unmanaged", "<interface type='hostdev'>{M}<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>", [A, A, A, HOSTDEV_LINK]),
    ("hostdev pci trunk",     "<interface type='hostdev' managed='yes'>{M}<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source><vlan><tag id='4'/><tag id='5'/></vlan></interface>", [R("one VLAN tag"), R("one VLAN tag"), R("one VLAN tag"), HOSTDEV_LINK]),
    ("hostdev link down",     "<interface type='hostdev' managed='yes'>{M}<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source><link state='down'/></interface>", [R("hostdev NIC: the VF"), R("hostdev NIC: the VF"), R("hostdev NIC: the VF"), A]),
    ("hostdev driver kvm",    "<interface type='hostdev' managed='yes'>{M}<driver name='kvm'/><source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>", [R("vfio only"), R("vfio only"), R("vfio only"), HOSTDEV_LINK]),
    ("hostdev usb ids",       "<interface type='hostdev' managed='yes'>{M}<source><vendor id='0x0b95'/><product id='0x1790'/></source></interface>", [A, USB, USB, HOSTDEV_LINK]),
    ("hostdev usb address",   "<interface type='hostdev'>{M}<source><address type='usb' bus='1' device='4'/></source></interface>", [A, USB, USB, HOSTDEV_LINK]),
    ("vdpa",                  "<interface type='vdpa'>{M}<source dev='/dev/vhost-vdpa-0'/></interface>", [R("type='vdpa'"), R("type='vdpa'"), R("type='vdpa'"), A]),
];

fn domain(domain_type: &str, interfaces: &str) -> Domain {
    let xml = format!(
        "<domain type='{domain_type}'><name>t</name><memory unit='MiB'>64</memory>\
         <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>\
         <devices>{interfaces}</devices></domain>"
    );
    let mut d = Domain::parse(&xml).unwrap();
    d.fill_defaults().unwrap();
    let conf = virtnet_conf::validate(&d);
    assert!(conf.is_empty(), "conf must accept {interfaces}: {conf:?}");
    d
}

fn iface(xml: &str) -> Interface {
    Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()
}

/// What `op` says about `xml`: Ok, or the refusals' text.
fn run(op: Operation, xml: &str, caps: &QemuCaps) -> Result<(), String> {
    let text = |r: Refusals| r.to_string();
    match op {
        Operation::Define | Operation::Start => {
            validate_domain(op, &domain("kvm", xml), Some(caps)).map_err(text)
        }
        Operation::Attach => {
            let mut i = iface(xml);
            i.fill_defaults();
            validate_interface(op, &domain("kvm", ""), &i, Some(caps)).map_err(text)
        }
        Operation::Update => {
            let old = iface(xml);
            let mut down = old.clone();
            down.link = Some(Leaf::new(LinkState::Down));
            validate_update(&old, &down, true, false)
                .map(drop)
                .map_err(|r| r.to_string())
        }
    }
}

#[test]
fn every_type_and_operation() {
    let caps = QemuCaps::latest();
    let ops = [
        Operation::Define,
        Operation::Start,
        Operation::Attach,
        Operation::Update,
    ];
    let mut wrong = Vec::new();
    for (name, xml, wants) in TABLE {
        let xml = xml.replace("{M}", M);
        for (op, want) in ops.iter().zip(wants) {
            let got = run(*op, &xml, &caps);
            let ok = match (want, &got) {
                (A, Ok(())) => true,
                (R(s), Err(e)) => e.contains(s),
                _ => false,
            };
            if !ok {
                wrong.push(format!(
                    "{name} × {}: want {want:?}, got {got:?}",
                    op.as_str()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    // Every type of libvirt's is in the table.
    for t in virtnet_conf::interface::InterfaceType::ALL {
        let tag = format!("type='{t}'");
        assert!(
            TABLE.iter().any(|(_, x, _)| x.contains(&tag)),
            "{t} missing"
        );
    }
}

#[test]
fn refusals_are_located_and_classed() {
    let d = domain(
        "kvm",
        "\n<interface type='hostdev'>\n<mac address='52:54:00:00:00:01'/>\n\
         <source><vendor id='0x0b95'/></source></interface>",
    );
    let r = validate_domain(Operation::Start, &d, None).unwrap_err();
    let [one] = r.0.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!(one.rule, Rule::UsbHostdevNic);
    assert_eq!((one.pos.line, one.pos.col), (4, 1), "at <source>");
    assert!(
        one.to_string().starts_with(
            "unsupported configuration: interface 52:54:00:00:00:01 (type='hostdev'): "
        ),
        "{one}"
    );
    assert!(
        one.located().starts_with("4:1: unsupported configuration"),
        "{}",
        one.located()
    );
    // Define keeps it.
    assert!(validate_domain(Operation::Define, &d, None).is_ok());

    let e = run(
        Operation::Attach,
        "<interface type='udp'><mac address='52:54:00:00:00:01'/><source address='127.0.0.1' \
         port='1'><local address='127.0.0.1' port='2'/></source></interface>",
        &QemuCaps::latest(),
    )
    .unwrap_err();
    assert!(e.contains("operation not supported"), "{e}");
}

/// PCI hot-plug on i440fx needs ACPI; q35 (native PCIe hot-plug) and USB NICs do not.
#[test]
fn hotplug_on_i440fx_needs_acpi() {
    let no_acpi = |machine: &str| {
        let mut d = Domain::parse(&format!(
            "<domain type='kvm'><name>t</name><memory unit='MiB'>64</memory>\
             <os><type arch='x86_64' machine='{machine}'>hvm</type></os><devices/></domain>"
        ))
        .unwrap();
        d.fill_defaults().unwrap();
        d
    };
    let caps = QemuCaps::latest();
    let nic = |model: &str| {
        let mut i = iface(&format!(
            "<interface type='user'><mac address='52:54:00:00:00:01'/>\
             <model type='{model}'/></interface>"
        ));
        i.fill_defaults();
        i
    };
    let e = validate_interface(
        Operation::Attach,
        &no_acpi("pc"),
        &nic("virtio"),
        Some(&caps),
    )
    .unwrap_err();
    assert_eq!(e.first_rule(), Some(Rule::HotplugNeedsAcpi));
    assert!(e.to_string().contains("<acpi/>"), "{e}");
    let ok = |d: &Domain, i: &Interface| validate_interface(Operation::Attach, d, i, Some(&caps));
    assert!(ok(&no_acpi("q35"), &nic("virtio")).is_ok());
    assert!(ok(&no_acpi("pc"), &nic("usb-net")).is_ok());
    assert!(
        ok(&domain("kvm", ""), &nic("virtio")).is_ok(),
        "with <acpi/>"
    );
    // Start and define do not care.
    let mut d = no_acpi("pc");
    d.devices.interfaces.push(nic("virtio"));
    assert!(validate_domain(Operation::Start, &d, Some(&caps)).is_ok());
}

/// The rules that depend on the accelerator and the host's vhost-net.
#[test]
fn vhost_net_rules_follow_tcg_and_caps() {
    let nic = "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
               <source bridge='br0'/><model type='virtio'/><driver name='vhost'/></interface>";
    let no_vhost = QemuCaps {
        version: QemuVersion::new(7, 2, 0),
        vhost_net: false,
    };
    // TCG: decided by the XML, refused at define already.
    let tcg = domain("qemu", nic);
    let e = validate_domain(Operation::Define, &tcg, None).unwrap_err();
    assert_eq!(e.first_rule(), Some(Rule::VhostNetOnTcg));
    // KVM without /dev/vhost-net: a host fact, refused at start only.
    let kvm = domain("kvm", nic);
    assert!(validate_domain(Operation::Define, &kvm, None).is_ok());
    assert!(
        validate_domain(Operation::Start, &kvm, None).is_ok(),
        "no caps: not decided"
    );
    let e = validate_domain(Operation::Start, &kvm, Some(&no_vhost)).unwrap_err();
    assert_eq!(e.first_rule(), Some(Rule::VhostNetUnavailable));
    assert!(e.to_string().contains("modprobe vhost_net"), "{e}");
    // name='qemu' asks for nothing.
    let plain = domain("kvm", &nic.replace("name='vhost'", "name='qemu'"));
    assert!(validate_domain(Operation::Start, &plain, Some(&no_vhost)).is_ok());
}

/// The argv builder checks its rules itself (a caller that skipped validation gets the rule's
/// message, not a command line that drops the setting).
#[test]
fn argv_guard_uses_the_same_rules() {
    let caps = QemuCaps::latest();
    let i = iface("<interface type='bridge'><source bridge='br0'/><script path='/x'/></interface>");
    let e = argv_guard(&i, &caps).unwrap_err();
    assert!(
        matches!(&e, crate::QemuError::Refused(r) if r.rule == Rule::ScriptNeedsEthernet),
        "{e:?}"
    );
    // Rules about running, not about the command line, are not the builder's.
    let vdpa = iface("<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/></interface>");
    assert!(argv_guard(&vdpa, &caps).is_ok());
}

const OLD: &str = "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/>\
    <source type='unix' path='/run/a.sock' mode='client'/><model type='virtio'/>\
    <alias name='net1'/></interface>";

#[test]
fn update_sees_link_and_socket_changes() {
    let old = iface(OLD);
    let new = iface(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/>\
         <source type='unix' path='/run/b.sock' mode='client'/><link state='down'/></interface>",
    );
    let ch = validate_update(&old, &new, false, false).unwrap();
    assert!(ch.socket);
    assert_eq!(ch.link, Some(false));
    assert_eq!(ch.new.vhostuser_socket().unwrap().0, "/run/b.sock");
    assert_eq!(ch.new.alias(), Some("net1"));
    assert_eq!(ch.words().len(), 2);
    let same = validate_update(&old, &old, true, false).unwrap();
    assert!(!same.socket && same.link.is_none());
    // Live, the socket moves only with a replug.
    let e = validate_update(&old, &new, true, false).unwrap_err();
    assert_eq!(e.rule, Rule::SocketChangeNeedsReplug);
    assert!(e.to_string().contains("--replug") && e.to_string().contains("hotswap"));
    assert!(validate_update(&old, &new, true, true).is_ok());
}

/// Found by the soak test: the live XML's own `<interface>` with only the link changed was
/// taken for a socket change (the socket's path compared with its position in the document),
/// so update-device refused it without --replug.
#[test]
fn update_same_socket_read_at_another_position_is_no_socket_change() {
    let old = iface(OLD);
    let given = iface(
        "<interface type='vhostuser'>\n  <mac address='52:54:00:00:00:01'/>\n  \
         <source type='unix' path='/run/a.sock' mode='client'/><link state='down'/></interface>",
    );
    let ch = validate_update(&old, &given, true, false).unwrap();
    assert!(!ch.socket, "{:?}", ch.words());
    assert_eq!(ch.link, Some(false));
}

#[test]
fn update_refuses_other_changes_naming_them() {
    let old = iface(OLD);
    let e = validate_update(
        &old,
        &iface(
            "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/>\
             <source type='unix' path='/run/a.sock' mode='client'/><model type='e1000'/>\
             <mtu size='9000'/></interface>",
        ),
        false,
        false,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::UpdateNotChangeable);
    let m = e.to_string();
    assert!(m.contains("<model>") && m.contains("<mtu>"), "{m}");
    let e = validate_update(
        &old,
        &iface(
            "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
             <source bridge='br0'/></interface>",
        ),
        false,
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("type"), "{e}");
}

/// `<bandwidth>` of a bridge or ethernet NIC changes in place (removing it removes the limits);
/// on other types it stays refused.
#[test]
fn update_changes_bandwidth_of_tap_nics_only() {
    let old = iface(
        "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>\
         <bandwidth><inbound average='122'/></bandwidth></interface>",
    );
    let ch = validate_update(
        &old,
        &iface(
            "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>\
             <bandwidth><inbound average='1220' burst='64'/><outbound average='122'/>\
             </bandwidth></interface>",
        ),
        true,
        false,
    )
    .unwrap();
    assert!(ch.bandwidth);
    assert_eq!(
        ch.words(),
        ["bandwidth inbound average 1220 burst 64, outbound average 122"]
    );
    let ch = validate_update(
        &old,
        &iface(
            "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>\
             </interface>",
        ),
        true,
        false,
    )
    .unwrap();
    assert!(
        ch.bandwidth && ch.new.bandwidth.is_none(),
        "{:?}",
        ch.words()
    );
    assert_eq!(ch.words(), ["bandwidth removed"]);
    // The same setting again: no change.
    let ch = validate_update(&old, &old.clone(), true, false).unwrap();
    assert!(!ch.bandwidth);
    // A vhost-user NIC: refused, naming <bandwidth>.
    let e = validate_update(
        &iface(OLD),
        &iface(
            "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/>\
             <source type='unix' path='/run/a.sock' mode='client'/>\
             <bandwidth><inbound average='122'/></bandwidth></interface>",
        ),
        true,
        false,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::UpdateNotChangeable);
    assert!(e.to_string().contains("<bandwidth>"), "{e}");
    // An Open vSwitch port: refused too (not enforced there).
    let ovs = "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
               <source bridge='br-int'/><virtualport type='openvswitch'><parameters \
               interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>";
    let e = validate_update(
        &iface(&format!("{ovs}</interface>")),
        &iface(&format!(
            "{ovs}<bandwidth><inbound average='122'/></bandwidth></interface>"
        )),
        true,
        false,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::UpdateNotChangeable);
    assert!(e.to_string().contains("<bandwidth>"), "{e}");
}

/// A network NIC's switch port policy changes in place (set-policy); on any other NIC
/// `<bandwidth>`/`<vlan>`/`<port>` stay not changeable here.
#[test]
fn update_changes_a_network_nics_bandwidth_vlan_and_isolation() {
    let old = iface(
        "<interface type='network'><mac address='52:54:00:00:00:01'/>\
         <source network='sw'/><bandwidth><inbound average='100'/></bandwidth></interface>",
    );
    let given = iface(
        "<interface type='network'>\n<mac address='52:54:00:00:00:01'/>\
         <source network='sw'/><bandwidth><inbound average='200' burst='64'/></bandwidth>\
         <vlan><tag id='42'/></vlan><port isolated='yes'/></interface>",
    );
    let ch = validate_update(&old, &given, true, false).unwrap();
    assert!(ch.port_policy && !ch.socket && ch.link.is_none());
    assert_eq!(
        ch.new
            .bandwidth
            .as_ref()
            .unwrap()
            .inbound
            .as_ref()
            .unwrap()
            .average,
        Some(200)
    );
    assert!(ch.new.vlan.is_some() && ch.new.port_isolated.is_some());
    assert!(ch.words()[0].contains("switch port policy"));
    let same = validate_update(&old, &old, true, false).unwrap();
    assert!(!same.port_policy);
    // The same change on a vhost-user NIC is refused.
    let vu = iface(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:01'/>\
         <source type='unix' path='/run/a.sock' mode='client'/><vlan><tag id='42'/></vlan>\
         </interface>",
    );
    let e = validate_update(&iface(OLD), &vu, true, false).unwrap_err();
    assert_eq!(e.rule, Rule::UpdateNotChangeable);
    assert!(e.to_string().contains("<vlan>"), "{e}");
}

/// `<memtune>`/`<cputune>` × define/start → accepted, or refused with this text.
#[rustfmt::skip]
const TUNING_TABLE: &[(&str, &str, Want)] = &[
    ("memtune limits",      "<memtune><hard_limit unit='MiB'>256</hard_limit><soft_limit unit='MiB'>128</soft_limit><swap_hard_limit unit='MiB'>512</swap_hard_limit></memtune>", A),
    ("min_guarantee",       "<memtune><min_guarantee unit='MiB'>64</min_guarantee></memtune>", R("min_guarantee> cannot be enforced")),
    ("memtune unknown",     "<memtune><hard_limt>1</hard_limt></memtune>", R("<hard_limt> is not a memory limit")),
    ("swap below hard",     "<memtune><hard_limit>2048</hard_limit><swap_hard_limit>1024</swap_hard_limit></memtune>", R("at least <hard_limit>")),
    ("shares and global",   "<cputune><shares>512</shares><global_period>100000</global_period><global_quota>50000</global_quota></cputune>", A),
    ("global_quota -1",     "<cputune><global_quota>-1</global_quota></cputune>", A),
    ("shares 1",            "<cputune><shares>1</shares></cputune>", R("<shares> 1 is out of range")),
    ("period 10",           "<cputune><global_period>10</global_period></cputune>", R("<global_period> 10")),
    ("quota 5",             "<cputune><global_quota>5</global_quota></cputune>", R("<global_quota> 5")),
    ("vcpupin",             "<cputune><vcpupin vcpu='0' cpuset='1'/></cputune>", R("CPU pinning is not enforced")),
    ("emulatorpin",         "<cputune><emulatorpin cpuset='1'/></cputune>", R("<emulatorpin>: CPU pinning")),
    ("per-vcpu period",     "<cputune><period>100000</period></cputune>", R("per-thread CPU bandwidth")),
    ("emulator_quota",      "<cputune><emulator_quota>1000</emulator_quota></cputune>", R("per-thread CPU bandwidth")),
    ("vcpusched",           "<cputune><vcpusched vcpus='0' scheduler='fifo' priority='1'/></cputune>", R("real-time scheduler")),
    ("cachetune",           "<cputune><cachetune vcpus='0'/></cputune>", R("resctrl")),
];

#[test]
fn tuning_enforced_or_refused() {
    let mut wrong = Vec::new();
    for (name, tune, want) in TUNING_TABLE {
        let mut d = Domain::parse(&format!(
            "<domain type='kvm'><name>t</name><memory unit='MiB'>64</memory>{tune}\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>"
        ))
        .unwrap();
        d.fill_defaults().unwrap();
        for op in [Operation::Define, Operation::Start] {
            let got = validate_domain(op, &d, None).map_err(|r| r.to_string());
            let ok = match (want, &got) {
                (A, Ok(())) => true,
                (R(s), Err(e)) => e.contains(s),
                _ => false,
            };
            if !ok {
                wrong.push(format!(
                    "{name} × {}: want {want:?}, got {got:?}",
                    op.as_str()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// A tuning refusal points at the element (line:col) and names the domain.
#[test]
fn tuning_refusals_are_located() {
    let d = Domain::parse(
        "<domain type='kvm'><name>t</name>\n<cputune>\n  <shares>1024</shares>\n  \
         <vcpupin vcpu='0' cpuset='1'/>\n</cputune>\n\
         <os><type>hvm</type></os></domain>",
    )
    .unwrap();
    let r = validate_domain(Operation::Define, &d, None).unwrap_err();
    let [one] = r.0.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!(one.rule, Rule::CputuneNotEnforced);
    assert!(
        one.located()
            .starts_with("4:3: unsupported configuration: domain 't': <cputune><vcpupin>"),
        "{}",
        one.located()
    );
}

fn with_seclabel(seclabel: &str) -> Domain {
    let xml = format!(
        "<domain type='qemu'><name>s</name><memory>65536</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>{seclabel}<devices/></domain>"
    );
    virtnet_conf::load_domain(&xml).unwrap()
}

#[test]
fn seclabels_virtnet_honours_are_accepted() {
    for ok in [
        "",
        "<seclabel type='none'/>",
        "<seclabel type='none' model='selinux'/>",
        "<seclabel type='dynamic' model='dac'/>",
        "<seclabel type='dynamic' model='dac' relabel='yes'/>",
        "<seclabel type='static' model='dac'><label>+107:+107</label></seclabel>",
        "<seclabel type='static' model='dac' relabel='yes'><label>qemu:kvm</label></seclabel>",
    ] {
        for op in [Operation::Define, Operation::Start] {
            assert!(
                validate_domain(op, &with_seclabel(ok), None).is_ok(),
                "{ok} refused for {op:?}"
            );
        }
    }
}

#[test]
fn seclabels_virtnet_cannot_honour_are_refused_with_what_it_does_instead() {
    for (bad, rule, says) in [
        (
            "<seclabel type='dynamic' model='selinux'/>",
            Rule::SecLabelModel,
            "private mount namespace",
        ),
        (
            "<seclabel type='static' model='apparmor'><label>x</label></seclabel>",
            Rule::SecLabelModel,
            "no 'apparmor' label",
        ),
        (
            "<seclabel type='dynamic'/>",
            Rule::SecLabelModel,
            "model='dac'",
        ),
        (
            "<seclabel type='static' model='dac'/>",
            Rule::SecLabelDac,
            "needs <label>",
        ),
        (
            "<seclabel type='static' model='dac'><label>qemu</label></seclabel>",
            Rule::SecLabelDac,
            "not user:group",
        ),
        (
            "<seclabel type='static' model='dac'><label>+0:+0</label></seclabel>",
            Rule::SecLabelDac,
            "as root",
        ),
        (
            "<seclabel type='static' model='dac'><label>root:kvm</label></seclabel>",
            Rule::SecLabelDac,
            "as root",
        ),
        (
            "<seclabel type='static' model='dac' relabel='no'><label>a:b</label></seclabel>",
            Rule::SecLabelDac,
            "relabel='no'",
        ),
        (
            "<seclabel type='dynamic' model='dac'><label>a:b</label></seclabel>",
            Rule::SecLabelDac,
            "type='static'",
        ),
    ] {
        let e = validate_domain(Operation::Define, &with_seclabel(bad), None).unwrap_err();
        assert_eq!(e.first_rule(), Some(rule), "{bad}: {e}");
        let located = e.located().join("; ");
        assert!(located.contains(says), "{bad}: {located}");
        assert!(e.0[0].pos.is_known(), "{bad}: no position");
    }
}

/// The first findings: a bridge NIC with a VLAN, a virtual port, an unknown filter
/// or unknown content is refused at define, each at its own element's line:col.
#[test]
fn unenforced_settings_are_refused_at_their_element() {
    let d = domain(
        "kvm",
        "\n<interface type='bridge'>\n<mac address='52:54:00:00:00:01'/>\n\
         <source bridge='br0'/>\n<vlan><tag id='42'/></vlan>\n\
         <virtualport type='midonet'/>\n<filterref filter='my-own'/>\n<frob/>\n\
         </interface>",
    );
    let r = validate_domain(Operation::Define, &d, None).unwrap_err();
    let got: Vec<(Rule, u32, u32)> =
        r.0.iter()
            .map(|r| (r.rule, r.pos.line, r.pos.col))
            .collect();
    assert_eq!(
        got,
        [
            (Rule::UnknownContent, 8, 1),
            (Rule::VirtualPortNotSupported, 6, 1),
            (Rule::VlanNotEnforced, 5, 1),
            (Rule::FilterInvalid, 7, 12),
        ]
    );
    let text = r.to_string();
    assert!(text.contains("5:1: unsupported configuration: interface 52:54:00:00:00:01 (type='bridge'): <vlan> is not applied on type='bridge'"), "{text}");
    assert!(
        text.contains("MidoNet ports need a MidoNet agent"),
        "{text}"
    );
    assert!(text.contains("<filterref filter='my-own'>"), "{text}");
}

/// `<virtualport type='openvswitch'>` runs on type='bridge' (with its `<vlan>`, one tag or a
/// trunk); on other types it is refused, and so are the settings virtnet enforces only on
/// Linux bridge ports and taps.
#[test]
fn openvswitch_port_on_bridge_only_with_its_vlan() {
    let ovs = "<virtualport type='openvswitch'><parameters \
               interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>";
    let bridge = |extra: &str| {
        domain(
            "kvm",
            &format!(
                "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
                 <source bridge='br-int'/>{ovs}{extra}</interface>"
            ),
        )
    };
    for op in [Operation::Define, Operation::Start, Operation::Attach] {
        for vlan in [
            "",
            "<vlan><tag id='42'/></vlan>",
            "<vlan trunk='yes'><tag id='42' nativeMode='untagged'/><tag id='43'/></vlan>",
        ] {
            validate_domain(op, &bridge(vlan), None).unwrap_or_else(|e| panic!("{vlan}: {e}"));
        }
    }
    for (extra, what) in [
        (
            "<bandwidth><inbound average='100'/></bandwidth>",
            "<bandwidth>",
        ),
        ("<filterref filter='clean-traffic'/>", "<filterref>"),
        ("<port isolated='yes'/>", "<port isolated='yes'/>"),
    ] {
        let r = validate_domain(Operation::Define, &bridge(extra), None).unwrap_err();
        assert_eq!(r.0[0].rule, Rule::OvsPortSetting, "{r}");
        assert!(
            r.to_string()
                .contains(&format!("{what} is not enforced on an Open vSwitch port")),
            "{r}"
        );
    }
    let direct = domain(
        "kvm",
        &format!(
            "<interface type='direct'><mac address='52:54:00:00:00:01'/>\
             <source dev='eth0' mode='bridge'/>{ovs}</interface>"
        ),
    );
    let r = validate_domain(Operation::Define, &direct, None).unwrap_err();
    assert_eq!(r.0[0].rule, Rule::VirtualPortNotSupported, "{r}");
    assert!(
        r.to_string()
            .contains("use type='bridge' with <source bridge"),
        "{r}"
    );
    let network = domain(
        "kvm",
        &format!(
            "<interface type='network'><mac address='52:54:00:00:00:01'/>\
             <source network='ovs'/>{ovs}</interface>"
        ),
    );
    // On a network its kind decides, when the NIC is resolved: define takes it; a
    // virtnet-vswitch network refuses it then (an Open vSwitch network merges it).
    validate_domain(Operation::Define, &network, None).unwrap();
    let r =
        validate_network_source(Operation::Start, "t", &network.devices.interfaces[0]).unwrap_err();
    assert_eq!(r.0[0].rule, Rule::NetworkNotOvs, "{r}");
    assert!(
        r.to_string().contains("is a virtnet-vswitch network"),
        "{r}"
    );
}

/// Start and attach see a network NIC resolved onto its switch port (vhost-user, QEMU the
/// server): the switch enforces its VLAN, isolation, bandwidth and filter, so they pass; on a
/// vhost-user NIC QEMU connects to (a foreign back end) they are refused.
#[test]
fn switch_settings_pass_on_a_resolved_port_only() {
    let caps = QemuCaps::latest();
    let settings = "<vlan><tag id='42'/></vlan><bandwidth><inbound average='100'/></bandwidth>\
                    <port isolated='yes'/><filterref filter='clean-traffic'/>";
    let nic = |mode: &str| {
        format!(
            "<interface type='vhostuser'>{M}<source type='unix' path='/run/v0.sock' \
             mode='{mode}'/><model type='virtio'/>{settings}</interface>"
        )
    };
    // As virtnetd hands them over: not through conf's checks of the type as defined.
    let check = |op: Operation, xml: &str| {
        let mut i = iface(xml);
        i.fill_defaults();
        let mut d = domain("kvm", "");
        let r = match op {
            Operation::Attach => validate_interface(op, &d, &i, Some(&caps)),
            _ => {
                d.devices.interfaces.push(i);
                validate_domain(op, &d, Some(&caps))
            }
        };
        r.map_err(|r| r.to_string())
    };
    for op in [Operation::Start, Operation::Attach] {
        assert_eq!(check(op, &nic("server")), Ok(()), "{op:?}");
        let e = check(op, &nic("client")).unwrap_err();
        for what in [
            "<vlan>",
            "<bandwidth>",
            "<port isolated='yes'/>",
            "<filterref>",
        ] {
            assert!(e.contains(what), "{op:?} {what}: {e}");
        }
    }
    // Defined as vhost-user, the same settings are refused whatever the socket's side.
    assert!(check(Operation::Define, &nic("server")).is_err());
    let network = format!(
        "<interface type='network'>{M}<source network='sw0'/><model type='virtio'/>{settings}\
         </interface>"
    );
    assert_eq!(run(Operation::Define, &network, &caps), Ok(()));
}
