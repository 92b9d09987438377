//! `undefine`: remove a persistent definition.

use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::events::{Lifecycle, Undefined};
use crate::model::UndefineResponse;
use crate::registry::Scope;

impl Daemon {
    /// Removes the persistent definition of `name` and frees the resources it held. A running
    /// VM is refused (stop it first); a definition that could not be loaded is removed too.
    pub async fn undefine(&self, name: &str) -> Result<UndefineResponse> {
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        self.undefine_locked(&entry, &mut slot).await?;
        Ok(UndefineResponse { name: name.into() })
    }

    /// [`Daemon::undefine`] with the VM's slot locked.
    pub(crate) async fn undefine_locked(
        &self,
        entry: &std::sync::Arc<crate::vms::VmEntry>,
        slot: &mut crate::vms::VmSlot,
    ) -> Result<()> {
        let name = entry.name.as_str();
        if slot.live.is_some() {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "running".into(),
                hint: format!(
                    "stop it first (`virtnet shutdown {name}` or `virtnet destroy {name}`), then undefine it"
                ),
            });
        }
        if slot.persistent.is_none() && slot.definition_problem.is_none() {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "not defined".into(),
                hint: "there is no persistent definition to remove".into(),
            });
        }
        let owned = name.to_string();
        self.with_store(move |s| s.remove_definition(&owned))
            .await?;
        self.registry.release(name, Scope::Persistent);
        let uuid = slot.persistent.take().and_then(|d| d.uuid);
        slot.definition_problem = None;
        if slot.is_empty() {
            slot.gone = true;
            self.vms.remove(entry);
        }
        entry.publish(slot, None);
        tracing::info!(vm = %name, "undefined");
        self.events
            .lifecycle(name, uuid, None, Lifecycle::Undefined(Undefined::Removed));
        Ok(())
    }
}
