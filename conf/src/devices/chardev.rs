//! Character devices: `<serial>`, `<parallel>`, `<console>` and `<channel>`.
//!
//! Their backends get hot-swapped at run time, so the host side (`<source>`) is a typed enum.

use super::info::DevInfo;
use crate::domain::util::{one_of, rank, take_u32, take_yes_no, unpositioned};
use crate::error::ConfError;
use crate::xml::{Attr, Element, Extra, Pos};

/// Which element a character device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChrKind {
    /// `<serial>`.
    Serial,
    /// `<parallel>`.
    Parallel,
    /// `<console>`.
    Console,
    /// `<channel>`.
    Channel,
}

impl ChrKind {
    /// The element name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChrKind::Serial => "serial",
            ChrKind::Parallel => "parallel",
            ChrKind::Console => "console",
            ChrKind::Channel => "channel",
        }
    }

    fn target_types(&self) -> &'static [&'static str] {
        match self {
            ChrKind::Serial => &[
                "isa-serial",
                "usb-serial",
                "pci-serial",
                "spapr-vio-serial",
                "system-serial",
                "sclp-serial",
                "isa-debug",
            ],
            ChrKind::Console => &[
                "serial", "xen", "uml", "virtio", "lxc", "openvz", "sclp", "sclplm",
            ],
            ChrKind::Channel => &["guestfwd", "virtio", "xen"],
            ChrKind::Parallel => &[],
        }
    }
}

/// Host-side source types.
pub const SOURCE_TYPES: &[&str] = &[
    "null",
    "vc",
    "pty",
    "dev",
    "file",
    "pipe",
    "stdio",
    "udp",
    "tcp",
    "unix",
    "spicevmc",
    "spiceport",
    "nmdm",
    "qemu-vdagent",
    "dbus",
];

/// The host side of a character device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChrSource {
    /// `null`: discard output, no input.
    Null,
    /// `vc`: a QEMU virtual console.
    Vc,
    /// `pty`: a pseudo terminal allocated at start (`path` is known once running).
    Pty {
        /// `/dev/pts/N`, if known.
        path: Option<String>,
    },
    /// `stdio`.
    Stdio,
    /// `spicevmc`.
    SpiceVmc,
    /// `dev`: a host character device.
    Dev {
        /// Device path.
        path: String,
    },
    /// `file`: output appended or written to a file.
    File {
        /// File path.
        path: String,
        /// `append='on|off'`.
        append: Option<String>,
    },
    /// `pipe`: a named pipe.
    Pipe {
        /// Pipe path.
        path: String,
    },
    /// `udp`: datagrams sent to `connect_*`, received on `bind_*`.
    Udp {
        /// Local address.
        bind_host: Option<String>,
        /// Local port.
        bind_service: Option<String>,
        /// Remote address.
        connect_host: Option<String>,
        /// Remote port.
        connect_service: Option<String>,
    },
    /// `tcp`: a TCP client (`listen` false) or server.
    Tcp {
        /// Whether QEMU listens (`mode='bind'`).
        listen: bool,
        /// Host or address.
        host: Option<String>,
        /// Port.
        service: Option<String>,
        /// `tls='yes|no'`.
        tls: Option<String>,
        /// `<protocol type>`: `raw` (default), `telnet`, `telnets`, `tls`.
        protocol: String,
        /// `<reconnect>` kept as written.
        reconnect: Option<Element>,
    },
    /// `unix`: a UNIX socket client or server.
    Unix {
        /// Whether QEMU listens (`mode='bind'`).
        listen: bool,
        /// Socket path (None: libvirt picks one at start).
        path: Option<String>,
        /// `<reconnect>` kept as written.
        reconnect: Option<Element>,
    },
    /// `spiceport`.
    SpicePort {
        /// `channel`.
        channel: Option<String>,
    },
    /// `nmdm`, `qemu-vdagent`, `dbus`: sources kept as written.
    Other {
        /// The type name.
        type_name: String,
        /// `<source>` elements as written.
        sources: Vec<Element>,
    },
}

