//! [`NamedNetns`]: a network namespace made with `ip netns add`, whose programs run through
//! `ip netns exec`; removed (with everything still inside) when dropped.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Tells apart the namespaces of tests running at the same time in one process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (`/run/netns/NAME`). Made inside [`crate::with_netns`], its
/// mount lives in that thread's private mount namespace only, so nothing outside the test sees
/// it as usable; [`Drop`] kills whatever still runs in it and deletes it.
pub struct NamedNetns {
    name: String,
}

impl NamedNetns {
    /// Creates `vnmh<pid>-<n>-<role>` with `lo` up.
    pub fn add(role: &str) -> NamedNetns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("vnmh{}-{n}-{role}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip (install iproute2: scripts/setup)");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = NamedNetns { name };
        ns.ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (for `ip netns exec`, `ip link set ... netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to run in this namespace (`ip netns exec NAME program`; `ip` execs it, so the
    /// spawned child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `program ARGS` here: trimmed stdout, or the exit status and stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        run(self.command(program).args(args))
    }

    /// [`NamedNetns::run`] that panics on failure.
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        self.run(program, args)
            .unwrap_or_else(|e| panic!("in {}: {program} {}: {e}", self.name, args.join(" ")))
    }

    /// Pids of the processes in this namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        run(Command::new("ip").args(["netns", "pids", &self.name]))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        for pid in self.pids() {
            eprintln!("ovn: pid {pid} was still in {}; killed", self.name);
            // SAFETY: kill(2) on a pid the kernel listed as inside our own namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs a prepared command: trimmed stdout, or the exit status and stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e} (scripts/setup installs it)", cmd))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
