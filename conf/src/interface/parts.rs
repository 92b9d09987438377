//! The small sub-elements of `<interface>`: one element, a few attributes each.

use super::util::{
    attr_pos, on_off, take_on_off, take_str, take_uint, take_with, take_yes_no, yes_no, Spanned,
    NON_NEGATIVE,
};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// An element holding one value in one attribute, e.g. `<mtu size='9000'/>`,
/// `<alias name='ua-net0'/>`, `<script path='/etc/qemu-ifup'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf<T> {
    /// The value.
    pub value: T,
    /// Where the attribute was read (the element's position if unknown).
    pub pos: Pos,
    /// Unknown attributes and children, written back.
    pub extra: Extra,
}

impl<T> Leaf<T> {
    /// A value not read from any input.
    pub fn new(value: T) -> Self {
        Leaf {
            value,
            pos: Pos::UNKNOWN,
            extra: Extra::default(),
        }
    }

    /// Reads `<name attr='...'/>`, mapping the required attribute with `f`.
    pub(crate) fn read(
        mut el: Element,
        attr: &str,
        expected: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Leaf<T>, ConfError> {
        let a = el.require_attr(attr, &format!("write <{} {attr}='...'/>", el.name))?;
        let pos = attr_pos(&el, &a);
        let value = f(a.value.trim()).ok_or_else(|| el.invalid_attr(&a, expected))?;
        Ok(Leaf {
            value,
            pos,
            extra: el.into_extra(),
        })
    }

    /// Writes `<name attr='value'/>` plus the unknown content.
    pub(crate) fn write(&self, name: &str, attr: &str, value: impl ToString) -> Element {
        Element::new(name).attr(attr, value).with_extra(&self.extra)
    }
}

impl Leaf<String> {
    /// Reads `<name attr='text'/>`.
    pub(crate) fn read_str(el: Element, attr: &str) -> Result<Leaf<String>, ConfError> {
        Leaf::read(el, attr, "a value", |v| Some(v.to_string()))
    }

