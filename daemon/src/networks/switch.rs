//! One `virtnet-vswitch` process: spawning it, talking to its control socket (JSON lines,
//! vhost-net/CONTROL.md), stopping it, and telling whether a recorded pid is still it.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use virtnet_vswitch_control::{Request, Response};

use crate::error::{DaemonError, Result};

/// How long a started switch has to answer on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a control request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The switch binary: `$VIRTNETD_VSWITCH`, else `virtnet-vswitch` next to our own executable
/// (or one directory up, for test binaries in `target/*/deps`), else the first on `PATH`.
/// Looked up at each network start (not once at daemon start), so a switch installed while
/// virtnetd runs is found; when none is found the error lists every directory searched.
pub fn vswitch_binary() -> Result<PathBuf> {
    locate(
        std::env::var_os("VIRTNETD_VSWITCH"),
        std::env::current_exe().ok().as_deref(),
        std::env::var_os("PATH"),
    )
    .map_err(|looked| DaemonError::SwitchNotFound { looked })
}

/// The lookup of [`vswitch_binary`] on explicit inputs: the override (used as is, unless
/// empty), our
/// executable, `PATH`. Err: the directories searched, in order.
fn locate(
    over: Option<std::ffi::OsString>,
    exe: Option<&Path>,
    path: Option<std::ffi::OsString>,
) -> std::result::Result<PathBuf, Vec<PathBuf>> {
    if let Some(p) = over.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = exe
        .map(|e| {
            e.ancestors()
                .skip(1)
                .take(2)
                .map(Path::to_path_buf)
                .collect()
        })
        .unwrap_or_default();
    if let Some(path) = path {
        dirs.extend(std::env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()));
    }
    let mut looked = Vec::new();
    for dir in dirs {
        let p = dir.join("virtnet-vswitch");
        if p.is_file() {
            return Ok(p);
        }
        if !looked.contains(&dir) {
            looked.push(dir);
        }
    }
    Err(looked)
}

