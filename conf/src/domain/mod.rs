//! `<domain>`: the whole guest definition. PLACEHOLDER (being written).

use crate::devices::Devices;
use crate::error::ConfError;

/// A guest definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The devices.
    pub devices: Devices,
}

impl Domain {
    /// Parses domain XML (no defaults filled; see [`Domain::fill_defaults`]).
    pub fn parse(_text: &str) -> Result<Domain, ConfError> {
        todo!("being written")
    }

    /// libvirt's post-parse step: fills defaults and assigns guest addresses.
    pub fn fill_defaults(&mut self) -> Result<(), ConfError> {
        todo!("being written")
    }

    /// Formats canonical XML as `virsh dumpxml` does.
    pub fn to_xml(&self) -> String {
        todo!("being written")
    }

    /// Whether guest RAM is shared (needed by vhost-user).
    pub fn has_shared_memory(&self) -> bool {
        todo!("being written")
    }
}
