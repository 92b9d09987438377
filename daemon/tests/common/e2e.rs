//! Helpers of the end-to-end tests (real QEMU, the test guest, a network namespace).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use virtnet_testkit::{ping, SerialConsole};

use super::TestDaemon;

/// Time a guest gets to boot (TCG on a busy 2-core machine).
pub const BOOT: Duration = Duration::from_secs(120);
/// Time a guest command gets.
pub const CMD: Duration = Duration::from_secs(30);

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        })
        .unwrap_or(false)
}

/// Polls `f` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number of open fds of process `pid`.
pub fn fd_count(pid: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `POST path` with a JSON body.
pub fn post_json(d: &TestDaemon, path: &str, body: &Value) -> (u16, Value) {
    d.call("POST", path, Some("application/json"), &body.to_string())
}

/// A QMP command through the daemon (its one connection to QEMU); QEMU's `return`.
pub fn qmp(d: &TestDaemon, vm: &str, execute: &str, arguments: Value) -> Result<Value, String> {
    let (s, v) = post_json(
        d,
        &format!("/v1/domains/{vm}/qmp"),
        &json!({ "execute": execute, "arguments": arguments }),
    );
    if s == 200 {
        Ok(v["return"].clone())
    } else {
        Err(v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
}

/// The VM's state word.
pub fn state(d: &TestDaemon, name: &str) -> String {
    let (s, v) = d.get(&format!("/v1/domains/{name}"));
    assert_eq!(s, 200, "{v}");
    v["state"].as_str().unwrap().to_string()
}

/// Starts `name`; returns QEMU's pid. A QEMU the daemon confines is checked to be
/// ([`virtnet_testkit::assert_confined`]), unless its domain opts out.
pub fn start(d: &TestDaemon, name: &str) -> u64 {
    let (s, v) = d.post(&format!("/v1/domains/{name}/start"));
    assert_eq!(s, 200, "start: {v}\n{}", d.log());
    let pid = v["pid"].as_u64().unwrap();
    let (_, x) = d.get(&format!("/v1/domains/{name}/xml"));
    let opted_out = x["xml"]
        .as_str()
        .is_some_and(|x| x.contains("<seclabel type='none'"));
    if d.confined() && !opted_out {
        virtnet_testkit::assert_qemu_confined(pid as u32);
    }
    pid
}

/// Destroys `name` and asserts the daemon reports nothing left behind.
pub fn destroy_leaving_nothing(d: &TestDaemon, name: &str) {
    let (s, v) = d.post(&format!("/v1/domains/{name}/destroy"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["leftovers"], json!([]), "{v}");
}

/// Connects to the guest's serial console at `serial` and waits until the guest is ready.
pub async fn ready_console(serial: &Path) -> SerialConsole {
    let mut con = SerialConsole::connect(serial, Duration::from_secs(10))
        .await
        .unwrap();
    con.wait_ready(BOOT).await.unwrap();
    con
}

/// The labels of QEMU's chardevs, sorted.
pub fn chardevs(d: &TestDaemon, vm: &str) -> Vec<String> {
    let mut v: Vec<String> = qmp(d, vm, "query-chardev", json!({}))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// QEMU's `info network` (human monitor).
pub fn net_info(d: &TestDaemon, vm: &str) -> String {
    qmp(
        d,
        vm,
        "human-monitor-command",
        json!({"command-line": "info network"}),
    )
    .unwrap()
    .as_str()
    .unwrap()
    .to_string()
}

/// What QEMU holds that a NIC could leave behind: fd sets, chardevs, netdevs (`info network`),
/// peripheral devices.
pub fn qemu_objects(d: &TestDaemon, vm: &str) -> (Value, Vec<String>, String, Vec<String>) {
    let fdsets = qmp(d, vm, "query-fdsets", json!({})).unwrap();
    let chardevs = chardevs(d, vm);
    let net = net_info(d, vm);
    let mut devs: Vec<String> = qmp(d, vm, "qom-list", json!({"path": "/machine/peripheral"}))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"].as_str().unwrap_or("").starts_with("child<"))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    devs.sort();
    (fdsets, chardevs, net, devs)
}

/// Whether QEMU knows an fd by the `getfd` name `name` (`closefd` of an unknown name fails;
/// of a known one it closes it, so only call it where none should exist).
pub fn getfd_name_exists(d: &TestDaemon, vm: &str, name: &str) -> bool {
    qmp(d, vm, "closefd", json!({ "fdname": name })).is_ok()
}

/// The test domain XML with a second serial port (ttyS1 in the guest) on `backend`
/// (`<serial>` children without the target), and the guest told to use two UARTs.
pub fn with_second_serial(xml: &str, backend: &str) -> String {
    let serial = format!("<serial {backend}<target port='1'/></serial>\n    <memballoon");
    xml.replacen("<memballoon", &serial, 1)
        .replace("8250.nr_uarts=1", "8250.nr_uarts=2")
}

/// The size of `p` (0 when missing).
pub fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Waits until `addr` answers one ping, for at most `within`; panics with ping's output.
pub fn wait_ping(addr: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (ok, out) = ping(addr, 1);
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} never answered:\n{out}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Defines switch network `name` from `xml` and starts it; returns the start reply (the
/// network's info: state, control socket, ...).
pub fn define_and_start_network(d: &TestDaemon, xml: &str, name: &str) -> Value {
    let (s, v) = d.call("POST", "/v1/networks", Some("application/xml"), xml);
    assert_eq!(s, 201, "define network {name}: {v}");
    let (s, v) = d.post(&format!("/v1/networks/{name}/start"));
    assert_eq!(s, 200, "start network {name}: {v}\n{}", d.log());
    v
}
