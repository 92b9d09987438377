//! What `/proc/PID/status` says about a process's confinement: the check every test of a
//! confined process (the switch, QEMU) makes.

/// The confinement fields of `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcConfinement {
    /// Real, effective, saved and filesystem uid.
    pub uids: Vec<u32>,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// CapEff, CapPrm, CapBnd, CapInh, CapAmb (hex masks).
    pub cap_eff: u64,
    /// Permitted capabilities.
    pub cap_prm: u64,
    /// Bounding set.
    pub cap_bnd: u64,
    /// Inheritable capabilities.
    pub cap_inh: u64,
    /// Ambient capabilities.
    pub cap_amb: u64,
    /// NoNewPrivs (1 when set).
    pub no_new_privs: u32,
    /// Seccomp mode (2: filter).
    pub seccomp: u32,
}

/// Reads `/proc/PID/status`; panics when the process is gone or a field is missing.
pub fn proc_confinement(pid: u32) -> ProcConfinement {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let field = |k: &str| -> &str {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {k} in /proc/{pid}/status:\n{text}"))
    };
    let nums = |k: &str| -> Vec<u32> {
        field(k)
            .split_whitespace()
            .map(|n| n.parse().unwrap_or_else(|_| panic!("{k}: {n}")))
            .collect()
    };
    let hex = |k: &str| u64::from_str_radix(field(k), 16).unwrap_or_else(|_| panic!("{k}"));
    ProcConfinement {
        uids: nums("Uid"),
        groups: nums("Groups"),
        cap_eff: hex("CapEff"),
        cap_prm: hex("CapPrm"),
        cap_bnd: hex("CapBnd"),
        cap_inh: hex("CapInh"),
        cap_amb: hex("CapAmb"),
        no_new_privs: nums("NoNewPrivs")[0],
        seccomp: nums("Seccomp")[0],
    }
}

/// Asserts that `pid` (`what`, for the message) runs confined: no uid 0, no capability in
/// any set, NoNewPrivs 1, a seccomp filter (mode 2). Returns what was read.
pub fn assert_confined(pid: u32, what: &str) -> ProcConfinement {
    let c = proc_confinement(pid);
    assert!(
        !c.uids.contains(&0),
        "{what} (pid {pid}) runs as uid 0: {c:?}"
    );
    assert_eq!(
        (c.cap_eff, c.cap_prm, c.cap_bnd, c.cap_inh, c.cap_amb),
        (0, 0, 0, 0, 0),
        "{what} (pid {pid}) keeps capabilities: {c:?}"
    );
    assert_eq!(
        c.no_new_privs, 1,
        "{what} (pid {pid}) without NoNewPrivs: {c:?}"
    );
    assert_eq!(
        c.seccomp, 2,
        "{what} (pid {pid}) without a seccomp filter: {c:?}"
    );
    c
}
