//! Live migration over libvirt's protocol, run by virtnet's own migration ([`Daemon::migrate`],
//! the one `virtnet migrate --live` runs):
//!
//! - peer to peer: `virsh migrate --live --p2p --persistent VM DCONNURI` and python3-libvirt's
//!   `migrateToURI3` with `VIR_MIGRATE_PEER2PEER|VIR_MIGRATE_LIVE|VIR_MIGRATE_PERSIST_DEST`
//!   call `DOMAIN_MIGRATE_PERFORM3_PARAMS` on the source with the destination's URI,
//!   `qemu+unix:///system?socket=RUN_DIR/libvirt-sock`: the source talks to the destination
//!   virtnetd's HTTP API socket in that run directory, `RUN_DIR/virtnetd.sock` (the daemons
//!   speak virtnet's migration protocol); any other URI is refused;
//! - managed (`virsh migrate --live --persistent VM DESTURI` without `--p2p`): the client
//!   calls `BEGIN3_PARAMS` on the source (flags and parameters checked, the XML the
//!   destination will run returned; its cookie says when that is the source's own, no
//!   destination XML given), `PREPARE3_PARAMS` on the destination (checked too; its
//!   cookie carries Begin's on and adds its own API socket's path, its `uri_out` `unix` unless the client gave a
//!   `migrate_uri`), `PERFORM3_PARAMS` on the source with that cookie (the whole migration,
//!   towards that socket), `FINISH3_PARAMS` on the destination (the domain, running) and
//!   `CONFIRM3_PARAMS` on the source (nothing left to do: virtnet's migration cleaned up or
//!   undid everything already).
//!
//! Direct migration (`migrateToURI*` without `VIR_MIGRATE_PEER2PEER`) and the older
//! protocols (v1, v2, v3 without parameters) are refused with "add --p2p". Also
//! `DOMAIN_GET_JOB_INFO` (`virsh domjobinfo`) and `DOMAIN_ABORT_JOB` (`virsh domjobabort`,
//! virtnet's migrate cancel).

use virtnet_api::MigrateRequest;
use virtnet_rpc::migrate::{
    flags, param, Begin3ParamsArgs, Begin3ParamsRet, Confirm3ParamsArgs, Finish3ParamsArgs,
    Finish3ParamsRet, JobInfoRet, Perform3ParamsArgs, Perform3ParamsRet, Prepare3ParamsArgs,
    Prepare3ParamsRet, TypedParam, TypedValue, JOB_NONE, JOB_UNBOUNDED,
};
use virtnet_rpc::remote::DomainArgs;
use virtnet_rpc::{ErrorCode, Procedure};

use super::dispatch::{decode, nonnull, ok, Reply};
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

/// Direct migration and the protocols without parameters: refused with "add --p2p".
const REFUSED: [Procedure; 12] = [
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
    Procedure::DomainMigratePrepareTunnel3Params,
    Procedure::DomainMigratePrepareTunnel3,
];

/// What a destination's Prepare hands the source's Perform (through the client) in the
/// managed flow: this prefix and the destination virtnetd's API socket path.
const COOKIE_PREFIX: &[u8] = b"virtnetd-api-socket:";
/// Begin's cookie when the client gave no destination XML (Begin then returns the live XML,
/// which the client passes on as `destination_xml`): Prepare carries it on before its own
/// cookie, and Perform runs the source's definitions (virtnet's default) instead of that
/// XML, however the live XML changed meanwhile.
const SOURCE_XML_MARK: &[u8] = b"virtnetd-source-xml;";

/// Whether `p` is one of this module's.
pub(super) fn serves(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::DomainMigrateBegin3Params
            | Procedure::DomainMigratePrepare3Params
            | Procedure::DomainMigratePerform3Params
            | Procedure::DomainMigrateFinish3Params
            | Procedure::DomainMigrateConfirm3Params
            | Procedure::DomainGetJobInfo
            | Procedure::DomainAbortJob
    ) || REFUSED.contains(&p)
}

