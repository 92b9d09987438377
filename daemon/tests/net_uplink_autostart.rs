//! Networks and the owner registry, and network autostart (real virtnetd and virtnet-vswitch,
//! no QEMU; root, each test in its own network namespace since uplink taps are created):
//!
//! - a running network's uplink tap is owned: a VM's `<target dev>` with that name is refused
//!   at define and at a config attach, naming the network; a daemon restart (adoption) keeps
//!   it owned; `net-destroy` frees it;
//! - `net-start` of a network whose uplink tap a VM holds is refused naming the VM, leaving
//!   no switch, tap or run file;
//! - `net-autostart [--disable]`: shown in net-list and net-info, kept across daemon restarts,
//!   the network started when virtnetd starts (not when a VM holds its uplink), forgotten by
//!   net-undefine.

mod common;

use std::path::PathBuf;

use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{links, with_netns};

fn alive(pid: i64) -> bool {
    common::e2e::alive(pid as u64)
}

/// Kills the switches recorded under `run` when dropped (a failed test leaves none behind;
/// they outlive virtnetd by design).
struct Switches(PathBuf);

impl Drop for Switches {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("networks")) else {
            return;
        };
        for e in entries.flatten() {
            let st: Option<Value> = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(pid) = st.and_then(|v| v["pid"].as_i64()) {
                if pid > 0 && alive(pid) {
                    // SAFETY: kill(2) on a switch this test started.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
    }
}

fn net_xml(name: &str, uplink: Option<&str>) -> String {
    let up = uplink.map_or(String::new(), |u| format!("<uplink dev='{u}'/>"));
    format!("<network><name>{name}</name><virtualport type='virtnet-vswitch'/>{up}</network>")
}

fn define_net(d: &TestDaemon, name: &str, uplink: Option<&str>) {
    let (s, v) = d.call(
        "POST",
        "/v1/networks",
        Some("application/xml"),
        &net_xml(name, uplink),
    );
    assert!(s == 201 || s == 200, "{v}");
}

fn tap_nic(mac: &str, dev: &str) -> String {
    format!(
        "<interface type='ethernet'><mac address='{mac}'/><target dev='{dev}' managed='no'/>\
         <model type='virtio'/></interface>"
    )
}

fn net(d: &TestDaemon, name: &str) -> Value {
    let (s, v) = d.get(&format!("/v1/networks/{name}"));
    assert_eq!(s, 200, "{v}");
    v
}

fn autostart(d: &TestDaemon, name: &str, body: &str) -> (u16, Value) {
    let ct = (!body.is_empty()).then_some("application/json");
    d.call("POST", &format!("/v1/networks/{name}/autostart"), ct, body)
}

fn assert_in_use_by(v: &Value, holder: &str) {
    assert_eq!(v["error"]["kind"], "resource_in_use", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains(holder), "{m}");
}

#[test]
fn uplink_tap_is_owned_by_its_network() {
    common::vswitch();
    // Not root: with_netns prints why and skips.
    let _ = with_netns(|| {
        let tmp = tempfile::tempdir().unwrap();
        let _switches = Switches(tmp.path().join("run"));
        let mut d = TestDaemon::start(tmp.path());
        define_net(&d, "sw0", Some("sw0-up"));
        let (s, v) = d.post("/v1/networks/sw0/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());
        assert!(links().contains(&"sw0-up".to_string()), "{:?}", links());

        // define: refused, naming the network.
        let (s, v) = d.define(&common::domain_xml(
            "a",
            &tap_nic("52:54:00:30:00:01", "sw0-up"),
        ));
        assert_eq!(s, 409, "{v}");
        assert_in_use_by(&v, "network 'sw0'");
        assert_eq!(d.get("/v1/domains/a").0, 404);
        // attach (config): refused, the definition unchanged.
        let (s, v) = d.define(&common::domain_xml("b", ""));
        assert_eq!(s, 201, "{v}");
        let (s, v) = d.call(
            "POST",
            "/v1/domains/b/devices",
            Some("application/json"),
            &json!({"xml": tap_nic("52:54:00:30:00:02", "sw0-up"), "config": true}).to_string(),
        );
        assert_eq!(s, 409, "{v}");
        assert_in_use_by(&v, "network 'sw0'");
        let (_, x) = d.get("/v1/domains/b/xml");
        assert!(!x.to_string().contains("sw0-up"), "{x}");

        // A daemon restart adopts the switch, and the uplink stays owned.
        d.stop();
        d.restart();
        assert!(d.log().contains("adopted a running switch"));
        let (s, v) = d.define(&common::domain_xml(
            "a",
            &tap_nic("52:54:00:30:00:01", "sw0-up"),
        ));
        assert_eq!(s, 409, "after restart: {v}");
        assert_in_use_by(&v, "network 'sw0'");

        // net-start refused while a VM holds the tap: nothing left behind.
        let (s, v) = d.define(&common::domain_xml(
            "c",
            &tap_nic("52:54:00:30:00:03", "sw1-up"),
        ));
        assert_eq!(s, 201, "{v}");
        define_net(&d, "sw1", Some("sw1-up"));
        let (s, v) = d.post("/v1/networks/sw1/start");
        assert_eq!(s, 409, "{v}");
        assert_in_use_by(&v, "VM 'c'");
        assert_eq!(net(&d, "sw1")["state"], "inactive");
        assert!(!links().contains(&"sw1-up".to_string()), "{:?}", links());
        assert!(!tmp.path().join("run/networks/sw1").exists());
        assert!(!tmp.path().join("run/networks/sw1.json").exists());
        // Once the VM lets go, the network starts.
        assert_eq!(d.call("DELETE", "/v1/domains/c", None, "").0, 200);
        let (s, v) = d.post("/v1/networks/sw1/start");
        assert_eq!(s, 200, "{v}");
        // Two networks on one uplink tap: refused naming the first.
        define_net(&d, "sw2", Some("sw1-up"));
        let (s, v) = d.post("/v1/networks/sw2/start");
        assert_eq!(s, 409, "{v}");
        assert_in_use_by(&v, "network 'sw1'");

        // Redefined while running with another uplink: the switch keeps (and owns) the old
        // one, also when it crashes and is restarted; the new one applies at the next start.
        define_net(&d, "sw0", Some("sw0-new"));
        let pid = net(&d, "sw0")["pid"].as_i64().unwrap();
        // SAFETY: kill(2) on the switch's pid.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        common::e2e::wait_until(
            "the switch restarted",
            std::time::Duration::from_secs(20),
            || net(&d, "sw0")["restarts"] == 1,
        );
        let i = net(&d, "sw0");
        assert_eq!(i["uplink"], "sw0-up", "{i}");
        assert!(links().contains(&"sw0-up".to_string()), "{:?}", links());
        assert!(!links().contains(&"sw0-new".to_string()), "{:?}", links());
        let (s, v) = d.define(&common::domain_xml(
            "a",
            &tap_nic("52:54:00:30:00:01", "sw0-up"),
        ));
        assert_eq!(s, 409, "{v}");
        assert_in_use_by(&v, "network 'sw0'");

        // net-destroy frees the tap.
        for n in ["sw0", "sw1"] {
            let (s, v) = d.post(&format!("/v1/networks/{n}/destroy"));
            assert_eq!(s, 200, "{v}");
        }
        let (s, v) = d.define(&common::domain_xml(
            "a",
            &tap_nic("52:54:00:30:00:01", "sw0-up"),
        ));
        assert_eq!(s, 201, "{v}");
        assert!(!links().contains(&"sw0-up".to_string()), "{:?}", links());
        // The next start takes the new definition's uplink.
        let (s, v) = d.post("/v1/networks/sw0/start");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["uplink"], "sw0-new", "{v}");
        assert!(links().contains(&"sw0-new".to_string()), "{:?}", links());
        let (s, v) = d.post("/v1/networks/sw0/destroy");
        assert_eq!(s, 200, "{v}");
        d.stop();
    });
}

