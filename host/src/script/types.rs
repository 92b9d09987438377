//! What a script run is, and how one that failed ended.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which of an interface's scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    /// `<script path>`: after the tap is created (or opened).
    Up,
    /// `<downscript path>`: at teardown (VM stop, NIC unplug).
    Down,
}

impl fmt::Display for ScriptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScriptKind::Up => "script",
            ScriptKind::Down => "downscript",
        })
    }
}

/// One run of a script: what, for which tap, where its output goes, how long it may take.
/// Plain data: a downscript run is stored as an undo step ([`crate::HostUndo::RunScript`]).
/// Stored as `{"kind":"down","path":...,"ifname":...,"nic":...,"log":...,"timeout_ms":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRun {
    /// Up or down.
    pub kind: ScriptKind,
    /// The program (absolute path).
    pub path: PathBuf,
    /// The tap's name, its only argument.
    pub ifname: String,
    /// The NIC it is for, in log lines and errors (`net0`).
    pub nic: String,
    /// The VM's log, where its output goes (appended); `None`: output only in the error.
    pub log: Option<PathBuf>,
    /// Deadline; then its process group is killed.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
}

impl ScriptRun {
    /// `script /etc/qemu-ifup vnet0 (net0)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} ({})",
            self.kind,
            self.path.display(),
            self.ifname,
            self.nic
        )
    }
}

/// How a script ended, when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// It exited with this non-zero status.
    Exit(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ran past its deadline and was killed (with its process group).
    TimedOut(Duration),
}

impl fmt::Display for ScriptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptOutcome::Exit(c) => write!(f, "exited with status {c}"),
            ScriptOutcome::Signal(s) => write!(f, "was killed by signal {s}"),
            ScriptOutcome::TimedOut(t) => {
                write!(f, "did not finish within {t:?} and was killed")
            }
        }
    }
}

/// A script that ran and failed: which run, how it ended, what it said last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    /// The run.
    pub run: ScriptRun,
    /// Exit status, signal or timeout.
    pub outcome: ScriptOutcome,
    /// The last non-empty line it printed.
    pub last_line: String,
}

impl fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.run;
        write!(
            f,
            "{}: {} '{}' for tap '{}' {}",
            r.nic,
            r.kind,
            r.path.display(),
            r.ifname,
            self.outcome
        )?;
        if self.last_line.is_empty() {
            f.write_str(" (it printed nothing)")?;
        } else {
            write!(f, "; its last line: {}", self.last_line)?;
        }
        f.write_str(": fix the script (its output is in the VM's log)")
    }
}

/// A [`Duration`] stored as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
