//! Typed helpers for the QMP commands virtnet uses often.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{wire, QmpClient};
use crate::error::{QemuError, Result};
use crate::version::QemuVersion;

/// `query-status`: whether the guest CPUs run, and QEMU's run state name
/// (`prelaunch`, `running`, `paused`, `shutdown`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStatus {
    /// True when the guest CPUs run.
    pub running: bool,
    /// QEMU's run state.
    pub status: String,
}

/// `add-fd`'s answer: the fd set and QEMU's number for the fd inside QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddFdInfo {
    /// The fd set the fd went into.
    #[serde(rename = "fdset-id")]
    pub fdset_id: u64,
    /// The fd's number in QEMU (use as `/dev/fdset/<fdset_id>` in paths, not this number).
    pub fd: i64,
}

/// One fd set from `query-fdsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdsetInfo {
    /// Fd set id.
    #[serde(rename = "fdset-id")]
    pub fdset_id: u64,
    /// Its fds.
    pub fds: Vec<FdsetFd>,
}

/// One fd in an fd set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdsetFd {
    /// QEMU's number for it.
    pub fd: i64,
    /// The free-form text given to `add-fd`.
    #[serde(default)]
    pub opaque: Option<String>,
}

fn decode<T: for<'de> Deserialize<'de>>(command: &str, v: Value) -> Result<T> {
    serde_json::from_value(v.clone())
        .map_err(|e| QemuError::Protocol(format!("unexpected reply to `{command}` ({e}): {v}")))
}

impl QmpClient {
    /// `query-version`: the running QEMU's version (the same as in the greeting).
    pub async fn query_version(&self) -> Result<QemuVersion> {
        let v = self.execute("query-version", Value::Null).await?;
        wire::version_from_value(&v)
            .ok_or_else(|| QemuError::Protocol(format!("unexpected reply to query-version: {v}")))
    }

    /// `query-status`.
    pub async fn query_status(&self) -> Result<VmStatus> {
        let v = self.execute("query-status", Value::Null).await?;
        decode("query-status", v)
    }

    /// `cont`: start (or resume) the guest CPUs.
    pub async fn cont(&self) -> Result<()> {
        self.execute("cont", Value::Null).await.map(drop)
    }

    /// `system_powerdown`: press the ACPI power button (the guest decides what to do), with
    /// its own deadline.
    pub async fn system_powerdown(&self, timeout: Duration) -> Result<()> {
        self.execute_with_timeout("system_powerdown", Value::Null, timeout)
            .await
            .map(drop)
    }

    /// `getfd`: pass `fd` to QEMU under `fdname` (then usable as e.g. `netdev_add ... fd=<fdname>`).
    /// QEMU refuses names that start with a digit. Our copy of `fd` stays open.
    pub async fn getfd(&self, fdname: &str, fd: BorrowedFd<'_>) -> Result<()> {
        self.execute_with_fd("getfd", json!({ "fdname": fdname }), fd)
            .await
            .map(drop)
    }

    /// `closefd`: close the fd QEMU holds under `fdname`.
    pub async fn closefd(&self, fdname: &str) -> Result<()> {
        self.execute("closefd", json!({ "fdname": fdname }))
            .await
            .map(drop)
    }

    /// `add-fd`: put `fd` into fd set `fdset_id` (QEMU picks a new set if `None`), with an
    /// optional free-form `opaque` text shown by `query-fdsets`.
    pub async fn add_fd(
        &self,
        fd: BorrowedFd<'_>,
        fdset_id: Option<u64>,
        opaque: Option<&str>,
    ) -> Result<AddFdInfo> {
        let mut args = Map::new();
        if let Some(id) = fdset_id {
            args.insert("fdset-id".into(), json!(id));
        }
        if let Some(o) = opaque {
            args.insert("opaque".into(), json!(o));
        }
        let v = self
            .execute_with_fd("add-fd", Value::Object(args), fd)
            .await?;
        decode("add-fd", v)
    }

    /// `remove-fd`: remove one fd (`Some(fd)`, QEMU's number) or the whole set (`None`).
    pub async fn remove_fd(&self, fdset_id: u64, fd: Option<i64>) -> Result<()> {
        let mut args = json!({ "fdset-id": fdset_id });
        if let Some(fd) = fd {
            args["fd"] = json!(fd);
        }
        self.execute("remove-fd", args).await.map(drop)
    }

    /// `query-fdsets`.
    pub async fn query_fdsets(&self) -> Result<Vec<FdsetInfo>> {
        let v = self.execute("query-fdsets", Value::Null).await?;
        decode("query-fdsets", v)
    }

    /// `device_del`: ask for removal of device `id`. Removal is complete only when
    /// `DEVICE_DELETED` arrives (see [`QmpClient::wait_for_device_deleted`]); a stale
    /// remembered deletion of the same id is forgotten first, so ids can be reused.
    pub async fn device_del(&self, id: &str) -> Result<()> {
        self.forget_deleted(id);
        self.execute("device_del", json!({ "id": id }))
            .await
            .map(drop)
    }

    /// `device_del` and then wait up to `timeout` for `DEVICE_DELETED`. An event that arrives
    /// before the reply is not lost.
    pub async fn device_del_and_wait(&self, id: &str, timeout: Duration) -> Result<()> {
        self.device_del(id).await?;
        self.wait_for_device_deleted(id, timeout).await
    }
}
