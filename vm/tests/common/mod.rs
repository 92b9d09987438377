//! Shared helpers of the end-to-end tests (real QEMU under TCG, root, own namespaces).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use virtnet_host::HostNet;
use virtnet_qemu::QemuCaps;
use virtnet_testkit::{GuestArtifacts, SerialConsole};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, PlanContext, RunningVm, StartPlan, VmError};

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
    /// Loads `xml` and plans it with its run dir at `run_dir`.
    pub fn plan(&self, xml: &str, run_dir: &Path) -> StartPlan {
        let d = virtnet_conf::load_domain(xml)
            .unwrap_or_else(|e| panic!("domain does not load: {e:?}\n{xml}"));
        plan_start(&d, &PlanContext::new(&self.qemu, self.caps, run_dir))
            .unwrap_or_else(|e| panic!("plan: {e}"))
    }
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
