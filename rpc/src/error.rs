//! [`RpcError`]: why bytes are not a valid message.

/// Why a frame, header or payload could not be decoded. Every variant is the peer's fault
/// (bad input); the codec has no other failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RpcError {
    /// The input ended early.
    #[error("truncated: {wanted} bytes wanted, {left} left")]
    Truncated {
        /// Bytes the next item needs.
        wanted: usize,
        /// Bytes that were left.
        left: usize,
    },
    /// A length prefix over the `.x` file's bound.
    #[error("{what} of {len} bytes/items is over its limit of {max}")]
    TooLong {
        /// What was being read (`string`, `opaque`, `array`).
        what: &'static str,
        /// The length read.
        len: u32,
        /// The bound.
        max: u32,
    },
    /// Padding bytes that are not zero.
    #[error("non-zero XDR padding")]
    BadPadding,
    /// A string that is not UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// An enum or bool with a value outside its definition.
    #[error("{value} is not a valid {what}")]
    BadEnum {
        /// The enum's name.
        what: &'static str,
        /// The value read.
        value: u32,
    },
    /// Bytes left after the payload's last field.
    #[error("{count} unexpected bytes after the payload")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A frame's length word below the length word plus the header.
    #[error("frame length {len} is under the {min} bytes of length word and header")]
    FrameTooShort {
        /// The length word.
        len: u32,
        /// The least valid length.
        min: u32,
    },
    /// A frame's length word over `VIR_NET_MESSAGE_MAX` (plus the length word).
    #[error("frame length {len} is over the limit of {max} bytes")]
    FrameTooLong {
        /// The length word.
        len: u32,
        /// The largest valid length.
        max: u32,
    },
}

/// The codec's result.
pub type Result<T, E = RpcError> = std::result::Result<T, E>;
