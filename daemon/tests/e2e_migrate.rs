//! Live migration between two virtnetd instances, end to end with real QEMU (TCG) and the
//! test guest. Two "hosts": host A is the test's network namespace, host B another one
//! ([`virtnet_testkit::in_another_netns`]); each runs its own virtnetd (own state and run
//! directories) and has a Linux bridge `br0` for the guest's bridge NIC; a veth pair `ul0`
//! (10.99.0.1 on A, 10.99.0.2 on B) is the underlay the migration stream crosses.
//!
//! The guest's liveness across the move: a counter the guest prints on its console once a
//! second (`virtnet-guest: tick N`, a shell loop started through the console's command loop:
//! no change to the test guest needed) and its `/proc/uptime`, both read on A before and on B
//! after. On every failure path the VM keeps running on A and nothing of it is on B.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::e2e::{alive, post_json, state, wait_until, BOOT};
use common::hosts::{
    in_b, in_b_ok, kill_qemu_once_started, nothing_on_b, pid_of, still_on_a, succeeded, ticking,
    wait_until_streaming, went_on, with_hosts, GUEST_IP,
};
use serde_json::{json, Value};
use virtnet_testkit::{links, Snapshot, TestDomain};

#[test]
fn migrate_a_running_guest_over_tcp() {
    with_hosts(|h| {
        let rt = virtnet_testkit::runtime();
        let a_before = Snapshot::take(&[&h.a.base.join("run")]);
        let (b_links, b_files) = h.b_before();
        assert_eq!(h.a.define(&h.xml("mig", "a")).0, 201);
        let pid_a = common::e2e::start(&h.a, "mig");
        let (_con, u0, t0) = rt.block_on(ticking(&h.serial("a")));
        common::e2e::wait_ping(GUEST_IP, BOOT);

        let started = Instant::now();
        let (s, r) = h.migrate("mig", json!({}));
        let wall = started.elapsed();
        assert_eq!(s, 200, "{r}\nA:\n{}\nB:\n{}", h.a.log(), h.b.log());
        assert_eq!(r["leftovers"], json!([]), "{r}");
        let total = r["total_time_ms"].as_u64().expect("QEMU's total time");
        let downtime = r["downtime_ms"].as_u64().expect("QEMU's downtime");
        assert!(
            r["uri"].as_str().unwrap().starts_with("tcp:10.99.0.2:"),
            "{r}"
        );
        println!(
            "MIGRATION wall_ms={} total_time_ms={total} downtime_ms={downtime} setup_ms={} sent_mib={}",
            wall.as_millis(),
            r["setup_time_ms"],
            r["transferred_bytes"].as_u64().unwrap_or(0) >> 20
        );
        println!("steps: {}", r["steps"]);
        // Progress is gone once it is over.
        let (_, p) = h.a.get("/v1/domains/mig/migrate");
        assert_eq!(p["active"], false, "{p}");

        // B runs it: QEMU there, its tap on B's br0, the guest counting on.
        assert_eq!(state(&h.b, "mig"), "running");
        let pid_b = pid_of(&h.b, "mig");
        let (_, ifl) = h.b.get("/v1/domains/mig/interfaces");
        let tap_b = ifl["interfaces"][0]["interface"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            in_b(h.b_pid, &format!("ip -d link show {tap_b}")).contains("master br0"),
            "tap {tap_b} on B's bridge"
        );
        rt.block_on(async {
            went_on(&h.serial("b"), t0, u0).await;
            // The NIC works on B: B's bridge reaches the guest.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !in_b_ok(h.b_pid, &format!("ping -n -c 1 -W 1 {GUEST_IP}")) {
                assert!(Instant::now() < deadline, "the guest does not answer on B");
            }
        });

        // Nothing of it on A: QEMU gone, tap gone, run files gone; the definition stays
        // (virsh keeps it without --undefinesource).
        wait_until("A's QEMU to exit", Duration::from_secs(15), || {
            !alive(pid_a)
        });
        assert_eq!(state(&h.a, "mig"), "shut_off");
        let (_, info) = h.a.get("/v1/domains/mig");
        assert_eq!(info["stop_reason"], "migrated", "{info}");
        let leaks = a_before.leaks_in(&a_before.again());
        assert!(leaks.is_empty(), "left on A: {leaks}");
        assert!(!h.serial("a").exists(), "A's serial socket");
        assert!(alive(pid_b));

        // More round trips for the figures (VIRTNET_MIGRATE_RUNS, default none): medians of
        // QEMU's total time and downtime.
        let runs: usize = std::env::var("VIRTNET_MIGRATE_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let sent = |r: &Value| r["transferred_bytes"].as_u64().unwrap_or(0) >> 20;
        let mut figures = vec![(total, downtime, wall.as_millis() as u64, sent(&r))];
        let mut on_b = true;
        for i in 0..runs + runs % 2 {
            let (from, to, host, addr) = if on_b {
                (&h.b, &h.a, "a", "10.99.0.1")
            } else {
                (&h.a, &h.b, "b", "10.99.0.2")
            };
            let started = Instant::now();
            let (s, r) = post_json(
                from,
                "/v1/domains/mig/migrate",
                &json!({
                    "dest": to.socket,
                    "migrate_uri": format!("tcp:{addr}"),
                    "dest_xml": h.xml("mig", host),
                }),
            );
            assert_eq!(s, 200, "run {i}: {r}");
            figures.push((
                r["total_time_ms"].as_u64().unwrap(),
                r["downtime_ms"].as_u64().unwrap(),
                started.elapsed().as_millis() as u64,
                sent(&r),
            ));
            on_b = !on_b;
        }
        let median = |f: fn(&(u64, u64, u64, u64)) -> u64| {
            let mut v: Vec<u64> = figures.iter().map(f).collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        println!(
            "MIGRATION {} runs: median total_time_ms={} downtime_ms={} wall_ms={} sent_mib={}; \
             all (total, downtime, wall, MiB): {figures:?}",
            figures.len(),
            median(|f| f.0),
            median(|f| f.1),
            median(|f| f.2),
            median(|f| f.3)
        );
        let pid_b = pid_of(&h.b, "mig");

        // Back again with the CLI and --undefinesource (at 40 MiB/s, so that it runs long
        // enough to print progress): A runs it, B has nothing of it.
        let xml_a = h.tmp.path().join("dest-a.xml");
        std::fs::write(&xml_a, h.xml("mig", "a")).unwrap();
        let out = Command::new(cli())
            .arg("--connect")
            .arg(&h.b.socket)
            .args(["migrate", "--live", "mig"])
            .arg(&h.a.socket)
            .args([
                "--migrateuri",
                "tcp:10.99.0.1",
                "--bandwidth",
                "40",
                "--undefinesource",
            ])
            .arg("--xml")
            .arg(&xml_a)
            .output()
            .unwrap();
        let text = succeeded(&out, &h.b);
        assert!(
            text.contains("migrate: start the migration (QMP migrate)"),
            "{text}"
        );
        assert!(text.contains("MiB sent,"), "progress: {text}");
        assert!(text.contains("Domain 'mig' migrated to"), "{text}");
        assert!(text.contains("QEMU: total time "), "{text}");
        assert!(text.contains(", downtime "), "{text}");
        assert_eq!(state(&h.a, "mig"), "running");
        wait_until("B's QEMU to exit", Duration::from_secs(15), || {
            !alive(pid_b)
        });
        nothing_on_b(&h, "mig", &b_links, &b_files);
        common::e2e::wait_ping(GUEST_IP, Duration::from_secs(30));
        common::e2e::destroy_leaving_nothing(&h.a, "mig");
    });
}

/// The `virtnet` CLI next to virtnetd, built (or brought up to date) once per test process.
fn cli() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_BIN_EXE_virtnetd")).parent().unwrap();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "-p", "virtnet", "--bin", "virtnet"])
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot build the virtnet CLI");
            dir.join("virtnet")
        })
        .clone()
}

