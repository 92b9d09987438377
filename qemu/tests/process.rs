//! QEMU process lifecycle against a real QEMU (TCG, no guest).

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use rustix::pipe::PipeFlags;
use rustix::process::{kill_process, Pid, Signal};
use virtnet_qemu::{QemuError, QemuSpawn, StopMethod, StopOptions};

fn signal(pid: u32, sig: Signal) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), sig).unwrap();
}

/// Waits (briefly polling /proc) until `pid` is gone, i.e. exited and reaped.
async fn gone_within(pid: u32, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if !common::pid_exists(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// QEMU gets exactly the fds we map, at the numbers we ask for, even when a source fd number
/// is another mapping's target (here the two are swapped); an fd of ours that lacks
/// CLOEXEC does not leak.
#[tokio::test]
async fn inherits_exactly_the_mapped_fds() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, _a_w) = rustix::pipe::pipe().unwrap();
    let (_b_r, b) = rustix::pipe::pipe().unwrap();
    // Deliberately inheritable (no O_CLOEXEC), and not mapped: must not reach QEMU.
    let (leaky, _leaky_w) = rustix::pipe::pipe_with(PipeFlags::empty()).unwrap();
    let (a_link, b_link, leaky_link) = (
        common::link_of(&a),
        common::link_of(&b),
        common::link_of(&leaky),
    );
    let (a_num, b_num) = (a.as_raw_fd(), b.as_raw_fd());
    let vm = common::idle_spawn(&bin, &dir, &[])
        .inherit_fd(a, b_num)
        .inherit_fd(b, a_num)
        .spawn()
        .await
        .unwrap();
    let fds = common::proc_fds(vm.pid());
    let at = |n: i32| fds.iter().find(|(f, _)| *f == n).map(|(_, t)| t.as_str());
    assert_eq!(at(b_num), Some(a_link.as_str()), "{fds:?}");
    assert_eq!(at(a_num), Some(b_link.as_str()), "{fds:?}");
    assert!(
        !fds.iter().any(|(_, t)| *t == leaky_link),
        "leaked: {fds:?}"
    );
    assert_eq!(at(0), Some("/dev/null"));
    let log = dir.path().join("qemu.log");
    assert_eq!(at(1), Some(log.to_str().unwrap()));
    assert_eq!(at(2), Some(log.to_str().unwrap()));
    // The mapped fds are inheritable in QEMU (no O_CLOEXEC = 02000000 in fdinfo flags).
    let info = std::fs::read_to_string(format!("/proc/{}/fdinfo/{b_num}", vm.pid())).unwrap();
    let flags = info.lines().find(|l| l.starts_with("flags:")).unwrap();
    let flags = u32::from_str_radix(flags.split_whitespace().nth(1).unwrap(), 8).unwrap();
    assert_eq!(flags & 0o2000000, 0, "{info}");
    vm.stop(StopOptions::destroy()).await;
}

#[tokio::test]
async fn cont_reports_running() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    assert!(!vm.status().await.unwrap().running);
    let st = vm.cont().await.unwrap();
    assert!(st.running);
    assert_eq!(st.status, "running");
    let out = vm.stop(StopOptions::destroy()).await;
    assert_eq!(out.method, StopMethod::Sigterm);
}

/// Without a guest nobody answers the ACPI power button, so stop falls back to SIGTERM,
/// and QEMU is reaped and its socket removed.
#[tokio::test]
async fn stop_falls_back_to_sigterm_and_reaps() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let pid = vm.pid();
    let t0 = Instant::now();
    let out = vm
        .stop(StopOptions {
            powerdown: Some(Duration::from_millis(500)),
            term_timeout: Duration::from_secs(5),
        })
        .await;
    assert_eq!(out.method, StopMethod::Sigterm);
    assert!(t0.elapsed() >= Duration::from_millis(500));
    assert!(t0.elapsed() < Duration::from_secs(4));
    assert!(!common::pid_exists(pid), "not reaped");
    assert_eq!(vm.exit_status(), Some(out.status));
    assert!(!vm.qmp_socket().exists());
    let log = std::fs::read_to_string(vm.log_path()).unwrap();
    assert!(log.contains("terminating on signal 15"), "{log}");
    // Stopping again is harmless.
    assert_eq!(
        vm.stop(StopOptions::destroy()).await.method,
        StopMethod::AlreadyExited
    );
}

