//! `virtnet list [--all|--inactive] [--name]`.

use hyper::Method;
use virtnet_api::{DomainList, DomainSummary, VmState};

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
            .map(|d| vec![dash(d.id), d.name.clone(), state_cell(d)])
            .collect();
        print_table(&["Id", "Name", "State"], &rows);
    }
    Ok(())
}

/// The State column: `running`, `running (stalled)`, `unknown (PROBLEM)`.
fn state_cell(d: &DomainSummary) -> String {
    let mut state = d.state.as_words().to_string();
    if d.stalled.is_some() {
        state.push_str(" (stalled)");
    }
    if let Some(p) = &d.problem {
        state.push_str(&format!(" ({p})"));
    }
    state
}

#[cfg(test)]
mod tests {
    use virtnet_api::Stalled;

    use super::*;

    #[test]
    fn a_stalled_vm_shows_in_the_state_column() {
        let mut d = DomainSummary {
            name: "vm1".into(),
            uuid: None,
            id: Some(1),
            state: VmState::Running,
            persistent: true,
            problem: None,
            stalled: None,
        };
        assert_eq!(state_cell(&d), "running");
        d.stalled = Some(Stalled {
            reason: "`netdev_add` got no reply".into(),
            operation: "attach-device".into(),
            since_unix_ms: 1,
        });
        assert_eq!(state_cell(&d), "running (stalled)");
    }
}
