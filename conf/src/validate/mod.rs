//! Validation: configurations that parse but cannot work, or that QEMU would misread.
//!
//! [`validate()`] checks a whole domain; [`validate_interface`] one interface on its own;
//! [`validate_new_interface`] an interface about to be added (hot-plug). Every error carries
//! the position of the offending element or attribute.

mod conflicts;
mod interface;
pub mod names;

#[cfg(test)]
mod tests;

pub use conflicts::{check as check_conflicts, who, Context};
pub use interface::{validate_interface, MAX_QUEUES, QUEUE_SIZE_RANGE};

use crate::domain::Domain;
use crate::error::ConfError;
use crate::interface::Interface;

/// What the cross-device rules need, taken from a domain.
fn context(domain: &Domain) -> Context<'_> {
    Context {
        interfaces: &domain.devices.interfaces,
        shared_memory: domain.has_shared_memory(),
        ..Context::default()
    }
}

/// Every problem found in a domain (empty when valid): first each interface on its own, then
/// the rules across devices.
pub fn validate(domain: &Domain) -> Vec<ConfError> {
    let ctx = context(domain);
    let mut errs: Vec<ConfError> = ctx.interfaces.iter().flat_map(validate_interface).collect();
    errs.extend(check_conflicts(&ctx));
    errs
}

/// The problems `iface` would bring into `domain` if it were added (e.g. by hot-plug):
/// its own problems and its conflicts with the devices already there. Problems the domain
/// has already are not repeated.
pub fn validate_new_interface(domain: &Domain, iface: &Interface) -> Vec<ConfError> {
    let before = validate(domain);
    let mut with = domain.clone();
    with.devices.interfaces.push(iface.clone());
    validate(&with)
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect()
}
