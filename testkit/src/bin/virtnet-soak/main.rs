//! `virtnet-soak`: a soak test with faults (`scripts/soak [--minutes N] [--seed S]`, root).
//!
//! In a private network namespace, with its own state and run dirs in a temp dir, it runs
//! virtnetd with three test guests (TCG) on a Linux bridge and a `virtnet-vswitch` network, and
//! for N minutes does random operations through the API (attach, detach, update-device link,
//! chardev-change, start, destroy, define, undefine, net-start, net-destroy) interleaved with
//! faults (kill -9 of virtnetd, of the switch, of a QEMU; graceful daemon restarts). After
//! every step it checks the invariants ([`checks`]); every few steps it probes the owner
//! registry ([`registry`]). At the end it destroys everything, checks that nothing is left,
//! prints a summary and exits 1 if any invariant broke. The seed is printed; `--seed` makes
//! the same choices again (given the same states: timing still differs between runs).

mod api;
mod checks;
mod daemon;
mod faults;
mod ops;
mod registry;
mod rng;
mod stats;
mod view;
mod world;

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daemon::Daemon;
use rng::Rng;
use stats::{Outcome, Stats};
use world::{World, NET, VMS};

/// Set by SIGINT/SIGTERM: stop after the current step and clean up.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Steps between registry probes.
const PROBE_EVERY: u64 = 20;
/// Percent of steps that inject a fault.
const FAULT_PERCENT: u32 = 10;
/// Time the invariants get to hold again after a step (transitions finish asynchronously:
/// an exit noticed, a switch restarted, a pending removal finished).
const SETTLE: Duration = Duration::from_secs(15);

struct Args {
    minutes: f64,
    seed: u64,
    log_dir: PathBuf,
}

fn usage() -> ! {
    eprintln!("usage: virtnet-soak [--minutes N] [--seed S] [--log-dir DIR]");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        minutes: 3.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
            .unwrap_or(1),
        log_dir: PathBuf::from("."),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let val = it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--minutes" => a.minutes = val.parse().unwrap_or_else(|_| usage()),
            "--seed" => a.seed = val.parse().unwrap_or_else(|_| usage()),
            "--log-dir" => a.log_dir = PathBuf::from(val),
            _ => usage(),
        }
    }
    a
}

fn main() -> ExitCode {
    let args = args();
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        eprintln!("virtnet-soak needs root and qemu-system-x86_64");
        return ExitCode::from(2);
    };
    let bins = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    for b in ["virtnetd", "virtnet", "virtnet-vswitch"] {
        if !bins.join(b).is_file() {
            eprintln!("{} missing: scripts/soak builds it", bins.join(b).display());
            return ExitCode::from(2);
        }
    }
    let guest = virtnet_testkit::guest().clone();
    // SAFETY: installing a handler that only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let _ = std::fs::create_dir_all(&args.log_dir);
    println!(
        "[soak] seed {} ({} min); replay: scripts/soak --minutes {} --seed {}",
        args.seed, args.minutes, args.minutes, args.seed
    );
    let r = virtnet_testkit::with_netns(move || run(&args, &bins, &qemu, guest));
    match r {
        Some(true) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// The soak in its namespace; true when no invariant broke.
fn run(args: &Args, bins: &Path, qemu: &Path, guest: virtnet_testkit::GuestArtifacts) -> bool {
    let started = Instant::now();
    let base = std::env::temp_dir().join(format!("virtnet-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("chr")).expect("create the soak's temp dir");
    let log_path = args.log_dir.join(format!("soak-{}.log", args.seed));
    let log = std::fs::File::create(&log_path).expect("create the step log");
    let mut s = Soak {
        daemon: Daemon::new(&bins.join("virtnetd"), qemu, &base),
        cli: bins.join("virtnet"),
        world: World::new(&base, guest),
        rng: Rng::new(args.seed),
        stats: Stats::default(),
        log,
        recent: VecDeque::new(),
        netns: std::fs::read_link("/proc/thread-self/ns/net")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        fd_baseline: 0,
    };
    let deadline = started + Duration::from_secs_f64(args.minutes * 60.0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.setup()?;
        s.main_loop(started, deadline);
        Ok::<(), String>(())
    }));
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            s.stats
                .broke(s.stats.steps, "the soak could not set up", &e);
        }
        Err(p) => {
            let m = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            s.stats.broke(s.stats.steps, "the soak panicked", &m);
        }
    }
    s.teardown();
    let daemon_log = args.log_dir.join(format!("daemon-{}.log", args.seed));
    let _ = std::fs::copy(&s.daemon.log, &daemon_log);
    let _ = std::fs::remove_dir_all(&base);
    let elapsed = started.elapsed().as_secs();
    let summary = s.stats.summary(args.seed, elapsed);
    let _ = writeln!(s.log, "{summary}");
    println!("{summary}");
    println!(
        "[soak] step log: {}; daemon log: {}",
        log_path.display(),
        daemon_log.display()
    );
    s.stats.broken.is_empty()
}

