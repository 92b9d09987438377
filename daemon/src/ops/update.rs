//! `update-device`: change a NIC to match a device XML. What can change: the link state
//! (QMP `set_link`) and a vhost-user NIC's socket (`<source path mode>`). QEMU cannot swap a
//! vhost-user NIC's chardev (`chardev-change`: "Chardev user does not support chardev
//! hotswap"), so a live socket change is an explicit replug (`replug: true`): the NIC is
//! unplugged and plugged again on the new socket with the same MAC, alias and PCI address; the
//! guest sees its link go down and up. Without the flag it is refused, saying so. What may
//! change is `virtnet_qemu::validate::validate_update`'s to say. A bridge or ethernet NIC's
//! `<bandwidth>` is replaced on its running tap (`bandwidth.rs`). A NIC on a virtnet-vswitch
//! network changes its `<bandwidth>`, `<vlan>` and `<port isolated>` in place: its switch
//! port's policy is replaced whole (the switch's `set-policy`).

use std::sync::Arc;

use serde_json::json;
use virtnet_conf::interface::{InterfaceKind, Leaf, LinkState};
use virtnet_conf::{Domain, Interface};
use virtnet_qemu::validate::{validate_update, NicUpdate};

use super::detach::detach_timeout;
use super::devices::{parse_interface, Matcher};
use super::{resolve_scope, update_refused};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::live::{hotplug, Live};
use crate::model::{UpdateRequest, UpdateResponse};
use crate::registry::{claims_of_interface, Claim, Resource, Scope};

/// `d` with interface `index` replaced by `iface`.
fn replaced(d: &Domain, index: usize, iface: &Interface) -> Domain {
    let mut d = d.clone();
    d.devices.interfaces[index] = iface.clone();
    d
}

fn socket_claims(i: &Interface) -> Vec<Claim> {
    claims_of_interface(i)
        .into_iter()
        .filter(|c| matches!(c.resource, Resource::VhostUserSocket(_)))
        .collect()
}

impl Daemon {
    /// Updates the interface `req.xml` names in VM `name` (see the module docs).
    pub async fn update_device(&self, name: &str, req: &UpdateRequest) -> Result<UpdateResponse> {
        let run = self.update_device_untimed(name, req);
        self.latencies.time(crate::metrics::Op::Update, run).await
    }

    async fn update_device_untimed(
        &self,
        name: &str,
        req: &UpdateRequest,
    ) -> Result<UpdateResponse> {
        let given = parse_interface(&req.xml)?;
        let matcher = Matcher::of(&given);
        let timeout = detach_timeout(req.timeout_secs)?;
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let (live, config) = resolve_scope(name, &slot, req.scope())?;
        let live_plan = match (live, &slot.live) {
            (true, Some(l)) => {
                let i = matcher.find(name, &l.domain)?;
                let old = &l.domain.devices.interfaces[i];
                let shown = self.networks.as_defined(name, old);
                let ch = if shown != *old {
                    // A NIC on a switch network: the user sees (and sends back) its network
                    // form; only its link can change. The same change goes to the vhost-user
                    // NIC QEMU runs.
                    let ch = validate_update(&shown, &given, true, req.replug)
                        .map_err(|r| update_refused(name, r))?;
                    let mut live_given = old.clone();
                    live_given.link.clone_from(&ch.new.link);
                    validate_update(old, &live_given, true, req.replug).map(|mut live| {
                        // Its switch port's policy: the same elements on the vhost-user NIC
                        // (they stay in the live XML), set on the switch by set-policy.
                        if ch.port_policy {
                            live.new.bandwidth.clone_from(&ch.new.bandwidth);
                            live.new.vlan.clone_from(&ch.new.vlan);
                            live.new.port_isolated.clone_from(&ch.new.port_isolated);
                            live.port_policy = true;
                        }
                        live
                    })
                } else {
                    validate_update(old, &given, true, req.replug)
                }
                .map_err(|r| update_refused(name, r))?;
                let alias = old.alias().unwrap_or_default();
                if hotplug::is_pending(&l.status, alias) {
                    return Err(DaemonError::RemovalPending {
                        vm: name.into(),
                        device: format!("{} ({alias})", old.describe()),
                    });
                }
                Some((i, ch))
            }
            _ => None,
        };
        let persistent = if config {
            slot.persistent.clone()
        } else {
            None
        };
        let cfg_plan = match &persistent {
            Some(p) => {
                let i = matcher.find(name, p)?;
                let ch = validate_update(&p.devices.interfaces[i], &given, false, false)
                    .map_err(|r| update_refused(name, r))?;
                Some((i, ch))
            }
            None => None,
        };

        // The new socket must be free (another VM, or another NIC of this one).
        let mut scopes = Vec::new();
        let mut new_socket = Vec::new();
        for (scope, plan) in [(Scope::Live, &live_plan), (Scope::Persistent, &cfg_plan)] {
            if let Some((_, ch)) = plan.as_ref().filter(|(_, ch)| ch.socket) {
                scopes.push(scope);
                new_socket = socket_claims(&ch.new);
            }
        }
        let (taken, _) = self.registry.claim_device(name, &scopes, &new_socket)?;

        let result = self
            .update_locked(
                name,
                &mut slot,
                live_plan.clone(),
                cfg_plan.clone(),
                persistent.as_deref(),
                timeout,
            )
            .await;
        entry.publish(&slot, None);
        let replugged = match result {
            Ok(r) => r,
            Err(e) => {
                self.registry.release_taken(name, &taken);
                return Err(e);
            }
        };
        // The old sockets are free now.
        for (scope, plan, old) in [
            (Scope::Live, &live_plan, None),
            (Scope::Persistent, &cfg_plan, persistent.as_deref()),
        ] {
            if let Some((i, ch)) = plan.as_ref().filter(|(_, ch)| ch.socket) {
                let old_claims = match old {
                    Some(p) => socket_claims(&p.devices.interfaces[*i]),
                    None => Vec::new(),
                };
                let keep: Vec<_> = socket_claims(&ch.new)
                    .into_iter()
                    .map(|c| c.resource)
                    .collect();
                let drop: Vec<_> = old_claims
                    .into_iter()
                    .map(|c| c.resource)
                    .filter(|r| !keep.contains(r))
                    .collect();
                self.registry.release_resources(name, scope, &drop);
            }
        }
        let any = live_plan.as_ref().or(cfg_plan.as_ref());
        Ok(UpdateResponse {
            name: name.into(),
            mac: any.and_then(|(_, ch)| ch.new.mac()).map(|m| m.to_string()),
            changed: any.map(|(_, ch)| ch.words()).unwrap_or_default(),
            live,
            config,
            replugged,
        })
    }

