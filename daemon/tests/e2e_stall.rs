//! A vhost-user hot-plug must never wedge a VM (real daemon, real QEMU 7.2 under TCG, the test
//! guest, a private network namespace):
//!
//! - no back end connects to a socket QEMU listens on (`mode='server'`): the attach fails at
//!   the daemon's `--backend-timeout`, naming the socket, nothing of the NIC is left in QEMU
//!   and QEMU answers at once;
//! - a back end that accepts QEMU's connection and never answers (`mode='client'`, a bare unix
//!   listener here): `netdev_add` blocks QEMU, the attach fails at its deadline and the VM is
//!   marked stalled (API `stalled`, reason and since); other live operations (attach, detach,
//!   update, setlink, chardev change, qemu-monitor-command, shutdown) are refused at once with
//!   that reason; once the back end is gone QEMU answers, the mark clears by itself,
//!   nothing of the NIC is left and a bridge NIC hot-plug works;
//! - destroy of a VM stalled by a silent client of a `mode='server'` socket: QEMU killed,
//!   nothing left (its socket removed too);
//! - the silent client of a `mode='server'` socket goes (QEMU 7.2 then waits inside
//!   `netdev_add` for the next connection): virtnetd's stand-in completes the handshake, the
//!   late `netdev_add` succeeds and is undone, the mark clears, a bridge NIC hot-plug works;
//! - start with a `mode='server'` NIC and no back end fails at `--start-timeout` naming the
//!   socket, with no QEMU, socket or run dir left.

mod common;

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::e2e::{alive, post_json, qemu_objects, qmp, start, wait_until};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{add_bridge, bridge_nic, links, vhostuser_nic, with_netns, TestDomain};

/// The daemon's deadlines in these tests (seconds).
const BACKEND_TIMEOUT: &str = "2";
const START_TIMEOUT: &str = "4";

/// Runs `f` in a private network namespace holding bridge `br0`, with a virtnetd using the
/// e2e QEMU and short deadlines, its state in a temporary dir; skipped without QEMU or root.
fn with_daemon(f: impl FnOnce(&mut TestDaemon, &Path) + Send + 'static) {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let _ = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", None);
        let tmp = virtnet_testkit::traversable_tempdir();
        let mut d = TestDaemon::start_with_args(
            tmp.path(),
            Some(&qemu),
            &[
                "--backend-timeout",
                BACKEND_TIMEOUT,
                "--start-timeout",
                START_TIMEOUT,
            ],
        );
        f(&mut d, tmp.path());
        d.stop();
    });
}

/// Defines and starts VM `name` (shared memory, for vhost-user); returns QEMU's pid.
fn boot(d: &TestDaemon, dir: &Path, name: &str) -> u64 {
    let mut dom = TestDomain::new(name, dir.join(format!("{name}.serial")));
    dom.shared_memory = true;
    let (s, v) = d.define(&dom.xml(virtnet_testkit::guest()));
    assert_eq!(s, 201, "{v}");
    start(d, name)
}

fn attach(d: &TestDaemon, vm: &str, xml: &str) -> (u16, Value, Duration) {
    let t = Instant::now();
    let (s, v) = post_json(
        d,
        &format!("/v1/domains/{vm}/devices"),
        &json!({ "xml": xml, "live": true }),
    );
    (s, v, t.elapsed())
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The VM's `stalled` in dominfo.
fn stalled_info(d: &TestDaemon, vm: &str) -> Option<Value> {
    let (s, info) = d.get(&format!("/v1/domains/{vm}"));
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["state"], "running", "{info}");
    info.get("stalled").cloned()
}

/// The VM's `stalled` in dominfo and in the list (they must agree: call it while the state
/// does not change).
fn stalled(d: &TestDaemon, vm: &str) -> Option<Value> {
    let (s, info) = d.get(&format!("/v1/domains/{vm}"));
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["state"], "running", "{info}");
    let (_, list) = d.get("/v1/domains");
    let row = list["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == vm)
        .cloned()
        .unwrap();
    assert_eq!(row.get("stalled"), info.get("stalled"), "{row} vs {info}");
    info.get("stalled").cloned()
}

#[test]
fn attach_with_no_back_end_fails_at_the_deadline_and_leaves_nothing() {
    with_daemon(|d, dir| {
        let pid = boot(d, dir, "nobe");
        let before = qemu_objects(d, "nobe");
        let fds = common::e2e::fd_count(pid);
        let socket = dir.join("nobe-vu.sock");
        let nic = vhostuser_nic("52:54:00:00:31:01", &socket, "server");
        let (s, v, took) = attach(d, "nobe", &nic);
        // The user's to fix (start the back end), and nothing was left: 409 refused.
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error"]["kind"], "refused", "{v}");
        let m = message(&v);
        assert!(m.contains("no back end connected"), "{m}");
        assert!(m.contains(&socket.display().to_string()), "{m}");
        assert!(took >= Duration::from_secs(2), "{took:?}");
        assert!(took < Duration::from_secs(5), "the deadline held: {took:?}");
        eprintln!("attach with no back end failed after {took:?}: {m}");
        // QEMU answers at once and has nothing of the NIC; no socket, no fd left.
        let t = Instant::now();
        qmp(d, "nobe", "query-status", json!({})).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(qemu_objects(d, "nobe"), before);
        assert!(!socket.exists(), "QEMU's listening socket is gone");
        assert_eq!(common::e2e::fd_count(pid), fds, "QEMU's fds");
        assert_eq!(stalled(d, "nobe"), None);
        common::e2e::destroy_leaving_nothing(d, "nobe");
    });
}

