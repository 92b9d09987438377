//! Real macvtaps on a veth in a private network namespace (needs root).

mod common;

use std::os::fd::AsFd;

use common::{in_netns, ip, link_details, links};
use virtnet_host::netlink::SocketTransport;
use virtnet_host::{
    tun_fd_info, HostError, HostNet, LinuxHost, MacAddr, MacvtapMode, MacvtapSpec, Sysfs, UndoStack,
};

fn mac() -> MacAddr {
    "52:54:00:aa:bb:cc".parse().unwrap()
}

/// A host whose `/dev/tapN` nodes go to a private directory (so mknod is exercised).
fn host_with_dev_dir(dir: &std::path::Path) -> LinuxHost {
    LinuxHost::with_parts(
        Box::new(SocketTransport::open().unwrap()),
        Sysfs::new("/sys"),
        dir,
    )
}

fn ether(details: &str) -> String {
    details.split("link/ether ").nth(1).unwrap()[..17].to_string()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn macvtap_on_veth_with_two_queues_then_deleted() {
    in_netns(|| {
        ip("link add ve0 type veth peer name ve1");
        let dev = tempfile::tempdir().unwrap();
        let host = host_with_dev_dir(dev.path());
        let mut spec = MacvtapSpec::new("ve0", MacvtapMode::Bridge, mac());
        spec.queues = 2;
        let mvt = host.create_macvtap(&spec).unwrap();
        assert_eq!(mvt.name, "macvtap0");
        assert_eq!(mvt.fds.len(), 2);
        for fd in &mvt.fds {
            assert_eq!(tun_fd_info(fd.as_fd()).unwrap().0, "macvtap0");
        }
        let d = link_details("macvtap0").unwrap();
        assert!(d.contains("macvtap0@ve0"), "{d}");
        assert!(d.contains("macvtap mode bridge"), "{d}");
        assert!(d.contains("link/ether 52:54:00:aa:bb:cc"), "{d}");
        assert!(d.contains(",UP"), "{d}");
        // We made /dev/tapN in our directory only to open it, and removed it.
        assert_eq!(std::fs::read_dir(dev.path()).unwrap().count(), 0);

        assert_eq!(mvt.undo.len(), 1);
        mvt.undo[0].apply(&host).unwrap();
        assert!(link_details("macvtap0").is_none());
        mvt.undo[0].apply(&host).unwrap();
        drop(mvt);
        assert_eq!(links(), names(&["lo", "ve0", "ve1"]));
    });
}

#[test]
fn every_mode_with_the_real_dev_directory() {
    in_netns(|| {
        ip("link add ve0 type veth peer name ve1");
        ip("link add ve2 type veth peer name ve3");
        let ve2_before = link_details("ve2").unwrap();
        let host = LinuxHost::new().unwrap();
        let mut handles = Vec::new();
        for (name, mode, lower, mac) in [
            ("mv-vepa", MacvtapMode::Vepa, "ve0", "52:54:00:00:00:01"),
            ("mv-priv", MacvtapMode::Private, "ve0", "52:54:00:00:00:02"),
            (
                "mv-pt",
                MacvtapMode::Passthrough,
                "ve2",
                "52:54:00:00:00:03",
            ),
        ] {
            let mut spec = MacvtapSpec::new(lower, mode, mac.parse().unwrap());
            spec.name = Some(name.into());
            let h = host.create_macvtap(&spec).unwrap();
            let d = link_details(name).unwrap();
            let shown = if mode == MacvtapMode::Passthrough {
                "passthru".to_string()
            } else {
                mode.to_string()
            };
            assert!(d.contains(&format!("macvtap mode {shown}")), "{d}");
            assert_eq!(h.fds.len(), 1);
            handles.push(h);
        }
        // Passthrough: the lower device took the guest MAC; undo gives its own back.
        assert!(link_details("ve2")
            .unwrap()
            .contains("link/ether 52:54:00:00:00:03"));
        assert!(link_details("mv-pt")
            .unwrap()
            .contains("link/ether 52:54:00:00:00:03"));
        for h in &handles {
            let errors = UndoStack::from(h.undo.clone()).rollback(&host);
            assert!(errors.is_empty(), "{errors:?}");
        }
        assert_eq!(ether(&link_details("ve2").unwrap()), ether(&ve2_before));
        drop(handles);
        assert_eq!(links(), names(&["lo", "ve0", "ve1", "ve2", "ve3"]));
    });
}

#[test]
fn errors_leave_nothing_behind() {
    in_netns(|| {
        ip("link add ve0 type veth peer name ve1");
        let host = LinuxHost::new().unwrap();

        let e = host
            .create_macvtap(&MacvtapSpec::new("eth9", MacvtapMode::Bridge, mac()))
            .unwrap_err();
        assert!(matches!(e, HostError::LowerDeviceNotFound { .. }), "{e}");
        assert!(e.to_string().contains("<source dev='eth9'/>"), "{e}");

        let mut spec = MacvtapSpec::new("ve0", MacvtapMode::Bridge, mac());
        spec.name = Some("ve1".into());
        let e = host.create_macvtap(&spec).unwrap_err();
        assert!(matches!(e, HostError::NameInUse { .. }), "{e}");

        // The same MAC twice on one lower device: clear error, second macvtap removed.
        let first = host
            .create_macvtap(&MacvtapSpec::new("ve0", MacvtapMode::Bridge, mac()))
            .unwrap();
        let e = host
            .create_macvtap(&MacvtapSpec::new("ve0", MacvtapMode::Bridge, mac()))
            .unwrap_err();
        assert!(matches!(e, HostError::MacInUse { .. }), "{e}");
        assert!(e.to_string().contains("52:54:00:aa:bb:cc"), "{e}");
        UndoStack::from(first.undo.clone()).rollback(&host);
        drop(first);
        assert_eq!(links(), names(&["lo", "ve0", "ve1"]));

        // Failing after the link exists (cannot make /dev/tapN) deletes the link again.
        let nowhere = LinuxHost::with_parts(
            Box::new(SocketTransport::open().unwrap()),
            Sysfs::new("/sys"),
            "/nonexistent-virtnet-dir",
        );
        let e = nowhere
            .create_macvtap(&MacvtapSpec::new("ve0", MacvtapMode::Bridge, mac()))
            .unwrap_err();
        assert!(matches!(e, HostError::Device { .. }), "{e}");
        assert!(e.to_string().contains("mknod"), "{e}");

        assert_eq!(links(), names(&["lo", "ve0", "ve1"]));
    });
}
