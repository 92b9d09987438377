//! Live migration over libvirt's protocol: `virsh migrate --live --p2p VM DCONNURI` and
//! python3-libvirt's `migrateToURI3` with `VIR_MIGRATE_PEER2PEER|VIR_MIGRATE_LIVE` call
//! `DOMAIN_MIGRATE_PERFORM3_PARAMS` on the source, which runs virtnet's own migration
//! ([`Daemon::migrate`], the one `virtnet migrate --live` runs) towards the destination
//! virtnetd named by the URI. Also `DOMAIN_GET_JOB_INFO` (`virsh domjobinfo`) and
//! `DOMAIN_ABORT_JOB` (`virsh domjobabort`, virtnet's migrate cancel).
//!
//! The destination URI: `qemu+unix:///system?socket=RUN_DIR/libvirt-sock`, the libvirt socket
//! of the destination virtnetd; its HTTP API socket `RUN_DIR/virtnetd.sock` in the same run
//! directory is what the source talks to (the daemons speak virtnet's migration protocol, not
//! libvirt's Prepare/Finish). Any other URI is refused.
//!
//! libvirt's managed flow (`virsh migrate` without `--p2p`: the client calls Begin3, Prepare3,
//! Perform3, Finish3, Confirm3 itself) and direct migration are refused with "add --p2p".

use virtnet_api::MigrateRequest;
use virtnet_rpc::migrate::{
    flags, param, JobInfoRet, Perform3ParamsArgs, Perform3ParamsRet, TypedParam, TypedValue,
    JOB_NONE, JOB_UNBOUNDED,
};
use virtnet_rpc::remote::DomainArgs;
use virtnet_rpc::{ErrorCode, Procedure};

use super::dispatch::{decode, ok, Reply};
use super::errors::{remote_error, Refusal};
use crate::daemon::Daemon;

/// The flags virtnet's migration does what they ask: live (it always is), peer to peer (it
/// always is), the destination keeps a definition (it always does), undefine the source,
/// change protection (the VM's lock is held from start to end: nothing else changes it).
const HONOURED: u32 = flags::LIVE
    | flags::PEER2PEER
    | flags::PERSIST_DEST
    | flags::UNDEFINE_SOURCE
    | flags::CHANGE_PROTECTION;

/// The managed flow's procedures and the other migration protocols: refused with "add --p2p".
const MANAGED: [Procedure; 16] = [
    Procedure::DomainMigratePrepare,
    Procedure::DomainMigratePerform,
    Procedure::DomainMigrateFinish,
    Procedure::DomainMigratePrepare2,
    Procedure::DomainMigrateFinish2,
    Procedure::DomainMigrateBegin3,
    Procedure::DomainMigratePrepare3,
    Procedure::DomainMigratePerform3,
    Procedure::DomainMigrateFinish3,
    Procedure::DomainMigrateConfirm3,
    Procedure::DomainMigrateBegin3Params,
    Procedure::DomainMigratePrepare3Params,
    Procedure::DomainMigrateFinish3Params,
    Procedure::DomainMigrateConfirm3Params,
    Procedure::DomainMigratePrepareTunnel3Params,
    Procedure::DomainMigratePrepareTunnel3,
];

/// Whether `p` is one of this module's.
pub(super) fn serves(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::DomainMigratePerform3Params
            | Procedure::DomainGetJobInfo
            | Procedure::DomainAbortJob
    ) || MANAGED.contains(&p)
}

/// What `CONNECT_SUPPORTS_FEATURE` says about a migration feature: peer-to-peer with
/// parameters (what `virDomainMigrateToURI3` needs); V3 and direct too, so that a managed
/// `virsh migrate` (Begin3Params) or a direct `migrateToURI3` without `VIR_MIGRATE_PEER2PEER`
/// (Perform3) reaches virtnetd and gets its "add --p2p" rather than libvirt's generic
/// refusal; not offline migration (libvirt's client refuses `--offline` itself then).
pub(super) fn supports(feature: i32) -> bool {
    use virtnet_rpc::migrate::*;
    matches!(
        feature,
        FEATURE_MIGRATION_P2P
            | FEATURE_MIGRATION_PARAMS
            | FEATURE_MIGRATION_V3
            | FEATURE_MIGRATION_DIRECT
            | FEATURE_TYPED_PARAM_STRING
    )
}

