//! One plan function per interface type: what to set up on the host and what QEMU gets.
//! Start ([`super::plan_start`]) and hot-plug both use [`nic_plan`]; they differ only in the
//! [`FdNaming`] they pass (inherited fd numbers vs `getfd` names).

use virtnet_conf::address::PciAddress;
use virtnet_conf::domain::DomainType;
use virtnet_conf::interface::MacAddr;
use virtnet_conf::interface::{HostdevSource, InterfaceKind, InterfaceType};
use virtnet_conf::{Domain, Interface};
use virtnet_host::{FilterSpec, MacvtapMode, OvsNative, OvsPortSpec, OvsVlan, PciAddr, RateLimit};
use virtnet_qemu::validate::Rule;
use virtnet_qemu::{tap_fds_needed, NicSpec, QemuCaps, TapFds};

use super::types::{FdNaming, HostStep, NicPlan, PlannedBackend};
use crate::error::VmError;

/// The capabilities the command line is built with for `domain`: as libvirt does, a TCG guest
/// (`<domain type='qemu'>`) never uses vhost-net, whatever the host has.
pub fn effective_caps(domain: &Domain, caps: &QemuCaps) -> QemuCaps {
    QemuCaps {
        vhost_net: caps.vhost_net && domain.domain_type() == DomainType::Kvm,
        ..*caps
    }
}

/// Plans interface `index` of `domain`: its host steps (fd targets from `fds`) and back end.
///
/// `caps` are the QEMU binary's; the TCG rule of [`effective_caps`] is applied here.
/// `domain` must have been validated for start or attach ([`virtnet_qemu::validate`]); what
/// validation refuses (`network` unresolved, `vdpa`, USB hostdev, no MAC, ...) comes back as
/// [`VmError::InvalidContext`] naming the rule the caller skipped.
pub fn nic_plan(
    domain: &Domain,
    index: usize,
    caps: &QemuCaps,
    fds: &mut FdNaming,
) -> Result<NicPlan, VmError> {
    let spec = NicSpec::from_domain(domain, index).ok_or_else(|| {
        VmError::InvalidContext(format!(
            "interface #{index} does not exist (the domain has {})",
            domain.devices.interfaces.len()
        ))
    })?;
    let caps = effective_caps(domain, caps);
    let iface = spec.iface;
    let mut plan = NicPlan {
        index,
        type_: iface.type_().as_str().to_string(),
        device_id: spec.ids.device.clone(),
        netdev_id: (!iface.is_hostdev()).then(|| spec.ids.netdev.clone()),
        mac: iface.mac(),
        steps: Vec::new(),
        backend: PlannedBackend::User,
    };
    if plan.mac.is_none() && !iface.is_hostdev() {
        return Err(unvalidated(&spec, Rule::MacRequired));
    }
    // Checked just above for every type that uses it (a VF keeps its own without one).
    let mac = iface.mac().unwrap_or_default();
    match &iface.kind {
        InterfaceKind::Bridge { bridge } => match ovs_port(domain, &spec, mac, &bridge.value)? {
            Some(port) => {
                bridge_plan(&spec, &caps, mac, None, fds, &mut plan)?;
                // Right after its tap, before QEMU has the tap's fd.
                plan.steps
                    .insert(1, HostStep::AddOvsPort { nic: index, port });
            }
            None => {
                let b = Some(bridge.value.clone());
                bridge_plan(&spec, &caps, mac, b, fds, &mut plan)?
            }
        },
        InterfaceKind::Ethernet => ethernet_plan(&spec, &caps, mac, fds, &mut plan)?,
        InterfaceKind::Direct { dev, mode } => {
            direct_plan(&spec, &caps, mac, &dev.value, mode, fds, &mut plan)?
        }
        InterfaceKind::Hostdev { managed, source } => {
            hostdev_plan(&spec, *managed, source, &mut plan)?
        }
        InterfaceKind::VhostUser { socket } => {
            let Some(sock) = socket else {
                return Err(unvalidated(&spec, Rule::VhostUserNeedsSocket));
            };
            plan.backend = PlannedBackend::VhostUser {
                socket: sock.path.value.clone(),
                mode: sock.mode.as_str().to_string(),
            };
        }
        InterfaceKind::User => plan.backend = PlannedBackend::User,
        InterfaceKind::Server(_)
        | InterfaceKind::Client(_)
        | InterfaceKind::Mcast(_)
        | InterfaceKind::Udp { .. } => plan.backend = PlannedBackend::Socket,
        InterfaceKind::Network { .. } => return Err(unvalidated(&spec, Rule::NetworkNotResolved)),
        InterfaceKind::Vdpa { .. } => return Err(unvalidated(&spec, Rule::VdpaNotSupported)),
    }
    filter_step(&domain.name, &spec, mac, &mut plan)?;
    Ok(plan)
}

