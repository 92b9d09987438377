//! `<features>`, `<clock>`, `<numatune>` and the lifecycle actions (`<on_poweroff>` ...).

use super::util::{rank, take_choice, take_idset, unpositioned, IdSet};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// libvirt's order of `<features>` children.
const FEATURE_ORDER: &[&str] = &[
    "acpi",
    "apic",
    "pae",
    "hap",
    "viridian",
    "privnet",
    "hyperv",
    "kvm",
    "pvspinlock",
    "capabilities",
    "pmu",
    "vmport",
    "gic",
    "smm",
    "ioapic",
    "hpt",
    "vmcoreinfo",
    "htm",
    "nested-hv",
    "msrs",
    "ccf-assist",
    "xen",
    "cfpc",
    "sbbc",
    "ibs",
    "tcg",
    "async-teardown",
    "ras",
    "ps2",
    "aia",
];

/// Features written as `<name state='on|off'/>`; a bare `<name/>` means on.
const STATE_FEATURES: &[&str] = &[
    "hap",
    "pmu",
    "pvspinlock",
    "vmport",
    "htm",
    "nested-hv",
    "ccf-assist",
    "ps2",
];

/// `<features>`: a list of simple flags (`<acpi/>`, `<apic/>`, `<pae/>`) and richer elements
/// (`<hyperv>`, `<kvm>`, `<smm>` ...), kept as written and put in libvirt's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// The feature elements.
    pub list: Vec<Element>,
    /// Unknown attributes or text of `<features>`.
    pub extra: Extra,
}

impl Features {
    /// Reads `<features>`.
    pub fn from_element(mut el: Element) -> Result<Features, ConfError> {
        let mut list = Vec::new();
        for mut f in std::mem::take(&mut el.children) {
            if STATE_FEATURES.contains(&f.name.as_str()) {
                let state = take_choice(&mut f, "state", &["on", "off"])?;
                let mut out =
                    Element::new(f.name.clone()).attr("state", state.as_deref().unwrap_or("on"));
                out.attrs.append(&mut f.attrs);
                out.children = f.children;
                f = out;
            }
            list.push(unpositioned(&f));
        }
        list.sort_by_key(|f| rank(FEATURE_ORDER, &f.name));
        Ok(Features {
            list,
            extra: el.into_extra(),
        })
    }

    /// Writes `<features>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("features");
        el.children = self.list.clone();
        el.with_extra(&self.extra)
    }

    /// The feature element `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Element> {
        self.list.iter().find(|f| f.name == name)
    }

    /// Whether feature `name` is present and not switched off (`state='off'`).
    pub fn is_on(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|f| f.get_attr("state") != Some("off"))
    }
}

/// `<clock offset>` with its `<timer>` children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// `utc`, `localtime`, `timezone`, `variable` or `absolute`.
    pub offset: String,
    /// Other attributes (`adjustment`, `basis`, `timezone`, `start`) as written.
    pub attrs: Vec<crate::xml::Attr>,
    /// `<timer>` elements as written.
    pub timers: Vec<Element>,
    /// Unknown children or text.
    pub extra: Extra,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset: "utc".into(),
            attrs: Vec::new(),
            timers: Vec::new(),
            extra: Extra::default(),
        }
    }
}

impl Clock {
    /// Reads `<clock>`.
    pub fn from_element(mut el: Element) -> Result<Clock, ConfError> {
        let offset = take_choice(
            &mut el,
            "offset",
            &["utc", "localtime", "timezone", "variable", "absolute"],
        )?
        .unwrap_or_else(|| "utc".into());
        let timers = el.take_children("timer").iter().map(unpositioned).collect();
        let attrs = std::mem::take(&mut el.attrs)
            .into_iter()
            .map(|mut a| {
                a.pos = Pos::UNKNOWN;
                a
            })
            .collect();
        Ok(Clock {
            offset,
            attrs,
            timers,
            extra: el.into_extra(),
        })
    }

    /// Writes `<clock>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("clock").attr("offset", &self.offset);
        el.attrs.extend(self.attrs.iter().cloned());
        el.children = self.timers.clone();
        el.with_extra(&self.extra)
    }
}

/// Accepted values of `<on_poweroff>` and `<on_reboot>`.
pub const LIFECYCLE_ACTIONS: &[&str] = &["destroy", "restart", "rename-restart", "preserve"];
/// Accepted values of `<on_crash>`.
pub const CRASH_ACTIONS: &[&str] = &[
    "destroy",
    "restart",
    "rename-restart",
    "preserve",
    "coredump-destroy",
    "coredump-restart",
];

/// Reads the text of a lifecycle element (`<on_reboot>restart</on_reboot>`).
pub(crate) fn read_lifecycle(mut el: Element, allowed: &[&str]) -> Result<String, ConfError> {
    let text = el.take_text().unwrap_or_default();
    if allowed.contains(&text.as_str()) {
        Ok(text)
    } else {
        Err(ConfError::InvalidText {
            pos: el.pos,
            element: el.name.clone(),
            value: text,
            expected: super::util::one_of(allowed),
        })
    }
}

