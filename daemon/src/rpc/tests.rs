//! The mapping of virtnet's states, filters and errors to libvirt's numbers.

use virtnet_api::domains::{DomainSummary, VmState};
use virtnet_rpc::{ErrorCode, Procedure};

use super::dispatch::{listed, state};
use super::errors::{not_supported, remote_error, unsupported_flags};
use crate::error::DaemonError;

fn summary(state: VmState, id: Option<u32>, persistent: bool) -> DomainSummary {
    DomainSummary {
        name: "vm".into(),
        uuid: None,
        id,
        state,
        persistent,
        problem: None,
        stalled: None,
    }
}

#[test]
fn states_are_libvirts() {
    assert_eq!(state(VmState::Running), (1, 1), "RUNNING, BOOTED");
    assert_eq!(state(VmState::ShutOff), (5, 0), "SHUTOFF, UNKNOWN");
    assert_eq!(state(VmState::ShuttingDown), (4, 0), "SHUTDOWN");
    assert_eq!(state(VmState::Starting), (0, 0), "NOSTATE");
}

#[test]
fn list_all_domains_filters_as_libvirt() {
    let running = summary(VmState::Running, Some(1), true);
    let off = summary(VmState::ShutOff, None, true);
    let transient = summary(VmState::Running, Some(2), false);
    let all = [&running, &off, &transient];
    let names = |flags| {
        all.iter()
            .enumerate()
            .filter(|(_, s)| listed(flags, s))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(0), [0, 1, 2], "no flag: every domain");
    assert_eq!(names(0x1 | 0x2), [0, 1, 2], "virsh list --all");
    assert_eq!(names(0x1), [0, 2], "ACTIVE");
    assert_eq!(names(0x2), [1], "INACTIVE");
    assert_eq!(names(0x8), [2], "TRANSIENT");
    assert_eq!(names(0x1 | 0x4), [0], "ACTIVE and PERSISTENT");
    assert_eq!(names(0x40), [1], "SHUTOFF");
    assert_eq!(names(0x20), Vec::<usize>::new(), "PAUSED: none in virtnet");
    assert_eq!(names(0x100), Vec::<usize>::new(), "MANAGEDSAVE: none");
    assert_eq!(
        names(0x200 | 0x800),
        [0, 1, 2],
        "NO_MANAGEDSAVE, NO_AUTOSTART"
    );
    assert_eq!(names(0x1000), Vec::<usize>::new(), "HAS_SNAPSHOT: none");
}

#[test]
fn daemon_errors_carry_libvirts_codes() {
    let code = |e: DaemonError| remote_error(&e).code as i32;
    assert_eq!(
        code(DaemonError::NoSuchVm { name: "x".into() }),
        ErrorCode::NoDomain as i32
    );
    assert_eq!(
        code(DaemonError::InvalidXml { problems: vec![] }),
        ErrorCode::XmlError as i32
    );
    assert_eq!(
        code(DaemonError::InvalidState {
            name: "x".into(),
            state: "running".into(),
            hint: String::new(),
        }),
        ErrorCode::OperationInvalid as i32
    );
    assert_eq!(
        code(DaemonError::Internal("x".into())),
        ErrorCode::InternalError as i32
    );
    let e = remote_error(&DaemonError::NoSuchVm { name: "x".into() });
    assert_eq!(
        Some(e.message.as_str()),
        Some(
            DaemonError::NoSuchVm { name: "x".into() }
                .to_string()
                .as_str()
        ),
        "virtnet's own message"
    );
}

#[test]
fn refusals_use_libvirts_words() {
    let e = not_supported(Procedure::DomainSnapshotNum);
    assert_eq!(e.code, ErrorCode::NoSupport);
    assert_eq!(e.to_remote().code, 3);
    assert_eq!(
        Some(e.message.as_str()),
        Some(
            "this function is not supported by the connection driver: \
             REMOTE_PROC_DOMAIN_SNAPSHOT_NUM (187)"
        )
    );
    assert_eq!(
        Some(unsupported_flags(4, "virDomainGetXMLDesc").message.as_str()),
        Some("unsupported flags (0x4) in function virDomainGetXMLDesc")
    );
}
