//! virtnet networks over `RUN_DIR/libvirt-sock`: the real virsh (Debian's libvirt-clients 9.0)
//! and python3-libvirt against the real virtnetd and `virtnet-vswitch` (no QEMU; root, each
//! test in its own network namespace since the switch's uplink tap is created there):
//!
//! - `net-define` (also `--validate`), `net-list` (`--all`, `--inactive`, `--autostart`: names,
//!   state, autostart, persistent columns), `net-info`, `net-uuid`, `net-name`, `net-dumpxml`
//!   (`--inactive` after a redefinition while running), `net-start`, `net-autostart
//!   [--disable]`, `net-destroy`, `net-undefine`, each agreeing with the HTTP API;
//! - the UUID: generated at define, kept across a redefinition, a clash refused;
//! - refusals with libvirt's codes and messages: unknown network, starting an active network,
//!   stopping an inactive one, bad XML (positioned), `net-create` (no transient networks);
//! - python3-libvirt: `listAllNetworks` (with its filters), `networkLookupByName`/`ByUUID`,
//!   `create()`, `destroy()`, autostart, error codes;
//! - a read-only connection may look but not change.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::virsh::{python3, sock, uri, virsh_err, virsh_ok};
use common::TestDaemon;
use serde_json::Value;
use virtnet_rpc::network::{NetworkArgs, NetworkRet};
use virtnet_rpc::remote::{ConnectOpenArgs, LookupByNameArgs};
use virtnet_rpc::xdr::{from_bytes, to_bytes};
use virtnet_rpc::REMOTE_PROGRAM;
use virtnet_rpc::{frame, ErrorCode, Header, MessageType, Procedure, RemoteError, Status};
use virtnet_testkit::{links, require, with_netns, Need};

/// The `Key: value` line of virsh's output, if any.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// `net-list`'s rows (after the header and the dashes), split in columns.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn http_net(d: &TestDaemon, name: &str) -> Value {
    let (s, v) = d.get(&format!("/v1/networks/{name}"));
    assert_eq!(s, 200, "{v}");
    v
}

/// Kills the switches recorded under `run` when dropped (a failed test leaves none behind;
/// they outlive virtnetd by design).
struct Switches(PathBuf);