/// A QEMU that cannot act on SIGTERM (here: stopped with SIGSTOP, so the signal stays
/// pending) is killed with SIGKILL and reaped.
#[tokio::test]
async fn stop_escalates_to_sigkill() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let pid = vm.pid();
    signal(pid, Signal::STOP);
    let t0 = Instant::now();
    let out = vm
        .stop(StopOptions {
            powerdown: Some(Duration::from_millis(300)),
            term_timeout: Duration::from_millis(300),
        })
        .await;
    assert_eq!(out.method, StopMethod::Sigkill);
    assert_eq!(out.status.signal(), Some(9));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(!common::pid_exists(pid), "not reaped");
}

/// QEMU rejecting its command line: the error carries QEMU's own message from the log,
/// and nothing stays behind.
#[tokio::test]
async fn early_exit_shows_qemus_message() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let e = common::idle_spawn(&bin, &dir, &["-bogus-option"])
        .spawn()
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    let msg = e.to_string();
    assert!(matches!(e, QemuError::EarlyExit { .. }), "{e:?}");
    assert!(
        msg.contains("-bogus-option: invalid option"),
        "QEMU's message missing: {msg}"
    );
    assert!(msg.contains("exit status: 1"), "{msg}");
    assert!(!msg.contains("=== virtnet: starting"), "{msg}");
    assert!(!dir.path().join("qmp.sock").exists());
}

/// A QEMU that holds the QMP socket but never greets on it (here: it inherits the listening
/// fd but no monitor uses it) is killed at the start deadline, not before.
#[tokio::test]
async fn start_timeout_kills_qemu() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("qmp.sock");
    let unused = virtnet_qemu::listen_unix(&sock).unwrap();
    let args: Vec<&str> = ["-S", "-nodefaults", "-machine", "pc", "-accel", "tcg"].to_vec();
    let t0 = Instant::now();
    let e = QemuSpawn::new(&bin, args, &sock, dir.path().join("qemu.log"))
        .inherit_fd(unused, 100)
        .start_timeout(Duration::from_millis(800))
        .spawn()
        .await
        .unwrap_err();
    assert!(t0.elapsed() >= Duration::from_millis(800));
    let QemuError::StartTimeout { pid, .. } = e else {
        panic!("expected StartTimeout, got {e:?}");
    };
    assert!(!common::pid_exists(pid), "QEMU left running or unreaped");
    assert!(e.to_string().contains("it was killed"), "{e}");
    assert!(!sock.exists());
}

