//! What an `<interface>` holds that the model did not understand: every [`Extra`] of the
//! interface and of its parts, named and located, so the validation layer can refuse it
//! instead of carrying it along unapplied.
//!
//! The walk destructures every part without `..`: a field added to the model does not
//! compile until it is walked here (and accounted for in `conf/interface-account.tsv`).

use super::{
    Backend, Bandwidth, Boot, Coalesce, Driver, FilterRef, GuestName, HostdevSource, Interface,
    InterfaceKind, IpInfo, Leaf, Mac, PortForward, Rate, Rom, Target, Teaming, Tune, VirtualPort,
    Vlan,
};
use crate::address::DeviceAddress;
use crate::xml::{Extra, Pos};

/// One piece of content no model claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// Where it is (the attribute or element; the parent element for stray text).
    pub pos: Pos,
    /// `<parent attr='...'>`, `<parent><child>` or `text in <parent>`.
    pub what: String,
}

/// `p` when it points into the input, else `at`.
fn or(p: Pos, at: Pos) -> Pos {
    if p.is_known() {
        p
    } else {
        at
    }
}

struct Walk(Vec<Unknown>);

impl Walk {
    fn extra(&mut self, parent: &str, at: Pos, e: &Extra) {
        for a in &e.attrs {
            self.0.push(Unknown {
                pos: or(a.pos, at),
                what: format!("attribute '{}' of <{parent}>", a.name),
            });
        }
        for c in &e.children {
            self.0.push(Unknown {
                pos: or(c.pos, at),
                what: format!("element <{}> inside <{parent}>", c.name),
            });
        }
        if let Some(t) = &e.text {
            self.0.push(Unknown {
                pos: at,
                what: format!("text '{}' inside <{parent}>", t.escape_default()),
            });
        }
    }

    fn leaf<T>(&mut self, parent: &str, at: Pos, l: &Option<Leaf<T>>) {
        if let Some(l) = l {
            self.extra(parent, or(l.pos, at), &l.extra);
        }
    }

    fn ips(&mut self, at: Pos, ip: &IpInfo) {
        let IpInfo { ips, routes } = ip;
        for i in ips {
            self.extra("ip", or(i.address.pos, at), &i.extra);
        }
        for r in routes {
            self.extra("route", or(r.gateway.pos, at), &r.extra);
        }
    }

    fn rate(&mut self, name: &str, r: &Option<Rate>) {
        if let Some(Rate { pos, extra, .. }) = r {
            self.extra(name, *pos, extra);
        }
    }
}

impl Interface {
    /// Every attribute, element or text inside this `<interface>` (at any depth) that the
    /// model did not understand, in element order. Empty for anything libvirt's schema allows
    /// and virtnet reads.
    pub fn unknown_content(&self) -> Vec<Unknown> {
        let Interface {
            pos,
            address,
            kind,
            trust_guest_rx_filters: _,
            mac,
            source_dev: _,
            host_ip,
            source_extra,
            source_pos,
            vlan,
            virtualport,
            bandwidth,
            port_isolated,
            guest_ip,
            port_forwards,
            script,
            downscript,
            backend_domain,
            target,
            guest,
            model,
            driver,
            backend,
            filterref,
            tune,
            teaming,
            link,
            mtu,
            coalesce,
            boot,
            alias,
            rom,
            acpi_index,
            extra,
        } = self;
        let at = *pos;
        let src = or(*source_pos, at);
        let mut w = Walk(Vec::new());
        w.extra("interface", at, extra);
        if let Some(Mac { pos, extra, .. }) = mac {
            w.extra("mac", or(*pos, at), extra);
        }
        w.extra("source", src, source_extra);
        w.ips(src, host_ip);
        match kind {
            InterfaceKind::VhostUser { socket: Some(s) } => {
                if let Some(r) = &s.reconnect {
                    w.extra("reconnect", or(s.path.pos, src), &r.extra);
                }
            }
            InterfaceKind::Udp { local_extra, .. } => w.extra("local", src, local_extra),
            InterfaceKind::Hostdev {
                source: HostdevSource::Pci { extra, addr },
                ..
            } => w.extra("address", or(addr.pos, src), extra),
            _ => {}
        }
        if let Some(Vlan {
            pos, extra, tags, ..
        }) = vlan
        {
            w.extra("vlan", *pos, extra);
            for t in tags {
                w.extra("tag", *pos, &t.extra);
            }
        }
        if let Some(VirtualPort { pos, extra, .. }) = virtualport {
            w.extra("virtualport", *pos, &extra[0]);
            w.extra("parameters", *pos, &extra[1]);
        }
        if let Some(Bandwidth {
            inbound,
            outbound,
            pos,
            extra,
        }) = bandwidth
        {
            w.extra("bandwidth", *pos, extra);
            w.rate("inbound", inbound);
            w.rate("outbound", outbound);
        }
        w.leaf("port", at, port_isolated);
        w.ips(at, guest_ip);
        for PortForward {
            pos, extra, ranges, ..
        } in port_forwards
        {
            w.extra("portForward", *pos, extra);
            for r in ranges {
                w.extra("range", *pos, &r.extra);
            }
        }
        w.leaf("script", at, script);
        w.leaf("downscript", at, downscript);
        w.leaf("backenddomain", at, backend_domain);
        if let Some(Target { pos, extra, .. }) = target {
            w.extra("target", *pos, extra);
        }
        if let Some(GuestName { extra, .. }) = guest {
            w.extra("guest", at, extra);
        }
        w.leaf("model", at, model);
        if let Some(Driver {
            pos,
            extra,
            host,
            guest,
            ..
        }) = driver
        {
            w.extra("driver", *pos, extra);
            if let Some(h) = host {
                w.extra("host", *pos, &h.extra);
            }
            if let Some(g) = guest {
                w.extra("guest", *pos, &g.extra);
            }
        }
        if let Some(Backend { pos, extra, .. }) = backend {
            w.extra("backend", *pos, extra);
        }
        if let Some(FilterRef {
            pos, extra, params, ..
        }) = filterref
        {
            w.extra("filterref", *pos, extra);
            for p in params {
                w.extra("parameter", p.pos, &p.extra);
            }
        }
        if let Some(Tune { extra, .. }) = tune {
            w.extra("tune", at, extra);
        }
        if let Some(Teaming { pos, extra, .. }) = teaming {
            w.extra("teaming", *pos, extra);
        }
        w.leaf("link", at, link);
        w.leaf("mtu", at, mtu);
        if let Some(Coalesce { pos, extra, .. }) = coalesce {
            w.extra("coalesce", *pos, &extra[0]);
            w.extra("rx", *pos, &extra[1]);
            w.extra("frames", *pos, &extra[2]);
        }
        if let Some(Boot { extra, .. }) = boot {
            w.extra("boot", at, extra);
        }
        w.leaf("alias", at, alias);
        if let Some(Rom { extra, .. }) = rom {
            w.extra("rom", at, extra);
        }
        w.leaf("acpi", at, acpi_index);
        match address {
            Some(DeviceAddress::Pci { extra, .. })
            | Some(DeviceAddress::Usb { extra, .. })
            | Some(DeviceAddress::Drive { extra, .. }) => w.extra("address", at, extra),
            Some(DeviceAddress::Other(_)) | None => {}
        }
        w.0.sort_by_key(|u| u.pos);
        w.0
    }
}