/// A `<filterref>` on a tap NIC (bridge, ethernet): a [`HostStep::LoadFilter`] right after the
/// tap is made (and, for a bridge, on the bridge), before its scripts and before QEMU has the
/// tap's fd: no frame of the guest passes unfiltered. Other types: a switch network's NIC
/// (resolved to vhost-user) has it enforced by its switch port, and validation refuses the
/// rest.
fn filter_step(
    vm: &str,
    spec: &NicSpec<'_>,
    mac: MacAddr,
    plan: &mut NicPlan,
) -> Result<(), VmError> {
    let Some(f) = &spec.iface.filterref else {
        return Ok(());
    };
    if !matches!(
        spec.iface.kind,
        InterfaceKind::Bridge { .. } | InterfaceKind::Ethernet
    ) {
        return Ok(());
    }
    let filter = f.resolve().map_err(|e| unsupported(spec, &e.located()))?;
    let at = plan
        .steps
        .iter()
        .position(|s| matches!(s, HostStep::CreateTap { .. } | HostStep::OpenTap { .. }))
        .map_or(plan.steps.len(), |i| i + 1);
    plan.steps.insert(
        at,
        HostStep::LoadFilter {
            nic: spec.index,
            vm: vm.to_string(),
            mac,
            filter: FilterSpec::from(&filter),
        },
    );
    Ok(())
}

/// The Open vSwitch port of a `type='bridge'` NIC with `<virtualport type='openvswitch'>`
/// (`None` for a Linux bridge NIC): libvirt's `external_ids` and the `<vlan>`.
fn ovs_port(
    domain: &Domain,
    spec: &NicSpec<'_>,
    mac: MacAddr,
    bridge: &str,
) -> Result<Option<OvsPortSpec>, VmError> {
    let Some(vp) = spec
        .iface
        .virtualport
        .as_ref()
        .filter(|v| v.is_openvswitch())
    else {
        return Ok(None);
    };
    let missing = |what: &str| {
        VmError::InvalidContext(format!(
            "{} has no {what}: define assigns one (plan a defined domain)",
            spec.describe()
        ))
    };
    let iface_id = vp
        .interfaceid
        .clone()
        .ok_or_else(|| missing("interfaceid"))?;
    let vm_id = domain.uuid.ok_or_else(|| missing("domain UUID"))?;
    let vlan = spec.iface.vlan.as_ref().map(|v| OvsVlan {
        tags: v.tags.iter().map(|t| t.id).collect(),
        trunk: v.trunk,
        native: v.tags.iter().find_map(|t| {
            t.native_mode.as_deref().map(|m| OvsNative {
                tag: t.id,
                tagged: m == "tagged",
            })
        }),
    });
    Ok(Some(OvsPortSpec {
        bridge: bridge.to_string(),
        port: String::new(),
        iface_id,
        mac,
        vm_id: vm_id.to_string(),
        profile_id: vp.profileid.clone(),
        vlan,
    }))
}

/// A NIC the plan cannot build for a reason only known here (not a validation rule).
fn unsupported(spec: &NicSpec<'_>, reason: &str) -> VmError {
    VmError::UnsupportedInterface {
        nic: spec.describe(),
        reason: reason.to_string(),
    }
}

/// What a plan says when handed what validation refuses: a caller bug, not a user error.
fn unvalidated(spec: &NicSpec<'_>, rule: Rule) -> VmError {
    VmError::InvalidContext(format!(
        "{} was not validated for start or attach: virtnet_qemu::validate refuses it \
         (rule {rule:?})",
        spec.describe()
    ))
}

