//! The invariants, checked against the host after every step: the store parses; each running
//! VM's NICs in QEMU equal its live status; no leaked tap, fd, socket, process or file.
//! Each check returns violations as (key, detail): the key names what is wrong (stable, so a
//! lasting leak is reported once), the detail shows what was seen.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::api::Api;
use crate::view::{View, Vm};
use crate::world::{BRIDGE, NET};

/// One broken invariant: (key, detail).
pub type Violation = (String, String);

/// What the checks need to know.
pub struct Ctx<'a> {
    /// The API.
    pub api: &'a Api,
    /// virtnetd's pid.
    pub daemon_pid: Option<u32>,
    /// STATE_DIR.
    pub state: &'a Path,
    /// RUN_DIR.
    pub run: &'a Path,
    /// Where the serial back ends are.
    pub chr: &'a Path,
    /// The `virtnet` CLI.
    pub cli: &'a Path,
    /// `net:[INODE]` of the soak's namespace.
    pub netns: &'a str,
    /// virtnetd's fd count with nothing running.
    pub fd_baseline: usize,
}

fn v(key: impl Into<String>, detail: impl Into<String>) -> Violation {
    (key.into(), detail.into())
}

/// Every invariant; `view` is what virtnetd reported just before.
pub fn all(c: &Ctx, view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    if !view.settled() {
        let s: Vec<String> = view
            .vms
            .iter()
            .map(|v| format!("{}={}", v.name, v.state))
            .collect();
        out.push(v("a VM stays in transition", s.join(" ")));
    }
    out.extend(store(c, view));
    for vm in view.running() {
        out.extend(qemu_nics(c, vm));
    }
    out.extend(taps(view));
    out.extend(processes(c, view));
    out.extend(daemon_fds(c, view));
    out.extend(run_dir(c, view));
    out.extend(serial_sockets(c, view));
    out
}

