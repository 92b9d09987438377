//! `<os>`: guest type, architecture, machine, firmware, direct kernel boot and boot order.

use super::util::{sort_children, take_choice, unpositioned};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// Boot devices accepted in `<boot dev>`.
pub const BOOT_DEVICES: &[&str] = &["fd", "hd", "cdrom", "network"];

/// The architectures libvirt knows (`virArch`); others are refused as libvirt refuses them
/// ("Unknown architecture"). The name also makes the default `<emulator>` path.
pub const ARCHES: &[&str] = &[
    "aarch64",
    "alpha",
    "armv6l",
    "armv7b",
    "armv7l",
    "cris",
    "i686",
    "loongarch64",
    "m68k",
    "microblaze",
    "microblazeel",
    "mips",
    "mips64",
    "mips64el",
    "mipsel",
    "openrisc",
    "parisc",
    "parisc64",
    "ppc",
    "ppc64",
    "ppc64le",
    "ppcemb",
    "ppcle",
    "riscv32",
    "riscv64",
    "s390",
    "s390x",
    "sh4",
    "sh4eb",
    "sparc",
    "sparc64",
    "unicore32",
    "x86_64",
    "xtensa",
    "xtensaeb",
];

/// `<os>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Os {
    /// Where `<os>` was.
    pub pos: Pos,
    /// `<type>` text: `hvm` for QEMU guests.
    pub os_type: String,
    /// `<type arch>` (x86_64 when defaulted).
    pub arch: Option<String>,
    /// `<type machine>` (`pc`, `q35`, `pc-i440fx-9.2`, ...).
    pub machine: Option<String>,
    /// `<os firmware='efi|bios'>`.
    pub firmware: Option<String>,
    /// `<loader>` kept as written (attributes readonly/type/secure, text = path).
    pub loader: Option<Element>,
    /// `<nvram>` kept as written.
    pub nvram: Option<Element>,
    /// `<kernel>` path (direct kernel boot).
    pub kernel: Option<String>,
    /// `<initrd>` path.
    pub initrd: Option<String>,
    /// `<cmdline>` kernel arguments.
    pub cmdline: Option<String>,
    /// `<dtb>` path.
    pub dtb: Option<String>,
    /// `<boot dev>` list, in order.
    pub boot: Vec<String>,
    /// `<bootmenu>` kept as written (`enable`, `timeout`).
    pub bootmenu: Option<Element>,
    /// Unknown attributes of `<type>`.
    pub type_extra: Extra,
    /// Unknown content of `<os>` (e.g. `<smbios>`, `<bios>`, `<acpi>`), kept.
    pub extra: Extra,
}

const OS_ORDER: &[&str] = &[
    "type",
    "firmware",
    "init",
    "initarg",
    "initenv",
    "initdir",
    "inituser",
    "initgroup",
    "loader",
    "nvram",
    "kernel",
    "initrd",
    "cmdline",
    "shim",
    "dtb",
    "root",
    "acpi",
    "boot",
    "bootmenu",
    "smbios",
    "bios",
];

impl Os {
    /// Reads `<os>`.
    pub fn from_element(mut el: Element) -> Result<Os, ConfError> {
        let pos = el.pos;
        let firmware = take_choice(&mut el, "firmware", &["bios", "efi"])?;
        let mut t = el.require_one("type", "QEMU guests need <type>hvm</type>")?;
        let arch = take_choice(&mut t, "arch", ARCHES)?;
        let machine = t.take_attr_value("machine");
        let os_type = t.take_text().unwrap_or_default();
        if os_type != "hvm" {
            return Err(ConfError::InvalidText {
                pos: t.pos,
                element: "type".into(),
                value: os_type,
                expected: "'hvm' (the only OS type QEMU guests have)".into(),
            });
        }
        let text = |el: &mut Element, name: &str| -> Result<Option<String>, ConfError> {
            Ok(el.take_one_text(name)?.map(|(t, _)| t))
        };
        let loader = el.take_one("loader")?.map(|e| unpositioned(&e));
        let nvram = el.take_one("nvram")?.map(|e| unpositioned(&e));
        let kernel = text(&mut el, "kernel")?;
        let initrd = text(&mut el, "initrd")?;
        let cmdline = text(&mut el, "cmdline")?;
        let dtb = text(&mut el, "dtb")?;
        let mut boot = Vec::new();
        for mut b in el.take_children("boot") {
            let dev = b.require_attr("dev", "use one of dev='hd', 'cdrom', 'network' or 'fd'")?;
            if !BOOT_DEVICES.contains(&dev.value.as_str()) {
                return Err(b.invalid_attr(&dev, &super::util::one_of(BOOT_DEVICES)));
            }
            boot.push(dev.value);
        }
        let bootmenu = match el.take_one("bootmenu")? {
            None => None,
            Some(mut b) => {
                let enable = super::util::take_yes_no(&mut b, "enable")?;
                let mut out = Element::new("bootmenu").attr_opt("enable", enable);
                out.attrs.append(&mut b.attrs);
                Some(unpositioned(&out))
            }
        };
        Ok(Os {
            pos,
            os_type,
            arch,
            machine,
            firmware,
            loader,
            nvram,
            kernel,
            initrd,
            cmdline,
            dtb,
            boot,
            bootmenu,
            type_extra: t.into_extra(),
            extra: el.into_extra(),
        })
    }