#[test]
fn net_autostart_persists_and_starts_networks_with_the_daemon() {
    common::vswitch();
    // Not root: with_netns prints why and skips.
    let _ = with_netns(|| {
        let tmp = tempfile::tempdir().unwrap();
        let _switches = Switches(tmp.path().join("run"));
        let mut d = TestDaemon::start(tmp.path());
        define_net(&d, "n1", None);
        define_net(&d, "n2", None);
        define_net(&d, "n3", Some("n3-up"));
        assert_eq!(net(&d, "n1")["autostart"], false);

        // Enable (empty body, or {"enable": true}); unknown network, bad body refused.
        let (s, v) = autostart(&d, "n1", "");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["autostart"], true, "{v}");
        let (s, v) = autostart(&d, "n3", r#"{"enable": true}"#);
        assert_eq!((s, &v["autostart"]), (200, &json!(true)), "{v}");
        let (s, v) = autostart(&d, "nope", "");
        assert_eq!(
            (s, v["error"]["kind"].as_str()),
            (404, Some("no_such_network"))
        );
        let (s, v) = autostart(&d, "n2", r#"{"enabled": true}"#);
        assert_eq!(s, 400, "{v}");
        assert_eq!(net(&d, "n2")["autostart"], false);
        let (_, list) = d.get("/v1/networks?all=true");
        let flags: Vec<(String, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap().to_string(),
                    n["autostart"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            flags,
            [
                ("n1".into(), true),
                ("n2".into(), false),
                ("n3".into(), true)
            ]
        );
        // Marking does not start.
        assert_eq!(net(&d, "n1")["state"], "inactive");

        // n3's uplink is a VM's tap: at daemon start the VM definitions are known first, so
        // n3 is not started (logged); n1 is started, n2 is not.
        let (s, v) = d.define(&common::domain_xml(
            "holder",
            &tap_nic("52:54:00:30:00:09", "n3-up"),
        ));
        assert_eq!(s, 201, "{v}");
        d.stop();
        d.restart();
        let n1 = net(&d, "n1");
        assert_eq!(n1["state"], "active", "{n1}\n{}", d.log());
        assert!(alive(n1["pid"].as_i64().unwrap()));
        assert_eq!(n1["autostart"], true);
        assert_eq!(net(&d, "n2")["state"], "inactive");
        let n3 = net(&d, "n3");
        assert_eq!(n3["state"], "inactive", "{n3}");
        assert!(
            d.log().contains("cannot autostart the network"),
            "{}",
            d.log()
        );
        assert!(!links().contains(&"n3-up".to_string()), "{:?}", links());
        assert!(d.get("/v1/domains/holder").0 == 200);

        // Disable: kept across restarts; an active network stays active.
        let (s, v) = autostart(&d, "n1", r#"{"enable": false}"#);
        assert_eq!((s, &v["autostart"]), (200, &json!(false)), "{v}");
        assert_eq!(v["state"], "active");
        let (s, v) = d.post("/v1/networks/n1/destroy");
        assert_eq!(s, 200, "{v}");
        d.stop();
        d.restart();
        assert_eq!(net(&d, "n1")["state"], "inactive");
        assert_eq!(net(&d, "n1")["autostart"], false);
        assert_eq!(net(&d, "n3")["autostart"], true);

        // net-undefine forgets it: a new definition of that name is not autostarted.
        assert_eq!(d.call("DELETE", "/v1/networks/n3", None, "").0, 200);
        assert!(!tmp.path().join("state/networks/autostart/n3").exists());
        define_net(&d, "n3", None);
        assert_eq!(net(&d, "n3")["autostart"], false);
        d.stop();
    });
}
