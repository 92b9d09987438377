//! Live migration (`virsh migrate --p2p`, `virDomainMigrateToURI3`; the managed `virsh
//! migrate`): the typed parameters libvirt's migration API carries (`remote_typed_param` of
//! `remote_protocol.x`), the `_args`/`_ret` of `DOMAIN_MIGRATE_{BEGIN,PREPARE,PERFORM,FINISH,
//! CONFIRM}3_PARAMS`, `remote_domain_get_job_info_ret`, and
//! the numbers a server needs: the `VIR_DRV_FEATURE_*` a client asks before migrating
//! (`src/libvirt_internal.h`), `virDomainMigrateFlags` and the `VIR_MIGRATE_PARAM_*` names
//! (`include/libvirt/libvirt-domain.h`).

use crate::error::{Result, RpcError};
use crate::virerror::NonnullDomain;
use crate::xdr::{put_array, put_opaque, Reader, Xdr};

/// `VIR_DRV_FEATURE_MIGRATION_P2P`: the source drives the whole migration itself.
pub const FEATURE_MIGRATION_P2P: i32 = 4;
/// `VIR_DRV_FEATURE_MIGRATION_DIRECT`: the client drives a migration the hypervisor makes.
pub const FEATURE_MIGRATION_DIRECT: i32 = 5;
/// `VIR_DRV_FEATURE_MIGRATION_V3`: Begin3/Prepare3/Perform3/Finish3/Confirm3.
pub const FEATURE_MIGRATION_V3: i32 = 6;
/// `VIR_DRV_FEATURE_TYPED_PARAM_STRING`: string-typed parameters.
pub const FEATURE_TYPED_PARAM_STRING: i32 = 9;
/// `VIR_DRV_FEATURE_MIGRATION_OFFLINE`.
pub const FEATURE_MIGRATION_OFFLINE: i32 = 12;
/// `VIR_DRV_FEATURE_MIGRATION_PARAMS`: the `*3_PARAMS` procedures with typed parameters.
pub const FEATURE_MIGRATION_PARAMS: i32 = 13;

/// `REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX`: the most typed parameters of a migration call.
pub const MIGRATE_PARAM_LIST_MAX: u32 = 64;
/// `REMOTE_MIGRATE_COOKIE_MAX`: the bound of a migration cookie.
pub const MIGRATE_COOKIE_MAX: u32 = 4_194_304;
/// `VIR_TYPED_PARAM_FIELD_LENGTH`: a field name's buffer, NUL included (libvirt refuses a
/// longer name when it deserializes, so does this crate).
pub const TYPED_PARAM_FIELD_LENGTH: u32 = 80;

/// `VIR_MIGRATE_*` (`virDomainMigrateFlags`), with virsh's option for each.
pub mod flags {
    /// `--live`.
    pub const LIVE: u32 = 1 << 0;
    /// `--p2p`.
    pub const PEER2PEER: u32 = 1 << 1;
    /// `--tunnelled`.
    pub const TUNNELLED: u32 = 1 << 2;
    /// `--persistent`.
    pub const PERSIST_DEST: u32 = 1 << 3;
    /// `--undefinesource`.
    pub const UNDEFINE_SOURCE: u32 = 1 << 4;
    /// `--suspend`.
    pub const PAUSED: u32 = 1 << 5;
    /// `--copy-storage-all`.
    pub const NON_SHARED_DISK: u32 = 1 << 6;
    /// `--copy-storage-inc`.
    pub const NON_SHARED_INC: u32 = 1 << 7;
    /// `--change-protection`.
    pub const CHANGE_PROTECTION: u32 = 1 << 8;
    /// `--unsafe`.
    pub const UNSAFE: u32 = 1 << 9;
    /// `--offline`.
    pub const OFFLINE: u32 = 1 << 10;
    /// `--compressed`.
    pub const COMPRESSED: u32 = 1 << 11;
    /// `--abort-on-error`.
    pub const ABORT_ON_ERROR: u32 = 1 << 12;
    /// `--auto-converge`.
    pub const AUTO_CONVERGE: u32 = 1 << 13;
    /// `--rdma-pin-all`.
    pub const RDMA_PIN_ALL: u32 = 1 << 14;
    /// `--postcopy`.
    pub const POSTCOPY: u32 = 1 << 15;
    /// `--tls`.
    pub const TLS: u32 = 1 << 16;
    /// `--parallel`.
    pub const PARALLEL: u32 = 1 << 17;
    /// `--copy-storage-synchronous-writes`.
    pub const NON_SHARED_SYNCHRONOUS_WRITES: u32 = 1 << 18;
    /// `--postcopy-resume`.
    pub const POSTCOPY_RESUME: u32 = 1 << 19;
    /// `--zerocopy`.
    pub const ZEROCOPY: u32 = 1 << 20;