/// Nothing listens on the QMP socket: one connect, refused at once (no retry loop); QEMU is
/// killed and reaped.
#[tokio::test]
async fn no_listening_socket_fails_at_once() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = ["-S", "-nodefaults", "-machine", "pc", "-accel", "tcg"].to_vec();
    let t0 = Instant::now();
    let e = QemuSpawn::new(
        &bin,
        args,
        dir.path().join("qmp.sock"),
        dir.path().join("qemu.log"),
    )
    .start_timeout(Duration::from_secs(10))
    .spawn()
    .await
    .unwrap_err();
    assert!(matches!(e, QemuError::QmpConnect { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

/// The monitor arrives as an fd: QEMU holds the listening socket at the number given, and QMP
/// comes up through the single connect `spawn` makes.
#[tokio::test]
async fn monitor_by_fd_connects_once() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vm = common::idle_spawn(&bin, &dir, &[]).spawn().await.unwrap();
    let fds = common::proc_fds(vm.pid());
    let monitor = fds.iter().find(|(n, _)| *n == common::MONITOR_FD);
    assert!(
        monitor.is_some_and(|(_, t)| t.starts_with("socket:")),
        "{fds:?}"
    );
    assert!(!vm.status().await.unwrap().running);
    vm.stop(StopOptions::destroy()).await;
}

#[tokio::test]
async fn unexpected_exit_is_noticed() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let mut watch = vm.exit_watch();
    assert!(watch.borrow().is_none());
    signal(vm.pid(), Signal::KILL);
    let status = tokio::time::timeout(Duration::from_secs(5), vm.wait())
        .await
        .expect("exit noticed");
    assert_eq!(status.signal(), Some(9));
    watch.changed().await.unwrap();
    assert_eq!(*watch.borrow(), Some(status));
    tokio::time::timeout(Duration::from_secs(2), vm.qmp().closed())
        .await
        .unwrap();
    assert!(!common::pid_exists(vm.pid()));
}

#[tokio::test]
async fn dropping_the_handle_kills_and_reaps() {
    let Some((vm, _dir)) = common::start_idle(&[]).await else {
        return;
    };
    let pid = vm.pid();
    drop(vm);
    assert!(gone_within(pid, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn bad_spawn_requests_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let devnull = || std::fs::File::open("/dev/null").unwrap().into();
    let e = QemuSpawn::new(
        "/bin/true",
        Vec::<String>::new(),
        dir.path().join("s"),
        dir.path().join("l"),
    )
    .inherit_fd(devnull(), 1)
    .spawn()
    .await
    .unwrap_err();
    assert!(matches!(e, QemuError::FdMapping(_)), "{e:?}");
    let e = QemuSpawn::new(
        "/nonexistent/qemu",
        Vec::<String>::new(),
        dir.path().join("s"),
        dir.path().join("l"),
    )
    .spawn()
    .await
    .unwrap_err();
    assert!(matches!(e, QemuError::Exec { .. }), "{e:?}");
    let e = virtnet_qemu::qemu_binary_version("/nonexistent/qemu")
        .await
        .unwrap_err();
    assert!(matches!(e, QemuError::Exec { .. }), "{e:?}");
}

/// `join_cgroups`: the child writes "0" into each fd between fork and exec (a pipe stands in
/// for `cgroup.procs`), and the fd itself does not reach QEMU. A write that fails (the fd
/// opened read-only) fails the spawn with nothing left running.
#[tokio::test]
async fn joins_cgroups_before_exec() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (r1, w1) = rustix::pipe::pipe().unwrap();
    let (r2, w2) = rustix::pipe::pipe().unwrap();
    let (l1, l2) = (common::link_of(&w1), common::link_of(&w2));
    let vm = common::idle_spawn(&bin, &dir, &[])
        .join_cgroups(vec![w1, w2])
        .spawn()
        .await
        .unwrap();
    for r in [r1, r2] {
        let mut buf = [0u8; 8];
        let n = rustix::io::read(&r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"0");
    }
    let fds = common::proc_fds(vm.pid());
    assert!(
        !fds.iter().any(|(_, t)| *t == l1 || *t == l2),
        "a cgroup.procs fd reached QEMU: {fds:?}"
    );
    vm.kill().await;

    let read_only = std::fs::File::open("/dev/null").unwrap();
    let e = common::idle_spawn(&bin, &dir, &[])
        .join_cgroups(vec![read_only.into()])
        .spawn()
        .await
        .unwrap_err();
    assert!(matches!(e, QemuError::Exec { .. }), "{e}");
}

/// Why vhost-user sockets stay paths: QEMU 7.2's `netdev vhost-user` refuses a chardev made
/// from a passed fd (only a `path=` unix socket has the FD_PASS feature it needs). If a newer
/// QEMU accepts it, this test fails: then virtnetd can pass those sockets too.
#[tokio::test]
async fn vhost_user_refuses_a_listening_fd() {
    let Some(bin) = common::qemu_binary() else {
        return;
    };
    let version = virtnet_qemu::qemu_binary_version(&bin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vu = virtnet_qemu::listen_unix(&dir.path().join("vu.sock")).unwrap();
    let e = common::idle_spawn(
        &bin,
        &dir,
        &[
            "-object",
            "memory-backend-memfd,id=mem,size=64M,share=on",
            "-machine",
            "memory-backend=mem",
            "-chardev",
            "socket,id=vu,fd=101,server=on,wait=off",
            "-netdev",
            "vhost-user,id=n,chardev=vu",
        ],
    )
    .inherit_fd(vu, 101)
    .spawn()
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("does not support FD passing"),
        "QEMU {version}: {e}"
    );
}
