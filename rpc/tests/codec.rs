//! The codec: exact encodings from the `.x` rules, round trips (decode(encode(x)) == x) and
//! arbitrary bytes that never panic.

use proptest::prelude::*;
use virtnet_rpc::frame::{self, FRAME_MAX, FRAME_MIN};
use virtnet_rpc::remote::{
    AuthListRet, ConnectOpenArgs, DefineXmlFlagsArgs, DomainGetInfoRet, DomainXmlFlagsArgs,
    ListAllDomainsRet, NodeGetInfoRet,
};
use virtnet_rpc::virerror::{NonnullDomain, NonnullNetwork};
use virtnet_rpc::xdr::{from_bytes, to_bytes, Reader, Xdr};
use virtnet_rpc::{
    ErrorCode, Header, MessageType, Procedure, RemoteError, RpcError, Status, REMOTE_PROGRAM,
};

#[test]
fn scalars_are_big_endian_words() {
    assert_eq!(to_bytes(&1u32), [0, 0, 0, 1]);
    assert_eq!(to_bytes(&-2i32), [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(
        to_bytes(&0x0102_0304_0506_0708u64),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(to_bytes(&true), [0, 0, 0, 1]);
    assert_eq!(
        from_bytes::<bool>(&[0, 0, 0, 2]),
        Err(RpcError::BadEnum {
            what: "bool",
            value: 2
        })
    );
}

#[test]
fn strings_are_length_bytes_padding() {
    assert_eq!(to_bytes(&"QEMU".to_string()), b"\0\0\0\x04QEMU");
    assert_eq!(to_bytes(&"abcde".to_string()), b"\0\0\0\x05abcde\0\0\0");
    assert_eq!(to_bytes(&String::new()), [0, 0, 0, 0]);
    assert_eq!(to_bytes(&None::<String>), [0, 0, 0, 0]);
    assert_eq!(
        to_bytes(&Some("a".to_string())),
        b"\0\0\0\x01\0\0\0\x01a\0\0\0"
    );
    // Padding must be zero, the string UTF-8, the length within bounds and input.
    assert_eq!(
        from_bytes::<String>(b"\0\0\0\x01ab\0\0"),
        Err(RpcError::BadPadding)
    );
    assert_eq!(
        from_bytes::<String>(b"\0\0\0\x01\xff\0\0\0"),
        Err(RpcError::NotUtf8)
    );
    assert!(matches!(
        from_bytes::<String>(&[0x00, 0x10, 0x00, 0x01]),
        Err(RpcError::TooLong { .. })
    ));
    assert!(matches!(
        from_bytes::<String>(&[0, 0, 0, 8, b'a']),
        Err(RpcError::Truncated { .. })
    ));
}

#[test]
fn arrays_are_bounded_before_allocating() {
    // A count of 4 billion items with no bytes behind it: refused, nothing allocated.
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        r.array::<u32>(u32::MAX),
        Err(RpcError::Truncated { .. })
    ));
    let mut r = Reader::new(&[0, 0, 0, 21]);
    assert!(matches!(
        AuthListRet::decode(&mut r),
        Err(RpcError::TooLong { max: 20, .. })
    ));
    assert_eq!(
        to_bytes(&AuthListRet { types: vec![0] }),
        [0, 0, 0, 1, 0, 0, 0, 0]
    );
}

#[test]
fn a_call_frame_as_libvirt_sends_it() {
    // virsh's first call: REMOTE_PROC_AUTH_LIST (66), serial 0, empty payload.
    let bytes = [
        0, 0, 0, 28, 0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 66, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ];
    let (h, payload) = frame::decode_frame(&bytes).unwrap();
    assert_eq!(h.prog, REMOTE_PROGRAM);
    assert_eq!(Procedure::from_u32(h.proc_), Procedure::AuthList);
    assert_eq!(h.type_, MessageType::Call);
    assert!(payload.is_empty());
    assert_eq!(frame::encode_frame(&h, &[]), bytes);
}

#[test]
fn frame_lengths_are_checked() {
    assert_eq!(
        frame::body_len(27u32.to_be_bytes()),
        Err(RpcError::FrameTooShort { len: 27, min: 28 })
    );
    assert_eq!(frame::body_len(28u32.to_be_bytes()), Ok(24));
    assert_eq!(
        frame::body_len((FRAME_MAX).to_be_bytes()),
        Ok(16 * 1024 * 1024)
    );
    assert!(matches!(
        frame::body_len((17u32 << 20).to_be_bytes()),
        Err(RpcError::FrameTooLong { .. })
    ));
    assert_eq!(FRAME_MIN, 28);
}

#[test]
fn procedure_numbers_match_remote_protocol_x() {
    for (p, n) in [
        (Procedure::ConnectOpen, 1),
        (Procedure::NodeGetInfo, 6),
        (Procedure::ConnectGetCapabilities, 7),
        (Procedure::DomainGetInfo, 16),
        (Procedure::DomainLookupByName, 23),
        (Procedure::ConnectGetHostname, 59),
        (Procedure::ConnectSupportsFeature, 60),
        (Procedure::AuthList, 66),
        (Procedure::ConnectGetUri, 110),
        (Procedure::ConnectGetLibVersion, 157),
        (Procedure::DomainUpdateDeviceFlags, 174),
        (Procedure::DomainGetState, 212),
        (Procedure::ConnectListAllDomains, 273),
        (Procedure::ConnectListAllNetworks, 283),
        (Procedure::ConnectDomainEventCallbackRegisterAny, 316),
        (Procedure::DomainEventCallbackDeviceRemoved, 333),
        (Procedure::DomainInterfaceAddresses, 353),
        (Procedure::DomainSetBlockThreshold, 386),
        (Procedure::NetworkDefineXmlFlags, 432),
    ] {
        assert_eq!(p.to_u32(), n, "{p:?}");
        assert_eq!(Procedure::from_u32(n), p);
    }
    assert_eq!(Procedure::from_u32(9999), Procedure::Unknown(9999));
    assert_eq!(
        Procedure::DomainListAllSnapshots.to_string(),
        "REMOTE_PROC_DOMAIN_LIST_ALL_SNAPSHOTS (274)"
    );
}

#[test]
fn node_info_model_chars_take_four_bytes_each() {
    let mut model = [0u8; 32];
    model[..6].copy_from_slice(b"x86_64");
    let info = NodeGetInfoRet {
        model,
        memory: 1,
        cpus: 2,
        mhz: 3,
        nodes: 1,
        sockets: 1,
        cores: 2,
        threads: 1,
    };
    let b = to_bytes(&info);
    assert_eq!(b.len(), 32 * 4 + 8 + 6 * 4);
    assert_eq!(&b[..8], [0, 0, 0, b'x', 0, 0, 0, b'8']);
    assert_eq!(from_bytes::<NodeGetInfoRet>(&b), Ok(info));
}

#[test]
fn remote_error_layout() {
    let e = RemoteError::new(ErrorCode::NoSupport, "no");
    let b = to_bytes(&e);
    let mut want: Vec<u8> = Vec::new();
    for w in [
        [0, 0, 0, 3],       // code
        [0, 0, 0, 10],      // domain: VIR_FROM_QEMU
        [0, 0, 0, 1],       // message present
        [0, 0, 0, 2],       // its length
        [b'n', b'o', 0, 0], // "no", padded
        [0, 0, 0, 2],       // level: VIR_ERR_ERROR
        [0, 0, 0, 0],       // dom: null
        [0, 0, 0, 1],       // str1 present
        [0, 0, 0, 2],       // its length
        [b'n', b'o', 0, 0], // "no"
        [0, 0, 0, 0],       // str2: null
        [0, 0, 0, 0],       // str3: null
        [0, 0, 0, 0],       // int1
        [0, 0, 0, 0],       // int2
        [0, 0, 0, 0],       // net: null
    ] {
        want.extend_from_slice(&w);
    }
    assert_eq!(b, want);
    assert_eq!(from_bytes::<RemoteError>(&b), Ok(e));
}

fn domain() -> impl Strategy<Value = NonnullDomain> {
    (".{0,40}", any::<[u8; 16]>(), any::<i32>()).prop_map(|(name, uuid, id)| NonnullDomain {
        name,
        uuid,
        id,
    })
}

fn remote_error() -> impl Strategy<Value = RemoteError> {
    (
        any::<i32>(),
        any::<i32>(),
        proptest::option::of(".{0,60}"),
        any::<i32>(),
        proptest::option::of(domain()),
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,20}"),
        (
            proptest::option::of(".{0,20}"),
            any::<i32>(),
            any::<i32>(),
            proptest::option::of((".{0,20}", any::<[u8; 16]>())),
        ),
    )
        .prop_map(
            |(code, domain, message, level, dom, str1, str2, (str3, int1, int2, net))| {
                RemoteError {
                    code,
                    domain,
                    message,
                    level,
                    dom,
                    str1,
                    str2,
                    str3,
                    int1,
                    int2,
                    net: net.map(|(name, uuid)| NonnullNetwork { name, uuid }),
                }
            },
        )
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        0u32..6,
        any::<u32>(),
        0u32..3,
    )
        .prop_map(|(prog, vers, proc_, t, serial, s)| {
            let mut b = Vec::new();
            for v in [prog, vers, proc_, t, serial, s] {
                v.encode(&mut b);
            }
            from_bytes::<Header>(&b).unwrap()
        })
}

