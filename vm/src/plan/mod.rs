//! Planning a VM start: pure, no I/O. [`plan_start`] turns a [`Domain`] and a
//! [`PlanContext`] into a [`StartPlan`] value: host steps with the fd numbers QEMU will see,
//! the QEMU argv, the QMP commands after start. The executor ([`crate::exec`]) only carries
//! it out.

mod cgroup;
pub mod hotplug;
pub mod migrate;
mod network;
mod nic;
mod passfd;
pub mod paths;
mod sandbox;
mod types;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde_json::json;
use virtnet_conf::devices::ChrSource;
use virtnet_conf::Domain;
use virtnet_qemu::argv::{build_argv, RuntimePaths};
use virtnet_qemu::validate::{validate_domain, Operation};
use virtnet_qemu::{post_start_qmp, QemuCaps, Sandbox};

pub use cgroup::{CgroupOptions, DEFAULT_QEMU_PIDS_MAX};
pub use hotplug::{
    describe_undo, live_ids, plan_attach, plan_detach, AttachAction, AttachPlan, AttachStep,
    AttachStepId, AttachUndo, DetachPlan, DetachStep, FdFrom,
};
pub use migrate::{
    destination_domain, ovs_iface_ids, plan_migrate, MigrateAction, MigrateOptions, MigratePlan,
    MigrateStep, MigrateUndo, OvnMove, Stream, UNIX_URI,
};
pub use network::{
    defined_network_interface, resolve_network_interface, resolve_networks, NetworkPort,
    ResolvedNetwork,
};
pub use nic::{bandwidth_limits, effective_caps, nic_plan};
pub use passfd::{PassFd, PassFdUndo};
pub use types::{
    FdNaming, FdSink, HostStep, NicPlan, PlannedBackend, PlannedCaps, QmpCommand, StartPlan,
};

use crate::error::VmError;

/// Longest unix socket path (`sun_path` holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What the plan needs to know besides the domain. Probe it once per QEMU binary
/// ([`crate::probe_caps`]) and pick a run dir per VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanContext {
    /// The QEMU binary (`/usr/bin/qemu-system-x86_64`).
    pub qemu_binary: PathBuf,
    /// Its version and whether `/dev/vhost-net` is usable.
    pub caps: QemuCaps,
    /// The per-VM run directory (QMP socket, log unless `log_path`); must not exist yet.
    pub run_dir: PathBuf,
    /// QEMU's log file; `None` = `<run_dir>/qemu.log` (removed with the run dir).
    pub log_path: Option<PathBuf>,
    /// The first fd number QEMU inherits (3 or more); the rest follow in order.
    pub first_fd: i32,
    /// How QEMU is confined; `None` = it runs as the caller's user, unconfined. Its
    /// identity is used; the plan decides its `/dev` nodes and paths from the domain (and a
    /// domain with `<seclabel type='none'/>` runs unconfined).
    pub sandbox: Option<Sandbox>,
    /// The VM's own cgroup (default: made, with [`DEFAULT_QEMU_PIDS_MAX`]); `None` = QEMU
    /// stays in the caller's groups (and a domain asking for `<memtune>`/`<cputune>` limits
    /// is refused: nothing would enforce them).
    pub cgroup: Option<CgroupOptions>,
    /// Directories a confined QEMU must not see (virtnetd's state dir and run-dir root: the
    /// VMs' run dirs, the API socket, the live status).
    pub hide: Vec<PathBuf>,
    /// Directories inside hidden ones a confined QEMU still reaches by path (the switch
    /// networks' directory, where QEMU listens on its vhost-user sockets: QEMU 7.2 takes no
    /// passed fd for a vhost-user netdev).
    pub reach: Vec<PathBuf>,
    /// Start as the destination of a live migration: QEMU gets `-incoming defer`, and the
    /// commands after start end with `migrate-incoming` on this URI instead of `cont` (the
    /// guest runs once the migration's finish `cont`s it); with an `fd:NAME` URI the caller
    /// sends `migrate-incoming` once it has passed the fd. `None` = a normal start.
    pub incoming: Option<String>,
}

impl PlanContext {
    /// A context with the log in the run dir and inherited fds from 3.
    pub fn new(
        qemu_binary: impl Into<PathBuf>,
        caps: QemuCaps,
        run_dir: impl Into<PathBuf>,
    ) -> Self {
        PlanContext {
            qemu_binary: qemu_binary.into(),
            caps,
            run_dir: run_dir.into(),
            log_path: None,
            first_fd: 3,
            sandbox: None,
            cgroup: Some(CgroupOptions::default()),
            hide: Vec::new(),
            reach: Vec::new(),
            incoming: None,
        }
    }
}