#[test]
fn failed_migrations_leave_the_guest_on_the_source() {
    with_hosts(|h| {
        let rt = virtnet_testkit::runtime();
        let (b_links, b_files) = h.b_before();
        assert_eq!(h.a.define(&h.xml("mig", "a")).0, 201);

        // Not running: refused at once.
        let (s, v) = h.migrate("mig", json!({}));
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("shut off"),
            "{v}"
        );

        let pid = common::e2e::start(&h.a, "mig");
        let a_links = links();
        let mut con = rt.block_on(common::e2e::ready_console(&h.serial("a")));

        // 0. The destination is the source itself: refused, not deadlocked.
        let (s, v) = post_json(
            &h.a,
            "/v1/domains/mig/migrate",
            &json!({ "dest": h.a.socket, "dest_xml": h.xml("mig", "b") }),
        );
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the destination is the source"),
            "{v}"
        );
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));

        // 1. The destination refuses: it has no bridge br0.
        in_b(h.b_pid, "ip link del br0");
        let b_links_nobr: Vec<String> = h.links_b();
        let (s, v) = h.migrate("mig", json!({}));
        assert_eq!(s, 409, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("step 0") && msg.contains("br0"), "{msg}");
        assert!(msg.contains("undone, the VM runs on the source"), "{msg}");
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        assert_eq!(h.links_b(), b_links_nobr);
        in_b(h.b_pid, "ip link add br0 type bridge");
        in_b(h.b_pid, "ip link set br0 up");
        nothing_on_b(&h, "mig", &b_links, &b_files);

        // 2. The destination's QEMU dies mid-migration (slowed to 2 MiB/s so there is time),
        //    over TCP and over the unix stream.
        for stream in ["tcp:10.99.0.2", "unix"] {
            // Let the stream start, then kill.
            let killer = kill_qemu_once_started(h.b.socket.clone(), "mig");
            let (s, v) = h.migrate("mig", json!({ "bandwidth_mib": 2, "migrate_uri": stream }));
            let killed = killer.join().unwrap();
            assert!(s >= 400, "{v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains("undone, the VM runs on the source"), "{msg}");
            println!("{stream}: QEMU {killed} on B killed: {msg}");
            rt.block_on(still_on_a(&h, "mig", pid, &mut con));
            nothing_on_b(&h, "mig", &b_links, &b_files);
            assert_eq!(links(), a_links, "links on A");
        }

        // 3. Cancelled by its deadline (1 s at 2 MiB/s).
        let (s, v) = h.migrate("mig", json!({ "bandwidth_mib": 2, "timeout_secs": 1 }));
        assert_eq!(s, 500, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("did not complete within 1000 ms"), "{msg}");
        assert!(msg.contains("undone, the VM runs on the source"), "{msg}");
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        nothing_on_b(&h, "mig", &b_links, &b_files);
        // A guest paused before the migration stays paused when it is undone.
        common::e2e::qmp(&h.a, "mig", "stop", json!({})).unwrap();
        let (s, v) = h.migrate("mig", json!({ "bandwidth_mib": 2, "timeout_secs": 1 }));
        assert_eq!(s, 500, "{v}");
        let st = common::e2e::qmp(&h.a, "mig", "query-status", json!({})).unwrap();
        assert_eq!(st["status"], "paused", "{st}");
        common::e2e::qmp(&h.a, "mig", "cont", json!({})).unwrap();
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        nothing_on_b(&h, "mig", &b_links, &b_files);

        // 3b. Cancelled on request (domjobabort) while it runs at 2 MiB/s.
        let a_sock = h.a.socket.clone();
        let canceller = std::thread::spawn(move || {
            wait_until_streaming(&a_sock, "mig");
            let (s, v) = common::http(&a_sock, "POST", "/v1/domains/mig/migrate/cancel", &[], b"");
            assert_eq!(s, 200, "{v}");
        });
        let (s, v) = h.migrate("mig", json!({ "bandwidth_mib": 2 }));
        canceller.join().unwrap();
        assert_eq!(s, 409, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("cancelled on request"), "{msg}");
        assert!(msg.contains("undone, the VM runs on the source"), "{msg}");
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        nothing_on_b(&h, "mig", &b_links, &b_files);
        let (s, v) = h.a.post("/v1/domains/mig/migrate/cancel");
        assert_eq!(s, 409, "nothing to cancel now: {v}");

        // 4. B runs a VM of that name already: refused by B, which keeps its own VM.
        let other = common::domain_xml("mig", "");
        assert_eq!(h.b.define(&other).0, 201);
        let (s, v) = h.b.post("/v1/domains/mig/start");
        assert_eq!(s, 200, "{v}\n{}", h.b.log());
        let b_own = v["pid"].as_u64().unwrap();
        let (s, v) = h.migrate("mig", json!({}));
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("runs here already"),
            "{v}"
        );
        assert_eq!(pid_of(&h.b, "mig"), b_own, "B's own VM untouched");
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        common::e2e::destroy_leaving_nothing(&h.b, "mig");
        assert_eq!(h.b.call("DELETE", "/v1/domains/mig", None, "").0, 200);
        nothing_on_b(&h, "mig", &b_links, &b_files);

        common::e2e::destroy_leaving_nothing(&h.a, "mig");
    });
}

