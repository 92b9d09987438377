//! `<disk>`: file, block, network ... images attached to a virtio, IDE, SATA, SCSI or USB bus.

use super::info::DevInfo;
use crate::address::DeviceAddress;
use crate::domain::util::{rank, take_choice, unpositioned};
use crate::error::ConfError;
use crate::xml::{Attr, Element, Extra, Pos};

/// Disk types (`<disk type>`).
pub const DISK_TYPES: &[&str] = &[
    "file",
    "block",
    "dir",
    "network",
    "volume",
    "nvme",
    "vhostuser",
];
/// Disk devices (`<disk device>`).
pub const DISK_DEVICES: &[&str] = &["disk", "cdrom", "floppy", "lun"];
/// Disk buses (`<target bus>`).
pub const DISK_BUSES: &[&str] = &[
    "ide", "fdc", "scsi", "virtio", "xen", "usb", "uml", "sata", "sd", "none",
];

/// `<driver>` of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskDriver {
    /// `name` (`qemu`).
    pub name: Option<String>,
    /// `type`: the image format (`raw`, `qcow2`, ...).
    pub format: Option<String>,
    /// The other attributes (cache, io, discard, event_idx, iothread, ...), as written.
    pub attrs: Vec<Attr>,
    /// Children, as written.
    pub children: Vec<Element>,
}

/// `<source>` of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSource {
    /// The host path: `file` (type file), `dev` (block) or `dir` (dir).
    pub path: Option<String>,
    /// Other attributes as written (e.g. `startupPolicy`, or network `protocol`/`name`).
    pub attrs: Vec<Attr>,
    /// Children as written (`<host>`, `<seclabel>`, `<reconnect>` ...).
    pub children: Vec<Element>,
}

/// `<target dev bus>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskTarget {
    /// Guest device name (`vda`, `hdc`, `sda`).
    pub dev: String,
    /// Bus; when absent it is derived from `dev` by the defaults.
    pub bus: Option<String>,
    /// Other attributes (`tray`, `removable`, `rotation_rate`) as written.
    pub attrs: Vec<Attr>,
    /// Children as written.
    pub children: Vec<Element>,
}

/// One `<disk>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Where the element starts.
    pub pos: Pos,
    /// `type` (file, block, ...).
    pub disk_type: String,
    /// `device` (disk, cdrom, floppy, lun).
    pub device: String,
    /// Other attributes of `<disk>` (model, snapshot, rawio, sgio) as written.
    pub attrs: Vec<Attr>,
    /// `<driver>`.
    pub driver: Option<DiskDriver>,
    /// `<source>` (None for an empty CD-ROM).
    pub source: Option<DiskSource>,
    /// `<target>`.
    pub target: DiskTarget,
    /// `<readonly/>`.
    pub readonly: bool,
    /// `<shareable/>`.
    pub shareable: bool,
    /// `<serial>`.
    pub serial: Option<String>,
    /// Boot order, alias, address.
    pub info: DevInfo,
    /// Unknown children (backingStore, iotune, encryption, ...) as written.
    pub extra: Extra,
}

const DISK_ORDER: &[&str] = &[
    "driver",
    "auth",
    "source",
    "backingStore",
    "backenddomain",
    "geometry",
    "blockio",
    "mirror",
    "target",
    "iotune",
    "throttlefilters",
    "readonly",
    "shareable",
    "transient",
    "serial",
    "wwn",
    "vendor",
    "product",
    "encryption",
    "boot",
    "acpi",
    "alias",
    "master",
    "rom",
    "address",
];

fn path_attr(disk_type: &str) -> Option<&'static str> {
    match disk_type {
        "file" => Some("file"),
        "block" => Some("dev"),
        "dir" => Some("dir"),
        _ => None,
    }
}

fn clear(attrs: Vec<Attr>) -> Vec<Attr> {
    attrs
        .into_iter()
        .map(|mut a| {
            a.pos = Pos::UNKNOWN;
            a
        })
        .collect()
}

