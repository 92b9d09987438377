//! SR-IOV VF handling against a fake sysfs tree (with a tiny fake kernel behind its
//! writes) and a netlink recorder standing in for the PF. No root needed.

mod fake_sriov;

use std::fs;
use std::sync::atomic::Ordering;

use fake_sriov::*;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, VfInfo, VfInfoMac, VfInfoVlan};
use virtnet_host::netlink::RouteNetlinkMessage;
use virtnet_host::{HostError, HostNet, HostUndo, PciAddr, UndoStack, VfSpec};

fn spec(addr: &str) -> VfSpec {
    let mut s = VfSpec::new(addr.parse::<PciAddr>().unwrap());
    s.mac = Some(mac("52:54:00:01:02:03"));
    s.vlan = Some(42);
    s
}

/// VF 1 as the fake PF starts it (and as every restore must leave it).
fn vf1_as_found() -> VfState {
    VfState {
        mac: mac("02:00:00:00:00:12"),
        vlan: 7,
        qos: 3,
    }
}

/// VF 1 after [`spec`]'s MAC and VLAN 42 were set.
fn vf1_as_configured() -> VfState {
    VfState {
        mac: mac("52:54:00:01:02:03"),
        vlan: 42,
        qos: 0,
    }
}

/// The PF requests that put VF 1 back: its MAC, then VLAN 7 with QoS 3.
fn vf1_restore_requests() -> Vec<VfInfo> {
    vec![
        VfInfo::Mac(VfInfoMac::new(1, &[2, 0, 0, 0, 0, 0x12])),
        VfInfo::Vlan(VfInfoVlan::new(1, 7, 3)),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn prepare_sets_mac_and_vlan_via_the_pf_and_binds_vfio_then_restore_puts_it_all_back() {
    let f = Fake::new();
    let prepared = f.host.prepare_vf(&spec(VF1)).unwrap();
    let saved = &prepared.saved;
    assert_eq!(saved.pf, PF_NAME);
    assert_eq!(saved.index, 1);
    assert_eq!(saved.mac, mac("02:00:00:00:00:12"));
    assert_eq!((saved.vlan, saved.qos), (7, 3));
    assert_eq!(saved.driver.as_deref(), Some("ixgbevf"));
    assert!(saved.managed, "VfSpec::new is managed='yes'");
    assert_eq!(prepared.undo, HostUndo::RestoreVf(saved.clone()));

    // sysfs: unbind from ixgbevf, override, probe -> vfio-pci.
    assert_eq!(
        f.writes(),
        vec![
            (
                "bus/pci/drivers/ixgbevf/unbind".to_string(),
                VF1.to_string()
            ),
            (
                format!("devices/pci0000:00/{VF1}/driver_override"),
                "vfio-pci".to_string()
            ),
            ("bus/pci/drivers_probe".to_string(), VF1.to_string()),
        ]
    );
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("vfio-pci"));
    assert_eq!(
        driver_of(&f.root, VF0).as_deref(),
        Some("ixgbevf"),
        "VF0 untouched"
    );

    // netlink: GETLINK with RTEXT_FILTER_VF, then MAC, then VLAN on VF 1 of the PF.
    let reqs = f.nl.requests();
    let RouteNetlinkMessage::GetLink(get) = &reqs[0].message else {
        panic!("{:?}", reqs[0])
    };
    assert!(get
        .attributes
        .contains(&LinkAttribute::ExtMask(vec![LinkExtentMask::Vf])));
    assert_eq!(
        f.set_requests(),
        vec![
            VfInfo::Mac(VfInfoMac::new(1, &[0x52, 0x54, 0, 1, 2, 3])),
            VfInfo::Vlan(VfInfoVlan::new(1, 42, 0)),
        ]
    );
    // The serialized bytes carry IFLA_VF_MAC {vf=1, mac padded to 32} and IFLA_VF_VLAN.
    let mut vf_mac = vec![40, 0, 1, 0, 1, 0, 0, 0, 0x52, 0x54, 0, 1, 2, 3];
    vf_mac.extend([0u8; 26]);
    assert!(contains(&reqs[1].bytes, &vf_mac), "{:?}", reqs[1].bytes);
    let vf_vlan = [16, 0, 2, 0, 1, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0];
    assert!(contains(&reqs[2].bytes, &vf_vlan), "{:?}", reqs[2].bytes);
    assert_eq!(f.vf(1), vf1_as_configured());
    assert_eq!(f.vf(0).mac, mac("02:00:00:00:00:10"), "VF0 untouched");

    // Restore through the undo step: MAC, VLAN+QoS, then the original driver.
    f.writes.lock().unwrap().clear();
    f.nl.clear();
    prepared.undo.apply(&f.host).unwrap();
    assert_eq!(f.vf(1), vf1_as_found());
    assert_eq!(f.set_requests(), vf1_restore_requests());
    assert_eq!(
        f.writes(),
        vec![
            (
                "bus/pci/drivers/vfio-pci/unbind".to_string(),
                VF1.to_string()
            ),
            (
                format!("devices/pci0000:00/{VF1}/driver_override"),
                "\n".to_string()
            ),
            ("bus/pci/drivers/ixgbevf/bind".to_string(), VF1.to_string()),
        ]
    );
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("ixgbevf"));
    assert_eq!(override_of(&f.root, VF1), "(null)");

    // Restoring twice changes nothing more.
    f.writes.lock().unwrap().clear();
    f.nl.clear();
    let mut stack = UndoStack::new();
    stack.push(prepared.undo.clone());
    assert!(stack.rollback(&f.host).is_empty());
    assert!(f.set_requests().is_empty());
    assert_eq!(
        f.writes().len(),
        1,
        "only the idempotent override clear: {:?}",
        f.writes()
    );
}

