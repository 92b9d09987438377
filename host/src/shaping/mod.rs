//! `<bandwidth>` on a tap or macvtap: what limits the traffic of one host device, in each
//! direction.
//!
//! - Host → guest (`<inbound>` of a tap): what the host sends to the guest leaves through the
//!   tap's egress, so an HTB qdisc there shapes it, as libvirt does
//!   (`src/util/virnetdevbandwidth.c`): `tc qdisc add dev TAP root handle 1: htb default 1`
//!   and `tc class add dev TAP parent 1: classid 1:1 htb rate AVERAGE [ceil PEAK] [burst
//!   BURST]`. libvirt adds an `sfq` leaf and an `fw` filter; the filter only repeats the
//!   default class, and the leaf (queue fairness, not a limit) is added only where the kernel
//!   has `sfq` (this one does not: "Specified qdisc kind is unknown").
//! - Guest → host (`<outbound>` of a tap): libvirt polices the tap's ingress with a `tc`
//!   `police` action; this kernel has no tc actions ("Failed to load TC action module"). So
//!   an nftables table of the `netdev` family with a chain on the tap's `ingress` hook drops
//!   what goes over the rate: `limit rate over AVERAGE bytes/second burst BURST bytes drop`
//!   (a policer, as libvirt's; BURST defaults to one second of AVERAGE as libvirt's does, so
//!   TCP reaches the rate), and with a peak a second `limit` at PEAK with a 64 KiB burst
//!   (libvirt's police `mtu 64kb`). The ingress hook sees the frames the guest writes to the
//!   tap whether the tap is a bridge port or not.
//!
//! `peak` on the qdisc's side is HTB's `ceil`, as libvirt sets it; on a class right under the
//! root there is nothing to borrow from, so the rate stays at `average` (measured: `rate 1mbit
//! ceil 4mbit` gave 0.92 Mbit/s of TCP goodput): the peak is never exceeded, as with libvirt.
//!
//! Units: libvirt's XML gives KiB/s and KiB (its documentation; the switch reads them the
//! same way); virtnet passes exact byte rates (`AVERAGE*1024` bytes per second). libvirt
//! writes `AVERAGEkbps`, which `tc` reads as 1000-byte units: 2.4% less than the XML says.
//!
//! Why the `tc` binary and not netlink: `netlink-packet-route` (0.34) models no HTB or TBF
//! options, and HTB's netlink form needs rate tables computed as `tc` does (`tc_calc_rtable`,
//! cell logs, buffer in ticks of the kernel's psched clock); running `tc`, as libvirt does,
//! keeps that computation where it is maintained. `nft` runs through [`crate::nft`].
//!
//! A macvtap (`type='direct'`) is the other way round, as libvirt's `swapped` says: what the
//! guest writes leaves through the macvtap's egress (`dev_queue_xmit` on it), so its qdisc
//! shapes `<outbound>`; what comes for the guest passes the macvtap's ingress hook (the
//! macvlan handler hands frames on to it) before it is queued to the guest, so the nft limit
//! there polices `<inbound>`. Both measured by `daemon/tests/e2e_bandwidth.rs`.
//!
//! A device's shaping is set as a whole by [`apply`] (replacing what was there: a live
//! update) and removed by [`remove`] (idempotent; the [`crate::HostUndo::Unshape`] step). The
//! nft table outlives the tap (a netdev chain stays when its device goes, and this kernel,
//! 6.18, hooks it again onto a new device of the same name: measured, its counter counted a
//! re-created veth's packets), so it is always removed explicitly, and a table of a reused
//! name is replaced when the new device is shaped; the qdisc goes with the tap.

use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{HostError, Result};
use crate::nft;

/// The `tc` executable (iproute2).
pub const TC: &str = "tc";
/// The prefix of every table virtnet makes for a device's guest → host limit.
pub const TABLE_PREFIX: &str = "virtnet-bw-";
/// The burst of the peak limit (libvirt's police `mtu 64kb`).
const PEAK_BURST: u64 = 64 * 1024;

/// One direction's limit, in libvirt's units: KiB/s and KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Average rate (KiB/s).
    pub average: u64,
    /// Peak rate (KiB/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<u64>,
    /// Burst size (KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

impl RateLimit {
    /// `average 122 KiB/s, peak 244 KiB/s, burst 32 KiB`.
    pub fn describe(&self) -> String {
        let mut s = format!("average {} KiB/s", self.average);
        if let Some(p) = self.peak {
            s.push_str(&format!(", peak {p} KiB/s"));
        }
        if let Some(b) = self.burst {
            s.push_str(&format!(", burst {b} KiB"));
        }
        s
    }
}

/// The limits of one tap, named from the guest's side as libvirt's XML does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeSpec {
    /// The tap.
    pub dev: String,
    /// Its index: the nft table's name carries it, so a stale undo never removes the table
    /// of another tap that reused the name.
    pub ifindex: u32,
    /// Host → guest (`<inbound>`): an HTB qdisc on the tap's egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<RateLimit>,
    /// Guest → host (`<outbound>`): an nft `limit` on the tap's ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<RateLimit>,
    /// The device is a macvtap: what the guest sends leaves through its egress and what it
    /// receives passes its ingress, so the two directions swap (libvirt's `swapped`).
    #[serde(default)]
    pub macvtap: bool,
}

