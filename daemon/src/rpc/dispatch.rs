//! The remote program's procedures: each decodes its `_args`, calls the daemon operation the
//! HTTP API calls for the same thing (the queries of `ops/query.rs`), and encodes its `_ret`.
//! A procedure not listed here is refused with `VIR_ERR_NO_SUPPORT` at once.

use std::sync::atomic::{AtomicBool, Ordering};

use virtnet_api::domains::{DomainSummary, StopReason, VmState};
use virtnet_rpc::remote::{
    self, AuthListRet, ConnectOpenArgs, DomainArgs, DomainFlagsArgs, DomainGetInfoRet,
    DomainGetStateRet, DomainRet, IntRet, ListAllDomainsArgs, ListAllDomainsRet, LookupByIdArgs,
    LookupByNameArgs, LookupByUuidArgs, StringRet, SupportsFeatureArgs, SupportsFeatureRet,
    VersionRet,
};
use virtnet_rpc::virerror::NonnullDomain;
use virtnet_rpc::xdr::{from_bytes, to_bytes, Xdr};
use virtnet_rpc::{ErrorCode, Procedure};

use super::errors::{check_flags, remote_error, Refusal};
use super::host;
use crate::daemon::Daemon;

/// What one client connection has said so far.
#[derive(Debug, Default)]
pub(super) struct ConnState {
    /// Between `CONNECT_OPEN` and `CONNECT_CLOSE`.
    open: AtomicBool,
    /// Opened with `VIR_CONNECT_RO`: changes are refused.
    read_only: AtomicBool,
    /// Domain event registrations ([`super::events`]).
    pub(super) events: super::events::Registrations,
}

/// `VIR_CONNECT_RO`.
const CONNECT_RO: u32 = 1;

/// A procedure's encoded result, or the error to send.
pub(super) type Reply = Result<Vec<u8>, Refusal>;

