//! `virDomainInterfaceStats` and `virDomainInterfaceAddresses`: the same operations as the
//! HTTP API's `domifstat` and `domifaddr` ([`crate::ops::ifstats`]).

use virtnet_api::domains::{AddrSource, InterfaceAddresses, InterfaceStats};
use virtnet_rpc::remote::{
    DomainInterface, DomainInterfaceAddressesArgs, DomainInterfaceAddressesRet,
    DomainInterfaceStatsArgs, DomainInterfaceStatsRet, DomainIpAddr, IP_ADDR_TYPE_IPV4,
    IP_ADDR_TYPE_IPV6,
};
use virtnet_rpc::{ErrorCode, Procedure};

use super::dispatch::{decode, ok, Reply};
use super::errors::{check_flags, remote_error, Refusal};
use crate::daemon::Daemon;

/// The procedures of this file.
pub(super) fn serves(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::DomainInterfaceStats | Procedure::DomainInterfaceAddresses
    )
}

/// Runs `p` (one of [`serves`]).
pub(super) async fn call(daemon: &Daemon, p: Procedure, args: &[u8]) -> Reply {
    if p == Procedure::DomainInterfaceStats {
        let a: DomainInterfaceStatsArgs = decode(p, args)?;
        let s = daemon
            .interface_stats(&a.dom.name, &a.device)
            .await
            .map_err(|e| remote_error(&e))?;
        return ok(&stats_ret(&s));
    }
    let a: DomainInterfaceAddressesArgs = decode(p, args)?;
    check_flags(a.flags, 0, "virDomainInterfaceAddresses")?;
    let source = match a.source {
        0 => AddrSource::Lease,
        1 => AddrSource::Agent,
        2 => AddrSource::Arp,
        n => {
            return Err(Refusal::new(
                ErrorCode::InvalidArg,
                format!("Unknown IP address data source {n}"),
            ))
        }
    };
    let r = daemon
        .interface_addresses(&a.dom.name, None, source)
        .await
        .map_err(|e| remote_error(&e))?;
    ok(&addresses_ret(&r))
}

/// libvirt's counters: -1 for one the source does not keep.
fn stats_ret(s: &InterfaceStats) -> DomainInterfaceStatsRet {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let opt = |v: Option<u64>| v.map_or(-1, n);
    DomainInterfaceStatsRet {
        rx_bytes: n(s.rx_bytes),
        rx_packets: n(s.rx_packets),
        rx_errs: opt(s.rx_errs),
        rx_drop: n(s.rx_drop),
        tx_bytes: n(s.tx_bytes),
        tx_packets: n(s.tx_packets),
        tx_errs: opt(s.tx_errs),
        tx_drop: n(s.tx_drop),
    }
}

/// As libvirt's ARP source: only the NICs an address was found for.
fn addresses_ret(r: &InterfaceAddresses) -> DomainInterfaceAddressesRet {
    DomainInterfaceAddressesRet {
        ifaces: r
            .interfaces
            .iter()
            .filter(|i| !i.addresses.is_empty())
            .map(|i| DomainInterface {
                name: i.interface.clone(),
                hwaddr: Some(i.mac.clone()),
                addrs: i
                    .addresses
                    .iter()
                    .map(|a| DomainIpAddr {
                        type_: if a.protocol == "ipv6" {
                            IP_ADDR_TYPE_IPV6
                        } else {
                            IP_ADDR_TYPE_IPV4
                        },
                        addr: a.address.clone(),
                        prefix: a.prefix,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_api::domains::{InterfaceAddress, IpAddress};

    /// The switch keeps no error counts: libvirt's "not supported" -1, which virsh omits.
    #[test]
    fn counters_not_kept_are_minus_one() {
        let s = InterfaceStats {
            name: "v".into(),
            interface: "vnet0".into(),
            source: "switch port v-525400000001".into(),
            rx_bytes: 10,
            rx_packets: 1,
            rx_errs: None,
            rx_drop: 0,
            tx_bytes: 20,
            tx_packets: 2,
            tx_errs: Some(3),
            tx_drop: 0,
        };
        let r = stats_ret(&s);
        assert_eq!((r.rx_errs, r.tx_errs, r.tx_packets), (-1, 3, 2));
    }

    /// NICs without an address are left out, as libvirt's ARP source does.
    #[test]
    fn only_nics_with_addresses() {
        let nic = |n: &str, a: Vec<IpAddress>| InterfaceAddress {
            interface: n.into(),
            mac: "52:54:00:00:00:01".into(),
            addresses: a,
            note: None,
        };
        let r = InterfaceAddresses {
            name: "v".into(),
            interfaces: vec![
                nic("vnet0", Vec::new()),
                nic(
                    "vnet1",
                    vec![IpAddress {
                        protocol: "ipv4".into(),
                        address: "10.0.0.2".into(),
                        prefix: 0,
                    }],
                ),
            ],
        };
        let ret = addresses_ret(&r);
        assert_eq!(ret.ifaces.len(), 1);
        assert_eq!(ret.ifaces[0].name, "vnet1");
        assert_eq!(ret.ifaces[0].addrs[0].type_, IP_ADDR_TYPE_IPV4);
    }
}
