//! The faults: kill -9 of virtnetd (restarted: it must adopt the running QEMUs and switches), a
//! graceful restart of virtnetd, kill -9 of the switch (virtnetd restarts it) and of a QEMU
//! (virtnetd marks the VM shut off and cleans up). Each says whether the system recovered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::rng::Rng;
use crate::view::{view, View};
use crate::world::NET;

/// The fault kinds and their weights.
pub const KINDS: [(&str, u32); 4] = [
    ("kill9-virtnetd", 3),
    ("restart-virtnetd", 2),
    ("kill9-switch", 3),
    ("kill9-qemu", 3),
];

/// A fault injected: kind, what exactly, and `Err(why)` when the system did not recover.
pub struct Injected {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// In words.
    pub what: String,
    /// Recovered, or why not.
    pub recovered: Result<(), String>,
}

/// Polls `f` every 50 ms for up to `t`.
fn wait(t: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + t;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(pid: u32) {
    // SAFETY: kill(2) with a pid virtnetd reported and a valid signal.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| matches!(r.trim_start().chars().next(), Some('Z' | 'X')))
    })
}

/// Picks and injects one fault that applies to `before` (what virtnetd reported).
pub fn random(d: &mut Daemon, before: &View, rng: &mut Rng) -> Injected {
    let weights: Vec<u32> = KINDS.iter().map(|k| k.1).collect();
    loop {
        let kind = KINDS[rng.weighted(&weights)].0;
        let r = match kind {
            "kill9-virtnetd" => Some(restart(d, before, true)),
            "restart-virtnetd" => Some(restart(d, before, false)),
            "kill9-switch" => switch(d, before),
            _ => qemu(d, before, rng),
        };
        if let Some((what, recovered)) = r {
            return Injected {
                kind,
                what,
                recovered,
            };
        }
    }
}

/// virtnetd dies (SIGKILL) or stops (SIGTERM) and starts again: every VM that ran runs on with
/// the same QEMU, every active network with a live switch.
fn restart(d: &mut Daemon, before: &View, kill: bool) -> (String, Result<(), String>) {
    let pid = d.pid().unwrap_or(0);
    let running: BTreeMap<String, u32> = before
        .running()
        .filter_map(|v| Some((v.name.clone(), v.pid?)))
        .collect();
    let what = format!(
        "{} virtnetd {pid} ({} VMs running)",
        if kill { "kill -9" } else { "SIGTERM + start" },
        running.len()
    );
    if kill {
        d.kill9();
    } else if let Err(e) = d.stop() {
        return (what, Err(e));
    }
    if let Err(e) = d.start() {
        return (what, Err(e));
    }
    let api = d.api();
    let mut last = String::new();
    let ok = wait(Duration::from_secs(30), || match view(&api) {
        Ok(after) => {
            let mut bad = Vec::new();
            for (name, pid) in &running {
                let now = after.vm(name).map(|v| (v.state.clone(), v.pid));
                if alive(*pid) && now != Some(("running".into(), Some(*pid))) {
                    bad.push(format!(
                        "{name} (QEMU {pid} alive) is {now:?} after the restart"
                    ));
                }
            }
            for n in after.nets.iter().filter(|n| n.active) {
                if !n.pid.is_some_and(|p| alive(p as u32)) {
                    bad.push(format!("network {} active without a live switch", n.name));
                }
            }
            last = bad.join("; ");
            bad.is_empty() && after.settled()
        }
        Err(e) => {
            last = e;
            false
        }
    });
    (what, if ok { Ok(()) } else { Err(last) })
}

/// The switch dies: virtnetd starts another one.
fn switch(d: &Daemon, before: &View) -> Option<(String, Result<(), String>)> {
    let n = before.net(NET).filter(|n| n.active)?;
    let old = n.pid? as u32;
    let restarts = n.restarts;
    let what = format!("kill -9 switch {old} of {NET} ({} ports)", n.ports.len());
    kill9(old);
    let api = d.api();
    let ok = wait(Duration::from_secs(20), || {
        view(&api).is_ok_and(|v| {
            v.net(NET).is_some_and(|n| {
                !n.active
                    || (n.pid.is_some_and(|p| p as u32 != old && alive(p as u32))
                        && n.restarts > restarts)
            })
        })
    });
    Some((
        what,
        if ok {
            Ok(())
        } else {
            Err(format!("no new switch 20 s after kill -9 of {old}"))
        },
    ))
}

/// A QEMU dies: virtnetd marks its VM shut off.
fn qemu(d: &Daemon, before: &View, rng: &mut Rng) -> Option<(String, Result<(), String>)> {
    let running: Vec<_> = before.running().filter(|v| v.pid.is_some()).collect();
    let vm = *rng.pick(&running)?;
    let pid = vm.pid?;
    let what = format!("kill -9 QEMU {pid} of {}", vm.name);
    kill9(pid);
    let api = d.api();
    let ok = wait(Duration::from_secs(20), || {
        view(&api).is_ok_and(|v| {
            v.vm(&vm.name)
                .is_none_or(|v| !v.running() && v.state != "shutting_down")
        })
    });
    Some((
        what,
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} still not shut off 20 s after its QEMU died",
                vm.name
            ))
        },
    ))
}
