//! `attach-device` / `attach-interface`: plug a NIC into the running VM and/or add it to the
//! definition.
//!
//! Order, all under the VM's lock: read and complete the interface (MAC, model, guest PCI
//! address), validate it against the live and/or persistent domain, claim its host resources
//! in the owner registry (all or nothing, refused when another VM, or another NIC of this VM,
//! holds one), then store the definition, then plug it into QEMU (host steps, `getfd`,
//! `chardev-add`, `netdev_add`, `device_add`, each undone on a later failure), then write the
//! live status. Any failure undoes what came before: the registry claims are given back, the
//! old definition is written back, the plug is rolled back; the VM and the store are as before.

use std::sync::Arc;

use virtnet_conf::interface::InterfaceKind;
use virtnet_conf::validate::validate_new_interface;
use virtnet_conf::{Domain, Interface};
use virtnet_qemu::validate::{validate_interface, Operation};

use super::devices::{complete_for, parse_interface, with_interface};
use super::query::interface_row;
use super::{invalid_xml, refused, resolve_scope};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::live::{hotplug, Live};
use crate::model::{AttachRequest, AttachResponse};
use crate::registry::{claims_of_interface, Claim, Resource, Scope, Taken};

/// Refuses `iface` when `d` would not be valid with it.
fn check_fits(d: &Domain, iface: &Interface) -> Result<()> {
    let problems = validate_new_interface(d, iface);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid_xml(&problems))
    }
}

impl Daemon {
    /// Attaches the `<interface>` in `req.xml` to VM `name` (see the module docs).
    pub async fn attach_device(&self, name: &str, req: &AttachRequest) -> Result<AttachResponse> {
        let run = self.attach_device_untimed(name, req);
        self.latencies.time(crate::metrics::Op::Attach, run).await
    }

    async fn attach_device_untimed(
        &self,
        name: &str,
        req: &AttachRequest,
    ) -> Result<AttachResponse> {
        tracing::debug!(vm = %name, "attach request");
        let parsed = parse_interface(&req.xml)?;
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let (live, config) = resolve_scope(name, &slot, req.scope())?;
        let mut iface = parsed;
        if iface.mac().is_none() && !iface.is_hostdev() {
            let taken: Vec<_> = [
                slot.live.as_ref().map(|l| &*l.domain),
                slot.persistent.as_deref(),
            ]
            .into_iter()
            .flatten()
            .flat_map(|d| d.devices.interfaces.iter().filter_map(Interface::mac))
            .collect();
            let mac = self.new_mac(&taken);
            iface.assign_mac(|| mac);
        }
        iface.assign_interfaceid(virtnet_conf::domain::Uuid::new_random);
        // On a switch network the live NIC is vhost-user on a socket the daemon picks.
        let (live_src, net_port) = if live {
            self.networks.resolve_interface(name, &iface).await?
        } else {
            (iface.clone(), None)
        };

        // What cannot run (live) or be defined (config) is refused before anything else.
        if let Some(l) = slot.live.as_ref().filter(|_| live) {
            // The NIC as given (before a network NIC becomes vhost-user), as define would see
            // it: what is refused on its type is refused whatever it resolves to.
            if !config {
                validate_interface(Operation::Define, &l.domain, &iface, None)
                    .map_err(|r| refused(Operation::Define, r))?;
            }
            validate_interface(Operation::Attach, &l.domain, &live_src, None)
                .map_err(|r| refused(Operation::Attach, r))?;
            if live_src.is_hostdev() && virtnet_qemu::in_own_mount_namespace(l.status.pid) {
                return Err(DaemonError::NotHotpluggable(format!(
                    "VM '{name}' runs confined: its QEMU's private /dev is made at start and \
                     holds only the VFIO groups of the host devices it started with, so a \
                     hostdev NIC cannot be hot-plugged into it; add the NIC with --config and \
                     restart the VM, or run this VM unconfined (<seclabel type='none'/>)"
                )));
            }
        }
        if let Some(p) = slot.persistent.as_ref().filter(|_| config) {
            validate_interface(Operation::Define, p, &iface, None)
                .map_err(|r| refused(Operation::Define, r))?;
        }

        // The owner registry first, so a socket, tap or VF in use is refused naming its owner
        // (also when that is another NIC of this VM).
        // Each scope claims what it holds: the running VM the resolved NIC (on a network: the
        // socket the daemon picked), the definition the NIC as stored (on a network: no
        // socket), so stop, restart and detach --config release exactly what was taken.
        let mut scoped = Vec::new();
        if live {
            scoped.push((Scope::Live, claims_of_interface(&live_src)));
        }
        if config {
            scoped.push((Scope::Persistent, claims_of_interface(&iface)));
        }
        for (scope, claims) in &scoped {
            self.registry.check_device(name, &[*scope], claims)?;
        }

        // Complete and check against each side before anything changes.
        let live_iface = match slot.live.as_ref().filter(|_| live) {
            Some(l) => {
                let i = complete_for(&l.domain, &live_src, None)?;
                // The switch port enforces a network NIC's <filterref>, not QEMU.
                let checked = match net_port {
                    Some(_) => crate::networks::policy::without_port_filter(&i),
                    None => i.clone(),
                };
                check_fits(&l.domain, &checked)?;
                Some(i)
            }
            None => None,
        };
        let persistent = if config {
            slot.persistent.clone()
        } else {
            None
        };
        let cfg_iface = match &persistent {
            Some(p) => {
                let prefer = live_iface.as_ref().and_then(|i| i.address.as_ref());
                let i = complete_for(p, &iface, prefer)?;
                check_fits(p, &i)?;
                Some(i)
            }
            None => None,
        };

        let mut taken = Taken::default();
        let mut clashes = Vec::new();
        for (scope, claims) in &scoped {
            match self.registry.claim_device(name, &[*scope], claims) {
                Ok((t, c)) => {
                    taken.0.extend(t.0);
                    clashes.extend(c);
                }
                Err(e) => {
                    self.registry.release_taken(name, &taken);
                    return Err(e);
                }
            }
        }
        if let Some(p) = &net_port {
            if let Err(e) = self.networks.add_ports(name, std::slice::from_ref(p)).await {
                self.registry.release_taken(name, &taken);
                return Err(e);
            }
        }
        let result = self
            .attach_locked(
                name,
                &mut slot,
                live_iface,
                cfg_iface,
                persistent.as_deref(),
            )
            .await;
        let row = match result {
            Ok(row) => {
                if live {
                    self.networks.record_ovs(
                        name,
                        std::slice::from_ref(&iface),
                        std::slice::from_ref(&live_src),
                    );
                }
                row
            }
            Err(e) => {
                self.registry.release_taken(name, &taken);
                if let Some(p) = &net_port {
                    self.networks.remove_port(&p.network, &p.port).await;
                }
                entry.publish(&slot, None);
                return Err(e);
            }
        };
        entry.publish(&slot, None);
        let warnings = clashes
            .into_iter()
            .map(|c| {
                format!(
                    "{} is also used by {} of VM '{}': the two VMs cannot run at the same time",
                    c.resource, c.device, c.vm
                )
            })
            .collect();
        Ok(AttachResponse {
            name: name.into(),
            interface: row,
            live,
            config,
            warnings,
        })
    }

