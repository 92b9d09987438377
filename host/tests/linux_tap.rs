//! Real taps in a private network namespace (needs root).

mod common;

use std::os::fd::AsFd;

use common::{in_netns, ip, link_details, links};
use virtnet_host::{tun_fd_info, HostError, HostNet, HostUndo, LinuxHost, MacAddr, TapSpec};

const IFF_TAP: u16 = 0x0002;
const IFF_NO_PI: u16 = 0x1000;
const IFF_VNET_HDR: u16 = 0x4000;
const IFF_MULTI_QUEUE: u16 = 0x0100;

fn mac() -> MacAddr {
    "52:54:00:12:34:56".parse().unwrap()
}

#[test]
fn auto_named_tap_has_host_mac_mtu_and_is_up_and_dies_with_its_fd() {
    in_netns(|| {
        let base = links();
        assert_eq!(base, vec!["lo".to_string()]);
        let host = LinuxHost::new().unwrap();
        let mut spec = TapSpec::new(mac());
        spec.mtu = Some(1400);
        let tap = host.create_tap(&spec).unwrap();
        assert_eq!(tap.name, "vnet0");
        assert_eq!(tap.fds.len(), 1);

        let d = link_details("vnet0").unwrap();
        assert!(d.contains("link/ether fe:54:00:12:34:56"), "{d}");
        assert!(d.contains("mtu 1400"), "{d}");
        assert!(d.contains(",UP") || d.contains("<UP"), "{d}");
        assert!(d.contains("tun type tap"), "{d}");
        assert!(d.contains("vnet_hdr on"), "{d}");
        assert!(!d.contains("persist on"), "must not be persistent: {d}");

        let st = host.link("vnet0").unwrap().unwrap();
        assert_eq!(st.ifindex, tap.ifindex);
        assert_eq!(st.mac, Some("fe:54:00:12:34:56".parse().unwrap()));
        assert_eq!(st.mtu, Some(1400));
        assert!(st.up);
        assert_eq!(st.kind.as_deref(), Some("tun"));

        let (name, flags) = tun_fd_info(tap.fds[0].as_fd()).unwrap();
        assert_eq!(name, "vnet0");
        assert_eq!(
            flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR),
            IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
        );
        assert_eq!(flags & IFF_MULTI_QUEUE, 0);

        // The next automatic name is the next number, not a reuse.
        let tap2 = host.create_tap(&TapSpec::new(mac())).unwrap();
        assert_eq!(tap2.name, "vnet1");
        drop(tap2);

        // Non-persistent: closing the fd removes the tap.
        drop(tap);
        assert!(link_details("vnet0").is_none());
        assert!(host.link("vnet0").unwrap().is_none());
        assert_eq!(links(), base);
    });
}

#[test]
fn multiqueue_tap_gives_n_fds_and_lives_until_the_last_one() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        let mut spec = TapSpec::new(mac());
        spec.name = Some("mq0".into());
        spec.queues = 4;
        let mut tap = host.create_tap(&spec).unwrap();
        assert_eq!(tap.fds.len(), 4);
        for fd in &tap.fds {
            let (name, flags) = tun_fd_info(fd.as_fd()).unwrap();
            assert_eq!(name, "mq0");
            assert_ne!(flags & IFF_MULTI_QUEUE, 0);
        }
        let d = link_details("mq0").unwrap();
        assert!(d.contains("multi_queue"), "{d}");
        tap.fds.truncate(1);
        assert!(link_details("mq0").is_some(), "one queue left keeps it");
        drop(tap);
        assert_eq!(links(), vec!["lo".to_string()]);
    });
}

