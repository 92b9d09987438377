//! Domain events for libvirt clients (`virsh event`, `virConnectDomainEventRegisterAny`):
//! a connection's registrations, and the task that forwards the daemon's events
//! ([`crate::events`]) to it as MESSAGE frames.
//!
//! Both of libvirt's forms are served. The callback form (`CONNECT_DOMAIN_EVENT_CALLBACK_
//! REGISTER_ANY`, used by every client since libvirt 1.2.1 once `CONNECT_SUPPORTS_FEATURE`
//! says yes to `VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK`): each registration gets an id, may
//! name one domain, and its events carry the id. The legacy form (`CONNECT_DOMAIN_EVENT_
//! REGISTER_ANY`): one registration per event id per connection, no domain filter, events
//! without an id. Every event id libvirt 9.0 knows can be registered, as with libvirtd;
//! virtnet sends lifecycle (defined/undefined/started/stopped) and device-removed events, so
//! the other registrations never fire.
//!
//! The forwarder subscribes to the daemon's bus at the first registration. It never holds up
//! the daemon: a client that does not read its socket makes only its own forwarder wait, and
//! the events it falls behind on are dropped (logged with their count). Registrations end with
//! the connection (or `CONNECT_CLOSE`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use virtnet_rpc::event::{
    CallbackDeviceRemovedMsg, CallbackLifecycleMsg, DeviceRemovedMsg, EventCallbackId,
    EventCallbackRegisterAnyArgs, EventRegisterAnyArgs, LifecycleMsg, EVENT_ID_DEVICE_REMOVED,
    EVENT_ID_LAST, EVENT_ID_LIFECYCLE,
};
use virtnet_rpc::frame::encode_frame;
use virtnet_rpc::virerror::NonnullDomain;
use virtnet_rpc::xdr::to_bytes;
use virtnet_rpc::{
    ErrorCode, Header, MessageType, Procedure, Status, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION,
};

use super::dispatch::{decode, ok, Reply};
use super::errors::Refusal;
use crate::daemon::Daemon;
use crate::events::{DomainEvent, EventBus, EventKind};

/// Registrations one connection may hold (libvirt has no limit; this bounds what a client
/// can make the daemon keep). `virsh event --all` needs one per event id.
const MAX_REGISTRATIONS: usize = 1024;

/// Whether [`call`] serves `p`.
pub(super) fn serves(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::ConnectDomainEventCallbackRegisterAny
            | Procedure::ConnectDomainEventCallbackDeregisterAny
            | Procedure::ConnectDomainEventRegisterAny
            | Procedure::ConnectDomainEventDeregisterAny
    )
}

/// The (de)registration procedures.
pub(super) fn call(daemon: &Daemon, regs: &Registrations, p: Procedure, args: &[u8]) -> Reply {
    match p {
        Procedure::ConnectDomainEventCallbackRegisterAny => {
            let a: EventCallbackRegisterAnyArgs = decode(p, args)?;
            check_event_id(a.event_id)?;
            let id = regs.add(daemon.events(), a.event_id, a.dom, false)?;
            ok(&EventCallbackId { callback_id: id })
        }
        Procedure::ConnectDomainEventCallbackDeregisterAny => {
            let a: EventCallbackId = decode(p, args)?;
            regs.remove(|id, c| id == a.callback_id && !c.legacy)
                .then_some(Vec::new())
                .ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::InvalidArg,
                        format!("callback {} is not registered", a.callback_id),
                    )
                })
        }
        Procedure::ConnectDomainEventRegisterAny => {
            let a: EventRegisterAnyArgs = decode(p, args)?;
            check_event_id(a.event_id)?;
            regs.add(daemon.events(), a.event_id, None, true)?;
            Ok(Vec::new())
        }
        Procedure::ConnectDomainEventDeregisterAny => {
            let a: EventRegisterAnyArgs = decode(p, args)?;
            check_event_id(a.event_id)?;
            regs.remove(|_, c| c.legacy && c.event_id == a.event_id)
                .then_some(Vec::new())
                .ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::InternalError,
                        format!("domain event {} not registered", a.event_id),
                    )
                })
        }
        _ => Err(super::errors::not_supported(p)),
    }
}

/// libvirtd's check: an id outside `virDomainEventID` is refused.
fn check_event_id(id: i32) -> Result<(), Refusal> {
    if (0..EVENT_ID_LAST).contains(&id) {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::InternalError,
            format!("unsupported event ID {id}"),
        ))
    }
}

