//! Interface names: validation and predictable allocation (`vnet0`, `vnet1`, ...).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{HostError, Result};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// Checks a caller-supplied interface name before it reaches the kernel.
///
/// Rejects what the kernel rejects (empty, more than 15 bytes, '/', ':', whitespace, '.', '..')
/// plus '%', which the kernel would treat as a template and replace by a number.
pub fn validate_ifname(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains(':') {
        Some("it contains ':'")
    } else if name.contains('%') {
        Some("it contains '%'")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(HostError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Hands out `prefixN` names with a counter that only grows (like libvirt since 6.x), so a
/// name freed by one VM is not immediately reused by the next one; names that turn out to
/// exist are skipped by the caller, who asks for the next one.
#[derive(Debug)]
pub struct NameCounter {
    prefix: &'static str,
    next: AtomicU32,
}

impl NameCounter {
    /// A counter producing `prefix0`, `prefix1`, ...
    pub const fn new(prefix: &'static str) -> Self {
        NameCounter {
            prefix,
            next: AtomicU32::new(0),
        }
    }

    /// The prefix (e.g. `vnet`).
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The next candidate name.
    pub fn next_name(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{}", self.prefix, n)
    }
}

/// How many candidate names are tried before giving up.
pub(crate) const NAME_TRIES: u32 = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_names() {
        for ok in ["vnet0", "a", "tap-vm1_eth0", "123456789012345"] {
            validate_ifname(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a\tb",
            "eth0:1",
            "vnet%d",
            "1234567890123456",
        ] {
            let e = validate_ifname(bad).unwrap_err();
            assert!(matches!(e, HostError::InvalidName { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("<target dev="), "{e}");
        }
    }

    #[test]
    fn counter_is_monotonic() {
        let c = NameCounter::new("vnet");
        assert_eq!(c.next_name(), "vnet0");
        assert_eq!(c.next_name(), "vnet1");
        assert_eq!(c.prefix(), "vnet");
    }
}
