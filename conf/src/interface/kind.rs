//! Interface types (`<interface type='...'>`) and their typed `<source>`.

use std::fmt;

use super::util::{require_str, take_choice, take_str, take_uint, take_with, yes_no, Spanned};
use crate::address::PciAddress;
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// The interface types libvirt's QEMU driver knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceType {
    /// A tap on a host bridge.
    Bridge,
    /// A tap set up by a script or pre-existing (`managed='no'`).
    Ethernet,
    /// A libvirt virtual network.
    Network,
    /// macvtap on a host device.
    Direct,
    /// An SR-IOV VF passed through with vfio-pci.
    Hostdev,
    /// A vhost-user socket (DPDK, passt, ...).
    VhostUser,
    /// User-mode networking (SLIRP or passt).
    User,
    /// A vhost-vdpa character device.
    Vdpa,
    /// QEMU socket netdev listening on TCP.
    Server,
    /// QEMU socket netdev connecting over TCP.
    Client,
    /// QEMU socket netdev on a multicast group.
    Mcast,
    /// QEMU socket netdev over UDP.
    Udp,
}

impl InterfaceType {
    /// Every type, in libvirt's documentation order.
    pub const ALL: [InterfaceType; 12] = [
        InterfaceType::User,
        InterfaceType::Ethernet,
        InterfaceType::VhostUser,
        InterfaceType::Server,
        InterfaceType::Client,
        InterfaceType::Mcast,
        InterfaceType::Network,
        InterfaceType::Bridge,
        InterfaceType::Direct,
        InterfaceType::Hostdev,
        InterfaceType::Udp,
        InterfaceType::Vdpa,
    ];

    /// The XML name.
    pub fn as_str(&self) -> &'static str {
        match self {
            InterfaceType::Bridge => "bridge",
            InterfaceType::Ethernet => "ethernet",
            InterfaceType::Network => "network",
            InterfaceType::Direct => "direct",
            InterfaceType::Hostdev => "hostdev",
            InterfaceType::VhostUser => "vhostuser",
            InterfaceType::User => "user",
            InterfaceType::Vdpa => "vdpa",
            InterfaceType::Server => "server",
            InterfaceType::Client => "client",
            InterfaceType::Mcast => "mcast",
            InterfaceType::Udp => "udp",
        }
    }

    /// Reads an XML name.
    pub fn parse(s: &str) -> Option<InterfaceType> {
        InterfaceType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the host side is a tap device (bridge, network, ethernet): only those take
    /// `<backend tap>`, scripts and nwfilters.
    pub fn uses_tap(&self) -> bool {
        matches!(
            self,
            InterfaceType::Bridge | InterfaceType::Network | InterfaceType::Ethernet
        )
    }
}

impl fmt::Display for InterfaceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// macvtap modes (`<source dev='eth0' mode='bridge'/>`).
pub const DIRECT_MODES: &[&str] = &["vepa", "private", "bridge", "passthrough"];

/// Which side of a vhost-user socket QEMU takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketMode {
    /// QEMU listens (`mode='server'`); the back end connects.
    Server,
    /// QEMU connects (`mode='client'`); the back end listens.
    Client,
}

impl SocketMode {
    /// `server` / `client`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SocketMode::Server => "server",
            SocketMode::Client => "client",
        }
    }
}

/// `<reconnect enabled='yes' timeout='10'/>` inside a vhost-user `<source>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    /// Whether QEMU reconnects after the back end goes away.
    pub enabled: bool,
    /// Seconds between attempts (required when enabled).
    pub timeout: Option<u32>,
    /// Unknown content.
    pub extra: Extra,
}

/// The unix socket of a vhost-user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostUserSocket {
    /// Socket path.
    pub path: Spanned<String>,
    /// Which side listens.
    pub mode: SocketMode,
    /// Reconnect policy (client mode).
    pub reconnect: Option<Reconnect>,
}

/// address/port of a QEMU socket netdev (`server`, `client`, `mcast`, `udp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAddr {
    /// Host or IP (optional for `server`: all addresses).
    pub address: Option<Spanned<String>>,
    /// TCP/UDP port.
    pub port: Spanned<u16>,
}

/// The host device behind `<interface type='hostdev'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostdevSource {
    /// `<address type='pci' domain bus slot function/>`: a PCI function (SR-IOV VF).
    Pci {
        /// The host PCI address.
        addr: Spanned<PciAddress>,
        /// Unknown attributes of the `<address>` element.
        extra: Extra,
    },
    /// `<vendor id/><product id/>` and/or `<address bus device/>`: a USB device.
    Usb {
        /// USB vendor id.
        vendor: Option<u16>,
        /// USB product id.
        product: Option<u16>,
        /// USB bus and device number.
        bus_device: Option<(u32, u32)>,
        /// Position of `<source>`.
        pos: Pos,
    },
}