fn queue_counts(spec: &NicSpec<'_>, caps: &QemuCaps) -> Result<(u16, TapFds), VmError> {
    let need = tap_fds_needed(spec, caps)
        .map_err(VmError::argv)?
        .unwrap_or(TapFds { taps: 1, vhost: 0 });
    let queues = u16::try_from(need.taps)
        .ok()
        .filter(|q| *q <= 256)
        .ok_or_else(|| unvalidated(spec, Rule::TapQueuesAbove256))?;
    Ok((queues, need))
}

/// The fd steps common to tap-like NICs: vhost-net fds after the tap's.
fn vhost_step(spec: &NicSpec<'_>, need: TapFds, fds: &mut FdNaming) -> Option<HostStep> {
    (need.vhost > 0).then(|| HostStep::OpenVhostNet {
        nic: spec.index,
        fds: fds.take(&spec.ids.device, "vhostfd", need.vhost),
    })
}

/// `type='bridge'`: a managed tap attached to the bridge.
fn bridge_plan(
    spec: &NicSpec<'_>,
    caps: &QemuCaps,
    mac: MacAddr,
    bridge: Option<String>,
    fds: &mut FdNaming,
    plan: &mut NicPlan,
) -> Result<(), VmError> {
    let iface = spec.iface;
    if !iface.target_managed() && iface.type_() != InterfaceType::Ethernet {
        return Err(unvalidated(spec, Rule::UnmanagedTargetNotEthernet));
    }
    let (queues, need) = queue_counts(spec, caps)?;
    plan.steps.push(HostStep::CreateTap {
        nic: spec.index,
        name: iface.target_dev().map(str::to_string),
        mac,
        mtu: iface.mtu(),
        queues,
        vnet_hdr: iface.is_virtio(),
        isolated: iface.port_isolated.as_ref().is_some_and(|p| p.value),
        bridge,
        fds: fds.take(&spec.ids.device, "tapfd", need.taps),
    });
    plan.steps.extend(vhost_step(spec, need, fds));
    plan.steps.extend(shape_step(spec)?);
    plan.backend = PlannedBackend::Tap;
    Ok(())
}

/// `<bandwidth>` of a tap NIC: a [`HostStep::Shape`] after its tap.
fn shape_step(spec: &NicSpec<'_>) -> Result<Option<HostStep>, VmError> {
    let (inbound, outbound) = bandwidth_limits(spec.iface).map_err(|r| unsupported(spec, &r))?;
    if inbound.is_none() && outbound.is_none() {
        return Ok(None);
    }
    Ok(Some(HostStep::Shape {
        nic: spec.index,
        inbound,
        outbound,
    }))
}

/// The limits a tap NIC's `<bandwidth>` asks for, host → guest and guest → host (start,
/// hot-plug and a live update all use this). A direction with a `floor` (a guarantee a lone
/// tap cannot give) is refused with the reason.
pub fn bandwidth_limits(
    iface: &Interface,
) -> Result<(Option<RateLimit>, Option<RateLimit>), String> {
    let Some(bw) = &iface.bandwidth else {
        return Ok((None, None));
    };
    let limit = |r: &Option<virtnet_conf::interface::Rate>, what: &str| match r {
        None => Ok(None),
        Some(r) => match (r.average, r.floor) {
            // libvirt's "no limit" (virsh domiftune clears a direction with average 0).
            (Some(0), None) => Ok(None),
            (Some(average), None) => Ok(Some(RateLimit {
                average,
                peak: r.peak,
                burst: r.burst,
            })),
            _ => Err(format!(
                "<bandwidth><{what}> at {} has a floor: a floor is a guarantee among the NICs \
                 of a network, which a tap or macvtap on its own cannot give; remove floor \
                 and give it an average",
                r.pos
            )),
        },
    };
    Ok((
        limit(&bw.inbound, "inbound")?,
        limit(&bw.outbound, "outbound")?,
    ))
}

