//! `migrate --live`: the source side drives ([`Daemon::migrate`]: plan with
//! [`virtnet_vm::plan_migrate`], run with [`virtnet_vm::exec::migrate`] on [`SourceSides`]),
//! the destination answers prepare/finish/abort ([`incoming`]).

mod incoming;
mod ovn;
mod peer;
mod sides;
mod stream;
mod table;

use std::time::Duration;

use virtnet_api::{
    MigrateProgress, MigrateRequest, MigrateResponse, MigrateStepTime, PrepareRequest,
};
use virtnet_conf::Domain;
use virtnet_vm::exec::MigrateExecOptions;
use virtnet_vm::{destination_domain, plan_migrate, MigrateOptions, Stream};

use peer::Peer;
use sides::SourceSides;
pub use table::Migrations;

use super::invalid_xml;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};

/// Default deadline of the migration itself.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

impl Daemon {
    /// Migrates running VM `name` live to the destination virtnetd `req.dest`. On any failure
    /// before the guest runs there, the VM runs on here as before and nothing of it is left
    /// there; the error names the step.
    pub async fn migrate(&self, name: &str, req: &MigrateRequest) -> Result<MigrateResponse> {
        let peer = Peer::parse(&req.dest)?;
        let stream = parse_migrate_uri(req.migrate_uri.as_deref())?;
        let timeout = req
            .timeout_secs
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        if self.migrations.contains(name) {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "being received".into(),
                hint: "it is the destination of a migration that has not finished".into(),
            });
        }
        let Some(live) = slot.live.as_ref() else {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "shut off".into(),
                hint: format!(
                    "only a running VM migrates live; start it with `virtnet start {name}` \
                     (or define it on the destination)"
                ),
            });
        };
        live.refuse_if_stalled()?;
        let opts = MigrateOptions {
            dest: req.dest.clone(),
            stream,
            timeout_ms: timeout.as_millis() as u64,
            max_bandwidth: req.bandwidth_mib.map(|m| m << 20),
            undefine_source: req.undefine_source,
            switch_networks: self
                .networks
                .list(true)
                .await
                .into_iter()
                .map(|n| n.name)
                .collect(),
            switch_socket_dir: Some(self.networks.sockets_dir().to_path_buf()),
            ovn: self.ovn_move(&live.domain, &peer).await?,
        };
        let plan = plan_migrate(&live.domain, &opts).map_err(DaemonError::vm)?;
        tracing::info!(vm = %name, plan = %plan.summary(), "migrating");
        let (live_xml, definition_xml) =
            destination_xml(&live.domain, slot.persistent.as_deref(), req)?;
        let qmp = live.qmp_client().await?;
        self.migrations.begin(name);
        let mut sides = SourceSides {
            daemon: self,
            entry: &entry,
            slot: &mut slot,
            qmp,
            peer,
            name: name.to_string(),
            prepare: PrepareRequest {
                live_xml,
                definition_xml,
                listen_uri: String::new(),
                // The destination gives up by itself a while after our deadline.
                finish_within_secs: Some(timeout.as_secs() + 120),
            },
            events: None,
            status: None,
            was_running: true,
        };
        let r = virtnet_vm::exec::migrate(&plan, &mut sides, &MigrateExecOptions::default()).await;
        self.migrations.end(name);
        if !slot.gone {
            entry.publish(&slot, None);
        }
        let report = r.map_err(DaemonError::vm)?;
        tracing::info!(vm = %name, dest = %req.dest, total_ms = ?report.qemu.total_time, downtime_ms = ?report.qemu.downtime, "migrated");
        Ok(MigrateResponse {
            name: name.into(),
            dest: req.dest.clone(),
            uri: report.uri,
            total_time_ms: report.qemu.total_time,
            downtime_ms: report.qemu.downtime,
            setup_time_ms: report.qemu.setup_time,
            transferred_bytes: report.qemu.ram.as_ref().map(|r| r.transferred),
            steps: report
                .steps
                .into_iter()
                .map(|s| MigrateStepTime {
                    step: s.step,
                    elapsed_ms: s.elapsed_ms,
                })
                .collect(),
            leftovers: report.leftovers,
        })
    }
}

