use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn run_of(path: PathBuf, log: &Path, timeout: Duration) -> ScriptRun {
    ScriptRun {
        kind: ScriptKind::Up,
        path,
        ifname: "vnet7".into(),
        nic: "net0".into(),
        log: Some(log.to_path_buf()),
        timeout,
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn success_gets_the_tap_name_and_the_common_environment_and_logs_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = script(
        dir.path(),
        "up",
        &format!(
            "echo \"arg=$1 argc=$# lc=$LC_ALL pwd=$(pwd)\" > {}\necho hello\necho oops >&2",
            out.display()
        ),
    );
    let log = dir.path().join("vm.log");
    run_script(&run_of(s.clone(), &log, DEFAULT_SCRIPT_TIMEOUT)).unwrap();
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got.trim(), "arg=vnet7 argc=1 lc=C pwd=/");
    let log = std::fs::read_to_string(&log).unwrap();
    let prefix = format!("net0 script {}: ", s.display());
    assert!(log.contains(&format!("{prefix}hello\n")), "{log}");
    assert!(log.contains(&format!("{prefix}oops\n")), "{log}");
    assert!(log.contains("exited with status 0"), "{log}");
}

#[test]
fn script_keeps_only_cap_net_admin() {
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Root]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("caps");
    let s = script(
        dir.path(),
        "up",
        &format!(
            "grep -E '^Cap(Eff|Bnd)' /proc/self/status > {}",
            out.display()
        ),
    );
    run_script(&run_of(s, &dir.path().join("log"), DEFAULT_SCRIPT_TIMEOUT)).unwrap();
    let caps = std::fs::read_to_string(&out).unwrap();
    // Bit 12 = CAP_NET_ADMIN.
    assert!(caps.contains("CapEff:\t0000000000001000"), "{caps}");
    assert!(caps.contains("CapBnd:\t0000000000001000"), "{caps}");
}

#[test]
fn environment_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let s = script(dir.path(), "up", &format!("env > {}", out.display()));
    std::env::set_var("VIRTNET_SCRIPT_TEST_VAR", "leak");
    run_script(&run_of(s, &dir.path().join("log"), DEFAULT_SCRIPT_TIMEOUT)).unwrap();
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(!env.contains("VIRTNET_SCRIPT_TEST_VAR"), "{env}");
    assert!(env.contains("PATH="), "{env}");
}

#[test]
fn failure_names_the_status_and_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "up",
        "echo first\necho 'cannot attach' >&2\nexit 3",
    );
    let log = dir.path().join("vm.log");
    let e = run_script(&run_of(s.clone(), &log, DEFAULT_SCRIPT_TIMEOUT)).unwrap_err();
    match &e {
        HostError::ScriptFailed(f) => {
            assert_eq!(f.outcome, ScriptOutcome::Exit(3));
            assert_eq!(f.last_line, "cannot attach");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&s.display().to_string()), "{msg}");
    assert!(msg.contains("exited with status 3"), "{msg}");
    assert!(msg.contains("vnet7") && msg.contains("net0"), "{msg}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("cannot attach") && log.contains("exited with status 3"),
        "{log}"
    );
}

#[test]
fn timeout_kills_the_whole_process_group_and_leaves_no_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // A child in the background and the script itself both hang.
    let s = script(
        dir.path(),
        "hang",
        &format!(
            "sleep 600 &\necho \"$$ $!\" > {}\necho waiting\nsleep 600",
            pids.display()
        ),
    );
    let t0 = Instant::now();
    let e = run_script(&run_of(
        s,
        &dir.path().join("log"),
        Duration::from_millis(500),
    ))
    .unwrap_err();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let msg = e.to_string();
    assert!(msg.contains("did not finish within 500ms"), "{msg}");
    assert!(msg.contains("waiting"), "{msg}");
    let text = std::fs::read_to_string(&pids).unwrap();
    let v: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    // The script was reaped (no zombie: kill(0) fails once the pid is gone) and the
    // background child, in its group, was killed (it may linger briefly as init's zombie).
    assert!(!pid_alive(v[0]), "the script {} is still there", v[0]);
    let gone = (0..100).any(|_| {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", v[1])).unwrap_or_default();
        let zombie_or_gone = stat.is_empty() || stat.contains(") Z");
        if !zombie_or_gone {
            std::thread::sleep(Duration::from_millis(20));
        }
        zombie_or_gone
    });
    assert!(gone, "the script's background child {} still runs", v[1]);
}

#[test]
fn missing_or_relative_script_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let e = run_script(&run_of(
        dir.path().join("nope"),
        &log,
        DEFAULT_SCRIPT_TIMEOUT,
    ))
    .unwrap_err();
    assert!(matches!(e, HostError::ScriptSpawn { .. }), "{e:?}");
    assert!(e.to_string().contains("cannot run script"), "{e}");
    let e = run_script(&run_of("up.sh".into(), &log, DEFAULT_SCRIPT_TIMEOUT)).unwrap_err();
    assert!(e.to_string().contains("not absolute"), "{e}");
}
