//! QEMU confined by virtnetd (the default), read from `/proc/PID/...` of the QEMU it starts:
//! its identity, capabilities, NoNewPrivs, seccomp, its own mount namespace with a private
//! `/dev`, virtnetd's state and other VMs' run dirs invisible; the documented opt-outs
//! (`--sandbox off`, `<seclabel type='none'/>`) really run QEMU as root without `-sandbox`;
//! `<seclabel>`s virtnet cannot honour are refused at define.

mod common;

use std::path::Path;

use common::TestDaemon;
use virtnet_testkit::sandbox::{dev_entries, proc_status_field, QEMU_USER};
use virtnet_testkit::{assert_qemu_confined, assert_unconfined, TestDomain};

const SECCOMP: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// QEMU's command line, one argument per entry.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn has_seccomp_arg(pid: u32) -> bool {
    cmdline(pid)
        .windows(2)
        .any(|w| w[0] == "-sandbox" && w[1] == SECCOMP)
}

/// The names in `dir` as process `pid` sees it, sorted; `None` when it does not exist there.
fn listing_in(pid: u32, dir: &Path) -> Option<Vec<String>> {
    let p = Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(dir.strip_prefix("/").unwrap());
    let mut v: Vec<String> = std::fs::read_dir(p)
        .ok()?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Some(v)
}

fn define_and_start(d: &TestDaemon, xml: &str, name: &str) -> u32 {
    let (s, v) = d.define(xml);
    assert_eq!(s, 201, "{v}");
    common::e2e::start(d, name) as u32
}

#[test]
fn qemu_runs_confined_and_sees_only_its_own() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let mut d = TestDaemon::start_with(&base, Some(&qemu));
    let a = TestDomain::new("conf-a", base.join("a.sock")).xml(guest);
    let b = TestDomain::new("conf-b", base.join("b.sock")).xml(guest);
    let pa = define_and_start(&d, &a, "conf-a");
    let pb = define_and_start(&d, &b, "conf-b");

    for pid in [pa, pb] {
        assert_qemu_confined(pid);
        let user = virtnet_host::lookup_user(QEMU_USER).unwrap().unwrap();
        let uid = user.uid.to_string();
        assert_eq!(proc_status_field(pid, "Uid"), [uid.as_str(); 4].join("\t"));
        let gid = user.gid.to_string();
        assert_eq!(proc_status_field(pid, "Gid"), [gid.as_str(); 4].join("\t"));
        assert_eq!(proc_status_field(pid, "Groups"), "", "TCG: no kvm group");
        for key in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
            assert_eq!(proc_status_field(pid, key), "0000000000000000", "{key}");
        }
        assert_eq!(proc_status_field(pid, "NoNewPrivs"), "1");
        assert_eq!(proc_status_field(pid, "Seccomp"), "2");
        assert!(has_seccomp_arg(pid), "{:?}", cmdline(pid));
        // TCG: no /dev/kvm; nothing but the listed nodes and devpts.
        assert_eq!(
            dev_entries(pid),
            [
                "fd", "full", "null", "ptmx", "pts", "random", "stderr", "stdin", "stdout",
                "urandom", "zero"
            ]
        );
    }
    // virtnetd's state dir is an empty tmpfs for QEMU; the run root holds only the switch
    // networks' directory (no API socket, no live status, no VM's run dir, its own neither:
    // its monitor and console arrive as fds).
    assert!(std::fs::read_dir(base.join("state")).unwrap().count() > 0);
    for pid in [pa, pb] {
        assert_eq!(listing_in(pid, &base.join("state")), Some(vec![]));
        assert_eq!(
            listing_in(pid, &base.join("run")),
            Some(vec!["networks".into()])
        );
        assert_eq!(listing_in(pid, &base.join("run/vms")), None);
    }
    // Our side still sees everything: the mounts stayed in QEMU's namespace.
    assert!(base.join("run/virtnetd.sock").exists());
    assert!(base.join("run/vms/conf-a/qmp.sock").exists());
    assert!(base.join("run/vms/conf-b").is_dir());

    // A hostdev NIC cannot be hot-plugged: its VFIO group is not in QEMU's /dev (made at
    // start). Refused before anything is touched, saying what to do.
    let vf = "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:0c:01'/>\
              <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' \
              function='0x1'/></source></interface>";
    let (s, v) = common::e2e::post_json(
        &d,
        "/v1/domains/conf-a/devices",
        &serde_json::json!({ "xml": vf, "live": true }),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("runs confined"), "{v}");

    for n in ["conf-a", "conf-b"] {
        common::e2e::destroy_leaving_nothing(&d, n);
    }
    d.stop();
}

#[test]
fn opting_out_runs_qemu_as_root_without_seccomp() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    // Per domain: <seclabel type='none'/> under a confining daemon.
    let tmp = tempfile::tempdir().unwrap();
    let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
    let xml = TestDomain::new("none", tmp.path().join("n.sock"))
        .xml(guest)
        .replace("<devices>", "<seclabel type='none'/>\n  <devices>");
    let pid = define_and_start(&d, &xml, "none");
    assert_unconfined(pid);
    assert_eq!(
        proc_status_field(pid, "CapEff"),
        proc_status_field(std::process::id(), "CapEff")
    );
    assert!(!has_seccomp_arg(pid));
    assert!(!cmdline(pid).iter().any(|a| a == "-sandbox"));
    assert!(d.log().contains("QEMU runs unconfined"), "{}", d.log());
    common::e2e::destroy_leaving_nothing(&d, "none");
    d.stop();

    // Daemon-wide: --sandbox off.
    let tmp = tempfile::tempdir().unwrap();
    let mut d = TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--sandbox", "off"]);
    let xml = TestDomain::new("off", tmp.path().join("o.sock")).xml(guest);
    let pid = define_and_start(&d, &xml, "off");
    assert_unconfined(pid);
    assert!(!cmdline(pid).iter().any(|a| a == "-sandbox"));
    common::e2e::destroy_leaving_nothing(&d, "off");
    d.stop();
}

/// A static DAC label names the identity (by name here); one virtnet cannot honour is refused
/// at define, saying what virtnet does instead.
#[test]
fn seclabels_choose_the_identity_or_are_refused() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
    let base = TestDomain::new("dac", tmp.path().join("d.sock")).xml(guest);
    let refused = base.replace(
        "<devices>",
        "<seclabel type='dynamic' model='selinux'/>\n  <devices>",
    );
    let (s, v) = d.define(&refused);
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("private mount namespace"), "{v}");
    let root = base.replace(
        "<devices>",
        "<seclabel type='static' model='dac'><label>+0:+0</label></seclabel>\n  <devices>",
    );
    let (s, v) = d.define(&root);
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("as root"), "{v}");

    let user = virtnet_host::lookup_user(QEMU_USER).unwrap().unwrap();
    let labelled = base.replace(
        "<devices>",
        &format!(
            "<seclabel type='static' model='dac' relabel='yes'><label>{QEMU_USER}:+{}</label></seclabel>\n  <devices>",
            user.gid
        ),
    );
    let pid = define_and_start(&d, &labelled, "dac");
    assert_qemu_confined(pid);
    assert!(proc_status_field(pid, "Uid").starts_with(&user.uid.to_string()));
    let (_, x) = d.get("/v1/domains/dac/xml?inactive=true");
    assert!(
        x["xml"]
            .as_str()
            .unwrap()
            .contains(&format!("<label>{QEMU_USER}:+{}</label>", user.gid)),
        "{x}"
    );
    common::e2e::destroy_leaving_nothing(&d, "dac");
    d.stop();
}
