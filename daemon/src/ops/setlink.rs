//! `domif-setlink`: a NIC's link state, live (QMP `set_link`) and/or in the definition.

use std::sync::Arc;

use serde_json::json;
use virtnet_conf::interface::{Leaf, LinkState};
use virtnet_conf::Domain;
use virtnet_qemu::validate::validate_update;

use super::{find_interface, update_refused};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::model::{Link, SetLinkResponse};

fn with_link(domain: &Domain, index: usize, up: bool) -> Domain {
    let mut d = domain.clone();
    d.devices.interfaces[index].link =
        Some(Leaf::new(if up { LinkState::Up } else { LinkState::Down }));
    d
}

fn mac_of(domain: &Domain, index: usize) -> String {
    domain.devices.interfaces[index]
        .mac()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

impl Daemon {
    /// Sets the link of the interface `key` (MAC, host device or alias) of VM `name` up or
    /// down: on the running VM (`live`), in the definition (`config`), or, with neither, on
    /// the running VM when it runs and else in the definition. Both are checked before either
    /// changes; if storing fails after the live change, the live change is undone.
    pub async fn set_link(
        &self,
        name: &str,
        key: &str,
        up: bool,
        live: bool,
        config: bool,
    ) -> Result<SetLinkResponse> {
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        if let Some(problem) = slot.problem() {
            return Err(DaemonError::Broken {
                name: name.into(),
                problem,
            });
        }
        let running = slot.live.is_some();
        let (live, config) = if live || config {
            (live, config)
        } else {
            (running, !running)
        };
        if live && !running {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "shut off".into(),
                hint: "a live change needs a running VM; use --config for the definition".into(),
            });
        }
        if let Some(l) = slot.live.as_ref().filter(|_| live) {
            l.refuse_if_stalled()?;
        }
        let persistent = match (config, &slot.persistent) {
            (false, _) => None,
            (true, Some(p)) => Some(p.clone()),
            (true, None) => {
                return Err(DaemonError::InvalidState {
                    name: name.into(),
                    state: "transient".into(),
                    hint: "it has no persistent definition to change".into(),
                })
            }
        };
        // Resolve everything first: a bad key changes nothing.
        let live_idx = match (live, &slot.live) {
            (true, Some(l)) => Some(find_interface(name, &l.domain, key)?),
            _ => None,
        };
        let cfg_idx = match &persistent {
            Some(p) => Some(find_interface(name, p, key)?),
            None => None,
        };
        // The update rules (a hostdev NIC has no link to set), before anything changes.
        let live_dom = slot.live.as_ref().map(|l| l.domain.clone());
        for (idx, d, is_live) in [
            (live_idx, live_dom.as_deref(), true),
            (cfg_idx, persistent.as_deref(), false),
        ] {
            if let (Some(i), Some(d)) = (idx, d) {
                let old = &d.devices.interfaces[i];
                let new = &with_link(d, i, up).devices.interfaces[i];
                validate_update(old, new, is_live, false).map_err(|r| update_refused(name, r))?;
            }
        }
        let mut mac = String::new();

        // The definition first (a file write, undone by writing the old one back), then the
        // running VM.
        let mut new_def = None;
        if let (Some(i), Some(p)) = (cfg_idx, &persistent) {
            mac = mac_of(p, i);
            let d = with_link(p, i, up);
            self.save_definition(name, &d).await?;
            new_def = Some(d);
        }
        if let (Some(i), Some(l)) = (live_idx, slot.live.as_mut()) {
            mac = mac_of(&l.domain, i);
            let iface = &l.domain.devices.interfaces[i];
            let was_up = iface.link_up();
            let device = iface.alias().unwrap_or_default().to_string();
            if let Err(e) = l
                .qmp(
                    "domif-setlink",
                    "set_link",
                    json!({ "name": device, "up": up }),
                )
                .await
            {
                if new_def.is_some() {
                    self.restore_definition(name, persistent.as_deref()).await;
                }
                return Err(e);
            }
            let new_live = with_link(&l.domain, i, up);
            let mut status = l.status.clone();
            status.live_xml = new_live.to_xml();
            let saved = {
                let status = status.clone();
                self.with_store(move |s| s.save_status(&status)).await
            };
            if let Err(e) = saved {
                let _ = l
                    .qmp(
                        "domif-setlink",
                        "set_link",
                        json!({ "name": device, "up": was_up }),
                    )
                    .await;
                if new_def.is_some() {
                    self.restore_definition(name, persistent.as_deref()).await;
                }
                return Err(e);
            }
            l.domain = Arc::new(new_live);
            l.status = status;
            tracing::info!(vm = %name, %mac, up, "link set (live)");
        }
        if let Some(d) = new_def {
            slot.persistent = Some(Arc::new(d));
            tracing::info!(vm = %name, %mac, up, "link set (config)");
        }
        entry.publish(&slot, None);
        Ok(SetLinkResponse {
            name: name.into(),
            mac,
            state: if up { Link::Up } else { Link::Down },
            live,
            config,
        })
    }
}
