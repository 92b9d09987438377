//! `virtnet detach-interface NAME --type TYPE [--mac MAC] [--live] [--config] [--persistent]`:
//! virsh's short form; the MAC is needed when several interfaces have the type.

use super::attach_interface::IfaceType;
use super::detach_device::{detach, report};
use super::device_scope::DeviceScope;
use crate::client::{Client, ClientError};

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    type_: IfaceType,
    mac: Option<&str>,
    scope: DeviceScope,
    timeout: Option<u64>,
) -> Result<(), ClientError> {
    let ty = format!("{type_:?}").to_lowercase();
    let mut body = serde_json::json!({ "type": ty });
    if let Some(m) = mac {
        body["mac"] = m.into();
    }
    let r = detach(client, name, body, scope, timeout).await?;
    report(&r, json, "Interface");
    Ok(())
}
