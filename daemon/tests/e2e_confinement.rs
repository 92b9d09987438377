//! Attacks a compromised QEMU would try, with real QEMU (TCG, the test guest) started by
//! virtnetd in a private network namespace. Each attack is sent through the daemon's QMP
//! pass-through (`POST /v1/domains/NAME/qmp`, what `virtnet qemu-monitor-command` uses): a QMP
//! command is what a guest that took over QEMU could make QEMU do itself. Each test asserts
//! that the attack failed *and* that nothing was created or reached (no file, no child process,
//! no tap, no connection); `migrate_exec_runs_when_the_sandbox_is_off` shows the same attack
//! succeeding with `virtnetd --sandbox off`, so these tests can fail.
//!
//! Markers are written into a world-writable directory (mode 01777, as /tmp): a command that
//! ran as any user could create them, so their absence shows that nothing ran, not only that
//! the user lacked write access.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::e2e::{alive, qmp, start, state, wait_until};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{add_bridge, bridge_nic, links, with_netns, TestDomain};

const BRIDGE: &str = "atkbr0";

/// One virtnetd with the test guest defined and started as each of `names`, each with a bridge
/// NIC (so there is a managed tap whose cleanup can be checked).
struct Setup {
    /// Dropped first (fields drop in order): it destroys the VMs while the socket still exists.
    d: TestDaemon,
    tmp: tempfile::TempDir,
    /// QEMU's pid per VM, in the order of `names`.
    pids: Vec<u64>,
    /// A world-writable directory for markers.
    drop_dir: PathBuf,
    /// The namespace's links before any VM started.
    base_links: Vec<String>,
}

fn setup(qemu: &Path, daemon_args: &[&str], names: &[&str]) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    // The test's temp dir is 0700 by default; the guest's console socket and the markers
    // must be reachable the way they would be under /run and /tmp.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let drop_dir = tmp.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    std::fs::set_permissions(&drop_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    add_bridge(BRIDGE, None);
    let base_links = links();
    let d = TestDaemon::start_with_args(tmp.path(), Some(qemu), daemon_args);
    let guest = virtnet_testkit::guest();
    let mut pids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mac = format!("52:54:00:a7:00:{:02x}", i + 1);
        let serial = tmp.path().join(format!("{name}-serial.sock"));
        let xml = TestDomain::new(name, &serial)
            .nic(&bridge_nic(&mac, BRIDGE), &mac, None)
            .xml(guest);
        let (s, v) = d.define(&xml);
        assert_eq!(s, 201, "define {name}: {v}");
        pids.push(start(&d, name));
    }
    Setup {
        d,
        tmp,
        pids,
        drop_dir,
        base_links,
    }
}

