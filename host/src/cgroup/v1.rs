//! Writing a VM's limits into a cgroup v1 directory.

use std::path::Path;

use super::{write_file, CgroupLimits, Controller};
use crate::error::{HostError, Result};

/// Writes the limits of `l` that belong to `controllers` (the hierarchy's) into `dir`.
pub(super) fn write_limits(dir: &Path, controllers: &[Controller], l: &CgroupLimits) -> Result<()> {
    for c in controllers {
        match c {
            Controller::Memory => {
                if let Some(b) = l.memory_max {
                    write_file(dir, "memory.limit_in_bytes", &b.to_string())?;
                }
                if let Some(b) = l.memory_soft {
                    write_file(dir, "memory.soft_limit_in_bytes", &b.to_string())?;
                }
                if let Some(b) = l.memory_swap_max {
                    if !dir.join("memory.memsw.limit_in_bytes").exists() {
                        return Err(HostError::CgroupUnsupported {
                            message: "<memtune><swap_hard_limit> cannot be enforced: swap \
                                      accounting is off on this host (no \
                                      memory.memsw.limit_in_bytes; boot with swapaccount=1) \
                                      — remove the setting"
                                .into(),
                        });
                    }
                    write_file(dir, "memory.memsw.limit_in_bytes", &b.to_string())?;
                }
            }
            Controller::Pids => {
                if let Some(n) = l.pids_max {
                    write_file(dir, "pids.max", &n.to_string())?;
                }
            }
            Controller::Cpu => {
                if let Some(s) = l.cpu_shares {
                    write_file(dir, "cpu.shares", &s.to_string())?;
                }
                if let Some(p) = l.cpu_period_us {
                    write_file(dir, "cpu.cfs_period_us", &p.to_string())?;
                }
                if let Some(q) = l.cpu_quota_us {
                    let q = if q < 0 { -1 } else { q };
                    write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
        }
    }
    Ok(())
}