/// One registration.
#[derive(Debug, Clone)]
struct Callback {
    /// The `virDomainEventID`.
    event_id: i32,
    /// Only this domain's events (matched by UUID, by name for a domain without one).
    dom: Option<NonnullDomain>,
    /// Registered with the legacy procedure: events go without a callback id.
    legacy: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last callback id given (libvirt's start at 1).
    last_id: i32,
    callbacks: BTreeMap<i32, Callback>,
    /// Where the connection's frames go; weak, so that the connection's end is not held up.
    writer: Option<mpsc::WeakSender<Vec<u8>>>,
    forwarder: Option<AbortHandle>,
}

/// A connection's event registrations.
#[derive(Debug, Default)]
pub(in crate::rpc) struct Registrations {
    inner: Arc<Mutex<Inner>>,
}

impl Registrations {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives the connection's writer (before the first call is read).
    pub(in crate::rpc) fn set_writer(&self, writer: mpsc::WeakSender<Vec<u8>>) {
        self.lock().writer = Some(writer);
    }

    /// Drops every registration and stops forwarding (the connection closed).
    pub(in crate::rpc) fn close(&self) {
        let mut inner = self.lock();
        inner.callbacks.clear();
        if let Some(f) = inner.forwarder.take() {
            f.abort();
        }
    }

    fn add(
        &self,
        bus: &EventBus,
        event_id: i32,
        dom: Option<NonnullDomain>,
        legacy: bool,
    ) -> Result<i32, Refusal> {
        let mut inner = self.lock();
        // One legacy registration per event id (libvirtd's rule), checked under the lock
        // that adds it: calls of one connection run at once.
        if legacy
            && inner
                .callbacks
                .values()
                .any(|c| c.legacy && c.event_id == event_id)
        {
            return Err(Refusal::new(
                ErrorCode::InternalError,
                format!("domain event {event_id} already registered"),
            ));
        }
        if inner.callbacks.len() >= MAX_REGISTRATIONS {
            return Err(Refusal::new(
                ErrorCode::OperationFailed,
                format!(
                    "too many event registrations on this connection (at most \
                     {MAX_REGISTRATIONS}): deregister some first"
                ),
            ));
        }
        if inner.forwarder.is_none() {
            // Subscribed before the reply goes out: every event after it reaches the client.
            let Some(writer) = inner.writer.clone() else {
                return Err(Refusal::new(
                    ErrorCode::InternalError,
                    "the connection has no writer for events",
                ));
            };
            let rx = bus.subscribe();
            let task = tokio::spawn(forward(rx, Arc::downgrade(&self.inner), writer));
            inner.forwarder = Some(task.abort_handle());
        }
        inner.last_id += 1;
        let id = inner.last_id;
        inner.callbacks.insert(
            id,
            Callback {
                event_id,
                dom,
                legacy,
            },
        );
        Ok(id)
    }

