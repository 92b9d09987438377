//! `<memtune>` and `<cputune>`: the resource limits of a domain, typed.
//!
//! What virtnet enforces (through the VM's cgroup) is typed here; what it does not (pinning,
//! per-thread bandwidth, schedulers, cache tuning) is kept, with its position, in
//! [`Cputune::unenforced`] so that the validation layer refuses it at define with its
//! line:col. Nothing is kept to be ignored.

use super::memory::read_size_element;
use crate::error::ConfError;
use crate::xml::{Element, Pos};

/// A value with where it was written (for refusals and range errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Where its element starts.
    pub pos: Pos,
}

/// `<memtune>`: memory limits, all in KiB (libvirt's unit; written back with `unit='KiB'`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memtune {
    /// Where `<memtune>` starts.
    pub pos: Pos,
    /// `<hard_limit>`: the most memory QEMU (guest RAM and its own) may use.
    pub hard_limit_kib: Option<At<u64>>,
    /// `<soft_limit>`: the memory QEMU is pushed back to under host memory pressure.
    pub soft_limit_kib: Option<At<u64>>,
    /// `<swap_hard_limit>`: memory plus swap.
    pub swap_hard_limit_kib: Option<At<u64>>,
    /// `<min_guarantee>` (libvirt supports it on ESX only; refused for QEMU).
    pub min_guarantee_kib: Option<At<u64>>,
    /// Unknown children (refused by validation).
    pub unknown: Vec<Element>,
}

/// libvirt's order of `<memtune>` children.
const MEMTUNE_ORDER: &[&str] = &[
    "hard_limit",
    "soft_limit",
    "min_guarantee",
    "swap_hard_limit",
];

impl Memtune {
    /// Reads `<memtune>`.
    pub fn from_element(mut el: Element) -> Result<Memtune, ConfError> {
        refuse_attrs_and_text(&el)?;
        let mut size = |name: &str| -> Result<Option<At<u64>>, ConfError> {
            match el.take_one(name)? {
                None => Ok(None),
                Some(c) => {
                    let pos = c.pos;
                    let (kib, rest) = read_size_element(c)?;
                    if let Some(a) = rest.attrs.first() {
                        return Err(rest.invalid_attr(a, "only 'unit'"));
                    }
                    Ok(Some(At { value: kib, pos }))
                }
            }
        };
        let hard = size("hard_limit")?;
        let soft = size("soft_limit")?;
        let swap = size("swap_hard_limit")?;
        let min = size("min_guarantee")?;
        Ok(Memtune {
            pos: el.pos,
            hard_limit_kib: hard,
            soft_limit_kib: soft,
            swap_hard_limit_kib: swap,
            min_guarantee_kib: min,
            unknown: std::mem::take(&mut el.children),
        })
    }

    /// Writes `<memtune>` as libvirt does (each limit in KiB, libvirt's child order).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("memtune");
        for (name, v) in [
            ("hard_limit", self.hard_limit_kib),
            ("soft_limit", self.soft_limit_kib),
            ("min_guarantee", self.min_guarantee_kib),
            ("swap_hard_limit", self.swap_hard_limit_kib),
        ] {
            if let Some(v) = v {
                el.children
                    .push(Element::new(name).attr("unit", "KiB").text(v.value));
            }
        }
        el.children.extend(self.unknown.iter().cloned());
        super::util::sort_children(&mut el, MEMTUNE_ORDER);
        el
    }
}

/// `<cputune>`: CPU weight and bandwidth of the whole VM. The per-thread settings
/// (`<vcpupin>`, `<period>`, ...) are in [`Cputune::unenforced`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cputune {
    /// Where `<cputune>` starts.
    pub pos: Pos,
    /// `<shares>`: relative CPU weight (cgroup v1 `cpu.shares`, v2 `cpu.weight`).
    pub shares: Option<At<u64>>,
    /// `<global_period>` (µs): the bandwidth period of the whole VM.
    pub global_period: Option<At<u64>>,
    /// `<global_quota>` (µs per period; negative = unlimited) of the whole VM.
    pub global_quota: Option<At<i64>>,
    /// Every other child (`<period>`, `<quota>`, `<emulator_period>`, `<vcpupin>`,
    /// `<emulatorpin>`, `<vcpusched>`, `<cachetune>`, ... or unknown ones), as written with
    /// their positions: virtnet does not enforce them, validation refuses them.
    pub unenforced: Vec<Element>,
}

