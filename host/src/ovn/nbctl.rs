//! [`Nbctl`]: runs `ovn-nbctl` against one Northbound database, with a deadline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{change_args, parse_options, LspOptionsChange};
use crate::error::{HostError, Result};

/// How `ovn-nbctl` is run: which program, which database, how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nbctl {
    program: PathBuf,
    db: String,
    timeout_s: u32,
}

impl Nbctl {
    /// `ovn-nbctl` from `PATH` on the Northbound database `db` (`unix:PATH`, `tcp:IP:PORT`,
    /// `ssl:...`: its `--db`), 5 s per call.
    pub fn new(db: impl Into<String>) -> Nbctl {
        Nbctl {
            program: "ovn-nbctl".into(),
            db: db.into(),
            timeout_s: 5,
        }
    }

    /// The database.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The full argument list for `args` (global options first).
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let mut a = vec![
            format!("--timeout={}", self.timeout_s),
            format!("--db={}", self.db),
        ];
        a.extend(args.iter().cloned());
        a
    }

    /// Runs ovn-nbctl with `args`; its stdout, or an error naming `op` with its stderr.
    fn run(&self, op: &str, args: &[String]) -> Result<String> {
        let out = Command::new(&self.program)
            .args(self.argv(args))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HostError::Ovn {
                op: op.to_string(),
                detail: format!(
                    "cannot run {}: {e} (install OVN: Debian's ovn-common)",
                    self.program.display()
                ),
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let status = out
            .status
            .code()
            .map_or("killed by a signal".to_string(), |c| format!("exit {c}"));
        Err(HostError::Ovn {
            op: op.to_string(),
            detail: format!(
                "{} ({status}; database {})",
                String::from_utf8_lossy(&out.stderr).trim(),
                self.db
            ),
        })
    }

    /// The options of logical switch port `port`; `None` when the database has no such port.
    pub fn lsp_options(&self, port: &str) -> Result<Option<BTreeMap<String, String>>> {
        let op = format!("read logical switch port '{port}'");
        let args = [
            "--format=json".to_string(),
            "--columns=options".into(),
            "find".into(),
            "Logical_Switch_Port".into(),
            format!("name=\"{port}\""),
        ];
        let out = self.run(&op, &args)?;
        parse_options(&out).ok_or_else(|| HostError::Ovn {
            op,
            detail: format!("unexpected output: {}", out.trim()),
        })
    }

    /// Makes `change` (one transaction).
    pub fn change(&self, change: &LspOptionsChange) -> Result<()> {
        let args = change_args(change);
        if args.is_empty() {
            return Ok(());
        }
        self.run(&format!("change {}", change.describe()), &args)
            .map(|_| ())
    }
}
