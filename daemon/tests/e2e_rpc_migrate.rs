//! Live migration driven by libvirt's own clients over virtnetd's libvirt socket: Debian's
//! `virsh migrate --live --p2p` and python3-libvirt's `migrateToURI3` with
//! `VIR_MIGRATE_PEER2PEER|VIR_MIGRATE_LIVE`, between the two virtnetd "hosts" of
//! [`common::hosts`] (two network namespaces, the stream over TCP across the veth underlay).
//! Also libvirt's managed flow (`virsh migrate` without `--p2p`), the refusals (direct
//! migration, flags virtnet does not support, a URI it does not serve),
//! `domjobinfo`/`domjobabort`, and a migration the destination refuses (no such bridge),
//! after which the guest runs on the source as before.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::e2e::{alive, state, wait_until, BOOT};
use common::hosts::{
    in_b, nothing_on_b, pid_of, still_on_a, succeeded, tick_after, ticking, went_on, with_hosts,
    Hosts, GUEST_IP,
};
use common::virsh::{python3, uri, virsh, virsh_err, virsh_ok};
use virtnet_testkit::{SerialConsole, Snapshot};

/// `virsh -c A migrate --live --p2p --persistent mig B-URI EXTRA...`: (success, stderr).
fn virsh_migrate(h: &Hosts, flags: &[&str], extra: &[&str]) -> (bool, String) {
    let dest = uri(&h.b);
    let mut args = vec!["migrate"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["mig", &dest]);
    args.extend_from_slice(extra);
    let (ok, out, err, _) = virsh(&h.a, &args);
    (ok, format!("{out}{err}"))
}

/// The destination XML for host `host`, in a file.
fn xml_file(h: &Hosts, host: &str) -> String {
    let p = h.tmp.path().join(format!("dest-{host}.xml"));
    std::fs::write(&p, h.xml("mig", host)).unwrap();
    p.display().to_string()
}

const P2P: [&str; 3] = ["--live", "--p2p", "--persistent"];

/// python3-libvirt moves `mig` from the daemon at argv[1] to the one at argv[2].
const PY_MIGRATE: &str = r#"
import sys, libvirt
src = libvirt.open(sys.argv[1])
dom = src.lookupByName('mig')
flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
         | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
params = {
    libvirt.VIR_MIGRATE_PARAM_URI: sys.argv[3],
    libvirt.VIR_MIGRATE_PARAM_DEST_XML: open(sys.argv[4]).read(),
    libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 500,
}
# Refused first: no PEER2PEER (a direct migration), and an unsupported flag.
for bad in (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST,
            flags | libvirt.VIR_MIGRATE_POSTCOPY):
    try:
        dom.migrateToURI3(sys.argv[2], params, bad)
        print('NOT REFUSED', bad)
    except libvirt.libvirtError as e:
        print('refused', e.get_error_code(), e.get_error_message())
dom.migrateToURI3(sys.argv[2], params, flags)
try:
    src.lookupByName('mig')
    print('source still has mig')
except libvirt.libvirtError as e:
    print('source: no domain', e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN)
dst = libvirt.open(sys.argv[2])
print('destination state', dst.lookupByName('mig').state()[0] == libvirt.VIR_DOMAIN_RUNNING)
"#;

