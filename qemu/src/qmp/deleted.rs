//! Bookkeeping for `DEVICE_DELETED`: waiters, and a short memory of recent deletions.
//!
//! The race to avoid: QEMU may emit `DEVICE_DELETED` right after (even before) the `device_del`
//! reply, so before the caller has started waiting. Every event that no waiter takes is kept in
//! a small FIFO; a waiter first looks there, then registers itself. Both happen under the same
//! lock the reader task takes to dispatch the event, so no event can slip between them.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;
use tokio::sync::oneshot;

/// How many unclaimed deletions are remembered.
const RECENT_CAPACITY: usize = 64;

/// One `DEVICE_DELETED`: the device's id (if it had one) and its QOM path.
#[derive(Debug)]
struct Deletion {
    device: Option<String>,
    path: Option<String>,
}

impl Deletion {
    fn matches(&self, alias: &str) -> bool {
        self.device.as_deref() == Some(alias) || self.path.as_deref() == Some(alias)
    }
}

/// Waiters by alias (device id or QOM path), plus unclaimed recent deletions.
#[derive(Debug, Default)]
pub(crate) struct DeviceDeletions {
    waiters: HashMap<String, Vec<oneshot::Sender<()>>>,
    recent: VecDeque<Deletion>,
}

impl DeviceDeletions {
    /// Handles a `DEVICE_DELETED` event's data: wakes the waiters, or remembers it.
    pub(crate) fn on_event(&mut self, data: &Value) {
        let d = Deletion {
            device: data["device"].as_str().map(String::from),
            path: data["path"].as_str().map(String::from),
        };
        let mut woke = false;
        for key in [&d.device, &d.path].into_iter().flatten() {
            if let Some(list) = self.waiters.remove(key) {
                for tx in list {
                    woke |= tx.send(()).is_ok();
                }
            }
        }
        if !woke {
            if self.recent.len() == RECENT_CAPACITY {
                self.recent.pop_front();
            }
            self.recent.push_back(d);
        }
    }

    /// Takes a remembered deletion of `alias`, if there is one.
    pub(crate) fn take_recent(&mut self, alias: &str) -> bool {
        match self.recent.iter().position(|d| d.matches(alias)) {
            Some(i) => {
                self.recent.remove(i);
                true
            }
            None => false,
        }
    }

    /// Forgets remembered deletions of `alias` (before a new `device_del` of a reused id).
    pub(crate) fn forget(&mut self, alias: &str) {
        self.recent.retain(|d| !d.matches(alias));
    }

    /// Registers a waiter for `alias`.
    pub(crate) fn register(&mut self, alias: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(alias.to_string()).or_default().push(tx);
        rx
    }

    /// Drops waiters for `alias` that nobody listens to any more (after a timeout).
    pub(crate) fn prune(&mut self, alias: &str) {
        if let Some(list) = self.waiters.get_mut(alias) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                self.waiters.remove(alias);
            }
        }
    }

    /// Drops every waiter (the connection closed): they see a closed channel.
    pub(crate) fn drop_waiters(&mut self) {
        self.waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_before_wait_is_remembered_once() {
        let mut d = DeviceDeletions::default();
        d.on_event(&json!({"device": "n1", "path": "/machine/peripheral/n1"}));
        assert!(d.take_recent("n1"));
        assert!(!d.take_recent("n1"));
        d.on_event(&json!({"path": "/machine/peripheral-anon/device[3]"}));
        assert!(d.take_recent("/machine/peripheral-anon/device[3]"));
    }

    #[test]
    fn waiter_is_woken_and_event_not_kept() {
        let mut d = DeviceDeletions::default();
        let mut rx = d.register("n1");
        d.on_event(&json!({"device": "n1", "path": "/machine/peripheral/n1"}));
        assert!(rx.try_recv().is_ok());
        assert!(!d.take_recent("n1"));
    }

    #[test]
    fn forget_and_capacity() {
        let mut d = DeviceDeletions::default();
        d.on_event(&json!({"device": "old"}));
        d.forget("old");
        assert!(!d.take_recent("old"));
        for i in 0..(RECENT_CAPACITY + 5) {
            d.on_event(&json!({ "device": format!("d{i}") }));
        }
        assert!(!d.take_recent("d0"));
        assert!(d.take_recent(&format!("d{}", RECENT_CAPACITY + 4)));
    }

    #[test]
    fn abandoned_waiter_is_pruned_and_event_kept() {
        let mut d = DeviceDeletions::default();
        drop(d.register("n1"));
        d.prune("n1");
        d.on_event(&json!({"device": "n1"}));
        assert!(d.take_recent("n1"));
    }
}
