//! The procedures that change domains: define, start (create), shutdown, destroy, undefine,
//! each the daemon operation the HTTP API calls. libvirt's flags are accepted where virtnet does what
//! they ask (or there is nothing for them to do), and refused otherwise.

use virtnet_rpc::remote::{
    DefineXmlArgs, DefineXmlFlagsArgs, DomainArgs, DomainFlagsArgs, DomainRet,
};
use virtnet_rpc::{ErrorCode, Procedure};

use super::dispatch::{decode, nonnull, ok, Reply};
use super::errors::{check_flags, not_supported, remote_error, Refusal};
use crate::daemon::Daemon;
use crate::error::DaemonError;

/// `VIR_DOMAIN_DEFINE_VALIDATE`: virtnet validates every definition anyway.
const DEFINE_VALIDATE: u32 = 1;
/// `VIR_DOMAIN_START_FORCE_BOOT`: boot even with a managed save image; virtnet has none.
const START_FORCE_BOOT: u32 = 8;
/// `VIR_DOMAIN_UNDEFINE_*` of things virtnet never keeps for a domain (managed save,
/// snapshot and checkpoint metadata, NVRAM, TPM state: 1, 2, 4, 8, 16, 32, 64): removing or
/// keeping them is the same.
const UNDEFINE_NOTHING_KEPT: u32 = 0x7f;
/// `VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN`: what virtnet's shutdown does (and its default).
const SHUTDOWN_ACPI_POWER_BTN: u32 = 1;
/// The other `VIR_DOMAIN_SHUTDOWN_*` modes, each with why virtnet has none.
const SHUTDOWN_MODES_REFUSED: [(u32, &str, &str); 4] = [
    (2, "agent", "virtnet runs no guest agent channel"),
    (4, "initctl", "virtnet is no container driver"),
    (8, "signal", "a signal to QEMU is `virsh destroy`"),
    (16, "paravirt", "QEMU has no paravirtual shutdown"),
];

/// Runs the changing procedure `p` (refused when `read_only`), here or in
/// [`super::devices`]; any other is not served.
pub(super) async fn call(daemon: &Daemon, read_only: bool, p: Procedure, args: &[u8]) -> Reply {
    let served = matches!(
        p,
        Procedure::DomainDefineXml
            | Procedure::DomainDefineXmlFlags
            | Procedure::DomainCreate
            | Procedure::DomainCreateWithFlags
            | Procedure::DomainShutdown
            | Procedure::DomainShutdownFlags
            | Procedure::DomainDestroy
            | Procedure::DomainDestroyFlags
            | Procedure::DomainUndefine
            | Procedure::DomainUndefineFlags
    );
    if !served && !super::devices::serves(p) {
        return Err(not_supported(p));
    }
    if read_only {
        return Err(super::errors::read_only(p));
    }
    match p {
        Procedure::DomainDefineXml => {
            let a: DefineXmlArgs = decode(p, args)?;
            define(daemon, &a.xml).await
        }
        Procedure::DomainDefineXmlFlags => {
            let a: DefineXmlFlagsArgs = decode(p, args)?;
            check_flags(a.flags, DEFINE_VALIDATE, "virDomainDefineXMLFlags")?;
            define(daemon, &a.xml).await
        }
        Procedure::DomainCreate => {
            let a: DomainArgs = decode(p, args)?;
            start(daemon, &a.dom.name).await.map(|_| Vec::new())
        }
        Procedure::DomainCreateWithFlags => {
            let a: DomainFlagsArgs = decode(p, args)?;
            check_flags(a.flags, START_FORCE_BOOT, "virDomainCreateWithFlags")?;
            start(daemon, &a.dom.name).await
        }
        Procedure::DomainShutdown => {
            let a: DomainArgs = decode(p, args)?;
            shutdown(daemon, &a.dom.name).await
        }
        Procedure::DomainShutdownFlags => {
            let a: DomainFlagsArgs = decode(p, args)?;
            shutdown_mode(a.flags)?;
            shutdown(daemon, &a.dom.name).await
        }
        Procedure::DomainDestroy => {
            let a: DomainArgs = decode(p, args)?;
            destroy(daemon, &a.dom.name).await
        }
        Procedure::DomainDestroyFlags => {
            // VIR_DOMAIN_DESTROY_GRACEFUL (no SIGKILL) is not what virtnet's destroy does.
            let a: DomainFlagsArgs = decode(p, args)?;
            check_flags(a.flags, 0, "virDomainDestroyFlags")?;
            destroy(daemon, &a.dom.name).await
        }
        Procedure::DomainUndefine => {
            let a: DomainArgs = decode(p, args)?;
            undefine(daemon, &a.dom.name).await
        }
        Procedure::DomainUndefineFlags => {
            let a: DomainFlagsArgs = decode(p, args)?;
            check_flags(a.flags, UNDEFINE_NOTHING_KEPT, "virDomainUndefineFlags")?;
            undefine(daemon, &a.dom.name).await
        }
        p => super::devices::call(daemon, p, args).await,
    }
}

