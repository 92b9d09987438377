//! The per-VM cgroup: QEMU in its own group, with the memory, pids and CPU limits of the
//! domain, removed when QEMU is gone.
//!
//! [`probe`] finds what the host offers (cgroup v2 with controllers, or v1 mounts, or
//! nothing); [`create`] makes the VM's group below virtnetd's own group (`virtnet/<uuid>`
//! in each usable hierarchy), writes the limits and opens each group's `cgroup.procs` for
//! QEMU to join itself between fork and exec (so its guest memory is charged to the group
//! from the first page); [`remove`] removes the group after QEMU has exited.
//!
//! Enforce or refuse: a limit the domain asks for whose controller the host does not offer
//! is an error ([`HostError::CgroupUnsupported`]); with no limit asked, a host without
//! usable cgroups runs the VM without a group and says so ([`CgroupPlacement::Unavailable`]).
//! The pids cap is virtnetd's default, not the domain's: applied where the pids controller
//! is, skipped (and visible in the placement's controllers) where it is not.

mod probe;
mod v1;
mod v2;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{HostError, Result};

pub use probe::{probe, probe_from, Choice, Hierarchy, Layout};

/// The parent group of every VM group, below virtnetd's own group.
pub const PARENT: &str = "virtnet";

/// A cgroup controller virtnet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    /// CPU weight and bandwidth.
    Cpu,
    /// Memory limits.
    Memory,
    /// The number of tasks.
    Pids,
}

impl Controller {
    /// The kernel's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }

    /// From the kernel's name (`None` for controllers virtnet does not use).
    pub fn parse(s: &str) -> Option<Controller> {
        match s {
            "cpu" => Some(Controller::Cpu),
            "memory" => Some(Controller::Memory),
            "pids" => Some(Controller::Pids),
            _ => None,
        }
    }
}

/// The limits of one VM's group (from `<memtune>`, `<cputune>` and virtnetd's pids cap).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// `<hard_limit>` in bytes (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// `<soft_limit>` in bytes (v1 `memory.soft_limit_in_bytes`, v2 `memory.high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_soft: Option<u64>,
    /// `<swap_hard_limit>` in bytes: memory plus swap (v1 `memory.memsw.limit_in_bytes`,
    /// v2 `memory.swap.max` = this minus the hard limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap_max: Option<u64>,
    /// The most tasks (threads) QEMU may have (`pids.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// `<shares>` (v1 `cpu.shares`, v2 `cpu.weight` with the same value, as libvirt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// `<global_period>` in µs (v1 `cpu.cfs_period_us`, v2 the second field of `cpu.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period_us: Option<u64>,
    /// `<global_quota>` in µs, negative = unlimited (v1 `cpu.cfs_quota_us`, v2 `cpu.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota_us: Option<i64>,
}

impl CgroupLimits {
    /// The domain settings that need `c`, named as in the XML (empty: none asked).
    fn asked_of(&self, c: Controller) -> Vec<&'static str> {
        let mut v = Vec::new();
        match c {
            Controller::Memory => {
                if self.memory_max.is_some() {
                    v.push("<memtune><hard_limit>");
                }
                if self.memory_soft.is_some() {
                    v.push("<memtune><soft_limit>");
                }
                if self.memory_swap_max.is_some() {
                    v.push("<memtune><swap_hard_limit>");
                }
            }
            Controller::Cpu => {
                if self.cpu_shares.is_some() {
                    v.push("<cputune><shares>");
                }
                if self.cpu_period_us.is_some() {
                    v.push("<cputune><global_period>");
                }
                if self.cpu_quota_us.is_some() {
                    v.push("<cputune><global_quota>");
                }
            }
            Controller::Pids => {}
        }
        v
    }
}

/// One VM's group to make: `name` (`virtnet/<uuid>`, relative to virtnetd's own group) and
/// its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSpec {
    /// The group's path below virtnetd's own group.
    pub name: String,
    /// What to write into it.
    pub limits: CgroupLimits,
}

/// Which cgroup version a group is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// Per-controller hierarchies.
    V1,
    /// The unified hierarchy.
    V2,
}

/// One directory of a VM's group and the controllers it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// The group directory (`/sys/fs/cgroup/memory/.../virtnet/<uuid>`).
    pub path: PathBuf,
    /// Its controllers (v2: all in one directory).
    pub controllers: Vec<Controller>,
}

