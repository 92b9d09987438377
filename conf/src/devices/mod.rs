//! `<devices>`: every device of a domain, grouped by kind and written in libvirt's order.

pub mod chardev;
pub mod controller;
pub mod disk;
pub mod generic;
pub mod info;
pub mod simple;

use crate::domain::util::rank;
use crate::error::ConfError;
use crate::interface::Interface;
use crate::xml::{Element, Extra, Pos};

pub use chardev::{Chardev, ChrKind, ChrSource, ChrTarget};
pub use controller::Controller;
pub use disk::Disk;
pub use generic::{GenericDevice, DEVICE_ORDER};
pub use info::DevInfo;
pub use simple::{Audio, Input, Memballoon};

/// All devices of a domain, grouped by kind in libvirt's canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Devices {
    /// Where `<devices>` starts.
    pub pos: Pos,
    /// `<emulator>`: the QEMU binary.
    pub emulator: Option<String>,
    /// `<disk>` elements, in input order.
    pub disks: Vec<Disk>,
    /// `<controller>` elements, grouped by type and sorted by index as libvirt keeps them.
    pub controllers: Vec<Controller>,
    /// `<interface>` elements, in input order.
    pub interfaces: Vec<Interface>,
    /// `<serial>` elements.
    pub serials: Vec<Chardev>,
    /// `<parallel>` elements.
    pub parallels: Vec<Chardev>,
    /// `<console>` elements.
    pub consoles: Vec<Chardev>,
    /// `<channel>` elements.
    pub channels: Vec<Chardev>,
    /// `<input>` elements.
    pub inputs: Vec<Input>,
    /// `<audio>` backends.
    pub audios: Vec<Audio>,
    /// `<memballoon>`.
    pub memballoon: Option<Memballoon>,
    /// Every other device (video, sound, hostdev, graphics, watchdog, rng, filesystem, ...),
    /// kept as written and typed minimally, in input order.
    pub others: Vec<GenericDevice>,
    /// Unknown attributes or text of `<devices>`.
    pub extra: Extra,
}

impl Devices {
    /// Reads `<devices>`.
    pub fn from_element(mut el: Element) -> Result<Devices, ConfError> {
        let mut d = Devices {
            pos: el.pos,
            ..Devices::default()
        };
        let mut usb_none: Option<Pos> = None;
        let mut seen_emulator = false;
        let mut usb_other = false;
        for child in std::mem::take(&mut el.children) {
            match child.name.as_str() {
                "emulator" => {
                    if std::mem::replace(&mut seen_emulator, true) {
                        return Err(ConfError::unsupported(
                            child.pos,
                            "<emulator> appears more than once in <devices>; it may be given \
                             only once: remove one",
                        ));
                    }
                    let mut c = child;
                    d.emulator = c.take_text();
                }
                "disk" => d.disks.push(Disk::from_element(child)?),
                "controller" => {
                    let c = Controller::from_element(child)?;
                    if c.kind == "usb" {
                        let none = c.model() == Some("none");
                        if (none && (usb_none.is_some() || usb_other))
                            || (!none && usb_none.is_some())
                        {
                            return Err(ConfError::unsupported(
                                c.pos,
                                "Can't add another USB controller: USB is disabled for this domain (model='none')",
                            ));
                        }
                        if none {
                            usb_none = Some(c.pos);
                        } else {
                            usb_other = true;
                        }
                    }
                    d.insert_controller(c);
                }
                "interface" => d.interfaces.push(Interface::from_element(child)?),
                "serial" => {
                    let mut c = Chardev::from_element(child, ChrKind::Serial)?;
                    if c.target.port.is_none() {
                        c.target.port = Some(next_port(&d.serials));
                    }
                    d.serials.push(c);
                }
                "parallel" => {
                    let mut c = Chardev::from_element(child, ChrKind::Parallel)?;
                    if c.target.port.is_none() {
                        c.target.port = Some(next_port(&d.parallels));
                    }
                    d.parallels.push(c);
                }
                "console" => {
                    let mut c = Chardev::from_element(child, ChrKind::Console)?;
                    if c.target.port.is_none() {
                        c.target.port = Some(d.consoles.len() as u32);
                    }
                    d.consoles.push(c);
                }
                "channel" => d
                    .channels
                    .push(Chardev::from_element(child, ChrKind::Channel)?),
                "input" => d.inputs.push(Input::from_element(child)?),
                "audio" => d.audios.push(Audio::from_element(child)?),
                "memballoon" => {
                    if d.memballoon.is_some() {
                        return Err(ConfError::unsupported(
                            child.pos,
                            "only a single memory balloon device is supported; remove the second <memballoon>",
                        ));
                    }
                    d.memballoon = Some(Memballoon::from_element(child)?);
                }
                _ => d.others.push(GenericDevice::from_element(child)?),
            }
        }
        d.extra = el.into_extra();
        Ok(d)
    }

    /// Inserts a controller where libvirt keeps it: after the controllers of the same type
    /// with a lower index (or last of its type when it has no index), else at the end.
    pub fn insert_controller(&mut self, c: Controller) {
        let mut insert_at: Option<usize> = None;
        for (i, cur) in self.controllers.iter().enumerate().rev() {
            if cur.kind != c.kind {
                continue;
            }
            match (c.index, cur.index) {
                (None, _) => {
                    insert_at = Some(i + 1);
                    break;
                }
                (Some(new), Some(old)) if old > new => insert_at = Some(i),
                (Some(new), old) if old.unwrap_or(0) < new && insert_at.is_none() => {
                    insert_at = Some(i + 1)
                }
                _ => {}
            }
        }
        match insert_at {
            Some(i) => self.controllers.insert(i, c),
            None => self.controllers.push(c),
        }
    }

