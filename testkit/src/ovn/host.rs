//! [`OvnHost`]: one simulated hypervisor host in its own namespace: ovsdb-server and
//! ovs-vswitchd on the userspace datapath ([`crate::ovs::Ovs`]) and ovn-controller, every file
//! in one directory.
//!
//! What the userspace datapath needs for Geneve (OVS's "userspace tunneling" setup): the
//! underlay veth `eth0` is a port of an OVS bridge `br-phys` and the host's underlay address is
//! on `br-phys` itself (its internal port), not on the veth. ovs-vswitchd, running in this
//! namespace, caches the namespace's routes (`ovs-appctl ovs/route/show`: the underlay subnet
//! via `br-phys`) and learns the remote tunnel endpoints' MACs by snooping ARP replies on
//! `br-phys` (`tnl/neigh/show`); encapsulated packets leave through `br-phys`, and packets
//! addressed to `br-phys`'s address are decapsulated. `br-int` is on the same netdev datapath
//! (`external_ids:ovn-bridge-datapath-type=netdev`, else ovn-controller would make it a kernel
//! bridge). ovn-controller finds ovs-vswitchd's `br-int.mgmt` OpenFlow socket in `OVS_RUNDIR`,
//! hence one directory for both.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::central::daemon_args;
use super::named_ns::NamedNetns;
use crate::ovs::{stop_pidfile, Ovs};

/// A running host (see the module doc); [`Drop`] stops ovn-controller, then the fields drop in
/// order: Open vSwitch ([`Ovs`]: ovs-vswitchd, ovsdb-server), the namespace.
pub struct OvnHost {
    name: String,
    ovs: Ovs,
    ns: NamedNetns,
    dir: PathBuf,
    underlay_ip: String,
}

impl OvnHost {
    /// Starts OVS in `ns` (which has the underlay veth `eth0`, up, without address), makes
    /// `br-phys` with `eth0` and `underlay_cidr` on it, `br-int`, and ovn-controller as chassis
    /// `name` encapsulating in Geneve from the underlay address towards `sb_remote`.
    pub(crate) fn start(
        name: &str,
        ns: NamedNetns,
        dir: &Path,
        underlay_cidr: &str,
        sb_remote: &str,
    ) -> OvnHost {
        std::fs::create_dir_all(dir).expect("create the host's directory");
        let ip = underlay_cidr.split('/').next().unwrap_or(underlay_cidr);
        // Open vSwitch (testkit's own: ovsdb-server and ovs-vswitchd, files in `dir`).
        let ovs = Ovs::start(Some(ns.name()), dir);
        let h = OvnHost {
            name: name.to_string(),
            ovs,
            ns,
            dir: dir.to_path_buf(),
            underlay_ip: ip.to_string(),
        };
        // The underlay: eth0 in br-phys, the address on br-phys.
        h.vsctl(&[
            "add-br",
            "br-phys",
            "--",
            "set",
            "bridge",
            "br-phys",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-phys",
            "eth0",
        ]);
        h.ns.ok("ip", &["addr", "add", underlay_cidr, "dev", "br-phys"]);
        h.ns.ok("ip", &["link", "set", "br-phys", "up"]);
        // The integration bridge ovn-controller programs.
        h.vsctl(&[
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=netdev",
            "fail-mode=secure",
            "other-config:disable-in-band=true",
        ]);
        let ids = [
            format!("external_ids:system-id={name}"),
            format!("external_ids:hostname={name}"),
            format!("external_ids:ovn-remote={sb_remote}"),
            "external_ids:ovn-encap-type=geneve".into(),
            format!("external_ids:ovn-encap-ip={ip}"),
            "external_ids:ovn-bridge=br-int".into(),
            "external_ids:ovn-bridge-datapath-type=netdev".into(),
        ];
        let mut args = vec!["set", "open_vswitch", "."];
        args.extend(ids.iter().map(String::as_str));
        h.vsctl(&args);
        // ovn-controller has no --unixctl: its control socket goes to OVN_RUNDIR.
        let mut args = vec!["-vconsole:off".into(), h.ovsdb()];
        args.extend(
            daemon_args(dir, "ovn-controller")
                .into_iter()
                .filter(|a| !a.starts_with("--unixctl")),
        );
        h.daemon("ovn-controller", &args);
        h
    }

    /// The chassis name (`external_ids:system-id`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's network namespace (for `ip netns exec`, or a virtnetd started in it).
    pub fn ns(&self) -> &NamedNetns {
        &self.ns
    }

