//! Validation: configurations that parse but cannot work. PLACEHOLDER (being written).

use crate::domain::Domain;
use crate::error::ConfError;

/// Every problem found in a domain (empty when valid), in input order.
pub fn validate(_domain: &Domain) -> Vec<ConfError> {
    Vec::new()
}
