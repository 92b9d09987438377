//! `<controller>`: PCI buses and bridges, USB, IDE, SATA, SCSI and virtio-serial controllers.

use super::info::DevInfo;
use crate::domain::util::{one_of, rank, take_u32, unpositioned};
use crate::error::ConfError;
use crate::xml::{Attr, Element, Extra, Pos};

/// Controller types.
pub const CONTROLLER_TYPES: &[&str] = &[
    "ide",
    "fdc",
    "scsi",
    "sata",
    "virtio-serial",
    "ccid",
    "usb",
    "pci",
    "xenbus",
    "isa",
    "nvme",
];

/// Models accepted per controller type (an empty list accepts any model).
pub fn models_for(kind: &str) -> &'static [&'static str] {
    match kind {
        "pci" => &[
            "pci-root",
            "pcie-root",
            "pci-bridge",
            "dmi-to-pci-bridge",
            "pcie-root-port",
            "pcie-switch-upstream-port",
            "pcie-switch-downstream-port",
            "pci-expander-bus",
            "pcie-expander-bus",
            "pcie-to-pci-bridge",
        ],
        "usb" => &[
            "piix3-uhci",
            "piix4-uhci",
            "ehci",
            "ich9-ehci1",
            "ich9-uhci1",
            "ich9-uhci2",
            "ich9-uhci3",
            "vt82c686b-uhci",
            "pci-ohci",
            "nec-xhci",
            "qusb1",
            "qusb2",
            "qemu-xhci",
            "none",
        ],
        "scsi" => &[
            "auto",
            "buslogic",
            "lsilogic",
            "lsisas1068",
            "vmpvscsi",
            "ibmvscsi",
            "virtio-scsi",
            "lsisas1078",
            "virtio-transitional",
            "virtio-non-transitional",
            "ncr53c90",
            "am53c974",
            "dc390",
        ],
        "ide" => &["piix3", "piix4", "ich6"],
        "virtio-serial" => &["virtio", "virtio-transitional", "virtio-non-transitional"],
        "isa" => &["bochs"],
        _ => &[],
    }
}

/// PCI controller target options (`<target chassisNr chassis port busNr index>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PciTarget {
    /// `chassisNr` (pci-bridge).
    pub chassis_nr: Option<u32>,
    /// `chassis` (pcie-root-port, downstream port).
    pub chassis: Option<u32>,
    /// `port` (written in hex).
    pub port: Option<u32>,
    /// `busNr` (expander buses).
    pub bus_nr: Option<u32>,
    /// `index` (pSeries PHBs).
    pub index: Option<u32>,
    /// Other attributes (`hotplug`, `memReserve`) as written.
    pub attrs: Vec<Attr>,
    /// Children (`<node>`) as written.
    pub children: Vec<Element>,
}

impl PciTarget {
    fn is_empty(&self) -> bool {
        *self == PciTarget::default()
    }
}

/// One `<controller>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// Where the element starts (unknown for controllers added by the defaults).
    pub pos: Pos,
    /// `type`.
    pub kind: String,
    /// `index` (None until the defaults pick the first unused one).
    pub index: Option<u32>,
    /// `model`.
    pub model: Option<String>,
    /// `ports` (USB, virtio-serial).
    pub ports: Option<u32>,
    /// `vectors` (virtio-serial).
    pub vectors: Option<u32>,
    /// Other attributes as written.
    pub attrs: Vec<Attr>,
    /// PCI `<model name>`.
    pub model_name: Option<String>,
    /// Unknown content of the PCI `<model>`, written back into it.
    pub model_extra: Extra,
    /// PCI `<target>`.
    pub target: PciTarget,
    /// `<driver>` kept as written.
    pub driver: Option<Element>,
    /// Alias, master, address.
    pub info: DevInfo,
    /// Unknown children as written.
    pub extra: Vec<Element>,
}