/// The interface type with its typed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceKind {
    /// `<source bridge='br0'/>`.
    Bridge {
        /// Host bridge name.
        bridge: Spanned<String>,
    },
    /// No source (host addresses, if any, are in [`super::Interface::host_ip`]).
    Ethernet,
    /// `<source network='default' portgroup='...' portid='...'/>`.
    Network {
        /// Network name.
        network: Spanned<String>,
        /// Port group.
        portgroup: Option<String>,
        /// Port UUID (live definitions).
        portid: Option<String>,
        /// The bridge the network put the NIC on (live XML of an Open vSwitch network's NIC,
        /// as libvirt shows it); at start it must be the network's.
        bridge: Option<String>,
    },
    /// `<source dev='eth0' mode='vepa'/>`.
    Direct {
        /// Host link device.
        dev: Spanned<String>,
        /// macvtap mode (default `vepa`).
        mode: String,
    },
    /// `<interface type='hostdev' managed='yes'>` with `<source>` (the `<driver name>` is in
    /// [`super::Interface::driver`]).
    Hostdev {
        /// Whether virtnet binds the device to vfio-pci and back.
        managed: bool,
        /// The host device.
        source: HostdevSource,
    },
    /// `<source type='unix' path='...' mode='client|server'/>`; no socket with the passt
    /// back end (virtnet creates the socket).
    VhostUser {
        /// The socket, unless passt provides it.
        socket: Option<VhostUserSocket>,
    },
    /// User networking (passt's `<source dev>` is in [`super::Interface::source_dev`]).
    User,
    /// `<source dev='/dev/vhost-vdpa-0'/>`.
    Vdpa {
        /// The vhost-vdpa character device.
        dev: Spanned<String>,
    },
    /// Socket netdev, listening.
    Server(SocketAddr),
    /// Socket netdev, connecting.
    Client(SocketAddr),
    /// Socket netdev, multicast.
    Mcast(SocketAddr),
    /// Socket netdev over UDP: remote and `<local>` ends.
    Udp {
        /// The peer.
        remote: SocketAddr,
        /// The local end (`<local address port/>`).
        local: SocketAddr,
        /// Unknown content of `<local>`.
        local_extra: Extra,
    },
}

impl InterfaceKind {
    /// The plain type.
    pub fn type_(&self) -> InterfaceType {
        match self {
            InterfaceKind::Bridge { .. } => InterfaceType::Bridge,
            InterfaceKind::Ethernet => InterfaceType::Ethernet,
            InterfaceKind::Network { .. } => InterfaceType::Network,
            InterfaceKind::Direct { .. } => InterfaceType::Direct,
            InterfaceKind::Hostdev { .. } => InterfaceType::Hostdev,
            InterfaceKind::VhostUser { .. } => InterfaceType::VhostUser,
            InterfaceKind::User => InterfaceType::User,
            InterfaceKind::Vdpa { .. } => InterfaceType::Vdpa,
            InterfaceKind::Server(_) => InterfaceType::Server,
            InterfaceKind::Client(_) => InterfaceType::Client,
            InterfaceKind::Mcast(_) => InterfaceType::Mcast,
            InterfaceKind::Udp { .. } => InterfaceType::Udp,
        }
    }
}

/// What a `<source>` holds besides the typed part.
#[derive(Debug, Default)]
pub(crate) struct SourceRest {
    pub dev: Option<Spanned<String>>,
    pub extra: Extra,
    pub pos: Pos,
}

fn missing_source(pos: Pos, ty: InterfaceType, example: &str) -> ConfError {
    ConfError::MissingElement {
        pos,
        element: "interface".into(),
        child: "source".into(),
        hint: format!("; interface type='{ty}' requires a 'source' element, e.g. {example}"),
    }
}

fn socket_addr(
    src: &mut Element,
    address_required: bool,
    example: &str,
) -> Result<SocketAddr, ConfError> {
    let address = if address_required {
        Some(require_str(src, "address", example)?)
    } else {
        take_str(src, "address")
    };
    let port = take_with(src, "port", "a port number from 0 to 65535", |v| {
        v.parse().ok()
    })?
    .ok_or_else(|| ConfError::MissingAttr {
        pos: src.pos,
        element: src.name.clone(),
        attr: "port".into(),
        hint: format!("; {example}"),
    })?;
    Ok(SocketAddr { address, port })
}

