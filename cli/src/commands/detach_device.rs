//! `virtnet detach-device NAME FILE [--live] [--config] [--persistent] [--timeout SECONDS]`.

use hyper::Method;
use serde_json::Value;
use virtnet_api::DetachResponse;

use super::attach_device::read_device;
use super::device_scope::{applied, DeviceScope};
use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// Sends a detach request (`body` holds `xml`, or `type` and `mac`).
pub async fn detach(
    client: &Client,
    name: &str,
    mut body: Value,
    scope: DeviceScope,
    timeout: Option<u64>,
) -> Result<DetachResponse, ClientError> {
    scope.add_to(&mut body);
    if let Some(t) = timeout {
        body["timeout_secs"] = t.into();
    }
    client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/devices/detach", encode(name)),
            Body::Json(&body),
        )
        .await
}

/// Prints the answer of a detach (`what` is `Device` or `Interface`). A removal the guest has
/// not completed yet is not an error: the daemon finishes it when the guest releases the device.
pub fn report(r: &DetachResponse, json: bool, what: &str) {
    if json {
        print_json(r);
    } else if r.pending {
        println!("{what} detach request sent: {}", r.message);
    } else {
        println!(
            "{what} detached successfully ({}{})",
            r.mac
                .as_deref()
                .map_or(String::new(), |m| format!("MAC {m}; ")),
            applied(r.live, r.config)
        );
    }
}

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    file: &str,
    scope: DeviceScope,
    timeout: Option<u64>,
) -> Result<(), ClientError> {
    let xml = read_device(file)?;
    let r = detach(
        client,
        name,
        serde_json::json!({ "xml": xml }),
        scope,
        timeout,
    )
    .await?;
    report(&r, json, "Device");
    Ok(())
}
