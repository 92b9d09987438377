//! libvirt's own clients against a running TCG guest, through `RUN_DIR/libvirt-sock`:
//!
//! - the real virsh changes NICs of the running guest: `attach-device --live` (bridge and
//!   ethernet NICs) and `attach-interface --live` (the guest reports each NIC up and answers ping over it),
//!   `detach-interface --live --config`,
//!   `domiflist`, `update-device --live` with `<link state='down'/>` (the guest sees no
//!   carrier), `domif-setlink`, `detach-device --live` (gone from `domiflist` once the guest
//!   released it), `--config`, `--current` and `--live --config` with virsh's meaning on a
//!   running domain, `shutdown` (returns at once; the guest powers off and the domain reaches
//!   shut off with nothing left), `destroy`, `undefine`;
//! - seed 000's rule in virsh: a second vhost-user NIC on one socket is refused, in one XML at
//!   define and hot-plugged onto a running VM, with virtnet's message;
//! - `shutdown` of a VM in its cgroup (outside a network namespace, where cgroups are usable)
//!   removes the cgroup and the run dir, also for a VM adopted by a restarted daemon; of a VM
//!   on a switch network, its switch port;
//! - `examples/libvirt-python-cycle.py` (plain python3-libvirt) runs its whole cycle.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::e2e::{alive, ready_console, wait_ping, wait_until, CMD};
use common::virsh::{qemu_and_virsh, uri, virsh, virsh_err, virsh_ok};
use common::TestDaemon;
use serde_json::Value;
use virtnet_testkit::{
    add_bridge, bridge_nic, links, ping, runtime, vhostuser_nic, with_netns, SerialConsole,
    Snapshot, TestDomain, VSwitch, VsPort,
};

/// `virsh domiflist`'s rows: (interface, type, source, model, mac).
fn domiflist(d: &TestDaemon, vm: &str, extra: &[&str]) -> Vec<[String; 5]> {
    let out = virsh_ok(d, &[&["domiflist", vm][..], extra].concat());
    out.lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5).then(|| std::array::from_fn(|i| f[i].to_string()))
        })
        .collect()
}

fn macs(rows: &[[String; 5]]) -> Vec<String> {
    rows.iter().map(|r| r[4].clone()).collect()
}

/// Writes `xml` to `dir/file` and returns the path as a string.
fn file(dir: &Path, name: &str, xml: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, xml).unwrap();
    p.to_str().unwrap().to_string()
}

/// Polls `virsh domstate` until it says `want`.
fn wait_state(d: &TestDaemon, vm: &str, want: &str, within: Duration) {
    wait_until(&format!("{vm} {want}"), within, || {
        virsh(d, &["domstate", vm]).1.trim() == want
    });
}

/// The guest's carrier (`/sys/class/net/IF/carrier`) on the NIC `ifname`.
async fn carrier(con: &mut SerialConsole, ifname: &str) -> String {
    let (out, rc) = con
        .run(&format!("cat /sys/class/net/{ifname}/carrier"), CMD)
        .await
        .unwrap();
    assert_eq!(rc, 0, "{out}");
    out.trim().to_string()
}

/// The interface name in the guest's `nic up IFNAME MAC ADDRS` line.
fn ifname(up: &str) -> String {
    up.split_whitespace().nth(3).unwrap().to_string()
}

async fn wait_nic_down(con: &mut SerialConsole, mac: &str) {
    con.wait_line(
        |l| l.starts_with("virtnet-guest: nic down ") && l.contains(mac),
        CMD,
    )
    .await
    .unwrap();
}