/// `<numatune>`: host NUMA memory policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Numatune {
    /// `<memory mode>`: `strict`, `preferred`, `interleave` or `restrictive`.
    pub mode: Option<String>,
    /// `<memory nodeset>`.
    pub nodeset: Option<IdSet>,
    /// `<memory placement='static|auto'>`.
    pub placement: Option<String>,
    /// Whether a `<memory>` child was present.
    pub has_memory: bool,
    /// Unknown content of `<memory>`, written back into it.
    pub memory_extra: Extra,
    /// `<memnode>` elements as written.
    pub memnodes: Vec<Element>,
    /// Unknown content.
    pub extra: Extra,
}

impl Numatune {
    /// Reads `<numatune>`.
    pub fn from_element(mut el: Element) -> Result<Numatune, ConfError> {
        let mut n = Numatune::default();
        if let Some(mut m) = el.take_one("memory")? {
            n.has_memory = true;
            n.mode = take_choice(
                &mut m,
                "mode",
                &["strict", "preferred", "interleave", "restrictive"],
            )?;
            n.nodeset = take_idset(&mut m, "nodeset")?;
            n.placement = take_choice(&mut m, "placement", &["static", "auto"])?;
            n.memory_extra = m.into_extra();
        }
        n.memnodes = el
            .take_children("memnode")
            .iter()
            .map(unpositioned)
            .collect();
        n.extra = el.into_extra();
        Ok(n)
    }

    /// Writes `<numatune>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("numatune");
        if self.has_memory {
            let mut m =
                Element::new("memory").attr("mode", self.mode.as_deref().unwrap_or("strict"));
            if self.placement.as_deref() == Some("auto") && self.nodeset.is_none() {
                m.push_attr("placement", "auto");
            } else if let Some(ns) = &self.nodeset {
                m.push_attr("nodeset", ns);
            }
            el.children.push(m.with_extra(&self.memory_extra));
        }
        el.children.extend(self.memnodes.iter().cloned());
        el.with_extra(&self.extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn el(s: &str) -> Element {
        parse_document(s, Limits::default()).unwrap()
    }

    #[test]
    fn features_are_ordered_and_states_filled() {
        let f = Features::from_element(el(
            "<features><vmport state='off'/><pae/><hap/><acpi/></features>",
        ))
        .unwrap();
        assert!(f.is_on("acpi") && f.is_on("hap") && !f.is_on("vmport") && !f.is_on("smm"));
        assert_eq!(
            write_document(&f.to_element()),
            "<features>\n  <acpi/>\n  <pae/>\n  <hap state='on'/>\n  <vmport state='off'/>\n</features>\n"
        );
        assert!(Features::from_element(el("<features><pmu state='maybe'/></features>")).is_err());
    }

    #[test]
    fn clock_and_lifecycle() {
        let c = Clock::from_element(el(
            "<clock offset='variable' adjustment='10'><timer name='rtc'/></clock>",
        ))
        .unwrap();
        assert_eq!(
            write_document(&c.to_element()),
            "<clock offset='variable' adjustment='10'>\n  <timer name='rtc'/>\n</clock>\n"
        );
        assert!(Clock::from_element(el("<clock offset='mars'/>")).is_err());
        assert_eq!(
            read_lifecycle(el("<on_crash>coredump-destroy</on_crash>"), CRASH_ACTIONS).unwrap(),
            "coredump-destroy"
        );
        let e =
            read_lifecycle(el("<on_reboot>explode</on_reboot>"), LIFECYCLE_ACTIONS).unwrap_err();
        assert!(
            e.to_string().contains("'explode'") && e.to_string().contains("on_reboot"),
            "{e}"
        );
    }

    #[test]
    fn numatune_round_trip() {
        let n = Numatune::from_element(el("<numatune><memory nodeset='1,0'/><memnode cellid='0' mode='strict' nodeset='0'/></numatune>")).unwrap();
        assert_eq!(
            write_document(&n.to_element()),
            "<numatune>\n  <memory mode='strict' nodeset='0-1'/>\n  <memnode cellid='0' mode='strict' nodeset='0'/>\n</numatune>\n"
        );
    }

    /// Unknown content of `<numatune><memory>` stays inside it (it used to come back as a
    /// second `<memory>`, which a re-read refuses).
    #[test]
    fn numatune_memory_keeps_unknown_content_inside() {
        let n = Numatune::from_element(el(
            "<numatune><memory mode='strict' nodeset='0' foo='1'/></numatune>",
        ))
        .unwrap();
        let out = write_document(&n.to_element());
        assert_eq!(
            out,
            "<numatune>\n  <memory mode='strict' nodeset='0' foo='1'/>\n</numatune>\n"
        );
        let again = Numatune::from_element(el(&out)).unwrap();
        assert_eq!(write_document(&again.to_element()), out);
    }
}