#[test]
fn a_nic_on_virtnet_vswitch_is_refused() {
    with_hosts(|h| {
        common::e2e::define_and_start_network(
            &h.a,
            "<network><name>sw0</name><virtualport type='virtnet-vswitch'/></network>",
            "sw0",
        );
        let mut dom = TestDomain::new("sw", h.serial("a")).nic(
            "<interface type='network'><mac address='52:54:00:00:0d:09'/>\
             <source network='sw0'/><model type='virtio'/></interface>",
            "52:54:00:00:0d:09",
            None,
        );
        dom.shared_memory = true;
        let xml = dom.xml(virtnet_testkit::guest());
        let (s, v) = h.a.define(&xml);
        assert_eq!(s, 201, "{v}");
        let pid = common::e2e::start(&h.a, "sw");
        let (s, v) = h.migrate("sw", json!({}));
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error"]["kind"], "refused", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("virtnet-vswitch") && msg.contains("VHOST_F_LOG_ALL"),
            "{msg}"
        );
        assert_eq!(pid_of(&h.a, "sw"), pid);
        assert!(h.b.names().is_empty(), "B was not asked");
        common::e2e::destroy_leaving_nothing(&h.a, "sw");
    });
}

/// The destination side on its own: a prepare nobody finishes is aborted by the destination
/// after `finish_within_secs` (a source that died); an explicit abort undoes another; finish
/// and abort of a VM not being received are refused.
#[test]
fn the_destination_undoes_a_prepare_nobody_finishes() {
    with_hosts(|h| {
        let (b_links, b_files) = h.b_before();
        let prepare = |within: u64| {
            post_json(
                &h.b,
                "/v1/domains/orph/migrate/prepare",
                &json!({
                    "live_xml": h.xml("orph", "b"),
                    "definition_xml": h.xml("orph", "b"),
                    "listen_uri": "tcp:10.99.0.2:0",
                    "finish_within_secs": within,
                }),
            )
        };
        // 5 s: under load the prepare itself can take most of 2 s, and the VM was gone before
        // the check that it waits for its finish.
        let (s, v) = prepare(5);
        assert_eq!(s, 200, "{v}\n{}", h.b.log());
        assert!(
            v["uri"].as_str().unwrap().starts_with("tcp:10.99.0.2:"),
            "{v}"
        );
        assert_eq!(v["defined"], true);
        let pid = v["pid"].as_u64().unwrap();
        assert_eq!(state(&h.b, "orph"), "starting", "paused until the finish");
        assert_ne!(h.links_b(), b_links, "its tap exists");
        nothing_on_b(&h, "orph", &b_links, &b_files);
        assert!(!alive(pid));
        assert!(h.b.log().contains("no finish or abort came"));

        // An explicit abort; then finish and abort have nothing to act on.
        let (s, v) = prepare(600);
        assert_eq!(s, 200, "{v}");
        let (s, v) = h.b.post("/v1/domains/orph/migrate/abort");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["undefined"], true, "{v}");
        assert_eq!(v["leftovers"], json!([]), "{v}");
        nothing_on_b(&h, "orph", &b_links, &b_files);
        assert_eq!(h.b.post("/v1/domains/orph/migrate/finish").0, 404);
        assert_eq!(h.b.define(&h.xml("orph", "b")).0, 201);
        let (s, v) = h.b.post("/v1/domains/orph/migrate/abort");
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not being received"),
            "{v}"
        );
        assert_eq!(
            state(&h.b, "orph"),
            "shut_off",
            "its own definition untouched"
        );
    });
}

