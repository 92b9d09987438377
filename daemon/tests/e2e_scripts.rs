//! `<script>`/`<downscript>` through virtnetd (real QEMU under TCG, the test guest, a private
//! network namespace): the up-script bridges the tap at start (the host pings the guest over
//! it); a hot-plug whose script fails is refused with the script's reason and leaves no tap;
//! the daemon killed (-9) and restarted still runs the downscript, read back from the live
//! status, when the VM is destroyed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::e2e::{alive, destroy_leaving_nothing, post_json, start, wait_ping, wait_until};
use common::TestDaemon;
use serde_json::json;
use virtnet_testkit::{add_bridge, links, with_netns, TestDomain};

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn ethernet_nic(mac: &str, up: &Path, down: &Path) -> String {
    format!(
        "<interface type='ethernet'><mac address='{mac}'/><script path='{}'/>\
         <downscript path='{}'/><model type='virtio'/></interface>",
        up.display(),
        down.display()
    )
}

#[test]
fn scripts_run_through_the_daemon_and_after_its_restart() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", Some("10.0.34.1/24"));
        let tmp = tempfile::tempdir().unwrap();
        let scripts = tempfile::tempdir().unwrap();
        let marker = scripts.path().join("marker");
        let up = write_script(
            scripts.path(),
            "up",
            "set -e\nip link set \"$1\" master br0\nip link set \"$1\" up\necho \"bridged $1\"",
        );
        let down = write_script(
            scripts.path(),
            "down",
            &format!("echo \"down $1\" >> {}", marker.display()),
        );
        let fail = write_script(scripts.path(), "fail", "echo \"no luck with $1\"\nexit 1");
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:34:02";
        let xml = TestDomain::new("scripted", &serial)
            .nic(&ethernet_nic(mac, &up, &down), mac, Some("10.0.34.2/24"))
            .xml(guest);
        let (s, v) = d.define(&xml);
        assert_eq!(s, 201, "{v}");
        let pid = start(&d, "scripted");
        let (_, ifl) = d.get("/v1/domains/scripted/interfaces");
        let tap = ifl["interfaces"][0]["interface"]
            .as_str()
            .unwrap()
            .to_string();
        // Only the script made the tap a port of br0.
        wait_ping("10.0.34.2", Duration::from_secs(120));

        // A hot-plug whose script fails: refused with the script's reason, no tap left.
        let links_before = links();
        let (s, v) = post_json(
            &d,
            "/v1/domains/scripted/devices",
            &json!({ "xml": ethernet_nic("52:54:00:00:34:03", &fail, &down), "live": true }),
        );
        assert!(s >= 400, "{s} {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("exited with status 1"), "{v}");
        assert!(msg.contains("no luck with vnet"), "{v}");
        assert_eq!(links(), links_before, "nothing left on the host");
        assert!(!marker.exists(), "no downscript after a failed script");

        // The daemon dies; the next one reads the downscript from the live status.
        d.kill9();
        assert!(alive(pid), "QEMU survives its daemon");
        d.restart();
        destroy_leaving_nothing(&d, "scripted");
        wait_until("QEMU to be gone", Duration::from_secs(15), || !alive(pid));
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            format!("down {tap}\n")
        );
        assert!(!links().contains(&tap), "tap {tap} left behind");
        d.stop();
    });
}
