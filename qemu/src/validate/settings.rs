//! The rules about `<interface>` settings that something must enforce: each setting is
//! accepted only on the NIC types where virtnet (or the switch) applies it, refused on the
//! others with what to do instead. Which component enforces what is listed, per setting and
//! type, in `conf/interface-account.tsv` (shown as `docs/interface-account.md`).

use std::fmt::Write as _;

use virtnet_conf::interface::{InterfaceKind, InterfaceType, SocketMode};
use virtnet_conf::xml::Pos;
use virtnet_conf::Interface;

use super::interface::Ctx;
use super::{Operation, Rule};

/// The tap device virtnet opens (`<backend tap>` naming it changes nothing).
const TUN: &str = "/dev/net/tun";
/// The vhost-net device virtnet opens (`<backend vhost>` naming it changes nothing).
const VHOST_NET: &str = "/dev/vhost-net";

/// Whether the NIC has a port on a virtnet-vswitch network, where the switch enforces VLANs,
/// isolation, bandwidth and filters: `type='network'`, or at start and attach a vhost-user NIC
/// QEMU listens on (virtnetd hands `type='network'` NICs to start and attach resolved onto the
/// switch port's socket; a vhost-user NIC defined as such was checked at define).
fn on_switch(op: Operation, i: &Interface) -> bool {
    match &i.kind {
        InterfaceKind::Network { .. } => true,
        InterfaceKind::VhostUser { socket: Some(s) } => {
            op != Operation::Define && s.mode == SocketMode::Server
        }
        _ => false,
    }
}

/// Whether the NIC is a tap virtnet adds to an Open vSwitch bridge (`type='bridge'` with
/// `<virtualport type='openvswitch'>`), where OVS applies `<vlan>` (the port's tag/trunks).
pub(crate) fn ovs_port(i: &Interface) -> bool {
    i.type_() == InterfaceType::Bridge && i.virtualport.as_ref().is_some_and(|v| v.is_openvswitch())
}

/// Whether the host side is a tap or macvtap virtnet makes (QEMU gets its fd).
fn host_tap(t: InterfaceType) -> bool {
    matches!(
        t,
        InterfaceType::Bridge | InterfaceType::Ethernet | InterfaceType::Direct
    )
}

/// What to do instead, per type, for a host-side setting only taps and switch ports take.
fn instead(ty: InterfaceType) -> &'static str {
    match ty {
        InterfaceType::VhostUser => {
            "a vhost-user back end virtnet does not run applies its own policy: set it there, \
             or use type='network' on a virtnet-vswitch network"
        }
        InterfaceType::Hostdev => "a VF's traffic never passes through the host: set it on the PF",
        _ => "use type='bridge' or type='network', or remove it",
    }
}