fn parse_reconnect(mut el: Element) -> Result<Reconnect, ConfError> {
    let pos = el.pos;
    let enabled = take_with(&mut el, "enabled", "'yes' or 'no'", |v| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    })?
    .ok_or_else(|| ConfError::MissingAttr {
        pos,
        element: "reconnect".into(),
        attr: "enabled".into(),
        hint: "; e.g. <reconnect enabled='yes' timeout='10'/>".into(),
    })?;
    let timeout = take_uint::<u32>(&mut el, "timeout")?;
    match (&enabled.value, &timeout) {
        (true, None) => {
            return Err(ConfError::MissingAttr {
                pos,
                element: "reconnect".into(),
                attr: "timeout".into(),
                hint: "; reconnect enabled='yes' needs a timeout in seconds, e.g. timeout='10'"
                    .into(),
            })
        }
        (false, Some(t)) => {
            return Err(ConfError::unsupported(
                t.pos,
                "reconnect timeout can't be set when reconnect is disabled; remove timeout \
                 or set enabled='yes'",
            ))
        }
        _ => {}
    }
    Ok(Reconnect {
        enabled: enabled.value,
        timeout: timeout.map(|t| t.value),
        extra: el.into_extra(),
    })
}

fn parse_hostdev_source(mut src: Element) -> Result<(HostdevSource, Element), ConfError> {
    let addr_type = src
        .get_child("address")
        .and_then(|a| a.get_attr("type"))
        .map(str::to_string);
    let is_usb = addr_type.as_deref() == Some("usb")
        || (addr_type.is_none() && src.get_child("vendor").is_some());
    if is_usb {
        let pos = src.pos;
        let mut id = |name: &str| -> Result<Option<u16>, ConfError> {
            let Some(mut e) = src.take_one(name)? else {
                return Ok(None);
            };
            let v = take_with(&mut e, "id", "a hex id like 0x1234", |v| {
                v.strip_prefix("0x")
                    .and_then(|h| u16::from_str_radix(h, 16).ok())
            })?;
            // Kept next to the typed element, the rest would make a second <vendor> that a
            // re-read refuses: refuse it now.
            if let Some(a) = e.attrs.first() {
                return Err(ConfError::unsupported(
                    if a.pos.is_known() { a.pos } else { e.pos },
                    format!(
                        "<{name}> has unknown attribute '{}': it holds only id='0x....'; \
                         remove it",
                        a.name
                    ),
                ));
            }
            if let Some(c) = e.children.first() {
                return Err(ConfError::unsupported(
                    c.pos,
                    format!("<{name}> holds only an id attribute; remove <{}>", c.name),
                ));
            }
            Ok(v.map(|v| v.value))
        };
        let vendor = id("vendor")?;
        let product = id("product")?;
        let mut bus_device = None;
        if let Some(mut a) = src.take_one("address")? {
            a.take_attr("type");
            let bus = take_uint::<u32>(&mut a, "bus")?;
            let device = take_uint::<u32>(&mut a, "device")?;
            if let (Some(b), Some(d)) = (bus, device) {
                bus_device = Some((b.value, d.value));
            }
        }
        return Ok((
            HostdevSource::Usb {
                vendor,
                product,
                bus_device,
                pos,
            },
            src,
        ));
    }
    let addr_el = src
        .take_one("address")?
        .ok_or_else(|| ConfError::MissingElement {
            pos: src.pos,
            element: "source".into(),
            child: "address".into(),
            hint: "; a hostdev interface needs the VF's host PCI address, e.g. <source><address \
               type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source>"
                .into(),
        })?;
    let pos = addr_el.pos;
    if addr_el.get_attr("type").is_none() {
        return Err(ConfError::MissingAttr {
            pos,
            element: "address".into(),
            attr: "type".into(),
            hint: "; unknown host device source address type: use type='pci'".into(),
        });
    }
    let (addr, extra) = PciAddress::from_element(addr_el)?;
    Ok((
        HostdevSource::Pci {
            addr: Spanned::at(addr, pos),
            extra,
        },
        src,
    ))
}

