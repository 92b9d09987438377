//! The rules: which operations each applies to and how it is classed. What each looks at
//! and its message are in [`super::interface`] (and [`super::update`]).

use super::{Class, Operation};

use Operation::{Attach, Define, Start, Update};

/// Define, start and attach: what the XML alone decides virtnet cannot run.
const CREATE: &[Operation] = &[Define, Start, Attach];
/// Start and attach only: what is accepted in a definition but cannot run.
const RUN: &[Operation] = &[Start, Attach];
/// Define and start: domain-wide settings (tuning).
const DOMAIN: &[Operation] = &[Define, Start];
/// Hot-plug only.
const ATTACH: &[Operation] = &[Attach];
/// update-device only.
const UPDATE: &[Operation] = &[Update];

/// One rule of the validation layer. Each has one message and applies to the operations
/// [`Rule::ops`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// `<script>`/`<downscript>` on a type other than `ethernet`: as libvirt's QEMU driver,
    /// scripts run only for `type='ethernet'` taps (virtnet runs them itself around the tap it
    /// creates; conf refuses them on types without a tap, this rule also on a network NIC
    /// resolved onto a vhost-user switch port).
    ScriptNeedsEthernet,
    /// `<backend type='passt'/>`: virtnet does not run passt.
    PasstNotSupported,
    /// `type='vhostuser'` without `<source type='unix'>` (and without passt).
    VhostUserNeedsSocket,
    /// `<reconnect>` on a vhost-user socket QEMU listens on.
    ReconnectNeedsClient,
    /// `<backend vhost='...'/>` on a type without a tap.
    BackendVhostWithoutTap,
    /// `type='vdpa'`: no vhost-vdpa fd plumbing in virtnet.
    VdpaNotSupported,
    /// `type='hostdev'` with a USB `<source>`: parsed, formatted and stored (as libvirt does),
    /// never assigned; `<hostdev mode='subsystem' type='usb'>` is the way.
    UsbHostdevNic,
    /// `type='network'` handed to start or attach without being resolved onto a running
    /// virtnet-vswitch network (virtnetd resolves them first).
    NetworkNotResolved,
    /// `server`/`client`/`mcast`/`udp` cannot be hot-plugged (libvirt refuses them too).
    SocketBackendNotHotpluggable,
    /// `<driver name='vhost'/>` on a TCG guest, which never uses vhost-net.
    VhostNetOnTcg,
    /// `<driver name='vhost'/>` on a host where `/dev/vhost-net` cannot be used.
    VhostNetUnavailable,
    /// `<target managed='no'/>` on a type other than `ethernet`.
    UnmanagedTargetNotEthernet,
    /// `type='ethernet'` with `<target managed='no'/>` but no `dev`.
    UnmanagedTapNeedsName,
    /// Host-side `<ip>`/`<route>` on `type='ethernet'`.
    EthernetHostIp,
    /// More tap queues than a tap has.
    TapQueuesAbove256,
    /// `<link state='down'/>` on a hostdev NIC: a VF has no QEMU link to hold down.
    HostdevLinkDown,
    /// `<driver name>` other than `vfio` on a hostdev NIC.
    HostdevDriverNotVfio,
    /// A virtio NIC with a guest address that is not PCI (x86 has no ccw/mmio NICs).
    VirtioNeedsPciAddress,
    /// `<rom>` tuning on a NIC that is not a PCI device.
    RomNeedsPci,
    /// Several VLAN tags on an SR-IOV VF.
    VfVlanTrunk,
    /// No MAC at start or attach (define assigns one).
    MacRequired,
    /// A PCI NIC hot-plugged into an i440fx VM running without ACPI (`acpi=off`): PCI
    /// hot-plug on i440fx goes through ACPI, the guest would never see it.
    HotplugNeedsAcpi,
    /// update-device changes something other than the link state or a vhost-user socket.
    UpdateNotChangeable,
    /// A live vhost-user socket change without `replug`.
    SocketChangeNeedsReplug,
    /// A live link-state change of a hostdev NIC (a VF has no QEMU link).
    HostdevLinkNotChangeable,
    /// `<memtune><min_guarantee>`: libvirt supports it on ESX only; nothing enforces it.
    MemtuneMinGuarantee,
    /// An unknown child of `<memtune>`.
    MemtuneUnknown,
    /// `<swap_hard_limit>` below `<hard_limit>` (libvirt refuses it too).
    MemtuneSwapBelowHard,
    /// A `<cputune>` child virtnet does not enforce (pinning, per-thread bandwidth,
    /// schedulers, resctrl, unknown ones).
    CputuneNotEnforced,
    /// `<shares>`, `<global_period>` or `<global_quota>` out of the kernel's range.
    CputuneRange,
    /// A `<seclabel>` of a model virtnet does not apply (SELinux, AppArmor, or no model).
    SecLabelModel,
    /// A DAC `<seclabel>` virtnet cannot honour (no or malformed label, root, relabel='no').
    SecLabelDac,
    /// Content inside `<interface>` the model does not know (libvirt's schema would reject
    /// it; kept, it would be carried along and never applied).
    UnknownContent,
    /// `<virtualport>` virtnet does not run: 802.1Qbg/Qbh, MidoNet, none given, or Open
    /// vSwitch on a type other than `bridge` (the Open vSwitch network form is not done).
    VirtualPortNotSupported,
    /// A setting on an Open vSwitch port (`type='bridge'` with `<virtualport
    /// type='openvswitch'>`) virtnet enforces only on Linux bridge ports and taps:
    /// `<bandwidth>`, `<filterref>`, `<port isolated>`.
    OvsPortSetting,
    /// `<vlan>` on a type where nothing tags frames (only virtnet-vswitch ports and hostdev
    /// VFs, through their PF, do).
    VlanNotEnforced,
    /// `<bandwidth>` on a type where nothing limits rates (taps, macvtaps and switch ports do).
    BandwidthNotEnforced,
    /// `<bandwidth>` `floor`: no guaranteed-minimum scheduling anywhere.
    BandwidthFloor,
    /// `<filterref>` on a type where nothing filters (taps and switch ports do).
    FilterNotEnforced,
    /// `<filterref>` naming a filter or parameter virtnet does not implement.
    FilterInvalid,
    /// `<port isolated='yes'/>` on a type without a bridge or switch port.
    PortIsolationNoPort,
    /// `<source portgroup>` of a network NIC: virtnet-vswitch networks have no port groups
    /// (checked when the NIC is resolved: Open vSwitch networks have them).
    NetworkPortgroup,
    /// `<source bridge>` or `<virtualport>` of a NIC on a virtnet-vswitch network (Open vSwitch
    /// networks have a bridge and take virtual ports); checked when the NIC is resolved.
    NetworkNotOvs,
    /// `<source portid>` of a network NIC other than the port virtnet names.
    NetworkForeignPortid,
    /// `<coalesce>`: virtnet sets no interrupt coalescing on taps.
    CoalesceNotEnforced,
    /// `<tune><sndbuf>` on a type that gives QEMU no tap.
    SndbufNeedsTap,
    /// `<backend tap/logFile/hostname/fqdn>` outside passt (a tap path virtnet never opens).
    BackendNotApplied,
    /// `<driver>` settings on a NIC that is not virtio (or on a VF, beyond `name`).
    DriverNeedsVirtio,
    /// `<guest dev/actual>`: container guests only.
    GuestNameNotApplied,
    /// Guest-side `<ip>`/`<route>` where nothing hands them to the guest.
    GuestIpNotApplied,
    /// `<mtu>` where neither a host device nor a virtio NIC gets it.
    MtuNotApplied,
    /// `trustGuestRxFilters='yes'`: guest RX filter changes are not followed.
    TrustGuestRxFilters,
    /// `<backenddomain>` (Xen driver domains).
    BackendDomain,
    /// `<target dev>` on a type without a host tap or macvtap to name.
    TargetNotApplied,
    /// `<model>` on a hostdev NIC: the VF is passed through as itself.
    HostdevModel,
    /// `<boot loadparm>`: an s390 (ccw) boot parameter x86 has no use for.
    BootLoadparm,
}