impl Disk {
    /// Reads `<disk>`.
    pub fn from_element(mut el: Element) -> Result<Disk, ConfError> {
        let pos = el.pos;
        let disk_type = take_choice(&mut el, "type", DISK_TYPES)?.unwrap_or_else(|| "file".into());
        let device = take_choice(&mut el, "device", DISK_DEVICES)?.unwrap_or_else(|| "disk".into());
        let driver = el.take_one("driver")?.map(|mut d| DiskDriver {
            name: d.take_attr_value("name"),
            format: d.take_attr_value("type"),
            attrs: clear(std::mem::take(&mut d.attrs)),
            children: d.children.iter().map(unpositioned).collect(),
        });
        let source = el.take_one("source")?.map(|mut s| DiskSource {
            path: path_attr(&disk_type).and_then(|a| s.take_attr_value(a)),
            attrs: clear(std::mem::take(&mut s.attrs)),
            children: s.children.iter().map(unpositioned).collect(),
        });
        let mut t = el.require_one(
            "target",
            "give the guest device, e.g. <target dev='vda' bus='virtio'/>",
        )?;
        let dev = t
            .require_attr(
                "dev",
                "e.g. dev='vda' (virtio), 'sda' (SATA/SCSI) or 'hda' (IDE)",
            )?
            .value;
        let bus = take_choice(&mut t, "bus", DISK_BUSES)?;
        let target = DiskTarget {
            dev,
            bus,
            attrs: clear(std::mem::take(&mut t.attrs)),
            children: t.children.iter().map(unpositioned).collect(),
        };
        let readonly = el.take_one("readonly")?.is_some();
        let shareable = el.take_one("shareable")?.is_some();
        let serial = el.take_one_text("serial")?.map(|(s, _)| s);
        let info = DevInfo::take_from(&mut el)?;
        let attrs = clear(std::mem::take(&mut el.attrs));
        let mut extra = el.into_extra();
        extra.children = extra.children.iter().map(unpositioned).collect();
        Ok(Disk {
            pos,
            disk_type,
            device,
            attrs,
            driver,
            source,
            target,
            readonly,
            shareable,
            serial,
            info,
            extra,
        })
    }

    /// The bus, explicit or derived from the target name as libvirt does.
    pub fn bus(&self) -> Option<&str> {
        self.target
            .bus
            .as_deref()
            .or_else(|| bus_from_dev(&self.target.dev))
    }

    /// The host path of the image (file, block device or directory), if any.
    pub fn source_path(&self) -> Option<&str> {
        self.source.as_ref().and_then(|s| s.path.as_deref())
    }

    /// The image format (`<driver type>`), if known.
    pub fn format(&self) -> Option<&str> {
        self.driver.as_ref().and_then(|d| d.format.as_deref())
    }

    /// libvirt's defaults: `<driver name='qemu' type='raw'/>`, the bus from the target name,
    /// and a drive address for IDE, SATA, SCSI and floppy disks.
    pub fn fill_defaults(&mut self) -> Result<(), ConfError> {
        if self.target.bus.is_none() {
            let bus = bus_from_dev(&self.target.dev).ok_or_else(|| ConfError::InvalidAttr {
                pos: self.pos,
                element: "target".into(),
                attr: "dev".into(),
                value: self.target.dev.clone(),
                expected: "a name starting with vd, hd, sd, fd, xvd or ubd, or an explicit bus"
                    .into(),
            })?;
            self.target.bus = Some(bus.to_string());
        }
        let d = self.driver.get_or_insert_with(DiskDriver::default);
        if d.name.is_none() {
            d.name = Some("qemu".into());
        }
        if d.format.is_none() && self.disk_type != "volume" {
            d.format = Some("raw".into());
        }
        if self.info.address.is_none() {
            self.info.address = self.default_drive_address()?;
        }
        Ok(())
    }

    fn default_drive_address(&self) -> Result<Option<DeviceAddress>, ConfError> {
        let (per_controller, per_bus): (u32, u32) = match self.bus() {
            Some("ide") => (4, 2),
            Some("sata") => (6, 6),
            Some("fdc") => (2, 2),
            Some("scsi") => (7, 7),
            _ => return Ok(None),
        };
        let idx = disk_name_index(&self.target.dev).ok_or_else(|| ConfError::InvalidAttr {
            pos: self.pos,
            element: "target".into(),
            attr: "dev".into(),
            value: self.target.dev.clone(),
            expected: "a disk name such as 'hda', 'sdb' or 'vdc'".into(),
        })?;
        Ok(Some(DeviceAddress::Drive {
            controller: idx / per_controller,
            bus: (idx % per_controller) / per_bus,
            target: 0,
            unit: idx % per_bus,
            extra: Extra::default(),
        }))
    }

