//! Plan tests: insta snapshots of whole plans (committed in `snapshots/`; a missing or changed
//! snapshot fails the test, in CI as locally), and the rules around them.

use virtnet_conf::Domain;
use virtnet_qemu::validate::Rule;
use virtnet_qemu::{DevNode, FdRef, NicBackend, QemuCaps, QemuUser, QemuVersion};

use super::*;
use crate::error::VmError;

const QEMU_7_2: QemuCaps = QemuCaps {
    version: QemuVersion::new(7, 2, 22),
    vhost_net: true,
};

const SHARED_MEMFD: &str =
    "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>";

fn domain_xml(domain_type: &str, memory_backing: &str, nics: &str) -> String {
    format!(
        "<domain type='{domain_type}'>
  <name>vm1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='MiB'>256</memory>
  {memory_backing}
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/guest/vmlinux</kernel>
    <initrd>/guest/initramfs.cpio</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    {nics}
    <serial type='unix'>
      <source mode='bind' path='/run/virtnet/vm1.serial'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>"
    )
}

fn load(xml: &str) -> Domain {
    match virtnet_conf::load_domain(xml) {
        Ok(d) => d,
        Err(e) => panic!("test domain does not load: {e:?}\n{xml}"),
    }
}

/// virtnetd's default: QEMU confined as `virtnet-qemu`, its state and run root hidden.
fn ctx() -> PlanContext {
    let mut ctx = PlanContext::new("/usr/bin/qemu-system-x86_64", QEMU_7_2, "/run/virtnet/vm1");
    ctx.sandbox = Some(Sandbox::new(QemuUser {
        name: "virtnet-qemu".into(),
        uid: 990,
        gid: 990,
        groups: vec![],
    }));
    ctx.hide = vec!["/var/lib/virtnet".into(), "/run/virtnet".into()];
    ctx.reach = vec!["/run/virtnet/networks".into()];
    ctx
}

fn plan(domain_type: &str, memory_backing: &str, nics: &str) -> StartPlan {
    let d = load(&domain_xml(domain_type, memory_backing, nics));
    plan_start(&d, &ctx()).unwrap_or_else(|e| panic!("plan failed: {e}"))
}

const BRIDGE: &str = "<interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>";

const BRIDGE_MQ: &str = "<interface type='bridge'>
      <mac address='52:54:00:00:00:02'/>
      <source bridge='br0'/>
      <target dev='vm1-mq'/>
      <model type='virtio'/>
      <driver queues='4'/>
      <mtu size='9000'/>
    </interface>";

const ETHERNET_UNMANAGED: &str = "<interface type='ethernet'>
      <mac address='52:54:00:00:00:03'/>
      <target dev='tap-ext' managed='no'/>
      <model type='virtio'/>
    </interface>";

const DIRECT: &str = "<interface type='direct'>
      <mac address='52:54:00:00:00:04'/>
      <source dev='eth0' mode='bridge'/>
      <model type='virtio'/>
    </interface>";

const VHOSTUSER: &str = "<interface type='vhostuser'>
      <mac address='52:54:00:00:00:05'/>
      <source type='unix' path='/run/vhost/vm1.sock' mode='server'/>
      <model type='virtio'/>
    </interface>";

const HOSTDEV: &str = "<interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:06'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>
      </source>
      <vlan><tag id='42'/></vlan>
    </interface>";

const USER: &str = "<interface type='user'>
      <mac address='52:54:00:00:00:07'/>
      <model type='virtio'/>
      <link state='down'/>
    </interface>";

#[test]
fn snapshot_bridge() {
    insta::assert_yaml_snapshot!("bridge", plan("qemu", "", BRIDGE));
}

const BRIDGE_BANDWIDTH: &str = "<interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <model type='virtio'/>
      <bandwidth>
        <inbound average='1000' peak='2000' burst='256'/>
        <outbound average='122'/>
      </bandwidth>
    </interface>
    <interface type='ethernet'>
      <mac address='52:54:00:00:00:08'/>
      <target dev='tap-ext' managed='no'/>
      <script path='/etc/virtnet/ifup-ext'/>
      <model type='virtio'/>
      <bandwidth><inbound average='12207'/></bandwidth>
    </interface>
    <interface type='direct'>
      <mac address='52:54:00:00:00:09'/>
      <source dev='eth0' mode='bridge'/>
      <model type='virtio'/>
      <bandwidth><outbound average='1221' peak='2442'/></bandwidth>
    </interface>";

