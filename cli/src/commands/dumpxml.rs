//! `virtnet dumpxml NAME [--inactive]`.

use hyper::Method;
use virtnet_api::XmlResponse;

use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    inactive: bool,
) -> Result<(), ClientError> {
    let q = if inactive { "?inactive=true" } else { "" };
    let r: XmlResponse = client
        .call(
            Method::GET,
            &format!("/v1/domains/{}/xml{q}", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&r);
    } else {
        print!("{}", r.xml);
        if !r.xml.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}