    /// Each flag with the virsh option that sets it, for messages.
    pub const NAMES: [(u32, &str); 21] = [
        (LIVE, "--live"),
        (PEER2PEER, "--p2p"),
        (TUNNELLED, "--tunnelled"),
        (PERSIST_DEST, "--persistent"),
        (UNDEFINE_SOURCE, "--undefinesource"),
        (PAUSED, "--suspend"),
        (NON_SHARED_DISK, "--copy-storage-all"),
        (NON_SHARED_INC, "--copy-storage-inc"),
        (CHANGE_PROTECTION, "--change-protection"),
        (UNSAFE, "--unsafe"),
        (OFFLINE, "--offline"),
        (COMPRESSED, "--compressed"),
        (ABORT_ON_ERROR, "--abort-on-error"),
        (AUTO_CONVERGE, "--auto-converge"),
        (RDMA_PIN_ALL, "--rdma-pin-all"),
        (POSTCOPY, "--postcopy"),
        (TLS, "--tls"),
        (PARALLEL, "--parallel"),
        (
            NON_SHARED_SYNCHRONOUS_WRITES,
            "--copy-storage-synchronous-writes",
        ),
        (POSTCOPY_RESUME, "--postcopy-resume"),
        (ZEROCOPY, "--zerocopy"),
    ];
}

/// `VIR_MIGRATE_PARAM_*` names virtnetd maps (the others are refused by name).
pub mod param {
    /// `VIR_MIGRATE_PARAM_URI` (string): virsh `--migrateuri`.
    pub const URI: &str = "migrate_uri";
    /// `VIR_MIGRATE_PARAM_DEST_NAME` (string): virsh `--dname`.
    pub const DEST_NAME: &str = "destination_name";
    /// `VIR_MIGRATE_PARAM_DEST_XML` (string): virsh `--xml`.
    pub const DEST_XML: &str = "destination_xml";
    /// `VIR_MIGRATE_PARAM_BANDWIDTH` (ullong, MiB/s): virsh `--bandwidth`.
    pub const BANDWIDTH: &str = "bandwidth";
}

/// `remote_typed_param_value`: a `virTypedParameterType` (1..=7) and its value. Equal when
/// their encodings are (a NaN double equals itself: decoding round-trips).
#[derive(Debug, Clone)]
pub enum TypedValue {
    /// `VIR_TYPED_PARAM_INT`.
    Int(i32),
    /// `VIR_TYPED_PARAM_UINT`.
    Uint(u32),
    /// `VIR_TYPED_PARAM_LLONG`.
    Llong(i64),
    /// `VIR_TYPED_PARAM_ULLONG`.
    Ullong(u64),
    /// `VIR_TYPED_PARAM_DOUBLE`.
    Double(f64),
    /// `VIR_TYPED_PARAM_BOOLEAN` (an `int` on the wire, non-zero is true).
    Boolean(bool),
    /// `VIR_TYPED_PARAM_STRING` (`remote_nonnull_string`).
    String(String),
}

impl TypedValue {
    /// Its `virTypedParameterType`.
    pub fn type_number(&self) -> i32 {
        match self {
            TypedValue::Int(_) => 1,
            TypedValue::Uint(_) => 2,
            TypedValue::Llong(_) => 3,
            TypedValue::Ullong(_) => 4,
            TypedValue::Double(_) => 5,
            TypedValue::Boolean(_) => 6,
            TypedValue::String(_) => 7,
        }
    }

    /// libvirt's name of its type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            TypedValue::Int(_) => "int",
            TypedValue::Uint(_) => "uint",
            TypedValue::Llong(_) => "llong",
            TypedValue::Ullong(_) => "ullong",
            TypedValue::Double(_) => "double",
            TypedValue::Boolean(_) => "boolean",
            TypedValue::String(_) => "string",
        }
    }
}

impl PartialEq for TypedValue {
    fn eq(&self, other: &Self) -> bool {
        crate::xdr::to_bytes(self) == crate::xdr::to_bytes(other)
    }
}

