//! `virtnet domifstat NAME IFACE` and `virtnet domifaddr NAME [IFACE] [--source arp]`.

use hyper::Method;
use virtnet_api::{InterfaceAddresses, InterfaceStats};

use super::remote::{print_json, print_table};
use crate::client::{encode, Body, Client, ClientError};

/// Runs `domifstat`: virsh's lines (`DEV rx_bytes N`), a counter the source does not keep
/// left out as virsh does.
pub async fn stats(
    client: &Client,
    json: bool,
    name: &str,
    iface: &str,
) -> Result<(), ClientError> {
    let s: InterfaceStats = client
        .call(
            Method::GET,
            &format!(
                "/v1/domains/{}/interfaces/{}/stats",
                encode(name),
                encode(iface)
            ),
            Body::None,
        )
        .await?;
    if json {
        print_json(&s);
        return Ok(());
    }
    print!("{}", stat_lines(&s));
    Ok(())
}

/// The lines `virsh domifstat` prints for `s`.
fn stat_lines(s: &InterfaceStats) -> String {
    let rows = [
        ("rx_bytes", Some(s.rx_bytes)),
        ("rx_packets", Some(s.rx_packets)),
        ("rx_errs", s.rx_errs),
        ("rx_drop", Some(s.rx_drop)),
        ("tx_bytes", Some(s.tx_bytes)),
        ("tx_packets", Some(s.tx_packets)),
        ("tx_errs", s.tx_errs),
        ("tx_drop", Some(s.tx_drop)),
    ];
    rows.iter()
        .filter_map(|(k, v)| v.map(|v| format!("{} {k} {v}\n", s.interface)))
        .collect()
}

/// Runs `domifaddr`: virsh's table (Name, MAC address, Protocol, Address); a NIC without a
/// known address gets one row saying why.
pub async fn addresses(
    client: &Client,
    json: bool,
    name: &str,
    iface: Option<&str>,
    source: &str,
) -> Result<(), ClientError> {
    let mut q = format!("?source={}", encode(source));
    if let Some(i) = iface {
        q.push_str(&format!("&interface={}", encode(i)));
    }
    let r: InterfaceAddresses = client
        .call(
            Method::GET,
            &format!("/v1/domains/{}/addresses{q}", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&r);
        return Ok(());
    }
    print_table(
        &["Name", "MAC address", "Protocol", "Address"],
        &address_rows(&r),
    );
    Ok(())
}

fn address_rows(r: &InterfaceAddresses) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for i in &r.interfaces {
        if i.addresses.is_empty() {
            rows.push(vec![
                i.interface.clone(),
                i.mac.clone(),
                "-".into(),
                i.note.clone().unwrap_or_else(|| "none known".into()),
            ]);
        }
        for a in &i.addresses {
            rows.push(vec![
                i.interface.clone(),
                i.mac.clone(),
                a.protocol.clone(),
                format!("{}/{}", a.address, a.prefix),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virsh_lines_without_unkept_counters() {
        let s = InterfaceStats {
            name: "v".into(),
            interface: "vnet0".into(),
            source: "switch port v-1".into(),
            rx_bytes: 1,
            rx_packets: 2,
            rx_errs: None,
            rx_drop: 3,
            tx_bytes: 4,
            tx_packets: 5,
            tx_errs: None,
            tx_drop: 6,
        };
        assert_eq!(
            stat_lines(&s),
            "vnet0 rx_bytes 1\nvnet0 rx_packets 2\nvnet0 rx_drop 3\nvnet0 tx_bytes 4\n\
             vnet0 tx_packets 5\nvnet0 tx_drop 6\n"
        );
    }
}
