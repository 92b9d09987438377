//! `domifstat` and `domifaddr`: a running VM's NIC counters seen from the guest, and its
//! addresses as the host sees them (`--source arp`). One rule for the counters, used by the
//! HTTP API, the libvirt socket and `/metrics`.
//!
//! Counters: a tap's own counters are the host's view (its `rx` is what the guest sent), so
//! they are swapped, as libvirt's `virNetDevTapInterfaceStats` does; a macvtap's are already
//! the guest's; a NIC on a switch network reads its switch port's counters (the switch's
//! `rx` is what the guest sent, swapped too).

use virtnet_api::{InterfaceRow, VmState};
use virtnet_conf::interface::InterfaceKind;
use virtnet_host::LinkCounters;
use virtnet_vswitch_control::{CounterSnapshot, DropReason};

use super::find_interface;
use super::query::interface_row;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::model::{AddrSource, InterfaceAddress, InterfaceAddresses, InterfaceStats, IpAddress};
use crate::networks::health::{PortReport, SwitchReport};

/// Drop reasons counted on the port a frame went to: the guest did not receive it.
const RX_REASONS: [DropReason; 5] = [
    DropReason::RxNoBuffer,
    DropReason::RxBufferTooSmall,
    DropReason::OffloadUnsupported,
    DropReason::QueueNotReady,
    DropReason::L2NotAllowedIn,
];

/// A NIC's counters, the guest's view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NicCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_drops: u64,
    pub rx_errors: Option<u64>,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_drops: u64,
    pub tx_errors: Option<u64>,
}

impl NicCounters {
    /// A tap's (`swapped`: its rx is the guest's tx) or a macvtap's counters.
    pub fn from_link(c: &LinkCounters, swapped: bool) -> Self {
        let (rx_packets, rx_bytes, rx_drops, rx_errors, tx_packets, tx_bytes, tx_drops, tx_errors) =
            if swapped {
                (
                    c.tx_packets,
                    c.tx_bytes,
                    c.tx_dropped,
                    c.tx_errors,
                    c.rx_packets,
                    c.rx_bytes,
                    c.rx_dropped,
                    c.rx_errors,
                )
            } else {
                (
                    c.rx_packets,
                    c.rx_bytes,
                    c.rx_dropped,
                    c.rx_errors,
                    c.tx_packets,
                    c.tx_bytes,
                    c.tx_dropped,
                    c.tx_errors,
                )
            };
        NicCounters {
            rx_packets,
            rx_bytes,
            rx_drops,
            rx_errors: Some(rx_errors),
            tx_packets,
            tx_bytes,
            tx_drops,
            tx_errors: Some(tx_errors),
        }
    }

    /// A switch port's counters (the switch's rx is what the guest sent). Drops for want of
    /// room or readiness at the guest, or refused by its port filter on the way in, are rx
    /// drops; the rest (malformed or filtered frames from the guest) are tx drops. The switch
    /// keeps no separate error counts.
    pub fn from_port(c: &CounterSnapshot) -> Self {
        let rx_drops: u64 = RX_REASONS.iter().map(|r| c.drop_count(*r)).sum();
        NicCounters {
            rx_packets: c.tx_packets,
            rx_bytes: c.tx_bytes,
            rx_drops,
            rx_errors: None,
            tx_packets: c.rx_packets,
            tx_bytes: c.rx_bytes,
            tx_drops: c.total_drops().saturating_sub(rx_drops),
            tx_errors: None,
        }
    }
}

/// The switch port of `vm`'s NIC with `mac`, among the running switches' ports.
pub(crate) fn port_of<'a>(
    switches: &'a [SwitchReport],
    vm: &str,
    mac: Option<&str>,
) -> Option<&'a PortReport> {
    let suffix = format!("-{}", mac?.replace(':', ""));
    switches
        .iter()
        .flat_map(|s| &s.ports)
        .find(|p| p.vm.as_deref() == Some(vm) && p.port.ends_with(&suffix))
}