/// The pids whose parent is `pid` (QEMU's threads are not listed in /proc, its children are).
fn children_of(pid: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((comm, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if ppid == Some(pid) {
            let comm = comm.split_once('(').map(|(_, c)| c).unwrap_or(comm);
            out.push((p, comm.to_string()));
        }
    }
    out
}

/// Watches for children of `pid` on a thread (every millisecond) until stopped.
struct ChildWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<(u64, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChildWatch {
    fn start(pid: u64) -> ChildWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let (s2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                seen2.lock().unwrap().extend(children_of(pid));
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        ChildWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops watching; every child seen.
    fn finish(mut self) -> BTreeSet<(u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

/// Connected unix stream sockets whose local address is `path` (the server's side of each
/// accepted connection), from `ss -x` in this network namespace; plus the queue of the
/// listening socket (connections not accepted yet).
fn unix_peers(path: &Path) -> (usize, usize) {
    let out = Command::new("ss").args(["-xanH"]).output().expect("ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let p = path.to_str().unwrap();
    let (mut estab, mut queued) = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Netid State Recv-Q Send-Q Local Port Peer Port
        if f.len() < 6 || f[4] != p {
            continue;
        }
        match f[1] {
            "ESTAB" => estab += 1,
            "LISTEN" => queued += f[2].parse::<usize>().unwrap_or(0),
            _ => {}
        }
    }
    (estab, queued)
}

/// Whether QEMU `pid` still runs and answers QMP through the daemon; if it is gone, waits
/// until the daemon has noticed (VM shut off) and released its tap (the only VM's). Returns a
/// line for the test's output saying what happened.
fn qemu_after(s: &Setup, vm: &str, pid: u64) -> String {
    if alive(pid) {
        match qmp(&s.d, vm, "query-status", json!({})) {
            Ok(v) => return format!("QEMU {pid} still runs: {v}"),
            Err(e) => eprintln!(
                "QEMU {pid} is alive ({}) but QMP failed: {e}",
                std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
            ),
        }
    }
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while last != "shut_off" {
        assert!(
            std::time::Instant::now() < deadline,
            "virtnetd did not notice QEMU {pid}'s exit: VM state {last:?}\n{}",
            s.d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
        last = state(&s.d, vm);
    }
    assert!(!alive(pid), "the VM is shut off but QEMU {pid} runs");
    wait_until("the VM's tap to go", Duration::from_secs(10), || {
        links() == s.base_links
    });
    format!(
        "QEMU {pid} was killed by the attack; virtnetd marked {vm} shut off and released its tap"
    )
}

/// `migrate` to `exec:CMD` with the markers it would write; asserts nothing ran, and that
/// QEMU was killed by its seccomp filter and cleaned up after.
fn migrate_exec_spawns_nothing(s: &Setup, vm: &str, pid: u64, cmd: &str, markers: &[PathBuf]) {
    let watch = ChildWatch::start(pid);
    let r = qmp(&s.d, vm, "migrate", json!({ "uri": format!("exec:{cmd}") }));
    // A command that would run late (the script sleeps first) has time to show up.
    std::thread::sleep(Duration::from_millis(2500));
    let children = watch.finish();
    let what = qemu_after(s, vm, pid);
    eprintln!("migrate exec:{cmd}: QMP {r:?}; {what}");
    for m in markers {
        assert!(
            !m.exists(),
            "the attack ran: {} exists (QMP answer {r:?})",
            m.display()
        );
    }
    assert!(
        children.is_empty(),
        "QEMU spawned {children:?} (QMP answer {r:?})"
    );
    // What happens to QEMU: its seccomp filter (`spawn=deny`) kills it with SIGSYS at the
    // fork, so the guest loses its own VM and the host nothing; virtnetd saw it exit and
    // released its host side (`qemu_after`).
    assert!(!alive(pid), "QEMU survived the attempt: {what}");
    let log = s.d.log();
    assert!(
        log.contains("SIGSYS"),
        "QEMU did not die of its seccomp filter:\n{log}"
    );
}

#[test]
fn migrate_exec_spawns_nothing_when_confined() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &[], &["atk"]);
        let touched = s.drop_dir.join("touched");
        migrate_exec_spawns_nothing(
            &s,
            "atk",
            s.pids[0],
            &format!("touch {}", touched.display()),
            std::slice::from_ref(&touched),
        );
    });
}

#[test]
fn migrate_exec_of_a_script_spawns_nothing_when_confined() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &[], &["atk"]);
        let script = s.drop_dir.join("payload.sh");
        let marker = s.drop_dir.join("payload-ran");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nid > {m}\nsleep 1\necho done >> {m}\ncat > /dev/null\n",
                m = marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        migrate_exec_spawns_nothing(
            &s,
            "atk",
            s.pids[0],
            &script.display().to_string(),
            std::slice::from_ref(&marker),
        );
    });
}

/// `chardev-add` of a file back end at `path`: must fail and create nothing.
fn chardev_file_fails(s: &Setup, vm: &str, id: &str, path: &Path) {
    let existed = path.exists();
    let r = qmp(
        &s.d,
        vm,
        "chardev-add",
        json!({"id": id, "backend": {"type": "file", "data": {"out": path}}}),
    );
    let created = !existed && path.exists();
    if created {
        let _ = std::fs::remove_file(path);
    }
    if r.is_ok() {
        let _ = qmp(&s.d, vm, "chardev-remove", json!({ "id": id }));
    }
    assert!(
        r.is_err(),
        "chardev-add of a file at {} succeeded",
        path.display()
    );
    assert!(!created, "{} was created: {r:?}", path.display());
    eprintln!("chardev-add file {}: {}", path.display(), r.unwrap_err());
}

