//! Domain events over `RUN_DIR/libvirt-sock`: the real `virsh event --all --loop` (Debian's
//! libvirt-clients, unchanged) prints the lifecycle events of define, start, shutdown (the
//! API's and virsh's), a guest that powers off on its own, destroy, a QEMU that dies, undefine, and the device-removed event of a NIC the running guest released
//! after `virsh detach-device --live`; python3-libvirt's event API
//! (`virEventRegisterDefaultImpl` + `domainEventRegisterAny`, with and without a domain)
//! gets the lifecycle events of its own cycle; a raw client checks libvirtd's rules for the
//! callback and legacy registrations. Real virtnetd, real QEMU (TCG), the test
//! guest, a private network namespace.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::e2e::{post_json, qmp, ready_console, wait_until, CMD};
use common::virsh::{python3, uri, virsh_ok};
use common::{domain_xml, TestDaemon};
use serde_json::json;
use virtnet_rpc::event::{
    CallbackLifecycleMsg, EventCallbackId, EventCallbackRegisterAnyArgs, EventRegisterAnyArgs,
    LifecycleMsg, FEATURE_REMOTE_EVENT_CALLBACK,
};
use virtnet_rpc::frame;
use virtnet_rpc::remote::{ConnectOpenArgs, SupportsFeatureArgs, SupportsFeatureRet};
use virtnet_rpc::xdr::{from_bytes, to_bytes};
use virtnet_rpc::{Header, MessageType, Procedure, RemoteError, Status, REMOTE_PROGRAM};
use virtnet_testkit::{add_bridge, bridge_nic, require, runtime, with_netns, Need, TestDomain};

