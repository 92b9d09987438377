//! Hot-plug plan tests: insta snapshots of whole attach plans (committed in `snapshots/`; a
//! missing or changed snapshot fails), detach plans, and the id/slot/refusal rules.

use virtnet_conf::xml::{parse_document, Limits};
use virtnet_conf::{Domain, Interface};
use virtnet_qemu::{QemuCaps, QemuVersion};

use super::*;
use crate::exec::{HostResources, NicResource};
use virtnet_host::{HostUndo, SavedVf};

const QEMU_7_2: QemuCaps = QemuCaps {
    version: QemuVersion::new(7, 2, 22),
    vhost_net: true,
};

/// A running VM's live definition: one bridge NIC from the start (net0), a serial console.
fn live(domain_type: &str, extra_nics: &str) -> Domain {
    let xml = format!(
        "<domain type='{domain_type}'>
  <name>vm1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='MiB'>256</memory>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
    </interface>
    {extra_nics}
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"
    );
    virtnet_conf::load_domain(&xml).unwrap_or_else(|e| panic!("{e:?}\n{xml}"))
}

fn iface(xml: &str) -> Interface {
    Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()
}

fn attach(xml: &str) -> AttachPlan {
    plan_attach(&live("qemu", ""), &iface(xml), &QEMU_7_2).unwrap_or_else(|e| panic!("{e}"))
}

const BRIDGE: &str = "<interface type='bridge'><mac address='52:54:00:00:00:05'/>\
    <source bridge='br0'/><model type='virtio'/></interface>";

#[test]
fn snapshot_bridge() {
    let p = attach(BRIDGE);
    assert_eq!(p.device_id, "net1");
    assert_eq!(p.fd_names, ["tapfd-net1"]);
    insta::assert_yaml_snapshot!("bridge", p);
}

/// A filtered bridge NIC: the filter right after the tap is on the bridge, before QEMU gets
/// the fd; the filter undo is recorded with the NIC's, and the detach of that NIC (only) deletes
/// its table.
#[test]
fn snapshot_bridge_filter_and_its_detach() {
    let p = attach(
        "<interface type='bridge'><mac address='52:54:00:00:00:05'/><source bridge='br0'/>\
         <model type='virtio'/><filterref filter='clean-traffic'/></interface>",
    );
    let host: Vec<&crate::plan::HostStep> = p
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            AttachAction::Host(h) => Some(h),
            _ => None,
        })
        .collect();
    assert!(matches!(
        host.as_slice(),
        [
            crate::plan::HostStep::CreateTap { .. },
            crate::plan::HostStep::LoadFilter { .. }
        ]
    ));
    insta::assert_yaml_snapshot!("bridge_filter", p);

    let mut held = boot_resources();
    held.add(&HostResources {
        nics: vec![NicResource {
            nic: 1,
            kind: crate::exec::NicResourceKind::Tap,
            name: "vnet1".into(),
            ifindex: Some(8),
            managed: true,
            bridge: Some("br0".into()),
        }],
        undo: vec![
            HostUndo::DeleteLink {
                name: "vnet1".into(),
                ifindex: Some(8),
            },
            HostUndo::DetachFromBridge {
                port: "vnet1".into(),
                bridge: "br0".into(),
            },
            HostUndo::DeleteNftTable {
                family: "bridge".into(),
                name: "virtnet-filter-vm1-vnet1".into(),
            },
        ],
        cgroup: None,
    });
    held.undo.push(HostUndo::DeleteNftTable {
        family: "bridge".into(),
        name: "virtnet-filter-vm1-vnet11".into(),
    });
    let d = live(
        "qemu",
        "<interface type='bridge'><mac address='52:54:00:00:00:05'/><source bridge='br0'/>\
         <target dev='vnet1'/><model type='virtio'/><filterref filter='clean-traffic'/>\
         <alias name='net1'/></interface>",
    );
    let detach = plan_detach(&d, &d.devices.interfaces[1], &held).unwrap();
    let tables: Vec<&HostUndo> = detach
        .host
        .undo
        .iter()
        .filter(|u| matches!(u, HostUndo::DeleteNftTable { .. }))
        .collect();
    assert_eq!(
        tables,
        [&HostUndo::DeleteNftTable {
            family: "bridge".into(),
            name: "virtnet-filter-vm1-vnet1".into(),
        }]
    );
    let boot = plan_detach(&d, &d.devices.interfaces[0], &held).unwrap();
    assert_eq!(boot.host, boot_resources());
}

