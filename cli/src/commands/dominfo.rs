//! `virtnet dominfo NAME`.

use hyper::Method;
use virtnet_api::DomainInfo;

use super::remote::{ago, dash, print_json};
use crate::client::{encode, Body, Client, ClientError};

/// Runs the command.
pub async fn run(client: &Client, json: bool, name: &str) -> Result<(), ClientError> {
    let d: DomainInfo = client
        .call(
            Method::GET,
            &format!("/v1/domains/{}", encode(name)),
            Body::None,
        )
        .await?;
    if json {
        print_json(&d);
        return Ok(());
    }
    let mut state = d.state.as_words().to_string();
    if d.stalled.is_some() {
        state.push_str(" (stalled)");
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut lines: Vec<(&str, String)> = vec![
        ("Id", dash(d.id)),
        ("Name", d.name.clone()),
        ("UUID", dash(d.uuid.as_ref())),
        ("State", state),
        ("CPU(s)", dash(d.vcpus)),
        ("Max memory", dash(d.memory_kib.map(|m| format!("{m} KiB")))),
        ("Persistent", yes_no(d.persistent).into()),
        ("Interfaces", d.interfaces.to_string()),
    ];
    if let Some(pid) = d.pid {
        lines.push(("PID", pid.to_string()));
    }
    if let Some(q) = &d.qmp_socket {
        lines.push(("QMP socket", q.clone()));
    }
    if let Some(l) = &d.log_path {
        lines.push(("Log", l.clone()));
    }
    if let Some(p) = &d.problem {
        lines.push(("Problem", p.clone()));
    }
    if let Some(s) = &d.stalled {
        lines.push((
            "Stalled",
            format!(
                "since {} (found by {}): {}",
                ago(s.since_unix_ms),
                s.operation,
                s.reason
            ),
        ));
    }
    for (k, v) in lines {
        println!("{:<16}{v}", format!("{k}:"));
    }
    Ok(())
}