#[test]
fn vlan_failure_halfway_undoes_mac_and_driver() {
    let f = Fake::new();
    f.fail_vlan.store(true, Ordering::SeqCst);
    let e = f.host.prepare_vf(&spec(VF1)).unwrap_err();
    assert!(matches!(e, HostError::Netlink { .. }), "{e}");
    assert!(
        e.to_string().contains("set VLAN 42 on VF 1 of 'enp3s0f0'"),
        "{e}"
    );
    // MAC set, VLAN refused, MAC put back.
    assert_eq!(
        f.set_requests(),
        vec![
            VfInfo::Mac(VfInfoMac::new(1, &[0x52, 0x54, 0, 1, 2, 3])),
            VfInfo::Vlan(VfInfoVlan::new(1, 42, 0)),
            VfInfo::Mac(VfInfoMac::new(1, &[2, 0, 0, 0, 0, 0x12])),
        ]
    );
    assert_eq!(f.vf(1), vf1_as_found());
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("ixgbevf"));
    assert_eq!(override_of(&f.root, VF1), "(null)");
}

#[test]
fn probe_that_does_not_bind_vfio_fails_clearly_and_rebinds_the_original_driver() {
    let f = Fake::new();
    f.probe_binds.store(false, Ordering::SeqCst);
    let e = f.host.prepare_vf(&spec(VF0)).unwrap_err();
    assert!(
        matches!(&e, HostError::BindFailed { found, .. } if found == "none"),
        "{e}"
    );
    assert!(e.to_string().contains("did not bind to 'vfio-pci'"), "{e}");
    assert!(f.set_requests().is_empty(), "MAC/VLAN must not be touched");
    assert_eq!(driver_of(&f.root, VF0).as_deref(), Some("ixgbevf"));
    assert_eq!(override_of(&f.root, VF0), "(null)");
    assert_eq!(
        f.vf(0),
        VfState {
            mac: mac("02:00:00:00:00:10"),
            vlan: 0,
            qos: 0
        }
    );
}

