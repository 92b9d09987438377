//! "Nothing left behind": a snapshot of what a test could leak, compared before and after.
//!
//! - links in the calling thread's network namespace;
//! - this process's open fds (by what they point at) — only meaningful when no other test of
//!   the process runs meanwhile ([`crate::netns::with_netns_exclusive`]);
//! - child processes of this process in the calling thread's network namespace;
//! - files in the directories given (run dirs, socket dirs).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::netns::{links, netns_id};

/// What exists at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Links in the namespace.
    pub links: Vec<String>,
    /// Open fds of this process: number → what it points at (`socket:[123]`, `/dev/net/tun`).
    /// Recorded only inside [`crate::netns::with_netns_exclusive`] (empty otherwise: other
    /// tests' fds would show up).
    pub fds: BTreeMap<i32, String>,
    /// Child processes in the namespace: (pid, command line).
    pub children: Vec<(u32, String)>,
    /// Files (recursively) under the watched directories, and the directories themselves.
    pub files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Snapshot {
    /// Takes a snapshot, watching the given directories (missing ones count as empty).
    pub fn take(dirs: &[&Path]) -> Snapshot {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        let mut files = Vec::new();
        for d in &dirs {
            walk(d, &mut files);
        }
        Snapshot {
            links: links(),
            fds: if crate::netns::running_alone() {
                open_fds()
            } else {
                BTreeMap::new()
            },
            children: children_in_netns(),
            files,
            dirs,
        }
    }

    /// A new snapshot watching the same directories.
    pub fn again(&self) -> Snapshot {
        let dirs: Vec<&Path> = self.dirs.iter().map(PathBuf::as_path).collect();
        Snapshot::take(&dirs)
    }

    /// What `later` has that `self` had not (links, fds, children, files); empty = no leak.
    pub fn leaks_in(&self, later: &Snapshot) -> String {
        let mut out = String::new();
        for l in later.links.iter().filter(|l| !self.links.contains(l)) {
            let _ = writeln!(out, "link {l}");
        }
        for (fd, target) in &later.fds {
            if self.fds.get(fd) != Some(target) {
                let _ = writeln!(out, "fd {fd} -> {target}");
            }
        }
        for (pid, cmd) in later.children.iter().filter(|c| !self.children.contains(c)) {
            let _ = writeln!(out, "process {pid}: {cmd}");
        }
        for f in later.files.iter().filter(|f| !self.files.contains(f)) {
            let _ = writeln!(out, "file {}", f.display());
        }
        out
    }

    /// Takes a new snapshot and panics, listing them, if anything was added since `self`.
    pub fn assert_no_leaks(&self, context: &str) {
        let later = self.again();
        let leaks = self.leaks_in(&later);
        assert!(leaks.is_empty(), "left behind after {context}:\n{leaks}");
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    out.push(dir.to_path_buf());
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// This process's open fds and what they point at.
pub fn open_fds() -> BTreeMap<i32, String> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        for e in rd.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Ok(t) = std::fs::read_link(e.path()) {
                m.insert(fd, t.display().to_string());
            }
        }
    }
    // The read_dir's own fd shows up while listing; it is closed now.
    m.retain(|fd, _| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    m
}

/// Child processes of this process (zombies included) in the calling thread's network
/// namespace: (pid, command line).
pub fn children_in_netns() -> Vec<(u32, String)> {
    let me = std::process::id();
    let ns = netns_id();
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("?");
        let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid != me {
            continue;
        }
        use std::os::unix::fs::MetadataExt;
        let child_ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
        // A zombie has no namespace link left: count it (it is ours and unreaped).
        if child_ns.is_ok_and(|n| n != ns) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        // Only a zombie is marked: a live child's state letter (R, S, D) changes with load
        // and is no leak.
        let shown = if state == "Z" {
            format!("[zombie] {cmd}")
        } else {
            cmd
        };
        v.push((pid, shown));
    }
    v.sort();
    v
}

/// QEMU's command line (`/proc/PID/cmdline`), one argument per entry.
pub fn process_argv(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}
