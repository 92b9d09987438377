//! update-device: what a device XML may change on an existing NIC. The link state (QMP
//! `set_link`) and a vhost-user NIC's socket (`<source path mode>`). QEMU cannot swap a
//! vhost-user NIC's chardev ("Chardev user does not support chardev hotswap"), so a live socket
//! change needs an explicit replug.

use virtnet_conf::interface::{InterfaceKind, Leaf, LinkState, VhostUserSocket};
use virtnet_conf::xml::write_document;
use virtnet_conf::Interface;

use super::interface::refusal;
use super::{Operation, Refusal, Rule};

/// What an update changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicUpdate {
    /// The new interface (the old one with the changes applied).
    pub new: Interface,
    /// The new link state, when it changes.
    pub link: Option<bool>,
    /// Whether the vhost-user socket changes.
    pub socket: bool,
    /// Whether `<bandwidth>` changes (a tap or macvtap NIC: type bridge, ethernet, direct); `new.bandwidth` is
    /// the whole new setting (`None`: the limits go).
    pub bandwidth: bool,
    /// Whether a `type='network'` NIC's switch port policy (`<bandwidth>`, `<vlan>`,
    /// `<port isolated>`) changes: the switch replaces it in place (`set-policy`).
    pub port_policy: bool,
}

impl NicUpdate {
    /// The changes in words (`vhost-user socket /s (mode client)`, `link down`).
    pub fn words(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.socket {
            if let Some((p, m)) = self.new.vhostuser_socket() {
                v.push(format!("vhost-user socket {p} (mode {})", m.as_str()));
            }
        }
        if let Some(up) = self.link {
            v.push(format!("link {}", if up { "up" } else { "down" }));
        }
        if self.bandwidth {
            let rate = |what: &str, r: &Option<virtnet_conf::interface::Rate>| {
                r.as_ref().map(|r| {
                    let mut s = format!("{what} average {}", r.average.unwrap_or(0));
                    if let Some(p) = r.peak {
                        s.push_str(&format!(" peak {p}"));
                    }
                    if let Some(b) = r.burst {
                        s.push_str(&format!(" burst {b}"));
                    }
                    s
                })
            };
            let parts: Vec<String> = self
                .new
                .bandwidth
                .iter()
                .flat_map(|b| [rate("inbound", &b.inbound), rate("outbound", &b.outbound)])
                .flatten()
                .collect();
            v.push(if parts.is_empty() {
                "bandwidth removed".into()
            } else {
                format!("bandwidth {}", parts.join(", "))
            });
        }
        if self.port_policy {
            v.push("switch port policy (bandwidth, vlan, port isolation)".into());
        }
        v
    }
}

/// What identifies a vhost-user socket: path, mode and reconnect policy, without the positions
/// they were read at (the given device XML and the stored domain are different documents).
type SocketKey<'a> = (&'a str, &'static str, Option<(bool, Option<u32>)>);

fn socket_key(s: &Option<VhostUserSocket>) -> Option<SocketKey<'_>> {
    s.as_ref().map(|s| {
        (
            s.path.value.as_str(),
            s.mode.as_str(),
            s.reconnect.as_ref().map(|r| (r.enabled, r.timeout)),
        )
    })
}

/// A NIC's `<bandwidth>`, `<vlan>` and `<port>` as XML (positions left out).
fn policy_xml(i: &Interface) -> Vec<String> {
    i.to_element()
        .children
        .iter()
        .filter(|c| matches!(c.name.as_str(), "bandwidth" | "vlan" | "port"))
        .map(write_document)
        .collect()
}

fn render(i: &Interface) -> String {
    write_document(&i.to_element())
}

