//! Small typed devices: `<input>`, `<memballoon>` and `<audio>`.

use super::info::DevInfo;
use crate::domain::util::{one_of, rank, take_choice, take_u32, unpositioned};
use crate::error::ConfError;
use crate::xml::{Attr, Element, Pos};

fn clear_attr(mut a: Attr) -> Attr {
    a.pos = Pos::UNKNOWN;
    a
}

/// Input device types.
pub const INPUT_TYPES: &[&str] = &["mouse", "tablet", "keyboard", "passthrough", "evdev"];
/// Input buses.
pub const INPUT_BUSES: &[&str] = &["ps2", "usb", "xen", "parallels", "virtio", "none"];

/// `<input type bus>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Where the element starts.
    pub pos: Pos,
    /// `mouse`, `tablet`, `keyboard`, `passthrough` or `evdev`.
    pub input_type: String,
    /// `ps2`, `usb`, `virtio` ... (None for evdev).
    pub bus: Option<String>,
    /// Other attributes (`model`) as written.
    pub attrs: Vec<Attr>,
    /// Alias, address.
    pub info: DevInfo,
    /// Other children (`<source>`, `<driver>`) as written.
    pub children: Vec<Element>,
}

impl Input {
    /// A new input device (as the defaults add them).
    pub fn new(input_type: &str, bus: &str) -> Input {
        Input {
            pos: Pos::UNKNOWN,
            input_type: input_type.into(),
            bus: Some(bus.into()),
            attrs: Vec::new(),
            info: DevInfo::default(),
            children: Vec::new(),
        }
    }

    /// Reads `<input>`.
    pub fn from_element(mut el: Element) -> Result<Input, ConfError> {
        let pos = el.pos;
        let t = el.require_attr("type", "e.g. type='tablet' bus='usb'")?;
        if !INPUT_TYPES.contains(&t.value.as_str()) {
            return Err(el.invalid_attr(&t, &one_of(INPUT_TYPES)));
        }
        let mut bus = take_choice(&mut el, "bus", INPUT_BUSES)?;
        if bus.is_none() && t.value != "evdev" {
            // libvirt's default: PS/2 for mouse and keyboard, USB for the rest.
            bus = Some(
                if matches!(t.value.as_str(), "mouse" | "keyboard") {
                    "ps2"
                } else {
                    "usb"
                }
                .into(),
            );
        }
        let info = DevInfo::take_from(&mut el)?;
        Ok(Input {
            pos,
            input_type: t.value,
            bus,
            attrs: std::mem::take(&mut el.attrs)
                .into_iter()
                .map(clear_attr)
                .collect(),
            info,
            children: el.children.iter().map(unpositioned).collect(),
        })
    }

    /// Writes `<input>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("input")
            .attr("type", &self.input_type)
            .attr_opt("bus", self.bus.as_deref());
        el.attrs.extend(self.attrs.iter().cloned());
        el.children.extend(self.children.iter().cloned());
        self.info.push_into(&mut el);
        el
    }

    /// Whether this is `type` on `bus`.
    pub fn is(&self, input_type: &str, bus: &str) -> bool {
        self.input_type == input_type && self.bus.as_deref() == Some(bus)
    }
}

/// `<memballoon model>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memballoon {
    /// Where the element starts.
    pub pos: Pos,
    /// `virtio`, `virtio-transitional`, `virtio-non-transitional`, `xen` or `none`.
    pub model: String,
    /// Other attributes (`autodeflate`, `freePageReporting`) as written.
    pub attrs: Vec<Attr>,
    /// `<stats period>`.
    pub stats_period: Option<u32>,
    /// `<driver>` kept as written.
    pub driver: Option<Element>,
    /// Alias, address.
    pub info: DevInfo,
    /// Unknown children.
    pub children: Vec<Element>,
}

/// Memory balloon models.
pub const BALLOON_MODELS: &[&str] = &[
    "virtio",
    "xen",
    "none",
    "virtio-transitional",
    "virtio-non-transitional",
];

const BALLOON_ORDER: &[&str] = &[
    "stats", "boot", "acpi", "alias", "master", "rom", "address", "driver",
];

impl Memballoon {
    /// The default balloon (`<memballoon model='virtio'/>`).
    pub fn virtio() -> Memballoon {
        Memballoon {
            pos: Pos::UNKNOWN,
            model: "virtio".into(),
            attrs: Vec::new(),
            stats_period: None,
            driver: None,
            info: DevInfo::default(),
            children: Vec::new(),
        }
    }

