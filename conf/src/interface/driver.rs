//! `<driver>`: virtio-net back-end settings (or the VF driver of a hostdev interface).

use super::util::{on_off, take_choice, take_on_off, take_uint, Spanned};
use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// Host-side offloads (`<host .../>`), in libvirt's order.
pub const HOST_OFFLOADS: &[&str] = &["csum", "gso", "tso4", "tso6", "ecn", "ufo", "mrg_rxbuf"];
/// Guest-side offloads (`<guest .../>`), in libvirt's order.
pub const GUEST_OFFLOADS: &[&str] = &["csum", "tso4", "tso6", "ecn", "ufo"];

/// Offload switches of `<host>` or `<guest>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Offloads {
    /// (name, on) in libvirt's order; only the ones written.
    pub settings: Vec<(String, bool)>,
    /// Unknown content.
    pub extra: Extra,
}

impl Offloads {
    fn from_element(mut el: Element, names: &[&str]) -> Result<Self, ConfError> {
        let mut settings = Vec::new();
        for n in names {
            if let Some(v) = take_on_off(&mut el, n)? {
                settings.push((n.to_string(), v));
            }
        }
        Ok(Offloads {
            settings,
            extra: el.into_extra(),
        })
    }

    /// The setting for `name` (`csum`, `tso4`, ...), if written.
    pub fn get(&self, name: &str) -> Option<bool> {
        self.settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    fn to_element(&self, name: &str) -> Option<Element> {
        let mut el = Element::new(name);
        for (n, v) in &self.settings {
            el.push_attr(n, on_off(*v));
        }
        let el = el.with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}

/// `<driver name='vhost' txmode='iothread' ioeventfd='on' event_idx='off' queues='4'
/// rx_queue_size='512' tx_queue_size='512' rss='on' rss_hash_report='on' iommu='on' ats='on'
/// packed='on' page_per_vq='on'><host .../><guest .../></driver>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Driver {
    /// `qemu` or `vhost` (virtio); `vfio`, `kvm` or `xen` (hostdev).
    pub name: Option<Spanned<String>>,
    /// `iothread` or `timer`.
    pub txmode: Option<String>,
    /// ioeventfd on/off.
    pub ioeventfd: Option<bool>,
    /// event_idx on/off.
    pub event_idx: Option<bool>,
    /// Queue pairs (multiqueue); 0 and 1 are stored as none, as libvirt does.
    pub queues: Option<Spanned<u32>>,
    /// RX virtqueue size.
    pub rx_queue_size: Option<Spanned<u32>>,
    /// TX virtqueue size.
    pub tx_queue_size: Option<Spanned<u32>>,
    /// Receive-side scaling.
    pub rss: Option<bool>,
    /// RSS hash reporting.
    pub rss_hash_report: Option<bool>,
    /// virtio `iommu_platform`.
    pub iommu: Option<bool>,
    /// virtio ATS.
    pub ats: Option<bool>,
    /// Packed virtqueues.
    pub packed: Option<bool>,
    /// virtio page-per-vq.
    pub page_per_vq: Option<bool>,
    /// Host offloads.
    pub host: Option<Offloads>,
    /// Guest offloads.
    pub guest: Option<Offloads>,
    /// Position of the element.
    pub pos: Pos,
    /// Unknown content.
    pub extra: Extra,
}

impl Driver {
    /// Reads `<driver>`; `hostdev` selects which driver names are valid.
    pub(crate) fn from_element(mut el: Element, hostdev: bool) -> Result<Self, ConfError> {
        let names: &[&str] = if hostdev {
            &["vfio", "kvm", "xen"]
        } else {
            &["qemu", "vhost"]
        };
        let mut d = Driver {
            pos: el.pos,
            name: take_choice(&mut el, "name", names)?,
            txmode: take_choice(&mut el, "txmode", &["iothread", "timer"])?.map(|t| t.value),
            ioeventfd: take_on_off(&mut el, "ioeventfd")?,
            event_idx: take_on_off(&mut el, "event_idx")?,
            queues: take_uint::<u32>(&mut el, "queues")?.filter(|q| q.value > 1),
            rx_queue_size: take_uint::<u32>(&mut el, "rx_queue_size")?.filter(|q| q.value > 0),
            tx_queue_size: take_uint::<u32>(&mut el, "tx_queue_size")?.filter(|q| q.value > 0),
            rss: take_on_off(&mut el, "rss")?,
            rss_hash_report: take_on_off(&mut el, "rss_hash_report")?,
            iommu: take_on_off(&mut el, "iommu")?,
            ats: take_on_off(&mut el, "ats")?,
            packed: take_on_off(&mut el, "packed")?,
            page_per_vq: take_on_off(&mut el, "page_per_vq")?,
            ..Default::default()
        };
        d.host = el
            .take_one("host")?
            .map(|h| Offloads::from_element(h, HOST_OFFLOADS))
            .transpose()?;
        d.guest = el
            .take_one("guest")?
            .map(|g| Offloads::from_element(g, GUEST_OFFLOADS))
            .transpose()?;
        d.extra = el.into_extra();
        Ok(d)
    }

    /// The virtio form (libvirt writes it only for virtio models).
    pub(crate) fn to_virtio_element(&self) -> Option<Element> {
        let sw = |v: Option<bool>| v.map(on_off);
        let el = Element::new("driver")
            .attr_opt("name", self.name.as_ref().map(|n| n.value.clone()))
            .attr_opt("txmode", self.txmode.as_deref())
            .attr_opt("ioeventfd", sw(self.ioeventfd))
            .attr_opt("event_idx", sw(self.event_idx))
            .attr_opt("queues", self.queues.as_ref().map(|q| q.value))
            .attr_opt(
                "rx_queue_size",
                self.rx_queue_size.as_ref().map(|q| q.value),
            )
            .attr_opt(
                "tx_queue_size",
                self.tx_queue_size.as_ref().map(|q| q.value),
            )
            .attr_opt("rss", sw(self.rss))
            .attr_opt("rss_hash_report", sw(self.rss_hash_report))
            .attr_opt("iommu", sw(self.iommu))
            .attr_opt("ats", sw(self.ats))
            .attr_opt("packed", sw(self.packed))
            .attr_opt("page_per_vq", sw(self.page_per_vq))
            .child_opt(self.host.as_ref().and_then(|h| h.to_element("host")))
            .child_opt(self.guest.as_ref().and_then(|g| g.to_element("guest")))
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }

    /// The hostdev form: the VF driver name only (other settings do not apply to a VF;
    /// libvirt ignores them as well).
    pub(crate) fn to_hostdev_element(&self) -> Option<Element> {
        let el = Element::new("driver")
            .attr_opt("name", self.name.as_ref().map(|n| n.value.clone()))
            .with_extra(&self.extra);
        (!el.is_empty()).then_some(el)
    }
}
