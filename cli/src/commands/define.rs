//! `virtnet define FILE`: store a VM's persistent definition in virtnetd.

use hyper::Method;
use virtnetd::model::DefineResponse;

use super::remote::print_json;
use crate::client::{Body, Client, ClientError};
use crate::input::read_input;

/// Runs the command.
pub async fn run(client: &Client, json: bool, file: &str) -> Result<(), ClientError> {
    let input = read_input(file).map_err(|e| ClientError {
        kind: "input".into(),
        message: e.to_string(),
    })?;
    let r: DefineResponse = client
        .call(Method::POST, "/v1/domains", Body::Xml(&input.text))
        .await
        .map_err(|e| ClientError {
            message: format!("{}: {}", input.name, e.message),
            kind: e.kind,
        })?;
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
