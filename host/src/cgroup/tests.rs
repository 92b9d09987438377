use super::*;

fn limits() -> CgroupLimits {
    CgroupLimits {
        memory_max: Some(256 << 20),
        memory_soft: Some(128 << 20),
        pids_max: Some(321),
        cpu_shares: Some(512),
        cpu_period_us: Some(100_000),
        cpu_quota_us: Some(50_000),
        ..CgroupLimits::default()
    }
}

/// A group name of its own for each test (they run in parallel).
fn name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{PARENT}/test-{}-{n}", std::process::id())
}

/// Nothing usable and nothing asked: the VM runs without a group, and the reason is kept.
#[test]
fn unavailable_without_limits_is_not_an_error() {
    let spec = CgroupSpec {
        name: name(),
        limits: CgroupLimits {
            pids_max: Some(4096),
            ..CgroupLimits::default()
        },
    };
    let c = create_in(&Layout::default(), &spec).unwrap();
    assert!(c.procs.is_empty());
    assert!(
        c.placement
            .describe()
            .starts_with("none usable: no cgroup v1"),
        "{}",
        c.placement.describe()
    );
}

/// Enforce or refuse: a domain limit without its controller is an error naming the setting.
#[test]
fn asked_limit_without_controller_is_refused() {
    let spec = CgroupSpec {
        name: name(),
        limits: limits(),
    };
    let e = create_in(&Layout::default(), &spec).unwrap_err();
    assert!(e.is_user_error());
    assert!(
        e.to_string()
            .contains("<memtune><hard_limit>, <memtune><soft_limit> cannot be enforced"),
        "{e}"
    );
    // Only pids offered: memory and cpu asked → refused, nothing made.
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout {
        v2: None,
        v1: vec![Hierarchy {
            mount_point: tmp.path().into(),
            controllers: vec![Controller::Pids],
            own_dir: tmp.path().into(),
        }],
    };
    let e = create_in(&layout, &spec).unwrap_err();
    assert!(e.to_string().contains("no memory controller"), "{e}");
    assert!(!tmp.path().join(PARENT).exists());
}

#[test]
fn names_are_plain_relative_paths() {
    for bad in ["", "/abs", "a/../b", "a//b", "."] {
        let spec = CgroupSpec {
            name: bad.into(),
            limits: CgroupLimits::default(),
        };
        assert!(create_in(&Layout::default(), &spec).is_err(), "{bad:?}");
    }
}

/// The stored form (in the daemon's live status) reads back.
#[test]
fn group_stored_form() {
    let g = CgroupGroup {
        version: CgroupVersion::V1,
        dirs: vec![CgroupDir {
            path: "/sys/fs/cgroup/memory/virtnet/u".into(),
            controllers: vec![Controller::Memory],
        }],
    };
    let json = serde_json::to_string(&CgroupPlacement::Placed(g.clone())).unwrap();
    assert_eq!(
        json,
        r#"{"state":"placed","version":"v1","dirs":[{"path":"/sys/fs/cgroup/memory/virtnet/u","controllers":["memory"]}]}"#
    );
    assert_eq!(
        serde_json::from_str::<CgroupPlacement>(&json).unwrap(),
        CgroupPlacement::Placed(g)
    );
}

/// On this host (root, real cgroups): the group is made in each usable hierarchy with the
/// limits written, a child joins it by writing 0 to the opened cgroup.procs, and it is
/// removed after the child exits.
#[test]
fn real_group_limits_join_and_removal() {
    use virtnet_testkit::{require, Need};
    if !require(&[Need::Root]) {
        return;
    }
    let layout = probe().unwrap();
    if matches!(layout.choose(), Choice::None(_)) {
        return; // covered by the unit tests above; these machines have v1
    }
    let spec = CgroupSpec {
        name: name(),
        limits: limits(),
    };
    let c = create_in(&layout, &spec).unwrap();
    let CgroupPlacement::Placed(g) = &c.placement else {
        panic!("{:?}", c.placement)
    };
    let read = |d: &CgroupDir, f: &str| {
        std::fs::read_to_string(d.path.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    for d in &g.dirs {
        for ctl in &d.controllers {
            match (g.version, ctl) {
                (CgroupVersion::V1, Controller::Memory) => {
                    assert_eq!(read(d, "memory.limit_in_bytes"), (256u64 << 20).to_string());
                    assert_eq!(
                        read(d, "memory.soft_limit_in_bytes"),
                        (128u64 << 20).to_string()
                    );
                }
                (CgroupVersion::V1, Controller::Cpu) => {
                    assert_eq!(read(d, "cpu.shares"), "512");
                    assert_eq!(read(d, "cpu.cfs_quota_us"), "50000");
                }
                (CgroupVersion::V2, Controller::Memory) => {
                    assert_eq!(read(d, "memory.max"), (256u64 << 20).to_string())
                }
                (CgroupVersion::V2, Controller::Cpu) => {
                    assert_eq!(read(d, "cpu.weight"), "512");
                    assert_eq!(read(d, "cpu.max"), "50000 100000");
                }
                (_, Controller::Pids) => assert_eq!(read(d, "pids.max"), "321"),
            }
        }
    }
    // A child joins through the fds opened here, as QEMU does.
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fds: Vec<i32> = c.procs.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("0.3");
    // SAFETY: the hook only calls write(2) on fds opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    for d in &g.dirs {
        assert_eq!(
            read(d, "cgroup.procs"),
            child.id().to_string(),
            "{}",
            d.path.display()
        );
    }
    child.wait().unwrap();
    drop(c.procs);
    remove(g).unwrap();
    for d in &g.dirs {
        assert!(!d.path.exists(), "{} left", d.path.display());
    }
    remove(g).unwrap(); // idempotent
}

/// A v2 hierarchy whose controllers cannot be delegated (here: the empty unified mount,
/// made to look as if it offered memory) falls back to the v1 mounts, touching nothing.
#[test]
fn undelegatable_v2_falls_back_to_v1() {
    use virtnet_testkit::{require, Need};
    if !require(&[Need::Root]) {
        return;
    }
    let mut layout = probe().unwrap();
    let (Some(v2), false) = (layout.v2.as_mut(), layout.v1.is_empty()) else {
        return; // not a hybrid host like these machines
    };
    if !v2.controllers.is_empty() {
        return; // a working v2: nothing to fall back from
    }
    v2.controllers = vec![Controller::Memory];
    let v2_dir = v2.own_dir.join(PARENT);
    let spec = CgroupSpec {
        name: name(),
        limits: CgroupLimits {
            memory_swap_max: Some(512 << 20),
            memory_max: Some(256 << 20),
            ..CgroupLimits::default()
        },
    };
    let c = create_in(&layout, &spec).unwrap();
    let CgroupPlacement::Placed(g) = &c.placement else {
        panic!("{:?}", c.placement)
    };
    assert_eq!(g.version, CgroupVersion::V1);
    assert!(!v2_dir.exists(), "nothing made in the v2 hierarchy");
    if let Some(m) = g
        .dirs
        .iter()
        .find(|d| d.controllers == [Controller::Memory])
    {
        if m.path.join("memory.memsw.limit_in_bytes").exists() {
            let v = std::fs::read_to_string(m.path.join("memory.memsw.limit_in_bytes")).unwrap();
            assert_eq!(v.trim(), (512u64 << 20).to_string());
        }
    }
    drop(c.procs);
    remove(g).unwrap();
}
