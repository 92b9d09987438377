//! type='ethernet' managed='no' (a tap the test made) and type='direct' (macvtap on a veth)
//! end to end: QEMU gets the fds, the guest pings the host side.

mod common;

use common::{env, ping_over_one_nic, OneNic};
use virtnet_testkit::{add_veth_pair, ip, with_netns};

#[test]
fn unmanaged_tap_is_used_by_fd_and_left_in_place() {
    let Some(env) = env() else { return };
    with_netns(move || {
        ip("tuntap add dev tap-ext mode tap vnet_hdr");
        ip("addr add 10.0.3.1/24 dev tap-ext");
        ip("link set tap-ext up");
        let mac = "52:54:00:00:03:02";
        let nic = format!(
            "<interface type='ethernet'><mac address='{mac}'/>\
             <target dev='tap-ext' managed='no'/><model type='virtio'/></interface>"
        );
        let t = OneNic {
            name: "ethernet1",
            nic: &nic,
            mac,
            addr: "10.0.3.2/24",
            peer: "10.0.3.1",
            link_has: &["tun"],
            link_stays: true,
            ping_failed: "guest ping over the unmanaged tap failed",
            stopping: "stopping a VM with an unmanaged tap",
        };
        ping_over_one_nic(&env, &t, |vm| {
            let r = &vm.resources().nics[0];
            assert_eq!((r.name.as_str(), r.managed), ("tap-ext", false));
            assert!(vm.resources().undo.is_empty(), "nothing of ours to undo");
        });
    });
}

#[test]
fn macvtap_on_a_veth_reaches_its_peer() {
    let Some(env) = env() else { return };
    with_netns(move || {
        // The macvtap sits on veth0; its frames leave through veth0 and arrive at veth1.
        add_veth_pair("veth0", "veth1", Some("10.0.4.1/24"));
        let mac = "52:54:00:00:04:02";
        let nic = format!(
            "<interface type='direct'><mac address='{mac}'/>\
             <source dev='veth0' mode='bridge'/><model type='virtio'/></interface>"
        );
        let t = OneNic {
            name: "direct1",
            nic: &nic,
            mac,
            addr: "10.0.4.2/24",
            peer: "10.0.4.1",
            link_has: &["macvtap mode bridge", mac],
            link_stays: false,
            ping_failed: "guest ping through the macvtap failed",
            stopping: "stopping a VM with a macvtap",
        };
        ping_over_one_nic(&env, &t, |_| {});
    });
}
