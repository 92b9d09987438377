//! The executor's rollback against [`FakeHost`] (no root, no QEMU needed): every host step
//! failing in turn, a host call failing half way through a step, and QEMU failing to start,
//! all leave the host as it was and remove the run dir.

use virtnet_host::{FakeHost, HostNet};
use virtnet_qemu::{QemuCaps, QemuVersion};
use virtnet_vm::exec::{self, ExecOptions, StepId};
use virtnet_vm::{plan_start, PlanContext, StartPlan, VmError};

const NICS: &str = "
    <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>
      <model type='virtio'/>
      <bandwidth><inbound average='122'/><outbound average='1220' burst='64'/></bandwidth>
      <filterref filter='clean-traffic'/>
    </interface>
    <interface type='direct'><mac address='52:54:00:00:00:02'/><source dev='eth0' mode='bridge'/>
      <model type='virtio'/><bandwidth><inbound average='500'/></bandwidth></interface>
    <interface type='ethernet'><mac address='52:54:00:00:00:03'/>
      <target dev='tap-ext' managed='no'/><model type='virtio'/>
      <bandwidth><outbound average='122'/></bandwidth>
      <filterref filter='no-ip-spoofing'><parameter name='IP' value='10.0.0.3'/></filterref>
    </interface>
    <interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:04'/>
      <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source>
    </interface>";

fn plan(run_dir: &std::path::Path, qemu: &str) -> StartPlan {
    let xml = format!(
        "<domain type='qemu'><name>fake</name><memory unit='MiB'>64</memory>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{NICS}</devices></domain>"
    );
    let d = virtnet_conf::load_domain(&xml).expect("domain loads");
    let caps = QemuCaps {
        version: QemuVersion::new(7, 2, 0),
        vhost_net: false,
    };
    plan_start(&d, &PlanContext::new(qemu, caps, run_dir)).expect("plan")
}

fn host() -> FakeHost {
    let h = FakeHost::new();
    h.add_link("br0", "bridge");
    h.add_link("eth0", "physical");
    h.add_link("tap-ext", "tun");
    h
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn assert_clean(h: &FakeHost, run_dir: &std::path::Path, e: &VmError) {
    assert_eq!(h.links(), ["br0", "eth0", "lo", "tap-ext"], "after: {e}");
    assert!(h.prepared_vfs().is_empty(), "VF left prepared after: {e}");
    assert!(h.cgroups().is_empty(), "cgroup left after: {e}");
    assert!(h.shaped().is_empty(), "bandwidth limits left after: {e}");
    assert!(h.nft_tables().is_empty(), "filter table left after: {e}");
    assert!(!run_dir.exists(), "run dir left after: {e}");
    assert!(
        e.to_string()
            .contains("everything it had set up was undone"),
        "{e}"
    );
}

#[test]
fn each_host_step_failing_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("vm");
    let p = plan(&run_dir, "/nonexistent/qemu");
    assert_eq!(p.host_steps.len(), 9);
    let rt = runtime();
    for step in StepId::all(&p) {
        if matches!(step, StepId::QmpConnect | StepId::PostStart(_)) {
            continue; // need a real QEMU: tests/e2e_cleanup.rs
        }
        let h = host();
        let opts = ExecOptions {
            fail_at: Some(step),
            ..ExecOptions::default()
        };
        let e = rt.block_on(exec::start(&p, &h, &opts)).unwrap_err();
        assert_eq!(e.failed_step(), Some(step), "{e}");
        assert!(matches!(
            &e,
            VmError::StartFailed { cause, .. } if matches!(**cause, VmError::Injected(_))
        ));
        assert_clean(&h, &run_dir, &e);
    }
}

