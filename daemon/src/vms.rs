//! The VM table: one [`VmEntry`] per VM name.
//!
//! Operations on a VM hold its slot lock ([`VmEntry::slot`], a tokio mutex) from start to end,
//! so they run one at a time per VM while different VMs proceed concurrently. Readers (list,
//! dominfo, dumpxml) never wait for an operation: they read the [`VmView`] the operation
//! publishes when it changes something.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use virtnet_api::{CgroupDirInfo, CgroupInfo};
use virtnet_conf::Domain;
use virtnet_host::cgroup::CgroupVersion;
use virtnet_host::CgroupPlacement;

use crate::events::Stopped;
use crate::live::{Live, QmpLink};
use crate::model::{Stalled, VmState};

/// Everything about one VM that operations change. Guarded by [`VmEntry::slot`].
#[derive(Default)]
pub struct VmSlot {
    /// Set when the entry was removed from the table (undefined, or a failed first define):
    /// an operation that waited for the lock must look the name up again.
    pub gone: bool,
    /// The stored persistent definition.
    pub persistent: Option<Arc<Domain>>,
    /// Why the stored definition could not be loaded.
    pub definition_problem: Option<String>,
    /// The running instance.
    pub live: Option<Live>,
    /// Why the live status could not be read (VM state unknown).
    pub status_problem: Option<String>,
    /// Why it last stopped (since virtnetd started); shown while shut off.
    pub last_stop: Option<Stopped>,
}

impl VmSlot {
    /// Whether nothing is left of the VM (no definition, not running, no broken file).
    pub fn is_empty(&self) -> bool {
        self.persistent.is_none()
            && self.live.is_none()
            && self.definition_problem.is_none()
            && self.status_problem.is_none()
    }

    /// The problems with the stored files, joined.
    pub fn problem(&self) -> Option<String> {
        match (&self.definition_problem, &self.status_problem) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        }
    }
}

/// A read-only snapshot of a VM, for queries.
#[derive(Debug, Clone)]
pub struct VmView {
    /// VM name.
    pub name: String,
    /// State.
    pub state: VmState,
    /// Persistent definition.
    pub persistent: Option<Arc<Domain>>,
    /// Live definition (while running).
    pub live: Option<Arc<Domain>>,
    /// Domain id while running.
    pub id: Option<u32>,
    /// QEMU pid while running.
    pub pid: Option<u32>,
    /// QMP socket while running.
    pub qmp_socket: Option<String>,
    /// QEMU log while running.
    pub log_path: Option<String>,
    /// Problems with the stored files.
    pub problem: Option<String>,
    /// Aliases of the interfaces whose removal waits for the guest.
    pub pending_removals: Vec<String>,
    /// The running VM's QMP link: whether QEMU answers is read from it at query time.
    pub qmp: Option<Arc<QmpLink>>,
    /// The running VM's cgroup, or why it has none.
    pub cgroup: Option<CgroupInfo>,
    /// While shut off: why it last stopped.
    pub stop_reason: Option<Stopped>,
}

impl VmView {
    /// Whether the view shows nothing (an entry being created).
    pub fn is_empty(&self) -> bool {
        self.persistent.is_none() && self.live.is_none() && self.problem.is_none()
    }

    /// Set while the running VM's QEMU does not answer its monitor.
    pub fn stalled(&self) -> Option<Stalled> {
        self.qmp.as_ref().and_then(|q| q.stalled())
    }

    /// The live definition when running, else the persistent one.
    pub fn current(&self) -> Option<&Arc<Domain>> {
        self.live.as_ref().or(self.persistent.as_ref())
    }
}

/// One VM: its operation lock and its published view.
pub struct VmEntry {
    /// VM name.
    pub name: String,
    /// The operation lock and the state it guards.
    pub slot: tokio::sync::Mutex<VmSlot>,
    view: RwLock<Arc<VmView>>,
}

impl VmEntry {
    fn new(name: &str) -> VmEntry {
        VmEntry {
            name: name.to_string(),
            slot: tokio::sync::Mutex::new(VmSlot::default()),
            view: RwLock::new(Arc::new(VmView {
                name: name.to_string(),
                state: VmState::ShutOff,
                persistent: None,
                live: None,
                id: None,
                pid: None,
                qmp_socket: None,
                log_path: None,
                problem: None,
                pending_removals: Vec::new(),
                qmp: None,
                cgroup: None,
                stop_reason: None,
            })),
        }
    }

    /// The current view.
    pub fn view(&self) -> Arc<VmView> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Publishes the view of `slot`; `busy` overrides the state while an operation runs.
    pub fn publish(&self, slot: &VmSlot, busy: Option<VmState>) {
        let live = slot.live.as_ref();
        let state = busy.unwrap_or(if live.is_some() {
            VmState::Running
        } else if slot.status_problem.is_some() {
            VmState::Unknown
        } else {
            VmState::ShutOff
        });
        let view = VmView {
            name: self.name.clone(),
            state,
            persistent: slot.persistent.clone(),
            live: live.map(|l| l.domain.clone()),
            id: live.map(|l| l.status.id),
            pid: live.map(|l| l.status.pid),
            qmp_socket: live.map(|l| l.status.qmp_socket.display().to_string()),
            log_path: live
                .and_then(|l| l.status.log_path.as_ref().map(|p| p.display().to_string())),
            problem: slot.problem(),
            pending_removals: live
                .map(|l| crate::live::hotplug::pending_devices(&l.status))
                .unwrap_or_default(),
            qmp: live.map(|l| l.qmp.clone()),
            cgroup: live.and_then(|l| l.status.host_resources.cgroup.as_ref().map(cgroup_info)),
            stop_reason: slot.last_stop.filter(|_| state == VmState::ShutOff),
        };
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }
}

/// Name → entry.
#[derive(Default)]
pub struct VmTable {
    map: Mutex<BTreeMap<String, Arc<VmEntry>>>,
}

impl VmTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<VmEntry>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `name`, if any.
    pub fn get(&self, name: &str) -> Option<Arc<VmEntry>> {
        self.lock().get(name).cloned()
    }

    /// The entry of `name`, created empty when missing.
    pub fn get_or_create(&self, name: &str) -> Arc<VmEntry> {
        self.lock()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(VmEntry::new(name)))
            .clone()
    }

    /// Removes `entry` from the table (if it is still the one under its name). The caller holds
    /// its slot lock and sets [`VmSlot::gone`].
    pub fn remove(&self, entry: &Arc<VmEntry>) {
        let mut map = self.lock();
        if map.get(&entry.name).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            map.remove(&entry.name);
        }
    }

    /// Every entry, sorted by name.
    pub fn all(&self) -> Vec<Arc<VmEntry>> {
        self.lock().values().cloned().collect()
    }
}

/// The API's view of a VM's cgroup placement.
pub fn cgroup_info(p: &CgroupPlacement) -> CgroupInfo {
    match p {
        CgroupPlacement::Placed(g) => CgroupInfo::Placed {
            version: match g.version {
                CgroupVersion::V1 => "v1".into(),
                CgroupVersion::V2 => "v2".into(),
            },
            dirs: g
                .dirs
                .iter()
                .map(|d| CgroupDirInfo {
                    path: d.path.display().to_string(),
                    controllers: d.controllers.iter().map(|c| c.as_str().into()).collect(),
                })
                .collect(),
        },
        CgroupPlacement::Unavailable { reason } => CgroupInfo::Unavailable {
            reason: reason.clone(),
        },
    }
}
