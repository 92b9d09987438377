//! vhost-user NIC hot-plug end to end (real QEMU 7.2, TCG, virtnet-vswitch as the back end, see
//! virtnet_testkit::VSwitch): chardev-add (QEMU listens), netdev_add once the switch connects,
//! device_add with `vectors=0`; the guest's NIC comes up and pings the host through the
//! switch's uplink tap; detach removes the chardev and its socket. And QEMU 7.2's stalls: `netdev_add` of a `mode='server'`
//! NIC would block QEMU until a back end connects, so the attach waits for one first and
//! fails cleanly at its deadline; a back end that accepts QEMU's connection and never answers
//! blocks QEMU inside `netdev_add`: the deadline passes, the undo is queued, and once the back
//! end is gone QEMU fails the `netdev_add` and runs the undo: nothing is left.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::hotplug::{
    assert_nothing_left, boot_live, chardevs, detach_done, exists, iface, run_on_nic, NicTrace,
};
use common::{env, scratch, BOOT, CMD};
use tempfile::TempDir;
use virtnet_testkit::{ip, runtime, vhostuser_nic, with_netns, TestDomain, VSwitch, VsPort};
use virtnet_vm::exec::{self, HotplugOptions};
use virtnet_vm::{plan_attach, plan_detach, AttachStepId, StopMode, VmError};

/// A scratch dir, the path of the vhost-user socket in it, and the test domain `name` with
/// its console there and its memory shared (vhost-user needs it).
fn vhost_user_domain(name: &str) -> (TempDir, PathBuf, TestDomain) {
    let (tmp, serial) = scratch();
    let socket = tmp.path().join("vu.sock");
    let mut dom = TestDomain::new(name, &serial);
    dom.shared_memory = true;
    (tmp, socket, dom)
}