impl ShapeSpec {
    /// The limit of what leaves the device (a qdisc shapes it), and its `<bandwidth>` name.
    pub fn egress(&self) -> (Option<RateLimit>, &'static str) {
        if self.macvtap {
            (self.outbound, "outbound")
        } else {
            (self.inbound, "inbound")
        }
    }

    /// The limit of what enters the device (nftables polices it), and its `<bandwidth>` name.
    pub fn ingress(&self) -> (Option<RateLimit>, &'static str) {
        if self.macvtap {
            (self.inbound, "inbound")
        } else {
            (self.outbound, "outbound")
        }
    }
}

/// The nft table of `dev` (index `ifindex`): `virtnet-bw-vnet0-7`.
pub fn table_name(dev: &str, ifindex: u32) -> String {
    format!("{TABLE_PREFIX}{dev}-{ifindex}")
}

/// Makes `spec` the whole shaping of its device: its qdisc and nft table replaced, or
/// removed for a direction without a limit. On failure the device is left unshaped (both
/// removed) and the error says what the host lacks.
pub fn apply(spec: &ShapeSpec) -> Result<()> {
    let r = apply_ingress(spec).and_then(|()| apply_egress(spec));
    if r.is_err() {
        let _ = remove(&spec.dev, spec.ifindex, true);
    }
    r
}

/// Removes `dev`'s shaping: its nft table and, if `qdisc` and the device still has index
/// `ifindex`, its root qdisc. Idempotent.
pub fn remove(dev: &str, ifindex: u32, qdisc: bool) -> Result<()> {
    let t = match nft::delete_table("netdev", &table_name(dev, ifindex)) {
        // No nft tool: no table was ever made with it.
        Err(HostError::Nft { message, .. }) if message.contains("install Debian's nftables") => {
            Ok(())
        }
        r => r,
    };
    if qdisc && current_ifindex(dev) == Some(ifindex) {
        del_root_qdisc(dev)?;
    }
    t
}

/// The netdev tables virtnet made (`virtnet-bw-*`), for the sweep after a crash.
pub fn list_tables() -> Result<Vec<String>> {
    Ok(nft::list_tables("netdev")?
        .into_iter()
        .filter(|n| n.starts_with(TABLE_PREFIX))
        .collect())
}

/// Deletes a netdev table by name (the sweep); idempotent.
pub fn delete_table(name: &str) -> Result<()> {
    nft::delete_table("netdev", name)
}

