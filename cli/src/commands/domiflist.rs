//! `virtnet domiflist NAME [--inactive]`.

use hyper::Method;
use virtnet_api::InterfaceList;

use super::remote::{dash, print_json, print_table};
use crate::client::{encode, Body, Client, ClientError};

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    inactive: bool,
) -> Result<(), ClientError> {
    let q = if inactive { "?inactive=true" } else { "" };
    let r: InterfaceList = client
        .call(
            Method::GET,
            &format!("/v1/domains/{}/interfaces{q}", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&r);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .interfaces
        .iter()
        .map(|i| {
            vec![
                dash(i.interface.as_ref()),
                i.type_.clone(),
                dash(i.source.as_ref()),
                dash(i.model.as_ref()),
                dash(i.mac.as_ref()),
                dash(i.alias.as_ref()),
                if i.removal_pending {
                    format!("{} (removal pending)", i.link)
                } else {
                    i.link.clone()
                },
            ]
        })
        .collect();
    print_table(
        &[
            "Interface",
            "Type",
            "Source",
            "Model",
            "MAC",
            "Alias",
            "Link",
        ],
        &rows,
    );
    for i in &r.interfaces {
        if let Some(f) = &i.filter {
            println!("{}", filter_line(i.interface.as_deref().unwrap_or("-"), f));
        }
    }
    Ok(())
}

/// `vnet0: filter clean-traffic (bridge virtnet-filter-vm1-vnet0), dropped: mac_spoofing=3
/// ip_spoofing=0 ..., learned 10.0.2.2`: one line per filtered NIC, below the table.
fn filter_line(ifname: &str, f: &virtnet_api::FilterReport) -> String {
    let mut s = format!("{ifname}: filter {} ({})", f.filter, f.table);
    if !f.loaded {
        s.push_str(", NOT LOADED");
    }
    if let Some(e) = &f.error {
        s.push_str(&format!(", counters unreadable: {e}"));
    }
    if !f.dropped.is_empty() {
        let counts: Vec<String> = f.dropped.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(", dropped: {}", counts.join(" ")));
    }
    if let Some(ip) = &f.learned_ip {
        s.push_str(&format!(", learned {ip}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_line_names_the_table_the_drops_and_the_learnt_address() {
        let f = virtnet_api::FilterReport {
            filter: "clean-traffic".into(),
            table: "bridge virtnet-filter-vm1-vnet0".into(),
            loaded: true,
            dropped: [
                ("ip_spoofing".to_string(), 3),
                ("mac_spoofing".to_string(), 0),
            ]
            .into_iter()
            .collect(),
            learned_ip: Some("10.0.2.2".into()),
            error: None,
        };
        assert_eq!(
            filter_line("vnet0", &f),
            "vnet0: filter clean-traffic (bridge virtnet-filter-vm1-vnet0), dropped: \
             ip_spoofing=3 mac_spoofing=0, learned 10.0.2.2"
        );
    }
}