/// `virsh event --all --loop` running in the background, its output collected line by line
/// (line-buffered through `stdbuf`, so each event is seen when virsh prints it).
struct EventWatch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl EventWatch {
    fn start(d: &TestDaemon) -> EventWatch {
        let mut child = Command::new("stdbuf")
            .args(["-oL", "virsh", "-c", &uri(d), "event", "--all", "--loop"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("stdbuf virsh");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        EventWatch { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The events virsh printed for domain `vm`, without the prefix: `lifecycle: Started
    /// Booted`, `device-removed: net1`.
    fn events_of(&self, vm: &str) -> Vec<String> {
        let prefix = format!("' for domain '{vm}': ");
        self.lines()
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix("event '")?;
                let (kind, what) = rest.split_once(&prefix)?;
                Some(format!("{kind}: {what}"))
            })
            .collect()
    }

    /// Waits until virsh printed `want` for `vm` (in this order, nothing else in between).
    fn wait_for(&self, d: &TestDaemon, vm: &str, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.events_of(vm);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline && (got.len() < want.len()),
                "virsh event printed for {vm}:\n{got:#?}\nwanted:\n{want:#?}\nall output:\n{}\n{}",
                self.lines().join("\n"),
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends virsh as a user does (Ctrl-C); its last words.
    fn interrupt(mut self) -> String {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("virsh event did not end on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        assert!(status.success(), "virsh event: {status}: {err}");
        // The reader thread may still be on the last lines.
        std::thread::sleep(Duration::from_millis(200));
        self.lines().join("\n")
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Defines throwaway domains until virsh prints their event: its registrations are in.
fn wait_registered(d: &TestDaemon, w: &EventWatch) {
    wait_until("virsh event to register", Duration::from_secs(30), || {
        assert_eq!(d.define(&domain_xml("probe", "")).0 / 100, 2);
        std::thread::sleep(Duration::from_millis(200));
        !w.events_of("probe").is_empty()
    });
}

#[test]
fn virsh_event_all_prints_lifecycle_and_device_removed_events() {
    if !require(&[Need::Binary("virsh"), Need::Binary("stdbuf")]) {
        return;
    }
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", Some("10.0.31.1/24"));
        let tmp = tempfile::tempdir().unwrap();
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let w = EventWatch::start(&d);
        wait_registered(&d, &w);

        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:31:02";
        let xml = TestDomain::new("ev", &serial)
            .ip(mac, "10.0.31.2/24")
            .xml(guest);
        let file = tmp.path().join("ev.xml");
        std::fs::write(&file, xml).unwrap();
        virsh_ok(&d, &["define", file.to_str().unwrap()]);
        virsh_ok(&d, &["start", "ev"]);
        w.wait_for(
            &d,
            "ev",
            &["lifecycle: Defined Added", "lifecycle: Started Booted"],
        );

        // A NIC plugged live, then detached live through virsh: the event comes when the
        // guest has let go of it and its back end is gone.
        let alias = runtime().block_on(async {
            let mut con = ready_console(&serial).await;
            let (s, v) = post_json(
                &d,
                "/v1/domains/ev/devices",
                &json!({ "xml": bridge_nic(mac, "br0"), "live": true }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            con.wait_nic_up(mac, CMD).await.unwrap();
            v["interface"]["alias"].as_str().unwrap().to_string()
        });
        let nic = tmp.path().join("nic.xml");
        std::fs::write(&nic, bridge_nic(mac, "br0")).unwrap();
        virsh_ok(
            &d,
            &["detach-device", "ev", nic.to_str().unwrap(), "--live"],
        );
        let removed = format!("device-removed: {alias}");
        w.wait_for(
            &d,
            "ev",
            &[
                "lifecycle: Defined Added",
                "lifecycle: Started Booted",
                &removed,
            ],
        );

        // A shutdown (the guest powers off on ACPI's power button).
        let (s, v) = d.call(
            "POST",
            "/v1/domains/ev/shutdown",
            Some("application/json"),
            "{\"timeout_secs\": 60}",
        );
        assert_eq!(
            (s, v["stopped_by"].as_str()),
            (200, Some("powerdown")),
            "{v}"
        );
        // The guest powers off with nobody asking virtnetd: QEMU says SHUTDOWN and exits.
        virsh_ok(&d, &["start", "ev"]);
        runtime().block_on(async {
            ready_console(&serial).await;
        });
        qmp(&d, "ev", "system_powerdown", json!({})).unwrap();
        wait_until(
            "the guest's poweroff noticed",
            Duration::from_secs(60),
            || d.get("/v1/domains/ev").1["state"] == "shut_off",
        );
        // virsh shutdown: the power button, then the guest powers off.
        virsh_ok(&d, &["start", "ev"]);
        runtime().block_on(async {
            ready_console(&serial).await;
        });
        virsh_ok(&d, &["shutdown", "ev"]);
        wait_until(
            "the guest's poweroff noticed",
            Duration::from_secs(60),
            || d.get("/v1/domains/ev").1["state"] == "shut_off",
        );
        // destroy; a start again; QEMU killed behind virtnetd's back; undefine.
        virsh_ok(&d, &["start", "ev"]);
        virsh_ok(&d, &["destroy", "ev"]);
        virsh_ok(&d, &["start", "ev"]);
        let (_, v) = d.get("/v1/domains/ev");
        let pid = v["pid"].as_u64().expect("a running VM's pid") as i32;
        // SAFETY: kill(2) with a pid just read from the daemon; QEMU stays unreaped (it is
        // virtnetd's child) until virtnetd sees it exit.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        wait_until("QEMU's exit noticed", Duration::from_secs(30), || {
            d.get("/v1/domains/ev").1["state"] == "shut_off"
        });
        virsh_ok(&d, &["undefine", "ev"]);
        w.wait_for(
            &d,
            "ev",
            &[
                "lifecycle: Defined Added",
                "lifecycle: Started Booted",
                &removed,
                "lifecycle: Stopped Shutdown",
                "lifecycle: Started Booted",
                "lifecycle: Stopped Shutdown",
                "lifecycle: Started Booted",
                "lifecycle: Stopped Shutdown",
                "lifecycle: Started Booted",
                "lifecycle: Stopped Destroyed",
                "lifecycle: Started Booted",
                "lifecycle: Stopped Failed",
                "lifecycle: Undefined Removed",
            ],
        );
        let all = w.interrupt();
        assert!(all.contains("event loop interrupted"), "{all}");
        assert!(all.contains("events received: "), "{all}");
        d.stop();
    });
}

#[test]
fn python3_libvirt_gets_lifecycle_events_with_and_without_a_domain() {
    if !require(&[Need::Root, Need::Qemu, Need::Binary("virsh")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let script = r#"
import sys, threading, time, libvirt
libvirt.virEventRegisterDefaultImpl()
def run():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=run, daemon=True).start()
c = libvirt.open(sys.argv[1])
seen = []
def lifecycle(conn, dom, event, detail, who):
    seen.append("%s %s %d %d" % (who, dom.name(), event, detail))
every = c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, "all")
removed = c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                   lambda *a: seen.append("removed"), None)
dom = c.defineXML(sys.argv[2])
mine = c.domainEventRegisterAny(dom, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, "mine")
other = c.defineXML(sys.argv[3])
dom.create()
dom.destroy()
dom.undefine()
other.undefine()
deadline = time.time() + 20
while len(seen) < 9 and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.5)  # anything more would be an event too many
for cb in (every, removed, mine):
    c.domainEventDeregisterAny(cb)
try:
    c.domainEventDeregisterAny(mine)
    print("deregistered twice")
except libvirt.libvirtError:
    pass
c.close()
for s in sorted(seen):
    print(s)
"#;
    let out = python3(
        script,
        &[&uri(&d), &domain_xml("pe1", ""), &domain_xml("pe2", "")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        got,
        [
            "all pe1 0 0", // defined, added
            "all pe1 1 0", // undefined, removed
            "all pe1 2 0", // started, booted
            "all pe1 5 1", // stopped, destroyed
            "all pe2 0 0",
            "all pe2 1 0",
            // Registered for pe1 after its define: pe2 never reaches it.
            "mine pe1 1 0",
            "mine pe1 2 0",
            "mine pe1 5 1",
        ],
        "{stdout}"
    );
}

/// A raw client of the libvirt socket (frames by hand).
struct Raw(std::os::unix::net::UnixStream);

impl Raw {
    fn connect(d: &TestDaemon) -> Raw {
        let s = std::os::unix::net::UnixStream::connect(d.base.join("run/libvirt-sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(s)
    }

    fn call(&mut self, p: Procedure, serial: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: 1,
            proc_: p.to_u32(),
            type_: MessageType::Call,
            serial,
            status: Status::Ok,
        };
        self.0.write_all(&frame::encode_frame(&h, payload)).unwrap();
        let (h, p) = self.recv().expect("a reply");
        assert_eq!((h.type_, h.serial), (MessageType::Reply, serial), "{h:?}");
        match h.status {
            Status::Ok => Ok(p),
            _ => Err(from_bytes::<RemoteError>(&p).unwrap().message.unwrap()),
        }
    }

    /// The next frame; `None` on a timeout or a closed connection.
    fn recv(&mut self) -> Option<(Header, Vec<u8>)> {
        let mut word = [0u8; 4];
        self.0.read_exact(&mut word).ok()?;
        let len = frame::body_len(word).unwrap();
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).unwrap();
        let (h, p) = frame::split_body(&body).unwrap();
        Some((h, p.to_vec()))
    }
}

#[test]
fn legacy_and_callback_registrations_behave_as_libvirtds() {
    if !require(&[Need::Root]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let mut c = Raw::connect(&d);
    let open = to_bytes(&ConnectOpenArgs {
        name: Some("qemu:///system".into()),
        flags: 1, // read-only: events are allowed
    });
    c.call(Procedure::ConnectOpen, 1, &open).unwrap();
    let feature = to_bytes(&SupportsFeatureArgs {
        feature: FEATURE_REMOTE_EVENT_CALLBACK,
    });
    let r = c
        .call(Procedure::ConnectSupportsFeature, 2, &feature)
        .unwrap();
    assert_eq!(from_bytes::<SupportsFeatureRet>(&r).unwrap().supported, 1);

    let cb_args = |event_id| {
        to_bytes(&EventCallbackRegisterAnyArgs {
            event_id,
            dom: None,
        })
    };
    let legacy = |event_id| to_bytes(&EventRegisterAnyArgs { event_id });
    assert_eq!(
        c.call(
            Procedure::ConnectDomainEventCallbackRegisterAny,
            3,
            &cb_args(27)
        ),
        Err("unsupported event ID 27".into())
    );
    c.call(Procedure::ConnectDomainEventRegisterAny, 4, &legacy(0))
        .unwrap();
    assert_eq!(
        c.call(Procedure::ConnectDomainEventRegisterAny, 5, &legacy(0)),
        Err("domain event 0 already registered".into())
    );
    let r = c
        .call(
            Procedure::ConnectDomainEventCallbackRegisterAny,
            6,
            &cb_args(0),
        )
        .unwrap();
    let id = from_bytes::<EventCallbackId>(&r).unwrap().callback_id;

    // A define through the HTTP API: one message per registration, in each one's form.
    let (s, v) = d.define(&domain_xml("raw1", ""));
    assert_eq!(s, 201, "{v}");
    let mut got = Vec::new();
    for _ in 0..2 {
        let (h, p) = c.recv().expect("an event");
        assert_eq!((h.type_, h.serial), (MessageType::Message, 0), "{h:?}");
        got.push(match Procedure::from_u32(h.proc_) {
            Procedure::DomainEventLifecycle => {
                let m: LifecycleMsg = from_bytes(&p).unwrap();
                (None, m.dom.name, m.event, m.detail)
            }
            Procedure::DomainEventCallbackLifecycle => {
                let m: CallbackLifecycleMsg = from_bytes(&p).unwrap();
                (
                    Some(m.callback_id),
                    m.msg.dom.name,
                    m.msg.event,
                    m.msg.detail,
                )
            }
            other => panic!("unexpected {other}"),
        });
    }
    got.sort();
    assert_eq!(
        got,
        [
            (None, "raw1".to_string(), 0, 0),
            (Some(id), "raw1".to_string(), 0, 0)
        ]
    );

    // Deregistered (twice is refused): an undefine sends nothing, the next frame is a reply.
    let dereg = to_bytes(&EventCallbackId { callback_id: id });
    c.call(
        Procedure::ConnectDomainEventCallbackDeregisterAny,
        7,
        &dereg,
    )
    .unwrap();
    assert!(c
        .call(
            Procedure::ConnectDomainEventCallbackDeregisterAny,
            8,
            &dereg
        )
        .is_err());
    c.call(Procedure::ConnectDomainEventDeregisterAny, 9, &legacy(0))
        .unwrap();
    assert_eq!(
        c.call(Procedure::ConnectDomainEventDeregisterAny, 10, &legacy(0)),
        Err("domain event 0 not registered".into())
    );
    assert_eq!(d.call("DELETE", "/v1/domains/raw1", None, "").0, 200);
    c.call(Procedure::ConnectGetType, 11, &[]).unwrap();
}
