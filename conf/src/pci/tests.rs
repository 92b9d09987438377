//! Unit tests of guest PCI address assignment on small domains.

use crate::address::PciAddress;
use crate::domain::Domain;

fn filled(devices: &str, machine: &str) -> Result<Domain, crate::ConfError> {
    let xml = format!(
        "<domain type='qemu'><name>t</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory>1024</memory><os><type arch='x86_64' machine='{machine}'>hvm</type></os>\
         <devices>{devices}</devices></domain>"
    );
    let mut d = Domain::parse(&xml)?;
    d.fill_defaults()?;
    Ok(d)
}

fn addrs(d: &Domain) -> Vec<(String, String)> {
    d.pci_addresses_in_use()
        .into_iter()
        .map(|(what, a, _)| (what, a.to_string()))
        .collect()
}

#[test]
fn i440fx_chipset_and_order() {
    let d = filled(
        "<memballoon model='virtio'/><interface type='user'><model type='virtio'/></interface>\
         <disk type='file'><source file='/a'/><target dev='vda' bus='virtio'/></disk>\
         <controller type='virtio-serial' index='0'/><sound model='ac97'/>\
         <video><model type='vga'/></video>",
        "pc",
    )
    .unwrap();
    let a = addrs(&d);
    let find = |w: &str| {
        a.iter()
            .find(|(d, _)| d.starts_with(w))
            .map(|(_, a)| a.as_str())
    };
    assert_eq!(find("controller type='usb'"), Some("0000:00:01.2"));
    assert_eq!(find("video"), Some("0000:00:02.0"));
    // net, sound, controllers, disks, balloon — on the first free slots.
    assert_eq!(find("interface"), Some("0000:00:03.0"));
    assert_eq!(find("sound"), Some("0000:00:04.0"));
    assert_eq!(
        find("controller type='virtio-serial'"),
        Some("0000:00:05.0")
    );
    assert_eq!(find("disk"), Some("0000:00:06.0"));
    assert_eq!(find("memballoon"), Some("0000:00:07.0"));
    assert_eq!(d.next_free_pci_slot(), Some(PciAddress::slot(8)));
    // Idempotent.
    let again = {
        let mut d2 = Domain::parse(&d.to_xml()).unwrap();
        d2.fill_defaults().unwrap();
        d2.to_xml()
    };
    assert_eq!(again, d.to_xml());
}

#[test]
fn explicit_addresses_are_kept_and_conflicts_refused() {
    let d = filled(
        "<interface type='user'><address type='pci' slot='5'/></interface><interface type='user'/>",
        "pc",
    )
    .unwrap();
    let a = addrs(&d);
    assert!(
        a.iter()
            .any(|(w, x)| w.starts_with("interface 1") && x == "0000:00:05.0"),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|(w, x)| w.starts_with("interface 2") && x == "0000:00:02.0"),
        "{a:?}"
    );
    let e = filled(
        "<interface type='user'><address type='pci' slot='5'/></interface>\
         <interface type='user'><address type='pci' slot='5'/></interface>",
        "pc",
    )
    .unwrap_err();
    assert!(e.to_string().contains("double use"), "{e}");
    assert!(e.pos().line > 0);
    // An address on a bus that does not exist yet makes libvirt add pci-bridges up to it.
    let d = filled(
        "<interface type='user'><address type='pci' bus='3' slot='5'/></interface>",
        "pc",
    )
    .unwrap();
    assert_eq!(
        d.devices.controller("pci", 3).unwrap().model(),
        Some("pci-bridge")
    );
    let e = filled(
        "<interface type='user'><address type='pci' domain='1' slot='5'/></interface>",
        "pc",
    )
    .unwrap_err();
    assert!(e.to_string().contains("Only PCI domain 0"), "{e}");
    let e = filled(
        "<controller type='ide' index='0'><address type='pci' slot='4'/></controller>",
        "pc",
    )
    .unwrap_err();
    assert!(e.to_string().contains("0:0:1.1"), "{e}");
}

#[test]
fn full_i440fx_bus_gets_a_bridge_or_is_refused() {
    // 29 NICs fill slots 2..=30, the 30th needs slot 31, which is kept for a pci-bridge.
    let nics: String = (0..30).map(|_| "<interface type='user'/>").collect();
    let d = filled(&nics, "pc").unwrap();
    let bridge = d.devices.controller("pci", 1).expect("pci-bridge added");
    assert_eq!(bridge.model(), Some("pci-bridge"));
    assert_eq!(bridge.model_name.as_deref(), Some("pci-bridge"));
    assert_eq!(bridge.target.chassis_nr, Some(1));
    // Every slot of bus 0 taken explicitly: no room for anything, not even a bridge.
    let explicit: String = (2..=31)
        .map(|s| format!("<interface type='user'><address type='pci' slot='{s}'/></interface>"))
        .collect();
    let e = filled(&(explicit + "<interface type='user'/>"), "pc").unwrap_err();
    assert!(e.to_string().contains("PCI"), "{e}");
    assert!(e.pos().is_known(), "{e:?}");
}

#[test]
fn q35_root_ports() {
    let d = filled(
        "<interface type='user'><model type='virtio'/></interface>",
        "q35",
    )
    .unwrap();
    let a = addrs(&d);
    let find = |w: &str| {
        a.iter()
            .find(|(d, _)| d.starts_with(w))
            .map(|(_, a)| a.clone())
    };
    assert_eq!(
        find("controller type='sata'").as_deref(),
        Some("0000:00:1f.2")
    );
    assert_eq!(find("interface 1").as_deref(), Some("0000:01:00.0"));
    assert_eq!(
        find("controller type='usb'").as_deref(),
        Some("0000:02:00.0")
    );
    assert_eq!(find("memballoon").as_deref(), Some("0000:03:00.0"));
    let first_port = d.devices.controller("pci", 1).unwrap();
    assert_eq!(first_port.info.pci(), Some(PciAddress::slot(1)));
    assert_eq!(first_port.target.port, Some(0x8));
    assert_eq!(
        first_port
            .info
            .address
            .as_ref()
            .unwrap()
            .to_element()
            .get_attr("multifunction"),
        Some("on")
    );
    // One spare root port (index 4) is left for hot-plug.
    assert_eq!(
        d.devices.controller("pci", 4).unwrap().model(),
        Some("pcie-root-port")
    );
    assert!(d.devices.controller("pci", 5).is_none());
    assert_eq!(
        d.next_free_pci_slot(),
        Some(PciAddress {
            bus: 4,
            ..PciAddress::slot(0)
        })
    );
}

#[test]
fn q35_conventional_pci_nic_goes_behind_a_bridge() {
    let d = filled(
        "<interface type='user'><model type='e1000'/></interface>",
        "q35",
    )
    .unwrap();
    let bridge = d
        .devices
        .controllers
        .iter()
        .find(|c| c.model() == Some("pcie-to-pci-bridge"))
        .expect("pcie-to-pci-bridge added");
    let nic = d.devices.interfaces[0]
        .address
        .as_ref()
        .unwrap()
        .pci()
        .unwrap();
    assert_eq!(u32::from(nic.bus), bridge.idx());
    assert!(nic.slot >= 1);
}
