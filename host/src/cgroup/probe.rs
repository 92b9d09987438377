//! Finding the cgroup hierarchies this host offers: the mountinfo for cgroup v1
//! (one mount per controller, or a few co-mounted) and v2 (one mount; its controllers in
//! `cgroup.controllers`), `/proc/self/cgroup` for where virtnetd itself sits in each, so VM
//! groups are made below virtnetd's own group (as libvirt places machine groups relative to
//! its own placement: limits set on virtnetd's group still cover its VMs).

use std::path::{Path, PathBuf};

use super::Controller;

/// One mounted hierarchy and virtnetd's group in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mount_point: PathBuf,
    /// The controllers of ours it offers (for v2: those listed in the group's
    /// `cgroup.controllers`).
    pub controllers: Vec<Controller>,
    /// virtnetd's own group in it, as a directory (`/sys/fs/cgroup/memory/x/y`).
    pub own_dir: PathBuf,
}

/// What the host offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The cgroup2 mount, if any (possibly without controllers).
    pub v2: Option<Hierarchy>,
    /// The cgroup v1 mounts holding a controller of ours.
    pub v1: Vec<Hierarchy>,
}

/// Which hierarchy VM groups go in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The unified hierarchy, with these controllers.
    V2(Hierarchy),
    /// One group per v1 mount.
    V1(Vec<Hierarchy>),
    /// Nothing usable, and why.
    None(String),
}

/// Reads the layout of the running system, as the calling thread sees it: its own mount
/// namespace (`/proc/thread-self`: a thread that unshared its mounts, e.g. to mount a sysfs
/// of its network namespace, may see no cgroup mounts at all, and the groups must be made
/// where its file operations land).
pub fn probe() -> std::io::Result<Layout> {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/thread-self/{f}"))
            .or_else(|_| std::fs::read_to_string(format!("/proc/self/{f}")))
    };
    let mountinfo = read("mountinfo")?;
    let cgroup = read("cgroup")?;
    let mut layout = probe_from(&mountinfo, &cgroup, |dir| {
        std::fs::read_to_string(dir.join("cgroup.controllers")).ok()
    });
    // A mount listed but covered by a later one (a fresh sysfs on /sys) is out of reach.
    layout.v1.retain(|h| is_cgroupfs(&h.own_dir));
    layout.v2 = layout.v2.filter(|h| is_cgroupfs(&h.own_dir));
    Ok(layout)
}

/// Whether `dir` is on a cgroup (v1 or v2) file system.
fn is_cgroupfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into a zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    matches!(st.f_type as i64, CGROUP_SUPER_MAGIC | CGROUP2_SUPER_MAGIC)
}

/// `statfs` magic of cgroup v1 file systems.
const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
/// `statfs` magic of cgroup2.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The layout given the text of `/proc/self/mountinfo` and `/proc/self/cgroup`;
/// `v2_controllers` reads a v2 group's `cgroup.controllers`.
pub fn probe_from(
    mountinfo: &str,
    proc_cgroup: &str,
    v2_controllers: impl Fn(&Path) -> Option<String>,
) -> Layout {
    let mut layout = Layout::default();
    for line in mountinfo.lines() {
        let Some(m) = MountLine::parse(line) else {
            continue;
        };
        match m.fstype {
            "cgroup2" if layout.v2.is_none() => {
                let Some(own) = own_path(proc_cgroup, None) else {
                    continue;
                };
                let Some(own_dir) = dir_of(&m, &own) else {
                    continue;
                };
                let controllers = v2_controllers(&own_dir)
                    .map(|s| s.split_whitespace().filter_map(Controller::parse).collect())
                    .unwrap_or_default();
                layout.v2 = Some(Hierarchy {
                    mount_point: m.mount_point.into(),
                    controllers,
                    own_dir,
                });
            }
            "cgroup" => {
                let names: Vec<&str> = m.super_options.split(',').collect();
                let controllers: Vec<Controller> = names
                    .iter()
                    .copied()
                    .filter_map(Controller::parse)
                    .collect();
                if controllers.is_empty() {
                    continue; // name=systemd, freezer, devices, ...
                }
                let Some(own) = own_path(proc_cgroup, Some(&names)) else {
                    continue;
                };
                let Some(own_dir) = dir_of(&m, &own) else {
                    continue;
                };
                layout.v1.push(Hierarchy {
                    mount_point: m.mount_point.into(),
                    controllers,
                    own_dir,
                });
            }
            _ => {}
        }
    }
    layout
}

impl Layout {
    /// Where VM groups go: v2 when it offers at least one controller of ours (as libvirt,
    /// which prefers the unified hierarchy when it has controllers), else the v1 mounts, else
    /// nothing, with the reason in words.
    pub fn choose(&self) -> Choice {
        if let Some(v2) = self.v2.as_ref().filter(|h| !h.controllers.is_empty()) {
            return Choice::V2(v2.clone());
        }
        if !self.v1.is_empty() {
            return Choice::V1(self.v1.clone());
        }
        Choice::None(match &self.v2 {
            Some(h) => format!(
                "the cgroup2 mount at {} offers none of the memory, pids and cpu controllers \
                 to virtnetd's group, and no cgroup v1 controller of those is mounted",
                h.mount_point.display()
            ),
            None => "no cgroup v1 memory/pids/cpu controller and no cgroup2 hierarchy is \
                     mounted (see /proc/self/mountinfo)"
                .into(),
        })
    }
}

