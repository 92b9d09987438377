//! virtnetd end to end with real QEMU (TCG) and the test guest, in a private network
//! namespace: define, start (the guest answers ping over its bridge NIC), shutdown, destroy,
//! QEMU dying on its own, and the daemon killed with SIGKILL and restarted (with the VM still
//! running, and with the VM dead meanwhile). After each stop nothing is left: no QEMU, no tap,
//! no live status, no run directory, no socket.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestDaemon;
use serde_json::Value;
use virtnet_testkit::{bridge_nic, ip, links, ping, with_netns, TestDomain};

const BOOT: Duration = Duration::from_secs(120);

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state(d: &TestDaemon, name: &str) -> String {
    let (s, v) = d.get(&format!("/v1/domains/{name}"));
    assert_eq!(s, 200, "{v}");
    v["state"].as_str().unwrap().to_string()
}

/// Starts `name`; returns QEMU's pid and the tap's name.
fn start(d: &TestDaemon, name: &str) -> (u64, String) {
    let (s, v) = d.post(&format!("/v1/domains/{name}/start"));
    assert_eq!(s, 200, "start: {v}\n{}", d.log());
    assert_eq!(v["state"], "running", "{v}");
    let pid = v["pid"].as_u64().unwrap();
    virtnet_testkit::assert_qemu_confined(pid as u32);
    let (s, ifl) = d.get(&format!("/v1/domains/{name}/interfaces"));
    assert_eq!(s, 200, "{ifl}");
    assert_eq!(ifl["inactive"], false);
    let tap = ifl["interfaces"][0]["interface"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(links().contains(&tap), "tap {tap} exists");
    (pid, tap)
}

/// Nothing of a stopped VM remains.
fn assert_clean(d: &TestDaemon, name: &str, pid: u64, tap: &str, serial: &Path) {
    wait_until("QEMU to be gone", Duration::from_secs(15), || {
        !common::e2e::alive(pid)
    });
    assert!(!links().contains(&tap.to_string()), "tap {tap} left behind");
    assert!(
        !d.base.join(format!("run/{name}.json")).exists(),
        "live status left"
    );
    assert!(
        !d.base.join(format!("run/vms/{name}")).exists(),
        "run dir left"
    );
    assert!(!serial.exists(), "serial socket left");
    assert_eq!(state(d, name), "shut_off");
    let (_, x) = d.get(&format!("/v1/domains/{name}/xml"));
    assert!(!x["xml"].as_str().unwrap().contains(tap), "live XML gone");
}

#[test]
fn lifecycle_with_real_qemu() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        ip("link add br0 type bridge");
        ip("addr add 10.0.3.1/24 dev br0");
        ip("link set br0 up");
        let tmp = tempfile::tempdir().unwrap();
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:03:02";
        let xml = TestDomain::new("life", &serial)
            .nic(&bridge_nic(mac, "br0"), mac, Some("10.0.3.2/24"))
            .xml(guest);
        let (s, v) = d.define(&xml);
        assert_eq!(s, 201, "{v}");

        // A start that fails (no such bridge) says why and leaves nothing behind.
        let links_before = links();
        let bad_serial = tmp.path().join("bad-serial.sock");
        let bad = TestDomain::new("nobridge", &bad_serial)
            .nic(
                &bridge_nic("52:54:00:00:03:09", "nobr0"),
                "52:54:00:00:03:09",
                None,
            )
            .xml(guest);
        assert_eq!(d.define(&bad).0, 201);
        let (s, v) = d.post("/v1/domains/nobridge/start");
        // A bridge the definition names but the host lacks is the user's to fix: 4xx.
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error"]["kind"], "refused", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("nobr0"),
            "{v}"
        );
        assert_eq!(state(&d, "nobridge"), "shut_off");
        assert_eq!(links(), links_before, "nothing left on the host");
        assert!(!tmp.path().join("run/nobridge.json").exists());
        assert!(!tmp.path().join("run/vms/nobridge").exists());
        assert!(!bad_serial.exists());
        assert_eq!(d.call("DELETE", "/v1/domains/nobridge", None, "").0, 200);

        // start → ping → graceful shutdown.
        let (pid, tap) = start(&d, "life");
        let (_, list) = d.get("/v1/domains");
        let id = list["domains"][0]["id"]
            .as_u64()
            .expect("a running VM has an id");
        let details = ip(&format!("-d link show {tap}"));
        assert!(details.contains("master br0"), "{details}");
        let (_, live) = d.get("/v1/domains/life/xml");
        let live = live["xml"].as_str().unwrap();
        assert!(live.contains(&format!("<target dev='{tap}'/>")), "{live}");
        assert!(live.contains(&format!("id='{id}'")), "{live}");
        let status: Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("run/life.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(status["pid"].as_u64(), Some(pid));
        assert_eq!(status["host_resources"]["nics"][0]["name"], tap.as_str());
        // Another VM with the same MAC: defined with a warning, refused at start while this
        // one runs (nothing of it is created).
        let clash_serial = tmp.path().join("clash-serial.sock");
        let clash = TestDomain::new("clash", &clash_serial)
            .nic(&bridge_nic(mac, "br0"), mac, None)
            .xml(guest);
        let (s, v) = d.define(&clash);
        assert_eq!(s, 201, "{v}");
        assert!(
            v["warnings"][0].as_str().unwrap().contains("VM 'life'"),
            "{v}"
        );
        let (s, v) = d.post("/v1/domains/clash/start");
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error"]["kind"], "resource_in_use", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("MAC address {mac}")),
            "{v}"
        );
        assert_eq!(state(&d, "clash"), "shut_off");
        assert!(!clash_serial.exists());
        assert_eq!(d.call("DELETE", "/v1/domains/clash", None, "").0, 200);
        // The tap name chosen at start belongs to this VM while it runs.
        let (s, v) = d.define(&common::domain_xml(
            "tapclash",
            &format!("<interface type='ethernet'><target dev='{tap}'/></interface>"),
        ));
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("VM 'life'"),
            "{v}"
        );
        // Starting twice is refused, saying what to do instead (not "running" twice).
        let (s, v) = d.post("/v1/domains/life/start");
        assert_eq!(s, 409, "{v}");
        assert_eq!(
            v["error"]["message"],
            "VM 'life' is running: nothing to start; `virtnet shutdown life` stops it",
            "{v}"
        );
        // Undefining a running VM is refused.
        assert_eq!(d.call("DELETE", "/v1/domains/life", None, "").0, 409);
        common::e2e::wait_ping("10.0.3.2", BOOT);

        // One QMP command passed through.
        let (s, v) = d.call(
            "POST",
            "/v1/domains/life/qmp",
            Some("application/json"),
            "{\"execute\": \"query-status\"}",
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["return"]["status"], "running", "{v}");
        let (s, v) = d.call(
            "POST",
            "/v1/domains/life/qmp",
            Some("application/json"),
            "{\"execute\": \"no-such-command\"}",
        );
        // The user's command, refused by QEMU: the user's error, with QEMU's class.
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"]["kind"], "qmp_error", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("CommandNotFound"),
            "{v}"
        );

        // Link down on the running VM: the guest stops answering; the live XML says down, the
        // definition does not. Up again: it answers.
        let set = |body: &str| {
            d.call(
                "POST",
                &format!("/v1/domains/life/interfaces/{mac}/link"),
                Some("application/json"),
                body,
            )
        };
        let (s, v) = set("{\"state\": \"down\"}");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["live"], true);
        assert_eq!(v["config"], false);
        assert!(
            !ping("10.0.3.2", 2).0,
            "the guest answers with its link down"
        );
        let (_, live) = d.get("/v1/domains/life/xml");
        assert!(live["xml"]
            .as_str()
            .unwrap()
            .contains("<link state='down'/>"));
        let (_, inactive) = d.get("/v1/domains/life/xml?inactive=true");
        assert!(!inactive["xml"].as_str().unwrap().contains("<link"));
        let status = std::fs::read_to_string(tmp.path().join("run/life.json")).unwrap();
        assert!(
            status.contains("link state='down'"),
            "live status keeps the live XML"
        );
        let (s, v) = set("{\"state\": \"up\", \"live\": true}");
        assert_eq!(s, 200, "{v}");
        common::e2e::wait_ping("10.0.3.2", BOOT);
        // --config on a running VM changes the definition only.
        let (s, v) = set("{\"state\": \"down\", \"config\": true}");
        assert_eq!(s, 200, "{v}");
        let (_, inactive) = d.get("/v1/domains/life/xml?inactive=true");
        assert!(inactive["xml"]
            .as_str()
            .unwrap()
            .contains("<link state='down'/>"));
        assert!(ping("10.0.3.2", 1).0, "the running guest is unaffected");
        assert_eq!(set("{\"state\": \"up\", \"config\": true}").0, 200);

        let (s, v) = d.call(
            "POST",
            "/v1/domains/life/shutdown",
            Some("application/json"),
            "{\"timeout_secs\": 60}",
        );
        assert_eq!(s, 200, "{v}\n{}", d.log());
        assert_eq!(v["stopped_by"], "powerdown", "{v}");
        assert_eq!(v["leftovers"], serde_json::json!([]));
        assert_clean(&d, "life", pid, &tap, &serial);

        // start → destroy.
        let (pid, tap) = start(&d, "life");
        let (s, v) = d.post("/v1/domains/life/destroy");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["stopped_by"], "sigterm", "{v}");
        assert_clean(&d, "life", pid, &tap, &serial);

        // QEMU killed from outside while the daemon runs: marked shut off, cleaned up.
        let (pid, tap) = start(&d, "life");
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        wait_until(
            "the VM to be marked shut off",
            Duration::from_secs(15),
            || state(&d, "life") == "shut_off",
        );
        assert_clean(&d, "life", pid, &tap, &serial);

        // The daemon is killed while the VM runs; restarted, it finds the VM, and destroy
        // cleans up.
        let (pid, tap) = start(&d, "life");
        d.kill9();
        assert!(common::e2e::alive(pid), "QEMU survives its daemon");
        d.restart();
        let (s, info) = d.get("/v1/domains/life");
        assert_eq!(s, 200);
        assert_eq!(info["state"], "running", "{info}\n{}", d.log());
        assert_eq!(info["pid"].as_u64(), Some(pid));
        let (_, ifl) = d.get("/v1/domains/life/interfaces");
        assert_eq!(ifl["interfaces"][0]["interface"], tap.as_str());
        let (s, v) = d.post("/v1/domains/life/destroy");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["leftovers"], serde_json::json!([]), "{v}");
        assert_clean(&d, "life", pid, &tap, &serial);

        // A recovered VM whose QEMU then dies is noticed too (pidfd).
        let (pid, tap) = start(&d, "life");
        d.kill9();
        d.restart();
        assert_eq!(state(&d, "life"), "running");
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        wait_until(
            "the recovered VM to be marked shut off",
            Duration::from_secs(15),
            || state(&d, "life") == "shut_off",
        );
        assert_clean(&d, "life", pid, &tap, &serial);

        // QEMU dies while no daemon runs: the next daemon cleans up after it.
        let (pid, tap) = start(&d, "life");
        d.kill9();
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        wait_until("QEMU to die", Duration::from_secs(15), || {
            !common::e2e::alive(pid)
        });
        d.restart();
        assert_clean(&d, "life", pid, &tap, &serial);

        assert_eq!(d.call("DELETE", "/v1/domains/life", None, "").0, 200);
        d.stop();
    });
}