/// Runs procedure `p` with the encoded `args`; the encoded result or the error to send.
pub(super) async fn call(daemon: &Daemon, conn: &ConnState, p: Procedure, args: &[u8]) -> Reply {
    match p {
        Procedure::AuthList => {
            no_args(p, args)?;
            ok(&AuthListRet {
                types: vec![remote::AUTH_NONE],
            })
        }
        Procedure::ConnectSupportsFeature => {
            let a: SupportsFeatureArgs = decode(p, args)?;
            // Keepalive is answered, events are filtered per callback; no fd passing or
            // close callbacks: the client falls back or does without.
            // Peer-to-peer migration with parameters ([`super::migrate`]).
            let supported = i32::from(
                a.feature == remote::FEATURE_PROGRAM_KEEPALIVE
                    || a.feature == virtnet_rpc::event::FEATURE_REMOTE_EVENT_CALLBACK
                    || super::migrate::supports(a.feature),
            );
            ok(&SupportsFeatureRet { supported })
        }
        Procedure::ConnectOpen => {
            let a: ConnectOpenArgs = decode(p, args)?;
            match a.name.as_deref() {
                None | Some("") | Some(host::URI) => {}
                Some(other) => {
                    return Err(Refusal::new(
                        ErrorCode::NoConnect,
                        format!(
                            "no connection driver available for {other}: virtnetd serves {}",
                            host::URI
                        ),
                    ))
                }
            }
            conn.read_only
                .store(a.flags & CONNECT_RO != 0, Ordering::SeqCst);
            conn.open.store(true, Ordering::SeqCst);
            Ok(Vec::new())
        }
        _ if !conn.open.load(Ordering::SeqCst) => Err(Refusal::new(
            ErrorCode::InternalError,
            format!("connection not open: {p} needs REMOTE_PROC_CONNECT_OPEN first"),
        )),
        Procedure::ConnectClose => {
            no_args(p, args)?;
            conn.open.store(false, Ordering::SeqCst);
            conn.events.close();
            Ok(Vec::new())
        }
        Procedure::ConnectGetType => string_ret(p, args, "QEMU".into()),
        Procedure::ConnectGetUri => string_ret(p, args, host::URI.into()),
        Procedure::ConnectGetHostname => string_ret(p, args, host::hostname()?),
        Procedure::ConnectGetCapabilities => {
            string_ret(p, args, host::capabilities(&daemon.config().qemu))
        }
        Procedure::ConnectGetVersion => {
            no_args(p, args)?;
            ok(&VersionRet {
                version: host::qemu_version(&daemon.config().qemu).await?,
            })
        }
        Procedure::ConnectGetLibVersion => {
            no_args(p, args)?;
            ok(&VersionRet {
                version: host::LIB_VERSION,
            })
        }
        Procedure::ConnectIsSecure => {
            // A unix socket: nothing leaves the host.
            no_args(p, args)?;
            ok(&IntRet { value: 1 })
        }
        Procedure::NodeGetInfo => {
            no_args(p, args)?;
            ok(&host::node_info())
        }
        Procedure::ConnectListAllDomains => list_all_domains(daemon, decode(p, args)?),
        Procedure::DomainLookupByName => {
            let a: LookupByNameArgs = decode(p, args)?;
            let d = daemon.info(&a.name).map_err(|e| remote_error(&e))?;
            ok(&DomainRet {
                dom: nonnull(&d.name, d.uuid.as_deref(), d.id),
            })
        }
        Procedure::DomainLookupByUuid => {
            let a: LookupByUuidArgs = decode(p, args)?;
            let found = find(daemon, |s| {
                s.uuid.as_deref().and_then(remote::uuid_bytes) == Some(a.uuid)
            });
            found.ok_or_else(|| {
                no_domain(format!(
                    "no domain with matching uuid '{}'",
                    virtnet_conf::domain::Uuid(a.uuid)
                ))
            })
        }
        Procedure::DomainLookupById => {
            let a: LookupByIdArgs = decode(p, args)?;
            let found = find(daemon, |s| {
                s.id.is_some_and(|id| i64::from(id) == i64::from(a.id))
            });
            found.ok_or_else(|| no_domain(format!("no domain with matching id {}", a.id)))
        }
        Procedure::DomainGetInfo => {
            let a: DomainArgs = decode(p, args)?;
            let d = daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            let memory = d.memory_kib.unwrap_or(0);
            ok(&DomainGetInfoRet {
                state: state(d.state).0 as u8,
                max_mem: memory,
                memory,
                nr_virt_cpu: d.vcpus.unwrap_or(0).min(u32::from(u16::MAX)) as u16,
                cpu_time: d.pid.map_or(0, host::cpu_time_ns),
            })
        }
        Procedure::DomainGetState => {
            let a: DomainFlagsArgs = decode(p, args)?;
            check_flags(a.flags, 0, "virDomainGetState")?;
            let d = daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            let (state, mut reason) = state(d.state);
            if let Some(why) = d.stop_reason {
                reason = shutoff_reason(why);
            }
            ok(&DomainGetStateRet { state, reason })
        }
        Procedure::DomainIsActive => {
            let a: DomainArgs = decode(p, args)?;
            let d = daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            ok(&IntRet {
                value: i32::from(d.id.is_some()),
            })
        }
        Procedure::DomainIsPersistent => {
            let a: DomainArgs = decode(p, args)?;
            let d = daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            ok(&IntRet {
                value: i32::from(d.persistent),
            })
        }
        Procedure::DomainGetAutostart => {
            // virtnet starts no domain at boot: autostart is off for every domain.
            let a: DomainArgs = decode(p, args)?;
            daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            ok(&IntRet { value: 0 })
        }
        Procedure::DomainGetOsType => {
            let a: DomainArgs = decode(p, args)?;
            daemon.info(&a.dom.name).map_err(|e| remote_error(&e))?;
            ok(&StringRet {
                value: "hvm".into(),
            })
        }
        Procedure::DomainGetXmlDesc => {
            let a: DomainFlagsArgs = decode(p, args)?;
            // VIR_DOMAIN_XML_SECURE (1): virtnet's XML holds no secrets to hide;
            // VIR_DOMAIN_XML_INACTIVE (2): the persistent definition.
            check_flags(a.flags, 3, "virDomainGetXMLDesc")?;
            let x = daemon
                .xml(&a.dom.name, a.flags & 2 != 0)
                .map_err(|e| remote_error(&e))?;
            ok(&StringRet { value: x.xml })
        }
        p if super::ifstats::serves(p) => super::ifstats::call(daemon, p, args).await,
        p if super::networks::serves(p) => {
            let read_only = conn.read_only.load(Ordering::SeqCst);
            super::networks::call(daemon, read_only, p, args)
                .await
                .map_err(super::errors::Refusal::by_network_driver)
        }
        p if super::events::serves(p) => super::events::call(daemon, &conn.events, p, args),
        p if super::migrate::serves(p) => {
            super::migrate::call(daemon, conn.read_only.load(Ordering::SeqCst), p, args).await
        }
        // The procedures that change something.
        p => super::lifecycle::call(daemon, conn.read_only.load(Ordering::SeqCst), p, args).await,
    }
}