impl Xdr for TypedValue {
    fn encode(&self, out: &mut Vec<u8>) {
        self.type_number().encode(out);
        match self {
            TypedValue::Int(v) => v.encode(out),
            TypedValue::Uint(v) => v.encode(out),
            TypedValue::Llong(v) => v.encode(out),
            TypedValue::Ullong(v) => v.encode(out),
            TypedValue::Double(v) => v.to_bits().encode(out),
            TypedValue::Boolean(v) => i32::from(*v).encode(out),
            TypedValue::String(v) => v.encode(out),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match i32::decode(r)? {
            1 => TypedValue::Int(i32::decode(r)?),
            2 => TypedValue::Uint(u32::decode(r)?),
            3 => TypedValue::Llong(i64::decode(r)?),
            4 => TypedValue::Ullong(u64::decode(r)?),
            5 => TypedValue::Double(f64::from_bits(u64::decode(r)?)),
            6 => TypedValue::Boolean(i32::decode(r)? != 0),
            7 => TypedValue::String(String::decode(r)?),
            t => {
                return Err(RpcError::BadEnum {
                    what: "virTypedParameterType",
                    value: t as u32,
                })
            }
        })
    }
}

/// `remote_typed_param`: a named, typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedParam {
    /// Its name (`VIR_MIGRATE_PARAM_*`), under [`TYPED_PARAM_FIELD_LENGTH`] bytes.
    pub field: String,
    /// Its value.
    pub value: TypedValue,
}

impl Xdr for TypedParam {
    fn encode(&self, out: &mut Vec<u8>) {
        self.field.encode(out);
        self.value.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(TypedParam {
            field: r.string(TYPED_PARAM_FIELD_LENGTH - 1)?,
            value: TypedValue::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_perform3_params_args`: the source's one call of a peer-to-peer
/// migration (`virDomainMigrateToURI3`).
#[derive(Debug, Clone, PartialEq)]
pub struct Perform3ParamsArgs {
    /// The domain migrated.
    pub dom: NonnullDomain,
    /// The destination's libvirt URI (`remote_string`).
    pub dconnuri: Option<String>,
    /// `remote_typed_param params<REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX>`.
    pub params: Vec<TypedParam>,
    /// `opaque cookie_in<REMOTE_MIGRATE_COOKIE_MAX>` (empty in peer-to-peer).
    pub cookie_in: Vec<u8>,
    /// `virDomainMigrateFlags`.
    pub flags: u32,
}

impl Xdr for Perform3ParamsArgs {
    fn encode(&self, out: &mut Vec<u8>) {
        self.dom.encode(out);
        self.dconnuri.encode(out);
        put_array(out, &self.params);
        put_opaque(out, &self.cookie_in);
        self.flags.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Perform3ParamsArgs {
            dom: NonnullDomain::decode(r)?,
            dconnuri: Option::<String>::decode(r)?,
            params: params(r)?,
            cookie_in: cookie(r)?,
            flags: u32::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_perform3_params_ret`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Perform3ParamsRet {
    /// `opaque cookie_out<REMOTE_MIGRATE_COOKIE_MAX>` (empty: virtnetd passes no cookie).
    pub cookie_out: Vec<u8>,
}

impl Xdr for Perform3ParamsRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.cookie_out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Perform3ParamsRet {
            cookie_out: r.opaque(MIGRATE_COOKIE_MAX)?,
        })
    }
}

/// Reads `remote_typed_param params<REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX>`.
fn params(r: &mut Reader<'_>) -> Result<Vec<TypedParam>> {
    r.array(MIGRATE_PARAM_LIST_MAX)
}

/// Reads `opaque cookie<REMOTE_MIGRATE_COOKIE_MAX>`.
fn cookie(r: &mut Reader<'_>) -> Result<Vec<u8>> {
    r.opaque(MIGRATE_COOKIE_MAX)
}

/// `remote_domain_migrate_begin3_params_args`: the managed flow's first call, on the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Begin3ParamsArgs {
    /// The domain migrated.
    pub dom: NonnullDomain,
    /// The migration's parameters.
    pub params: Vec<TypedParam>,
    /// `virDomainMigrateFlags`.
    pub flags: u32,
}

