//! Nothing is left behind — no tap, macvtap, fd, process, socket or run dir — after a stop,
//! after QEMU dies on its own, and after a failure at each step of the start (injected, and
//! real ones: a bad QEMU argument, a QMP command QEMU rejects). Runs alone in its process
//! (`with_netns_exclusive`) so the process's fds can be compared too.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{env, start_with_console, Env, BOOT};
use serde_json::json;
use virtnet_host::LinuxHost;
use virtnet_testkit::{
    add_bridge, bridge_nic, ip, link_details, runtime, with_netns_exclusive, Snapshot, TestDomain,
};
use virtnet_vm::exec::{self, ExecOptions, StepId};
use virtnet_vm::plan::QmpCommand;
use virtnet_vm::{StartPlan, StopMode, VmError};

/// A domain with every kind of host step: a managed tap on a bridge, a macvtap, an unmanaged
/// tap; the second NIC's link starts down (a `set_link` before `cont`).
fn setup(env: &Env, dir: &Path) -> (StartPlan, std::path::PathBuf) {
    add_bridge("br0", None);
    ip("link add veth0 type veth peer name veth1");
    ip("link set veth0 up");
    ip("tuntap add dev tap-ext mode tap vnet_hdr");
    let serial = dir.join("serial.sock");
    let xml = TestDomain::new("cleanup", &serial)
        .nic(&bridge_nic("52:54:00:00:05:01", "br0"), "", None)
        .nic(
            "<interface type='direct'><mac address='52:54:00:00:05:02'/>\
             <source dev='veth0' mode='bridge'/><model type='virtio'/>\
             <link state='down'/></interface>",
            "",
            None,
        )
        .nic(
            "<interface type='ethernet'><mac address='52:54:00:00:05:03'/>\
             <target dev='tap-ext' managed='no'/><model type='virtio'/></interface>",
            "",
            None,
        )
        .xml(env.guest);
    (env.plan(&xml, &dir.join("run")), serial)
}

fn opts(fail_at: Option<StepId>) -> ExecOptions {
    ExecOptions {
        fail_at,
        start_timeout: Duration::from_secs(20),
        ..ExecOptions::default()
    }
}

#[test]
fn nothing_left_behind() {
    let Some(env) = env() else { return };
    with_netns_exclusive(move || {
        let tmp = tempfile::tempdir().unwrap();
        let (plan, serial) = setup(&env, tmp.path());
        assert_eq!(plan.host_steps.len(), 3);
        assert_eq!(plan.post_start.len(), 2, "set_link, cont");
        let rt = runtime();
        rt.block_on(async {
            let host = LinuxHost::new().unwrap();
            let before = Snapshot::take(&[tmp.path()]);
            assert!(before.fds.len() > 3, "fds are compared: {:?}", before.fds);

            // 1. A failure injected at each step in turn.
            for step in StepId::all(&plan) {
                let e = exec::start(&plan, &host, &opts(Some(step)))
                    .await
                    .unwrap_err();
                assert_eq!(e.failed_step(), Some(step), "{e}");
                assert!(
                    e.to_string()
                        .contains("everything it had set up was undone"),
                    "{e}"
                );
                before.assert_no_leaks(&format!("a failure injected at {step}"));
                assert!(link_details("tap-ext").is_some(), "the unmanaged tap stays");
            }

            // 2. QEMU refusing its command line (a bad argument appended).
            let mut bad = plan.clone();
            bad.argv.push("-no-such-option".into());
            let e = exec::start(&bad, &host, &opts(None)).await.unwrap_err();
            assert_eq!(e.failed_step(), Some(StepId::Spawn), "{e}");
            assert!(
                e.to_string().contains("no-such-option"),
                "QEMU's log tail is shown: {e}"
            );
            before.assert_no_leaks("QEMU exiting on a bad argument");

            // 3. A post-start command QEMU rejects.
            let mut bad = plan.clone();
            bad.post_start.insert(
                0,
                QmpCommand {
                    execute: "set_link".into(),
                    arguments: json!({"name": "no-such-nic", "up": false}),
                },
            );
            let e = exec::start(&bad, &host, &opts(None)).await.unwrap_err();
            assert_eq!(e.failed_step(), Some(StepId::PostStart(0)), "{e}");
            assert!(
                matches!(&e, VmError::StartFailed { cause, .. }
                if cause.to_string().contains("no-such-nic")),
                "{e}"
            );
            before.assert_no_leaks("a rejected post-start command");

            // 4. A full start, the guest up, then stop.
            let (vm, mut con) = start_with_console(&plan, &host, &opts(None), &serial)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            con.wait_nic_up("52:54:00:00:05:01", BOOT).await.unwrap();
            let (out, rc) = con.run("cat /sys/class/net/*/carrier", BOOT).await.unwrap();
            assert_eq!(rc, 0);
            assert!(
                out.contains('0'),
                "the NIC started with link down has no carrier: {out}"
            );
            drop(con);
            let report = vm
                .stop(&host, StopMode::Graceful(Duration::from_secs(20)))
                .await
                .unwrap();
            assert_eq!(
                report.method,
                virtnet_qemu::StopMethod::Powerdown,
                "{report:?}"
            );
            before.assert_no_leaks("a graceful stop");

            // 5. QEMU dying on its own: noticed, and stop still releases everything.
            let vm = exec::start(&plan, &host, &opts(None)).await.unwrap();
            let mv = vm.resources().nics[1].name.clone();
            // SAFETY: kill(2) on QEMU's pid, our child, still unreaped.
            assert_eq!(unsafe { libc::kill(vm.pid() as i32, libc::SIGKILL) }, 0);
            let status = tokio::time::timeout(Duration::from_secs(10), vm.wait_exit())
                .await
                .expect("the exit is noticed");
            assert!(!status.success());
            assert!(vm.exited().is_some());
            assert!(
                link_details(&mv).is_some(),
                "a macvtap outlives QEMU until stop"
            );
            let report = vm.stop(&host, StopMode::Destroy).await.unwrap();
            assert_eq!(report.method, virtnet_qemu::StopMethod::AlreadyExited);
            before.assert_no_leaks("QEMU killed from outside, then stop");
        });
    });
}
