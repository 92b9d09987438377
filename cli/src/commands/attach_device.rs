//! `virtnet attach-device NAME FILE [--live] [--config] [--persistent]`.

use hyper::Method;
use virtnet_api::AttachResponse;

use super::device_scope::{applied, DeviceScope};
use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};
use crate::input::read_input;

/// Reads a device XML file (`-`: standard input) as a client error when it cannot be read.
pub fn read_device(file: &str) -> Result<String, ClientError> {
    Ok(read_input(file)?.text)
}

/// Sends an attach request with the device XML `xml`.
pub async fn attach(
    client: &Client,
    name: &str,
    xml: &str,
    scope: DeviceScope,
) -> Result<AttachResponse, ClientError> {
    let mut body = serde_json::json!({ "xml": xml });
    scope.add_to(&mut body);
    client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/devices", encode(name)),
            Body::Json(&body),
        )
        .await
}

/// Prints the answer of an attach, as virsh does (`what` is `Device` or `Interface`).
pub fn report(r: &AttachResponse, json: bool, what: &str) {
    if json {
        print_json(r);
        return;
    }
    println!("{}", message(r, what));
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
}

/// The line an attach prints: `Device attached successfully (type network, network sw0, MAC
/// 52:54:00:..., alias net1; live and config)`.
fn message(r: &AttachResponse, what: &str) -> String {
    let i = &r.interface;
    let mut parts = vec![format!("type {}", i.type_)];
    if i.type_ == "network" {
        parts.extend(i.source.as_ref().map(|n| format!("network {n}")));
    }
    parts.extend(i.mac.as_ref().map(|m| format!("MAC {m}")));
    parts.extend(i.alias.as_ref().map(|a| format!("alias {a}")));
    parts.extend(i.interface.as_ref().map(|t| format!("host device {t}")));
    format!(
        "{what} attached successfully ({}; {})",
        parts.join(", "),
        applied(r.live, r.config)
    )
}

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    file: &str,
    scope: DeviceScope,
) -> Result<(), ClientError> {
    let input = read_input(file)?;
    let r = attach(client, name, &input.text, scope)
        .await
        .map_err(|e| e.in_file(&input.name))?;
    report(&r, json, "Device");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_api::InterfaceRow;

    #[test]
    fn a_network_nic_is_announced_with_its_network() {
        let r = AttachResponse {
            name: "vm1".into(),
            interface: InterfaceRow {
                interface: None,
                type_: "network".into(),
                source: Some("sw0".into()),
                model: Some("virtio".into()),
                mac: Some("52:54:00:00:00:01".into()),
                alias: Some("net1".into()),
                link: "up".into(),
                removal_pending: false,
                filter: None,
            },
            live: true,
            config: false,
            warnings: vec![],
        };
        let m = message(&r, "Interface");
        assert!(
            m.starts_with(
                "Interface attached successfully (type network, network sw0, MAC \
                 52:54:00:00:00:01, alias net1; "
            ),
            "{m}"
        );
    }
}
