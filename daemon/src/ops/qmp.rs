//! `qemu-monitor-command`: one QMP command passed through, for experts.

use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::model::QmpResponse;

impl Daemon {
    /// Sends `execute` with `arguments` to the running VM's QEMU and returns QEMU's answer.
    /// Serialised with the VM's other operations. The daemon does not learn what the command
    /// changed (as with libvirt's qemu-monitor-command, which taints the domain): it is logged
    /// as a warning.
    pub async fn qmp_passthrough(
        &self,
        name: &str,
        execute: &str,
        arguments: Option<serde_json::Value>,
    ) -> Result<QmpResponse> {
        let args = match arguments {
            None => serde_json::json!({}),
            Some(a @ serde_json::Value::Object(_)) => a,
            Some(other) => {
                return Err(DaemonError::BadRequest(format!(
                    "\"arguments\" must be a JSON object, not {other}"
                )))
            }
        };
        if execute.is_empty() || execute == "qmp_capabilities" {
            return Err(DaemonError::BadRequest(format!(
                "'{execute}' cannot be sent: give a QMP command such as query-status"
            )));
        }
        let entry = self.entry(name)?;
        let slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let Some(live) = slot.live.as_ref() else {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "shut off".into(),
                hint: "QMP commands need a running VM".into(),
            });
        };
        tracing::warn!(vm = %name, command = %execute, "qemu-monitor-command: virtnetd does not track what this changes");
        // QEMU's error answer to the user's own command is the user's (400 `qmp_error`, with
        // QEMU's class and description); anything else (QEMU gone, no reply) is a fault.
        let r = live
            .qmp("qemu-monitor-command", execute, args)
            .await
            .map_err(|e| match e {
                DaemonError::Qmp { source } if source.qmp_class().is_some() => {
                    DaemonError::QmpRefused { source }
                }
                other => other,
            })?;
        Ok(QmpResponse { return_: r })
    }
}