/// `type='ethernet'`: a managed tap on no bridge, or an existing tap (`managed='no'`).
fn ethernet_plan(
    spec: &NicSpec<'_>,
    caps: &QemuCaps,
    mac: MacAddr,
    fds: &mut FdNaming,
    plan: &mut NicPlan,
) -> Result<(), VmError> {
    let iface = spec.iface;
    if !iface.host_ip.ips.is_empty() || !iface.host_ip.routes.is_empty() {
        return Err(unvalidated(spec, Rule::EthernetHostIp));
    }
    if iface.target_managed() {
        bridge_plan(spec, caps, mac, None, fds, plan)?;
        add_scripts(spec, plan);
        return Ok(());
    }
    let Some(name) = iface.target_dev() else {
        return Err(unvalidated(spec, Rule::UnmanagedTapNeedsName));
    };
    let (queues, need) = queue_counts(spec, caps)?;
    plan.steps.push(HostStep::OpenTap {
        nic: spec.index,
        name: name.to_string(),
        queues,
        vnet_hdr: iface.is_virtio(),
        fds: fds.take(&spec.ids.device, "tapfd", need.taps),
    });
    plan.steps.extend(vhost_step(spec, need, fds));
    plan.steps.extend(shape_step(spec)?);
    plan.backend = PlannedBackend::Tap;
    add_scripts(spec, plan);
    Ok(())
}

/// `<script>`/`<downscript>` of an ethernet NIC: a step right after the tap's (as libvirt runs
/// the script right after creating or opening the tap, before anything else on it). Scripts
/// on other types are refused by the argv builder, as libvirt's QEMU driver does.
fn add_scripts(spec: &NicSpec<'_>, plan: &mut NicPlan) {
    let iface = spec.iface;
    let path =
        |l: &Option<virtnet_conf::interface::Leaf<String>>| l.as_ref().map(|l| l.value.clone());
    let (script, downscript) = (path(&iface.script), path(&iface.downscript));
    if script.is_none() && downscript.is_none() {
        return;
    }
    plan.steps.insert(
        1,
        HostStep::RunScripts {
            nic: spec.index,
            device: spec.ids.device.clone(),
            script,
            downscript,
        },
    );
}

/// `type='direct'`: a macvtap on the host device.
fn direct_plan(
    spec: &NicSpec<'_>,
    caps: &QemuCaps,
    mac: MacAddr,
    lower: &str,
    mode: &str,
    fds: &mut FdNaming,
    plan: &mut NicPlan,
) -> Result<(), VmError> {
    let iface: &Interface = spec.iface;
    let mode: MacvtapMode = mode
        .parse()
        .map_err(|why: String| unsupported(spec, &why))?;
    let (queues, need) = queue_counts(spec, caps)?;
    plan.steps.push(HostStep::CreateMacvtap {
        nic: spec.index,
        name: iface.target_dev().map(str::to_string),
        lower: lower.to_string(),
        mode,
        mac,
        mtu: iface.mtu(),
        queues,
        vnet_hdr: iface.is_virtio(),
        fds: fds.take(&spec.ids.device, "tapfd", need.taps),
    });
    plan.steps.extend(vhost_step(spec, need, fds));
    plan.steps.extend(shape_step(spec)?);
    plan.backend = PlannedBackend::Tap;
    Ok(())
}

/// `type='hostdev'`: an SR-IOV VF with the guest's MAC (and VLAN) set through its PF.
fn hostdev_plan(
    spec: &NicSpec<'_>,
    managed: bool,
    source: &HostdevSource,
    plan: &mut NicPlan,
) -> Result<(), VmError> {
    let HostdevSource::Pci { addr, .. } = source else {
        return Err(unvalidated(spec, Rule::UsbHostdevNic));
    };
    let tags = spec.iface.vlan_tags();
    if tags.len() > 1 {
        return Err(unvalidated(spec, Rule::VfVlanTrunk));
    }
    plan.steps.push(HostStep::PrepareVf {
        nic: spec.index,
        pci: host_pci(spec, &addr.value)?,
        mac: spec.iface.mac(),
        vlan: tags.first().copied(),
        managed,
    });
    plan.backend = PlannedBackend::Vfio;
    Ok(())
}

/// The host's PCI address of a `<source><address>`; a domain beyond 16 bits is refused.
fn host_pci(spec: &NicSpec<'_>, a: &PciAddress) -> Result<PciAddr, VmError> {
    let domain = u16::try_from(a.domain).map_err(|_| {
        unsupported(
            spec,
            &format!(
                "PCI domain {:#x} of {a} is beyond 0xffff, which Linux does not use",
                a.domain
            ),
        )
    })?;
    Ok(PciAddr {
        domain,
        bus: a.bus,
        slot: a.slot,
        function: a.function,
    })
}