#[test]
fn snapshot_bridge_multiqueue_kvm_vhost_net() {
    let xml = "<interface type='bridge'><mac address='52:54:00:00:00:05'/>\
        <source bridge='br0'/><model type='virtio'/><driver queues='2'/></interface>";
    let p = plan_attach(&live("kvm", ""), &iface(xml), &QEMU_7_2).unwrap();
    assert_eq!(
        p.fd_names,
        [
            "tapfd-net1-0",
            "tapfd-net1-1",
            "vhostfd-net1-0",
            "vhostfd-net1-1"
        ]
    );
    insta::assert_yaml_snapshot!("bridge_multiqueue_kvm_vhost_net", p);
}

#[test]
fn snapshot_vhostuser() {
    let client = attach(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:06'/>\
         <source type='unix' path='/run/vhost/vm1-a.sock' mode='client'/>\
         <model type='virtio'/></interface>",
    );
    let cmd = &client.step(AttachStepId::ChardevAdd).unwrap().action;
    let AttachAction::Qmp { command, .. } = cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(command.arguments["backend"]["data"]["server"], false);
    let server = attach(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:06'/>\
         <source type='unix' path='/run/vhost/vm1-a.sock' mode='server'/>\
         <model type='virtio'/></interface>",
    );
    insta::assert_yaml_snapshot!("vhostuser_client", client);
    assert_eq!(
        server.step_ids(),
        [
            AttachStepId::ChardevAdd,
            AttachStepId::WaitBackEnd,
            AttachStepId::NetdevAdd,
            AttachStepId::DeviceAdd
        ],
        "no netdev_add before a back end has connected to the socket QEMU listens on"
    );
    assert!(client.step(AttachStepId::WaitBackEnd).is_none());
    insta::assert_yaml_snapshot!("vhostuser_server", server);
}

#[test]
fn snapshot_direct() {
    insta::assert_yaml_snapshot!(
        "direct",
        attach(
            "<interface type='direct'><mac address='52:54:00:00:00:07'/>\
             <source dev='eth0' mode='bridge'/><model type='virtio'/></interface>"
        )
    );
}

#[test]
fn snapshot_hostdev() {
    let p = attach(
        "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:08'/>\
         <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' \
         function='0x1'/></source><vlan><tag id='42'/></vlan></interface>",
    );
    assert_eq!(p.device_id, "hostdev0");
    assert_eq!(
        p.step_ids(),
        [AttachStepId::Host(0), AttachStepId::DeviceAdd],
        "a VF is only a vfio-pci device_add after the host step"
    );
    insta::assert_yaml_snapshot!("hostdev", p);
}

#[test]
fn snapshot_user() {
    insta::assert_yaml_snapshot!(
        "user",
        attach(
            "<interface type='user'><mac address='52:54:00:00:00:09'/>\
             <model type='e1000'/></interface>"
        )
    );
}

#[test]
fn snapshot_link_down() {
    let p = attach(
        "<interface type='ethernet'><mac address='52:54:00:00:00:0a'/>\
         <target dev='tap-ext' managed='no'/><model type='virtio'/><link state='down'/>\
         </interface>",
    );
    assert_eq!(p.step_ids().last(), Some(&AttachStepId::SetLink));
    insta::assert_yaml_snapshot!("link_down", p);
}

