//! The QMP client against a real QEMU (TCG, no guest, paused with -S).

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use serde_json::{json, Value};
use virtnet_qemu::{qemu_binary_version, QemuError, QemuVersion};

fn signal(pid: u32, sig: Signal) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), sig).unwrap();
}

#[tokio::test]
async fn greeting_capabilities_and_version_agree() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    let from_greeting = qmp.greeting().version;
    assert!(
        from_greeting >= QemuVersion::new(7, 0, 0),
        "{from_greeting}"
    );
    assert_eq!(qmp.query_version().await.unwrap(), from_greeting);
    let bin = common::qemu_binary().unwrap();
    assert_eq!(qemu_binary_version(&bin).await.unwrap(), from_greeting);
    // Capabilities were negotiated: commands work, and we are in command mode.
    let st = qmp.query_status().await.unwrap();
    assert!(!st.running);
    assert_eq!(st.status, "prelaunch");
}

#[tokio::test]
async fn error_replies_carry_class_and_desc() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    let e = qmp
        .execute("no-such-command", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.qmp_class(), Some("CommandNotFound"), "{e}");
    assert!(e.qmp_desc().unwrap().contains("no-such-command"), "{e}");

    let e = qmp.closefd("never-given").await.unwrap_err();
    match &e {
        QemuError::CommandFailed {
            command,
            class,
            desc,
        } => {
            assert_eq!(command, "closefd");
            assert_eq!(class, "GenericError");
            assert!(desc.contains("never-given"), "{desc}");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
    assert!(e.to_string().contains("GenericError: "), "{e}");
    // The connection is still fine afterwards.
    qmp.query_status().await.unwrap();
}

#[tokio::test]
async fn concurrent_commands_get_their_own_replies() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let qmp = vm.qmp().clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                // QEMU's error names the command, so a mixed-up reply is visible.
                0 => {
                    let name = format!("bogus-{i}");
                    let e = qmp.execute(&name, Value::Null).await.unwrap_err();
                    assert!(e.qmp_desc().unwrap().contains(&name), "{i}: {e}");
                }
                1 => {
                    let v = qmp.execute("query-version", Value::Null).await.unwrap();
                    assert!(v["qemu"]["major"].is_u64(), "{i}: {v}");
                }
                _ => {
                    let v = qmp.execute("query-status", Value::Null).await.unwrap();
                    assert_eq!(v["status"], "prelaunch", "{i}: {v}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn getfd_closefd_and_fdsets_with_a_real_pipe() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    // Two pipes: both ends of one pipe show the same `pipe:[inode]` link in /proc.
    let (r, _r_other_end) = rustix::pipe::pipe().unwrap();
    let (_w_other_end, w) = rustix::pipe::pipe().unwrap();
    let (r_link, w_link) = (common::link_of(&r), common::link_of(&w));
    assert_ne!(r_link, w_link);
    let qemu_has = |link: &str| common::proc_fds(vm.pid()).iter().any(|(_, t)| t == link);
    assert!(!qemu_has(&r_link));

    // getfd: the very pipe shows up in QEMU's fd table; closefd removes it.
    qmp.getfd("pipe-r", r.as_fd()).await.unwrap();
    assert!(qemu_has(&r_link), "QEMU did not receive the fd");
    qmp.closefd("pipe-r").await.unwrap();
    assert!(!qemu_has(&r_link), "closefd left the fd open in QEMU");

    // add-fd / query-fdsets / remove-fd.
    let info = qmp
        .add_fd(w.as_fd(), None, Some("virtnet-test"))
        .await
        .unwrap();
    assert!(qemu_has(&w_link) && !qemu_has(&r_link));
    let sets = qmp.query_fdsets().await.unwrap();
    let set = sets
        .iter()
        .find(|s| s.fdset_id == info.fdset_id)
        .expect("fdset listed");
    assert_eq!(set.fds.len(), 1);
    assert_eq!(set.fds[0].fd, info.fd);
    assert_eq!(set.fds[0].opaque.as_deref(), Some("virtnet-test"));

    // A second fd into the same set.
    let info2 = qmp
        .add_fd(r.as_fd(), Some(info.fdset_id), None)
        .await
        .unwrap();
    assert_eq!(info2.fdset_id, info.fdset_id);
    let sets = qmp.query_fdsets().await.unwrap();
    let set = sets.iter().find(|s| s.fdset_id == info.fdset_id).unwrap();
    assert_eq!(set.fds.len(), 2);

    // QEMU 7.2 closes removed fds only while the VM runs (monitor_fdset_cleanup checks
    // runstate_is_running()); in prelaunch they stay listed. So start the CPUs first.
    vm.cont().await.unwrap();
    qmp.remove_fd(info.fdset_id, Some(info.fd)).await.unwrap();
    let sets = qmp.query_fdsets().await.unwrap();
    let set = sets.iter().find(|s| s.fdset_id == info.fdset_id).unwrap();
    assert_eq!(
        set.fds,
        vec![virtnet_qemu::qmp::FdsetFd {
            fd: info2.fd,
            opaque: None
        }]
    );
    assert!(!qemu_has(&w_link) && qemu_has(&r_link));
    qmp.remove_fd(info.fdset_id, None).await.unwrap();
    let sets = qmp.query_fdsets().await.unwrap();
    assert!(sets.iter().all(|s| s.fdset_id != info.fdset_id), "{sets:?}");
    assert!(!qemu_has(&w_link) && !qemu_has(&r_link));
    // Our own copies were never taken from us.
    assert_eq!(common::link_of(&w), w_link);
}

#[tokio::test]
async fn bad_fd_names_give_clean_errors() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let link = common::link_of(&r);
    let e = qmp
        .getfd("1starts-with-digit", r.as_fd())
        .await
        .unwrap_err();
    assert_eq!(e.qmp_class(), Some("GenericError"), "{e}");
    assert!(e.qmp_desc().unwrap().contains("fdname"), "{e}");
    // QEMU closed the fd it refused.
    assert!(!common::proc_fds(vm.pid()).iter().any(|(_, t)| *t == link));
    let e = qmp.remove_fd(4242, None).await.unwrap_err();
    assert_eq!(e.qmp_class(), Some("GenericError"), "{e}");
    qmp.query_status().await.unwrap();
}

/// PCI unplug on i440fx goes through ACPI and needs the guest to eject the device. With no
/// guest, DEVICE_DELETED never comes: the wait must end with a clear timeout.
#[tokio::test]
async fn pci_unplug_without_guest_times_out_clearly() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    qmp.execute("netdev_add", json!({"type": "user", "id": "h1"}))
        .await
        .unwrap();
    qmp.execute(
        "device_add",
        json!({"driver": "virtio-net-pci", "id": "n1", "netdev": "h1"}),
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let e = qmp
        .device_del_and_wait("n1", Duration::from_millis(400))
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, QemuError::DeviceDeleteTimeout { ref device, .. } if device == "n1"),
        "{e:?}"
    );
    assert!(e.to_string().contains("`n1`"), "{e}");
    assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(3));
    // QEMU still has the unplug pending.
    let e = qmp.device_del("n1").await.unwrap_err();
    assert!(
        e.qmp_desc().unwrap().contains("in the process of unplug"),
        "{e}"
    );
}