/// `average='0'` is libvirt's "no limit" for that direction; a floor on a tap is refused.
#[test]
fn bandwidth_average_zero_is_no_limit_and_floor_is_refused() {
    let iface = |bw: &str| {
        let d = load(&domain_xml(
            "qemu",
            "",
            &format!(
                "<interface type='bridge'><mac address='52:54:00:00:00:01'/>\
                 <source bridge='br0'/><bandwidth>{bw}</bandwidth></interface>"
            ),
        ));
        d.devices.interfaces[0].clone()
    };
    let (i, o) = bandwidth_limits(&iface("<inbound average='0'/><outbound average='5'/>")).unwrap();
    assert_eq!(i, None);
    assert_eq!(o.map(|o| o.average), Some(5));
    let mut with_floor = iface("<inbound average='10'/>");
    with_floor
        .bandwidth
        .as_mut()
        .unwrap()
        .inbound
        .as_mut()
        .unwrap()
        .floor = Some(5);
    let e = bandwidth_limits(&with_floor).unwrap_err();
    assert!(e.contains("has a floor"), "{e}");
}

/// `<bandwidth>`: a shape step right after the tap or macvtap (and after an ethernet NIC's
/// script, as libvirt sets bandwidth after running it), opening no fd.
#[test]
fn snapshot_bandwidth() {
    let p = plan("qemu", "", BRIDGE_BANDWIDTH);
    insta::assert_yaml_snapshot!("bandwidth", p);
}

#[test]
fn snapshot_bridge_multiqueue() {
    insta::assert_yaml_snapshot!("bridge_multiqueue", plan("qemu", "", BRIDGE_MQ));
}

#[test]
fn snapshot_bridge_multiqueue_kvm_vhost_net() {
    insta::assert_yaml_snapshot!(
        "bridge_multiqueue_kvm_vhost_net",
        plan("kvm", "", BRIDGE_MQ)
    );
}

#[test]
fn snapshot_ethernet_unmanaged() {
    insta::assert_yaml_snapshot!("ethernet_unmanaged", plan("qemu", "", ETHERNET_UNMANAGED));
}

const ETHERNET_SCRIPTS: &str = "<interface type='ethernet'>
      <mac address='52:54:00:00:00:07'/>
      <script path='/etc/virtnet/ifup'/>
      <downscript path='/etc/virtnet/ifdown'/>
      <model type='virtio'/>
    </interface>
    <interface type='ethernet'>
      <mac address='52:54:00:00:00:08'/>
      <target dev='tap-ext' managed='no'/>
      <script path='/etc/virtnet/ifup-ext'/>
      <model type='virtio'/>
    </interface>";

#[test]
fn snapshot_ethernet_scripts() {
    // KVM: the vhost-net step comes after the script's, which follows its tap's at once.
    insta::assert_yaml_snapshot!("ethernet_scripts", plan("kvm", "", ETHERNET_SCRIPTS));
}

#[test]
fn scripts_come_right_after_their_tap_and_open_no_fd() {
    let p = plan("kvm", "", ETHERNET_SCRIPTS);
    let kinds: Vec<String> = p.nics[0].steps.iter().map(|s| s.describe()).collect();
    assert_eq!(
        kinds,
        [
            "create tap vnetN",
            "run script /etc/virtnet/ifup with the tap's name; run downscript \
             /etc/virtnet/ifdown at teardown",
            "open /dev/vhost-net (1 fds)"
        ]
    );
    // The netdev stays fd-based: tap fd 3, vhost fd 4 (the script step opens none), ...; then
    // the monitor and the serial console's listening socket.
    assert_eq!(p.inherited_fds(), vec![3, 4, 5, 6, 7, 8]);
    assert_eq!(p.pass_fds[0].what, "QMP monitor");
    assert_eq!(p.pass_fds[0].fd, 7);
    assert!(p.argv.iter().all(|a| !a.contains("script")), "{:?}", p.argv);
}

#[test]
fn snapshot_direct() {
    insta::assert_yaml_snapshot!("direct", plan("qemu", "", DIRECT));
}

#[test]
fn snapshot_vhostuser() {
    insta::assert_yaml_snapshot!("vhostuser", plan("qemu", SHARED_MEMFD, VHOSTUSER));
}

