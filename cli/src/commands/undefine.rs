//! `virtnet undefine NAME`: remove a VM's persistent definition.

use hyper::Method;
use virtnet_api::UndefineResponse;

use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// Runs the command.
pub async fn run(client: &Client, json: bool, name: &str) -> Result<(), ClientError> {
    let r: UndefineResponse = client
        .call(
            Method::DELETE,
            &format!("/v1/domains/{}", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&r);
    } else {
        println!("Domain '{}' has been undefined", r.name);
    }
    Ok(())
}
