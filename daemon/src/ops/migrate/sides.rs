//! The source side of a live migration as the executor drives it: the source's QEMU (over
//! its QMP link) and the destination virtnetd (over its API socket, [`Peer`]).

use virtnet_api::{AbortResponse, DomainInfo, PrepareRequest, PrepareResponse};
use virtnet_qemu::{MigrationInfo, QmpClient};
use virtnet_vm::exec::{MigrationSides, SideError};
use virtnet_vm::StopMode;

use super::peer::Peer;
use crate::daemon::Daemon;
use crate::events::{Lifecycle, Stopped};
use crate::vms::{VmEntry, VmSlot};

/// The `getfd` name of the source QEMU's end of a unix migration stream.
const OUT_FD: &str = "migrate-out";

/// The source's QEMU and the destination virtnetd, for the executor. Holds the VM's slot
/// (locked for the whole migration).
pub(super) struct SourceSides<'a> {
    pub(super) daemon: &'a Daemon,
    pub(super) entry: &'a std::sync::Arc<VmEntry>,
    pub(super) slot: &'a mut VmSlot,
    pub(super) qmp: QmpClient,
    pub(super) peer: Peer,
    pub(super) name: String,
    pub(super) prepare: PrepareRequest,
    /// QEMU's `MIGRATION` events, subscribed before `migrate`.
    pub(super) events: Option<tokio::sync::broadcast::Receiver<virtnet_qemu::QmpEvent>>,
    /// The status of the last `MIGRATION` event (`None` before the first).
    pub(super) status: Option<String>,
    /// Whether the guest ran when the migration started (a guest paused before it stays
    /// paused when it is undone).
    pub(super) was_running: bool,
}

impl SourceSides<'_> {
    fn path(&self, action: &str) -> String {
        format!("/v1/domains/{}/migrate/{action}", encode(&self.name))
    }
}

/// `%XX`-encodes a VM name for a URL path segment (the router decodes it).
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn qmp_err(what: &str) -> impl Fn(virtnet_qemu::QemuError) -> SideError + '_ {
    move |e| SideError {
        message: format!("{what}: {e}"),
        user_error: false,
    }
}

