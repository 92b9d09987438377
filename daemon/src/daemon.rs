//! [`Daemon`]: the state every request works on (store, registry, VM table), and loading it at
//! start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use tokio::task::AbortHandle;
use virtnet_conf::{load_domain, Domain};
use virtnet_host::{HostNet, LinuxHost, Vsctl};
use virtnet_qemu::{QemuCaps, QemuUser};

use crate::config::Config;
use crate::error::{DaemonError, Result};
use crate::registry::{claims_of, Registry, Scope};
use crate::store::Store;
use crate::vms::{VmEntry, VmTable};

/// The daemon's state. Shared by every connection (`Arc<Daemon>`).
pub struct Daemon {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) vms: VmTable,
    /// The networks (virtnet-vswitch switches).
    pub(crate) networks: Arc<crate::networks::Networks>,
    next_id: AtomicU32,
    /// Ourselves, for tasks that outlive a request (exit watchers).
    me: Weak<Daemon>,
    /// The host network plumbing, or why it could not be opened.
    host: std::result::Result<Arc<dyn HostNet>, Arc<virtnet_host::HostError>>,
    /// Who confined QEMUs run as; `None` with `--sandbox off`.
    pub(crate) qemu_user: Option<QemuUser>,
    /// Latency histograms of start, attach, detach and update (`/metrics`).
    pub(crate) latencies: crate::metrics::OpLatencies,
    /// Who holds which console (`virtnet console`).
    pub(crate) consoles: Arc<crate::consoles::Consoles>,
    /// Domain events (lifecycle, device removed) for whoever subscribes.
    pub(crate) events: crate::events::EventBus,
    /// Capabilities probed per QEMU binary.
    caps: tokio::sync::Mutex<HashMap<PathBuf, QemuCaps>>,
    /// Live migrations in progress: VMs received (prepared, not finished) and the progress
    /// of those sent.
    pub(crate) migrations: crate::ops::migrate::Migrations,
    /// Held (flock) for the daemon's life: one daemon per state directory.
    _lock: File,
}

impl Daemon {
    /// Opens the store under `config` (creating its directories), takes the state directory's
    /// lock (one daemon per state directory) and loads every definition and live status. Corrupt
    /// files do not stop it: their VMs are listed with the problem.
    pub async fn open(config: Config) -> Result<Arc<Daemon>> {
        let qemu_user = if config.sandbox {
            let u = virtnet_host::ensure_system_user(&config.qemu_user, "virtnet QEMU").map_err(
                |source| DaemonError::QemuUser {
                    name: config.qemu_user.clone(),
                    source,
                },
            )?;
            tracing::info!(user = %u.name, uid = u.uid, "QEMU runs confined");
            Some(QemuUser {
                name: u.name,
                uid: u.uid,
                gid: u.gid,
                groups: Vec::new(),
            })
        } else {
            tracing::warn!("--sandbox off: QEMU runs as virtnetd's user, unconfined");
            None
        };
        let store = Store::open(&config.state_dir, &config.run_dir)?;
        let lock = lock_state_dir(&config.state_dir)?;
        let registry = Arc::new(Registry::new());
        let networks = crate::networks::Networks::open(
            &config.state_dir,
            &config.run_dir,
            registry.clone(),
            &config.qemu_user,
        )
        .await?;
        let ovs = match &config.ovsdb {
            Some(db) => Vsctl::default().with_db(db),
            None => Vsctl::default(),
        };
        // Open vSwitch networks ask the same database whether their bridge exists.
        networks.set_vsctl(ovs.clone());
        let host = LinuxHost::new()
            .map(|h| Arc::new(h.with_ovs(ovs)) as Arc<dyn HostNet>)
            .map_err(Arc::new);
        if let Err(e) = &host {
            tracing::warn!(error = %e, "host networking unavailable: VMs with host NICs cannot start");
        }
        let daemon = Arc::new_cyclic(|me| Daemon {
            config,
            store,
            registry,
            vms: VmTable::default(),
            networks,
            next_id: AtomicU32::new(1),
            me: me.clone(),
            host,
            qemu_user,
            latencies: Default::default(),
            consoles: Arc::default(),
            events: Default::default(),
            caps: tokio::sync::Mutex::new(HashMap::new()),
            migrations: Default::default(),
            _lock: lock,
        });
        daemon.load().await?;
        Ok(daemon)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The domain event bus.
    pub fn events(&self) -> &crate::events::EventBus {
        &self.events
    }

    /// The owner registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A weak reference to ourselves, for tasks that outlive a request.
    pub(crate) fn weak(&self) -> Weak<Daemon> {
        self.me.clone()
    }

    /// The next domain id for a started VM.
    pub(crate) fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes sure later ids are above `id` (after recovering a running VM).
    pub(crate) fn saw_id(&self, id: u32) {
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    /// The entry of `name`, or [`DaemonError::NoSuchVm`].
    pub(crate) fn entry(&self, name: &str) -> Result<Arc<VmEntry>> {
        self.vms.get(name).ok_or_else(|| DaemonError::NoSuchVm {
            name: name.to_string(),
        })
    }

    /// The host network plumbing.
    pub(crate) fn host(&self) -> Result<&Arc<dyn HostNet>> {
        self.host
            .as_ref()
            .map_err(|e| DaemonError::HostUnavailable { source: e.clone() })
    }

    /// The capabilities of `qemu` (probed once per binary).
    pub(crate) async fn caps(&self, qemu: &Path) -> Result<QemuCaps> {
        let mut cache = self.caps.lock().await;
        if let Some(c) = cache.get(qemu) {
            return Ok(*c);
        }
        let caps = virtnet_vm::probe_caps(qemu)
            .await
            .map_err(|e| DaemonError::QemuBinary {
                qemu: qemu.to_path_buf(),
                source: Box::new(e),
            })?;
        cache.insert(qemu.to_path_buf(), caps);
        Ok(caps)
    }

    /// Runs `exited` (QEMU's exit) in a task that then marks the VM shut off and cleans up.
    pub(crate) fn spawn_exit_watch(
        &self,
        name: &str,
        id: u32,
        exited: impl Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        let me = self.me.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            exited.await;
            if let Some(daemon) = me.upgrade() {
                daemon.on_qemu_exit(&name, id).await;
            }
        })
        .abort_handle()
    }

