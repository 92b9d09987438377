//! The API of the real virtnetd binary on a temporary socket and store: define, list, dumpxml,
//! undefine; bad input that must change nothing; the owner registry; restarts.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Barrier};

use common::{domain_xml, http, vhostuser_nic, TestDaemon};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn define_list_dumpxml_undefine() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode");

    let xml = domain_xml("vm1", "<interface type='ethernet'/>");
    let (s, v) = d.define(&xml);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["name"], "vm1");
    assert_eq!(v["created"], true);
    let uuid = v["uuid"].as_str().unwrap().to_string();

    // JSON form of define replaces it (same UUID kept), answering 200.
    let body = serde_json::json!({ "xml": xml }).to_string();
    let (s, v) = d.call("POST", "/v1/domains", Some("application/json"), &body);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["created"], false);
    assert_eq!(v["uuid"], uuid.as_str());

    let (s, v) = d.get("/v1/domains");
    assert_eq!(s, 200);
    assert_eq!(v["domains"][0]["name"], "vm1");
    assert_eq!(v["domains"][0]["state"], "shut_off");
    assert_eq!(v["domains"][0]["persistent"], true);

    let (s, v) = d.get("/v1/domains/vm1/xml?inactive=true");
    assert_eq!(s, 200, "{v}");
    let dumped = v["xml"].as_str().unwrap();
    assert!(dumped.contains(&format!("<uuid>{uuid}</uuid>")), "{dumped}");
    assert!(
        dumped.contains("<mac address='52:54:00:"),
        "a MAC was assigned: {dumped}"
    );
    let stored = std::fs::read_to_string(dir.path().join("state/domains/vm1.xml")).unwrap();
    assert_eq!(stored, dumped, "dumpxml prints the stored canonical XML");
    // The raw XML form.
    let (s, raw) = http(
        &d.socket,
        "GET",
        "/v1/domains/vm1/xml",
        &[("Accept", "application/xml")],
        b"",
    );
    assert_eq!(s, 200);
    assert_eq!(raw, dumped);

    let (s, v) = d.get("/v1/domains/vm1");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["memory_kib"], 65536);
    assert_eq!(v["interfaces"], 1);

    let (s, v) = d.get("/v1/domains/vm1/interfaces");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["interfaces"][0]["type"], "ethernet");
    assert_eq!(v["inactive"], true);

    let (s, v) = d.call("DELETE", "/v1/domains/vm1", None, "");
    assert_eq!(s, 200, "{v}");
    assert!(!dir.path().join("state/domains/vm1.xml").exists());
    assert!(d.names().is_empty());
    let (s, v) = d.call("DELETE", "/v1/domains/vm1", None, "");
    assert_eq!(s, 404, "{v}");
}

