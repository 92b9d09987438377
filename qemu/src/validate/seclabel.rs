//! Checking the domain's `<seclabel>`s against [`Rule::SecLabelModel`] and
//! [`Rule::SecLabelDac`]: virtnet honours `type='none'` (QEMU unconfined), DAC labels (the
//! identity QEMU runs as) and `type='dynamic'` DAC (its default identity); it applies no
//! SELinux or AppArmor label and says what it does instead.

use virtnet_conf::domain::{DacId, SecLabel, SecLabelType};
use virtnet_conf::Domain;

use super::{Operation, Refusal, Rule};

/// What virtnet does instead of a MAC (SELinux/AppArmor) label.
const INSTEAD: &str = "virtnet confines QEMU without one: it runs as its own unprivileged user \
     (virtnetd --qemu-user, or <seclabel type='static' model='dac'><label>user:group</label>\
     </seclabel>) with no capabilities and NoNewPrivs, in a private mount namespace with its own \
     /dev, under QEMU's seccomp filter";

/// The refusals of `domain`'s `<seclabel>`s for `op`.
pub(crate) fn check(op: Operation, domain: &Domain) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut dac_seen = false;
    for s in &domain.seclabels {
        let mut refuse = |rule: Rule, message: String, pos| {
            if rule.ops().contains(&op) {
                out.push(Refusal {
                    rule,
                    op,
                    what: describe(s),
                    pos,
                    message,
                });
            }
        };
        if s.label_type == SecLabelType::None {
            continue;
        }
        match s.model.as_deref() {
            Some("dac") => {}
            Some(m) => {
                refuse(
                    Rule::SecLabelModel,
                    format!("virtnet applies no '{m}' label; {INSTEAD}: remove this <seclabel> or use model='dac'"),
                    s.pos,
                );
                continue;
            }
            None => {
                refuse(
                    Rule::SecLabelModel,
                    format!("a <seclabel> without model would be the host's SELinux or AppArmor label, which virtnet does not apply; {INSTEAD}: give model='dac' or remove it"),
                    s.pos,
                );
                continue;
            }
        }
        if dac_seen {
            refuse(
                Rule::SecLabelDac,
                "a second DAC <seclabel>: give one".into(),
                s.pos,
            );
        }
        dac_seen = true;
        if let Some(problem) = dac_problem(s) {
            let pos = s.label.as_ref().map_or(s.pos, |(_, p)| *p);
            refuse(Rule::SecLabelDac, problem, pos);
        }
    }
    out
}

fn describe(s: &SecLabel) -> String {
    match &s.model {
        Some(m) => format!("<seclabel type='{}' model='{m}'>", s.label_type.as_str()),
        None => format!("<seclabel type='{}'>", s.label_type.as_str()),
    }
}

/// What is wrong with a DAC label, if anything.
fn dac_problem(s: &SecLabel) -> Option<String> {
    if s.imagelabel.is_some() || s.baselabel.is_some() {
        return Some(
            "<imagelabel> and <baselabel> have no meaning for DAC in virtnet: remove them".into(),
        );
    }
    if s.relabel == Some(false) {
        return Some(
            "relabel='no' is not supported: virtnet makes the files QEMU opens by name \
             accessible to QEMU's user for the VM's lifetime and restores them; remove relabel"
                .into(),
        );
    }
    match (s.label_type, &s.label) {
        (SecLabelType::Dynamic, Some(_)) => Some(
            "type='dynamic' takes no <label> (virtnetd's --qemu-user is used): use \
             type='static' to name the user"
                .into(),
        ),
        (SecLabelType::Static, None) => Some(
            "type='static' model='dac' needs <label>user:group</label> (names, or +uid:+gid)"
                .into(),
        ),
        (SecLabelType::Static, Some((l, _))) => match s.dac_label() {
            None => Some(format!(
                "the DAC label '{l}' is not user:group: use names (virtnet-qemu:virtnet-qemu) or \
                 numbers (+107:+107)"
            )),
            Some(d) if matches!(&d.user, DacId::Id(0)) || d.user == DacId::Name("root".into()) => {
                Some(format!(
                    "the DAC label '{l}' runs QEMU as root, which keeps every privilege a \
                     compromised QEMU could use: name an unprivileged user, or use \
                     <seclabel type='none'/> to run QEMU unconfined on purpose"
                ))
            }
            Some(_) => None,
        },
        _ => None,
    }
}