    /// The host's directory (OVS/OVN databases, sockets, logs, pidfiles).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host's underlay address (its Geneve tunnel endpoint).
    pub fn underlay_ip(&self) -> &str {
        &self.underlay_ip
    }

    /// The host's Open vSwitch.
    pub fn ovs(&self) -> &Ovs {
        &self.ovs
    }

    /// The host's OVSDB as ovs-vsctl's `--db` and `virtnetd --ovsdb` take it.
    pub fn ovsdb(&self) -> String {
        self.ovs.db()
    }

    /// `ovs-vsctl ARGS` on this host's OVSDB: trimmed stdout; panics with stderr.
    pub fn vsctl(&self, args: &[&str]) -> String {
        self.ovs.vsctl(args)
    }

    /// `ovs-appctl ARGS` to this host's ovs-vswitchd: trimmed stdout; panics with stderr.
    pub fn appctl(&self, args: &[&str]) -> String {
        let t = format!("--target={}/ovs-vswitchd.ctl", self.dir.display());
        let mut a = vec![t.as_str()];
        a.extend_from_slice(args);
        super::named_ns::run(Command::new("ovs-appctl").args(&a))
            .unwrap_or_else(|e| panic!("{}: ovs-appctl {}: {e}", self.name, args.join(" ")))
    }

    /// Adds an OVS internal port `port` to br-int bound to logical port `lsp`
    /// (`external_ids:iface-id`), with `mac` and the address `cidr` on its kernel side.
    pub fn add_internal_port(&self, port: &str, lsp: &str, mac: &str, cidr: &str) {
        let iface_id = format!("external_ids:iface-id={lsp}");
        self.vsctl(&[
            "add-port",
            "br-int",
            port,
            "--",
            "set",
            "interface",
            port,
            "type=internal",
            &iface_id,
        ]);
        self.ns.ok("ip", &["link", "set", port, "address", mac]);
        self.ns.ok("ip", &["addr", "add", cidr, "dev", port]);
        self.ns.ok("ip", &["link", "set", port, "up"]);
    }

    /// The Geneve tunnel port ovn-controller made towards chassis `peer` (`ovn-<peer>-0`),
    /// if it exists yet.
    pub fn tunnel_port(&self, peer: &str) -> Option<String> {
        let ports = self.vsctl(&[
            "--bare",
            "--columns=name,options",
            "find",
            "interface",
            "type=geneve",
        ]);
        // Rows are separated by blank lines: the name, then the options (remote_ip=...).
        ports
            .split("\n\n")
            .find(|row| row.contains(&format!("ovn-{peer}-")))
            .and_then(|row| row.lines().next())
            .map(|n| n.trim().to_string())
    }

    /// The tunnel port's `(rx_packets, tx_packets)` from the Interface table (ovs-vswitchd
    /// refreshes it every 5 s: `other_config:stats-update-interval`).
    pub fn tunnel_packets(&self, peer: &str) -> (u64, u64) {
        let Some(port) = self.tunnel_port(peer) else {
            return (0, 0);
        };
        let get = |key: &str| {
            self.vsctl(&["get", "interface", &port, &format!("statistics:{key}")])
                .parse()
                .unwrap_or(0)
        };
        (get("rx_packets"), get("tx_packets"))
    }

    /// Runs `program ARGS` in the host's namespace with its OVS/OVN directories (ovn-controller
    /// finds ovs-vswitchd's `br-int.mgmt` in `OVS_RUNDIR`).
    fn daemon(&self, program: &str, args: &[String]) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.ns.command(program);
        cmd.args(&args);
        if let Err(e) = super::named_ns::run(self.env(&mut cmd)) {
            panic!(
                "{}: {program} {}: {e}\n{}",
                self.name,
                args.join(" "),
                super::logs(&self.dir)
            );
        }
    }

    /// Points OVS's and OVN's tools at this host's directory.
    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for var in [
            "OVS_RUNDIR",
            "OVS_DBDIR",
            "OVS_LOGDIR",
            "OVS_SYSCONFDIR",
            "OVN_RUNDIR",
            "OVN_DBDIR",
            "OVN_LOGDIR",
        ] {
            cmd.env(var, &self.dir);
        }
        cmd
    }
}

impl Drop for OvnHost {
    fn drop(&mut self) {
        stop_pidfile(&self.dir.join("ovn-controller.pid"));
    }
}
