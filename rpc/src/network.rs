//! The arguments and results of the network procedures (`remote_network_*_args`/`_ret`,
//! `remote_connect_*networks*` of `remote_protocol.x`), field for field. Procedures taking a
//! name, a UUID or an XML string reuse [`crate::remote`]'s `LookupByNameArgs`,
//! `LookupByUuidArgs`, `DefineXmlArgs` and `DefineXmlFlagsArgs` (the same layouts); those
//! answering an `int` or a string use `IntRet` and `StringRet`.

use crate::error::Result;
use crate::virerror::NonnullNetwork;
use crate::xdr::{put_array, Reader, Xdr};
use crate::xdr_struct;

/// `REMOTE_NETWORK_LIST_MAX`: the most networks (or names) one answer carries.
pub const NETWORK_LIST_MAX: u32 = 16384;

xdr_struct! {
    /// The arguments of the procedures that take only a network: `remote_network_create_args`,
    /// `_destroy_args`, `_undefine_args`, `_get_autostart_args`, `_get_bridge_name_args`,
    /// `_is_active_args`, `_is_persistent_args`.
    pub struct NetworkArgs {
        /// The network.
        pub net: NonnullNetwork,
    }
}

xdr_struct! {
    /// `remote_network_lookup_by_name_ret`, `_lookup_by_uuid_ret`, `_define_xml_ret`,
    /// `_define_xml_flags_ret`, `_create_xml_ret`: one network.
    pub struct NetworkRet {
        /// The network.
        pub net: NonnullNetwork,
    }
}

xdr_struct! {
    /// `remote_network_get_xml_desc_args`.
    pub struct NetworkGetXmlDescArgs {
        /// The network.
        pub net: NonnullNetwork,
        /// `virNetworkXMLFlags` (`VIR_NETWORK_XML_INACTIVE` = 1).
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_set_autostart_args`.
    pub struct NetworkSetAutostartArgs {
        /// The network.
        pub net: NonnullNetwork,
        /// Non-zero: start the network when the daemon starts.
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_networks_args`.
    pub struct ListAllNetworksArgs {
        /// Whether the client wants the list (else only the count).
        pub need_results: i32,
        /// `virConnectListAllNetworksFlags`.
        pub flags: u32,
    }
}

/// `remote_connect_list_all_networks_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAllNetworksRet {
    /// `remote_nonnull_network nets<REMOTE_NETWORK_LIST_MAX>`.
    pub nets: Vec<NonnullNetwork>,
    /// The count.
    pub ret: u32,
}

impl Xdr for ListAllNetworksRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.nets);
        self.ret.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ListAllNetworksRet {
            nets: r.array(NETWORK_LIST_MAX)?,
            ret: u32::decode(r)?,
        })
    }
}

xdr_struct! {
    /// `remote_connect_list_networks_args`, `remote_connect_list_defined_networks_args`.
    pub struct ListNetworkNamesArgs {
        /// The most names the client takes.
        pub maxnames: i32,
    }
}

/// `remote_connect_list_networks_ret`, `remote_connect_list_defined_networks_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListNetworkNamesRet {
    /// `remote_nonnull_string names<REMOTE_NETWORK_LIST_MAX>`.
    pub names: Vec<String>,
}

impl Xdr for ListNetworkNamesRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.names);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ListNetworkNamesRet {
            names: r.array(NETWORK_LIST_MAX)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::{from_bytes, to_bytes};

    fn net(name: &str, b: u8) -> NonnullNetwork {
        NonnullNetwork {
            name: name.into(),
            uuid: [b; 16],
        }
    }

    #[test]
    fn layouts_are_the_x_files() {
        // remote_nonnull_network: string (length, bytes, padding), then 16 opaque bytes.
        let bytes = to_bytes(&NetworkSetAutostartArgs {
            net: net("sw0", 7),
            autostart: 1,
        });
        let mut want = vec![0, 0, 0, 3, b's', b'w', b'0', 0];
        want.extend([7u8; 16]);
        want.extend([0, 0, 0, 1]);
        assert_eq!(bytes, want);
        let ret = ListAllNetworksRet {
            nets: vec![net("a", 1), net("b", 2)],
            ret: 2,
        };
        let bytes = to_bytes(&ret);
        assert_eq!(&bytes[..4], &[0, 0, 0, 2]);
        assert_eq!(&bytes[bytes.len() - 4..], &[0, 0, 0, 2]);
        assert_eq!(from_bytes::<ListAllNetworksRet>(&bytes).unwrap(), ret);
        let names = ListNetworkNamesRet {
            names: vec!["a".into(), "bcdef".into()],
        };
        assert_eq!(
            from_bytes::<ListNetworkNamesRet>(&to_bytes(&names)).unwrap(),
            names
        );
        let a = NetworkGetXmlDescArgs {
            net: net("x", 0),
            flags: 1,
        };
        assert_eq!(
            from_bytes::<NetworkGetXmlDescArgs>(&to_bytes(&a)).unwrap(),
            a
        );
    }

    #[test]
    fn lists_over_the_bound_or_the_input_are_refused() {
        let mut over = (NETWORK_LIST_MAX + 1).to_be_bytes().to_vec();
        over.extend([0u8; 8]);
        assert!(from_bytes::<ListNetworkNamesRet>(&over).is_err());
        // A count the bytes cannot hold: refused before allocating.
        assert!(from_bytes::<ListAllNetworksRet>(&[0, 0, 0x10, 0, 0, 0, 0, 0]).is_err());
        // A truncated network.
        assert!(from_bytes::<NetworkArgs>(&[0, 0, 0, 1, b'a', 0, 0, 0, 1, 2]).is_err());
    }
}
