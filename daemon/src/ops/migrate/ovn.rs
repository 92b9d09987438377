//! OVN's part of a migration, source side: which logical switch ports move and between which
//! chassis ([`Daemon::ovn_move`], for the plan), and the Northbound changes the plan's OVN
//! steps make ([`ovn_change`]). Only with `virtnetd --ovn-nb DB`: virtnet is not OVN's cloud
//! management system, so it is told where the Northbound database is; the chassis names are
//! each host's Open vSwitch `external_ids:system-id` (what its ovn-controller registers), the
//! source's read from its own OVSDB, the destination's asked from its virtnetd (`GET
//! /v1/host`); a port is the one the NIC's `interfaceid` (`iface-id`) names.

use std::collections::BTreeMap;

use virtnet_api::HostInfo;
use virtnet_conf::Domain;
use virtnet_host::{HostError, LspOptionsChange, Nbctl, Vsctl};
use virtnet_vm::exec::SideError;
use virtnet_vm::{ovs_iface_ids, OvnMove, VmError};

use super::peer::Peer;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};

impl Daemon {
    /// This host's `ovs-vsctl` (its `--ovsdb`).
    fn vsctl(&self) -> Vsctl {
        match &self.config.ovsdb {
            Some(db) => Vsctl::default().with_db(db),
            None => Vsctl::default(),
        }
    }

    /// `GET /v1/host`: this host's OVN chassis name, when its Open vSwitch has one.
    pub async fn host_info(&self) -> HostInfo {
        let vsctl = self.vsctl();
        let id = tokio::task::spawn_blocking(move || vsctl.system_id()).await;
        let ovs_system_id = match id {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no Open vSwitch system-id");
                None
            }
            Err(_) => None,
        };
        HostInfo { ovs_system_id }
    }

    /// What OVN's part of migrating `live` to `peer` is: `None` without `--ovn-nb` or when no
    /// NIC of the VM is an OVN logical switch port. Refused (before anything is done) when a
    /// port would move but a chassis name is unknown.
    pub(super) async fn ovn_move(&self, live: &Domain, peer: &Peer) -> Result<Option<OvnMove>> {
        let Some(db) = self.config.ovn_nb.clone() else {
            return Ok(None);
        };
        let ids = ovs_iface_ids(live);
        if ids.is_empty() {
            return Ok(None);
        }
        let nbctl = Nbctl::new(db);
        let ports = tokio::task::spawn_blocking(move || {
            let mut ports = BTreeMap::new();
            for id in ids {
                if let Some(options) = nbctl.lsp_options(&id)? {
                    ports.insert(id, options);
                }
            }
            Ok::<_, HostError>(ports)
        })
        .await
        .map_err(|e| DaemonError::BadRequest(format!("OVN lookup task: {e}")))?
        .map_err(|source| {
            DaemonError::vm(VmError::Host {
                what: "look up the VM's logical switch ports".into(),
                source,
            })
        })?;
        if ports.is_empty() {
            tracing::info!(vm = %live.name(), "no NIC of the VM is an OVN logical switch port");
            return Ok(None);
        }
        let mut problems = Vec::new();
        let source_chassis = self.host_info().await.ovs_system_id;
        if source_chassis.is_none() {
            problems.push(format!(
                "this host's Open vSwitch ({}) has no external_ids:system-id, so its OVN chassis \
                 is unknown: set it (ovs-vsctl set Open_vSwitch . external_ids:system-id=NAME, \
                 the name ovn-controller registers)",
                self.vsctl().db()
            ));
        }
        let dest: std::result::Result<HostInfo, SideError> = peer.get("/v1/host").await;
        let dest_chassis = match dest {
            Ok(h) => h.ovs_system_id,
            Err(e) => {
                problems.push(format!(
                    "cannot ask the destination for its chassis: {}",
                    e.message
                ));
                None
            }
        };
        if dest_chassis.is_none() && problems.len() < 2 {
            problems.push(
                "the destination's Open vSwitch has no external_ids:system-id (its OVN chassis \
                 name): set it there, or give its virtnetd the OVSDB its ovn-controller uses \
                 (--ovsdb)"
                    .into(),
            );
        }
        let (Some(source_chassis), Some(dest_chassis)) = (source_chassis, dest_chassis) else {
            return Err(DaemonError::vm(VmError::NotMigratable {
                vm: live.name().to_string(),
                problems,
            }));
        };
        if source_chassis == dest_chassis {
            return Err(DaemonError::vm(VmError::NotMigratable {
                vm: live.name().to_string(),
                problems: vec![format!(
                    "the source and the destination are the same OVN chassis '{source_chassis}': \
                     each host needs its own Open vSwitch system-id"
                )],
            }));
        }
        Ok(Some(OvnMove {
            source_chassis,
            dest_chassis,
            ports,
        }))
    }

    /// Makes `change` in the Northbound database (an OVN step of a migration plan).
    pub(super) async fn ovn_change(
        &self,
        change: &LspOptionsChange,
    ) -> std::result::Result<(), SideError> {
        let Some(db) = self.config.ovn_nb.clone() else {
            return Err(SideError::fault("no OVN Northbound database (--ovn-nb)"));
        };
        let change = change.clone();
        tokio::task::spawn_blocking(move || Nbctl::new(db).change(&change))
            .await
            .map_err(|e| SideError::fault(format!("ovn-nbctl task: {e}")))?
            .map_err(|e| SideError::fault(e.to_string()))
    }
}
