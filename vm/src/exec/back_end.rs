//! Telling "QEMU waited for a vhost-user back end" apart from other start timeouts.

use std::path::Path;
use std::time::Duration;

use virtnet_qemu::QemuError;

use crate::error::VmError;
use crate::plan::{PlannedBackend, StartPlan};

/// [`VmError::NoBackEnd`] when QEMU's start deadline passed while QEMU waited for a back end
/// to connect to the socket of a vhost-user NIC it listens on (`mode='server'`).
///
/// QEMU 7.2 waits for that before its monitor answers (the chardev's default `wait=on`, and
/// `netdev vhost-user` waits too, for the handshake as well: a back end that connects and stays
/// silent logs nothing more), so no QMP step can watch it: the deadline is
/// [`super::ExecOptions::start_timeout`], and QEMU's log line `QEMU waiting for connection on:
/// disconnected:unix:PATH,server=on` tells which socket it was waiting on.
pub(super) fn waiting_for_back_end(
    plan: &StartPlan,
    e: &QemuError,
    deadline: Duration,
) -> Option<VmError> {
    // QMP not up in time: QEMU's monitor socket not there yet (`StartTimeout`, with the log's
    // tail), or there but no greeting (`Protocol`: the monitor is created before the NICs'
    // chardevs, the greeting comes from the main loop).
    let log = match e {
        QemuError::StartTimeout { tail, .. } => tail.clone(),
        QemuError::Protocol(_) | QemuError::QmpConnect { .. } => log_tail(&plan.log_path),
        _ => return None,
    };
    let waited = match e {
        QemuError::StartTimeout { timeout, .. } => *timeout,
        _ => deadline,
    };
    let waiting = log
        .lines()
        .rev()
        .find_map(|l| l.split_once("QEMU waiting for connection on: disconnected:unix:"))?
        .1;
    plan.nics.iter().find_map(|nic| match &nic.backend {
        PlannedBackend::VhostUser { socket, mode }
            if mode == "server" && waiting.strip_prefix(socket.as_str()) == Some(",server=on") =>
        {
            Some(VmError::NoBackEnd {
                nic: format!(
                    "interface {} (#{}, type='{}')",
                    nic.mac
                        .map_or_else(|| "without MAC".to_string(), |m| m.to_string()),
                    nic.index,
                    nic.type_
                ),
                socket: socket.clone(),
                waited,
                at_start: true,
            })
        }
        _ => None,
    })
}

/// The last 8 KiB of QEMU's log (empty when unreadable).
fn log_tail(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let from = bytes.len().saturating_sub(8192);
    String::from_utf8_lossy(&bytes[from..]).into_owned()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use virtnet_qemu::{QemuCaps, QemuVersion};

    use super::*;
    use crate::plan::{plan_start, PlanContext};

    fn plan(mode: &str) -> StartPlan {
        let d = virtnet_conf::load_domain(&format!(
            "<domain type='qemu'><name>vm1</name><memory unit='MiB'>64</memory>
             <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
             <os><type arch='x86_64' machine='pc'>hvm</type></os>
             <devices><interface type='vhostuser'><mac address='52:54:00:00:00:06'/>
             <source type='unix' path='/run/vhost/a.sock' mode='{mode}'/>
             <model type='virtio'/></interface></devices></domain>"
        ))
        .unwrap();
        let caps = QemuCaps {
            version: QemuVersion::new(7, 2, 22),
            vhost_net: false,
        };
        plan_start(
            &d,
            &PlanContext::new("/usr/bin/qemu", caps, "/run/virtnet/vm1"),
        )
        .unwrap()
    }

    fn timeout(tail: &str) -> QemuError {
        QemuError::StartTimeout {
            pid: 1,
            socket: PathBuf::from("/run/virtnet/vm1/qmp.sock"),
            timeout: Duration::from_secs(3),
            reason: "connection refused".into(),
            log: PathBuf::from("/run/virtnet/vm1/qemu.log"),
            tail: tail.into(),
        }
    }

    /// What QEMU 7.2 logs (seen on this machine).
    const WAITING: &str = "qemu-system-x86_64: -chardev socket,id=charnet0,\
        path=/run/vhost/a.sock,server=on: info: QEMU waiting for connection on: \
        disconnected:unix:/run/vhost/a.sock,server=on";

    #[test]
    fn a_start_timeout_waiting_on_a_server_socket_names_it() {
        let e = waiting_for_back_end(&plan("server"), &timeout(WAITING), Duration::from_secs(3))
            .unwrap();
        let VmError::NoBackEnd {
            socket,
            nic,
            waited,
            at_start,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(socket, "/run/vhost/a.sock");
        assert!(nic.contains("52:54:00:00:00:06"), "{nic}");
        assert_eq!(*waited, Duration::from_secs(3));
        assert!(*at_start);
        assert!(e.is_user_error(), "the back end is the user's to start");
        assert!(e.to_string().contains("no back end connected"), "{e}");
        assert!(
            e.to_string().contains("did not answer QEMU's handshake"),
            "{e}"
        );
    }

    const D: Duration = Duration::from_secs(3);

    #[test]
    fn no_greeting_reads_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan("server");
        p.log_path = dir.path().join("qemu.log");
        std::fs::write(&p.log_path, format!("{WAITING}\n")).unwrap();
        let e = QemuError::Protocol("no QMP greeting within 3s".into());
        let found = waiting_for_back_end(&p, &e, Duration::from_secs(4)).unwrap();
        assert!(
            matches!(found, VmError::NoBackEnd { waited, .. } if waited == Duration::from_secs(4)),
            "{found:?}"
        );
    }

    #[test]
    fn other_start_timeouts_stay_what_they_are() {
        assert!(waiting_for_back_end(&plan("server"), &timeout("something else"), D).is_none());
        assert!(waiting_for_back_end(&plan("client"), &timeout(WAITING), D).is_none());
        let other = QemuError::EarlyExit {
            status: "exit 1".into(),
            log: PathBuf::from("/x"),
            tail: WAITING.into(),
        };
        assert!(waiting_for_back_end(&plan("server"), &other, D).is_none());
    }
}
