//! The operations behind the API, one file each. Every operation on a VM takes the VM's slot
//! lock for its whole duration (so operations on one VM are serialised) and publishes the
//! VM's view when it changes something.

mod define;
mod lifecycle;
mod qmp;
mod query;
mod setlink;
mod undefine;

use virtnet_conf::ConfError;

use crate::error::DaemonError;

/// [`DaemonError::InvalidXml`] from conf's problems, each as `LINE:COL: message`.
pub(crate) fn invalid_xml(problems: &[ConfError]) -> DaemonError {
    DaemonError::InvalidXml {
        problems: problems.iter().map(ConfError::located).collect(),
    }
}

/// The index of the interface of `domain` that `key` names: its MAC, host device name
/// (`<target dev>`) or alias.
pub(crate) fn find_interface(
    vm: &str,
    domain: &virtnet_conf::Domain,
    key: &str,
) -> Result<usize, DaemonError> {
    let key_mac: Option<virtnet_conf::interface::MacAddr> = key.parse().ok();
    let hits: Vec<usize> = domain
        .devices
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            (key_mac.is_some() && i.mac() == key_mac)
                || i.target_dev() == Some(key)
                || i.alias() == Some(key)
        })
        .map(|(n, _)| n)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(DaemonError::NoSuchInterface {
            vm: vm.into(),
            key: key.into(),
        }),
        many => Err(DaemonError::AmbiguousInterface {
            vm: vm.into(),
            key: key.into(),
            count: many.len(),
        }),
    }
}
