//! Who a confined QEMU runs as: virtnetd's QEMU user, or the domain's own DAC label
//! (`<seclabel type='static' model='dac'><label>user:group</label></seclabel>`), plus the
//! `kvm` group when the domain uses KVM. Looks names up on the host (NSS), so it is not part
//! of the pure plan: its result goes into [`crate::PlanContext::sandbox`].

use virtnet_conf::domain::{DacId, DomainType};
use virtnet_conf::Domain;
use virtnet_host::{lookup_group, lookup_user};
use virtnet_qemu::{QemuUser, Sandbox};

use crate::error::VmError;

/// The sandbox for `domain` when QEMU is confined by default as `default` (`None`: virtnetd
/// runs with `--sandbox off`, and so does this). A domain with `<seclabel type='none'/>` gets
/// one too; [`crate::plan_start`] drops it.
pub fn sandbox_for(
    domain: &Domain,
    default: Option<&QemuUser>,
) -> Result<Option<Sandbox>, VmError> {
    let Some(default) = default else {
        return Ok(None);
    };
    let label = domain
        .seclabels
        .iter()
        .find(|s| s.is_dac())
        .and_then(|s| Some((s.label.as_ref()?.0.clone(), s.dac_label()?)));
    let mut user = match label {
        None => default.clone(),
        Some((text, dac)) => {
            let err = |reason: String| VmError::Identity {
                label: format!("'{text}' (<seclabel model='dac'>)"),
                reason,
            };
            let (name, uid) = match &dac.user {
                DacId::Id(uid) => (format!("+{uid}"), *uid),
                DacId::Name(n) => {
                    let u = lookup_user(n)
                        .map_err(|e| err(e.to_string()))?
                        .ok_or_else(|| err(format!("there is no user '{n}' on this host: create it (useradd --system {n}) or change the label")))?;
                    (n.clone(), u.uid)
                }
            };
            let gid = match &dac.group {
                DacId::Id(gid) => *gid,
                DacId::Name(g) => lookup_group(g)
                    .map_err(|e| err(e.to_string()))?
                    .ok_or_else(|| err(format!("there is no group '{g}' on this host: create it (groupadd --system {g}) or change the label")))?,
            };
            QemuUser {
                name,
                uid,
                gid,
                groups: Vec::new(),
            }
        }
    };
    if user.uid == 0 {
        return Err(VmError::Identity {
            label: format!("user '{}'", user.name),
            reason: "uid 0 keeps every privilege a compromised QEMU could use: name an \
                     unprivileged user, or use <seclabel type='none'/> (or virtnetd --sandbox \
                     off) to run QEMU unconfined on purpose"
                .into(),
        });
    }
    user.groups.clear();
    if domain.domain_type() == DomainType::Kvm {
        // /dev/kvm is root:kvm 0660 on Debian; without the group QEMU cannot open it.
        match lookup_group("kvm") {
            Ok(Some(kvm)) => user.groups.push(kvm),
            Ok(None) => {}
            Err(e) => {
                return Err(VmError::Identity {
                    label: format!("user '{}'", user.name),
                    reason: format!("cannot look up the group kvm: {e}"),
                })
            }
        }
    }
    Ok(Some(Sandbox::new(user)))
}