#[test]
fn hotplugged_vhost_user_nic_reaches_the_back_end() {
    let Some(env) = env() else {
        return;
    };
    with_netns(move || {
        let mac = "52:54:00:00:25:02";
        let (tmp, socket, dom) = vhost_user_domain("hotplug-vu");
        let dom = dom.ip(mac, "10.0.25.2/24");
        runtime().block_on(async {
            let (host, vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let qmp = vm.qmp();
            let ap = plan_attach(
                &live.domain,
                &iface(&vhostuser_nic(mac, &socket, "server")),
                &env.caps,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ap.chardev_id.as_deref(), Some("charnet0"));
            // The switch keeps reconnecting until QEMU listens (after chardev-add).
            let sw_dir = virtnet_testkit::traversable_tempdir();
            let port = VsPort::new("g", &socket, "client");
            let sw = VSwitch::start(sw_dir.path(), &[port], Some("vsw0"));
            ip("link set vsw0 up");
            ip("addr add 10.0.25.1/24 dev vsw0");
            let opts = HotplugOptions {
                command_timeout: Duration::from_secs(60),
                unplug_timeout: Duration::from_secs(30),
                ..HotplugOptions::default()
            };
            let t = Instant::now();
            let nic = match exec::attach(&ap, &host, qmp, &opts).await {
                Ok(n) => n,
                Err(e) => panic!("{e}\nswitch port: {}", sw.port("g")),
            };
            eprintln!("vhost-user attach took {:?}", t.elapsed());
            let argv_dev = info_qtree_has_vectors0(qmp).await;
            assert!(
                argv_dev,
                "the hot-plugged virtio-net-pci has vectors=0 under TCG"
            );
            let up = con.wait_nic_up(mac, BOOT).await.unwrap();
            assert!(up.ends_with("10.0.25.2/24"), "{up}");
            // The host answers behind the switch's uplink.
            let ping = "ping -c 3 -W 2 -I {dev} 10.0.25.1";
            let (out, rc) = run_on_nic(&mut con, &up, ping, CMD).await;
            assert_eq!(
                rc,
                0,
                "ping through the switch:\n{out}\nport: {}",
                sw.port("g")
            );
            let macs = sw.mac_table();
            assert!(
                macs.contains(&(mac.to_string(), "g".to_string())),
                "the guest's frames reached the back end: {macs:?}"
            );

            let li = live.add(&nic);
            let dp = plan_detach(&live.domain, &li, &live.held).unwrap();
            detach_done(&dp, &host, qmp, &opts).await;
            let list = chardevs(qmp).await;
            assert!(!list.contains(&"charnet0".to_string()), "{list:?}");
            assert!(
                !exists(&socket),
                "QEMU's listening socket is gone with the chardev"
            );
            assert_nothing_left(qmp, &NicTrace::of_plan(&ap), "after detach").await;
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            sw.stop();
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
fn no_back_end_on_a_server_socket_fails_the_attach_without_stalling_qemu() {
    let Some(env) = env() else {
        return;
    };
    with_netns(move || {
        let (tmp, socket, dom) = vhost_user_domain("hotplug-nobe");
        runtime().block_on(async {
            let (host, vm, _con, live) = boot_live(&env, &dom, tmp.path()).await;
            let qmp = vm.qmp();
            let nic = vhostuser_nic("52:54:00:00:26:02", &socket, "server");
            let ap = plan_attach(&live.domain, &iface(&nic), &env.caps).unwrap();
            let opts = HotplugOptions {
                command_timeout: Duration::from_secs(3),
                backend_timeout: Duration::from_secs(2),
                ..HotplugOptions::default()
            };
            // No back end: without the wait QEMU 7.2 would block inside netdev_add.
            let t = Instant::now();
            let e = exec::attach(&ap, &host, qmp, &opts).await.unwrap_err();
            let took = t.elapsed();
            assert_eq!(
                e.failed_attach_step(),
                Some(AttachStepId::WaitBackEnd),
                "{e}"
            );
            let VmError::AttachFailed { cause, cleanup, .. } = &e else {
                panic!("{e:?}")
            };
            assert!(matches!(**cause, VmError::NoBackEnd { .. }), "{e}");
            assert!(cleanup.is_empty(), "{e}");
            assert!(
                e.to_string().contains(&socket.display().to_string()),
                "the socket is named: {e}"
            );
            assert!(took >= Duration::from_secs(2), "{took:?}");
            assert!(took < Duration::from_secs(4), "the deadline held: {took:?}");
            eprintln!("attach without a back end gave up after {took:?}: {e}");
            // QEMU answers at once, and has nothing of the NIC.
            let t = Instant::now();
            let list = tokio::time::timeout(Duration::from_millis(500), chardevs(qmp))
                .await
                .expect("QMP answers right after");
            eprintln!("query-chardev right after: {:?}", t.elapsed());
            assert!(!list.contains(&"charnet0".to_string()), "{list:?}");
            assert_nothing_left(qmp, &NicTrace::of_plan(&ap), "after no back end").await;
            assert!(!exists(&socket), "QEMU's listening socket is gone");
            vm.stop(&host, StopMode::Destroy).await.unwrap();
        });
    });
}

#[test]
fn a_netdev_add_stalled_by_a_silent_back_end_is_undone_when_qemu_answers() {
    let Some(env) = env() else {
        return;
    };
    with_netns(move || {
        let (tmp, socket, dom) = vhost_user_domain("hotplug-stall");
        // A back end that accepts QEMU's connection (the listen backlog does) and never answers.
        let silent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        runtime().block_on(async {
            let (host, vm, _con, live) = boot_live(&env, &dom, tmp.path()).await;
            let qmp = vm.qmp();
            let nic = vhostuser_nic("52:54:00:00:26:03", &socket, "client");
            // As virtnetd does: the confined QEMU's user is given the socket it connects to.
            let ap = plan_attach(&live.domain, &iface(&nic), &env.caps)
                .unwrap()
                .confine(vm.plan().sandbox.as_ref());
            let opts = HotplugOptions {
                command_timeout: Duration::from_secs(2),
                stalled_undo_timeout: Duration::from_millis(300),
                ..HotplugOptions::default()
            };
            let e = exec::attach(&ap, &host, qmp, &opts).await.unwrap_err();
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
            // Still stalled.
            let r = tokio::time::timeout(Duration::from_millis(500), chardevs(qmp)).await;
            assert!(r.is_err(), "QEMU is blocked inside netdev_add");
            // The back end goes away: QEMU's handshake read fails, it cannot reconnect, so
            // netdev_add fails; the queued undo runs after it.
            drop(silent);
            let t = Instant::now();
            let list = loop {
                if let Ok(list) = tokio::time::timeout(Duration::from_secs(1), chardevs(qmp)).await
                {
                    break list;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "QEMU never answered again"
                );
            };
            eprintln!(
                "QEMU answered {:?} after the back end went away",
                t.elapsed()
            );
            assert!(!list.contains(&"charnet0".to_string()), "{list:?}");
            assert_nothing_left(qmp, &NicTrace::of_plan(&ap), "after the stall").await;
            vm.stop(&host, StopMode::Destroy).await.unwrap();
        });
    });
}