struct Soak {
    daemon: Daemon,
    cli: PathBuf,
    world: World,
    rng: Rng,
    stats: Stats,
    log: std::fs::File,
    /// The last steps, attached to a broken invariant's detail.
    recent: VecDeque<String>,
    netns: String,
    fd_baseline: usize,
}

impl Soak {
    fn note(&mut self, line: String) {
        let _ = writeln!(self.log, "{line}");
        self.recent.push_back(line);
        if self.recent.len() > 12 {
            self.recent.pop_front();
        }
    }

    /// The bridge, virtnetd, the network (started), the three VMs (defined and started).
    fn setup(&mut self) -> Result<(), String> {
        virtnet_testkit::add_bridge(world::BRIDGE, Some("10.77.0.1/24"));
        self.daemon.start()?;
        let api = self.daemon.api();
        let a = api.post_xml("/v1/networks", &world::net_xml())?;
        if !a.ok() {
            return Err(format!("net-define: {}", a.message()));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.fd_baseline = checks::fd_targets(self.daemon.pid().unwrap_or(0)).len();
        let a = api.post(&format!("/v1/networks/{NET}/start"))?;
        if !a.ok() {
            return Err(format!("net-start: {}", a.message()));
        }
        for vm in VMS {
            let nics = vec![
                self.world.nic(world::NicKind::Bridge, true),
                self.world.nic(world::NicKind::Network, false),
            ];
            let a = api.post_xml("/v1/domains", &self.world.domain(vm, &nics))?;
            if !a.ok() {
                return Err(format!("define {vm}: {}", a.message()));
            }
            let a = api.post(&format!("/v1/domains/{vm}/start"))?;
            if !a.ok() {
                return Err(format!("start {vm}: {}", a.message()));
            }
        }
        self.note(format!(
            "setup: bridge, virtnetd (fd baseline {}), {NET} active, {VMS:?} running",
            self.fd_baseline
        ));
        Ok(())
    }

    fn ctx_check(&mut self) -> Vec<checks::Violation> {
        let api = self.daemon.api();
        let chr = self.world.chr.clone();
        let ctx = checks::Ctx {
            api: &api,
            daemon_pid: self.daemon.pid(),
            state: &self.daemon.state,
            run: &self.daemon.run,
            chr: &chr,
            cli: &self.cli,
            netns: &self.netns,
            fd_baseline: self.fd_baseline,
        };
        match view::view(&api) {
            Ok(v) => {
                registry::remember(&v, &mut self.world);
                checks::all(&ctx, &v)
            }
            Err(e) => vec![("virtnetd does not answer".into(), e)],
        }
    }

    /// Checks the invariants until they hold (transitions finish asynchronously) or
    /// [`SETTLE`] passes; records what stays broken. True when all hold.
    fn check(&mut self) -> bool {
        self.stats.checks += 1;
        let first = Instant::now();
        loop {
            let vs = self.ctx_check();
            if vs.is_empty() {
                return true;
            }
            // Already-known breakage is not waited for again.
            let known = vs.iter().all(|(k, _)| self.stats.broken.contains_key(k));
            let wait = if known {
                Duration::from_secs(2)
            } else {
                SETTLE
            };
            if first.elapsed() > wait || STOP.load(Ordering::SeqCst) {
                let recent: Vec<String> = self.recent.iter().cloned().collect();
                for (k, d) in vs {
                    let detail = format!("{d}\nlast steps:\n  {}", recent.join("\n  "));
                    if self.stats.broke(self.stats.steps, &k, &detail) {
                        println!("[soak] step {}: BROKEN {k}: {d}", self.stats.steps);
                    }
                    let _ = writeln!(self.log, "  BROKEN {k}: {d}");
                }
                return false;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn main_loop(&mut self, started: Instant, deadline: Instant) {
        self.check();
        let mut last_progress = Instant::now();
        while Instant::now() < deadline && !STOP.load(Ordering::SeqCst) {
            self.stats.steps += 1;
            let step = self.stats.steps;
            let api = self.daemon.api();
            if !self.daemon.running() {
                // A dead virtnetd is a broken invariant of its own (the check said so);
                // start it again to go on.
                self.stats.broke(step, "virtnetd died on its own", "");
                self.daemon.kill9();
                if let Err(e) = self.daemon.start() {
                    self.stats.broke(step, "virtnetd cannot be restarted", &e);
                    return;
                }
            }
            let view = match view::view(&api) {
                Ok(v) => v,
                Err(e) => {
                    self.stats.broke(step, "virtnetd does not answer", &e);
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if self.rng.chance(FAULT_PERCENT) {
                let t = Instant::now();
                let f = faults::random(&mut self.daemon, &view, &mut self.rng);
                self.stats.faults.entry(f.kind).or_default().0 += 1;
                let r = match &f.recovered {
                    Ok(()) => "recovered".to_string(),
                    Err(e) => format!("NOT RECOVERED: {e}"),
                };
                self.note(format!(
                    "step {step}: FAULT {}: {r} ({} ms)",
                    f.what,
                    t.elapsed().as_millis()
                ));
                if let Err(e) = &f.recovered {
                    self.stats.broke(
                        step,
                        &format!("no recovery from {}", f.kind),
                        &format!("{}: {e}", f.what),
                    );
                    if !self.daemon.running() {
                        let _ = self.daemon.start();
                    }
                }
                let held = self.check();
                if f.recovered.is_ok() && held {
                    self.stats.faults.entry(f.kind).or_default().1 += 1;
                }
            } else {
                let t = Instant::now();
                let d = ops::random(&api, &view, &mut self.world, &mut self.rng);
                self.note(format!(
                    "step {step}: {} -> {} ({} ms)",
                    d.what,
                    d.outcome.word(),
                    t.elapsed().as_millis()
                ));
                if let Outcome::Failed(m) = &d.outcome {
                    println!("[soak] step {step}: {} failed: {m}", d.what);
                }
                self.stats.op(d.kind, step, &d.what, &d.outcome);
                self.check();
            }
            if step.is_multiple_of(PROBE_EVERY) {
                self.probe();
            }
            if last_progress.elapsed() > Duration::from_secs(20) {
                last_progress = Instant::now();
                println!("{}", self.stats.progress(started.elapsed().as_secs()));
            }
        }
    }

    fn probe(&mut self) {
        let api = self.daemon.api();
        let Ok(v) = view::view(&api) else { return };
        self.stats.probes += 1;
        let recent: Vec<String> = self.recent.iter().cloned().collect();
        for (k, d) in registry::probe(&api, &v, &mut self.world) {
            let detail = format!("{d}\nlast steps:\n  {}", recent.join("\n  "));
            if self.stats.broke(self.stats.steps, &k, &detail) {
                println!("[soak] step {}: BROKEN {k}: {d}", self.stats.steps);
            }
            let _ = writeln!(self.log, "  BROKEN {k}: {d}");
        }
    }

    /// Destroys and undefines everything through virtnetd, checks that nothing is left
    /// (processes, taps, files, fds, registry claims), stops virtnetd, and kills whatever is
    /// still in the namespace (a leak).
    fn teardown(&mut self) {
        self.note("teardown".into());
        if !self.daemon.running() {
            self.daemon.kill9();
            if let Err(e) = self.daemon.start() {
                self.stats
                    .broke(self.stats.steps, "at exit: virtnetd cannot be started", &e);
            }
        }
        let api = self.daemon.api();
        let mut errors = Vec::new();
        if let Ok(v) = view::view(&api) {
            for vm in v.running() {
                match api.post(&format!("/v1/domains/{}/destroy", vm.name)) {
                    Ok(a) if a.ok() => {
                        if a.body["leftovers"]
                            .as_array()
                            .is_some_and(|l| !l.is_empty())
                        {
                            errors.push(format!(
                                "destroy {}: leftovers {}",
                                vm.name, a.body["leftovers"]
                            ));
                        }
                    }
                    r => errors.push(format!("destroy {}: {r:?}", vm.name)),
                }
            }
            for n in v.nets.iter().filter(|n| n.active) {
                if let Err(e) = api
                    .post(&format!("/v1/networks/{}/destroy", n.name))
                    .and_then(|a| if a.ok() { Ok(()) } else { Err(a.message()) })
                {
                    errors.push(format!("net-destroy {}: {e}", n.name));
                }
            }
        }
        // Exits are noticed asynchronously.
        let api2 = api.clone();
        let _ = wait_for(Duration::from_secs(15), || {
            view::view(&api2).is_ok_and(|v| v.running().next().is_none() && v.settled())
        });
        if let Ok(v) = view::view(&api) {
            for vm in &v.vms {
                if let Err(e) = api
                    .call("DELETE", &format!("/v1/domains/{}", vm.name), None)
                    .and_then(|a| if a.ok() { Ok(()) } else { Err(a.message()) })
                {
                    errors.push(format!("undefine {}: {e}", vm.name));
                }
            }
        }
        for e in errors {
            self.stats.broke(
                self.stats.steps,
                &format!("at exit: {}", e.split(':').next().unwrap_or("")),
                &e,
            );
        }
        // Nothing may be left: the step invariants with no VM and no network running...
        self.stats.checks += 1;
        let vs = self.ctx_check();
        for (k, d) in vs {
            self.stats
                .broke(self.stats.steps, &format!("at exit: {k}"), &d);
        }
        // ...every tap name and socket path ever handed out is free in the registry...
        if let Ok(v) = view::view(&api) {
            self.stats.probes += 1;
            for (k, d) in registry::probe(&api, &v, &mut self.world) {
                self.stats
                    .broke(self.stats.steps, &format!("at exit: {k}"), &d);
            }
        }
        // ...and virtnetd's fds are back to a fresh daemon's.
        if let Some(pid) = self.daemon.pid() {
            let fds = checks::fd_targets(pid);
            if fds.len() > self.fd_baseline + 2 {
                self.stats.broke(
                    self.stats.steps,
                    "at exit: virtnetd holds more fds than at its start",
                    &format!("{} fds, baseline {}: {fds:?}", fds.len(), self.fd_baseline),
                );
            }
        }
        let _ = api.call("DELETE", &format!("/v1/networks/{NET}"), None);
        if let Err(e) = self.daemon.stop() {
            self.stats
                .broke(self.stats.steps, "at exit: virtnetd does not stop", &e);
        }
        for (pid, comm) in checks::ns_processes(&self.netns) {
            self.stats.broke(
                self.stats.steps,
                &format!("at exit: process {comm} left"),
                &format!("pid {pid}, killed"),
            );
            // SAFETY: kill(2) on a process in our own namespace that should not exist.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let links: Vec<String> = virtnet_testkit::links()
            .into_iter()
            .filter(|l| l != "lo" && l != world::BRIDGE)
            .collect();
        if !links.is_empty() {
            self.stats.broke(
                self.stats.steps,
                "at exit: links left",
                &format!("{links:?}"),
            );
        }
        let left: Vec<String> = walk(&self.daemon.run);
        if !left.is_empty() {
            self.stats.broke(
                self.stats.steps,
                "at exit: files left in the run dir",
                &format!("{left:?}"),
            );
        }
    }
}

fn wait_for(t: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + t;
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Every file (not directory) under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}