/// What `CONNECT_SUPPORTS_FEATURE` says about a migration feature: peer to peer and V3 with
/// parameters (what `virDomainMigrateToURI3` and the managed `virDomainMigrate3` use); direct
/// too, so that a `migrateToURI3` without `VIR_MIGRATE_PEER2PEER` reaches virtnetd (Perform3)
/// and gets its "add --p2p" rather than libvirt's generic refusal; not offline migration
/// (libvirt's client refuses `--offline` itself then).
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
    if REFUSED.contains(&p) {
        return Err(direct());
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
        return Err(super::errors::read_only(p));
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
        Procedure::DomainMigrateBegin3Params => {
            let a: Begin3ParamsArgs = decode(p, args)?;
            let req = request(&a.dom.name, &a.params, a.flags, false)?;
            let live = daemon
                .xml(&a.dom.name, false)
                .map_err(|e| remote_error(&e))?;
            let cookie_out = if req.dest_xml.is_none() {
                SOURCE_XML_MARK.to_vec()
            } else {
                Vec::new()
            };
            ok(&Begin3ParamsRet {
                cookie_out,
                xml: req.dest_xml.unwrap_or(live.xml),
            })
        }
        Procedure::DomainMigratePrepare3Params => {
            let a: Prepare3ParamsArgs = decode(p, args)?;
            let name = dest_name(&a.params)?;
            let req = request(&name, &a.params, a.flags, false)?;
            let mut cookie_out = if a.cookie_in == SOURCE_XML_MARK {
                SOURCE_XML_MARK.to_vec()
            } else {
                Vec::new()
            };
            cookie_out.extend_from_slice(COOKIE_PREFIX);
            cookie_out.extend_from_slice(daemon.config().socket.as_os_str().as_encoded_bytes());
            ok(&Prepare3ParamsRet {
                cookie_out,
                // The client needs a URI for Perform: virtnet's default stream.
                uri_out: req.migrate_uri.is_none().then(|| "unix".to_string()),
            })
        }
        Procedure::DomainMigratePerform3Params => {
            let a: Perform3ParamsArgs = decode(p, args)?;
            let p2p = a.flags & flags::PEER2PEER != 0;
            let mut req = request(&a.dom.name, &a.params, a.flags, p2p)?;
            req.dest = if p2p {
                if !a.cookie_in.is_empty() {
                    return Err(bad_cookie());
                }
                dest_socket(a.dconnuri.as_deref())?
            } else {
                let (socket, source_xml) = cookie_socket(&a.cookie_in)?;
                if source_xml {
                    req.dest_xml = None;
                }
                socket
            };
            daemon
                .migrate(&a.dom.name, &req)
                .await
                .map_err(|e| remote_error(&e))?;
            ok(&Perform3ParamsRet::default())
        }
        Procedure::DomainMigrateFinish3Params => {
            let a: Finish3ParamsArgs = decode(p, args)?;
            let name = dest_name(&a.params)?;
            if a.cancelled != 0 {
                // virtnet's migration undid the destination's part already.
                return Err(Refusal::new(
                    ErrorCode::OperationFailed,
                    format!("operation failed: migration of '{name}' was cancelled"),
                ));
            }
            let d = daemon.info(&name).map_err(|e| remote_error(&e))?;
            if d.id.is_none() {
                return Err(Refusal::new(
                    ErrorCode::OperationFailed,
                    format!("operation failed: domain '{name}' does not run here"),
                ));
            }
            ok(&Finish3ParamsRet {
                dom: nonnull(&d.name, d.uuid.as_deref(), d.id),
                cookie_out: Vec::new(),
            })
        }
        _ => {
            // Confirm: the source's part is done (cleaned up, or undone on failure).
            let a: Confirm3ParamsArgs = decode(p, args)?;
            daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            Ok(Vec::new())
        }
    }
}

fn direct() -> Refusal {
    Refusal::new(
        ErrorCode::OperationUnsupported,
        "Operation not supported: virtnetd migrates peer to peer (the source virtnetd drives \
         the destination) or in libvirt's managed flow with parameters, not directly nor with \
         the older migration protocols: add --p2p (virsh migrate --live --p2p --persistent VM \
         'qemu+unix:///system?socket=DEST_RUN_DIR/libvirt-sock'), or VIR_MIGRATE_PEER2PEER \
         with virDomainMigrateToURI3",
    )
}

fn bad_cookie() -> Refusal {
    Refusal::new(
        ErrorCode::InvalidArg,
        "invalid argument: the migration cookie is not one a virtnetd's Prepare returned",
    )
}

