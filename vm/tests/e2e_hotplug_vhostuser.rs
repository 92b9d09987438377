//! vhost-user NIC hot-plug end to end (real QEMU 7.2, TCG, DPDK testpmd as the back end, see
//! virtnet_testkit::testpmd): chardev-add (QEMU listens), netdev_add once testpmd connects,
//! device_add with `vectors=0`; the guest's NIC comes up and its frames reach testpmd; detach
//! removes the chardev and its socket. And QEMU 7.2's stall: `netdev_add` of a `mode='server'`
//! NIC blocks QEMU's monitor until a back end connects; the deadline passes, the undo is
//! queued, and once a back end shows up QEMU runs it: nothing is left.

mod common;
#[path = "e2e_hotplug_util.rs"]
mod util;

use std::time::{Duration, Instant};

use common::{env, start_with_console, BOOT, CMD};
use util::{assert_nothing_left, chardevs, exists, guest_ifname, iface, Live, NicTrace};
use virtnet_host::LinuxHost;
use virtnet_testkit::{runtime, testpmd, vhostuser_nic, with_netns, TestDomain, TestPmd};
use virtnet_vm::exec::{self, DetachOutcome, HotplugOptions, PendingDetaches};
use virtnet_vm::{plan_attach, plan_detach, AttachStepId, ExecOptions, StopMode, VmError};

/// One testpmd at a time: its forwarder busy-polls one of the machine's two cores.
static ONE_TESTPMD: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn hotplugged_vhost_user_nic_reaches_the_back_end() {
    let Some(env) = env() else { return };
    let Some(pmd_bin) = testpmd::binary() else {
        return;
    };
    with_netns(move || {
        let _one = ONE_TESTPMD.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        let serial = tmp.path().join("serial.sock");
        let socket = tmp.path().join("vu.sock");
        let mac = "52:54:00:00:25:02";
        let mut dom = TestDomain::new("hotplug-vu", &serial);
        dom.shared_memory = true;
        dom.ips.push((mac.into(), "10.0.25.2/24".into()));
        let xml = dom.xml(env.guest);
        let plan = env.plan(&xml, &tmp.path().join("run"));
        runtime().block_on(async {
            let host = LinuxHost::new().unwrap();
            let (vm, mut con) = start_with_console(&plan, &host, &ExecOptions::default(), &serial)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            con.wait_ready(BOOT).await.unwrap();
            let qmp = vm.qmp();
            let mut live = Live::new(&xml, &vm);
            let ap = plan_attach(
                &live.domain,
                &iface(&vhostuser_nic(mac, &socket, "server")),
                &env.caps,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ap.chardev_id.as_deref(), Some("charnet0"));
            // testpmd keeps reconnecting until QEMU listens (after chardev-add).
            let pmd = TestPmd::connect(pmd_bin, &socket);
            let opts = HotplugOptions {
                command_timeout: Duration::from_secs(60),
                unplug_timeout: Duration::from_secs(30),
                ..HotplugOptions::default()
            };
            let t = Instant::now();
            let nic = match exec::attach(&ap, &host, qmp, &opts).await {
                Ok(n) => n,
                Err(e) => panic!("{e}\ntestpmd:\n{}", pmd.stop().join("\n")),
            };
            eprintln!("vhost-user attach took {:?}", t.elapsed());
            let argv_dev = info_qtree_has_vectors0(qmp).await;
            assert!(
                argv_dev,
                "the hot-plugged virtio-net-pci has vectors=0 under TCG"
            );
            let up = con.wait_nic_up(mac, BOOT).await.unwrap();
            assert!(up.ends_with("10.0.25.2/24"), "{up}");
            // Nobody answers: the guest's ARP requests land in testpmd.
            let (_, rc) = con
                .run(
                    &format!("ping -c 2 -W 1 -I {} 10.0.25.1", guest_ifname(&up)),
                    CMD,
                )
                .await
                .unwrap();
            assert_ne!(rc, 0, "nothing can answer behind this back end");

            let li = live.add(&nic);
            let dp = plan_detach(&live.domain, &li, &live.held).unwrap();
            let mut pending = PendingDetaches::default();
            let out = exec::detach(&dp, &host, qmp, &mut pending, &opts)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let DetachOutcome::Done(report) = out else {
                panic!("{out:?}")
            };
            assert!(report.left_behind.is_empty(), "{:?}", report.left_behind);
            let list = chardevs(qmp).await;
            assert!(!list.contains(&"charnet0".to_string()), "{list:?}");
            assert!(
                !exists(&socket),
                "QEMU's listening socket is gone with the chardev"
            );
            assert_nothing_left(qmp, &NicTrace::of_plan(&ap), "after detach").await;
            let log = std::fs::read_to_string(vm.log_path()).unwrap_or_default();
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            let lines = pmd.stop();
            let arps = testpmd::frames_from(&lines, mac, "0x0806");
            assert!(
                arps > 0,
                "no ARP frame from {mac} reached the back end\ntestpmd:\n{}\nQEMU log:\n{log}",
                lines.join("\n")
            );
        });
    });
}

