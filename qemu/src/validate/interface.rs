//! Checking one interface against the rules of [`Rule::INTERFACE`]: what each rule looks at,
//! where it points, its one message.

use virtnet_conf::domain::DomainType;
use virtnet_conf::interface::{HostdevSource, InterfaceKind, InterfaceType, LinkState, SocketMode};
use virtnet_conf::xml::Pos;
use virtnet_conf::{Domain, Interface};

use super::{Operation, Refusal, Rule};
use crate::argv::QemuCaps;

/// Taps get one queue per fd; a tap takes at most this many.
const MAX_TAP_QUEUES: u32 = 256;

/// What a rule looks at.
pub(super) struct Ctx<'a> {
    /// The operation checked.
    pub(super) op: Operation,
    /// The VM's name.
    pub(super) domain_name: &'a str,
    domain_type: DomainType,
    /// An i440fx machine without ACPI (no PCI hot-plug).
    i440fx_without_acpi: bool,
    /// The interface checked.
    pub(super) iface: &'a Interface,
    caps: Option<&'a QemuCaps>,
}

/// Whether QEMU gets tap fds for this type (macvtap included).
fn tap_like(t: InterfaceType) -> bool {
    t.uses_tap() || t == InterfaceType::Direct
}

fn explicit_vhost(i: &Interface) -> Option<Pos> {
    let n = i.driver.as_ref()?.name.as_ref()?;
    (n.value == "vhost" && tap_like(i.type_())).then_some(n.pos)
}