const CONTROLLER_ORDER: &[&str] = &[
    "driver",
    "model",
    "target",
    "pcihole64",
    "boot",
    "acpi",
    "alias",
    "master",
    "rom",
    "address",
];

impl Controller {
    /// A new controller, as the defaults add them.
    pub fn new(kind: &str, index: u32, model: Option<&str>) -> Controller {
        Controller {
            pos: Pos::UNKNOWN,
            kind: kind.to_string(),
            index: Some(index),
            model: model.map(str::to_string),
            ports: None,
            vectors: None,
            attrs: Vec::new(),
            model_name: None,
            model_extra: Extra::default(),
            target: PciTarget::default(),
            driver: None,
            info: DevInfo::default(),
            extra: Vec::new(),
        }
    }

    /// Reads `<controller>`.
    pub fn from_element(mut el: Element) -> Result<Controller, ConfError> {
        let pos = el.pos;
        let t = el.require_attr("type", "e.g. type='pci', 'usb', 'scsi' or 'virtio-serial'")?;
        if !CONTROLLER_TYPES.contains(&t.value.as_str()) {
            return Err(el.invalid_attr(&t, &one_of(CONTROLLER_TYPES)));
        }
        let kind = t.value;
        let index = match el.take_attr("index") {
            None => None,
            Some(a) => Some(
                crate::domain::util::parse_uint(&a.value)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n <= 255 || kind != "pci")
                    .ok_or_else(|| el.invalid_attr(&a, "a controller index (0..255 for PCI)"))?,
            ),
        };
        let model = match el.take_attr("model") {
            None => None,
            Some(a) => {
                let allowed = models_for(&kind);
                if !allowed.is_empty() && !allowed.contains(&a.value.as_str()) {
                    return Err(el.invalid_attr(&a, &one_of(allowed)));
                }
                Some(a.value)
            }
        };
        let ports = take_u32(&mut el, "ports")?;
        let vectors = take_u32(&mut el, "vectors")?;
        let mut model_name = None;
        let mut model_extra = Extra::default();
        let mut target = PciTarget::default();
        if kind == "pci" {
            if let Some(mut m) = el.take_one("model")? {
                model_name = m.take_attr_value("name");
                model_extra = m.into_extra();
                model_extra.attrs = model_extra.attrs.into_iter().map(clear_attr).collect();
                model_extra.children = model_extra.children.iter().map(unpositioned).collect();
            }
            if let Some(mut t) = el.take_one("target")? {
                target.chassis_nr = take_u32(&mut t, "chassisNr")?;
                target.chassis = take_u32(&mut t, "chassis")?;
                target.port = take_u32(&mut t, "port")?;
                target.bus_nr = take_u32(&mut t, "busNr")?;
                target.index = take_u32(&mut t, "index")?;
                target.attrs = t.attrs.into_iter().map(clear_attr).collect();
                target.children = t.children.iter().map(unpositioned).collect();
            }
        }
        let driver = el.take_one("driver")?.map(|d| unpositioned(&d));
        let info = DevInfo::take_from(&mut el)?;
        let attrs = std::mem::take(&mut el.attrs)
            .into_iter()
            .map(clear_attr)
            .collect();
        let extra = el.children.iter().map(unpositioned).collect();
        Ok(Controller {
            pos,
            kind,
            index,
            model,
            ports,
            vectors,
            attrs,
            model_name,
            model_extra,
            target,
            driver,
            info,
            extra,
        })
    }

    /// The index (0 when not yet assigned).
    pub fn idx(&self) -> u32 {
        self.index.unwrap_or(0)
    }

    /// The model, if set.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Whether this is the PCI root bus (`pci-root` or `pcie-root`).
    pub fn is_pci_root(&self) -> bool {
        self.kind == "pci" && matches!(self.model(), Some("pci-root" | "pcie-root"))
    }

    /// A short description for messages: `controller type='usb' index='0'`.
    pub fn describe(&self) -> String {
        format!("controller type='{}' index='{}'", self.kind, self.idx())
    }

    /// Writes `<controller>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("controller")
            .attr("type", &self.kind)
            .attr_opt("index", self.index)
            .attr_opt("model", self.model.as_deref())
            .attr_opt("ports", self.ports)
            .attr_opt("vectors", self.vectors);
        el.attrs.extend(self.attrs.iter().cloned());
        el.children.extend(self.driver.clone());
        if self.model_name.is_some() || !self.model_extra.is_empty() {
            el.children.push(
                Element::new("model")
                    .attr_opt("name", self.model_name.as_deref())
                    .with_extra(&self.model_extra),
            );
        }
        if !self.target.is_empty() {
            let t = &self.target;
            let mut te = Element::new("target")
                .attr_opt("chassisNr", t.chassis_nr)
                .attr_opt("chassis", t.chassis)
                .attr_opt("port", t.port.map(|p| format!("{p:#x}")))
                .attr_opt("busNr", t.bus_nr)
                .attr_opt("index", t.index);
            te.attrs.extend(t.attrs.iter().cloned());
            te.children = t.children.clone();
            el.children.push(te);
        }
        el.children.extend(self.extra.iter().cloned());
        self.info.push_into(&mut el);
        el.children.sort_by_key(|c| rank(CONTROLLER_ORDER, &c.name));
        el
    }
}

