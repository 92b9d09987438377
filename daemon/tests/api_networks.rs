//! Networks without VMs (real virtnetd and virtnet-vswitch, no QEMU, no root needed): define
//! (canonical XML back, positioned refusals), start, a daemon restart adopts the running switch,
//! a switch that died while virtnetd was down is started again at load, destroy leaves no
//! process or file, undefine.

mod common;

use std::time::Duration;

use common::TestDaemon;
use serde_json::Value;

fn alive(pid: i64) -> bool {
    common::e2e::alive(pid as u64)
}

fn info(d: &TestDaemon) -> Value {
    let (s, v) = d.get("/v1/networks/n1");
    assert_eq!(s, 200, "{v}");
    v
}

#[test]
fn network_lifecycle_adoption_and_recovery() {
    common::vswitch();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = TestDaemon::start(tmp.path());
    let xml = "<network>\n<name>n1</name>\n<virtualport type='virtnet-vswitch'/>\n</network>";
    let (s, v) = d.call("POST", "/v1/networks", Some("application/xml"), xml);
    assert_eq!(s, 201, "{v}");
    let (s, v) = d.call("POST", "/v1/networks", Some("application/xml"), xml);
    assert_eq!(s, 200, "redefine: {v}");
    // Refused, positioned.
    let (s, v) = d.call(
        "POST",
        "/v1/networks",
        Some("application/xml"),
        "<network>\n<name>n2</name>\n<virtualport type='openvswitch'/>\n</network>",
    );
    assert_eq!(s, 400, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("3:") && m.contains("virtnet-vswitch"), "{m}");
    let (s, v) = d.get("/v1/networks/nope");
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (404, Some("no_such_network"))
    );
    let (s, v) = d.get("/v1/networks");
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 0, "active only: {v}");
    let (s, v) = d.get("/v1/networks?all=true");
    assert_eq!((s, v.as_array().unwrap().len()), (200, 1), "{v}");
    let (s, v) = d.get("/v1/networks/n1/xml");
    assert_eq!(s, 200);
    assert!(v["xml"]
        .as_str()
        .unwrap()
        .contains("<virtualport type='virtnet-vswitch'/>"));

    let (s, v) = d.post("/v1/networks/n1/start");
    assert_eq!(s, 200, "{v}\n{}", d.log());
    let pid = v["pid"].as_i64().unwrap();
    assert!(alive(pid));
    assert_eq!(d.post("/v1/networks/n1/start").0, 409);
    assert_eq!(d.call("DELETE", "/v1/networks/n1", None, "").0, 409);

    // A daemon restart adopts the running switch.
    d.stop();
    assert!(alive(pid), "the switch outlives virtnetd");
    d.restart();
    assert_eq!(info(&d)["pid"].as_i64(), Some(pid), "{}", d.log());
    assert!(d.log().contains("adopted a running switch"));

    // The switch dies while virtnetd is down: started again at load.
    d.stop();
    // SAFETY: kill(2) on the switch's pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    common::e2e::wait_until("the switch died", Duration::from_secs(10), || !alive(pid));
    d.restart();
    let i = info(&d);
    assert_eq!(i["state"], "active", "{i}");
    let pid2 = i["pid"].as_i64().unwrap();
    assert_ne!(pid2, pid);
    assert!(alive(pid2));

    // Destroy: no process, no run files.
    let (s, v) = d.post("/v1/networks/n1/destroy");
    assert_eq!(s, 200, "{v}");
    assert!(!alive(pid2));
    let run = tmp.path().join("run/networks");
    let left: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let (s, v) = d.call("DELETE", "/v1/networks/n1", None, "");
    assert_eq!(s, 200, "{v}");
    assert!(!tmp.path().join("state/networks/n1.xml").exists());
    d.stop();
}
