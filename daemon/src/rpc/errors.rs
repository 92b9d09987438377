//! virtnetd's errors as libvirt's: which `virErrorNumber` a [`DaemonError`] is, so that a
//! libvirt client sees the code it would from libvirtd (virsh's `error: Domain not found`,
//! python's `libvirtError.get_error_code()`); the message is virtnetd's own.

use virtnet_rpc::{ErrorCode, Procedure, RemoteError};

use crate::error::DaemonError;

/// The libvirt error for `e`.
pub(super) fn remote_error(e: &DaemonError) -> RemoteError {
    RemoteError::new(code(e), e.to_string())
}

fn code(e: &DaemonError) -> ErrorCode {
    match e {
        DaemonError::NoSuchVm { .. } => ErrorCode::NoDomain,
        DaemonError::NoSuchNetwork { .. } => ErrorCode::NoNetwork,
        DaemonError::InvalidXml { .. } => ErrorCode::XmlError,
        DaemonError::BadRequest(_) => ErrorCode::InvalidArg,
        DaemonError::NoSuchInterface { .. } | DaemonError::NoSuchDevice { .. } => {
            ErrorCode::DeviceMissing
        }
        DaemonError::Unsupported { .. } => ErrorCode::ConfigUnsupported,
        DaemonError::NotHotpluggable(_) => ErrorCode::OperationUnsupported,
        DaemonError::ReadOnly { .. } => ErrorCode::OperationDenied,
        DaemonError::Internal(_) => ErrorCode::InternalError,
        // Everything else the HTTP API calls a conflict with the object's state (409) is
        // "not applicable at this time"; the rest is the host's or QEMU's failure.
        e if e.http_status() == 409 => ErrorCode::OperationInvalid,
        e if e.http_status() < 500 => ErrorCode::InvalidArg,
        _ => ErrorCode::OperationFailed,
    }
}

/// `VIR_ERR_NO_SUPPORT` for a procedure virtnetd does not serve, with libvirt's wording.
pub(super) fn not_supported(p: Procedure) -> RemoteError {
    RemoteError::new(
        ErrorCode::NoSupport,
        format!("this function is not supported by the connection driver: {p}"),
    )
}

/// libvirt's `virCheckFlags` refusal of flag bits a procedure does not know.
pub(super) fn unsupported_flags(flags: u32, api: &str) -> RemoteError {
    RemoteError::new(
        ErrorCode::InvalidArg,
        format!("unsupported flags (0x{flags:x}) in function {api}"),
    )
}