#[test]
fn bad_preconditions_fail_before_any_change() {
    let f = Fake::new();
    let check = |addr: &str, what: &str| {
        let e = f.host.prepare_vf(&spec(addr)).unwrap_err();
        assert!(e.to_string().contains(what), "{addr}: {e}");
        assert!(f.writes().is_empty(), "{addr}: {:?}", f.writes());
        assert!(f.set_requests().is_empty());
        e
    };
    assert!(matches!(
        check(OTHER, "not an SR-IOV virtual function"),
        HostError::NotAVf { .. }
    ));
    assert!(matches!(
        check("0000:09:00.0", "no PCI device 0000:09:00.0"),
        HostError::PciDeviceNotFound { .. }
    ));

    f.reported_vfs.store(1, Ordering::SeqCst);
    assert!(matches!(
        check(VF1, "reports no configuration for VF 1"),
        HostError::VfInfoMissing { .. }
    ));
    f.reported_vfs.store(2, Ordering::SeqCst);

    fs::remove_dir_all(f.root.join("bus/pci/drivers/vfio-pci")).unwrap();
    assert!(matches!(
        check(VF1, "modprobe vfio-pci"),
        HostError::DriverMissing { .. }
    ));

    let mut s = spec(VF1);
    s.driver = "ixgbevf".into();
    fs::remove_dir_all(dev_dir(&f.root, PF).join("net")).unwrap();
    let e = f.host.prepare_vf(&s).unwrap_err();
    assert!(matches!(e, HostError::PfWithoutNetdev { .. }), "{e}");
    assert!(f.writes().is_empty());
}

#[test]
fn vf_already_on_vfio_is_not_rebound() {
    let f = Fake::new();
    fs::remove_file(dev_dir(&f.root, VF0).join("driver")).unwrap();
    link_driver(&f.root, VF0, "vfio-pci");
    let mut s = spec(VF0);
    s.vlan = None;
    let p = f.host.prepare_vf(&s).unwrap();
    assert_eq!(p.saved.driver.as_deref(), Some("vfio-pci"));
    assert!(f.writes().is_empty());
    assert_eq!(
        f.set_requests(),
        vec![VfInfo::Mac(VfInfoMac::new(0, &[0x52, 0x54, 0, 1, 2, 3]))]
    );
    f.host.restore_vf(&p.saved).unwrap();
    assert_eq!(f.vf(0).mac, mac("02:00:00:00:00:10"));
    assert_eq!(driver_of(&f.root, VF0).as_deref(), Some("vfio-pci"));
}

/// `managed='no'`: the spec for a VF the user has bound to vfio-pci.
fn unmanaged(addr: &str) -> VfSpec {
    let mut s = spec(addr);
    s.managed = false;
    s
}

/// Rebinds `addr` to `driver` in the fake tree by hand (what the user does for managed='no'),
/// with a driver_override as `driverctl set-override` leaves it.
fn bind_by_hand(f: &Fake, addr: &str, driver: &str) {
    let _ = fs::remove_file(dev_dir(&f.root, addr).join("driver"));
    link_driver(&f.root, addr, driver);
    fs::write(
        dev_dir(&f.root, addr).join("driver_override"),
        format!("{driver}\n"),
    )
    .unwrap();
}

#[test]
fn unmanaged_vf_on_vfio_gets_mac_and_vlan_but_no_driver_write_ever() {
    let f = Fake::new();
    bind_by_hand(&f, VF1, "vfio-pci");
    let prepared = f.host.prepare_vf(&unmanaged(VF1)).unwrap();
    let saved = &prepared.saved;
    assert!(!saved.managed);
    assert_eq!(saved.driver.as_deref(), Some("vfio-pci"));
    assert_eq!(prepared.undo, HostUndo::RestoreVf(saved.clone()));
    assert!(f.writes().is_empty(), "driver writes: {:?}", f.writes());
    // MAC and VLAN through the PF, as libvirt does for interface type='hostdev'.
    assert_eq!(
        f.set_requests(),
        vec![
            VfInfo::Mac(VfInfoMac::new(1, &[0x52, 0x54, 0, 1, 2, 3])),
            VfInfo::Vlan(VfInfoVlan::new(1, 42, 0)),
        ]
    );
    assert_eq!(f.vf(1), vf1_as_configured());

    // Release: MAC and VLAN back, the VF stays on vfio-pci with the user's override.
    f.nl.clear();
    let mut stack = UndoStack::new();
    stack.push(prepared.undo.clone());
    assert!(stack.rollback(&f.host).is_empty());
    assert_eq!(f.vf(1), vf1_as_found());
    assert_eq!(f.set_requests(), vf1_restore_requests());
    assert!(f.writes().is_empty(), "driver writes: {:?}", f.writes());
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("vfio-pci"));
    assert_eq!(override_of(&f.root, VF1), "vfio-pci");
}

