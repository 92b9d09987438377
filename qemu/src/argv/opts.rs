//! Small helpers for writing QEMU options: ordered JSON objects and `key=value,...` strings.

use serde_json::{Map, Value};

/// A JSON object whose keys keep the order they were put in (serde_json's `preserve_order`),
/// so `-netdev`/`-device` arguments come out in libvirt's key order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Props(Map<String, Value>);

impl Props {
    /// An empty object.
    pub fn new() -> Self {
        Props(Map::new())
    }

    /// Adds (or replaces, keeping its place) a key.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// Adds a key when the value is present.
    pub fn put_opt<V: Into<Value>>(&mut self, key: &str, value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.put(key, v);
        }
        self
    }

    /// The finished object.
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// QEMU's escaping of a value inside a `key=value,...` option: a ',' is written twice.
pub(crate) fn escape_comma(s: &str) -> String {
    s.replace(',', ",,")
}

/// A path inside a `key=value,...` option, with ',' doubled.
pub(crate) fn opt_path(p: &std::path::Path) -> String {
    escape_comma(&p.to_string_lossy())
}

/// A JSON option value as QEMU and libvirt write it: compact, one line.
pub(crate) fn json_arg(v: &Value) -> String {
    v.to_string()
}

/// Whether `id` can be used as a QEMU id inside a `key=value,...` option and as a QOM name:
/// not empty, no ',', '=' or whitespace, no control characters. Aliases and generated ids pass;
/// conf validation refuses the rest, this is the defensive check.
pub(crate) fn id_is_safe(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != ',' && c != '=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_insertion_order() {
        let mut p = Props::new();
        p.put("type", "tap").put("fd", "3").put("vhost", true);
        p.put_opt::<&str>("vhostfd", None).put("id", "hostnet0");
        p.put("fd", "4");
        assert_eq!(
            json_arg(&p.into_value()),
            r#"{"type":"tap","fd":"4","vhost":true,"id":"hostnet0"}"#
        );
    }

    #[test]
    fn commas_are_doubled() {
        assert_eq!(escape_comma("/a,b,,c"), "/a,,b,,,,c");
        assert_eq!(escape_comma("/plain"), "/plain");
    }

    #[test]
    fn ids() {
        assert!(id_is_safe("net0"));
        assert!(id_is_safe("ua-backup0"));
        for bad in ["", "a,b", "a=b", "a b", "a\nb"] {
            assert!(!id_is_safe(bad), "{bad:?}");
        }
    }
}