/// Reads the type-specific `<source>` (and for hostdev the `managed` attribute and
/// `<driver>`). `iface` is the `<interface>` element, `backend_passt` whether
/// `<backend type='passt'>` is present.
pub(crate) fn parse_kind(
    ty: InterfaceType,
    iface: &mut Element,
    source: Option<Element>,
    backend_passt: bool,
) -> Result<(InterfaceKind, SourceRest), ConfError> {
    let mut rest = SourceRest::default();
    let iface_pos = iface.pos;
    let need = |example: &str| -> Result<Element, ConfError> {
        source
            .clone()
            .ok_or_else(|| missing_source(iface_pos, ty, example))
    };
    let kind;
    let src: Option<Element>;
    match ty {
        InterfaceType::Bridge => {
            let mut s = need("<source bridge='br0'/>")?;
            let bridge = require_str(&mut s, "bridge", "name the host bridge, e.g. bridge='br0'")?;
            kind = InterfaceKind::Bridge { bridge };
            src = Some(s);
        }
        InterfaceType::Network => {
            let mut s = need("<source network='default'/>")?;
            let network = require_str(
                &mut s,
                "network",
                "name the virtual network, e.g. network='default'",
            )?;
            kind = InterfaceKind::Network {
                network,
                portgroup: s.take_attr_value("portgroup"),
                portid: s.take_attr_value("portid"),
                bridge: s.take_attr_value("bridge"),
            };
            src = Some(s);
        }
        InterfaceType::Direct => {
            let mut s = need("<source dev='eth0' mode='bridge'/>")?;
            let dev = require_str(&mut s, "dev", "name the host link, e.g. dev='eth0'")?;
            let mode = take_choice(&mut s, "mode", DIRECT_MODES)?
                .map_or_else(|| "vepa".to_string(), |m| m.value);
            kind = InterfaceKind::Direct { dev, mode };
            src = Some(s);
        }
        InterfaceType::Vdpa => {
            let mut s = need("<source dev='/dev/vhost-vdpa-0'/>")?;
            let dev = require_str(&mut s, "dev", "e.g. dev='/dev/vhost-vdpa-0'")?;
            kind = InterfaceKind::Vdpa { dev };
            src = Some(s);
        }
        InterfaceType::Server | InterfaceType::Client | InterfaceType::Mcast => {
            let example = match ty {
                InterfaceType::Server => "<source address='192.168.0.1' port='5558'/>",
                InterfaceType::Client => "<source address='192.168.0.1' port='5558'/>",
                _ => "<source address='230.0.0.1' port='5558'/>",
            };
            let mut s = need(example)?;
            let a = socket_addr(&mut s, ty != InterfaceType::Server, example)?;
            kind = match ty {
                InterfaceType::Server => InterfaceKind::Server(a),
                InterfaceType::Client => InterfaceKind::Client(a),
                _ => InterfaceKind::Mcast(a),
            };
            src = Some(s);
        }
        InterfaceType::Udp => {
            let example = "<source address='192.168.10.1' port='5555'><local \
                           address='192.168.10.2' port='5556'/></source>";
            let mut s = need(example)?;
            let remote = socket_addr(&mut s, true, example)?;
            let mut local_el = s
                .take_one("local")?
                .ok_or_else(|| ConfError::MissingElement {
                    pos: s.pos,
                    element: "source".into(),
                    child: "local".into(),
                    hint: format!(
                        "; '<local>' element missing for 'udp' socket interface: {example}"
                    ),
                })?;
            let local = socket_addr(&mut local_el, true, example)?;
            let local_extra = local_el.into_extra();
            kind = InterfaceKind::Udp {
                remote,
                local,
                local_extra,
            };
            src = Some(s);
        }
        InterfaceType::VhostUser => {
            let example = "<source type='unix' path='/run/vhost-user0.sock' mode='client'/>";
            let mut s = match (&source, backend_passt) {
                (Some(s), _) => s.clone(),
                (None, true) => Element::new("source"),
                (None, false) => return Err(missing_source(iface_pos, ty, example)),
            };
            let has_socket =
                s.get_attr("type").is_some() || s.get_attr("path").is_some() || !backend_passt;
            let socket = if has_socket {
                let t = require_str(&mut s, "type", &format!("use {example}"))?;
                if t.value != "unix" {
                    return Err(ConfError::unsupported(
                        t.pos,
                        format!(
                            "Type='{}' unsupported for <interface type='vhostuser'>: use \
                             type='unix'",
                            t.value
                        ),
                    ));
                }
                let path = require_str(&mut s, "path", &format!("use {example}"))?;
                let mode = take_with(&mut s, "mode", "'server' or 'client'", |v| match v {
                    "server" => Some(SocketMode::Server),
                    "client" => Some(SocketMode::Client),
                    _ => None,
                })?
                .ok_or_else(|| ConfError::MissingAttr {
                    pos: s.pos,
                    element: "source".into(),
                    attr: "mode".into(),
                    hint: "; mode='client' (the back end listens) or mode='server' (QEMU \
                           listens)"
                        .into(),
                })?;
                let reconnect = s.take_one("reconnect")?.map(parse_reconnect).transpose()?;
                Some(VhostUserSocket {
                    path,
                    mode: mode.value,
                    reconnect,
                })
            } else {
                None
            };
            rest.dev = take_str(&mut s, "dev");
            kind = InterfaceKind::VhostUser { socket };
            src = source.is_some().then_some(s);
        }
        InterfaceType::User => {
            src = source.map(|mut s| {
                rest.dev = take_str(&mut s, "dev");
                s
            });
            kind = InterfaceKind::User;
        }
        InterfaceType::Ethernet => {
            src = source;
            kind = InterfaceKind::Ethernet;
        }
        InterfaceType::Hostdev => {
            let managed = take_with(iface, "managed", "'yes' or 'no'", |v| match v {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            })?
            .is_some_and(|m| m.value);
            let s = need(
                "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' \
                 function='0x1'/></source>",
            )?;
            let (source, s) = parse_hostdev_source(s)?;
            kind = InterfaceKind::Hostdev { managed, source };
            src = Some(s);
        }
    }
    if let Some(s) = src {
        rest.pos = s.pos;
        rest.extra = s.into_extra();
    }
    Ok((kind, rest))
}

