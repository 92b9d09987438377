//! `virtnet qemu-monitor-command NAME '{"execute": ..., "arguments": {...}}'`: one QMP command
//! for experts; prints QEMU's answer as `{"return": ...}`.

use hyper::Method;
use virtnet_api::QmpResponse;

use crate::client::{encode, Body, Client, ClientError};

/// Runs the command. `command` is a QMP command as JSON, or a bare command name.
pub async fn run(
    client: &Client,
    name: &str,
    command: &str,
    pretty: bool,
) -> Result<(), ClientError> {
    let body: serde_json::Value = if command.trim_start().starts_with('{') {
        serde_json::from_str(command).map_err(|e| ClientError {
            kind: "input".into(),
            message: format!("the command is not valid JSON: {e}"),
        })?
    } else {
        serde_json::json!({ "execute": command.trim() })
    };
    let r: QmpResponse = client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/qmp", encode(name)),
            Body::Json(&body),
        )
        .await?;
    let out = if pretty {
        serde_json::to_string_pretty(&r)
    } else {
        serde_json::to_string(&r)
    };
    println!("{}", out.unwrap_or_default());
    Ok(())
}
