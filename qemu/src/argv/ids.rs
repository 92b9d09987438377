//! QEMU ids of a NIC (as libvirt names them) and the per-domain facts a NIC builder needs.

use virtnet_conf::{Domain, Interface};

/// The QEMU ids of one interface, as libvirt assigns them.
///
/// The device id is the user alias (`<alias name='ua-...'/>`) if there is one, else `netN`
/// (N = the interface's index among the domain's interfaces) or, for `type='hostdev'`,
/// `hostdevK` (K counts the hostdev interfaces before it). The netdev is `host<device id>` and
/// the vhost-user chardev `char<device id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIds {
    /// The `-device` id (`net0`, `hostdev0`, `ua-backup0`): also the name for `set_link`,
    /// `device_del` and `DEVICE_DELETED`.
    pub device: String,
    /// The `-netdev` id (`hostnet0`).
    pub netdev: String,
    /// The chardev id of a vhost-user NIC (`charnet0`).
    pub chardev: String,
}

impl NicIds {
    /// The ids of `interfaces[index]`.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn new(interfaces: &[Interface], index: usize) -> NicIds {
        let iface = &interfaces[index];
        let device = match iface.alias() {
            Some(a) => a.to_string(),
            None if iface.is_hostdev() => {
                let k = interfaces[..index]
                    .iter()
                    .filter(|i| i.is_hostdev() && i.alias().is_none())
                    .count();
                format!("hostdev{k}")
            }
            None => format!("net{index}"),
        };
        NicIds {
            netdev: format!("host{device}"),
            chardev: format!("char{device}"),
            device,
        }
    }
}

/// One interface of a domain, with what its builders need from the rest of the domain.
#[derive(Debug, Clone)]
pub struct NicSpec<'a> {
    /// The interface.
    pub iface: &'a Interface,
    /// Its index in `<devices>` (and in the caller's list of [`super::NicBackend`]s).
    pub index: usize,
    /// Its QEMU ids.
    pub ids: NicIds,
    /// Its effective boot index (`<boot order>`, or from `<os><boot dev='network'/>`).
    pub bootindex: Option<u32>,
}

impl<'a> NicSpec<'a> {
    /// `interfaces[index]` on its own: the boot index is its `<boot order>`.
    /// `None` when `index` is out of range.
    pub fn new(interfaces: &'a [Interface], index: usize) -> Option<NicSpec<'a>> {
        let iface = interfaces.get(index)?;
        Some(NicSpec {
            iface,
            index,
            ids: NicIds::new(interfaces, index),
            bootindex: iface.boot_order(),
        })
    }

    /// Interface `index` of `domain`, with the boot index libvirt would give it (the
    /// `<os><boot dev='network'/>` position applies to the first interface).
    /// `None` when `index` is out of range.
    pub fn from_domain(domain: &'a Domain, index: usize) -> Option<NicSpec<'a>> {
        let mut spec = NicSpec::new(&domain.devices.interfaces, index)?;
        spec.bootindex = BootIndexes::of(domain).net(index);
        Some(spec)
    }

    /// A name for messages: `interface 52:54:00:00:01:01 (#0, type='bridge')`.
    pub fn describe(&self) -> String {
        format!(
            "{} (#{}, type='{}')",
            self.iface.describe(),
            self.index,
            self.iface.type_()
        )
    }
}

/// The effective boot indexes (libvirt's `effectiveBootIndex`): per-device `<boot order>`, or,
/// when `<os>` has `<boot dev>` entries, their positions given to the first disk, the first
/// CD-ROM and the first interface.
#[derive(Debug, Clone, Default)]
pub(crate) struct BootIndexes {
    disks: Vec<Option<u32>>,
    nets: Vec<Option<u32>>,
}

impl BootIndexes {
    pub fn of(domain: &Domain) -> BootIndexes {
        let d = &domain.devices;
        let boot = &domain.os.boot;
        if boot.is_empty() {
            return BootIndexes {
                disks: d.disks.iter().map(|x| x.info.boot_order).collect(),
                nets: d.interfaces.iter().map(Interface::boot_order).collect(),
            };
        }
        let pos = |dev: &str| boot.iter().position(|b| b == dev).map(|p| p as u32 + 1);
        let (mut hd, mut cdrom, mut fd) = (pos("hd"), pos("cdrom"), pos("fd"));
        let disks = d
            .disks
            .iter()
            .map(|disk| match disk.device.as_str() {
                "cdrom" => cdrom.take(),
                "floppy" => fd.take(),
                _ => hd.take(),
            })
            .collect();
        let mut nets = vec![None; d.interfaces.len()];
        if let Some(first) = nets.first_mut() {
            *first = pos("network");
        }
        BootIndexes { disks, nets }
    }

    pub fn disk(&self, i: usize) -> Option<u32> {
        self.disks.get(i).copied().flatten()
    }

    pub fn net(&self, i: usize) -> Option<u32> {
        self.nets.get(i).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_conf::xml::{parse_document, Limits};

    pub(crate) fn iface(xml: &str) -> Interface {
        Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()
    }

    #[test]
    fn libvirt_ids() {
        let list = vec![
            iface("<interface type='user'/>"),
            iface(
                "<interface type='hostdev'><source><address type='pci' bus='3' slot='7' \
                 function='1'/></source></interface>",
            ),
            iface("<interface type='user'><alias name='ua-backup0'/></interface>"),
            iface(
                "<interface type='hostdev'><source><address type='pci' bus='3' slot='7' \
                 function='2'/></source></interface>",
            ),
        ];
        let ids: Vec<NicIds> = (0..4).map(|i| NicIds::new(&list, i)).collect();
        assert_eq!(ids[0].device, "net0");
        assert_eq!(ids[0].netdev, "hostnet0");
        assert_eq!(ids[0].chardev, "charnet0");
        assert_eq!(ids[1].device, "hostdev0");
        assert_eq!(ids[2].device, "ua-backup0");
        assert_eq!(ids[2].netdev, "hostua-backup0");
        assert_eq!(ids[3].device, "hostdev1");
        let spec = NicSpec::new(&list, 2).unwrap();
        assert_eq!(spec.describe(), "interface ua-backup0 (#2, type='user')");
        assert!(NicSpec::new(&list, 4).is_none());
    }
}
