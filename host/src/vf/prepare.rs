//! Preparing a VF for assignment and restoring it afterwards.

use crate::error::{HostError, Result};
use crate::netlink::NetlinkTransport;
use crate::undo::HostUndo;

use super::nl::{read_vf, set_vf_mac, set_vf_vlan};
use super::{PciAddr, PreparedVf, SavedVf, Sysfs, VfSpec};

/// Where a VF sits: its PF netdev, its index there, and its current driver.
struct Located {
    pf: String,
    index: u32,
    driver: Option<String>,
}

fn dev(addr: &PciAddr) -> String {
    format!("bus/pci/devices/{addr}")
}

/// Finds the PF netdev (`physfn/net/*`), the VF index (`physfn/virtfnN` -> VF) and driver.
fn locate(sysfs: &Sysfs, addr: &PciAddr) -> Result<Located> {
    let dev = dev(addr);
    if !sysfs.exists(&dev) {
        return Err(HostError::PciDeviceNotFound {
            addr: addr.to_string(),
            path: sysfs.path(&dev),
        });
    }
    let pf_addr = sysfs
        .link_name(&format!("{dev}/physfn"))?
        .ok_or_else(|| HostError::NotAVf {
            addr: addr.to_string(),
        })?;
    let pf = sysfs
        .list(&format!("{dev}/physfn/net"))?
        .into_iter()
        .next()
        .ok_or_else(|| HostError::PfWithoutNetdev {
            addr: addr.to_string(),
            pf: pf_addr.clone(),
        })?;
    let me = addr.to_string();
    let mut index = None;
    for entry in sysfs.list(&format!("{dev}/physfn"))? {
        let Some(n) = entry
            .strip_prefix("virtfn")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if sysfs
            .link_name(&format!("{dev}/physfn/{entry}"))?
            .as_deref()
            == Some(me.as_str())
        {
            index = Some(n);
            break;
        }
    }
    let index = index.ok_or_else(|| HostError::VfIndexNotFound {
        addr: me.clone(),
        pf: pf_addr,
    })?;
    let driver = sysfs.link_name(&format!("{dev}/driver"))?;
    Ok(Located { pf, index, driver })
}

/// Checks the device is now bound to `driver`.
fn expect_driver(sysfs: &Sysfs, addr: &PciAddr, driver: &str) -> Result<()> {
    match sysfs.link_name(&format!("{}/driver", dev(addr)))? {
        Some(d) if d == driver => Ok(()),
        found => Err(HostError::BindFailed {
            addr: addr.to_string(),
            driver: driver.to_string(),
            found: found.unwrap_or_else(|| "none".into()),
        }),
    }
}

/// Moves the device from whatever driver it has to `driver` via driver_override.
fn bind_to(sysfs: &Sysfs, addr: &PciAddr, driver: &str) -> Result<()> {
    let dev = dev(addr);
    if sysfs.link_name(&format!("{dev}/driver"))?.is_some() {
        sysfs.write(&format!("{dev}/driver/unbind"), &addr.to_string())?;
    }
    sysfs.write(&format!("{dev}/driver_override"), driver)?;
    sysfs.write("bus/pci/drivers_probe", &addr.to_string())?;
    expect_driver(sysfs, addr, driver)
}

/// Gives the device back to `original` (or leaves it unbound), clearing driver_override.
fn rebind_original(sysfs: &Sysfs, addr: &PciAddr, original: Option<&str>) -> Result<()> {
    let dev = dev(addr);
    let current = sysfs.link_name(&format!("{dev}/driver"))?;
    if current.is_some() && current.as_deref() != original {
        sysfs.write(&format!("{dev}/driver/unbind"), &addr.to_string())?;
    }
    sysfs.write(&format!("{dev}/driver_override"), "\n")?;
    match original {
        Some(o) if current.as_deref() != Some(o) => {
            sysfs.write(&format!("bus/pci/drivers/{o}/bind"), &addr.to_string())?;
            expect_driver(sysfs, addr, o)
        }
        _ => Ok(()),
    }
}

/// What prepare did so far, for undo.
enum Step {
    Driver,
    Mac,
    Vlan,
}