/// Plans the start of `domain` (from [`virtnet_conf::load_domain`]: defaults filled,
/// validated; every non-hostdev interface needs a MAC).
///
/// Errors: a configuration the validation layer refuses for start ([`VmError::Refused`]:
/// [`virtnet_qemu::validate::validate_domain`], also with `ctx.caps`), a command line that
/// cannot be built
/// ([`VmError::Argv`]), an unusable context ([`VmError::InvalidContext`]).
pub fn plan_start(domain: &Domain, ctx: &PlanContext) -> Result<StartPlan, VmError> {
    if ctx.first_fd < 3 {
        return Err(VmError::InvalidContext(format!(
            "first_fd is {}; fds 0-2 are QEMU's stdin/stdout/stderr, start at 3 or more",
            ctx.first_fd
        )));
    }
    let qmp_socket = ctx.run_dir.join("qmp.sock");
    if qmp_socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(VmError::InvalidContext(format!(
            "the QMP socket path {} is longer than {MAX_SOCKET_PATH} bytes, the most a unix \
             socket path can have: use a shorter run dir",
            qmp_socket.display()
        )));
    }
    validate_domain(Operation::Start, domain, Some(&ctx.caps)).map_err(VmError::Refused)?;
    let cgroup = match &ctx.cgroup {
        Some(opts) => Some(cgroup::cgroup_spec(domain, opts)?),
        None if domain.memtune.is_some() || domain.cputune.is_some() => {
            return Err(VmError::InvalidContext(
                "<memtune>/<cputune> limits need the VM's cgroup, which is off here: enable \
                 cgroups or remove the limits"
                    .into(),
            ))
        }
        None => None,
    };
    let caps = effective_caps(domain, &ctx.caps);
    let mut fds = FdNaming::Inherit { next: ctx.first_fd };
    let nics = (0..domain.devices.interfaces.len())
        .map(|i| nic_plan(domain, i, &caps, &mut fds))
        .collect::<Result<Vec<_>, _>>()?;
    let backends: Vec<_> = nics.iter().map(NicPlan::qemu_backend).collect();
    let FdNaming::Inherit { next } = fds else {
        unreachable!("a start plan inherits its fds")
    };
    let passed = passfd::plan_fds(domain, &qmp_socket, next);
    let sandbox = sandbox::sandbox_for(domain, ctx);
    let paths = RuntimePaths {
        sandbox: sandbox.is_some(),
        qmp_fd: Some(passed.qmp_fd),
        chardev_fds: passed.chardev_fds,
        ..RuntimePaths::new(&qmp_socket)
    };
    let mut argv = build_argv(domain, &caps, &backends, &paths).map_err(VmError::argv)?;
    let mut post_start: Vec<QmpCommand> = post_start_qmp(domain)
        .into_iter()
        .map(|(execute, arguments)| QmpCommand { execute, arguments })
        .collect();
    match &ctx.incoming {
        None => post_start.push(QmpCommand {
            execute: "cont".into(),
            arguments: json!({}),
        }),
        Some(uri) => {
            argv.extend(["-incoming".to_string(), "defer".to_string()]);
            post_start.extend(migrate::incoming_commands(uri));
        }
    }
    // What the plan decided (a domain opting out gets no sandbox, so nothing to grant).
    let access = sandbox
        .as_ref()
        .map(|sb| access(domain, &nics, sb))
        .unwrap_or_default();
    Ok(StartPlan {
        name: domain.name().to_string(),
        qemu_binary: ctx.qemu_binary.clone(),
        log_path: ctx
            .log_path
            .clone()
            .unwrap_or_else(|| ctx.run_dir.join("qemu.log")),
        run_dir: ctx.run_dir.clone(),
        qmp_socket,
        caps: PlannedCaps {
            version: caps.version.to_string(),
            vhost_net: caps.vhost_net,
        },
        pass_fds: passed.steps,
        host_steps: nics.iter().flat_map(|n| n.steps.clone()).collect(),
        sockets_to_remove: listening_sockets(domain, &nics),
        nics,
        argv,
        post_start,
        sandbox,
        cgroup,
        access,
    })
}

/// What a confined QEMU's user must be given: the domain's paths (held by `<vm>/start`), then
/// each NIC's socket (held by `<vm>/<device id>`, so unplugging that NIC gives it back).
fn access(domain: &Domain, nics: &[NicPlan], sb: &Sandbox) -> Vec<virtnet_host::GrantSpec> {
    let vm = domain.name();
    let mut v = paths::grants(paths::domain_paths(domain), sb, &format!("{vm}/start"));
    for (n, iface) in nics.iter().zip(&domain.devices.interfaces) {
        let what = format!("interface {}", n.device_id);
        if let Some(need) = paths::interface_path(iface, &what) {
            v.extend(paths::grants(
                vec![need],
                sb,
                &format!("{vm}/{}", n.device_id),
            ));
        }
    }
    v
}

/// Unix sockets QEMU will listen on outside the run dir (QEMU leaves them behind when killed).
fn listening_sockets(domain: &Domain, nics: &[NicPlan]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = nics
        .iter()
        .filter_map(|n| match &n.backend {
            PlannedBackend::VhostUser { socket, mode } if mode == "server" => {
                Some(PathBuf::from(socket))
            }
            _ => None,
        })
        .collect();
    let d = &domain.devices;
    for c in d.serials.iter().chain(&d.consoles).chain(&d.channels) {
        if let ChrSource::Unix {
            listen: true,
            path: Some(p),
            ..
        } = &c.source
        {
            let p = PathBuf::from(p);
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    v
}
