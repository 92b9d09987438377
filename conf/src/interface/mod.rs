//! `<interface>`: the network interface of a guest, the centre of virtnet.
//!
//! [`Interface::from_element`] reads every interface type libvirt's QEMU driver knows into a
//! typed model ([`InterfaceKind`] plus the common sub-elements); anything it does not know is
//! kept as [`Extra`] and written back by [`Interface::to_element`], which produces libvirt's
//! canonical element and attribute order (`virDomainNetDefFormat`).

mod driver;
mod filter;
mod format;
mod ip;
mod kind;
mod mac;
mod model;
mod netdev;
mod parse;
mod parts;
mod util;

#[cfg(test)]
mod tests;
mod unknown;

pub use driver::{Driver, Offloads, GUEST_OFFLOADS, HOST_OFFLOADS};
pub use filter::{
    FilterParam, FilterPart, FilterRef, IpLearning, TrafficFilter, SUPPORTED_FILTERS,
    SUPPORTED_FILTER_PARAMS,
};
pub use ip::{IpAddress, IpInfo, PortForward, PortRange, Route};
pub use kind::{
    HostdevSource, InterfaceKind, InterfaceType, Reconnect, SocketAddr, SocketMode,
    VhostUserSocket, DIRECT_MODES,
};
pub use mac::{MacAddr, MacParseError, QEMU_MAC_PREFIX};
pub use model::{NicModel, KNOWN_MODELS};
pub use netdev::{Bandwidth, Rate, VirtualPort, Vlan, VlanTag, VIRTUALPORT_TYPES};
pub use parts::{
    Backend, Boot, Coalesce, GuestName, Leaf, LinkState, Rom, Target, Teaming, TeamingKind, Tune,
};
pub use unknown::Unknown;
pub use util::Spanned;

use crate::address::{DeviceAddress, PciAddress};
use crate::xml::{Extra, Pos};

/// `<mac address='52:54:00:..' type='generated|static' check='yes|no'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mac {
    /// The address (none until given or assigned with [`Interface::assign_mac`]).
    pub address: Option<Spanned<MacAddr>>,
    /// `generated` or `static`.
    pub kind: Option<String>,
    /// Whether the host checks the address (ESX).
    pub check: Option<bool>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// One `<interface>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Where the element starts in the input.
    pub pos: Pos,
    /// The guest address, if given or assigned.
    pub address: Option<DeviceAddress>,
    /// The type and its typed source.
    pub kind: InterfaceKind,
    /// `trustGuestRxFilters='yes|no'`.
    pub trust_guest_rx_filters: Option<bool>,
    /// `<mac>`.
    pub mac: Option<Mac>,
    /// `<source dev>` of type user/vhostuser with the passt back end (host interface).
    pub source_dev: Option<Spanned<String>>,
    /// Host-side `<ip>`/`<route>` inside `<source>` (type ethernet).
    pub host_ip: IpInfo,
    /// Unknown content of `<source>`.
    pub source_extra: Extra,
    /// Position of `<source>` (unknown when absent).
    pub source_pos: Pos,
    /// `<vlan>`.
    pub vlan: Option<Vlan>,
    /// `<virtualport>`.
    pub virtualport: Option<VirtualPort>,
    /// `<bandwidth>`.
    pub bandwidth: Option<Bandwidth>,
    /// `<port isolated='yes'/>`.
    pub port_isolated: Option<Leaf<bool>>,
    /// Guest-side `<ip>`/`<route>` (user networking).
    pub guest_ip: IpInfo,
    /// passt `<portForward>` rules.
    pub port_forwards: Vec<PortForward>,
    /// `<script path>`.
    pub script: Option<Leaf<String>>,
    /// `<downscript path>`.
    pub downscript: Option<Leaf<String>>,
    /// `<backenddomain name>` (Xen).
    pub backend_domain: Option<Leaf<String>>,
    /// `<target>`.
    pub target: Option<Target>,
    /// `<guest>`.
    pub guest: Option<GuestName>,
    /// `<model type>`.
    pub model: Option<Leaf<NicModel>>,
    /// `<driver>`.
    pub driver: Option<Driver>,
    /// `<backend>`.
    pub backend: Option<Backend>,
    /// `<filterref>`.
    pub filterref: Option<FilterRef>,
    /// `<tune>`.
    pub tune: Option<Tune>,
    /// `<teaming>`.
    pub teaming: Option<Teaming>,
    /// `<link state>`.
    pub link: Option<Leaf<LinkState>>,
    /// `<mtu size>`.
    pub mtu: Option<Leaf<u32>>,
    /// `<coalesce>`.
    pub coalesce: Option<Coalesce>,
    /// `<boot order>`.
    pub boot: Option<Boot>,
    /// `<alias name>`.
    pub alias: Option<Leaf<String>>,
    /// `<rom>`.
    pub rom: Option<Rom>,
    /// `<acpi index>`.
    pub acpi_index: Option<Leaf<u32>>,
    /// Unknown attributes and child elements of `<interface>`, written back last.
    pub extra: Extra,
}