    /// Reads `<memballoon>`.
    pub fn from_element(mut el: Element) -> Result<Memballoon, ConfError> {
        let pos = el.pos;
        let m = el.require_attr("model", "use model='virtio' or model='none'")?;
        if !BALLOON_MODELS.contains(&m.value.as_str()) {
            return Err(el.invalid_attr(&m, &one_of(BALLOON_MODELS)));
        }
        let stats_period = match el.take_one("stats")? {
            None => None,
            Some(mut s) => take_u32(&mut s, "period")?,
        };
        let driver = el.take_one("driver")?.map(|d| unpositioned(&d));
        let info = DevInfo::take_from(&mut el)?;
        Ok(Memballoon {
            pos,
            model: m.value,
            attrs: std::mem::take(&mut el.attrs)
                .into_iter()
                .map(clear_attr)
                .collect(),
            stats_period,
            driver,
            info,
            children: el.children.iter().map(unpositioned).collect(),
        })
    }

    /// Writes `<memballoon>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("memballoon").attr("model", &self.model);
        el.attrs.extend(self.attrs.iter().cloned());
        if let Some(p) = self.stats_period {
            el.children.push(Element::new("stats").attr("period", p));
        }
        el.children.extend(self.children.iter().cloned());
        self.info.push_into(&mut el);
        el.children.extend(self.driver.clone());
        el.children.sort_by_key(|c| rank(BALLOON_ORDER, &c.name));
        el
    }
}

/// `<audio id type>`: an audio backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Where the element starts.
    pub pos: Pos,
    /// `id` (1-based).
    pub id: Option<u32>,
    /// Backend type (`none`, `spice`, `pulseaudio`, ...).
    pub audio_type: String,
    /// Other attributes as written.
    pub attrs: Vec<Attr>,
    /// Children (`<input>`, `<output>`) as written.
    pub children: Vec<Element>,
}

/// Audio backend types.
pub const AUDIO_TYPES: &[&str] = &[
    "none",
    "alsa",
    "coreaudio",
    "jack",
    "oss",
    "pulseaudio",
    "sdl",
    "spice",
    "file",
    "dbus",
    "pipewire",
];

impl Audio {
    /// `<audio id='1' type='TYPE'/>`.
    pub fn new(id: u32, audio_type: &str) -> Audio {
        Audio {
            pos: Pos::UNKNOWN,
            id: Some(id),
            audio_type: audio_type.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Reads `<audio>`.
    pub fn from_element(mut el: Element) -> Result<Audio, ConfError> {
        let pos = el.pos;
        let id = take_u32(&mut el, "id")?;
        let t = el.require_attr("type", "e.g. type='none' or type='spice'")?;
        if !AUDIO_TYPES.contains(&t.value.as_str()) {
            return Err(el.invalid_attr(&t, &one_of(AUDIO_TYPES)));
        }
        Ok(Audio {
            pos,
            id,
            audio_type: t.value,
            attrs: std::mem::take(&mut el.attrs)
                .into_iter()
                .map(clear_attr)
                .collect(),
            children: el.children.iter().map(unpositioned).collect(),
        })
    }

    /// Writes `<audio>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("audio")
            .attr_opt("id", self.id)
            .attr("type", &self.audio_type);
        el.attrs.extend(self.attrs.iter().cloned());
        el.children.extend(self.children.iter().cloned());
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn el(s: &str) -> Element {
        parse_document(s, Limits::default()).unwrap()
    }

    #[test]
    fn input_defaults_bus() {
        let i = Input::from_element(el("<input type='mouse'/>")).unwrap();
        assert!(i.is("mouse", "ps2"));
        let t = Input::from_element(el(
            "<input type='tablet'><address type='usb' bus='0' port='1'/></input>",
        ))
        .unwrap();
        assert_eq!(
            write_document(&t.to_element()),
            "<input type='tablet' bus='usb'>\n  <address type='usb' bus='0' port='1'/>\n</input>\n"
        );
        assert!(Input::from_element(el("<input type='joystick'/>")).is_err());
        assert!(Input::from_element(el("<input type='mouse' bus='serial'/>")).is_err());
    }

    #[test]
    fn balloon_order() {
        let b = Memballoon::from_element(el(
            "<memballoon model='virtio' autodeflate='on'><driver iommu='on'/><address type='pci' slot='3'/><stats period='10'/></memballoon>",
        ))
        .unwrap();
        assert_eq!(
            write_document(&b.to_element()),
            "<memballoon model='virtio' autodeflate='on'>\n  <stats period='10'/>\n  <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>\n  <driver iommu='on'/>\n</memballoon>\n"
        );
        assert!(Memballoon::from_element(el("<memballoon/>")).is_err());
        assert!(Memballoon::from_element(el("<memballoon model='virtio-balloon'/>")).is_err());
    }

    #[test]
    fn audio() {
        let a = Audio::from_element(el("<audio type='none' id='1'/>")).unwrap();
        assert_eq!(
            write_document(&a.to_element()),
            "<audio id='1' type='none'/>\n"
        );
        assert!(Audio::from_element(el("<audio id='1' type='loud'/>")).is_err());
    }
}
