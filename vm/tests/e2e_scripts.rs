//! `<script>`/`<downscript>` on ethernet NICs end to end (real QEMU 7.2 under TCG, the test
//! guest, each test in its own network namespace):
//! - at start and at hot-plug, the up-script gets the tap's name, makes it a bridge port and
//!   sets it up; the guest then pings the bridge over it (so the script ran, with that name);
//!   its output is in the VM's log with the NIC's prefix;
//! - the downscript runs at hot-unplug and at destroy (it writes the tap's name to a marker);
//! - a failing (exit 1) and a hanging (past the deadline) script, at start and at hot-plug,
//!   leave nothing: no tap, no fd, no netdev/device in QEMU, no process; the error and the log
//!   say why.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hotplug::{
    assert_nothing_left, baseline, boot_live, detach_done, guest_ifname, iface, leaks_since,
    settle_fd_count, NicTrace,
};
use common::{env, scratch, BOOT, CMD};
use virtnet_testkit::netns::netns_id;
use virtnet_testkit::{
    add_bridge, link_details, links, runtime, with_netns, with_netns_exclusive, Snapshot,
    TestDomain,
};
use virtnet_vm::exec::{self, ExecOptions, HotplugOptions, StepId};
use virtnet_vm::{plan_attach, plan_detach, StopMode};

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// An up-script that makes its tap a port of `bridge` and sets it up.
fn bridging_script(dir: &Path, name: &str, bridge: &str) -> PathBuf {
    write_script(
        dir,
        name,
        &format!("set -e\nip link set \"$1\" master {bridge}\nip link set \"$1\" up\necho \"attached $1 to {bridge}\""),
    )
}

/// A downscript that appends `down <tap>` to `marker`.
fn marking_script(dir: &Path, marker: &Path) -> PathBuf {
    write_script(
        dir,
        "down",
        &format!("echo \"down $1\" >> {}", marker.display()),
    )
}

fn ethernet_nic(mac: &str, up: &Path, down: Option<&Path>) -> String {
    let down = down
        .map(|d| format!("<downscript path='{}'/>", d.display()))
        .unwrap_or_default();
    format!(
        "<interface type='ethernet'><mac address='{mac}'/><script path='{}'/>{down}\
         <model type='virtio'/></interface>",
        up.display()
    )
}

/// Processes in the calling thread's network namespace whose command line contains `arg`.
fn processes_with(arg: &str) -> Vec<u32> {
    let ns = netns_id();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let in_ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == ns);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if in_ns && String::from_utf8_lossy(&cmd).contains(arg) {
            v.push(pid);
        }
    }
    v
}

/// A hanging up-script: a background `sleep` and the script itself outlive any deadline.
fn hanging_script(dir: &Path, tag: &str) -> PathBuf {
    write_script(
        dir,
        &format!("hang-{tag}"),
        &format!("echo \"hanging on $1\"\nsleep 3{tag} &\nsleep 3{tag}"),
    )
}