/// Every host call failing in turn (including the bridge attach after the tap was created,
/// inside one step), then QEMU not starting: all undone.
#[test]
fn each_host_call_failing_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("vm");
    let p = plan(&run_dir, "/nonexistent/qemu");
    let rt = runtime();
    // Count the calls of a full run (it fails at spawn: no QEMU there).
    let h = host();
    let e = rt
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::Spawn), "{e}");
    assert!(e.to_string().contains("/nonexistent/qemu"), "{e}");
    assert_clean(&h, &run_dir, &e);
    let calls = h.calls();
    let shaped: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            virtnet_host::FakeCall::Shape(s) => {
                Some((s.dev.as_str(), s.macvtap, s.inbound, s.outbound))
            }
            _ => None,
        })
        .collect();
    let kib = |average, burst| virtnet_host::RateLimit {
        average,
        peak: None,
        burst,
    };
    assert_eq!(
        shaped,
        [
            (
                "vnet0",
                false,
                Some(kib(122, None)),
                Some(kib(1220, Some(64)))
            ),
            ("macvtap0", true, Some(kib(500, None)), None),
            ("tap-ext", false, None, Some(kib(122, None)))
        ],
        "{calls:?}"
    );
    let forward = calls
        .iter()
        .position(|c| {
            matches!(
                c,
                virtnet_host::FakeCall::DeleteLink { .. }
                    | virtnet_host::FakeCall::DetachFromBridge { .. }
                    | virtnet_host::FakeCall::RestoreVf(_)
                    | virtnet_host::FakeCall::Unshape { .. }
                    | virtnet_host::FakeCall::DeleteNftTable { .. }
            )
        })
        .expect("rollback calls");
    assert_eq!(
        forward, 10,
        "tap, attach, filter, shape, macvtap, shape, open tap, filter, shape, VF: {calls:?}"
    );
    for n in 0..forward {
        let h = host();
        h.fail_at(n);
        let e = rt
            .block_on(exec::start(&p, &h, &ExecOptions::default()))
            .unwrap_err();
        assert!(matches!(e.failed_step(), Some(StepId::Host(_))), "{e}");
        assert!(e.to_string().contains("injected"), "{e}");
        assert_clean(&h, &run_dir, &e);
    }
}

#[test]
fn existing_run_dir_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), "/nonexistent/qemu");
    let h = host();
    let e = runtime()
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::RunDir));
    assert!(e.to_string().contains("must not exist"), "{e}");
    assert!(
        tmp.path().exists(),
        "a run dir we did not create is not removed"
    );
    assert!(h.calls().is_empty());
    let _ = h.link("lo");
}

/// The sockets and files virtnetd opens for QEMU: a real failure of one (a serial log in a
/// directory that does not exist) undoes the ones before it (the QMP socket and a bound serial
/// socket outside the run dir are removed); an injected failure after them does too.
#[test]
fn passed_fds_failing_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("vm");
    let bound = tmp.path().join("console.sock");
    let xml = format!(
        "<domain type='qemu'><name>fake</name><memory unit='MiB'>64</memory>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{NICS}
         <serial type='unix'><source mode='bind' path='{}'/><target port='0'/></serial>
         <serial type='file'><source path='{}/no/such/dir/out.log'/><target port='1'/></serial>
         </devices></domain>",
        bound.display(),
        tmp.path().display()
    );
    let d = virtnet_conf::load_domain(&xml).expect("domain loads");
    let caps = QemuCaps {
        version: QemuVersion::new(7, 2, 0),
        vhost_net: false,
    };
    let p = plan_start(&d, &PlanContext::new("/nonexistent/qemu", caps, &run_dir)).unwrap();
    assert_eq!(p.pass_fds.len(), 3, "monitor, bound socket, file");
    let rt = runtime();
    let h = host();
    let e = rt
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::PassFd(2)), "{e}");
    assert!(e.to_string().contains("out.log"), "{e}");
    assert_clean(&h, &run_dir, &e);
    assert!(!bound.exists(), "the bound socket was left after: {e}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // With a file that can be opened: injected right after the sockets were bound, and at
    // spawn: both removed again (the file stays, as QEMU's own would).
    let xml = xml.replace("/no/such/dir/out.log", "/out.log");
    let d = virtnet_conf::load_domain(&xml).expect("domain loads");
    let p = plan_start(&d, &PlanContext::new("/nonexistent/qemu", caps, &run_dir)).unwrap();
    for step in [StepId::PassFd(2), StepId::Host(0), StepId::Spawn] {
        let h = host();
        let opts = ExecOptions {
            fail_at: Some(step),
            ..ExecOptions::default()
        };
        let e = rt.block_on(exec::start(&p, &h, &opts)).unwrap_err();
        assert_eq!(e.failed_step(), Some(step), "{e}");
        assert_clean(&h, &run_dir, &e);
        assert!(!bound.exists(), "the bound socket was left after: {e}");
    }
}

