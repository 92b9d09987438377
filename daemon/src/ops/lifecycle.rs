//! `start`, `shutdown`, `destroy`, and cleaning up after a QEMU that exits on its own.

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use virtnet_qemu::validate::{validate_domain, Operation};
use virtnet_qemu::StopMethod;
use virtnet_vm::{exec, plan_start, CgroupOptions, ExecOptions, PlanContext, StopMode};

use super::refused;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::events::{Lifecycle, Started, Stopped};
use crate::live::{
    live_domain, spawn_event_listener, spawn_stall_watch, status_of, Handle, Live, QmpLink,
};
use crate::model::{DomainInfo, StopResponse, VmState};
use crate::registry::{claims_of, Scope};
use crate::store::LiveStatus;
use crate::vms::{VmEntry, VmSlot};

/// How long a QEMU that exited on its own is given for its `SHUTDOWN` event to be read.
const GUEST_END_GRACE: Duration = Duration::from_millis(300);

/// Default time the guest gets to power off on `shutdown`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

impl Daemon {
    /// Starts the VM from its persistent definition: claims its resources as running (refused
    /// when another running VM holds one), plans and runs the start (rolled back entirely on
    /// failure), writes the live status, and watches QEMU's exit.
    pub async fn start(&self, name: &str) -> Result<DomainInfo> {
        let run = self.start_untimed(name);
        self.latencies.time(crate::metrics::Op::Start, run).await
    }

