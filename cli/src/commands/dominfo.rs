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
    for (k, v) in lines(&d) {
        println!("{:<16}{v}", format!("{k}:"));
    }
    Ok(())
}

/// The `Key: value` lines of `dominfo`.
fn lines(d: &DomainInfo) -> Vec<(&'static str, String)> {
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
    if let Some(c) = &d.cgroup {
        lines.push(("Cgroup", c.describe()));
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
    lines
}

#[cfg(test)]
mod tests {
    use virtnet_api::{Stalled, VmState};

    use super::*;

    #[test]
    fn a_stalled_vm_has_a_state_and_a_stalled_line() {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 5_000;
        let d = DomainInfo {
            name: "vm1".into(),
            uuid: None,
            id: Some(1),
            state: VmState::Running,
            persistent: true,
            memory_kib: None,
            vcpus: None,
            interfaces: 1,
            pid: Some(42),
            qmp_socket: None,
            log_path: None,
            problem: None,
            stop_reason: None,
            stalled: Some(Stalled {
                reason: "`netdev_add` of the attach got no reply".into(),
                operation: "attach-device".into(),
                since_unix_ms: since,
            }),
            cgroup: Some(virtnet_api::CgroupInfo::Unavailable {
                reason: "no cgroup v1 memory/pids/cpu controller".into(),
            }),
        };
        let l = lines(&d);
        let get = |k: &str| l.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
        assert_eq!(get("State").as_deref(), Some("running (stalled)"));
        let s = get("Stalled").unwrap();
        assert!(s.starts_with("since 5."), "{s}");
        assert!(s.contains("(found by attach-device): `netdev_add`"), "{s}");
        assert_eq!(
            get("Cgroup").as_deref(),
            Some("none usable: no cgroup v1 memory/pids/cpu controller")
        );
    }
}
