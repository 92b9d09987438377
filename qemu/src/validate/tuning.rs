//! Checking `<memtune>` and `<cputune>` against the rules of [`Rule::TUNING`]: virtnet
//! enforces what it types (through the VM's cgroup) and refuses everything else at define,
//! with the element's line:col.

use virtnet_conf::xml::Pos;
use virtnet_conf::Domain;

use super::{Operation, Refusal, Rule};

/// cgroup v1 `cpu.shares` accepts 2..=262144 (libvirt's range; v2's `cpu.weight` is checked
/// at start, when the host's cgroup version is known).
pub const SHARES_RANGE: (u64, u64) = (2, 262_144);
/// `<global_period>` range in µs (the kernel's CFS period limits, libvirt's check).
pub const PERIOD_RANGE: (u64, u64) = (1_000, 1_000_000);
/// `<global_quota>` range in µs (negative = unlimited).
pub const QUOTA_RANGE: (i64, i64) = (1_000, 17_592_186_044_415);

/// Where each rule finds a problem in `domain`, with its message.
fn find(rule: Rule, d: &Domain) -> Vec<(Pos, String)> {
    let mem = d.memtune.as_ref();
    let cpu = d.cputune.as_ref();
    match rule {
        Rule::MemtuneMinGuarantee => mem
            .and_then(|m| m.min_guarantee_kib)
            .map(|g| {
                (
                    g.pos,
                    "<memtune><min_guarantee> cannot be enforced for QEMU (libvirt supports it \
                     on ESX only): remove it; <hard_limit> and <soft_limit> are enforced"
                        .to_string(),
                )
            })
            .into_iter()
            .collect(),
        Rule::MemtuneUnknown => mem
            .map(|m| m.unknown.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    e.pos,
                    format!(
                        "<memtune><{}> is not a memory limit virtnet knows: use <hard_limit>, \
                         <soft_limit> or <swap_hard_limit>",
                        e.name
                    ),
                )
            })
            .collect(),
        Rule::MemtuneSwapBelowHard => mem
            .and_then(|m| match (m.hard_limit_kib, m.swap_hard_limit_kib) {
                (Some(h), Some(s)) if s.value < h.value => Some((
                    s.pos,
                    format!(
                        "<swap_hard_limit> ({} KiB) is memory plus swap and must be at least \
                         <hard_limit> ({} KiB): raise it or remove it",
                        s.value, h.value
                    ),
                )),
                _ => None,
            })
            .into_iter()
            .collect(),
        Rule::CputuneNotEnforced => cpu
            .map(|c| c.unenforced.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|e| (e.pos, not_enforced(&e.name)))
            .collect(),
        Rule::CputuneRange => {
            let Some(c) = cpu else { return Vec::new() };
            let mut v = Vec::new();
            if let Some(s) = c.shares {
                if s.value < SHARES_RANGE.0 || s.value > SHARES_RANGE.1 {
                    v.push((
                        s.pos,
                        format!(
                            "<shares> {} is out of range: use {}..={} (1024 is the default \
                             weight)",
                            s.value, SHARES_RANGE.0, SHARES_RANGE.1
                        ),
                    ));
                }
            }
            if let Some(p) = c.global_period {
                if p.value < PERIOD_RANGE.0 || p.value > PERIOD_RANGE.1 {
                    v.push((
                        p.pos,
                        format!(
                            "<global_period> {} µs is out of range: use {}..={} µs",
                            p.value, PERIOD_RANGE.0, PERIOD_RANGE.1
                        ),
                    ));
                }
            }
            if let Some(q) = c.global_quota {
                if q.value >= 0 && (q.value < QUOTA_RANGE.0 || q.value > QUOTA_RANGE.1) {
                    v.push((
                        q.pos,
                        format!(
                            "<global_quota> {} µs is out of range: use {}..={} µs, or -1 for \
                             no limit",
                            q.value, QUOTA_RANGE.0, QUOTA_RANGE.1
                        ),
                    ));
                }
            }
            v
        }
        _ => Vec::new(),
    }
}

/// The message for a `<cputune>` child virtnet does not enforce.
fn not_enforced(name: &str) -> String {
    let why = match name {
        "period" | "quota" | "emulator_period" | "emulator_quota" | "iothread_period"
        | "iothread_quota" => {
            "per-thread CPU bandwidth is not enforced (virtnet keeps the whole VM in one \
             cgroup); use <global_period>/<global_quota> to cap the whole VM"
        }
        "vcpupin" | "emulatorpin" | "iothreadpin" => {
            "CPU pinning is not enforced (the VM's cgroup has no cpuset); remove it and leave \
             placement to the host scheduler"
        }
        "vcpusched" | "iothreadsched" | "emulatorsched" => {
            "real-time scheduler policies are not enforced; remove it"
        }
        "cachetune" | "memorytune" => {
            "resctrl cache/memory bandwidth tuning is not enforced; remove it"
        }
        _ => "it is not a CPU tunable virtnet knows; remove it",
    };
    format!("<cputune><{name}>: {why}")
}

/// Every refusal of `domain`'s tuning for `op`.
pub(super) fn check(op: Operation, d: &Domain) -> Vec<Refusal> {
    Rule::TUNING
        .iter()
        .filter(|r| r.ops().contains(&op))
        .flat_map(|&rule| {
            find(rule, d)
                .into_iter()
                .map(move |(pos, message)| Refusal {
                    rule,
                    op,
                    what: format!("domain '{}'", d.name()),
                    pos,
                    message,
                })
        })
        .collect()
}