/// A VM's group as made: one directory per v1 hierarchy, or one v2 directory. Stored in the
/// live status (through [`crate::HostUndo::RemoveCgroup`]) to remove it after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupGroup {
    /// v1 or v2.
    pub version: CgroupVersion,
    /// Its directories.
    pub dirs: Vec<CgroupDir>,
}

impl CgroupGroup {
    /// `v1: /sys/fs/cgroup/memory/x (memory), /sys/fs/cgroup/pids/x (pids)`.
    pub fn describe(&self) -> String {
        let dirs: Vec<String> = self
            .dirs
            .iter()
            .map(|d| {
                let c: Vec<&str> = d.controllers.iter().map(|c| c.as_str()).collect();
                format!("{} ({})", d.path.display(), c.join(","))
            })
            .collect();
        let v = match self.version {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        };
        format!("{v}: {}", dirs.join(", "))
    }

    /// Every controller the group carries.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut v: Vec<Controller> = self
            .dirs
            .iter()
            .flat_map(|d| d.controllers.iter().copied())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Where a VM's processes are accounted: its own group, or nowhere (and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CgroupPlacement {
    /// In its own group.
    Placed(CgroupGroup),
    /// No group: the host offers no usable controller.
    Unavailable {
        /// Why, in words.
        reason: String,
    },
}

impl CgroupPlacement {
    /// The one line `dominfo` and the log show.
    pub fn describe(&self) -> String {
        match self {
            CgroupPlacement::Placed(g) => g.describe(),
            CgroupPlacement::Unavailable { reason } => format!("none usable: {reason}"),
        }
    }
}

/// A group made by [`create`]: where, and each directory's `cgroup.procs` opened for
/// writing (QEMU joins by writing `0` into each between fork and exec).
#[derive(Debug)]
pub struct CreatedCgroup {
    /// Where the VM goes.
    pub placement: CgroupPlacement,
    /// The `cgroup.procs` files to join (empty when unavailable).
    pub procs: Vec<OwnedFd>,
}

