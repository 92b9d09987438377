//! The status, kind and message of every [`DaemonError`] variant.

use super::*;

fn host(source: HostError) -> VmError {
    VmError::Host {
        what: "host step 1 (attach tap to bridge 'nobr0')".into(),
        source,
    }
}

fn qmp_failed(command: &str, class: &str) -> QemuError {
    QemuError::CommandFailed {
        command: command.into(),
        class: class.into(),
        desc: "d".into(),
    }
}

/// A hot-plug QEMU refused because of the user's device.
fn refused() -> DaemonError {
    DaemonError::hotplug(VmError::Qemu {
        what: "step device_add".into(),
        source: Box::new(qmp_failed("device_add", "GenericError")),
    })
}

/// Every variant's status and kind: 4xx for what the user can fix, 5xx for faults.
#[test]
fn status_and_kind_of_every_variant() {
    let s = |x: &str| x.to_string();
    let io = || io::Error::from(io::ErrorKind::PermissionDenied);
    let table: Vec<(DaemonError, u16, &str)> = vec![
        (DaemonError::NoSuchVm { name: s("a") }, 404, "no_such_vm"),
        (
            DaemonError::NoSuchNetwork { name: s("n") },
            404,
            "no_such_network",
        ),
        (
            DaemonError::InvalidXml {
                problems: vec![s("1:1: x")],
            },
            400,
            "invalid_xml",
        ),
        (DaemonError::BadRequest(s("x")), 400, "bad_request"),
        (
            DaemonError::UnsupportedMediaType {
                found: s(""),
                expected: s("json"),
            },
            415,
            "unsupported_media_type",
        ),
        (
            DaemonError::PayloadTooLarge { limit: 1 },
            413,
            "payload_too_large",
        ),
        (
            DaemonError::NoRoute {
                method: s("GET"),
                path: s("/x"),
            },
            404,
            "no_route",
        ),
        (
            DaemonError::MethodNotAllowed {
                method: s("PUT"),
                path: s("/x"),
                allowed: s("GET"),
            },
            405,
            "method_not_allowed",
        ),
        (
            DaemonError::NoSuchInterface {
                vm: s("a"),
                key: s("k"),
            },
            404,
            "no_such_interface",
        ),
        (
            DaemonError::AmbiguousInterface {
                vm: s("a"),
                key: s("k"),
                count: 2,
            },
            409,
            "ambiguous_interface",
        ),
        (
            DaemonError::NoSuchDevice {
                vm: s("a"),
                what: s("x"),
            },
            404,
            "no_such_device",
        ),
        (
            DaemonError::RemovalPending {
                vm: s("a"),
                device: s("d"),
            },
            409,
            "removal_pending",
        ),
        (
            DaemonError::NotHotpluggable(s("x")),
            400,
            "not_hotpluggable",
        ),
        (
            DaemonError::Unsupported {
                problems: vec![s("1:1: unsupported configuration: x")],
            },
            400,
            "unsupported_configuration",
        ),
        (
            DaemonError::ReplugPending {
                vm: s("a"),
                nic: s("interface"),
                timeout: Duration::from_secs(5),
            },
            409,
            "removal_pending",
        ),
        // A replug whose new socket was refused as the user's, the NIC back as before.
        (
            DaemonError::ReplugFailed {
                vm: s("a"),
                nic: s("interface"),
                source: Box::new(refused()),
                back: None,
            },
            409,
            "refused",
        ),
        // The same, but the NIC could not be plugged back: a fault.
        (
            DaemonError::ReplugFailed {
                vm: s("a"),
                nic: s("interface"),
                source: Box::new(refused()),
                back: Some(Box::new(DaemonError::Internal(s("x")))),
            },
            500,
            "hotplug_failed",
        ),
        (
            DaemonError::ReplugFailed {
                vm: s("a"),
                nic: s("interface"),
                source: Box::new(DaemonError::Internal(s("x"))),
                back: None,
            },
            500,
            "hotplug_failed",
        ),
        (
            DaemonError::InUse {
                resource: s("tap t0"),
                what: "tap",
                holder_vm: s("b"),
                holder_iface: s("net0"),
            },
            409,
            "resource_in_use",
        ),
        (
            DaemonError::InUseByNetwork {
                resource: s("tap t0"),
                what: "tap",
                network: s("n"),
            },
            409,
            "resource_in_use",
        ),
        (
            DaemonError::InvalidState {
                name: s("a"),
                state: s("running"),
                hint: s("h"),
            },
            409,
            "invalid_state",
        ),
        (
            DaemonError::NetworkState {
                name: s("n"),
                state: s("active"),
                hint: s("h"),
            },
            409,
            "invalid_state",
        ),
        (
            DaemonError::Broken {
                name: s("a"),
                problem: s("p"),
            },
            409,
            "broken_definition",
        ),
        (DaemonError::Conflict(s("x")), 409, "conflict"),
        (DaemonError::store("write", "/x", io()), 500, "store"),
        (
            DaemonError::StartupIo {
                action: "bind",
                path: PathBuf::from("/x"),
                source: io(),
            },
            500,
            "startup",
        ),
        (
            DaemonError::StateDirLocked {
                state_dir: PathBuf::from("/x"),
                lock: PathBuf::from("/x/virtnetd.lock"),
                source: io(),
            },
            500,
            "startup",
        ),
        (
            DaemonError::QemuUser {
                name: "virtnet-qemu".into(),
                source: HostError::SystemUser {
                    name: "virtnet-qemu".into(),
                    reason: "useradd failed".into(),
                },
            },
            500,
            "startup",
        ),
        (
            DaemonError::SocketInUse {
                path: PathBuf::from("/x"),
            },
            500,
            "startup",
        ),
        (
            DaemonError::NotASocket {
                path: PathBuf::from("/x"),
            },
            500,
            "startup",
        ),
        (
            DaemonError::SocketPathTooLong {
                path: PathBuf::from("/x"),
                max: 107,
            },
            500,
            "startup",
        ),
        (
            DaemonError::HostUnavailable {
                source: Arc::new(HostError::TunUnavailable { source: io() }),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchNotFound {
                looked: vec![PathBuf::from("/x")],
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchSpawn {
                binary: PathBuf::from("/x"),
                source: io(),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchExited {
                binary: PathBuf::from("/x"),
                status: std::os::unix::process::ExitStatusExt::from_raw(256),
                log: PathBuf::from("/x.log"),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchStartTimeout {
                control: PathBuf::from("/x"),
                timeout: Duration::from_secs(10),
                log: PathBuf::from("/x.log"),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchIo {
                control: PathBuf::from("/x"),
                source: io(),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchReply {
                control: PathBuf::from("/x"),
                reply: s("?"),
                source: serde_json::from_str::<u8>("?").unwrap_err(),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchRefused {
                request: s("{}"),
                reason: s("r"),
            },
            500,
            "vm",
        ),
        (
            DaemonError::SwitchTimeout {
                control: PathBuf::from("/x"),
                timeout: Duration::from_secs(10),
            },
            500,
            "vm",
        ),
        (
            DaemonError::CommandSpawn {
                command: s("ip link"),
                source: io(),
            },
            500,
            "vm",
        ),
        (
            DaemonError::CommandFailed {
                command: s("ip link"),
                stderr: s("e"),
            },
            500,
            "vm",
        ),
        (
            DaemonError::QmpStalled {
                vm: s("a"),
                source: Box::new(QemuError::CommandTimeout {
                    command: s("set_link"),
                    timeout: Duration::from_secs(1),
                }),
            },
            500,
            "vm",
        ),
        (
            DaemonError::PlugStalled {
                vm: s("a"),
                source: Box::new(VmError::Qemu {
                    what: s("step netdev_add"),
                    source: Box::new(QemuError::CommandTimeout {
                        command: s("netdev_add"),
                        timeout: Duration::from_secs(1),
                    }),
                }),
            },
            500,
            "hotplug_failed",
        ),
        (
            DaemonError::QmpUnreachable {
                socket: PathBuf::from("/x"),
                source: Box::new(QemuError::Closed {
                    waiting_for: s("x"),
                }),
            },
            500,
            "vm",
        ),
        // QEMU refusing the user's configuration is the user's; other QMP errors are not.
        (
            DaemonError::Qmp {
                source: Box::new(qmp_failed("device_add", "GenericError")),
            },
            409,
            "refused",
        ),
        (
            DaemonError::Qmp {
                source: Box::new(qmp_failed("query-status", "GenericError")),
            },
            500,
            "vm",
        ),
        (
            DaemonError::ChardevChange {
                vm: s("a"),
                alias: s("serial0"),
                to: s("file"),
                source: Box::new(qmp_failed("chardev-change", "GenericError")),
            },
            409,
            "refused",
        ),
        (
            DaemonError::ChardevChange {
                vm: s("a"),
                alias: s("serial0"),
                to: s("file"),
                source: Box::new(QemuError::Closed {
                    waiting_for: s("x"),
                }),
            },
            500,
            "vm",
        ),
        // The user's own command (qemu-monitor-command) refused by QEMU.
        (
            DaemonError::QmpRefused {
                source: Box::new(qmp_failed("no-such-command", "CommandNotFound")),
            },
            400,
            "qmp_error",
        ),
        (DaemonError::Internal(s("x")), 500, "internal"),
        (
            DaemonError::Qmp {
                source: Box::new(QemuError::Protocol(s("x"))),
            },
            500,
            "vm",
        ),
        (
            DaemonError::QemuBinary {
                qemu: PathBuf::from("/nope/qemu"),
                source: Box::new(VmError::InvalidContext(s("x"))),
            },
            500,
            "vm",
        ),
        // The vm crate's errors, classified where they were made.
        (
            DaemonError::hotplug(VmError::Qemu {
                what: s("step device_add"),
                source: Box::new(qmp_failed("device_add", "GenericError")),
            }),
            409,
            "refused",
        ),
        (
            DaemonError::hotplug(VmError::Qemu {
                what: s("step device_add"),
                source: Box::new(QemuError::CommandTimeout {
                    command: s("device_add"),
                    timeout: Duration::from_secs(1),
                }),
            }),
            500,
            "hotplug_failed",
        ),
        (
            DaemonError::vm(host(HostError::BridgeNotFound { bridge: s("nobr0") })),
            409,
            "refused",
        ),
        (
            DaemonError::vm(host(HostError::TunUnavailable { source: io() })),
            500,
            "vm",
        ),
        (
            DaemonError::hotplug(host(HostError::TapBusy { name: s("t0") })),
            409,
            "refused",
        ),
        (
            DaemonError::hotplug(host(HostError::Injected {
                call: 0,
                what: s("tap"),
            })),
            500,
            "hotplug_failed",
        ),
        (
            DaemonError::vm(VmError::UnsupportedInterface {
                nic: s("nic"),
                reason: s("r"),
            }),
            409,
            "refused",
        ),
        (
            DaemonError::vm(VmError::StopCleanup {
                vm: s("a"),
                errors: vec![s("tap")],
            }),
            500,
            "vm",
        ),
    ];
    for (e, status, kind) in &table {
        assert_eq!((e.http_status(), e.kind()), (*status, *kind), "{e:?}");
        assert_eq!(e.is_user_error(), *status < 500, "{e:?}");
    }
}

/// The typed variants that replaced formatted strings say what they said before, and keep
/// their cause as the source.
#[test]
fn typed_variants_keep_messages_and_sources() {
    let e = DaemonError::ReplugFailed {
        vm: "a".into(),
        nic: "interface 52:54:00:00:00:01 (#1, type='vhostuser')".into(),
        source: Box::new(refused()),
        back: None,
    };
    let m = e.to_string();
    assert!(
        m.starts_with("replug of interface 52:54:00:00:00:01 (#1, type='vhostuser') of VM 'a': plugging it on the new socket failed: step device_add: QEMU rejected QMP command `device_add`: GenericError: d; it was plugged back on its old socket"),
        "{m}"
    );
    let src = std::error::Error::source(&e).expect("the plug's error");
    assert!(src.source().is_some(), "the chain goes on to the VmError");
    let e = DaemonError::HostUnavailable {
        source: Arc::new(HostError::TunUnavailable {
            source: io::ErrorKind::PermissionDenied.into(),
        }),
    };
    assert!(e
        .to_string()
        .starts_with("host networking is unavailable ("));
    assert!(e
        .to_string()
        .ends_with("); virtnetd must run as root with CAP_NET_ADMIN"));
    assert!(std::error::Error::source(&e).is_some());
    let e = DaemonError::StateDirLocked {
        state_dir: "/s".into(),
        lock: "/s/virtnetd.lock".into(),
        source: io::ErrorKind::WouldBlock.into(),
    };
    assert!(e
        .to_string()
        .starts_with("virtnetd cannot start: another virtnetd uses the state directory /s (lock /s/virtnetd.lock: "));
    assert!(std::error::Error::source(&e).is_some());
}

/// Wrapping keeps the message and the chain of sources.
#[test]
fn vm_errors_keep_message_and_source() {
    let v = host(HostError::BridgeNotFound {
        bridge: "nobr0".into(),
    });
    let msg = v.to_string();
    let e = DaemonError::vm(v);
    assert_eq!(e.to_string(), msg);
    let src = std::error::Error::source(&e).expect("the VmError");
    let host = src.source().expect("the HostError");
    assert!(
        host.to_string().contains("ip link add nobr0 type bridge"),
        "{host}"
    );
}
