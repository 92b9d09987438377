//! `virtnet domif-setlink NAME INTERFACE up|down [--live] [--config] [--persistent]`.

use hyper::Method;
use virtnet_api::{DomainInfo, Link, SetLinkResponse, VmState};

use super::remote::print_json;
use crate::client::{encode, Body, Client, ClientError};

/// The link state argument.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkArg {
    /// Carrier on.
    Up,
    /// Carrier off.
    Down,
}

/// Where a change applies (`--live`, `--config`, `--persistent`; none: the running VM when it
/// runs, else the definition).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Scope {
    /// Change the running VM.
    #[arg(long)]
    pub live: bool,
    /// Change the persistent definition.
    #[arg(long)]
    pub config: bool,
    /// Change the persistent definition, and the running VM if it runs.
    #[arg(long, conflicts_with_all = ["live", "config"])]
    pub persistent: bool,
}

impl Scope {
    /// `(live, config)` for the API.
    pub async fn resolve(self, client: &Client, name: &str) -> Result<(bool, bool), ClientError> {
        if !self.persistent {
            return Ok((self.live, self.config));
        }
        let info: DomainInfo = client
            .call(
                Method::GET,
                &format!("/v1/domains/{}", encode(name)),
                Body::None,
            )
            .await?;
        Ok((info.state == VmState::Running, true))
    }
}

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    interface: &str,
    state: LinkArg,
    scope: Scope,
) -> Result<(), ClientError> {
    let (live, config) = scope.resolve(client, name).await?;
    let body = serde_json::json!({
        "state": if state == LinkArg::Up { Link::Up } else { Link::Down },
        "live": live,
        "config": config,
    });
    let path = format!(
        "/v1/domains/{}/interfaces/{}/link",
        encode(name),
        encode(interface)
    );
    let r: SetLinkResponse = client.call(Method::POST, &path, Body::Json(&body)).await?;
    if json {
        print_json(&r);
    } else {
        let st = if r.state == Link::Up { "up" } else { "down" };
        println!(
            "Device {} of domain '{}' link state set to {st}",
            r.mac, r.name
        );
    }
    Ok(())
}