    /// The changes, definition first. Returns whether the NIC was replugged.
    async fn update_locked(
        &self,
        name: &str,
        slot: &mut crate::vms::VmSlot,
        live_plan: Option<(usize, NicUpdate)>,
        cfg_plan: Option<(usize, NicUpdate)>,
        persistent: Option<&Domain>,
        timeout: std::time::Duration,
    ) -> Result<bool> {
        let mut new_def = None;
        if let (Some((i, ch)), Some(p)) = (&cfg_plan, persistent) {
            if ch.link.is_some() || ch.socket || ch.bandwidth || ch.port_policy {
                let d = replaced(p, *i, &ch.new);
                self.save_definition(name, &d).await?;
                new_def = Some(d);
            }
        }
        let mut replugged = false;
        if let (Some((i, ch)), Some(l)) = (live_plan, slot.live.as_mut()) {
            let r = if ch.socket {
                replugged = true;
                self.replug(name, l, i, &ch.new, timeout).await
            } else {
                let before = l.domain.devices.interfaces[i].clone();
                let mut r = Ok(());
                if ch.bandwidth {
                    r = self.set_bandwidth_live(name, l, i, &ch.new).await;
                }
                if r.is_ok() && ch.port_policy {
                    r = self.set_policy_live(name, l, i, &ch.new).await;
                }
                if let (Ok(()), Some(up)) = (&r, ch.link) {
                    r = self.set_link_live(name, l, i, up).await;
                    if r.is_err() && ch.bandwidth {
                        // Nothing half-applied: the old limits go back.
                        if let Err(e) = self.set_bandwidth_live(name, l, i, &before).await {
                            tracing::error!(vm = %name, error = %e, "cannot put the old bandwidth limits back");
                        }
                    }
                    if r.is_err() && ch.port_policy {
                        if let Err(e) = self.set_policy_live(name, l, i, &before).await {
                            tracing::error!(vm = %name, error = %e, "cannot put the old port policy back");
                        }
                    }
                }
                r
            };
            if let Err(e) = r {
                if new_def.is_some() {
                    self.restore_definition(name, persistent).await;
                }
                return Err(e);
            }
        }
        if let Some(d) = new_def {
            slot.persistent = Some(Arc::new(d));
        }
        Ok(replugged)
    }

