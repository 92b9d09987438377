//! `virtnet` against a real virtnetd (in-process, on a temporary socket and store): define,
//! list, dominfo, dumpxml, domiflist, undefine, JSON output, errors, `--connect` and
//! `VIRTNET_CONNECT`, completions.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::Daemon;

fn run(args: &[&str], env: Option<(&str, &Path)>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtnet"));
    cmd.args(args).env_remove("VIRTNET_CONNECT");
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    cmd.output().expect("run virtnet")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}{}", out(o), err(o));
    out(o)
}

/// Fails with exactly one line on stderr, which contains `needle`.
fn fails_with(o: &Output, needle: &str) {
    assert!(!o.status.success(), "succeeded: {}", out(o));
    let e = err(o);
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    assert!(e.starts_with("error: "), "{e}");
    assert!(e.contains(needle), "'{needle}' not in: {e}");
}

const XML: &str = "<domain type='qemu'>
  <name>cli1</name>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type></os>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:aa:00:01'/>
      <source bridge='br-cli'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
";

#[test]
fn define_list_info_xml_iflist_undefine() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cli1.xml");
    std::fs::write(&file, XML).unwrap();
    let f = file.to_str().unwrap();

    let o = ok(&d.virtnet(&["define", f]));
    assert_eq!(o, format!("Domain 'cli1' defined from {f}\n"));
    assert_eq!(
        ok(&d.virtnet(&["define", f])),
        format!("Domain 'cli1' redefined from {f}\n")
    );

    // Not running: plain `list` shows no VM, --all and --inactive do.
    let plain = ok(&d.virtnet(&["list"]));
    assert!(!plain.contains("cli1"), "{plain}");
    let all = ok(&d.virtnet(&["list", "--all"]));
    let lines: Vec<&str> = all.lines().collect();
    assert!(
        lines[0].contains("Id") && lines[0].contains("Name") && lines[0].contains("State"),
        "{all}"
    );
    assert!(lines[1].starts_with("---"), "{all}");
    assert!(
        lines[2].contains("cli1") && lines[2].contains("shut off"),
        "{all}"
    );
    assert_eq!(ok(&d.virtnet(&["list", "--inactive", "--name"])), "cli1\n");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&d.virtnet(&["list", "--all", "--json"]))).unwrap();
    assert_eq!(json["domains"][0]["name"], "cli1");
    assert_eq!(json["domains"][0]["state"], "shut_off");

    let info = ok(&d.virtnet(&["dominfo", "cli1"]));
    assert!(info.contains("Name:           cli1"), "{info}");
    assert!(info.contains("State:          shut off"), "{info}");
    assert!(info.contains("Max memory:     65536 KiB"), "{info}");
    assert!(info.contains("Persistent:     yes"), "{info}");
    let info: serde_json::Value =
        serde_json::from_str(&ok(&d.virtnet(&["--json", "dominfo", "cli1"]))).unwrap();
    assert_eq!(info["interfaces"], 1);

    let xml = ok(&d.virtnet(&["dumpxml", "cli1", "--inactive"]));
    assert!(xml.starts_with("<domain type='qemu'>"), "{xml}");
    assert!(xml.contains("<mac address='52:54:00:aa:00:01'/>"), "{xml}");
    assert_eq!(
        ok(&d.virtnet(&["dumpxml", "cli1"])),
        xml,
        "not running: the same"
    );
    // The output defines the same VM again.
    std::fs::write(&file, &xml).unwrap();
    ok(&d.virtnet(&["define", f]));
    assert_eq!(ok(&d.virtnet(&["dumpxml", "cli1"])), xml, "stable");

    let ifl = ok(&d.virtnet(&["domiflist", "cli1"]));
    let row = ifl.lines().nth(2).unwrap();
    for cell in ["-", "bridge", "br-cli", "virtio", "52:54:00:aa:00:01", "up"] {
        assert!(row.contains(cell), "{cell} in {ifl}");
    }

    assert_eq!(
        ok(&d.virtnet(&["undefine", "cli1"])),
        "Domain 'cli1' has been undefined\n"
    );
    fails_with(&d.virtnet(&["undefine", "cli1"]), "no VM named 'cli1'");
    fails_with(&d.virtnet(&["dominfo", "cli1"]), "no VM named 'cli1'");
    fails_with(&d.virtnet(&["start", "cli1"]), "no VM named 'cli1'");
    fails_with(&d.virtnet(&["shutdown", "cli1"]), "no VM named 'cli1'");
    fails_with(&d.virtnet(&["destroy", "cli1"]), "no VM named 'cli1'");
}