async fn define(daemon: &Daemon, xml: &str) -> Reply {
    let r = daemon.define(xml).await.map_err(|e| remote_error(&e))?;
    for w in &r.warnings {
        // libvirt's define has no warnings in its answer: they go to the log.
        tracing::warn!(vm = %r.name, warning = %w, "defined over the libvirt socket");
    }
    let info = daemon.info(&r.name).map_err(|e| remote_error(&e))?;
    ok(&DomainRet {
        dom: nonnull(&info.name, info.uuid.as_deref(), info.id),
    })
}

async fn start(daemon: &Daemon, name: &str) -> Reply {
    let info = daemon.start(name).await.map_err(|e| remote_error(&e))?;
    ok(&DomainRet {
        dom: nonnull(&info.name, info.uuid.as_deref(), info.id),
    })
}

/// Refuses the `VIR_DOMAIN_SHUTDOWN_*` modes other than the ACPI power button (virsh's
/// `shutdown --mode`): asked for any of them, virtnet would not shut down the way asked.
fn shutdown_mode(flags: u32) -> Result<(), Refusal> {
    let known = SHUTDOWN_MODES_REFUSED
        .iter()
        .fold(SHUTDOWN_ACPI_POWER_BTN, |k, m| k | m.0);
    check_flags(flags, known, "virDomainShutdownFlags")?;
    match SHUTDOWN_MODES_REFUSED.iter().find(|m| flags & m.0 != 0) {
        None => Ok(()),
        Some((_, mode, why)) => Err(Refusal::new(
            ErrorCode::ArgumentUnsupported,
            format!(
                "argument unsupported: shutdown mode '{mode}' is not supported: {why}; \
                 virtnet shuts down with the ACPI power button (no --mode, or --mode acpi)"
            ),
        )),
    }
}

/// libvirt's `virDomainShutdown`: the guest is asked (ACPI power button) and the call returns;
/// the domain is shut off when the guest powers off and QEMU exits.
async fn shutdown(daemon: &Daemon, name: &str) -> Reply {
    match daemon.press_power_button(name).await {
        Ok(()) => Ok(Vec::new()),
        // libvirt's own words, which scripts match on.
        Err(DaemonError::InvalidState { state, .. }) if state == "shut off" => Err(Refusal::new(
            ErrorCode::OperationInvalid,
            "Requested operation is not valid: domain is not running",
        )),
        Err(e) => Err(remote_error(&e)),
    }
}

async fn destroy(daemon: &Daemon, name: &str) -> Reply {
    let r = daemon.destroy(name).await.map_err(|e| remote_error(&e))?;
    for l in &r.leftovers {
        tracing::warn!(vm = %name, leftover = %l, "destroyed over the libvirt socket; not released");
    }
    Ok(Vec::new())
}

async fn undefine(daemon: &Daemon, name: &str) -> Reply {
    daemon.undefine(name).await.map_err(|e| remote_error(&e))?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_modes_other_than_the_power_button_are_refused() {
        assert_eq!(shutdown_mode(0), Ok(()), "default: the power button");
        assert_eq!(shutdown_mode(SHUTDOWN_ACPI_POWER_BTN), Ok(()));
        for (bit, mode, _) in SHUTDOWN_MODES_REFUSED {
            for flags in [bit, bit | SHUTDOWN_ACPI_POWER_BTN] {
                let r = shutdown_mode(flags).unwrap_err();
                assert_eq!(r.code, ErrorCode::ArgumentUnsupported, "{flags:#x}");
                assert!(r.message.contains(&format!("'{mode}'")), "{}", r.message);
            }
        }
        let r = shutdown_mode(0x40).unwrap_err();
        assert_eq!(
            r.code,
            ErrorCode::InvalidArg,
            "an unknown bit: virCheckFlags' refusal"
        );
        assert!(r.message.contains("0x40"), "{}", r.message);
    }
}