/// The destination's API socket from its Prepare's cookie, and whether Begin returned the
/// source's live XML for want of a destination XML ([`SOURCE_XML_MARK`]).
fn cookie_socket(cookie: &[u8]) -> Result<(String, bool), Refusal> {
    let (cookie, source_xml) = match cookie.strip_prefix(SOURCE_XML_MARK) {
        Some(rest) => (rest, true),
        None => (cookie, false),
    };
    let path = cookie
        .strip_prefix(COOKIE_PREFIX)
        .and_then(|p| std::str::from_utf8(p).ok())
        .filter(|p| p.starts_with('/'))
        .ok_or_else(bad_cookie)?;
    Ok((path.to_string(), source_xml))
}

/// The domain's name on the destination: `destination_name` (the client sets it for Finish),
/// else the name in `destination_xml` (Begin's XML, for Prepare).
fn dest_name(params: &[TypedParam]) -> Result<String, Refusal> {
    let string = |field: &str| {
        params.iter().find_map(|p| match &p.value {
            TypedValue::String(v) if p.field == field => Some(v.clone()),
            _ => None,
        })
    };
    if let Some(n) = string(param::DEST_NAME) {
        return Ok(n);
    }
    let xml = string(param::DEST_XML).ok_or_else(|| {
        Refusal::new(
            ErrorCode::InvalidArg,
            "invalid argument: the migration names no domain (no destination_name or \
             destination_xml)",
        )
    })?;
    virtnet_conf::Domain::parse(&xml)
        .map(|d| d.name().to_string())
        .map_err(|e| Refusal::new(ErrorCode::XmlError, format!("invalid domain XML: {e}")))
}

