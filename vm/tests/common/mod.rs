//! Shared helpers of the end-to-end tests (real QEMU under TCG, root, own namespaces).
#![allow(dead_code)]

pub mod hotplug;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use virtnet_host::{HostNet, LinuxHost};
use virtnet_qemu::QemuCaps;
use virtnet_testkit::leak::process_argv;
use virtnet_testkit::{link_details, runtime, GuestArtifacts, SerialConsole, Snapshot, TestDomain};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, PlanContext, RunningVm, StartPlan, StopMode, VmError};

/// Generous: guests boot in ~3 s alone, slower when several share the 2 cores.
pub const BOOT: Duration = Duration::from_secs(90);
pub const CMD: Duration = Duration::from_secs(60);

/// What every e2e test needs; `None` (after printing why) when not root or no QEMU.
pub struct Env {
    pub qemu: PathBuf,
    pub caps: QemuCaps,
    pub guest: &'static GuestArtifacts,
}

pub fn env() -> Option<Env> {
    let qemu = virtnet_testkit::e2e_qemu()?;
    let guest = virtnet_testkit::guest();
    let caps = virtnet_testkit::runtime()
        .block_on(virtnet_vm::probe_caps(&qemu))
        .expect("probe QEMU");
    Some(Env { qemu, caps, guest })
}

impl Env {
    /// Loads `xml` and plans it with its run dir at `run_dir`, confined as virtnetd does by
    /// default (the `virtnet-qemu` user). The run dir's parent (the test's scratch dir, which
    /// stands for a user's directory QEMU may use by path, e.g. a vhost-user socket it listens
    /// on) is made usable by that user.
    pub fn plan(&self, xml: &str, run_dir: &Path) -> StartPlan {
        let d = virtnet_conf::load_domain(xml)
            .unwrap_or_else(|e| panic!("domain does not load: {e:?}\n{xml}"));
        let mut ctx = PlanContext::new(&self.qemu, self.caps, run_dir);
        let default = virtnet_testkit::sandbox().map(|s| s.user);
        ctx.sandbox =
            virtnet_vm::sandbox_for(&d, default.as_ref()).unwrap_or_else(|e| panic!("{e}"));
        if let (Some(sb), Some(scratch)) = (&ctx.sandbox, run_dir.parent()) {
            virtnet_testkit::sandbox_run_dir(scratch, sb);
        }
        plan_start(&d, &ctx).unwrap_or_else(|e| panic!("plan: {e}"))
    }

    /// `dom`'s XML (booting the test guest) and its plan, with its run dir at `dir/run`.
    pub fn plan_in(&self, dom: &TestDomain, dir: &Path) -> (String, StartPlan) {
        let xml = dom.xml(self.guest);
        let plan = self.plan(&xml, &dir.join("run"));
        (xml, plan)
    }
}

/// A fresh temporary dir for one test VM, and the path of its serial console socket in it.
pub fn scratch() -> (TempDir, PathBuf) {
    let tmp = virtnet_testkit::traversable_tempdir();
    let serial = tmp.path().join("serial.sock");
    (tmp, serial)
}

/// [`start_with_console`] with the default options; panics if the start fails.
pub async fn start(
    plan: &StartPlan,
    host: &dyn HostNet,
    serial: &Path,
) -> (RunningVm, SerialConsole) {
    start_with_console(plan, host, &ExecOptions::default(), serial)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`start`], then waits until the guest is ready for commands.
pub async fn boot(
    plan: &StartPlan,
    host: &dyn HostNet,
    serial: &Path,
) -> (RunningVm, SerialConsole) {
    let (vm, mut con) = start(plan, host, serial).await;
    con.wait_ready(BOOT).await.unwrap();
    (vm, con)
}

