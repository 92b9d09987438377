//! The netlink half of VF handling: read and set a VF's MAC/VLAN through its PF.

use netlink_packet_route::link::{LinkAttribute, LinkVfInfo, VfInfo, VfInfoMac, VfInfoVlan};

use crate::error::{HostError, Result};
use crate::netlink::{self, LinkRef, NetlinkTransport};
use virtnet_conf::interface::MacAddr;

/// A VF's MAC and VLAN as its PF reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VfConfig {
    pub mac: MacAddr,
    pub vlan: u16,
    pub qos: u32,
}

/// RTM_GETLINK on the PF with IFLA_EXT_MASK=RTEXT_FILTER_VF: the PF's ifindex and VF
/// `index`'s configuration from IFLA_VFINFO_LIST.
pub(crate) fn read_vf(nl: &dyn NetlinkTransport, pf: &str, index: u32) -> Result<(u32, VfConfig)> {
    let m = netlink::get_link(nl, LinkRef::Name(pf), true)
        .map_err(|e| HostError::netlink(format!("read VF {index} of '{pf}'"), e))?
        .ok_or_else(|| HostError::LinkNotFound {
            name: pf.to_string(),
        })?;
    let mut mac = None;
    let mut vlan = None;
    for a in &m.attributes {
        let LinkAttribute::VfInfoList(list) = a else {
            continue;
        };
        for LinkVfInfo(infos) in list {
            for i in infos {
                match i {
                    VfInfo::Mac(x) if x.vf_id == index => mac = MacAddr::from_slice(&x.mac),
                    VfInfo::Vlan(x) if x.vf_id == index => vlan = Some((x.vlan_id as u16, x.qos)),
                    _ => {}
                }
            }
        }
    }
    match (mac, vlan) {
        (Some(mac), vlan) => {
            let (vlan, qos) = vlan.unwrap_or((0, 0));
            Ok((m.header.index, VfConfig { mac, vlan, qos }))
        }
        _ => Err(HostError::VfInfoMissing {
            pf: pf.to_string(),
            index,
        }),
    }
}

/// RTM_SETLINK on the PF with IFLA_VFINFO_LIST/IFLA_VF_INFO/IFLA_VF_MAC.
pub(crate) fn set_vf_mac(
    nl: &dyn NetlinkTransport,
    pf_index: u32,
    pf: &str,
    index: u32,
    mac: MacAddr,
) -> Result<()> {
    set_vf(nl, pf_index, VfInfo::Mac(VfInfoMac::new(index, &mac.0)))
        .map_err(|e| HostError::netlink(format!("set MAC {mac} on VF {index} of '{pf}'"), e))
}

/// RTM_SETLINK on the PF with IFLA_VFINFO_LIST/IFLA_VF_INFO/IFLA_VF_VLAN (0 = no VLAN).
pub(crate) fn set_vf_vlan(
    nl: &dyn NetlinkTransport,
    pf_index: u32,
    pf: &str,
    index: u32,
    vlan: u16,
    qos: u32,
) -> Result<()> {
    set_vf(
        nl,
        pf_index,
        VfInfo::Vlan(VfInfoVlan::new(index, vlan as u32, qos)),
    )
    .map_err(|e| HostError::netlink(format!("set VLAN {vlan} on VF {index} of '{pf}'"), e))
}

fn set_vf(nl: &dyn NetlinkTransport, pf_index: u32, info: VfInfo) -> std::io::Result<()> {
    let attrs = vec![LinkAttribute::VfInfoList(vec![LinkVfInfo(vec![info])])];
    netlink::set_link(nl, pf_index, attrs, None)
}
