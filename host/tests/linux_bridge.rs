//! Real Linux bridges in a private network namespace (needs root).

mod common;

use common::{in_netns, ip, link_details, links};
use virtnet_host::{BridgePortOpts, HostError, HostNet, HostUndo, LinuxHost, TapSpec, UndoStack};

fn spec(name: &str) -> TapSpec {
    let mut s = TapSpec::new("52:54:00:00:00:01".parse().unwrap());
    s.name = Some(name.into());
    s
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn attach_shows_master_detach_removes_it_and_nothing_is_left() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        ip("link add br0 type bridge");
        let tap = host.create_tap(&spec("t0")).unwrap();

        let undo = host
            .attach_to_bridge("t0", "br0", &BridgePortOpts::default())
            .unwrap();
        assert_eq!(
            undo,
            HostUndo::DetachFromBridge {
                port: "t0".into(),
                bridge: "br0".into()
            }
        );
        let d = link_details("t0").unwrap();
        assert!(d.contains("master br0"), "{d}");
        assert!(d.contains("isolated off"), "{d}");
        assert_eq!(
            host.link("t0").unwrap().unwrap().master.as_deref(),
            Some("br0")
        );
        // Attaching again is harmless.
        host.attach_to_bridge("t0", "br0", &BridgePortOpts::default())
            .unwrap();

        undo.apply(&host).unwrap();
        assert!(!link_details("t0").unwrap().contains("master"));
        assert_eq!(host.link("t0").unwrap().unwrap().master, None);
        undo.apply(&host).unwrap(); // idempotent

        // Detaching from a bridge it is not on changes nothing.
        ip("link add br1 type bridge");
        host.attach_to_bridge("t0", "br1", &BridgePortOpts::default())
            .unwrap();
        host.detach_from_bridge("t0", "br0").unwrap();
        assert!(link_details("t0").unwrap().contains("master br1"));
        let e = host
            .attach_to_bridge("t0", "br0", &BridgePortOpts::default())
            .unwrap_err();
        assert!(matches!(e, HostError::AlreadyAttached { .. }), "{e}");
        assert!(e.to_string().contains("'br1'"), "{e}");

        drop(tap); // the tap disappears and leaves br1 by itself
        assert_eq!(links(), names(&["br0", "br1", "lo"]));
    });
}

#[test]
fn isolated_port() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        ip("link add br0 type bridge");
        let tap = host.create_tap(&spec("iso0")).unwrap();
        host.attach_to_bridge("iso0", "br0", &BridgePortOpts { isolated: true })
            .unwrap();
        let d = link_details("iso0").unwrap();
        assert!(d.contains("master br0") && d.contains("isolated on"), "{d}");
        drop(tap);
        assert_eq!(links(), names(&["br0", "lo"]));
    });
}

#[test]
fn missing_bridge_or_non_bridge_fails_clearly_and_leaves_nothing() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        let tap = host.create_tap(&spec("t1")).unwrap();
        let e = host
            .attach_to_bridge("t1", "br9", &BridgePortOpts::default())
            .unwrap_err();
        assert!(matches!(e, HostError::BridgeNotFound { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("bridge 'br9' does not exist"), "{msg}");
        assert!(msg.contains("ip link add br9 type bridge"), "{msg}");
        assert!(!link_details("t1").unwrap().contains("master"));

        ip("link add ve0 type veth peer name ve1");
        let e = host
            .attach_to_bridge("t1", "ve0", &BridgePortOpts::default())
            .unwrap_err();
        assert!(
            matches!(&e, HostError::NotABridge { kind, .. } if kind == "veth"),
            "{e}"
        );

        ip("link add br0 type bridge");
        let e = host
            .attach_to_bridge("nosuch", "br0", &BridgePortOpts::default())
            .unwrap_err();
        assert!(matches!(e, HostError::LinkNotFound { .. }), "{e}");

        drop(tap);
        assert_eq!(links(), names(&["br0", "lo", "ve0", "ve1"]));
    });
}

#[test]
fn failed_plan_rolls_back_every_step_while_fds_are_still_held() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        ip("link add br0 type bridge");
        let mut undo = UndoStack::new();
        let mut fds = Vec::new();

        let a = host
            .create_tap(&TapSpec::new("52:54:00:00:00:0a".parse().unwrap()))
            .unwrap();
        undo.extend(a.undo.clone());
        undo.push(
            host.attach_to_bridge(&a.name, "br0", &BridgePortOpts::default())
                .unwrap(),
        );
        fds.extend(a.fds);
        let b = host
            .create_tap(&TapSpec::new("52:54:00:00:00:0b".parse().unwrap()))
            .unwrap();
        undo.extend(b.undo.clone());
        fds.extend(b.fds);
        let e = host.attach_to_bridge(&b.name, "nosuchbr", &BridgePortOpts::default());
        assert!(e.is_err());
        assert_eq!(undo.len(), 3);
        assert_eq!(links(), names(&["br0", "lo", "vnet0", "vnet1"]));

        let errors = undo.rollback(&host);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(undo.is_empty());
        assert_eq!(links(), names(&["br0", "lo"]));
        drop(fds);
    });
}