#[test]
fn snapshot_hostdev() {
    insta::assert_yaml_snapshot!("hostdev", plan("qemu", "", HOSTDEV));
}

#[test]
fn snapshot_user() {
    insta::assert_yaml_snapshot!("user", plan("qemu", "", USER));
}

#[test]
fn snapshot_all_types() {
    let nics = [
        BRIDGE,
        BRIDGE_MQ,
        ETHERNET_UNMANAGED,
        DIRECT,
        VHOSTUSER,
        HOSTDEV,
        USER,
    ]
    .join("\n    ");
    insta::assert_yaml_snapshot!("all_types", plan("qemu", SHARED_MEMFD, &nics));
}

/// Host steps carry typed values (MAC, macvtap mode, PCI address) that serialise as the same
/// strings as before and read back checked: a damaged MAC is refused, not passed on.
#[test]
fn host_steps_round_trip_typed() {
    let nics = [BRIDGE, DIRECT, HOSTDEV].join("\n    ");
    let p = plan("qemu", "", &nics);
    let steps: Vec<&HostStep> = p.nics.iter().flat_map(|n| &n.steps).collect();
    let json = serde_json::to_value(&steps).unwrap();
    let back: Vec<HostStep> = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.iter().collect::<Vec<_>>(), steps);
    let text = json.to_string();
    for part in [
        r#""mac":"52:54:00:00:00:01""#,
        r#""mode":"#,
        r#""pci":"0000:"#,
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    let mut bad = json[0].clone();
    bad["mac"] = "+a:+b:+c:+d:+e:+f".into();
    assert!(serde_json::from_value::<HostStep>(bad).is_err());
}