#[test]
fn bad_inputs_change_nothing() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let (s, v) = d.define(&domain_xml("keep", "<interface type='ethernet'/>"));
    assert_eq!(s, 201, "{v}");
    let before = d.store_files();
    let check =
        |what: &str, (status, v): (u16, serde_json::Value), want: u16, kind: &str, needle: &str| {
            assert_eq!(status, want, "{what}: {v}");
            assert_eq!(v["error"]["kind"], kind, "{what}: {v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains(needle),
                "{what}: message lacks '{needle}': {msg}"
            );
            assert_eq!(d.store_files(), before, "{what} changed the store");
            assert_eq!(d.names(), ["keep"], "{what}");
        };
    // Malformed XML: the message has line and column.
    check(
        "malformed XML",
        d.define("<domain type='qemu'>\n  <name>x</name>\n  <memory>1</oops>\n</domain>"),
        400,
        "invalid_xml",
        "3:",
    );
    // Valid XML that cannot work: line numbers too.
    check(
        "two NICs on one vhost-user socket",
        d.define(&domain_xml(
            "two",
            &format!(
                "{}\n    {}",
                vhostuser_nic("52:54:00:00:00:01", "/tmp/same.sock"),
                vhostuser_nic("52:54:00:00:00:02", "/tmp/same.sock")
            ),
        )),
        400,
        "invalid_xml",
        "/tmp/same.sock",
    );
    // Redefining an existing VM with bad XML leaves its file as it was.
    check(
        "redefine with an invalid interface",
        d.define(&domain_xml("keep", "<interface type='bridge'/>")),
        400,
        "invalid_xml",
        "source",
    );
    check(
        "unknown VM",
        d.get("/v1/domains/nope"),
        404,
        "no_such_vm",
        "'nope'",
    );
    check(
        "undefine unknown VM",
        d.call("DELETE", "/v1/domains/nope", None, ""),
        404,
        "no_such_vm",
        "nope",
    );
    check(
        "start unknown VM",
        d.post("/v1/domains/nope/start"),
        404,
        "no_such_vm",
        "nope",
    );
    check(
        "console without Upgrade",
        d.post("/v1/domains/nope/console"),
        400,
        "bad_request",
        "Upgrade: virtnet-console",
    );
    check(
        "malformed JSON",
        d.call(
            "POST",
            "/v1/domains",
            Some("application/json"),
            "{\"xml\": ",
        ),
        400,
        "bad_request",
        "invalid JSON",
    );
    check(
        "missing field",
        d.call("POST", "/v1/domains", Some("application/json"), "{}"),
        400,
        "bad_request",
        "missing field `xml`",
    );
    check(
        "unknown field",
        d.call(
            "POST",
            "/v1/domains",
            Some("application/json"),
            "{\"xml\":\"<domain/>\",\"force\":true}",
        ),
        400,
        "bad_request",
        "unknown field `force`",
    );
    check(
        "wrong content type",
        d.call("POST", "/v1/domains", Some("text/plain"), "<domain/>"),
        415,
        "unsupported_media_type",
        "text/plain",
    );
    check(
        "no content type",
        d.call("POST", "/v1/domains", None, "<domain/>"),
        415,
        "unsupported_media_type",
        "application/xml",
    );
    check(
        "bad shutdown body",
        d.call(
            "POST",
            "/v1/domains/keep/shutdown",
            Some("application/json"),
            "{\"timeout\": 1}",
        ),
        400,
        "bad_request",
        "unknown field `timeout`",
    );
    check(
        "name that is no file name",
        d.define(&domain_xml("../etc", "")),
        400,
        "invalid_xml",
        "'/'",
    );
    check(
        "bad query",
        d.get("/v1/domains/keep/xml?inactive=perhaps"),
        400,
        "bad_request",
        "inactive",
    );
    check(
        "no route",
        d.get("/v1/nothing"),
        404,
        "no_route",
        "/v1/nothing",
    );
    check(
        "wrong method",
        d.call("PUT", "/v1/domains", None, ""),
        405,
        "method_not_allowed",
        "GET, POST",
    );
    check(
        "QMP on a VM that is not running",
        d.call(
            "POST",
            "/v1/domains/keep/qmp",
            Some("application/json"),
            "{\"execute\": \"query-status\"}",
        ),
        409,
        "invalid_state",
        "running VM",
    );
    check(
        "QMP arguments that are not an object",
        d.call(
            "POST",
            "/v1/domains/keep/qmp",
            Some("application/json"),
            "{\"execute\": \"x\", \"arguments\": 3}",
        ),
        400,
        "bad_request",
        "object",
    );
    check(
        "shutdown of a VM that is not running",
        d.post("/v1/domains/keep/shutdown"),
        409,
        "invalid_state",
        "VM 'keep' is shut off: nothing to stop; `virtnet start keep` starts it",
    );
    // A UUID change on redefine is refused.
    let other_uuid = domain_xml("keep", "").replace(
        "<name>keep</name>",
        "<name>keep</name><uuid>00000000-0000-4000-8000-000000000001</uuid>",
    );
    check(
        "UUID change",
        d.define(&other_uuid),
        409,
        "conflict",
        "UUID",
    );
}

