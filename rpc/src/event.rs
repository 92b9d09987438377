//! Domain events on the wire (`remote_protocol.x`): the registration calls' arguments and
//! results, and the MESSAGE payloads the server sends unasked when an event happens, in the
//! two forms libvirt keeps: the callback form (`remote_domain_event_callback_*_msg`, a
//! `callbackID` then the legacy message, for clients that saw the server support
//! `VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK`) and the legacy form (no callback id, one
//! registration per event id per connection).

use crate::virerror::NonnullDomain;
use crate::xdr_struct;

/// `VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK` (`src/libvirt_internal.h`): the server filters
/// events per callback (the `CONNECT_DOMAIN_EVENT_CALLBACK_*` procedures).
pub const FEATURE_REMOTE_EVENT_CALLBACK: i32 = 14;

/// `VIR_DOMAIN_EVENT_ID_LIFECYCLE`.
pub const EVENT_ID_LIFECYCLE: i32 = 0;
/// `VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED`.
pub const EVENT_ID_DEVICE_REMOVED: i32 = 15;
/// One past the last `virDomainEventID` known (`VIR_DOMAIN_EVENT_ID_LAST` of libvirt 9.0,
/// Debian 12's: the last id is 26, `VIR_DOMAIN_EVENT_ID_MEMORY_DEVICE_SIZE_CHANGE`). libvirtd
/// refuses ids from here on with "unsupported event ID".
pub const EVENT_ID_LAST: i32 = 27;

xdr_struct! {
    /// `remote_connect_domain_event_register_any_args`,
    /// `remote_connect_domain_event_deregister_any_args`: the legacy form.
    pub struct EventRegisterAnyArgs {
        /// A `virDomainEventID`.
        pub event_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_args`.
    pub struct EventCallbackRegisterAnyArgs {
        /// A `virDomainEventID`.
        pub event_id: i32,
        /// Only events of this domain; `None` for every domain.
        pub dom: Option<NonnullDomain>,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_ret`,
    /// `remote_connect_domain_event_callback_deregister_any_args`.
    pub struct EventCallbackId {
        /// The id the server gave the registration; events carry it.
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_event_lifecycle_msg` (`REMOTE_PROC_DOMAIN_EVENT_LIFECYCLE`).
    pub struct LifecycleMsg {
        /// The domain.
        pub dom: NonnullDomain,
        /// A `virDomainEventType`.
        pub event: i32,
        /// Its detail (`virDomainEventDefinedDetailType`, ...).
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_lifecycle_msg`
    /// (`REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE`).
    pub struct CallbackLifecycleMsg {
        /// The registration's id.
        pub callback_id: i32,
        /// The event.
        pub msg: LifecycleMsg,
    }
}

xdr_struct! {
    /// `remote_domain_event_device_removed_msg` (`REMOTE_PROC_DOMAIN_EVENT_DEVICE_REMOVED`).
    pub struct DeviceRemovedMsg {
        /// The domain.
        pub dom: NonnullDomain,
        /// The device's alias.
        pub dev_alias: String,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_device_removed_msg`
    /// (`REMOTE_PROC_DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED`).
    pub struct CallbackDeviceRemovedMsg {
        /// The registration's id.
        pub callback_id: i32,
        /// The event.
        pub msg: DeviceRemovedMsg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::{from_bytes, to_bytes};
    use crate::RpcError;

    #[test]
    fn a_registration_for_every_domain_has_a_null_domain() {
        // What virsh sends for `event --all`: eventID, then `remote_domain` NULL (false).
        let a: EventCallbackRegisterAnyArgs = from_bytes(&[0, 0, 0, 15, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            a,
            EventCallbackRegisterAnyArgs {
                event_id: EVENT_ID_DEVICE_REMOVED,
                dom: None
            }
        );
        // A domain: present (true), name, uuid, id.
        let dom = NonnullDomain {
            name: "vm".into(),
            uuid: [7; 16],
            id: -1,
        };
        let with = EventCallbackRegisterAnyArgs {
            event_id: 0,
            dom: Some(dom),
        };
        let bytes = to_bytes(&with);
        assert_eq!(&bytes[..12], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(bytes.len(), 4 + 4 + 8 + 16 + 4);
        assert_eq!(from_bytes::<EventCallbackRegisterAnyArgs>(&bytes), Ok(with));
        // Neither more nor less than the struct.
        assert!(matches!(
            from_bytes::<EventCallbackRegisterAnyArgs>(&[0, 0, 0, 0, 0, 0, 0, 2]),
            Err(RpcError::BadEnum { .. })
        ));
        assert!(from_bytes::<EventCallbackId>(&[0, 0, 0, 1, 0]).is_err());
    }

    #[test]
    fn messages_round_trip() {
        let msg = CallbackDeviceRemovedMsg {
            callback_id: 4,
            msg: DeviceRemovedMsg {
                dom: NonnullDomain {
                    name: "a".into(),
                    uuid: [1; 16],
                    id: 2,
                },
                dev_alias: "net10".into(),
            },
        };
        let bytes = to_bytes(&msg);
        // callbackID, then the legacy message: the domain, then the alias (5 bytes, padded).
        assert_eq!(&bytes[..4], [0, 0, 0, 4]);
        assert_eq!(&bytes[bytes.len() - 12..], b"\0\0\0\x05net10\0\0\0");
        assert_eq!(from_bytes::<CallbackDeviceRemovedMsg>(&bytes), Ok(msg));
    }
}
