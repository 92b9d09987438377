//! `RUN_DIR/libvirt-sock`: the real virsh (Debian's libvirt-clients) and python3-libvirt
//! against the real virtnetd, unchanged, over libvirt's remote protocol (queries, define,
//! start, destroy, undefine, refusals); bad input on the socket, which ends at most the
//! connection that sent it; read-only connections.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::virsh::{python3, sock, uri, virsh, virsh_ok};
use common::{domain_xml, TestDaemon};
use virtnet_rpc::frame::{self, MESSAGE_MAX};
use virtnet_rpc::remote::{ConnectOpenArgs, StringRet, SupportsFeatureRet};
use virtnet_rpc::xdr::{from_bytes, to_bytes};
use virtnet_rpc::{
    ErrorCode, Header, MessageType, Procedure, RemoteError, Status, KEEPALIVE_PROC_PING,
    KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM, REMOTE_PROGRAM,
};
use virtnet_testkit::{require, Need};

/// The `Key: value` line of virsh's output.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"))
        .trim()
}

#[test]
fn virsh_queries_the_host_and_drives_domains() {
    if !require(&[Need::Root, Need::Qemu, Need::Binary("virsh")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let mode = std::fs::metadata(sock(&d)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "libvirt-sock is root only");

    // The connection and the host.
    let out = virsh_ok(&d, &["version"]);
    let qemu = Command::new("qemu-system-x86_64")
        .arg("-version")
        .output()
        .unwrap();
    let qemu = String::from_utf8_lossy(&qemu.stdout);
    let qemu_version = qemu.split_whitespace().nth(3).unwrap();
    assert_eq!(
        field(&out, "Running hypervisor"),
        format!("QEMU {qemu_version}")
    );
    assert_eq!(virsh_ok(&d, &["uri"]).trim(), uri(&d));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(virsh_ok(&d, &["hostname"]).trim(), host.trim());
    let out = virsh_ok(&d, &["nodeinfo"]);
    assert_eq!(field(&out, "CPU model"), std::env::consts::ARCH);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(field(&out, "CPU(s)"), cpus.to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    assert_eq!(field(&out, "Memory size"), format!("{total} KiB"));
    let caps = virsh_ok(&d, &["capabilities"]);
    assert!(caps.contains("<arch>x86_64</arch>"), "{caps}");
    assert!(caps.contains("<os_type>hvm</os_type>"), "{caps}");
    assert!(caps.contains("<domain type='qemu'/>"), "{caps}");
    assert_eq!(
        caps.contains("<domain type='kvm'/>"),
        Path::new("/dev/kvm").exists(),
        "kvm is listed exactly when /dev/kvm exists: {caps}"
    );
    assert!(!virsh_ok(&d, &["list", "--all"]).contains("vm1"));

    // A defined domain, through the HTTP API: virsh sees the same.
    let (s, v) = d.define(&domain_xml("vm1", ""));
    assert_eq!(s, 201, "{v}");
    let uuid = v["uuid"].as_str().unwrap().to_string();
    let list = virsh_ok(&d, &["list", "--all"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["-", "vm1", "shut", "off"]),
        "{list}"
    );
    assert!(!virsh_ok(&d, &["list"]).contains("vm1"), "not running");
    let info = virsh_ok(&d, &["dominfo", "vm1"]);
    assert_eq!(field(&info, "Id"), "-");
    assert_eq!(field(&info, "UUID"), uuid);
    assert_eq!(field(&info, "State"), "shut off");
    assert_eq!(field(&info, "Max memory"), "65536 KiB");
    assert_eq!(field(&info, "CPU(s)"), "1");
    assert_eq!(field(&info, "Persistent"), "yes");
    assert_eq!(field(&info, "Autostart"), "disable");
    assert_eq!(virsh_ok(&d, &["domstate", "vm1"]).trim(), "shut off");
    assert_eq!(virsh_ok(&d, &["domuuid", "vm1"]).trim(), uuid);
    // By UUID: DOMAIN_LOOKUP_BY_UUID.
    assert_eq!(field(&virsh_ok(&d, &["dominfo", &uuid]), "Name"), "vm1");
    let (_, http_xml) = d.get("/v1/domains/vm1/xml");
    let xml = virsh_ok(&d, &["dumpxml", "vm1"]);
    assert_eq!(xml.trim(), http_xml["xml"].as_str().unwrap().trim());
    assert_eq!(
        virsh_ok(&d, &["dumpxml", "--inactive", "vm1"]).trim(),
        xml.trim()
    );
    let (ok, _, err, _) = virsh(&d, &["dominfo", "nosuch"]);
    assert!(
        !ok && err.contains("failed to get domain 'nosuch'"),
        "{err}"
    );

    // Device changes in the definition (--config; the live path is the same daemon
    // operation, tested through the HTTP API): attach, update the link, detach.
    let nic = dir.path().join("nic.xml");
    let mac = "52:54:00:aa:00:01";
    let nic_xml = |link: &str| {
        format!("<interface type='ethernet'><mac address='{mac}'/><model type='virtio'/>{link}</interface>")
    };
    std::fs::write(&nic, nic_xml("")).unwrap();
    let nic = nic.to_str().unwrap();
    let out = virsh_ok(&d, &["attach-device", "vm1", nic, "--config"]);
    assert!(out.contains("Device attached successfully"), "{out}");
    assert!(virsh_ok(&d, &["domiflist", "vm1"]).contains(mac));
    let (_, v) = d.get("/v1/domains/vm1/interfaces");
    assert_eq!(v["interfaces"][0]["mac"], mac, "{v}");
    std::fs::write(dir.path().join("nic.xml"), nic_xml("<link state='down'/>")).unwrap();
    assert!(virsh_ok(&d, &["update-device", "vm1", nic, "--config"]).contains("updated"));
    assert_eq!(
        virsh_ok(&d, &["domif-getlink", "vm1", mac, "--config"]).trim(),
        format!("{mac} down")
    );
    // No flag on libvirt's oldest detach call means the running VM: refused, it is off.
    let (ok, _, err, _) = virsh(&d, &["detach-device", "vm1", nic]);
    assert!(!ok && err.contains("shut off"), "{err}");
    let (ok, _, err, _) = virsh(&d, &["attach-device", "vm1", nic, "--live"]);
    assert!(!ok && err.contains("shut off"), "{err}");
    assert!(virsh_ok(&d, &["detach-device", "vm1", nic, "--config"]).contains("detached"));
    assert!(!virsh_ok(&d, &["domiflist", "vm1"]).contains(mac));
    // virsh builds the XML of attach-interface and detach-interface itself.
    let args = [
        "--type", "bridge", "--source", "br0", "--mac", mac, "--model", "virtio", "--config",
    ];
    let out = virsh_ok(&d, &[&["attach-interface", "vm1"][..], &args].concat());
    assert!(out.contains("Interface attached successfully"), "{out}");
    assert!(virsh_ok(&d, &["domiflist", "vm1"]).contains("br0"));
    let args = ["--type", "bridge", "--mac", mac, "--config"];
    let out = virsh_ok(&d, &[&["detach-interface", "vm1"][..], &args].concat());
    assert!(out.contains("Interface detached successfully"), "{out}");
    assert!(!virsh_ok(&d, &["domiflist", "vm1"]).contains(mac));

    // Running (started through virsh): an id, the live state; the HTTP API sees it.
    assert_eq!(
        virsh_ok(&d, &["start", "vm1"]).trim(),
        "Domain 'vm1' started"
    );
    let (_, v) = d.get("/v1/domains/vm1");
    assert_eq!(v["state"], "running", "{v}");
    let list = virsh_ok(&d, &["list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "vm1", "running"]),
        "{list}"
    );
    let info = virsh_ok(&d, &["dominfo", "1"]);
    assert_eq!(field(&info, "Name"), "vm1");
    assert_eq!(field(&info, "State"), "running");
    assert_eq!(
        virsh_ok(&d, &["domstate", "--reason", "vm1"]).trim(),
        "running (booted)"
    );
    let (ok, _, err, _) = virsh(&d, &["start", "vm1"]);
    assert!(!ok && err.contains("already active"), "{err}");
    let (ok, _, err, _) = virsh(&d, &["undefine", "vm1"]);
    assert!(
        !ok && err.contains("running"),
        "virtnet refuses to undefine a running VM: {err}"
    );
    let (ok, _, err, _) = virsh(&d, &["destroy", "--graceful", "vm1"]);
    assert!(
        !ok && err.contains("unsupported flags (0x1) in function virDomainDestroyFlags"),
        "{err}"
    );
    assert_eq!(
        virsh_ok(&d, &["destroy", "vm1"]).trim(),
        "Domain 'vm1' destroyed"
    );
    assert_eq!(virsh_ok(&d, &["domstate", "vm1"]).trim(), "shut off");
    assert_eq!(
        virsh_ok(&d, &["domstate", "--reason", "vm1"]).trim(),
        "shut off (destroyed)"
    );
    let (_, v) = d.get("/v1/domains/vm1");
    assert_eq!(v["state"], "shut_off", "{v}");
    assert_eq!(v["stop_reason"], "destroyed", "{v}");

    // Define and undefine through virsh; bad XML gets virtnet's located message.
    let file = dir.path().join("vm2.xml");
    std::fs::write(&file, domain_xml("vm2", "")).unwrap();
    let out = virsh_ok(&d, &["define", file.to_str().unwrap()]);
    assert!(out.contains("Domain 'vm2' defined"), "{out}");
    assert!(d.names().contains(&"vm2".to_string()));
    let (ok, _, err, _) = virsh(&d, &["-r", "undefine", "vm2"]);
    assert!(!ok && err.contains("read only"), "{err}");
    assert!(virsh_ok(&d, &["undefine", "vm2"]).contains("Domain 'vm2' has been undefined"));
    assert!(!d.names().contains(&"vm2".to_string()));
    std::fs::write(&file, "<domain type='qemu'><name>bad</nam></domain>").unwrap();
    let (ok, _, err, _) = virsh(&d, &["define", file.to_str().unwrap()]);
    assert!(!ok && err.contains("1:"), "a located XML error: {err}");

    // What is not served is refused at once with libvirt's own words.
    let (ok, _, err, took) = virsh(&d, &["snapshot-list", "vm1"]);
    assert!(!ok);
    assert!(
        err.contains("this function is not supported by the connection driver"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "refused in {took:?}");
}

#[test]
fn virsh_keepalive_keeps_an_idle_connection() {
    if !require(&[Need::Root, Need::Binary("virsh")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    // virsh's shell pings every second once idle and drops the connection after one
    // unanswered ping: after 4 s idle the connection must still serve.
    let mut child = Command::new("virsh")
        .args(["-k", "1", "-K", "1", "-c", &uri(&d)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    stdin.write_all(b"hostname\nquit\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        stdout.lines().any(|l| l.trim() == host.trim()) && stderr.trim().is_empty(),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn python3_libvirt_opens_lists_and_runs_a_cycle() {
    if !require(&[Need::Root, Need::Qemu, Need::Binary("virsh")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let (s, v) = d.define(&domain_xml("py1", ""));
    assert_eq!(s, 201, "{v}");
    let script = r#"
import sys, libvirt
c = libvirt.open(sys.argv[1])
print(c.getType(), c.getVersion(), c.getLibVersion(), c.getHostname() != "")
for dom in c.listAllDomains(0):
    print(dom.name(), dom.UUIDString(), dom.ID(), dom.isActive(), dom.isPersistent(), dom.state())
try:
    c.lookupByName("nosuch")
except libvirt.libvirtError as e:
    print("error", e.get_error_code())
dom = c.defineXML(sys.argv[2])
dom.create()
print(dom.name(), dom.isActive(), dom.ID() > 0, dom.state())
dom.destroy()
dom.undefine()
print(sorted(d.name() for d in c.listAllDomains(0)))
c.close()
"#;
    let out = python3(script, &[&uri(&d), &domain_xml("py2", "")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let first: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(first[0], "QEMU");
    assert!(first[1].parse::<u64>().unwrap() >= 7_000_000, "{stdout}");
    assert_eq!(first[2], "9000000");
    assert_eq!(first[3], "True");
    assert_eq!(
        lines[1],
        format!("py1 {} -1 0 1 [5, 0]", v["uuid"].as_str().unwrap())
    );
    assert_eq!(lines[2], "error 42", "VIR_ERR_NO_DOMAIN");
    assert_eq!(lines[3], "py2 1 True [1, 1]", "defined and started");
    assert_eq!(lines[4], "['py1']", "destroyed and undefined");
}

/// A raw client of the socket.
struct Raw(UnixStream);

impl Raw {
    fn connect(d: &TestDaemon) -> Raw {
        let s = UnixStream::connect(sock(d)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(s)
    }

    fn send(&mut self, prog: u32, proc_: u32, type_: MessageType, serial: u32, payload: &[u8]) {
        let h = Header {
            prog,
            vers: 1,
            proc_,
            type_,
            serial,
            status: Status::Ok,
        };
        self.0.write_all(&frame::encode_frame(&h, payload)).unwrap();
    }

    fn call(&mut self, p: Procedure, serial: u32, payload: &[u8]) {
        self.send(
            REMOTE_PROGRAM,
            p.to_u32(),
            MessageType::Call,
            serial,
            payload,
        );
    }

    /// The next frame; `None` when the server closed the connection.
    fn recv(&mut self) -> Option<(Header, Vec<u8>)> {
        let mut word = [0u8; 4];
        self.0.read_exact(&mut word).ok()?;
        let len = frame::body_len(word).unwrap();
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).unwrap();
        let (h, p) = frame::split_body(&body).unwrap();
        Some((h, p.to_vec()))
    }

    fn reply(&mut self, serial: u32) -> Result<Vec<u8>, Box<RemoteError>> {
        let (h, p) = self.recv().expect("a reply");
        assert_eq!((h.type_, h.serial), (MessageType::Reply, serial), "{h:?}");
        match h.status {
            Status::Ok => Ok(p),
            _ => Err(Box::new(from_bytes(&p).unwrap())),
        }
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0))
    }

    fn open(&mut self) {
        let args = to_bytes(&ConnectOpenArgs {
            name: Some("qemu:///system".into()),
            flags: 0,
        });
        self.call(Procedure::ConnectOpen, 1, &args);
        self.reply(1).unwrap();
    }

    fn get_type(&mut self, serial: u32) -> String {
        self.call(Procedure::ConnectGetType, serial, &[]);
        from_bytes::<StringRet>(&self.reply(serial).unwrap())
            .unwrap()
            .value
    }
}

#[test]
fn bad_input_ends_at_most_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    // A well-behaved client, connected throughout.
    let mut good = Raw::connect(&d);
    good.open();
    assert_eq!(good.get_type(2), "QEMU");

    // A frame cut short, then the client goes away.
    let mut c = Raw::connect(&d);
    c.0.write_all(&100u32.to_be_bytes()).unwrap();
    c.0.write_all(&[0; 10]).unwrap();
    drop(c);
    // A length over VIR_NET_MESSAGE_MAX (17 MiB) and one under the header: closed at once,
    // before any body is read.
    for len in [17u32 << 20, MESSAGE_MAX + 5, 10, 0] {
        let mut c = Raw::connect(&d);
        c.0.write_all(&len.to_be_bytes()).unwrap();
        assert!(c.closed(), "length {len}");
    }
    // A header with a message type that does not exist: closed.
    let mut c = Raw::connect(&d);
    let mut f = frame::encode_frame(
        &Header {
            prog: REMOTE_PROGRAM,
            vers: 1,
            proc_: 3,
            type_: MessageType::Call,
            serial: 1,
            status: Status::Ok,
        },
        &[],
    );
    f[19] = 9;
    c.0.write_all(&f).unwrap();
    assert!(c.closed());

    // On one connection, each answered and the connection kept.
    let mut c = Raw::connect(&d);
    // Before CONNECT_OPEN: refused.
    c.call(Procedure::ConnectGetType, 1, &[]);
    assert_eq!(
        c.reply(1).unwrap_err().code,
        ErrorCode::InternalError as i32
    );
    c.open();
    // Wrong program, wrong version of the right one.
    c.send(0x1234_5678, 1, MessageType::Call, 5, &[]);
    let e = c.reply(5).unwrap_err();
    assert_eq!(e.code, ErrorCode::Rpc as i32);
    assert!(e.message.unwrap().contains("0x12345678"));
    let h = Header {
        prog: REMOTE_PROGRAM,
        vers: 2,
        proc_: Procedure::ConnectGetType.to_u32(),
        type_: MessageType::Call,
        serial: 6,
        status: Status::Ok,
    };
    c.0.write_all(&frame::encode_frame(&h, &[])).unwrap();
    assert_eq!(c.reply(6).unwrap_err().code, ErrorCode::Rpc as i32);
    // An unknown procedure and a known one not served: VIR_ERR_NO_SUPPORT, naming it.
    c.send(REMOTE_PROGRAM, 9999, MessageType::Call, 7, &[]);
    let e = c.reply(7).unwrap_err();
    assert_eq!(e.code, ErrorCode::NoSupport as i32);
    assert!(e.message.unwrap().contains("remote procedure 9999"));
    c.call(Procedure::DomainSnapshotNum, 8, &[]);
    let e = c.reply(8).unwrap_err();
    assert_eq!(e.code, ErrorCode::NoSupport as i32);
    assert!(e.message.unwrap().contains("DOMAIN_SNAPSHOT_NUM"));
    // Garbage arguments: too short, trailing bytes, a lying string length.
    c.call(Procedure::ConnectSupportsFeature, 9, &[1, 2, 3]);
    assert_eq!(c.reply(9).unwrap_err().code, ErrorCode::Rpc as i32);
    c.call(Procedure::ConnectGetType, 10, &[0; 4]);
    assert_eq!(c.reply(10).unwrap_err().code, ErrorCode::Rpc as i32);
    c.call(
        Procedure::DomainLookupByName,
        11,
        &[0x7f, 0xff, 0xff, 0xff, b'a'],
    );
    assert_eq!(c.reply(11).unwrap_err().code, ErrorCode::Rpc as i32);
    // Keepalive: PING answered by PONG; a PONG needs no answer.
    c.send(
        KEEPALIVE_PROGRAM,
        KEEPALIVE_PROC_PONG,
        MessageType::Message,
        0,
        &[],
    );
    c.send(
        KEEPALIVE_PROGRAM,
        KEEPALIVE_PROC_PING,
        MessageType::Message,
        0,
        &[],
    );
    let (h, p) = c.recv().unwrap();
    assert_eq!(
        (h.prog, h.proc_, h.type_, h.serial),
        (
            KEEPALIVE_PROGRAM,
            KEEPALIVE_PROC_PONG,
            MessageType::Message,
            0
        )
    );
    assert!(p.is_empty());
    // Pipelined calls: each reply carries its call's serial.
    let feature = to_bytes(&virtnet_rpc::remote::SupportsFeatureArgs { feature: 10 });
    c.call(Procedure::ConnectSupportsFeature, 20, &feature);
    c.call(Procedure::ConnectGetUri, 21, &[]);
    let mut got = [c.recv().unwrap(), c.recv().unwrap()];
    got.sort_by_key(|(h, _)| h.serial);
    assert_eq!(got[0].0.serial, 20);
    assert_eq!(
        from_bytes::<SupportsFeatureRet>(&got[0].1)
            .unwrap()
            .supported,
        1,
        "keepalive is supported"
    );
    assert_eq!(
        from_bytes::<StringRet>(&got[1].1).unwrap().value,
        "qemu:///system"
    );
    assert_eq!(c.get_type(22), "QEMU");

    // A client that goes away in the middle of a call.
    let mut c = Raw::connect(&d);
    c.open();
    c.call(Procedure::ConnectGetCapabilities, 2, &[]);
    drop(c);

    // The others did not notice.
    assert_eq!(good.get_type(3), "QEMU");
    let mut fresh = Raw::connect(&d);
    fresh.open();
    assert_eq!(fresh.get_type(2), "QEMU");
    let (s, _) = d.get("/v1/domains");
    assert_eq!(s, 200, "the HTTP API still answers");
}

#[test]
fn read_only_connections_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let mut c = Raw::connect(&d);
    let args = to_bytes(&ConnectOpenArgs {
        name: None,
        flags: 1, // VIR_CONNECT_RO
    });
    c.call(Procedure::ConnectOpen, 1, &args);
    c.reply(1).unwrap();
    let xml = to_bytes(&virtnet_rpc::remote::DefineXmlArgs {
        xml: domain_xml("ro1", ""),
    });
    c.call(Procedure::DomainDefineXml, 2, &xml);
    assert_eq!(
        c.reply(2).unwrap_err().code,
        ErrorCode::OperationDenied as i32
    );
    assert!(d.names().is_empty());
    assert_eq!(c.get_type(3), "QEMU", "queries are served");
}

#[test]
fn no_libvirt_socket_serves_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start_with_args(dir.path(), None, &["--no-libvirt-socket"]);
    assert!(!sock(&d).exists());
    let (s, _) = d.get("/v1/domains");
    assert_eq!(s, 200);
}