impl Daemon {
    /// The progress of VM `name`'s outgoing migration (not `active` when none runs).
    pub fn migrate_progress(&self, name: &str) -> Result<MigrateProgress> {
        self.entry(name)?;
        let lines = self.migrations.progress(name);
        Ok(MigrateProgress {
            name: name.into(),
            active: lines.is_some(),
            lines: lines.unwrap_or_default(),
        })
    }
}

impl Daemon {
    /// Cancels VM `name`'s outgoing migration (virsh domjobabort): it stops at its next
    /// progress check and everything is undone, as on any failure before the switch-over.
    pub fn migrate_cancel(&self, name: &str) -> Result<MigrateProgress> {
        self.entry(name)?;
        if !self.migrations.request_cancel(name) {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "not migrating".into(),
                hint: "no outgoing migration of it runs here".into(),
            });
        }
        tracing::info!(vm = %name, "migration cancel requested");
        self.migrate_progress(name)
    }
}

/// `tcp:HOST[:PORT]` or `tcp://HOST[:PORT]` (IPv6 in brackets; port 0 or none: the
/// destination picks), or `unix`; none → `unix` (DEST is a local socket: both on one host).
fn parse_migrate_uri(uri: Option<&str>) -> Result<Stream> {
    let Some(uri) = uri.filter(|u| !matches!(*u, "unix" | "unix:")) else {
        return Ok(Stream::Unix);
    };
    let bad = || {
        DaemonError::BadRequest(format!(
            "migrate URI '{uri}': give tcp:HOST or tcp:HOST:PORT (HOST an address of the \
             destination host; an IPv6 one in brackets), or unix (both on this host)"
        ))
    };
    let rest = uri
        .strip_prefix("tcp://")
        .or_else(|| uri.strip_prefix("tcp:"))
        .ok_or_else(bad)?;
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, tail) = v6.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if tail.is_empty() => 0,
            None => return Err(bad()),
        };
        (h.to_string(), port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
            None => (rest.to_string(), 0),
        }
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok(Stream::Tcp { host, port })
}

/// What the destination runs and stores: the source's live definition (generated host names
/// dropped) and its persistent one, or both the user's `--xml` (same name and UUID).
fn destination_xml(
    live: &Domain,
    persistent: Option<&Domain>,
    req: &MigrateRequest,
) -> Result<(String, String)> {
    if let Some(xml) = &req.dest_xml {
        let mut d = Domain::parse(xml).map_err(|e| invalid_xml(&[e]))?;
        if d.name() != live.name() {
            return Err(DaemonError::BadRequest(format!(
                "the destination XML names VM '{}', not '{}'",
                d.name(),
                live.name()
            )));
        }
        match (d.uuid, live.uuid) {
            (Some(a), Some(b)) if a != b => {
                return Err(DaemonError::BadRequest(format!(
                    "the destination XML has UUID {a}, the VM has {b}: leave <uuid> out or \
                     give the VM's"
                )))
            }
            (None, u) => d.uuid = u,
            _ => {}
        }
        let xml = d.to_xml();
        return Ok((xml.clone(), xml));
    }
    let run = destination_domain(live).to_xml();
    let keep = persistent.map_or_else(|| run.clone(), Domain::to_xml);
    Ok((run, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_uris() {
        let ok = |u: Option<&str>| parse_migrate_uri(u).unwrap();
        let tcp = |h: &str, port| Stream::Tcp {
            host: h.into(),
            port,
        };
        assert_eq!(ok(None), Stream::Unix);
        assert_eq!(ok(Some("unix")), Stream::Unix);
        assert_eq!(ok(Some("tcp:10.0.0.2")), tcp("10.0.0.2", 0));
        assert_eq!(ok(Some("tcp://10.0.0.2:4444")), tcp("10.0.0.2", 4444));
        assert_eq!(ok(Some("tcp:[fd00::2]:4444")), tcp("fd00::2", 4444));
        assert_eq!(ok(Some("tcp:[fd00::2]")), tcp("fd00::2", 0));
        for bad in [
            "unix:/x",
            "tcp:",
            "tcp:h:port",
            "tcp:[fd00::2",
            "rdma:1.2.3.4:5",
        ] {
            assert!(parse_migrate_uri(Some(bad)).is_err(), "{bad}");
        }
    }
}