fn current_ifindex(dev: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The nft batch for `spec`: drop every table of this device name (ours of an earlier
/// update, or one left by a crash on a tap that had the name before), then, with an
/// ingress limit, the table, its ingress chain and the limits.
pub fn ingress_batch(spec: &ShapeSpec, stale: &[String]) -> Vec<Value> {
    let name = table_name(&spec.dev, spec.ifindex);
    let table = |n: &str| json!({"family": "netdev", "name": n});
    let mut v = Vec::new();
    for t in stale {
        v.push(json!({"delete": {"table": table(t)}}));
    }
    let Some(out) = spec.ingress().0 else {
        return v;
    };
    v.push(json!({"add": {"table": table(&name)}}));
    v.push(json!({"add": {"chain": {
        "family": "netdev", "table": name, "name": "limit",
        "type": "filter", "hook": "ingress", "dev": spec.dev, "prio": 0, "policy": "accept"
    }}}));
    let limit = |rate: u64, burst: u64| {
        json!({"add": {"rule": {"family": "netdev", "table": name, "chain": "limit",
        "expr": [
            {"limit": {"rate": rate, "per": "second", "rate_unit": "bytes",
                "burst": burst, "burst_unit": "bytes", "inv": true}},
            {"counter": null},
            {"drop": null}
        ]}}})
    };
    let kib = |k: u64| k.saturating_mul(1024);
    v.push(limit(
        kib(out.average),
        kib(out.burst.unwrap_or(out.average)),
    ));
    if let Some(p) = out.peak {
        v.push(limit(kib(p), PEAK_BURST));
    }
    v
}

fn apply_ingress(spec: &ShapeSpec) -> Result<()> {
    let prefix = format!("{TABLE_PREFIX}{}-", spec.dev);
    let stale: Vec<String> = if nft::available() {
        list_tables()?
            .into_iter()
            .filter(|t| {
                t.strip_prefix(&prefix)
                    .is_some_and(|i| i.chars().all(|c| c.is_ascii_digit()))
            })
            .collect()
    } else if spec.ingress().0.is_none() {
        return Ok(());
    } else {
        Vec::new()
    };
    let batch = ingress_batch(spec, &stale);
    if batch.is_empty() {
        return Ok(());
    }
    nft::apply(batch).map_err(|e| match e {
        HostError::Nft { message, .. } => HostError::ShapingUnsupported {
            dev: spec.dev.clone(),
            direction: spec.ingress().1,
            reason: format!(
                "an nftables limit on the device's ingress hook (netdev family) did not load \
                 ({message}); remove <{}> from the interface's <bandwidth>, or give the host \
                 nftables with netdev ingress hooks (Debian's nftables package, a kernel with \
                 CONFIG_NETFILTER_INGRESS)",
                spec.ingress().1
            ),
        },
        other => other,
    })
}

/// The `tc` commands for a limit of what leaves `dev` (without `tc`).
pub fn egress_commands(dev: &str, rate: &RateLimit) -> Vec<Vec<String>> {
    let bps = |k: u64| format!("{}bps", k.saturating_mul(1024));
    let mut class: Vec<String> = [
        "class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    class.push(bps(rate.average));
    if let Some(p) = rate.peak {
        class.extend(["ceil".into(), bps(p)]);
    }
    if let Some(b) = rate.burst {
        class.extend(["burst".into(), format!("{}b", b.saturating_mul(1024))]);
    }
    let qdisc = [
        "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "1",
    ];
    vec![qdisc.iter().map(|s| s.to_string()).collect(), class]
}

fn apply_egress(spec: &ShapeSpec) -> Result<()> {
    let (Some(rate), direction) = spec.egress() else {
        return del_root_qdisc(&spec.dev);
    };
    if let Some(other) = foreign_root(&spec.dev) {
        return Err(HostError::ShapingUnsupported {
            dev: spec.dev.clone(),
            direction,
            reason: format!(
                "the device already has a root qdisc that virtnet did not make ({other}); \
                 remove it (tc qdisc del dev {} root) or remove <{direction}>",
                spec.dev
            ),
        });
    }
    for (i, args) in egress_commands(&spec.dev, &rate).iter().enumerate() {
        let mut r = tc(args);
        // Already virtnet's `htb 1:` (an update): HTB has no change operation, its class is
        // replaced next.
        if i == 0
            && r.as_ref()
                .is_err_and(|m| m.contains("Change operation not supported"))
        {
            r = Ok(());
        }
        r.map_err(|message| {
            let first = message.lines().next().unwrap_or_default().to_string();
            if message.contains("install iproute2") {
                HostError::ShapingUnsupported {
                    dev: spec.dev.clone(),
                    direction,
                    reason: format!(
                        "the tc tool cannot run ({first}); install iproute2, or remove \
                         <{direction}> from the interface's <bandwidth>"
                    ),
                }
            } else if message.contains("unknown") || message.contains("not supported") {
                HostError::ShapingUnsupported {
                    dev: spec.dev.clone(),
                    direction,
                    reason: format!(
                        "the host kernel has no HTB qdisc (tc: {first}); remove <{direction}> \
                         from the interface's <bandwidth>, or load the sch_htb module"
                    ),
                }
            } else if message.contains("Illegal") {
                HostError::ShapingUnsupported {
                    dev: spec.dev.clone(),
                    direction,
                    reason: format!(
                        "tc refuses {} (tc: {first}); give a smaller burst or rate",
                        rate.describe()
                    ),
                }
            } else {
                HostError::Tc {
                    op: format!("tc {}", args.join(" ")),
                    message,
                }
            }
        })?;
    }
    Ok(())
}

/// `dev`'s root qdisc if someone else made it (`qdisc tbf 8001: root ...`): neither a
/// default one (handle 0:, or `noqueue`) nor virtnet's `htb 1:`. It is not replaced: removing
/// it at stop would lose its owner's setting.
fn foreign_root(dev: &str) -> Option<String> {
    let out = Command::new(TC)
        .args(["qdisc", "show", "dev", dev, "root"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    let w: Vec<&str> = line.split_whitespace().collect();
    match (w.get(1), w.get(2)) {
        (Some(_), Some(&"0:")) | (Some(&"noqueue"), _) | (Some(&"htb"), Some(&"1:")) => None,
        (Some(_), Some(_)) => Some(line.trim().to_string()),
        _ => None,
    }
}

/// Deletes virtnet's root qdisc of `dev`; a missing device or qdisc, or one someone else
/// made, is left as it is.
fn del_root_qdisc(dev: &str) -> Result<()> {
    if foreign_root(dev).is_some() {
        return Ok(());
    }
    let args: Vec<String> = ["qdisc", "del", "dev", dev, "root"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match tc(&args) {
        Ok(()) => Ok(()),
        // No qdisc of ours (the default one cannot be deleted), or no device: nothing to do.
        Err(m)
            if m.contains("Cannot find device")
                || m.contains("Cannot delete qdisc with handle of zero")
                || m.contains("No such file or directory")
                || m.contains("Invalid handle") =>
        {
            Ok(())
        }
        Err(message) => Err(HostError::Tc {
            op: format!("tc {}", args.join(" ")),
            message,
        }),
    }
}

/// Runs `tc ARGS` in the calling thread's network namespace; its stderr on failure.
fn tc(args: &[String]) -> std::result::Result<(), String> {
    let out = Command::new(TC)
        .args(args)
        .output()
        .map_err(|e| format!("{e}: install iproute2"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests;