    /// The changes, definition first; returns the new interface's row.
    async fn attach_locked(
        &self,
        name: &str,
        slot: &mut crate::vms::VmSlot,
        live_iface: Option<Interface>,
        cfg_iface: Option<Interface>,
        persistent: Option<&Domain>,
    ) -> Result<crate::model::InterfaceRow> {
        let mut row = None;
        let mut new_def = None;
        if let (Some(i), Some(p)) = (&cfg_iface, persistent) {
            let d = with_interface(p, i.clone());
            self.save_definition(name, &d).await?;
            row = Some(interface_row(i, false));
            new_def = Some(d);
        }
        if let (Some(i), Some(l)) = (live_iface, slot.live.as_mut()) {
            match self.plug_live(name, l, i).await {
                Ok(plugged) => {
                    row = Some(interface_row(
                        &self.networks.as_defined(name, &plugged),
                        false,
                    ))
                }
                Err(e) => {
                    if new_def.is_some() {
                        self.restore_definition(name, persistent).await;
                    }
                    return Err(e);
                }
            }
        }
        if let Some(d) = new_def {
            slot.persistent = Some(Arc::new(d));
        }
        row.ok_or_else(|| DaemonError::Internal("attach changed nothing".into()))
    }

    /// Plugs `iface` into the running VM and records it in the live definition and status;
    /// returns the interface as plugged (alias, host device). Rolled back entirely on failure.
    pub(crate) async fn plug_live(
        &self,
        name: &str,
        l: &mut Live,
        iface: Interface,
    ) -> Result<Interface> {
        let host = self.host()?.clone();
        let qemu = l
            .domain
            .emulator()
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| self.config.qemu.clone());
        let caps = self.caps(&qemu).await?;
        let backend_timeout = self.config.backend_timeout;
        // A NIC on a switch network: its <filterref> is enforced by its switch port (added
        // before), not by QEMU or a host tap; it is planned without it and kept in the live
        // definition.
        let on_switch = matches!(iface.kind, InterfaceKind::VhostUser { .. })
            && matches!(
                self.networks.as_defined(name, &iface).kind,
                InterfaceKind::Network { .. }
            );
        let port_filter = iface.filterref.clone().filter(|_| on_switch);
        let to_plug = match port_filter {
            Some(_) => crate::networks::policy::without_port_filter(&iface),
            None => iface,
        };
        let mut plugged = hotplug::plug(l, host.as_ref(), &caps, &to_plug, backend_timeout).await?;
        if port_filter.is_some() {
            plugged.iface.filterref = port_filter;
        }
        let new_live = with_interface(&l.domain, plugged.iface.clone());
        let mut status = l.status.clone();
        status.live_xml = new_live.to_xml();
        plugged.record_into(&mut status);
        if let Err(e) = self.save_status(&status).await {
            let left = hotplug::unplug_now(l, host.as_ref(), &plugged).await;
            for x in left {
                tracing::error!(vm = %name, leftover = %x, "cannot undo a plug after a failed status write");
            }
            return Err(e);
        }
        // A tap name chosen at plug time is claimed too (as at start).
        let chosen: Vec<Claim> = claims_of_interface(&plugged.iface)
            .into_iter()
            .filter(|c| matches!(c.resource, Resource::Tap(_)))
            .collect();
        if let Err(e) = self.registry.claim(name, Scope::Live, &chosen) {
            tracing::warn!(vm = %name, error = %e, "a device name chosen at plug time is claimed elsewhere");
        }
        l.domain = Arc::new(new_live);
        l.status = status;
        tracing::info!(vm = %name, nic = %plugged.iface.describe(), alias = plugged.iface.alias().unwrap_or(""), "NIC plugged (live)");
        Ok(plugged.iface)
    }
}