/// `virConnectListAllDomains`'s filter groups (`VIR_CONNECT_LIST_DOMAINS_*`): within a group
/// any set bit matches, groups combine with AND, an empty group matches everything.
fn list_all_domains(daemon: &Daemon, a: ListAllDomainsArgs) -> Reply {
    const KNOWN: u32 = 0xffff;
    check_flags(a.flags, KNOWN, "virConnectListAllDomains")?;
    let domains: Vec<NonnullDomain> = daemon
        .list()
        .domains
        .iter()
        .filter(|s| listed(a.flags, s))
        .map(|s| nonnull(&s.name, s.uuid.as_deref(), s.id))
        .collect();
    let ret = domains.len() as u32;
    ok(&ListAllDomainsRet {
        domains: if a.need_results != 0 {
            domains
        } else {
            Vec::new()
        },
        ret,
    })
}

/// One filter group of libvirt's `virConnectListAll*` `flags`: no bit of `mask` set matches
/// everything, else any set bit whose condition holds (`bits`: bit, condition).
pub(super) fn group(flags: u32, mask: u32, bits: &[(u32, bool)]) -> bool {
    flags & mask == 0 || bits.iter().any(|&(bit, yes)| flags & bit != 0 && yes)
}

/// Whether `s` passes `virConnectListAllDomains`'s `flags`.
pub(super) fn listed(flags: u32, s: &DomainSummary) -> bool {
    let group = |mask, bits: &[(u32, bool)]| group(flags, mask, bits);
    let active = s.id.is_some();
    let st = state(s.state).0;
    group(0x3, &[(0x1, active), (0x2, !active)])
        && group(0xc, &[(0x4, s.persistent), (0x8, !s.persistent)])
        && group(
            0xf0,
            &[
                (0x10, st == 1),
                (0x20, st == 3),
                (0x40, st == 5),
                (0x80, ![1, 3, 5].contains(&st)),
            ],
        )
        // No managed save, autostart, snapshots or checkpoints in virtnet: only the NO_*
        // bit of each of these groups matches.
        && group(0x300, &[(0x200, true)])
        && group(0xc00, &[(0x800, true)])
        && group(0x3000, &[(0x2000, true)])
        && group(0xc000, &[(0x8000, true)])
}

/// `virDomainState` and its reason for a virtnet state: running (booted), shut off
/// (unknown reason), shutting down (`VIR_DOMAIN_SHUTDOWN`), and no state while starting or
/// unknown.
pub(super) fn state(s: VmState) -> (i32, i32) {
    match s {
        VmState::Running => (1, 1),
        VmState::ShutOff => (5, 0),
        VmState::ShuttingDown => (4, 0),
        VmState::Starting | VmState::Unknown => (0, 0),
    }
}

/// `virDomainShutoffReason` for why a VM stopped.
fn shutoff_reason(why: StopReason) -> i32 {
    match why {
        StopReason::Shutdown => 1,
        StopReason::Destroyed => 2,
        StopReason::Crashed => 3,
        // VIR_DOMAIN_SHUTOFF_MIGRATED (5 is VIR_DOMAIN_SHUTOFF_SAVED).
        StopReason::Migrated => 4,
        StopReason::Failed => 6,
    }
}

fn find(daemon: &Daemon, pred: impl Fn(&DomainSummary) -> bool) -> Option<Vec<u8>> {
    let list = daemon.list();
    let s = list.domains.iter().find(|s| pred(s))?;
    Some(to_bytes(&DomainRet {
        dom: nonnull(&s.name, s.uuid.as_deref(), s.id),
    }))
}

pub(super) fn nonnull(name: &str, uuid: Option<&str>, id: Option<u32>) -> NonnullDomain {
    NonnullDomain {
        name: name.to_string(),
        uuid: uuid.and_then(remote::uuid_bytes).unwrap_or_default(),
        id: id.and_then(|i| i32::try_from(i).ok()).unwrap_or(-1),
    }
}

fn no_domain(what: String) -> Refusal {
    Refusal::new(ErrorCode::NoDomain, format!("Domain not found: {what}"))
}

pub(super) fn ok<T: Xdr>(v: &T) -> Reply {
    Ok(to_bytes(v))
}

fn string_ret(p: Procedure, args: &[u8], value: String) -> Reply {
    no_args(p, args)?;
    ok(&StringRet { value })
}

pub(super) fn no_args(p: Procedure, args: &[u8]) -> Result<(), Refusal> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(bad_args(p, format!("{} unexpected bytes", args.len())))
    }
}

pub(super) fn decode<T: Xdr>(p: Procedure, args: &[u8]) -> Result<T, Refusal> {
    from_bytes(args).map_err(|e| bad_args(p, e.to_string()))
}

fn bad_args(p: Procedure, why: String) -> Refusal {
    Refusal::new(
        ErrorCode::Rpc,
        format!("cannot decode the arguments of {p}: {why}"),
    )
    .by_protocol()
}
