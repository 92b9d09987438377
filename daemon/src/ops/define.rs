//! `define`: store a persistent definition (new or replacing one).

use std::sync::Arc;

use virtnet_conf::domain::Uuid;
use virtnet_conf::interface::{MacAddr, QEMU_MAC_PREFIX};
use virtnet_conf::{validate, Domain};
use virtnet_qemu::validate::{validate_domain, Operation};

use super::invalid_xml;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::events::{Defined, Lifecycle};
use crate::model::DefineResponse;
use crate::names::check_vm_name;
use crate::registry::{claims_of, Resource, Scope};
use crate::vms::{VmEntry, VmSlot};

impl Daemon {
    /// Parses, completes (UUID, MACs, libvirt defaults, guest PCI addresses), validates and
    /// stores `xml` as the persistent definition of the VM it names. Resources another VM
    /// holds are refused ([`crate::registry`]). On any error nothing changes.
    pub async fn define(&self, xml: &str) -> Result<DefineResponse> {
        let domain = Domain::parse(xml).map_err(|e| invalid_xml(&[e]))?;
        check_vm_name(&domain.name).map_err(|m| DaemonError::InvalidXml {
            problems: vec![format!(
                "{}:{}: <name>: {m}",
                domain.pos.line, domain.pos.col
            )],
        })?;
        loop {
            let entry = self.vms.get_or_create(&domain.name);
            let mut slot = entry.slot.lock().await;
            if slot.gone {
                continue; // undefined while we waited: look the name up again
            }
            let created = slot.persistent.is_none() && slot.definition_problem.is_none();
            let result = self.define_locked(&entry, &mut slot, domain.clone()).await;
            if result.is_ok() {
                let what = if created {
                    Defined::Added
                } else {
                    Defined::Updated
                };
                self.events.lifecycle(
                    &entry.name,
                    slot.persistent.as_ref().and_then(|d| d.uuid),
                    slot.live.as_ref().map(|l| l.status.id),
                    Lifecycle::Defined(what),
                );
            }
            if slot.is_empty() {
                slot.gone = true;
                self.vms.remove(&entry);
            }
            entry.publish(&slot, None);
            return result.map(|(uuid, warnings)| DefineResponse {
                name: entry.name.clone(),
                uuid,
                created,
                warnings,
            });
        }
    }

    pub(crate) async fn define_locked(
        &self,
        entry: &VmEntry,
        slot: &mut VmSlot,
        mut domain: Domain,
    ) -> Result<(String, Vec<String>)> {
        let name = entry.name.clone();
        let existing_uuid = slot
            .persistent
            .as_ref()
            .or(slot.live.as_ref().map(|l| &l.domain))
            .and_then(|d| d.uuid);
        match (domain.uuid, existing_uuid) {
            (Some(new), Some(old)) if new != old => {
                return Err(DaemonError::Conflict(format!(
                    "VM '{name}' exists with UUID {old}, the new definition has UUID {new}: \
                     use the same <uuid> or leave it out to keep the existing one"
                )))
            }
            (None, Some(old)) => domain.uuid = Some(old),
            _ => {}
        }
        self.assign_macs(&mut domain);
        domain.fill_defaults().map_err(|e| invalid_xml(&[e]))?;
        // conf's rules, then whether virtnet can run it (the same as `virtnet validate`).
        let mut problems: Vec<String> = validate(&domain).iter().map(|e| e.located()).collect();
        if let Err(r) = validate_domain(Operation::Define, &domain, None) {
            problems.extend(r.located());
        }
        if !problems.is_empty() {
            return Err(DaemonError::InvalidXml { problems });
        }
        let uuid = domain.uuid.expect("fill_defaults sets a UUID");
        self.check_uuid_unique(&name, uuid)?;

        // Take the new resources in addition to the old ones, store, then drop the old ones:
        // nothing is released before the new definition is on disk.
        let claims = claims_of(&domain);
        let clashes = self.registry.claim(&name, Scope::Persistent, &claims)?;
        let xml = domain.to_xml();
        let stored = {
            let name = name.clone();
            self.with_store(move |s| s.save_definition(&name, &xml))
                .await
        };
        if let Err(e) = stored {
            let old = slot
                .persistent
                .as_deref()
                .map(claims_of)
                .unwrap_or_default();
            if let Err(e2) = self.registry.replace(&name, Scope::Persistent, &old) {
                tracing::error!(vm = %name, error = %e2, "cannot restore the registry after a failed define");
            }
            return Err(e);
        }
        self.registry.replace(&name, Scope::Persistent, &claims)?;
        slot.persistent = Some(Arc::new(domain));
        slot.definition_problem = None;
        tracing::info!(vm = %name, %uuid, "defined");
        let warnings = clashes
            .into_iter()
            .map(|c| {
                format!(
                    "{} is also used by {} of VM '{}': the two VMs cannot run at the same time",
                    c.resource, c.device, c.vm
                )
            })
            .collect();
        Ok((uuid.to_string(), warnings))
    }

    /// Refuses a UUID another VM has.
    fn check_uuid_unique(&self, name: &str, uuid: Uuid) -> Result<()> {
        for other in self.vms.all() {
            if other.name == name {
                continue;
            }
            let view = other.view();
            if view.current().and_then(|d| d.uuid) == Some(uuid) {
                return Err(DaemonError::Conflict(format!(
                    "VM '{}' already has UUID {uuid}: leave <uuid> out to get a new one",
                    other.name
                )));
            }
        }
        Ok(())
    }

    /// Gives every interface without a MAC a random one with QEMU's prefix 52:54:00, unused by
    /// this domain and by every VM the registry knows (as libvirt does at parse time), and
    /// every Open vSwitch port without an `interfaceid` a random one.
    fn assign_macs(&self, domain: &mut Domain) {
        let mut taken: Vec<MacAddr> = domain
            .devices
            .interfaces
            .iter()
            .filter_map(|i| i.mac())
            .collect();
        for iface in &mut domain.devices.interfaces {
            iface.assign_mac(|| {
                let mac = self.new_mac(&taken);
                taken.push(mac);
                mac
            });
            // An Open vSwitch port's interfaceid, kept from now on (as libvirt does).
            iface.assign_interfaceid(Uuid::new_random);
        }
    }

    /// A random MAC with QEMU's prefix 52:54:00, not in `taken` and unknown to the registry.
    pub(crate) fn new_mac(&self, taken: &[MacAddr]) -> MacAddr {
        loop {
            // The first bytes of a v4 UUID are random (conf's one random source).
            let mut low = [0u8; 3];
            low.copy_from_slice(&Uuid::new_random().0[..3]);
            let mac = MacAddr::with_prefix(QEMU_MAC_PREFIX, low);
            if !taken.contains(&mac) && self.registry.holders(&Resource::Mac(mac)).is_empty() {
                return mac;
            }
        }
    }
}