    async fn start_untimed(&self, name: &str) -> Result<DomainInfo> {
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        if slot.live.is_some() {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "running".into(),
                hint: format!("nothing to start; `virtnet shutdown {name}` stops it"),
            });
        }
        if let Some(problem) = slot.problem() {
            return Err(DaemonError::Broken {
                name: name.into(),
                problem,
            });
        }
        let Some(domain) = slot.persistent.clone() else {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        };
        // A failed start has no stop reason of its own: the last one no longer applies.
        slot.last_stop = None;
        entry.publish(&slot, Some(VmState::Starting));
        let result = self.start_locked(&entry, &mut slot, domain, None).await;
        entry.publish(&slot, None);
        result?;
        if let Some(l) = &slot.live {
            self.events.lifecycle(
                name,
                l.domain.uuid,
                Some(l.status.id),
                Lifecycle::Started(Started::Booted),
            );
        }
        drop(slot);
        self.info(name)
    }

    /// Starts `domain` as VM `entry` (the slot locked, not running); with `incoming`, as a
    /// live migration's destination listening on that URI (QEMU paused until the finish).
    pub(crate) async fn start_locked(
        &self,
        entry: &VmEntry,
        slot: &mut VmSlot,
        domain: Arc<virtnet_conf::Domain>,
        incoming: Option<String>,
    ) -> Result<()> {
        let name = entry.name.as_str();
        // <interface type='network'> on a switch network → vhost-user on a daemon-chosen
        // socket; on an Open vSwitch network → the bridge form.
        let (resolved, net_ports) = self.networks.resolve(name, &domain).await?;
        let given = domain;
        let domain = Arc::new(resolved);
        // What the definition alone says cannot run is refused before anything is claimed or
        // created (the plan checks again with the QEMU binary's capabilities).
        validate_domain(Operation::Start, &domain, None)
            .map_err(|r| refused(Operation::Start, r))?;
        self.registry
            .replace(name, Scope::Live, &claims_of(&domain))?;
        if let Err(e) = self.networks.add_ports(name, &net_ports).await {
            self.registry.release(name, Scope::Live);
            return Err(e);
        }
        let result = self.start_qemu(name, &domain, incoming).await;
        match result {
            Ok(live) => {
                // The names chosen at start (taps) are claimed too.
                if let Err(e) = self
                    .registry
                    .claim(name, Scope::Live, &claims_of(&live.domain))
                {
                    tracing::warn!(vm = %name, error = %e, "a device name chosen at start is claimed elsewhere");
                }
                self.networks.record_ovs(
                    name,
                    &given.devices.interfaces,
                    &domain.devices.interfaces,
                );
                slot.live = Some(live);
                Ok(())
            }
            Err(e) => {
                self.registry.release(name, Scope::Live);
                self.networks.release_vm(name).await;
                Err(e)
            }
        }
    }

    async fn start_qemu(
        &self,
        name: &str,
        domain: &Arc<virtnet_conf::Domain>,
        incoming: Option<String>,
    ) -> Result<Live> {
        let host = self.host()?.clone();
        let qemu = domain
            .emulator()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.config.qemu.clone());
        let caps = self.caps(&qemu).await?;
        let run_dir = self.store.vm_run_dir(name);
        if run_dir.exists() {
            // Not running (no live status), so this is left from a crash.
            tracing::warn!(vm = %name, dir = %run_dir.display(), "removing a stale run directory");
            std::fs::remove_dir_all(&run_dir)
                .map_err(|e| DaemonError::store("remove stale run directory", &run_dir, e))?;
        }
        let mut ctx = PlanContext::new(&qemu, caps, &run_dir);
        ctx.cgroup = Some(CgroupOptions {
            pids_max: self.config.qemu_pids_max,
        });
        ctx.sandbox =
            virtnet_vm::sandbox_for(domain, self.qemu_user.as_ref()).map_err(DaemonError::vm)?;
        // Other VMs' run dirs, the API socket, the definitions: not QEMU's business.
        ctx.hide = vec![self.config.state_dir.clone(), self.config.run_dir.clone()];
        // QEMU listens on switch-network NICs' sockets by path (no fd for vhost-user in 7.2).
        ctx.reach = vec![self.networks.sockets_dir().to_path_buf()];
        ctx.incoming = incoming;
        if self.qemu_user.is_some() && domain.unconfined() {
            tracing::warn!(vm = %name, "<seclabel type='none'/>: QEMU runs unconfined, as virtnetd's user");
        }
        let plan = plan_start(domain, &ctx).map_err(|e| match e {
            virtnet_vm::VmError::Refused(r) => refused(Operation::Start, r),
            e => DaemonError::vm(e),
        })?;
        let opts = ExecOptions {
            start_timeout: self.config.start_timeout,
            ..ExecOptions::default()
        };
        let vm = exec::start(&plan, host.as_ref(), &opts)
            .await
            .map_err(DaemonError::vm)?;
        let id = self.next_id();
        let live_dom = live_domain(domain, id, vm.plan(), vm.resources());
        let status = status_of(&live_dom, id, &vm);
        let saved = {
            let status = status.clone();
            self.with_store(move |s| s.save_status(&status)).await
        };
        if let Err(e) = saved {
            // Without a status file a daemon restart would lose the VM: do not run it.
            let _ = vm.stop(host.as_ref(), StopMode::Destroy).await;
            return Err(e);
        }
        let exit = vm.exit_watch();
        let watcher = self.spawn_exit_watch(name, id, async move {
            let mut exit = exit;
            let _ = exit.wait_for(Option::is_some).await;
        });
        let qmp = Arc::new(QmpLink::connected(&status.qmp_socket, vm.qmp().clone()));
        let events = spawn_event_listener(self, name, id, qmp.clone());
        let stall_watch = spawn_stall_watch(self, name, id, qmp.clone());
        tracing::info!(vm = %name, id, pid = status.pid, "running");
        Ok(Live {
            domain: Arc::new(live_dom),
            status,
            handle: Handle::Started(Box::new(vm)),
            qmp,
            watcher: Some(watcher),
            events: Some(events),
            stall_watch: Some(stall_watch),
            powerdown_requested: false,
        })
    }

    /// Powers the VM down (ACPI power button; after `timeout_secs`, default 30, QEMU is
    /// terminated) and releases its host resources.
    pub async fn shutdown(&self, name: &str, timeout_secs: Option<u64>) -> Result<StopResponse> {
        let timeout = timeout_secs.map_or(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs);
        self.stop(name, StopMode::Graceful(timeout)).await
    }

    /// Presses the VM's ACPI power button and returns without waiting (libvirt's
    /// `virDomainShutdown`): the guest decides what to do. When it powers off, QEMU exits and
    /// the exit watcher releases everything, as after any exit of QEMU on its own
    /// ([`Daemon::on_qemu_exit`]); a guest that ignores the button keeps running. Refused on
    /// a VM that does not run or is stalled.
    pub async fn press_power_button(&self, name: &str) -> Result<()> {
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let Some(live) = slot.live.as_mut() else {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "shut off".into(),
                hint: format!("nothing to shut down; `virtnet start {name}` starts it"),
            });
        };
        live.qmp("shutdown", "system_powerdown", serde_json::json!({}))
            .await?;
        live.powerdown_requested = true;
        tracing::info!(vm = %name, "ACPI power button pressed");
        Ok(())
    }

    /// Stops the VM at once (SIGTERM, then SIGKILL) and releases its host resources. On a VM
    /// whose live status could not be read, removes that status (its QEMU, if any, must be
    /// stopped by hand: the file that named it is unreadable).
    pub async fn destroy(&self, name: &str) -> Result<StopResponse> {
        self.stop(name, StopMode::Destroy).await
    }

    async fn stop(&self, name: &str, mode: StopMode) -> Result<StopResponse> {
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        // A stalled QEMU cannot power down, and its blocked main loop does not act on
        // SIGTERM: shutdown is refused with the reason, destroy kills it at once.
        let mut mode = mode;
        if let Some(l) = slot.live.as_ref().filter(|l| l.qmp.stalled().is_some()) {
            if mode == StopMode::Destroy {
                mode = StopMode::Kill;
            } else {
                l.refuse_if_stalled()?;
            }
        }
        let Some(live) = slot.live.take() else {
            if slot.status_problem.is_some() && mode == StopMode::Destroy {
                let owned = name.to_string();
                self.with_store(move |s| s.remove_status(&owned)).await?;
                slot.status_problem = None;
                let uuid = slot.persistent.as_ref().and_then(|d| d.uuid);
                self.events
                    .lifecycle(name, uuid, None, Lifecycle::Stopped(Stopped::Destroyed));
                slot.last_stop = Some(Stopped::Destroyed);
                self.finish_stop(&entry, &mut slot);
                tracing::warn!(vm = %name, "discarded an unreadable live status");
                return Ok(StopResponse {
                    name: name.into(),
                    stopped_by: "already_exited".into(),
                    leftovers: vec![],
                });
            }
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: if slot.status_problem.is_some() {
                    "unknown"
                } else {
                    "shut off"
                }
                .into(),
                hint: if slot.status_problem.is_some() {
                    format!("its live status is unreadable; `virtnet destroy {name}` discards it")
                } else {
                    format!("nothing to stop; `virtnet start {name}` starts it")
                },
            });
        };
        entry.publish(&slot, Some(VmState::ShuttingDown));
        let (uuid, qmp) = (live.domain.uuid, live.qmp.clone());
        let (method, leftovers) = self.stop_live(name, live, mode).await;
        let why = match (method, mode) {
            (StopMethod::Powerdown, _) => Stopped::Shutdown,
            // Gone before we asked: what QEMU said before it exited, if anything.
            (StopMethod::AlreadyExited, _) => qmp
                .guest_end(Duration::ZERO)
                .await
                .unwrap_or(Stopped::Destroyed),
            _ => Stopped::Destroyed,
        };
        self.events
            .lifecycle(name, uuid, None, Lifecycle::Stopped(why));
        slot.last_stop = Some(why);
        self.finish_stop(&entry, &mut slot);
        Ok(StopResponse {
            name: name.into(),
            stopped_by: method_name(method).into(),
            leftovers,
        })
    }

    /// Stops QEMU, releases host resources, the live claims and the status file. Returns what
    /// ended QEMU and what could not be released.
    pub(crate) async fn stop_live(
        &self,
        name: &str,
        mut live: Live,
        mode: StopMode,
    ) -> (StopMethod, Vec<String>) {
        live.stop_tasks();
        let mut leftovers = Vec::new();
        // QEMU killed while stalled in a hot-plug leaves the socket it listened on for it.
        let stall_sockets = live.qmp.take_stall().map(|s| s.sockets).unwrap_or_default();
        let method = match std::mem::replace(&mut live.handle, Handle::Gone) {
            Handle::Started(vm) => match self.host() {
                Ok(host) => {
                    // The VM releases what it made at start; what attaches added since (the
                    // status's record minus the start's) is released here.
                    let mut added = live.status.host_resources.clone();
                    added.remove_part(vm.resources());
                    let method = match vm.stop(host.as_ref(), mode).await {
                        Ok(report) => report.method,
                        Err(e) => {
                            leftovers.push(e.to_string());
                            StopMethod::Sigkill
                        }
                    };
                    let mut u = added.undo_stack();
                    leftovers.extend(exec::rollback_host(&mut u, host.as_ref()).await);
                    leftovers.extend(remove_sockets(&live.status.sockets_to_remove));
                    method
                }
                Err(e) => {
                    leftovers.push(e.to_string());
                    StopMethod::Sigkill
                }
            },
            Handle::Adopted(a) => {
                let m = a.stop(mode, &live.qmp).await;
                leftovers.extend(self.release_host(&live.status).await);
                m
            }
            Handle::Gone => StopMethod::AlreadyExited,
        };
        leftovers.extend(remove_sockets(&stall_sockets));
        live.qmp.close().await;
        self.registry.release(name, Scope::Live);
        self.networks.release_vm(name).await;
        let owned = name.to_string();
        if let Err(e) = self.with_store(move |s| s.remove_status(&owned)).await {
            leftovers.push(e.to_string());
        }
        for l in &leftovers {
            tracing::error!(vm = %name, leftover = %l, "not cleaned up");
        }
        tracing::info!(vm = %name, stopped_by = method_name(method), "shut off");
        (method, leftovers)
    }

    pub(crate) fn finish_stop(&self, entry: &Arc<VmEntry>, slot: &mut VmSlot) {
        if slot.is_empty() {
            slot.gone = true;
            self.vms.remove(entry);
        }
        entry.publish(slot, None);
    }

    /// QEMU of VM `name` (instance `id`) exited on its own: mark it shut off and clean up.
    pub(crate) async fn on_qemu_exit(&self, name: &str, id: u32) {
        let Ok(entry) = self.entry(name) else { return };
        // Whether the guest shut down (QEMU said so before it exited) or QEMU failed: asked
        // before the VM's lock is taken, so that the event listener can still note it.
        let qmp = {
            let slot = entry.slot.lock().await;
            match slot.live.as_ref().filter(|l| l.status.id == id) {
                Some(l) => l.qmp.clone(),
                None => return, // stopped by an operation meanwhile
            }
        };
        let noted = qmp.guest_end(GUEST_END_GRACE).await;
        let mut slot = entry.slot.lock().await;
        if slot.live.as_ref().is_none_or(|l| l.status.id != id) {
            return; // stopped by an operation meanwhile
        }
        let mut live = slot.live.take().expect("checked above");
        // We run inside the watcher task: do not abort ourselves.
        live.watcher = None;
        // The guest's power-off after the button was pressed is a shutdown, even when QEMU's
        // SHUTDOWN event was not read in time.
        let why = noted.unwrap_or(if live.powerdown_requested {
            Stopped::Shutdown
        } else {
            Stopped::Failed
        });
        if live.powerdown_requested {
            tracing::info!(vm = %name, "the guest powered off after its power button was pressed; releasing its host resources");
        } else {
            tracing::warn!(vm = %name, stopped = ?why, "QEMU exited on its own; marking the VM shut off and releasing its host resources");
        }
        let uuid = live.domain.uuid;
        self.stop_live(name, live, StopMode::Destroy).await;
        self.events
            .lifecycle(name, uuid, None, Lifecycle::Stopped(why));
        slot.last_stop = Some(why);
        self.finish_stop(&entry, &mut slot);
    }

    /// Releases what a live status says a VM held on the host (after a daemon restart, when
    /// there is no [`virtnet_vm::RunningVm`]): undo steps newest first, sockets QEMU listened
    /// on, the run directory. Returns what could not be released.
    pub(crate) async fn release_host(&self, status: &LiveStatus) -> Vec<String> {
        let mut left = Vec::new();
        if !status.host_resources.undo.is_empty() {
            match self.host() {
                Ok(host) => {
                    let mut undo = status.host_resources.undo_stack();
                    left.extend(exec::rollback_host(&mut undo, host.as_ref()).await)
                }
                Err(e) => left.push(e.to_string()),
            }
        }
        left.extend(remove_sockets(&status.sockets_to_remove));
        if let Some(dir) = &status.run_dir {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => left.push(format!("run dir {}: {e}", dir.display())),
            }
        }
        left
    }
}

/// Removes the unix sockets QEMU listened on (left when it was killed); returns failures.
fn remove_sockets(sockets: &[PathBuf]) -> Vec<String> {
    let mut left = Vec::new();
    for s in sockets {
        if std::fs::symlink_metadata(s).is_ok_and(|m| m.file_type().is_socket()) {
            if let Err(e) = std::fs::remove_file(s) {
                left.push(format!("socket {}: {e}", s.display()));
            }
        }
    }
    left
}

fn method_name(m: StopMethod) -> &'static str {
    match m {
        StopMethod::AlreadyExited => "already_exited",
        StopMethod::Powerdown => "powerdown",
        StopMethod::Sigterm => "sigterm",
        StopMethod::Sigkill => "sigkill",
    }
}
