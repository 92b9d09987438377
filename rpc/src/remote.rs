//! The arguments and results (`remote_*_args`, `remote_*_ret` of `remote_protocol.x`) of the
//! procedures virtnetd serves, field for field. A procedure without arguments or result
//! has an empty payload.

use crate::error::Result;
use crate::virerror::NonnullDomain;
use crate::xdr::{put_array, Reader, Xdr};
use crate::xdr_struct;

/// `REMOTE_AUTH_NONE` (`enum remote_auth_type`).
pub const AUTH_NONE: i32 = 0;
/// `REMOTE_AUTH_TYPE_LIST_MAX`.
pub const AUTH_TYPE_LIST_MAX: u32 = 20;
/// `REMOTE_DOMAIN_LIST_MAX`: the most domains `CONNECT_LIST_ALL_DOMAINS` returns.
pub const DOMAIN_LIST_MAX: u32 = 16384;
/// `VIR_DRV_FEATURE_PROGRAM_KEEPALIVE` (`src/libvirt_internal.h`).
pub const FEATURE_PROGRAM_KEEPALIVE: i32 = 10;

xdr_struct! {
    /// `remote_connect_open_args`.
    pub struct ConnectOpenArgs {
        /// The URI the client opened (`qemu:///system`), may be null.
        pub name: Option<String>,
        /// `virConnectOpenFlags`.
        pub flags: u32,
    }
}

/// `remote_auth_list_ret`: the auth types the server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthListRet {
    /// `remote_auth_type types<REMOTE_AUTH_TYPE_LIST_MAX>`.
    pub types: Vec<i32>,
}

impl Xdr for AuthListRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.types);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(AuthListRet {
            types: r.array(AUTH_TYPE_LIST_MAX)?,
        })
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_args`.
    pub struct SupportsFeatureArgs {
        /// A `VIR_DRV_FEATURE_*`.
        pub feature: i32,
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_ret`.
    pub struct SupportsFeatureRet {
        /// 1 when supported.
        pub supported: i32,
    }
}

xdr_struct! {
    /// `remote_connect_get_type_ret`, `_get_hostname_ret`, `_get_uri_ret`,
    /// `_get_capabilities_ret`, `remote_domain_get_xml_desc_ret`, `remote_domain_get_os_type_ret`:
    /// one string.
    pub struct StringRet {
        /// The string.
        pub value: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_version_ret`, `_get_lib_version_ret`: one `unsigned hyper`.
    pub struct VersionRet {
        /// major * 1,000,000 + minor * 1,000 + micro.
        pub version: u64,
    }
}

/// `remote_node_get_info_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGetInfoRet {
    /// `char model[32]`: the CPU model (NUL-padded; XDR sends each char as 4 bytes).
    pub model: [u8; 32],
    /// Memory in KiB.
    pub memory: u64,
    /// Active CPUs.
    pub cpus: i32,
    /// CPU frequency in MHz.
    pub mhz: i32,
    /// NUMA nodes.
    pub nodes: i32,
    /// Sockets per node.
    pub sockets: i32,
    /// Cores per socket.
    pub cores: i32,
    /// Threads per core.
    pub threads: i32,
}

impl Xdr for NodeGetInfoRet {
    fn encode(&self, out: &mut Vec<u8>) {
        for &c in &self.model {
            i32::from(c as i8).encode(out);
        }
        self.memory.encode(out);
        for v in [
            self.cpus,
            self.mhz,
            self.nodes,
            self.sockets,
            self.cores,
            self.threads,
        ] {
            v.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut model = [0u8; 32];
        for c in &mut model {
            *c = i32::decode(r)? as u8;
        }
        Ok(NodeGetInfoRet {
            model,
            memory: u64::decode(r)?,
            cpus: i32::decode(r)?,
            mhz: i32::decode(r)?,
            nodes: i32::decode(r)?,
            sockets: i32::decode(r)?,
            cores: i32::decode(r)?,
            threads: i32::decode(r)?,
        })
    }
}

xdr_struct! {
    /// `remote_connect_list_all_domains_args`.
    pub struct ListAllDomainsArgs {
        /// Whether the client wants the list (else only the count).
        pub need_results: i32,
        /// `virConnectListAllDomainsFlags`.
        pub flags: u32,
    }
}

/// `remote_connect_list_all_domains_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAllDomainsRet {
    /// `remote_nonnull_domain domains<REMOTE_DOMAIN_LIST_MAX>`.
    pub domains: Vec<NonnullDomain>,
    /// The count.
    pub ret: u32,
}

impl Xdr for ListAllDomainsRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.domains);
        self.ret.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ListAllDomainsRet {
            domains: r.array(DOMAIN_LIST_MAX)?,
            ret: u32::decode(r)?,
        })
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_name_args`.
    pub struct LookupByNameArgs {
        /// The name.
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_uuid_args`.
    pub struct LookupByUuidArgs {
        /// The UUID.
        pub uuid: [u8; 16],
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_id_args`.
    pub struct LookupByIdArgs {
        /// The id.
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_*_ret`, `remote_domain_define_xml(_flags)_ret`,
    /// `remote_domain_create_with_flags_ret`.
    pub struct DomainRet {
        /// The domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// The arguments of procedures that take only a domain (`remote_domain_get_info_args`,
    /// `_is_active_args`, `_is_persistent_args`, `_get_os_type_args`, `_get_autostart_args`).
    pub struct DomainArgs {
        /// The domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `remote_domain_get_state_args`, `_get_xml_desc_args`, `_create_with_flags_args`,
    /// `_destroy_flags_args`, `_undefine_flags_args`: a domain and flags.
    pub struct DomainFlagsArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The procedure's flags.
        pub flags: u32,
    }
}

/// `remote_domain_get_info_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainGetInfoRet {
    /// `unsigned char state`: a `virDomainState` (4 bytes on the wire).
    pub state: u8,
    /// Maximum memory in KiB.
    pub max_mem: u64,
    /// Current memory in KiB.
    pub memory: u64,
    /// `unsigned short nrVirtCpu` (4 bytes on the wire).
    pub nr_virt_cpu: u16,
    /// CPU time in nanoseconds.
    pub cpu_time: u64,
}

