//! Running an interface's `<script>` / `<downscript>` with the tap's name, as libvirt's
//! `virNetDevRunEthernetScript` does, but with a deadline.
//!
//! What libvirt does (src/util/virnetdev.c, 9.0): `argv = [path, ifname]`, the common
//! environment only (`LC_ALL=C`, `PATH`, `HOME`, `USER`, `LOGNAME`, `TMPDIR`), capabilities
//! cleared but `CAP_NET_ADMIN`, waits for it with no time limit, a non-zero exit is an error.
//! Here:
//! - same argv and environment; it runs as virtnetd's user (root) with only `CAP_NET_ADMIN`
//!   left in its bounding set (so only that one after exec), in `/`, stdin from `/dev/null`;
//! - in its own process group; when [`ScriptRun::timeout`] passes, the whole group gets
//!   SIGKILL and the script is reaped (no zombie);
//! - stdout and stderr (one pipe, so their lines stay in order) go, line by line, to the VM's
//!   log with a prefix naming the NIC and the script;
//! - the error names the script, the tap, the exit status (or signal, or the timeout) and the
//!   script's last line of output.
//!
//! A script that leaves a process behind that keeps its stdout open is not waited for: output
//! is collected for a short grace period after the script exits, then reading stops.

mod output;
mod types;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub use types::{ScriptFailure, ScriptKind, ScriptOutcome, ScriptRun};

use crate::error::{HostError, Result};
use output::{pipe, read_lines, ScriptLog};

/// How long a script may run when nothing else is said.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long output is still read after the script exited.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Runs `run` (see the module docs) and waits for it. `Ok` when it exits with status 0.
pub fn run_script(run: &ScriptRun) -> Result<()> {
    spawn_script(run)?.wait()
}

/// Starts `run` in the calling thread's namespaces (a tap made in a test's network namespace
/// is visible to it); [`ScriptWait::wait`] then waits for it, on any thread (an async caller
/// waits on a blocking thread instead of blocking its runtime).
pub fn spawn_script(run: &ScriptRun) -> Result<ScriptWait> {
    if !run.path.is_absolute() {
        return Err(HostError::InvalidSpec {
            device: run.ifname.clone(),
            reason: format!(
                "{} path '{}' is not absolute: give the full path",
                run.kind,
                run.path.display()
            ),
        });
    }
    let mut log = ScriptLog::open(run);
    log.note(&format!("running {}", run.describe()));
    let (rd, wr) = pipe().map_err(|e| spawn_error(run, e))?;
    let mut cmd = Command::new(&run.path);
    cmd.arg(&run.ifname)
        .env_clear()
        .envs(common_env())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            wr.try_clone().map_err(|e| spawn_error(run, e))?,
        ))
        .stderr(Stdio::from(wr))
        .process_group(0);
    let last_cap = last_capability();
    // SAFETY: the closure runs in the child between fork and exec and only makes prctl
    // system calls (async-signal-safe); it touches no lock and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            keep_only_net_admin(last_cap);
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // The command holds our copies of the pipe's write end: close them so reading ends when
    // the script (and whatever it started) closes its copies.
    drop(cmd);
    let child = spawned.map_err(|e| spawn_error(run, e))?;
    Ok(ScriptWait(Waiting::Running(Box::new(Running {
        run: run.clone(),
        child,
        lines: read_lines(rd),
        log,
    }))))
}

/// A script started by [`spawn_script`] (or, from [`crate::FakeHost`], its outcome).
#[derive(Debug)]
pub struct ScriptWait(Waiting);

#[derive(Debug)]
enum Waiting {
    Running(Box<Running>),
    Done(Result<()>),
}

#[derive(Debug)]
struct Running {
    run: ScriptRun,
    child: Child,
    lines: Receiver<Vec<u8>>,
    log: ScriptLog,
}

impl ScriptWait {
    /// A script that has already ended this way (for fakes).
    pub fn done(result: Result<()>) -> Self {
        ScriptWait(Waiting::Done(result))
    }

