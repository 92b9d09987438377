//! The paths QEMU opens by name, from the domain, with the access it needs: what a confined
//! QEMU's user must reach ([`virtnet_host::dac`]). It follows what the argv builder
//! (`virtnet_qemu::argv`) and the hot-plug JSON emit: `-kernel`/`-initrd`, the `file`/
//! `host_device` blockdev of each disk (read-only for `<readonly/>` and cdroms), vhost-user
//! sockets QEMU connects to (`mode='client'`), unix chardev sockets it connects to, and
//! `type='dev'` chardevs.
//!
//! Not here: what QEMU creates or listens on (sockets it binds, `type='file'` chardev
//! output, its QMP socket and log), which virtnetd opens and passes as fds; `type='pipe'`
//! chardevs (QEMU picks `path`, or `path.in`/`path.out` when they exist: not granted). A
//! qcow2 disk is marked `backing`: its backing chain, read from the image headers when the
//! grant is made, is given read access with it. `<loader>`, `<nvram>`, `<dtb>` and file-backed guest
//! RAM are refused by the argv builder, so nothing opens them.

use virtnet_conf::devices::{Chardev, ChrSource};
use virtnet_conf::interface::{Interface, SocketMode};
use virtnet_conf::Domain;
use virtnet_host::{Access, GrantSpec, Identity, PathNeed};
use virtnet_qemu::{QemuUser, Sandbox};

/// Every path QEMU opens by name for `domain` besides its interfaces' ([`interface_path`]:
/// held per NIC, so unplugging one gives its socket back), one entry per path (a path used
/// twice gets the access covering both), in the order QEMU's command line names them.
pub fn domain_paths(domain: &Domain) -> Vec<PathNeed> {
    let mut v = Vec::new();
    for (what, p) in [("kernel", domain.kernel()), ("initrd", domain.initrd())] {
        if let Some(p) = p {
            v.push(need(p, Access::Read, what.to_string()));
        }
    }
    for d in domain.disks() {
        if let Some(p) = d.source_path() {
            let access = if d.readonly || d.device == "cdrom" {
                Access::Read
            } else {
                Access::ReadWrite
            };
            let mut n = need(p, access, format!("disk '{}'", d.target.dev));
            n.backing = d.format() == Some("qcow2");
            v.push(n);
        }
    }
    let dv = &domain.devices;
    for c in dv.serials.iter().chain(&dv.consoles).chain(&dv.channels) {
        v.extend(chardev_path(c));
    }
    merge(v)
}

/// The path QEMU opens for a hot-plugged interface (`what` names it in messages): the
/// socket of a `mode='client'` vhost-user interface.
pub fn interface_path(iface: &Interface, what: &str) -> Option<PathNeed> {
    match iface.vhostuser_socket() {
        Some((path, SocketMode::Client)) => Some(need(
            path,
            Access::Connect,
            format!("vhost-user socket of {what}"),
        )),
        _ => None,
    }
}

/// The path QEMU opens by name for a character device (also at `chardev-change`).
pub fn chardev_path(c: &Chardev) -> Option<PathNeed> {
    chardev_source_path(&c.source, &format!("<{}> source", c.kind.as_str()))
}

/// The path QEMU opens by name for a chardev source (`what` names it in messages): a unix
/// socket it connects to, or a host device.
pub fn chardev_source_path(source: &ChrSource, what: &str) -> Option<PathNeed> {
    match source {
        ChrSource::Unix {
            listen: false,
            path: Some(p),
            ..
        } => Some(need(p, Access::Connect, what.to_string())),
        ChrSource::Dev { path } => Some(need(path, Access::ReadWrite, what.to_string())),
        _ => None,
    }
}

/// The ids a confined QEMU runs with, as the access decision needs them.
pub fn identity(user: &QemuUser) -> Identity {
    Identity {
        name: user.name.clone(),
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
    }
}

/// The grants that give `sandbox`'s user `needs`, held by `holder`.
pub fn grants(needs: Vec<PathNeed>, sandbox: &Sandbox, holder: &str) -> Vec<GrantSpec> {
    let who = identity(&sandbox.user);
    needs
        .into_iter()
        .map(|need| GrantSpec {
            need,
            who: who.clone(),
            holder: holder.to_string(),
        })
        .collect()
}

fn need(path: &str, access: Access, what: String) -> PathNeed {
    PathNeed {
        path: path.into(),
        access,
        what,
        backing: false,
    }
}

fn merge(v: Vec<PathNeed>) -> Vec<PathNeed> {
    let mut out: Vec<PathNeed> = Vec::new();
    for n in v {
        match out.iter_mut().find(|o| o.path == n.path) {
            Some(o) => {
                o.access = o.access.union(n.access);
                o.backing |= n.backing;
                o.what = format!("{} and {}", o.what, n.what);
            }
            None => out.push(n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_conf::load_domain;

    /// Every kind of path, with its access; every path is on QEMU's command line.
    #[test]
    fn paths_of_a_domain() {
        let xml = "<domain type='qemu'><name>p</name><memory unit='MiB'>64</memory>\
            <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking><os><type arch='x86_64' machine='pc'>hvm</type><kernel>/k/vmlinux</kernel>\
            <initrd>/k/initrd</initrd></os><devices>\
            <disk type='file' device='disk'><source file='/img/a.raw'/><target dev='vda' bus='virtio'/></disk>\
            <disk type='file' device='disk'><source file='/img/b.raw'/><target dev='vdb' bus='virtio'/><readonly/></disk>\
            <disk type='file' device='disk'><source file='/img/a.raw'/><target dev='vdc' bus='virtio'/><readonly/></disk>\
            <interface type='vhostuser'><mac address='52:54:00:00:00:01'/>\
              <source type='unix' path='/s/c.sock' mode='client'/><model type='virtio'/></interface>\
            <interface type='vhostuser'><mac address='52:54:00:00:00:02'/>\
              <source type='unix' path='/s/s.sock' mode='server'/><model type='virtio'/></interface>\
            <serial type='unix'><source mode='connect' path='/s/serial.sock'/><target port='0'/></serial>\
            <serial type='file'><source path='/log/out'/><target port='1'/></serial>\
            <serial type='dev'><source path='/dev/ttyS1'/><target port='2'/></serial>\
            </devices></domain>";
        let d = load_domain(xml).unwrap();
        let got: Vec<(String, Access, String)> = domain_paths(&d)
            .into_iter()
            .map(|n| (n.path.display().to_string(), n.access, n.what))
            .collect();
        let want = [
            ("/k/vmlinux", Access::Read, "kernel"),
            ("/k/initrd", Access::Read, "initrd"),
            ("/img/a.raw", Access::ReadWrite, "disk 'vda' and disk 'vdc'"),
            ("/img/b.raw", Access::Read, "disk 'vdb'"),
            // libvirt's default console is serial 0 again.
            (
                "/s/serial.sock",
                Access::Connect,
                "<serial> source and <console> source",
            ),
            ("/dev/ttyS1", Access::ReadWrite, "<serial> source"),
        ];
        let want: Vec<(String, Access, String)> = want
            .iter()
            .map(|(p, a, w)| (p.to_string(), *a, w.to_string()))
            .collect();
        assert_eq!(got, want);
        let ifaces: Vec<_> = d
            .devices
            .interfaces
            .iter()
            .map(|i| interface_path(i, "interface #0").map(|n| (n.path, n.access)))
            .collect();
        assert_eq!(
            ifaces,
            [Some(("/s/c.sock".into(), Access::Connect)), None],
            "the client socket; QEMU listens on the server one"
        );
    }
}
