use std::fs;

use super::*;

fn status(name: &str) -> LiveStatus {
    LiveStatus {
        format: STATUS_FORMAT,
        name: name.into(),
        uuid: "0b7c6f0e-3f4a-4d6c-9d0e-0d9c7a7b6a5f".into(),
        id: 3,
        pid: 4242,
        pid_start_ticks: 99,
        qmp_socket: "/run/virtnet/vms/a/qmp.sock".into(),
        log_path: None,
        run_dir: Some("/run/virtnet/vms/a".into()),
        sockets_to_remove: vec![],
        started_at_unix_ms: 1,
        live_xml: "<domain/>".into(),
        aliases: [(
            "net0".to_string(),
            "interface 52:54:00:00:00:01".to_string(),
        )]
        .into(),
        fds: Default::default(),
        host_resources: Default::default(),
        pending_detaches: Default::default(),
        sandbox: None,
    }
}

#[test]
fn definitions_and_statuses_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path().join("state"), d.path().join("run")).unwrap();
    s.save_definition("a", "<domain>a</domain>").unwrap();
    s.save_definition("b", "<domain>b</domain>").unwrap();
    s.save_status(&status("a")).unwrap();
    let l = s.load().unwrap();
    let names: Vec<_> = l.definitions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        l.definitions[0].content.as_deref(),
        Ok("<domain>a</domain>")
    );
    assert_eq!(l.statuses.len(), 1);
    assert_eq!(l.statuses[0].content.as_ref().unwrap(), &status("a"));
    s.remove_definition("a").unwrap();
    s.remove_definition("a").unwrap(); // missing is fine
    s.remove_status("a").unwrap();
    let l = s.load().unwrap();
    assert_eq!(l.definitions.len(), 1);
    assert!(l.statuses.is_empty());
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(s.definition_path("b"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn corrupt_files_are_reported_per_file() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path().join("state"), d.path().join("run")).unwrap();
    fs::write(s.definition_path("bin"), [0xff, 0xfe, 0x00]).unwrap();
    fs::write(s.status_path("x"), "{ not json").unwrap();
    s.save_definition("ok", "<domain/>").unwrap();
    let l = s.load().unwrap();
    let bin = l.definitions.iter().find(|f| f.name == "bin").unwrap();
    let err = bin.content.as_ref().unwrap_err();
    assert!(
        err.contains("bin.xml") && err.contains("not UTF-8"),
        "{err}"
    );
    let err = l.statuses[0].content.as_ref().unwrap_err();
    assert!(err.contains("x.json") && err.contains("corrupt"), "{err}");
    assert!(l
        .definitions
        .iter()
        .any(|f| f.name == "ok" && f.content.is_ok()));
}

#[test]
fn stray_temp_files_are_removed_and_old_content_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path().join("state"), d.path().join("run")).unwrap();
    s.save_definition("a", "<domain>old</domain>").unwrap();
    // A crash between writing the temp file and renaming it.
    let stray = s.domains_dir().join(".a.xml.tmp-1234-0");
    fs::write(&stray, "<domain>new, half").unwrap();
    let l = s.load().unwrap();
    assert_eq!(l.removed_temps, vec![stray.clone()]);
    assert!(!stray.exists());
    assert_eq!(l.definitions.len(), 1);
    assert_eq!(
        l.definitions[0].content.as_deref(),
        Ok("<domain>old</domain>")
    );
}

#[test]
fn other_files_are_ignored() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path().join("state"), d.path().join("run")).unwrap();
    fs::write(s.domains_dir().join("README"), "x").unwrap();
    fs::write(s.run_dir().join("virtnetd.sock"), "").unwrap();
    let l = s.load().unwrap();
    assert!(l.definitions.is_empty() && l.statuses.is_empty());
}

/// The run directory's file system is told apart: tmpfs (as `/run`, where `Daemon::save_status`
/// writes on the request's own thread) or not (`/proc`'s file system stands in for a disk).
#[test]
fn run_dir_on_tmpfs_is_recognised() {
    let shm = Path::new("/dev/shm");
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Dir("/dev/shm")]) {
        return;
    }
    let mem = tempfile::tempdir_in(shm).unwrap();
    let disk = tempfile::tempdir().unwrap();
    let s = Store::open(disk.path().join("state"), mem.path().join("run")).unwrap();
    assert!(s.run_in_memory(), "/dev/shm is tmpfs");
    s.save_status(&status("a")).unwrap();
    assert_eq!(
        s.load().unwrap().statuses[0].content.as_ref().unwrap(),
        &status("a")
    );
    assert!(!in_memory(Path::new("/proc")), "/proc is not tmpfs");
    assert!(
        !in_memory(Path::new("/no/such/dir")),
        "unknown: not in memory"
    );
}