/// Probes the host and makes the group `spec` describes (see the module docs).
pub fn create(spec: &CgroupSpec) -> Result<CreatedCgroup> {
    let layout = probe().map_err(|source| HostError::Cgroup {
        op: "read".into(),
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    create_in(&layout, spec)
}

/// [`create`] on a given layout.
pub fn create_in(layout: &Layout, spec: &CgroupSpec) -> Result<CreatedCgroup> {
    check_name(&spec.name)?;
    let mut choice = layout.choose();
    if let Choice::V2(h) = &choice {
        if let Err(e) = v2::enable(h, &spec.name) {
            let why = format!(
                "cgroup v2 controllers cannot be delegated below {}: {e}",
                h.own_dir.display()
            );
            choice = if layout.v1.is_empty() {
                Choice::None(why)
            } else {
                Choice::V1(layout.v1.clone())
            };
        }
    }
    let hierarchies: Vec<(CgroupVersion, Hierarchy)> = match choice {
        Choice::V2(h) => vec![(CgroupVersion::V2, h)],
        Choice::V1(v) => v.into_iter().map(|h| (CgroupVersion::V1, h)).collect(),
        Choice::None(reason) => {
            refuse_missing(&spec.limits, &[], &reason)?;
            return Ok(CreatedCgroup {
                placement: CgroupPlacement::Unavailable { reason },
                procs: Vec::new(),
            });
        }
    };
    let offered: Vec<Controller> = hierarchies
        .iter()
        .flat_map(|(_, h)| h.controllers.iter().copied())
        .collect();
    refuse_missing(&spec.limits, &offered, "")?;
    let version = hierarchies[0].0;
    let mut group = CgroupGroup {
        version,
        dirs: Vec::new(),
    };
    let mut procs = Vec::new();
    let made = (|| -> Result<()> {
        for (_, h) in &hierarchies {
            let dir = h.own_dir.join(&spec.name);
            make_dir(&dir)?;
            group.dirs.push(CgroupDir {
                path: dir.clone(),
                controllers: h.controllers.clone(),
            });
            match version {
                CgroupVersion::V1 => v1::write_limits(&dir, &h.controllers, &spec.limits)?,
                CgroupVersion::V2 => v2::write_limits(&dir, &h.controllers, &spec.limits)?,
            }
            procs.push(open_procs(&dir)?);
        }
        Ok(())
    })();
    if let Err(e) = made {
        let _ = remove(&group);
        return Err(e);
    }
    Ok(CreatedCgroup {
        placement: CgroupPlacement::Placed(group),
        procs,
    })
}

/// Refuses limits whose controller is not in `offered`.
fn refuse_missing(limits: &CgroupLimits, offered: &[Controller], reason: &str) -> Result<()> {
    for c in [Controller::Memory, Controller::Cpu] {
        let asked = limits.asked_of(c);
        if !asked.is_empty() && !offered.contains(&c) {
            let why = if reason.is_empty() {
                format!("the host's cgroups have no {} controller", c.as_str())
            } else {
                reason.to_string()
            };
            return Err(HostError::CgroupUnsupported {
                message: format!(
                    "{} cannot be enforced: {why}; mount the cgroup {} controller or remove \
                     the setting",
                    asked.join(", "),
                    c.as_str()
                ),
            });
        }
    }
    Ok(())
}

/// Group names are relative paths of plain components (`virtnet/<uuid>`).
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if ok {
        Ok(())
    } else {
        Err(HostError::InvalidSpec {
            device: name.into(),
            reason: "a cgroup name must be a relative path of plain components".into(),
        })
    }
}

/// Makes the group directory (its parents as needed). A directory left by an earlier run
/// of the same VM is reused when empty (removed and made again), refused when in use.
fn make_dir(dir: &Path) -> Result<()> {
    let err = |op: &str| {
        let op = op.to_string();
        move |source| HostError::Cgroup {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    // The `virtnet` parent is removed by whichever VM's removal finds it empty: make it
    // again if that happens between the two calls.
    let mut tries = 0;
    loop {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(err("create"))?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound && tries < 20 => {
                // The parent was removed, or is still being removed (a dying cgroup).
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists && tries < 20 => {
                tries += 1;
                std::fs::remove_dir(dir).map_err(err(
                    "reuse (it exists and holds processes or groups: is a VM with this UUID \
                     running?)",
                ))?;
            }
            Err(e) => return Err(err("create")(e)),
        }
    }
}

/// Writes `value` into the control file `name` of `dir`.
pub(crate) fn write_file(dir: &Path, name: &str, value: &str) -> Result<()> {
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| HostError::Cgroup {
            op: format!("write '{value}' to"),
            path,
            source,
        })
}

fn open_procs(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join("cgroup.procs");
    let f: File = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| HostError::Cgroup {
            op: "open".into(),
            path,
            source,
        })?;
    Ok(f.into())
}

/// How long [`remove`] waits for a group to empty (the kernel moves exiting tasks out
/// asynchronously).
const REMOVE_WAIT: Duration = Duration::from_secs(2);

/// Removes a VM's group (idempotent: a missing directory is fine), waiting briefly while it
/// still holds exiting tasks, then its `virtnet` parent where empty.
pub fn remove(group: &CgroupGroup) -> Result<()> {
    let mut first_err = None;
    for d in &group.dirs {
        if let Err(e) = remove_dir(&d.path) {
            first_err.get_or_insert(e);
        }
        if let Some(parent) = d.path.parent().filter(|p| p.ends_with(PARENT)) {
            let _ = std::fs::remove_dir(parent); // other VMs' groups may still be there
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + REMOVE_WAIT;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(HostError::Cgroup {
                    op: "remove".into(),
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Removes the groups `virtnet/<name>` of VMs that are not running (after a daemon restart:
/// groups left by a crash before their removal was recorded), in every hierarchy. Only the
/// names given are touched (another virtnetd in the same group keeps its own); a group still
/// holding processes stays. Returns the directories removed and what could not be.
pub fn remove_stale(names: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let Ok(layout) = probe() else {
        return (Vec::new(), Vec::new());
    };
    let mut removed = Vec::new();
    let mut left = Vec::new();
    for h in layout.v1.iter().chain(layout.v2.iter()) {
        let parent = h.own_dir.join(PARENT);
        for name in names {
            if check_name(name).is_err() || name.contains('/') {
                continue;
            }
            let dir = parent.join(name);
            match std::fs::remove_dir(&dir) {
                Ok(()) => removed.push(dir),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => left.push(format!("cgroup {}: {e}", dir.display())),
            }
        }
        let _ = std::fs::remove_dir(&parent);
    }
    (removed, left)
}

#[cfg(test)]
mod tests;
