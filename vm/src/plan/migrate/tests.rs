//! The migration plan: snapshots of plans and refusals, the destination's domain and start.

use super::*;

fn load(nics: &str) -> Domain {
    let xml = format!(
        "<domain type='qemu'><name>vm1</name><memory unit='MiB'>256</memory>\
         <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\
         <os><type>hvm</type></os><devices>{nics}</devices></domain>"
    );
    virtnet_conf::load_domain(&xml).unwrap_or_else(|e| panic!("{e:?}"))
}

fn opts() -> MigrateOptions {
    MigrateOptions {
        dest: "/run/virtnet-b/virtnetd.sock".into(),
        stream: Stream::Tcp {
            host: "10.99.0.2".into(),
            port: 0,
        },
        timeout_ms: 60_000,
        max_bandwidth: None,
        undefine_source: false,
        switch_networks: ["sw0".to_string()].into(),
        switch_socket_dir: Some("/run/virtnet/networks".into()),
        ovn: None,
    }
}

const OVS: &str = "<interface type='bridge'><mac address='52:54:00:00:00:02'/>\
    <source bridge='br-int'/><virtualport type='openvswitch'>\
    <parameters interfaceid='1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0021'/></virtualport>\
    <target dev='vnet4'/><model type='virtio'/><alias name='net1'/></interface>";

const OVS_PLAIN: &str = "<interface type='bridge'><mac address='52:54:00:00:00:03'/>\
    <source bridge='br-int'/><virtualport type='openvswitch'>\
    <parameters interfaceid='6c0ffee0-0000-4000-8000-00000000beef'/></virtualport>\
    <model type='virtio'/><alias name='net2'/></interface>";

/// OVN's steps: the port bound on both chassis first (undo: its options as they were, here
/// `requested-chassis=h1` and no activation-strategy), then the destination's alone after the
/// finish; an OVS NIC whose iface-id names no logical port and a bridge NIC get none.
#[test]
fn ovn_ports_move_with_the_guest() {
    let mut o = opts();
    o.ovn = Some(OvnMove {
        source_chassis: "h1".into(),
        dest_chassis: "h2".into(),
        ports: [(
            "1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0021".to_string(),
            [("requested-chassis".to_string(), "h1".to_string())].into(),
        )]
        .into(),
    });
    let d = load(&format!("{BRIDGE}{OVS}{OVS_PLAIN}"));
    assert_eq!(
        ovs_iface_ids(&d),
        [
            "1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0021",
            "6c0ffee0-0000-4000-8000-00000000beef"
        ]
    );
    let plan = plan_migrate(&d, &o).unwrap();
    insta::assert_yaml_snapshot!(plan);
    insta::assert_snapshot!("ovn_summary", plan.summary());
    // Without --ovn-nb: no OVN step.
    let plain = plan_migrate(&d, &opts()).unwrap();
    assert!(!plain.summary().contains("OVN"), "{}", plain.summary());
}

const BRIDGE: &str = "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
    <source bridge='br0'/><target dev='vnet3'/><model type='virtio'/><alias name='net0'/></interface>";

#[test]
fn bridge_nic() {
    let plan = plan_migrate(&load(BRIDGE), &opts()).unwrap();
    insta::assert_yaml_snapshot!(plan);
    insta::assert_snapshot!("bridge_summary", plan.summary());
}

#[test]
fn unix_stream() {
    let mut o = opts();
    o.stream = Stream::Unix;
    let plan = plan_migrate(&load(BRIDGE), &o).unwrap();
    assert_eq!(
        plan.steps[0].action,
        MigrateAction::Prepare { uri: "unix".into() }
    );
    assert_eq!(incoming_commands("fd:migrate-in").len(), 1);
}

#[test]
fn undefine_source_and_ipv6() {
    let mut o = opts();
    o.undefine_source = true;
    o.stream = Stream::Tcp {
        host: "fd00::2".into(),
        port: 49152,
    };
    o.max_bandwidth = Some(4 << 20);
    let plan = plan_migrate(&load(BRIDGE), &o).unwrap();
    insta::assert_yaml_snapshot!(plan);
}

#[test]
fn refusals_name_each_nic_and_why() {
    let nics = "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:02'/>\
        <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>\
        <interface type='network'><mac address='52:54:00:00:00:03'/><source network='sw0'/><model type='virtio'/></interface>\
        <interface type='vhostuser'><mac address='52:54:00:00:00:04'/>\
        <source type='unix' path='/run/virtnet/networks/sw0/vm1-525400000004.sock' mode='server'/><model type='virtio'/></interface>";
    let e = plan_migrate(&load(nics), &opts()).unwrap_err();
    insta::assert_snapshot!(e.to_string());
}

/// The destination's start: `-incoming defer`, no `cont`, `migrate-incoming` last.
#[test]
fn incoming_start() {
    let caps = virtnet_qemu::QemuCaps {
        version: virtnet_qemu::QemuVersion::new(7, 2, 22),
        vhost_net: false,
    };
    let mut ctx = crate::PlanContext::new("/usr/bin/qemu-system-x86_64", caps, "/run/v/vm1");
    ctx.incoming = Some("tcp:10.99.0.2:0".into());
    let plan = crate::plan_start(&load(BRIDGE), &ctx).unwrap();
    let n = plan.argv.len();
    assert_eq!(plan.argv[n - 2..], ["-incoming", "defer"]);
    assert!(plan.argv.contains(&"-S".to_string()));
    insta::assert_yaml_snapshot!(plan.post_start);
    ctx.incoming = None;
    let normal = crate::plan_start(&load(BRIDGE), &ctx).unwrap();
    assert_eq!(normal.post_start.last().unwrap().execute, "cont");
    assert!(!normal.argv.contains(&"-incoming".to_string()));
}

#[test]
fn a_vhost_user_nic_elsewhere_is_left_to_qemu() {
    let nic = "<interface type='vhostuser'><mac address='52:54:00:00:00:04'/>\
        <source type='unix' path='/run/dpdk/vm1.sock' mode='client'/><model type='virtio'/></interface>";
    assert!(plan_migrate(&load(nic), &opts()).is_ok());
}

#[test]
fn destination_drops_generated_names_only() {
    let nics = format!(
        "{BRIDGE}<interface type='bridge'><mac address='52:54:00:00:00:05'/>\
         <source bridge='br0'/><target dev='mytap'/><model type='virtio'/></interface>\
         <interface type='ethernet'><mac address='52:54:00:00:00:06'/>\
         <target dev='vnet9' managed='no'/><model type='virtio'/></interface>"
    );
    let mut live = load(&nics);
    live.id = Some(4);
    let d = destination_domain(&live);
    assert_eq!(d.id, None);
    let devs: Vec<Option<String>> = d
        .devices
        .interfaces
        .iter()
        .map(|i| {
            i.target
                .as_ref()
                .and_then(|t| t.dev.as_ref())
                .map(|n| n.value.clone())
        })
        .collect();
    assert_eq!(
        devs,
        vec![None, Some("mytap".to_string()), Some("vnet9".to_string())],
        "a managed='no' tap keeps its name, generated-looking or not"
    );
    assert!(
        d.to_xml().contains("<alias name='net0'/>"),
        "{}",
        d.to_xml()
    );
    assert!(generated_name("vnet12") && !generated_name("vnet") && !generated_name("vnetx"));
}