    /// Whether [`ScriptWait::wait`] returns at once.
    pub fn is_done(&self) -> bool {
        matches!(self.0, Waiting::Done(_))
    }

    /// Waits until the script exits or its deadline passes (then kills its process group and
    /// reaps it). Blocks. `Ok` when it exited with status 0.
    pub fn wait(self) -> Result<()> {
        match self.0 {
            Waiting::Done(r) => r,
            Waiting::Running(r) => r.wait(),
        }
    }
}

impl Running {
    fn wait(self: Box<Self>) -> Result<()> {
        let Running {
            run,
            mut child,
            lines,
            mut log,
        } = *self;
        let status = wait(&mut child, &lines, run.timeout, &mut log);
        let drain_until = Instant::now() + DRAIN_GRACE;
        while let Ok(line) =
            lines.recv_timeout(drain_until.saturating_duration_since(Instant::now()))
        {
            log.line(&line);
        }
        let outcome = match status {
            Ok(s) if s.success() => {
                log.note("exited with status 0");
                return Ok(());
            }
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => ScriptOutcome::Exit(c),
                (None, Some(sig)) => ScriptOutcome::Signal(sig),
                (None, None) => ScriptOutcome::Exit(-1),
            },
            Err(WaitError::TimedOut) => ScriptOutcome::TimedOut(run.timeout),
            Err(WaitError::Io(e)) => return Err(spawn_error(&run, e)),
        };
        log.note(&outcome.to_string());
        Err(HostError::ScriptFailed(Box::new(ScriptFailure {
            last_line: log.last.clone(),
            run,
            outcome,
        })))
    }
}

/// `CAP_NET_ADMIN`, the one capability a script keeps (as with libvirt).
const CAP_NET_ADMIN: u32 = 12;

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// In the child before exec: drops every capability but `CAP_NET_ADMIN` from the bounding
/// set, so the script (run as root) gets only that one, as libvirt's
/// `virCommandClearCaps` + `virCommandAllowCap(CAP_NET_ADMIN)` do. Best effort: without
/// `CAP_SETPCAP` (virtnetd not root) the drops fail and the script keeps what virtnetd has.
fn keep_only_net_admin(last_cap: u32) {
    for cap in (0..=last_cap).filter(|c| *c != CAP_NET_ADMIN) {
        // SAFETY: plain prctl with integer arguments.
        unsafe {
            libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0);
        }
    }
}

fn spawn_error(run: &ScriptRun, source: std::io::Error) -> HostError {
    HostError::ScriptSpawn {
        kind: run.kind,
        script: run.path.clone(),
        nic: run.nic.clone(),
        source,
    }
}

/// libvirt's `virCommandAddEnvPassCommon`, without the `LD_*` variables.
fn common_env() -> Vec<(String, String)> {
    let mut env = vec![("LC_ALL".to_string(), "C".to_string())];
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    env.push(("PATH".into(), path));
    for k in ["HOME", "USER", "LOGNAME", "TMPDIR"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.into(), v));
        }
    }
    env
}

enum WaitError {
    TimedOut,
    Io(std::io::Error),
}

/// Waits for `child` until `timeout`, logging its output meanwhile; on timeout kills its
/// process group and reaps it.
fn wait(
    child: &mut Child,
    lines: &Receiver<Vec<u8>>,
    timeout: Duration,
    log: &mut ScriptLog,
) -> std::result::Result<ExitStatus, WaitError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().map_err(WaitError::Io)? {
            return Ok(s);
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(child);
            let _ = child.wait();
            return Err(WaitError::TimedOut);
        }
        let slice = (deadline - now).min(Duration::from_millis(20));
        match lines.recv_timeout(slice) {
            Ok(line) => log.line(&line),
            Err(RecvTimeoutError::Timeout) => {}
            // Output closed but the script still runs: poll its exit.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(slice),
        }
    }
}

fn kill_group(child: &Child) {
    let Ok(pgid) = i32::try_from(child.id()) else {
        return;
    };
    // SAFETY: plain syscall. The child leads its own group (process_group(0)) and is not
    // reaped yet, so its pid (= the group id) cannot have been reused.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests;
