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

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(ty: &str, seclabel: &str) -> Domain {
        virtnet_conf::load_domain(&format!(
            "<domain type='{ty}'><name>i</name><memory>65536</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>{seclabel}<devices/></domain>"
        ))
        .unwrap()
    }

    fn default() -> QemuUser {
        QemuUser {
            name: "virtnet-qemu".into(),
            uid: 990,
            gid: 991,
            groups: vec![4242],
        }
    }

    #[test]
    fn default_identity_without_groups_for_tcg() {
        assert_eq!(sandbox_for(&domain("qemu", ""), None).unwrap(), None);
        let sb = sandbox_for(&domain("qemu", ""), Some(&default()))
            .unwrap()
            .unwrap();
        assert_eq!((sb.user.uid, sb.user.gid), (990, 991));
        assert!(sb.user.groups.is_empty(), "only what the VM needs");
    }

    #[test]
    fn kvm_domains_get_the_kvm_group() {
        let sb = sandbox_for(&domain("kvm", ""), Some(&default()))
            .unwrap()
            .unwrap();
        let kvm = lookup_group("kvm").unwrap();
        assert_eq!(sb.user.groups, kvm.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_dac_label_names_the_identity() {
        let d = domain(
            "qemu",
            "<seclabel type='static' model='dac'><label>+1234:+5678</label></seclabel>",
        );
        let sb = sandbox_for(&d, Some(&default())).unwrap().unwrap();
        assert_eq!((sb.user.uid, sb.user.gid), (1234, 5678));
        let d = domain(
            "qemu",
            "<seclabel type='static' model='dac'><label>virtnet-no-such-user:+1</label></seclabel>",
        );
        let e = sandbox_for(&d, Some(&default())).unwrap_err();
        assert!(
            e.to_string().contains("no user 'virtnet-no-such-user'"),
            "{e}"
        );
        assert!(e.is_user_error());
    }

    #[test]
    fn root_is_refused() {
        let mut root = default();
        root.uid = 0;
        let e = sandbox_for(&domain("qemu", ""), Some(&root)).unwrap_err();
        assert!(e.to_string().contains("uid 0"), "{e}");
    }
}
