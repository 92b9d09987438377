//! Delegating controllers and writing a VM's limits in the unified (v2) hierarchy.

use std::path::Path;

use super::{write_file, CgroupLimits, Controller, Hierarchy};
use crate::error::{HostError, Result};

/// cgroup v2 `cpu.weight` range (libvirt writes `<shares>` there unchanged and refuses
/// values outside it).
const WEIGHT_RANGE: (u64, u64) = (1, 10_000);

/// Enables the hierarchy's controllers for the groups on the way to `name` (each parent's
/// `cgroup.subtree_control`). Fails with EBUSY when virtnetd's own group holds processes
/// and is not the root (the v2 "no internal processes" rule): the caller falls back.
pub(super) fn enable(h: &Hierarchy, name: &str) -> Result<()> {
    let enable: Vec<String> = h
        .controllers
        .iter()
        .map(|c| format!("+{}", c.as_str()))
        .collect();
    let enable = enable.join(" ");
    let mut dir = h.own_dir.clone();
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop(); // the VM's own group enables nothing below it
    write_file(&dir, "cgroup.subtree_control", &enable)?;
    for p in parts {
        dir.push(p);
        if let Err(e) = std::fs::create_dir(&dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(HostError::Cgroup {
                    op: "create".into(),
                    path: dir,
                    source: e,
                });
            }
        }
        write_file(&dir, "cgroup.subtree_control", &enable)?;
    }
    Ok(())
}

/// Writes the limits of `l` that belong to `controllers` into the v2 group `dir`.
pub(super) fn write_limits(dir: &Path, controllers: &[Controller], l: &CgroupLimits) -> Result<()> {
    for c in controllers {
        match c {
            Controller::Memory => {
                if let Some(b) = l.memory_max {
                    write_file(dir, "memory.max", &b.to_string())?;
                }
                if let Some(b) = l.memory_soft {
                    write_file(dir, "memory.high", &b.to_string())?;
                }
                if let Some(b) = l.memory_swap_max {
                    let swap = b.saturating_sub(l.memory_max.unwrap_or(0));
                    write_file(dir, "memory.swap.max", &swap.to_string())?;
                }
            }
            Controller::Pids => {
                if let Some(n) = l.pids_max {
                    write_file(dir, "pids.max", &n.to_string())?;
                }
            }
            Controller::Cpu => {
                if let Some(s) = l.cpu_shares {
                    if s < WEIGHT_RANGE.0 || s > WEIGHT_RANGE.1 {
                        return Err(HostError::CgroupUnsupported {
                            message: format!(
                                "<cputune><shares> {s} is outside cgroup v2's cpu.weight range \
                                 {}..={}: use a value in it",
                                WEIGHT_RANGE.0, WEIGHT_RANGE.1
                            ),
                        });
                    }
                    write_file(dir, "cpu.weight", &s.to_string())?;
                }
                if l.cpu_period_us.is_some() || l.cpu_quota_us.is_some() {
                    let quota = match l.cpu_quota_us {
                        Some(q) if q >= 0 => q.to_string(),
                        _ => "max".into(),
                    };
                    let period = l.cpu_period_us.unwrap_or(100_000);
                    write_file(dir, "cpu.max", &format!("{quota} {period}"))?;
                }
            }
        }
    }
    Ok(())
}
