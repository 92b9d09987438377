//! Live NIC hot-plug end to end (real QEMU 7.2 under TCG, the test guest, each test in its own
//! network namespace): a hot-plugged bridge NIC comes up in the guest and pings over it, and
//! leaves nothing when unplugged; a failure at every attach step (injected, and real ones:
//! duplicate netdev id, PCI slot in use, missing bridge, tap name in use, unreachable
//! vhost-user socket) leaves nothing in QEMU, on the host or in our process; a detach the
//! guest does not acknowledge stays pending and completes later.

mod common;

use std::time::{Duration, Instant};

use common::hotplug::{
    assert_nothing_left, baseline, boot_live, detach_done, fd_count, guest_ifname, iface,
    leaks_since, run_on_nic, settle_fd_count, NicTrace,
};
use common::{env, scratch, BOOT, CMD};
use serde_json::json;
use virtnet_testkit::{
    add_bridge, add_veth_pair, bridge_nic, ip, link_details, links, runtime, vhostuser_nic,
    with_netns, with_netns_exclusive, Snapshot, TestDomain,
};
use virtnet_vm::exec::{self, DetachOutcome, HotplugOptions, PendingDetaches};
use virtnet_vm::{plan_attach, plan_detach, AttachStepId, StopMode, VmError};

fn opts() -> HotplugOptions {
    HotplugOptions {
        unplug_timeout: Duration::from_secs(20),
        ..HotplugOptions::default()
    }
}

#[test]
fn hotplugged_bridge_nic_comes_up_pings_and_goes_away() {
    let Some(env) = env() else { return };
    with_netns(move || {
        add_bridge("br0", Some("10.0.20.1/24"));
        add_bridge("br1", Some("10.0.21.1/24"));
        let (tmp, serial) = scratch();
        let (mac0, mac1) = ("52:54:00:00:20:02", "52:54:00:00:21:02");
        let dom = TestDomain::new("hotplug1", &serial)
            .nic(&bridge_nic(mac0, "br0"), mac0, Some("10.0.20.2/24"))
            // The guest gives the hot-plugged NIC its address by MAC.
            .ip(mac1, "10.0.21.2/24");
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let (host, mut vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let qemu_fds = fd_count(vm.pid());

            let ap = plan_attach(&live.domain, &iface(&bridge_nic(mac1, "br1")), &env.caps)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ap.device_id, "net1");
            let t = Instant::now();
            let nic = exec::attach(&ap, &host, vm.qmp(), &opts())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            eprintln!("attach took {:?}", t.elapsed());
            let tap = nic.host.nics[0].name.clone();
            let details = link_details(&tap).expect("the tap exists");
            assert!(details.contains("master br1"), "{details}");
            let up = con.wait_nic_up(mac1, BOOT).await.unwrap();
            assert!(up.ends_with("10.0.21.2/24"), "{up}");
            let dev = guest_ifname(&up);
            let (out, rc) = con
                .run(&format!("ping -c 3 -W 2 -I {dev} 10.0.21.1"), CMD)
                .await
                .unwrap();
            assert_eq!(rc, 0, "guest ping over {dev} failed:\n{out}");
            assert!(out.contains("bytes from 10.0.21.1"), "{out}");

            let live_iface = live.add(&nic);
            let at_start = vm.resources().clone();
            vm.add_resources(&nic.host);
            assert_eq!(vm.resources(), &live.held);
            let dp = plan_detach(&live.domain, &live_iface, &live.held).unwrap();
            assert_eq!(dp.host, nic.host);
            let report = detach_done(&dp, &host, vm.qmp(), &opts()).await;
            live.remove(&report.device_id, &report.released);
            vm.remove_resources(&report.released);
            assert_eq!(vm.resources(), &at_start);
            assert_eq!(&live.held, vm.resources());
            let down = format!("virtnet-guest: nic down {dev} {mac1}");
            con.wait_line(|l| l == down, CMD).await.unwrap();
            assert!(!links().contains(&tap), "tap {tap} left behind");
            assert_nothing_left(vm.qmp(), &NicTrace::of_plan(&ap), "after detach").await;
            let n = settle_fd_count(vm.pid(), qemu_fds, Duration::from_secs(5)).await;
            assert_eq!(n, qemu_fds, "QEMU's open fds after attach + detach");

            // The boot NIC still works.
            let (out, rc) = con.run("ping -c 2 -W 2 10.0.20.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "{out}");
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            before.assert_no_leaks("hot-plug, unplug, stop");
        });
    });
}