/// Why a NIC of type `type_` has no counters virtnet can read; `None` for the types it has.
pub(crate) fn no_counters_why(kind: &InterfaceKind) -> Option<&'static str> {
    match kind {
        InterfaceKind::Bridge { .. }
        | InterfaceKind::Network { .. }
        | InterfaceKind::Ethernet
        | InterfaceKind::Direct { .. } => None,
        InterfaceKind::VhostUser { .. } => Some(
            "its frames go through a vhost-user backend that virtnet does not run (no host \
             device, no counters); put it on a switch network (type='network') for counters",
        ),
        InterfaceKind::Hostdev { .. } => Some(
            "the guest owns the device (PCI passthrough): its traffic never crosses a host \
             device; read the counters inside the guest",
        ),
        InterfaceKind::Vdpa { .. } => {
            Some("a vDPA device's traffic goes through the hardware, not a host network device")
        }
        InterfaceKind::User => Some(
            "QEMU's user-mode network stack has no host device to count on; use a bridge, \
             tap or switch network NIC for counters",
        ),
        InterfaceKind::Server(_)
        | InterfaceKind::Client(_)
        | InterfaceKind::Mcast(_)
        | InterfaceKind::Udp { .. } => Some(
            "QEMU's socket backend sends the frames over a socket, with no host device to \
             count on; use a bridge, tap or switch network NIC for counters",
        ),
    }
}

impl Daemon {
    /// The counters of one live NIC: its switch port's (a NIC on a switch network, found by
    /// VM and MAC), else its tap's or macvtap's; `None` for a NIC without either.
    pub(crate) fn nic_counters(
        &self,
        vm: &str,
        row: &InterfaceRow,
        switches: &[SwitchReport],
    ) -> Option<NicCounters> {
        if let Some(p) = port_of(switches, vm, row.mac.as_deref()) {
            return Some(NicCounters::from_port(&p.counters));
        }
        let dev = row.interface.as_deref()?;
        let link = self.host().ok()?.link(dev).ok()??;
        let stats = link.stats?;
        let macvtap = link.kind.as_deref() == Some("macvtap");
        Some(NicCounters::from_link(&stats, !macvtap))
    }

    /// `domifstat NAME IFACE`: the counters of the running VM's NIC that `key` names (its
    /// host device name, MAC or alias).
    pub async fn interface_stats(&self, name: &str, key: &str) -> Result<InterfaceStats> {
        let (domain, index) = self.live_nic(name, key)?;
        let iface = &domain.devices.interfaces[index];
        let what = || format!("interface statistics of '{key}' of VM '{name}'");
        if let Some(why) = no_counters_why(&iface.kind) {
            return Err(DaemonError::NotAvailable {
                what: format!("{} (type='{}')", what(), iface.type_()),
                why: why.into(),
            });
        }
        let row = interface_row(iface, false);
        let switches = if matches!(iface.kind, InterfaceKind::Network { .. }) {
            self.networks.reports().await
        } else {
            Vec::new()
        };
        let (counters, source) = if let Some(p) = port_of(&switches, name, row.mac.as_deref()) {
            (
                NicCounters::from_port(&p.counters),
                format!("switch port {}", p.port),
            )
        } else {
            let dev = row
                .interface
                .as_deref()
                .ok_or_else(|| DaemonError::NotAvailable {
                    what: what(),
                    why: "the NIC has no host device (its switch did not report its port)".into(),
                })?;
            let link = self.host()?.link(dev).map_err(host_fault)?.ok_or_else(|| {
                DaemonError::NotAvailable {
                    what: what(),
                    why: format!("its host device {dev} is gone"),
                }
            })?;
            let stats = link.stats.ok_or_else(|| DaemonError::NotAvailable {
                what: what(),
                why: format!("the kernel reported no counters for {dev}"),
            })?;
            let macvtap = link.kind.as_deref() == Some("macvtap");
            let kind = if macvtap { "macvtap" } else { "tap" };
            (
                NicCounters::from_link(&stats, !macvtap),
                format!("{kind} {dev}"),
            )
        };
        Ok(InterfaceStats {
            name: name.into(),
            interface: key.into(),
            source,
            rx_bytes: counters.rx_bytes,
            rx_packets: counters.rx_packets,
            rx_errs: counters.rx_errors,
            rx_drop: counters.rx_drops,
            tx_bytes: counters.tx_bytes,
            tx_packets: counters.tx_packets,
            tx_errs: counters.tx_errors,
            tx_drop: counters.tx_drops,
        })
    }