/// The fields of one mountinfo line we need.
struct MountLine<'a> {
    root: &'a str,
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> MountLine<'a> {
    /// `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
    fn parse(line: &'a str) -> Option<MountLine<'a>> {
        let (left, right) = line.split_once(" - ")?;
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        Some(MountLine {
            root: l.get(3)?,
            mount_point: l.get(4)?,
            fstype: r.first()?,
            super_options: r.get(2).copied().unwrap_or(""),
        })
    }
}

/// virtnetd's group path in the hierarchy with these v1 controllers (`None`: the v2 line).
fn own_path(proc_cgroup: &str, v1_names: Option<&[&str]>) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match v1_names {
            None => ctrls.is_empty(),
            Some(names) => {
                !ctrls.is_empty()
                    && ctrls
                        .split(',')
                        .any(|c| Controller::parse(c).is_some() && names.contains(&c))
            }
        };
        hit.then(|| path.to_string())
    })
}

/// The directory of group `path` under mount `m` (whose root may be a sub-group, e.g.
/// inside a cgroup namespace or a bind mount); `None` when the group is outside the mount.
fn dir_of(m: &MountLine<'_>, path: &str) -> Option<PathBuf> {
    let rel = if m.root == "/" {
        path
    } else {
        let rest = path.strip_prefix(m.root)?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None; // `/lxc/c10` is not inside `/lxc/c1`
        }
        rest
    };
    let rel = rel.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    let mut dir = PathBuf::from(m.mount_point);
    if !rel.is_empty() {
        dir.push(rel);
    }
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CG: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/api/b6\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    fn none(_: &Path) -> Option<String> {
        None
    }

    /// These machines: v1 controllers and an empty v2 mount → v1, below our own groups.
    #[test]
    fn hybrid_with_empty_v2_uses_v1() {
        let l = probe_from(HYBRID, HYBRID_CG, none);
        assert_eq!(l.v2.as_ref().unwrap().controllers, []);
        let Choice::V1(h) = l.choose() else {
            panic!("{:?}", l.choose())
        };
        let got: Vec<(String, Vec<Controller>)> = h
            .iter()
            .map(|h| (h.own_dir.display().to_string(), h.controllers.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("/sys/fs/cgroup/cpu".to_string(), vec![Controller::Cpu]),
                (
                    "/sys/fs/cgroup/memory/api/b6".into(),
                    vec![Controller::Memory]
                ),
                ("/sys/fs/cgroup/pids".into(), vec![Controller::Pids]),
            ]
        );
    }

    /// A hybrid host whose v2 mount has controllers → v2 (libvirt's preference).
    #[test]
    fn hybrid_with_v2_controllers_uses_v2() {
        let l = probe_from(HYBRID, HYBRID_CG, |_| Some("cpu io memory pids\n".into()));
        let Choice::V2(h) = l.choose() else {
            panic!("{:?}", l.choose())
        };
        assert_eq!(h.own_dir, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(
            h.controllers,
            [Controller::Cpu, Controller::Memory, Controller::Pids]
        );
    }

    #[test]
    fn v2_only() {
        let mi = "25 21 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = "0::/system.slice/virtnetd.service\n";
        let l = probe_from(mi, cg, |d| {
            assert_eq!(d, Path::new("/sys/fs/cgroup/system.slice/virtnetd.service"));
            Some("memory pids".into())
        });
        assert!(l.v1.is_empty());
        assert!(
            matches!(l.choose(), Choice::V2(h) if h.controllers == [Controller::Memory, Controller::Pids])
        );
    }

    #[test]
    fn v1_only_with_comounted_cpu_and_a_namespace_root() {
        let mi = "\
40 31 0:37 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let cg = "3:cpu,cpuacct:/a\n2:memory:/lxc/c1/b\n";
        let l = probe_from(mi, cg, none);
        assert!(l.v2.is_none());
        let Choice::V1(h) = l.choose() else { panic!() };
        assert_eq!(h[0].own_dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/a"));
        assert_eq!(h[0].controllers, [Controller::Cpu]);
        assert_eq!(h[1].own_dir, Path::new("/sys/fs/cgroup/memory/b"));
    }

    #[test]
    fn nothing_usable_says_why() {
        let mi = "22 1 0:20 / /proc rw - proc proc rw\n";
        let Choice::None(why) = probe_from(mi, "0::/\n", none).choose() else {
            panic!()
        };
        assert!(why.contains("no cgroup v1"), "{why}");
        let mi = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                  40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let Choice::None(why) = probe_from(mi, "1:name=systemd:/\n0::/\n", none).choose() else {
            panic!()
        };
        assert!(why.contains("/sys/fs/cgroup/unified offers none"), "{why}");
    }

    /// A group outside the mount's root (another namespace's) is not used.
    #[test]
    fn group_outside_the_mount_is_skipped() {
        let mi = "41 31 0:38 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let l = probe_from(mi, "2:memory:/other\n", none);
        assert!(l.v1.is_empty());
    }
}
