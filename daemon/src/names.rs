//! VM names: they become file names in the store, so some characters are refused.

/// The longest VM name accepted (bytes); leaves room for the store's suffixes in NAME_MAX.
pub const MAX_VM_NAME: usize = 200;

/// What is wrong with `name` as a VM name, if anything. Names become `NAME.xml` and
/// `NAME.json`, so '/', a leading '.', control characters and empty names are refused.
pub fn check_vm_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_VM_NAME {
        "it is longer than 200 bytes"
    } else if name.starts_with('.') {
        "it starts with '.'"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(format!(
        "invalid VM name '{}': {problem}",
        name.escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use super::check_vm_name;

    #[test]
    fn names() {
        for ok in ["vm1", "web-01.example", "a b", "ü"] {
            assert!(check_vm_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "a/b", "a\nb", &"x".repeat(201)] {
            assert!(check_vm_name(bad).is_err(), "{bad}");
        }
    }
}