/// Writes `<source>` for the kind (for hostdev: `<driver>` then `<source>`), with the
/// host-side addresses and unknown content.
pub(crate) fn format_source(
    kind: &InterfaceKind,
    dev: Option<&Spanned<String>>,
    host_ip: &super::ip::IpInfo,
    extra: &Extra,
    out: &mut Element,
) {
    let mut s = Element::new("source");
    match kind {
        InterfaceKind::Bridge { bridge } => s.push_attr("bridge", &bridge.value),
        InterfaceKind::Network {
            network,
            portgroup,
            portid,
            bridge,
        } => {
            s.push_attr("network", &network.value);
            if let Some(p) = portgroup {
                s.push_attr("portgroup", p);
            }
            if let Some(p) = portid {
                s.push_attr("portid", p);
            }
            if let Some(b) = bridge {
                s.push_attr("bridge", b);
            }
        }
        InterfaceKind::Direct { dev, mode } => {
            s.push_attr("dev", &dev.value);
            s.push_attr("mode", mode);
        }
        InterfaceKind::Vdpa { dev } => s.push_attr("dev", &dev.value),
        InterfaceKind::Server(a) | InterfaceKind::Client(a) | InterfaceKind::Mcast(a) => {
            put_socket_addr(&mut s, a)
        }
        InterfaceKind::Udp {
            remote,
            local,
            local_extra,
        } => {
            put_socket_addr(&mut s, remote);
            let mut l = Element::new("local");
            put_socket_addr(&mut l, local);
            s.children.push(l.with_extra(local_extra));
        }
        InterfaceKind::VhostUser { socket } => {
            if let Some(sock) = socket {
                s.push_attr("type", "unix");
                s.push_attr("path", &sock.path.value);
                s.push_attr("mode", sock.mode.as_str());
                if let Some(r) = &sock.reconnect {
                    let mut re = Element::new("reconnect").attr("enabled", yes_no(r.enabled));
                    if r.enabled {
                        if let Some(t) = r.timeout {
                            re.push_attr("timeout", t);
                        }
                    }
                    s.children.push(re.with_extra(&r.extra));
                }
            }
        }
        InterfaceKind::Hostdev { source, .. } => match source {
            HostdevSource::Pci { addr, extra } => {
                s.children.push(addr.value.to_element().with_extra(extra))
            }
            HostdevSource::Usb {
                vendor,
                product,
                bus_device,
                ..
            } => {
                if let Some(v) = vendor {
                    s.children
                        .push(Element::new("vendor").attr("id", format!("{v:#06x}")));
                }
                if let Some(p) = product {
                    s.children
                        .push(Element::new("product").attr("id", format!("{p:#06x}")));
                }
                if let Some((b, d)) = bus_device {
                    s.children.push(
                        Element::new("address")
                            .attr("type", "usb")
                            .attr("bus", b)
                            .attr("device", d),
                    );
                }
            }
        },
        InterfaceKind::User | InterfaceKind::Ethernet => {}
    }
    if let Some(d) = dev {
        s.push_attr("dev", &d.value);
    }
    host_ip.put_into(&mut s);
    let s = s.with_extra(extra);
    if !s.is_empty() {
        out.children.push(s);
    }
}

fn put_socket_addr(el: &mut Element, a: &SocketAddr) {
    if let Some(addr) = &a.address {
        el.push_attr("address", &addr.value);
    }
    el.push_attr("port", a.port.value);
}