#[test]
fn errors_are_one_line() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<domain type='qemu'>\n  <name>x</name>\n  <memory>1</nope>\n</domain>\n",
    )
    .unwrap();
    let b = bad.to_str().unwrap();
    fails_with(&d.virtnet(&["define", b]), &format!("error: {b}:3:"));
    fails_with(
        &d.virtnet(&["define", "/nonexistent/x.xml"]),
        "error: /nonexistent/x.xml: cannot open",
    );
    let ok_file = dir.path().join("ok.xml");
    std::fs::write(&ok_file, XML).unwrap();
    ok(&d.virtnet(&["define", ok_file.to_str().unwrap()]));
    fails_with(
        &d.virtnet(&["shutdown", "cli1"]),
        "VM 'cli1' is shut off: nothing to stop; `virtnet start cli1` starts it",
    );
    // A vhost-user NIC into a VM without shared memory: the refusal names the device file.
    let vu = dir.path().join("vu.xml");
    std::fs::write(
        &vu,
        "<interface type='vhostuser'><source type='unix' path='/tmp/vu-cli.sock' \
         mode='client'/><model type='virtio'/></interface>",
    )
    .unwrap();
    let o = d.virtnet(&["attach-device", "cli1", vu.to_str().unwrap(), "--config"]);
    fails_with(&o, &format!("error: {}:1:1: ", vu.display()));
    assert!(err(&o).contains("shared memory"), "{}", err(&o));
}

#[test]
fn no_daemon_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let o = run(&["--connect", sock.to_str().unwrap(), "list"], None);
    fails_with(
        &o,
        &format!(
            "cannot connect to virtnetd at {}: no such socket",
            sock.display()
        ),
    );
    assert!(err(&o).contains("virtnetd --socket"), "{}", err(&o));
    // VIRTNET_CONNECT picks the socket too.
    let o = run(&["list", "--all"], Some(("VIRTNET_CONNECT", &sock)));
    fails_with(&o, &sock.display().to_string());
    let d = Daemon::start();
    let o = run(&["list", "--all"], Some(("VIRTNET_CONNECT", &d.socket)));
    ok(&o);
}

#[test]
fn completions() {
    for shell in ["bash", "zsh", "fish"] {
        let o = ok(&run(&["completions", shell], None));
        for cmd in [
            "domiflist",
            "dumpxml",
            "attach-device",
            "detach-interface",
            "chardev-change",
        ] {
            assert!(o.contains(cmd), "{shell}: {cmd} missing in {o}");
        }
    }
}