/// Starts the VM and connects to its serial console while its CPUs are still paused, so the
/// console sees the guest from its first line.
pub async fn start_with_console(
    plan: &StartPlan,
    host: &dyn HostNet,
    opts: &ExecOptions,
    serial: &Path,
) -> Result<(RunningVm, SerialConsole), VmError> {
    let (vm, con) = tokio::join!(
        exec::start(plan, host, opts),
        SerialConsole::connect(serial, Duration::from_secs(20))
    );
    let vm = vm?;
    if plan.sandbox.is_some() {
        virtnet_testkit::assert_qemu_confined(vm.pid());
    }
    let con = con.unwrap_or_else(|e| panic!("serial console: {e}"));
    Ok((vm, con))
}

/// The value of the first `-netdev` in an argv.
pub fn netdevs(argv: &[String]) -> Vec<String> {
    argv.iter()
        .zip(argv.iter().skip(1))
        .filter(|(o, _)| *o == "-netdev")
        .map(|(_, v)| v.clone())
        .collect()
}

/// A VM with one NIC over which its guest pings the host side ([`ping_over_one_nic`]).
pub struct OneNic<'a> {
    /// The domain's name.
    pub name: &'a str,
    /// The `<interface>` XML.
    pub nic: &'a str,
    /// Its MAC.
    pub mac: &'a str,
    /// The guest's address on it (`10.0.1.2/24`).
    pub addr: &'a str,
    /// The host-side address the guest pings.
    pub peer: &'a str,
    /// What `ip -d link show` of the NIC's host link must contain while the VM runs.
    pub link_has: &'a [&'a str],
    /// Whether the host link stays after the stop (it is not ours) rather than going away.
    pub link_stays: bool,
    /// The failure message of the guest's ping (its output follows).
    pub ping_failed: &'a str,
    /// What stopping the VM is, for the leak check.
    pub stopping: &'a str,
}

/// Starts `t`'s VM in a fresh scratch dir and checks what every NIC type must do: QEMU got the
/// NIC by fd, never by name; its host link is as `t` says; the guest brings it up with its
/// address and pings the peer over it; stopping the VM removes the link (or leaves it, when it
/// is not ours) and leaves nothing else behind. `check` looks at the running VM.
pub fn ping_over_one_nic(env: &Env, t: &OneNic, check: impl FnOnce(&RunningVm)) {
    let (tmp, serial) = scratch();
    let dom = TestDomain::new(t.name, &serial).nic(t.nic, t.mac, Some(t.addr));
    let (_, plan) = env.plan_in(&dom, tmp.path());
    runtime().block_on(async {
        let before = Snapshot::take(&[tmp.path()]);
        let host = LinuxHost::new().unwrap();
        let (vm, mut con) = start(&plan, &host, &serial).await;
        let argv = process_argv(vm.pid());
        let nd = netdevs(&argv);
        assert_eq!(nd.len(), 1, "{argv:?}");
        assert!(
            nd[0].contains(r#""fd":"#) && !nd[0].contains("ifname"),
            "{}",
            nd[0]
        );
        let link = vm.resources().nics[0].name.clone();
        let details = link_details(&link).unwrap_or_else(|| panic!("no host link {link}"));
        for want in t.link_has {
            assert!(details.contains(want), "{details}");
        }
        check(&vm);

        let up = con.wait_nic_up(t.mac, BOOT).await.unwrap();
        assert!(up.ends_with(t.addr), "{up}");
        let ping = format!("ping -c 3 -W 2 {}", t.peer);
        let (out, rc) = con.run(&ping, CMD).await.unwrap();
        assert_eq!(rc, 0, "{}:\n{out}", t.ping_failed);
        assert!(out.contains(&format!("bytes from {}", t.peer)), "{out}");

        vm.stop(&host, StopMode::Destroy).await.unwrap();
        let after = link_details(&link);
        if t.link_stays {
            let after = after.unwrap_or_else(|| panic!("{link} is not ours but went away"));
            assert!(t.link_has.iter().all(|w| after.contains(w)), "{after}");
        } else {
            assert!(after.is_none(), "{link} left behind");
        }
        before.assert_no_leaks(t.stopping);
    });
}