    /// `domifaddr NAME [IFACE] --source arp`: the addresses the host sees for each NIC of the
    /// running VM (or the one `key` names): the neighbour table of virtnetd's namespace for
    /// NICs with a host device, the switch port's learned address for switch NICs.
    pub async fn interface_addresses(
        &self,
        name: &str,
        key: Option<&str>,
        source: AddrSource,
    ) -> Result<InterfaceAddresses> {
        match source {
            AddrSource::Arp => {}
            AddrSource::Lease => {
                return Err(DaemonError::NotAvailable {
                    what: "addresses from DHCP leases".into(),
                    why: "virtnet runs no DHCP server, so it has no leases; use --source arp \
                          (the addresses the host sees)"
                        .into(),
                })
            }
            AddrSource::Agent => {
                return Err(DaemonError::NotAvailable {
                    what: "addresses from the guest agent".into(),
                    why: "virtnet does not talk to a QEMU guest agent; use --source arp \
                          (the addresses the host sees)"
                        .into(),
                })
            }
        }
        let domain = match key {
            Some(k) => {
                let (d, i) = self.live_nic(name, k)?;
                let mut one = d.clone();
                one.devices.interfaces = vec![d.devices.interfaces[i].clone()];
                one
            }
            None => self.live_nic_domain(name)?,
        };
        let switches = self.networks.reports().await;
        let neighbours = self.host()?.ipv4_neighbours().map_err(host_fault)?;
        let interfaces = domain
            .devices
            .interfaces
            .iter()
            .map(|iface| {
                let row = interface_row(iface, false);
                let mac = row.mac.clone().unwrap_or_default();
                let label = row
                    .interface
                    .clone()
                    .or(row.alias.clone())
                    .unwrap_or_else(|| "-".into());
                let (ips, note) = if let Some(p) = port_of(&switches, name, row.mac.as_deref()) {
                    match p.learned_ip {
                        Some(ip) => (vec![ip], None),
                        None => (
                            Vec::new(),
                            Some(
                                "none known: the switch learns a port's address only when \
                                 the NIC has a filter (<filterref>)"
                                    .to_string(),
                            ),
                        ),
                    }
                } else if no_counters_why(&iface.kind).is_some() {
                    (
                        Vec::new(),
                        Some(format!(
                            "none known: a type='{}' NIC has no host device the host sees \
                             its traffic on",
                            iface.type_()
                        )),
                    )
                } else {
                    let ips: Vec<_> = neighbours
                        .iter()
                        .filter(|n| Some(n.mac.to_string()) == row.mac)
                        .map(|n| n.ip)
                        .collect();
                    let note = ips.is_empty().then(|| {
                        "none known: no entry with this MAC in the host's neighbour table yet \
                         (the guest has not talked to the host)"
                            .to_string()
                    });
                    (ips, note)
                };
                InterfaceAddress {
                    interface: label,
                    mac,
                    addresses: ips
                        .into_iter()
                        .map(|ip| IpAddress {
                            protocol: "ipv4".into(),
                            address: ip.to_string(),
                            prefix: 0,
                        })
                        .collect(),
                    note,
                }
            })
            .collect();
        Ok(InterfaceAddresses {
            name: name.into(),
            interfaces,
        })
    }

