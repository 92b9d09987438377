//! virtnet-vm: turns a domain into a running VM, keeping planning apart from doing.
//!
//! - [`plan`]: [`plan_start`] is pure. It decides every host step (taps, macvtaps, VFs), the
//!   fd numbers QEMU inherits, QEMU's argv and the QMP commands after start, and returns them
//!   as a [`StartPlan`] value that can be shown, snapshot-tested and stored. The per-interface
//!   [`plan::nic_plan`] is what hot-plug reuses, with `getfd` names instead of fd numbers
//!   ([`FdSink`]).
//! - [`exec`]: [`exec::start`] carries a plan out on a [`virtnet_host::HostNet`] and real QEMU,
//!   rolling everything back on any failure, and returns a [`RunningVm`].
//! - Live NIC hot-plug: [`plan_attach`] / [`exec::attach`] (every step undone on failure) and
//!   [`plan_detach`] / [`exec::detach`] (a removal the guest does not acknowledge in time stays
//!   pending; [`exec::complete_detach`] finishes it).
//!
//! ```no_run
//! # async fn demo(xml: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use virtnet_vm::{exec, plan_start, probe_caps, PlanContext, StopMode};
//! let domain = virtnet_conf::load_domain(xml).map_err(|e| format!("{e:?}"))?;
//! let qemu = "/usr/bin/qemu-system-x86_64";
//! let ctx = PlanContext::new(qemu, probe_caps(qemu).await?, "/run/virtnet/vm1");
//! let plan = plan_start(&domain, &ctx)?;
//! print!("{}", plan.summary());
//! let host = virtnet_host::LinuxHost::new()?;
//! let vm = exec::start(&plan, &host, &exec::ExecOptions::default()).await?;
//! vm.stop(&host, StopMode::Destroy).await?;
//! # Ok(()) }
//! ```

mod error;
pub mod exec;
mod identity;
pub mod plan;

use std::path::Path;

pub use error::{MigrationFailure, VmError};
pub use exec::{
    AttachedNic, DetachOutcome, ExecOptions, HostResources, HotplugOptions, NicResourceKind,
    PendingDetaches, RunningVm, StepId, StopMode, StopReport,
};
pub use identity::sandbox_for;
pub use plan::{
    destination_domain, ovs_iface_ids, plan_attach, plan_detach, plan_migrate, plan_start,
    AttachPlan, AttachStepId, CgroupOptions, DetachPlan, FdSink, HostStep, MigrateOptions,
    MigratePlan, NicPlan, OvnMove, PlanContext, StartPlan, Stream, DEFAULT_QEMU_PIDS_MAX,
};

use virtnet_qemu::{qemu_binary_version, QemuCaps};

/// Probes what the plan needs to know about a QEMU binary and this host: its version
/// (`-version`) and whether `/dev/vhost-net` can be opened.
pub async fn probe_caps(qemu_binary: impl AsRef<Path>) -> Result<QemuCaps, VmError> {
    let path = qemu_binary.as_ref();
    let version = qemu_binary_version(path)
        .await
        .map_err(|source| VmError::Qemu {
            what: format!("probe {}", path.display()),
            source: Box::new(source),
        })?;
    let vhost_net = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/vhost-net")
        .is_ok();
    Ok(QemuCaps { version, vhost_net })
}