impl Interface {
    /// A new interface of the given kind with nothing else set (for building in code).
    pub fn new(kind: InterfaceKind) -> Interface {
        Interface {
            pos: Pos::UNKNOWN,
            address: None,
            kind,
            trust_guest_rx_filters: None,
            mac: None,
            source_dev: None,
            host_ip: IpInfo::default(),
            source_extra: Extra::default(),
            source_pos: Pos::UNKNOWN,
            vlan: None,
            virtualport: None,
            bandwidth: None,
            port_isolated: None,
            guest_ip: IpInfo::default(),
            port_forwards: Vec::new(),
            script: None,
            downscript: None,
            backend_domain: None,
            target: None,
            guest: None,
            model: None,
            driver: None,
            backend: None,
            filterref: None,
            tune: None,
            teaming: None,
            link: None,
            mtu: None,
            coalesce: None,
            boot: None,
            alias: None,
            rom: None,
            acpi_index: None,
            extra: Extra::default(),
        }
    }

    /// The type with its typed source.
    pub fn kind(&self) -> &InterfaceKind {
        &self.kind
    }

    /// The plain type.
    pub fn type_(&self) -> InterfaceType {
        self.kind.type_()
    }

    /// The guest MAC, if given or assigned (all-zero counts as not given, as in libvirt).
    pub fn mac(&self) -> Option<MacAddr> {
        self.mac
            .as_ref()
            .and_then(|m| m.address.as_ref())
            .map(|a| a.value)
            .filter(|a| !a.is_zero())
    }

    /// Sets the MAC from `gen` when none is given (libvirt generates one at parse time; we keep
    /// the model deterministic and let the caller supply the random source).
    pub fn assign_mac(&mut self, mut gen: impl FnMut() -> MacAddr) {
        if self.mac().is_none() {
            let mac = self.mac.get_or_insert_with(Mac::default);
            mac.address = Some(Spanned::new(gen()));
        }
    }

    /// Gives an Open vSwitch virtual port without an `interfaceid` one from `gen` (libvirt
    /// generates one when it reads the definition, and keeps it), as well as a type-less
    /// `<virtualport>` of a `type='network'` NIC (its network decides the type; libvirt fills
    /// in its missing defaults too); other NICs are unchanged. Returns whether one was
    /// assigned.
    pub fn assign_interfaceid(&mut self, gen: impl FnOnce() -> crate::domain::Uuid) -> bool {
        let network = matches!(self.kind, InterfaceKind::Network { .. });
        match self.virtualport.as_mut() {
            Some(vp)
                if (vp.is_openvswitch() || (network && vp.kind.is_none()))
                    && vp.interfaceid.is_none() =>
            {
                vp.interfaceid = Some(gen().to_string());
                true
            }
            _ => false,
        }
    }

    /// The NIC model, if given or defaulted.
    pub fn model(&self) -> Option<&NicModel> {
        self.model.as_ref().map(|m| &m.value)
    }

    /// Whether the model is a virtio-net one.
    pub fn is_virtio(&self) -> bool {
        self.model().is_some_and(NicModel::is_virtio)
    }

    /// The number of queue pairs (multiqueue), when more than one is configured on a virtio
    /// model (libvirt ignores `<driver>` settings of other models and of hostdev interfaces).
    pub fn queues(&self) -> Option<u32> {
        if !self.is_virtio() || self.is_hostdev() {
            return None;
        }
        self.driver
            .as_ref()
            .and_then(|d| d.queues.as_ref())
            .map(|q| q.value)
    }

