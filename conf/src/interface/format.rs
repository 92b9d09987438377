//! Writing [`Interface`] as libvirt's canonical `<interface>` (`virDomainNetDefFormat`).

use super::kind::{format_source, InterfaceKind};
use super::util::yes_no;
use super::Interface;
use crate::xml::Element;

impl Interface {
    /// Writes the canonical `<interface>` element: libvirt's element order and attribute order,
    /// then whatever unknown content was read.
    ///
    /// As libvirt does, `<driver>` settings (and `<backend vhost>`) are written only for
    /// virtio models, and for hostdev only the driver name; `<coalesce>` is omitted when its
    /// rx frame count is 0 or missing.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("interface").attr("type", self.type_().as_str());
        if let InterfaceKind::Hostdev { managed: true, .. } = &self.kind {
            el.push_attr("managed", "yes");
        }
        if let Some(t) = self.trust_guest_rx_filters {
            el.push_attr("trustGuestRxFilters", yes_no(t));
        }
        if let Some(m) = &self.mac {
            let e = Element::new("mac")
                .attr_opt("address", m.address.as_ref().map(|a| a.value))
                .attr_opt("type", m.kind.as_deref())
                .attr_opt("check", m.check.map(yes_no))
                .with_extra(&m.extra);
            if !e.is_empty() {
                el.children.push(e);
            }
        }
        if self.is_hostdev() {
            if let Some(d) = self.driver.as_ref().and_then(|d| d.to_hostdev_element()) {
                el.children.push(d);
            }
        }
        format_source(
            &self.kind,
            self.source_dev.as_ref(),
            &self.host_ip,
            &self.source_extra,
            &mut el,
        );
        let el = el
            .child_opt(self.vlan.as_ref().map(|v| v.to_element()))
            .child_opt(self.virtualport.as_ref().map(|v| v.to_element()))
            .child_opt(self.bandwidth.as_ref().and_then(|b| b.to_element()))
            .child_opt(
                self.port_isolated
                    .as_ref()
                    .map(|p| p.write("port", "isolated", yes_no(p.value))),
            );
        let mut el = el;
        self.guest_ip.put_into(&mut el);
        el.children
            .extend(self.port_forwards.iter().map(|p| p.to_element()));
        let virtio = self.is_virtio();
        let mut el = el
            .child_opt(
                self.script
                    .as_ref()
                    .map(|s| s.write("script", "path", &s.value)),
            )
            .child_opt(
                self.downscript
                    .as_ref()
                    .map(|s| s.write("downscript", "path", &s.value)),
            )
            .child_opt(
                self.backend_domain
                    .as_ref()
                    .map(|s| s.write("backenddomain", "name", &s.value)),
            )
            .child_opt(self.target.as_ref().and_then(|t| t.to_element()))
            .child_opt(self.guest.as_ref().and_then(|g| g.to_element()));
        if let Some(m) = &self.model {
            el.children.push(m.write("model", "type", m.value.as_str()));
            if virtio && !self.is_hostdev() {
                if let Some(d) = self.driver.as_ref().and_then(|d| d.to_virtio_element()) {
                    el.children.push(d);
                }
            }
        }
        el.child_opt(
            self.backend
                .as_ref()
                .and_then(|b| b.to_element(virtio && !self.is_hostdev())),
        )
        .child_opt(self.filterref.as_ref().map(|f| f.to_element()))
        .child_opt(self.tune.as_ref().and_then(|t| t.to_element()))
        .child_opt(self.teaming.as_ref().map(|t| t.to_element()))
        .child_opt(
            self.link
                .as_ref()
                .map(|l| l.write("link", "state", l.value.as_str())),
        )
        .child_opt(self.mtu.as_ref().map(|m| m.write("mtu", "size", m.value)))
        .child_opt(self.coalesce.as_ref().and_then(|c| c.to_element()))
        .child_opt(self.boot.as_ref().map(|b| b.to_element()))
        .child_opt(
            self.alias
                .as_ref()
                .map(|a| a.write("alias", "name", &a.value)),
        )
        .child_opt(self.rom.as_ref().and_then(|r| r.to_element()))
        .child_opt(
            self.acpi_index
                .as_ref()
                .map(|a| a.write("acpi", "index", a.value)),
        )
        .child_opt(self.address.as_ref().map(|a| a.to_element()))
        .with_extra(&self.extra)
    }
}