/// USB devices are unplugged by QEMU itself (no guest involved): `device_del` of a usb-kbd on
/// a UHCI controller finalizes the device at once and QEMU emits DEVICE_DELETED right after
/// the reply. That exercises the real event path, including the window between reply and wait.
#[tokio::test]
async fn usb_unplug_emits_device_deleted() {
    let Some((vm, _dir)) = common::start_idle(&["-device", "piix3-usb-uhci,id=usb"]).await else {
        return;
    };
    let qmp = vm.qmp();
    let mut events = qmp.subscribe();
    let add = || qmp.execute("device_add", json!({"driver": "usb-kbd", "id": "kbd"}));

    add().await.unwrap();
    qmp.device_del_and_wait("kbd", Duration::from_secs(5))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let ev = events.recv().await.unwrap();
            if ev.name == "DEVICE_DELETED" {
                return ev;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ev.data["device"], "kbd");
    assert_eq!(ev.data["path"], "/machine/peripheral/kbd");
    assert!(ev.timestamp.is_some());

    // Same id again, and this time start waiting only after the event has surely arrived
    // (the client records a deletion before broadcasting it): the remembered event must
    // satisfy the late waiter.
    add().await.unwrap();
    qmp.device_del("kbd").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while events.recv().await.unwrap().name != "DEVICE_DELETED" {}
    })
    .await
    .unwrap();
    qmp.wait_for_device_deleted("kbd", Duration::from_millis(100))
        .await
        .unwrap();
    // Claimed once only.
    let e = qmp
        .wait_for_device_deleted("kbd", Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(e, QemuError::DeviceDeleteTimeout { .. }), "{e:?}");
}

/// A stalled QEMU (SIGSTOP) makes a command hit its deadline, with the command named; once
/// QEMU runs again its late reply is dropped and later commands get their own replies.
#[tokio::test]
async fn command_deadline_names_the_command() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    signal(vm.pid(), Signal::STOP);
    let t0 = Instant::now();
    let e = qmp
        .execute_with_timeout(
            "netdev_add",
            json!({"type": "user", "id": "late"}),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(e, QemuError::CommandTimeout { ref command, .. } if command == "netdev_add"),
        "{e:?}"
    );
    assert!(e.to_string().contains("`netdev_add`"), "{e}");
    signal(vm.pid(), Signal::CONT);
    let st = qmp.query_status().await.unwrap();
    assert_eq!(st.status, "prelaunch");
    let e = qmp.execute("bogus-after", Value::Null).await.unwrap_err();
    assert!(e.qmp_desc().unwrap().contains("bogus-after"), "{e}");
}

/// When QEMU dies, callers waiting for a reply or a device removal get "closed" at once,
/// not a hang until their deadline.
#[tokio::test]
async fn qemu_exit_fails_pending_callers_with_closed() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp().clone();
    signal(vm.pid(), Signal::STOP);
    let pending = tokio::spawn({
        let qmp = qmp.clone();
        async move {
            qmp.execute_with_timeout("query-status", Value::Null, Duration::from_secs(30))
                .await
        }
    });
    let waiter = tokio::spawn({
        let qmp = qmp.clone();
        async move {
            qmp.wait_for_device_deleted("nothing", Duration::from_secs(30))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let status = vm.kill().await;
    assert!(!status.success());
    let e = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("pending command must not hang")
        .unwrap()
        .unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert!(e.to_string().contains("query-status"), "{e}");
    let e = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("device waiter must not hang")
        .unwrap()
        .unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // New commands fail at once.
    let e = qmp.query_status().await.unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert!(qmp.is_closed());
}

/// `quit`: QEMU replies, then closes the connection and exits 0.
#[tokio::test]
async fn quit_closes_the_connection() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let qmp = vm.qmp();
    qmp.execute("quit", Value::Null).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), qmp.closed())
        .await
        .expect("connection closes after quit");
    let status = tokio::time::timeout(Duration::from_secs(5), vm.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}
