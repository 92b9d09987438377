//! Whether a configuration can run here, with this QEMU and this virtnet: the one place that
//! decides what can be defined, started, hot-plugged or updated (the role of libvirt's
//! `qemu_validate.c`).
//!
//! `virtnet_conf::validate` keeps the rules the XML alone decides whatever runs it (duplicate
//! MACs, shared sockets, shared memory for vhost-user, value ranges). This layer adds what
//! virtnet and QEMU can and cannot do, per [`Operation`]:
//! - [`validate_domain`]: define (daemon `define`, offline `virtnet validate`/`format`) and
//!   start (the daemon before claiming anything, the VM start plan);
//! - [`validate_interface`]: one interface joining a domain: attach (the daemon before
//!   claiming anything, the hot-plug plan) or define (`attach --config`);
//! - [`validate_update`]: update-device and domif-setlink (what may change, and what needs a
//!   replug live).
//!
//! Each rule is one [`Rule`] with one message ([`Rule::ops`] says for which operations);
//! the plans do not decide again (handed something validation refuses, they return an
//! internal error naming the rule), and the argv builder checks the rules about what it cannot
//! express by asking this module ([`Rule::argv_guard`]), so a caller that skipped validation
//! gets the same message.
//!
//! Define refuses, with the element's line:col, what the XML alone decides; start refuses
//! what a definition may hold but cannot run (a USB hostdev NIC, an unresolved network) and
//! what depends on the host (`/dev/vhost-net`, given the QEMU capabilities); what only the
//! host can tell at start (an unmanaged VF not bound to vfio-pci, a network not running, a
//! resource another VM holds) stays with the host code and the daemon's owner registry.
//!
//! Every `<interface>` setting is enforced or refused, never carried along unapplied: which
//! component applies which setting on which NIC type is accounted for, row by row, in
//! `conf/interface-account.tsv` (shown as `docs/interface-account.md`, checked by
//! `tests/interface_account.rs`); the rules refusing a setting on the types where nothing
//! applies it, and unknown content anywhere inside `<interface>`, are in `settings.rs`.

mod interface;
mod network;
mod rules;
mod seclabel;
mod settings;
mod tuning;
mod update;

#[cfg(test)]
mod tests;

use std::fmt;

use virtnet_conf::xml::Pos;
use virtnet_conf::{Domain, Interface};

use crate::argv::QemuCaps;

pub use network::port_name;
pub use rules::Rule;
pub use tuning::{PERIOD_RANGE, QUOTA_RANGE, SHARES_RANGE};
pub use update::{validate_update, NicUpdate};

/// What is about to happen to the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Store a definition (`define`, `attach --config`, offline `validate`/`format`).
    Define,
    /// Start the VM (QEMU command line, host side of every NIC).
    Start,
    /// Hot-plug into a running VM.
    Attach,
    /// Change a NIC (`update-device`).
    Update,
}

impl Operation {
    /// The operation in words (`define`, `start`, `attach`, `update`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Define => "define",
            Operation::Start => "start",
            Operation::Attach => "attach",
            Operation::Update => "update",
        }
    }
}

/// How a refusal is classed (libvirt's error classes; the message prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The configuration cannot work here (`unsupported configuration`).
    Unsupported,
    /// The configuration is fine, the operation cannot be done on it (`operation not
    /// supported`), e.g. hot-plugging a socket back end.
    Operation,
}

/// One configuration refused, by one [`Rule`], for one [`Operation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {what}: {message}", match rule.class() {
    Class::Unsupported => "unsupported configuration",
    Class::Operation => "operation not supported",
})]
pub struct Refusal {
    /// The rule that refused.
    pub rule: Rule,
    /// The operation refused.
    pub op: Operation,
    /// The element refused: `interface 52:54:00:00:00:01 (type='bridge')`.
    pub what: String,
    /// Where in the XML (the offending element or attribute; unknown for built values).
    pub pos: Pos,
    /// What is wrong and what to do instead (the rule's one message).
    pub message: String,
}

impl Refusal {
    /// `LINE:COL: message` when the position is known, else the message.
    pub fn located(&self) -> String {
        if self.pos.is_known() {
            format!("{}:{}: {self}", self.pos.line, self.pos.col)
        } else {
            self.to_string()
        }
    }
}

/// Every refusal of an operation (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals(pub Vec<Refusal>);

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(Refusal::located).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for Refusals {}

impl Refusals {
    /// Each refusal located (`LINE:COL: message`), as the API lists problems.
    pub fn located(&self) -> Vec<String> {
        self.0.iter().map(Refusal::located).collect()
    }

    /// The first refusal's rule.
    pub fn first_rule(&self) -> Option<Rule> {
        self.0.first().map(|r| r.rule)
    }

    /// Whether every refusal is about the operation only ([`Class::Operation`]).
    pub fn all_operation(&self) -> bool {
        self.0.iter().all(|r| r.rule.class() == Class::Operation)
    }
}

fn result(v: Vec<Refusal>) -> Result<(), Refusals> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(Refusals(v))
    }
}

/// Whether `domain` can be defined or started (`op` is [`Operation::Define`] or
/// [`Operation::Start`]): its `<seclabel>`s, its `<memtune>`/`<cputune>` ([`Rule::TUNING`]),
/// then every interface through [`validate_interface`]'s rules.
///
/// `caps`: the QEMU binary's, when known (define and the offline tools have none; the rules
/// that need them then wait for start).
pub fn validate_domain(
    op: Operation,
    domain: &Domain,
    caps: Option<&QemuCaps>,
) -> Result<(), Refusals> {
    let mut v = seclabel::check(op, domain);
    v.extend(tuning::check(op, domain));
    v.extend(
        domain
            .devices
            .interfaces
            .iter()
            .flat_map(|i| interface::check(op, domain, i, caps)),
    );
    result(v)
}

/// Whether `iface` can join `domain` by `op`: [`Operation::Attach`] (hot-plug into the running
/// VM whose live definition is `domain`) or [`Operation::Define`] (`attach --config`).
pub fn validate_interface(
    op: Operation,
    domain: &Domain,
    iface: &Interface,
    caps: Option<&QemuCaps>,
) -> Result<(), Refusals> {
    result(interface::check(op, domain, iface, caps))
}

/// Whether the `<source>` of `iface`, a `type='network'` NIC of VM `vm`, can be resolved onto a
/// virtnet-vswitch port ([`Rule::NetworkPortgroup`], [`Rule::NetworkForeignPortid`]): what
/// network resolution checks at start and attach (define checks it with every other rule).
pub fn validate_network_source(op: Operation, vm: &str, iface: &Interface) -> Result<(), Refusals> {
    result(network::network_source(op, vm, iface))
}

/// The argv builder's guard: the rules about what it cannot express ([`Rule::argv_guard`]),
/// for a domain or interface that should have been validated for start or attach.
pub(crate) fn argv_guard(iface: &Interface, caps: &QemuCaps) -> Result<(), crate::QemuError> {
    match interface::argv_refusal(iface, caps) {
        None => Ok(()),
        Some(r) => Err(crate::QemuError::Refused(Box::new(r))),
    }
}
