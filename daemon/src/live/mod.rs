//! Running VMs: what the daemon holds for each ([`Live`]), the live definition and status it
//! writes, and picking VMs up again after a daemon restart ([`recover`]).

mod adopted;
mod events;
pub mod hotplug;
mod proc;
mod qmp;
mod rescue;
mod stall;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::AbortHandle;
use virtnet_conf::interface::{Leaf, Spanned, Target};
use virtnet_conf::Domain;
use virtnet_vm::{HostResources, RunningVm, StartPlan};

pub use adopted::Adopted;
pub(crate) use events::spawn_event_listener;
pub use proc::start_ticks;
pub use qmp::QmpLink;
pub(crate) use stall::spawn_stall_watch;
pub use stall::{LateObjects, Stall};

use crate::daemon::Daemon;
use crate::error::DaemonError;
use crate::registry::{claims_of, Scope};
use crate::store::{LiveStatus, STATUS_FORMAT};
use crate::vms::VmSlot;

/// How the daemon controls a running VM's QEMU.
pub enum Handle {
    /// Started by this daemon: QMP connected, QEMU our child.
    Started(Box<RunningVm>),
    /// Found running after a daemon restart: known by pid (pidfd) and QMP socket.
    Adopted(Adopted),
    /// Taken away by a stop in progress.
    Gone,
}

/// A running VM.
pub struct Live {
    /// The live definition (the persistent one plus run-time names: aliases, tap names, id).
    pub domain: Arc<Domain>,
    /// What is persisted in `<run_dir>/NAME.json`.
    pub status: LiveStatus,
    /// QEMU.
    pub handle: Handle,
    /// The one QMP connection every operation and the event listener use.
    pub qmp: Arc<QmpLink>,
    /// The task that notices QEMU exiting on its own.
    pub watcher: Option<AbortHandle>,
    /// The task that follows QEMU's events (completes pending removals).
    pub events: Option<AbortHandle>,
    /// The task that clears a stall once QEMU answers again ([`spawn_stall_watch`]).
    pub stall_watch: Option<AbortHandle>,
    /// The ACPI power button was pressed (libvirt's shutdown): QEMU exiting is expected.
    pub powerdown_requested: bool,
}

impl Live {
    /// The VM's QMP connection. Refused at once while the VM is stalled
    /// ([`DaemonError::InvalidState`] with the reason): every live operation goes through here.
    pub async fn qmp_client(&self) -> Result<virtnet_qemu::QmpClient, DaemonError> {
        if matches!(self.handle, Handle::Gone) {
            return Err(DaemonError::Internal("QMP on a VM being stopped".into()));
        }
        self.refuse_if_stalled()?;
        self.qmp
            .client()
            .await
            .map_err(|e| DaemonError::QmpUnreachable {
                socket: self.qmp.socket().to_path_buf(),
                source: Box::new(e),
            })
    }

    /// Refuses a live operation while the VM is stalled ([`DaemonError::InvalidState`] with
    /// the reason): called first by every live operation, and by [`Live::qmp_client`].
    pub fn refuse_if_stalled(&self) -> Result<(), DaemonError> {
        if let Some(why) = self.qmp.stall_message() {
            return Err(DaemonError::InvalidState {
                name: self.status.name.clone(),
                state: "stalled".into(),
                hint: format!(
                    "{why}; live operations are refused until it answers again, which clears \
                     this by itself; `virtnet destroy {}` stops it now",
                    self.status.name
                ),
            });
        }
        Ok(())
    }