/// Compares `old` with the device XML's `given` (what it leaves out stays as it is) and says
/// what changes, or refuses: anything but the link state and a vhost-user socket
/// ([`Rule::UpdateNotChangeable`]), a hostdev NIC's link ([`Rule::HostdevLinkNotChangeable`]),
/// and when `live` a socket change without `replug` ([`Rule::SocketChangeNeedsReplug`]).
pub fn validate_update(
    old: &Interface,
    given: &Interface,
    live: bool,
    replug: bool,
) -> Result<NicUpdate, Refusal> {
    let mut want = given.clone();
    if want.mac.is_none() {
        want.mac.clone_from(&old.mac);
    }
    if want.alias.is_none() {
        want.alias.clone_from(&old.alias);
    }
    if want.target.is_none() {
        want.target.clone_from(&old.target);
    }
    if want.address.is_none() {
        want.address.clone_from(&old.address);
    }
    if want.model.is_none() {
        want.model.clone_from(&old.model);
    }
    let mut applied = old.clone();
    let link = (want.link_up() != old.link_up()).then(|| want.link_up());
    if let Some(up) = link {
        applied.link = Some(Leaf::new(if up { LinkState::Up } else { LinkState::Down }));
    }
    want.link.clone_from(&applied.link);
    let socket = match (&old.kind, &want.kind) {
        (InterfaceKind::VhostUser { socket: a }, InterfaceKind::VhostUser { socket: b })
            if socket_key(a) != socket_key(b) =>
        {
            applied.kind = want.kind.clone();
            true
        }
        _ => false,
    };
    // `<bandwidth>` of a tap or macvtap NIC: its qdisc and nft limit are replaced in place.
    // Not on an Open vSwitch port, where they would not be enforced (Rule::OvsPortSetting
    // refuses them at define, start and attach).
    let mut bandwidth = false;
    if matches!(
        old.kind,
        InterfaceKind::Bridge { .. } | InterfaceKind::Ethernet | InterfaceKind::Direct { .. }
    ) && !super::settings::ovs_port(old)
    {
        let mut with = applied.clone();
        with.bandwidth.clone_from(&want.bandwidth);
        if render(&with) != render(&applied) {
            applied = with;
            bandwidth = true;
        }
    }
    // A NIC on a virtnet-vswitch network: its switch port takes a new policy in place.
    let port_policy =
        matches!(old.kind, InterfaceKind::Network { .. }) && policy_xml(old) != policy_xml(&want);
    if port_policy {
        applied.bandwidth.clone_from(&want.bandwidth);
        applied.vlan.clone_from(&want.vlan);
        applied.port_isolated.clone_from(&want.port_isolated);
    }
    let refuse =
        |rule, message: String| Err(refusal(rule, Operation::Update, old, given.pos, message));
    if render(&applied) != render(&want) {
        let (a, b) = (applied.to_element(), want.to_element());
        let mut differ: Vec<String> = Vec::new();
        if a.attrs != b.attrs {
            differ.push("the interface type".into());
        }
        for c in a.children.iter().chain(&b.children) {
            let name = format!("<{}>", c.name);
            let of = |e: &virtnet_conf::xml::Element| {
                e.children
                    .iter()
                    .filter(|x| x.name == c.name)
                    .map(write_document)
                    .collect::<Vec<_>>()
            };
            if of(&a) != of(&b) && !differ.contains(&name) {
                differ.push(name);
            }
        }
        return refuse(
            Rule::UpdateNotChangeable,
            format!(
                "update-device cannot change {}: it changes a NIC's <link state>, a \
                 vhost-user NIC's <source> socket, a bridge, ethernet or direct NIC's \
                 <bandwidth> and a network NIC's <bandwidth>, <vlan> and <port>; for anything \
                 else detach the NIC and attach it again",
                differ.join(", ")
            ),
        );
    }
    if link.is_some() && old.is_hostdev() {
        return refuse(
            Rule::HostdevLinkNotChangeable,
            "the link state of a hostdev NIC cannot be changed: the VF is a vfio-pci device \
             without a QEMU link; set the VF's link through its PF on the host (ip link set PF \
             vf N state disable)"
                .into(),
        );
    }
    if live && socket && !replug {
        return refuse(
            Rule::SocketChangeNeedsReplug,
            "QEMU cannot move a running NIC to another vhost-user socket in place (its chardev \
             cannot be swapped: \"Chardev user does not support chardev hotswap\"). Add \
             --replug (API: \"replug\": true) to unplug it and plug it again on the new socket, \
             keeping its MAC, alias and PCI address; the guest sees its link go down and up"
                .into(),
        );
    }
    Ok(NicUpdate {
        new: applied,
        link,
        socket,
        bandwidth,
        port_policy,
    })
}