impl Rule {
    /// Every interface rule, in the order they are checked.
    pub const INTERFACE: &'static [Rule] = &[
        Rule::MacRequired,
        Rule::NetworkNotResolved,
        Rule::VdpaNotSupported,
        Rule::UsbHostdevNic,
        Rule::PasstNotSupported,
        Rule::VhostUserNeedsSocket,
        Rule::ReconnectNeedsClient,
        Rule::ScriptNeedsEthernet,
        Rule::BackendVhostWithoutTap,
        Rule::UnmanagedTargetNotEthernet,
        Rule::UnmanagedTapNeedsName,
        Rule::EthernetHostIp,
        Rule::TapQueuesAbove256,
        Rule::VfVlanTrunk,
        Rule::HostdevLinkDown,
        Rule::HostdevDriverNotVfio,
        Rule::VirtioNeedsPciAddress,
        Rule::RomNeedsPci,
        Rule::VhostNetOnTcg,
        Rule::VhostNetUnavailable,
        Rule::SocketBackendNotHotpluggable,
        Rule::HotplugNeedsAcpi,
        Rule::UnknownContent,
        Rule::VirtualPortNotSupported,
        Rule::OvsPortSetting,
        Rule::VlanNotEnforced,
        Rule::BandwidthFloor,
        Rule::BandwidthNotEnforced,
        Rule::FilterNotEnforced,
        Rule::FilterInvalid,
        Rule::PortIsolationNoPort,
        Rule::NetworkPortgroup,
        Rule::NetworkNotOvs,
        Rule::NetworkForeignPortid,
        Rule::CoalesceNotEnforced,
        Rule::SndbufNeedsTap,
        Rule::BackendNotApplied,
        Rule::DriverNeedsVirtio,
        Rule::GuestNameNotApplied,
        Rule::GuestIpNotApplied,
        Rule::MtuNotApplied,
        Rule::TrustGuestRxFilters,
        Rule::BackendDomain,
        Rule::TargetNotApplied,
        Rule::HostdevModel,
        Rule::BootLoadparm,
    ];

    /// Every tuning rule (`<memtune>`, `<cputune>`), in the order they are checked.
    pub const TUNING: &'static [Rule] = &[
        Rule::MemtuneMinGuarantee,
        Rule::MemtuneUnknown,
        Rule::MemtuneSwapBelowHard,
        Rule::CputuneNotEnforced,
        Rule::CputuneRange,
    ];

    /// The operations the rule applies to.
    pub fn ops(self) -> &'static [Operation] {
        match self {
            Rule::ScriptNeedsEthernet
            | Rule::PasstNotSupported
            | Rule::VhostUserNeedsSocket
            | Rule::ReconnectNeedsClient
            | Rule::BackendVhostWithoutTap
            | Rule::VdpaNotSupported
            | Rule::VhostNetOnTcg
            | Rule::UnmanagedTargetNotEthernet
            | Rule::UnmanagedTapNeedsName
            | Rule::EthernetHostIp
            | Rule::TapQueuesAbove256
            | Rule::VfVlanTrunk
            | Rule::HostdevLinkDown
            | Rule::HostdevDriverNotVfio
            | Rule::VirtioNeedsPciAddress
            | Rule::RomNeedsPci
            | Rule::SecLabelModel
            | Rule::SecLabelDac
            | Rule::UnknownContent
            | Rule::VirtualPortNotSupported
            | Rule::OvsPortSetting
            | Rule::VlanNotEnforced
            | Rule::BandwidthNotEnforced
            | Rule::BandwidthFloor
            | Rule::FilterNotEnforced
            | Rule::FilterInvalid
            | Rule::PortIsolationNoPort
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
            | Rule::BootLoadparm => CREATE,
            Rule::UsbHostdevNic
            | Rule::NetworkPortgroup
            | Rule::NetworkNotOvs
            | Rule::NetworkNotResolved
            | Rule::VhostNetUnavailable
            | Rule::MacRequired => RUN,
            Rule::SocketBackendNotHotpluggable | Rule::HotplugNeedsAcpi => ATTACH,
            Rule::MemtuneMinGuarantee
            | Rule::MemtuneUnknown
            | Rule::MemtuneSwapBelowHard
            | Rule::CputuneNotEnforced
            | Rule::CputuneRange => DOMAIN,
            Rule::UpdateNotChangeable
            | Rule::SocketChangeNeedsReplug
            | Rule::HostdevLinkNotChangeable => UPDATE,
        }
    }

    /// Whether the configuration cannot work, or only the operation cannot be done.
    pub fn class(self) -> Class {
        match self {
            Rule::SocketBackendNotHotpluggable
            | Rule::HotplugNeedsAcpi
            | Rule::UpdateNotChangeable
            | Rule::SocketChangeNeedsReplug
            | Rule::HostdevLinkNotChangeable => Class::Operation,
            _ => Class::Unsupported,
        }
    }

    /// Whether the argv builder checks this rule itself (as an internal error: it cannot
    /// express the setting, and was handed it unvalidated).
    pub fn argv_guard(self) -> bool {
        matches!(
            self,
            Rule::ScriptNeedsEthernet
                | Rule::PasstNotSupported
                | Rule::VhostUserNeedsSocket
                | Rule::ReconnectNeedsClient
                | Rule::BackendVhostWithoutTap
                | Rule::VhostNetUnavailable
                | Rule::HostdevDriverNotVfio
                | Rule::VirtioNeedsPciAddress
                | Rule::RomNeedsPci
        )
    }
}