#[test]
fn virsh_migrate_p2p_back_with_python_then_managed() {
    with_hosts(|h| {
        let rt = virtnet_testkit::runtime();
        let a_before = Snapshot::take(&[&h.a.base.join("run")]);
        let (b_links, b_files) = h.b_before();
        assert_eq!(h.a.define(&h.xml("mig", "a")).0, 201);
        virsh_ok(&h.a, &["start", "mig"]);
        let pid_a = pid_of(&h.a, "mig");
        let (_con, u0, t0) = rt.block_on(ticking(&h.serial("a")));
        common::e2e::wait_ping(GUEST_IP, BOOT);

        // A to B with virsh, over TCP across the underlay.
        let xml_b = xml_file(&h, "b");
        let started = Instant::now();
        let (ok, out) = virsh_migrate(
            &h,
            &P2P,
            &[
                "--migrateuri",
                "tcp:10.99.0.2",
                "--bandwidth",
                "500",
                "--xml",
                &xml_b,
            ],
        );
        assert!(ok, "{out}\nA:\n{}\nB:\n{}", h.a.log(), h.b.log());
        println!("virsh migrate: {} ms", started.elapsed().as_millis());

        let list_b = virsh_ok(&h.b, &["list"]);
        assert!(
            list_b
                .lines()
                .any(|l| l.contains(" mig ") && l.trim_end().ends_with("running")),
            "{list_b}"
        );
        assert_eq!(
            virsh_ok(&h.a, &["domstate", "--reason", "mig"]).trim(),
            "shut off (migrated)"
        );
        assert!(virsh_ok(&h.a, &["list", "--all"]).contains("shut off"));
        // No job on either side any more.
        assert!(virsh_ok(&h.a, &["domjobinfo", "mig"]).contains("None"));
        rt.block_on(async {
            went_on(&h.serial("b"), t0, u0).await;
        });
        wait_until("A's QEMU to exit", Duration::from_secs(15), || {
            !alive(pid_a)
        });
        let leaks = a_before.leaks_in(&a_before.again());
        assert!(leaks.is_empty(), "left on A: {leaks}");
        let pid_b = pid_of(&h.b, "mig");

        // Back to A with python3-libvirt's migrateToURI3 (and VIR_MIGRATE_UNDEFINE_SOURCE).
        let xml_a = xml_file(&h, "a");
        let out = python3(
            PY_MIGRATE,
            &[&uri(&h.b), &uri(&h.a), "tcp:10.99.0.1", &xml_a],
        );
        let text = succeeded(&out, &h.b);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("refused 84 ")
                && lines[0].contains("add --p2p")
                && !lines[0].contains("  "),
            "direct: {text}"
        );
        assert!(
            lines[1].starts_with("refused 74 ") && lines[1].contains("--postcopy"),
            "postcopy: {text}"
        );
        assert_eq!(
            &lines[2..],
            ["source: no domain True", "destination state True"]
        );
        assert_eq!(state(&h.a, "mig"), "running");
        wait_until("B's QEMU to exit", Duration::from_secs(15), || {
            !alive(pid_b)
        });
        nothing_on_b(&h, "mig", &b_links, &b_files);
        common::e2e::wait_ping(GUEST_IP, Duration::from_secs(30));
        let pid_a = pid_of(&h.a, "mig");

        // A to B again in libvirt's managed flow (virsh without --p2p: Begin3, Prepare3,
        // Perform3, Finish3, Confirm3 with parameters).
        let (ok, out) = virsh_migrate(
            &h,
            &["--live", "--persistent"],
            &["--migrateuri", "tcp:10.99.0.2", "--xml", &xml_b],
        );
        assert!(ok, "{out}\nA:\n{}\nB:\n{}", h.a.log(), h.b.log());
        assert_eq!(virsh_ok(&h.b, &["domstate", "mig"]).trim(), "running");
        assert_eq!(
            virsh_ok(&h.a, &["domstate", "--reason", "mig"]).trim(),
            "shut off (migrated)"
        );
        wait_until("A's QEMU to exit", Duration::from_secs(15), || {
            !alive(pid_a)
        });
        rt.block_on(async {
            let mut con_b = SerialConsole::connect(h.serial("b"), Duration::from_secs(10))
                .await
                .unwrap();
            tick_after(&mut con_b, 0).await;
        });
        common::e2e::destroy_leaving_nothing(&h.b, "mig");
    });
}