/// Runs `p` (a change: refused on a read-only connection, except the job query).
pub(super) async fn call(daemon: &Daemon, read_only: bool, p: Procedure, args: &[u8]) -> Reply {
    if MANAGED.contains(&p) {
        return Err(managed());
    }
    if p == Procedure::DomainGetJobInfo {
        let a: DomainArgs = decode(p, args)?;
        let progress = daemon
            .migrate_progress(&a.dom.name)
            .map_err(|e| remote_error(&e))?;
        // virtnet reports progress as lines, not amounts: the type only.
        return ok(&JobInfoRet {
            type_: if progress.active {
                JOB_UNBOUNDED
            } else {
                JOB_NONE
            },
            ..Default::default()
        });
    }
    if read_only {
        return Err(Refusal::new(
            ErrorCode::OperationDenied,
            format!("operation forbidden: {p} on a read-only connection"),
        ));
    }
    match p {
        Procedure::DomainAbortJob => {
            let a: DomainArgs = decode(p, args)?;
            daemon.migrate_cancel(&a.dom.name).map_err(|e| match e {
                crate::error::DaemonError::InvalidState { .. } => Refusal::new(
                    ErrorCode::OperationInvalid,
                    "Requested operation is not valid: no job is active on the domain",
                ),
                e => remote_error(&e),
            })?;
            Ok(Vec::new())
        }
        _ => {
            let a: Perform3ParamsArgs = decode(p, args)?;
            let req = request(&a)?;
            daemon
                .migrate(&a.dom.name, &req)
                .await
                .map_err(|e| remote_error(&e))?;
            ok(&Perform3ParamsRet::default())
        }
    }
}

fn managed() -> Refusal {
    Refusal::new(
        ErrorCode::OperationUnsupported,
        "Operation not supported: virtnetd migrates peer to peer only (the source virtnetd \
         drives the destination): add --p2p (virsh migrate --live --p2p --persistent VM \
         'qemu+unix:///system?socket=DEST_RUN_DIR/libvirt-sock'), or VIR_MIGRATE_PEER2PEER \
         with virDomainMigrateToURI3",
    )
}