fn round_trip<T: Xdr + PartialEq + std::fmt::Debug>(v: &T) {
    let b = to_bytes(v);
    assert_eq!(b.len() % 4, 0, "XDR is made of 4-byte units");
    assert_eq!(&from_bytes::<T>(&b).unwrap(), v);
}

proptest! {
    #[test]
    fn scalars_round_trip(a: u32, b: i32, c: u64, d: i64, e: bool, u: [u8; 16]) {
        round_trip(&a);
        round_trip(&b);
        round_trip(&c);
        round_trip(&d);
        round_trip(&e);
        round_trip(&u);
    }

    #[test]
    fn strings_and_options_round_trip(s in ".{0,100}", o in proptest::option::of(".{0,9}")) {
        round_trip(&s);
        round_trip(&o);
    }

    #[test]
    fn structs_round_trip(
        h in header(),
        e in remote_error(),
        doms in proptest::collection::vec(domain(), 0..8),
        name in proptest::option::of(".{0,30}"),
        flags: u32,
        info in (any::<u8>(), any::<u64>(), any::<u64>(), any::<u16>(), any::<u64>()),
    ) {
        round_trip(&h);
        round_trip(&e);
        round_trip(&ListAllDomainsRet { ret: doms.len() as u32, domains: doms });
        round_trip(&ConnectOpenArgs { name, flags });
        round_trip(&DomainXmlFlagsArgs {
            dom: NonnullDomain { name: "d".into(), uuid: [7; 16], id: -1 },
            xml: "<interface/>".into(),
            flags,
        });
        round_trip(&DomainGetInfoRet {
            state: info.0, max_mem: info.1, memory: info.2, nr_virt_cpu: info.3, cpu_time: info.4,
        });
    }

    #[test]
    fn frames_round_trip(h in header(), payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let f = frame::encode_frame(&h, &payload);
        let (h2, p2) = frame::decode_frame(&f).unwrap();
        prop_assert_eq!(h2, h);
        prop_assert_eq!(p2, &payload[..]);
    }

    #[test]
    fn procedure_numbers_round_trip(n: u32) {
        prop_assert_eq!(Procedure::from_u32(n).to_u32(), n);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame::decode_frame(&bytes);
        let _ = frame::split_body(&bytes);
        let _ = from_bytes::<RemoteError>(&bytes);
        let _ = from_bytes::<ListAllDomainsRet>(&bytes);
        let _ = from_bytes::<NodeGetInfoRet>(&bytes);
        let _ = from_bytes::<ConnectOpenArgs>(&bytes);
        let _ = from_bytes::<AuthListRet>(&bytes);
        let _ = from_bytes::<DomainGetInfoRet>(&bytes);
        let _ = from_bytes::<DomainXmlFlagsArgs>(&bytes);
        let _ = from_bytes::<DefineXmlFlagsArgs>(&bytes);
        if bytes.len() >= 4 {
            let _ = frame::body_len([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
    }
}

#[test]
fn header_enums_are_checked() {
    let mut b = Vec::new();
    for v in [REMOTE_PROGRAM, 1, 1, 9, 0, 0] {
        v.encode(&mut b);
    }
    assert!(matches!(
        from_bytes::<Header>(&b),
        Err(RpcError::BadEnum {
            what: "message type",
            value: 9
        })
    ));
    let h = Header {
        prog: 1,
        vers: 1,
        proc_: 1,
        type_: MessageType::Call,
        serial: 7,
        status: Status::Ok,
    };
    let r = h.reply(Status::Error);
    assert_eq!(
        (r.type_, r.serial, r.status),
        (MessageType::Reply, 7, Status::Error)
    );
}

/// `remote_domain_interface_addresses_ret` as libvirt lays it out: the array count, then per
/// interface the name, the optional MAC (a 1 word then the string), the address array; and
/// `remote_domain_interface_stats_ret`'s eight hypers.
#[test]
fn interface_addresses_and_stats_layout() {
    use virtnet_rpc::remote::{
        DomainInterface, DomainInterfaceAddressesRet, DomainInterfaceStatsRet, DomainIpAddr,
    };
    let ret = DomainInterfaceAddressesRet {
        ifaces: vec![DomainInterface {
            name: "vnet0".into(),
            hwaddr: Some("52:54:00:00:00:01".into()),
            addrs: vec![DomainIpAddr {
                type_: 0,
                addr: "10.0.0.2".into(),
                prefix: 0,
            }],
        }],
    };
    let b = to_bytes(&ret);
    let mut want = Vec::new();
    1u32.encode(&mut want);
    "vnet0".to_string().encode(&mut want);
    1u32.encode(&mut want);
    "52:54:00:00:00:01".to_string().encode(&mut want);
    1u32.encode(&mut want);
    0i32.encode(&mut want);
    "10.0.0.2".to_string().encode(&mut want);
    0u32.encode(&mut want);
    assert_eq!(b, want);
    assert_eq!(from_bytes::<DomainInterfaceAddressesRet>(&b).unwrap(), ret);

    let s = DomainInterfaceStatsRet {
        rx_bytes: 1,
        rx_packets: 2,
        rx_errs: -1,
        rx_drop: 4,
        tx_bytes: 5,
        tx_packets: 6,
        tx_errs: -1,
        tx_drop: 8,
    };
    let b = to_bytes(&s);
    assert_eq!(b.len(), 64);
    assert_eq!(&b[16..24], &(-1i64).to_be_bytes());
    assert_eq!(from_bytes::<DomainInterfaceStatsRet>(&b).unwrap(), s);
}
