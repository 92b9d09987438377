//! type='ethernet' managed='no' (a tap the test made) and type='direct' (macvtap on a veth)
//! end to end: QEMU gets the fds, the guest pings the host side.

mod common;

use common::{env, netdevs, start_with_console, BOOT, CMD};
use virtnet_host::LinuxHost;
use virtnet_testkit::leak::process_argv;
use virtnet_testkit::{ip, link_details, links, runtime, with_netns, Snapshot, TestDomain};
use virtnet_vm::{ExecOptions, StopMode};

#[test]
fn unmanaged_tap_is_used_by_fd_and_left_in_place() {
    let Some(env) = env() else { return };
    with_netns(move || {
        ip("tuntap add dev tap-ext mode tap vnet_hdr");
        ip("addr add 10.0.3.1/24 dev tap-ext");
        ip("link set tap-ext up");
        let tmp = tempfile::tempdir().unwrap();
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:03:02";
        let nic = format!(
            "<interface type='ethernet'><mac address='{mac}'/>\
             <target dev='tap-ext' managed='no'/><model type='virtio'/></interface>"
        );
        let xml = TestDomain::new("ethernet1", &serial)
            .nic(&nic, mac, Some("10.0.3.2/24"))
            .xml(env.guest);
        let plan = env.plan(&xml, &tmp.path().join("run"));
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let host = LinuxHost::new().unwrap();
            let (vm, mut con) = start_with_console(&plan, &host, &ExecOptions::default(), &serial)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let nd = netdevs(&process_argv(vm.pid()));
            assert!(
                nd[0].contains(r#""fd":"#) && !nd[0].contains("ifname"),
                "{}",
                nd[0]
            );
            let r = &vm.resources().nics[0];
            assert_eq!((r.name.as_str(), r.managed), ("tap-ext", false));
            assert!(vm.resources().undo.is_empty(), "nothing of ours to undo");

            con.wait_nic_up(mac, BOOT).await.unwrap();
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.3.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "guest ping over the unmanaged tap failed:\n{out}");

            vm.stop(&host, StopMode::Destroy).await.unwrap();
            let after = link_details("tap-ext").expect("an unmanaged tap stays after stop");
            assert!(after.contains("tun"), "{after}");
            before.assert_no_leaks("stopping a VM with an unmanaged tap");
        });
    });
}

#[test]
fn macvtap_on_a_veth_reaches_its_peer() {
    let Some(env) = env() else { return };
    with_netns(move || {
        // The macvtap sits on veth0; its frames leave through veth0 and arrive at veth1.
        ip("link add veth0 type veth peer name veth1");
        ip("addr add 10.0.4.1/24 dev veth1");
        ip("link set veth0 up");
        ip("link set veth1 up");
        let tmp = tempfile::tempdir().unwrap();
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:04:02";
        let nic = format!(
            "<interface type='direct'><mac address='{mac}'/>\
             <source dev='veth0' mode='bridge'/><model type='virtio'/></interface>"
        );
        let xml = TestDomain::new("direct1", &serial)
            .nic(&nic, mac, Some("10.0.4.2/24"))
            .xml(env.guest);
        let plan = env.plan(&xml, &tmp.path().join("run"));
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let host = LinuxHost::new().unwrap();
            let (vm, mut con) = start_with_console(&plan, &host, &ExecOptions::default(), &serial)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let nd = netdevs(&process_argv(vm.pid()));
            assert!(
                nd[0].contains(r#""fd":"#) && !nd[0].contains("ifname"),
                "{}",
                nd[0]
            );
            let mv = vm.resources().nics[0].name.clone();
            let details = link_details(&mv).expect("the macvtap exists");
            assert!(details.contains("macvtap mode bridge"), "{details}");
            assert!(details.contains(mac), "{details}");

            con.wait_nic_up(mac, BOOT).await.unwrap();
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.4.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "guest ping through the macvtap failed:\n{out}");

            vm.stop(&host, StopMode::Destroy).await.unwrap();
            assert!(!links().contains(&mv), "macvtap {mv} left behind");
            before.assert_no_leaks("stopping a VM with a macvtap");
        });
    });
}