/// The store parses: every definition with `virtnet validate`, every status as JSON; no VM
/// listed with a problem.
pub fn store(c: &Ctx, view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    let defs: Vec<PathBuf> = files(&c.state.join("domains"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    if !defs.is_empty() {
        match Command::new(c.cli).arg("validate").args(&defs).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => out.push(v(
                "a stored definition does not validate",
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )),
            Err(e) => out.push(v("virtnet validate cannot run", e.to_string())),
        }
    }
    for dir in [c.run.to_path_buf(), c.run.join("networks")] {
        for p in files(&dir) {
            if p.extension().is_some_and(|e| e == "json") {
                let ok = std::fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .is_some();
                if !ok {
                    out.push(v(format!("status {} does not parse", p.display()), ""));
                }
            }
        }
    }
    for vm in &view.vms {
        if let Some(p) = &vm.problem {
            out.push(v(
                format!("VM {} listed with a problem", vm.name),
                p.clone(),
            ));
        }
    }
    out
}

/// QEMU's NICs (`query-pci` Ethernet devices, `info network`, chardevs, tap fds) equal the
/// running VM's live status.
pub fn qemu_nics(c: &Ctx, vm: &Vm) -> Vec<Violation> {
    let mut out = Vec::new();
    let n = &vm.name;
    let want: BTreeSet<String> = vm
        .live
        .iter()
        .filter(|x| !x.pending)
        .map(|x| x.mac.to_lowercase())
        .collect();
    let maybe: BTreeSet<String> = vm
        .live
        .iter()
        .filter(|x| x.pending)
        .map(|x| x.mac.to_lowercase())
        .collect();
    // `info network`: a NIC line per NIC with its MAC, its netdev indented below it; a netdev
    // on a line of its own has no NIC (left behind by an unplug).
    let info = match c.api.qmp(
        n,
        "human-monitor-command",
        json!({"command-line": "info network"}),
    ) {
        Ok(i) => i.as_str().unwrap_or_default().to_string(),
        Err(e) => return vec![v(format!("VM {n}: QMP does not answer"), e)],
    };
    let (have, dangling) = parse_info_network(&info);
    if !dangling.is_empty() {
        out.push(v(
            format!("VM {n}: QEMU holds a netdev without a NIC"),
            info.clone(),
        ));
    }
    let extra: Vec<_> = have
        .iter()
        .filter(|m| !want.contains(*m) && !maybe.contains(*m))
        .collect();
    let missing: Vec<_> = want.iter().filter(|m| !have.contains(*m)).collect();
    if !extra.is_empty() || !missing.is_empty() {
        out.push(v(
            format!("VM {n}: QEMU's NICs differ from the live status"),
            format!("in QEMU only: {extra:?}; in the live status only: {missing:?}\n{info}"),
        ));
    }
    // PCI: the Ethernet controllers' ids are the live aliases.
    match c.api.qmp(n, "query-pci", json!({})) {
        Ok(p) => {
            let mut ids = BTreeSet::new();
            for bus in p.as_array().into_iter().flatten() {
                for d in bus["devices"].as_array().into_iter().flatten() {
                    if d["class_info"]["class"] == 512 {
                        ids.insert(d["qdev_id"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
            let live: BTreeSet<String> = vm
                .live
                .iter()
                .filter(|x| !x.pending)
                .filter_map(|x| x.alias.clone())
                .collect();
            let pend: BTreeSet<String> = vm
                .live
                .iter()
                .filter(|x| x.pending)
                .filter_map(|x| x.alias.clone())
                .collect();
            let extra: Vec<_> = ids
                .iter()
                .filter(|i| !live.contains(*i) && !pend.contains(*i))
                .collect();
            let missing: Vec<_> = live.iter().filter(|i| !ids.contains(*i)).collect();
            if !extra.is_empty() || !missing.is_empty() {
                out.push(v(
                    format!("VM {n}: QEMU's PCI NICs differ from the live aliases"),
                    format!("in QEMU only: {extra:?}; in the live status only: {missing:?}"),
                ));
            }
        }
        Err(e) => out.push(v(format!("VM {n}: query-pci fails"), e)),
    }
    // Chardevs of vhost-user NICs: `char<alias>` for each live vhost-user NIC, no other.
    match c.api.qmp(n, "query-chardev", json!({})) {
        Ok(p) => {
            let labels: BTreeSet<String> = p
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["label"].as_str().map(str::to_string))
                .filter(|l| {
                    !l.starts_with("charserial")
                        && !l.starts_with("compat_monitor")
                        && l != "monitor"
                        && !l.starts_with("charmonitor")
                        && l != "qmp"
                })
                .collect();
            let want: BTreeSet<String> = vm
                .live
                .iter()
                .filter(|x| x.type_ == "vhostuser" && !x.pending)
                .filter_map(|x| x.alias.as_ref().map(|a| format!("char{a}")))
                .collect();
            let pend: BTreeSet<String> = vm
                .live
                .iter()
                .filter(|x| x.type_ == "vhostuser" && x.pending)
                .filter_map(|x| x.alias.as_ref().map(|a| format!("char{a}")))
                .collect();
            let extra: Vec<_> = labels
                .iter()
                .filter(|l| !want.contains(*l) && !pend.contains(*l))
                .collect();
            let missing: Vec<_> = want.iter().filter(|l| !labels.contains(*l)).collect();
            if !extra.is_empty() || !missing.is_empty() {
                out.push(v(
                    format!("VM {n}: QEMU's chardevs differ from the live vhost-user NICs"),
                    format!("in QEMU only: {extra:?}; expected but missing: {missing:?}"),
                ));
            }
        }
        Err(e) => out.push(v(format!("VM {n}: query-chardev fails"), e)),
    }
    // Tap fds in QEMU: one per bridge NIC (single queue).
    if let Some(pid) = vm.pid {
        let tun = fd_targets(pid)
            .iter()
            .filter(|t| t.as_str() == "/dev/net/tun")
            .count();
        let lo = vm
            .live
            .iter()
            .filter(|x| x.type_ == "bridge" && !x.pending)
            .count();
        let hi = vm.live.iter().filter(|x| x.type_ == "bridge").count();
        if tun < lo || tun > hi {
            out.push(v(
                format!("VM {n}: QEMU's tap fds differ from its bridge NICs"),
                format!("{tun} /dev/net/tun fds in QEMU {pid}, {lo}..={hi} bridge NICs"),
            ));
        }
    }
    out
}

/// QEMU's `info network`: the NICs' MACs (lower case), and the netdevs with no NIC. A NIC is a
/// line `ID: index=..,type=nic,model=..,macaddr=MAC` with its netdev indented below it
/// (` \ hostnetN: ...`); a netdev on a line of its own has no NIC (an unplug left it behind).
pub fn parse_info_network(info: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut macs = BTreeSet::new();
    let mut dangling = Vec::new();
    for line in info.lines() {
        if line.starts_with(' ') || line.trim().is_empty() {
            continue;
        }
        if line.contains("type=nic") {
            if let Some(m) = line.split("macaddr=").nth(1) {
                macs.insert(m.trim().to_lowercase());
            }
        } else {
            dangling.push(line.split(':').next().unwrap_or(line).to_string());
        }
    }
    (macs, dangling)
}

/// `ip -o link`: (name, master).
fn links() -> Vec<(String, Option<String>)> {
    let out = Command::new("ip").args(["-o", "link", "show"]).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?;
            let name = name.split('@').next().unwrap_or(name).to_string();
            let master = l
                .split(" master ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string);
            Some((name, master))
        })
        .collect()
}

/// Links in the namespace: lo, the bridge, the active network's uplink, and one tap per bridge
/// NIC of a running VM (a port of the bridge); nothing else.
pub fn taps(view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for vm in view.running() {
        for x in vm.live.iter().filter(|x| x.type_ == "bridge") {
            match &x.tap {
                Some(t) => {
                    want.insert(t.clone(), vm.name.clone());
                }
                None => out.push(v(
                    format!(
                        "VM {}: bridge NIC {} has no tap in its live status",
                        vm.name, x.mac
                    ),
                    "",
                )),
            }
        }
    }
    let uplinks: BTreeSet<String> = view
        .nets
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| n.uplink.clone())
        .collect();
    let have = links();
    for (name, master) in &have {
        if name == "lo" || name == BRIDGE || uplinks.contains(name) {
            continue;
        }
        match want.get(name) {
            None => out.push(v(
                format!("leaked tap {name}"),
                format!("links: {:?}", have.iter().map(|l| &l.0).collect::<Vec<_>>()),
            )),
            Some(vm) if master.as_deref() != Some(BRIDGE) => out.push(v(
                format!("VM {vm}: tap {name} not on {BRIDGE}"),
                format!("master {master:?}"),
            )),
            Some(_) => {}
        }
    }
    for (t, vm) in &want {
        if !have.iter().any(|l| &l.0 == t) {
            out.push(v(
                format!("VM {vm}: tap {t} of its live status is missing"),
                "",
            ));
        }
    }
    for u in &uplinks {
        if !have.iter().any(|l| &l.0 == u) {
            out.push(v(format!("uplink {u} of an active network is missing"), ""));
        }
    }
    out
}

/// Processes in the soak's namespace: (pid, comm).
pub fn ns_processes(netns: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if ns.to_string_lossy() != netns {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| matches!(r.trim_start().chars().next(), Some('Z' | 'X')));
        if zombie {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        out.push((pid, comm.trim().to_string()));
    }
    out
}

/// QEMUs are the running VMs' (by pid), switches the active networks', one virtnetd, nothing
/// else.
pub fn processes(c: &Ctx, view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    let qemus: BTreeSet<u32> = view.running().filter_map(|v| v.pid).collect();
    let switches: BTreeSet<u32> = view
        .nets
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| n.pid.map(|p| p as u32))
        .collect();
    let procs = ns_processes(c.netns);
    let mut seen_q = BTreeSet::new();
    let mut seen_s = BTreeSet::new();
    for (pid, comm) in &procs {
        if comm.starts_with("qemu-system") {
            seen_q.insert(*pid);
            if !qemus.contains(pid) {
                out.push(v(format!("leaked QEMU process (pid {pid})"), cmdline(*pid)));
            }
        } else if comm == "virtnet-vswitch" {
            seen_s.insert(*pid);
            if !switches.contains(pid) {
                out.push(v(
                    format!("leaked switch process (pid {pid})"),
                    cmdline(*pid),
                ));
            }
        } else if comm == "virtnetd" {
            if Some(*pid) != c.daemon_pid {
                out.push(v(format!("stray virtnetd (pid {pid})"), cmdline(*pid)));
            }
        } else {
            out.push(v(
                format!("stray process {comm} (pid {pid})"),
                cmdline(*pid),
            ));
        }
    }
    for vm in view.running() {
        if let Some(p) = vm.pid {
            if !seen_q.contains(&p) {
                out.push(v(
                    format!("VM {} listed running but QEMU {p} is gone", vm.name),
                    "",
                ));
            }
        }
    }
    for n in view.nets.iter().filter(|n| n.active) {
        match n.pid {
            Some(p) if seen_s.contains(&(p as u32)) => {}
            p => out.push(v(
                format!("network {} active but its switch {p:?} is gone", n.name),
                "",
            )),
        }
    }
    out
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// What each fd of `pid` points at.
pub fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// virtnetd holds no tap fd between operations and no fd of a deleted file, and its fd count
/// stays within a bound of the running VMs and networks.
pub fn daemon_fds(c: &Ctx, view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(pid) = c.daemon_pid else {
        return out;
    };
    let fds = fd_targets(pid);
    let tun = fds.iter().filter(|t| t.as_str() == "/dev/net/tun").count();
    if tun > 0 {
        out.push(v(
            "virtnetd holds tap fds between operations",
            format!("{tun} /dev/net/tun fds"),
        ));
    }
    let deleted: Vec<_> = fds.iter().filter(|t| t.ends_with(" (deleted)")).collect();
    if !deleted.is_empty() {
        out.push(v(
            "virtnetd holds fds of deleted files",
            format!("{deleted:?}"),
        ));
    }
    let running = view.running().count();
    let nets = view.nets.iter().filter(|n| n.active).count();
    let bound = c.fd_baseline + 6 * running + 4 * nets + 8;
    if fds.len() > bound {
        out.push(v(
            "virtnetd's fd count grows",
            format!(
                "{} fds > bound {bound} (baseline {}, {running} VMs, {nets} networks): {fds:?}",
                fds.len(),
                c.fd_baseline
            ),
        ));
    }
    out
}

/// Regular files and sockets directly in `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Sub-directories of `dir`.
fn dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// RUN_DIR holds the API socket, a status and a run dir per running VM, a status and a dir per
/// active network, and in it the control socket, the log and one socket per port of a running
/// VM's NIC on it; nothing else.
pub fn run_dir(c: &Ctx, view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    let running: BTreeSet<String> = view.running().map(|v| v.name.clone()).collect();
    for p in files(c.run) {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name == "virtnetd.sock"
            || name == "virtnetd-ro.sock"
            || name == "libvirt-sock"
            || name == "virtnetd.pid"
        {
            continue;
        }
        if p.extension().is_some_and(|e| e == "json") && running.contains(&stem(&p)) {
            continue;
        }
        out.push(v(format!("leaked file {}", p.display()), ""));
    }
    for d in dirs(&c.run.join("vms")) {
        if !running.contains(&d) {
            out.push(v(format!("leaked run dir vms/{d}"), ""));
        }
    }
    let active: BTreeMap<String, &crate::view::Net> = view
        .nets
        .iter()
        .filter(|n| n.active)
        .map(|n| (n.name.clone(), n))
        .collect();
    let nets = c.run.join("networks");
    for p in files(&nets) {
        if !(p.extension().is_some_and(|e| e == "json") && active.contains_key(&stem(&p))) {
            out.push(v(format!("leaked file {}", p.display()), ""));
        }
    }
    for d in dirs(&nets) {
        let Some(n) = active.get(&d) else {
            out.push(v(
                format!("leaked network dir networks/{d}"),
                format!("{:?}", files(&nets.join(&d))),
            ));
            continue;
        };
        // The ports virtnetd reports, the sockets of the running VMs' NICs on this network,
        // and the socket files: all equal.
        let ports: BTreeSet<String> = n.ports.iter().map(|p| p.1.clone()).collect();
        for (vm, _) in &n.ports {
            if !running.contains(vm) {
                out.push(v(
                    format!("network {d}: port of VM {vm}, which does not run"),
                    format!("{:?}", n.ports),
                ));
            }
        }
        let dir = nets.join(&d);
        let nics: BTreeSet<String> = view
            .running()
            .flat_map(|vm| vm.live.iter())
            .filter(|x| x.type_ == "vhostuser")
            .filter_map(|x| x.source.clone())
            .filter(|s| Path::new(s).parent() == Some(dir.as_path()))
            .collect();
        let pend: BTreeSet<String> = view
            .running()
            .flat_map(|vm| vm.live.iter())
            .filter(|x| x.type_ == "vhostuser" && x.pending)
            .filter_map(|x| x.source.clone())
            .collect();
        let socks: BTreeSet<String> = files(&dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "sock"))
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.ends_with("/control.sock"))
            .collect();
        let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
            a.iter()
                .filter(|x| !b.contains(*x) && !pend.contains(*x))
                .cloned()
                .collect()
        };
        for (what, extra) in [
            ("switch ports without a live NIC", diff(&ports, &nics)),
            ("live NICs without a switch port", diff(&nics, &ports)),
            ("socket files without a live NIC", diff(&socks, &nics)),
        ] {
            if !extra.is_empty() {
                out.push(v(format!("network {d}: {what}"), format!("{extra:?}")));
            }
        }
        for f in files(&dir) {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !(name.ends_with(".sock") || name == "vswitch.log") {
                out.push(v(format!("leaked file {}", f.display()), ""));
            }
        }
    }
    let _ = NET;
    out
}