/// Where the rule finds a problem, and its message; `None` when it does not apply.
fn find(rule: Rule, c: &Ctx<'_>) -> Option<(Pos, String)> {
    let i = c.iface;
    let ty = i.type_();
    let msg = |s: &str| s.to_string();
    match rule {
        Rule::ScriptNeedsEthernet => {
            let pos = i
                .script
                .as_ref()
                .map(|s| s.pos)
                .or(i.downscript.as_ref().map(|s| s.pos))
                .filter(|_| ty != InterfaceType::Ethernet)?;
            Some((
                pos,
                format!(
                    "scripts are not supported on interfaces of type '{ty}': <script>/<downscript> \
                     run only for type='ethernet' taps (virtnet runs them around the tap it \
                     creates); use type='ethernet' or remove them"
                ),
            ))
        }
        Rule::PasstNotSupported => {
            let b = i.backend.as_ref().filter(|b| b.is_passt())?;
            let pos = b.kind.as_ref().map_or(b.pos, |k| k.pos);
            matches!(ty, InterfaceType::User | InterfaceType::VhostUser).then(|| {
                (
                    pos,
                    msg(
                        "the passt back end (<backend type='passt'/>) is not supported yet: use \
                         type='user' without <backend> (SLIRP), or give the socket of a \
                         vhost-user back end with <source type='unix' path='...' \
                         mode='client|server'/>",
                    ),
                )
            })
        }
        Rule::VhostUserNeedsSocket => match &i.kind {
            InterfaceKind::VhostUser { socket: None } if !i.is_passt() => Some((
                i.pos,
                msg(
                    "a vhost-user interface needs <source type='unix' path='...' \
                     mode='client|server'/>",
                ),
            )),
            _ => None,
        },
        Rule::ReconnectNeedsClient => match &i.kind {
            InterfaceKind::VhostUser { socket: Some(s) }
                if s.mode == SocketMode::Server && s.reconnect.is_some() =>
            {
                Some((
                    s.path.pos,
                    msg(
                        "<reconnect> only applies when QEMU is the client (mode='client'): QEMU \
                         cannot reconnect a socket it listens on; remove <reconnect> or use \
                         mode='client'",
                    ),
                ))
            }
            _ => None,
        },
        Rule::BackendVhostWithoutTap => {
            let v = i.backend.as_ref()?.vhost.as_ref()?;
            (!tap_like(ty)).then(|| {
                (
                    v.pos,
                    format!(
                        "<backend vhost='...'/> names the vhost-net device for a tap, but \
                         type='{ty}' has no tap: remove the attribute"
                    ),
                )
            })
        }
        Rule::VdpaNotSupported => matches!(i.kind, InterfaceKind::Vdpa { .. }).then(|| {
            (
                source_pos(i),
                msg(
                    "type='vdpa' is not supported yet (it needs a vhost-vdpa fd in a QEMU fd \
                     set): use type='vhostuser' or a hostdev VF",
                ),
            )
        }),
        Rule::UsbHostdevNic => match &i.kind {
            InterfaceKind::Hostdev {
                source: HostdevSource::Usb { pos, .. },
                ..
            } => Some((
                *pos,
                msg(
                    "a USB network device cannot be assigned as <interface type='hostdev'> \
                     (libvirt keeps such definitions but cannot assign them either): assign it \
                     with <hostdev mode='subsystem' type='usb'> with the same <source> instead",
                ),
            )),
            _ => None,
        },
        Rule::NetworkNotResolved => match &i.kind {
            InterfaceKind::Network { network, .. } => Some((
                network.pos,
                format!(
                    "type='network' (network '{}') runs on a virtnet-vswitch network that \
                     virtnetd resolves at start and attach: define and start it with `virtnet \
                     net-define` and `virtnet net-start {}`, or use type='bridge' with the \
                     host bridge",
                    network.value, network.value
                ),
            )),
            _ => None,
        },
        Rule::SocketBackendNotHotpluggable => matches!(
            i.kind,
            InterfaceKind::Server(_)
                | InterfaceKind::Client(_)
                | InterfaceKind::Mcast(_)
                | InterfaceKind::Udp { .. }
        )
        .then(|| {
            (
                i.pos,
                format!(
                    "type='{ty}' (a socket back end) cannot be plugged into a running VM \
                     (libvirt refuses them too): define it and start the VM, or use \
                     type='bridge'"
                ),
            )
        }),
        Rule::VhostNetOnTcg => {
            let pos = explicit_vhost(i).filter(|_| c.domain_type == DomainType::Qemu)?;
            Some((
                pos,
                msg(
                    "<driver name='vhost'/> asks for vhost-net, which a TCG guest (<domain \
                     type='qemu'>) cannot use: remove name='vhost' or use <domain type='kvm'>",
                ),
            ))
        }
        Rule::VhostNetUnavailable => {
            let caps = c.caps?;
            let pos = explicit_vhost(i)
                .filter(|_| c.domain_type == DomainType::Kvm && i.is_virtio() && !caps.vhost_net)?;
            Some((
                pos,
                msg(
                    "<driver name='vhost'/> asks for vhost-net, but /dev/vhost-net cannot be \
                     used on this host: load the vhost_net module (modprobe vhost_net) or \
                     remove name='vhost' to let QEMU move the packets itself",
                ),
            ))
        }
        Rule::UnmanagedTargetNotEthernet => {
            let t = i.target.as_ref().filter(|t| t.managed == Some(false))?;
            (ty != InterfaceType::Ethernet).then(|| {
                (
                    t.pos,
                    format!(
                        "<target managed='no'/> is only for type='ethernet', not type='{ty}': \
                         virtnet creates this interface's host device itself; use \
                         type='ethernet' to pass an existing tap"
                    ),
                )
            })
        }
        Rule::UnmanagedTapNeedsName => {
            let t = i.target.as_ref().filter(|t| t.managed == Some(false))?;
            (ty == InterfaceType::Ethernet && t.dev.is_none()).then(|| {
                (
                    t.pos,
                    msg(
                        "<target managed='no'/> needs the existing tap's name: <target \
                         dev='tap0' managed='no'/>",
                    ),
                )
            })
        }
        Rule::EthernetHostIp => {
            let has = !i.host_ip.ips.is_empty() || !i.host_ip.routes.is_empty();
            let how = if ty == InterfaceType::Ethernet {
                "configure the tap yourself (<target dev='NAME' managed='no'/>) and remove them"
            } else {
                "virtnet sets host addresses on no interface type; remove them"
            };
            has.then(|| {
                (
                    source_pos(i),
                    format!("host-side <ip>/<route> inside <source> are not supported yet: {how}"),
                )
            })
        }
        Rule::TapQueuesAbove256 => {
            let q = i.driver.as_ref()?.queues.as_ref()?;
            (tap_like(ty) && i.queues().is_some_and(|n| n > MAX_TAP_QUEUES)).then(|| {
                (
                    q.pos,
                    format!(
                        "<driver queues='{}'> is above {MAX_TAP_QUEUES}, the most a tap has",
                        q.value
                    ),
                )
            })
        }
        Rule::VfVlanTrunk => {
            let v = i.vlan.as_ref().filter(|v| {
                v.tags.len() > 1 || v.trunk || v.tags.iter().any(|t| t.native_mode.is_some())
            })?;
            (ty == InterfaceType::Hostdev).then(|| {
                (
                    v.pos,
                    msg(
                        "an SR-IOV VF takes one VLAN tag, set by its PF; trunks (several <tag>, \
                         trunk='yes', nativeMode) are not possible: give one <tag id> only",
                    ),
                )
            })
        }
        Rule::HostdevLinkDown => {
            let l = i.link.as_ref().filter(|l| l.value == LinkState::Down)?;
            (ty == InterfaceType::Hostdev).then(|| {
                (
                    l.pos,
                    msg(
                        "<link state='down'/> cannot be applied to a hostdev NIC: the VF is a \
                         vfio-pci device without a QEMU link; remove it (and set the VF's link \
                         on the host: ip link set PF vf N state disable)",
                    ),
                )
            })
        }
        Rule::HostdevDriverNotVfio => {
            let n = i.driver.as_ref()?.name.as_ref()?;
            (ty == InterfaceType::Hostdev && n.value != "vfio").then(|| {
                (
                    n.pos,
                    format!(
                        "<driver name='{}'/> is not supported: QEMU passes PCI devices through \
                         with vfio only; use <driver name='vfio'/> or remove <driver>",
                        n.value
                    ),
                )
            })
        }
        Rule::VirtioNeedsPciAddress => {
            let non_pci = i.address.as_ref().is_some_and(|a| a.pci().is_none());
            (ty != InterfaceType::Hostdev && i.is_virtio() && non_pci).then(|| {
                (
                    i.pos,
                    msg(
                        "a virtio NIC needs a PCI address (<address type='pci' .../>) or none \
                         on x86: remove the other <address>",
                    ),
                )
            })
        }
        Rule::RomNeedsPci => {
            let r = i.rom.as_ref()?;
            let tuned = r.enabled.is_some() || r.bar.is_some() || r.file.is_some();
            (tuned && !i.wants_pci_address()).then(|| {
                (
                    i.pos,
                    msg(
                        "ROM tuning (<rom>) is only supported for PCI devices: remove <rom> or \
                         give the NIC a PCI address",
                    ),
                )
            })
        }
        Rule::MacRequired => (i.mac().is_none() && !i.is_hostdev()).then(|| {
            (
                i.pos,
                msg(
                    "it has no MAC address: give one with <mac address='52:54:00:xx:xx:xx'/> \
                     (define assigns one; the plans are deterministic and do not invent one)",
                ),
            )
        }),
        Rule::HotplugNeedsAcpi => (c.i440fx_without_acpi && i.wants_pci_address()).then(|| {
            (
                i.pos,
                msg(
                    "PCI hot-plug on an i440fx machine goes through ACPI, and this VM runs \
                     without it (no <features><acpi/></features>: QEMU has acpi=off), so the \
                     guest would never see the NIC: add <acpi/> to <features> and restart the \
                     VM, or attach the NIC with --config",
                ),
            )
        }),
        Rule::UpdateNotChangeable
        | Rule::SocketChangeNeedsReplug
        | Rule::HostdevLinkNotChangeable => {
            None // checked by super::update
        }
        Rule::MemtuneMinGuarantee
        | Rule::MemtuneUnknown
        | Rule::MemtuneSwapBelowHard
        | Rule::CputuneNotEnforced
        | Rule::CputuneRange => None, // checked by super::tuning
        Rule::SecLabelModel | Rule::SecLabelDac => None, // checked by super::seclabel
        Rule::UnknownContent
        | Rule::VirtualPortNotSupported
        | Rule::OvsPortSetting
        | Rule::VlanNotEnforced
        | Rule::BandwidthNotEnforced
        | Rule::BandwidthFloor
        | Rule::FilterNotEnforced
        | Rule::FilterInvalid
        | Rule::PortIsolationNoPort
        | Rule::NetworkPortgroup
        | Rule::NetworkNotOvs
        | Rule::NetworkForeignPortid
        | Rule::CoalesceNotEnforced
        | Rule::SndbufNeedsTap
        | Rule::BackendNotApplied
        | Rule::DriverNeedsVirtio
        | Rule::GuestNameNotApplied
        | Rule::GuestIpNotApplied
        | Rule::MtuNotApplied
        | Rule::TrustGuestRxFilters
        | Rule::BackendDomain
        | Rule::TargetNotApplied
        | Rule::HostdevModel
        | Rule::BootLoadparm => super::settings::find(rule, c),
    }
}

