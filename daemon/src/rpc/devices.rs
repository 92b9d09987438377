//! Device changes: attach, detach and update with libvirt's `virDomainDeviceModifyFlags`
//! (`VIR_DOMAIN_AFFECT_CURRENT` 0: the running VM when it runs, else the definition; `_LIVE`
//! 1; `_CONFIG` 2), the same scopes as the HTTP API's `live`/`config` and virsh's flags.

use virtnet_api::domains::{AttachRequest, DetachRequest, UpdateRequest};
use virtnet_rpc::remote::{DomainXmlArgs, DomainXmlFlagsArgs};
use virtnet_rpc::Procedure;

use super::dispatch::{decode, Reply};
use super::errors::{check_flags, not_supported, remote_error, Refusal};
use crate::daemon::Daemon;

/// `VIR_DOMAIN_AFFECT_LIVE`.
const AFFECT_LIVE: u32 = 1;
/// `VIR_DOMAIN_AFFECT_CONFIG`.
const AFFECT_CONFIG: u32 = 2;

/// The procedures of this file.
pub(super) fn serves(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::DomainAttachDevice
            | Procedure::DomainAttachDeviceFlags
            | Procedure::DomainDetachDevice
            | Procedure::DomainDetachDeviceFlags
            | Procedure::DomainUpdateDeviceFlags
    )
}

/// Runs the device procedure `p`.
pub(super) async fn call(daemon: &Daemon, p: Procedure, args: &[u8]) -> Reply {
    // The calls without flags are libvirt's oldest: they change the running VM only.
    let (name, xml, flags) = match p {
        Procedure::DomainAttachDevice | Procedure::DomainDetachDevice => {
            let a: DomainXmlArgs = decode(p, args)?;
            (a.dom.name, a.xml, AFFECT_LIVE)
        }
        _ => {
            let a: DomainXmlFlagsArgs = decode(p, args)?;
            (a.dom.name, a.xml, a.flags)
        }
    };
    let api = match p {
        Procedure::DomainAttachDevice | Procedure::DomainAttachDeviceFlags => {
            "virDomainAttachDeviceFlags"
        }
        Procedure::DomainDetachDevice | Procedure::DomainDetachDeviceFlags => {
            "virDomainDetachDeviceFlags"
        }
        // VIR_DOMAIN_DEVICE_MODIFY_FORCE (4) forces a CD-ROM eject: nothing virtnet has.
        _ => "virDomainUpdateDeviceFlags",
    };
    let (live, config) = scope(flags, api)?;
    let failed = |e| remote_error(&e);
    match p {
        Procedure::DomainAttachDevice | Procedure::DomainAttachDeviceFlags => {
            let req = AttachRequest {
                xml,
                live,
                config,
                persistent: false,
            };
            let r = daemon.attach_device(&name, &req).await.map_err(failed)?;
            for w in &r.warnings {
                tracing::warn!(vm = %name, warning = %w, "attached over the libvirt socket");
            }
        }
        Procedure::DomainDetachDevice | Procedure::DomainDetachDeviceFlags => {
            // A removal the guest has not finished stays pending and completes when it does,
            // as libvirt's detach returns once the guest was asked.
            let req = DetachRequest {
                xml: Some(xml),
                live,
                config,
                ..DetachRequest::default()
            };
            daemon.detach_device(&name, &req).await.map_err(failed)?;
        }
        Procedure::DomainUpdateDeviceFlags => {
            let req = UpdateRequest {
                xml,
                live,
                config,
                persistent: false,
                replug: false,
                timeout_secs: None,
            };
            daemon.update_device(&name, &req).await.map_err(failed)?;
        }
        _ => return Err(not_supported(p)),
    }
    Ok(Vec::new())
}

/// `(live, config)` for libvirt's flags (both false: "current").
fn scope(flags: u32, api: &str) -> Result<(bool, bool), Refusal> {
    check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, api)?;
    Ok((flags & AFFECT_LIVE != 0, flags & AFFECT_CONFIG != 0))
}
