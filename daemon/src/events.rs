//! The daemon's domain events: what happened to a VM, as libvirt's `virDomainEventType` and
//! detail say it (the values are libvirt's, so that the libvirt socket forwards them as they
//! are), on a broadcast bus every interested party subscribes to ([`EventBus::subscribe`]).
//!
//! Each event is emitted in one place: define and undefine (`ops/define.rs`,
//! `ops/undefine.rs`), a start that succeeded, a stop and QEMU exiting on its own
//! (`ops/lifecycle.rs`), and the end of a NIC's removal from a running VM (`ops/detach.rs`'s
//! `removed`, whichever path finished it), and a live migration's ends (`ops/migrate`: defined
//! and started on the destination, stopped on the source). Emitting never waits and never fails: with no
//! subscriber the event is dropped, and a subscriber that falls more than [`CAPACITY`]
//! events behind loses the oldest ones (it is told how many).

use std::sync::Arc;

use tokio::sync::broadcast;
use virtnet_conf::domain::Uuid;

/// Events kept for a subscriber that has not read them yet; beyond that it loses the oldest.
pub const CAPACITY: usize = 256;

/// The domain an event is about, as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDomain {
    /// The VM's name.
    pub name: String,
    /// Its UUID (a VM whose definition could not be read may have none).
    pub uuid: Option<Uuid>,
    /// Its domain id while running; `None` when shut off.
    pub id: Option<u32>,
}

/// `VIR_DOMAIN_EVENT_DEFINED`'s details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defined {
    /// A new persistent definition (`VIR_DOMAIN_EVENT_DEFINED_ADDED`).
    Added = 0,
    /// An existing definition replaced (`VIR_DOMAIN_EVENT_DEFINED_UPDATED`).
    Updated = 1,
}

/// `VIR_DOMAIN_EVENT_UNDEFINED`'s details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undefined {
    /// The persistent definition was removed (`VIR_DOMAIN_EVENT_UNDEFINED_REMOVED`).
    Removed = 0,
}

/// `VIR_DOMAIN_EVENT_STARTED`'s details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A normal start (`VIR_DOMAIN_EVENT_STARTED_BOOTED`).
    Booted = 0,
    /// The guest runs here after a live migration's finish (`VIR_DOMAIN_EVENT_STARTED_MIGRATED`).
    Migrated = 1,
}

/// `VIR_DOMAIN_EVENT_STOPPED`'s details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The guest powered off (`VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN`).
    Shutdown = 0,
    /// Stopped by the host: destroy, or a shutdown the guest did not act on in time
    /// (`VIR_DOMAIN_EVENT_STOPPED_DESTROYED`).
    Destroyed = 1,
    /// The guest crashed (`VIR_DOMAIN_EVENT_STOPPED_CRASHED`).
    Crashed = 2,
    /// The guest moved to another host by live migration (`VIR_DOMAIN_EVENT_STOPPED_MIGRATED`).
    Migrated = 3,
    /// QEMU ended without being asked to (`VIR_DOMAIN_EVENT_STOPPED_FAILED`).
    Failed = 5,
}

/// A lifecycle change: `virDomainEventType` with its detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `VIR_DOMAIN_EVENT_DEFINED` (0).
    Defined(Defined),
    /// `VIR_DOMAIN_EVENT_UNDEFINED` (1).
    Undefined(Undefined),
    /// `VIR_DOMAIN_EVENT_STARTED` (2).
    Started(Started),
    /// `VIR_DOMAIN_EVENT_STOPPED` (5).
    Stopped(Stopped),
}

impl Lifecycle {
    /// libvirt's numbers: (`virDomainEventType`, its detail enum's value).
    pub fn codes(self) -> (i32, i32) {
        match self {
            Lifecycle::Defined(d) => (0, d as i32),
            Lifecycle::Undefined(d) => (1, d as i32),
            Lifecycle::Started(d) => (2, d as i32),
            Lifecycle::Stopped(d) => (5, d as i32),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A lifecycle change (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`).
    Lifecycle(Lifecycle),
    /// A device left the running VM (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED`): the guest
    /// released it and its back end is gone.
    DeviceRemoved {
        /// The device's alias (`net1`).
        alias: String,
    },
}

/// One event about one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    /// The domain.
    pub domain: EventDomain,
    /// What happened to it.
    pub kind: EventKind,
}

/// The broadcast every event goes through.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<DomainEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Sends `event` to every subscriber. Never waits, never fails: without subscribers the
    /// event is dropped.
    pub fn emit(&self, event: DomainEvent) {
        tracing::debug!(vm = %event.domain.name, kind = ?event.kind, "domain event");
        // An error only says nobody listens.
        let _ = self.tx.send(Arc::new(event));
    }

    /// A lifecycle event about `name`.
    pub fn lifecycle(&self, name: &str, uuid: Option<Uuid>, id: Option<u32>, what: Lifecycle) {
        self.emit(DomainEvent {
            domain: EventDomain {
                name: name.to_string(),
                uuid,
                id,
            },
            kind: EventKind::Lifecycle(what),
        });
    }

    /// A receiver of every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_libvirts() {
        assert_eq!(Lifecycle::Defined(Defined::Added).codes(), (0, 0));
        assert_eq!(Lifecycle::Defined(Defined::Updated).codes(), (0, 1));
        assert_eq!(Lifecycle::Undefined(Undefined::Removed).codes(), (1, 0));
        assert_eq!(Lifecycle::Started(Started::Booted).codes(), (2, 0));
        assert_eq!(Lifecycle::Stopped(Stopped::Shutdown).codes(), (5, 0));
        assert_eq!(Lifecycle::Stopped(Stopped::Destroyed).codes(), (5, 1));
        assert_eq!(Lifecycle::Stopped(Stopped::Crashed).codes(), (5, 2));
        assert_eq!(Lifecycle::Stopped(Stopped::Failed).codes(), (5, 5));
    }

    #[tokio::test]
    async fn emit_without_subscribers_and_lagging_subscribers_never_block() {
        let bus = EventBus::default();
        bus.lifecycle("a", None, None, Lifecycle::Started(Started::Booted));
        let mut rx = bus.subscribe();
        for _ in 0..CAPACITY + 10 {
            bus.lifecycle("a", None, Some(1), Lifecycle::Started(Started::Booted));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 10),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert!(rx.recv().await.is_ok());
    }
}