/// The cgroup directories `GET /v1/domains/NAME` reports (none where cgroups are unusable,
/// as inside a test network namespace).
fn cgroup_dirs(d: &TestDaemon, vm: &str) -> Vec<PathBuf> {
    let (_, info) = d.get(&format!("/v1/domains/{vm}"));
    if info["cgroup"]["state"] != "placed" {
        return Vec::new();
    }
    info["cgroup"]["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d["path"].as_str().unwrap()))
        .collect()
}

fn pid(d: &TestDaemon, vm: &str) -> u64 {
    let (_, info) = d.get(&format!("/v1/domains/{vm}"));
    info["pid"].as_u64().unwrap_or_else(|| panic!("{info}"))
}

/// What was left since `before` (links, files under the watched dirs, child processes). A
/// child process counts when it is new (by pid: its state letter may have changed) and names
/// `dir`: another test of this binary may run outside a network namespace, and its children
/// (or their zombies, which have no namespace left) would show up here.
fn left_since(before: &Snapshot, dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    let known = |l: &str| {
        let pid = l
            .strip_prefix("process ")
            .and_then(|r| r.split(':').next())
            .and_then(|p| p.parse::<u32>().ok());
        pid.is_some_and(|pid| before.children.iter().any(|c| c.0 == pid)) || !l.contains(dir)
    };
    before
        .leaks_in(&before.again())
        .lines()
        .filter(|l| !l.starts_with("process ") || !known(l))
        .map(String::from)
        .collect()
}

fn assert_nothing_left(before: &Snapshot, dir: &Path, context: &str) {
    let left = left_since(before, dir);
    assert!(left.is_empty(), "left behind after {context}:\n{left:#?}");
}

/// `virsh shutdown`: returns at once (libvirt's meaning: the guest was asked); the guest
/// powers off, QEMU exits and the domain is shut off with its QEMU, cgroup and run dir gone.
fn shutdown_and_wait(d: &TestDaemon, vm: &str) {
    let qemu = pid(d, vm);
    let cgroups = cgroup_dirs(d, vm);
    let (ok, out, err, took) = virsh(d, &["shutdown", vm]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("Domain '{vm}' is being shutdown"));
    eprintln!("virsh shutdown returned in {took:?}");
    assert!(took < Duration::from_secs(5), "shutdown waited: {took:?}");
    wait_state(d, vm, "shut off", Duration::from_secs(60));
    assert!(!alive(qemu), "QEMU {qemu} still runs");
    for c in &cgroups {
        wait_until(
            &format!("{} removed", c.display()),
            Duration::from_secs(5),
            || !c.exists(),
        );
    }
    assert!(!d.base.join(format!("run/vms/{vm}")).exists(), "run dir");
    assert!(!d.base.join(format!("run/{vm}.json")).exists(), "status");
    assert!(
        d.log()
            .contains("the guest powered off after its power button was pressed"),
        "the exit watcher cleaned up"
    );
}

#[test]
fn virsh_changes_nics_of_a_running_guest_and_shuts_it_down() {
    let Some(qemu) = qemu_and_virsh() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", Some("10.0.21.1/24"));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let d = TestDaemon::start_with(dir, Some(&qemu));
        let serial = dir.join("serial.sock");
        let (m1, m2, m3) = (
            "52:54:00:21:00:02",
            "52:54:00:21:00:03",
            "52:54:00:21:00:04",
        );
        let xml = TestDomain::new("lv", &serial)
            .ip(m1, "10.0.21.2/24")
            .ip(m2, "10.0.21.3/24")
            .ip(m3, "10.0.21.4/24")
            .xml(guest);
        let before = Snapshot::take(&[&dir.join("run")]);
        assert!(virsh_ok(&d, &["define", &file(dir, "lv.xml", &xml)]).contains("defined"));
        assert_eq!(virsh_ok(&d, &["start", "lv"]).trim(), "Domain 'lv' started");
        let nic1 = file(dir, "nic1.xml", &bridge_nic(m1, "br0"));
        // An ethernet NIC: a tap of its own, on no bridge.
        let nic3 = file(
            dir,
            "nic3.xml",
            &format!(
                "<interface type='ethernet'><mac address='{m3}'/><model type='virtio'/></interface>"
            ),
        );
        let link = |state: &str| {
            bridge_nic(m1, "br0").replace(
                "</interface>",
                &format!("<link state='{state}'/></interface>"),
            )
        };
        // Whether the definition has a NIC with `mac` (the MACs are on the kernel command line too).
        let inactive = |mac: &str| {
            virsh_ok(&d, &["dumpxml", "--inactive", "lv"])
                .contains(&format!("<mac address='{mac}'/>"))
        };
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;

            // attach-device --live: the guest reports the NIC up and answers over it; the
            // definition is unchanged.
            let out = virsh_ok(&d, &["attach-device", "lv", &nic1, "--live"]);
            assert!(out.contains("Device attached successfully"), "{out}");
            let if1 = ifname(&con.wait_nic_up(m1, CMD).await.unwrap());
            wait_ping("10.0.21.2", CMD);
            assert!(!inactive(m1), "live only");

            // attach-interface --live (virsh writes the XML).
            let args = [
                "attach-interface",
                "lv",
                "--type",
                "bridge",
                "--source",
                "br0",
                "--mac",
                m2,
                "--model",
                "virtio",
                "--live",
            ];
            let out = virsh_ok(&d, &args);
            assert!(out.contains("Interface attached successfully"), "{out}");
            con.wait_nic_up(m2, CMD).await.unwrap();
            wait_ping("10.0.21.3", CMD);

            // domiflist: both, with their taps, as the HTTP API lists them.
            let rows = domiflist(&d, "lv", &[]);
            let (_, v) = d.get("/v1/domains/lv/interfaces");
            let api: Vec<[String; 5]> = v["interfaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                    [s("interface"), s("type"), s("source"), s("model"), s("mac")]
                })
                .collect();
            assert_eq!(rows, api, "{v}");
            assert_eq!(macs(&rows), [m1, m2]);
            for r in &rows {
                assert_eq!(r[1..4], ["bridge", "br0", "virtio"], "{rows:?}");
                assert!(links().contains(&r[0]), "tap {} exists", r[0]);
            }
            assert!(domiflist(&d, "lv", &["--inactive"]).is_empty());

            // update-device --live: link down; the guest has no carrier, no ping.
            let out = virsh_ok(
                &d,
                &[
                    "update-device",
                    "lv",
                    &file(dir, "down.xml", &link("down")),
                    "--live",
                ],
            );
            assert!(out.contains("Device updated successfully"), "{out}");
            assert_eq!(carrier(&mut con, &if1).await, "0");
            assert!(!ping("10.0.21.2", 2).0, "answers with its link down");
            assert_eq!(
                virsh_ok(&d, &["domif-getlink", "lv", m1]).trim(),
                format!("{m1} down")
            );
            // domif-setlink: virsh edits the live XML and calls update-device itself.
            let out = virsh_ok(&d, &["domif-setlink", "lv", m1, "up"]);
            assert!(out.contains("Device updated successfully"), "{out}");
            assert_eq!(carrier(&mut con, &if1).await, "1");
            wait_ping("10.0.21.2", CMD);

            // The scopes on a running domain, as in virsh. --config: the definition only.
            virsh_ok(&d, &["attach-device", "lv", &nic3, "--config"]);
            assert!(inactive(m3));
            assert!(!macs(&domiflist(&d, "lv", &[])).contains(&m3.to_string()));
            virsh_ok(&d, &["detach-device", "lv", &nic3, "--config"]);
            assert!(!inactive(m3));
            // --current on a running domain: the running VM only.
            virsh_ok(&d, &["attach-device", "lv", &nic3, "--current"]);
            con.wait_nic_up(m3, CMD).await.unwrap();
            assert!(!inactive(m3));
            virsh_ok(&d, &["detach-device", "lv", &nic3, "--current"]);
            wait_nic_down(&mut con, m3).await;
            wait_until("m3 gone from domiflist", CMD, || {
                !macs(&domiflist(&d, "lv", &[])).contains(&m3.to_string())
            });
            // --live --config: both.
            virsh_ok(&d, &["attach-device", "lv", &nic3, "--live", "--config"]);
            let up = con
                .wait_line_from(
                    con.lines().len(),
                    |l| l.starts_with("virtnet-guest: nic up ") && l.contains(m3),
                    CMD,
                )
                .await;
            assert!(up.is_ok(), "{up:?}");
            assert!(inactive(m3));
            assert!(macs(&domiflist(&d, "lv", &[])).contains(&m3.to_string()));
            let row = domiflist(&d, "lv", &[])
                .into_iter()
                .find(|r| r[4] == m3)
                .unwrap();
            assert_eq!(row[1..4], ["ethernet", "-", "virtio"], "{row:?}");
            assert!(links().contains(&row[0]), "tap {} exists", row[0]);
            // detach-interface: virsh finds the NIC in the XML and sends it back.
            let args = [
                "detach-interface",
                "lv",
                "--type",
                "ethernet",
                "--mac",
                m3,
                "--live",
                "--config",
            ];
            let out = virsh_ok(&d, &args);
            assert!(out.contains("Interface detached successfully"), "{out}");
            assert!(!inactive(m3));
            wait_until("m3 gone again", CMD, || {
                !macs(&domiflist(&d, "lv", &[])).contains(&m3.to_string())
            });

            // detach-device --live: gone from domiflist once the guest let go; its tap too.
            let tap1 = rows[0][0].clone();
            let out = virsh_ok(&d, &["detach-device", "lv", &nic1, "--live"]);
            assert!(out.contains("Device detached successfully"), "{out}");
            wait_nic_down(&mut con, m1).await;
            wait_until("m1 gone from domiflist", CMD, || {
                macs(&domiflist(&d, "lv", &[])) == [m2]
            });
            assert!(!links().contains(&tap1), "tap {tap1} left");

            // Shutdown modes virtnet has not: refused, the domain keeps running.
            let err = virsh_err(&d, &["shutdown", "lv", "--mode", "agent"]);
            assert!(
                err.contains("shutdown mode 'agent' is not supported"),
                "{err}"
            );
            let err = virsh_err(&d, &["shutdown", "lv", "--mode", "initctl"]);
            assert!(err.contains("'initctl'"), "{err}");
            assert_eq!(virsh_ok(&d, &["domstate", "lv"]).trim(), "running");
        });

        // shutdown (with a hot-plugged NIC still in): shut off, nothing left.
        shutdown_and_wait(&d, "lv");
        assert!(!serial.exists(), "serial socket left");
        assert_nothing_left(&before, dir, "virsh shutdown");
        let err = virsh_err(&d, &["shutdown", "lv"]);
        assert!(
            err.contains("Requested operation is not valid: domain is not running"),
            "{err}"
        );
        // --mode acpi is the same power button.
        let (ok, _, err, _) = virsh(&d, &["shutdown", "lv", "--mode", "acpi"]);
        assert!(!ok && err.contains("domain is not running"), "{err}");
        assert_eq!(
            virsh_ok(&d, &["domstate", "--reason", "lv"]).trim(),
            "shut off (shutdown)",
            "the guest powered off"
        );

        // destroy, undefine.
        virsh_ok(&d, &["start", "lv"]);
        assert_eq!(
            virsh_ok(&d, &["destroy", "lv"]).trim(),
            "Domain 'lv' destroyed"
        );
        assert_eq!(virsh_ok(&d, &["domstate", "lv"]).trim(), "shut off");
        assert!(virsh_ok(&d, &["undefine", "lv"]).contains("Domain 'lv' has been undefined"));
        assert!(!virsh_ok(&d, &["list", "--all"]).contains("lv"));
        assert_nothing_left(&before, dir, "virsh destroy and undefine");
    });
}

