//! `virtnet update-device NAME FILE [--live] [--config] [--persistent] [--replug]`.

use hyper::Method;
use virtnet_api::UpdateResponse;

use super::attach_device::read_device;
use super::device_scope::{applied, DeviceScope};
use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    file: &str,
    scope: DeviceScope,
    replug: bool,
    timeout: Option<u64>,
) -> Result<(), ClientError> {
    let xml = read_device(file)?;
    let mut body = serde_json::json!({ "xml": xml, "replug": replug });
    scope.add_to(&mut body);
    if let Some(t) = timeout {
        body["timeout_secs"] = t.into();
    }
    let r: UpdateResponse = client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/devices/update", encode(name)),
            Body::Json(&body),
        )
        .await?;
    if json {
        print_json(&r);
    } else if r.changed.is_empty() {
        println!("Device unchanged: it already is as given");
    } else {
        println!(
            "Device updated successfully ({}; {}){}",
            r.changed.join(", "),
            applied(r.live, r.config),
            if r.replugged {
                "; the NIC was unplugged and plugged again: the guest saw its link go down and up"
            } else {
                ""
            }
        );
    }
    Ok(())
}
