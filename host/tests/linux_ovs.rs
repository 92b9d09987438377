//! Real Open vSwitch ports in a private network namespace (needs root and Open vSwitch:
//! a private ovsdb-server + ovs-vswitchd on the userspace datapath, `virtnet_testkit::ovs`).

mod common;

use common::{in_netns, link_details, links};
use virtnet_host::{
    HostError, HostNet, HostUndo, LinuxHost, OvsPortSpec, OvsVlan, TapSpec, UndoStack, Vsctl,
};
use virtnet_testkit::ovs::Ovs;
use virtnet_testkit::{require, Need};

const IFACE_ID: &str = "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f";
const VM_ID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

fn port(bridge: &str, tap: &str, vlan: Option<OvsVlan>) -> OvsPortSpec {
    OvsPortSpec {
        bridge: bridge.into(),
        port: tap.into(),
        iface_id: IFACE_ID.into(),
        mac: "52:54:00:00:00:01".parse().unwrap(),
        vm_id: VM_ID.into(),
        profile_id: Some("menial".into()),
        vlan,
    }
}

fn tap(host: &LinuxHost, name: &str) -> virtnet_host::TapHandle {
    let mut s = TapSpec::new("52:54:00:00:00:01".parse().unwrap());
    s.name = Some(name.into());
    host.create_tap(&s).unwrap()
}

/// A tap becomes a port of an OVS bridge with libvirt's external_ids and its VLAN; the undo
/// removes it (twice is fine); a trunk sets trunks.
#[test]
fn add_port_sets_external_ids_and_vlan_and_undo_removes_it() {
    if !require(&[Need::Binary("ovs-vswitchd")]) {
        return;
    }
    in_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let ovs = Ovs::start(None, dir.path());
        ovs.add_bridge("br-int");
        let host = LinuxHost::new()
            .unwrap()
            .with_ovs(Vsctl::default().with_db(ovs.db()));
        let t = tap(&host, "t0");
        let access = OvsVlan {
            tags: vec![42],
            trunk: false,
            native: None,
        };
        let undo = host
            .ovs_add_port(&port("br-int", "t0", Some(access)))
            .unwrap();
        assert_eq!(
            undo,
            HostUndo::OvsDelPort {
                bridge: "br-int".into(),
                port: "t0".into()
            }
        );
        assert_eq!(ovs.ports("br-int"), ["t0"]);
        for (k, v) in [
            ("iface-id", IFACE_ID),
            ("attached-mac", "52:54:00:00:00:01"),
            ("vm-id", VM_ID),
            ("iface-status", "active"),
            ("port-profile", "menial"),
        ] {
            assert_eq!(ovs.get("Interface", "t0", &format!("external_ids:{k}")), v);
        }
        assert_eq!(ovs.get("Port", "t0", "tag"), "42");
        // ovs-vswitchd took it (a system port of the userspace datapath, no error).
        assert_eq!(ovs.get("Interface", "t0", "error"), "[]");
        assert!(ovs.get("Interface", "t0", "ofport").parse::<i64>().unwrap() > 0);
        // Not a Linux bridge port: the userspace datapath reads the tap itself.
        assert!(!link_details("t0").unwrap().contains("master"));

        undo.apply(&host).unwrap();
        assert!(ovs.ports("br-int").is_empty());
        undo.apply(&host).unwrap(); // idempotent

        let trunk = OvsVlan {
            tags: vec![42, 43],
            trunk: true,
            native: None,
        };
        let undo = host
            .ovs_add_port(&port("br-int", "t0", Some(trunk)))
            .unwrap();
        assert_eq!(ovs.get("Port", "t0", "trunks"), "[42, 43]");
        assert_eq!(ovs.get("Port", "t0", "tag"), "[]");
        let mut stack = UndoStack::from(t.undo.clone());
        stack.push(undo);
        drop(t);
        assert!(stack.rollback(&host).is_empty());
        assert!(ovs.all_ports().is_empty());
        assert!(!links().contains(&"t0".to_string()));
    });
}

/// A bridge OVS does not have (a Linux bridge of that name, or nothing) is refused with what
/// to do, and no port is made.
#[test]
fn a_bridge_ovs_does_not_have_is_refused() {
    if !require(&[Need::Binary("ovs-vswitchd")]) {
        return;
    }
    in_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let ovs = Ovs::start(None, dir.path());
        ovs.add_bridge("br-int");
        common::ip("link add br0 type bridge");
        let host = LinuxHost::new()
            .unwrap()
            .with_ovs(Vsctl::default().with_db(ovs.db()));
        let _t = tap(&host, "t1");
        for br in ["br0", "nope"] {
            let e = host.ovs_add_port(&port(br, "t1", None)).unwrap_err();
            assert!(matches!(e, HostError::OvsBridgeNotFound { .. }), "{e}");
            assert!(e.is_user_error());
            let msg = e.to_string();
            assert!(msg.contains(&format!("ovs-vsctl add-br {br}")), "{msg}");
        }
        assert!(ovs.all_ports().is_empty());
        // An unreachable database is a fault naming it.
        let gone = LinuxHost::new()
            .unwrap()
            .with_ovs(Vsctl::default().with_db(format!("unix:{}/none.sock", dir.path().display())));
        let e = gone.ovs_add_port(&port("br-int", "t1", None)).unwrap_err();
        assert!(
            matches!(e, HostError::Ovs { .. }) && !e.is_user_error(),
            "{e}"
        );
        assert!(e.to_string().contains("none.sock"), "{e}");
    });
}