impl Xdr for DomainGetInfoRet {
    fn encode(&self, out: &mut Vec<u8>) {
        u32::from(self.state).encode(out);
        self.max_mem.encode(out);
        self.memory.encode(out);
        u32::from(self.nr_virt_cpu).encode(out);
        self.cpu_time.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(DomainGetInfoRet {
            state: u32::decode(r)? as u8,
            max_mem: u64::decode(r)?,
            memory: u64::decode(r)?,
            nr_virt_cpu: u32::decode(r)? as u16,
            cpu_time: u64::decode(r)?,
        })
    }
}

xdr_struct! {
    /// `remote_domain_get_state_ret`.
    pub struct DomainGetStateRet {
        /// A `virDomainState`.
        pub state: i32,
        /// The state's reason (`virDomainRunningReason`, ...).
        pub reason: i32,
    }
}

xdr_struct! {
    /// `remote_domain_define_xml_args`.
    pub struct DefineXmlArgs {
        /// The domain XML.
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_domain_define_xml_flags_args`.
    pub struct DefineXmlFlagsArgs {
        /// The domain XML.
        pub xml: String,
        /// `virDomainDefineFlags`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_attach_device_args`, `remote_domain_detach_device_args`.
    pub struct DomainXmlArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The device XML.
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_domain_attach_device_flags_args`, `_detach_device_flags_args`,
    /// `_update_device_flags_args`.
    pub struct DomainXmlFlagsArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The device XML.
        pub xml: String,
        /// `virDomainDeviceModifyFlags` (`VIR_DOMAIN_AFFECT_LIVE` 1, `_CONFIG` 2).
        pub flags: u32,
    }
}

xdr_struct! {
    /// One `int` result: `remote_domain_is_active_ret`, `_is_persistent_ret`,
    /// `_get_autostart_ret`.
    pub struct IntRet {
        /// The value.
        pub value: i32,
    }
}

/// The 16 bytes of a UUID written as text (`8-4-4-4-12` hex digits, dashes optional).
pub fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let pair = std::str::from_utf8(&hex[2 * i..2 * i + 2]).ok()?;
        *o = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// `REMOTE_DOMAIN_INTERFACE_MAX`.
pub const DOMAIN_INTERFACE_MAX: u32 = 2048;
/// `REMOTE_DOMAIN_IP_ADDR_MAX`.
pub const DOMAIN_IP_ADDR_MAX: u32 = 2048;
/// `VIR_IP_ADDR_TYPE_IPV4`.
pub const IP_ADDR_TYPE_IPV4: i32 = 0;
/// `VIR_IP_ADDR_TYPE_IPV6`.
pub const IP_ADDR_TYPE_IPV6: i32 = 1;

xdr_struct! {
    /// `remote_domain_interface_stats_args`.
    pub struct DomainInterfaceStatsArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The interface (`path`: its target dev or MAC).
        pub device: String,
    }
}

xdr_struct! {
    /// `remote_domain_interface_stats_ret`: the guest's view; -1 for a counter not kept.
    pub struct DomainInterfaceStatsRet {
        /// Bytes received.
        pub rx_bytes: i64,
        /// Packets received.
        pub rx_packets: i64,
        /// Receive errors.
        pub rx_errs: i64,
        /// Receive drops.
        pub rx_drop: i64,
        /// Bytes sent.
        pub tx_bytes: i64,
        /// Packets sent.
        pub tx_packets: i64,
        /// Transmit errors.
        pub tx_errs: i64,
        /// Transmit drops.
        pub tx_drop: i64,
    }
}

xdr_struct! {
    /// `remote_domain_interface_addresses_args`.
    pub struct DomainInterfaceAddressesArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// `virDomainInterfaceAddressesSource` (0 lease, 1 agent, 2 arp).
        pub source: u32,
        /// No flags are defined.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_ip_addr`.
    pub struct DomainIpAddr {
        /// `virIPAddrType`.
        pub type_: i32,
        /// The address.
        pub addr: String,
        /// Prefix length.
        pub prefix: u32,
    }
}

/// `remote_domain_interface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInterface {
    /// Interface name.
    pub name: String,
    /// MAC address, may be null.
    pub hwaddr: Option<String>,
    /// `addrs<REMOTE_DOMAIN_IP_ADDR_MAX>`.
    pub addrs: Vec<DomainIpAddr>,
}

impl Xdr for DomainInterface {
    fn encode(&self, out: &mut Vec<u8>) {
        self.name.encode(out);
        self.hwaddr.encode(out);
        put_array(out, &self.addrs);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(DomainInterface {
            name: String::decode(r)?,
            hwaddr: Option::<String>::decode(r)?,
            addrs: r.array(DOMAIN_IP_ADDR_MAX)?,
        })
    }
}

/// `remote_domain_interface_addresses_ret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInterfaceAddressesRet {
    /// `ifaces<REMOTE_DOMAIN_INTERFACE_MAX>`.
    pub ifaces: Vec<DomainInterface>,
}

impl Xdr for DomainInterfaceAddressesRet {
    fn encode(&self, out: &mut Vec<u8>) {
        put_array(out, &self.ifaces);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(DomainInterfaceAddressesRet {
            ifaces: r.array(DOMAIN_INTERFACE_MAX)?,
        })
    }
}