    /// Writes `<disk>` in libvirt's order.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("disk")
            .attr("type", &self.disk_type)
            .attr("device", &self.device);
        el.attrs.extend(self.attrs.iter().cloned());
        if let Some(d) = &self.driver {
            let mut de = Element::new("driver")
                .attr_opt("name", d.name.as_deref())
                .attr_opt("type", d.format.as_deref());
            de.attrs.extend(d.attrs.iter().cloned());
            de.children = d.children.clone();
            el.children.push(de);
        }
        if let Some(s) = &self.source {
            let mut se = Element::new("source");
            if let (Some(a), Some(p)) = (path_attr(&self.disk_type), &s.path) {
                se.push_attr(a, p);
            }
            se.attrs.extend(s.attrs.iter().cloned());
            se.children = s.children.clone();
            el.children.push(se);
        }
        let mut t = Element::new("target")
            .attr("dev", &self.target.dev)
            .attr_opt("bus", self.target.bus.as_deref());
        t.attrs.extend(self.target.attrs.iter().cloned());
        t.children = self.target.children.clone();
        el.children.push(t);
        if self.readonly {
            el.children.push(Element::new("readonly"));
        }
        if self.shareable {
            el.children.push(Element::new("shareable"));
        }
        if let Some(s) = &self.serial {
            el.children.push(Element::new("serial").text(s));
        }
        el.children.extend(self.extra.children.iter().cloned());
        el.attrs.extend(self.extra.attrs.iter().cloned());
        self.info.push_into(&mut el);
        el.children.sort_by_key(|c| rank(DISK_ORDER, &c.name));
        el
    }
}

/// The bus libvirt derives from a target name prefix.
pub fn bus_from_dev(dev: &str) -> Option<&'static str> {
    if dev.starts_with("hd") {
        Some("ide")
    } else if dev.starts_with("sd") {
        Some("scsi")
    } else if dev.starts_with("vd") {
        Some("virtio")
    } else if dev.starts_with("xvd") {
        Some("xen")
    } else if dev.starts_with("fd") {
        Some("fdc")
    } else if dev.starts_with("ubd") {
        Some("uml")
    } else {
        None
    }
}

/// `hda` → 0, `sdb` → 1, `vdaa` → 26 (libvirt's virDiskNameToIndex; a partition number is ignored).
pub fn disk_name_index(dev: &str) -> Option<u32> {
    let rest = ["xvd", "ubd", "fd", "hd", "vd", "sd"]
        .iter()
        .find_map(|p| dev.strip_prefix(p))?;
    let letters: &str = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut idx: i64 = -1;
    for b in letters.bytes() {
        idx = (idx + 1) * 26 + i64::from(b - b'a');
        if idx > i64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(idx).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn disk(s: &str) -> Result<Disk, ConfError> {
        Disk::from_element(parse_document(s, Limits::default()).unwrap())
    }

    #[test]
    fn names_to_index() {
        assert_eq!(disk_name_index("hda"), Some(0));
        assert_eq!(disk_name_index("hdc"), Some(2));
        assert_eq!(disk_name_index("sdz"), Some(25));
        assert_eq!(disk_name_index("vdaa"), Some(26));
        assert_eq!(disk_name_index("vda1"), Some(0));
        assert_eq!(disk_name_index("nvme0"), None);
        assert_eq!(disk_name_index("hd"), None);
    }

    #[test]
    fn defaults_and_canonical_order() {
        let mut d = disk("<disk type='block' device='cdrom'><readonly/><target dev='hdc'/><source dev='/dev/sr0'/><boot order='1'/></disk>").unwrap();
        d.fill_defaults().unwrap();
        assert_eq!(
            write_document(&d.to_element()),
            "<disk type='block' device='cdrom'>\n  <driver name='qemu' type='raw'/>\n  <source dev='/dev/sr0'/>\n  <target dev='hdc' bus='ide'/>\n  <readonly/>\n  <boot order='1'/>\n  <address type='drive' controller='0' bus='1' target='0' unit='0'/>\n</disk>\n"
        );
        let mut s =
            disk("<disk type='file'><source file='/a'/><target dev='sdh' bus='sata'/></disk>")
                .unwrap();
        s.fill_defaults().unwrap();
        assert_eq!(
            s.info
                .address
                .as_ref()
                .unwrap()
                .to_element()
                .get_attr("controller"),
            Some("1")
        );
        let mut v = disk("<disk type='file'><driver name='qemu' type='qcow2' cache='none'/><source file='/i'/><target dev='vda' bus='virtio'/></disk>").unwrap();
        v.fill_defaults().unwrap();
        assert!(v.info.address.is_none());
        assert_eq!(v.format(), Some("qcow2"));
        assert_eq!(v.source_path(), Some("/i"));
    }

    #[test]
    fn errors() {
        assert!(disk("<disk type='file'><source file='/a'/></disk>")
            .unwrap_err()
            .to_string()
            .contains("<target>"));
        let e = disk("<disk type='floppydisk'><target dev='vda'/></disk>").unwrap_err();
        assert!(e.to_string().contains("'floppydisk'"), "{e}");
        let e = disk("<disk><target dev='vda' bus='pcie'/></disk>").unwrap_err();
        assert!(e.to_string().contains("'pcie'"), "{e}");
        let mut d = disk("<disk><target dev='xyz'/></disk>").unwrap();
        assert!(d.fill_defaults().is_err());
    }
}
