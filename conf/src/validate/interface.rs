//! Rules about one `<interface>` on its own.

use super::names::{alias_problem, bad_ifname, ifname_problem, socket_path_problem};
use crate::error::ConfError;
use crate::interface::{Interface, InterfaceKind, InterfaceType, Spanned, TeamingKind};
use crate::xml::Pos;

/// QEMU's virtio-net limit on queue pairs (`VIRTIO_QUEUE_MAX / 2 - 1`).
pub const MAX_QUEUES: u32 = 511;
/// QEMU's bounds for `rx_queue_size` / `tx_queue_size`.
pub const QUEUE_SIZE_RANGE: (u32, u32) = (256, 1024);

fn pick(pos: Pos, fallback: Pos) -> Pos {
    if pos.is_known() {
        pos
    } else {
        fallback
    }
}

/// "interface 52:54:00:.." or "interface" (libvirt's prefix for per-NIC messages).
fn libvirt_name(iface: &Interface) -> String {
    match iface.mac() {
        Some(m) => format!("interface {m}"),
        None => "interface".into(),
    }
}

/// Every problem of one interface on its own (no other device involved), in element order.
/// [`crate::validate()`] runs this for every interface; it is public for hot-plug, which checks
/// a new device before touching anything.
pub fn validate_interface(iface: &Interface) -> Vec<ConfError> {
    let mut errs = Vec::new();
    let ty = iface.type_();
    let at = |p: Pos| pick(p, iface.pos);

    if let Some(mac) = iface.mac.as_ref().and_then(|m| m.address.as_ref()) {
        if mac.value.is_multicast() {
            errs.push(ConfError::InvalidAttr {
                pos: at(mac.pos),
                element: "mac".into(),
                attr: "address".into(),
                value: mac.value.to_string(),
                expected: format!(
                    "a unicast MAC address (libvirt: expected unicast mac address, found \
                     multicast '{}'): the lowest bit of the first byte must be 0, e.g. \
                     52:54:00:12:34:56",
                    mac.value
                ),
            });
        }
    }

    let mut ifname = |s: &Spanned<String>, element: &str, attr: &str| {
        if let Some(why) = ifname_problem(&s.value) {
            errs.push(bad_ifname(at(s.pos), element, attr, &s.value, why));
        }
    };
    match &iface.kind {
        InterfaceKind::Bridge { bridge } => ifname(bridge, "source", "bridge"),
        InterfaceKind::Direct { dev, .. } => ifname(dev, "source", "dev"),
        _ => {}
    }
    if let Some(d) = &iface.source_dev {
        ifname(d, "source", "dev");
    }
    if let Some(d) = iface.target.as_ref().and_then(|t| t.dev.as_ref()) {
        ifname(d, "target", "dev");
    }
    for pf in &iface.port_forwards {
        if let Some(d) = &pf.dev {
            ifname(d, "portForward", "dev");
        }
    }

    if let Some(a) = &iface.alias {
        if let Some(why) = alias_problem(&a.value) {
            errs.push(ConfError::InvalidAttr {
                pos: at(a.pos),
                element: "alias".into(),
                attr: "name".into(),
                value: a.value.clone(),
                expected: format!("a device alias ({why}), e.g. 'ua-net0'"),
            });
        }
    }

    if let InterfaceKind::VhostUser { socket: Some(s) } = &iface.kind {
        if let Some(why) = socket_path_problem(&s.path.value) {
            errs.push(ConfError::InvalidAttr {
                pos: at(s.path.pos),
                element: "source".into(),
                attr: "path".into(),
                value: s.path.value.clone(),
                expected: format!(
                    "an absolute unix socket path of at most 107 bytes without ',' ({why}), \
                     e.g. '/run/vhost-user/net0.sock'"
                ),
            });
        }
    }
    if let Some(f) = iface.rom.as_ref().and_then(|r| r.file.as_ref()) {
        if f.value.contains(',') {
            errs.push(ConfError::InvalidAttr {
                pos: at(f.pos),
                element: "rom".into(),
                attr: "file".into(),
                value: f.value.clone(),
                expected: "a path without ',' (it would split QEMU's -device option)".into(),
            });
        }
    }

    // The guest device model must fit the back end.
    if matches!(ty, InterfaceType::VhostUser | InterfaceType::Vdpa) {
        if let Some(m) = iface.model.as_ref().filter(|m| !m.value.is_virtio()) {
            errs.push(ConfError::unsupported(
                at(m.pos),
                format!(
                    "Wrong or no <model> 'type' attribute specified with <interface \
                     type='{ty}'/>. {ty} requires the virtio-net* frontend: use <model \
                     type='virtio'/> instead of '{}'",
                    m.value
                ),
            ));
        }
    }
    // A USB <source> on type='hostdev' is kept (libvirt parses and formats it "for
    // completeness and consistency"); virtnet_qemu::validate refuses starting or attaching it.

    // Driver settings (libvirt applies them to virtio models only).
    if let Some(d) = iface
        .driver
        .as_ref()
        .filter(|_| iface.is_virtio() && !iface.is_hostdev())
    {
        if let Some(q) = &d.queues {
            if q.value > MAX_QUEUES {
                errs.push(ConfError::unsupported(
                    at(q.pos),
                    format!(
                        "{} - driver queues='{}' is more than QEMU's virtio-net maximum of \
                         {MAX_QUEUES} queue pairs",
                        libvirt_name(iface),
                        q.value
                    ),
                ));
            }
            if !matches!(
                ty,
                InterfaceType::Network
                    | InterfaceType::Bridge
                    | InterfaceType::Direct
                    | InterfaceType::Ethernet
                    | InterfaceType::VhostUser
                    | InterfaceType::Vdpa
            ) {
                errs.push(ConfError::unsupported(
                    at(q.pos),
                    format!(
                        "Multiqueue network is not supported for: {ty}; remove queues from \
                         <driver> or use a tap-based, vhost-user or vDPA interface"
                    ),
                ));
            }
        }
        let (lo, hi) = QUEUE_SIZE_RANGE;
        for (name, v) in [
            ("rx_queue_size", &d.rx_queue_size),
            ("tx_queue_size", &d.tx_queue_size),
        ] {
            let Some(v) = v else { continue };
            if !v.value.is_power_of_two() {
                errs.push(ConfError::unsupported(
                    at(v.pos),
                    format!("{name} has to be a power of two"),
                ));
            } else if v.value < lo || v.value > hi {
                errs.push(ConfError::unsupported(
                    at(v.pos),
                    format!(
                        "{name} has to be between {lo} and {hi} (QEMU's limits), not {}",
                        v.value
                    ),
                ));
            }
        }
    }

    // Back end.
    if let Some(b) = &iface.backend {
        if let Some(tap) = &b.tap {
            if !ty.uses_tap() {
                errs.push(ConfError::unsupported(
                    at(tap.pos),
                    format!(
                        "{} - custom tap device path is not supported for network interfaces \
                         of type {ty}",
                        libvirt_name(iface)
                    ),
                ));
            }
        }
        if let Some(k) = b.kind.as_ref().filter(|_| b.is_passt()) {
            if !matches!(ty, InterfaceType::User | InterfaceType::VhostUser) {
                errs.push(ConfError::unsupported(
                    at(k.pos),
                    "The 'passt' backend can only be used with interface type='user' or \
                     type='vhostuser'",
                ));
            }
        }
    }
    if let Some(pf) = iface.port_forwards.first() {
        let ok = iface.is_passt() && matches!(ty, InterfaceType::User | InterfaceType::VhostUser);
        if !ok {
            errs.push(ConfError::unsupported(
                at(pf.pos),
                "The <portForward> element can only be used with the 'passt' backend of \
                 interface type='user' or type='vhostuser'",
            ));
        }
    }
    if !iface.is_passt() {
        if let (InterfaceType::User, Some(d)) = (ty, &iface.source_dev) {
            errs.push(ConfError::unsupported(
                at(d.pos),
                "<source dev> on interface type='user' selects passt's host interface: add \
                 <backend type='passt'/> or remove the source",
            ));
        }
    }

    // Scripts run as virtnetd's user with the tap's name: an absolute path, never looked up
    // in $PATH. Whether it exists and is executable is checked when it runs (start,
    // hot-plug), as libvirt does: it may be installed after the domain is defined.
    for (what, leaf) in [("script", &iface.script), ("downscript", &iface.downscript)] {
        if let Some(l) = leaf.as_ref().filter(|l| !l.value.starts_with('/')) {
            errs.push(ConfError::unsupported(
                at(l.pos),
                format!(
                    "<{what} path='{}'> must be an absolute path to an executable (it runs \
                     with the tap's name as its argument): give the full path",
                    l.value
                ),
            ));
        }
    }

    // Host-side settings that only a tap device has.
    if !ty.uses_tap() {
        let tap_only = [
            ("<script>", iface.script.as_ref().map(|s| s.pos)),
            ("<downscript>", iface.downscript.as_ref().map(|s| s.pos)),
            ("<filterref>", iface.filterref.as_ref().map(|f| f.pos)),
            (
                "<coalesce>",
                iface
                    .coalesce
                    .as_ref()
                    .filter(|c| c.rx_frames_max > 0)
                    .map(|c| c.pos),
            ),
        ];
        for (what, pos) in tap_only {
            if let Some(p) = pos {
                errs.push(ConfError::unsupported(
                    at(p),
                    format!(
                        "{what} is not supported on interface type='{ty}': it acts on a host \
                         tap device, which only types ethernet, bridge and network have; \
                         remove it"
                    ),
                ));
            }
        }
    }
    if let Some(bw) = &iface.bandwidth {
        let floor_pos = bw
            .outbound
            .as_ref()
            .filter(|r| r.floor.is_some())
            .map(|r| r.pos)
            .or_else(|| {
                bw.inbound
                    .as_ref()
                    .filter(|r| r.floor.is_some() && ty != InterfaceType::Network)
                    .map(|r| r.pos)
            });
        if let Some(p) = floor_pos {
            errs.push(ConfError::unsupported(
                at(p),
                "<bandwidth> floor is supported only in <inbound> of interfaces of \
                 type='network'",
            ));
        }
    }
    if let Some(m) = &iface.mtu {
        if !(68..=65535).contains(&m.value) {
            errs.push(ConfError::unsupported(
                at(m.pos),
                format!("mtu size {} is out of range: use 68 to 65535", m.value),
            ));
        }
    }

    // Failover teaming.
    if let Some(t) = &iface.teaming {
        match (t.kind, &t.persistent) {
            (TeamingKind::Transient, None) => errs.push(ConfError::unsupported(
                at(t.pos),
                "teaming persistent attribute is required if teaming type is 'transient': name \
                 the alias of the virtio interface, e.g. persistent='ua-backup0'",
            )),
            (TeamingKind::Persistent, Some(p)) => errs.push(ConfError::unsupported(
                at(p.pos),
                "teaming persistent attribute not allowed if teaming type is 'persistent'",
            )),
            _ => {}
        }
        if t.kind == TeamingKind::Transient && ty != InterfaceType::Hostdev {
            errs.push(ConfError::unsupported(
                at(t.pos),
                format!("teaming transient device must be type='hostdev', not '{ty}'"),
            ));
        }
        if t.kind == TeamingKind::Persistent && ty == InterfaceType::Hostdev {
            errs.push(ConfError::unsupported(
                at(t.pos),
                "teaming persistent device must be a virtio NIC, not type='hostdev': the VF is \
                 the transient side of a failover pair, use <teaming type='transient' \
                 persistent='ALIAS'/> naming the virtio NIC's alias",
            ));
        } else if t.kind == TeamingKind::Persistent && !iface.is_virtio() && iface.model.is_some() {
            errs.push(ConfError::unsupported(
                at(t.pos),
                "teaming persistent device must use a virtio model (<model type='virtio'/>): \
                 QEMU's failover is a virtio-net feature",
            ));
        }
    }
    errs
}
