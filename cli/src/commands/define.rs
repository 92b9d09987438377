//! `virtnet define FILE`: store a VM's persistent definition in virtnetd.

use hyper::Method;
use serde::de::DeserializeOwned;
use virtnet_api::DefineResponse;

use super::remote::print_json;
use crate::client::{Body, Client, ClientError};
use crate::input::{read_input, Input};

/// Reads the XML in `file` (`-`: standard input) and POSTs it to `path`; a refusal names the
/// file. Returns the answer and the input (for its name).
pub async fn post_definition<R: DeserializeOwned>(
    client: &Client,
    path: &str,
    file: &str,
) -> Result<(R, Input), ClientError> {
    let input = read_input(file)?;
    let r = client
        .call(Method::POST, path, Body::Xml(&input.text))
        .await
        .map_err(|e| e.in_file(&input.name))?;
    Ok((r, input))
}

/// Runs the command.
pub async fn run(client: &Client, json: bool, file: &str) -> Result<(), ClientError> {
    let (r, input): (DefineResponse, _) = post_definition(client, "/v1/domains", file).await?;
    if json {
        print_json(&r);
    } else {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        let verb = if r.created { "defined" } else { "redefined" };
        println!("Domain '{}' {verb} from {}", r.name, input.name);
    }
    Ok(())
}