    /// The value as a [`Spanned`] string.
    pub fn spanned(&self) -> Spanned<&str> {
        Spanned::at(self.value.as_str(), self.pos)
    }
}

/// `<target dev='vnet0' managed='no'/>`: the host-side device (tap/macvtap) name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Host interface name.
    pub dev: Option<Spanned<String>>,
    /// `managed='no'`: the tap exists already and virtnet must neither create nor delete it.
    pub managed: Option<bool>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

impl Target {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        Ok(Target {
            dev: take_str(&mut el, "dev"),
            managed: take_yes_no(&mut el, "managed")?,
            pos: el.pos,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Option<Element> {
        let el = Element::new("target")
            .attr_opt("dev", self.dev.as_ref().map(|d| d.value.clone()))
            .attr_opt("managed", self.managed.map(yes_no))
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}

/// `<guest dev='eth0' actual='...'/>`: the interface name inside the guest (containers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuestName {
    /// Requested name.
    pub dev: Option<String>,
    /// Name reported by a running guest.
    pub actual: Option<String>,
    /// Unknown content.
    pub extra: Extra,
}

impl GuestName {
    pub(crate) fn from_element(mut el: Element) -> Self {
        GuestName {
            dev: el.take_attr_value("dev"),
            actual: el.take_attr_value("actual"),
            extra: el.into_extra(),
        }
    }

    pub(crate) fn to_element(&self) -> Option<Element> {
        let el = Element::new("guest")
            .attr_opt("dev", self.dev.as_deref())
            .attr_opt("actual", self.actual.as_deref())
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}

/// `<backend type='passt' tap='/dev/net/tun' vhost='/dev/vhost-net' logFile='...'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backend {
    /// `type='passt'` (user networking through the passt helper instead of SLIRP).
    pub kind: Option<Spanned<String>>,
    /// Custom tap device path (instead of /dev/net/tun).
    pub tap: Option<Spanned<String>>,
    /// Custom vhost-net device path (instead of /dev/vhost-net); virtio models only.
    pub vhost: Option<Spanned<String>>,
    /// passt log file.
    pub log_file: Option<Spanned<String>>,
    /// Host name passt announces over DHCP.
    pub hostname: Option<String>,
    /// Fully qualified domain name passt announces.
    pub fqdn: Option<String>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// libvirt's `virFileSanitizePath`: collapses repeated '/' and drops a trailing '/'.
fn sanitize_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut prev_slash = false;
    for c in p.chars() {
        if c == '/' && prev_slash {
            continue;
        }
        prev_slash = c == '/';
        out.push(c);
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

impl Backend {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let kind = take_with(&mut el, "type", "'passt'", |v| {
            (v == "passt").then(|| v.to_string())
        })?;
        let mut sanitized = |name: &str| {
            take_str(&mut el, name).map(|s| Spanned::at(sanitize_path(&s.value), s.pos))
        };
        let tap = sanitized("tap");
        let vhost = sanitized("vhost");
        Ok(Backend {
            kind,
            tap,
            vhost,
            log_file: take_str(&mut el, "logFile"),
            hostname: el.take_attr_value("hostname"),
            fqdn: el.take_attr_value("fqdn"),
            pos: el.pos,
            extra: el.into_extra(),
        })
    }

    /// Whether this is the passt back end.
    pub fn is_passt(&self) -> bool {
        self.kind.as_ref().is_some_and(|k| k.value == "passt")
    }

    /// `with_vhost`: false drops the `vhost` path (libvirt keeps it for virtio models only).
    pub(crate) fn to_element(&self, with_vhost: bool) -> Option<Element> {
        let el = Element::new("backend")
            .attr_opt("type", self.kind.as_ref().map(|k| k.value.clone()))
            .attr_opt("tap", self.tap.as_ref().map(|k| k.value.clone()))
            .attr_opt(
                "vhost",
                self.vhost
                    .as_ref()
                    .filter(|_| with_vhost)
                    .map(|k| k.value.clone()),
            )
            .attr_opt("logFile", self.log_file.as_ref().map(|k| k.value.clone()))
            .attr_opt("hostname", self.hostname.as_deref())
            .attr_opt("fqdn", self.fqdn.as_deref())
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}

/// Failover teaming (`<teaming type='persistent'/>` on the virtio NIC,
/// `<teaming type='transient' persistent='ua-backup0'/>` on the VF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Teaming {
    /// Which half of the pair this is.
    pub kind: TeamingKind,
    /// For the transient half: the alias of the persistent interface.
    pub persistent: Option<Spanned<String>>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

/// The two halves of a failover pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamingKind {
    /// The virtio NIC that stays (QEMU `failover=on`).
    Persistent,
    /// The VF that is unplugged for migration (QEMU `failover_pair_id`).
    Transient,
}

impl Teaming {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let kind = take_with(
            &mut el,
            "type",
            "'persistent' or 'transient'",
            |v| match v {
                "persistent" => Some(TeamingKind::Persistent),
                "transient" => Some(TeamingKind::Transient),
                _ => None,
            },
        )?
        .ok_or_else(|| ConfError::MissingAttr {
            pos: el.pos,
            element: "teaming".into(),
            attr: "type".into(),
            hint: "; use type='persistent' on the virtio NIC and type='transient' \
                   persistent='ALIAS' on the hostdev NIC"
                .into(),
        })?;
        Ok(Teaming {
            kind: kind.value,
            persistent: take_str(&mut el, "persistent"),
            pos: el.pos,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        let kind = match self.kind {
            TeamingKind::Persistent => "persistent",
            TeamingKind::Transient => "transient",
        };
        Element::new("teaming")
            .attr("type", kind)
            .attr_opt(
                "persistent",
                self.persistent.as_ref().map(|p| p.value.clone()),
            )
            .with_extra(&self.extra)
    }
}

/// `<boot order='1' loadparm='...'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// Boot priority, 1 first.
    pub order: Spanned<u32>,
    /// s390 load parameter.
    pub loadparm: Option<String>,
    /// Unknown content.
    pub extra: Extra,
}

impl Boot {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let order = take_with(&mut el, "order", "a positive integer", |v| {
            v.parse::<u32>().ok().filter(|n| *n > 0)
        })?
        .ok_or_else(|| ConfError::MissingAttr {
            pos: el.pos,
            element: "boot".into(),
            attr: "order".into(),
            hint: "; e.g. <boot order='1'/>".into(),
        })?;
        Ok(Boot {
            order,
            loadparm: el.take_attr_value("loadparm"),
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        Element::new("boot")
            .attr("order", self.order.value)
            .attr_opt("loadparm", self.loadparm.as_deref())
            .with_extra(&self.extra)
    }
}

/// `<rom bar='on' file='/path' enabled='yes'/>`: the NIC's option ROM (PXE).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rom {
    /// `enabled='no'` removes the ROM entirely.
    pub enabled: Option<bool>,
    /// Whether the ROM BAR is visible.
    pub bar: Option<bool>,
    /// A ROM image file instead of QEMU's own.
    pub file: Option<Spanned<String>>,
    /// Unknown content.
    pub extra: Extra,
}

impl Rom {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        Ok(Rom {
            enabled: take_yes_no(&mut el, "enabled")?,
            bar: take_on_off(&mut el, "bar")?,
            file: take_str(&mut el, "file"),
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Option<Element> {
        let el = Element::new("rom")
            .attr_opt("enabled", self.enabled.map(yes_no))
            .attr_opt("bar", self.bar.map(on_off))
            .attr_opt("file", self.file.as_ref().map(|f| f.value.clone()))
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}

/// `<tune><sndbuf>N</sndbuf></tune>`: tap send buffer size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tune {
    /// Bytes.
    pub sndbuf: Option<u64>,
    /// Unknown content.
    pub extra: Extra,
}

impl Tune {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let sndbuf = match el.take_one("sndbuf")? {
            None => None,
            Some(mut s) => {
                let text = s.take_text().unwrap_or_default();
                if !s.is_empty() {
                    return Err(ConfError::InvalidText {
                        pos: s.pos,
                        element: "sndbuf".into(),
                        value: text,
                        expected: "only a number of bytes, no attributes or children".into(),
                    });
                }
                Some(s.parse_text::<u64>(&text, "a non-negative number of bytes")?)
            }
        };
        Ok(Tune {
            sndbuf,
            extra: el.into_extra(),
        })
    }

    pub(crate) fn to_element(&self) -> Option<Element> {
        let el = Element::new("tune")
            .child_opt(self.sndbuf.map(|n| Element::new("sndbuf").text(n)))
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}

/// `<coalesce><rx><frames max='7'/></rx></coalesce>`: interrupt coalescing on the host tap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coalesce {
    /// rx max coalesced frames; 0 means unset (libvirt then omits the whole element).
    pub rx_frames_max: u32,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content of `<coalesce>`, `<rx>` and `<frames>` (in that order).
    pub extra: [Extra; 3],
}

impl Coalesce {
    pub(crate) fn from_element(mut el: Element) -> Result<Self, ConfError> {
        let pos = el.pos;
        let mut rx_frames_max = 0;
        let mut rx_extra = Extra::default();
        let mut frames_extra = Extra::default();
        if let Some(mut rx) = el.take_one("rx")? {
            if let Some(mut frames) = rx.take_one("frames")? {
                rx_frames_max = take_uint::<u32>(&mut frames, "max")?.map_or(0, |m| m.value);
                frames_extra = frames.into_extra();
            }
            rx_extra = rx.into_extra();
        }
        Ok(Coalesce {
            rx_frames_max,
            pos,
            extra: [el.into_extra(), rx_extra, frames_extra],
        })
    }

    pub(crate) fn to_element(&self) -> Option<Element> {
        let mut frames = Element::new("frames");
        if self.rx_frames_max > 0 {
            frames.push_attr("max", self.rx_frames_max);
        }
        let frames = frames.with_extra(&self.extra[2]);
        let rx = Element::new("rx")
            .child_opt((!frames.is_empty()).then_some(frames))
            .with_extra(&self.extra[1]);
        let el = Element::new("coalesce")
            .child_opt((!rx.is_empty()).then_some(rx))
            .with_extra(&self.extra[0]);
        (!el.is_empty()).then_some(el)
    }
}

/// `<link state='up|down'/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Carrier on.
    Up,
    /// Carrier off (set with QMP `set_link` after start).
    Down,
}

impl LinkState {
    pub(crate) fn read(el: Element) -> Result<Leaf<LinkState>, ConfError> {
        Leaf::read(el, "state", "'up' or 'down'", |v| match v {
            "up" => Some(LinkState::Up),
            "down" => Some(LinkState::Down),
            _ => None,
        })
    }

    /// `up` / `down`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
        }
    }
}

/// Reads `<mtu size='N'/>`.
pub(crate) fn read_mtu(el: Element) -> Result<Leaf<u32>, ConfError> {
    Leaf::read(el, "size", "a positive MTU in bytes, e.g. 1500", |v| {
        v.parse().ok().filter(|n| *n > 0)
    })
}

/// Reads `<acpi index='N'/>`.
pub(crate) fn read_acpi(el: Element) -> Result<Leaf<u32>, ConfError> {
    Leaf::read(el, "index", NON_NEGATIVE, |v| v.parse().ok())
}

/// Reads `<port isolated='yes|no'/>`.
pub(crate) fn read_port(el: Element) -> Result<Leaf<bool>, ConfError> {
    Leaf::read(el, "isolated", "'yes' or 'no'", |v| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_like_libvirt() {
        assert_eq!(sanitize_path("//dev//net/tun/"), "/dev/net/tun");
        assert_eq!(sanitize_path("/"), "/");
    }
}