impl Xdr for Begin3ParamsArgs {
    fn encode(&self, out: &mut Vec<u8>) {
        self.dom.encode(out);
        put_array(out, &self.params);
        self.flags.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Begin3ParamsArgs {
            dom: NonnullDomain::decode(r)?,
            params: params(r)?,
            flags: u32::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_begin3_params_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin3ParamsRet {
    /// `opaque cookie_out<REMOTE_MIGRATE_COOKIE_MAX>`.
    pub cookie_out: Vec<u8>,
    /// The domain XML the destination is to run.
    pub xml: String,
}

impl Xdr for Begin3ParamsRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.cookie_out);
        self.xml.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Begin3ParamsRet {
            cookie_out: cookie(r)?,
            xml: String::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_prepare3_params_args`: on the destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepare3ParamsArgs {
    /// The migration's parameters (with Begin's XML as `destination_xml`).
    pub params: Vec<TypedParam>,
    /// Begin's cookie.
    pub cookie_in: Vec<u8>,
    /// `virDomainMigrateFlags`.
    pub flags: u32,
}

impl Xdr for Prepare3ParamsArgs {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.params);
        put_opaque(out, &self.cookie_in);
        self.flags.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Prepare3ParamsArgs {
            params: params(r)?,
            cookie_in: cookie(r)?,
            flags: u32::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_prepare3_params_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepare3ParamsRet {
    /// `opaque cookie_out<REMOTE_MIGRATE_COOKIE_MAX>`: handed to Perform.
    pub cookie_out: Vec<u8>,
    /// Where the stream is to go when the client gave no `migrate_uri` (`remote_string`).
    pub uri_out: Option<String>,
}

impl Xdr for Prepare3ParamsRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.cookie_out);
        self.uri_out.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Prepare3ParamsRet {
            cookie_out: cookie(r)?,
            uri_out: Option::<String>::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_finish3_params_args`: on the destination, after Perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish3ParamsArgs {
    /// The migration's parameters (`destination_name` always set by the client).
    pub params: Vec<TypedParam>,
    /// Perform's cookie.
    pub cookie_in: Vec<u8>,
    /// `virDomainMigrateFlags`.
    pub flags: u32,
    /// Non-zero when Perform failed: the destination is to drop the incoming domain.
    pub cancelled: i32,
}

impl Xdr for Finish3ParamsArgs {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.params);
        put_opaque(out, &self.cookie_in);
        self.flags.encode(out);
        self.cancelled.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Finish3ParamsArgs {
            params: params(r)?,
            cookie_in: cookie(r)?,
            flags: u32::decode(r)?,
            cancelled: i32::decode(r)?,
        })
    }
}

/// `remote_domain_migrate_finish3_params_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish3ParamsRet {
    /// The domain, running on the destination.
    pub dom: NonnullDomain,
    /// `opaque cookie_out<REMOTE_MIGRATE_COOKIE_MAX>`.
    pub cookie_out: Vec<u8>,
}

impl Xdr for Finish3ParamsRet {
    fn encode(&self, out: &mut Vec<u8>) {
        self.dom.encode(out);
        put_opaque(out, &self.cookie_out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Finish3ParamsRet {
            dom: NonnullDomain::decode(r)?,
            cookie_out: cookie(r)?,
        })
    }
}

/// `remote_domain_migrate_confirm3_params_args`: on the source, last.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm3ParamsArgs {
    /// The domain migrated.
    pub dom: NonnullDomain,
    /// The migration's parameters.
    pub params: Vec<TypedParam>,
    /// Finish's cookie.
    pub cookie_in: Vec<u8>,
    /// `virDomainMigrateFlags`.
    pub flags: u32,
    /// Non-zero when the domain does not run on the destination.
    pub cancelled: i32,
}

impl Xdr for Confirm3ParamsArgs {
    fn encode(&self, out: &mut Vec<u8>) {
        self.dom.encode(out);
        put_array(out, &self.params);
        put_opaque(out, &self.cookie_in);
        self.flags.encode(out);
        self.cancelled.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Confirm3ParamsArgs {
            dom: NonnullDomain::decode(r)?,
            params: params(r)?,
            cookie_in: cookie(r)?,
            flags: u32::decode(r)?,
            cancelled: i32::decode(r)?,
        })
    }
}

/// `VIR_DOMAIN_JOB_NONE`: no job runs.
pub const JOB_NONE: i32 = 0;
/// `VIR_DOMAIN_JOB_UNBOUNDED`: a job whose end is not known in advance (a live migration).
pub const JOB_UNBOUNDED: i32 = 2;

