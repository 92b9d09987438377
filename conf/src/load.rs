//! The one-call pipeline front ends use: parse, fill defaults, validate.

use crate::domain::Domain;
use crate::error::ConfError;
use crate::validate::validate;

/// Reads a domain definition as `virsh define` would: parse, fill libvirt's defaults and guest
/// addresses, then validate. Returns every problem found (parse errors stop at the first one).
pub fn load_domain(text: &str) -> Result<Domain, Vec<ConfError>> {
    let mut domain = Domain::parse(text).map_err(|e| vec![e])?;
    domain.fill_defaults().map_err(|e| vec![e])?;
    let problems = validate(&domain);
    if problems.is_empty() {
        Ok(domain)
    } else {
        Err(problems)
    }
}