/// virtnet's migrate request for a `DOMAIN_MIGRATE_PERFORM3_PARAMS` call, or why it is
/// refused: each flag and parameter is applied or refused by name.
fn request(a: &Perform3ParamsArgs) -> Result<MigrateRequest, Refusal> {
    if a.flags & flags::PEER2PEER == 0 {
        return Err(managed());
    }
    let unsupported = a.flags & !HONOURED;
    if unsupported != 0 {
        let names: Vec<String> = flags::NAMES
            .iter()
            .filter(|(b, _)| unsupported & b != 0)
            .map(|(_, n)| n.to_string())
            .chain(
                (unsupported & !((1 << flags::NAMES.len()) - 1) != 0).then(|| {
                    format!(
                        "0x{:x}",
                        unsupported >> flags::NAMES.len() << flags::NAMES.len()
                    )
                }),
            )
            .collect();
        return Err(Refusal::new(
            ErrorCode::ArgumentUnsupported,
            format!(
                "argument unsupported: virtnet's live migration does not support {} \
                 (it migrates a running guest's memory and device state over one plain \
                 stream, with shared or no storage)",
                names.join(", ")
            ),
        ));
    }
    if a.flags & flags::LIVE == 0 {
        return Err(Refusal::new(
            ErrorCode::ArgumentUnsupported,
            "argument unsupported: virtnet migrates live only (the guest keeps running until \
             the switch-over): add --live (VIR_MIGRATE_LIVE)",
        ));
    }
    if a.flags & flags::PERSIST_DEST == 0 {
        return Err(Refusal::new(
            ErrorCode::ArgumentUnsupported,
            "argument unsupported: virtnet always keeps a definition of the VM on the \
             destination (a transient migration is not supported): add --persistent \
             (VIR_MIGRATE_PERSIST_DEST)",
        ));
    }
    if !a.cookie_in.is_empty() {
        return Err(managed());
    }
    let mut req = MigrateRequest {
        dest: dest_socket(a.dconnuri.as_deref())?,
        undefine_source: a.flags & flags::UNDEFINE_SOURCE != 0,
        ..Default::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for p in &a.params {
        if seen.contains(&p.field.as_str()) {
            return Err(bad_param(p, "given twice"));
        }
        seen.push(&p.field);
        match (p.field.as_str(), &p.value) {
            (param::URI, TypedValue::String(uri)) => req.migrate_uri = Some(uri.clone()),
            (param::DEST_XML, TypedValue::String(xml)) => req.dest_xml = Some(xml.clone()),
            (param::BANDWIDTH, TypedValue::Ullong(0)) => {}
            (param::BANDWIDTH, TypedValue::Ullong(mib)) => req.bandwidth_mib = Some(*mib),
            (param::DEST_NAME, TypedValue::String(n)) if *n == a.dom.name => {}
            (param::DEST_NAME, TypedValue::String(_)) => {
                return Err(Refusal::new(
                    ErrorCode::ArgumentUnsupported,
                    format!(
                        "argument unsupported: virtnet keeps the VM's name on the destination: \
                         drop --dname (or give '{}')",
                        a.dom.name
                    ),
                ))
            }
            (param::URI | param::DEST_XML | param::DEST_NAME | param::BANDWIDTH, _) => {
                return Err(bad_param(p, "has the wrong type"))
            }
            (other, _) => {
                return Err(Refusal::new(
                    ErrorCode::ArgumentUnsupported,
                    format!(
                        "argument unsupported: migration parameter '{other}' is not \
                         supported by virtnet (supported: {}, {}, {}, {})",
                        param::URI,
                        param::DEST_XML,
                        param::BANDWIDTH,
                        param::DEST_NAME
                    ),
                ))
            }
        }
    }
    Ok(req)
}

fn bad_param(p: &TypedParam, why: &str) -> Refusal {
    Refusal::new(
        ErrorCode::InvalidArg,
        format!(
            "invalid argument: migration parameter '{}' ({}) {why}",
            p.field,
            p.value.type_name()
        ),
    )
}

/// The destination virtnetd's HTTP API socket for the libvirt URI `dconnuri`:
/// `qemu+unix:///system?socket=DIR/libvirt-sock` → `DIR/virtnetd.sock`.
fn dest_socket(dconnuri: Option<&str>) -> Result<String, Refusal> {
    let refuse = |why: &str| {
        Refusal::new(
            ErrorCode::InvalidArg,
            format!(
                "invalid argument: destination URI '{}' {why}: give the destination \
                 virtnetd's libvirt socket as qemu+unix:///system?socket=RUN_DIR/{} (its \
                 API socket RUN_DIR/{} is used)",
                dconnuri.unwrap_or(""),
                super::SOCKET_NAME,
                crate::config::SOCKET_NAME
            ),
        )
    };
    let uri = dconnuri.ok_or_else(|| refuse("is missing"))?;
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    if !matches!(
        base,
        "qemu+unix:///system" | "qemu+unix:///session" | "qemu:///system"
    ) {
        return Err(refuse("is not a local unix socket URI"));
    }
    let mut socket = None;
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("socket", v)) if socket.is_none() => socket = Some(unescape(v)),
            _ => return Err(refuse(&format!("has '{kv}'"))),
        }
    }
    let socket = socket.ok_or_else(|| refuse("names no socket"))?;
    let path = std::path::Path::new(&socket);
    if !path.is_absolute() || path.file_name() != Some(super::SOCKET_NAME.as_ref()) {
        return Err(refuse("does not name a RUN_DIR/libvirt-sock"));
    }
    let dir = path.parent().ok_or_else(|| refuse("names no directory"))?;
    Ok(dir.join(crate::config::SOCKET_NAME).display().to_string())
}