/// The live serial back end of a running VM: the unix socket path, if it is one.
fn live_serial_socket(api: &Api, vm: &str) -> Option<String> {
    let x = api.get_ok(&format!("/v1/domains/{vm}/xml")).ok()?;
    let xml = x["xml"].as_str()?.to_string();
    let start = xml
        .find("<serial type='unix'")
        .or_else(|| xml.find("<serial type=\"unix\""))?;
    let end = start + xml[start..].find("</serial>")?;
    let part = &xml[start..end];
    let p = part.split("path=").nth(1)?;
    let q = p.chars().next()?;
    Some(p[1..].split(q).next()?.to_string())
}

/// Sockets in the serial directory belong to running VMs' live serial ports (a socket whose
/// QEMU is gone, or that chardev-change replaced, is left behind).
pub fn serial_sockets(c: &Ctx, view: &View) -> Vec<Violation> {
    let mut out = Vec::new();
    let live: BTreeSet<String> = view
        .running()
        .filter_map(|vm| live_serial_socket(c.api, &vm.name))
        .collect();
    for e in std::fs::read_dir(c.chr).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_socket()) {
            let p = e.path().to_string_lossy().into_owned();
            if !live.contains(&p) {
                out.push(v(
                    format!("leaked serial socket {p}"),
                    format!("live serial sockets: {live:?}"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_network_nics_and_netdevs_left_behind() {
        let info = "net0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:5A:00:01\r\n \\ hostnet0: index=0,type=tap,fd=21\r\nhostnet3: index=0,type=tap,fd=30\r\nnet1: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:5a:00:02\r\n \\ hostnet1: index=0,type=vhost-user,vhost-user to charnet1\r\n";
        let (macs, dangling) = parse_info_network(info);
        assert_eq!(
            macs.into_iter().collect::<Vec<_>>(),
            ["52:54:00:5a:00:01", "52:54:00:5a:00:02"]
        );
        assert_eq!(dangling, ["hostnet3"]);
        let (macs, dangling) = parse_info_network("");
        assert!(macs.is_empty() && dangling.is_empty());
    }
}
