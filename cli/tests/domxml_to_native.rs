//! `virtnet domxml-to-native qemu-argv FILE` as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn virtnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(args)
        .output()
        .expect("run virtnet")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn three_nics_prints_one_option_per_line_with_fd_placeholders() {
    let f = examples().join("three-nics.xml");
    let out = virtnet(&["domxml-to-native", "qemu-argv", f.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "/usr/bin/qemu-system-x86_64 \\");
    assert_eq!(lines[1], "-name guest=three-nics,debug-threads=on \\");
    assert_eq!(*lines.last().unwrap(), "-msg timestamp=on");
    assert!(lines[..lines.len() - 1].iter().all(|l| l.ends_with(" \\")));
    for want in [
        "-accel kvm \\",
        "-machine pc,usb=off,dump-guest-core=off,memory-backend=pc.ram,acpi=on \\",
        r#"-object '{"qom-type":"memory-backend-memfd","id":"pc.ram","share":true,"size":1073741824}' \"#,
        // The bridge NIC: two queues, tap and vhost-net fds as placeholders.
        r#"-netdev '{"type":"tap","fds":"@tap-fd:net0:0@:@tap-fd:net0:1@","vhost":true,"vhostfds":"@vhost-fd:net0:0@:@vhost-fd:net0:1@","id":"hostnet0"}' \"#,
        // The vhost-user NIC: QEMU is the server on the socket.
        "-chardev socket,id=charnet1,path=/run/virtnet/vhost/three-nics-0.sock,server=on \\",
        r#"-netdev '{"type":"vhost-user","chardev":"charnet1","queues":2,"id":"hostnet1"}' \"#,
        "-chardev socket,id=charmonitor,path=@qmp-socket@,server=on,wait=off \\",
    ] {
        assert!(lines.contains(&want), "missing line {want}\n{stdout}");
    }
    // The VF is a vfio-pci device.
    assert!(
        stdout.contains(r#""driver":"vfio-pci","host":"0000:03:10.2","id":"hostdev0""#),
        "{stdout}"
    );
    // KVM guest: the vhost-user NIC keeps MSI-X (mq with 2*2+2 vectors).
    assert!(
        stdout.contains(r#""mq":true,"vectors":6,"rx_queue_size":1024"#),
        "{stdout}"
    );
    assert!(!stdout.contains("-no-shutdown"));
}

#[test]
fn invalid_domain_is_refused_with_file_line_col() {
    let f = examples().join("invalid/vhostuser-shared-path.xml");
    let name = f.to_str().unwrap();
    let out = virtnet(&["domxml-to-native", "qemu-argv", name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    let line = err.lines().next().expect("an error line");
    let mut parts = line.splitn(4, ':');
    assert_eq!(parts.next(), Some(name));
    assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
    assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
    assert!(err.contains("/run/vhost/port0.sock"), "{err}");
}

#[test]
fn wrong_format_and_unbuildable_domain_are_refused_clearly() {
    let f = examples().join("three-nics.xml");
    let out = virtnet(&["domxml-to-native", "native-xml", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("'native-xml'") && err.contains("qemu-argv"),
        "{err}"
    );

    // Valid XML, but QEMU's driver runs scripts only for type='ethernet' taps (libvirt's
    // rule): on a bridge NIC it is refused.
    let dir = tempdir();
    let xml = dir.join("script.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'><name>s</name><memory unit='MiB'>64</memory><os><type \
         arch='x86_64' machine='pc'>hvm</type></os><devices><interface type='bridge'>\
         <source bridge='br0'/><script path='/etc/qemu-ifup'/><model type='virtio'/>\
         </interface></devices></domain>",
    )
    .unwrap();
    let out = virtnet(&["domxml-to-native", "qemu-argv", xml.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("scripts are not supported on interfaces of type 'bridge'")
            && err.contains("script.xml:1:"),
        "{err}"
    );
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("virtnet-d2n-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