    /// Puts the controllers in canonical order: grouped by type (types in order of first
    /// appearance) and sorted by index within a type, controllers without an index first.
    /// Reading the formatted list back ([`Devices::from_element`]) gives the same order, so
    /// the defaults call this once every controller has its index.
    pub fn sort_controllers(&mut self) {
        let mut kinds: Vec<String> = Vec::new();
        for c in &self.controllers {
            if !kinds.contains(&c.kind) {
                kinds.push(c.kind.clone());
            }
        }
        // Stable: controllers with equal type and index (refused later) keep their order.
        self.controllers.sort_by_key(|c| {
            let group = kinds.iter().position(|k| *k == c.kind);
            (group, c.index.map_or(-1, i64::from))
        });
    }

    /// The controller of `kind` with `index`, if any.
    pub fn controller(&self, kind: &str, index: u32) -> Option<&Controller> {
        self.controllers
            .iter()
            .find(|c| c.kind == kind && c.index == Some(index))
    }

    /// Every generic device of element name `kind`.
    pub fn others_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a GenericDevice> + 'a {
        self.others.iter().filter(move |o| o.kind() == kind)
    }

    /// All character devices, in libvirt's order (serials, parallels, consoles, channels).
    pub fn chardevs(&self) -> impl Iterator<Item = &Chardev> {
        self.serials
            .iter()
            .chain(&self.parallels)
            .chain(&self.consoles)
            .chain(&self.channels)
    }

    /// Writes `<devices>` in libvirt's order.
    pub fn to_element(&self) -> Element {
        let mut items: Vec<Element> = Vec::new();
        if let Some(e) = &self.emulator {
            items.push(Element::new("emulator").text(e));
        }
        items.extend(self.disks.iter().map(Disk::to_element));
        items.extend(self.controllers.iter().map(Controller::to_element));
        items.extend(self.interfaces.iter().map(Interface::to_element));
        items.extend(self.serials.iter().map(Chardev::to_element));
        items.extend(self.parallels.iter().map(Chardev::to_element));
        for (n, c) in self.consoles.iter().enumerate() {
            // Only the first console can be a serial port (the defaults refuse others): a
            // later one without a target type is written as it is, not as serial port n.
            let serial_alias = n == 0 && matches!(c.target_type(), None | Some("serial"));
            match self.serials.get(n) {
                Some(s) if serial_alias => {
                    let target = ChrTarget {
                        target_type: Some("serial".into()),
                        port: s.target.port,
                        ..ChrTarget::default()
                    };
                    items.push(s.format(ChrKind::Console, &target));
                }
                _ => items.push(c.to_element()),
            }
        }
        items.extend(self.channels.iter().map(Chardev::to_element));
        items.extend(self.inputs.iter().map(Input::to_element));
        items.extend(self.audios.iter().map(Audio::to_element));
        items.extend(self.memballoon.iter().map(Memballoon::to_element));
        items.extend(self.others.iter().map(GenericDevice::to_element));
        items.sort_by_key(|e| rank(DEVICE_ORDER, &e.name));
        let mut el = Element::new("devices");
        el.children = items;
        el.with_extra(&self.extra)
    }
}

fn next_port(list: &[Chardev]) -> u32 {
    list.iter()
        .filter_map(|c| c.target.port)
        .max()
        .map_or(0, |m| m + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn devs(s: &str) -> Result<Devices, ConfError> {
        Devices::from_element(parse_document(s, Limits::default()).unwrap())
    }

    #[test]
    fn grouped_in_libvirt_order() {
        let d = devs(
            "<devices><memballoon model='none'/><video><model type='vga'/></video><input type='mouse'/>\
             <controller type='usb' index='0'/><emulator>/q</emulator><disk><target dev='vda'/></disk>\
             <foo/><sound model='ac97'/><controller type='pci' index='0' model='pci-root'/></devices>",
        )
        .unwrap();
        let out = write_document(&d.to_element());
        let names: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("  <") && !l.starts_with("  </"))
            .map(|l| l[3..].split([' ', '>', '/']).next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "emulator",
                "disk",
                "controller",
                "controller",
                "input",
                "sound",
                "video",
                "memballoon",
                "foo"
            ]
        );
    }

    #[test]
    fn controllers_sorted_within_type() {
        let d = devs(
            "<devices><controller type='pci' index='2' model='pci-bridge'/><controller type='usb' index='0'/>\
             <controller type='pci' index='0' model='pci-root'/><controller type='pci' index='1' model='pci-bridge'/></devices>",
        )
        .unwrap();
        let order: Vec<(String, u32)> = d
            .controllers
            .iter()
            .map(|c| (c.kind.clone(), c.idx()))
            .collect();
        assert_eq!(
            order,
            [
                ("pci".into(), 0),
                ("pci".into(), 1),
                ("pci".into(), 2),
                ("usb".into(), 0)
            ]
        );
    }

    #[test]
    fn serial_console_compat_and_ports() {
        let d = devs(
            "<devices><serial type='pty'/><serial type='file'><source path='/f'/></serial>\
             <console type='pty'><target type='serial'/></console></devices>",
        )
        .unwrap();
        assert_eq!(d.serials[1].target.port, Some(1));
        let out = write_document(&d.to_element());
        assert!(
            out.contains(
                "<console type='pty'>\n    <target type='serial' port='0'/>\n  </console>"
            ),
            "{out}"
        );
    }

    #[test]
    fn usb_none_conflicts() {
        let e = devs("<devices><controller type='usb' model='none'/><controller type='usb' index='1'/></devices>").unwrap_err();
        assert!(e.to_string().contains("USB is disabled"), "{e}");
        assert!(
            devs("<devices><memballoon model='none'/><memballoon model='none'/></devices>")
                .is_err()
        );
    }
}