/// Saves the VF's state, binds it to `spec.driver` (managed) or checks it is bound there
/// already (`managed='no'`: no driver write at all), then sets MAC/VLAN through the PF
/// (while no host driver uses the VF, so the guest's driver sees them at probe time).
/// On failure, the steps done are undone in reverse order.
pub(crate) fn prepare(
    nl: &dyn NetlinkTransport,
    sysfs: &Sysfs,
    spec: &VfSpec,
) -> Result<PreparedVf> {
    let drv_dir = format!("bus/pci/drivers/{}", spec.driver);
    if spec.managed && !sysfs.exists(&drv_dir) {
        return Err(HostError::DriverMissing {
            driver: spec.driver.clone(),
            path: sysfs.path(&drv_dir),
        });
    }
    let loc = locate(sysfs, &spec.addr)?;
    if !spec.managed && loc.driver.as_deref() != Some(spec.driver.as_str()) {
        return Err(HostError::VfNotBound {
            addr: spec.addr.to_string(),
            driver: spec.driver.clone(),
            found: loc.driver.unwrap_or_else(|| "none".into()),
        });
    }
    let (pf_index, cfg) = read_vf(nl, &loc.pf, loc.index)?;
    let saved = SavedVf {
        addr: spec.addr,
        pf: loc.pf.clone(),
        index: loc.index,
        mac: cfg.mac,
        vlan: cfg.vlan,
        qos: cfg.qos,
        driver: loc.driver.clone(),
        managed: spec.managed,
    };
    let mut done = Vec::new();
    let mut run = || -> Result<()> {
        if loc.driver.as_deref() != Some(spec.driver.as_str()) {
            // Recorded before trying: a half-done rebind (e.g. unbound, probe failed) is
            // undone by rebinding the original driver, which copes with any state.
            done.push(Step::Driver);
            bind_to(sysfs, &spec.addr, &spec.driver)?;
        }
        if let Some(mac) = spec.mac {
            set_vf_mac(nl, pf_index, &loc.pf, loc.index, mac)?;
            done.push(Step::Mac);
        }
        if let Some(vlan) = spec.vlan {
            set_vf_vlan(nl, pf_index, &loc.pf, loc.index, vlan, 0)?;
            done.push(Step::Vlan);
        }
        Ok(())
    };
    if let Err(e) = run() {
        let mut undo_errors = Vec::new();
        for step in done.iter().rev() {
            let r = match step {
                Step::Vlan => {
                    set_vf_vlan(nl, pf_index, &saved.pf, saved.index, saved.vlan, saved.qos)
                }
                Step::Mac => set_vf_mac(nl, pf_index, &saved.pf, saved.index, saved.mac),
                Step::Driver => rebind_original(sysfs, &saved.addr, saved.driver.as_deref()),
            };
            undo_errors.extend(r.err());
        }
        return Err(e.with_undo_errors(undo_errors));
    }
    Ok(PreparedVf {
        undo: HostUndo::RestoreVf(saved.clone()),
        saved,
    })
}

/// Restores MAC and VLAN through the PF (while the VF is still off the host), then the
/// original driver (managed VFs only: an unmanaged VF stays on the driver the user gave it).
/// Does every step even if one fails; reports the first failure.
pub(crate) fn restore(nl: &dyn NetlinkTransport, sysfs: &Sysfs, saved: &SavedVf) -> Result<()> {
    let mut errors = Vec::new();
    match read_vf(nl, &saved.pf, saved.index) {
        Ok((pf_index, cur)) => {
            if cur.mac != saved.mac {
                errors.extend(set_vf_mac(nl, pf_index, &saved.pf, saved.index, saved.mac).err());
            }
            if (cur.vlan, cur.qos) != (saved.vlan, saved.qos) {
                errors.extend(
                    set_vf_vlan(nl, pf_index, &saved.pf, saved.index, saved.vlan, saved.qos).err(),
                );
            }
        }
        Err(e) => errors.push(e),
    }
    if saved.managed {
        errors.extend(rebind_original(sysfs, &saved.addr, saved.driver.as_deref()).err());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        let first = errors.remove(0);
        Err(first.with_undo_errors(errors))
    }
}