/// The fd numbers QEMU is told about are exactly the ones the host steps place, in order,
/// from `first_fd` up, each once.
#[test]
fn argv_fds_match_host_steps() {
    let nics = [BRIDGE, BRIDGE_MQ, ETHERNET_UNMANAGED, DIRECT].join("\n");
    let d = load(&domain_xml("qemu", "", &nics));
    let mut c = ctx();
    c.first_fd = 10;
    let p = plan_start(&d, &c).unwrap();
    // The NICs' fds, then the monitor and the serial console's socket.
    assert_eq!(p.inherited_fds(), (10..19).collect::<Vec<_>>());
    assert!(
        p.argv
            .contains(&"socket,id=charmonitor,fd=17,server=on,wait=off".to_string()),
        "{:?}",
        p.argv
    );
    let netdevs: Vec<&String> = p
        .argv
        .iter()
        .zip(p.argv.iter().skip(1))
        .filter(|(o, _)| *o == "-netdev")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(netdevs.len(), 4);
    assert!(netdevs[0].contains(r#""fd":"10""#), "{}", netdevs[0]);
    assert!(
        netdevs[1].contains(r#""fds":"11:12:13:14""#),
        "{}",
        netdevs[1]
    );
    assert!(netdevs[2].contains(r#""fd":"15""#), "{}", netdevs[2]);
    assert!(netdevs[3].contains(r#""fd":"16""#), "{}", netdevs[3]);
    for n in &netdevs {
        assert!(
            !n.contains("ifname"),
            "QEMU must never open a tap by name: {n}"
        );
    }
}

/// Chardev files and logs go through fdsets, bind sockets are listening fds; a socket QEMU
/// connects to stays a path.
#[test]
fn snapshot_chardev_fds() {
    let xml = domain_xml("qemu", "", "").replace(
        "  </devices>",
        "<serial type='file'><source path='/var/log/vm1-serial1.log' append='on'/>
           <log file='/var/log/vm1-serial1.txt'/><target port='1'/></serial>
         <serial type='unix'><source mode='connect' path='/run/elsewhere.sock'/>
           <target port='2'/></serial>
         <channel type='unix'><source mode='bind' path='/run/virtnet/vm1.agent'/>
           <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>",
    );
    let p = plan_start(&load(&xml), &ctx()).unwrap();
    insta::assert_yaml_snapshot!("chardev_fds", (&p.pass_fds, &p.argv));
}

/// Hot-plug uses the same per-interface plan with `getfd` names.
#[test]
fn nic_plan_with_getfd_names() {
    let d = load(&domain_xml("kvm", "", &[USER, BRIDGE_MQ].join("\n")));
    let mut names = FdNaming::GetFd;
    let p = nic_plan(&d, 1, &QEMU_7_2, &mut names).unwrap();
    assert_eq!(p.device_id, "net1");
    assert_eq!(
        p.steps[0].fds(),
        Some(&FdSink::GetFd(
            (0..4).map(|q| format!("tapfd-net1-{q}")).collect()
        ))
    );
    let NicBackend::Tap { fds, vhost_fds } = p.qemu_backend() else {
        panic!("not a tap back end");
    };
    assert_eq!(fds[0], FdRef::Name("tapfd-net1-0".into()));
    assert_eq!(vhost_fds[3], FdRef::Name("vhostfd-net1-3".into()));
    let d = load(&domain_xml("qemu", "", BRIDGE));
    let p = nic_plan(&d, 0, &QEMU_7_2, &mut names).unwrap();
    assert_eq!(
        p.steps[0].fds(),
        Some(&FdSink::GetFd(vec!["tapfd-net0".into()]))
    );
    assert_eq!(p.steps.len(), 1, "TCG guests get no vhost-net fds");
}

#[test]
fn network_type_is_refused_with_a_way_out() {
    let d = load(&domain_xml(
        "qemu",
        "",
        "<interface type='network'><mac address='52:54:00:00:00:09'/>\
         <source network='default'/></interface>",
    ));
    let e = plan_start(&d, &ctx()).unwrap_err();
    assert!(
        matches!(&e, VmError::Refused(r) if r.first_rule() == Some(Rule::NetworkNotResolved)),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("'default'") && msg.contains("net-start") && msg.contains("type='bridge'"),
        "{msg}"
    );
}

const BRIDGE_FILTERS: &str = "<interface type='bridge'>
      <mac address='52:54:00:00:00:11'/>
      <source bridge='br0'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'>
        <parameter name='IP' value='10.0.0.2'/>
        <parameter name='IP' value='10.0.0.3'/>
      </filterref>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:12'/>
      <source bridge='br0'/>
      <model type='virtio'/>
      <filterref filter='no-mac-spoofing'/>
    </interface>";

/// The filter is loaded right after its tap is on the bridge (before the vhost-net fds and
/// QEMU): nothing from the guest crosses the bridge unfiltered.
#[test]
fn snapshot_bridge_filters() {
    let p = plan("kvm", "", BRIDGE_FILTERS);
    let kinds: Vec<&str> = p.nics[0]
        .steps
        .iter()
        .map(|s| match s {
            HostStep::CreateTap { .. } => "tap",
            HostStep::LoadFilter { .. } => "filter",
            HostStep::OpenVhostNet { .. } => "vhost",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["tap", "filter", "vhost"]);
    insta::assert_yaml_snapshot!("bridge_filters", p);
}

/// On an ethernet tap (made or existing) the filter follows the tap, before its script.
#[test]
fn a_filter_on_an_ethernet_tap_comes_before_its_script() {
    let nics = "<interface type='ethernet'><mac address='52:54:00:00:00:01'/>\
        <model type='virtio'/><script path='/etc/virtnet/ifup'/>\
        <filterref filter='clean-traffic'/></interface>\
        <interface type='ethernet'><mac address='52:54:00:00:00:02'/>\
        <target dev='tap-ext' managed='no'/><model type='virtio'/>\
        <filterref filter='no-ip-spoofing'><parameter name='IP' value='10.0.0.2'/>\
        </filterref></interface>";
    let p = plan("qemu", "", nics);
    let kinds = |n: &NicPlan| -> Vec<&str> {
        n.steps
            .iter()
            .map(|s| match s {
                HostStep::CreateTap { .. } | HostStep::OpenTap { .. } => "tap",
                HostStep::LoadFilter { .. } => "filter",
                HostStep::RunScripts { .. } => "scripts",
                _ => "other",
            })
            .collect()
    };
    assert_eq!(kinds(&p.nics[0]), ["tap", "filter", "scripts"]);
    assert_eq!(kinds(&p.nics[1]), ["tap", "filter"]);
}

#[test]
fn refusals() {
    let cases = [
        (
            "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source \
             bridge='br0'/><model type='virtio'/><driver name='vhost'/></interface>",
            "TCG",
        ),
        (
            "<interface type='ethernet'><mac address='52:54:00:00:00:01'/><target \
             managed='no'/></interface>",
            "existing tap's name",
        ),
        (
            "<interface type='vdpa'><mac address='52:54:00:00:00:01'/><source \
             dev='/dev/vhost-vdpa-0'/></interface>",
            "not supported yet",
        ),
        (
            "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source \
             bridge='br0'/><script path='/etc/qemu-ifup'/></interface>",
            "scripts are not supported on interfaces of type 'bridge'",
        ),
        (
            "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source \
             bridge='br0'/><bandwidth><inbound floor='100'/></bandwidth></interface>",
            "floor",
        ),
    ];
    let mut planned = 0;
    for (nic, want) in cases {
        let xml = domain_xml("qemu", SHARED_MEMFD, nic);
        let Ok(d) = virtnet_conf::load_domain(&xml) else {
            continue; // refused even earlier, by validation: fine too
        };
        planned += 1;
        let e = plan_start(&d, &ctx()).unwrap_err().to_string();
        assert!(e.contains(want), "{nic}: {e}");
    }
    assert!(planned >= 2, "only {planned} cases reached the planner");
    // load_domain assigns MACs; a domain built in code may still lack one.
    let mut d = load(&domain_xml("qemu", "", BRIDGE));
    d.devices.interfaces[0].mac = None;
    let e = plan_start(&d, &ctx()).unwrap_err().to_string();
    assert!(e.contains("no MAC address"), "{e}");
    let d = load(&domain_xml("qemu", "", BRIDGE));
    let mut c = ctx();
    c.first_fd = 2;
    assert!(plan_start(&d, &c)
        .unwrap_err()
        .to_string()
        .contains("start at 3"));
    c.first_fd = 3;
    c.run_dir = format!("/run/{}", "x".repeat(120)).into();
    assert!(plan_start(&d, &c)
        .unwrap_err()
        .to_string()
        .contains("shorter run dir"));
}

#[test]
fn summary_lists_steps_and_commands() {
    let p = plan("qemu", "", &[BRIDGE, USER].join("\n"));
    let s = p.summary();
    assert!(
        s.contains("create tap vnetN on bridge 'br0' -> QEMU fds [3]"),
        "{s}"
    );
    assert!(
        s.contains(r#"qmp: set_link {"name":"net1","up":false}"#),
        "{s}"
    );
    assert!(s.trim_end().ends_with("qmp: cont {}"), "{s}");
}

#[test]
fn plans_serialise_both_ways() {
    let p = plan(
        "qemu",
        SHARED_MEMFD,
        &[BRIDGE, VHOSTUSER, HOSTDEV].join("\n"),
    );
    let json = serde_json::to_string(&p).unwrap();
    let back: StartPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}

/// `<memtune>`/`<cputune>` become the cgroup's limits (bytes, µs), with virtnetd's pids cap;
/// without a cgroup, a domain asking for limits is refused.
#[test]
fn cgroup_limits_from_the_domain() {
    let tune = "<memtune><hard_limit unit='MiB'>512</hard_limit><soft_limit>1024</soft_limit>\
                <swap_hard_limit unit='GiB'>1</swap_hard_limit></memtune>\
                <cputune><shares>512</shares><global_period>100000</global_period>\
                <global_quota>-1</global_quota></cputune>";
    let d = load(&domain_xml("qemu", tune, ""));
    let mut c = ctx();
    c.cgroup = Some(crate::plan::CgroupOptions { pids_max: Some(77) });
    let p = plan_start(&d, &c).unwrap();
    let spec = p.cgroup.as_ref().unwrap();
    assert_eq!(spec.name, "virtnet/c7a5fdbd-edaf-9455-926a-d65c16db1809");
    assert_eq!(
        spec.limits,
        virtnet_host::CgroupLimits {
            memory_max: Some(512 << 20),
            memory_soft: Some(1024 << 10),
            memory_swap_max: Some(1 << 30),
            pids_max: Some(77),
            cpu_shares: Some(512),
            cpu_period_us: Some(100_000),
            cpu_quota_us: Some(-1),
        }
    );
    assert!(
        p.summary()
            .contains("cgroup virtnet/c7a5fdbd-edaf-9455-926a-d65c16db1809 memory_max=536870912"),
        "{}",
        p.summary()
    );
    c.cgroup = None;
    let e = plan_start(&d, &c).unwrap_err().to_string();
    assert!(e.contains("need the VM's cgroup"), "{e}");
    // No limits and no cgroup: no group in the plan.
    let p = plan_start(&load(&domain_xml("qemu", "", "")), &c).unwrap();
    assert!(p.cgroup.is_none());
}

/// A confined start: QEMU's user is given the kernel, the initrd and the vhost-user socket
/// it connects to (all checked at run time, granted only if out of reach); the socket it
/// listens on for the serial console is not in the list.
#[test]
fn snapshot_confined() {
    let client = VHOSTUSER.replace("mode='server'", "mode='client'");
    let d = load(&domain_xml("qemu", SHARED_MEMFD, &client));
    let mut c = ctx();
    c.sandbox = Some(virtnet_qemu::Sandbox::new(virtnet_qemu::QemuUser {
        name: "virtnet-qemu".into(),
        uid: 990,
        gid: 990,
        groups: vec![],
    }));
    let p = plan_start(&d, &c).unwrap();
    insta::assert_yaml_snapshot!("confined_access", p.access);
    assert!(
        p.summary().contains(
            "  access: let user 'virtnet-qemu' connect to /run/vhost/vm1.sock (vhost-user socket \
             of interface net0) (if out of its reach)\n"
        ),
        "{}",
        p.summary()
    );
    // Unconfined: nothing to grant, and the stored plan has no `access` key.
    let mut off = ctx();
    off.sandbox = None;
    let p = plan_start(&d, &off).unwrap();
    assert!(p.access.is_empty());
    assert!(!serde_json::to_string(&p).unwrap().contains("\"access\""));
}

#[test]
fn confined_plans_carry_the_sandbox_and_seccomp() {
    let p = plan("kvm", "", HOSTDEV);
    let sb = p.sandbox.as_ref().expect("confined");
    assert_eq!(sb.user.uid, 990);
    assert_eq!(sb.keep, [PathBuf::from("/run/virtnet/networks")]);
    assert_eq!(sb.hide, ctx().hide);
    let mut want = DevNode::BASE.to_vec();
    want.extend([
        DevNode::Kvm,
        DevNode::VfioContainer,
        DevNode::VfioGroupOf {
            address: "0000:03:10.1".into(),
        },
    ]);
    assert_eq!(sb.dev, want);
    let i = p
        .argv
        .iter()
        .position(|a| a == "-sandbox")
        .expect("-sandbox");
    assert_eq!(
        p.argv[i + 1],
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
    );
    // TCG, no host device: only the base nodes.
    let p = plan("qemu", "", BRIDGE);
    assert_eq!(p.sandbox.unwrap().dev, DevNode::BASE.to_vec());
}

#[test]
fn opting_out_runs_unconfined_without_seccomp() {
    let xml =
        domain_xml("qemu", "", BRIDGE).replace("<devices>", "<seclabel type='none'/><devices>");
    let p = plan_start(&load(&xml), &ctx()).unwrap();
    assert_eq!(p.sandbox, None);
    assert!(!p.argv.iter().any(|a| a == "-sandbox"));
    let mut off = ctx();
    off.sandbox = None;
    let p = plan_start(&load(&domain_xml("qemu", "", BRIDGE)), &off).unwrap();
    assert_eq!(p.sandbox, None);
    assert!(!p.argv.iter().any(|a| a == "-sandbox"));
}

const OVS: &str = "<interface type='bridge'>
      <mac address='52:54:00:00:00:05'/>
      <source bridge='br-int'/>
      <model type='virtio'/>
      <virtualport type='openvswitch'>
        <parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f' profileid='menial'/>
      </virtualport>
      <vlan trunk='yes'><tag id='42' nativeMode='untagged'/><tag id='43'/></vlan>
    </interface>";

/// An Open vSwitch NIC: a tap on no Linux bridge, then the port step with libvirt's ids
/// (the VM's UUID, the interfaceid) and the VLAN, before QEMU gets the tap's fd.
#[test]
fn snapshot_openvswitch() {
    let p = plan("qemu", "", OVS);
    let steps: Vec<String> = p.host_steps.iter().map(|s| s.describe()).collect();
    assert_eq!(
        steps,
        [
            "create tap vnetN",
            "add the tap to Open vSwitch bridge 'br-int' (iface-id \
             09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f), trunks 42,43"
        ]
    );
    insta::assert_yaml_snapshot!("openvswitch", p.host_steps);
}