#[test]
fn refusals_a_cancelled_and_a_failed_migration_leave_the_guest_on_the_source() {
    with_hosts(|h| {
        let rt = virtnet_testkit::runtime();
        let (b_links, b_files) = h.b_before();
        assert_eq!(h.a.define(&h.xml("mig", "a")).0, 201);
        let pid = common::e2e::start(&h.a, "mig");
        let mut con = rt.block_on(common::e2e::ready_console(&h.serial("a")));
        let xml_b = xml_file(&h, "b");
        let tcp = ["--migrateuri", "tcp:10.99.0.2", "--xml", &xml_b];

        // The managed flow (no --p2p) checks the same at Begin.
        let (ok, out) = virsh_migrate(&h, &["--live", "--persistent", "--postcopy"], &tcp);
        assert!(!ok && out.contains("--postcopy"), "{out}");
        let (ok, out) = virsh_migrate(&h, &["--live"], &tcp);
        assert!(!ok && out.contains("add --persistent"), "{out}");
        // Flags virtnet does not support, named.
        for flag in [
            "--copy-storage-all",
            "--postcopy",
            "--tunnelled",
            "--compressed",
        ] {
            let (ok, out) = virsh_migrate(&h, &[&P2P[..], &[flag]].concat(), &tcp);
            assert!(!ok && out.contains("argument unsupported"), "{flag}: {out}");
            assert!(out.contains(flag), "{flag}: {out}");
        }
        let (ok, out) = virsh_migrate(&h, &["--p2p", "--persistent", "--offline"], &[]);
        assert!(!ok && out.to_lowercase().contains("offline"), "{out}");
        let (ok, out) = virsh_migrate(&h, &["--live", "--p2p"], &tcp);
        assert!(!ok && out.contains("add --persistent"), "{out}");
        // A destination URI virtnetd cannot map to a virtnetd.
        let err = virsh_err(
            &h.a,
            &[
                "migrate",
                "--live",
                "--p2p",
                "--persistent",
                "mig",
                "qemu+tcp://10.99.0.2/system",
            ],
        );
        assert!(err.contains("RUN_DIR/libvirt-sock"), "{err}");
        // No job to abort.
        let err = virsh_err(&h.a, &["domjobabort", "mig"]);
        assert!(err.contains("no job is active"), "{err}");
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        nothing_on_b(&h, "mig", &b_links, &b_files);

        // Cancelled with domjobabort while it runs (slowed to 2 MiB/s): domjobinfo shows the
        // job, the migration fails, the guest runs on A.
        let a_uri = uri(&h.a);
        let watcher = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let out = std::process::Command::new("virsh")
                    .args(["-c", &a_uri, "domjobinfo", "mig"])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                if text.contains("Unbounded") {
                    std::thread::sleep(Duration::from_millis(1500));
                    let out = std::process::Command::new("virsh")
                        .args(["-c", &a_uri, "domjobabort", "mig"])
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{out:?}");
                    return text;
                }
                assert!(Instant::now() < deadline, "no job seen: {text}");
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (ok, out) = virsh_migrate(&h, &P2P, &[&tcp[..], &["--bandwidth", "2"]].concat());
        let jobinfo = watcher.join().unwrap();
        println!("domjobinfo during the migration:\n{jobinfo}\nvirsh migrate: {out}");
        assert!(!ok, "{out}");
        assert!(out.contains("the VM runs on the source"), "{out}");
        rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        nothing_on_b(&h, "mig", &b_links, &b_files);

        // The destination refuses: it has no bridge br0.
        in_b(h.b_pid, "ip link del br0");
        let b_links_nobr = h.links_b();
        for flags in [&P2P[..], &["--live", "--persistent"]] {
            let (ok, out) = virsh_migrate(&h, flags, &tcp);
            assert!(!ok, "{out}");
            assert!(out.contains("br0"), "{flags:?}: {out}");
            assert!(
                out.contains("the VM runs on the source"),
                "{flags:?}: {out}"
            );
            rt.block_on(still_on_a(&h, "mig", pid, &mut con));
        }
        assert_eq!(virsh_ok(&h.a, &["domstate", "mig"]).trim(), "running");
        assert_eq!(h.links_b(), b_links_nobr);
        assert!(!virsh_ok(&h.b, &["list", "--all"]).contains("mig"));
        assert!(Path::new(&xml_b).exists());
        common::e2e::destroy_leaving_nothing(&h.a, "mig");
    });
}
