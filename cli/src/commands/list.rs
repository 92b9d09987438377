//! `virtnet list [--all|--inactive] [--name]`.

use hyper::Method;
use virtnet_api::{DomainList, VmState};

use super::remote::{dash, print_json, print_table};
use crate::client::{Body, Client, ClientError};

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    all: bool,
    inactive: bool,
    names_only: bool,
) -> Result<(), ClientError> {
    let mut r: DomainList = client.call(Method::GET, "/v1/domains", Body::None).await?;
    r.domains.retain(|d| {
        let active = d.state != VmState::ShutOff;
        all || (inactive && !active) || (!inactive && active)
    });
    if json {
        print_json(&r);
    } else if names_only {
        for d in &r.domains {
            println!("{}", d.name);
        }
    } else {
        let rows: Vec<Vec<String>> = r
            .domains
            .iter()
            .map(|d| {
                let mut state = d.state.as_words().to_string();
                if d.stalled.is_some() {
                    state.push_str(" (stalled)");
                }
                if let Some(p) = &d.problem {
                    state.push_str(&format!(" ({p})"));
                }
                vec![dash(d.id), d.name.clone(), state]
            })
            .collect();
        print_table(&["Id", "Name", "State"], &rows);
    }
    Ok(())
}