#[test]
fn chardev_add_cannot_write_into_etc_or_the_state_dir() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &[], &["atk"]);
        let etc = PathBuf::from(format!("/etc/virtnet-attack-{}", std::process::id()));
        chardev_file_fails(&s, "atk", "atk-etc", &etc);
        // The state directory (definitions) and a definition's file itself.
        let state = s.tmp.path().join("state");
        assert!(state.is_dir());
        chardev_file_fails(&s, "atk", "atk-state", &state.join("attack"));
        let def = state.join("domains/atk.xml");
        let def = if def.exists() {
            def
        } else {
            state.join("domains/atk.json")
        };
        let before = std::fs::read(&def).ok();
        let r = qmp(
            &s.d,
            "atk",
            "chardev-add",
            json!({"id": "atk-def", "backend": {"type": "file", "data": {"out": def, "append": true}}}),
        );
        if r.is_ok() {
            let _ = qmp(&s.d, "atk", "chardev-remove", json!({"id": "atk-def"}));
        }
        assert!(
            r.is_err(),
            "chardev-add opened {} for writing",
            def.display()
        );
        assert_eq!(std::fs::read(&def).ok(), before);
        // The run directory (live statuses, the API socket) too.
        chardev_file_fails(&s, "atk", "atk-run", &s.tmp.path().join("run/attack"));
        assert!(alive(s.pids[0]));
    });
}

#[test]
fn qemu_cannot_open_dev_net_tun() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &[], &["atk"]);
        let before = links();
        // QEMU opening /dev/net/tun itself and creating a tap by name.
        let r = qmp(
            &s.d,
            "atk",
            "netdev_add",
            json!({"type": "tap", "id": "atk-tap", "ifname": "atktap0",
                   "script": "no", "downscript": "no"}),
        );
        let after = links();
        if r.is_ok() {
            let _ = qmp(&s.d, "atk", "netdev_del", json!({"id": "atk-tap"}));
        }
        assert!(r.is_err(), "netdev_add tap created a tap: {after:?}");
        assert_eq!(before, after, "a link appeared");
        eprintln!("netdev_add tap: {}", r.unwrap_err());
        // Opening the device as a file (it is not in QEMU's /dev).
        let r = qmp(
            &s.d,
            "atk",
            "chardev-add",
            json!({"id": "atk-tun", "backend": {"type": "file",
                   "data": {"out": "/dev/net/tun", "append": true}}}),
        );
        if r.is_ok() {
            let _ = qmp(&s.d, "atk", "chardev-remove", json!({"id": "atk-tun"}));
        }
        assert!(r.is_err(), "chardev-add opened /dev/net/tun");
        assert!(
            !Path::new(&format!("/proc/{}/root/dev/net/tun", s.pids[0])).exists(),
            "/dev/net/tun is in QEMU's /dev"
        );
        assert!(alive(s.pids[0]));
    });
}

/// `chardev-add` of a unix socket client to `path`: must fail, and the listener at `path` must
/// see no new connection.
fn socket_connect_fails(s: &Setup, vm: &str, id: &str, path: &Path) {
    let before = unix_peers(path);
    let r = qmp(
        &s.d,
        vm,
        "chardev-add",
        json!({"id": id, "backend": {"type": "socket", "data": {
            "addr": {"type": "unix", "data": {"path": path}},
            "server": false}}}),
    );
    let after = unix_peers(path);
    if r.is_ok() {
        let _ = qmp(&s.d, vm, "chardev-remove", json!({ "id": id }));
    }
    assert!(
        r.is_err(),
        "QEMU connected to {} (connections, queued: {before:?} -> {after:?})",
        path.display()
    );
    assert_eq!(
        before,
        after,
        "{} saw a connection (established, queued)",
        path.display()
    );
    eprintln!("chardev-add socket {}: {}", path.display(), r.unwrap_err());
}

#[test]
fn qemu_cannot_reach_another_vms_monitor_or_the_api_socket() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &[], &["atk", "victim"]);
        // VM B's monitor: the path virtnetd reports (if it still has one).
        let (st, v) = s.d.get("/v1/domains/victim");
        assert_eq!(st, 200, "{v}");
        let qmp_path: Option<PathBuf> = v["qmp_socket"].as_str().map(PathBuf::from);
        match &qmp_path {
            Some(p) if p.exists() => socket_connect_fails(&s, "atk", "atk-qmp", p),
            other => eprintln!("VM victim has no QMP socket on the file system ({other:?})"),
        }
        // Every other socket of VM B's run directory too.
        let run = s.tmp.path().join("run");
        for e in walk(&run) {
            use std::os::unix::fs::FileTypeExt;
            let is_sock = std::fs::symlink_metadata(&e)
                .map(|m| m.file_type().is_socket())
                .unwrap_or(false);
            let theirs = e.to_string_lossy().contains("victim");
            if is_sock && theirs && Some(&e) != qmp_path.as_ref() {
                socket_connect_fails(&s, "atk", "atk-run-sock", &e);
            }
        }
        // B's serial console, outside the run dir (where the domain XML puts it).
        let serial = s.tmp.path().join("victim-serial.sock");
        assert!(serial.exists());
        socket_connect_fails(&s, "atk", "atk-serial", &serial);
        // virtnetd's API socket.
        socket_connect_fails(&s, "atk", "atk-api", &s.d.socket);
        // B still answers, and A did not lose its monitor.
        qmp(&s.d, "victim", "query-status", json!({})).unwrap();
        qmp(&s.d, "atk", "query-status", json!({})).unwrap();
    });
}

