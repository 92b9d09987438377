//! The operations behind the API, one file each. Every operation on a VM takes the VM's slot
//! lock for its whole duration (so operations on one VM are serialised) and publishes the
//! VM's view when it changes something.

mod define;
mod lifecycle;
mod query;
mod undefine;

use virtnet_conf::ConfError;

use crate::error::DaemonError;

/// [`DaemonError::InvalidXml`] from conf's problems, each as `LINE:COL: message`.
pub(crate) fn invalid_xml(problems: &[ConfError]) -> DaemonError {
    DaemonError::InvalidXml {
        problems: problems.iter().map(ConfError::located).collect(),
    }
}
