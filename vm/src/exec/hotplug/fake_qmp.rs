//! A scripted QMP server on one end of a socketpair, for executor tests without QEMU: it
//! records every command (and whether an fd came with it) and answers as the script says.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use virtnet_qemu::{QmpClient, QmpOptions};

/// The answer to one command.
pub(crate) enum Reply {
    /// `{"return": value}`, then these events.
    Ok(Value, Vec<Value>),
    /// `{"error": {"class", "desc"}}`.
    Err(&'static str, String),
    /// Nothing at all: a stalled monitor.
    Silent,
}

impl Reply {
    /// `{"return": {}}`.
    pub(crate) fn ok() -> Reply {
        Reply::Ok(json!({}), Vec::new())
    }

    /// `DEVICE_DELETED` of `id`, as QEMU sends it.
    pub(crate) fn deleted(id: &str) -> Value {
        json!({"event": "DEVICE_DELETED", "data": {"device": id, "path": format!("/machine/peripheral/{id}")},
               "timestamp": {"seconds": 1, "microseconds": 0}})
    }
}

/// What the server saw: `(command, arguments)`, in order.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<(String, Value)>>>);

impl Log {
    /// The commands, as `execute` names (without `qmp_capabilities`).
    pub(crate) fn commands(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .filter(|c| c != "qmp_capabilities")
            .collect()
    }

    /// Every `(command, arguments)`.
    pub(crate) fn all(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().clone()
    }
}

type Script = Box<dyn FnMut(&str, &Value) -> Reply + Send>;

/// Starts the server on the current runtime and returns a connected client and its log.
pub(crate) async fn start(
    script: impl FnMut(&str, &Value) -> Reply + Send + 'static,
) -> (QmpClient, Log) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let log = Log::default();
    let seen = log.clone();
    let mut script: Script = Box::new(script);
    tokio::spawn(async move {
        let (r, mut w) = theirs.into_split();
        let greeting = json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 22},
            "package": ""}, "capabilities": []}});
        let _ = w.write_all(format!("{greeting}\r\n").as_bytes()).await;
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let cmd = msg["execute"].as_str().unwrap_or_default().to_string();
            let args = msg.get("arguments").cloned().unwrap_or(Value::Null);
            seen.0.lock().unwrap().push((cmd.clone(), args.clone()));
            let reply = if cmd == "qmp_capabilities" {
                Reply::ok()
            } else {
                script(&cmd, &args)
            };
            let id = msg["id"].clone();
            let (out, events) = match reply {
                Reply::Ok(v, ev) => (Some(json!({"return": v, "id": id})), ev),
                Reply::Err(class, desc) => (
                    Some(json!({"error": {"class": class, "desc": desc}, "id": id})),
                    Vec::new(),
                ),
                Reply::Silent => (None, Vec::new()),
            };
            for m in out.into_iter().chain(events) {
                if w.write_all(format!("{m}\r\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    });
    let client = QmpClient::from_stream(ours, QmpOptions::default())
        .await
        .expect("fake QMP handshake");
    (client, log)
}