/// `%XX` escapes of a URI query value (virsh passes the URI as typed; python as given).
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_rpc::virerror::NonnullDomain;

    fn args(flags: u32, params: Vec<(&str, TypedValue)>) -> Perform3ParamsArgs {
        Perform3ParamsArgs {
            dom: NonnullDomain {
                name: "vm1".into(),
                uuid: [0; 16],
                id: 1,
            },
            dconnuri: Some("qemu+unix:///system?socket=/run/b/libvirt-sock".into()),
            params: params
                .into_iter()
                .map(|(f, value)| TypedParam {
                    field: f.into(),
                    value,
                })
                .collect(),
            cookie_in: vec![],
            flags,
        }
    }

    const P2P: u32 = flags::LIVE | flags::PEER2PEER | flags::PERSIST_DEST;

    #[test]
    fn params_and_flags_map_to_virtnets_request() {
        let r = request(&args(
            P2P | flags::UNDEFINE_SOURCE,
            vec![
                (param::URI, TypedValue::String("tcp:10.99.0.2".into())),
                (param::BANDWIDTH, TypedValue::Ullong(50)),
                (param::DEST_XML, TypedValue::String("<domain/>".into())),
                (param::DEST_NAME, TypedValue::String("vm1".into())),
            ],
        ))
        .unwrap();
        assert_eq!(
            r,
            MigrateRequest {
                dest: "/run/b/virtnetd.sock".into(),
                migrate_uri: Some("tcp:10.99.0.2".into()),
                bandwidth_mib: Some(50),
                undefine_source: true,
                dest_xml: Some("<domain/>".into()),
                ..Default::default()
            }
        );
        let r = request(&args(P2P, vec![(param::BANDWIDTH, TypedValue::Ullong(0))])).unwrap();
        assert_eq!(r.bandwidth_mib, None, "0: unlimited");
        assert!(!r.undefine_source);
    }

    #[test]
    fn refusals_name_what_is_refused() {
        let err = |flags, params| request(&args(flags, params)).unwrap_err();
        let e = err(flags::LIVE | flags::PERSIST_DEST, vec![]);
        assert_eq!(e.code, ErrorCode::OperationUnsupported);
        assert!(e.message.contains("add --p2p"), "{}", e.message);
        for (bit, name) in [
            (flags::NON_SHARED_DISK, "--copy-storage-all"),
            (flags::POSTCOPY, "--postcopy"),
            (flags::TUNNELLED, "--tunnelled"),
            (flags::COMPRESSED, "--compressed"),
            (flags::OFFLINE, "--offline"),
            (flags::PAUSED, "--suspend"),
        ] {
            let e = err(P2P | bit, vec![]);
            assert_eq!(e.code, ErrorCode::ArgumentUnsupported, "{name}");
            assert!(e.message.contains(name), "{}", e.message);
        }
        let e = err(P2P | 1 << 25, vec![]);
        assert!(e.message.contains("0x2000000"), "{}", e.message);
        let e = err(flags::PEER2PEER | flags::PERSIST_DEST, vec![]);
        assert!(e.message.contains("add --live"), "{}", e.message);
        let e = err(flags::PEER2PEER | flags::LIVE, vec![]);
        assert!(e.message.contains("add --persistent"), "{}", e.message);
        let e = err(P2P, vec![("parallel.connections", TypedValue::Int(2))]);
        assert_eq!(e.code, ErrorCode::ArgumentUnsupported);
        assert!(
            e.message.contains("'parallel.connections'"),
            "{}",
            e.message
        );
        let e = err(
            P2P,
            vec![(param::BANDWIDTH, TypedValue::String("x".into()))],
        );
        assert_eq!(e.code, ErrorCode::InvalidArg);
        let e = err(
            P2P,
            vec![(param::DEST_NAME, TypedValue::String("vm2".into()))],
        );
        assert!(e.message.contains("--dname"), "{}", e.message);
        let twice = (param::URI, TypedValue::String("tcp:h".into()));
        let e = err(P2P, vec![twice.clone(), twice]);
        assert!(e.message.contains("twice"), "{}", e.message);
    }

    #[test]
    fn destination_uris() {
        let ok = |u| dest_socket(Some(u)).unwrap();
        assert_eq!(
            ok("qemu+unix:///system?socket=/run/b/libvirt-sock"),
            "/run/b/virtnetd.sock"
        );
        assert_eq!(
            ok("qemu+unix:///system?socket=/tmp/a%20b/libvirt-sock"),
            "/tmp/a b/virtnetd.sock"
        );
        for bad in [
            "qemu+ssh://host/system",
            "qemu+tcp://10.0.0.2/system",
            "qemu+unix:///system",
            "qemu+unix:///system?socket=/run/b/virtnetd.sock",
            "qemu+unix:///system?socket=run/libvirt-sock",
            "qemu+unix:///system?socket=/run/b/libvirt-sock&mode=legacy",
            "xen+unix:///system?socket=/run/b/libvirt-sock",
        ] {
            let e = dest_socket(Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArg, "{bad}");
            assert!(e.message.contains("RUN_DIR/libvirt-sock"), "{}", e.message);
        }
        assert!(dest_socket(None).is_err());
    }

    #[test]
    fn features() {
        use virtnet_rpc::migrate::*;
        assert!(supports(FEATURE_MIGRATION_P2P) && supports(FEATURE_MIGRATION_PARAMS));
        assert!(supports(FEATURE_MIGRATION_DIRECT) && !supports(FEATURE_MIGRATION_OFFLINE));
    }
}