/// libvirt's order of `<cputune>` children.
const CPUTUNE_ORDER: &[&str] = &[
    "shares",
    "global_period",
    "global_quota",
    "period",
    "quota",
    "emulator_period",
    "emulator_quota",
    "iothread_period",
    "iothread_quota",
    "vcpupin",
    "emulatorpin",
    "iothreadpin",
    "emulatorsched",
    "vcpusched",
    "iothreadsched",
    "cachetune",
    "memorytune",
];

impl Cputune {
    /// Reads `<cputune>`.
    pub fn from_element(mut el: Element) -> Result<Cputune, ConfError> {
        refuse_attrs_and_text(&el)?;
        let mut number = |name: &str, expected: &str| -> Result<Option<At<i128>>, ConfError> {
            match el.take_one_text(name)? {
                None => Ok(None),
                Some((t, pos)) => {
                    let v: i128 = t.trim().parse().map_err(|_| ConfError::InvalidText {
                        pos,
                        element: name.into(),
                        value: t.clone(),
                        expected: expected.into(),
                    })?;
                    Ok(Some(At { value: v, pos }))
                }
            }
        };
        let unsigned = |v: Option<At<i128>>, name: &str| -> Result<Option<At<u64>>, ConfError> {
            v.map(|a| {
                u64::try_from(a.value)
                    .map(|value| At { value, pos: a.pos })
                    .map_err(|_| ConfError::InvalidText {
                        pos: a.pos,
                        element: name.into(),
                        value: a.value.to_string(),
                        expected: "a non-negative integer".into(),
                    })
            })
            .transpose()
        };
        let shares = number("shares", "a non-negative integer")?;
        let period = number("global_period", "a number of microseconds")?;
        let quota = number("global_quota", "a number of microseconds (-1: unlimited)")?;
        let global_quota = quota
            .map(|a| {
                i64::try_from(a.value)
                    .map(|value| At { value, pos: a.pos })
                    .map_err(|_| ConfError::InvalidText {
                        pos: a.pos,
                        element: "global_quota".into(),
                        value: a.value.to_string(),
                        expected: "a 64-bit number of microseconds".into(),
                    })
            })
            .transpose()?;
        Ok(Cputune {
            pos: el.pos,
            shares: unsigned(shares, "shares")?,
            global_period: unsigned(period, "global_period")?,
            global_quota,
            unenforced: std::mem::take(&mut el.children),
        })
    }

    /// Writes `<cputune>` in libvirt's child order.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("cputune");
        if let Some(s) = self.shares {
            el.children.push(Element::new("shares").text(s.value));
        }
        if let Some(p) = self.global_period {
            el.children
                .push(Element::new("global_period").text(p.value));
        }
        if let Some(q) = self.global_quota {
            el.children.push(Element::new("global_quota").text(q.value));
        }
        el.children.extend(self.unenforced.iter().cloned());
        super::util::sort_children(&mut el, CPUTUNE_ORDER);
        el
    }
}

