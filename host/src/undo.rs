//! Undo steps: a record of what was created, and how to revert it.

use crate::api::HostNet;
use crate::error::{HostError, Result};
use crate::mac::MacAddr;
use crate::vf::SavedVf;

/// One step that reverts one host change. Plain data: it can be stored (e.g. in the
/// daemon's state file) and applied later, after a restart. Applying is idempotent: a step
/// whose object is already gone succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostUndo {
    /// Delete a link we created (tap, macvtap). `ifindex` guards against deleting another
    /// device that reused the name.
    DeleteLink {
        /// Interface name.
        name: String,
        /// Index it had when created.
        ifindex: Option<u32>,
    },
    /// Take a port off a bridge.
    DetachFromBridge {
        /// The port (tap).
        port: String,
        /// The bridge it was attached to.
        bridge: String,
    },
    /// Give a link back a MAC it had (e.g. the lower device of a passthrough macvtap).
    SetMac {
        /// Interface name.
        name: String,
        /// The MAC to set.
        mac: MacAddr,
    },
    /// Give a VF back its saved MAC, VLAN and driver.
    RestoreVf(SavedVf),
}

impl HostUndo {
    /// Performs the step on `host`.
    pub fn apply(&self, host: &dyn HostNet) -> Result<()> {
        match self {
            HostUndo::DeleteLink { name, ifindex } => host.delete_link(name, *ifindex),
            HostUndo::DetachFromBridge { port, bridge } => host.detach_from_bridge(port, bridge),
            HostUndo::SetMac { name, mac } => host.set_mac(name, *mac),
            HostUndo::RestoreVf(saved) => host.restore_vf(saved),
        }
    }
}

/// Undo steps in the order things were done; [`UndoStack::rollback`] applies them in reverse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoStack {
    steps: Vec<HostUndo>,
}

impl UndoStack {
    /// An empty stack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a step (after the change it reverts succeeded).
    pub fn push(&mut self, step: HostUndo) {
        self.steps.push(step);
    }

    /// Records several steps, in order.
    pub fn extend(&mut self, steps: impl IntoIterator<Item = HostUndo>) {
        self.steps.extend(steps);
    }

    /// The recorded steps, oldest first.
    pub fn steps(&self) -> &[HostUndo] {
        &self.steps
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True if nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Takes the steps out (e.g. to keep them for when the VM stops), leaving it empty.
    pub fn take(&mut self) -> Vec<HostUndo> {
        std::mem::take(&mut self.steps)
    }

    /// Applies every step, newest first, continuing past failures; empties the stack and
    /// returns the errors (empty = clean rollback).
    pub fn rollback(&mut self, host: &dyn HostNet) -> Vec<HostError> {
        let mut errors = Vec::new();
        while let Some(step) = self.steps.pop() {
            if let Err(e) = step.apply(host) {
                errors.push(e);
            }
        }
        errors
    }
}

impl From<Vec<HostUndo>> for UndoStack {
    fn from(steps: Vec<HostUndo>) -> Self {
        UndoStack { steps }
    }
}
