//! The VM's cgroup in the start plan: its name and limits, from `<memtune>`, `<cputune>`
//! and virtnetd's pids cap. The one place that maps the XML to cgroup limits.

use serde::{Deserialize, Serialize};
use virtnet_conf::Domain;
use virtnet_host::cgroup::PARENT;
use virtnet_host::{CgroupLimits, CgroupSpec};

use crate::error::VmError;

/// virtnetd's default cap on QEMU's tasks (`--qemu-pids-max`): far above what QEMU needs
/// (a thread per vCPU, its I/O worker pool of up to 64, a few more), far below what a
/// runaway or compromised QEMU would need to exhaust the host's pids.
pub const DEFAULT_QEMU_PIDS_MAX: u64 = 4096;

/// How VMs get their cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupOptions {
    /// The most tasks QEMU may have (`pids.max`); `None` = no cap.
    pub pids_max: Option<u64>,
}

impl Default for CgroupOptions {
    fn default() -> Self {
        CgroupOptions {
            pids_max: Some(DEFAULT_QEMU_PIDS_MAX),
        }
    }
}

/// The group of `domain` (`virtnet/<uuid>`, so concurrent VMs never share one) and its
/// limits.
pub(crate) fn cgroup_spec(domain: &Domain, opts: &CgroupOptions) -> Result<CgroupSpec, VmError> {
    let uuid = domain.uuid().ok_or_else(|| {
        VmError::InvalidContext(
            "the domain has no UUID (fill its defaults first): its cgroup is named by it".into(),
        )
    })?;
    let kib = |v: Option<virtnet_conf::domain::At<u64>>| v.map(|a| a.value.saturating_mul(1024));
    let mut limits = CgroupLimits {
        pids_max: opts.pids_max,
        ..CgroupLimits::default()
    };
    if let Some(m) = &domain.memtune {
        limits.memory_max = kib(m.hard_limit_kib);
        limits.memory_soft = kib(m.soft_limit_kib);
        limits.memory_swap_max = kib(m.swap_hard_limit_kib);
    }
    if let Some(c) = &domain.cputune {
        limits.cpu_shares = c.shares.map(|a| a.value);
        limits.cpu_period_us = c.global_period.map(|a| a.value);
        limits.cpu_quota_us = c.global_quota.map(|a| a.value);
    }
    Ok(CgroupSpec {
        name: format!("{PARENT}/{uuid}"),
        limits,
    })
}
