//! Memory sizes (`<memory>`, `<currentMemory>`, `<maxMemory>`) and `<memoryBacking>`.

use super::util::{sort_children, take_choice, take_uint, unpositioned};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// Multiplier (in bytes) for a libvirt unit suffix; `None` for an unknown unit.
/// Accepts b/byte/bytes, k/KiB (1024), KB (1000), and the same for M, G, T, P, E.
pub fn unit_scale(unit: &str) -> Option<u64> {
    let u = unit.trim();
    if u.is_empty() {
        return Some(1024);
    }
    let lower = u.to_ascii_lowercase();
    if matches!(lower.as_str(), "b" | "byte" | "bytes") {
        return Some(1);
    }
    let mut chars = lower.chars();
    let first = chars.next()?;
    let rest: String = chars.collect();
    let base: u64 = match rest.as_str() {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    let power = match first {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    base.checked_pow(power)
}

const UNITS: &str = "a unit such as 'KiB' (default), 'b', 'k', 'KB', 'M', 'MiB', 'MB', 'G', 'GiB', 'GB', 'T', 'TiB' or 'TB'";

/// Reads a scaled size: `value` (text or attribute) in `unit` (default KiB), returned in KiB
/// (rounded up, as libvirt does).
pub(crate) fn scaled_kib(
    el: &Element,
    value: &str,
    unit: Option<&crate::xml::Attr>,
    value_is_attr: Option<&crate::xml::Attr>,
) -> Result<u64, ConfError> {
    let scale = match unit {
        None => 1024,
        Some(a) => unit_scale(&a.value).ok_or_else(|| el.invalid_attr(a, UNITS))?,
    };
    let bad_value = || match value_is_attr {
        Some(a) => el.invalid_attr(a, "a non-negative integer"),
        None => ConfError::InvalidText {
            pos: el.pos,
            element: el.name.clone(),
            value: value.to_string(),
            expected: "a non-negative integer".into(),
        },
    };
    let n: u64 = value.trim().parse().map_err(|_| bad_value())?;
    let bytes = n.checked_mul(scale).ok_or_else(|| ConfError::InvalidText {
        pos: el.pos,
        element: el.name.clone(),
        value: value.to_string(),
        expected: "a size that fits in 64 bits of bytes".into(),
    })?;
    Ok(bytes.div_ceil(1024))
}

/// Reads an element holding a size as text with a `unit` attribute (`<memory unit='MiB'>512</memory>`).
/// Returns the size in KiB and whatever else the element holds.
pub(crate) fn read_size_element(mut el: Element) -> Result<(u64, Element), ConfError> {
    let unit = el.take_attr("unit");
    let text = el.take_text().unwrap_or_default();
    let kib = scaled_kib(&el, &text, unit.as_ref(), None)?;
    Ok((kib, el))
}

/// The guest memory sizes, all in KiB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memory {
    /// `<maxMemory slots>`: the memory hot-plug limit, if any.
    pub max_kib: Option<u64>,
    /// `<maxMemory slots='N'>`.
    pub max_slots: Option<u32>,
    /// `<memory>`: total memory (0 when not given; then the NUMA cells define it).
    pub total_kib: u64,
    /// `<memory dumpCore='on|off'>`.
    pub dump_core: Option<String>,
    /// `<currentMemory>`: the balloon target (filled from `total_kib` by the defaults).
    pub current_kib: Option<u64>,
    /// Where `<memory>` was, for error messages.
    pub pos: Pos,
    /// Where `<maxMemory>` was, for error messages.
    pub max_pos: Pos,
}

/// `<memoryBacking><source type=...>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// `file`: RAM backed by a file (memory-backend-file).
    File,
    /// `anonymous`: plain anonymous memory.
    Anonymous,
    /// `memfd`: memfd-backed RAM (memory-backend-memfd), shareable with vhost-user processes.
    Memfd,
}

impl MemorySource {
    /// The XML name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemorySource::File => "file",
            MemorySource::Anonymous => "anonymous",
            MemorySource::Memfd => "memfd",
        }
    }
}

