//! `virtnet-vswitch`: the vhost-user-net switch daemon.
//!
//! ```text
//! virtnet-vswitch --control PATH [--uplink TAP | --uplink-fd N] [--port NAME=SOCKET[,mode=client|server][,queues=N][,mtu=N]]...
//!                 [--poll-us N] [--poll-threads N] [--ageing-secs N] [--seccomp on|log|off]
//! ```
//! Runs until SIGTERM or SIGINT, then disconnects every port and removes its sockets.
//!
//! Confinement: virtnetd starts it as an unprivileged user with no capability and
//! NoNewPrivs (`virtnet_host::Confinement`), the uplink tap opened by virtnetd and inherited
//! as fd N (`--uplink-fd`). The switch itself sets its umask to 007 (sockets it creates are
//! reachable by the group of its directory, QEMU's) and, before any thread starts, installs
//! its seccomp filter ([`virtnet_vhost_net::seccomp`]), which every thread inherits.
//! `--uplink TAP` opens the tap itself (needs CAP_NET_ADMIN; unconfined runs only).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use virtnet_vhost_net::control::ControlServer;
use virtnet_vhost_net::seccomp::SeccompMode;
use virtnet_vhost_net::{Error, PortConfig, SocketMode, Switch, SwitchConfig};

const USAGE: &str = "usage: virtnet-vswitch --control PATH [--uplink TAP | --uplink-fd N] \
[--port NAME=SOCKET[,mode=client|server][,queues=N][,mtu=N]]... [--poll-us N] [--poll-threads N] [--ageing-secs N] \
[--seccomp on|log|off]";

/// Where the uplink comes from.
enum Uplink {
    /// A tap the switch opens by name.
    Name(String),
    /// A tap fd it inherited.
    Fd(OwnedFd),
}

struct Args {
    control: PathBuf,
    uplink: Option<Uplink>,
    seccomp: SeccompMode,
    ports: Vec<PortConfig>,
    config: SwitchConfig,
}

fn parse_port(spec: &str) -> Result<PortConfig, Error> {
    let bad = |m: String| Error::Usage(format!("--port {spec}: {m}\n{USAGE}"));
    let mut parts = spec.split(',');
    let first = parts.next().unwrap_or_default();
    let (name, path) = first
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SOCKET".into()))?;
    let mut cfg = PortConfig::new(name, path);
    for opt in parts {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| bad(format!("option '{opt}' is not KEY=VALUE")))?;
        match k {
            "mode" => {
                cfg.mode = match v {
                    "client" => SocketMode::Client,
                    "server" => SocketMode::Server,
                    _ => return Err(bad(format!("mode must be client or server, not '{v}'"))),
                }
            }
            "queues" => cfg.queues = v.parse().map_err(|_| bad(format!("queues={v}")))?,
            "mtu" => cfg.mtu = v.parse().map_err(|_| bad(format!("mtu={v}")))?,
            _ => return Err(bad(format!("unknown option '{k}'"))),
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

fn parse_args() -> Result<Args, Error> {
    let mut it = std::env::args().skip(1);
    let mut control = None;
    let mut uplink = None;
    let mut seccomp = SeccompMode::default();
    let mut ports = Vec::new();
    let mut config = SwitchConfig::default();
    while let Some(a) = it.next() {
        let mut val = |what: &str| {
            it.next()
                .ok_or_else(|| Error::Usage(format!("{a} needs {what}\n{USAGE}")))
        };
        match a.as_str() {
            "--control" => control = Some(PathBuf::from(val("a path")?)),
            "--uplink" => uplink = Some(Uplink::Name(val("a tap name")?)),
            "--uplink-fd" => uplink = Some(Uplink::Fd(inherited_fd(&val("an fd number")?)?)),
            "--seccomp" => seccomp = val("on, log or off")?.parse()?,
            "--port" => ports.push(parse_port(&val("NAME=SOCKET")?)?),
            "--poll-us" => {
                let v = val("microseconds")?;
                let us: u64 = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--poll-us {v}: not a number")))?;
                config.poll = Duration::from_micros(us);
            }
            "--poll-threads" => {
                let v = val("a count")?;
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| Error::Usage(format!("--poll-threads {v}: use 1 to 64")))?;
                config.poll_threads = n;
            }
            "--ageing-secs" => {
                let v = val("seconds")?;
                let s: u64 = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--ageing-secs {v}: not a number")))?;
                config.ageing = Duration::from_secs(s.max(1));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(Error::Usage(format!("unknown argument '{a}'\n{USAGE}"))),
        }
    }
    let control = control.ok_or_else(|| Error::Usage(format!("--control is required\n{USAGE}")))?;
    Ok(Args {
        control,
        uplink,
        seccomp,
        ports,
        config,
    })
}

/// Takes ownership of inherited fd `n` (checked open, marked close-on-exec).
fn inherited_fd(n: &str) -> Result<OwnedFd, Error> {
    let bad = |m: &str| Error::Usage(format!("--uplink-fd {n}: {m}"));
    let fd: RawFd = n.parse().map_err(|_| bad("not an fd number"))?;
    if fd < 3 {
        return Err(bad("0, 1 and 2 are stdio; pass the tap as fd 3 or higher"));
    }
    // SAFETY: fcntl on an fd number; F_SETFD fails with EBADF when it is not open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(bad("not an open fd (was it inherited?)"));
    }
    // SAFETY: the fd is open (checked above), was inherited for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread started later).
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-mask calls on a local, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn run() -> Result<(), Error> {
    let args = parse_args()?;
    // Sockets this switch creates: rw for its user and its directory's group (QEMU's), none
    // for others; the control socket is made owner-only on top.
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o007) };
    let set = block_signals();
    // Opened by name before the filter (which forbids opening files), only when unconfined.
    let uplink = match args.uplink {
        Some(Uplink::Name(tap)) => Some(Uplink::Fd(virtnet_vhost_net::tap::open_tap(&tap)?.into())),
        other => other,
    };
    // Before any thread exists: every thread started later inherits it.
    virtnet_vhost_net::seccomp::install(&virtnet_vhost_net::seccomp::compile(args.seccomp)?)?;
    let switch = Arc::new(Switch::new(args.config));
    if let Some(Uplink::Fd(fd)) = uplink {
        switch.add_tap_fd("uplink", fd)?;
    }
    for p in args.ports {
        switch.add_port(p)?;
    }
    let control = ControlServer::start(switch.clone(), &args.control)?;
    eprintln!(
        "virtnet-vswitch: ready, control socket {}",
        args.control.display()
    );
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is the initialised set blocked above; sigwait writes `sig`.
    unsafe { libc::sigwait(&set, &mut sig) };
    eprintln!("virtnet-vswitch: signal {sig}, shutting down");
    control.stop();
    switch.shutdown();
    Ok(())
}

fn main() {
    env_logger_lite();
    if let Err(e) = run() {
        eprintln!("virtnet-vswitch: {e}");
        std::process::exit(match e {
            Error::Usage(_) => 2,
            _ => 1,
        });
    }
}

/// Minimal logger: warnings and errors to stderr (VSWITCH_LOG=debug for more).
fn env_logger_lite() {
    struct L(log::LevelFilter);
    impl log::Log for L {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= self.0
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                eprintln!("virtnet-vswitch: {}: {}", r.level(), r.args());
            }
        }
        fn flush(&self) {}
    }
    let level = match std::env::var("VSWITCH_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    let logger: &'static L = Box::leak(Box::new(L(level)));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
