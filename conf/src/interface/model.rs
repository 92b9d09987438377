//! `<model type='...'/>`: the guest NIC device model.

use std::fmt;

/// The models libvirt knows by name, in their canonical spelling. A model written in any case
/// (`ViRtIo`) is normalised to this spelling; other names are kept as written and passed to
/// QEMU as a device name.
pub const KNOWN_MODELS: &[&str] = &[
    "netfront",
    "rtl8139",
    "virtio",
    "e1000",
    "e1000e",
    "igb",
    "virtio-transitional",
    "virtio-non-transitional",
    "usb-net",
    "spapr-vlan",
    "lan9118",
    "smc91c111",
    "vlance",
    "vmxnet",
    "vmxnet2",
    "vmxnet3",
    "Am79C970A",
    "Am79C973",
    "82540EM",
    "82545EM",
    "82543GC",
];

/// The characters a model name may contain (libvirt's `NET_MODEL_CHARS`): the name becomes a
/// QEMU device name, so anything else could inject options.
fn valid_model_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A NIC model name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NicModel(String);

impl NicModel {
    /// Reads a model name: known names case-insensitively (normalised), others as written.
    /// Returns `None` when the name is empty or has characters other than `[A-Za-z0-9_-]`.
    pub fn parse(s: &str) -> Option<NicModel> {
        if let Some(k) = KNOWN_MODELS.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            return Some(NicModel(k.to_string()));
        }
        if s.is_empty() || !s.chars().all(valid_model_char) {
            return None;
        }
        Some(NicModel(s.to_string()))
    }

    /// `virtio`.
    pub fn virtio() -> NicModel {
        NicModel("virtio".into())
    }

    /// `rtl8139`, libvirt's default on x86 machines.
    pub fn rtl8139() -> NicModel {
        NicModel("rtl8139".into())
    }

    /// The name, canonical for known models.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the virtio-net models (`virtio`, `virtio-transitional`,
    /// `virtio-non-transitional`): only those have `<driver>` virtio settings, and only those
    /// work with vhost-user and vDPA back ends.
    pub fn is_virtio(&self) -> bool {
        matches!(
            self.0.as_str(),
            "virtio" | "virtio-transitional" | "virtio-non-transitional"
        )
    }

    /// Whether libvirt knows this model by name.
    pub fn is_known(&self) -> bool {
        KNOWN_MODELS.contains(&self.0.as_str())
    }

    /// Whether the NIC is a USB device (no PCI address).
    pub fn is_usb(&self) -> bool {
        self.0 == "usb-net"
    }
}

impl fmt::Display for NicModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_models_are_normalised_unknown_kept() {
        assert_eq!(NicModel::parse("ViRtIo").unwrap().as_str(), "virtio");
        assert_eq!(NicModel::parse("am79c970a").unwrap().as_str(), "Am79C970A");
        let m = NicModel::parse("ne2k_pci").unwrap();
        assert_eq!(m.as_str(), "ne2k_pci");
        assert!(!m.is_known());
        assert!(NicModel::parse("virtio-non-transitional")
            .unwrap()
            .is_virtio());
        assert!(!NicModel::parse("e1000").unwrap().is_virtio());
        for bad in ["", "e1000,romfile=/x", "a b", "virtio\n", "x=y"] {
            assert!(NicModel::parse(bad).is_none(), "{bad:?}");
        }
    }
}
