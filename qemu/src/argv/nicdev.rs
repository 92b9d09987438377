//! `-device` / QMP `device_add` of a NIC: the guest side, as libvirt writes it
//! (`qemuBuildNicDevProps`, `qemuBuildPCIHostdevDevProps`): same keys, same order.

use serde_json::Value;
use virtnet_conf::address::DeviceAddress;
use virtnet_conf::interface::{
    Driver, HostdevSource, InterfaceKind, InterfaceType, NicModel, TeamingKind,
};

use super::caps::{Accel, GuestCtx};
use super::devaddr::address_props;
use super::ids::NicSpec;
use super::netdev::check_supported;
use super::opts::{id_is_safe, Props};
use crate::error::QemuError;

/// Host offloads: (`<host>` attribute, virtio-net-pci property), in libvirt's order.
const HOST_OFFLOAD_PROPS: &[(&str, &str)] = &[
    ("csum", "csum"),
    ("gso", "gso"),
    ("tso4", "host_tso4"),
    ("tso6", "host_tso6"),
    ("ecn", "host_ecn"),
    ("ufo", "host_ufo"),
    ("mrg_rxbuf", "mrg_rxbuf"),
];
/// Guest offloads: (`<guest>` attribute, virtio-net-pci property), in libvirt's order.
const GUEST_OFFLOAD_PROPS: &[(&str, &str)] = &[
    ("csum", "guest_csum"),
    ("tso4", "guest_tso4"),
    ("tso6", "guest_tso6"),
    ("ecn", "guest_ecn"),
    ("ufo", "guest_ufo"),
];

/// The `-device` JSON (also the arguments of QMP `device_add`) of one interface: the NIC model
/// (`virtio-net-pci`, `e1000`, `rtl8139`, `usb-net`, ...) connected to `host<id>`, or for
/// `type='hostdev'` a `vfio-pci` device for the VF.
///
/// Under TCG a vhost-user NIC gets `"vectors":0` (see [`vhost_user_tcg_vectors`]).
pub fn nic_device_json(spec: &NicSpec<'_>, guest: &GuestCtx) -> Result<Value, QemuError> {
    check_supported(spec, &guest.caps)?;
    if !id_is_safe(&spec.ids.device) {
        return Err(QemuError::UnsupportedInterface {
            interface: spec.describe(),
            message: format!(
                "the id '{}' cannot be used by QEMU: use an alias of letters, digits and '-'",
                spec.ids.device
            ),
        });
    }
    if spec.iface.is_hostdev() {
        return vfio_device(spec, guest);
    }
    let iface = spec.iface;
    let default_model = match iface.type_() {
        InterfaceType::VhostUser | InterfaceType::Vdpa => NicModel::virtio(),
        _ => NicModel::rtl8139(),
    };
    let model = iface.model().cloned().unwrap_or(default_model);
    let mut p = Props::new();
    if model.is_virtio() {
        virtio_props(spec, &model, guest, &mut p)?;
    } else {
        p.put("driver", model.as_str());
    }
    let mac = iface.mac().ok_or_else(|| QemuError::UnsupportedInterface {
        interface: spec.describe(),
        message: "it has no MAC address, and QEMU would make up one that other guests get \
                  too: give it <mac address='52:54:00:...'/> (or assign one with \
                  Interface::assign_mac before building)"
            .into(),
    })?;
    p.put("netdev", spec.ids.netdev.as_str())
        .put("id", spec.ids.device.as_str())
        .put("mac", mac.to_string())
        .put_opt("bootindex", spec.bootindex);
    nic_address_props(spec, guest, &mut p)?;
    rom_props(spec, &mut p)?;
    Ok(p.into_value())
}

/// Why vhost-user NICs get `"vectors":0` under TCG: QEMU 7.2 with TCG segfaults in
/// `msix_set_vector_notifiers` when the guest driver starts a vhost-user virtio-net device
/// with MSI-X (measured on these machines, see docs/notes); without MSI-X (legacy INTx) the
/// same setup works, at boot and hot-plugged. KVM uses the normal MSI-X path. libvirt does not
/// do this; it is the one documented difference in the conformance comparison.
pub fn vhost_user_tcg_vectors(spec: &NicSpec<'_>, guest: &GuestCtx) -> Option<u32> {
    (guest.accel == Accel::Tcg && spec.iface.type_() == InterfaceType::VhostUser).then_some(0)
}

