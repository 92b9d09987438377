//! type='bridge' end to end: virtnet creates the tap, attaches it to a bridge, passes the fd
//! to QEMU; the guest pings the bridge's address; two guests on one bridge ping each other;
//! two guests on isolated ports (`<port isolated='yes'/>`) reach a non-isolated port but not
//! each other.

mod common;

use common::{env, ping_over_one_nic, start, OneNic, BOOT, CMD};
use virtnet_host::LinuxHost;
use virtnet_testkit::{
    add_bridge, add_veth_pair, bridge_nic, ip, link_details, links, runtime, with_netns, Snapshot,
    TestDomain,
};
use virtnet_vm::StopMode;

#[test]
fn guest_on_a_bridge_pings_it() {
    let Some(env) = env() else { return };
    with_netns(move || {
        add_bridge("br0", Some("10.0.1.1/24"));
        let mac = "52:54:00:00:01:02";
        let t = OneNic {
            name: "bridge1",
            nic: &bridge_nic(mac, "br0"),
            mac,
            addr: "10.0.1.2/24",
            peer: "10.0.1.1",
            link_has: &["master br0", " tun "],
            link_stays: false,
            ping_failed: "guest ping failed",
            stopping: "stopping a bridge VM",
        };
        ping_over_one_nic(&env, &t, |_| {});
    });
}

#[test]
fn two_guests_on_one_bridge_ping_each_other() {
    let Some(env) = env() else { return };
    with_netns(move || {
        add_bridge("br0", None);
        let tmp = tempfile::tempdir().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let host = LinuxHost::new().unwrap();
            let mut vms = Vec::new();
            for (n, mac, addr) in [
                (1, "52:54:00:00:02:01", "10.0.2.1/24"),
                (2, "52:54:00:00:02:02", "10.0.2.2/24"),
            ] {
                let serial = tmp.path().join(format!("serial{n}.sock"));
                let xml = TestDomain::new(&format!("pair{n}"), &serial)
                    .nic(&bridge_nic(mac, "br0"), mac, Some(addr))
                    .xml(env.guest);
                let plan = env.plan(&xml, &tmp.path().join(format!("run{n}")));
                let started = start(&plan, &host, &serial).await;
                vms.push((mac, started));
            }
            let taps: Vec<String> = vms
                .iter()
                .map(|(_, (vm, _))| vm.resources().nics[0].name.clone())
                .collect();
            assert_ne!(taps[0], taps[1]);
            for (mac, (_, con)) in vms.iter_mut() {
                con.wait_nic_up(mac, BOOT).await.unwrap();
            }
            let (out, rc) = vms[0]
                .1
                 .1
                .run("ping -c 3 -W 2 10.0.2.2", CMD)
                .await
                .unwrap();
            assert_eq!(rc, 0, "guest 1 -> guest 2:\n{out}");
            let (out, rc) = vms[1]
                .1
                 .1
                .run("ping -c 3 -W 2 10.0.2.1", CMD)
                .await
                .unwrap();
            assert_eq!(rc, 0, "guest 2 -> guest 1:\n{out}");
            for (_, (vm, _)) in vms {
                vm.stop(&host, StopMode::Destroy).await.unwrap();
            }
            for t in &taps {
                assert!(!links().contains(t), "tap {t} left behind");
            }
            before.assert_no_leaks("stopping two VMs");
        });
    });
}

/// `<port isolated='yes'/>` on type='bridge' (conf/interface-account.tsv, row `port@isolated`):
/// two guests on isolated ports of one bridge, and a non-isolated veth port whose peer holds
/// 10.0.3.100 in the same namespace. Each guest reaches the veth port; the guests do not reach
/// each other (the bridge forwards nothing between two isolated ports); the taps show
/// `isolated on`. Nothing is left after stop.
#[test]
fn isolated_ports_reach_only_non_isolated_ones() {
    let Some(env) = env() else { return };
    with_netns(move || {
        add_bridge("br0", None);
        // The non-isolated port: veth "up0" in br0, its peer "host0" answers as 10.0.3.100.
        add_veth_pair("up0", "host0", Some("10.0.3.100/24"));
        ip("link set up0 master br0");
        let tmp = tempfile::tempdir().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let host = LinuxHost::new().unwrap();
            let mut vms = Vec::new();
            for (n, mac, addr) in [
                (1, "52:54:00:00:03:01", "10.0.3.1/24"),
                (2, "52:54:00:00:03:02", "10.0.3.2/24"),
            ] {
                let nic = bridge_nic(mac, "br0")
                    .replace("</interface>", "<port isolated='yes'/></interface>");
                let serial = tmp.path().join(format!("serial{n}.sock"));
                let xml = TestDomain::new(&format!("iso{n}"), &serial)
                    .nic(&nic, mac, Some(addr))
                    .xml(env.guest);
                let plan = env.plan(&xml, &tmp.path().join(format!("run{n}")));
                let started = start(&plan, &host, &serial).await;
                vms.push((mac, started));
            }
            let taps: Vec<String> = vms
                .iter()
                .map(|(_, (vm, _))| vm.resources().nics[0].name.clone())
                .collect();
            for t in &taps {
                let d = link_details(t).unwrap_or_default();
                assert!(d.contains("isolated on"), "tap {t} not isolated: {d}");
            }
            let up0 = link_details("up0").unwrap_or_default();
            assert!(
                up0.contains("isolated off"),
                "the veth port is isolated: {up0}"
            );
            for (mac, (_, con)) in vms.iter_mut() {
                con.wait_nic_up(mac, BOOT).await.unwrap();
            }
            // Each isolated guest reaches the non-isolated port.
            for (n, (_, (_, con))) in vms.iter_mut().enumerate() {
                let (out, rc) = con.run("ping -c 3 -W 2 10.0.3.100", CMD).await.unwrap();
                assert_eq!(rc, 0, "guest {} -> the non-isolated port:\n{out}", n + 1);
            }
            // The isolated guests do not reach each other, either way.
            for (from, to) in [(0, "10.0.3.2"), (1, "10.0.3.1")] {
                let (out, rc) = vms[from]
                    .1
                     .1
                    .run(&format!("ping -c 3 -W 1 {to}"), CMD)
                    .await
                    .unwrap();
                assert_ne!(
                    rc,
                    0,
                    "guest {} reached {to} across isolated ports:\n{out}",
                    from + 1
                );
            }
            for (_, (vm, _)) in vms {
                vm.stop(&host, StopMode::Destroy).await.unwrap();
            }
            for t in &taps {
                assert!(!links().contains(t), "tap {t} left behind");
            }
            before.assert_no_leaks("stopping two isolated VMs");
        });
    });
}
