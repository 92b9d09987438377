//! libvirt's errors on the wire: `remote_error` and the numbers of `virErrorNumber`,
//! `virErrorDomain` and `virErrorLevel` (`include/libvirt/virterror.h`; ABI, never renumbered).

use crate::error::Result;
use crate::xdr::{Reader, Xdr};

/// The `virErrorNumber`s virtnetd answers with (the numbers are libvirt's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `VIR_ERR_INTERNAL_ERROR`: a fault of virtnetd.
    InternalError = 1,
    /// `VIR_ERR_NO_SUPPORT`: "this function is not supported by the connection driver".
    NoSupport = 3,
    /// `VIR_ERR_NO_CONNECT`: no driver for the URI opened.
    NoConnect = 5,
    /// `VIR_ERR_INVALID_ARG`: a bad argument (unknown flags, a bad name).
    InvalidArg = 8,
    /// `VIR_ERR_OPERATION_FAILED`: the host or QEMU failed.
    OperationFailed = 9,
    /// `VIR_ERR_XML_ERROR`: XML not well formed or not valid.
    XmlError = 27,
    /// `VIR_ERR_OPERATION_DENIED`: not allowed on this connection.
    OperationDenied = 29,
    /// `VIR_ERR_RPC`: a protocol error (bad message, unknown program).
    Rpc = 39,
    /// `VIR_ERR_NO_DOMAIN`: no such domain.
    NoDomain = 42,
    /// `VIR_ERR_NO_NETWORK`: no such network.
    NoNetwork = 43,
    /// `VIR_ERR_OPERATION_INVALID`: not applicable in the object's state.
    OperationInvalid = 55,
    /// `VIR_ERR_CONFIG_UNSUPPORTED`: a configuration virtnet does not run.
    ConfigUnsupported = 67,
    /// `VIR_ERR_OPERATION_TIMEOUT`.
    OperationTimeout = 68,
    /// `VIR_ERR_ARGUMENT_UNSUPPORTED`: a valid argument this driver does not support.
    ArgumentUnsupported = 74,
    /// `VIR_ERR_OPERATION_UNSUPPORTED`: the operation is not supported (here, for this object).
    OperationUnsupported = 84,
    /// `VIR_ERR_DEVICE_MISSING`: no such device in the domain.
    DeviceMissing = 99,
}

/// `VIR_FROM_QEMU`: the error domain of the QEMU driver, which virtnetd stands in for.
pub const FROM_QEMU: i32 = 10;
/// `VIR_FROM_REMOTE`: errors of the remote protocol itself.
pub const FROM_REMOTE: i32 = 13;
/// `VIR_FROM_RPC`.
pub const FROM_RPC: i32 = 7;
/// `VIR_FROM_NETWORK`: the error domain of the network driver.
pub const FROM_NETWORK: i32 = 19;
/// `VIR_ERR_ERROR`: the level of every error virtnetd sends.
pub const LEVEL_ERROR: i32 = 2;

crate::xdr_struct! {
    /// `remote_nonnull_domain`: a domain as the protocol names it.
    pub struct NonnullDomain {
        /// Its name.
        pub name: String,
        /// Its UUID.
        pub uuid: [u8; 16],
        /// Its id while running, else -1.
        pub id: i32,
    }
}

crate::xdr_struct! {
    /// `remote_nonnull_network`.
    pub struct NonnullNetwork {
        /// Its name.
        pub name: String,
        /// Its UUID.
        pub uuid: [u8; 16],
    }
}

/// `remote_error`: the payload of a reply with status ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// A `virErrorNumber` ([`ErrorCode`] for the ones virtnetd sends).
    pub code: i32,
    /// A `virErrorDomain`.
    pub domain: i32,
    /// The whole message the client shows.
    pub message: Option<String>,
    /// A `virErrorLevel`.
    pub level: i32,
    /// Unused by libvirt (always null).
    pub dom: Option<NonnullDomain>,
    /// Extra strings.
    pub str1: Option<String>,
    /// Extra strings.
    pub str2: Option<String>,
    /// Extra strings.
    pub str3: Option<String>,
    /// Extra numbers.
    pub int1: i32,
    /// Extra numbers.
    pub int2: i32,
    /// Unused by libvirt (always null).
    pub net: Option<NonnullNetwork>,
}

impl RemoteError {
    /// An error of `code` in the QEMU driver's domain with `message` (shown as is).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RemoteError {
        let message = message.into();
        RemoteError {
            code: code as i32,
            domain: FROM_QEMU,
            str1: Some(message.clone()),
            message: Some(message),
            level: LEVEL_ERROR,
            dom: None,
            str2: None,
            str3: None,
            int1: 0,
            int2: 0,
            net: None,
        }
    }

    /// The same error reported by the protocol layer (`VIR_FROM_RPC`).
    pub fn by_protocol(mut self) -> RemoteError {
        self.domain = FROM_RPC;
        self
    }

    /// The same error reported by the network driver (`VIR_FROM_NETWORK`).
    pub fn by_network_driver(mut self) -> RemoteError {
        self.domain = FROM_NETWORK;
        self
    }
}

impl Xdr for RemoteError {
    fn encode(&self, out: &mut Vec<u8>) {
        self.code.encode(out);
        self.domain.encode(out);
        self.message.encode(out);
        self.level.encode(out);
        self.dom.encode(out);
        self.str1.encode(out);
        self.str2.encode(out);
        self.str3.encode(out);
        self.int1.encode(out);
        self.int2.encode(out);
        self.net.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        // virNetMessageError's strings are bounded by VIR_NET_MESSAGE_STRING_MAX.
        let string = |r: &mut Reader<'_>| -> Result<Option<String>> {
            Ok(if bool::decode(r)? {
                Some(r.string(crate::MESSAGE_STRING_MAX)?)
            } else {
                None
            })
        };
        Ok(RemoteError {
            code: i32::decode(r)?,
            domain: i32::decode(r)?,
            message: string(r)?,
            level: i32::decode(r)?,
            dom: Option::decode(r)?,
            str1: string(r)?,
            str2: string(r)?,
            str3: string(r)?,
            int1: i32::decode(r)?,
            int2: i32::decode(r)?,
            net: Option::decode(r)?,
        })
    }
}
