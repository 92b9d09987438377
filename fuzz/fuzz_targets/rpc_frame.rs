//! Fuzz target: any bytes as a frame of libvirt's remote protocol, the way virtnetd's
//! libvirt-sock reads one: the length word, the header, then the payload as the arguments
//! (or results, or error) of the procedures virtnetd decodes. Must never panic; whatever is
//! decoded must decode again from its own encoding to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnet_rpc::frame;
use virtnet_rpc::migrate::{
    Begin3ParamsArgs, Begin3ParamsRet, Confirm3ParamsArgs, Finish3ParamsArgs, Finish3ParamsRet,
    JobInfoRet, Perform3ParamsArgs, Perform3ParamsRet, Prepare3ParamsArgs, Prepare3ParamsRet,
};
use virtnet_rpc::remote::{
    AuthListRet, ConnectOpenArgs, DefineXmlArgs, DefineXmlFlagsArgs, DomainArgs, DomainFlagsArgs,
    DomainGetInfoRet, DomainGetStateRet, DomainXmlArgs, DomainXmlFlagsArgs, ListAllDomainsArgs,
    ListAllDomainsRet, LookupByIdArgs, LookupByNameArgs, LookupByUuidArgs, NodeGetInfoRet,
    StringRet, SupportsFeatureArgs,
};
use virtnet_rpc::xdr::{from_bytes, to_bytes, Xdr};
use virtnet_rpc::{Procedure, RemoteError};

/// Decodes `payload` as a `T`; when it is one, its encoding must decode to it again.
fn check<T: Xdr + PartialEq + std::fmt::Debug>(payload: &[u8]) {
    if let Ok(v) = from_bytes::<T>(payload) {
        let again = from_bytes::<T>(&to_bytes(&v)).expect("own encoding decodes");
        assert_eq!(again, v);
    }
}

fuzz_target!(|data: &[u8]| {
    // Also the length word alone, as the reader checks it before reading the body.
    if let Some(w) = data.get(..4) {
        let _ = frame::body_len([w[0], w[1], w[2], w[3]]);
    }
    let Ok((header, payload)) = frame::decode_frame(data) else {
        return;
    };
    let again = frame::encode_frame(&header, payload);
    assert_eq!(again, data, "a decoded frame encodes to its bytes");
    check::<RemoteError>(payload);
    match Procedure::from_u32(header.proc_) {
        Procedure::ConnectOpen => check::<ConnectOpenArgs>(payload),
        Procedure::AuthList => check::<AuthListRet>(payload),
        Procedure::ConnectSupportsFeature => check::<SupportsFeatureArgs>(payload),
        Procedure::NodeGetInfo => check::<NodeGetInfoRet>(payload),
        Procedure::ConnectListAllDomains => {
            check::<ListAllDomainsArgs>(payload);
            check::<ListAllDomainsRet>(payload);
        }
        Procedure::DomainLookupByName => check::<LookupByNameArgs>(payload),
        Procedure::DomainLookupByUuid => check::<LookupByUuidArgs>(payload),
        Procedure::DomainLookupById => check::<LookupByIdArgs>(payload),
        Procedure::DomainGetInfo => {
            check::<DomainArgs>(payload);
            check::<DomainGetInfoRet>(payload);
        }
        Procedure::DomainGetState => {
            check::<DomainFlagsArgs>(payload);
            check::<DomainGetStateRet>(payload);
        }
        Procedure::DomainDefineXml => check::<DefineXmlArgs>(payload),
        Procedure::DomainDefineXmlFlags => check::<DefineXmlFlagsArgs>(payload),
        Procedure::DomainAttachDevice | Procedure::DomainDetachDevice => {
            check::<DomainXmlArgs>(payload)
        }
        Procedure::DomainAttachDeviceFlags
        | Procedure::DomainDetachDeviceFlags
        | Procedure::DomainUpdateDeviceFlags => check::<DomainXmlFlagsArgs>(payload),
        Procedure::DomainMigratePerform3Params => {
            check::<Perform3ParamsArgs>(payload);
            check::<Perform3ParamsRet>(payload);
        }
        Procedure::DomainMigrateBegin3Params => {
            check::<Begin3ParamsArgs>(payload);
            check::<Begin3ParamsRet>(payload);
        }
        Procedure::DomainMigratePrepare3Params => {
            check::<Prepare3ParamsArgs>(payload);
            check::<Prepare3ParamsRet>(payload);
        }
        Procedure::DomainMigrateFinish3Params => {
            check::<Finish3ParamsArgs>(payload);
            check::<Finish3ParamsRet>(payload);
        }
        Procedure::DomainMigrateConfirm3Params => check::<Confirm3ParamsArgs>(payload),
        Procedure::DomainGetJobInfo => check::<JobInfoRet>(payload),
        _ => check::<StringRet>(payload),
    }
});