impl Drop for Switches {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("networks")) else {
            return;
        };
        for e in entries.flatten() {
            let st: Option<Value> = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(pid) = st.and_then(|v| v["pid"].as_i64()) {
                if pid > 0 && common::e2e::alive(pid as u64) {
                    // SAFETY: kill(2) on a switch this test started.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
    }
}

fn net_xml(name: &str, uuid: Option<&str>, uplink: Option<&str>) -> String {
    let uuid = uuid.map_or(String::new(), |u| format!("\n  <uuid>{u}</uuid>"));
    let up = uplink.map_or(String::new(), |u| {
        format!("\n  <uplink dev='{u}'>\n    <ip address='10.30.0.1' prefix='24'/>\n  </uplink>")
    });
    format!(
        "<network>\n  <name>{name}</name>{uuid}\n  <virtualport type='virtnet-vswitch'/>{up}\n</network>\n"
    )
}

/// virtnetd with state under `base`, and the guard that kills the switches it starts (bind
/// in this order: the daemon goes first).
fn daemon_with_switches(base: &Path) -> (Switches, TestDaemon) {
    let switches = Switches(base.join("run"));
    (switches, TestDaemon::start(base))
}

fn write(dir: &Path, file: &str, text: &str) -> String {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const GIVEN: &str = "3e3fce45-4f53-4fa7-bb32-11f34168b82b";

#[test]
fn virsh_drives_networks() {
    if !require(&[Need::Root, Need::Binary("virsh")]) {
        return;
    }
    common::vswitch();
    let _ = with_netns(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (_switches, d) = daemon_with_switches(tmp.path());
        let files = tmp.path();

        // Define: one without <uuid> (generated), one with (kept as given).
        let f0 = write(files, "rn0.xml", &net_xml("rn0", None, Some("rn0-up")));
        let out = virsh_ok(&d, &["net-define", &f0]);
        assert_eq!(out.trim(), format!("Network rn0 defined from {f0}"));
        let f1 = write(files, "rn1.xml", &net_xml("rn1", Some(GIVEN), None));
        virsh_ok(&d, &["net-define", "--validate", &f1]);
        let uuid = http_net(&d, "rn0")["uuid"].as_str().unwrap().to_string();
        assert_eq!(uuid.len(), 36, "{uuid}");
        assert_eq!(http_net(&d, "rn1")["uuid"], GIVEN);

        // Listing: names, state, autostart, persistent.
        let all = rows(&virsh_ok(&d, &["net-list", "--all"]));
        assert_eq!(
            all,
            [
                ["rn0", "inactive", "no", "yes"],
                ["rn1", "inactive", "no", "yes"]
            ],
            "net-list --all"
        );
        assert!(rows(&virsh_ok(&d, &["net-list"])).is_empty(), "none active");

        // Info, UUID both ways, XML: the HTTP API's.
        let info = virsh_ok(&d, &["net-info", "rn0"]);
        assert_eq!(field(&info, "Name"), Some("rn0"), "{info}");
        assert_eq!(field(&info, "UUID"), Some(uuid.as_str()), "{info}");
        assert_eq!(field(&info, "Active"), Some("no"), "{info}");
        assert_eq!(field(&info, "Persistent"), Some("yes"), "{info}");
        assert_eq!(field(&info, "Autostart"), Some("no"), "{info}");
        assert_eq!(field(&info, "Bridge"), None, "no Linux bridge: {info}");
        assert_eq!(virsh_ok(&d, &["net-uuid", "rn0"]).trim(), uuid);
        assert_eq!(virsh_ok(&d, &["net-name", GIVEN]).trim(), "rn1");
        let by_uuid = virsh_ok(&d, &["net-info", &uuid]);
        assert_eq!(field(&by_uuid, "Name"), Some("rn0"), "{by_uuid}");
        let xml = virsh_ok(&d, &["net-dumpxml", "rn0"]);
        let (_, http_xml) = d.get("/v1/networks/rn0/xml");
        assert_eq!(xml.trim(), http_xml["xml"].as_str().unwrap().trim());
        assert!(xml.contains(&format!("<uuid>{uuid}</uuid>")), "{xml}");
        assert!(xml.contains("<uplink dev='rn0-up'>"), "{xml}");

        // Start: the switch runs, its uplink tap exists; a second start is refused.
        let out = virsh_ok(&d, &["net-start", "rn0"]);
        assert_eq!(out.trim(), "Network rn0 started");
        assert_eq!(http_net(&d, "rn0")["state"], "active");
        assert!(links().contains(&"rn0-up".to_string()), "{:?}", links());
        let err = virsh_err(&d, &["net-start", "rn0"]);
        assert!(
            err.contains("error: Failed to start network rn0")
                && err
                    .contains("error: Requested operation is not valid: network is already active"),
            "{err}"
        );
        let info = virsh_ok(&d, &["net-info", "rn0"]);
        assert_eq!(field(&info, "Active"), Some("yes"), "{info}");

        // Autostart: shown, filtered on, kept by the daemon.
        let out = virsh_ok(&d, &["net-autostart", "rn0"]);
        assert_eq!(out.trim(), "Network rn0 marked as autostarted");
        assert_eq!(http_net(&d, "rn0")["autostart"], true);
        assert_eq!(
            rows(&virsh_ok(&d, &["net-list"])),
            [["rn0", "active", "yes", "yes"]]
        );
        let names = |args: &[&str]| -> Vec<String> {
            rows(&virsh_ok(&d, args))
                .into_iter()
                .map(|r| r[0].clone())
                .collect()
        };
        assert_eq!(names(&["net-list", "--autostart"]), ["rn0"]);
        assert_eq!(names(&["net-list", "--no-autostart", "--all"]), ["rn1"]);
        assert_eq!(names(&["net-list", "--inactive"]), ["rn1"]);
        assert_eq!(
            names(&["net-list", "--persistent", "--all"]),
            ["rn0", "rn1"]
        );
        assert!(names(&["net-list", "--transient", "--all"]).is_empty());
        let out = virsh_ok(&d, &["net-autostart", "rn0", "--disable"]);
        assert_eq!(out.trim(), "Network rn0 unmarked as autostarted");
        assert_eq!(http_net(&d, "rn0")["autostart"], false);

        // Redefined while running (another uplink): same UUID; the switch keeps running
        // what it started with (net-dumpxml), the next start uses the new one (--inactive).
        let f0b = write(files, "rn0b.xml", &net_xml("rn0", None, Some("rn0-new")));
        virsh_ok(&d, &["net-define", &f0b]);
        assert_eq!(virsh_ok(&d, &["net-uuid", "rn0"]).trim(), uuid);
        assert!(virsh_ok(&d, &["net-dumpxml", "rn0"]).contains("rn0-up"));
        let inactive = virsh_ok(&d, &["net-dumpxml", "--inactive", "rn0"]);
        assert!(inactive.contains("rn0-new"), "{inactive}");
        assert!(inactive.contains(&uuid), "{inactive}");
        // Another UUID for the same name, or rn1's UUID for rn0: refused.
        let clash = write(files, "clash.xml", &net_xml("rn0", Some(GIVEN), None));
        let err = virsh_err(&d, &["net-define", &clash]);
        assert!(
            err.contains(&format!("already defined with UUID {uuid}")),
            "{err}"
        );
        let twin = write(files, "twin.xml", &net_xml("rn2", Some(GIVEN), None));
        let err = virsh_err(&d, &["net-define", &twin]);
        assert!(err.contains("network 'rn1' already has UUID"), "{err}");
        assert_eq!(virsh_ok(&d, &["net-uuid", "rn0"]).trim(), uuid);

        // Refusals: libvirt's codes and words.
        let err = virsh_err(&d, &["net-info", "nosuch"]);
        assert!(
            err.contains("error: failed to get network 'nosuch'")
                && err.contains("error: Network not found: no network with matching name 'nosuch'"),
            "{err}"
        );
        let bad = write(
            files,
            "bad.xml",
            "<network>\n<name>rn3</name>\n<virtualport type='openvswitch'/>\n</network>",
        );
        let err = virsh_err(&d, &["net-define", &bad]);
        assert!(
            err.contains("XML error: invalid network XML: 3:") && err.contains("virtnet-vswitch"),
            "{err}"
        );
        let err = virsh_err(&d, &["net-create", &f1]);
        assert!(err.contains("no transient networks"), "{err}");
        // undefine of a running network: virtnet refuses (libvirt would make it transient).
        let err = virsh_err(&d, &["net-undefine", "rn0"]);
        assert!(
            err.contains("Requested operation is not valid: network 'rn0' is active"),
            "{err}"
        );

        // Destroy: switch and tap gone; a second destroy refused.
        let out = virsh_ok(&d, &["net-destroy", "rn0"]);
        assert_eq!(out.trim(), "Network rn0 destroyed");
        assert_eq!(http_net(&d, "rn0")["state"], "inactive");
        assert!(!links().contains(&"rn0-up".to_string()), "{:?}", links());
        let err = virsh_err(&d, &["net-destroy", "rn0"]);
        assert!(
            err.contains("error: Failed to destroy network rn0")
                && err.contains("Requested operation is not valid: network 'rn0' is not active"),
            "{err}"
        );

        // Undefine: gone from virsh and the HTTP API.
        for n in ["rn0", "rn1"] {
            let out = virsh_ok(&d, &["net-undefine", n]);
            assert_eq!(out.trim(), format!("Network {n} has been undefined"));
            assert_eq!(d.get(&format!("/v1/networks/{n}")).0, 404);
        }
        assert!(rows(&virsh_ok(&d, &["net-list", "--all"])).is_empty());
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("run/networks"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "run files left: {left:?}");
    });
}

#[test]
fn python3_libvirt_lists_and_cycles_networks() {
    if !require(&[Need::Root, Need::Binary("virsh")]) {
        return;
    }
    common::vswitch();
    let _ = with_netns(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (_switches, d) = daemon_with_switches(tmp.path());
        let (s, v) = d.call(
            "POST",
            "/v1/networks",
            Some("application/xml"),
            &net_xml("pyA", Some(GIVEN), None),
        );
        assert_eq!(s, 201, "{v}");
        let script = r#"
import sys, libvirt
c = libvirt.open(sys.argv[1])
n = c.networkDefineXML(sys.argv[2])
print(n.name(), len(n.UUIDString()), n.isActive(), n.isPersistent(), n.autostart())
def names(flags):
    return sorted(x.name() for x in c.listAllNetworks(flags))
print(names(0))
print([(x.name(), x.UUIDString()) for x in c.listAllNetworks(0) if x.name() == "pyA"])
n = c.networkLookupByName("pyB")
n.create()
print("started", n.isActive(), names(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE),
      names(libvirt.VIR_CONNECT_LIST_NETWORKS_INACTIVE))
print(c.numOfNetworks(), c.listNetworks(), c.numOfDefinedNetworks(), c.listDefinedNetworks())
try:
    n.create()
except libvirt.libvirtError as e:
    print("error", e.get_error_code())
n.setAutostart(1)
print("autostart", n.autostart(), names(libvirt.VIR_CONNECT_LIST_NETWORKS_AUTOSTART))
n.setAutostart(0)
print(c.networkLookupByUUIDString(n.UUIDString()).name(), "<uuid>" in n.XMLDesc(0))
try:
    n.bridgeName()
except libvirt.libvirtError as e:
    print("error", e.get_error_code())
n.destroy()
print("stopped", n.isActive())
n.undefine()
for f in (lambda: c.networkLookupByName("pyB"),
          lambda: c.networkLookupByUUIDString("00000000-0000-4000-8000-000000000000")):
    try:
        f()
    except libvirt.libvirtError as e:
        print("error", e.get_error_code(), e.get_error_domain(), e.get_error_message())
print(names(0))
c.close()
"#;
        let out = python3(script, &[&uri(&d), &net_xml("pyB", None, None)]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
        let lines: Vec<&str> = stdout.lines().collect();
        let want = [
            "pyB 36 0 1 0".to_string(),
            "['pyA', 'pyB']".into(),
            format!("[('pyA', '{GIVEN}')]"),
            "started 1 ['pyB'] ['pyA']".into(),
            "1 ['pyB'] 1 ['pyA']".into(),
            "error 55".into(),
            "autostart 1 ['pyB']".into(),
            "pyB True".into(),
            "error 84".into(),
            "stopped 0".into(),
            "error 43 19 Network not found: no network with matching name 'pyB'".into(),
            "error 43 19 Network not found: no network with matching uuid \
             '00000000-0000-4000-8000-000000000000'"
                .into(),
            "['pyA']".into(),
        ];
        assert_eq!(lines, want, "{stdout}");
        assert_eq!(d.get("/v1/networks/pyB").0, 404, "undefined");
    });
}

/// A raw client of the socket (libvirt's clients refuse changes on a read-only connection
/// themselves: this one asks anyway).
struct Raw(UnixStream, u32);

impl Raw {
    fn open(d: &TestDaemon, flags: u32) -> Raw {
        let s = UnixStream::connect(sock(d)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = Raw(s, 0);
        let args = to_bytes(&ConnectOpenArgs {
            name: Some("qemu:///system".into()),
            flags,
        });
        r.call(Procedure::ConnectOpen, &args).unwrap();
        r
    }

    fn call(&mut self, p: Procedure, payload: &[u8]) -> Result<Vec<u8>, Box<RemoteError>> {
        self.1 += 1;
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: 1,
            proc_: p.to_u32(),
            type_: MessageType::Call,
            serial: self.1,
            status: Status::Ok,
        };
        self.0.write_all(&frame::encode_frame(&h, payload)).unwrap();
        let mut word = [0u8; 4];
        self.0.read_exact(&mut word).unwrap();
        let mut body = vec![0; frame::body_len(word).unwrap()];
        self.0.read_exact(&mut body).unwrap();
        let (h, p) = frame::split_body(&body).unwrap();
        assert_eq!((h.type_, h.serial), (MessageType::Reply, self.1), "{h:?}");
        match h.status {
            Status::Ok => Ok(p.to_vec()),
            _ => Err(Box::new(from_bytes(p).unwrap())),
        }
    }
}

#[test]
fn a_read_only_connection_looks_but_does_not_change() {
    common::vswitch();
    // Not root: with_netns says why and skips.
    let _ = with_netns(read_only_connection);
}

fn read_only_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (_switches, d) = daemon_with_switches(tmp.path());
    let (s, v) = d.call(
        "POST",
        "/v1/networks",
        Some("application/xml"),
        &net_xml("ro", Some(GIVEN), None),
    );
    assert_eq!(s, 201, "{v}");
    let mut ro = Raw::open(&d, 1); // VIR_CONNECT_RO
    let ret = ro
        .call(
            Procedure::NetworkLookupByName,
            &to_bytes(&LookupByNameArgs { name: "ro".into() }),
        )
        .unwrap();
    let net = from_bytes::<NetworkRet>(&ret).unwrap().net;
    assert_eq!(net.uuid, virtnet_rpc::remote::uuid_bytes(GIVEN).unwrap());
    let args = to_bytes(&NetworkArgs { net });
    for p in [
        Procedure::NetworkCreate,
        Procedure::NetworkUndefine,
        Procedure::NetworkDestroy,
    ] {
        let e = ro.call(p, &args).unwrap_err();
        assert_eq!(e.code, ErrorCode::OperationDenied as i32, "{p}: {e:?}");
    }
    assert_eq!(http_net(&d, "ro")["state"], "inactive", "nothing changed");
    // The same call on a read-write connection starts it.
    let mut rw = Raw::open(&d, 0);
    rw.call(Procedure::NetworkCreate, &args).unwrap();
    assert_eq!(http_net(&d, "ro")["state"], "active");
    rw.call(Procedure::NetworkDestroy, &args).unwrap();
    assert_eq!(http_net(&d, "ro")["state"], "inactive");
}