impl ChrSource {
    /// The `type` attribute value.
    pub fn type_name(&self) -> &str {
        match self {
            ChrSource::Null => "null",
            ChrSource::Vc => "vc",
            ChrSource::Pty { .. } => "pty",
            ChrSource::Stdio => "stdio",
            ChrSource::SpiceVmc => "spicevmc",
            ChrSource::Dev { .. } => "dev",
            ChrSource::File { .. } => "file",
            ChrSource::Pipe { .. } => "pipe",
            ChrSource::Udp { .. } => "udp",
            ChrSource::Tcp { .. } => "tcp",
            ChrSource::Unix { .. } => "unix",
            ChrSource::SpicePort { .. } => "spiceport",
            ChrSource::Other { type_name, .. } => type_name,
        }
    }
}

/// `<target>` of a character device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChrTarget {
    /// `type` (`isa-serial`, `serial`, `virtio`, `guestfwd` ...).
    pub target_type: Option<String>,
    /// `port`.
    pub port: Option<u32>,
    /// `name` (virtio channels).
    pub name: Option<String>,
    /// `address` (guestfwd).
    pub address: Option<String>,
    /// `state` (virtio channels, live only).
    pub state: Option<String>,
    /// `<model name>` (serial).
    pub model: Option<String>,
    /// Other attributes as written.
    pub attrs: Vec<Attr>,
}

/// One character device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chardev {
    /// Where the element starts.
    pub pos: Pos,
    /// Which element.
    pub kind: ChrKind,
    /// The host side.
    pub source: ChrSource,
    /// Unknown attributes/children of the `<source>` element (e.g. `<seclabel>`).
    pub source_extra: Extra,
    /// `<log file append>` kept as written.
    pub log: Option<Element>,
    /// The guest side.
    pub target: ChrTarget,
    /// Alias, address.
    pub info: DevInfo,
    /// Unknown attributes of the device element.
    pub attrs: Vec<Attr>,
    /// Unknown children as written.
    pub extra: Vec<Element>,
}

const CHR_ORDER: &[&str] = &[
    "source", "protocol", "log", "target", "boot", "acpi", "alias", "master", "rom", "address",
];

fn clear_attr(mut a: Attr) -> Attr {
    a.pos = Pos::UNKNOWN;
    a
}

fn take_mode(src: &mut Element) -> Result<bool, ConfError> {
    match src.take_attr("mode") {
        None => Ok(false),
        Some(a) if a.value == "connect" => Ok(false),
        Some(a) if a.value == "bind" => Ok(true),
        Some(a) => Err(src.invalid_attr(&a, "'bind' or 'connect'")),
    }
}

fn require_path(
    src: Option<Element>,
    parent: &Element,
    what: &str,
) -> Result<(String, Extra), ConfError> {
    let hint = format!("a '{what}' character device needs <source path='...'/>");
    let mut s = src.ok_or_else(|| ConfError::MissingElement {
        pos: parent.pos,
        element: parent.name.clone(),
        child: "source".into(),
        hint: format!("; {hint}"),
    })?;
    let p = s.require_attr("path", &hint)?.value;
    Ok((p, s.into_extra()))
}

