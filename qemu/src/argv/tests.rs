//! Tests of the whole command line (the per-NIC builders are tested in their modules).

use virtnet_conf::domain::Uuid;
use virtnet_conf::{validate, Domain};

use super::*;
use crate::error::QemuError;
use crate::version::QemuVersion;

/// Parse + defaults (fixed UUID) + validate, like `load_domain` but reproducible.
fn load(xml: &str) -> Domain {
    let mut d = Domain::parse(xml).unwrap();
    d.fill_defaults_with_uuid(|| Uuid::parse("c7a5fdbd-edaf-9455-926a-d65c16db1809").unwrap())
        .unwrap();
    let problems = validate(&d);
    assert!(problems.is_empty(), "{problems:?}");
    d
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

const GUEST: &str = "<domain type='qemu'>
  <name>vm1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>/boot/vmlinux</kernel>
    <cmdline>console=ttyS0 quiet</cmdline></os>
  <features><acpi/></features>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
    <interface type='vhostuser'>
      <mac address='52:54:00:00:00:02'/>
      <source type='unix' path='/run/vu/vm1-0.sock' mode='client'>
        <reconnect enabled='yes' timeout='2'/>
      </source>
      <model type='virtio'/>
    </interface>
    <serial type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>";

/// One whole command line, option by option: a bridge NIC (tap + vhost-net fds inherited), a
/// vhost-user NIC under TCG (`vectors:0`), shared memfd RAM, direct kernel boot.
#[test]
fn whole_command_line_of_a_bridge_and_vhost_user_guest() {
    let d = load(GUEST);
    let caps = QemuCaps {
        version: QemuVersion::new(7, 2, 22),
        vhost_net: true,
    };
    let backends = vec![
        NicBackend::Tap {
            fds: vec![FdRef::Fd(20)],
            vhost_fds: vec![FdRef::Fd(21)],
        },
        NicBackend::VhostUser,
    ];
    let argv = build_argv(
        &d,
        &caps,
        &backends,
        &RuntimePaths::new("/run/virtnet/vm1/qmp.sock"),
    )
    .unwrap();
    let want = s(&[
        "-name",
        "guest=vm1,debug-threads=on",
        "-S",
        "-machine",
        "pc,usb=off,dump-guest-core=off,memory-backend=pc.ram,acpi=on",
        "-accel",
        "tcg",
        "-cpu",
        "qemu64",
        "-m",
        "size=262144k",
        "-object",
        r#"{"qom-type":"memory-backend-memfd","id":"pc.ram","share":true,"size":268435456}"#,
        "-smp",
        "2,sockets=2,cores=1,threads=1",
        "-uuid",
        "c7a5fdbd-edaf-9455-926a-d65c16db1809",
        "-display",
        "none",
        "-no-user-config",
        "-nodefaults",
        "-chardev",
        "socket,id=charmonitor,path=/run/virtnet/vm1/qmp.sock,server=on,wait=off",
        "-mon",
        "chardev=charmonitor,id=monitor,mode=control",
        "-rtc",
        "base=utc",
        "-boot",
        "strict=on",
        "-kernel",
        "/boot/vmlinux",
        "-append",
        "console=ttyS0 quiet",
        "-device",
        r#"{"driver":"piix3-usb-uhci","id":"usb","bus":"pci.0","addr":"0x1.0x2"}"#,
        "-netdev",
        r#"{"type":"tap","fd":"20","vhost":true,"vhostfd":"21","id":"hostnet0"}"#,
        "-device",
        r#"{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:00:00:01","bus":"pci.0","addr":"0x2"}"#,
        "-chardev",
        // QEMU 7.2: reconnect in seconds.
        "socket,id=charnet1,path=/run/vu/vm1-0.sock,reconnect=2",
        "-netdev",
        r#"{"type":"vhost-user","chardev":"charnet1","id":"hostnet1"}"#,
        "-device",
        r#"{"driver":"virtio-net-pci","vectors":0,"netdev":"hostnet1","id":"net1","mac":"52:54:00:00:00:02","bus":"pci.0","addr":"0x3"}"#,
        "-chardev",
        "pty,id=charserial0",
        "-device",
        r#"{"driver":"isa-serial","chardev":"charserial0","id":"serial0","index":0}"#,
        "-msg",
        "timestamp=on",
    ]);
    assert_eq!(argv, want, "\n{}", format_argv("qemu", &argv));
    assert!(!argv.iter().any(|a| a == "-no-shutdown"));
}

#[test]
fn kvm_host_cpu_numa_shared_and_q35() {
    let d = load(
        "<domain type='kvm'><name>n</name><vcpu>4</vcpu>
         <os><type arch='x86_64' machine='q35'>hvm</type></os>
         <cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='2'/>
           <numa><cell id='0' cpus='0-1' memory='512' unit='MiB' memAccess='shared'/>
                 <cell id='1' cpus='2-3' memory='512' unit='MiB'/></numa></cpu>
         <devices><memballoon model='none'/></devices></domain>",
    );
    let argv = build_argv(&d, &QemuCaps::latest(), &[], &RuntimePaths::new("/q.sock")).unwrap();
    let joined = argv.join(" ");
    for want in [
        "-machine q35,usb=off,dump-guest-core=off,acpi=off -accel kvm -cpu host -m size=1048576k",
        r#"-object {"qom-type":"memory-backend-memfd","id":"ram-node0","share":true,"size":536870912}"#,
        r#"-object {"qom-type":"memory-backend-ram","id":"ram-node1","size":536870912}"#,
        "-smp 4,sockets=1,cores=2,threads=2 -numa node,nodeid=0,cpus=0-1,memdev=ram-node0 \
         -numa node,nodeid=1,cpus=2-3,memdev=ram-node1",
        // q35's default USB controller sits on a root port.
        r#""driver":"qemu-xhci""#,
    ] {
        assert!(joined.contains(want), "missing {want}\n{joined}");
    }
}

#[test]
fn link_down_is_set_after_start() {
    let d = load(
        "<domain type='qemu'><name>l</name><memory unit='MiB'>64</memory>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
         <interface type='user'><mac address='52:54:00:00:00:01'/><link state='up'/></interface>
         <interface type='user'><mac address='52:54:00:00:00:02'/><link state='down'/></interface>
         <interface type='user'><mac address='52:54:00:00:00:03'/><alias name='ua-x'/>
           <link state='down'/></interface>
         </devices></domain>",
    );
    let cmds = post_start_qmp(&d);
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0].0, "set_link");
    assert_eq!(cmds[0].1.to_string(), r#"{"name":"net1","up":false}"#);
    assert_eq!(cmds[1].1["name"], "ua-x");
    let argv = build_argv(
        &d,
        &QemuCaps::latest(),
        &[NicBackend::User, NicBackend::User, NicBackend::User],
        &RuntimePaths::new("/q.sock"),
    )
    .unwrap();
    assert!(!argv.join(" ").contains("link"));
}

