//! `chardev-change`: switch the host side of a serial port, console or channel while the guest
//! runs (QMP `chardev-change`), and keep the live and/or persistent definition in step.
//!
//! QEMU swaps the back end under the running frontend: the guest keeps writing and its bytes go
//! to the new back end from then on. This works for serial ports and virtio consoles and
//! channels; a vhost-user NIC's chardev cannot be swapped (`Chardev user does not support
//! chardev hotswap`): that needs `update-device --replug`. A socket QEMU is to listen on and a
//! file it is to write are opened by virtnetd and passed as fds ([`chardev_fd`]).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use virtnet_conf::devices::{Chardev, ChrKind, ChrSource};
use virtnet_conf::Domain;
use virtnet_host::HostUndo;
use virtnet_vm::plan::paths;

use super::{chardev_fd, resolve_scope};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::model::{ChardevChangeRequest, ChardevChangeResponse, ChardevType, SocketSide};

/// Longest unix socket path (`sun_path` holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Which list a character device is in, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChrRef {
    kind: ChrKind,
    index: usize,
    /// Its alias: the `<alias name>` or the name QEMU gets (`serial1`, `console1`,
    /// `channel0`), as virtnet-qemu's command line names them.
    pub(crate) alias: String,
}

impl ChrRef {
    /// QEMU's chardev id.
    pub(crate) fn chardev_id(&self) -> String {
        format!("char{}", self.alias)
    }

    pub(crate) fn get<'a>(&self, d: &'a Domain) -> Option<&'a Chardev> {
        let v = &d.devices;
        match self.kind {
            ChrKind::Serial => v.serials.get(self.index),
            ChrKind::Console => v.consoles.get(self.index),
            ChrKind::Channel => v.channels.get(self.index),
            ChrKind::Parallel => v.parallels.get(self.index),
        }
    }
}

/// Every serial port, virtio console and channel of `d` with its alias. A console that stands
/// for a serial port (`<target type='serial'>`) is that port and not listed.
pub(crate) fn chardev_refs(d: &Domain) -> Vec<ChrRef> {
    let v = &d.devices;
    let mut out = Vec::new();
    for (i, c) in v.serials.iter().enumerate() {
        let port = c.target.port.unwrap_or(i as u32);
        out.push(ChrRef {
            kind: ChrKind::Serial,
            index: i,
            alias: c
                .info
                .alias
                .clone()
                .unwrap_or_else(|| format!("serial{port}")),
        });
    }
    for (i, c) in v.consoles.iter().enumerate() {
        if matches!(c.target_type(), None | Some("serial")) {
            continue;
        }
        out.push(ChrRef {
            kind: ChrKind::Console,
            index: i,
            alias: c
                .info
                .alias
                .clone()
                .unwrap_or_else(|| format!("console{i}")),
        });
    }
    for (i, c) in v.channels.iter().enumerate() {
        out.push(ChrRef {
            kind: ChrKind::Channel,
            index: i,
            alias: c
                .info
                .alias
                .clone()
                .unwrap_or_else(|| format!("channel{i}")),
        });
    }
    out
}

/// Gives every serial port, virtio console and channel of a live definition its alias (as
/// libvirt's live XML shows them), so `dumpxml` names what `chardev-change` takes.
pub(crate) fn name_chardevs(d: &mut Domain) {
    for r in chardev_refs(d) {
        let v = &mut d.devices;
        let c = match r.kind {
            ChrKind::Serial => v.serials.get_mut(r.index),
            ChrKind::Console => v.consoles.get_mut(r.index),
            ChrKind::Channel => v.channels.get_mut(r.index),
            ChrKind::Parallel => None,
        };
        if let Some(c) = c {
            c.info.alias.get_or_insert(r.alias);
        }
    }
}

