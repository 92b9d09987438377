//! QMP wire format: encoding commands, decoding the greeting, replies and events.
//!
//! QMP is one JSON object per line in each direction. Replies carry the `id` we sent;
//! events carry `event`, `data` and `timestamp` and no `id`.

use serde_json::{json, Map, Value};

use crate::error::{QemuError, Result};
use crate::version::QemuVersion;

/// What QEMU said about itself when we connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpGreeting {
    /// QEMU's version.
    pub version: QemuVersion,
    /// Distribution package string (e.g. `Debian 1:7.2+dfsg-7+deb12u18+b3`), may be empty.
    pub package: String,
    /// Capabilities QEMU offers (e.g. `oob`); we enable none of them.
    pub capabilities: Vec<String>,
}

/// An asynchronous event from QEMU (e.g. `DEVICE_DELETED`, `SHUTDOWN`, `STOP`).
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// Event name, e.g. `DEVICE_DELETED`.
    pub name: String,
    /// Event data (`{}` when QEMU sent none).
    pub data: Value,
    /// QEMU's timestamp: (seconds, microseconds) since the epoch.
    pub timestamp: Option<(i64, i64)>,
}

/// The answer to one command.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `{"return": ...}`
    Return(Value),
    /// `{"error": {"class": ..., "desc": ...}}`
    Error { class: String, desc: String },
    /// The command's bytes could not be written.
    SendFailed(std::io::Error),
}

/// One decoded line from QEMU.
#[derive(Debug)]
pub(crate) enum Message {
    Reply {
        id: u64,
        outcome: Outcome,
    },
    Event(QmpEvent),
    /// A reply without a numeric id (we always send one, so this is a reply to
    /// something QEMU could not parse) or an unknown object.
    Other,
}

/// Encodes `{"execute": command, "arguments": args, "id": id}` plus the line end.
/// `Value::Null` (or `{}`) means no arguments.
pub(crate) fn encode_command(command: &str, args: &Value, id: u64) -> Result<Vec<u8>> {
    let mut msg = Map::new();
    msg.insert("execute".into(), json!(command));
    match args {
        Value::Null => {}
        Value::Object(o) if o.is_empty() => {}
        Value::Object(_) => {
            msg.insert("arguments".into(), args.clone());
        }
        other => {
            return Err(QemuError::Protocol(format!(
                "arguments of `{command}` must be a JSON object, got {other}"
            )))
        }
    }
    msg.insert("id".into(), json!(id));
    let mut bytes = serde_json::to_vec(&Value::Object(msg))
        .map_err(|e| QemuError::Protocol(format!("cannot encode `{command}`: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Decodes the greeting line `{"QMP": {"version": {"qemu": {...}, "package": ...}, "capabilities": [...]}}`.
pub(crate) fn parse_greeting(line: &[u8]) -> Result<QmpGreeting> {
    let bad = |why: &str| {
        QemuError::Protocol(format!(
            "bad QMP greeting ({why}): {}",
            String::from_utf8_lossy(line).trim()
        ))
    };
    let v: Value = serde_json::from_slice(line).map_err(|_| bad("not JSON"))?;
    let qmp = v.get("QMP").ok_or_else(|| bad("no \"QMP\" member"))?;
    let version = version_from_value(&qmp["version"]).ok_or_else(|| bad("no version"))?;
    let package = qmp["version"]["package"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string();
    let capabilities = qmp["capabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(QmpGreeting {
        version,
        package,
        capabilities,
    })
}

/// Reads `{"qemu": {"major": .., "minor": .., "micro": ..}}` as found in the greeting and in
/// `query-version`'s return value.
pub(crate) fn version_from_value(v: &Value) -> Option<QemuVersion> {
    let q = v.get("qemu")?;
    let n = |k: &str| q.get(k)?.as_u64().and_then(|x| u32::try_from(x).ok());
    Some(QemuVersion::new(n("major")?, n("minor")?, n("micro")?))
}

/// Decodes one line from QEMU.
pub(crate) fn parse_message(line: &[u8]) -> Result<Message> {
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        QemuError::Protocol(format!(
            "QEMU sent invalid JSON ({e}): {}",
            String::from_utf8_lossy(line).trim()
        ))
    })?;
    if let Some(name) = v.get("event").and_then(Value::as_str) {
        let ts = &v["timestamp"];
        let timestamp = match (ts["seconds"].as_i64(), ts["microseconds"].as_i64()) {
            (Some(s), Some(us)) => Some((s, us)),
            _ => None,
        };
        let data = v.get("data").cloned().unwrap_or_else(|| json!({}));
        return Ok(Message::Event(QmpEvent {
            name: name.to_string(),
            data,
            timestamp,
        }));
    }
    let Some(id) = v.get("id").and_then(Value::as_u64) else {
        return Ok(Message::Other);
    };
    let outcome = if let Some(ret) = v.get("return") {
        Outcome::Return(ret.clone())
    } else if let Some(err) = v.get("error") {
        Outcome::Error {
            class: err["class"].as_str().unwrap_or("UnknownClass").to_string(),
            desc: err["desc"].as_str().unwrap_or("").to_string(),
        }
    } else {
        return Ok(Message::Other);
    };
    Ok(Message::Reply { id, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_and_without_arguments() {
        let b = encode_command("query-status", &Value::Null, 7).unwrap();
        assert_eq!(b, b"{\"execute\":\"query-status\",\"id\":7}\n");
        let b = encode_command("getfd", &json!({"fdname": "x"}), 1).unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["arguments"]["fdname"], "x");
        assert!(encode_command("x", &json!([1]), 1).is_err());
    }

    #[test]
    fn parses_greeting() {
        let g = parse_greeting(br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}"#).unwrap();
        assert_eq!(g.version, QemuVersion::new(7, 2, 22));
        assert_eq!(g.package, "Debian 1:7.2");
        assert_eq!(g.capabilities, vec!["oob".to_string()]);
        assert!(parse_greeting(b"{\"return\": {}}").is_err());
    }

    #[test]
    fn parses_replies_and_events() {
        match parse_message(br#"{"return": {"a": 1}, "id": 3}"#).unwrap() {
            Message::Reply {
                id: 3,
                outcome: Outcome::Return(v),
            } => assert_eq!(v["a"], 1),
            m => panic!("{m:?}"),
        }
        match parse_message(br#"{"error": {"class": "GenericError", "desc": "no"}, "id": 4}"#)
            .unwrap()
        {
            Message::Reply {
                id: 4,
                outcome: Outcome::Error { class, desc },
            } => assert_eq!((class.as_str(), desc.as_str()), ("GenericError", "no")),
            m => panic!("{m:?}"),
        }
        match parse_message(br#"{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "STOP"}"#)
            .unwrap()
        {
            Message::Event(e) => {
                assert_eq!(e.name, "STOP");
                assert_eq!(e.timestamp, Some((5, 6)));
                assert_eq!(e.data, json!({}));
            }
            m => panic!("{m:?}"),
        }
        assert!(matches!(
            parse_message(br#"{"error": {"class": "GenericError", "desc": "bad json"}}"#).unwrap(),
            Message::Other
        ));
        assert!(parse_message(b"{nope").is_err());
    }
}
