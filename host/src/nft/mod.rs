//! nftables through the `nft` tool's JSON interface (libnftables-json): what the tap
//! enforcers (anti-spoofing filters, guest-to-host rate limits) load into the kernel.
//!
//! Why the `nft` tool and JSON: it is nftables' documented, stable interface (netlink
//! bytecode for nftables expressions is not), a batch is applied atomically (all or
//! nothing), and `nft -j list` gives counters back as JSON. The rule shapes virtnet needs are
//! few, so they are built with `serde_json` here rather than with the `nftables` crate,
//! which would add schemars, strum and their proc-macros to every build.
//!
//! Every call runs `nft` in the calling thread's network namespace (a forked child inherits
//! the thread's namespace), like the rest of [`crate`].

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{HostError, Result};

/// The `nft` executable (Debian's `nftables` package).
pub const NFT: &str = "nft";

/// Applies `commands` (the elements of a JSON `{"nftables": [...]}` batch, e.g.
/// `{"add": {"table": {...}}}`) in one transaction: either all of it takes effect or none.
pub fn apply(commands: Vec<Value>) -> Result<()> {
    let batch = serde_json::json!({ "nftables": commands });
    run(&["-j", "-f", "-"], Some(batch.to_string().as_bytes())).map(|_| ())
}

/// The objects of table `family`/`name` (`nft -j list table`), `None` if it does not exist.
pub fn list_table(family: &str, name: &str) -> Result<Option<Vec<Value>>> {
    match run(&["-j", "list", "table", family, name], None) {
        Ok(out) => {
            let v: Value = serde_json::from_slice(&out).map_err(|e| HostError::Nft {
                op: format!("read the JSON of table {family} {name}"),
                message: e.to_string(),
            })?;
            Ok(v.get("nftables").and_then(Value::as_array).cloned())
        }
        Err(HostError::Nft { message, .. }) if message.contains("No such file or directory") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Deletes table `family`/`name`; a missing table is fine (idempotent undo).
pub fn delete_table(family: &str, name: &str) -> Result<()> {
    match run(&["delete", "table", family, name], None) {
        Ok(_) => Ok(()),
        Err(HostError::Nft { message, .. }) if message.contains("No such file or directory") => {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The names of the tables of `family` (`nft -j list tables FAMILY`).
pub fn list_tables(family: &str) -> Result<Vec<String>> {
    let out = run(&["-j", "list", "tables", family], None)?;
    let v: Value = serde_json::from_slice(&out).map_err(|e| HostError::Nft {
        op: format!("read the JSON of the {family} tables"),
        message: e.to_string(),
    })?;
    Ok(v.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("table")?.get("name")?.as_str().map(str::to_string))
        .collect())
}

/// Whether `nft` runs and the kernel has nftables (lists the ruleset).
pub fn available() -> bool {
    run(&["list", "tables"], None).is_ok()
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    let what = || format!("nft {}", args.join(" "));
    let mut child = Command::new(NFT)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HostError::Nft {
            op: what(),
            message: format!("{e}: install Debian's nftables package (scripts/setup)"),
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).map_err(|e| HostError::Nft {
            op: what(),
            message: e.to_string(),
        })?;
    }
    let out = child.wait_with_output().map_err(|e| HostError::Nft {
        op: what(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(HostError::Nft {
            op: what(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use virtnet_testkit::{require, with_netns, Need};

    #[test]
    fn a_batch_is_applied_whole_listed_and_deleted_idempotently() {
        if !require(&[Need::Root, Need::Binary(NFT)]) {
            return;
        }
        with_netns(|| {
            let table = json!({"family": "bridge", "name": "virtnet-nft-test"});
            apply(vec![json!({"add": {"table": table}})]).unwrap();
            assert!(list_table("bridge", "virtnet-nft-test").unwrap().is_some());
            // A bad rule in a batch: nothing of the batch takes effect.
            let bad = apply(vec![
                json!({"add": {"chain": {"family": "bridge", "table": "virtnet-nft-test",
                    "name": "c"}}}),
                json!({"add": {"rule": {"family": "bridge", "table": "virtnet-nft-test",
                    "chain": "missing", "expr": [{"drop": null}]}}}),
            ]);
            assert!(bad.is_err());
            let objs = list_table("bridge", "virtnet-nft-test").unwrap().unwrap();
            assert!(!objs.iter().any(|o| o.get("chain").is_some()), "{objs:?}");
            delete_table("bridge", "virtnet-nft-test").unwrap();
            delete_table("bridge", "virtnet-nft-test").unwrap();
            assert!(list_table("bridge", "virtnet-nft-test").unwrap().is_none());
        });
    }
}
