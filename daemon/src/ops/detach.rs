//! `detach-device` / `detach-interface`: unplug a NIC from the running VM and/or remove it from
//! the definition; finishing removals the guest completes late.
//!
//! A live unplug asks QEMU (`device_del`) and waits for `DEVICE_DELETED`, which needs the
//! guest's cooperation (ACPI eject). When it does not come in time the removal stays pending:
//! recorded in the live status, shown by `domiflist`, refused as "already pending" by a second
//! detach, and finished (back end, fds, host tap) by the VM's event listener as soon as QEMU
//! reports the deletion, or by the next detach or daemon start that finds the device gone.

use std::sync::Arc;
use std::time::Duration;

use super::devices::{parse_interface, without_interface, Matcher};
use super::resolve_scope;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::events::{DomainEvent, EventDomain, EventKind};
use crate::live::{hotplug, Live};
use crate::model::{DetachRequest, DetachResponse};
use crate::registry::{claims_of_interface, Scope};

/// How long a detach waits for the guest unless told otherwise.
pub const DEFAULT_DETACH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait a request may ask for.
const MAX_DETACH_TIMEOUT: Duration = Duration::from_secs(600);

/// The wait a request asks for.
pub(crate) fn detach_timeout(secs: Option<u64>) -> Result<Duration> {
    match secs.map(Duration::from_secs) {
        None => Ok(DEFAULT_DETACH_TIMEOUT),
        Some(t) if t <= MAX_DETACH_TIMEOUT => Ok(t),
        Some(t) => Err(DaemonError::BadRequest(format!(
            "timeout_secs {} is above the most allowed, {}",
            t.as_secs(),
            MAX_DETACH_TIMEOUT.as_secs()
        ))),
    }
}

impl Daemon {
    /// Detaches the interface `req` names from VM `name` (see the module docs).
    pub async fn detach_device(&self, name: &str, req: &DetachRequest) -> Result<DetachResponse> {
        let run = self.detach_device_untimed(name, req);
        self.latencies.time(crate::metrics::Op::Detach, run).await
    }

    async fn detach_device_untimed(
        &self,
        name: &str,
        req: &DetachRequest,
    ) -> Result<DetachResponse> {
        let matcher = match (&req.xml, &req.type_) {
            (Some(x), None) if req.mac.is_none() => Matcher::of(&parse_interface(x)?),
            (None, Some(t)) => Matcher::by_type(t, req.mac.as_deref())?,
            _ => {
                return Err(DaemonError::BadRequest(
                    "give either \"xml\" (the device XML) or \"type\" (and \"mac\"), not both"
                        .into(),
                ))
            }
        };
        let timeout = detach_timeout(req.timeout_secs)?;
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let (live, config) = resolve_scope(name, &slot, req.scope())?;
        let live_idx = match (live, &slot.live) {
            // A NIC on a switch network is found by its type as defined (`network`).
            (true, Some(l)) => {
                Some(matcher.find(name, &self.networks.domain_as_defined(name, &l.domain))?)
            }
            _ => None,
        };
        let persistent = if config {
            slot.persistent.clone()
        } else {
            None
        };
        let cfg_idx = match &persistent {
            Some(p) => Some(matcher.find(name, p)?),
            None => None,
        };
        let host = match live_idx {
            Some(_) => Some(self.host()?.clone()),
            None => None,
        };

        // A removal already waiting for the guest: finished if the guest released the device
        // meanwhile (its event was missed), else refused.
        let mut already_done = false;
        let mut mac = None;
        let mut alias = None;
        if let (Some(i), Some(l), Some(host)) = (live_idx, slot.live.as_mut(), &host) {
            let iface = &l.domain.devices.interfaces[i];
            let a = iface.alias().unwrap_or_default().to_string();
            mac = iface.mac().map(|m| m.to_string());
            alias = Some(a.clone());
            if hotplug::is_pending(&l.status, &a) {
                let alias = a;
                if hotplug::device_present(l, &alias).await? {
                    return Err(DaemonError::RemovalPending {
                        vm: name.into(),
                        device: format!("{} ({alias})", iface.describe()),
                    });
                }
                self.finish_removal(name, l, host.as_ref(), &alias).await?;
                already_done = true;
            }
        }

        let mut new_def = None;
        if let (Some(i), Some(p)) = (cfg_idx, &persistent) {
            mac = mac.or_else(|| p.devices.interfaces[i].mac().map(|m| m.to_string()));
            let d = without_interface(p, i);
            self.save_definition(name, &d).await?;
            new_def = Some((d, claims_of_interface(&p.devices.interfaces[i])));
        }
        let mut pending = false;
        if let (Some(i), Some(l), Some(host), false) =
            (live_idx, slot.live.as_mut(), &host, already_done)
        {
            let a = alias.clone().unwrap_or_default();
            let mut status = l.status.clone();
            match hotplug::unplug(l, host.as_ref(), i, timeout, &mut status).await {
                Ok(hotplug::Unplug::Done) => {
                    self.removed(name, l, &a, status, true).await?;
                }
                Ok(hotplug::Unplug::Pending) => {
                    // The device stays in the live definition (QEMU still has it) until the
                    // guest lets go: only the status learns that its removal is under way.
                    if let Err(e) = self.save_status(&status).await {
                        tracing::error!(vm = %name, error = %e, "cannot record a pending removal");
                    }
                    l.status = status;
                    pending = true;
                    tracing::warn!(vm = %name, alias = %a, "the guest did not release the NIC in time; removal pending");
                }
                Err(e) => {
                    if new_def.is_some() {
                        self.restore_definition(name, persistent.as_deref()).await;
                    }
                    entry.publish(&slot, None);
                    return Err(e);
                }
            }
        }
        if let Some((d, claims)) = new_def {
            let resources: Vec<_> = claims.into_iter().map(|c| c.resource).collect();
            self.registry
                .release_resources(name, Scope::Persistent, &resources);
            slot.persistent = Some(Arc::new(d));
            tracing::info!(vm = %name, mac = mac.as_deref().unwrap_or(""), "NIC removed from the definition");
        }
        entry.publish(&slot, None);
        let message = if pending {
            format!(
                "the guest has not released {} within {} s; the removal is pending and completes \
                 when the guest releases it (`virtnet domiflist {name}` shows it; a second \
                 detach is refused until then)",
                alias.as_deref().unwrap_or("the NIC"),
                timeout.as_secs()
            )
        } else {
            "detached".to_string()
        };
        Ok(DetachResponse {
            name: name.into(),
            mac,
            alias,
            live,
            config,
            pending,
            message,
        })
    }