#[test]
fn scripts_run_at_start_hotplug_unplug_and_destroy() {
    let Some(env) = env() else { return };
    with_netns_exclusive(move || {
        add_bridge("br-s", Some("10.0.30.1/24"));
        add_bridge("br-h", Some("10.0.31.1/24"));
        let scripts = tempfile::tempdir().unwrap();
        let marker = scripts.path().join("marker");
        let up0 = bridging_script(scripts.path(), "up-start", "br-s");
        let up1 = bridging_script(scripts.path(), "up-plug", "br-h");
        let down = marking_script(scripts.path(), &marker);
        let fail = write_script(
            scripts.path(),
            "fail",
            "echo \"no luck with $1\" >&2\nexit 1",
        );
        let hang = hanging_script(scripts.path(), "601");
        let (tmp, serial) = scratch();
        let (mac0, mac1) = ("52:54:00:00:30:02", "52:54:00:00:31:02");
        let dom = TestDomain::new("scripts1", &serial)
            .nic(
                &ethernet_nic(mac0, &up0, Some(&down)),
                mac0,
                Some("10.0.30.2/24"),
            )
            .ip(mac1, "10.0.31.2/24");
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let (host, mut vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let tap0 = vm.resources().nics[0].name.clone();
            // The up-script made the tap a port of br-s: QEMU only has its fd.
            let d = link_details(&tap0).expect("tap exists");
            assert!(d.contains("master br-s"), "{d}");
            let log = std::fs::read_to_string(vm.log_path()).unwrap();
            let line = format!("net0 script {}: attached {tap0} to br-s", up0.display());
            assert!(log.contains(&line), "{log}");
            con.wait_nic_up(mac0, BOOT).await.unwrap();
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.30.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "guest ping over the scripted tap failed:\n{out}");

            // Hot-plug: same, on br-h; then unplug runs the downscript.
            let opts = HotplugOptions {
                unplug_timeout: Duration::from_secs(20),
                vm_log: Some(vm.log_path().to_path_buf()),
                ..HotplugOptions::default()
            };
            let nic1 = ethernet_nic(mac1, &up1, Some(&down));
            let ap = plan_attach(&live.domain, &iface(&nic1), &env.caps).unwrap();
            let nic = exec::attach(&ap, &host, vm.qmp(), &opts)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let tap1 = nic.host.nics[0].name.clone();
            let d = link_details(&tap1).expect("hot-plugged tap exists");
            assert!(d.contains("master br-h"), "{d}");
            let up = con.wait_nic_up(mac1, BOOT).await.unwrap();
            let dev = guest_ifname(&up);
            let (out, rc) = con
                .run(&format!("ping -c 3 -W 2 -I {dev} 10.0.31.1"), CMD)
                .await
                .unwrap();
            assert_eq!(
                rc, 0,
                "guest ping over the hot-plugged scripted tap:\n{out}"
            );
            let live_iface = live.add(&nic);
            vm.add_resources(&nic.host);
            assert!(!marker.exists(), "no downscript ran yet");
            let dp = plan_detach(&live.domain, &live_iface, &live.held).unwrap();
            let report = detach_done(&dp, &host, vm.qmp(), &opts).await;
            live.remove(&report.device_id, &report.released);
            vm.remove_resources(&report.released);
            let m = std::fs::read_to_string(&marker).unwrap();
            assert_eq!(m, format!("down {tap1}\n"));
            assert!(!links().contains(&tap1), "tap {tap1} left behind");

            // Failing and hanging up-scripts at hot-plug: nothing left anywhere.
            let (snap, qemu_fds) = baseline(tmp.path(), vm.pid());
            for (script, want, timeout) in [
                (&fail, "exited with status 1", Duration::from_secs(10)),
                (
                    &hang,
                    "did not finish within 500ms",
                    Duration::from_millis(500),
                ),
            ] {
                let o = HotplugOptions {
                    script_timeout: timeout,
                    ..opts.clone()
                };
                let ap = plan_attach(
                    &live.domain,
                    &iface(&ethernet_nic(mac1, script, Some(&down))),
                    &env.caps,
                )
                .unwrap();
                let t = Instant::now();
                let e = exec::attach(&ap, &host, vm.qmp(), &o).await.unwrap_err();
                assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
                let msg = e.to_string();
                assert!(msg.contains(want), "{msg}");
                assert!(msg.contains(&script.display().to_string()), "{msg}");
                assert!(msg.contains("everything it had set up was undone"), "{msg}");
                let what = format!("{} at hot-plug", script.display());
                assert_nothing_left(vm.qmp(), &NicTrace::of_plan(&ap), &what).await;
                let n = settle_fd_count(vm.pid(), qemu_fds, Duration::from_secs(5)).await;
                assert_eq!(n, qemu_fds, "QEMU's fds after {what}");
                let leaks = leaks_since(&snap);
                assert!(leaks.is_empty(), "{what}: {leaks}");
                assert!(
                    processes_with("sleep 3601").is_empty(),
                    "{what}: sleep left"
                );
            }
            let log = std::fs::read_to_string(vm.log_path()).unwrap();
            assert!(log.contains("no luck with"), "{log}");
            assert!(log.contains("did not finish within 500ms"), "{log}");
            let m = std::fs::read_to_string(&marker).unwrap();
            assert_eq!(
                m,
                format!("down {tap1}\n"),
                "no downscript after a failed script"
            );

            // Destroy runs the boot NIC's downscript.
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            let m = std::fs::read_to_string(&marker).unwrap();
            assert_eq!(m, format!("down {tap1}\ndown {tap0}\n"));
            // The console's socket and the host's netlink socket are ours, not leaks.
            drop((con, host));
            before.assert_no_leaks("scripted NICs: start, hot-plug, unplug, destroy");
        });
    });
}

#[test]
fn failing_and_hanging_scripts_at_start_leave_nothing() {
    let Some(env) = env() else { return };
    with_netns(move || {
        add_bridge("br-s", None);
        let scripts = tempfile::tempdir().unwrap();
        let marker = scripts.path().join("marker");
        let down = marking_script(scripts.path(), &marker);
        let fail = write_script(scripts.path(), "fail", "echo \"cannot set up $1\"\nexit 1");
        let hang = hanging_script(scripts.path(), "602");
        for (script, want, timeout) in [
            (&fail, "exited with status 1", Duration::from_secs(10)),
            (
                &hang,
                "did not finish within 500ms",
                Duration::from_millis(500),
            ),
        ] {
            let (tmp, serial) = scratch();
            let mac = "52:54:00:00:32:02";
            let dom = TestDomain::new("scripts2", &serial).nic(
                &ethernet_nic(mac, script, Some(&down)),
                mac,
                None,
            );
            let (_, mut plan) = env.plan_in(&dom, tmp.path());
            // Keep the log out of the run dir (removed on failure) to read it afterwards.
            plan.log_path = tmp.path().join("vm.log");
            let opts = ExecOptions {
                script_timeout: timeout,
                ..ExecOptions::default()
            };
            runtime().block_on(async {
                let before = Snapshot::take(&[&tmp.path().join("run")]);
                let host = virtnet_host::LinuxHost::new().unwrap();
                let t = Instant::now();
                let e = exec::start(&plan, &host, &opts).await.unwrap_err();
                assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
                assert_eq!(e.failed_step(), Some(StepId::Host(1)), "{e}");
                let msg = e.to_string();
                assert!(msg.contains(want), "{msg}");
                assert!(msg.contains(&script.display().to_string()), "{msg}");
                assert!(msg.contains("everything it had set up was undone"), "{msg}");
                // The tap is gone, no QEMU ran, no script process is left.
                before.assert_no_leaks(&format!("{} at start", script.display()));
                assert_eq!(links().iter().filter(|l| l.starts_with("vnet")).count(), 0);
                assert!(processes_with("sleep 3602").is_empty(), "sleep left");
                assert!(!plan.run_dir.exists());
                let log = std::fs::read_to_string(&plan.log_path).unwrap();
                assert!(
                    log.contains(&format!("net0 script {}", script.display())),
                    "{log}"
                );
                assert!(log.contains(want), "{log}");
            });
        }
        assert!(
            !marker.exists(),
            "a downscript ran after a failed up-script"
        );
    });
}