/// A confined start (a sandbox in the plan) with two root-owned 0600 images: a failure at
/// every step, and QEMU not starting, give both back (owner, mode, no xattr record); a path
/// in a directory QEMU's user cannot enter refuses the start before the run dir is made.
#[test]
fn confined_start_gives_files_back_at_every_failure() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Root]) {
        return;
    }
    let files = virtnet_testkit::traversable_tempdir();
    let imgs = [files.path().join("a.img"), files.path().join("b.img")];
    for i in &imgs {
        std::fs::write(i, b"x").unwrap();
        std::fs::set_permissions(i, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let owner = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    let disks = |a: &std::path::Path, b: &std::path::Path| {
        format!(
            "<disk type='file' device='disk'><source file='{}'/><target dev='vda' bus='virtio'/></disk>\
             <disk type='file' device='disk'><source file='{}'/><target dev='vdb' bus='virtio'/><readonly/></disk>",
            a.display(),
            b.display()
        )
    };
    let sandbox = virtnet_qemu::Sandbox::new(virtnet_qemu::QemuUser {
        name: "virtnet-qemu-test".into(),
        uid: 64_911,
        gid: 64_912,
        groups: vec![],
    });
    let confined = |run_dir: &std::path::Path, devices: &str| {
        let xml = format!(
            "<domain type='qemu'><name>fake</name><memory unit='MiB'>64</memory>
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{devices}{NICS}</devices></domain>"
        );
        let d = virtnet_conf::load_domain(&xml).expect("domain loads");
        let caps = QemuCaps {
            version: QemuVersion::new(7, 2, 0),
            vhost_net: false,
        };
        let mut ctx = PlanContext::new("/nonexistent/qemu", caps, run_dir);
        ctx.sandbox = Some(sandbox.clone());
        plan_start(&d, &ctx).expect("plan")
    };
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("vm");
    let p = confined(&run_dir, &disks(&imgs[0], &imgs[1]));
    assert_eq!(p.access.len(), 2, "{:?}", p.access);
    // The images do need a grant (so the rollbacks below have something to give back).
    let u = p.access[0].apply().unwrap();
    assert_eq!(u.len(), 1, "a 0600 root image needs a grant");
    assert_eq!(owner(&imgs[0]), (64_911, 64_912, 0o600));
    u[0].apply(&host()).unwrap();
    assert_eq!(owner(&imgs[0]), (0, 0, 0o600));
    let rt = runtime();
    for step in StepId::all(&p) {
        if matches!(step, StepId::QmpConnect | StepId::PostStart(_)) {
            continue;
        }
        let h = host();
        let opts = ExecOptions {
            fail_at: Some(step),
            ..ExecOptions::default()
        };
        let e = rt.block_on(exec::start(&p, &h, &opts)).unwrap_err();
        assert_eq!(e.failed_step(), Some(step), "{e}");
        assert_clean(&h, &run_dir, &e);
        for i in &imgs {
            assert_eq!(
                owner(i),
                (0, 0, 0o600),
                "{} after a failure at {step}",
                i.display()
            );
        }
    }
    // QEMU cannot start (not there): the grants made before are given back.
    let e = rt
        .block_on(exec::start(&p, &host(), &ExecOptions::default()))
        .unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::Spawn), "{e}");
    for i in &imgs {
        assert_eq!(owner(i), (0, 0, 0o600));
    }

    // A directory QEMU's user cannot enter: refused first, nothing made.
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let hidden = closed.path().join("c.img");
    std::fs::write(&hidden, b"x").unwrap();
    let p = confined(&run_dir, &disks(&imgs[0], &hidden));
    let h = host();
    let e = rt
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::Access(1)), "{e}");
    assert!(e.is_user_error(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chmod o+x {}", closed.path().display())),
        "{e}"
    );
    assert!(h.calls().is_empty(), "no host call: {:?}", h.calls());
    assert!(!run_dir.exists());
    assert_eq!(
        owner(&imgs[0]),
        (0, 0, 0o600),
        "the first path was not granted"
    );
}