#[test]
fn virsh_refuses_a_second_vhost_user_nic_on_one_socket() {
    let Some(qemu) = qemu_and_virsh() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = virtnet_testkit::traversable_tempdir();
        let dir = tmp.path();
        let sock = dir.join("vu1.sock");
        let sw_dir = virtnet_testkit::traversable_tempdir();
        let sw = VSwitch::start(sw_dir.path(), &[VsPort::new("p1", &sock, "server")], None);
        let d = TestDaemon::start_with(dir, Some(&qemu));
        let (m1, m2) = ("52:54:00:22:00:02", "52:54:00:22:00:03");

        // Two NICs on one socket in one XML: refused at define, with virtnet's message.
        let serial = dir.join("serial.sock");
        let mut dom = TestDomain::new("vu", &serial);
        dom.shared_memory = true;
        let two = dom
            .clone()
            .nic(&vhostuser_nic(m1, &sock, "client"), m1, None)
            .nic(&vhostuser_nic(m2, &sock, "client"), m2, None);
        let err = virsh_err(&d, &["define", &file(dir, "two.xml", &two.xml(guest))]);
        eprintln!("two NICs on one socket, define: {err}");
        assert!(err.contains(sock.to_str().unwrap()), "{err}");
        assert!(err.contains(m1) && err.contains(m2), "{err}");
        assert!(!virsh_ok(&d, &["list", "--all"]).contains("vu"));

        // A running VM whose NIC is on the socket: a second one there is refused live.
        virsh_ok(&d, &["define", &file(dir, "vu.xml", &dom.xml(guest))]);
        virsh_ok(&d, &["start", "vu"]);
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;
            let nic = |mac: &str| vhostuser_nic(mac, &sock, "client");
            virsh_ok(
                &d,
                &[
                    "attach-device",
                    "vu",
                    &file(dir, "n1.xml", &nic(m1)),
                    "--live",
                ],
            );
            con.wait_nic_up(m1, CMD).await.unwrap();
            assert_eq!(sw.port("p1")["connected"], true);
            let err = virsh_err(
                &d,
                &[
                    "attach-device",
                    "vu",
                    &file(dir, "n2.xml", &nic(m2)),
                    "--live",
                ],
            );
            eprintln!("a second NIC on the socket, attach-device --live: {err}");
            assert!(err.contains("VM 'vu'") && err.contains(m1), "{err}");
            assert!(err.contains(sock.to_str().unwrap()), "{err}");
            assert_eq!(macs(&domiflist(&d, "vu", &[])), [m1]);
        });
        virsh_ok(&d, &["destroy", "vu"]);
        virsh_ok(&d, &["undefine", "vu"]);
        drop(sw);
    });
}

