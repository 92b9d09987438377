//! Rules across devices: shared memory for vhost-user, and things two devices may not share
//! (socket paths, MACs, tap names, aliases, guest PCI addresses, host devices).

use std::collections::HashMap;
use std::hash::Hash;

use crate::address::{DeviceAddress, PciAddress};
use crate::error::ConfError;
use crate::interface::{Interface, InterfaceKind, TeamingKind};
use crate::xml::Pos;

/// What the cross-device rules need to know about a domain.
#[derive(Debug, Default)]
pub struct Context<'a> {
    /// The interfaces, in input order.
    pub interfaces: &'a [Interface],
    /// Whether guest RAM is shared (memfd/file backing with access mode shared, or
    /// memAccess='shared' on every NUMA cell).
    pub shared_memory: bool,
    /// Every guest PCI address in use, interfaces included: (description, address, position),
    /// as [`crate::Domain::pci_addresses_in_use`] gives them. `None`: only the interfaces'.
    pub pci_in_use: Option<Vec<(String, PciAddress, Pos)>>,
    /// Other vhost-user devices (e.g. `<disk type='vhostuser'>`): (element name, description,
    /// position).
    pub other_vhost_user: Vec<(String, String, Pos)>,
    /// Host PCI devices passed through by `<hostdev>`: (description, host address, position).
    pub other_hostdev_sources: Vec<(String, PciAddress, Pos)>,
    /// Aliases of devices other than interfaces: (description, alias, position).
    pub other_aliases: Vec<(String, String, Pos)>,
}

fn pick(pos: Pos, fallback: Pos) -> Pos {
    if pos.is_known() {
        pos
    } else {
        fallback
    }
}

/// "interface 52:54:00:aa:bb:cc (line 12)".
pub fn who(iface: &Interface) -> String {
    let name = iface.describe();
    if iface.pos.is_known() {
        format!("{name} (line {})", iface.pos.line)
    } else {
        name
    }
}

/// Reports every later occurrence of a key already seen.
fn duplicates<K: Eq + Hash + Clone>(
    items: impl IntoIterator<Item = (K, String, Pos)>,
    mut report: impl FnMut(&K, &str, &str, Pos),
) {
    let mut first: HashMap<K, String> = HashMap::new();
    for (k, who, pos) in items {
        match first.get(&k) {
            Some(earlier) => report(&k, &who, earlier, pos),
            None => {
                first.insert(k, who);
            }
        }
    }
}

const SHARED_MEMORY_FIX: &str = "add <memoryBacking><source type='memfd'/><access \
                                 mode='shared'/></memoryBacking> to the domain (or \
                                 memAccess='shared' on every NUMA cell)";