#[test]
fn explicit_names_in_use_and_invalid_names_fail_clearly() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        let mut spec = TapSpec::new(mac());
        spec.name = Some("vm1-eth0".into());
        let tap = host.create_tap(&spec).unwrap();
        assert_eq!(tap.name, "vm1-eth0");

        let e = host.create_tap(&spec).unwrap_err();
        assert!(matches!(e, HostError::NameInUse { .. }), "{e}");
        assert!(e.to_string().contains("ip link del vm1-eth0"), "{e}");
        // The existing tap was not touched: still there, still one queue.
        assert!(link_details("vm1-eth0")
            .unwrap()
            .contains("fe:54:00:12:34:56"));

        spec.name = Some("lo".into());
        let e = host.create_tap(&spec).unwrap_err();
        assert!(matches!(e, HostError::NameInUse { .. }), "{e}");

        for bad in ["bad/name", "has space", "vnet%d", "sixteen-bytes-xx", ".."] {
            spec.name = Some(bad.into());
            let e = host.create_tap(&spec).unwrap_err();
            assert!(matches!(e, HostError::InvalidName { .. }), "{bad}: {e}");
        }
        spec.name = None;
        spec.queues = 0;
        assert!(matches!(
            host.create_tap(&spec),
            Err(HostError::InvalidSpec { .. })
        ));

        drop(tap);
        assert_eq!(links(), vec!["lo".to_string()]);
    });
}

#[test]
fn undo_deletes_the_tap_even_while_its_fd_is_held_and_is_idempotent() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        let tap = host.create_tap(&TapSpec::new(mac())).unwrap();
        assert_eq!(tap.undo.len(), 1);
        let undo = tap.undo[0].clone();
        assert_eq!(
            undo,
            HostUndo::DeleteLink {
                name: tap.name.clone(),
                ifindex: Some(tap.ifindex)
            }
        );
        undo.apply(&host).unwrap();
        assert!(link_details(&tap.name).is_none());
        undo.apply(&host).unwrap();

        // A stale undo must not delete a newer device that reused the name.
        let mut spec = TapSpec::new(mac());
        spec.name = Some(tap.name.clone());
        let again = host.create_tap(&spec).unwrap();
        assert_ne!(again.ifindex, tap.ifindex);
        undo.apply(&host).unwrap();
        assert!(
            link_details(&tap.name).is_some(),
            "reused name must survive a stale undo"
        );
        drop((tap, again));
        assert_eq!(links(), vec!["lo".to_string()]);
    });
}

#[test]
fn unmanaged_taps_are_opened_not_changed() {
    in_netns(|| {
        let host = LinuxHost::new().unwrap();
        let e = host.open_tap("nosuch0", 1, true).unwrap_err();
        assert!(matches!(e, HostError::TapNotFound { .. }), "{e}");
        assert!(
            e.to_string().contains("ip tuntap add nosuch0 mode tap"),
            "{e}"
        );
        assert_eq!(
            links(),
            vec!["lo".to_string()],
            "opening must not create it"
        );

        ip("tuntap add ptap0 mode tap vnet_hdr");
        let before = link_details("ptap0").unwrap();
        let t = host.open_tap("ptap0", 1, true).unwrap();
        assert_eq!(t.fds.len(), 1);
        assert!(t.undo.is_empty());
        assert_eq!(tun_fd_info(t.fds[0].as_fd()).unwrap().0, "ptap0");

        let e = host.open_tap("ptap0", 1, true).unwrap_err();
        assert!(matches!(e, HostError::TapBusy { .. }), "{e}");
        let e = host.open_tap("ptap0", 2, true).unwrap_err();
        assert!(matches!(e, HostError::TapFlagsMismatch { .. }), "{e}");
        drop(t);
        // Persistent and not ours: still there, unchanged (same MAC, still down).
        let after = link_details("ptap0").unwrap();
        let mac_of = |s: &str| s.split("link/ether ").nth(1).unwrap()[..17].to_string();
        assert_eq!(mac_of(&before), mac_of(&after));
        assert!(!after.contains(",UP"), "{after}");

        ip("tuntap add pmq0 mode tap multi_queue");
        let t = host.open_tap("pmq0", 3, true).unwrap();
        assert_eq!(t.fds.len(), 3);
        drop(t);

        ip("tuntap add ptun0 mode tun");
        let e = host.open_tap("ptun0", 1, true).unwrap_err();
        assert!(matches!(e, HostError::NotATap { .. }), "{e}");
        let e = host.open_tap("lo", 1, true).unwrap_err();
        assert!(matches!(e, HostError::NotATap { .. }), "{e}");

        for n in ["ptap0", "pmq0", "ptun0"] {
            ip(&format!("link del {n}"));
        }
        assert_eq!(links(), vec!["lo".to_string()]);
    });
}
