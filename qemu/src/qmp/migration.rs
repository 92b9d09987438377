//! Typed helpers for QMP's migration commands (`migrate`, `migrate-incoming`,
//! `query-migrate`, ...), as virtnet's live migration uses them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::QmpClient;
use crate::error::{QemuError, Result};

/// `query-migrate`'s answer, the fields virtnet reads. Times are in milliseconds as QEMU
/// reports them; absent until QEMU has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationInfo {
    /// `none`, `setup`, `active`, `device`, `completed`, `failed`, `cancelling`,
    /// `cancelled`, `pre-switchover`, ... (`None` before any migration).
    #[serde(default)]
    pub status: Option<String>,
    /// Total time of the migration (ms).
    #[serde(default, rename = "total-time")]
    pub total_time: Option<u64>,
    /// Time the guest was stopped (ms), when completed.
    #[serde(default)]
    pub downtime: Option<u64>,
    /// Setup time (ms).
    #[serde(default, rename = "setup-time")]
    pub setup_time: Option<u64>,
    /// RAM counters.
    #[serde(default)]
    pub ram: Option<MigrationRam>,
    /// Why it failed (`failed`).
    #[serde(default, rename = "error-desc")]
    pub error_desc: Option<String>,
    /// Where an incoming migration listens (destination side, QEMU 4.0+).
    #[serde(default, rename = "socket-address")]
    pub socket_address: Vec<Value>,
}

/// `query-migrate`'s `ram` object (bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRam {
    /// Bytes sent so far.
    #[serde(default)]
    pub transferred: u64,
    /// Guest RAM size.
    #[serde(default)]
    pub total: u64,
    /// Bytes still to send.
    #[serde(default)]
    pub remaining: u64,
}

impl MigrationInfo {
    /// Whether the migration ended (completed, failed or cancelled).
    pub fn is_over(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("completed" | "failed" | "cancelled" | "none") | None
        )
    }

    /// The TCP port of the first `socket-address` (the destination's listening port).
    pub fn listening_port(&self) -> Option<u16> {
        self.socket_address.iter().find_map(|a| {
            let p = &a["port"];
            p.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| p.as_u64().and_then(|n| u16::try_from(n).ok()))
        })
    }
}

impl QmpClient {
    /// `migrate-set-capabilities` with each `(name, state)`.
    pub async fn migrate_set_capabilities(&self, caps: &[(String, bool)]) -> Result<()> {
        let list: Vec<Value> = caps
            .iter()
            .map(|(c, s)| json!({ "capability": c, "state": s }))
            .collect();
        self.execute("migrate-set-capabilities", json!({ "capabilities": list }))
            .await
            .map(drop)
    }

    /// `migrate-set-parameters` with `max-bandwidth` (bytes/s).
    pub async fn migrate_set_max_bandwidth(&self, bytes_per_sec: u64) -> Result<()> {
        self.execute(
            "migrate-set-parameters",
            json!({ "max-bandwidth": bytes_per_sec }),
        )
        .await
        .map(drop)
    }

    /// `migrate` to `uri`: starts the outgoing migration and returns at once.
    pub async fn migrate(&self, uri: &str) -> Result<()> {
        self.execute("migrate", json!({ "uri": uri }))
            .await
            .map(drop)
    }

    /// `query-migrate`.
    pub async fn query_migrate(&self) -> Result<MigrationInfo> {
        let v = self.execute("query-migrate", Value::Null).await?;
        serde_json::from_value(v.clone()).map_err(|e| {
            QemuError::Protocol(format!("unexpected reply to `query-migrate` ({e}): {v}"))
        })
    }

    /// `migrate_cancel`: ends an outgoing migration (the source keeps the guest).
    pub async fn migrate_cancel(&self) -> Result<()> {
        self.execute("migrate_cancel", Value::Null).await.map(drop)
    }

    /// `announce-self`: QEMU sends gratuitous RARPs for the guest's NICs (QEMU's default
    /// rounds), so switches learn where the guest is now.
    pub async fn announce_self(&self) -> Result<()> {
        self.execute(
            "announce-self",
            json!({ "initial": 50, "max": 550, "rounds": 5, "step": 100 }),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_completed_and_an_incoming_answer() {
        let done: MigrationInfo = serde_json::from_value(json!({
            "status": "completed", "total-time": 1234, "downtime": 56, "setup-time": 2,
            "ram": {"transferred": 10, "total": 20, "remaining": 0, "duplicate": 3}
        }))
        .unwrap();
        assert!(done.is_over());
        assert_eq!((done.total_time, done.downtime), (Some(1234), Some(56)));
        let incoming: MigrationInfo = serde_json::from_value(json!({
            "status": "setup",
            "socket-address": [{"type": "inet", "host": "10.0.0.2", "port": "42017"}]
        }))
        .unwrap();
        assert!(!incoming.is_over());
        assert_eq!(incoming.listening_port(), Some(42017));
    }
}