/// Every cross-device problem, in input order per rule.
pub fn check(ctx: &Context<'_>) -> Vec<ConfError> {
    let mut errs = Vec::new();
    let ifaces = ctx.interfaces;

    // vhost-user needs guest RAM the back end can map.
    if !ctx.shared_memory {
        for i in ifaces {
            if matches!(i.kind, InterfaceKind::VhostUser { .. }) {
                errs.push(ConfError::unsupported(
                    i.pos,
                    format!(
                        "'interface' requires shared memory: {} is vhost-user, whose back end \
                         maps guest RAM; {SHARED_MEMORY_FIX}",
                        who(i)
                    ),
                ));
            }
        }
        for (kind, desc, pos) in &ctx.other_vhost_user {
            errs.push(ConfError::unsupported(
                *pos,
                format!(
                    "'{kind}' requires shared memory: {desc} is vhost-user, whose back end \
                     maps guest RAM; {SHARED_MEMORY_FIX}"
                ),
            ));
        }
    }

    // One vhost-user socket per interface.
    duplicates(
        ifaces.iter().filter_map(|i| match &i.kind {
            InterfaceKind::VhostUser { socket: Some(s) } => {
                Some((s.path.value.clone(), who(i), pick(s.path.pos, i.pos)))
            }
            _ => None,
        }),
        |path, second, first, pos| {
            errs.push(ConfError::conflict(
                pos,
                format!(
                    "{second} uses vhost-user socket '{path}', which {first} uses already: \
                     QEMU accepts this but only one of them can work; give each interface \
                     its own socket path"
                ),
            ))
        },
    );

    // MACs: unique, except the two halves of a failover pair.
    let teaming_pair = |a: &Interface, b: &Interface| {
        let (Some(ta), Some(tb)) = (&a.teaming, &b.teaming) else {
            return false;
        };
        let pairs = |p: &Interface, pt: TeamingKind, t: &Interface| {
            pt == TeamingKind::Persistent
                && t.teaming.as_ref().is_some_and(|tt| {
                    tt.kind == TeamingKind::Transient
                        && tt.persistent.as_ref().map(|s| s.value.as_str()) == p.alias()
                        && p.alias().is_some()
                })
        };
        pairs(a, ta.kind, b) || pairs(b, tb.kind, a)
    };
    for (n, b) in ifaces.iter().enumerate() {
        let Some(mac) = b.mac() else { continue };
        if let Some(a) = ifaces[..n]
            .iter()
            .find(|a| a.mac() == Some(mac) && !teaming_pair(a, b))
        {
            let pos = b
                .mac
                .as_ref()
                .and_then(|m| m.address.as_ref())
                .map_or(b.pos, |s| pick(s.pos, b.pos));
            errs.push(ConfError::conflict(
                pos,
                format!(
                    "{} has MAC address {mac}, which {} has already: every interface needs its \
                     own MAC (remove <mac> to have one generated); only the two halves of a \
                     failover pair (<teaming>) may share one",
                    who(b),
                    who(a)
                ),
            ));
        }
    }

    // Host tap names.
    duplicates(
        ifaces.iter().filter_map(|i| {
            let d = i.target.as_ref()?.dev.as_ref()?;
            Some((d.value.clone(), who(i), pick(d.pos, i.pos)))
        }),
        |dev, second, first, pos| {
            errs.push(ConfError::conflict(
                pos,
                format!(
                    "{second} has target dev '{dev}', which {first} has already: each \
                     interface needs its own host device name (or none, to have one generated)"
                ),
            ))
        },
    );

    // Aliases (they become QEMU device ids).
    duplicates(
        ctx.other_aliases
            .iter()
            .cloned()
            .map(|(d, a, p)| (a, d, p))
            .chain(ifaces.iter().filter_map(|i| {
                let a = i.alias.as_ref()?;
                Some((a.value.clone(), who(i), pick(a.pos, i.pos)))
            })),
        |alias, second, first, pos| {
            errs.push(ConfError::conflict(
                pos,
                format!(
                    "non unique alias detected: {second} has alias '{alias}', which {first} has \
                     already; aliases must be unique in a domain"
                ),
            ))
        },
    );

    // Guest PCI addresses.
    let pci: Vec<(PciAddress, String, Pos)> = match &ctx.pci_in_use {
        Some(all) => all.iter().map(|(d, a, p)| (*a, d.clone(), *p)).collect(),
        None => ifaces
            .iter()
            .filter_map(|i| match &i.address {
                Some(DeviceAddress::Pci { addr, .. }) => Some((*addr, who(i), i.pos)),
                _ => None,
            })
            .collect(),
    };
    duplicates(pci, |addr, second, first, pos| {
        errs.push(ConfError::conflict(
            pos,
            format!(
                "{second} and {first} both use guest PCI address {addr}: give one of them \
                 another <address> or remove it to have one assigned"
            ),
        ))
    });

    // Host devices passed through.
    duplicates(
        ctx.other_hostdev_sources
            .iter()
            .cloned()
            .map(|(d, a, p)| (a, d, p))
            .chain(ifaces.iter().filter_map(|i| {
                let addr = i.hostdev_source()?;
                let pos = match &i.kind {
                    InterfaceKind::Hostdev {
                        source: crate::interface::HostdevSource::Pci { addr, .. },
                        ..
                    } => pick(addr.pos, i.pos),
                    _ => i.pos,
                };
                Some((addr, who(i), pos))
            })),
        |addr, second, first, pos| {
            errs.push(ConfError::conflict(
                pos,
                format!(
                    "{second} passes through host PCI device {addr}, which {first} uses \
                     already: a device can be given to one guest device only"
                ),
            ))
        },
    );

    // A transient failover half must name an existing persistent half.
    for i in ifaces {
        let Some(t) = i
            .teaming
            .as_ref()
            .filter(|t| t.kind == TeamingKind::Transient)
        else {
            continue;
        };
        let Some(p) = &t.persistent else { continue };
        let found = ifaces.iter().any(|o| {
            o.alias() == Some(p.value.as_str())
                && o.teaming
                    .as_ref()
                    .is_some_and(|ot| ot.kind == TeamingKind::Persistent)
        });
        if !found {
            errs.push(ConfError::unsupported(
                pick(p.pos, i.pos),
                format!(
                    "{} is the transient half of a failover pair with persistent='{}', but no \
                     interface has <alias name='{}'/> and <teaming type='persistent'/>",
                    who(i),
                    p.value,
                    p.value
                ),
            ));
        }
    }
    errs
}
