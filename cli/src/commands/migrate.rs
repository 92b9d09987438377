//! `virtnet migrate --live VM DEST`: move a running VM to another virtnetd (virsh's name and
//! flags where they fit). Prints the progress while it runs, then QEMU's figures.

use std::time::Duration;

use clap::Args;
use hyper::Method;
use virtnet_api::{MigrateProgress, MigrateRequest, MigrateResponse};

use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};
use crate::input::read_input;

/// Shown after `virtnet migrate --help`.
pub const AFTER_HELP: &str = "\
DEST is the destination virtnetd's API socket: a path (/run/virtnet/virtnetd.sock) or
unix:///PATH. The migration stream goes over TCP to --migrateuri tcp:HOST[:PORT], HOST an
address of the destination (its QEMU listens there, on a port it picks unless one is given),
or, by default (--migrateuri unix), over a unix socket in the destination virtnetd's run dir
(both virtnetds on one host; the QEMUs get the socket's ends as fds). A failure at any step leaves the VM running here and nothing of it there.
Refused: VMs with a hostdev NIC (libvirt needs failover teaming for them) or a NIC on
virtnet-vswitch (the switch has no dirty-page logging yet).
Open vSwitch NICs get their port on the destination's OVS with the same iface-id; when this
virtnetd runs with --ovn-nb, OVN's logical switch ports move too (requested-chassis with both
hosts and activation-strategy=rarp during the move, the destination alone after).";

/// `virtnet migrate` arguments.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Live migration (the guest keeps running); required: offline migration is not
    /// supported.
    #[arg(long, required = true)]
    pub live: bool,
    /// VM name.
    pub name: String,
    /// The destination virtnetd's API socket (path or unix:///PATH).
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Where the migration stream goes: tcp:HOST[:PORT] (HOST an address of the destination)
    /// or unix (the default: both on this host).
    #[arg(long, value_name = "URI")]
    pub migrateuri: Option<String>,
    /// Seconds the migration may take before it is cancelled (default 300).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Bandwidth limit of the migration stream in MiB/s (default: unlimited).
    #[arg(long, value_name = "MiB/s")]
    pub bandwidth: Option<u64>,
    /// Remove the VM's definition here once it runs on the destination.
    #[arg(long)]
    pub undefinesource: bool,
    /// Domain XML the destination runs and defines instead of this host's (host paths may
    /// differ; the guest's devices must not).
    #[arg(long, value_name = "FILE")]
    pub xml: Option<String>,
}

/// Runs the command.
pub async fn run(client: &Client, json: bool, a: &MigrateArgs) -> Result<(), ClientError> {
    let dest_xml = match &a.xml {
        Some(f) => Some(read_input(f)?.text),
        None => None,
    };
    let req = MigrateRequest {
        dest: a.dest.clone(),
        migrate_uri: a.migrateuri.clone(),
        timeout_secs: a.timeout,
        bandwidth_mib: a.bandwidth,
        undefine_source: a.undefinesource,
        dest_xml,
    };
    let body = serde_json::to_value(&req).unwrap_or_default();
    let path = format!("/v1/domains/{}/migrate", encode(&a.name));
    let call = client.call::<MigrateResponse>(Method::POST, &path, Body::Json(&body));
    tokio::pin!(call);
    let mut shown = 0;
    let r = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tokio::time::sleep(Duration::from_millis(500)), if !json => {
                if let Ok(p) = client.call::<MigrateProgress>(Method::GET, &path, Body::None).await {
                    for l in p.lines.iter().skip(shown) {
                        println!("migrate: {l}");
                    }
                    shown = shown.max(p.lines.len());
                }
            }
        }
    }?;
    if json {
        print_json(&r);
        return Ok(());
    }
    for l in &r.leftovers {
        eprintln!("warning: not cleaned up: {l}");
    }
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
    println!(
        "Domain '{}' migrated to {} ({})\nQEMU: total time {}, downtime {}, setup {}, {} MiB sent",
        r.name,
        r.dest,
        r.uri,
        ms(r.total_time_ms),
        ms(r.downtime_ms),
        ms(r.setup_time_ms),
        r.transferred_bytes.unwrap_or(0) >> 20
    );
    Ok(())
}

/// `virtnet domjobabort NAME`: cancels the VM's outgoing migration.
pub async fn abort(client: &Client, json: bool, name: &str) -> Result<(), ClientError> {
    let p: MigrateProgress = client
        .call(
            Method::POST,
            &format!("/v1/domains/{}/migrate/cancel", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&p);
    } else {
        println!("Migration of domain '{}' is being cancelled", p.name);
    }
    Ok(())
}