#[test]
fn unmanaged_vf_not_on_vfio_is_refused_and_nothing_changes() {
    let f = Fake::new();
    // On its host driver (ixgbevf), and not bound at all.
    let e = f.host.prepare_vf(&unmanaged(VF1)).unwrap_err();
    assert!(
        matches!(&e, HostError::VfNotBound { found, .. } if found == "ixgbevf"),
        "{e}"
    );
    let m = e.to_string();
    for want in [
        VF1,
        "bound to 'ixgbevf', not 'vfio-pci'",
        "managed='no'",
        "bind it to vfio-pci first, or use managed='yes'",
    ] {
        assert!(m.contains(want), "{want:?} not in: {m}");
    }
    fs::remove_file(dev_dir(&f.root, VF0).join("driver")).unwrap();
    let e = f.host.prepare_vf(&unmanaged(VF0)).unwrap_err();
    assert!(
        matches!(&e, HostError::VfNotBound { found, .. } if found == "none"),
        "{e}"
    );
    // vfio-pci not even loaded: still the same advice, not "modprobe".
    fs::remove_dir_all(f.root.join("bus/pci/drivers/vfio-pci")).unwrap();
    let e = f.host.prepare_vf(&unmanaged(VF1)).unwrap_err();
    assert!(matches!(&e, HostError::VfNotBound { .. }), "{e}");

    assert!(f.writes().is_empty(), "{:?}", f.writes());
    assert!(f.set_requests().is_empty(), "MAC/VLAN must not be touched");
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("ixgbevf"));
    assert_eq!(driver_of(&f.root, VF0), None);
    assert_eq!(override_of(&f.root, VF1), "(null)");
    assert_eq!(f.vf(1), vf1_as_found());
}

#[test]
fn unmanaged_vlan_failure_undoes_the_mac_and_leaves_the_driver_alone() {
    let f = Fake::new();
    bind_by_hand(&f, VF1, "vfio-pci");
    f.fail_vlan.store(true, Ordering::SeqCst);
    let e = f.host.prepare_vf(&unmanaged(VF1)).unwrap_err();
    assert!(e.to_string().contains("set VLAN 42 on VF 1"), "{e}");
    assert_eq!(f.vf(1).mac, mac("02:00:00:00:00:12"), "MAC put back");
    assert!(f.writes().is_empty(), "{:?}", f.writes());
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("vfio-pci"));
    assert_eq!(override_of(&f.root, VF1), "vfio-pci");
}

#[test]
fn managed_vf_already_on_vfio_with_an_override_is_still_restored_as_before() {
    // managed='yes' keeps today's behaviour: its restore clears driver_override.
    let f = Fake::new();
    bind_by_hand(&f, VF1, "vfio-pci");
    let p = f.host.prepare_vf(&spec(VF1)).unwrap();
    assert!(p.saved.managed);
    assert!(f.writes().is_empty(), "already on vfio-pci: no rebind");
    f.host.restore_vf(&p.saved).unwrap();
    assert_eq!(
        f.writes(),
        vec![(
            format!("devices/pci0000:00/{VF1}/driver_override"),
            "\n".to_string()
        )]
    );
    assert_eq!(driver_of(&f.root, VF1).as_deref(), Some("vfio-pci"));
}
