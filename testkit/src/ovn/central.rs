//! [`Central`]: OVN's central part in its own namespace: the Northbound and Southbound
//! databases (two ovsdb-servers) and ovn-northd, which turns the first into the second.

use std::path::{Path, PathBuf};

use super::named_ns::{run, NamedNetns};
use crate::ovs::stop_pidfile;

/// The schemas Debian's ovn-common installs.
const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
/// The Southbound database's TCP port on the underlay (OVN's usual one).
pub const SB_PORT: u16 = 6642;

/// OVN central, running (see the module doc); [`Drop`] stops its daemons.
pub struct Central {
    ns: NamedNetns,
    dir: PathBuf,
    ip: String,
}

impl Central {
    /// Starts NB, SB (listening on `unix:DIR/sb.sock` and `tcp:IP:6642`) and ovn-northd in
    /// `ns`, every file in `dir`. The namespace's underlay address `ip` must already be set.
    pub(crate) fn start(ns: NamedNetns, dir: &Path, ip: &str) -> Central {
        std::fs::create_dir_all(dir).expect("create central's directory");
        let c = Central {
            ns,
            dir: dir.to_path_buf(),
            ip: ip.to_string(),
        };
        let d = dir.display();
        for (db, schema) in [("nb", NB_SCHEMA), ("sb", SB_SCHEMA)] {
            let file = format!("{d}/{db}.db");
            run(std::process::Command::new("ovsdb-tool").args(["create", &file, schema]))
                .unwrap_or_else(|e| panic!("ovsdb-tool create {file}: {e}"));
            let mut args = vec![
                "-vconsole:off".to_string(),
                file,
                format!("--remote=punix:{d}/{db}.sock"),
            ];
            if db == "sb" {
                args.push(format!("--remote=ptcp:{SB_PORT}:{ip}"));
            }
            args.extend(daemon_args(dir, db));
            c.start_daemon("ovsdb-server", &args);
        }
        let mut args = vec![
            "-vconsole:off".to_string(),
            format!("--ovnnb-db={}", c.nb()),
            format!("--ovnsb-db={}", c.sb()),
        ];
        args.extend(daemon_args(dir, "northd"));
        c.start_daemon("ovn-northd", &args);
        c
    }

    /// The Northbound database (`unix:DIR/nb.sock`), for ovn-nbctl's `--db`.
    pub fn nb(&self) -> String {
        format!("unix:{}/nb.sock", self.dir.display())
    }

    /// The Southbound database (`unix:DIR/sb.sock`), for ovn-sbctl's `--db`.
    pub fn sb(&self) -> String {
        format!("unix:{}/sb.sock", self.dir.display())
    }

    /// The Southbound database as the hosts reach it over the underlay (`tcp:IP:6642`).
    pub fn sb_remote(&self) -> String {
        format!("tcp:{}:{SB_PORT}", self.ip)
    }

    /// `ovn-nbctl ARGS`: trimmed stdout; panics with stderr.
    pub fn nbctl(&self, args: &[&str]) -> String {
        self.ctl("ovn-nbctl", &self.nb(), args)
    }

    /// `ovn-sbctl ARGS`: trimmed stdout; panics with stderr.
    pub fn sbctl(&self, args: &[&str]) -> String {
        self.ctl("ovn-sbctl", &self.sb(), args)
    }

    fn ctl(&self, program: &str, db: &str, args: &[&str]) -> String {
        let db = format!("--db={db}");
        run(std::process::Command::new(program)
            .args([db.as_str(), "--timeout=20"])
            .args(args))
        .unwrap_or_else(|e| panic!("{program} {}: {e}", args.join(" ")))
    }

    fn start_daemon(&self, program: &str, args: &[String]) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(e) = self.ns.run(program, &args) {
            panic!(
                "{program} {}: {e}\n{}",
                args.join(" "),
                super::logs(&self.dir)
            );
        }
    }

    /// Central's network namespace.
    pub fn ns(&self) -> &NamedNetns {
        &self.ns
    }

    /// Central's directory (databases, sockets, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `--pidfile`, `--log-file`, `--unixctl` in `dir` named after `name`, detached.
pub(crate) fn daemon_args(dir: &Path, name: &str) -> Vec<String> {
    let d = dir.display();
    vec![
        format!("--pidfile={d}/{name}.pid"),
        format!("--log-file={d}/{name}.log"),
        format!("--unixctl={d}/{name}.ctl"),
        "--no-chdir".into(),
        "--detach".into(),
    ]
}

impl Drop for Central {
    fn drop(&mut self) {
        for name in ["northd", "sb", "nb"] {
            stop_pidfile(&self.dir.join(format!("{name}.pid")));
        }
    }
}
