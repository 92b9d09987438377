//! `virtnet start NAME`: start a defined VM.

use hyper::Method;
use virtnet_api::DomainInfo;

use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// Runs the command.
pub async fn run(client: &Client, json: bool, name: &str) -> Result<(), ClientError> {
    let r: DomainInfo = client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/start", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&r);
    } else {
        println!("Domain '{}' started", r.name);
    }
    Ok(())
}
