//! Checks of names and paths that end up in the host's interface namespace or in QEMU
//! arguments, where some characters would be misread.

use crate::error::ConfError;
use crate::xml::Pos;

/// Linux's IFNAMSIZ - 1.
pub const MAX_IFNAME: usize = 15;
/// `sizeof(sockaddr_un.sun_path) - 1` on Linux.
pub const MAX_SOCKET_PATH: usize = 107;

/// What is wrong with `name` as a Linux network interface name that QEMU or virtnet will use,
/// if anything. Linux refuses empty names, names of 16 bytes or more, `.`, `..`, and names
/// with '/', ':' or white space; ',' and '=' would split a QEMU `-netdev` option.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_IFNAME {
        return Some("it is longer than 15 bytes (Linux IFNAMSIZ)");
    }
    if name == "." || name == ".." {
        return Some("'.' and '..' are not valid interface names");
    }
    if name.contains('/') {
        return Some("it contains '/'");
    }
    if name.contains(':') {
        return Some("it contains ':' (Linux refuses it: alias syntax)");
    }
    if name.chars().any(char::is_whitespace) {
        return Some("it contains white space");
    }
    if name.chars().any(char::is_control) {
        return Some("it contains control characters");
    }
    if name.contains(',') || name.contains('=') {
        return Some("it contains ',' or '=', which would inject options into QEMU's arguments");
    }
    None
}

/// An error for a bad interface name in `element`/`attr`.
pub fn bad_ifname(pos: Pos, element: &str, attr: &str, value: &str, why: &str) -> ConfError {
    ConfError::InvalidAttr {
        pos,
        element: element.into(),
        attr: attr.into(),
        value: value.into(),
        expected: format!(
            "a Linux interface name ({why}): 1 to {MAX_IFNAME} bytes without '/', ':', ',', \
             '=', white space or control characters, e.g. 'vnet7' or 'br0'"
        ),
    }
}

/// What is wrong with a unix socket path QEMU will open, if anything.
pub fn socket_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(
            "it is not absolute: QEMU resolves it against its own working directory".into(),
        );
    }
    if path.len() > MAX_SOCKET_PATH {
        return Some(format!(
            "it is {} bytes long; a unix socket path has at most {MAX_SOCKET_PATH} bytes",
            path.len()
        ));
    }
    if path.contains(',') {
        return Some("it contains ',', which would split QEMU's -chardev option".into());
    }
    if path.chars().any(char::is_control) {
        return Some("it contains control characters".into());
    }
    None
}

/// What is wrong with an alias (it becomes a QEMU device id), if anything.
pub fn alias_problem(alias: &str) -> Option<&'static str> {
    if alias.is_empty() {
        return Some("it is empty");
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Some(
            "only letters, digits, '_', '-' and '.' are allowed: it becomes a QEMU device id",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        for ok in ["vnet0", "br-lan", "a", "123456789012345", "tap_x.1"] {
            assert_eq!(ifname_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "tap,vhost=on",
            "a=b",
        ] {
            assert!(ifname_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn socket_paths() {
        assert_eq!(socket_path_problem("/run/vhost.sock"), None);
        assert!(socket_path_problem("vhost.sock").is_some());
        assert!(socket_path_problem("/a,server=on").is_some());
        assert!(socket_path_problem(&format!("/{}", "x".repeat(107))).is_some());
        assert_eq!(socket_path_problem(&format!("/{}", "x".repeat(106))), None);
    }

    #[test]
    fn aliases() {
        assert_eq!(alias_problem("ua-backup0"), None);
        assert_eq!(alias_problem("net0"), None);
        assert!(alias_problem("ua-x,addr=3").is_some());
        assert!(alias_problem("").is_some());
    }
}
