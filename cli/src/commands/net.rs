//! The network commands (virsh's names): `net-define FILE`, `net-undefine NAME`,
//! `net-start NAME`, `net-destroy NAME`, `net-list [--all]`, `net-dumpxml NAME`,
//! `net-info NAME`, `net-autostart NAME [--disable]`.

use clap::Subcommand;
use hyper::Method;
use virtnet_api::networks::{NetAutostartRequest, NetDefineResponse, NetXml, NetworkInfo};

use super::define::post_definition;
use super::remote::{dash, print_json, print_table};
use crate::client::{encode, Body, Client, ClientError};

/// The network commands.
// The variant names are the command names (clap derives `net-define` from `NetDefine`).
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// Define a network (or replace its definition) from network XML
    /// (`<network><name>sw0</name><virtualport type='virtnet-vswitch'/>...`).
    NetDefine {
        /// Network XML file (`-` reads standard input).
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Remove an inactive network's definition.
    NetUndefine {
        /// Network name.
        name: String,
    },
    /// Start a network (its virtnet-vswitch).
    NetStart {
        /// Network name.
        name: String,
    },
    /// Stop a network's switch (refused while VMs have interfaces on it).
    NetDestroy {
        /// Network name.
        name: String,
    },
    /// List networks (active ones unless --all).
    NetList {
        /// Inactive networks too.
        #[arg(long)]
        all: bool,
    },
    /// Print a network's XML.
    NetDumpxml {
        /// Network name.
        name: String,
    },
    /// Show a network: state, switch pid, uplink, the VM ports on it.
    NetInfo {
        /// Network name.
        name: String,
    },
    /// Start a network whenever virtnetd starts (before the VMs that need it).
    NetAutostart {
        /// Network name.
        name: String,
        /// Stop starting it automatically.
        #[arg(long)]
        disable: bool,
    },
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// `net-list`'s table rows.
fn list_rows(nets: &[NetworkInfo]) -> Vec<Vec<String>> {
    nets.iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.state.clone(),
                yes_no(n.autostart),
                dash(n.uplink.as_ref()),
                n.ports.len().to_string(),
            ]
        })
        .collect()
}

/// `net-list`'s column headers.
const LIST_HEADERS: [&str; 5] = ["Name", "State", "Autostart", "Uplink", "Ports"];

fn path(name: &str, action: &str) -> String {
    format!("/v1/networks/{}{action}", encode(name))
}

/// Runs a network command.
pub async fn run(client: &Client, json: bool, cmd: NetCommand) -> Result<(), ClientError> {
    match cmd {
        NetCommand::NetDefine { file } => {
            let (r, input): (NetDefineResponse, _) =
                post_definition(client, "/v1/networks", &file).await?;
            if json {
                print_json(&r);
            } else {
                let verb = if r.created { "defined" } else { "redefined" };
                println!("Network {} {verb} from {}", r.name, input.name);
            }
        }
        NetCommand::NetUndefine { name } => {
            let r: NetDefineResponse = client
                .call(Method::DELETE, &path(&name, ""), Body::None)
                .await?;
            if json {
                print_json(&r);
            } else {
                println!("Network {} has been undefined", r.name);
            }
        }
        NetCommand::NetStart { name } => {
            let r: NetworkInfo = client
                .call(Method::POST, &path(&name, "/start"), Body::None)
                .await?;
            if json {
                print_json(&r);
            } else {
                println!("Network {} started", r.name);
            }
        }
        NetCommand::NetDestroy { name } => {
            let r: NetworkInfo = client
                .call(Method::POST, &path(&name, "/destroy"), Body::None)
                .await?;
            if json {
                print_json(&r);
            } else {
                println!("Network {} destroyed", r.name);
            }
        }
        NetCommand::NetList { all } => {
            let r: Vec<NetworkInfo> = client
                .call(
                    Method::GET,
                    if all {
                        "/v1/networks?all=true"
                    } else {
                        "/v1/networks"
                    },
                    Body::None,
                )
                .await?;
            if json {
                print_json(&r);
            } else {
                print_table(&LIST_HEADERS, &list_rows(&r));
            }
        }
        NetCommand::NetDumpxml { name } => {
            let r: NetXml = client
                .call(Method::GET, &path(&name, "/xml"), Body::None)
                .await?;
            if json {
                print_json(&r);
            } else {
                print!("{}", r.xml);
            }
        }
        NetCommand::NetInfo { name } => {
            let r: NetworkInfo = client
                .call(Method::GET, &path(&name, ""), Body::None)
                .await?;
            if json {
                print_json(&r);
            } else {
                println!("Name:      {}", r.name);
                println!("UUID:      {}", r.uuid);
                println!("State:     {}", r.state);
                println!("Autostart: {}", yes_no(r.autostart));
                if let Some(b) = &r.bridge {
                    // An Open vSwitch network: its bridge, no switch process.
                    println!("Bridge:    {b} (Open vSwitch)");
                }
                println!("Uplink:    {}", dash(r.uplink.as_ref()));
                println!("Pid:       {}", dash(r.pid));
                println!("Restarts:  {}", r.restarts);
                let rows: Vec<Vec<String>> = r
                    .ports
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.vm.clone(),
                            p.queues.to_string(),
                            p.socket.clone(),
                        ]
                    })
                    .collect();
                print_table(&["Port", "VM", "Queues", "Socket"], &rows);
            }
        }
        NetCommand::NetAutostart { name, disable } => {
            let body =
                serde_json::to_value(NetAutostartRequest { enable: !disable }).map_err(|e| {
                    ClientError {
                        kind: "internal".into(),
                        message: e.to_string(),
                    }
                })?;
            let r: NetworkInfo = client
                .call(Method::POST, &path(&name, "/autostart"), Body::Json(&body))
                .await?;
            if json {
                print_json(&r);
            } else if r.autostart {
                println!("Network {} marked as autostarted", r.name);
            } else {
                println!("Network {} unmarked as autostarted", r.name);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: NetCommand,
    }

    #[test]
    fn net_autostart_parses() {
        let c = Cli::try_parse_from(["virtnet", "net-autostart", "sw0"]).unwrap();
        assert!(
            matches!(c.cmd, NetCommand::NetAutostart { ref name, disable: false } if name == "sw0")
        );
        let c = Cli::try_parse_from(["virtnet", "net-autostart", "sw0", "--disable"]).unwrap();
        assert!(matches!(
            c.cmd,
            NetCommand::NetAutostart { disable: true, .. }
        ));
        assert!(Cli::try_parse_from(["virtnet", "net-autostart"]).is_err());
    }

    #[test]
    fn net_list_shows_autostart() {
        let net = |name: &str, autostart| NetworkInfo {
            name: name.into(),
            uuid: "3e3fce45-4f53-4fa7-bb32-11f34168b82b".into(),
            state: "inactive".into(),
            uplink: None,
            autostart,
            pid: None,
            control: None,
            restarts: 0,
            ports: vec![],
            bridge: None,
        };
        assert_eq!(LIST_HEADERS[2], "Autostart");
        let rows = list_rows(&[net("a", true), net("b", false)]);
        assert_eq!(rows[0], ["a", "inactive", "yes", "-", "0"]);
        assert_eq!(rows[1][2], "no");
        // --json carries it too.
        let v = serde_json::to_value(net("a", true)).unwrap();
        assert_eq!(v["autostart"], true);
    }
}