#[test]
fn a_vhost_user_socket_has_one_owner() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let path = dir.path().join("vu.sock");
    let path = path.to_str().unwrap();
    let (s, v) = d.define(&domain_xml(
        "first",
        &vhostuser_nic("52:54:00:00:10:01", path),
    ));
    assert_eq!(s, 201, "{v}");
    // Another spelling of the same path is the same socket.
    let other_spelling = path.replace("/vu.sock", "/./vu.sock");
    let (s, v) = d.define(&domain_xml(
        "second",
        &vhostuser_nic("52:54:00:00:10:02", &other_spelling),
    ));
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["kind"], "resource_in_use");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("VM 'first'"), "{msg}");
    assert!(msg.contains("interface 52:54:00:00:10:01"), "{msg}");
    assert!(msg.contains(path), "{msg}");
    assert_eq!(d.names(), ["first"]);
    assert!(!dir.path().join("state/domains/second.xml").exists());

    // Redefining the owner keeps it; moving it to another path frees the first one.
    let (s, v) = d.define(&domain_xml(
        "first",
        &vhostuser_nic("52:54:00:00:10:01", path),
    ));
    assert_eq!(s, 200, "{v}");
    let moved = path.replace("vu.sock", "vu2.sock");
    let (s, v) = d.define(&domain_xml(
        "first",
        &vhostuser_nic("52:54:00:00:10:01", &moved),
    ));
    assert_eq!(s, 200, "{v}");
    let (s, v) = d.define(&domain_xml(
        "second",
        &vhostuser_nic("52:54:00:00:10:02", path),
    ));
    assert_eq!(s, 201, "{v}");
    // Undefine frees it as well.
    let (s, v) = d.define(&domain_xml(
        "third",
        &vhostuser_nic("52:54:00:00:10:03", &moved),
    ));
    assert_eq!(s, 409, "{v}");
    assert_eq!(d.call("DELETE", "/v1/domains/first", None, "").0, 200);
    let (s, v) = d.define(&domain_xml(
        "third",
        &vhostuser_nic("52:54:00:00:10:03", &moved),
    ));
    assert_eq!(s, 201, "{v}");

    // Tap names and host PCI devices too.
    let tap = |name: &str, mac: &str| {
        domain_xml(name, &format!("<interface type='ethernet'><mac address='{mac}'/><target dev='vt-own0'/></interface>"))
    };
    assert_eq!(d.define(&tap("tap1", "52:54:00:00:11:01")).0, 201);
    let (s, v) = d.define(&tap("tap2", "52:54:00:00:11:02"));
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tap device vt-own0"),
        "{v}"
    );
    // A repeated MAC in two definitions is only a warning.
    let (s, v) = d.define(&domain_xml(
        "macdup",
        "<interface type='ethernet'><mac address='52:54:00:00:11:01'/></interface>",
    ));
    assert_eq!(s, 201, "{v}");
    let w = v["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("52:54:00:00:11:01") && w.contains("'tap1'"),
        "{w}"
    );
}

