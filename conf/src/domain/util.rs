//! Small reading and writing helpers shared by the domain and device models.

use crate::error::ConfError;
use crate::xml::{Element, Pos};

/// "one of 'a', 'b' or 'c'", for error messages.
pub(crate) fn one_of(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("one of {} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// Removes an attribute whose value must be one of `choices` (compared exactly).
pub(crate) fn take_choice(
    el: &mut Element,
    name: &str,
    choices: &[&str],
) -> Result<Option<String>, ConfError> {
    let expected = one_of(choices);
    el.take_attr_with(name, &expected, |v| {
        choices.contains(&v).then(|| v.to_string())
    })
}

/// Removes an `on|off` attribute (libvirt's tristate switch).
pub(crate) fn take_on_off(el: &mut Element, name: &str) -> Result<Option<String>, ConfError> {
    take_choice(el, name, &["on", "off"])
}

/// Removes a `yes|no` attribute (libvirt's tristate bool).
pub(crate) fn take_yes_no(el: &mut Element, name: &str) -> Result<Option<String>, ConfError> {
    take_choice(el, name, &["yes", "no"])
}

/// Removes an unsigned attribute, decimal or `0x` hexadecimal.
pub(crate) fn take_uint(el: &mut Element, name: &str) -> Result<Option<u64>, ConfError> {
    el.take_attr_with(name, "a non-negative integer (0x.. for hex)", parse_uint)
}

/// Removes an unsigned 32-bit attribute, decimal or `0x` hexadecimal.
pub(crate) fn take_u32(el: &mut Element, name: &str) -> Result<Option<u32>, ConfError> {
    el.take_attr_with(name, "a non-negative integer below 2^32", |v| {
        parse_uint(v).and_then(|n| u32::try_from(n).ok())
    })
}

/// Parses `123` or `0x7b`.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// The rank of `name` in a canonical order; unknown names sort after all known ones.
pub(crate) fn rank(order: &[&str], name: &str) -> usize {
    order.iter().position(|n| *n == name).unwrap_or(order.len())
}

/// Sorts the children of `el` into the canonical order given by `order` (stable: children of
/// the same name, and unknown children, keep their relative order; unknown ones go last).
pub(crate) fn sort_children(el: &mut Element, order: &[&str]) {
    el.children.sort_by_key(|c| rank(order, &c.name));
}

/// A copy of `el` with every position cleared (for elements kept as written).
pub(crate) fn unpositioned(el: &Element) -> Element {
    let mut el = el.clone();
    clear_positions(&mut el);
    el
}

fn clear_positions(el: &mut Element) {
    el.pos = Pos::UNKNOWN;
    for a in &mut el.attrs {
        a.pos = Pos::UNKNOWN;
    }
    for c in &mut el.children {
        clear_positions(c);
    }
}

/// The largest id an [`IdSet`] holds.
const IDSET_MAX: u32 = 65535;

/// A set of small non-negative integers written as libvirt writes CPU and node sets
/// (`0-3,6,8-9`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdSet(pub Vec<u32>);

impl IdSet {
    /// Parses `0-3,^2,6` (ranges, single ids and `^` exclusions).
    pub fn parse(s: &str) -> Option<IdSet> {
        // One bit per possible id: linear in the input however many ranges overlap.
        const WORDS: usize = (IDSET_MAX as usize + 1) / 64;
        let mut ids = vec![0u64; WORDS];
        let mut excluded = vec![0u64; WORDS];
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return None;
            }
            let (neg, part) = match part.strip_prefix('^') {
                Some(p) => (true, p),
                None => (false, part),
            };
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) if !neg => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                Some(_) => return None,
                None => {
                    let n: u32 = part.parse().ok()?;
                    (n, n)
                }
            };
            if lo > hi || hi > IDSET_MAX {
                return None;
            }
            if neg {
                excluded[lo as usize / 64] |= 1 << (lo % 64);
            } else {
                for w in lo / 64..=hi / 64 {
                    let from = if w == lo / 64 { lo % 64 } else { 0 };
                    let to = if w == hi / 64 { hi % 64 } else { 63 };
                    ids[w as usize] |= (u64::MAX >> (63 - to)) & (u64::MAX << from);
                }
            }
        }
        let mut out = Vec::new();
        for (w, (bits, ex)) in ids.iter().zip(&excluded).enumerate() {
            let mut bits = bits & !ex;
            while bits != 0 {
                out.push(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        let ids = out;
        if ids.is_empty() {
            return None;
        }
        Some(IdSet(ids))
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.0.binary_search(&id).is_ok()
    }
}

impl std::fmt::Display for IdSet {
    /// Canonical form: ascending ranges joined by commas.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

/// Removes an attribute holding an id set (`cpuset`, `nodeset`, `cpus`).
pub(crate) fn take_idset(el: &mut Element, name: &str) -> Result<Option<IdSet>, ConfError> {
    el.take_attr_with(
        name,
        "a list of ids and ranges such as '0-3,6' (with '^N' to exclude)",
        IdSet::parse,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idset_round_trip() {
        let s = IdSet::parse("0,1,2,5-6,^6,9").unwrap();
        assert_eq!(s.to_string(), "0-2,5,9");
        assert!(IdSet::parse("3-1").is_none());
        assert!(IdSet::parse("a").is_none());
        assert!(IdSet::parse("").is_none());
        assert!(s.contains(5) && !s.contains(6));
    }

    #[test]
    fn uint_forms() {
        assert_eq!(parse_uint("0x10"), Some(16));
        assert_eq!(parse_uint("16"), Some(16));
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("1e3"), None);
    }

    #[test]
    fn choices_are_listed() {
        assert_eq!(one_of(&["a", "b", "c"]), "one of 'a', 'b' or 'c'");
        let mut el = Element::new("x").attr("mode", "bogus");
        let e = take_choice(&mut el, "mode", &["on", "off"]).unwrap_err();
        assert!(e.to_string().contains("'bogus'"), "{e}");
    }

    #[test]
    fn sorting_is_stable_and_unknown_last() {
        let mut el = Element::new("p")
            .child(Element::new("z"))
            .child(Element::new("b").attr("n", 1))
            .child(Element::new("a"))
            .child(Element::new("b").attr("n", 2));
        sort_children(&mut el, &["a", "b"]);
        let names: Vec<_> = el.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "b", "z"]);
        assert_eq!(el.children[1].get_attr("n"), Some("1"));
    }

    /// Overlapping ranges cost no more than one (the ids used to be listed once per range),
    /// and range edges inside and across 64-id words are exact.
    #[test]
    fn idset_ranges_are_exact_and_cheap() {
        let many = vec!["0-65535"; 4000].join(",");
        assert_eq!(IdSet::parse(&many).unwrap().0.len(), 65536);
        for (s, want) in [
            ("63-64", "63-64"),
            ("0-63,^0,^63", "1-62"),
            ("60-130,^64", "60-63,65-130"),
            ("65535", "65535"),
            ("7,3,5-6", "3,5-7"),
        ] {
            assert_eq!(IdSet::parse(s).unwrap().to_string(), want, "{s}");
        }
        assert!(IdSet::parse("65536").is_none());
        assert!(IdSet::parse("^3").is_none());
    }
}