    /// Gives the switch port of network NIC `i` the `<bandwidth>`, `<vlan>` and `<port>` of
    /// `new` (its vhost-user form), then records them in the live XML; the switch gets its
    /// old policy back when that record cannot be saved.
    async fn set_policy_live(
        &self,
        name: &str,
        l: &mut Live,
        i: usize,
        new: &Interface,
    ) -> Result<()> {
        let shown = self
            .networks
            .as_defined(name, &l.domain.devices.interfaces[i]);
        let InterfaceKind::Network {
            network,
            portid: Some(port),
            ..
        } = &shown.kind
        else {
            return Err(DaemonError::Conflict(format!(
                "{} is not on a virtnet-vswitch network: its port policy cannot change",
                shown.describe()
            )));
        };
        let old = self
            .networks
            .set_port_policy(&network.value, port, new)
            .await?;
        let new_live = replaced(&l.domain, i, new);
        let mut status = l.status.clone();
        status.live_xml = new_live.to_xml();
        if let Err(e) = self.save_status(&status).await {
            if let Err(back) = self.networks.set_policy(&network.value, port, old).await {
                tracing::error!(vm = %name, %port, error = %back, "cannot restore a port policy");
            }
            return Err(e);
        }
        l.domain = Arc::new(new_live);
        l.status = status;
        tracing::info!(vm = %name, %port, "switch port policy set (live)");
        Ok(())
    }

    async fn set_link_live(&self, name: &str, l: &mut Live, i: usize, up: bool) -> Result<()> {
        let iface = &l.domain.devices.interfaces[i];
        let device = iface.alias().unwrap_or_default().to_string();
        l.qmp(
            "update-device",
            "set_link",
            json!({ "name": device, "up": up }),
        )
        .await?;
        let mut new = iface.clone();
        new.link = Some(Leaf::new(if up { LinkState::Up } else { LinkState::Down }));
        let new_live = replaced(&l.domain, i, &new);
        let mut status = l.status.clone();
        status.live_xml = new_live.to_xml();
        if let Err(e) = self.save_status(&status).await {
            let _ = l
                .qmp(
                    "update-device",
                    "set_link",
                    json!({ "name": device, "up": !up }),
                )
                .await;
            return Err(e);
        }
        l.domain = Arc::new(new_live);
        l.status = status;
        tracing::info!(vm = %name, %device, up, "link set (live)");
        Ok(())
    }

    /// Unplugs NIC `i` and plugs `new` (same MAC, alias, PCI address) in its place; when the
    /// new one cannot be plugged the old one is plugged back.
    async fn replug(
        &self,
        name: &str,
        l: &mut Live,
        i: usize,
        new: &Interface,
        timeout: std::time::Duration,
    ) -> Result<()> {
        let host = self.host()?.clone();
        let old = l.domain.devices.interfaces[i].clone();
        let alias = old.alias().unwrap_or_default().to_string();
        let mut status = l.status.clone();
        match hotplug::unplug(l, host.as_ref(), i, timeout, &mut status).await? {
            // The old NIC keeps its claims until the new one is in (it may have to go back).
            hotplug::Unplug::Done => self.removed(name, l, &alias, status, false).await?,
            hotplug::Unplug::Pending => {
                if let Err(e) = self.save_status(&status).await {
                    tracing::error!(vm = %name, error = %e, "cannot record a pending removal");
                }
                l.status = status;
                return Err(DaemonError::ReplugPending {
                    vm: name.to_string(),
                    nic: old.describe(),
                    timeout,
                });
            }
        }
        match self.plug_live(name, l, new.clone()).await {
            Ok(_) => {
                let keep: Vec<_> = claims_of_interface(new)
                    .into_iter()
                    .map(|c| c.resource)
                    .collect();
                let drop: Vec<_> = claims_of_interface(&old)
                    .into_iter()
                    .map(|c| c.resource)
                    .filter(|r| !keep.contains(r))
                    .collect();
                self.registry.release_resources(name, Scope::Live, &drop);
                tracing::info!(vm = %name, %alias, "NIC replugged on a new vhost-user socket");
                Ok(())
            }
            Err(e) => {
                let back = self.plug_live(name, l, old.clone()).await;
                if back.is_err() {
                    let gone: Vec<_> = claims_of_interface(&old)
                        .into_iter()
                        .map(|c| c.resource)
                        .collect();
                    self.registry.release_resources(name, Scope::Live, &gone);
                }
                Err(DaemonError::ReplugFailed {
                    vm: name.to_string(),
                    nic: old.describe(),
                    source: Box::new(e),
                    back: back.err().map(Box::new),
                })
            }
        }
    }
}