    /// Removes the first registration `which` picks; whether there was one.
    fn remove(&self, which: impl Fn(i32, &Callback) -> bool) -> bool {
        let mut inner = self.lock();
        let found = inner
            .callbacks
            .iter()
            .find(|(id, c)| which(**id, c))
            .map(|(id, _)| *id);
        found.is_some_and(|id| inner.callbacks.remove(&id).is_some())
    }
}

impl Drop for Registrations {
    fn drop(&mut self) {
        self.close();
    }
}

/// Sends the connection the frames of every event it registered for, until the connection
/// goes.
async fn forward(
    mut rx: tokio::sync::broadcast::Receiver<Arc<DomainEvent>>,
    regs: Weak<Mutex<Inner>>,
    writer: mpsc::WeakSender<Vec<u8>>,
) {
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    dropped = n,
                    "libvirt socket: a client does not read its events; dropped the oldest"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let frames = {
            let Some(regs) = regs.upgrade() else { return };
            let inner = regs.lock().unwrap_or_else(|p| p.into_inner());
            frames_for(&event, inner.callbacks.iter().map(|(id, c)| (*id, c)))
        };
        for frame in frames {
            let Some(tx) = writer.upgrade() else { return };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    }
}

/// The MESSAGE frames `event` makes for these registrations: one per registration that wants
/// it.
fn frames_for<'a>(
    event: &DomainEvent,
    callbacks: impl Iterator<Item = (i32, &'a Callback)>,
) -> Vec<Vec<u8>> {
    let dom = NonnullDomain {
        name: event.domain.name.clone(),
        uuid: event.domain.uuid.map(|u| u.0).unwrap_or_default(),
        id: event
            .domain
            .id
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or(-1),
    };
    let event_id = match event.kind {
        EventKind::Lifecycle(_) => EVENT_ID_LIFECYCLE,
        EventKind::DeviceRemoved { .. } => EVENT_ID_DEVICE_REMOVED,
    };
    callbacks
        .filter(|(_, c)| c.event_id == event_id && matches_domain(c.dom.as_ref(), event))
        .map(|(id, c)| message(&dom, &event.kind, (!c.legacy).then_some(id)))
        .collect()
}

fn matches_domain(filter: Option<&NonnullDomain>, event: &DomainEvent) -> bool {
    match (filter, event.domain.uuid) {
        (None, _) => true,
        (Some(f), Some(u)) => f.uuid == u.0,
        (Some(f), None) => f.name == event.domain.name,
    }
}

/// One event's frame: the callback form with `callback_id`, else the legacy form.
fn message(dom: &NonnullDomain, kind: &EventKind, callback_id: Option<i32>) -> Vec<u8> {
    let (proc_, payload) = match (kind, callback_id) {
        (EventKind::Lifecycle(l), cb) => {
            let (event, detail) = l.codes();
            let msg = LifecycleMsg {
                dom: dom.clone(),
                event,
                detail,
            };
            match cb {
                Some(callback_id) => (
                    Procedure::DomainEventCallbackLifecycle,
                    to_bytes(&CallbackLifecycleMsg { callback_id, msg }),
                ),
                None => (Procedure::DomainEventLifecycle, to_bytes(&msg)),
            }
        }
        (EventKind::DeviceRemoved { alias }, cb) => {
            let msg = DeviceRemovedMsg {
                dom: dom.clone(),
                dev_alias: alias.clone(),
            };
            match cb {
                Some(callback_id) => (
                    Procedure::DomainEventCallbackDeviceRemoved,
                    to_bytes(&CallbackDeviceRemovedMsg { callback_id, msg }),
                ),
                None => (Procedure::DomainEventDeviceRemoved, to_bytes(&msg)),
            }
        }
    };
    let header = Header {
        prog: REMOTE_PROGRAM,
        vers: REMOTE_PROTOCOL_VERSION,
        proc_: proc_.to_u32(),
        type_: MessageType::Message,
        serial: 0,
        status: Status::Ok,
    };
    encode_frame(&header, &payload)
}

#[cfg(test)]
mod tests {
    use virtnet_conf::domain::Uuid;
    use virtnet_rpc::frame::decode_frame;
    use virtnet_rpc::xdr::from_bytes;

    use super::*;
    use crate::events::{Defined, EventDomain, Lifecycle, Stopped};

    const UUID: [u8; 16] = [
        0xc7, 0xa5, 0xfd, 0xbd, 0xcd, 0xaf, 0x90, 0x43, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
        0x08,
    ];

    fn event(kind: EventKind) -> DomainEvent {
        DomainEvent {
            domain: EventDomain {
                name: "vm1".into(),
                uuid: Some(Uuid(UUID)),
                id: Some(3),
            },
            kind,
        }
    }

    fn cb(event_id: i32, dom: Option<NonnullDomain>, legacy: bool) -> Callback {
        Callback {
            event_id,
            dom,
            legacy,
        }
    }

    fn vm1() -> NonnullDomain {
        NonnullDomain {
            name: "vm1".into(),
            uuid: UUID,
            id: 3,
        }
    }