fn virtio_props(
    spec: &NicSpec<'_>,
    model: &NicModel,
    guest: &GuestCtx,
    p: &mut Props,
) -> Result<(), QemuError> {
    let iface = spec.iface;
    // A non-PCI address: refused by the argv guard (validate::Rule::VirtioNeedsPciAddress).
    let driver = match model.as_str() {
        "virtio-transitional" => "virtio-net-pci-transitional",
        "virtio-non-transitional" => "virtio-net-pci-non-transitional",
        _ => "virtio-net-pci",
    };
    p.put("driver", driver);
    let default = Driver::default();
    let d = iface.driver.as_ref().unwrap_or(&default);
    p.put_opt("iommu_platform", d.iommu)
        .put_opt("ats", d.ats)
        .put_opt("packed", d.packed)
        .put_opt("page-per-vq", d.page_per_vq);
    let tx = d.txmode.as_deref().map(|m| match m {
        "iothread" => "bh",
        _ => "timer",
    });
    p.put_opt("tx", tx)
        .put_opt("ioeventfd", d.ioeventfd)
        .put_opt("event_idx", d.event_idx);
    for (list, names) in [
        (&d.host, HOST_OFFLOAD_PROPS),
        (&d.guest, GUEST_OFFLOAD_PROPS),
    ] {
        if let Some(o) = list {
            for (attr, prop) in names {
                p.put_opt(prop, o.get(attr));
            }
        }
    }
    if let Some(q) = iface.queues().filter(|q| *q > 1) {
        // libvirt (after linux-kvm.org/page/Multiqueue): vectors = 2 * queues + 2.
        p.put("mq", true).put("vectors", 2 * q + 2);
    }
    if let Some(v) = vhost_user_tcg_vectors(spec, guest) {
        p.put("vectors", v);
    }
    p.put_opt("rx_queue_size", d.rx_queue_size.as_ref().map(|q| q.value))
        .put_opt("tx_queue_size", d.tx_queue_size.as_ref().map(|q| q.value))
        .put_opt("rss", d.rss)
        .put_opt("hash", d.rss_hash_report)
        .put_opt("host_mtu", iface.mtu());
    let persistent = iface
        .teaming
        .as_ref()
        .is_some_and(|t| t.kind == TeamingKind::Persistent);
    if persistent {
        p.put("failover", true);
    }
    Ok(())
}

fn vfio_device(spec: &NicSpec<'_>, guest: &GuestCtx) -> Result<Value, QemuError> {
    let iface = spec.iface;
    let refuse = |message: String| QemuError::UnsupportedInterface {
        interface: spec.describe(),
        message,
    };
    let host = match &iface.kind {
        InterfaceKind::Hostdev {
            source: HostdevSource::Pci { addr, .. },
            ..
        } => addr.value,
        _ => {
            return Err(refuse(
                "a hostdev interface needs the host PCI address of the VF (<source><address \
                 type='pci' .../></source>)"
                    .into(),
            ))
        }
    };
    // <driver name> other than vfio: refused by the argv guard
    // (validate::Rule::HostdevDriverNotVfio).
    let failover_pair = iface
        .teaming
        .as_ref()
        .filter(|t| t.kind == TeamingKind::Transient)
        .and_then(|t| t.persistent.as_ref())
        .map(|p| p.value.as_str());
    let mut p = Props::new();
    p.put("driver", "vfio-pci")
        .put("host", host.to_string())
        .put("id", spec.ids.device.as_str())
        .put_opt("bootindex", spec.bootindex)
        .put_opt("failover_pair_id", failover_pair);
    nic_address_props(spec, guest, &mut p)?;
    rom_props(spec, &mut p)?;
    Ok(p.into_value())
}

