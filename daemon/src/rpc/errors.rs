//! virtnetd's errors as libvirt's: which `virErrorNumber` a [`DaemonError`] is, so that a
//! libvirt client sees the code it would from libvirtd (virsh's `error: Domain not found`,
//! python's `libvirtError.get_error_code()`); the message is virtnetd's own.

use virtnet_rpc::{ErrorCode, Procedure, RemoteError};

use crate::error::DaemonError;

/// Why a call is refused: the code and message of the `remote_error` sent back (the rest of
/// `remote_error` is filled in when it is sent, [`Refusal::to_remote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// libvirt's error number.
    pub code: ErrorCode,
    /// The whole message the client shows.
    pub message: String,
    /// Who raised it: libvirt clients show the error domain (python's
    /// `get_error_domain()`, "QEMU Driver error" vs "Network Driver error").
    pub origin: Origin,
}

/// The libvirt driver (`virErrorDomain`) a refusal comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// The domain driver (`VIR_FROM_QEMU`).
    Qemu,
    /// The network driver (`VIR_FROM_NETWORK`).
    Network,
    /// The protocol layer (`VIR_FROM_RPC`).
    Protocol,
}

impl Refusal {
    /// A refusal by the driver (`VIR_FROM_QEMU`).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            origin: Origin::Qemu,
        }
    }

    /// The same refusal, raised by the protocol layer.
    pub fn by_protocol(self) -> Refusal {
        Refusal {
            origin: Origin::Protocol,
            ..self
        }
    }

    /// The same refusal, raised by the network driver (unless the protocol layer raised it).
    pub fn by_network_driver(self) -> Refusal {
        match self.origin {
            Origin::Protocol => self,
            _ => Refusal {
                origin: Origin::Network,
                ..self
            },
        }
    }

    /// The `remote_error` sent.
    pub fn to_remote(&self) -> RemoteError {
        let e = RemoteError::new(self.code, self.message.clone());
        match self.origin {
            Origin::Qemu => e,
            Origin::Network => e.by_network_driver(),
            Origin::Protocol => e.by_protocol(),
        }
    }
}

/// The libvirt error for `e`.
pub(super) fn remote_error(e: &DaemonError) -> Refusal {
    Refusal::new(code(e), e.to_string())
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
        DaemonError::NotHotpluggable(_) | DaemonError::NotAvailable { .. } => {
            ErrorCode::OperationUnsupported
        }
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
pub(super) fn not_supported(p: Procedure) -> Refusal {
    Refusal::new(
        ErrorCode::NoSupport,
        format!("this function is not supported by the connection driver: {p}"),
    )
}

/// libvirt's `virCheckFlags` refusal of flag bits a procedure does not know.
/// libvirt's refusal of `flags` bits outside `known` in `api` ([`unsupported_flags`]).
pub(super) fn check_flags(flags: u32, known: u32, api: &str) -> Result<(), Refusal> {
    match flags & !known {
        0 => Ok(()),
        bad => Err(unsupported_flags(bad, api)),
    }
}

/// A change asked on a read-only connection (`VIR_CONNECT_RO`).
pub(super) fn read_only(p: Procedure) -> Refusal {
    Refusal::new(
        ErrorCode::OperationDenied,
        format!("operation forbidden: {p} on a read-only connection"),
    )
}

pub(super) fn unsupported_flags(flags: u32, api: &str) -> Refusal {
    Refusal::new(
        ErrorCode::InvalidArg,
        format!("unsupported flags (0x{flags:x}) in function {api}"),
    )
}
