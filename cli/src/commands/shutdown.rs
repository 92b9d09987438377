//! `virtnet shutdown NAME` (graceful, with a timeout) and `virtnet destroy NAME` (at once).

use hyper::Method;
use virtnet_api::StopResponse;

use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// Runs `shutdown` (`timeout` given) or `destroy` (`None`).
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    timeout: Option<u64>,
) -> Result<(), ClientError> {
    let (action, body) = match timeout {
        Some(t) => ("shutdown", Some(serde_json::json!({ "timeout_secs": t }))),
        None => ("destroy", None),
    };
    let path = format!("/v1/domains/{}/{action}", encode(name));
    let r: StopResponse = match &body {
        Some(b) => client.call(Method::POST, &path, Body::Json(b)).await?,
        None => client.call(Method::POST, &path, Body::None).await?,
    };
    if json {
        print_json(&r);
        return Ok(());
    }
    for l in &r.leftovers {
        eprintln!("warning: not cleaned up: {l}");
    }
    match (action, r.stopped_by.as_str()) {
        ("destroy", _) => println!("Domain '{}' destroyed", r.name),
        (_, "powerdown") => println!("Domain '{}' shut down", r.name),
        (_, "already_exited") => println!("Domain '{}' had already stopped", r.name),
        (_, how) => println!(
            "Domain '{}' did not power off in time; QEMU was stopped ({how})",
            r.name
        ),
    }
    Ok(())
}
