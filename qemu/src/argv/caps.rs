//! What the builder knows about the QEMU binary and the host: given by the caller, never probed.

use virtnet_conf::domain::DomainType;

use crate::version::QemuVersion;

/// Facts about the QEMU binary and the host that change the command line. The caller probes
/// them (`qemu -version`, opening `/dev/vhost-net`); the builder reads nothing itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuCaps {
    /// The QEMU version (gates options such as `reconnect` vs `reconnect-ms`).
    pub version: QemuVersion,
    /// Whether `/dev/vhost-net` can be opened: tap NICs then get vhost-net fds.
    pub vhost_net: bool,
}

impl QemuCaps {
    /// QEMU 10.0 with vhost-net: the "latest" capabilities libvirt's expected command lines in
    /// the conformance data were generated with.
    pub const fn latest() -> Self {
        QemuCaps {
            version: QemuVersion::new(10, 0, 0),
            vhost_net: true,
        }
    }

    /// Whether this QEMU takes `reconnect-ms` (9.2 and later) rather than `reconnect` (seconds)
    /// on socket chardevs.
    pub fn has_reconnect_ms(&self) -> bool {
        self.version >= QemuVersion::new(9, 2, 0)
    }
}

/// The accelerator, decided by `<domain type>`: `kvm` → KVM, `qemu` → TCG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualization (`-accel kvm`).
    Kvm,
    /// Emulation (`-accel tcg`).
    Tcg,
}

impl Accel {
    /// The accelerator for a domain type.
    pub fn for_type(t: DomainType) -> Accel {
        match t {
            DomainType::Kvm => Accel::Kvm,
            DomainType::Qemu => Accel::Tcg,
        }
    }

    /// QEMU's name (`kvm`, `tcg`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What the device builders need to know about the guest besides the device itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestCtx {
    /// The QEMU capabilities.
    pub caps: QemuCaps,
    /// The accelerator.
    pub accel: Accel,
    /// Whether PCI bus 0 is a PCI Express root complex (`pcie.0`, q35) rather than `pci.0`.
    pub pcie_root: bool,
}

impl GuestCtx {
    /// The context of a guest of the given type and machine family.
    pub fn new(caps: QemuCaps, domain_type: DomainType, q35: bool) -> Self {
        GuestCtx {
            caps,
            accel: Accel::for_type(domain_type),
            pcie_root: q35,
        }
    }

    /// QEMU's id of guest PCI bus `bus`: the root bus is `pci.0` (`pcie.0` on q35), every
    /// other bus is the controller with that index, `pci.N`.
    pub fn pci_bus_name(&self, bus: u8) -> String {
        match (bus, self.pcie_root) {
            (0, true) => "pcie.0".to_string(),
            (n, _) => format!("pci.{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_ms_from_9_2() {
        let mut caps = QemuCaps::latest();
        assert!(caps.has_reconnect_ms());
        caps.version = QemuVersion::new(9, 1, 3);
        assert!(!caps.has_reconnect_ms());
        caps.version = QemuVersion::new(9, 2, 0);
        assert!(caps.has_reconnect_ms());
    }

    #[test]
    fn bus_names() {
        let pc = GuestCtx::new(QemuCaps::latest(), DomainType::Qemu, false);
        assert_eq!(pc.accel, Accel::Tcg);
        assert_eq!(pc.pci_bus_name(0), "pci.0");
        assert_eq!(pc.pci_bus_name(2), "pci.2");
        let q35 = GuestCtx::new(QemuCaps::latest(), DomainType::Kvm, true);
        assert_eq!(q35.accel, Accel::Kvm);
        assert_eq!(q35.pci_bus_name(0), "pcie.0");
        assert_eq!(q35.pci_bus_name(1), "pci.1");
    }
}