    /// The host-side device name (`<target dev>`).
    pub fn target_dev(&self) -> Option<&str> {
        self.target
            .as_ref()
            .and_then(|t| t.dev.as_ref())
            .map(|d| d.value.as_str())
    }

    /// Whether virtnet creates and deletes the host tap (`<target managed>`, default yes).
    pub fn target_managed(&self) -> bool {
        self.target.as_ref().and_then(|t| t.managed).unwrap_or(true)
    }

    /// Whether the link is up (`<link state>`, default up).
    pub fn link_up(&self) -> bool {
        !matches!(self.link.as_ref().map(|l| l.value), Some(LinkState::Down))
    }

    /// `<mtu size>`.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu.as_ref().map(|m| m.value)
    }

    /// The VLAN tags (empty when none).
    pub fn vlan_tags(&self) -> Vec<u16> {
        self.vlan
            .as_ref()
            .map(|v| v.tags.iter().map(|t| t.id).collect())
            .unwrap_or_default()
    }

    /// `<boot order>`.
    pub fn boot_order(&self) -> Option<u32> {
        self.boot.as_ref().map(|b| b.order.value)
    }

    /// The vhost-user socket path and which side listens.
    pub fn vhostuser_socket(&self) -> Option<(&str, SocketMode)> {
        match &self.kind {
            InterfaceKind::VhostUser { socket: Some(sock) } => {
                Some((sock.path.value.as_str(), sock.mode))
            }
            _ => None,
        }
    }

    /// The host PCI address of a hostdev interface's VF.
    pub fn hostdev_source(&self) -> Option<PciAddress> {
        match &self.kind {
            InterfaceKind::Hostdev {
                source: HostdevSource::Pci { addr, .. },
                ..
            } => Some(addr.value),
            _ => None,
        }
    }

    /// Whether this NIC needs a guest PCI address: false for USB NICs (`usb-net`, USB hostdev)
    /// and when a non-PCI guest address is given.
    pub fn wants_pci_address(&self) -> bool {
        if self.model().is_some_and(NicModel::is_usb) {
            return false;
        }
        if matches!(
            self.kind,
            InterfaceKind::Hostdev {
                source: HostdevSource::Usb { .. },
                ..
            }
        ) {
            return false;
        }
        matches!(self.address, None | Some(DeviceAddress::Pci { .. }))
    }

    /// The user alias (`<alias name='ua-...'/>`), if any.
    pub fn alias(&self) -> Option<&str> {
        self.alias.as_ref().map(|a| a.value.as_str())
    }

    /// Whether this is `<interface type='hostdev'>` (a VF passed through with vfio-pci).
    pub fn is_hostdev(&self) -> bool {
        self.type_() == InterfaceType::Hostdev
    }

    /// Whether the passt back end is selected (`<backend type='passt'/>`).
    pub fn is_passt(&self) -> bool {
        self.backend.as_ref().is_some_and(Backend::is_passt)
    }

    /// A short name for messages: the MAC, else the alias, else the type.
    pub fn describe(&self) -> String {
        match (self.mac(), self.alias()) {
            (Some(m), _) => format!("interface {m}"),
            (None, Some(a)) => format!("interface {a}"),
            (None, None) => format!("interface type='{}'", self.type_()),
        }
    }

    /// Fills libvirt's post-parse defaults that do not depend on the rest of the domain:
    /// the default model (virtio for vhost-user and vDPA, which need it; rtl8139, libvirt's
    /// x86 default, for the others; none for hostdev). Deterministic; MACs are assigned by
    /// [`Interface::assign_mac`]. Called by [`crate::domain::Domain::fill_defaults`] before
    /// guest addresses are assigned.
    pub fn fill_defaults(&mut self) {
        if self.model.is_none() {
            let model = match self.type_() {
                InterfaceType::Hostdev => None,
                InterfaceType::VhostUser | InterfaceType::Vdpa => Some(NicModel::virtio()),
                _ => Some(NicModel::rtl8139()),
            };
            self.model = model.map(Leaf::new);
        }
    }
}