/// Shutdown of a guest on a switch network: its port on the switch is gone when it is shut
/// off, with its socket.
#[test]
fn virsh_shutdown_frees_the_switch_port() {
    let Some(qemu) = qemu_and_virsh() else {
        return;
    };
    let vswitch = common::vswitch();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        assert!(vswitch.is_file());
        let tmp = virtnet_testkit::traversable_tempdir();
        let dir = tmp.path();
        let d = TestDaemon::start_with(dir, Some(&qemu));
        let net = "<network><name>sw0</name><virtualport type='virtnet-vswitch'/></network>";
        common::e2e::define_and_start_network(&d, net, "sw0");
        let ports = || {
            let (s, v) = d.get("/v1/networks/sw0");
            assert_eq!(s, 200, "{v}");
            v["ports"].as_array().unwrap().clone()
        };
        let serial = dir.join("serial.sock");
        let mac = "52:54:00:24:00:02";
        let nic = format!(
            "<interface type='network'><mac address='{mac}'/><source network='sw0'/>\
             <model type='virtio'/></interface>"
        );
        let mut dom = TestDomain::new("swsd", &serial).nic(&nic, mac, None);
        dom.shared_memory = true;
        virsh_ok(&d, &["define", &file(dir, "swsd.xml", &dom.xml(guest))]);
        let before = Snapshot::take(&[&dir.join("run")]);
        virsh_ok(&d, &["start", "swsd"]);
        let port = ports();
        assert_eq!(port.len(), 1, "{port:?}");
        let socket = PathBuf::from(port[0]["socket"].as_str().unwrap());
        assert!(socket.exists());
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;
            con.wait_nic_up(mac, CMD).await.unwrap();
        });
        shutdown_and_wait(&d, "swsd");
        assert!(ports().is_empty(), "{:?}", ports());
        assert!(!socket.exists(), "{} left", socket.display());
        assert_nothing_left(&before, dir, "virsh shutdown on a switch network");
        virsh_ok(&d, &["undefine", "swsd"]);
    });
}