#[test]
fn twenty_racing_defines_one_winner() {
    let dir = tmp();
    let d = Arc::new(TestDaemon::start(dir.path()));
    let path = dir.path().join("race.sock");
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let (d, barrier) = (d.clone(), barrier.clone());
            let xml = domain_xml(
                &format!("racer{i}"),
                &vhostuser_nic(&format!("52:54:00:00:20:{i:02x}"), path.to_str().unwrap()),
            );
            std::thread::spawn(move || {
                barrier.wait();
                d.define(&xml)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].1["name"].as_str().unwrap().to_string();
    for (s, v) in &results {
        if *s != 201 {
            assert_eq!(*s, 409, "{v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(&format!("VM '{winner}'")), "{msg}");
        }
    }
    assert_eq!(d.names(), std::slice::from_ref(&winner));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("state/domains"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [format!("{winner}.xml")]);
}

#[test]
fn restart_reloads_and_survives_damage() {
    let dir = tmp();
    let mut d = TestDaemon::start(dir.path());
    assert_eq!(
        d.define(&domain_xml("a", "<interface type='ethernet'/>")).0,
        201
    );
    assert_eq!(d.define(&domain_xml("b", "")).0, 201);
    let (_, before) = d.get("/v1/domains/a/xml");
    d.stop();
    assert!(!d.socket.exists(), "socket removed at exit");

    let domains = dir.path().join("state/domains");
    // A crash between writing the temp file and the rename: the old file stays intact.
    std::fs::write(
        domains.join(".a.xml.tmp-99999-0"),
        "<domain type='qemu'><name>a</na",
    )
    .unwrap();
    // A definition damaged by hand, one that is not UTF-8, a status that is not JSON.
    std::fs::write(
        domains.join("broken.xml"),
        "<domain type='qemu'>\n<name>broken</name>\n<memory>x</memory>\n</domain>",
    )
    .unwrap();
    std::fs::write(domains.join("binary.xml"), [0xffu8, 0xfe, 0]).unwrap();
    std::fs::write(dir.path().join("run/ghost.json"), "{ nope").unwrap();

    d.restart();
    assert_eq!(d.names(), ["a", "b", "binary", "broken", "ghost"]);
    let (_, after) = d.get("/v1/domains/a/xml");
    assert_eq!(before, after, "definition reloaded unchanged");
    assert!(
        !domains.join(".a.xml.tmp-99999-0").exists(),
        "stray temp file removed"
    );

    let (_, list) = d.get("/v1/domains");
    let find = |n: &str| {
        list["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap()
            .clone()
    };
    let broken = find("broken");
    let p = broken["problem"].as_str().unwrap();
    assert!(p.contains("broken.xml") && p.contains("3:"), "{p}");
    assert!(find("binary")["problem"]
        .as_str()
        .unwrap()
        .contains("not UTF-8"));
    assert_eq!(find("ghost")["state"], "unknown");
    assert!(find("ghost")["problem"]
        .as_str()
        .unwrap()
        .contains("ghost.json"));

    // A broken VM cannot start, says why, and can be undefined or redefined.
    let (s, v) = d.post("/v1/domains/broken/start");
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["kind"], "broken_definition");
    assert_eq!(d.define(&domain_xml("broken", "")).0, 200);
    let (_, v) = d.get("/v1/domains/broken");
    assert!(v["problem"].is_null(), "{v}");
    assert_eq!(d.call("DELETE", "/v1/domains/binary", None, "").0, 200);
    assert!(!domains.join("binary.xml").exists());
    // An unreadable live status is discarded by destroy.
    assert_eq!(d.post("/v1/domains/ghost/destroy").0, 200);
    assert!(!dir.path().join("run/ghost.json").exists());
    assert_eq!(d.names(), ["a", "b", "broken"]);
}

#[test]
fn one_daemon_per_state_dir() {
    let dir = tmp();
    let _d = TestDaemon::start(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtnetd"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--run-dir")
        .arg(dir.path().join("run2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another virtnetd uses the state directory"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtnetd"))
        .arg("--state-dir")
        .arg(dir.path().join("state2"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another virtnetd listens on"), "{err}");
}

#[test]
fn set_link_in_the_definition() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let nic = "<interface type='ethernet'><mac address='52:54:00:00:30:01'/><target dev='vt-link0'/></interface>";
    assert_eq!(d.define(&domain_xml("l", nic)).0, 201);
    let set = |key: &str, body: &str| {
        d.call(
            "POST",
            &format!("/v1/domains/l/interfaces/{key}/link"),
            Some("application/json"),
            body,
        )
    };
    // Shut off: no flag means the definition.
    let (s, v) = set("52:54:00:00:30:01", "{\"state\": \"down\"}");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["config"], true);
    assert_eq!(v["live"], false);
    let (_, x) = d.get("/v1/domains/l/xml?inactive=true");
    assert!(
        x["xml"].as_str().unwrap().contains("<link state='down'/>"),
        "{x}"
    );
    let stored = std::fs::read_to_string(dir.path().join("state/domains/l.xml")).unwrap();
    assert!(stored.contains("<link state='down'/>"));
    // By host device name.
    let (s, v) = set("vt-link0", "{\"state\": \"up\", \"config\": true}");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mac"], "52:54:00:00:30:01");
    let (_, ifl) = d.get("/v1/domains/l/interfaces");
    assert_eq!(ifl["interfaces"][0]["link"], "up");

    let before = d.store_files();
    let (s, v) = set("vt-link0", "{\"state\": \"down\", \"live\": true}");
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("--config"),
        "{v}"
    );
    let (s, v) = set("52:54:00:99:99:99", "{\"state\": \"down\"}");
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["kind"], "no_such_interface");
    let (s, v) = set("vt-link0", "{\"state\": \"sideways\"}");
    assert_eq!(s, 400, "{v}");
    let (s, v) = set("vt-link0", "");
    assert_eq!(s, 400, "{v}");
    let (s, v) = d.call(
        "POST",
        "/v1/domains/nope/interfaces/x/link",
        Some("application/json"),
        "{\"state\":\"up\"}",
    );
    assert_eq!(s, 404, "{v}");
    assert_eq!(
        d.store_files(),
        before,
        "refused requests changed the store"
    );
}

/// Every endpoint the router knows is in openapi.yaml and the other way round.
#[test]
fn openapi_lists_every_endpoint() {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let mut documented: Vec<String> = Vec::new();
    let mut path = String::new();
    for line in spec.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = format!("/{p}");
        } else if let Some(m) = ["get", "post", "delete", "put"]
            .iter()
            .find(|m| line == format!("    {m}:"))
        {
            documented.push(format!("{} {path}", m.to_uppercase()));
        }
    }
    documented.sort();
    let mut routed: Vec<String> = [
        "GET /metrics",
        "GET /v1/version",
        "GET /v1/domains",
        "POST /v1/domains",
        "GET /v1/domains/{name}",
        "DELETE /v1/domains/{name}",
        "GET /v1/domains/{name}/xml",
        "GET /v1/domains/{name}/interfaces",
        "GET /v1/domains/{name}/interfaces/{iface}/stats",
        "GET /v1/domains/{name}/addresses",
        "POST /v1/domains/{name}/interfaces/{iface}/link",
        "POST /v1/domains/{name}/start",
        "POST /v1/domains/{name}/shutdown",
        "POST /v1/domains/{name}/destroy",
        "POST /v1/domains/{name}/migrate",
        "GET /v1/domains/{name}/migrate",
        "POST /v1/domains/{name}/migrate/prepare",
        "POST /v1/domains/{name}/migrate/finish",
        "POST /v1/domains/{name}/migrate/abort",
        "POST /v1/domains/{name}/migrate/cancel",
        "POST /v1/domains/{name}/qmp",
        "POST /v1/domains/{name}/console",
        "POST /v1/domains/{name}/devices",
        "POST /v1/domains/{name}/devices/detach",
        "POST /v1/domains/{name}/devices/update",
        "POST /v1/domains/{name}/chardevs/{device}",
        "GET /v1/networks",
        "POST /v1/networks",
        "GET /v1/networks/{name}",
        "DELETE /v1/networks/{name}",
        "GET /v1/networks/{name}/xml",
        "POST /v1/networks/{name}/start",
        "POST /v1/networks/{name}/destroy",
        "POST /v1/networks/{name}/autostart",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    routed.sort();
    assert_eq!(documented, routed);
    for r in &routed {
        let (method, path) = r.split_once(' ').unwrap();
        let concrete = path
            .replace("{name}", "x")
            .replace("{iface}", "y")
            .replace("{device}", "z");
        assert!(
            virtnetd::api::router::route(method, &concrete).is_ok(),
            "{r} is documented but not routed"
        );
    }
}

/// Starting a VM whose bridge does not exist is the user's error (409 `refused`, saying which
/// bridge and how to create it), not a daemon fault; nothing is left behind.
#[test]
fn start_without_its_bridge_is_the_users_error() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    virtnet_testkit::with_netns(move || {
        let dir = tmp();
        let d = TestDaemon::start_with(dir.path(), Some(&qemu));
        let nic = virtnet_testkit::bridge_nic("52:54:00:00:0b:01", "nobr0");
        assert_eq!(d.define(&domain_xml("nobr", &nic)).0, 201);
        let links = virtnet_testkit::links();
        let (s, v) = d.post("/v1/domains/nobr/start");
        assert_eq!(s, 409, "{v}\n{}", d.log());
        assert_eq!(v["error"]["kind"], "refused", "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        for part in [
            "bridge 'nobr0' does not exist",
            "ip link add nobr0 type bridge",
            "<source bridge='nobr0'/>",
            "everything it had set up was undone",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        assert_eq!(virtnet_testkit::links(), links, "a tap was left behind");
        let (_, info) = d.get("/v1/domains/nobr");
        assert_eq!(info["state"], "shut_off", "{info}");
    });
}

/// What QEMU refuses because of the user's own input is a 4xx, with QEMU's class and
/// description: a QMP command the user sent (`qemu-monitor-command`, 400 `qmp_error`), a
/// hot-plugged NIC whose guest PCI slot QEMU will not give it (409 `refused`), after which
/// nothing of the NIC is left in QEMU, and a serial port switched to a file QEMU cannot open
/// (409 `refused`, nothing changed).
#[test]
fn qemu_refusing_the_users_input_is_4xx() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    virtnet_testkit::with_netns(move || {
        let dir = tmp();
        let d = TestDaemon::start_with(dir.path(), Some(&qemu));
        // ACPI, so that pci.0 takes hot-plugged devices at all.
        let xml = domain_xml("qr", "<serial type='pty'><target port='0'/></serial>").replace(
            "<os><type>hvm</type></os>",
            "<os><type>hvm</type></os><features><acpi/></features>",
        );
        assert_eq!(d.define(&xml).0, 201);
        let (s, v) = d.post("/v1/domains/qr/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());

        let (s, v) = d.call(
            "POST",
            "/v1/domains/qr/qmp",
            Some("application/json"),
            "{\"execute\": \"no-such-command\"}",
        );
        assert_eq!(
            (s, v["error"]["kind"].as_str()),
            (400, Some("qmp_error")),
            "{v}"
        );
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("CommandNotFound") && m.contains("no-such-command"),
            "{m}"
        );

        // Slot 1 of the i440fx is the PIIX3 ISA bridge: QEMU's device_add refuses it.
        let nic = "<interface type='user'><mac address='52:54:00:00:0b:02'/>\
                   <model type='virtio'/>\
                   <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>\
                   </interface>";
        let body = serde_json::json!({ "xml": nic, "live": true }).to_string();
        let (s, v) = d.call(
            "POST",
            "/v1/domains/qr/devices",
            Some("application/json"),
            &body,
        );
        assert_eq!(
            (s, v["error"]["kind"].as_str()),
            (409, Some("refused")),
            "{v}"
        );
        let m = v["error"]["message"].as_str().unwrap();
        for part in [
            "step device_add",
            "GenericError",
            "PIIX3",
            "everything it had set up was undone",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        // Nothing of it is left in QEMU: no netdev, and the VM still has no interface.
        let (s, v) = d.call(
            "POST",
            "/v1/domains/qr/qmp",
            Some("application/json"),
            "{\"execute\": \"query-pci\"}",
        );
        assert_eq!(s, 200, "{v}");
        assert!(!v.to_string().contains("virtio"), "a device was left: {v}");
        let (s, v) = d.call(
            "POST",
            "/v1/domains/qr/qmp",
            Some("application/json"),
            "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info network\"}}",
        );
        assert_eq!(s, 200, "{v}");
        assert!(
            !v.to_string().contains("hostnet0"),
            "the netdev was left: {v}"
        );
        let (_, xml) = d.get("/v1/domains/qr/xml");
        assert!(!xml.to_string().contains("52:54:00:00:0b:02"), "{xml}");

        // A file back end in a directory that does not exist: virtnetd cannot open it for QEMU.
        let body = serde_json::json!({"type": "file", "path": "/nonexistent-dir/x.log"});
        let (s, v) = d.call(
            "POST",
            "/v1/domains/qr/chardevs/serial0",
            Some("application/json"),
            &body.to_string(),
        );
        assert_eq!(
            (s, v["error"]["kind"].as_str()),
            (409, Some("refused")),
            "{v}"
        );
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("serial0") && m.contains("/nonexistent-dir/x.log"),
            "{m}"
        );
        let (_, xml) = d.get("/v1/domains/qr/xml");
        assert!(!xml.to_string().contains("nonexistent-dir"), "{xml}");
        assert_eq!(d.post("/v1/domains/qr/destroy").0, 200);
    });
}