    /// After the guest released NIC `alias` of the running VM: the back end, fds and host side
    /// go, then the bookkeeping.
    async fn finish_removal(
        &self,
        name: &str,
        l: &mut Live,
        host: &dyn virtnet_host::HostNet,
        alias: &str,
    ) -> Result<()> {
        let mut status = l.status.clone();
        for left in hotplug::finish(l, host, alias, &mut status).await {
            tracing::error!(vm = %name, %alias, leftover = %left, "not cleaned up after a removal");
        }
        self.removed(name, l, alias, status, true).await
    }

    /// NIC `alias` is gone from QEMU and the host: drop it from the live definition, the
    /// status (`status` already has its host records removed) and, with `release`, the
    /// registry.
    pub(crate) async fn removed(
        &self,
        name: &str,
        l: &mut Live,
        alias: &str,
        mut status: crate::store::LiveStatus,
        release: bool,
    ) -> Result<()> {
        let index = l
            .domain
            .devices
            .interfaces
            .iter()
            .position(|i| i.alias() == Some(alias));
        let Some(index) = index else {
            return Err(DaemonError::Internal(format!(
                "NIC {alias} removed from QEMU is not in the live definition"
            )));
        };
        let iface = l.domain.devices.interfaces[index].clone();
        // A NIC on a switch network: its port goes with it.
        self.networks.release_interface(name, &iface).await;
        let new_live = without_interface(&l.domain, index);
        status.live_xml = new_live.to_xml();
        if let Err(e) = self.save_status(&status).await {
            // QEMU and the host no longer have the NIC: keep the daemon's view true, and let
            // the next write of the status carry it.
            tracing::error!(vm = %name, error = %e, "cannot write the live status after a removal");
        }
        if release {
            let resources: Vec<_> = claims_of_interface(&iface)
                .into_iter()
                .map(|c| c.resource)
                .collect();
            self.registry
                .release_resources(name, Scope::Live, &resources);
        }
        l.domain = Arc::new(new_live);
        l.status = status;
        tracing::info!(vm = %name, nic = %iface.describe(), %alias, "NIC removed (live)");
        self.events.emit(DomainEvent {
            domain: EventDomain {
                name: name.to_string(),
                uuid: l.domain.uuid,
                id: Some(l.status.id),
            },
            kind: EventKind::DeviceRemoved {
                alias: alias.to_string(),
            },
        });
        Ok(())
    }