    /// Runs a QMP command on the VM's QEMU for `operation` (`domif-setlink`, ...). A command
    /// that gets no reply in time marks the VM stalled.
    pub async fn qmp(
        &self,
        operation: &str,
        command: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, DaemonError> {
        self.qmp_with_fd(operation, command, args, None).await
    }

    /// [`Live::qmp`] passing `fd` along (`getfd`, `add-fd`); QEMU gets its own copy.
    pub async fn qmp_with_fd(
        &self,
        operation: &str,
        command: &str,
        args: serde_json::Value,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<serde_json::Value, DaemonError> {
        let client = self.qmp_client().await?;
        let r = match fd {
            Some(fd) => client.execute_with_fd(command, args, fd).await,
            None => client.execute(command, args).await,
        };
        match r {
            Ok(v) => Ok(v),
            Err(e @ virtnet_qemu::QemuError::CommandTimeout { .. }) => {
                let reason = format!("`{command}` ({operation}) got no reply: {e}");
                let stall = Stall::new(operation, reason, LateObjects::default(), vec![]);
                self.qmp.mark_stalled(stall);
                Err(DaemonError::QmpStalled {
                    vm: self.status.name.clone(),
                    source: Box::new(e),
                })
            }
            Err(e) => Err(DaemonError::Qmp {
                source: Box::new(e),
            }),
        }
    }

    /// Stops the background tasks (exit watcher, event listener, stall watcher).
    pub fn stop_tasks(&mut self) {
        for t in [
            self.watcher.take(),
            self.events.take(),
            self.stall_watch.take(),
        ]
        .into_iter()
        .flatten()
        {
            t.abort();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// The live definition: `persistent` with the domain id, device aliases (QEMU ids) and the
/// names of the host devices created at start.
pub fn live_domain(persistent: &Domain, id: u32, plan: &StartPlan, res: &HostResources) -> Domain {
    let mut d = persistent.clone();
    d.id = Some(i64::from(id));
    for nic in &plan.nics {
        let Some(iface) = d.devices.interfaces.get_mut(nic.index) else {
            continue;
        };
        if iface.alias.is_none() {
            iface.alias = Some(Leaf::new(nic.device_id.clone()));
        }
        if let Some(r) = res
            .nics
            .iter()
            .find(|r| r.nic == nic.index && r.kind.is_link())
        {
            let target = iface.target.get_or_insert_with(Target::default);
            if target.dev.is_none() {
                target.dev = Some(Spanned::new(r.name.clone()));
            }
        }
    }
    crate::ops::name_chardevs(&mut d);
    d
}

/// The status to persist for a VM just started.
pub fn status_of(live: &Domain, id: u32, vm: &RunningVm) -> LiveStatus {
    let plan = vm.plan();
    let mut aliases = BTreeMap::new();
    for nic in &plan.nics {
        let what = live
            .devices
            .interfaces
            .get(nic.index)
            .map(|i| i.describe())
            .unwrap_or_else(|| format!("interface #{}", nic.index));
        aliases.insert(nic.device_id.clone(), what.clone());
        if let Some(netdev) = &nic.netdev_id {
            aliases.insert(netdev.clone(), format!("back end of {what}"));
        }
    }
    let mut fds = BTreeMap::new();
    for step in &plan.host_steps {
        if let Some(sink) = step.fds() {
            for (q, r) in sink.refs().iter().enumerate() {
                fds.insert(
                    format!("{r:?}"),
                    format!("{} (#{q}) of interface #{}", step.describe(), step.nic()),
                );
            }
        }
    }
    let pid = vm.pid();
    LiveStatus {
        format: STATUS_FORMAT,
        name: plan.name.clone(),
        uuid: live.uuid.map(|u| u.to_string()).unwrap_or_default(),
        id,
        pid,
        pid_start_ticks: start_ticks(pid).unwrap_or(0),
        qmp_socket: plan.qmp_socket.clone(),
        log_path: Some(plan.log_path.clone()),
        run_dir: Some(plan.run_dir.clone()),
        sockets_to_remove: plan.sockets_to_remove.clone(),
        started_at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        live_xml: live.to_xml(),
        aliases,
        fds,
        host_resources: vm.resources().clone(),
        pending_detaches: Default::default(),
        sandbox: vm.plan().sandbox.clone(),
    }
}

/// Picks up a VM whose live status was found at daemon start: if its QEMU still runs, the VM
/// is running again (its resources claimed, an exit watcher armed); if not, what it left
/// (host devices, run dir, the status file) is cleaned up.
pub(crate) async fn recover(daemon: &Daemon, name: &str, slot: &mut VmSlot, status: LiveStatus) {
    let domain = match Domain::parse(&status.live_xml) {
        Ok(d) => d,
        Err(e) => {
            slot.status_problem = Some(format!(
                "live status {} has an unreadable live XML ({}); stop QEMU pid {} by hand and remove the file",
                daemon.store.status_path(name).display(),
                e.located(),
                status.pid
            ));
            return;
        }
    };
    match Adopted::find(&status) {
        Some(adopted) => {
            if let Err(e) = daemon
                .registry
                .replace(name, Scope::Live, &claims_of(&domain))
            {
                tracing::error!(vm = %name, error = %e, "a recovered VM clashes with another one");
            }
            daemon.saw_id(status.id);
            tracing::info!(vm = %name, pid = status.pid, "found running; recovered");
            let id = status.id;
            let watcher = adopted
                .exit_future()
                .map(|f| daemon.spawn_exit_watch(name, id, f));
            let qmp = Arc::new(QmpLink::lazy(&status.qmp_socket));
            let events = Some(spawn_event_listener(daemon, name, id, qmp.clone()));
            let stall_watch = Some(spawn_stall_watch(daemon, name, id, qmp.clone()));
            slot.live = Some(Live {
                domain: Arc::new(domain),
                status,
                handle: Handle::Adopted(adopted),
                qmp,
                watcher,
                events,
                stall_watch,
                powerdown_requested: false,
            });
        }
        None => {
            tracing::warn!(vm = %name, pid = status.pid, "QEMU died while virtnetd was not running; cleaning up after it");
            let left = daemon.release_host(&status).await;
            for l in &left {
                tracing::error!(vm = %name, leftover = %l, "cannot clean up");
            }
            if let Err(e) = daemon.store.remove_status(name) {
                slot.status_problem = Some(e.to_string());
            }
        }
    }
}