    #[test]
    fn a_lifecycle_event_is_a_callback_lifecycle_message() {
        let e = event(EventKind::Lifecycle(Lifecycle::Stopped(Stopped::Destroyed)));
        let c = cb(EVENT_ID_LIFECYCLE, None, false);
        let frames = frames_for(&e, [(7, &c)].into_iter());
        assert_eq!(frames.len(), 1);
        let (h, payload) = decode_frame(&frames[0]).unwrap();
        assert_eq!(h.prog, REMOTE_PROGRAM);
        assert_eq!(h.vers, 1);
        assert_eq!(h.proc_, 318, "REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE");
        assert_eq!(h.type_, MessageType::Message);
        assert_eq!((h.serial, h.status), (0, Status::Ok));
        let m: CallbackLifecycleMsg = from_bytes(payload).unwrap();
        assert_eq!(m.callback_id, 7);
        assert_eq!(m.msg.dom, vm1());
        assert_eq!((m.msg.event, m.msg.detail), (5, 1), "STOPPED, DESTROYED");
        // The layout of remote_domain_event_callback_lifecycle_msg, word for word.
        let mut want = vec![0, 0, 0, 7, 0, 0, 0, 3, b'v', b'm', b'1', 0];
        want.extend_from_slice(&UUID);
        want.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 1]);
        assert_eq!(payload, want);
    }

    #[test]
    fn a_device_removal_is_a_device_removed_message_with_the_alias() {
        let e = event(EventKind::DeviceRemoved {
            alias: "net1".into(),
        });
        let c = cb(EVENT_ID_DEVICE_REMOVED, Some(vm1()), false);
        let frames = frames_for(&e, [(2, &c)].into_iter());
        let (h, payload) = decode_frame(&frames[0]).unwrap();
        assert_eq!(
            h.proc_, 333,
            "REMOTE_PROC_DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED"
        );
        let m: CallbackDeviceRemovedMsg = from_bytes(payload).unwrap();
        assert_eq!(m.callback_id, 2);
        assert_eq!(m.msg.dev_alias, "net1");
        assert_eq!(m.msg.dom, vm1());
    }

    #[test]
    fn legacy_registrations_get_messages_without_a_callback_id() {
        let e = event(EventKind::Lifecycle(Lifecycle::Defined(Defined::Added)));
        let c = cb(EVENT_ID_LIFECYCLE, None, true);
        let frames = frames_for(&e, [(1, &c)].into_iter());
        let (h, payload) = decode_frame(&frames[0]).unwrap();
        assert_eq!(h.proc_, 107, "REMOTE_PROC_DOMAIN_EVENT_LIFECYCLE");
        let m: LifecycleMsg = from_bytes(payload).unwrap();
        assert_eq!((m.event, m.detail), (0, 0));
        let e = event(EventKind::DeviceRemoved {
            alias: "net0".into(),
        });
        let c = cb(EVENT_ID_DEVICE_REMOVED, None, true);
        let (h, _) = decode_frame(&frames_for(&e, [(1, &c)].into_iter())[0])
            .map(|(h, p)| (h, p.to_vec()))
            .unwrap();
        assert_eq!(h.proc_, 311, "REMOTE_PROC_DOMAIN_EVENT_DEVICE_REMOVED");
    }

    #[test]
    fn events_go_only_where_their_id_and_domain_were_registered() {
        let e = event(EventKind::Lifecycle(Lifecycle::Started(
            crate::events::Started::Booted,
        )));
        let other = NonnullDomain {
            name: "vm2".into(),
            uuid: [9; 16],
            id: -1,
        };
        let regs = [
            cb(EVENT_ID_LIFECYCLE, None, false),
            cb(EVENT_ID_DEVICE_REMOVED, None, false),
            cb(EVENT_ID_LIFECYCLE, Some(other), false),
            cb(EVENT_ID_LIFECYCLE, Some(vm1()), false),
            cb(1, None, false), // REBOOT: never sent by virtnet
        ];
        let frames = frames_for(&e, regs.iter().enumerate().map(|(i, c)| (i as i32, c)));
        let ids: Vec<i32> = frames
            .iter()
            .map(|f| {
                let (_, p) = decode_frame(f).unwrap();
                from_bytes::<CallbackLifecycleMsg>(p).unwrap().callback_id
            })
            .collect();
        assert_eq!(ids, [0, 3]);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_holds_up_nobody_and_loses_the_oldest_events() {
        let bus = EventBus::default();
        let regs = Registrations::default();
        // The connection's writer, never drained (a client that does not read its socket).
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1);
        regs.set_writer(tx.downgrade());
        let id = regs.add(&bus, EVENT_ID_LIFECYCLE, None, false).unwrap();
        assert_eq!(id, 1, "libvirt's callback ids start at 1");
        let sent = crate::events::CAPACITY * 3;
        let t = std::time::Instant::now();
        for _ in 0..sent {
            bus.emit(event(EventKind::Lifecycle(Lifecycle::Defined(
                Defined::Updated,
            ))));
            tokio::task::yield_now().await;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "emitting waited"
        );
        // What the client gets once it reads: at most the bus's backlog plus what was queued.
        let mut got = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv()).await
        {
            got += 1;
        }
        assert!(got > 0 && got < sent, "got {got} of {sent}");
        // Its registrations end with the connection: no more frames.
        regs.close();
        tokio::task::yield_now().await;
        bus.emit(event(EventKind::Lifecycle(Lifecycle::Defined(
            Defined::Updated,
        ))));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv())
                .await
                .is_err(),
            "a frame after close"
        );
        drop(tx);
    }

    #[test]
    fn event_ids_are_checked_as_libvirtd_does() {
        assert!(check_event_id(0).is_ok());
        assert!(check_event_id(26).is_ok(), "MEMORY_DEVICE_SIZE_CHANGE");
        assert!(check_event_id(27).is_err());
        assert!(check_event_id(-1).is_err());
    }
}