#[test]
fn refusals_name_the_device_and_the_fix() {
    let base = |devices: &str, extra: &str| {
        format!(
            "<domain type='qemu'><name>r</name><memory unit='MiB'>64</memory>{extra}
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{devices}</devices>
             </domain>"
        )
    };
    let caps = QemuCaps::latest();
    let paths = RuntimePaths::new("/q.sock");
    let build = |xml: &str| {
        let d = load(xml);
        let b = NicBackend::placeholders(&d.devices.interfaces, &caps).unwrap();
        build_argv(&d, &caps, &b, &paths)
    };
    let e = build(&base("<graphics type='vnc'/>", "")).unwrap_err();
    assert!(matches!(e, QemuError::UnsupportedDevice { .. }), "{e}");
    assert!(e.to_string().contains("headless"), "{e}");
    let e = build(&base(
        "",
        "<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("memory_dir"), "{e}");
    let e = build(&base(
        "<interface type='user'><backend type='passt'/></interface>",
        "",
    ))
    .unwrap_err();
    assert!(matches!(e, QemuError::Refused(_)), "{e}");
    // No MAC: QEMU would make one up that other guests get too.
    let e = build(&base("<interface type='user'/>", "")).unwrap_err();
    assert!(e.to_string().contains("no MAC address"), "{e}");

    // Wrong number of back ends: a caller bug, said as such.
    let d = load(&base(
        "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>",
        "",
    ));
    let e = build_argv(&d, &caps, &[], &paths).unwrap_err();
    assert!(matches!(e, QemuError::BackendMismatch { .. }), "{e}");
    let e = build_argv(&d, &caps, &[NicBackend::VhostUser], &paths).unwrap_err();
    assert!(matches!(e, QemuError::BackendMismatch { .. }), "{e}");
}

#[test]
fn file_backed_ram_uses_the_memory_dir_and_disks_are_blockdevs() {
    let d = load(
        "<domain type='qemu'><name>f</name><memory unit='KiB'>100000</memory>
         <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
           <source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
         <disk type='file' device='cdrom'><source file='/img/b.iso'/>
           <target dev='hdc' bus='ide'/></disk>
         </devices></domain>",
    );
    let paths = RuntimePaths {
        memory_dir: Some("/run/virtnet/f/ram".into()),
        ..RuntimePaths::new("/q.sock")
    };
    let argv = build_argv(&d, &QemuCaps::latest(), &[], &paths).unwrap();
    let joined = argv.join("\n");
    for want in [
        // 100000 KiB rounded up to whole MiB, as libvirt does.
        "size=100352k",
        r#"{"qom-type":"memory-backend-file","id":"pc.ram","mem-path":"/run/virtnet/f/ram","share":true,"size":102760448}"#,
        r#"{"driver":"file","filename":"/img/a.qcow2","node-name":"libvirt-2-storage","auto-read-only":true,"discard":"unmap"}"#,
        r#"{"node-name":"libvirt-2-format","read-only":false,"driver":"qcow2","file":"libvirt-2-storage"}"#,
        r#"{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x2","drive":"libvirt-2-format","id":"virtio-disk0","bootindex":1}"#,
        r#"{"driver":"file","filename":"/img/b.iso","node-name":"libvirt-1-storage","read-only":true}"#,
        r#"{"driver":"ide-cd","bus":"ide.1","unit":0,"drive":"libvirt-1-storage","id":"ide0-1-0"}"#,
    ] {
        assert!(joined.contains(want), "missing {want}\n{joined}");
    }
}

#[test]
fn format_argv_is_one_option_per_line() {
    let out = format_argv(
        "/usr/bin/qemu-system-x86_64",
        &s(&[
            "-name",
            "guest=a",
            "-S",
            "-netdev",
            r#"{"type":"user","id":"x"}"#,
            "-nodefaults",
        ]),
    );
    assert_eq!(
        out,
        "/usr/bin/qemu-system-x86_64 \\\n-name guest=a \\\n-S \\\n\
         -netdev '{\"type\":\"user\",\"id\":\"x\"}' \\\n-nodefaults\n"
    );
}

/// Sockets QEMU listens on and files it writes come as fds when the caller opened them: the
/// monitor as `fd=N`, a bind socket as `fd=N,server=on,wait=off`, a file and a log through
/// fdsets (`-add-fd` right before their `-chardev`); without fds, by path as before.
#[test]
fn chardevs_take_the_fds_virtnetd_opened() {
    let d = load(
        "<domain type='qemu'><name>c</name><memory unit='MiB'>64</memory>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
         <serial type='unix'><source mode='bind' path='/run/c/ser.sock'/>
           <target port='0'/></serial>
         <serial type='file'><source path='/var/log/c,1.log' append='on'/>
           <log file='/var/log/c-log.txt' append='off'/><target port='1'/></serial>
         <serial type='unix'><source mode='connect' path='/run/other.sock'/>
           <target port='2'/></serial>
         </devices></domain>",
    );
    let opens = chardev_host_opens(&d);
    assert_eq!(
        opens,
        vec![
            ChardevOpen {
                chardev: "charserial0".into(),
                role: ChardevRole::Source,
                open: HostOpen::ListenUnix {
                    path: "/run/c/ser.sock".into()
                },
            },
            ChardevOpen {
                chardev: "charserial1".into(),
                role: ChardevRole::Source,
                open: HostOpen::WriteFile {
                    path: "/var/log/c,1.log".into(),
                    append: true
                },
            },
            ChardevOpen {
                chardev: "charserial1".into(),
                role: ChardevRole::Log,
                open: HostOpen::WriteFile {
                    path: "/var/log/c-log.txt".into(),
                    append: false
                },
            },
        ]
    );
    let by_path = build_argv(&d, &QemuCaps::latest(), &[], &RuntimePaths::new("/q.sock")).unwrap();
    let joined = by_path.join(" ");
    for want in [
        "-chardev socket,id=charmonitor,path=/q.sock,server=on,wait=off",
        "-chardev socket,id=charserial0,path=/run/c/ser.sock,server=on,wait=off",
        "-chardev file,id=charserial1,path=/var/log/c,,1.log,append=on,\
         logfile=/var/log/c-log.txt,logappend=off",
        "-chardev socket,id=charserial2,path=/run/other.sock ",
    ] {
        assert!(joined.contains(want), "missing {want} in {joined}");
    }
    let paths = RuntimePaths {
        qmp_fd: Some(3),
        chardev_fds: vec![
            ChardevFd {
                chardev: "charserial0".into(),
                role: ChardevRole::Source,
                fd: PassedFd::Listening { fd: 4 },
            },
            ChardevFd {
                chardev: "charserial1".into(),
                role: ChardevRole::Source,
                fd: PassedFd::FdSet {
                    set: 0,
                    fd: 5,
                    opaque: "charserial1-source".into(),
                },
            },
            ChardevFd {
                chardev: "charserial1".into(),
                role: ChardevRole::Log,
                fd: PassedFd::FdSet {
                    set: 1,
                    fd: 6,
                    opaque: "charserial1-log".into(),
                },
            },
        ],
        ..RuntimePaths::new("/q.sock")
    };
    let joined = build_argv(&d, &QemuCaps::latest(), &[], &paths)
        .unwrap()
        .join(" ");
    for want in [
        "-chardev socket,id=charmonitor,fd=3,server=on,wait=off \
         -mon chardev=charmonitor,id=monitor,mode=control",
        "-chardev socket,id=charserial0,fd=4,server=on,wait=off",
        "-add-fd set=0,fd=5,opaque=charserial1-source -add-fd set=1,fd=6,opaque=charserial1-log \
         -chardev file,id=charserial1,path=/dev/fdset/0,append=on,logfile=/dev/fdset/1,\
         logappend=off",
        "-chardev socket,id=charserial2,path=/run/other.sock ",
    ] {
        assert!(joined.contains(want), "missing {want} in {joined}");
    }
    assert!(
        !joined.contains("/q.sock") && !joined.contains("c-log.txt"),
        "{joined}"
    );
}
