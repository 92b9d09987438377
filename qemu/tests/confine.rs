//! A confined QEMU (`QemuSpawn::sandbox`) against a real QEMU (TCG, no guest): its identity,
//! capabilities, NoNewPrivs, seccomp, private `/dev`, and hidden directories, read from
//! `/proc/PID/...`.

mod common;

use std::path::Path;

use virtnet_qemu::{DevNode, StopOptions};
use virtnet_testkit::sandbox::{dev_entries, proc_status_field};
use virtnet_testkit::{assert_qemu_confined, require, Need};

const SECCOMP: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

#[tokio::test]
async fn confined_qemu_has_no_privilege_and_sees_little() {
    if !require(&[Need::Root, Need::Qemu]) {
        return;
    }
    let bin = common::qemu_binary().unwrap();
    let mut sb = virtnet_testkit::sandbox().unwrap();
    // A daemon-like layout: state (hidden), a run root (hidden) with this VM's run dir (kept)
    // and another VM's run dir (hidden with the root).
    let base = tempfile::tempdir().unwrap();
    let state = base.path().join("state");
    let run = base.path().join("run");
    let mine = run.join("vms/mine");
    let other = run.join("vms/other");
    for d in [&state, &other] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(state.join("secret.xml"), "x").unwrap();
    std::fs::write(other.join("qmp.sock"), "x").unwrap();
    std::fs::write(run.join("virtnetd.sock"), "x").unwrap();
    virtnet_testkit::sandbox_run_dir(&mine, &sb);
    sb.hide = vec![state.clone(), run.clone()];
    sb.keep = vec![mine.clone()];
    let dir = tempfile::TempDir::new_in(&mine).unwrap();
    virtnet_testkit::sandbox_run_dir(dir.path(), &sb);

    let vm = common::idle_spawn(&bin, &dir, &["-sandbox", SECCOMP])
        .sandbox(sb.clone())
        .spawn()
        .await
        .expect("confined QEMU starts");
    let pid = vm.pid();
    assert_qemu_confined(pid);
    let uid = sb.user.uid.to_string();
    assert_eq!(
        proc_status_field(pid, "Uid"),
        [uid.as_str(); 4].join("\t"),
        "real, effective, saved and fs uid are the sandbox user's"
    );
    assert_eq!(
        proc_status_field(pid, "Groups"),
        "",
        "no supplementary group"
    );
    assert_eq!(
        dev_entries(pid),
        [
            "fd", "full", "null", "ptmx", "pts", "random", "stderr", "stdin", "stdout", "urandom",
            "zero"
        ]
    );
    let root = Path::new("/proc").join(pid.to_string()).join("root");
    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap());
    let listing = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(inside(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(listing(&state), Vec::<String>::new(), "state dir is empty");
    assert_eq!(listing(&run), ["vms"], "only the way to this VM's run dir");
    assert_eq!(listing(&run.join("vms")), ["mine"], "no other VM's run dir");
    assert!(!inside(&other).exists());
    // This VM's run dir is the real one: QEMU's QMP socket is there.
    assert!(inside(&dir.path().join("qmp.sock")).exists());
    assert!(dir.path().join("qmp.sock").exists());
    // The device nodes work: QEMU's /dev/null is the host's.
    let dev_null = std::fs::metadata(inside(Path::new("/dev/null"))).unwrap();
    let host_null = std::fs::metadata("/dev/null").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(dev_null.rdev(), host_null.rdev());
    // Nothing of this leaks into our namespace.
    assert!(std::fs::read_dir(&state).unwrap().count() == 1);
    assert!(other.join("qmp.sock").exists());
    vm.stop(StopOptions::destroy()).await;
}

/// `/dev/kvm` and VFIO nodes appear only when the sandbox lists them; a missing VFIO device
/// fails the spawn before anything runs, with a message naming the device.
#[tokio::test]
async fn dev_nodes_follow_the_sandbox() {
    if !require(&[Need::Root, Need::Qemu]) {
        return;
    }
    let bin = common::qemu_binary().unwrap();
    let mut sb = virtnet_testkit::sandbox().unwrap();
    let dir = tempfile::tempdir().unwrap();
    virtnet_testkit::sandbox_run_dir(dir.path(), &sb);
    // /dev/kvm exists on these machines (it cannot boot a guest, but it can be opened).
    if Path::new("/dev/kvm").exists() {
        sb.dev.push(DevNode::Kvm);
        let vm = common::idle_spawn(&bin, &dir, &[])
            .sandbox(sb.clone())
            .spawn()
            .await
            .expect("confined QEMU starts");
        assert!(dev_entries(vm.pid()).contains(&"kvm".to_string()));
        vm.stop(StopOptions::destroy()).await;
    }

    sb.dev.push(DevNode::VfioGroupOf {
        address: "0000:ff:1f.7".into(),
    });
    let e = common::idle_spawn(&bin, &dir, &[])
        .sandbox(sb)
        .spawn()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("0000:ff:1f.7"), "{e}");
}
