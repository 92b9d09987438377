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