/// Shutdown of a VM in its cgroup, started by this daemon and adopted by a restarted one:
/// outside a network namespace (no NIC), where the daemon can place QEMU in a cgroup.
#[test]
fn virsh_shutdown_releases_the_cgroup_and_run_dir() {
    let Some(qemu) = qemu_and_virsh() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut d = TestDaemon::start_with(dir, Some(&qemu));
    let serial = dir.join("serial.sock");
    let xml = TestDomain::new("cgsd", &serial).xml(guest);
    virsh_ok(&d, &["define", &file(dir, "cgsd.xml", &xml)]);
    let before = Snapshot::take(&[&dir.join("run")]);
    let cgroups = start_booted(&d, &serial);
    shutdown_and_wait(&d, "cgsd");
    eprintln!("cgroup dirs removed: {cgroups:?}");
    assert!(!serial.exists(), "serial socket left");
    assert_nothing_left(&before, dir, "virsh shutdown");

    // A VM the daemon adopted at its restart (no QEMU child of its own): the same.
    let cgroups = start_booted(&d, &serial);
    d.stop();
    d.restart();
    assert_eq!(virsh_ok(&d, &["domstate", "cgsd"]).trim(), "running");
    assert_eq!(cgroup_dirs(&d, "cgsd"), cgroups, "adopted in its cgroup");
    shutdown_and_wait(&d, "cgsd");
    assert!(!serial.exists(), "serial socket left");
    let leaks: Vec<String> = left_since(&before, dir)
        .into_iter()
        .filter(|l| !l.contains(env!("CARGO_BIN_EXE_virtnetd")))
        .collect();
    assert!(leaks.is_empty(), "{leaks:?} (the restarted virtnetd aside)");
    virsh_ok(&d, &["undefine", "cgsd"]);
}