#[test]
fn device_commands_on_the_definition() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cli1.xml");
    std::fs::write(
        &file,
        XML.replace(
            "</devices>",
            "<serial type='pty'/><serial type='file'><source path='/tmp/cli1-s1.log'/>\
             <target port='1'/></serial></devices>",
        )
        .replace(
            "</memory>",
            "</memory><memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>",
        ),
    )
    .unwrap();
    ok(&d.virtnet(&["define", file.to_str().unwrap()]));
    let sock = dir.path().join("vu.sock").display().to_string();
    let mac = "52:54:00:aa:00:02";

    // --print-xml shows the interface and attaches nothing.
    let x = ok(&d.virtnet(&[
        "attach-interface",
        "cli1",
        "--type",
        "vhostuser",
        "--source",
        &sock,
        "--mac",
        mac,
        "--print-xml",
    ]));
    assert!(x.contains(&format!("path='{sock}' mode='client'")), "{x}");
    assert_eq!(ok(&d.virtnet(&["domiflist", "cli1"])).lines().count(), 3);
    let o = ok(&d.virtnet(&[
        "attach-interface",
        "cli1",
        "--type",
        "vhostuser",
        "--source",
        &sock,
        "--mac",
        mac,
        "--config",
    ]));
    assert!(o.starts_with("Interface attached successfully"), "{o}");
    assert!(o.contains(mac) && o.contains("definition"), "{o}");
    let ifl = ok(&d.virtnet(&["domiflist", "cli1", "--inactive"]));
    assert!(ifl.contains(&sock), "{ifl}");
    // A second NIC on the socket: one line naming the owner.
    let dev = dir.path().join("nic.xml");
    std::fs::write(
        &dev,
        format!("<interface type='vhostuser'><source type='unix' path='{sock}' mode='client'/></interface>"),
    )
    .unwrap();
    fails_with(
        &d.virtnet(&["attach-device", "cli1", dev.to_str().unwrap()]),
        "is already used by interface 52:54:00:aa:00:02 of VM 'cli1'",
    );
    // Live changes need a running VM.
    fails_with(
        &d.virtnet(&["attach-device", "cli1", dev.to_str().unwrap(), "--live"]),
        "is shut off",
    );

    // update-device moves the socket; --json gives the API's answer.
    let sock2 = dir.path().join("vu2.sock").display().to_string();
    std::fs::write(
        &dev,
        format!("<interface type='vhostuser'><mac address='{mac}'/><source type='unix' path='{sock2}' mode='client'/></interface>"),
    )
    .unwrap();
    let o = ok(&d.virtnet(&["update-device", "cli1", dev.to_str().unwrap(), "--config"]));
    assert!(o.starts_with("Device updated successfully"), "{o}");
    assert!(o.contains(&sock2), "{o}");
    let j: serde_json::Value = serde_json::from_str(&ok(&d.virtnet(&[
        "--json",
        "update-device",
        "cli1",
        dev.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(
        j["changed"],
        serde_json::json!([]),
        "nothing left to change"
    );

    // chardev-change: a relative path is the caller's.
    let here = std::env::current_dir().unwrap();
    let o = ok(&d.virtnet(&[
        "chardev-change",
        "cli1",
        "serial1",
        "--type",
        "file",
        "--path",
        "s1.log",
    ]));
    assert!(o.contains("serial1") && o.contains("file"), "{o}");
    let xml = ok(&d.virtnet(&["dumpxml", "cli1", "--inactive"]));
    assert!(
        xml.contains(&format!(
            "<source path='{}'/>",
            here.join("s1.log").display()
        )),
        "{xml}"
    );
    fails_with(
        &d.virtnet(&["chardev-change", "cli1", "serial5", "--type", "pty"]),
        "no serial port, console or channel 'serial5'",
    );

    // detach-interface by type (one vhostuser NIC), then detach-device of a MAC not there.
    let o = ok(&d.virtnet(&["detach-interface", "cli1", "--type", "vhostuser"]));
    assert!(o.starts_with("Interface detached successfully"), "{o}");
    fails_with(
        &d.virtnet(&["detach-device", "cli1", dev.to_str().unwrap()]),
        "has no interface matching 'MAC 52:54:00:aa:00:02'",
    );
    fails_with(
        &d.virtnet(&["detach-interface", "cli1", "--type", "user"]),
        "has no interface matching 'type user'",
    );
    std::fs::write(&dev, "<interface type='user'").unwrap();
    // The file is named, in validate's form FILE:LINE:COL.
    fails_with(
        &d.virtnet(&["attach-device", "cli1", dev.to_str().unwrap()]),
        &format!("error: {}:1:", dev.display()),
    );
    assert_eq!(ok(&d.virtnet(&["domiflist", "cli1"])).lines().count(), 3);
}

/// `virtnet migrate`: `--live` is required; a VM that does not run is refused in one line;
/// a DEST that is not a socket path is refused before anything is done.
#[test]
fn migrate_refusals() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ok.xml");
    std::fs::write(&f, XML).unwrap();
    ok(&d.virtnet(&["define", f.to_str().unwrap()]));
    let o = d.virtnet(&["migrate", "cli1", "/run/elsewhere.sock"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("--live"), "{}", err(&o));
    fails_with(
        &d.virtnet(&["migrate", "--live", "cli1", "/run/elsewhere.sock"]),
        "VM 'cli1' is shut off: only a running VM migrates live",
    );
    fails_with(
        &d.virtnet(&["migrate", "--live", "cli1", "qemu+ssh://h/system"]),
        "give the destination virtnetd's API socket as an absolute path",
    );
    fails_with(
        &d.virtnet(&[
            "migrate",
            "--live",
            "cli1",
            "/run/elsewhere.sock",
            "--migrateuri",
            "rdma:1.2.3.4",
        ]),
        "give tcp:HOST or tcp:HOST:PORT",
    );
}
