//! Stopping the daemons OVS and OVN tools detach (`--detach --pidfile=FILE`) by their pidfile.

use std::path::Path;
use std::time::{Duration, Instant};

/// Stops the daemon whose pid is in `pidfile` (SIGTERM, SIGKILL after 5 s) and waits until it
/// is gone; nothing when there is no pidfile (it never started).
pub(crate) fn stop_pidfile(pidfile: &Path) {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    // SAFETY: kill(2) on a pid read from the daemon's own pidfile; no memory involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let t0 = Instant::now();
    while alive(pid) {
        if t0.elapsed() > Duration::from_secs(5) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if t0.elapsed() > Duration::from_secs(10) {
            eprintln!("ovn: pid {pid} ({}) did not stop", pidfile.display());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (exists and is not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}