/// `bus`/`multifunction`/`addr`/`acpi-index` for a PCI address, `bus`/`port` for USB.
fn nic_address_props(spec: &NicSpec<'_>, guest: &GuestCtx, p: &mut Props) -> Result<(), QemuError> {
    let iface = spec.iface;
    address_props(guest, iface.address.as_ref(), p).map_err(|message| {
        QemuError::UnsupportedInterface {
            interface: spec.describe(),
            message,
        }
    })?;
    if matches!(iface.address, Some(DeviceAddress::Pci { .. })) {
        p.put_opt("acpi-index", iface.acpi_index.as_ref().map(|a| a.value));
    }
    Ok(())
}

/// `rombar`/`romfile` from `<rom>`.
fn rom_props(spec: &NicSpec<'_>, p: &mut Props) -> Result<(), QemuError> {
    let Some(rom) = &spec.iface.rom else {
        return Ok(());
    };
    if rom.enabled.is_none() && rom.bar.is_none() && rom.file.is_none() {
        return Ok(());
    }
    // Not a PCI device: refused by the argv guard (validate::Rule::RomNeedsPci); a PCI NIC
    // without an address was not completed (fill_defaults assigns one).
    if !matches!(spec.iface.address, Some(DeviceAddress::Pci { .. })) {
        return Err(QemuError::UnsupportedInterface {
            interface: spec.describe(),
            message: "<rom> on a NIC without a guest PCI address: complete the domain \
                      (fill_defaults) before building"
                .into(),
        });
    }
    if rom.enabled == Some(false) {
        p.put("romfile", "");
    } else {
        p.put_opt("rombar", rom.bar.map(u32::from))
            .put_opt("romfile", rom.file.as_ref().map(|f| f.value.as_str()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argv::caps::QemuCaps;
    use crate::argv::opts::json_arg;
    use virtnet_conf::domain::DomainType;
    use virtnet_conf::xml::{parse_document, Limits};
    use virtnet_conf::Interface;

    fn iface(xml: &str) -> Interface {
        let mut i =
            Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap();
        i.fill_defaults();
        i
    }

    fn device_in(xml: &str, t: DomainType, q35: bool) -> Result<String, QemuError> {
        let list = vec![iface(xml)];
        let spec = NicSpec::new(&list, 0).unwrap();
        nic_device_json(&spec, &GuestCtx::new(QemuCaps::latest(), t, q35)).map(|v| json_arg(&v))
    }

    fn device(xml: &str) -> String {
        device_in(xml, DomainType::Kvm, false).unwrap()
    }

    const ADDR3: &str = "<address type='pci' domain='0' bus='0' slot='3' function='0'/>";

    #[test]
    fn virtio_with_every_option_in_libvirt_order() {
        let xml = format!(
            "<interface type='ethernet'><mac address='52:54:00:e5:48:58'/><model type='virtio'/>\
             <driver txmode='iothread' ioeventfd='on' event_idx='off' queues='5' \
             rx_queue_size='512' tx_queue_size='1024' rss='on' rss_hash_report='on' iommu='on' \
             packed='on'><host csum='off' tso4='off'/><guest ufo='off'/></driver>\
             <mtu size='9000'/><boot order='2'/>{ADDR3}</interface>"
        );
        assert_eq!(
            device(&xml),
            r#"{"driver":"virtio-net-pci","iommu_platform":true,"packed":true,"tx":"bh","ioeventfd":true,"event_idx":false,"csum":false,"host_tso4":false,"guest_ufo":false,"mq":true,"vectors":12,"rx_queue_size":512,"tx_queue_size":1024,"rss":true,"hash":true,"host_mtu":9000,"netdev":"hostnet0","id":"net0","mac":"52:54:00:e5:48:58","bootindex":2,"bus":"pci.0","addr":"0x3"}"#
        );
    }

    #[test]
    fn other_models_usb_and_functions() {
        assert_eq!(
            device(
                "<interface type='user'><mac address='00:11:22:33:44:55'/><model type='e1000'/>\
                 <address type='pci' bus='2' slot='0' function='1' multifunction='on'/>\
                 <rom bar='off'/></interface>"
            ),
            r#"{"driver":"e1000","netdev":"hostnet0","id":"net0","mac":"00:11:22:33:44:55","bus":"pci.2","multifunction":true,"addr":"0x0.0x1","rombar":0}"#
        );
        assert_eq!(
            device(
                "<interface type='user'><mac address='00:11:22:33:44:55'/><model \
                 type='usb-net'/><address type='usb' bus='0' port='1'/></interface>"
            ),
            r#"{"driver":"usb-net","netdev":"hostnet0","id":"net0","mac":"00:11:22:33:44:55","bus":"usb.0","port":"1"}"#
        );
        let q35 = device_in(
            "<interface type='user'><mac address='00:11:22:33:44:55'/><model type='virtio'/>\
             <address type='pci' bus='0' slot='2'/><rom enabled='no'/></interface>",
            DomainType::Kvm,
            true,
        )
        .unwrap();
        assert!(
            q35.ends_with(r#""bus":"pcie.0","addr":"0x2","romfile":""}"#),
            "{q35}"
        );
    }

    #[test]
    fn vhost_user_gets_vectors_0_under_tcg_only() {
        let xml = format!(
            "<interface type='vhostuser'><mac address='52:54:00:ee:96:6e'/><source type='unix' \
             path='/tmp/vhost3.sock' mode='client'/><model type='virtio'/><driver queues='4'/>\
             {ADDR3}</interface>"
        );
        let tcg = device_in(&xml, DomainType::Qemu, false).unwrap();
        assert!(tcg.contains(r#""mq":true,"vectors":0,"netdev""#), "{tcg}");
        let kvm = device_in(&xml, DomainType::Kvm, false).unwrap();
        assert!(kvm.contains(r#""mq":true,"vectors":10,"netdev""#), "{kvm}");
        let single = device_in(
            "<interface type='vhostuser'><mac address='52:54:00:ee:96:6e'/><source type='unix' \
             path='/tmp/v.sock' mode='client'/></interface>",
            DomainType::Qemu,
            false,
        )
        .unwrap();
        assert_eq!(
            single,
            r#"{"driver":"virtio-net-pci","vectors":0,"netdev":"hostnet0","id":"net0","mac":"52:54:00:ee:96:6e"}"#
        );
        // A tap NIC under TCG keeps MSI-X.
        let tap = device_in(
            "<interface type='ethernet'><mac address='52:54:00:ee:96:6e'/><model \
             type='virtio'/></interface>",
            DomainType::Qemu,
            false,
        )
        .unwrap();
        assert!(!tap.contains("vectors"), "{tap}");
    }

    #[test]
    fn hostdev_is_vfio_pci_with_failover() {
        assert_eq!(
            device(
                "<interface type='hostdev' managed='yes'><mac address='00:11:22:33:44:55'/>\
                 <source><address type='pci' domain='0x2424' bus='0x21' slot='0x1c' \
                 function='0x6'/></source><teaming type='transient' persistent='ua-backup0'/>\
                 <boot order='1'/><address type='pci' bus='0' slot='2'/></interface>"
            ),
            r#"{"driver":"vfio-pci","host":"2424:21:1c.6","id":"hostdev0","bootindex":1,"failover_pair_id":"ua-backup0","bus":"pci.0","addr":"0x2"}"#
        );
        let e = device_in(
            "<interface type='hostdev'><driver name='kvm'/><source><address type='pci' \
             bus='3' slot='7'/></source></interface>",
            DomainType::Kvm,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("vfio"), "{e}");
    }

    #[test]
    fn teaming_persistent_is_failover() {
        let d = device(
            "<interface type='user'><mac address='00:11:22:33:44:55'/><model type='virtio'/>\
             <teaming type='persistent'/><alias name='ua-backup0'/></interface>",
        );
        assert_eq!(
            d,
            r#"{"driver":"virtio-net-pci","failover":true,"netdev":"hostua-backup0","id":"ua-backup0","mac":"00:11:22:33:44:55"}"#
        );
    }
}