crate::xdr_struct! {
    /// `remote_domain_get_job_info_ret` (`virDomainGetJobInfo`); amounts in bytes, times in
    /// milliseconds.
    #[derive(Default)]
    pub struct JobInfoRet {
        /// `virDomainJobType`.
        pub type_: i32,
        /// Time since the job started.
        pub time_elapsed: u64,
        /// Expected time left.
        pub time_remaining: u64,
        /// Data to move in all.
        pub data_total: u64,
        /// Data moved.
        pub data_processed: u64,
        /// Data left.
        pub data_remaining: u64,
        /// Memory to move in all.
        pub mem_total: u64,
        /// Memory moved.
        pub mem_processed: u64,
        /// Memory left.
        pub mem_remaining: u64,
        /// Files to move in all.
        pub file_total: u64,
        /// Files moved.
        pub file_processed: u64,
        /// Files left.
        pub file_remaining: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::{from_bytes, to_bytes};

    fn args() -> Perform3ParamsArgs {
        Perform3ParamsArgs {
            dom: NonnullDomain {
                name: "vm1".into(),
                uuid: [7; 16],
                id: 3,
            },
            dconnuri: Some("qemu+unix:///system?socket=/run/b/libvirt-sock".into()),
            params: vec![
                TypedParam {
                    field: param::URI.into(),
                    value: TypedValue::String("tcp:10.99.0.2".into()),
                },
                TypedParam {
                    field: param::BANDWIDTH.into(),
                    value: TypedValue::Ullong(100),
                },
                TypedParam {
                    field: "x".into(),
                    value: TypedValue::Double(1.5),
                },
                TypedParam {
                    field: "b".into(),
                    value: TypedValue::Boolean(true),
                },
                TypedParam {
                    field: "i".into(),
                    value: TypedValue::Int(-2),
                },
                TypedParam {
                    field: "u".into(),
                    value: TypedValue::Uint(2),
                },
                TypedParam {
                    field: "l".into(),
                    value: TypedValue::Llong(-5),
                },
            ],
            cookie_in: vec![],
            flags: flags::LIVE | flags::PEER2PEER,
        }
    }

    #[test]
    fn perform3_params_round_trip() {
        let a = args();
        let bytes = to_bytes(&a);
        assert_eq!(from_bytes::<Perform3ParamsArgs>(&bytes).unwrap(), a);
        let ret = Perform3ParamsRet {
            cookie_out: vec![1, 2, 3],
        };
        assert_eq!(to_bytes(&ret), [0, 0, 0, 3, 1, 2, 3, 0]);
        assert_eq!(
            from_bytes::<Perform3ParamsRet>(&to_bytes(&ret)).unwrap(),
            ret
        );
    }

    #[test]
    fn typed_param_wire_layout() {
        let p = TypedParam {
            field: "bandwidth".into(),
            value: TypedValue::Ullong(0x0102_0304_0506_0708),
        };
        let mut want = vec![0, 0, 0, 9];
        want.extend_from_slice(b"bandwidth\0\0\0");
        want.extend_from_slice(&[0, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(to_bytes(&p), want);
        let d = TypedParam {
            field: "d".into(),
            value: TypedValue::Double(1.0),
        };
        // IEEE 754 big-endian, as XDR's double.
        assert_eq!(
            &to_bytes(&d)[8..],
            &[0, 0, 0, 5, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn bounds_are_enforced() {
        // A field name of 80 bytes does not fit libvirt's buffer.
        let long = TypedParam {
            field: "f".repeat(80),
            value: TypedValue::Int(1),
        };
        assert!(matches!(
            from_bytes::<TypedParam>(&to_bytes(&long)),
            Err(RpcError::TooLong { .. })
        ));
        let fits = TypedParam {
            field: "f".repeat(79),
            value: TypedValue::Int(1),
        };
        assert_eq!(from_bytes::<TypedParam>(&to_bytes(&fits)).unwrap(), fits);
        // More than REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX parameters.
        let mut a = args();
        a.params = vec![a.params[0].clone(); 65];
        assert!(matches!(
            from_bytes::<Perform3ParamsArgs>(&to_bytes(&a)),
            Err(RpcError::TooLong { .. })
        ));
        a.params.truncate(64);
        assert_eq!(from_bytes::<Perform3ParamsArgs>(&to_bytes(&a)).unwrap(), a);
        // An unknown type.
        let mut bytes = to_bytes(&TypedParam {
            field: "x".into(),
            value: TypedValue::Int(1),
        });
        bytes[11] = 8;
        assert!(matches!(
            from_bytes::<TypedParam>(&bytes),
            Err(RpcError::BadEnum { .. })
        ));
        // A cookie length past the bound, and a lying array length.
        let mut bytes = to_bytes(&Perform3ParamsRet::default());
        bytes[..4].copy_from_slice(&(MIGRATE_COOKIE_MAX + 1).to_be_bytes());
        assert!(from_bytes::<Perform3ParamsRet>(&bytes).is_err());
        let mut a = args();
        a.params.clear();
        let mut bytes = to_bytes(&a);
        let at = bytes.len() - 12;
        bytes[at..at + 4].copy_from_slice(&64u32.to_be_bytes());
        assert!(from_bytes::<Perform3ParamsArgs>(&bytes).is_err());
        // Every truncation fails cleanly.
        let bytes = to_bytes(&args());
        for n in 0..bytes.len() {
            assert!(
                from_bytes::<Perform3ParamsArgs>(&bytes[..n]).is_err(),
                "{n}"
            );
        }
    }

    #[test]
    fn managed_flow_round_trips() {
        let a = args();
        let dom = a.dom.clone();
        let p = a.params.clone();
        let b = Begin3ParamsArgs {
            dom: dom.clone(),
            params: p.clone(),
            flags: 9,
        };
        assert_eq!(from_bytes::<Begin3ParamsArgs>(&to_bytes(&b)).unwrap(), b);
        let br = Begin3ParamsRet {
            cookie_out: vec![1],
            xml: "<domain/>".into(),
        };
        assert_eq!(from_bytes::<Begin3ParamsRet>(&to_bytes(&br)).unwrap(), br);
        let pr = Prepare3ParamsArgs {
            params: p.clone(),
            cookie_in: vec![2, 3],
            flags: 9,
        };
        assert_eq!(
            from_bytes::<Prepare3ParamsArgs>(&to_bytes(&pr)).unwrap(),
            pr
        );
        for uri_out in [None, Some("unix".to_string())] {
            let r = Prepare3ParamsRet {
                cookie_out: b"x".to_vec(),
                uri_out,
            };
            assert_eq!(from_bytes::<Prepare3ParamsRet>(&to_bytes(&r)).unwrap(), r);
        }
        let f = Finish3ParamsArgs {
            params: p.clone(),
            cookie_in: vec![],
            flags: 9,
            cancelled: 1,
        };
        assert_eq!(from_bytes::<Finish3ParamsArgs>(&to_bytes(&f)).unwrap(), f);
        let fr = Finish3ParamsRet {
            dom: dom.clone(),
            cookie_out: vec![],
        };
        assert_eq!(from_bytes::<Finish3ParamsRet>(&to_bytes(&fr)).unwrap(), fr);
        let c = Confirm3ParamsArgs {
            dom,
            params: p,
            cookie_in: vec![4],
            flags: 9,
            cancelled: 0,
        };
        let bytes = to_bytes(&c);
        assert_eq!(from_bytes::<Confirm3ParamsArgs>(&bytes).unwrap(), c);
        for n in 0..bytes.len() {
            assert!(
                from_bytes::<Confirm3ParamsArgs>(&bytes[..n]).is_err(),
                "{n}"
            );
        }
    }

    #[test]
    fn a_nan_double_round_trips() {
        let nan = TypedValue::Double(f64::from_bits(0x7ff8_0000_0000_0001));
        assert_eq!(from_bytes::<TypedValue>(&to_bytes(&nan)).unwrap(), nan);
        assert_ne!(TypedValue::Double(0.0), TypedValue::Double(-0.0));
    }

    #[test]
    fn job_info_is_twelve_fields() {
        let j = JobInfoRet {
            type_: JOB_UNBOUNDED,
            time_elapsed: 5,
            ..Default::default()
        };
        let b = to_bytes(&j);
        assert_eq!(b.len(), 4 + 11 * 8);
        assert_eq!(from_bytes::<JobInfoRet>(&b).unwrap(), j);
    }

    #[test]
    fn flag_names_are_the_bits() {
        let all = flags::NAMES.iter().fold(0, |m, (b, _)| {
            assert_eq!(m & b, 0, "each bit once");
            m | b
        });
        assert_eq!(all, (1 << 21) - 1);
    }
}