fn clear_attr(mut a: Attr) -> Attr {
    a.pos = Pos::UNKNOWN;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn c(s: &str) -> Result<Controller, ConfError> {
        Controller::from_element(parse_document(s, Limits::default()).unwrap())
    }

    #[test]
    fn pci_root_port_round_trip() {
        let x = c("<controller type='pci' index='1' model='pcie-root-port'><address type='pci' slot='2' multifunction='on'/><target port='16' chassis='1'/><model name='pcie-root-port'/></controller>").unwrap();
        assert_eq!(
            write_document(&x.to_element()),
            "<controller type='pci' index='1' model='pcie-root-port'>\n  <model name='pcie-root-port'/>\n  <target chassis='1' port='0x10'/>\n  <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0' multifunction='on'/>\n</controller>\n"
        );
        assert!(!x.is_pci_root());
        assert!(c("<controller type='pci' index='0' model='pcie-root'/>")
            .unwrap()
            .is_pci_root());
    }

    #[test]
    fn usb_and_virtio_serial_attrs() {
        let x = c("<controller type='virtio-serial' vectors='4' index='0' ports='16'/>").unwrap();
        assert_eq!(
            write_document(&x.to_element()),
            "<controller type='virtio-serial' index='0' ports='16' vectors='4'/>\n"
        );
    }

    #[test]
    fn errors() {
        let e = c("<controller type='usb' index='0' model='uhci9000'/>").unwrap_err();
        assert!(
            e.to_string().contains("'uhci9000'") && e.to_string().contains("qemu-xhci"),
            "{e}"
        );
        assert!(c("<controller type='warp'/>").is_err());
        assert!(c("<controller index='0'/>").is_err());
        assert!(c("<controller type='pci' index='256' model='pci-bridge'/>").is_err());
        assert!(c("<controller type='usb' index='x'/>").is_err());
    }

    /// Fuzzer find: a PCI controller's `<model na%e='...'/>` (no `name`) was kept as unknown
    /// content next to the `<model name>` the defaults add: two `<model>` on a re-read.
    #[test]
    fn pci_model_keeps_unknown_content_inside() {
        use crate::test_util::{assert_formats_stably, domain_with};
        let out = assert_formats_stably(&domain_with(
            "q35",
            "<controller type='pci' index='0' model='pcie-root'/>\
             <controller type='pci' index='1' model='pcie-root-port'><model nmae='x'/></controller>",
        ));
        assert!(
            out.contains("<model name='pcie-root-port' nmae='x'/>"),
            "{out}"
        );
    }
}
