//! `virtnetd`: the virtnet daemon. See the crate documentation of `virtnetd`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;
use virtnetd::config::{
    Config, DEFAULT_QEMU, DEFAULT_QEMU_USER, DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, RO_GROUP,
    RO_SOCKET_NAME, SOCKET_NAME,
};
use virtnetd::Server;

/// The virtnet daemon: owns the VMs, serves the `virtnet` CLI (JSON over HTTP/1.1 on a unix
/// socket).
///
/// Log level: VIRTNETD_LOG (e.g. `debug`, `virtnetd=trace`), default `info`. Run by systemd
/// as virtnetd.service (state in /var/lib/virtnet, API socket /run/virtnet/virtnetd.sock).
#[derive(Parser)]
#[command(name = "virtnetd", version)]
struct Args {
    /// API socket, root only (mode 0600) [default: RUN_DIR/virtnetd.sock].
    #[arg(long, env = "VIRTNETD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Read-only API socket (queries only; changes get 403), mode 0660 for --ro-group
    /// [default: RUN_DIR/virtnetd-ro.sock].
    #[arg(long, env = "VIRTNETD_RO_SOCKET", value_name = "PATH")]
    ro_socket: Option<PathBuf>,
    /// Serve no read-only socket.
    #[arg(long, conflicts_with = "ro_socket")]
    no_ro_socket: bool,
    /// Socket speaking libvirt's remote protocol, root only (mode 0600), for virsh and
    /// python3-libvirt: `virsh -c 'qemu+unix:///system?socket=PATH'`
    /// [default: RUN_DIR/libvirt-sock].
    #[arg(long, env = "VIRTNETD_LIBVIRT_SOCKET", value_name = "PATH")]
    libvirt_socket: Option<PathBuf>,
    /// Serve no libvirt protocol socket.
    #[arg(long, conflicts_with = "libvirt_socket")]
    no_libvirt_socket: bool,
    /// The group whose members may use the read-only socket; created (system group) when
    /// missing.
    #[arg(long, env = "VIRTNETD_RO_GROUP", value_name = "NAME", default_value = RO_GROUP)]
    ro_group: String,
    /// Persistent state (definitions in STATE_DIR/domains/NAME.xml).
    #[arg(long, env = "VIRTNETD_STATE_DIR", value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Run-time state (live status NAME.json, VM run dirs).
    #[arg(long, env = "VIRTNETD_RUN_DIR", value_name = "DIR", default_value = DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    /// QEMU binary for domains without <emulator>.
    #[arg(long, env = "VIRTNETD_QEMU", value_name = "PATH", default_value = DEFAULT_QEMU)]
    qemu: PathBuf,
    /// Seconds a NIC hot-plug waits for a vhost-user back end to connect to a socket QEMU
    /// listens on (mode='server') before giving up.
    #[arg(
        long,
        env = "VIRTNETD_BACKEND_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    backend_timeout: f64,
    /// Seconds QEMU may take to bring up its monitor at start (it waits for the back ends of
    /// mode='server' vhost-user NICs first).
    #[arg(
        long,
        env = "VIRTNETD_START_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    start_timeout: f64,
    /// The most tasks (threads) each QEMU may have: its cgroup's pids.max, where the host
    /// has the pids controller. 0 = no cap.
    #[arg(
        long,
        env = "VIRTNETD_QEMU_PIDS_MAX",
        value_name = "N",
        default_value_t = virtnet_vm::DEFAULT_QEMU_PIDS_MAX
    )]
    qemu_pids_max: u64,
    /// Confine QEMU (on): run it as --qemu-user with no capabilities, NoNewPrivs, QEMU's
    /// seccomp filter (-sandbox) and its own mount namespace with a private /dev. Off: QEMU
    /// runs as virtnetd's user, unconfined (one domain opts out with <seclabel type='none'/>).
    #[arg(long, env = "VIRTNETD_SANDBOX", value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    sandbox: String,
    /// The user confined QEMUs run as; created (system user, own group) when missing.
    #[arg(long, env = "VIRTNETD_QEMU_USER", value_name = "NAME", default_value = DEFAULT_QEMU_USER)]
    qemu_user: String,
    /// The Open vSwitch database for <virtualport type='openvswitch'> ports, as ovs-vsctl's
    /// --db takes it (unix:PATH, tcp:IP:PORT); default: ovs-vsctl's own
    /// (unix:/var/run/openvswitch/db.sock).
    #[arg(long, env = "VIRTNETD_OVSDB", value_name = "unix:PATH")]
    ovsdb: Option<String>,
    /// OVN's Northbound database, as ovn-nbctl's --db takes it (unix:PATH, tcp:IP:PORT,
    /// ssl:IP:PORT). Set: a live migration of a VM with Open vSwitch NICs moves their logical
    /// switch ports (options:requested-chassis with both chassis and activation-strategy=rarp
    /// during the move, the destination's alone after). Unset (default): no OVN handling.
    #[arg(long, env = "VIRTNETD_OVN_NB", value_name = "unix:PATH")]
    ovn_nb: Option<String>,
    /// Write the man page virtnetd.1 into DIR and exit (used by scripts/install).
    #[arg(long, hide = true, value_name = "DIR")]
    man: Option<PathBuf>,
    /// Also serve Prometheus metrics (`GET /metrics` only) on this TCP address, e.g.
    /// 127.0.0.1:9860; they are always served on the API socket too.
    #[arg(long, env = "VIRTNETD_METRICS_LISTEN", value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
}

