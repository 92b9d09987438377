//! `type='network'` NICs on a virtnet-vswitch network: the port name virtnet gives each NIC,
//! and the rules about a network NIC's `<source>` (no port groups, no foreign port ids).

use virtnet_conf::interface::InterfaceKind;
use virtnet_conf::xml::Pos;
use virtnet_conf::Interface;

use super::{Operation, Refusal, Rule};

/// The longest switch port name `virtnet-vswitch` accepts.
const MAX_PORT_NAME: usize = 64;

/// The switch port (and socket file) name of the NIC with `mac` of VM `vm` on a
/// virtnet-vswitch network: `VM-MAC` with the MAC's colons dropped. The switch takes 1 to 64
/// characters without spaces, VM names may have spaces and be longer, so whitespace becomes
/// '_' and the VM part is cut to fit (the MAC, unique among NICs, stays whole). Live XML shows
/// it as `<source portid>`.
pub fn port_name(vm: &str, mac: &str) -> String {
    let mac = mac.replace(':', "");
    let room = MAX_PORT_NAME.saturating_sub(mac.len() + 1);
    let mut vm_part = String::new();
    for c in vm.chars() {
        let c = if c.is_whitespace() { '_' } else { c };
        if vm_part.len() + c.len_utf8() > room {
            break;
        }
        vm_part.push(c);
    }
    format!("{vm_part}-{mac}")
}

/// The refusals of a `type='network'` NIC's `<source>` ([`Rule::NetworkPortgroup`],
/// [`Rule::NetworkForeignPortid`]) for VM `vm`: what virtnetd's network resolution checks
/// again for definitions stored before these rules existed.
pub(super) fn network_source(op: Operation, vm: &str, i: &Interface) -> Vec<Refusal> {
    [
        (Rule::NetworkPortgroup, find_portgroup(i)),
        (Rule::NetworkNotOvs, not_ovs(i)),
        (Rule::NetworkForeignPortid, network_portid(vm, i)),
    ]
    .into_iter()
    .filter_map(|(r, f)| f.map(|(pos, m)| super::interface::refusal(r, op, i, pos, m)))
    .collect()
}

/// A network NIC's `<source portgroup>`.
pub(super) fn find_portgroup(i: &Interface) -> Option<(Pos, String)> {
    match &i.kind {
        InterfaceKind::Network {
            portgroup: Some(g),
            network,
            ..
        } => Some((
            network.pos,
            format!(
                "<source portgroup='{}'>: virtnet-vswitch networks have no port groups; put \
                 the settings (<vlan>, <bandwidth>, <port>, <filterref>) on the interface and \
                 remove portgroup",
                g.escape_default()
            ),
        )),
        _ => None,
    }
}

/// What only an Open vSwitch network takes, on a NIC resolved onto a virtnet-vswitch network:
/// `<source bridge>` (live XML of an Open vSwitch network's NIC) and `<virtualport>`.
pub(super) fn not_ovs(i: &Interface) -> Option<(Pos, String)> {
    let InterfaceKind::Network {
        network, bridge, ..
    } = &i.kind
    else {
        return None;
    };
    if let Some(b) = bridge {
        return Some((
            network.pos,
            format!(
                "<source bridge='{}'>: network '{}' is a virtnet-vswitch network, which has no \
                 bridge (only an Open vSwitch network's NICs show one); remove bridge",
                b.escape_default(),
                network.value
            ),
        ));
    }
    // Other types are refused whatever the network (Rule::VirtualPortNotSupported).
    let vp = i
        .virtualport
        .as_ref()
        .filter(|v| matches!(v.kind.as_deref(), None | Some("openvswitch")))?;
    Some((
        vp.pos,
        format!(
            "<virtualport>: network '{}' is a virtnet-vswitch network, whose ports take no \
             virtual port profile (an Open vSwitch network, <forward mode='bridge'/> with \
             <virtualport type='openvswitch'/>, does); remove <virtualport>",
            network.value
        ),
    ))
}

/// A network NIC's `<source portid>` other than the port virtnet names (`VM-MAC`, as live XML
/// shows it); `vm` is the VM's name.
pub(super) fn network_portid(vm: &str, i: &Interface) -> Option<(Pos, String)> {
    let InterfaceKind::Network {
        portid: Some(id),
        network,
        ..
    } = &i.kind
    else {
        return None;
    };
    let own = i.mac().map(|m| port_name(vm, &m.to_string()));
    if own.as_deref() == Some(id.as_str()) {
        return None;
    }
    let name = own.map_or_else(
        || "VM-MAC, and this NIC has no MAC yet".to_string(),
        |p| format!("'{p}'"),
    );
    Some((
        network.pos,
        format!(
            "<source portid='{}'>: virtnet names the port after the VM and MAC ({name}); \
             remove the attribute or give that name",
            id.escape_default()
        ),
    ))
}
