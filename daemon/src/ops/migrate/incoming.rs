//! The destination of a live migration: prepare (define if needed, start QEMU with
//! `-incoming defer` listening where the source asked), finish (`cont`, `announce-self`),
//! abort (stop QEMU, release its host side, remove a definition the prepare stored).

use std::sync::Arc;
use std::time::{Duration, Instant};

use virtnet_api::{AbortResponse, DomainInfo, PrepareRequest, PrepareResponse};
use virtnet_conf::Domain;
use virtnet_vm::StopMode;

use super::super::invalid_xml;
use super::stream::IN_FD;
use super::table::Incoming;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::events::{Defined, Lifecycle, Started};
use crate::model::VmState;

/// How long the finish waits for QEMU to have loaded the last of the migration stream.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a prepared VM waits for its finish or abort when the request does not say.
const DEFAULT_FINISH_WITHIN: Duration = Duration::from_secs(600);

impl Daemon {
    /// Prepares to receive VM `name`: stores `definition_xml` if this host has no definition
    /// of it (the UUIDs must match otherwise), creates its NICs' host side and starts QEMU
    /// paused with `-incoming defer`, listening on `listen_uri`. Refused: a VM of that name
    /// running here. On failure nothing is left (no QEMU, tap or definition it stored).
    pub async fn migrate_prepare(
        &self,
        name: &str,
        req: &PrepareRequest,
    ) -> Result<PrepareResponse> {
        let mut live_dom = Domain::parse(&req.live_xml).map_err(|e| invalid_xml(&[e]))?;
        let definition = Domain::parse(&req.definition_xml).map_err(|e| invalid_xml(&[e]))?;
        for d in [&live_dom, &definition] {
            if d.name() != name {
                return Err(DaemonError::BadRequest(format!(
                    "the migrated domain is named '{}', the request is for '{name}'",
                    d.name()
                )));
            }
        }
        live_dom.fill_defaults().map_err(|e| invalid_xml(&[e]))?;
        let unix = req.listen_uri == virtnet_vm::plan::migrate::UNIX_URI;
        // Asked before the VM's lock, which the outgoing migration holds.
        if self.migrations.is_outgoing(name) {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "being migrated from this host".into(),
                hint: "the destination is the source itself: give another virtnetd's socket".into(),
            });
        }
        loop {
            let entry = self.vms.get_or_create(name);
            let mut slot = entry.slot.lock().await;
            if slot.gone {
                continue;
            }
            if slot.live.is_some() || self.migrations.contains(name) {
                return Err(DaemonError::InvalidState {
                    name: name.into(),
                    state: "running on the destination".into(),
                    hint: "a VM of that name runs here already: stop or rename one of them".into(),
                });
            }
            if let Some(problem) = slot.problem() {
                return Err(DaemonError::Broken {
                    name: name.into(),
                    problem,
                });
            }
            let defined = slot.persistent.is_none();
            if let Some(have) = slot.persistent.as_ref() {
                if have.uuid.is_some() && live_dom.uuid.is_some() && have.uuid != live_dom.uuid {
                    return Err(DaemonError::Conflict(format!(
                        "VM '{name}' is defined here with UUID {}, the migrated one has {}: \
                         they are different VMs",
                        have.uuid.map(|u| u.to_string()).unwrap_or_default(),
                        live_dom.uuid.map(|u| u.to_string()).unwrap_or_default()
                    )));
                }
            } else if let Err(e) = self
                .define_locked(&entry, &mut slot, definition.clone())
                .await
            {
                if slot.is_empty() {
                    slot.gone = true;
                    self.vms.remove(&entry);
                }
                entry.publish(&slot, None);
                return Err(e);
            }
            entry.publish(&slot, Some(VmState::Starting));
            // A unix stream: virtnetd listens and hands the connection to QEMU as an fd.
            let listener = if unix {
                self.migration_listener(name).map(Some)
            } else {
                Ok(None)
            };
            let started = match &listener {
                Ok(_) => {
                    let uri = if unix {
                        format!("fd:{IN_FD}")
                    } else {
                        req.listen_uri.clone()
                    };
                    self.start_locked(&entry, &mut slot, Arc::new(live_dom.clone()), Some(uri))
                        .await
                }
                Err(e) => Err(DaemonError::Internal(e.to_string())),
            };
            let uri = match (started, &listener) {
                (Ok(()), Ok(Some((_, path)))) => Ok(format!("unix:{}", path.display())),
                (Ok(()), _) => self.listening_uri(&slot, &req.listen_uri).await,
                (Err(e), _) => Err(e),
            };
            let socket = listener
                .as_ref()
                .ok()
                .and_then(|l| l.as_ref().map(|(_, p)| p.clone()));
            let uri = match uri {
                Ok(u) => u,
                Err(e) => {
                    if let Some(p) = &socket {
                        let _ = std::fs::remove_file(p);
                    }
                    if let Some(live) = slot.live.take() {
                        self.stop_live(name, live, StopMode::Kill).await;
                    }
                    if defined {
                        if let Err(e2) = self.undefine_locked(&entry, &mut slot).await {
                            tracing::error!(vm = %name, error = %e2, "cannot remove the definition a failed prepare stored");
                        }
                    }
                    if slot.is_empty() && !slot.gone {
                        slot.gone = true;
                        self.vms.remove(&entry);
                    }
                    entry.publish(&slot, None);
                    return Err(e);
                }
            };
            if defined {
                self.events.lifecycle(
                    name,
                    live_dom.uuid,
                    None,
                    Lifecycle::Defined(Defined::Added),
                );
            }
            let id = slot.live.as_ref().map_or(0, |l| l.status.id);
            self.migrations.lock().insert(
                name.to_string(),
                Incoming {
                    defined,
                    id,
                    socket: socket.clone(),
                },
            );
            if let Ok(Some((l, _))) = listener {
                self.hand_over_stream(name, id, l);
            }
            self.abort_unless_finished(
                name,
                id,
                req.finish_within_secs
                    .map_or(DEFAULT_FINISH_WITHIN, Duration::from_secs),
            );
            // Shown as starting until the finish resumes the guest.
            entry.publish(&slot, Some(VmState::Starting));
            let pid = slot.live.as_ref().map_or(0, |l| l.status.pid);
            tracing::info!(vm = %name, %uri, defined, "prepared for an incoming migration");
            return Ok(PrepareResponse { uri, defined, pid });
        }
    }

    /// Aborts the prepare of `name` (QEMU instance `id`) if it is neither finished nor aborted
    /// within `within`: a source that died mid-migration must not leave a paused VM here.
    fn abort_unless_finished(&self, name: &str, id: u32, within: Duration) {
        let weak = self.weak();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(within).await;
            let Some(daemon) = weak.upgrade() else { return };
            if daemon.migrations.lock().get(&name).map(|i| i.id) != Some(id) {
                return;
            }
            tracing::warn!(vm = %name, within_s = within.as_secs(), "no finish or abort came for the incoming migration; aborting it");
            if let Err(e) = daemon.abort_incoming(&name, Some(id)).await {
                tracing::error!(vm = %name, error = %e, "abort of the incoming migration failed");
            }
        });
    }

    /// The URI QEMU listens on: `listen` with the port QEMU reports (`query-migrate`'s
    /// `socket-address`) when it asked for port 0.
    async fn listening_uri(&self, slot: &crate::vms::VmSlot, listen: &str) -> Result<String> {
        let Some(prefix) = listen.strip_suffix(":0") else {
            return Ok(listen.to_string());
        };
        let live = slot
            .live
            .as_ref()
            .ok_or_else(|| DaemonError::Internal("prepared VM not running".into()))?;
        let info = live
            .qmp_client()
            .await?
            .query_migrate()
            .await
            .map_err(|e| DaemonError::Qmp {
                source: Box::new(e),
            })?;
        let port = info.listening_port().ok_or_else(|| {
            DaemonError::Internal(format!(
                "QEMU listens for the migration but reports no port: {:?}",
                info.socket_address
            ))
        })?;
        Ok(format!("{prefix}:{port}"))
    }

    /// Resumes the received VM: waits until QEMU has loaded the whole stream, `cont`, then
    /// `announce-self` (a failed announce is logged: the guest runs).
    pub async fn migrate_finish(&self, name: &str) -> Result<DomainInfo> {
        let entry = self.entry(name)?;
        let slot = entry.slot.lock().await;
        if !self.migrations.contains(name) {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "not being received".into(),
                hint: "finish follows a prepare of the same VM".into(),
            });
        }
        let Some(live) = slot.live.as_ref() else {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "shut off".into(),
                hint: "its QEMU exited during the migration (see its log); abort it".into(),
            });
        };
        let qmp = live.qmp_client().await?;
        let qerr = |e| DaemonError::Qmp {
            source: Box::new(e),
        };
        let deadline = Instant::now() + LOAD_TIMEOUT;
        loop {
            let st = qmp.query_status().await.map_err(qerr)?;
            if st.status != "inmigrate" {
                break;
            }
            if Instant::now() >= deadline {
                return Err(DaemonError::InvalidState {
                    name: name.into(),
                    state: "inmigrate".into(),
                    hint: format!(
                        "QEMU has not loaded the migration stream within {} s",
                        LOAD_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let info = qmp.query_migrate().await.map_err(qerr)?;
        if info.status.as_deref() != Some("completed") {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: format!(
                    "incoming migration {}",
                    info.status.as_deref().unwrap_or("none")
                ),
                hint: info.error_desc.unwrap_or_else(|| "see the QEMU log".into()),
            });
        }
        qmp.cont().await.map_err(qerr)?;
        remove_socket(self.migrations.lock().get(name));
        if let Err(e) = qmp.announce_self().await {
            tracing::warn!(vm = %name, error = %e, "announce-self failed; the guest runs");
        }
        self.migrations.lock().remove(name);
        entry.publish(&slot, None);
        self.events.lifecycle(
            name,
            live.domain.uuid,
            Some(live.status.id),
            Lifecycle::Started(Started::Migrated),
        );
        tracing::info!(vm = %name, "incoming migration finished; the guest runs here");
        drop(slot);
        self.info(name)
    }

    /// Undoes a prepare: stops the VM's QEMU (if it still runs), releases its host side and
    /// removes the definition the prepare stored. A VM not being received is refused (an
    /// abort never touches a VM that runs here for its own sake).
    pub async fn migrate_abort(&self, name: &str) -> Result<AbortResponse> {
        self.abort_incoming(name, None).await
    }

    /// [`Daemon::migrate_abort`] of the prepare that started QEMU instance `id` (`None`: any).
    async fn abort_incoming(&self, name: &str, id: Option<u32>) -> Result<AbortResponse> {
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        // Looked up under the VM's lock: a finish that ran meanwhile removed it.
        let inc = self.migrations.lock().get(name).cloned();
        let Some(inc) = inc.filter(|i| id.is_none_or(|id| i.id == id)) else {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "not being received".into(),
                hint: "abort undoes a prepare of the same VM".into(),
            });
        };
        remove_socket(Some(&inc));
        let mut leftovers = Vec::new();
        if let Some(live) = slot.live.take() {
            let (_, left) = self.stop_live(name, live, StopMode::Kill).await;
            leftovers.extend(left);
        }
        let mut undefined = false;
        if inc.defined && slot.persistent.is_some() {
            match self.undefine_locked(&entry, &mut slot).await {
                Ok(()) => undefined = true,
                Err(e) => leftovers.push(format!("definition: {e}")),
            }
        }
        if !slot.gone {
            self.finish_stop(&entry, &mut slot);
        }
        self.migrations.lock().remove(name);
        tracing::info!(vm = %name, undefined, "incoming migration aborted");
        Ok(AbortResponse {
            name: name.into(),
            undefined,
            leftovers,
        })
    }
}

/// Removes the unix socket a prepare listened on, if it still exists.
fn remove_socket(inc: Option<&Incoming>) {
    if let Some(p) = inc.and_then(|i| i.socket.as_ref()) {
        let _ = std::fs::remove_file(p);
    }
}