/// `<memtune>` and `<cputune>` hold only elements: anything else would be kept and ignored.
fn refuse_attrs_and_text(el: &Element) -> Result<(), ConfError> {
    if let Some(a) = el.attrs.first() {
        let pos = if a.pos.is_known() { a.pos } else { el.pos };
        return Err(ConfError::unsupported(
            pos,
            format!("<{}> has no attribute '{}': remove it", el.name, a.name),
        ));
    }
    if let Some(t) = el.text.as_deref().filter(|t| !t.trim().is_empty()) {
        return Err(ConfError::unsupported(
            el.pos,
            format!(
                "<{}> holds elements only, not the text '{t}': remove it",
                el.name
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn el(s: &str) -> Element {
        parse_document(s, Limits::default()).unwrap()
    }

    #[test]
    fn memtune_units_and_canonical_form() {
        let m = Memtune::from_element(el(
            "<memtune>\n<swap_hard_limit unit='GiB'>2</swap_hard_limit>\
             <hard_limit unit='MiB'>512</hard_limit><soft_limit unit='b'>1025</soft_limit>\
             <min_guarantee>1000</min_guarantee></memtune>",
        ))
        .unwrap();
        assert_eq!(m.hard_limit_kib.unwrap().value, 524288);
        assert_eq!(m.soft_limit_kib.unwrap().value, 2);
        assert_eq!(m.swap_hard_limit_kib.unwrap().value, 2 << 20);
        assert_eq!(m.min_guarantee_kib.unwrap().value, 1000);
        assert_eq!(m.hard_limit_kib.unwrap().pos.line, 2);
        let out = write_document(&m.to_element());
        assert_eq!(
            out,
            "<memtune>\n  <hard_limit unit='KiB'>524288</hard_limit>\n  \
             <soft_limit unit='KiB'>2</soft_limit>\n  <min_guarantee unit='KiB'>1000</min_guarantee>\n  \
             <swap_hard_limit unit='KiB'>2097152</swap_hard_limit>\n</memtune>\n"
        );
        let again = Memtune::from_element(el(&out)).unwrap();
        assert_eq!(write_document(&again.to_element()), out);
    }

    #[test]
    fn memtune_errors_name_the_element() {
        let e = Memtune::from_element(el("<memtune><hard_limit>lots</hard_limit></memtune>"))
            .unwrap_err();
        assert!(e.to_string().contains("'lots'"), "{e}");
        let e = Memtune::from_element(el(
            "<memtune><hard_limit>1</hard_limit><hard_limit>2</hard_limit></memtune>",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("hard_limit"), "{e}");
        let e = Memtune::from_element(el("<memtune x='1'/>")).unwrap_err();
        assert!(e.to_string().contains("no attribute 'x'"), "{e}");
        let e = Memtune::from_element(el(
            "<memtune><hard_limit unit='KiB' x='1'>1</hard_limit></memtune>",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("'x'"), "{e}");
    }

    #[test]
    fn cputune_typed_and_kept_in_order() {
        let c = Cputune::from_element(el("<cputune><vcpupin vcpu='0' cpuset='1'/>\
             <global_quota>-1</global_quota><shares>2048</shares><period>100000</period>\
             <global_period>100000</global_period></cputune>"))
        .unwrap();
        assert_eq!(c.shares.unwrap().value, 2048);
        assert_eq!(c.global_quota.unwrap().value, -1);
        assert_eq!(c.global_period.unwrap().value, 100000);
        let names: Vec<&str> = c.unenforced.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["vcpupin", "period"]);
        assert!(c.unenforced[0].pos.is_known());
        let out = write_document(&c.to_element());
        assert_eq!(
            out,
            "<cputune>\n  <shares>2048</shares>\n  <global_period>100000</global_period>\n  \
             <global_quota>-1</global_quota>\n  <period>100000</period>\n  \
             <vcpupin vcpu='0' cpuset='1'/>\n</cputune>\n"
        );
        let again = Cputune::from_element(el(&out)).unwrap();
        assert_eq!(write_document(&again.to_element()), out);
    }

    #[test]
    fn cputune_bad_numbers() {
        for (xml, want) in [
            ("<cputune><shares>-5</shares></cputune>", "non-negative"),
            ("<cputune><shares>many</shares></cputune>", "'many'"),
            ("<cputune><global_quota>x</global_quota></cputune>", "-1"),
            (
                "<cputune mode='x'><shares>2</shares></cputune>",
                "no attribute 'mode'",
            ),
            ("<cputune>2048</cputune>", "not the text '2048'"),
        ] {
            let e = Cputune::from_element(el(xml)).unwrap_err();
            assert!(e.to_string().contains(want), "{xml}: {e}");
        }
    }
}