/// Writes `virtnetd.1`, generated from [`Args`], into `dir` (created if missing).
fn write_man(dir: &std::path::Path) -> ExitCode {
    let mut page = Vec::new();
    let written = clap_mangen::Man::new(Args::command())
        .render(&mut page)
        .and_then(|()| std::fs::create_dir_all(dir))
        .and_then(|()| std::fs::write(dir.join("virtnetd.1"), page));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "virtnetd: cannot write the man page into {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// `secs` as a duration, refusing what is not a positive number of seconds.
fn seconds(what: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{what} must be a positive number of seconds, not {secs}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.man {
        return write_man(dir);
    }
    let filter = EnvFilter::try_from_env("VIRTNETD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let (backend_timeout, start_timeout) = match (
        seconds("backend-timeout", args.backend_timeout),
        seconds("start-timeout", args.start_timeout),
    ) {
        (Ok(b), Ok(s)) => (b, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("virtnetd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics_listen = args.metrics_listen;
    let config = Config {
        socket: args
            .socket
            .unwrap_or_else(|| args.run_dir.join(SOCKET_NAME)),
        ro_socket: (!args.no_ro_socket).then(|| {
            args.ro_socket
                .unwrap_or_else(|| args.run_dir.join(RO_SOCKET_NAME))
        }),
        libvirt_socket: (!args.no_libvirt_socket).then(|| {
            args.libvirt_socket
                .unwrap_or_else(|| args.run_dir.join(virtnetd::rpc::SOCKET_NAME))
        }),
        ro_group: args.ro_group,
        state_dir: args.state_dir,
        run_dir: args.run_dir,
        qemu: args.qemu,
        backend_timeout,
        start_timeout,
        qemu_pids_max: (args.qemu_pids_max > 0).then_some(args.qemu_pids_max),
        sandbox: args.sandbox == "on",
        qemu_user: args.qemu_user,
        ovsdb: args.ovsdb,
        ovn_nb: args.ovn_nb,
    };
    // One thread runs every task: the daemon's work is waiting on sockets (API clients, QMP,
    // switches) and short bursts of CPU, and its replies wait on QEMU, which needs the cores.
    // A work-stealing pool wakes idle workers as tasks become ready (several thread wake-ups
    // per QMP command) and they compete with QEMU's threads on small machines; measured on
    // NIC hot-plug (daemon/bench-results/hotplug.md). Blocking store I/O on disk still goes
    // to tokio's blocking threads (`Daemon::with_store`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("virtnetd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let server = Server::bind(config).await?;
        if let Some(addr) = metrics_listen {
            let listener = virtnetd::metrics::listen::bind(addr).await?;
            tracing::info!(%addr, "serving metrics");
            tokio::spawn(virtnetd::metrics::listen::serve(
                listener,
                server.daemon().clone(),
            ));
        }
        let daemon = server.run(stop_signal()).await;
        // Running VMs stay up for the next virtnetd to recover: leak their handles rather
        // than kill their QEMUs by dropping them.
        std::mem::forget(daemon);
        virtnetd::Result::Ok(())
    });
    match result {
        Ok(()) => {
            // Do not drop the runtime's tasks' VM handles either.
            std::mem::forget(runtime);
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("virtnetd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop virtnetd with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