/// Where the rule finds a problem, and its message; `None` when it does not apply.
pub(super) fn find(rule: Rule, c: &Ctx<'_>) -> Option<(Pos, String)> {
    let i = c.iface;
    let ty = i.type_();
    let op = c.op;
    match rule {
        Rule::UnknownContent => {
            let unknown = i.unknown_content();
            let first = unknown.first()?;
            let mut names = String::new();
            for (n, u) in unknown.iter().enumerate() {
                let sep = if n == 0 { "" } else { ", " };
                let _ = write!(names, "{sep}{}", u.what);
                if u.pos.is_known() && n > 0 {
                    let _ = write!(names, " ({}:{})", u.pos.line, u.pos.col);
                }
            }
            Some((
                first.pos,
                format!(
                    "{names}: not part of libvirt's <interface> schema as virtnet reads it, so \
                     nothing would apply it; remove it or fix its spelling"
                ),
            ))
        }
        Rule::VirtualPortNotSupported => {
            let vp = i.virtualport.as_ref()?;
            if ovs_port(i) {
                // Nothing would apply an 802.1Qbg parameter to an Open vSwitch port.
                let name = vp.qbg_param()?;
                return Some((
                    vp.pos,
                    format!(
                        "<parameters {name}='...'> is an 802.1Qbg parameter: an Open vSwitch \
                         port takes interfaceid and profileid; remove it"
                    ),
                ));
            }
            // On a network: what its kind takes, seen when the NIC is resolved (an Open
            // vSwitch network merges it, a virtnet-vswitch one refuses it: NetworkNotOvs).
            if ty == InterfaceType::Network
                && matches!(vp.kind.as_deref(), None | Some("openvswitch"))
            {
                return None;
            }
            let why = match vp.kind.as_deref() {
                Some("openvswitch") => {
                    "an Open vSwitch port is a tap virtnet adds to an OVS bridge: use \
                     type='bridge' with <source bridge='OVS-BRIDGE'/>, or type='network' on an \
                     Open vSwitch network (<forward mode='bridge'/> with <virtualport \
                     type='openvswitch'/>)"
                }
                Some("802.1Qbg") => {
                    "802.1Qbg (VEPA/VDP) port profiles need a VDP daemon (lldpad) virtnet does \
                     not talk to"
                }
                Some("802.1Qbh") => {
                    "802.1Qbh port profiles need Cisco VM-FEX hardware support virtnet does not \
                     have"
                }
                Some("midonet") => "MidoNet ports need a MidoNet agent virtnet does not talk to",
                _ => {
                    "virtnet networks and bridges use no virtual port profiles (an Open \
                     vSwitch bridge needs type='openvswitch')"
                }
            };
            Some((
                vp.pos,
                format!(
                    "<virtualport type='{}'>: {why}; or use type='bridge' on a Linux bridge or \
                     type='network' on a virtnet-vswitch network without <virtualport>",
                    vp.kind.as_deref().unwrap_or("")
                ),
            ))
        }
        Rule::OvsPortSetting => {
            if !ovs_port(i) {
                return None;
            }
            let bw = i
                .bandwidth
                .as_ref()
                .filter(|b| b.inbound.is_some() || b.outbound.is_some());
            let (pos, what) = if let Some(b) = bw {
                (b.pos, "<bandwidth>")
            } else if let Some(f) = &i.filterref {
                (f.pos, "<filterref>")
            } else if let Some(p) = i.port_isolated.as_ref().filter(|p| p.value) {
                (p.pos, "<port isolated='yes'/>")
            } else {
                return None;
            };
            Some((
                pos,
                format!(
                    "{what} is not enforced on an Open vSwitch port: the userspace datapath \
                     reads the tap before the host's qdiscs and nftables hooks see its frames, \
                     and virtnet sets no OVS QoS or flows; set it in Open vSwitch (QoS, \
                     OpenFlow, OVN ACLs) and remove it here, or use a Linux bridge"
                ),
            ))
        }
        Rule::VlanNotEnforced => {
            let v = i.vlan.as_ref()?;
            if ty == InterfaceType::Hostdev || on_switch(op, i) || ovs_port(i) {
                return None;
            }
            let why = if host_tap(ty) {
                "virtnet does no VLANs on Linux bridges, taps or macvtaps (it uses neither \
                 bridge VLAN filtering nor 802.1Q devices, which some host kernels lack); \
                 VLANs are enforced by virtnet-vswitch: use type='network' on a \
                 virtnet-vswitch network, an Open vSwitch bridge (<virtualport \
                 type='openvswitch'>), or a hostdev VF (tagged by its PF)"
            } else {
                instead(ty)
            };
            Some((
                v.pos,
                format!("<vlan> is not applied on type='{ty}': {why}"),
            ))
        }
        Rule::BandwidthFloor => {
            let bw = i.bandwidth.as_ref()?;
            let r = [&bw.inbound, &bw.outbound]
                .into_iter()
                .flatten()
                .find(|r| r.floor.is_some())?;
            Some((
                r.pos,
                "<bandwidth> floor: virtnet has no guaranteed-minimum scheduling (libvirt's \
                 floor needs its network-wide QoS tree); remove floor and use average/peak/\
                 burst limits"
                    .into(),
            ))
        }
        Rule::BandwidthNotEnforced => {
            let bw = i.bandwidth.as_ref()?;
            let set = bw.inbound.is_some() || bw.outbound.is_some();
            if !set || host_tap(ty) || on_switch(op, i) {
                return None;
            }
            Some((
                bw.pos,
                format!(
                    "<bandwidth> is not enforced on type='{ty}': virtnet limits rates on taps \
                     and macvtaps (bridge, ethernet, direct) and on virtnet-vswitch ports \
                     (network); {}",
                    instead(ty)
                ),
            ))
        }
        Rule::FilterNotEnforced => {
            let f = i.filterref.as_ref()?;
            if matches!(ty, InterfaceType::Bridge | InterfaceType::Ethernet) || on_switch(op, i) {
                return None;
            }
            Some((
                f.pos,
                format!(
                    "<filterref> is not enforced on type='{ty}': virtnet filters traffic on \
                     taps (type='bridge' in nftables' bridge family, type='ethernet' at the \
                     tap's own hooks) and on virtnet-vswitch ports (type='network'); use one \
                     of those types, or remove the filter"
                ),
            ))
        }
        Rule::FilterInvalid => {
            let f = i.filterref.as_ref()?;
            let e = f.resolve().err()?;
            Some((error_pos(&e).unwrap_or(f.pos), error_text(&e)))
        }
        Rule::PortIsolationNoPort => {
            let p = i.port_isolated.as_ref().filter(|p| p.value)?;
            if ty == InterfaceType::Bridge || on_switch(op, i) {
                return None;
            }
            Some((
                p.pos,
                format!(
                    "<port isolated='yes'/> needs a bridge or switch port, and type='{ty}' has \
                     none: isolation is enforced on Linux bridge ports (type='bridge') and \
                     virtnet-vswitch ports (type='network'); use one of those or remove <port>"
                ),
            ))
        }
        Rule::NetworkPortgroup => super::network::find_portgroup(i),
        Rule::NetworkNotOvs => super::network::not_ovs(i),
        Rule::NetworkForeignPortid => super::network::network_portid(c.domain_name, i),
        Rule::CoalesceNotEnforced => {
            let co = i.coalesce.as_ref().filter(|co| co.rx_frames_max > 0)?;
            Some((
                co.pos,
                "<coalesce> is not applied: virtnet does not set interrupt coalescing on the \
                 host tap (an ethtool ioctl libvirt makes); remove it, or set it on the tap \
                 yourself with type='ethernet' and <target managed='no'/>"
                    .into(),
            ))
        }
        Rule::SndbufNeedsTap => {
            i.tune.as_ref()?.sndbuf?;
            (!host_tap(ty)).then(|| {
                (
                    i.pos,
                    format!(
                        "<tune><sndbuf> sets a tap's send buffer and type='{ty}' gives QEMU no \
                         tap: remove <tune> or use type='bridge', 'ethernet' or 'direct'"
                    ),
                )
            })
        }
        Rule::BackendNotApplied => {
            let b = i.backend.as_ref().filter(|b| !b.is_passt())?;
            let (what, pos) = if let Some(t) = b.tap.as_ref().filter(|t| t.value != TUN) {
                ("tap", t.pos)
            } else if let Some(v) = b
                .vhost
                .as_ref()
                // On other types Rule::BackendVhostWithoutTap refuses it.
                .filter(|v| v.value != VHOST_NET && (ty.uses_tap() || ty == InterfaceType::Direct))
            {
                ("vhost", v.pos)
            } else if let Some(l) = &b.log_file {
                ("logFile", l.pos)
            } else if b.hostname.is_some() {
                ("hostname", b.pos)
            } else if b.fqdn.is_some() {
                ("fqdn", b.pos)
            } else {
                return None;
            };
            let why = if what == "tap" || what == "vhost" {
                "virtnet opens /dev/net/tun and /dev/vhost-net itself and hands QEMU their fds; \
                 another device path is not used"
            } else {
                "it configures the passt back end, which is not in use (and not supported)"
            };
            Some((
                pos,
                format!("<backend {what}='...'/> is not applied: {why}; remove the attribute"),
            ))
        }
        Rule::DriverNeedsVirtio => {
            let d = i.driver.as_ref()?;
            if i.is_hostdev() {
                let set = d.txmode.is_some()
                    || d.ioeventfd.is_some()
                    || d.event_idx.is_some()
                    || d.queues.is_some()
                    || d.rx_queue_size.is_some()
                    || d.tx_queue_size.is_some()
                    || d.rss.is_some()
                    || d.rss_hash_report.is_some()
                    || d.iommu.is_some()
                    || d.ats.is_some()
                    || d.packed.is_some()
                    || d.page_per_vq.is_some()
                    || d.host.is_some()
                    || d.guest.is_some();
                return set.then(|| {
                    (
                        d.pos,
                        "<driver> of a hostdev NIC takes only name='vfio': the other settings \
                         are virtio-net's, and a VF is no virtio device; remove them"
                            .into(),
                    )
                });
            }
            (!i.is_virtio()).then(|| {
                (
                    d.pos,
                    format!(
                        "<driver> settings apply to virtio NICs only, and this NIC's model is \
                         '{}': use <model type='virtio'/> or remove <driver>",
                        i.model().map(|m| m.to_string()).unwrap_or_default()
                    ),
                )
            })
        }
        Rule::GuestNameNotApplied => i.guest.as_ref().map(|_| {
            (
                i.pos,
                "<guest dev/actual> names the interface inside a container guest (LXC); a \
                 QEMU guest names its NICs itself: remove <guest>"
                    .into(),
            )
        }),
        Rule::GuestIpNotApplied => {
            let ip = &i.guest_ip;
            if ip.ips.is_empty() && ip.routes.is_empty() {
                return None;
            }
            if ty == InterfaceType::User {
                if let Some(r) = ip.routes.first() {
                    return Some((
                        r.gateway.pos,
                        "<route> on type='user': QEMU's user networking sets no guest routes; \
                         remove it (the guest gets its default route over DHCP)"
                            .into(),
                    ));
                }
                let peer = ip.ips.iter().find(|a| a.peer.is_some())?;
                return Some((
                    peer.address.pos,
                    "<ip peer='...'> on type='user': QEMU's user networking has no \
                     point-to-point peer; remove peer"
                        .into(),
                ));
            }
            let pos = ip
                .ips
                .first()
                .map(|a| a.address.pos)
                .or(ip.routes.first().map(|r| r.gateway.pos))
                .unwrap_or(i.pos);
            Some((
                pos,
                format!(
                    "guest-side <ip>/<route> are not applied on type='{ty}': only type='user' \
                     (QEMU's DHCP server) hands addresses to the guest; configure the address \
                     inside the guest and remove them"
                ),
            ))
        }
        Rule::MtuNotApplied => {
            let m = i.mtu.as_ref()?;
            let applied = host_tap(ty) || on_switch(op, i) || (i.is_virtio() && !i.is_hostdev());
            (!applied).then(|| {
                (
                    m.pos,
                    format!(
                        "<mtu> is not applied on type='{ty}' with this model: virtnet sets the \
                         MTU of host taps and macvtaps and tells it to virtio NICs (host_mtu); \
                         use <model type='virtio'/> or remove <mtu>{}",
                        if ty == InterfaceType::Hostdev {
                            " (set a VF's MTU on the host)"
                        } else {
                            ""
                        }
                    ),
                )
            })
        }
        Rule::TrustGuestRxFilters => (i.trust_guest_rx_filters == Some(true)).then(|| {
            (
                i.pos,
                "trustGuestRxFilters='yes': virtnet does not follow the guest's RX filter \
                 changes (libvirt does it for macvtap only); remove the attribute"
                    .into(),
            )
        }),
        Rule::BackendDomain => i.backend_domain.as_ref().map(|b| {
            (
                b.pos,
                "<backenddomain> names a Xen driver domain; QEMU/KVM has none: remove it".into(),
            )
        }),
        Rule::BootLoadparm => {
            let b = i.boot.as_ref()?;
            b.loadparm.as_ref().map(|l| {
                (
                    b.order.pos,
                    format!(
                        "<boot loadparm='{}'> is an s390 (ccw) boot parameter; x86 firmware \
                         takes none: remove loadparm and keep order",
                        l.escape_default()
                    ),
                )
            })
        }
        Rule::HostdevModel => {
            let m = i.model.as_ref().filter(|_| ty == InterfaceType::Hostdev)?;
            Some((
                m.pos,
                format!(
                    "<model type='{}'> on a hostdev NIC: a VF is passed through as itself (QEMU's \
                     vfio-pci), no NIC model is emulated; remove <model>",
                    m.value
                ),
            ))
        }
        Rule::TargetNotApplied => {
            let t = i.target.as_ref()?;
            let d = t.dev.as_ref()?;
            (!host_tap(ty)).then(|| {
                (
                    or(d.pos, t.pos),
                    format!(
                        "<target dev='{}'> names a host tap or macvtap, and type='{ty}' has none \
                         (virtnet makes taps for bridge, ethernet and direct NICs only; a network NIC \
                         is a vhost-user switch port): remove <target>",
                        d.value.escape_default()
                    ),
                )
            })
        }
        _ => None,
    }
}

/// `p` when it points into the input, else `at`.
fn or(p: Pos, at: Pos) -> Pos {
    if p.is_known() {
        p
    } else {
        at
    }
}

/// Where a conf error points.
fn error_pos(e: &virtnet_conf::ConfError) -> Option<Pos> {
    Some(e.pos()).filter(Pos::is_known)
}

/// A conf error's message without its `unsupported configuration: ` prefix (the refusal adds
/// its own).
fn error_text(e: &virtnet_conf::ConfError) -> String {
    match e {
        virtnet_conf::ConfError::Unsupported { message, .. } => message.clone(),
        e => e.to_string(),
    }
}