/// Without `dest_xml` and `migrate_uri` (the stream over a unix socket whose ends virtnetd
/// hands to the two QEMUs as fds): the destination runs the source's live definition (its generated tap
/// name dropped: B picks its own) and stores the source's persistent one, same UUID. The
/// guest's console is a pty here (a unix socket path would be the same file for both "hosts"
/// of this test).
#[test]
fn migrate_with_the_sources_own_definition() {
    with_hosts(|h| {
        let xml = h.xml("own", "a").replace(
            &format!(
                "<serial type='unix'>\n      <source mode='bind' path='{}'/>",
                h.serial("a").display()
            ),
            "<serial type='pty'>",
        );
        assert!(xml.contains("<serial type='pty'>"), "{xml}");
        let (s, v) = h.a.define(&xml);
        assert_eq!(s, 201, "{v}");
        let uuid = v["uuid"].as_str().unwrap().to_string();
        common::e2e::start(&h.a, "own");
        common::e2e::wait_ping(GUEST_IP, BOOT);
        // No migrate_uri: the default, a unix socket B listens on (both on one host).
        let (s, r) = post_json(
            &h.a,
            "/v1/domains/own/migrate",
            &json!({ "dest": h.b.socket }),
        );
        assert_eq!(s, 200, "{r}\nB:\n{}", h.b.log());
        let sock = h.b.base.join("run/migrate-own.sock");
        assert_eq!(r["uri"], format!("unix:{}", sock.display()), "{r}");
        assert!(!sock.exists(), "B's migration socket removed");
        println!(
            "MIGRATION over unix: total_time_ms={} downtime_ms={}",
            r["total_time_ms"], r["downtime_ms"]
        );
        let (_, info) = h.b.get("/v1/domains/own");
        assert_eq!(info["state"], "running", "{info}");
        assert_eq!(info["persistent"], true, "{info}");
        assert_eq!(info["uuid"], uuid.as_str(), "{info}");
        let (_, x) = h.b.get("/v1/domains/own/xml?inactive=true");
        let inactive = x["xml"].as_str().unwrap();
        assert!(
            !inactive.contains("<target dev="),
            "no run-time names stored: {inactive}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !in_b_ok(h.b_pid, &format!("ping -n -c 1 -W 1 {GUEST_IP}")) {
            assert!(Instant::now() < deadline, "the guest does not answer on B");
        }
        assert_eq!(state(&h.a, "own"), "shut_off");

        // Back to A by a client that hangs up right after asking: the migration still runs
        // to its end (it is not dropped with the request).
        {
            use std::io::Write;
            let body = json!({ "dest": h.a.socket }).to_string();
            let mut c = std::os::unix::net::UnixStream::connect(&h.b.socket).unwrap();
            write!(
                c,
                "POST /v1/domains/own/migrate HTTP/1.1\r\nHost: virtnetd\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        wait_until(
            "the guest to run on A again",
            Duration::from_secs(60),
            || state(&h.a, "own") == "running" && state(&h.b, "own") == "shut_off",
        );
        common::e2e::wait_ping(GUEST_IP, Duration::from_secs(30));
        common::e2e::destroy_leaving_nothing(&h.a, "own");
    });
}
