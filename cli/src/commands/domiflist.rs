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
    Ok(())
}