    /// Writes `<os>`.
    pub fn to_element(&self) -> Element {
        let text = |name: &str, v: &Option<String>| v.as_ref().map(|t| Element::new(name).text(t));
        let mut el = Element::new("os")
            .attr_opt("firmware", self.firmware.as_deref())
            .child(
                Element::new("type")
                    .attr_opt("arch", self.arch.as_deref())
                    .attr_opt("machine", self.machine.as_deref())
                    .text(&self.os_type)
                    .with_extra(&self.type_extra),
            )
            .child_opt(self.loader.clone())
            .child_opt(self.nvram.clone())
            .child_opt(text("kernel", &self.kernel))
            .child_opt(text("initrd", &self.initrd))
            .child_opt(text("cmdline", &self.cmdline))
            .child_opt(text("dtb", &self.dtb));
        for b in &self.boot {
            el.children.push(Element::new("boot").attr("dev", b));
        }
        let mut el = el.child_opt(self.bootmenu.clone()).with_extra(&self.extra);
        sort_children(&mut el, OS_ORDER);
        el
    }

    /// Whether the machine type is a q35 (ICH9, PCI Express) one: `q35` or `pc-q35-*`.
    pub fn is_q35(&self) -> bool {
        self.machine
            .as_deref()
            .is_some_and(|m| m == "q35" || m.starts_with("pc-q35"))
    }

    /// Whether the machine type is an i440FX (PIIX3, conventional PCI) one: `pc`, `pc-i440fx-*`
    /// or `pc-<version>`.
    pub fn is_i440fx(&self) -> bool {
        self.machine.as_deref().is_some_and(|m| {
            m == "pc"
                || m.starts_with("pc-i440fx")
                || (m.starts_with("pc-") && !m.starts_with("pc-q35"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn os(s: &str) -> Result<Os, ConfError> {
        Os::from_element(parse_document(s, Limits::default()).unwrap())
    }

    #[test]
    fn kernel_boot_round_trip() {
        let o = os("<os><cmdline>console=ttyS0</cmdline><kernel>/k</kernel><type machine='q35' arch='x86_64'>hvm</type><boot dev='network'/><bootmenu enable='yes'/></os>").unwrap();
        assert!(o.is_q35() && !o.is_i440fx());
        assert_eq!(
            write_document(&o.to_element()),
            "<os>\n  <type arch='x86_64' machine='q35'>hvm</type>\n  <kernel>/k</kernel>\n  <cmdline>console=ttyS0</cmdline>\n  <boot dev='network'/>\n  <bootmenu enable='yes'/>\n</os>\n"
        );
    }

    #[test]
    fn errors() {
        assert!(os("<os/>").unwrap_err().to_string().contains("<type>"));
        let e = os("<os><type>xen</type></os>").unwrap_err();
        assert!(e.to_string().contains("'xen'"), "{e}");
        let e = os("<os><type>hvm</type><boot dev='usb'/></os>").unwrap_err();
        assert!(e.to_string().contains("'usb'") && e.pos().col > 1, "{e}");
    }

    /// Fuzzer find: arch='x36_64 ' made the default `<emulator>` end in a space, which the
    /// next read trimmed. Unknown architectures are refused, as libvirt refuses them.
    #[test]
    fn unknown_architectures_are_refused() {
        for bad in ["x86_64 ", "x36_64", ""] {
            let e = os(&format!("<os><type arch='{bad}'>hvm</type></os>")).unwrap_err();
            assert!(e.to_string().contains("'arch'"), "{e}");
            assert_eq!(e.pos().col, 11, "{e:?}");
        }
        for good in ["x86_64", "i686", "aarch64"] {
            let o = os(&format!("<os><type arch='{good}'>hvm</type></os>")).unwrap();
            assert_eq!(o.arch.as_deref(), Some(good));
        }
    }

    #[test]
    fn machine_families() {
        for (m, q35, pc) in [
            ("pc", false, true),
            ("pc-i440fx-9.2", false, true),
            ("pc-1.2", false, true),
            ("q35", true, false),
            ("pc-q35-8.0", true, false),
            ("microvm", false, false),
        ] {
            let o = Os {
                machine: Some(m.into()),
                ..Os::default()
            };
            assert_eq!((o.is_q35(), o.is_i440fx()), (q35, pc), "{m}");
        }
    }
}
