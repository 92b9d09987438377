//! `<seclabel>`: the security label of the QEMU process (libvirt's
//! `virSecurityLabelDef`). virtnet's QEMU driver decides what it honours
//! (`virtnet_qemu::validate`); this is only the XML.

use super::util::{take_choice, unpositioned};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// `type` of a `<seclabel>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecLabelType {
    /// `dynamic`: the driver picks the label (libvirt's default).
    Dynamic,
    /// `static`: the label in `<label>`.
    Static,
    /// `none`: the process runs unconfined.
    None,
}

impl SecLabelType {
    /// The XML value.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecLabelType::Dynamic => "dynamic",
            SecLabelType::Static => "static",
            SecLabelType::None => "none",
        }
    }
}

/// One id of a DAC label: a name, or a number written `+N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DacId {
    /// A user or group name (looked up on the host).
    Name(String),
    /// A numeric id (`+107`).
    Id(u32),
}

impl DacId {
    fn parse(s: &str) -> Option<DacId> {
        if s.is_empty() {
            return None;
        }
        match s.strip_prefix('+') {
            Some(n) => n.parse().ok().map(DacId::Id),
            None => Some(DacId::Name(s.to_string())),
        }
    }
}

/// A DAC label `user:group` (libvirt's format: names, or `+uid:+gid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DacLabel {
    /// The user.
    pub user: DacId,
    /// The group.
    pub group: DacId,
}

impl DacLabel {
    /// Parses `user:group`; `None` when it is not of that form.
    pub fn parse(s: &str) -> Option<DacLabel> {
        let (u, g) = s.split_once(':')?;
        Some(DacLabel {
            user: DacId::parse(u)?,
            group: DacId::parse(g)?,
        })
    }
}

/// `<seclabel type model relabel>` with its `<label>`, `<imagelabel>`, `<baselabel>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecLabel {
    /// Where `<seclabel>` starts.
    pub pos: Pos,
    /// `type` (`dynamic` when absent, as libvirt).
    pub label_type: SecLabelType,
    /// Whether `type` was written (formatting keeps an absent one absent).
    pub type_written: bool,
    /// `model` (`dac`, `selinux`, `apparmor`, `none`).
    pub model: Option<String>,
    /// `relabel` (`yes`/`no`).
    pub relabel: Option<bool>,
    /// `<label>` and where it is.
    pub label: Option<(String, Pos)>,
    /// `<imagelabel>`.
    pub imagelabel: Option<String>,
    /// `<baselabel>`.
    pub baselabel: Option<String>,
    /// Unknown attributes or children.
    pub extra: Extra,
}

impl SecLabel {
    /// Reads one `<seclabel>`.
    pub fn from_element(mut el: Element) -> Result<SecLabel, ConfError> {
        let pos = el.pos;
        let t = take_choice(&mut el, "type", &["dynamic", "static", "none"])?;
        let label_type = match t.as_deref() {
            Some("static") => SecLabelType::Static,
            Some("none") => SecLabelType::None,
            _ => SecLabelType::Dynamic,
        };
        let model = el.take_attr_value("model");
        let relabel = take_choice(&mut el, "relabel", &["yes", "no"])?.map(|v| v == "yes");
        let label = el.take_one_text("label")?;
        let imagelabel = el.take_one_text("imagelabel")?.map(|(t, _)| t);
        let baselabel = el.take_one_text("baselabel")?.map(|(t, _)| t);
        let mut extra = el.into_extra();
        extra.children = extra.children.iter().map(unpositioned).collect();
        Ok(SecLabel {
            pos,
            label_type,
            type_written: t.is_some(),
            model,
            relabel,
            label,
            imagelabel,
            baselabel,
            extra,
        })
    }

    /// The element, canonical.
    pub fn to_element(&self) -> Element {
        let t = self.type_written.then(|| self.label_type.as_str());
        let text = |name: &str, v: &Option<String>| v.as_ref().map(|v| Element::new(name).text(v));
        Element::new("seclabel")
            .attr_opt("type", t)
            .attr_opt("model", self.model.as_deref())
            .attr_opt(
                "relabel",
                self.relabel.map(|r| if r { "yes" } else { "no" }),
            )
            .child_opt(
                self.label
                    .as_ref()
                    .map(|(l, _)| Element::new("label").text(l)),
            )
            .child_opt(text("imagelabel", &self.imagelabel))
            .child_opt(text("baselabel", &self.baselabel))
            .with_extra(&self.extra)
    }

    /// The `<label>` as a DAC `user:group`, when there is one of that form.
    pub fn dac_label(&self) -> Option<DacLabel> {
        self.label.as_ref().and_then(|(l, _)| DacLabel::parse(l))
    }

    /// Whether the model is DAC (`model='dac'`, or no model on a `type='none'` label).
    pub fn is_dac(&self) -> bool {
        self.model.as_deref() == Some("dac")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, Limits};

    fn round_trip(xml: &str) -> SecLabel {
        let el = parse_document(xml, Limits::default()).unwrap();
        let s = SecLabel::from_element(el).unwrap();
        let again = crate::xml::write_document(&s.to_element());
        assert_eq!(again.trim(), xml, "round trip");
        s
    }

    #[test]
    fn parses_and_formats() {
        let s = round_trip(
            "<seclabel type='static' model='dac' relabel='yes'>\n  \
             <label>+107:+108</label>\n</seclabel>",
        );
        assert_eq!(s.label_type, SecLabelType::Static);
        assert_eq!(
            s.dac_label(),
            Some(DacLabel {
                user: DacId::Id(107),
                group: DacId::Id(108)
            })
        );
        let s = round_trip("<seclabel type='none'/>");
        assert_eq!(s.label_type, SecLabelType::None);
        let s = round_trip("<seclabel type='dynamic' model='selinux'/>");
        assert_eq!(s.model.as_deref(), Some("selinux"));
    }

    #[test]
    fn dac_labels() {
        assert_eq!(
            DacLabel::parse("qemu:kvm"),
            Some(DacLabel {
                user: DacId::Name("qemu".into()),
                group: DacId::Name("kvm".into())
            })
        );
        assert_eq!(DacLabel::parse("qemu"), None);
        assert_eq!(DacLabel::parse("+x:+1"), None);
        assert_eq!(DacLabel::parse(":kvm"), None);
    }

    #[test]
    fn bad_type_is_an_error() {
        let el = parse_document("<seclabel type='sometimes'/>", Limits::default()).unwrap();
        assert!(SecLabel::from_element(el).is_err());
    }
}