#[test]
fn order_and_undo_follow_libvirt() {
    let p = attach(BRIDGE);
    let names: Vec<String> = p
        .steps
        .iter()
        .map(|s| match (&s.action, &s.undo) {
            (AttachAction::Host(_), AttachUndo::HostUndo) => "host".to_string(),
            (AttachAction::Qmp { command, .. }, AttachUndo::Qmp(u)) => {
                format!("{}/{}", command.execute, u.execute)
            }
            (AttachAction::Qmp { command, .. }, AttachUndo::DeviceDel { id }) => {
                format!("{}/device_del {id}", command.execute)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "host",
            "getfd/closefd",
            "netdev_add/netdev_del",
            "device_add/device_del net1"
        ]
    );
    let summary = p.summary();
    assert!(
        summary.contains(r#"netdev_add {"type":"tap","fd":"tapfd-net1","id":"hostnet1"}"#),
        "{summary}"
    );
}

#[test]
fn ids_and_slots_avoid_what_the_vm_uses() {
    // The live VM has net0 (slot 3) and a NIC added earlier as net4 (slot 5).
    let d = live(
        "qemu",
        "<interface type='user'><mac address='52:54:00:00:00:02'/><model type='virtio'/>\
         <alias name='net4'/><address type='pci' domain='0x0000' bus='0x00' slot='0x05' \
         function='0x0'/></interface>",
    );
    let p = plan_attach(&d, &iface(BRIDGE), &QEMU_7_2).unwrap();
    assert_eq!(p.device_id, "net5");
    assert_eq!(p.netdev_id.as_deref(), Some("hostnet5"));
    let used: Vec<String> = d
        .pci_addresses_in_use()
        .into_iter()
        .map(|(_, a, _)| a.to_string())
        .collect();
    let slot = p.pci_address.clone().unwrap();
    assert!(!used.contains(&slot), "{slot} is in use: {used:?}");
    assert!(
        p.interface_xml.contains("<alias name='net5'/>"),
        "{}",
        p.interface_xml
    );
    // Planned into the live domain, the next one gets other ids and another slot.
    let mut after = d.clone();
    after.devices.interfaces.push(p.interface.clone());
    let xml2 = "<interface type='bridge'><mac address='52:54:00:00:00:0b'/>\
        <source bridge='br0'/><model type='virtio'/></interface>";
    let p2 = plan_attach(&after, &iface(xml2), &QEMU_7_2).unwrap();
    assert_eq!(p2.device_id, "net6");
    assert_ne!(p2.pci_address, p.pci_address);

    // A user alias is kept; one whose ids are taken is refused.
    let ua = "<interface type='bridge'><mac address='52:54:00:00:00:0c'/>\
        <source bridge='br0'/><model type='virtio'/><alias name='ua-extra'/></interface>";
    let p3 = plan_attach(&d, &iface(ua), &QEMU_7_2).unwrap();
    assert_eq!(p3.device_id, "ua-extra");
    assert_eq!(p3.fd_names, ["tapfd-ua-extra"]);
    let taken = "<interface type='bridge'><mac address='52:54:00:00:00:0c'/>\
        <source bridge='br0'/><model type='virtio'/><alias name='net4'/></interface>";
    let e = plan_attach(&d, &iface(taken), &QEMU_7_2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'net4'") && e.contains("already uses"), "{e}");
}

/// A hot-plugged NIC with `<bandwidth>`: shaped right after its tap, undone at unplug.
#[test]
fn snapshot_bridge_bandwidth() {
    let p = attach(
        "<interface type='bridge'><mac address='52:54:00:00:00:05'/>\
         <source bridge='br0'/><model type='virtio'/>\
         <bandwidth><inbound average='122'/><outbound average='1220' burst='128'/></bandwidth>\
         </interface>",
    );
    insta::assert_yaml_snapshot!("bridge_bandwidth", p);
}

#[test]
fn refusals_are_clear() {
    let d = live("qemu", "");
    let refuse = |xml: &str| {
        plan_attach(&d, &iface(xml), &QEMU_7_2)
            .unwrap_err()
            .to_string()
    };
    let e = refuse(
        "<interface type='network'><mac address='52:54:00:00:00:0d'/>\
         <source network='default'/></interface>",
    );
    assert!(
        e.contains("net-start") && e.contains("type='bridge'"),
        "{e}"
    );
    let e = refuse(
        "<interface type='vdpa'><mac address='52:54:00:00:00:0d'/>\
         <source dev='/dev/vhost-vdpa-0'/></interface>",
    );
    assert!(e.contains("not supported yet") && e.contains("vdpa"), "{e}");
    // Socket back ends (the daemon refused them, this plan let them through before).
    let e = refuse(
        "<interface type='mcast'><mac address='52:54:00:00:00:0d'/>\
         <source address='230.0.0.1' port='5558'/></interface>",
    );
    assert!(e.contains("cannot be plugged into a running VM"), "{e}");
    let e = refuse(
        "<interface type='hostdev'><mac address='52:54:00:00:00:0d'/>\
         <source><vendor id='0x0b95'/><product id='0x1790'/></source></interface>",
    );
    assert!(
        e.contains("unsupported configuration: ") && e.contains("<hostdev"),
        "{e}"
    );
    // The MAC of the running NIC.
    let e = refuse(
        "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
         <source bridge='br0'/></interface>",
    );
    assert!(e.contains("cannot be added to VM 'vm1'"), "{e}");
    // Its tap name.
    let e = refuse(
        "<interface type='bridge'><mac address='52:54:00:00:00:0e'/>\
         <source bridge='br0'/><target dev='vnet0'/></interface>",
    );
    assert!(e.contains("vnet0"), "{e}");
    let e = refuse("<interface type='bridge'><source bridge='br0'/></interface>");
    assert!(e.contains("no MAC"), "{e}");
}

fn boot_resources() -> HostResources {
    HostResources {
        nics: vec![NicResource {
            nic: 0,
            kind: crate::exec::NicResourceKind::Tap,
            name: "vnet0".into(),
            ifindex: Some(7),
            managed: true,
            bridge: Some("br0".into()),
        }],
        undo: vec![
            HostUndo::DeleteLink {
                name: "vnet0".into(),
                ifindex: Some(7),
            },
            HostUndo::DetachFromBridge {
                port: "vnet0".into(),
                bridge: "br0".into(),
            },
        ],
        cgroup: None,
    }
}

/// Found by the soak test: NICs A, B, C (bridge, tap `vnet0` recorded at index 2), D
/// (vhost-user); B unplugged, so D is at index 2 now: unplugging D must not take C's tap.
#[test]
fn a_nic_without_host_objects_takes_none_recorded_at_its_index() {
    let mut held = boot_resources();
    held.nics[0].nic = 2;
    let d = iface(
        "<interface type='vhostuser'><mac address='52:54:00:00:00:06'/>\
         <source type='unix' path='/run/vhost/vm1-a.sock' mode='client'/>\
         <model type='virtio'/><alias name='net3'/></interface>",
    );
    let part = resources::of_interface(&held, &d, 2);
    assert!(part.nics.is_empty() && part.undo.is_empty(), "{part:?}");
    // A bridge NIC whose tap name was not recorded still finds its objects by index.
    let b = iface("<interface type='bridge'><mac address='52:54:00:00:00:07'/><source bridge='br0'/></interface>");
    assert_eq!(resources::of_interface(&held, &b, 2).nics.len(), 1);
}

#[test]
fn detach_plans() {
    let mut held = boot_resources();
    // An attached vhost-user NIC and a VF: their records follow the boot NIC's.
    let d = live(
        "qemu",
        "<interface type='vhostuser'><mac address='52:54:00:00:00:06'/>\
         <source type='unix' path='/run/vhost/vm1-a.sock' mode='client'/>\
         <model type='virtio'/><alias name='net1'/></interface>\
         <interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:08'/>\
         <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' \
         function='0x1'/></source><alias name='hostdev0'/></interface>",
    );
    let vf = HostResources {
        nics: vec![NicResource {
            nic: 2,
            kind: crate::exec::NicResourceKind::Vf,
            name: "0000:03:10.1".into(),
            ifindex: None,
            managed: true,
            bridge: None,
        }],
        undo: vec![HostUndo::RestoreVf(SavedVf {
            addr: "0000:03:10.1".parse().unwrap(),
            pf: "eth0".into(),
            index: 3,
            mac: virtnet_host::MacAddr::default(),
            vlan: 0,
            qos: 0,
            driver: Some("iavf".into()),
            managed: true,
        })],
        cgroup: None,
    };
    held.add(&vf);
    let list = &d.devices.interfaces;
    let bridge = plan_detach(&d, &list[0], &held).unwrap();
    assert_eq!(bridge.host, boot_resources());
    let vhost = plan_detach(&d, &list[1], &held).unwrap();
    assert_eq!(vhost.host, HostResources::default());
    let hostdev = plan_detach(&d, &list[2], &held).unwrap();
    assert_eq!(hostdev.host, vf);
    insta::assert_yaml_snapshot!("detach_bridge", bridge);
    insta::assert_yaml_snapshot!("detach_vhostuser", vhost);
    insta::assert_yaml_snapshot!("detach_hostdev", hostdev);

    // Once done, the VM's record loses exactly that NIC's part.
    held.remove_part(&bridge.host);
    assert_eq!(held, vf);

    // An interface that is not in the live domain.
    let stray = iface(BRIDGE);
    let e = plan_detach(&d, &stray, &held).unwrap_err().to_string();
    assert!(
        e.contains("not an interface of the running VM 'vm1'"),
        "{e}"
    );
}

#[test]
fn attached_interface_round_trips() {
    let p = attach(BRIDGE);
    let back = parse_interface(&p.interface_xml).unwrap();
    assert_eq!(back.alias(), Some("net1"));
    assert_eq!(interface_xml(&back), p.interface_xml);
    let pinned = with_target_dev(&p.interface, Some("vnet9"));
    assert_eq!(pinned.target_dev(), Some("vnet9"));
}

#[test]
fn q35_puts_the_nic_on_a_free_root_port() {
    let xml = "<domain type='qemu'><name>q</name><memory unit='MiB'>256</memory>
      <os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/></features>
      <devices>
        <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
        <controller type='pci' model='pcie-root-port'/>
        <controller type='pci' model='pcie-root-port'/>
        <controller type='pci' model='pcie-root-port'/>
        <memballoon model='none'/>
      </devices></domain>";
    let d = virtnet_conf::load_domain(xml).unwrap_or_else(|e| panic!("{e:?}"));
    let p = plan_attach(&d, &iface(BRIDGE), &QEMU_7_2).unwrap();
    let AttachAction::Qmp { command, .. } = &p.step(AttachStepId::DeviceAdd).unwrap().action else {
        panic!()
    };
    let bus = command.arguments["bus"].as_str().unwrap();
    assert!(bus.starts_with("pci.") && bus != "pci.0", "{command:?}");
    assert_eq!(command.arguments["addr"], "0x0");
    // All root ports taken: a clear refusal.
    let mut full = d.clone();
    full.devices.interfaces.push(p.interface.clone());
    let again = iface(
        "<interface type='bridge'><mac address='52:54:00:00:00:0f'/>\
         <source bridge='br0'/><model type='virtio'/></interface>",
    );
    let e = plan_attach(&full, &again, &QEMU_7_2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no free hot-pluggable PCI slot"), "{e}");
}

const ETHERNET_SCRIPTS: &str = "<interface type='ethernet'><mac address='52:54:00:00:00:09'/>\
    <script path='/etc/virtnet/ifup'/><downscript path='/etc/virtnet/ifdown'/>\
    <model type='virtio'/></interface>";

#[test]
fn snapshot_ethernet_scripts() {
    let p = attach(ETHERNET_SCRIPTS);
    // The script runs right after the tap is made, before any fd goes to QEMU; its undo is the
    // host undo (the downscript, recorded once the script succeeded).
    assert_eq!(
        p.step_ids()[..3],
        [
            AttachStepId::Host(0),
            AttachStepId::Host(1),
            AttachStepId::GetFd(0)
        ]
    );
    insta::assert_yaml_snapshot!("ethernet_scripts", p);
}

#[test]
fn detach_runs_the_downscript_of_that_nic_only() {
    let d = live(
        "qemu",
        "<interface type='ethernet'><mac address='52:54:00:00:00:09'/>\
         <target dev='vnet5'/><script path='/etc/virtnet/ifup'/>\
         <downscript path='/etc/virtnet/ifdown'/><model type='virtio'/>\
         <alias name='net1'/></interface>",
    );
    let mut held = boot_resources();
    let eth = HostResources {
        nics: vec![NicResource {
            nic: 1,
            kind: crate::exec::NicResourceKind::Tap,
            name: "vnet5".into(),
            ifindex: Some(9),
            managed: true,
            bridge: None,
        }],
        undo: vec![
            HostUndo::DeleteLink {
                name: "vnet5".into(),
                ifindex: Some(9),
            },
            HostUndo::RunScript(virtnet_host::ScriptRun {
                kind: virtnet_host::ScriptKind::Down,
                path: "/etc/virtnet/ifdown".into(),
                ifname: "vnet5".into(),
                nic: "net1".into(),
                log: Some("/run/virtnet/vm1/qemu.log".into()),
                timeout: std::time::Duration::from_secs(10),
            }),
        ],
        cgroup: None,
    };
    held.add(&eth);
    let list = &d.devices.interfaces;
    let p = plan_detach(&d, &list[1], &held).unwrap();
    assert_eq!(p.host, eth);
    assert_eq!(
        plan_detach(&d, &list[0], &held).unwrap().host,
        boot_resources()
    );
    insta::assert_yaml_snapshot!("detach_ethernet_scripts", p);
}

/// A confined VM's vhost-user client NIC: the attach gives QEMU's user its socket first
/// (held by `<vm>/<alias>`), and the detach of that NIC (only) gives it back.
#[test]
fn confined_vhostuser_client_attach_and_detach() {
    let xml = "<interface type='vhostuser'><mac address='52:54:00:00:00:06'/>\
         <source type='unix' path='/run/vhost/vm1-a.sock' mode='client'/>\
         <model type='virtio'/></interface>";
    let sb = virtnet_qemu::Sandbox::new(virtnet_qemu::QemuUser {
        name: "virtnet-qemu".into(),
        uid: 990,
        gid: 990,
        groups: vec![],
    });
    let unconfined = attach(xml);
    let p = attach(xml).confine(Some(&sb));
    assert_eq!(p.steps.len(), unconfined.steps.len() + 1);
    assert_eq!(p.steps[0].id, AttachStepId::Access);
    let AttachAction::Access(g) = &p.steps[0].action else {
        panic!("{:?}", p.steps[0]);
    };
    assert_eq!(g.holder, "vm1/net1");
    assert_eq!(g.need.access, virtnet_host::Access::Connect);
    assert_eq!(attach(xml).confine(None), unconfined);
    let server = xml.replace("mode='client'", "mode='server'");
    assert_eq!(attach(&server).confine(Some(&sb)), attach(&server));

    // Its grant belongs to that NIC at detach, not to another one.
    let grant = |holder: &str| {
        HostUndo::RestoreOwner(virtnet_host::DacGrant {
            path: "/run/vhost/vm1-a.sock".into(),
            holder: holder.into(),
            uid: 0,
            gid: 0,
            granted_uid: 990,
        })
    };
    let held = HostResources {
        nics: vec![],
        undo: vec![grant("vm1/start"), grant("vm1/net1"), grant("vm1/net2")],
        ..HostResources::default()
    };
    let part = resources::of_interface(&held, &p.interface, 1);
    assert_eq!(part.undo, vec![grant("vm1/net1")]);
}

const OVS: &str = "<interface type='bridge'><mac address='52:54:00:00:00:0a'/>\
    <source bridge='br-int'/><model type='virtio'/><virtualport type='openvswitch'>\
    <parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>\
    <vlan><tag id='42'/></vlan></interface>";

/// Hot-plugging an Open vSwitch NIC: its tap, then its port (before `getfd` hands QEMU the
/// tap); detaching it removes the port before the tap (newest first), and only its own.
#[test]
fn snapshot_openvswitch_attach_and_detach() {
    let p = attach(OVS);
    let steps: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match &s.action {
            AttachAction::Host(crate::plan::HostStep::CreateTap { .. }) => "create_tap",
            AttachAction::Host(crate::plan::HostStep::AddOvsPort { .. }) => "add_ovs_port",
            _ => "other",
        })
        .collect();
    assert_eq!(&steps[..2], ["create_tap", "add_ovs_port"], "{steps:?}");
    insta::assert_yaml_snapshot!("openvswitch", p);

    let mut held = boot_resources();
    let ovs = HostResources {
        nics: vec![NicResource {
            nic: 1,
            kind: crate::exec::NicResourceKind::Tap,
            name: "vnet1".into(),
            ifindex: Some(8),
            managed: true,
            bridge: None,
        }],
        undo: vec![
            HostUndo::DeleteLink {
                name: "vnet1".into(),
                ifindex: Some(8),
            },
            HostUndo::OvsDelPort {
                bridge: "br-int".into(),
                port: "vnet1".into(),
            },
        ],
        cgroup: None,
    };
    held.add(&ovs);
    let with_alias = OVS.replace("</interface>", "<alias name='net1'/></interface>");
    let d = live("qemu", &with_alias);
    let detach = plan_detach(&d, &d.devices.interfaces[1], &held).unwrap();
    assert_eq!(detach.host, ovs);
    insta::assert_yaml_snapshot!("detach_openvswitch", detach);
}
