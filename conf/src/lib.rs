//! virtnet's domain model: libvirt-compatible domain XML, parsed, validated and formatted.
//!
//! This crate does no I/O: it turns text into a [`Domain`] and back, and checks that a
//! definition can work before anything is started.
//!
//! The usual pipeline, as `virsh define` + `virsh dumpxml` do it:
//! [`Domain::parse`] → [`Domain::fill_defaults_with`] (MACs, UUID, defaults, guest PCI
//! addresses) → [`validate()`] → [`Domain::to_xml`]; [`load_domain`] runs it all.

pub mod address;
pub mod devices;
pub mod domain;
pub mod error;
pub mod interface;
mod load;
pub mod network;
mod pci;
pub mod validate;
pub mod xml;

#[cfg(test)]
mod test_util;

pub use domain::Domain;
pub use error::ConfError;
pub use interface::Interface;
pub use load::{load_domain, load_domain_with};
pub use validate::validate;