/// Every path under `dir` (not following links).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn host_devices_not_given_to_the_vm_cannot_be_opened() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &[], &["atk"]);
        let pid = s.pids[0];
        // A host PCI device that was not given to this VM (the host's first one).
        let mut devs: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        devs.sort();
        let host = devs.first().expect("a host PCI device").clone();
        let r = qmp(
            &s.d,
            "atk",
            "device_add",
            json!({"driver": "vfio-pci", "host": host, "id": "atk-vfio"}),
        );
        if r.is_ok() {
            let _ = qmp(&s.d, "atk", "device_del", json!({"id": "atk-vfio"}));
        }
        assert!(r.is_err(), "vfio-pci {host} was plugged");
        eprintln!("device_add vfio-pci,host={host}: {}", r.unwrap_err());
        // QEMU's /dev holds no VFIO node at all (none of its own hostdevs here).
        let vfio = PathBuf::from(format!("/proc/{pid}/root/dev/vfio"));
        assert!(!vfio.exists(), "{} exists", vfio.display());
        // Nor any of the host's block devices: a block device of the host that QEMU could
        // open (the first one /sys lists) is refused, and none is in QEMU's /dev.
        use std::os::unix::fs::FileTypeExt;
        let qemu_dev = PathBuf::from(format!("/proc/{pid}/root/dev"));
        let blocks: Vec<PathBuf> = walk(&qemu_dev)
            .into_iter()
            .filter(|p| {
                std::fs::symlink_metadata(p)
                    .map(|m| m.file_type().is_block_device())
                    .unwrap_or(false)
            })
            .collect();
        assert!(
            blocks.is_empty(),
            "block devices in QEMU's /dev: {blocks:?}"
        );
        let mut disks: Vec<String> = std::fs::read_dir("/sys/block")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        disks.sort();
        if let Some(disk) = disks.first() {
            let r = qmp(
                &s.d,
                "atk",
                "blockdev-add",
                json!({"driver": "host_device", "filename": format!("/dev/{disk}"),
                       "node-name": "atk-disk", "read-only": true}),
            );
            if r.is_ok() {
                let _ = qmp(
                    &s.d,
                    "atk",
                    "blockdev-del",
                    json!({"node-name": "atk-disk"}),
                );
            }
            assert!(r.is_err(), "QEMU opened the host's /dev/{disk}");
            eprintln!("blockdev-add host_device /dev/{disk}: {}", r.unwrap_err());
        }
        let devs = qmp(
            &s.d,
            "atk",
            "qom-list",
            json!({"path": "/machine/peripheral"}),
        )
        .unwrap();
        assert!(
            !devs.to_string().contains("atk-vfio"),
            "the device is there: {devs}"
        );
        assert!(alive(pid));
    });
}

/// With `virtnetd --sandbox off` the first attack works (so the tests above can fail): QEMU
/// runs `touch` as virtnetd's user.
#[test]
fn migrate_exec_runs_when_the_sandbox_is_off() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let s = setup(&qemu, &["--sandbox", "off"], &["atk"]);
        let marker = s.drop_dir.join("touched");
        let r = qmp(
            &s.d,
            "atk",
            "migrate",
            json!({ "uri": format!("exec:touch {}", marker.display()) }),
        );
        wait_until(
            "the unconfined QEMU to run touch",
            Duration::from_secs(10),
            || marker.exists(),
        );
        eprintln!("unconfined migrate exec: QMP {r:?}; marker created");
        std::fs::remove_file(&marker).unwrap();
        // Cancel whatever is left of the migration; the VM keeps running.
        let _ = qmp(&s.d, "atk", "migrate_cancel", json!({}));
        let st: Value = qmp(&s.d, "atk", "query-status", json!({})).unwrap();
        eprintln!("after the unconfined attack: {st}");
        assert!(alive(s.pids[0]));
    });
}