    /// QEMU reported `DEVICE_DELETED` for `device` of VM `name` (instance `id`): finishes its
    /// removal if one is pending (a detach that returned before it, or from before a restart).
    /// A NIC of the live definition that nobody asked to remove (the guest ejected it, as
    /// libvirt's `processDeviceDeletedEvent` handles) is removed the same way: its back end,
    /// chardev and host objects go, and it leaves the live definition. A detach, attach or
    /// update in progress holds the VM's lock; by the time this runs, their device is gone
    /// from the live definition, recorded as pending, or back in QEMU under the same id (a
    /// replug, or an attach reusing the alias): QEMU is asked first, and a device it has is
    /// left alone.
    pub(crate) async fn on_device_deleted(&self, name: &str, id: u32, device: &str) {
        let Ok(entry) = self.entry(name) else { return };
        let mut slot = entry.slot.lock().await;
        let Some(l) = slot.live.as_mut().filter(|l| l.status.id == id) else {
            return;
        };
        if !hotplug::is_pending(&l.status, device) {
            // The id may be in use again by the time this runs: a replug (update-device
            // --replug) or an attach that took the alias of a NIC it replaced. Only a NIC QEMU
            // no longer has was removed by the guest.
            match hotplug::device_present(l, device).await {
                Ok(false) => {}
                Ok(true) => return,
                Err(e) => {
                    tracing::warn!(vm = %name, %device, error = %e, "cannot check a device QEMU reported deleted");
                    return;
                }
            }
            let mut status = l.status.clone();
            match hotplug::adopt_guest_removal(l, device, &mut status) {
                Ok(true) => {
                    tracing::warn!(vm = %name, %device, "the guest removed a NIC nobody detached; finishing its removal");
                    l.status = status;
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(vm = %name, %device, error = %e, "cannot plan the removal of a NIC the guest removed");
                    return;
                }
            }
        }
        let host = match self.host() {
            Ok(h) => h.clone(),
            Err(e) => {
                tracing::error!(vm = %name, error = %e, "cannot finish a removal");
                return;
            }
        };
        if let Err(e) = self.finish_removal(name, l, host.as_ref(), device).await {
            tracing::error!(vm = %name, %device, error = %e, "cannot finish a removal");
        }
        entry.publish(&slot, None);
    }

    /// Finishes the removals of VM `name`'s NICs QEMU no longer has, found with one look at
    /// QEMU's devices: pending detaches deleted while nobody listened (a daemon restart, a
    /// lost connection, missed events), and NICs the guest ejected without a detach while
    /// virtnetd was down (found by the 30-minute soak: a restart as the guest honoured an
    /// eject left the netdev, the tap and the live status behind), which are recorded as
    /// pending first, as [`Self::on_device_deleted`] does.
    pub(crate) async fn reconcile_removals(&self, name: &str, id: u32) {
        let Ok(entry) = self.entry(name) else { return };
        let mut slot = entry.slot.lock().await;
        let Some(l) = slot.live.as_mut().filter(|l| l.status.id == id) else {
            return;
        };
        let Ok(host) = self.host().cloned() else {
            return;
        };
        let present = match hotplug::device_ids(l).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(vm = %name, error = %e, "cannot check for removed NICs");
                return;
            }
        };
        let mut gone: Vec<String> = l
            .domain
            .devices
            .interfaces
            .iter()
            .filter_map(|i| i.alias().map(str::to_string))
            .chain(hotplug::pending_devices(&l.status))
            .filter(|a| !present.contains(a))
            .collect();
        gone.sort();
        gone.dedup();
        for alias in gone {
            let mut status = l.status.clone();
            if let Ok(true) = hotplug::adopt_guest_removal(l, &alias, &mut status) {
                tracing::warn!(vm = %name, device = %alias, "the guest removed a NIC while nobody listened; finishing its removal");
                l.status = status;
            }
            if !hotplug::is_pending(&l.status, &alias) {
                continue;
            }
            if let Err(e) = self.finish_removal(name, l, host.as_ref(), &alias).await {
                tracing::error!(vm = %name, %alias, error = %e, "cannot finish a removal");
            }
        }
        entry.publish(&slot, None);
    }
}