/// Spawns the switch in `dir` (its working directory) with its control socket at `control`
/// (in `dir`) and the uplink tap, in its own process group so that it outlives virtnetd;
/// waits until the control socket answers. Returns the child (to be reaped by the caller).
///
/// When virtnetd is root the switch runs confined ([`virtnet_host::SwitchIdentity`]): as
/// `virtnet-switch` with QEMU's group, no capability, NoNewPrivs; `dir` is made a switch
/// directory (`virtnet-switch:virtnet-qemu 2770`); the uplink tap is opened here and passed
/// as an fd (`--uplink-fd`). The switch works inside `dir` by relative paths (its control
/// socket, the NICs' sockets: [`switch_path`]), so the directories above it need not be
/// reachable for its user. Otherwise (virtnetd not root) it runs as virtnetd's user and opens
/// the tap itself. `qemu_user` is QEMU's user: the switch joins its group and shares `dir`
/// with it.
pub async fn spawn(
    binary: &Path,
    dir: &Path,
    control: &Path,
    uplink: Option<&str>,
    log: &Path,
    qemu_user: &str,
) -> Result<std::process::Child> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| DaemonError::store("open the switch log", log, e))?;
    let err_file = log_file
        .try_clone()
        .map_err(|e| DaemonError::store("open the switch log", log, e))?;
    let mut cmd = Command::new(binary);
    cmd.current_dir(dir)
        .arg("--control")
        .arg(switch_path(dir, control));
    // Held until the switch has its own copy (after spawn).
    let mut tap_fd = None;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let id = virtnet_host::SwitchIdentity::ensure(qemu_user)
            .map_err(|source| DaemonError::SwitchUser { source })?;
        id.prepare_dir(dir)
            .map_err(|e| DaemonError::store("share the switch directory", dir, e))?;
        let mut confinement = id.confinement;
        if let Some(tap) = uplink {
            let fd =
                virtnet_host::open_tap_fd(tap).map_err(|source| DaemonError::SwitchUplink {
                    tap: tap.to_string(),
                    source,
                })?;
            let n = fd.as_raw_fd();
            cmd.arg("--uplink-fd").arg(n.to_string());
            confinement.keep_fds.push(n);
            tap_fd = Some(fd);
        }
        confinement.install(&mut cmd);
    } else if let Some(tap) = uplink {
        cmd.arg("--uplink").arg(tap);
    }
    cmd.stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .process_group(0);
    let spawned = cmd.spawn();
    drop(tap_fd);
    let mut child = spawned.map_err(|source| DaemonError::SwitchSpawn {
        binary: binary.to_path_buf(),
        source,
    })?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DaemonError::SwitchExited {
                binary: binary.to_path_buf(),
                status,
                log: log.to_path_buf(),
            });
        }
        if request(control, &Request::ListPorts).await.is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DaemonError::SwitchStartTimeout {
                control: control.to_path_buf(),
                timeout: START_TIMEOUT,
                log: log.to_path_buf(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `path` as the switch in `dir` names it: relative to `dir` when inside it, else as is.
pub fn switch_path(dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// One request on the control socket (the switch's own types, `virtnet-vswitch-control`); the
/// reply when it says `ok`, else its error.
pub async fn request(control: &Path, req: &Request) -> Result<Response> {
    let io = |source: std::io::Error| DaemonError::SwitchIo {
        control: control.to_path_buf(),
        source,
    };
    let fut = async {
        let stream = UnixStream::connect(control).await.map_err(io)?;
        let (r, mut w) = stream.into_split();
        w.write_all(req.to_line().as_bytes()).await.map_err(io)?;
        let mut reply = String::new();
        BufReader::new(r).read_line(&mut reply).await.map_err(io)?;
        let v = Response::from_line(&reply).map_err(|source| DaemonError::SwitchReply {
            control: control.to_path_buf(),
            reply: reply.trim_end().to_string(),
            source,
        })?;
        v.into_result()
            .map_err(|reason| DaemonError::SwitchRefused {
                request: req.to_line().trim_end().to_string(),
                reason,
            })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| DaemonError::SwitchTimeout {
            control: control.to_path_buf(),
            timeout: REQUEST_TIMEOUT,
        })?
}

/// The start time of `pid` (field 22 of /proc/PID/stat), to tell it from a reused pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is the process that started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// SIGTERM, up to 5 s, then SIGKILL; waits until `pid` is gone (reaped by whoever owns it).
pub async fn stop(pid: i32, start: u64) {
    if !alive(pid, start) {
        return;
    }
    // SAFETY: kill(2) with a pid we checked is our switch; no memory involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid, start) {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Gives the uplink tap its address and brings it up (`ip`), after the switch created it.
pub fn configure_uplink(tap: &str, ip: Option<(std::net::Ipv4Addr, u8)>) -> Result<()> {
    let run =
        |args: &[&str]| -> Result<()> {
            let command = || format!("ip {}", args.join(" "));
            let out = Command::new("ip").args(args).output().map_err(|source| {
                DaemonError::CommandSpawn {
                    command: command(),
                    source,
                }
            })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(DaemonError::CommandFailed {
                    command: command(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                })
            }
        };
    if let Some((a, p)) = ip {
        let cidr = format!("{a}/{p}");
        run(&["addr", "replace", &cidr, "dev", tap])?;
    }
    run(&["link", "set", "dev", tap, "up"])
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    /// Nothing found: the error names every directory searched (next to virtnetd, one up,
    /// PATH); once the switch appears in one of them the next lookup finds it.
    #[test]
    fn lookup_lists_the_places_looked_in_and_finds_a_switch_installed_later() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("sbin");
        let other = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let exe = bin.join("virtnetd");
        let path = std::env::join_paths([&other, &bin]).unwrap();
        let looked = locate(None, Some(&exe), Some(path.clone())).unwrap_err();
        assert_eq!(
            looked,
            vec![bin.clone(), tmp.path().to_path_buf(), other.clone()]
        );
        let msg = DaemonError::SwitchNotFound { looked }.to_string();
        assert!(
            msg.contains(&format!("looked in {}, ", bin.display())),
            "{msg}"
        );
        assert!(msg.contains("set VIRTNETD_VSWITCH"), "{msg}");

        std::fs::write(other.join("virtnet-vswitch"), "").unwrap();
        assert_eq!(
            locate(None, Some(&exe), Some(path.clone())).unwrap(),
            other.join("virtnet-vswitch")
        );
        std::fs::write(bin.join("virtnet-vswitch"), "").unwrap();
        assert_eq!(
            locate(None, Some(&exe), Some(path)).unwrap(),
            bin.join("virtnet-vswitch")
        );
        assert_eq!(
            locate(Some("/opt/sw".into()), Some(&exe), None).unwrap(),
            PathBuf::from("/opt/sw")
        );
    }
}