/// virtnet's migrate request (all but its `dest`) for a migration's flags and parameters, or
/// why it is refused: each is applied or refused by name. `p2p`: the peer-to-peer flow, whose
/// flags must say so; else the managed one, whose must not.
fn request(
    name: &str,
    params: &[TypedParam],
    flags: u32,
    p2p: bool,
) -> Result<MigrateRequest, Refusal> {
    if p2p != (flags & flags::PEER2PEER != 0) {
        return Err(direct());
    }
    let unsupported = flags & !HONOURED;
    if unsupported != 0 {
        let known = (1u32 << flags::NAMES.len()) - 1;
        let names: Vec<String> = flags::NAMES
            .iter()
            .filter(|(b, _)| unsupported & b != 0)
            .map(|(_, n)| n.to_string())
            .chain((unsupported & !known != 0).then(|| format!("0x{:x}", unsupported & !known)))
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
    if flags & flags::LIVE == 0 {
        return Err(Refusal::new(
            ErrorCode::ArgumentUnsupported,
            "argument unsupported: virtnet migrates live only (the guest keeps running until \
             the switch-over): add --live (VIR_MIGRATE_LIVE)",
        ));
    }
    if flags & flags::PERSIST_DEST == 0 {
        return Err(Refusal::new(
            ErrorCode::ArgumentUnsupported,
            "argument unsupported: virtnet always keeps a definition of the VM on the \
             destination (a transient migration is not supported): add --persistent \
             (VIR_MIGRATE_PERSIST_DEST)",
        ));
    }
    let mut req = MigrateRequest {
        undefine_source: flags & flags::UNDEFINE_SOURCE != 0,
        ..Default::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for p in params {
        if seen.contains(&p.field.as_str()) {
            return Err(bad_param(p, "given twice"));
        }
        seen.push(&p.field);
        match (p.field.as_str(), &p.value) {
            (param::URI, TypedValue::String(uri)) => req.migrate_uri = Some(uri.clone()),
            (param::DEST_XML, TypedValue::String(xml)) => req.dest_xml = Some(xml.clone()),
            (param::BANDWIDTH, TypedValue::Ullong(0)) => {}
            (param::BANDWIDTH, TypedValue::Ullong(mib)) => req.bandwidth_mib = Some(*mib),
            (param::DEST_NAME, TypedValue::String(n)) if n == name => {}
            (param::DEST_NAME, TypedValue::String(_)) => {
                return Err(Refusal::new(
                    ErrorCode::ArgumentUnsupported,
                    format!(
                        "argument unsupported: virtnet keeps the VM's name on the destination: \
                         drop --dname (or give '{name}')"
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

    fn params(params: Vec<(&str, TypedValue)>) -> Vec<TypedParam> {
        params
            .into_iter()
            .map(|(f, value)| TypedParam {
                field: f.into(),
                value,
            })
            .collect()
    }

    /// The peer-to-peer request for `flags` and `params`.
    fn p2p(flags: u32, p: Vec<(&str, TypedValue)>) -> Result<MigrateRequest, Refusal> {
        request("vm1", &params(p), flags, true)
    }

    const P2P: u32 = flags::LIVE | flags::PEER2PEER | flags::PERSIST_DEST;

    #[test]
    fn params_and_flags_map_to_virtnets_request() {
        let r = p2p(
            P2P | flags::UNDEFINE_SOURCE,
            vec![
                (param::URI, TypedValue::String("tcp:10.99.0.2".into())),
                (param::BANDWIDTH, TypedValue::Ullong(50)),
                (param::DEST_XML, TypedValue::String("<domain/>".into())),
                (param::DEST_NAME, TypedValue::String("vm1".into())),
            ],
        )
        .unwrap();
        assert_eq!(
            r,
            MigrateRequest {
                migrate_uri: Some("tcp:10.99.0.2".into()),
                bandwidth_mib: Some(50),
                undefine_source: true,
                dest_xml: Some("<domain/>".into()),
                ..Default::default()
            }
        );
        let r = p2p(P2P, vec![(param::BANDWIDTH, TypedValue::Ullong(0))]).unwrap();
        assert_eq!(r.bandwidth_mib, None, "0: unlimited");
        assert!(!r.undefine_source);
    }

    #[test]
    fn refusals_name_what_is_refused() {
        let err = |flags, params| p2p(flags, params).unwrap_err();
        let e = err(flags::LIVE | flags::PERSIST_DEST, vec![]);
        assert_eq!(e.code, ErrorCode::OperationUnsupported);
        assert!(e.message.contains("add --p2p"), "{}", e.message);
        // The managed flow with the flags the peer-to-peer one has.
        let e = request("vm1", &[], P2P, false).unwrap_err();
        assert!(e.message.contains("add --p2p"), "{}", e.message);
        let e = request("vm1", &[], flags::LIVE, false).unwrap_err();
        assert!(e.message.contains("add --persistent"), "{}", e.message);
        assert!(request("vm1", &[], flags::LIVE | flags::PERSIST_DEST, false).is_ok());
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
    fn managed_flow_cookie_and_names() {
        assert_eq!(
            cookie_socket(b"virtnetd-api-socket:/run/b/virtnetd.sock").unwrap(),
            ("/run/b/virtnetd.sock".to_string(), false)
        );
        assert_eq!(
            cookie_socket(b"virtnetd-source-xml;virtnetd-api-socket:/run/b/virtnetd.sock").unwrap(),
            ("/run/b/virtnetd.sock".to_string(), true)
        );
        for bad in [
            &b""[..],
            b"/run/b/virtnetd.sock",
            b"virtnetd-api-socket:rel",
            b"virtnetd-source-xml;",
        ] {
            assert_eq!(cookie_socket(bad).unwrap_err().code, ErrorCode::InvalidArg);
        }
        let xml = "<domain type='qemu'><name>vm7</name><memory>65536</memory>\
                   <os><type>hvm</type></os></domain>";
        assert_eq!(
            dest_name(&params(vec![(
                param::DEST_XML,
                TypedValue::String(xml.into())
            )]))
            .unwrap(),
            "vm7"
        );
        let both = params(vec![
            (param::DEST_XML, TypedValue::String(xml.into())),
            (param::DEST_NAME, TypedValue::String("vm1".into())),
        ]);
        assert_eq!(dest_name(&both).unwrap(), "vm1");
        assert_eq!(dest_name(&[]).unwrap_err().code, ErrorCode::InvalidArg);
    }

    #[test]
    fn features() {
        use virtnet_rpc::migrate::*;
        assert!(supports(FEATURE_MIGRATION_P2P) && supports(FEATURE_MIGRATION_PARAMS));
        assert!(supports(FEATURE_MIGRATION_DIRECT) && !supports(FEATURE_MIGRATION_OFFLINE));
    }
}