    /// The running VM's domain as users see it (switch NICs as type='network').
    fn live_nic_domain(&self, name: &str) -> Result<virtnet_conf::Domain> {
        let v = self.view_of(name)?;
        match (&v.live, v.state) {
            (Some(live), VmState::Running) => Ok(self.networks.domain_as_defined(name, live)),
            _ => Err(DaemonError::InvalidState {
                name: name.into(),
                state: "not running".into(),
                hint: "interface statistics and addresses are those of a running VM: start it \
                       first"
                    .into(),
            }),
        }
    }

    /// The running VM's domain as users see it and the index of the NIC `key` names.
    fn live_nic(&self, name: &str, key: &str) -> Result<(virtnet_conf::Domain, usize)> {
        let domain = self.live_nic_domain(name)?;
        let index = find_interface(name, &domain, key)?;
        Ok((domain, index))
    }
}

/// A netlink read that failed: the host's fault, not the user's.
fn host_fault(e: virtnet_host::HostError) -> DaemonError {
    DaemonError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tap's counters are the host's view: what it received is what the guest sent.
    #[test]
    fn tap_counters_are_swapped_macvtap_not() {
        let c = LinkCounters {
            rx_packets: 1,
            rx_bytes: 2,
            rx_dropped: 3,
            rx_errors: 4,
            tx_packets: 5,
            tx_bytes: 6,
            tx_dropped: 7,
            tx_errors: 8,
        };
        let tap = NicCounters::from_link(&c, true);
        assert_eq!(
            (tap.tx_packets, tap.tx_bytes, tap.tx_drops, tap.tx_errors),
            (1, 2, 3, Some(4))
        );
        assert_eq!(
            (tap.rx_packets, tap.rx_bytes, tap.rx_drops, tap.rx_errors),
            (5, 6, 7, Some(8))
        );
        let macvtap = NicCounters::from_link(&c, false);
        assert_eq!((macvtap.rx_packets, macvtap.tx_packets), (1, 5));
    }

    /// The port filter's drops: those of frames from the guest are its tx drops, those of
    /// frames refused on the way to it its rx drops.
    #[test]
    fn port_filter_drops_count_as_the_guests_tx_or_rx_drops() {
        let drops = DropReason::ALL
            .iter()
            .map(|r| {
                let n = match r {
                    DropReason::SpoofedMac | DropReason::SpoofedIp | DropReason::SpoofedArp => 1,
                    DropReason::L2NotAllowed => 2,
                    DropReason::L2NotAllowedIn => 7,
                    _ => 0,
                };
                (r.name().to_string(), n)
            })
            .collect();
        let c = CounterSnapshot {
            rx_packets: 10,
            rx_bytes: 1000,
            tx_packets: 20,
            tx_bytes: 2000,
            drops,
            connections: 1,
        };
        let n = NicCounters::from_port(&c);
        assert_eq!((n.tx_drops, n.rx_drops), (5, 7));
        assert_eq!((n.tx_packets, n.rx_packets), (10, 20));
        assert_eq!((n.tx_errors, n.rx_errors), (None, None));
    }

    /// Each NIC type without a host device says why it has no counters; those with one have.
    #[test]
    fn types_without_counters_say_why() {
        let kind = |xml: &str| {
            let d = virtnet_conf::load_domain(&format!(
                "<domain type='qemu'><name>v</name><memory>65536</memory>\
                 <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\
                 <os><type>hvm</type></os><devices>{xml}\
                 </devices></domain>"
            ))
            .unwrap();
            d.devices.interfaces[0].kind.clone()
        };
        let user = kind("<interface type='user'/>");
        assert!(no_counters_why(&user).unwrap().contains("user-mode"));
        let vu = kind(
            "<interface type='vhostuser'><source type='unix' path='/tmp/s' mode='client'/>\
             <model type='virtio'/></interface>",
        );
        assert!(no_counters_why(&vu).unwrap().contains("vhost-user"));
        let mcast =
            kind("<interface type='mcast'><source address='230.0.0.1' port='5558'/></interface>");
        assert!(no_counters_why(&mcast).unwrap().contains("socket"));
        let br = kind("<interface type='bridge'><source bridge='br0'/></interface>");
        assert_eq!(no_counters_why(&br), None);
    }
}
