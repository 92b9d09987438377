//! XDR (RFC 4506) as libvirt's RPC uses it: big-endian 4-byte units, everything padded to a
//! multiple of 4, variable-length data prefixed by its length and bounded by the `.x` file's
//! maximum.
//!
//! [`Xdr`] is implemented for the scalar types and for the generic shapes (optional data,
//! fixed opaque); bounded strings, opaques and arrays are read with [`Reader::string`],
//! [`Reader::opaque`] and [`Reader::array`], which take the bound, so that no length read off
//! the wire allocates more than the protocol allows or than the input holds.

use crate::error::{Result, RpcError};

/// A value with an XDR encoding.
pub trait Xdr: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one value.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;
}

/// A cursor over XDR input; every read checks the bytes are there.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails unless every byte was read (trailing bytes are garbage).
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(RpcError::TrailingBytes { count: n }),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(RpcError::Truncated {
                wanted: n,
                left: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn word(&mut self) -> Result<[u8; 4]> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// Skips the padding after `len` bytes of opaque data; the padding must be zero.
    fn pad(&mut self, len: usize) -> Result<()> {
        let pad = (4 - len % 4) % 4;
        if self.take(pad)?.iter().any(|&b| b != 0) {
            return Err(RpcError::BadPadding);
        }
        Ok(())
    }

    /// A length prefix, refused above `max` (or above what is left, so that a lying length
    /// never allocates).
    fn length(&mut self, what: &'static str, max: u32, unit: usize) -> Result<usize> {
        let len = u32::decode(self)?;
        if len > max {
            return Err(RpcError::TooLong { what, len, max });
        }
        let len = len as usize;
        if len.saturating_mul(unit) > self.remaining() {
            return Err(RpcError::Truncated {
                wanted: len.saturating_mul(unit),
                left: self.remaining(),
            });
        }
        Ok(len)
    }

    /// Variable-length opaque data `opaque<max>`.
    pub fn opaque(&mut self, max: u32) -> Result<Vec<u8>> {
        let len = self.length("opaque", max, 1)?;
        let data = self.take(len)?.to_vec();
        self.pad(len)?;
        Ok(data)
    }

    /// Fixed-length opaque data `opaque[N]`.
    pub fn fixed_opaque<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        self.pad(N)?;
        Ok(out)
    }

    /// A string `string<max>` (must be UTF-8: libvirt's are).
    pub fn string(&mut self, max: u32) -> Result<String> {
        let len = self.length("string", max, 1)?;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes)
            .map_err(|_| RpcError::NotUtf8)?
            .to_string();
        self.pad(len)?;
        Ok(s)
    }

    /// A variable-length array `T items<max>`; every element takes at least 4 bytes, which
    /// bounds the length by the input before anything is allocated.
    pub fn array<T: Xdr>(&mut self, max: u32) -> Result<Vec<T>> {
        let len = self.length("array", max, 4)?;
        (0..len).map(|_| T::decode(self)).collect()
    }
}

/// Appends `data` as fixed-length opaque data (no length, padded).
pub fn put_fixed_opaque(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len() + (4 - data.len() % 4) % 4, 0);
}

/// Appends `data` as variable-length opaque data (length, bytes, padding). The caller keeps
/// within the `.x` bound; lengths above `u32::MAX` cannot occur in a frame.
pub fn put_opaque(out: &mut Vec<u8>, data: &[u8]) {
    (data.len() as u32).encode(out);
    put_fixed_opaque(out, data);
}

/// Appends a variable-length array.
pub fn put_array<T: Xdr>(out: &mut Vec<u8>, items: &[T]) {
    (items.len() as u32).encode(out);
    for i in items {
        i.encode(out);
    }
}

impl Xdr for u32 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(u32::from_be_bytes(r.word()?))
    }
}

impl Xdr for i32 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(i32::from_be_bytes(r.word()?))
    }
}

impl Xdr for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let b = r.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

impl Xdr for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as u64).encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(u64::decode(r)? as i64)
    }
}

impl Xdr for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        u32::from(*self).encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match u32::decode(r)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(RpcError::BadEnum {
                what: "bool",
                value: v,
            }),
        }
    }
}

/// `T *name`: XDR's optional data, a bool then the value when present.
impl<T: Xdr> Xdr for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => false.encode(out),
            Some(v) => {
                true.encode(out);
                v.encode(out);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(if bool::decode(r)? {
            Some(T::decode(r)?)
        } else {
            None
        })
    }
}

/// A string bounded by the remote protocol's `REMOTE_STRING_MAX` (`remote_nonnull_string`);
/// other bounds go through [`Reader::string`].
impl Xdr for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_opaque(out, self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.string(crate::REMOTE_STRING_MAX)
    }
}

/// A UUID: `opaque[VIR_UUID_BUFLEN]`.
impl Xdr for [u8; 16] {
    fn encode(&self, out: &mut Vec<u8>) {
        put_fixed_opaque(out, self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.fixed_opaque::<16>()
    }
}

/// Encodes `v` into a new buffer.
pub fn to_bytes<T: Xdr>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

/// Decodes a `T` that must take all of `buf`.
pub fn from_bytes<T: Xdr>(buf: &[u8]) -> Result<T> {
    let mut r = Reader::new(buf);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Defines a struct whose XDR encoding is its fields in order (as `struct` in a `.x` file).
#[macro_export]
macro_rules! xdr_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::xdr::Xdr for $name {
            fn encode(&self, _out: &mut Vec<u8>) {
                $($crate::xdr::Xdr::encode(&self.$f, _out);)*
            }
            fn decode(_r: &mut $crate::xdr::Reader<'_>) -> $crate::Result<Self> {
                Ok($name { $($f: <$t as $crate::xdr::Xdr>::decode(_r)?),* })
            }
        }
    };
}
