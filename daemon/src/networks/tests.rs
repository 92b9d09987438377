//! Networks against the real `virtnet-vswitch` (built here if missing; no root, no QEMU):
//! a NIC's `<driver queues='N'/>` reaches the switch port, also after a switch restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtnet_conf::interface::InterfaceKind;
use virtnet_vswitch_control::PortInfo as SwitchPort;

use super::*;

/// Builds `target/<profile>/virtnet-vswitch` (the test binary lives in `target/<profile>/deps`)
/// if missing, where the daemon looks for it.
fn vswitch_built() {
    let exe = std::env::current_exe().unwrap();
    virtnet_testkit::vswitch_binary(exe.parent().and_then(Path::parent).unwrap());
}

fn iface(xml: &str) -> virtnet_conf::Interface {
    let dom = format!(
        "<domain type='qemu'><name>vm1</name><memory unit='MiB'>64</memory>\
         <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\
         <os><type>hvm</type></os><devices>{xml}</devices></domain>"
    );
    let d = virtnet_conf::load_domain(&dom).unwrap();
    d.devices.interfaces[0].clone()
}

/// The switch's own list of ports.
async fn switch_ports(control: &Path) -> Vec<SwitchPort> {
    let v = switch::request(control, &Request::ListPorts).await.unwrap();
    v.ports.expect("list-ports reports ports")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_queues_reach_the_switch_port_also_after_a_restart() {
    vswitch_built();
    let tmp = tempfile::tempdir().unwrap();
    let registry = Arc::new(Registry::new());
    let nets = Networks::open(
        &tmp.path().join("state"),
        &tmp.path().join("run"),
        registry,
        virtnet_host::QEMU_USER,
    )
    .await
    .unwrap();
    nets.define("<network><name>q</name><virtualport type='virtnet-vswitch'/></network>")
        .await
        .unwrap();
    let info = nets.start("q").await.unwrap();
    let control = PathBuf::from(info.control.unwrap());

    let four = iface(
        "<interface type='network'><mac address='52:54:00:00:00:04'/>\
         <source network='q'/><model type='virtio'/><driver queues='4'/></interface>",
    );
    let one = iface(
        "<interface type='network'><mac address='52:54:00:00:00:01'/>\
         <source network='q'/><model type='virtio'/></interface>",
    );
    let (resolved, p4) = nets.resolve_interface("vm1", &four).await.unwrap();
    let p4 = p4.unwrap();
    assert_eq!(p4.queues, 4);
    // QEMU's side keeps the queues (argv: queues=4 on the netdev, mq=on on the device).
    assert_eq!(resolved.queues(), Some(4));
    let p1 = nets
        .resolve_interface("vm1", &one)
        .await
        .unwrap()
        .1
        .unwrap();
    assert_eq!(p1.queues, 1);
    nets.add_ports("vm1", &[p4.clone(), p1.clone()])
        .await
        .unwrap();

    let queues_of = |ports: &[SwitchPort], name: &str| {
        ports
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.queues)
            .unwrap_or_else(|| panic!("no port {name} in {ports:?}"))
    };
    let ports = switch_ports(&control).await;
    assert_eq!(queues_of(&ports, &p4.port), 4, "{ports:?}");
    assert_eq!(queues_of(&ports, &p1.port), 1, "{ports:?}");
    let info = nets.info("q").await.unwrap();
    let shown: Vec<(String, u32)> = info
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.queues))
        .collect();
    assert!(shown.contains(&(p4.port.clone(), 4)), "{shown:?}");

    // The switch dies: restarted with its ports, 4 queue pairs again.
    let old = info.pid.unwrap();
    // SAFETY: kill(2) on the switch we started.
    unsafe { libc::kill(old, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = nets.info("q").await.unwrap();
        if i.pid.is_some_and(|p| p != old) && i.restarts == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {i:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ports = switch_ports(&control).await;
    assert_eq!(queues_of(&ports, &p4.port), 4, "{ports:?}");

    // A live policy change (update-device of a network NIC) reaches the switch, is recorded,
    // and survives a restart; a policy the switch refuses changes nothing.
    let vlan = iface(
        "<interface type='network'><mac address='52:54:00:00:00:01'/>\
         <source network='q'/><model type='virtio'/><vlan><tag id='42'/></vlan>\
         <bandwidth><inbound average='1000'/></bandwidth><port isolated='yes'/></interface>",
    );
    let old_policy = nets.set_port_policy("q", &p1.port, &vlan).await.unwrap();
    assert!(old_policy.is_default());
    let policy_of = |ports: &[SwitchPort], name: &str| {
        ports
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.policy.clone())
            .unwrap()
    };
    let want = policy::port_policy(&vlan).unwrap();
    assert_eq!(want.vlan.as_ref().unwrap().tags, [42]);
    assert!(want.isolated && want.inbound.is_some());
    assert_eq!(policy_of(&switch_ports(&control).await, &p1.port), want);
    let bad = PortPolicy {
        vlan: Some(virtnet_vswitch_control::PortVlan {
            tags: vec![5000],
            trunk: false,
            native: None,
        }),
        ..PortPolicy::default()
    };
    let e = nets
        .set_policy("q", &p1.port, bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range"), "{e}");
    assert_eq!(policy_of(&switch_ports(&control).await, &p1.port), want);
    let old = nets.info("q").await.unwrap().pid.unwrap();
    // SAFETY: kill(2) on the switch we started.
    unsafe { libc::kill(old, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = nets.info("q").await.unwrap();
        if i.pid.is_some_and(|p| p != old) && i.restarts == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {i:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(policy_of(&switch_ports(&control).await, &p1.port), want);

    // More than the switch offers: refused with the switch's reason, nothing recorded.
    let many = iface(
        "<interface type='network'><mac address='52:54:00:00:00:20'/>\
         <source network='q'/><model type='virtio'/><driver queues='32'/></interface>",
    );
    let p32 = nets
        .resolve_interface("vm1", &many)
        .await
        .unwrap()
        .1
        .unwrap();
    let e = nets.add_ports("vm1", &[p32]).await.unwrap_err().to_string();
    assert!(e.contains("queues"), "{e}");
    assert_eq!(nets.info("q").await.unwrap().ports.len(), 2);

    nets.release_vm("vm1").await;
    assert!(switch_ports(&control).await.is_empty());
    let pid = nets.info("q").await.unwrap().pid.unwrap();
    let start = switch::start_time(pid).unwrap();
    nets.destroy("q").await.unwrap();
    assert!(!switch::alive(pid, start), "switch {pid} still runs");
    assert!(!control.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_refusal_names_each_vm_once() {
    vswitch_built();
    let tmp = tempfile::tempdir().unwrap();
    let nets = Networks::open(
        &tmp.path().join("state"),
        &tmp.path().join("run"),
        Arc::new(Registry::new()),
        virtnet_host::QEMU_USER,
    )
    .await
    .unwrap();
    nets.define("<network><name>d</name><virtualport type='virtnet-vswitch'/></network>")
        .await
        .unwrap();
    nets.start("d").await.unwrap();
    // Port names sort as a-aa.., a-b-.., a-c0..: VM 'a' is not contiguous.
    for (vm, mac) in [
        ("a", "aa:54:00:00:00:01"),
        ("a-b", "52:54:00:00:00:02"),
        ("a", "c0:54:00:00:00:03"),
    ] {
        let nic = iface(&format!(
            "<interface type='network'><mac address='{mac}'/><source network='d'/>\
             <model type='virtio'/></interface>"
        ));
        let p = nets.resolve_interface(vm, &nic).await.unwrap().1.unwrap();
        nets.add_ports(vm, &[p]).await.unwrap();
    }
    let e = nets.destroy("d").await.unwrap_err().to_string();
    assert!(
        e.starts_with("network 'd' is in use by VM(s) a, a-b: stop those VMs"),
        "{e}"
    );
    let e = nets.start("d").await.unwrap_err();
    assert_eq!(e.kind(), "invalid_state");
    assert_eq!(
        e.to_string(),
        "network 'd' is active: nothing to start; `virtnet net-destroy d` stops it"
    );
    nets.release_vm("a").await;
    nets.release_vm("a-b").await;
    nets.destroy("d").await.unwrap();
}

/// A switch started by an older virtnetd (status without `in_dir`) runs elsewhere: its ports
/// get absolute socket paths; one this virtnetd started (in its directory) gets names
/// relative to it.
#[test]
fn socket_paths_are_relative_only_for_a_switch_running_in_its_directory() {
    let old: NetStatus = serde_json::from_str(
        r#"{"name":"n","pid":1,"start_time":2,"control":"/run/virtnet/networks/n/control.sock"}"#,
    )
    .unwrap();
    assert!(!old.in_dir);
    let dir = Path::new("/run/virtnet/networks/n");
    let port = Port {
        vm: "vm1".into(),
        socket: dir.join("vm1-525400000001.sock"),
        queues: 2,
        policy: Default::default(),
    };
    let socket = |req: Request| match req {
        Request::AddPort(cfg) => cfg.socket,
        other => panic!("{other:?}"),
    };
    assert_eq!(socket(add_port(None, "p", &port)), port.socket);
    assert_eq!(
        socket(add_port(Some(dir), "p", &port)),
        PathBuf::from("vm1-525400000001.sock")
    );
}

async fn open_in(dir: &Path) -> Arc<Networks> {
    Networks::open(
        &dir.join("state"),
        &dir.join("run"),
        Arc::new(Registry::new()),
        virtnet_host::QEMU_USER,
    )
    .await
    .unwrap()
}

const BARE: &str = "<network><name>u</name><virtualport type='virtnet-vswitch'/></network>";

#[tokio::test]
async fn a_network_gets_a_uuid_at_define_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let nets = open_in(tmp.path()).await;
    nets.define(BARE).await.unwrap();
    let uuid = nets.info("u").await.unwrap().uuid;
    assert!(Uuid::parse(&uuid).is_some(), "{uuid:?}");
    // Stored with the definition, shown by net-dumpxml.
    let xml = nets.xml("u").await.unwrap().xml;
    assert!(xml.contains(&format!("<uuid>{uuid}</uuid>")), "{xml}");
    let stored = std::fs::read_to_string(tmp.path().join("state/networks/u.xml")).unwrap();
    assert!(stored.contains(&uuid), "{stored}");
    // Redefined without <uuid>: the same UUID; with the same one: fine.
    nets.define(BARE).await.unwrap();
    assert_eq!(nets.info("u").await.unwrap().uuid, uuid);
    let same = BARE.replace("</name>", &format!("</name><uuid>{uuid}</uuid>"));
    nets.define(&same).await.unwrap();
    // With another UUID: refused, the definition unchanged.
    let other = BARE.replace(
        "</name>",
        "</name><uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>",
    );
    let e = nets.define(&other).await.unwrap_err();
    assert!(matches!(e, DaemonError::Conflict(_)), "{e:?}");
    assert!(e.to_string().contains(&uuid), "{e}");
    assert_eq!(nets.info("u").await.unwrap().uuid, uuid);
    // Another network with u's UUID: refused.
    let twin = same.replace("<name>u</name>", "<name>v</name>");
    let e = nets.define(&twin).await.unwrap_err();
    assert!(
        e.to_string().contains("network 'u' already has UUID"),
        "{e}"
    );
    assert!(nets.info("v").await.is_err());
    // Given at define: kept as given.
    let given = other.replace("<name>u</name>", "<name>w</name>");
    nets.define(&given).await.unwrap();
    assert_eq!(
        nets.info("w").await.unwrap().uuid,
        "3e3fce45-4f53-4fa7-bb32-11f34168b82b"
    );
    // After undefine, the name is new again: a new UUID.
    nets.undefine("u").await.unwrap();
    nets.define(BARE).await.unwrap();
    assert_ne!(nets.info("u").await.unwrap().uuid, uuid);
}

#[tokio::test]
async fn a_definition_stored_without_uuid_gets_one_that_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let defs = tmp.path().join("state/networks");
    std::fs::create_dir_all(&defs).unwrap();
    std::fs::write(defs.join("u.xml"), BARE).unwrap();
    let uuid = open_in(tmp.path()).await.info("u").await.unwrap().uuid;
    assert!(Uuid::parse(&uuid).is_some(), "{uuid:?}");
    // Written back: the next daemon sees the same.
    let again = open_in(tmp.path()).await.info("u").await.unwrap().uuid;
    assert_eq!(again, uuid);
}

const OVS_NET: &str = "<network><name>ovs</name><forward mode='bridge'/>\
    <bridge name='br-int'/><virtualport type='openvswitch'/></network>";

/// An Open vSwitch network without Open vSwitch: what needs no bridge check. Active state is
/// written as `net-start` writes it (the e2e test starts it against a real OVS).
#[tokio::test]
async fn an_ovs_network_is_active_without_a_process_and_its_nics_show_their_network() {
    let tmp = tempfile::tempdir().unwrap();
    let nets = open_in(tmp.path()).await;
    nets.define(OVS_NET).await.unwrap();
    nets.define(BARE).await.unwrap();
    let info = nets.info("ovs").await.unwrap();
    assert_eq!(info.state, "inactive");
    assert_eq!(info.bridge.as_deref(), Some("br-int"));
    assert_eq!(nets.info("u").await.unwrap().bridge, None);
    let nic = iface(
        "<interface type='network'><mac address='52:54:00:00:00:07'/>\
         <source network='ovs'/><model type='virtio'/></interface>",
    );
    let e = nets.resolve_interface("vm1", &nic).await.unwrap_err();
    assert!(e.to_string().contains("inactive"), "{e}");
    let e = nets.destroy("ovs").await.unwrap_err();
    assert!(e.to_string().contains("inactive"), "{e}");

    // Active as net-start records it: kept when virtnetd opens its state again; a record for
    // a switch network (no switch status) is dropped.
    let run = tmp.path().join("run/networks");
    let def = parse_network(OVS_NET).unwrap();
    for name in ["ovs", "u"] {
        let rec = ovs::OvsActive {
            name: name.into(),
            xml: def.to_xml(),
        };
        std::fs::write(
            run.join(format!("{name}.active")),
            serde_json::to_vec(&rec).unwrap(),
        )
        .unwrap();
    }
    drop(nets);
    let nets = open_in(tmp.path()).await;
    let info = nets.info("ovs").await.unwrap();
    assert_eq!(
        (info.state.as_str(), info.pid, info.control.as_deref()),
        ("active", None, None)
    );
    assert_eq!(nets.info("u").await.unwrap().state, "inactive");
    assert!(!run.join("u.active").exists());
    // No switch to scrape.
    assert!(nets.reports().await.is_empty());

    // A NIC on it: the bridge form, no switch port; shown as the network form once recorded.
    let (r, port) = nets.resolve_interface("vm1", &nic).await.unwrap();
    assert_eq!(port, None);
    assert!(matches!(&r.kind, InterfaceKind::Bridge { bridge } if bridge.value == "br-int"));
    assert_eq!(nets.as_defined("vm1", &r), r, "not recorded yet");
    nets.record_ovs("vm1", std::slice::from_ref(&nic), std::slice::from_ref(&r));
    let shown = nets.as_defined("vm1", &r);
    assert!(
        matches!(&shown.kind, InterfaceKind::Network { network, bridge: Some(b), .. }
            if network.value == "ovs" && b == "br-int"),
        "{:?}",
        shown.kind
    );
    assert_eq!(nets.as_defined("vm2", &r), r, "another VM's");
    // net-destroy while a VM uses it: allowed (libvirt), the NIC still shown on it.
    nets.destroy("ovs").await.unwrap();
    assert!(!run.join("ovs.active").exists());
    assert_eq!(nets.as_defined("vm1", &r).kind, shown.kind);
    // Kept across an open; gone when the VM stops.
    drop(nets);
    let nets = open_in(tmp.path()).await;
    assert_eq!(nets.as_defined("vm1", &r).kind, shown.kind);
    nets.release_vm("vm1").await;
    assert_eq!(nets.as_defined("vm1", &r), r);
    nets.undefine("ovs").await.unwrap();
}