#[test]
fn a_silent_back_end_marks_the_vm_stalled_until_qemu_answers() {
    with_daemon(|d, dir| {
        boot(d, dir, "silent");
        let before = qemu_objects(d, "silent");
        let links_before = links();
        // A back end that accepts QEMU's connection (the listen backlog) and never answers.
        let socket = dir.join("silent-vu.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let nic = vhostuser_nic("52:54:00:00:32:01", &socket, "client");
        let (s, v, took) = attach(d, "silent", &nic);
        assert_eq!(s, 500, "{v}");
        let m = message(&v);
        assert!(m.contains("netdev_add"), "{m}");
        assert!(m.contains("marked stalled"), "{m}");
        eprintln!("stalled attach failed after {took:?}");

        let st = stalled(d, "silent").expect("marked stalled");
        assert_eq!(st["operation"], "attach-device", "{st}");
        let reason = st["reason"].as_str().unwrap();
        assert!(reason.contains(&socket.display().to_string()), "{reason}");
        assert!(st["since_unix_ms"].as_u64().unwrap() > 0, "{st}");

        // Other live operations are refused at once, with the reason.
        let refused = |what: &str, (s, v, took): (u16, Value, Duration)| {
            assert_eq!(s, 409, "{what}: {v}");
            assert_eq!(v["error"]["kind"], "invalid_state", "{what}: {v}");
            let m = message(&v);
            assert!(
                m.contains("stalled") && m.contains("netdev_add"),
                "{what}: {m}"
            );
            assert!(took < Duration::from_secs(1), "{what} took {took:?}");
        };
        refused(
            "attach",
            attach(d, "silent", &bridge_nic("52:54:00:00:32:02", "br0")),
        );
        let t = Instant::now();
        let (s, v) = post_json(
            d,
            "/v1/domains/silent/devices/detach",
            &json!({"xml": nic, "live": true}),
        );
        refused("detach", (s, v, t.elapsed()));
        let t = Instant::now();
        let (s, v) = post_json(
            d,
            "/v1/domains/silent/qmp",
            &json!({"execute": "query-status"}),
        );
        refused("qemu-monitor-command", (s, v, t.elapsed()));
        let call = |what: &str, path: &str, body: Value| {
            let t = Instant::now();
            let (s, v) = post_json(d, path, &body);
            refused(what, (s, v, t.elapsed()));
        };
        call(
            "update",
            "/v1/domains/silent/devices/update",
            json!({"xml": bridge_nic("52:54:00:00:32:04", "br0"), "live": true}),
        );
        call(
            "setlink",
            "/v1/domains/silent/interfaces/52:54:00:00:32:04/link",
            json!({"state": "down", "live": true}),
        );
        call(
            "chardev-change",
            "/v1/domains/silent/chardevs/serial0",
            json!({"type": "null", "live": true}),
        );
        // A stalled QEMU cannot power down: shutdown is refused too (destroy works).
        let t = Instant::now();
        let (s, v) = d.post("/v1/domains/silent/shutdown");
        refused("shutdown", (s, v, t.elapsed()));

        // The back end goes away: QEMU's handshake fails, netdev_add returns, the queued undo
        // runs; the mark clears by itself.
        drop(listener);
        let t = Instant::now();
        wait_until("the stalled mark to clear", Duration::from_secs(10), || {
            stalled_info(d, "silent").is_none()
        });
        assert_eq!(stalled(d, "silent"), None);
        eprintln!(
            "stalled cleared {:?} after the back end went away",
            t.elapsed()
        );
        assert_eq!(
            qemu_objects(d, "silent"),
            before,
            "nothing of the NIC is left"
        );
        assert_eq!(links(), links_before);
        // The VM works: a bridge NIC hot-plug succeeds.
        let (s, v, _) = attach(d, "silent", &bridge_nic("52:54:00:00:32:03", "br0"));
        assert_eq!(s, 200, "{v}\n{}", d.log());
        common::e2e::destroy_leaving_nothing(d, "silent");
    });
}

/// A client of QEMU's listening `socket` that connects (once QEMU listens) and never speaks.
fn silent_client(socket: &Path) -> std::thread::JoinHandle<UnixStream> {
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = UnixStream::connect(&socket) {
                return c;
            }
            assert!(Instant::now() < deadline, "QEMU never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn a_server_socket_stall_ends_when_the_silent_back_end_goes() {
    with_daemon(move |d, dir| {
        boot(d, dir, "late");
        let before = qemu_objects(d, "late");
        let socket = dir.join("late-vu.sock");
        let client = silent_client(&socket);
        let nic = vhostuser_nic("52:54:00:00:35:01", &socket, "server");
        let (s, v, _) = attach(d, "late", &nic);
        assert_eq!(s, 500, "{v}");
        assert!(message(&v).contains("marked stalled"), "{v}");
        assert!(stalled(d, "late").is_some());
        // The silent client goes: QEMU 7.2 fails the handshake and, still inside netdev_add,
        // waits for the next connection; virtnetd's stand-in (waiting in the backlog) completes
        // the handshake, netdev_add succeeds late and the undo queued behind it runs.
        drop(client.join().unwrap());
        let t = Instant::now();
        wait_until("the stalled mark to clear", Duration::from_secs(15), || {
            stalled_info(d, "late").is_none()
        });
        eprintln!(
            "stalled cleared {:?} after the silent back end went",
            t.elapsed()
        );
        assert_eq!(stalled(d, "late"), None);
        assert_eq!(
            qemu_objects(d, "late"),
            before,
            "nothing of the NIC is left"
        );
        assert!(!socket.exists(), "QEMU's listening socket is gone");
        let (s, v, _) = attach(d, "late", &bridge_nic("52:54:00:00:35:02", "br0"));
        assert_eq!(s, 200, "{v}\n{}", d.log());
        common::e2e::destroy_leaving_nothing(d, "late");
    });
}

#[test]
fn destroy_while_stalled_leaves_nothing() {
    with_daemon(|d, dir| {
        let daemon_fds = common::e2e::fd_count(d.pid() as u64);
        let pid = boot(d, dir, "wedged");
        let links_before = links();
        let socket = dir.join("wedged-vu.sock");
        let nic = vhostuser_nic("52:54:00:00:33:01", &socket, "server");
        // A back end that connects to QEMU's socket and never answers: the wait for a peer
        // passes, netdev_add blocks.
        let client = silent_client(&socket);
        let (s, v, _) = attach(d, "wedged", &nic);
        assert_eq!(s, 500, "{v}");
        assert!(message(&v).contains("marked stalled"), "{v}");
        assert!(stalled(d, "wedged").is_some());
        let silent = client.join().unwrap();
        let t = Instant::now();
        let (s, v) = d.post("/v1/domains/wedged/destroy");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["leftovers"], json!([]), "{v}");
        eprintln!("destroy of a stalled VM took {:?}", t.elapsed());
        assert!(!alive(pid), "QEMU is gone");
        assert!(!socket.exists(), "QEMU's listening socket is removed");
        assert_eq!(links(), links_before);
        let (_, info) = d.get("/v1/domains/wedged");
        assert_eq!(info["state"], "shut_off", "{info}");
        assert!(info.get("stalled").is_none(), "{info}");
        drop(silent);
        // The QMP connection and the stand-in's connection are closed.
        wait_until(
            "virtnetd's fds back to before",
            Duration::from_secs(5),
            || common::e2e::fd_count(d.pid() as u64) <= daemon_fds,
        );
    });
}

#[test]
fn start_with_no_back_end_fails_at_the_deadline_and_leaves_nothing() {
    with_daemon(|d, dir| {
        let socket = dir.join("nostart-vu.sock");
        let mut dom = TestDomain::new("nostart", dir.join("nostart.serial"));
        dom.shared_memory = true;
        let dom = dom.nic(
            &vhostuser_nic("52:54:00:00:34:01", &socket, "server"),
            "52:54:00:00:34:01",
            None,
        );
        let (s, v) = d.define(&dom.xml(virtnet_testkit::guest()));
        assert_eq!(s, 201, "{v}");
        let links_before = links();
        let t = Instant::now();
        let (s, v) = d.post("/v1/domains/nostart/start");
        let took = t.elapsed();
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error"]["kind"], "refused", "{v}");
        let m = message(&v);
        assert!(m.contains("no back end connected"), "{m}");
        assert!(m.contains(&socket.display().to_string()), "{m}");
        assert!(m.contains("everything it had set up was undone"), "{m}");
        assert!(took < Duration::from_secs(8), "the deadline held: {took:?}");
        eprintln!("start with no back end failed after {took:?}: {m}");
        let (_, info) = d.get("/v1/domains/nostart");
        assert_eq!(info["state"], "shut_off", "{info}");
        assert!(!socket.exists(), "no socket left");
        assert!(!d.base.join("run/nostart").exists(), "no run dir left");
        assert!(!d.base.join("run/nostart.json").exists(), "no live status");
        assert_eq!(links(), links_before);
        let qemus = std::process::Command::new("pgrep")
            .args(["-f", "guest=nostart"])
            .output()
            .unwrap();
        assert!(qemus.stdout.is_empty(), "no QEMU of the VM runs");
    });
}