/// Whether QEMU's device tree shows a virtio-net-pci with `vectors = 0`.
async fn info_qtree_has_vectors0(qmp: &virtnet_qemu::QmpClient) -> bool {
    let v = qmp
        .execute(
            "human-monitor-command",
            serde_json::json!({"command-line": "info qtree"}),
        )
        .await
        .unwrap();
    let tree = v.as_str().unwrap_or_default();
    tree.split("dev: virtio-net-pci")
        .skip(1)
        .any(|dev| dev.contains("vectors = 0"))
}

#[test]
fn a_netdev_add_stalled_by_a_missing_back_end_is_undone_when_qemu_answers() {
    let Some(env) = env() else { return };
    let Some(pmd_bin) = testpmd::binary() else {
        return;
    };
    with_netns(move || {
        let _one = ONE_TESTPMD.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        let serial = tmp.path().join("serial.sock");
        let socket = tmp.path().join("vu.sock");
        let mut dom = TestDomain::new("hotplug-stall", &serial);
        dom.shared_memory = true;
        let xml = dom.xml(env.guest);
        let plan = env.plan(&xml, &tmp.path().join("run"));
        runtime().block_on(async {
            let host = LinuxHost::new().unwrap();
            let (vm, mut con) = start_with_console(&plan, &host, &ExecOptions::default(), &serial)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            con.wait_ready(BOOT).await.unwrap();
            let qmp = vm.qmp();
            let live = Live::new(&xml, &vm);
            let nic = vhostuser_nic("52:54:00:00:26:02", &socket, "server");
            let ap = plan_attach(&live.domain, &iface(&nic), &env.caps).unwrap();
            let opts = HotplugOptions {
                command_timeout: Duration::from_secs(3),
                stalled_undo_timeout: Duration::from_millis(500),
                ..HotplugOptions::default()
            };
            // No back end: QEMU 7.2 waits inside netdev_add for one to connect.
            let t = Instant::now();
            let e = exec::attach(&ap, &host, qmp, &opts).await.unwrap_err();
            let took = t.elapsed();
            assert_eq!(e.failed_attach_step(), Some(AttachStepId::NetdevAdd), "{e}");
            let VmError::AttachFailed { cleanup, .. } = &e else {
                panic!("{e:?}")
            };
            assert_eq!(
                cleanup.len(),
                2,
                "netdev_del and chardev-remove queued: {e}"
            );
            assert!(cleanup.iter().all(|c| c.contains("stalled")), "{e}");
            assert!(took < Duration::from_secs(6), "the deadline held: {took:?}");
            eprintln!("stalled attach gave up after {took:?}: {e}");

            // A back end connects: netdev_add finishes, then the queued netdev_del and
            // chardev-remove run.
            let pmd = TestPmd::connect(pmd_bin, &socket);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r = tokio::time::timeout(Duration::from_secs(2), chardevs(qmp)).await;
                if let Ok(list) = r {
                    if !list.contains(&"charnet0".to_string()) {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "the queued undo never ran");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_nothing_left(qmp, &NicTrace::of_plan(&ap), "after the stall").await;
            assert!(!exists(&socket), "QEMU's listening socket is gone");
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            pmd.stop();
        });
    });
}
