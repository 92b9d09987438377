//! `update-device --live` of a tap or macvtap NIC's `<bandwidth>`: its limits replaced on the
//! running device (HTB qdisc and nft limit, [`virtnet_host::shaping`]), a removed `<bandwidth>` removing
//! them. The tap's [`HostUndo::Unshape`] is recorded in the VM's status (once), so stop, unplug
//! and recovery after a crash remove what an update added. If the new limits cannot be set or
//! the status cannot be written, the old ones are put back.

use std::sync::Arc;

use virtnet_conf::Interface;
use virtnet_host::ShapeSpec;
use virtnet_vm::plan::bandwidth_limits;
use virtnet_vm::{NicResourceKind, VmError};

use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::live::Live;

fn refused(source: VmError) -> DaemonError {
    if source.is_user_error() {
        DaemonError::VmRefused {
            source: Box::new(source),
        }
    } else {
        DaemonError::PlugFailed {
            source: Box::new(source),
        }
    }
}

/// The tap of `iface` in `l`'s host resources, with the limits `iface` asks for.
fn spec_of(l: &Live, iface: &Interface) -> Result<ShapeSpec> {
    let (inbound, outbound) = bandwidth_limits(iface).map_err(|reason| {
        refused(VmError::UnsupportedInterface {
            nic: iface.describe(),
            reason,
        })
    })?;
    let tap = l
        .status
        .host_resources
        .nics
        .iter()
        .find(|r| r.kind.is_link() && Some(r.name.as_str()) == iface.target_dev());
    let Some((dev, Some(ifindex), kind)) = tap.map(|t| (t.name.clone(), t.ifindex, t.kind)) else {
        return Err(refused(VmError::InvalidContext(format!(
            "{} has no tap recorded for this VM: its bandwidth cannot be changed live",
            iface.describe()
        ))));
    };
    Ok(ShapeSpec {
        dev,
        ifindex,
        inbound,
        outbound,
        macvtap: kind == NicResourceKind::Macvtap,
    })
}

impl Daemon {
    /// Sets NIC `i`'s limits to `new`'s `<bandwidth>` and records `new` in the live XML.
    pub(super) async fn set_bandwidth_live(
        &self,
        name: &str,
        l: &mut Live,
        i: usize,
        new: &Interface,
    ) -> Result<()> {
        let host = self.host()?.clone();
        let old = l.domain.devices.interfaces[i].clone();
        let want = spec_of(l, new)?;
        let before = spec_of(l, &old)?;
        let what = |s: &ShapeSpec| format!("set the bandwidth limits of tap '{}'", s.dev);
        let undo = host.shape(&want).map_err(|source| {
            // The tap is left unshaped: put the old limits back.
            let _ = host.shape(&before);
            refused(VmError::Host {
                what: what(&want),
                source,
            })
        })?;
        let mut status = l.status.clone();
        if !status.host_resources.undo.contains(&undo) {
            status.host_resources.undo.push(undo.clone());
        }
        let mut new_live = (*l.domain).clone();
        new_live.devices.interfaces[i] = new.clone();
        status.live_xml = new_live.to_xml();
        if let Err(e) = self.save_status(&status).await {
            if let Err(back) = host.shape(&before) {
                tracing::error!(vm = %name, error = %back, "cannot put the old bandwidth limits back");
            }
            return Err(e);
        }
        l.domain = Arc::new(new_live);
        l.status = status;
        tracing::info!(vm = %name, tap = %want.dev, "bandwidth limits set (live)");
        Ok(())
    }
}