/// `<memoryBacking><access mode=...>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryAccess {
    /// `shared`: mapped MAP_SHARED, visible to other processes (vhost-user).
    Shared,
    /// `private`.
    Private,
}

impl MemoryAccess {
    /// The XML name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemoryAccess::Shared => "shared",
            MemoryAccess::Private => "private",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<MemoryAccess> {
        match s {
            "shared" => Some(MemoryAccess::Shared),
            "private" => Some(MemoryAccess::Private),
            _ => None,
        }
    }
}

/// `<memoryBacking>`: how guest RAM is allocated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryBacking {
    /// Where the element starts.
    pub pos: Pos,
    /// `<hugepages>` (with its `<page>` children, kept as written).
    pub hugepages: Option<Element>,
    /// `<nosharepages/>`.
    pub nosharepages: bool,
    /// `<locked/>`.
    pub locked: bool,
    /// `<source type>`.
    pub source: Option<MemorySource>,
    /// Unknown content of `<source>`, written back into it.
    pub source_extra: Extra,
    /// `<access mode>`.
    pub access: Option<MemoryAccess>,
    /// `<allocation>` kept as written.
    pub allocation: Option<Element>,
    /// `<discard/>`.
    pub discard: bool,
    /// Unknown content.
    pub extra: Extra,
}

const BACKING_ORDER: &[&str] = &[
    "hugepages",
    "nosharepages",
    "locked",
    "source",
    "access",
    "allocation",
    "discard",
];

impl MemoryBacking {
    /// Reads `<memoryBacking>`.
    pub fn from_element(mut el: Element) -> Result<MemoryBacking, ConfError> {
        let pos = el.pos;
        let hugepages = el.take_one("hugepages")?.map(|e| unpositioned(&e));
        let nosharepages = el.take_one("nosharepages")?.is_some();
        let locked = el.take_one("locked")?.is_some();
        let mut source_extra = Extra::default();
        let source = match el.take_one("source")? {
            None => None,
            Some(mut s) => {
                let t = take_choice(&mut s, "type", &["file", "anonymous", "memfd"])?;
                source_extra = s.into_extra();
                match t.as_deref() {
                    Some("file") => Some(MemorySource::File),
                    Some("anonymous") => Some(MemorySource::Anonymous),
                    Some("memfd") => Some(MemorySource::Memfd),
                    _ => None,
                }
            }
        };
        let access = match el.take_one("access")? {
            None => None,
            Some(mut a) => {
                let m = take_choice(&mut a, "mode", &["shared", "private"])?;
                m.as_deref().and_then(MemoryAccess::parse)
            }
        };
        let allocation = el.take_one("allocation")?.map(|e| unpositioned(&e));
        let discard = el.take_one("discard")?.is_some();
        Ok(MemoryBacking {
            pos,
            hugepages,
            nosharepages,
            locked,
            source,
            source_extra,
            access,
            allocation,
            discard,
            extra: el.into_extra(),
        })
    }

    /// Writes `<memoryBacking>` (libvirt's child order).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("memoryBacking")
            .child_opt(self.hugepages.clone())
            .child_opt(self.nosharepages.then(|| Element::new("nosharepages")))
            .child_opt(self.locked.then(|| Element::new("locked")))
            .child_opt(
                (self.source.is_some() || !self.source_extra.is_empty()).then(|| {
                    Element::new("source")
                        .attr_opt("type", self.source.map(|s| s.as_str()))
                        .with_extra(&self.source_extra)
                }),
            )
            .child_opt(
                self.access
                    .map(|a| Element::new("access").attr("mode", a.as_str())),
            )
            .child_opt(self.allocation.clone())
            .child_opt(self.discard.then(|| Element::new("discard")))
            .with_extra(&self.extra);
        sort_children(&mut el, BACKING_ORDER);
        el
    }
}