impl Chardev {
    /// A new device with the given source and an empty target.
    pub fn new(kind: ChrKind, source: ChrSource) -> Chardev {
        Chardev {
            pos: Pos::UNKNOWN,
            kind,
            source,
            source_extra: Extra::default(),
            log: None,
            target: ChrTarget::default(),
            info: DevInfo::default(),
            attrs: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Reads `<serial>`, `<parallel>`, `<console>` or `<channel>`.
    pub fn from_element(mut el: Element, kind: ChrKind) -> Result<Chardev, ConfError> {
        let pos = el.pos;
        let ty = match el.take_attr("type") {
            None => "pty".to_string(),
            Some(a) if SOURCE_TYPES.contains(&a.value.as_str()) => a.value,
            Some(a) => return Err(el.invalid_attr(&a, &one_of(SOURCE_TYPES))),
        };
        // libvirt's live XML of a console repeats the pty path as `tty`.
        el.take_attr("tty");
        let mut sources = el.take_children("source");
        let protocol = match el.take_one("protocol")? {
            None => None,
            Some(mut p) => {
                let t = p.take_attr("type");
                match t {
                    Some(a) if ["raw", "telnet", "telnets", "tls"].contains(&a.value.as_str()) => {
                        Some(a.value)
                    }
                    Some(a) => {
                        return Err(p.invalid_attr(&a, "'raw', 'telnet', 'telnets' or 'tls'"))
                    }
                    None => None,
                }
            }
        };
        let mut source_extra = Extra::default();
        let first = if sources.is_empty() {
            None
        } else {
            Some(sources.remove(0))
        };
        let source = match ty.as_str() {
            "null" => ChrSource::Null,
            "vc" => ChrSource::Vc,
            "stdio" => ChrSource::Stdio,
            "spicevmc" => ChrSource::SpiceVmc,
            "pty" => {
                let path = first.map(|mut s| {
                    let p = s.take_attr_value("path");
                    source_extra = s.into_extra();
                    p
                });
                ChrSource::Pty {
                    path: path.flatten(),
                }
            }
            "dev" | "file" | "pipe" => {
                let mut first = first;
                let append = match first.as_mut() {
                    Some(s) if ty == "file" => crate::domain::util::take_on_off(s, "append")?,
                    _ => None,
                };
                let (path, extra) = require_path(first, &el, &ty)?;
                source_extra = extra;
                match ty.as_str() {
                    "dev" => ChrSource::Dev { path },
                    "file" => ChrSource::File { path, append },
                    _ => ChrSource::Pipe { path },
                }
            }
            "udp" => {
                let (mut bh, mut bs, mut ch, mut cs) = (None, None, None, None);
                for mut s in first.into_iter().chain(sources.drain(..)) {
                    let bind = take_mode(&mut s)?;
                    let h = s.take_attr_value("host");
                    let p = s.take_attr_value("service");
                    if bind {
                        (bh, bs) = (h, p);
                    } else {
                        (ch, cs) = (h, p);
                    }
                }
                ChrSource::Udp {
                    bind_host: bh,
                    bind_service: bs,
                    connect_host: ch,
                    connect_service: cs,
                }
            }
            "tcp" => {
                let mut s = first.unwrap_or_else(|| Element::new("source"));
                let listen = take_mode(&mut s)?;
                let host = s.take_attr_value("host");
                let service = s.take_attr_value("service");
                let tls = take_yes_no(&mut s, "tls")?;
                let reconnect = s.take_one("reconnect")?.map(|r| unpositioned(&r));
                source_extra = s.into_extra();
                ChrSource::Tcp {
                    listen,
                    host,
                    service,
                    tls,
                    protocol: protocol.clone().unwrap_or_else(|| "raw".into()),
                    reconnect,
                }
            }
            "unix" => {
                let mut s = first.unwrap_or_else(|| Element::new("source"));
                let listen = take_mode(&mut s)?;
                let path = s.take_attr_value("path");
                let reconnect = s.take_one("reconnect")?.map(|r| unpositioned(&r));
                source_extra = s.into_extra();
                ChrSource::Unix {
                    listen,
                    path,
                    reconnect,
                }
            }
            "spiceport" => {
                let channel = first.map(|mut s| {
                    let c = s.take_attr_value("channel");
                    source_extra = s.into_extra();
                    c
                });
                ChrSource::SpicePort {
                    channel: channel.flatten(),
                }
            }
            other => ChrSource::Other {
                type_name: other.to_string(),
                sources: first
                    .into_iter()
                    .chain(sources.drain(..))
                    .map(|s| unpositioned(&s))
                    .collect(),
            },
        };
        if !sources.is_empty() && !matches!(source, ChrSource::Udp { .. } | ChrSource::Other { .. })
        {
            let s = &sources[0];
            return Err(ConfError::unsupported(
                s.pos,
                format!("a '{ty}' character device has one <source> element; remove the extra one"),
            ));
        }
        let log = el.take_one("log")?.map(|l| unpositioned(&l));
        let target = match el.take_one("target")? {
            None => ChrTarget::default(),
            Some(t) => read_target(t, kind)?,
        };
        let info = DevInfo::take_from(&mut el)?;
        source_extra.attrs = source_extra.attrs.into_iter().map(clear_attr).collect();
        source_extra.children = source_extra.children.iter().map(unpositioned).collect();
        Ok(Chardev {
            pos,
            kind,
            source,
            source_extra,
            log,
            target,
            info,
            attrs: std::mem::take(&mut el.attrs)
                .into_iter()
                .map(clear_attr)
                .collect(),
            extra: el.children.iter().map(unpositioned).collect(),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        self.format(self.kind, &self.target)
    }

    /// Writes the element as `kind` with `target` (libvirt writes an HVM guest's serial
    /// console as a copy of the first serial port with a console target).
    pub(crate) fn format(&self, kind: ChrKind, target: &ChrTarget) -> Element {
        let mut el = Element::new(kind.as_str()).attr("type", self.source.type_name());
        if kind == ChrKind::Console && target.port.unwrap_or(0) == 0 {
            if let ChrSource::Pty { path: Some(p) } = &self.source {
                el.push_attr("tty", p);
            }
        }
        el.attrs.extend(self.attrs.iter().cloned());
        let with_extra = |s: Element| s.with_extra(&self.source_extra);
        match &self.source {
            ChrSource::Null | ChrSource::Vc | ChrSource::Stdio | ChrSource::SpiceVmc => {}
            ChrSource::Pty { path } => {
                if let Some(p) = path {
                    el.children
                        .push(with_extra(Element::new("source").attr("path", p)));
                }
            }
            ChrSource::Dev { path } | ChrSource::Pipe { path } => {
                el.children
                    .push(with_extra(Element::new("source").attr("path", path)));
            }
            ChrSource::File { path, append } => el.children.push(with_extra(
                Element::new("source")
                    .attr("path", path)
                    .attr_opt("append", append.as_deref()),
            )),
            ChrSource::Udp {
                bind_host,
                bind_service,
                connect_host,
                connect_service,
            } => {
                if bind_host.is_some() || bind_service.is_some() {
                    el.children.push(
                        Element::new("source")
                            .attr("mode", "bind")
                            .attr_opt("host", bind_host.as_deref())
                            .attr_opt("service", bind_service.as_deref()),
                    );
                }
                if connect_host.is_some() || connect_service.is_some() {
                    el.children.push(
                        Element::new("source")
                            .attr("mode", "connect")
                            .attr_opt("host", connect_host.as_deref())
                            .attr_opt("service", connect_service.as_deref()),
                    );
                }
            }
            ChrSource::Tcp {
                listen,
                host,
                service,
                tls,
                protocol,
                reconnect,
            } => {
                el.children.push(with_extra(
                    Element::new("source")
                        .attr("mode", if *listen { "bind" } else { "connect" })
                        .attr_opt("host", host.as_deref())
                        .attr_opt("service", service.as_deref())
                        .attr_opt("tls", tls.as_deref())
                        .child_opt(reconnect.clone()),
                ));
                el.children
                    .push(Element::new("protocol").attr("type", protocol));
            }
            ChrSource::Unix {
                listen,
                path,
                reconnect,
            } => {
                el.children.push(with_extra(
                    Element::new("source")
                        .attr("mode", if *listen { "bind" } else { "connect" })
                        .attr_opt("path", path.as_deref())
                        .child_opt(reconnect.clone()),
                ));
            }
            ChrSource::SpicePort { channel } => {
                if let Some(c) = channel {
                    el.children
                        .push(with_extra(Element::new("source").attr("channel", c)));
                }
            }
            ChrSource::Other { sources, .. } => el.children.extend(sources.iter().cloned()),
        }
        el.children.extend(self.log.clone());
        el.children.push(target_element(kind, target));
        el.children.extend(self.extra.iter().cloned());
        self.info.push_into(&mut el);
        el.children.sort_by_key(|c| rank(CHR_ORDER, &c.name));
        el
    }

    /// The target type, if set.
    pub fn target_type(&self) -> Option<&str> {
        self.target.target_type.as_deref()
    }
}

fn read_target(mut t: Element, kind: ChrKind) -> Result<ChrTarget, ConfError> {
    let target_type = match t.take_attr("type") {
        None => None,
        Some(a) => {
            let allowed = kind.target_types();
            if allowed.is_empty() || !allowed.contains(&a.value.as_str()) {
                return Err(t.invalid_attr(&a, &one_of(allowed)));
            }
            Some(a.value)
        }
    };
    let port = if kind == ChrKind::Channel && target_type.as_deref() == Some("guestfwd") {
        None
    } else {
        take_u32(&mut t, "port")?
    };
    let name = t.take_attr_value("name");
    let address = t.take_attr_value("address");
    let state = t.take_attr_value("state");
    let model = match t.take_one("model")? {
        None => None,
        Some(mut m) => m.take_attr_value("name"),
    };
    // A guestfwd channel's `port` is a TCP port: it stays among the attributes as written.
    let attrs: Vec<Attr> = t.attrs.into_iter().map(clear_attr).collect();
    Ok(ChrTarget {
        target_type,
        port,
        name,
        address,
        state,
        model,
        attrs,
    })
}

fn target_element(kind: ChrKind, t: &ChrTarget) -> Element {
    let mut el = Element::new("target").attr_opt("type", t.target_type.as_deref());
    match kind {
        ChrKind::Channel => {
            el = el
                .attr_opt("name", t.name.as_deref())
                .attr_opt("state", t.state.as_deref())
                .attr_opt("address", t.address.as_deref());
            el.attrs.extend(t.attrs.iter().cloned());
            el = el.attr_opt("port", t.port);
        }
        _ => {
            el = el.attr_opt("port", t.port);
            el.attrs.extend(t.attrs.iter().cloned());
            if let Some(m) = &t.model {
                el.children.push(Element::new("model").attr("name", m));
            }
        }
    }
    el
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn chr(s: &str, kind: ChrKind) -> Result<Chardev, ConfError> {
        Chardev::from_element(parse_document(s, Limits::default()).unwrap(), kind)
    }

    fn round(s: &str, kind: ChrKind) -> String {
        write_document(&chr(s, kind).unwrap().to_element())
    }

    #[test]
    fn sources() {
        assert_eq!(
            round("<serial type='tcp'><source mode='bind' host='127.0.0.1' service='9999'/><target port='0'/></serial>", ChrKind::Serial),
            "<serial type='tcp'>\n  <source mode='bind' host='127.0.0.1' service='9999'/>\n  <protocol type='raw'/>\n  <target port='0'/>\n</serial>\n"
        );
        assert_eq!(
            round("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/><source mode='bind' path='/tmp/ga'/></channel>", ChrKind::Channel),
            "<channel type='unix'>\n  <source mode='bind' path='/tmp/ga'/>\n  <target type='virtio' name='org.qemu.guest_agent.0'/>\n</channel>\n"
        );
        assert_eq!(
            round("<serial type='udp'><source mode='connect' host='1.2.3.4' service='99'/><source mode='bind' service='98'/><target port='1'/></serial>", ChrKind::Serial),
            "<serial type='udp'>\n  <source mode='bind' service='98'/>\n  <source mode='connect' host='1.2.3.4' service='99'/>\n  <target port='1'/>\n</serial>\n"
        );
        assert_eq!(
            round("<serial type='file'><log file='/l' append='on'/><source path='/f' append='off'/><target type='isa-serial' port='0'><model name='isa-serial'/></target><alias name='serial0'/></serial>", ChrKind::Serial),
            "<serial type='file'>\n  <source path='/f' append='off'/>\n  <log file='/l' append='on'/>\n  <target type='isa-serial' port='0'>\n    <model name='isa-serial'/>\n  </target>\n  <alias name='serial0'/>\n</serial>\n"
        );
        let c = chr("<console type='pty'><source path='/dev/pts/2'/><target type='serial' port='0'/></console>", ChrKind::Console).unwrap();
        assert_eq!(
            c.source,
            ChrSource::Pty {
                path: Some("/dev/pts/2".into())
            }
        );
        assert!(
            write_document(&c.to_element()).starts_with("<console type='pty' tty='/dev/pts/2'>")
        );
    }

    #[test]
    fn errors() {
        let e = chr("<serial type='warp'/>", ChrKind::Serial).unwrap_err();
        assert!(e.to_string().contains("'warp'"), "{e}");
        assert!(chr(
            "<serial type='file'><target port='0'/></serial>",
            ChrKind::Serial
        )
        .is_err());
        assert!(chr(
            "<serial type='unix'><source mode='listen' path='/x'/></serial>",
            ChrKind::Serial
        )
        .is_err());
        assert!(chr(
            "<console><target type='isa-serial'/></console>",
            ChrKind::Console
        )
        .is_err());
        assert!(chr(
            "<serial type='tcp'><source host='h' service='1'/><protocol type='ssh'/></serial>",
            ChrKind::Serial
        )
        .is_err());
    }
}