impl MigrationSides for SourceSides<'_> {
    async fn prepare(&mut self, uri: &str) -> std::result::Result<String, SideError> {
        self.prepare.listen_uri = uri.to_string();
        let r: PrepareResponse = self.peer.post(&self.path("prepare"), &self.prepare).await?;
        Ok(r.uri)
    }

    async fn abort_destination(&mut self) -> std::result::Result<(), SideError> {
        let r: AbortResponse = self
            .peer
            .post(&self.path("abort"), &serde_json::json!({}))
            .await?;
        if r.leftovers.is_empty() {
            Ok(())
        } else {
            Err(SideError::fault(format!(
                "the destination could not release: {}",
                r.leftovers.join("; ")
            )))
        }
    }

    async fn finish(&mut self) -> std::result::Result<(), SideError> {
        let _: DomainInfo = self
            .peer
            .post(&self.path("finish"), &serde_json::json!({}))
            .await?;
        Ok(())
    }

    async fn set_capabilities(
        &mut self,
        caps: &[(String, bool)],
    ) -> std::result::Result<(), SideError> {
        self.qmp
            .migrate_set_capabilities(caps)
            .await
            .map_err(qmp_err("migrate-set-capabilities"))
    }

    async fn set_parameters(&mut self, max_bandwidth: u64) -> std::result::Result<(), SideError> {
        self.qmp
            .migrate_set_max_bandwidth(max_bandwidth)
            .await
            .map_err(qmp_err("migrate-set-parameters"))
    }

    async fn migrate(&mut self, uri: &str) -> std::result::Result<(), SideError> {
        self.was_running = self
            .qmp
            .query_status()
            .await
            .map_err(qmp_err("query-status"))?
            .running;
        self.events = Some(self.qmp.subscribe());
        let Some(path) = uri.strip_prefix("unix:") else {
            return self.qmp.migrate(uri).await.map_err(qmp_err("migrate"));
        };
        // Our end of the destination's socket, handed to QEMU (which may not reach the path).
        let conn = tokio::net::UnixStream::connect(path).await.map_err(|e| {
            SideError::fault(format!(
                "connect to the destination's migration socket {path}: {e}"
            ))
        })?;
        self.qmp
            .getfd(OUT_FD, std::os::fd::AsFd::as_fd(&conn))
            .await
            .map_err(qmp_err("getfd"))?;
        let r = self.qmp.migrate(&format!("fd:{OUT_FD}")).await;
        if r.is_err() {
            // QEMU takes the fd only when the migration starts.
            let _ = self.qmp.closefd(OUT_FD).await;
        }
        r.map_err(qmp_err("migrate"))
    }

    /// `query-migrate` for the figures, with the status of the last `MIGRATION` event: a QEMU
    /// that was itself a migration's destination reports that incoming migration's status in
    /// `query-migrate` (QEMU 7.2 fills it over the outgoing one), so `completed` there can be
    /// stale.
    async fn query(&mut self) -> std::result::Result<MigrationInfo, SideError> {
        if self.status.as_deref() != Some("completed")
            && self.daemon.migrations.take_cancel(&self.name)
        {
            return Err(SideError {
                message: "cancelled on request (`virtnet domjobabort`)".into(),
                user_error: true,
            });
        }
        if let Some(rx) = self.events.as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(ev) if ev.name == "MIGRATION" => {
                        self.status = ev.data["status"].as_str().map(str::to_string);
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        }
        let mut info = self
            .qmp
            .query_migrate()
            .await
            .map_err(qmp_err("query-migrate"))?;
        if self.events.is_some() {
            info.status = Some(self.status.clone().unwrap_or_else(|| "setup".into()));
        }
        Ok(info)
    }

    async fn cancel(&mut self) -> std::result::Result<(), SideError> {
        self.qmp
            .migrate_cancel()
            .await
            .map_err(qmp_err("migrate_cancel"))
    }

    async fn resume_source(&mut self) -> std::result::Result<bool, SideError> {
        let st = self
            .qmp
            .query_status()
            .await
            .map_err(qmp_err("query-status"))?;
        if st.running || !self.was_running {
            return Ok(false);
        }
        self.qmp.cont().await.map_err(qmp_err("cont"))?;
        tracing::info!(vm = %self.name, was = %st.status, "source guest resumed");
        Ok(true)
    }

    async fn stop_source(&mut self) -> std::result::Result<Vec<String>, SideError> {
        let Some(live) = self.slot.live.take() else {
            return Ok(vec![]);
        };
        let uuid = live.domain.uuid;
        let (_, leftovers) = self
            .daemon
            .stop_live(&self.name, live, StopMode::Destroy)
            .await;
        self.daemon.events.lifecycle(
            &self.name,
            uuid,
            None,
            Lifecycle::Stopped(Stopped::Migrated),
        );
        self.slot.last_stop = Some(Stopped::Migrated);
        self.daemon.finish_stop(self.entry, self.slot);
        Ok(leftovers)
    }

    async fn undefine_source(&mut self) -> std::result::Result<(), SideError> {
        if self.slot.gone || self.slot.persistent.is_none() {
            return Ok(());
        }
        self.daemon
            .undefine_locked(self.entry, self.slot)
            .await
            .map_err(|e| SideError::fault(e.to_string()))
    }

    async fn ovn_change(
        &mut self,
        change: &virtnet_host::LspOptionsChange,
    ) -> std::result::Result<(), SideError> {
        self.daemon.ovn_change(change).await
    }

    fn progress(&mut self, line: &str) {
        tracing::info!(vm = %self.name, "migrate: {line}");
        self.daemon.migrations.note(&self.name, line);
    }
}