/// Reads `<maxMemory slots='N' unit='KiB'>size</maxMemory>`.
pub(crate) fn read_max_memory(mut el: Element) -> Result<(u64, Option<u32>), ConfError> {
    let slots = take_uint(&mut el, "slots")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let (kib, _rest) = read_size_element(el)?;
    Ok((kib, slots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn el(s: &str) -> Element {
        parse_document(s, Limits::default()).unwrap()
    }

    #[test]
    fn units() {
        for (u, scale) in [
            ("", 1024),
            ("b", 1),
            ("bytes", 1),
            ("k", 1024),
            ("KiB", 1024),
            ("KB", 1000),
            ("M", 1 << 20),
            ("MiB", 1 << 20),
            ("MB", 1_000_000),
            ("G", 1 << 30),
            ("GiB", 1 << 30),
            ("GB", 1_000_000_000),
            ("T", 1 << 40),
        ] {
            assert_eq!(unit_scale(u), Some(scale), "{u}");
        }
        assert_eq!(unit_scale("X"), None);
        assert_eq!(unit_scale("KiBB"), None);
    }

    #[test]
    fn sizes_in_kib_round_up() {
        let (k, _) = read_size_element(el("<memory unit='MiB'>512</memory>")).unwrap();
        assert_eq!(k, 524288);
        let (k, _) = read_size_element(el("<memory>219136</memory>")).unwrap();
        assert_eq!(k, 219136);
        let (k, _) = read_size_element(el("<memory unit='b'>1025</memory>")).unwrap();
        assert_eq!(k, 2);
        let (k, _) = read_size_element(el("<memory unit='GB'>1</memory>")).unwrap();
        assert_eq!(k, 976563);
    }

    #[test]
    fn bad_sizes_name_element_value_and_position() {
        let e = read_size_element(el("<memory unit='MiB'>lots</memory>")).unwrap_err();
        assert!(
            e.to_string().contains("'memory'") && e.to_string().contains("'lots'"),
            "{e}"
        );
        let e = read_size_element(el("<memory unit='parsec'>1</memory>")).unwrap_err();
        assert!(
            e.to_string().contains("'unit'") && e.to_string().contains("'parsec'"),
            "{e}"
        );
        assert_eq!(e.pos().col, 9);
        let e = read_size_element(el("<memory unit='EiB'>100</memory>")).unwrap_err();
        assert!(e.to_string().contains("64 bits"), "{e}");
    }

    #[test]
    fn backing_round_trip() {
        let b = MemoryBacking::from_element(el(
            "<memoryBacking><access mode='shared'/><source type='memfd'/><hugepages/><zzz/></memoryBacking>",
        ))
        .unwrap();
        assert_eq!(b.source, Some(MemorySource::Memfd));
        assert_eq!(b.access, Some(MemoryAccess::Shared));
        assert_eq!(
            write_document(&b.to_element()),
            "<memoryBacking>\n  <hugepages/>\n  <source type='memfd'/>\n  <access mode='shared'/>\n  <zzz/>\n</memoryBacking>\n"
        );
        let e =
            MemoryBacking::from_element(el("<memoryBacking><access mode='open'/></memoryBacking>"))
                .unwrap_err();
        assert!(e.to_string().contains("'open'"), "{e}");
    }

    /// Unknown content of `<memoryBacking><source>` stays inside it (it used to come back as
    /// a second `<source>`, which a re-read refuses).
    #[test]
    fn backing_source_keeps_unknown_content_inside() {
        for (input, want) in [
            (
                "<memoryBacking><source type='memfd' x='1'/></memoryBacking>",
                "<source type='memfd' x='1'/>",
            ),
            (
                "<memoryBacking><source x='1'/></memoryBacking>",
                "<source x='1'/>",
            ),
        ] {
            let b = MemoryBacking::from_element(el(input)).unwrap();
            let out = write_document(&b.to_element());
            assert!(out.contains(want), "{out}");
            assert_eq!(out.matches("<source").count(), 1, "{out}");
            let again = MemoryBacking::from_element(el(&out)).unwrap();
            assert_eq!(write_document(&again.to_element()), out);
        }
    }
}