/// `interface 52:54:00:00:00:01 (type='bridge')`.
pub(super) fn what(i: &Interface) -> String {
    let d = i.describe();
    if d.contains("type=") {
        d
    } else {
        format!("{d} (type='{}')", i.type_())
    }
}

/// A refusal of `rule` found at `pos`.
pub(super) fn refusal(
    rule: Rule,
    op: Operation,
    i: &Interface,
    pos: Pos,
    message: String,
) -> Refusal {
    Refusal {
        rule,
        op,
        what: what(i),
        pos: if pos.is_known() { pos } else { i.pos },
        message,
    }
}

/// Every refusal of `iface` (in `domain`) for `op`.
pub(super) fn check(
    op: Operation,
    domain: &Domain,
    iface: &Interface,
    caps: Option<&QemuCaps>,
) -> Vec<Refusal> {
    let acpi = domain.features.as_ref().is_some_and(|f| f.is_on("acpi"));
    let c = Ctx {
        op,
        domain_name: domain.name(),
        domain_type: domain.domain_type(),
        i440fx_without_acpi: domain.machine_is_i440fx() && !acpi,
        iface,
        caps,
    };
    Rule::INTERFACE
        .iter()
        .filter(|r| r.ops().contains(&op))
        .filter_map(|&r| find(r, &c).map(|(pos, m)| refusal(r, op, iface, pos, m)))
        .collect()
}

/// The first rule the argv builder guards that refuses `iface` ([`Rule::argv_guard`]).
pub(super) fn argv_refusal(iface: &Interface, caps: &QemuCaps) -> Option<Refusal> {
    let c = Ctx {
        op: Operation::Start,
        domain_name: "",
        domain_type: DomainType::Kvm,
        i440fx_without_acpi: false,
        iface,
        caps: Some(caps),
    };
    Rule::INTERFACE
        .iter()
        .filter(|r| r.argv_guard())
        .find_map(|&r| find(r, &c).map(|(pos, m)| refusal(r, Operation::Start, iface, pos, m)))
}

/// Where `<source>` is, else the interface.
fn source_pos(i: &Interface) -> Pos {
    if i.source_pos.is_known() {
        i.source_pos
    } else {
        i.pos
    }
}