/// The character device of `d` that `key` names: its alias, QEMU's chardev id
/// (`charserial1`), `consoleN` for the console standing for serial port N, or a channel's
/// target name.
pub(crate) fn find_chardev(vm: &str, d: &Domain, key: &str) -> Result<ChrRef> {
    let refs = chardev_refs(d);
    let serial_console = key
        .strip_prefix("console")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| {
            d.devices
                .consoles
                .get(*n)
                .is_some_and(|c| matches!(c.target_type(), None | Some("serial")))
        });
    let hit = refs.iter().find(|r| {
        r.alias == key
            || r.chardev_id() == key
            || (r.kind == ChrKind::Channel
                && r.get(d).and_then(|c| c.target.name.as_deref()) == Some(key))
            || (r.kind == ChrKind::Serial && serial_console == Some(r.index))
    });
    match hit {
        Some(r) => Ok(r.clone()),
        None => {
            let known: Vec<&str> = refs.iter().map(|r| r.alias.as_str()).collect();
            let nic_hint = if d.devices.interfaces.iter().any(|i| {
                i.alias()
                    .is_some_and(|a| key == a || key == format!("char{a}"))
            }) {
                " (a vhost-user NIC's chardev cannot be swapped by QEMU: change its socket \
                 with `virtnet update-device --replug`)"
            } else {
                ""
            };
            Err(DaemonError::NoSuchDevice {
                vm: vm.into(),
                what: format!(
                    "serial port, console or channel '{key}'{nic_hint}; it has: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            })
        }
    }
}

/// Checks the request and returns the new source (for the definition: a pty has no path).
fn new_source(req: &ChardevChangeRequest) -> Result<ChrSource> {
    let bad = |m: String| Err(DaemonError::BadRequest(m));
    let path = req.path.as_deref();
    let needs_path = matches!(req.type_, ChardevType::Unix | ChardevType::File);
    match (needs_path, path) {
        (true, None) => return bad(format!("type {:?} needs a path", req.type_).to_lowercase()),
        (false, Some(_)) => {
            return bad("pty and null back ends take no path (a pty's is chosen by QEMU)".into())
        }
        (true, Some(p)) if !Path::new(p).is_absolute() || p.contains('\0') => {
            return bad(format!(
                "path '{}' must be absolute (QEMU does not run in your directory)",
                p.escape_debug()
            ))
        }
        _ => {}
    }
    if req.mode.is_some() && req.type_ != ChardevType::Unix {
        return bad("mode (bind/connect) is only for the unix back end".into());
    }
    if req.append.is_some() && req.type_ != ChardevType::File {
        return bad("append is only for the file back end".into());
    }
    Ok(match req.type_ {
        ChardevType::Pty => ChrSource::Pty { path: None },
        ChardevType::Null => ChrSource::Null,
        ChardevType::File => ChrSource::File {
            path: path.unwrap_or_default().into(),
            append: req.append.map(|a| if a { "on" } else { "off" }.into()),
        },
        ChardevType::Unix => {
            let p = path.unwrap_or_default();
            if p.len() > MAX_SOCKET_PATH {
                return bad(format!(
                    "socket path {p} is longer than {MAX_SOCKET_PATH} bytes, the most a unix socket path can have"
                ));
            }
            ChrSource::Unix {
                listen: req.mode.unwrap_or_default() == SocketSide::Bind,
                path: Some(p.into()),
                reconnect: None,
            }
        }
    })
}

/// QMP's `ChardevBackend` for `source`.
fn backend_json(source: &ChrSource) -> Value {
    match source {
        ChrSource::Pty { .. } => json!({"type": "pty", "data": {}}),
        ChrSource::Null => json!({"type": "null", "data": {}}),
        ChrSource::File { path, append } => {
            let mut data = json!({ "out": path });
            if let Some(a) = append {
                data["append"] = json!(a == "on");
            }
            json!({"type": "file", "data": data})
        }
        ChrSource::Unix { listen, path, .. } => {
            let mut data = json!({
                "addr": {"type": "unix", "data": {"path": path.clone().unwrap_or_default()}},
                "server": listen,
            });
            if *listen {
                data["wait"] = json!(false);
            }
            json!({"type": "socket", "data": data})
        }
        other => json!({"type": other.type_name(), "data": {}}),
    }
}

/// A listening socket path of `source`, if it is one.
fn bound_socket(source: &ChrSource) -> Option<PathBuf> {
    match source {
        ChrSource::Unix {
            listen: true,
            path: Some(p),
            ..
        } => Some(PathBuf::from(p)),
        _ => None,
    }
}

/// `d` with the character device `r` (and the console standing for it) given `source`.
/// The path of QEMU's pty `pty` (`/dev/pts/N`) as we can open it: a confined QEMU has its
/// own devpts instance in its own mount namespace, reached through `/proc/PID/root`.
pub(crate) fn pty_from_here(pid: u32, pty: &str) -> String {
    if virtnet_qemu::in_own_mount_namespace(pid) {
        format!("/proc/{pid}/root{pty}")
    } else {
        pty.to_string()
    }
}

fn with_source(d: &Domain, r: &ChrRef, source: &ChrSource) -> Domain {
    let mut d = d.clone();
    let v = &mut d.devices;
    let c = match r.kind {
        ChrKind::Serial => &mut v.serials[r.index],
        ChrKind::Console => &mut v.consoles[r.index],
        ChrKind::Channel => &mut v.channels[r.index],
        ChrKind::Parallel => &mut v.parallels[r.index],
    };
    c.source = source.clone();
    if r.kind == ChrKind::Serial {
        if let Some(con) = v
            .consoles
            .get_mut(r.index)
            .filter(|c| matches!(c.target_type(), None | Some("serial")))
        {
            con.source = source.clone();
        }
    }
    d
}

impl Daemon {
    /// Switches the host side of character device `device` of VM `name` (see the module
    /// docs). Everything is checked before anything changes; the definition is written back
    /// if the live change fails.
    pub async fn chardev_change(
        &self,
        name: &str,
        device: &str,
        req: &ChardevChangeRequest,
    ) -> Result<ChardevChangeResponse> {
        let source = new_source(req)?;
        let entry = self.entry(name)?;
        let mut slot = entry.slot.lock().await;
        if slot.gone {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        let (live, config) = resolve_scope(name, &slot, req.scope())?;
        let live_ref = match (live, &slot.live) {
            (true, Some(l)) => Some(find_chardev(name, &l.domain, device)?),
            _ => None,
        };
        let persistent = if config {
            slot.persistent.clone()
        } else {
            None
        };
        let cfg_ref = match &persistent {
            Some(p) => Some(find_chardev(name, p, device)?),
            None => None,
        };
        if let (Some(sock), true) = (bound_socket(&source), live) {
            if std::fs::symlink_metadata(&sock).is_ok() {
                return Err(DaemonError::BadRequest(format!(
                    "{} exists; QEMU would replace it with its socket: pick a path that does not exist",
                    sock.display()
                )));
            }
        }
        let alias = live_ref
            .as_ref()
            .or(cfg_ref.as_ref())
            .map(|r| r.alias.clone())
            .unwrap_or_default();

        // The definition first (undone by writing the old one back), then the running VM.
        let mut new_def = None;
        if let (Some(r), Some(p)) = (&cfg_ref, &persistent) {
            let d = with_source(p, r, &source);
            self.save_definition(name, &d).await?;
            new_def = Some(d);
        }
        let mut path = source_path(&source);
        if let (Some(r), Some(l)) = (&live_ref, slot.live.as_mut()) {
            let old_chr = r.get(&l.domain).cloned();
            let old_source = old_chr.as_ref().map(|c| c.source.clone());
            let id = r.chardev_id();
            let target = chardev_fd::Target {
                vm: name,
                alias: &r.alias,
                id: &id,
            };
            // A socket QEMU listens on or a file it writes: virtnetd opens it and passes it.
            let mut new_chr = old_chr
                .clone()
                .unwrap_or_else(|| Chardev::new(r.kind, source.clone()));
            new_chr.source = source.clone();
            // A confined QEMU's user is given what the new source opens by name, held by
            // `<vm>/<alias>`; what an earlier change gave it for this device is given back
            // once the switch is recorded.
            let holder = format!("{name}/{}", r.alias);
            let got = match access_for(&l.status, &source, &holder, &r.alias) {
                Ok(g) => g,
                Err(e) => {
                    if new_def.is_some() {
                        self.restore_definition(name, persistent.as_deref()).await;
                    }
                    return Err(e);
                }
            };
            // A new hold (given back if the change fails), unless it holds that path already.
            let granted = got
                .clone()
                .filter(|g| !l.status.host_resources.undo.contains(g));
            let changed = chardev_fd::change(l, &target, &new_chr, backend_json(&source)).await;
            let ret = match changed {
                Ok(v) => v,
                Err(e) => {
                    give_back(granted.iter());
                    if new_def.is_some() {
                        self.restore_definition(name, persistent.as_deref()).await;
                    }
                    return Err(match e {
                        DaemonError::Qmp { source: q } => DaemonError::ChardevChange {
                            vm: name.to_string(),
                            alias: r.alias.clone(),
                            to: source.type_name().to_string(),
                            source: q,
                        },
                        other => other,
                    });
                }
            };
            let mut live_source = source.clone();
            if let ChrSource::Pty { path: p } = &mut live_source {
                *p = ret
                    .get("pty")
                    .and_then(Value::as_str)
                    .map(|pty| pty_from_here(l.status.pid, pty));
                path.clone_from(p);
            }
            let new_live = with_source(&l.domain, r, &live_source);
            let mut status = l.status.clone();
            status.live_xml = new_live.to_xml();
            if let Some(old) = old_source.as_ref().and_then(bound_socket) {
                // Nobody listens there any more. QEMU removes a socket it listened on when it
                // closes it, if it may (a confined QEMU may not): virtnetd made it, it goes.
                if std::fs::symlink_metadata(&old).is_ok_and(|m| m.file_type().is_socket()) {
                    let _ = std::fs::remove_file(&old);
                }
                if !std::fs::symlink_metadata(&old).is_ok_and(|m| m.file_type().is_socket()) {
                    status.sockets_to_remove.retain(|s| s != &old);
                }
            }
            if let Some(sock) = bound_socket(&source) {
                if !status.sockets_to_remove.contains(&sock) {
                    status.sockets_to_remove.push(sock);
                }
            }
            // Switching to the path it holds already keeps that hold (the same record).
            let mut earlier: Vec<HostUndo> = held_by(&status, &holder)
                .into_iter()
                .filter(|u| got.as_ref() != Some(u))
                .collect();
            earlier.extend(start_hold_left(
                &status,
                name,
                old_source.as_ref(),
                &new_live,
            ));
            status.host_resources.undo.retain(|u| !earlier.contains(u));
            status.host_resources.undo.extend(granted.iter().cloned());
            if let Err(e) = self.save_status(&status).await {
                give_back(granted.iter());
                if let Some(old) = old_chr {
                    let back = backend_json(&old.source);
                    if let Err(e2) = chardev_fd::change(l, &target, &old, back).await {
                        tracing::error!(vm = %name, error = %e2, "cannot switch the chardev back");
                    }
                }
                if new_def.is_some() {
                    self.restore_definition(name, persistent.as_deref()).await;
                }
                return Err(e);
            }
            give_back(earlier.iter());
            l.domain = Arc::new(new_live);
            l.status = status;
            tracing::info!(vm = %name, device = %r.alias, to = %source.type_name(), "chardev changed (live)");
        }
        if let Some(d) = new_def {
            slot.persistent = Some(Arc::new(d));
            tracing::info!(vm = %name, device = %alias, to = %source.type_name(), "chardev changed (config)");
        }
        entry.publish(&slot, None);
        Ok(ChardevChangeResponse {
            name: name.into(),
            device: alias,
            type_: req.type_,
            path,
            live,
            config,
        })
    }
}

/// For a confined VM, gives its QEMU user the path `source` opens by name (held by
/// `holder`); the undo record, if anything changed.
fn access_for(
    status: &crate::store::LiveStatus,
    source: &ChrSource,
    holder: &str,
    alias: &str,
) -> Result<Option<HostUndo>> {
    let Some(sb) = &status.sandbox else {
        return Ok(None);
    };
    let Some(need) = paths::chardev_source_path(source, &format!("new source of '{alias}'")) else {
        return Ok(None);
    };
    let g = paths::grants(vec![need], sb, holder).remove(0);
    // A chardev path has no backing chain: at most one record.
    g.apply().map(|v| v.into_iter().next()).map_err(|source| {
        DaemonError::vm(virtnet_vm::VmError::Host {
            what: g.describe(),
            source,
        })
    })
}

/// The grants `holder` has in the VM's record.
fn held_by(status: &crate::store::LiveStatus, holder: &str) -> Vec<HostUndo> {
    status
        .host_resources
        .undo
        .iter()
        .filter(|u| matches!(u, HostUndo::RestoreOwner(g) if g.holder == holder))
        .cloned()
        .collect()
}

/// The start's hold (`<vm>/start`) on the path the old source opened, when nothing of the
/// VM uses that path any more.
fn start_hold_left(
    status: &crate::store::LiveStatus,
    vm: &str,
    old: Option<&ChrSource>,
    new_live: &Domain,
) -> Vec<HostUndo> {
    let Some(old) = old.and_then(|o| paths::chardev_source_path(o, "")) else {
        return Vec::new();
    };
    if paths::domain_paths(new_live)
        .iter()
        .any(|n| n.path == old.path)
    {
        return Vec::new();
    }
    let Ok(real) = std::fs::canonicalize(&old.path) else {
        return Vec::new();
    };
    let holder = format!("{vm}/start");
    held_by(status, &holder)
        .into_iter()
        .filter(|u| matches!(u, HostUndo::RestoreOwner(g) if g.path == real))
        .collect()
}

/// Releases grants; a failure is logged (the owner stays QEMU's user until fixed by hand).
fn give_back<'a>(undo: impl Iterator<Item = &'a HostUndo>) {
    for u in undo {
        if let HostUndo::RestoreOwner(g) = u {
            if let Err(e) = virtnet_host::dac::release(g) {
                tracing::error!(path = %g.path.display(), error = %e, "cannot give a file back");
            }
        }
    }
}

fn source_path(s: &ChrSource) -> Option<String> {
    match s {
        ChrSource::File { path, .. } => Some(path.clone()),
        ChrSource::Unix { path, .. } | ChrSource::Pty { path } => path.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        let mut d = Domain::parse(
            "<domain type='qemu'><name>c</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices><serial type='pty'/><serial type='file'><source path='/tmp/s1'/>\
             <target port='1'/></serial>\
             <channel type='unix'><source mode='bind' path='/tmp/ch'/>\
             <target type='virtio' name='org.example.0'/></channel></devices></domain>",
        )
        .unwrap();
        d.fill_defaults().unwrap();
        d
    }

    #[test]
    fn finds_chardevs_by_alias_id_console_and_channel_name() {
        let d = domain();
        let aliases: Vec<String> = chardev_refs(&d).into_iter().map(|r| r.alias).collect();
        assert_eq!(aliases, ["serial0", "serial1", "channel0"]);
        assert_eq!(find_chardev("c", &d, "serial1").unwrap().index, 1);
        assert_eq!(find_chardev("c", &d, "charserial1").unwrap().index, 1);
        assert_eq!(find_chardev("c", &d, "console0").unwrap().alias, "serial0");
        assert_eq!(
            find_chardev("c", &d, "org.example.0").unwrap().alias,
            "channel0"
        );
        let e = find_chardev("c", &d, "serial7").unwrap_err().to_string();
        assert!(e.contains("serial0, serial1, channel0"), "{e}");
    }

    #[test]
    fn live_names_and_console_follows_serial0() {
        let mut d = domain();
        name_chardevs(&mut d);
        assert_eq!(d.devices.serials[1].info.alias.as_deref(), Some("serial1"));
        let r = find_chardev("c", &d, "serial0").unwrap();
        let src = ChrSource::File {
            path: "/tmp/x".into(),
            append: None,
        };
        let d2 = with_source(&d, &r, &src);
        let xml = d2.to_xml();
        assert_eq!(xml.matches("<source path='/tmp/x'/>").count(), 2, "{xml}");
    }

    #[test]
    fn backends_and_request_checks() {
        let req = |t: ChardevType, p: Option<&str>| ChardevChangeRequest {
            type_: t,
            path: p.map(String::from),
            mode: None,
            append: None,
            live: false,
            config: false,
            persistent: false,
        };
        let s = new_source(&req(ChardevType::Unix, Some("/tmp/a.sock"))).unwrap();
        assert_eq!(
            backend_json(&s),
            json!({"type": "socket", "data": {"addr": {"type": "unix", "data": {"path": "/tmp/a.sock"}}, "server": true, "wait": false}})
        );
        let s = new_source(&req(ChardevType::File, Some("/tmp/f"))).unwrap();
        assert_eq!(
            backend_json(&s),
            json!({"type": "file", "data": {"out": "/tmp/f"}})
        );
        assert_eq!(
            backend_json(&new_source(&req(ChardevType::Pty, None)).unwrap()),
            json!({"type": "pty", "data": {}})
        );
        assert!(new_source(&req(ChardevType::File, None)).is_err());
        assert!(new_source(&req(ChardevType::File, Some("rel/x"))).is_err());
        assert!(new_source(&req(ChardevType::Pty, Some("/dev/pts/1"))).is_err());
        let long = format!("/{}", "x".repeat(120));
        assert!(new_source(&req(ChardevType::Unix, Some(&long))).is_err());
    }
}
