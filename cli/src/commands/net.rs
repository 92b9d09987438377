//! The network commands (virsh's names): `net-define FILE`, `net-undefine NAME`,
//! `net-start NAME`, `net-destroy NAME`, `net-list [--all]`, `net-dumpxml NAME`,
//! `net-info NAME`.

use clap::Subcommand;
use hyper::Method;
use virtnetd::networks::model::{NetDefineResponse, NetXml, NetworkInfo};

use super::remote::{dash, print_json, print_table};
use crate::client::{encode, Body, Client, ClientError};
use crate::input::read_input;

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
}

fn path(name: &str, action: &str) -> String {
    format!("/v1/networks/{}{action}", encode(name))
}

/// Runs a network command.
pub async fn run(client: &Client, json: bool, cmd: NetCommand) -> Result<(), ClientError> {
    match cmd {
        NetCommand::NetDefine { file } => {
            let input = read_input(&file).map_err(|e| ClientError {
                kind: "input".into(),
                message: e.to_string(),
            })?;
            let r: NetDefineResponse = client
                .call(Method::POST, "/v1/networks", Body::Xml(&input.text))
                .await
                .map_err(|e| ClientError {
                    message: format!("{}: {}", input.name, e.message),
                    kind: e.kind,
                })?;
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
                let rows: Vec<Vec<String>> = r
                    .iter()
                    .map(|n| {
                        vec![
                            n.name.clone(),
                            n.state.clone(),
                            dash(n.uplink.as_ref()),
                            n.ports.len().to_string(),
                        ]
                    })
                    .collect();
                print_table(&["Name", "State", "Uplink", "Ports"], &rows);
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
                println!("State:     {}", r.state);
                println!("Uplink:    {}", dash(r.uplink.as_ref()));
                println!("Pid:       {}", dash(r.pid));
                println!("Restarts:  {}", r.restarts);
                let rows: Vec<Vec<String>> = r
                    .ports
                    .iter()
                    .map(|p| vec![p.name.clone(), p.vm.clone(), p.socket.clone()])
                    .collect();
                print_table(&["Port", "VM", "Socket"], &rows);
            }
        }
    }
    Ok(())
}
