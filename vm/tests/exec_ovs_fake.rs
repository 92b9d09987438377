//! An Open vSwitch NIC's start against [`FakeHost`] (no root, no QEMU): the tap is made,
//! then added to the OVS bridge with libvirt's external_ids; any failure (each host call in
//! turn, a bridge OVS does not have, QEMU not starting) leaves no tap and no port.

use virtnet_host::{FakeCall, FakeHost, HostError, OVS_BRIDGE};
use virtnet_qemu::{QemuCaps, QemuVersion};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, PlanContext, StartPlan, VmError};

const NIC: &str = "<interface type='bridge'><mac address='52:54:00:00:00:01'/>
      <source bridge='br-int'/><model type='virtio'/>
      <virtualport type='openvswitch'><parameters
        interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f' profileid='menial'/></virtualport>
      <vlan><tag id='42'/></vlan></interface>";

fn plan(run_dir: &std::path::Path) -> StartPlan {
    let xml = format!(
        "<domain type='qemu'><name>fake</name>\
         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid><memory unit='MiB'>64</memory>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{NIC}</devices></domain>"
    );
    let d = virtnet_conf::load_domain(&xml).expect("domain loads");
    let caps = QemuCaps {
        version: QemuVersion::new(7, 2, 0),
        vhost_net: false,
    };
    plan_start(&d, &PlanContext::new("/nonexistent/qemu", caps, run_dir)).expect("plan")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn assert_clean(h: &FakeHost, e: &VmError) {
    assert_eq!(h.links(), ["br-int", "lo"], "after: {e}");
    assert!(h.ovs_ports().is_empty(), "OVS port left after: {e}");
}

/// The port gets the tap's name and libvirt's ids; QEMU failing to start removes it (newest
/// first: the port, then the tap); so does every host call failing in turn.
#[test]
fn ovs_port_is_added_after_its_tap_and_removed_on_every_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(&tmp.path().join("vm"));
    let rt = runtime();
    let h = FakeHost::new();
    h.add_link("br-int", OVS_BRIDGE);
    let e = rt
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/qemu"), "{e}");
    assert_clean(&h, &e);
    let calls = h.calls();
    let added: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            FakeCall::OvsAddPort(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(added.len(), 1, "{calls:?}");
    let s = &added[0];
    assert_eq!(
        (s.bridge.as_str(), s.port.as_str(), s.iface_id.as_str()),
        ("br-int", "vnet0", "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")
    );
    assert_eq!(s.vm_id, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    assert_eq!(s.mac.to_string(), "52:54:00:00:00:01");
    assert_eq!(s.profile_id.as_deref(), Some("menial"));
    assert_eq!(
        s.vlan.as_ref().map(|v| (v.tags.clone(), v.trunk)),
        Some((vec![42], false))
    );
    // Newest first: the port goes before the tap.
    let del_port = calls
        .iter()
        .position(|c| matches!(c, FakeCall::OvsDelPort(p) if p == "vnet0"));
    let del_tap = calls
        .iter()
        .position(|c| matches!(c, FakeCall::DeleteLink { name, .. } if name == "vnet0"));
    assert!(del_port.unwrap() < del_tap.unwrap(), "{calls:?}");

    // Each forward call failing in turn (a failing undo call is reported as left behind).
    for n in 0..del_port.unwrap() {
        let h = FakeHost::new();
        h.add_link("br-int", OVS_BRIDGE);
        h.fail_at(n);
        let e = rt
            .block_on(exec::start(&p, &h, &ExecOptions::default()))
            .unwrap_err();
        // The injected failure ended the start, not the missing QEMU after it.
        assert!(e.to_string().contains("injected"), "call {n}: {e}");
        assert_clean(&h, &e);
    }
}

/// A bridge OVS does not have (here a Linux bridge) fails the start with what to do, and
/// leaves no tap.
#[test]
fn a_bridge_ovs_does_not_have_fails_the_start_and_leaves_no_tap() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(&tmp.path().join("vm"));
    let h = FakeHost::new();
    h.add_link("br-int", "bridge");
    let e = runtime()
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    let mut found = false;
    while let Some(s) = src {
        found |= matches!(
            s.downcast_ref::<HostError>(),
            Some(HostError::OvsBridgeNotFound { .. })
        );
        src = s.source();
    }
    assert!(found, "{e}");
    assert!(e.to_string().contains("ovs-vsctl add-br br-int"), "{e}");
    assert_eq!(h.links(), ["br-int", "lo"]);
    assert!(h.ovs_ports().is_empty());
}
