//! `virtnet console`: where a running VM's serial console is, as virtnetd can open it.

use std::path::PathBuf;

use serde_json::json;
use virtnet_conf::devices::ChrSource;

use super::chardev::{find_chardev, pty_from_here, ChrRef};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};

/// The host side of a console, as virtnetd reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsoleEnd {
    /// A pty QEMU allocated (through `/proc/PID/root` for a confined QEMU).
    Pty(PathBuf),
    /// A unix socket QEMU listens on.
    Unix(PathBuf),
}

impl Daemon {
    /// The console `devname` (default: the first serial port) of running VM `name`: its
    /// alias and where it is. A back end nobody can type into (file, null, ...) is refused.
    pub(crate) async fn console_end(
        &self,
        name: &str,
        devname: Option<&str>,
    ) -> Result<(String, ConsoleEnd)> {
        let entry = self.entry(name)?;
        let slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let Some(live) = slot.live.as_ref() else {
            return Err(DaemonError::InvalidState {
                name: name.into(),
                state: "shut off".into(),
                hint: format!("start it first (`virtnet start {name}`) to reach its console"),
            });
        };
        let r: ChrRef = find_chardev(name, &live.domain, devname.unwrap_or("serial0"))?;
        let source = r
            .get(&live.domain)
            .map(|c| c.source.clone())
            .ok_or_else(|| DaemonError::Internal(format!("chardev {} vanished", r.alias)))?;
        let end = match source {
            ChrSource::Unix {
                listen: true,
                path: Some(p),
                ..
            } => ConsoleEnd::Unix(PathBuf::from(p)),
            ChrSource::Pty { .. } => {
                // The path QEMU chose, from QEMU (the definition may not record it).
                let chardevs = live.qmp("console", "query-chardev", json!({})).await?;
                let id = r.chardev_id();
                let pty = chardevs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["label"].as_str() == Some(id.as_str()))
                    .and_then(|c| c["filename"].as_str())
                    .and_then(|f| f.strip_prefix("pty:"))
                    .ok_or_else(|| {
                        DaemonError::Internal(format!("QEMU reports no pty for chardev {id}"))
                    })?;
                ConsoleEnd::Pty(PathBuf::from(pty_from_here(live.status.pid, pty)))
            }
            other => {
                return Err(DaemonError::BadRequest(format!(
                    "{} of VM '{name}' is a {} back end, not one to type into: switch it to a pty \
                     or a unix socket QEMU listens on (`virtnet chardev-change {name} {} pty`)",
                    r.alias,
                    other.type_name(),
                    r.alias
                )))
            }
        };
        Ok((r.alias, end))
    }
}
