//! type='bridge' end to end: virtnet creates the tap, attaches it to a bridge, passes the fd
//! to QEMU; the guest pings the bridge's address; two guests on one bridge ping each other.

mod common;

use common::{env, ping_over_one_nic, start, OneNic, BOOT, CMD};
use virtnet_host::LinuxHost;
use virtnet_testkit::{add_bridge, bridge_nic, links, runtime, with_netns, Snapshot, TestDomain};
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
