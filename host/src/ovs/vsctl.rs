//! [`Vsctl`]: runs `ovs-vsctl` against one OVSDB, with a deadline.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{add_port_args, del_port_args, parse_interfaces, OvsInterface, OvsPortSpec};
use crate::error::{HostError, Result};
use crate::undo::HostUndo;

/// ovs-vsctl's own default database, named in messages when none is given.
const DEFAULT_DB: &str = "unix:/var/run/openvswitch/db.sock";

/// How `ovs-vsctl` is run: which program, which database, how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vsctl {
    program: PathBuf,
    db: Option<String>,
    timeout_s: u32,
}

impl Default for Vsctl {
    /// `ovs-vsctl` from `PATH`, its default database, libvirt's 5 s deadline.
    fn default() -> Self {
        Vsctl {
            program: "ovs-vsctl".into(),
            db: None,
            timeout_s: 5,
        }
    }
}

impl Vsctl {
    /// Talks to the OVSDB at `db` (`unix:PATH`, `tcp:IP:PORT`: ovs-vsctl's `--db`) instead of
    /// ovs-vsctl's default.
    pub fn with_db(mut self, db: impl Into<String>) -> Self {
        self.db = Some(db.into());
        self
    }

    /// The database, as ovs-vsctl is told (or its default).
    pub fn db(&self) -> &str {
        self.db.as_deref().unwrap_or(DEFAULT_DB)
    }

    /// The full argument list for `args` (global options first).
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let mut a = vec![format!("--timeout={}", self.timeout_s)];
        if let Some(db) = &self.db {
            a.push(format!("--db={db}"));
        }
        a.extend(args.iter().cloned());
        a
    }

    /// Runs ovs-vsctl with `args`; returns its exit code and output (stdout, stderr), or an
    /// error when it cannot be started.
    fn output(&self, op: &str, args: &[String]) -> Result<(Option<i32>, String, String)> {
        let out = Command::new(&self.program)
            .args(self.argv(args))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HostError::Ovs {
                op: op.to_string(),
                detail: format!(
                    "cannot run {}: {e} (install Open vSwitch: Debian's openvswitch-switch)",
                    self.program.display()
                ),
            })?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    /// Runs ovs-vsctl with `args`; its stdout, or an error naming `op` with its stderr.
    pub fn run(&self, op: &str, args: &[String]) -> Result<String> {
        let (code, stdout, stderr) = self.output(op, args)?;
        if code == Some(0) {
            return Ok(stdout);
        }
        Err(self.failed(op, code, &stderr))
    }

    /// The error of a run of `op` that ended with `code` (none: killed) and `stderr`.
    fn failed(&self, op: &str, code: Option<i32>, stderr: &str) -> HostError {
        let status = code.map_or("killed by a signal".to_string(), |c| format!("exit {c}"));
        HostError::Ovs {
            op: op.to_string(),
            detail: format!("{stderr} ({status}; database {})", self.db()),
        }
    }

    /// Whether `bridge` is an Open vSwitch bridge (`ovs-vsctl br-exists`: exit 2 = no).
    pub fn bridge_exists(&self, bridge: &str) -> Result<bool> {
        let op = format!("check Open vSwitch bridge '{bridge}'");
        let args = ["br-exists", bridge].map(String::from);
        match self.output(&op, &args)? {
            (Some(0), ..) => Ok(true),
            (Some(2), ..) => Ok(false),
            (code, _, stderr) => Err(self.failed(&op, code, &stderr)),
        }
    }

    /// Adds `spec`'s port (one transaction, waiting for ovs-vswitchd to apply it) after
    /// checking its bridge is an OVS bridge; returns the undo removing it. On failure nothing
    /// of the port is left (a port the transaction may have committed before a timeout is
    /// removed again).
    pub fn add_port(&self, spec: &OvsPortSpec) -> Result<HostUndo> {
        if !self.bridge_exists(&spec.bridge)? {
            return Err(HostError::OvsBridgeNotFound {
                bridge: spec.bridge.clone(),
                db: self.db().to_string(),
            });
        }
        let op = format!(
            "add port '{}' to Open vSwitch bridge '{}'",
            spec.port, spec.bridge
        );
        if let Err(e) = self.run(&op, &add_port_args(spec)) {
            let _ = self.del_port(&spec.port);
            return Err(e);
        }
        Ok(HostUndo::OvsDelPort {
            bridge: spec.bridge.clone(),
            port: spec.port.clone(),
        })
    }

    /// Removes port `port` from whichever bridge has it; a missing port is fine.
    pub fn del_port(&self, port: &str) -> Result<()> {
        let op = format!("remove Open vSwitch port '{port}'");
        self.run(&op, &del_port_args(port)).map(|_| ())
    }

    /// This host's Open vSwitch `external_ids:system-id` (what ovn-controller registers as its
    /// chassis name); `None` when not set.
    pub fn system_id(&self) -> Result<Option<String>> {
        let args = [
            "--if-exists",
            "get",
            "Open_vSwitch",
            ".",
            "external_ids:system-id",
        ]
        .map(String::from);
        let out = self.run("read the Open vSwitch system-id", &args)?;
        let id = out.trim().trim_matches('"').to_string();
        Ok((!id.is_empty()).then_some(id))
    }

    /// Every interface in the database with its `vm-id` (to find ports a crash left).
    pub fn interfaces(&self) -> Result<Vec<OvsInterface>> {
        let op = "list Open vSwitch interfaces";
        let args = [
            "--format=json",
            "--columns=name,external_ids",
            "list",
            "Interface",
        ]
        .map(String::from);
        let out = self.run(op, &args)?;
        parse_interfaces(&out).ok_or_else(|| HostError::Ovs {
            op: op.into(),
            detail: format!("unexpected output: {}", out.trim()),
        })
    }
}
