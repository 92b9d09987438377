//! What a daemon knows about the live migrations it takes part in, outside any VM's lock:
//! the VMs it received (prepared, not finished) and the progress and cancel flag of those it
//! sends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// What a prepare did, so that abort undoes exactly that.
#[derive(Debug, Clone)]
pub(super) struct Incoming {
    /// The prepare stored the definition.
    pub(super) defined: bool,
    /// The domain id of the QEMU it started (a later prepare of the same name has another).
    pub(super) id: u32,
    /// The unix socket it listens on for the stream (removed at finish and abort).
    pub(super) socket: Option<PathBuf>,
}

/// An outgoing migration's shared state (read without the VM's lock, which the migration
/// holds).
#[derive(Debug, Default)]
struct Outgoing {
    lines: Vec<String>,
    cancel: bool,
}

/// Live migrations in progress on this daemon.
#[derive(Debug, Default)]
pub struct Migrations {
    /// VMs prepared here and not finished or aborted yet.
    incoming: Mutex<BTreeMap<String, Incoming>>,
    /// The VMs being sent: progress lines, and whether a cancel was asked.
    outgoing: Mutex<BTreeMap<String, Outgoing>>,
}

impl Migrations {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Incoming>> {
        self.incoming.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn out(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Outgoing>> {
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts recording the progress of `name`'s outgoing migration.
    pub fn begin(&self, name: &str) {
        self.out().insert(name.to_string(), Outgoing::default());
    }

    /// Adds a progress line.
    pub fn note(&self, name: &str, line: &str) {
        if let Some(o) = self.out().get_mut(name) {
            o.lines.push(line.to_string());
        }
    }

    /// Stops recording.
    pub fn end(&self, name: &str) {
        self.out().remove(name);
    }

    /// Whether `name` is being sent from here.
    pub fn is_outgoing(&self, name: &str) -> bool {
        self.out().contains_key(name)
    }

    /// The progress of `name`'s outgoing migration, if one runs.
    pub fn progress(&self, name: &str) -> Option<Vec<String>> {
        self.out().get(name).map(|o| o.lines.clone())
    }

    /// Asks `name`'s outgoing migration to stop; false when none runs.
    pub fn request_cancel(&self, name: &str) -> bool {
        self.out().get_mut(name).map(|o| o.cancel = true).is_some()
    }

    /// Whether a cancel of `name`'s outgoing migration was asked (once: it is cleared).
    pub fn take_cancel(&self, name: &str) -> bool {
        self.out()
            .get_mut(name)
            .is_some_and(|o| std::mem::take(&mut o.cancel))
    }

    /// Whether `name` is being received.
    pub fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }
}