#[test]
fn every_attach_failure_leaves_nothing_behind() {
    let Some(env) = env() else { return };
    with_netns_exclusive(move || {
        add_bridge("br0", None);
        // A device that holds a name a tap asks for.
        ip("link add tapbusy type bridge");
        let (tmp, serial) = scratch();
        let mut dom = TestDomain::new("hotplug2", &serial);
        dom.shared_memory = true; // for the vhost-user NICs
        runtime().block_on(async {
            let (host, vm, _con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let qmp = vm.qmp();
            let pid = vm.pid();
            let (before, qemu_fds) = baseline(tmp.path(), pid);
            // 1. Injected at each step of a bridge NIC whose link is down (every step kind
            //    but chardev-add, done below with a vhost-user NIC).
            let down = "<interface type='bridge'><mac address='52:54:00:00:22:01'/>\
                <source bridge='br0'/><model type='virtio'/><link state='down'/></interface>";
            let ap = plan_attach(&live.domain, &iface(down), &env.caps).unwrap();
            let vu = vhostuser_nic("52:54:00:00:22:02", &tmp.path().join("vu.sock"), "server");
            // QEMU listens on this socket: undoing chardev-add must remove it again.
            let vu_plan = plan_attach(&live.domain, &iface(&vu), &env.caps).unwrap();
            let injected = ap.step_ids().into_iter().map(|s| (ap.clone(), s)).chain([
                (vu_plan.clone(), AttachStepId::ChardevAdd),
                (vu_plan.clone(), AttachStepId::WaitBackEnd),
            ]);
            for (p, step) in injected {
                let o = HotplugOptions {
                    fail_at: Some(step),
                    ..opts()
                };
                let e = exec::attach(&p, &host, qmp, &o).await.unwrap_err();
                assert_eq!(e.failed_attach_step(), Some(step), "{e}");
                assert!(
                    e.to_string()
                        .contains("everything it had set up was undone"),
                    "{e}"
                );
                let what = format!("{} injected at {step}", p.type_);
                check(qmp, pid, qemu_fds, &before, &what, &NicTrace::of_plan(&p)).await;
            }

            // 2. Real failures. A NIC attached for real first: net1 on slot N.
            let ok = "<interface type='bridge'><mac address='52:54:00:00:22:03'/>\
                <source bridge='br0'/><model type='virtio'/></interface>";
            let first = plan_attach(&live.domain, &iface(ok), &env.caps).unwrap();
            let stale = live.domain.clone();
            let nic = exec::attach(&first, &host, qmp, &opts()).await.unwrap();
            live.add(&nic);
            let with_first = Snapshot::take(&[tmp.path()]);
            let qemu_fds_first = fd_count(pid);
            let other = "<interface type='bridge'><mac address='52:54:00:00:22:04'/>\
                <source bridge='br0'/><model type='virtio'/></interface>";

            // netdev_add fails: planned on a stale live definition, it reuses hostnet's id.
            let dup = plan_attach(&stale, &iface(other), &env.caps).unwrap();
            assert_eq!(dup.netdev_id, first.netdev_id);
            let e = exec::attach(&dup, &host, qmp, &opts()).await.unwrap_err();
            assert_eq!(e.failed_attach_step(), Some(AttachStepId::NetdevAdd), "{e}");
            assert!(e.to_string().contains("Duplicate ID"), "{e}");
            // device_add fails: the PCI slot is the first NIC's.
            let mut busy = plan_attach(&live.domain, &iface(other), &env.caps).unwrap();
            let slot = first
                .step(AttachStepId::DeviceAdd)
                .map(|s| match &s.action {
                    virtnet_vm::plan::AttachAction::Qmp { command, .. } => {
                        command.arguments["addr"].clone()
                    }
                    _ => unreachable!(),
                })
                .unwrap();
            busy.qmp_mut(AttachStepId::DeviceAdd).unwrap().arguments["addr"] = slot;
            let e = exec::attach(&busy, &host, qmp, &opts()).await.unwrap_err();
            assert_eq!(e.failed_attach_step(), Some(AttachStepId::DeviceAdd), "{e}");
            assert!(e.to_string().contains("not available"), "{e}");
            // A bridge that does not exist.
            let nobr = "<interface type='bridge'><mac address='52:54:00:00:22:05'/>\
                <source bridge='nobr0'/><model type='virtio'/></interface>";
            let p = plan_attach(&live.domain, &iface(nobr), &env.caps).unwrap();
            let e = exec::attach(&p, &host, qmp, &opts()).await.unwrap_err();
            assert_eq!(e.failed_attach_step(), Some(AttachStepId::Host(0)), "{e}");
            assert!(e.to_string().contains("nobr0"), "{e}");
            // A tap name in use.
            let named = "<interface type='bridge'><mac address='52:54:00:00:22:06'/>\
                <source bridge='br0'/><target dev='tapbusy'/><model type='virtio'/></interface>";
            let p2 = plan_attach(&live.domain, &iface(named), &env.caps).unwrap();
            let e = exec::attach(&p2, &host, qmp, &opts()).await.unwrap_err();
            assert_eq!(e.failed_attach_step(), Some(AttachStepId::Host(0)), "{e}");
            assert!(e.to_string().contains("tapbusy"), "{e}");
            // A vhost-user socket nobody listens on (QEMU is the client): chardev-add fails.
            let nobody_sock = tmp.path().join("nobody.sock");
            let nobody = vhostuser_nic("52:54:00:00:22:07", &nobody_sock, "client");
            let p3 = plan_attach(&live.domain, &iface(&nobody), &env.caps).unwrap();
            let e = exec::attach(&p3, &host, qmp, &opts()).await.unwrap_err();
            assert_eq!(
                e.failed_attach_step(),
                Some(AttachStepId::ChardevAdd),
                "{e}"
            );
            for (what, p) in [
                ("duplicate netdev id", &dup),
                ("PCI slot in use", &busy),
                ("missing bridge", &p),
                ("tap name in use", &p2),
                ("vhost-user socket nobody listens on", &p3),
            ] {
                // The first NIC's ids are its own: only check what the failed one added.
                let mut t = NicTrace::of_plan(p);
                if t.netdev == first.netdev_id {
                    t.netdev = None;
                    t.device = "none".into();
                }
                assert_nothing_left(qmp, &t, what).await;
            }
            assert_eq!(
                settle_fd_count(pid, qemu_fds_first, Duration::from_secs(5)).await,
                qemu_fds_first,
                "QEMU's fds after the real failures"
            );
            let leaks = leaks_since(&with_first);
            assert!(leaks.is_empty(), "real failures left behind:\n{leaks}");
            assert!(
                links().contains(&nic.host.nics[0].name),
                "the first NIC is intact"
            );

            // The first NIC still detaches cleanly.
            let li = nic.interface().unwrap();
            let dp = plan_detach(&live.domain, &li, &live.held).unwrap();
            let mut pending = PendingDetaches::default();
            let out = exec::detach(&dp, &host, qmp, &mut pending, &opts())
                .await
                .unwrap();
            assert!(matches!(out, DetachOutcome::Done(_)), "{out:?}");
            let t = NicTrace::of_plan(&first);
            check(qmp, pid, qemu_fds, &before, "after the last detach", &t).await;
            vm.stop(&host, StopMode::Destroy).await.unwrap();
        });
    });
}

/// Panics unless QEMU has nothing of `t`, its fd count is `qemu_fds` again and nothing was
/// added since `before` (links, our fds, children, files).
async fn check(
    qmp: &virtnet_qemu::QmpClient,
    pid: u32,
    qemu_fds: usize,
    before: &Snapshot,
    what: &str,
    t: &NicTrace,
) {
    assert_nothing_left(qmp, t, what).await;
    let n = settle_fd_count(pid, qemu_fds, Duration::from_secs(5)).await;
    assert_eq!(n, qemu_fds, "{what}: QEMU's open fds");
    let leaks = leaks_since(before);
    assert!(leaks.is_empty(), "{what}: left behind:\n{leaks}");
}

#[test]
fn detach_from_a_paused_guest_stays_pending_then_completes() {
    let Some(env) = env() else { return };
    with_netns(move || {
        add_bridge("br0", None);
        let (tmp, serial) = scratch();
        let mac = "52:54:00:00:23:01";
        let dom = TestDomain::new("hotplug3", &serial).ip(mac, "10.0.23.2/24");
        runtime().block_on(async {
            let (host, vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let qmp = vm.qmp();
            let ap = plan_attach(&live.domain, &iface(&bridge_nic(mac, "br0")), &env.caps).unwrap();
            let nic = exec::attach(&ap, &host, qmp, &opts()).await.unwrap();
            let up = con.wait_nic_up(mac, BOOT).await.unwrap();
            let li = live.add(&nic);
            let tap = nic.host.nics[0].name.clone();

            // A paused guest cannot acknowledge the unplug.
            qmp.execute("stop", json!({})).await.unwrap();
            let dp = plan_detach(&live.domain, &li, &live.held).unwrap();
            let mut pending = PendingDetaches::default();
            let short = HotplugOptions {
                unplug_timeout: Duration::from_secs(2),
                ..opts()
            };
            let out = exec::detach(&dp, &host, qmp, &mut pending, &short)
                .await
                .unwrap();
            assert!(matches!(out, DetachOutcome::Pending(_)), "{out:?}");
            assert!(links().contains(&tap), "nothing is released while pending");
            let e = exec::detach(&dp, &host, qmp, &mut pending, &short)
                .await
                .unwrap_err();
            assert!(matches!(e, VmError::DetachPending { .. }), "{e}");
            eprintln!("second detach: {e}");
            // Still paused: completing finds it still there and stays pending.
            let out = exec::complete_detach(&dp.device_id, &host, qmp, &mut pending, &short)
                .await
                .unwrap();
            assert!(matches!(out, DetachOutcome::Pending(_)), "{out:?}");

            // The guest runs again and releases it; DEVICE_DELETED arrives with nobody
            // waiting, and completing finds the device gone.
            qmp.execute("cont", json!({})).await.unwrap();
            let dev = guest_ifname(&up);
            let down = format!("virtnet-guest: nic down {dev} {mac}");
            con.wait_line(|l| l == down, CMD).await.unwrap();
            let out = exec::complete_detach(&dp.device_id, &host, qmp, &mut pending, &opts())
                .await
                .unwrap();
            let DetachOutcome::Done(report) = out else {
                panic!("{out:?}")
            };
            assert!(report.left_behind.is_empty(), "{:?}", report.left_behind);
            assert!(pending.is_empty());
            assert!(!links().contains(&tap), "tap {tap} left behind");
            assert_nothing_left(qmp, &NicTrace::of_plan(&ap), "after completion").await;
            vm.stop(&host, StopMode::Destroy).await.unwrap();
        });
    });
}

#[test]
fn direct_and_link_down_user_nics_hotplug_and_are_released_at_stop() {
    let Some(env) = env() else { return };
    with_netns(move || {
        // The macvtap sits on veth0; its frames leave through veth0 and arrive at veth1.
        add_veth_pair("veth0", "veth1", Some("10.0.27.1/24"));
        let (tmp, serial) = scratch();
        let (mac1, mac2) = ("52:54:00:00:27:02", "52:54:00:00:27:03");
        let dom = TestDomain::new("hotplug4", &serial).ip(mac1, "10.0.27.2/24");
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let (host, mut vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let direct = format!(
                "<interface type='direct'><mac address='{mac1}'/>\
                 <source dev='veth0' mode='bridge'/><model type='virtio'/></interface>"
            );
            let ap = plan_attach(&live.domain, &iface(&direct), &env.caps).unwrap();
            let nic = exec::attach(&ap, &host, vm.qmp(), &opts())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            live.add(&nic);
            vm.add_resources(&nic.host);
            let mv = nic.host.nics[0].name.clone();
            assert_eq!(nic.host.nics[0].kind, virtnet_vm::NicResourceKind::Macvtap);
            let up = con.wait_nic_up(mac1, BOOT).await.unwrap();
            let ping = "ping -c 3 -W 2 -I {dev} 10.0.27.1";
            let (out, rc) = run_on_nic(&mut con, &up, ping, CMD).await;
            assert_eq!(rc, 0, "guest ping through the hot-plugged macvtap:\n{out}");

            // A SLIRP NIC whose link is configured down: set_link after device_add.
            let user = format!(
                "<interface type='user'><mac address='{mac2}'/><model type='virtio'/>\
                 <link state='down'/></interface>"
            );
            let ap2 = plan_attach(&live.domain, &iface(&user), &env.caps).unwrap();
            assert_eq!(ap2.step_ids().last(), Some(&AttachStepId::SetLink));
            exec::attach(&ap2, &host, vm.qmp(), &opts())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let up2 = con.wait_nic_up(mac2, BOOT).await.unwrap();
            let carrier = "cat /sys/class/net/{dev}/carrier";
            let (out, rc) = run_on_nic(&mut con, &up2, carrier, CMD).await;
            assert_eq!((out.trim(), rc), ("0", 0), "the guest sees no carrier");

            // Stopping the VM releases the hot-plugged macvtap (it outlives QEMU otherwise).
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            assert!(!links().contains(&mv), "macvtap {mv} left behind");
            before.assert_no_leaks("stopping a VM with hot-plugged NICs");
        });
    });
}