    /// Runs store I/O (fsync) off the async workers.
    pub(crate) async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| DaemonError::Internal(format!("store task failed: {e}")))?
    }

    async fn load(&self) -> Result<()> {
        let loaded = self.store.load()?;
        for path in &loaded.removed_temps {
            tracing::warn!(path = %path.display(), "removed a temp file left by an interrupted write; the file it was to replace is intact");
        }
        for file in loaded.definitions {
            let entry = self.vms.get_or_create(&file.name);
            let mut slot = entry.slot.lock().await;
            let parsed = file
                .content
                .and_then(|text| parse_stored(&file.name, &file.path, &text));
            match parsed {
                Ok(domain) => {
                    match self
                        .registry
                        .replace(&file.name, Scope::Persistent, &claims_of(&domain))
                    {
                        Ok(_) => slot.persistent = Some(Arc::new(domain)),
                        Err(e) => {
                            slot.definition_problem =
                                Some(format!("definition {}: {e}", file.path.display()))
                        }
                    }
                }
                Err(problem) => slot.definition_problem = Some(problem),
            }
            if let Some(p) = &slot.definition_problem {
                tracing::error!(vm = %file.name, problem = %p, "cannot load a stored definition");
            } else {
                tracing::info!(vm = %file.name, "definition loaded");
            }
            entry.publish(&slot, None);
        }
        // Autostart networks: after the definitions (their tap names are claimed), before the
        // running VMs are recovered (they may need the networks).
        self.networks.autostart().await;
        for file in loaded.statuses {
            let entry = self.vms.get_or_create(&file.name);
            let mut slot = entry.slot.lock().await;
            match file.content {
                Ok(status) => crate::live::recover(self, &entry.name, &mut slot, status).await,
                Err(problem) => {
                    tracing::error!(vm = %file.name, %problem, "cannot load a live status");
                    slot.status_problem = Some(problem);
                }
            }
            if slot.is_empty() {
                slot.gone = true;
                self.vms.remove(&entry);
            }
            entry.publish(&slot, None);
        }
        self.remove_stale_cgroups().await;
        self.remove_stale_shaping().await;
        self.remove_stale_filters().await;
        self.remove_stale_ovs_ports().await;
        Ok(())
    }

    /// Removes the Open vSwitch ports of virtnet's VMs (their `vm-id` is the UUID of a VM
    /// virtnetd knows) that no running VM holds and whose tap is gone: left by a crash between
    /// adding a NIC's port and recording it (the tap went with virtnetd's fd; recorded ports
    /// of VMs that died meanwhile were removed by the recovery). Ports of other VMs (another
    /// manager's) are left alone, and so is a port whose tap exists: the same VM may run
    /// under another virtnetd on this host (migrated there without `--undefinesource`); a
    /// host without Open vSwitch has none.
    async fn remove_stale_ovs_ports(&self) {
        let Ok(host) = self.host() else { return };
        let mut ours = std::collections::BTreeSet::new();
        let mut held = std::collections::BTreeSet::new();
        for entry in self.vms.all() {
            let slot = entry.slot.lock().await;
            let doms = [
                slot.persistent.as_deref(),
                slot.live.as_ref().map(|l| &*l.domain),
            ];
            ours.extend(
                doms.into_iter()
                    .flatten()
                    .filter_map(|d| d.uuid())
                    .map(|u| u.to_string()),
            );
            for u in slot.live.iter().flat_map(|l| &l.status.host_resources.undo) {
                if let virtnet_host::HostUndo::OvsDelPort { port, .. } = u {
                    held.insert(port.clone());
                }
            }
        }
        if ours.is_empty() {
            return;
        }
        let host2 = host.clone();
        let listed = tokio::task::spawn_blocking(move || host2.ovs_interfaces()).await;
        let interfaces = match listed {
            Ok(Ok(i)) => i,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no Open vSwitch to sweep");
                return;
            }
            Err(_) => return,
        };
        for i in interfaces {
            let unheld =
                i.vm_id.as_ref().is_some_and(|v| ours.contains(v)) && !held.contains(&i.name);
            if !unheld || !matches!(host.link(&i.name), Ok(None)) {
                continue;
            }
            let h = host.clone();
            let name = i.name.clone();
            match tokio::task::spawn_blocking(move || h.ovs_del_port(&name)).await {
                Ok(Ok(())) => {
                    tracing::warn!(port = %i.name, "removed an Open vSwitch port left by a crash")
                }
                Ok(Err(e)) => {
                    tracing::error!(port = %i.name, error = %e, "cannot remove an Open vSwitch port left by a crash")
                }
                Err(_) => {}
            }
        }
    }

    /// Removes the nft tables of tap bandwidth limits ([`virtnet_host::shaping`]) that no
    /// running VM holds: left by a crash between shaping a tap and recording it (recorded ones
    /// of VMs that died meanwhile were removed by the recovery). Such a table outlives its
    /// tap, and this kernel hooks it onto the next device of that name: another VM's tap.
    async fn remove_stale_shaping(&self) {
        let tables = match virtnet_host::shaping::list_tables() {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "no nftables: no bandwidth tables to sweep");
                return;
            }
        };
        let mut held = Vec::new();
        for entry in self.vms.all() {
            let slot = entry.slot.lock().await;
            if let Some(l) = &slot.live {
                for r in &l.status.host_resources.nics {
                    if let Some(i) = r.ifindex {
                        held.push(virtnet_host::shaping::table_name(&r.name, i));
                    }
                }
            }
        }
        for t in tables.iter().filter(|t| !held.contains(t)) {
            match virtnet_host::shaping::delete_table(t) {
                Ok(()) => tracing::warn!(table = %t, "removed a bandwidth table left by a crash"),
                Err(e) => {
                    tracing::error!(table = %t, error = %e, "cannot remove a bandwidth table left by a crash")
                }
            }
        }
    }

    /// Deletes the tap filter tables no running VM holds: left by a crash between loading a
    /// NIC's filter and recording it in the live status (the recorded tables of VMs that died
    /// meanwhile went with the rest of their host resources in the recovery; a running VM
    /// that was adopted keeps its own).
    async fn remove_stale_filters(&self) {
        let Ok(host) = self.host() else { return };
        let tables = match host.filter_tables() {
            Ok(t) => t,
            Err(e) => {
                // No nft on this host: no filter could have been loaded either.
                tracing::debug!(error = %e, "cannot list filter tables");
                return;
            }
        };
        let mut held = std::collections::BTreeSet::new();
        for entry in self.vms.all() {
            let slot = entry.slot.lock().await;
            for u in slot.live.iter().flat_map(|l| &l.status.host_resources.undo) {
                if let virtnet_host::HostUndo::DeleteNftTable { name, .. } = u {
                    held.insert(name.clone());
                }
            }
        }
        for (family, t) in tables.into_iter().filter(|(_, t)| !held.contains(t)) {
            match host.delete_nft_table(family.as_str(), &t) {
                Ok(()) => tracing::warn!(table = %t, "removed a filter table left by a crash"),
                Err(e) => tracing::error!(table = %t, error = %e, "cannot remove a filter table"),
            }
        }
    }

    /// Removes the cgroups of known VMs that are not running: left by a crash between making
    /// a VM's group and recording it in the live status (recorded groups of VMs that died
    /// meanwhile were removed with the rest of their host resources by the recovery).
    async fn remove_stale_cgroups(&self) {
        let mut stale = Vec::new();
        for entry in self.vms.all() {
            let slot = entry.slot.lock().await;
            if slot.live.is_none() {
                if let Some(u) = slot.persistent.as_ref().and_then(|d| d.uuid()) {
                    stale.push(u.to_string());
                }
            }
        }
        let (removed, left) = virtnet_host::cgroup::remove_stale(&stale);
        for dir in removed {
            tracing::warn!(cgroup = %dir.display(), "removed a VM cgroup left by a crash");
        }
        for l in left {
            tracing::error!(leftover = %l, "cannot remove a VM cgroup left by a crash");
        }
    }
}

/// A stored definition as a domain, or a problem naming the file.
fn parse_stored(name: &str, path: &Path, text: &str) -> std::result::Result<Domain, String> {
    let domain = load_domain(text).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(|p| p.located()).collect();
        format!(
            "stored definition {} is invalid: {}",
            path.display(),
            list.join("; ")
        )
    })?;
    if domain.name != name {
        return Err(format!(
            "stored definition {} defines VM '{}', but its file name says '{name}'",
            path.display(),
            domain.name
        ));
    }
    Ok(domain)
}

/// Takes `<state_dir>/virtnetd.lock` (flock), or says which daemon holds it.
fn lock_state_dir(state_dir: &Path) -> Result<File> {
    let path = state_dir.join("virtnetd.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| DaemonError::store("open", &path, e))?;
    // SAFETY: flock on a valid fd we own; no memory is involved.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(DaemonError::StateDirLocked {
            state_dir: state_dir.to_path_buf(),
            lock: path,
            source: e,
        });
    }
    Ok(file)
}
