//! The operations behind the API, one file each. Every operation on a VM takes the VM's slot
//! lock for its whole duration (so operations on one VM are serialised) and publishes the
//! VM's view when it changes something.

mod attach;
mod bandwidth;
mod chardev;
mod chardev_fd;
mod console;
mod define;
mod detach;
mod devices;
pub(crate) mod ifstats;
mod lifecycle;
pub(crate) mod migrate;
mod qmp;
mod query;
mod setlink;
mod undefine;
mod update;

use virtnet_conf::{ConfError, Domain};
use virtnet_qemu::validate::{Operation, Refusal, Refusals};

pub(crate) use chardev::name_chardevs;

use crate::daemon::Daemon;
use crate::error::DaemonError;
use crate::store::LiveStatus;

impl Daemon {
    /// Writes `old` back as the definition of `name` (undoing a config change after a later
    /// step failed); a failure is logged.
    pub(crate) async fn restore_definition(&self, name: &str, old: Option<&Domain>) {
        if let Some(old) = old {
            if let Err(e) = self.save_definition(name, old).await {
                tracing::error!(vm = %name, error = %e, "cannot restore the definition");
            }
        }
    }

    /// Stores `domain` as the definition of `name`.
    pub(crate) async fn save_definition(
        &self,
        name: &str,
        domain: &Domain,
    ) -> Result<(), DaemonError> {
        let xml = domain.to_xml();
        let owned = name.to_string();
        self.with_store(move |s| s.save_definition(&owned, &xml))
            .await
    }

    /// Stores a live status (atomically: temp file, fsync, rename, fsync the directory).
    ///
    /// On tmpfs (the run directory normally is: `/run`) the write is done right here: it is a
    /// memory copy and fsync is a no-op, so it cannot stall the runtime, and skipping the hop
    /// to a blocking thread and back takes two thread wake-ups off every live change (NIC
    /// hot-plug in particular). The guarantee is the same either way: the status is replaced
    /// by rename before the caller replies. Elsewhere the write goes to a blocking thread.
    pub(crate) async fn save_status(&self, status: &LiveStatus) -> Result<(), DaemonError> {
        if self.store.run_in_memory() {
            return self.store.save_status(status);
        }
        let status = status.clone();
        self.with_store(move |s| s.save_status(&status)).await
    }
}

/// The daemon's error for what the validation layer refuses for `op`: at define, problems of
/// the XML ([`DaemonError::InvalidXml`], as conf's); at start, and at attach for a
/// configuration that cannot run, [`DaemonError::Unsupported`]; what only the operation
/// cannot do (hot-plug a socket back end, an update), [`DaemonError::NotHotpluggable`].
pub(crate) fn refused(op: Operation, r: Refusals) -> DaemonError {
    match op {
        Operation::Define => DaemonError::InvalidXml {
            problems: r.located(),
        },
        _ if r.all_operation() => DaemonError::NotHotpluggable(r.to_string()),
        _ => DaemonError::Unsupported {
            problems: r.located(),
        },
    }
}

/// The refusal of a change to a NIC of VM `vm` (update-device, domif-setlink).
pub(crate) fn update_refused(vm: &str, r: Refusal) -> DaemonError {
    DaemonError::NotHotpluggable(format!("VM '{vm}': {r}"))
}

/// [`DaemonError::InvalidXml`] from conf's problems, each as `LINE:COL: message`.
pub(crate) fn invalid_xml(problems: &[ConfError]) -> DaemonError {
    DaemonError::InvalidXml {
        problems: problems.iter().map(ConfError::located).collect(),
    }
}

/// The index of the interface of `domain` that `key` names: its MAC, host device name
/// (`<target dev>`) or alias.
pub(crate) fn find_interface(
    vm: &str,
    domain: &virtnet_conf::Domain,
    key: &str,
) -> Result<usize, DaemonError> {
    let key_mac: Option<virtnet_conf::interface::MacAddr> = key.parse().ok();
    let hits: Vec<usize> = domain
        .devices
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            (key_mac.is_some() && i.mac() == key_mac)
                || i.target_dev() == Some(key)
                || i.alias() == Some(key)
        })
        .map(|(n, _)| n)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(DaemonError::NoSuchInterface {
            vm: vm.into(),
            key: key.into(),
        }),
        many => Err(DaemonError::AmbiguousInterface {
            vm: vm.into(),
            key: key.into(),
            count: many.len(),
        }),
    }
}

/// `(live, config)` for a change with `scope` to a VM in `slot`, as virsh decides it:
/// `--persistent` is the definition plus the running VM if it runs; neither flag is the running
/// VM when it runs, else the definition. Refuses a live change to a VM that does not run, a
/// config change to a VM without a definition, and a VM whose stored files are broken.
pub(crate) fn resolve_scope(
    name: &str,
    slot: &crate::vms::VmSlot,
    scope: crate::model::ChangeScope,
) -> Result<(bool, bool), DaemonError> {
    if let Some(problem) = slot.problem() {
        return Err(DaemonError::Broken {
            name: name.into(),
            problem,
        });
    }
    let running = slot.live.is_some();
    let (live, config) = if scope.persistent {
        (running || scope.live, true)
    } else if scope.live || scope.config {
        (scope.live, scope.config)
    } else {
        (running, !running)
    };
    if live && !running {
        return Err(DaemonError::InvalidState {
            name: name.into(),
            state: "shut off".into(),
            hint: "a live change needs a running VM; use --config to change the definition".into(),
        });
    }
    if let Some(l) = slot.live.as_ref().filter(|_| live) {
        l.refuse_if_stalled()?;
    }
    if config && slot.persistent.is_none() {
        return Err(DaemonError::InvalidState {
            name: name.into(),
            state: "transient".into(),
            hint: "it has no persistent definition to change; leave out --config".into(),
        });
    }
    Ok((live, config))
}

pub(crate) use console::ConsoleEnd;