/// `virsh start cgsd`, waits for the guest's console to be ready; QEMU's cgroup dirs (this
/// test runs outside a network namespace, where the VM must have a cgroup).
fn start_booted(d: &TestDaemon, serial: &Path) -> Vec<PathBuf> {
    virsh_ok(d, &["start", "cgsd"]);
    let cgroups = cgroup_dirs(d, "cgsd");
    assert!(
        !cgroups.is_empty(),
        "no cgroup placed: {}",
        d.get("/v1/domains/cgsd").1
    );
    runtime().block_on(async {
        ready_console(serial).await;
    });
    cgroups
}

/// `examples/libvirt-python-cycle.py` against a TCG guest: define, start, attach (the guest
/// reports the NIC up), update (link down), detach (the guest reports it gone), shutdown,
/// start, destroy, undefine; each checked by the script.
#[test]
fn python3_libvirt_cycle_script() {
    let Some(qemu) = qemu_and_virsh() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", None);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let d = TestDaemon::start_with(dir, Some(&qemu));
        let serial = dir.join("serial.sock");
        let mac = "52:54:00:23:00:02";
        let dom = file(
            dir,
            "py.xml",
            &TestDomain::new("pycycle", &serial).xml(guest),
        );
        let nic = file(dir, "nic.xml", &bridge_nic(mac, "br0"));
        let before = Snapshot::take(&[&dir.join("run")]);
        let script = virtnet_testkit::repo_root().join("examples/libvirt-python-cycle.py");
        // Debian's python, where python3-libvirt is.
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([&uri(&d), &dom, &nic, "--confirm"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 (scripts/setup installs python3-libvirt)");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        // Up to "ok create": the script then waits for a line on stdin (the guest booted),
        // and again after the attach (the guest sees the NIC).
        loop {
            let mut l = String::new();
            assert!(
                stdout.read_line(&mut l).unwrap() > 0,
                "script ended: {lines:?}"
            );
            lines.push(l.trim_end().to_string());
            if l.starts_with("ok create") {
                break;
            }
        }
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"booted\n").unwrap();
            con.wait_nic_up(mac, CMD).await.unwrap();
            stdin.write_all(b"nic up\n").unwrap();
            wait_nic_down(&mut con, mac).await;
        });
        lines.extend(stdout.lines().map(Result::unwrap));
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{lines:#?}\n{err}\n{}", d.log());
        eprintln!("{}", lines.join("\n"));
        let steps: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ok ")?.split_whitespace().next())
            .collect();
        assert_eq!(
            steps,
            [
                "open", "define", "create", "attach", "update", "detach", "shutdown", "create",
                "destroy", "undefine", "close"
            ],
            "{lines:#?}"
        );
        assert_nothing_left(&before, dir, "the python cycle");
        let _: Value = d.get("/v1/domains").1;
        assert!(d.names().is_empty());
    });
}
