//! A fake SR-IOV host: a sysfs tree in a temp dir, a tiny "kernel" reacting to sysfs
//! writes (unbind/bind/drivers_probe/driver_override), and a PF driver behind a netlink
//! recorder that keeps each VF's MAC/VLAN.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkMessage, LinkVfInfo, VfInfo, VfInfoMac, VfInfoVlan,
};
use virtnet_host::netlink::{RecordingNetlink, RouteNetlinkMessage, NLM_F_ACK};
use virtnet_host::vf::WriteHook;
use virtnet_host::{LinuxHost, MacAddr, Sysfs};

pub const PF: &str = "0000:03:00.0";
pub const VF0: &str = "0000:03:10.0";
pub const VF1: &str = "0000:03:10.2";
pub const OTHER: &str = "0000:00:1f.0";
pub const PF_NAME: &str = "enp3s0f0";
pub const PF_INDEX: u32 = 7;

pub fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// Per-VF state the fake PF driver keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VfState {
    pub mac: MacAddr,
    pub vlan: u16,
    pub qos: u32,
}

pub struct Fake {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub host: LinuxHost,
    pub nl: Arc<RecordingNetlink>,
    pub writes: Arc<Mutex<Vec<(String, String)>>>,
    pub probe_binds: Arc<AtomicBool>,
    pub fail_vlan: Arc<AtomicBool>,
    pub reported_vfs: Arc<AtomicUsize>,
    pub vfs: Arc<Mutex<Vec<VfState>>>,
}

pub fn dev_dir(root: &Path, addr: &str) -> PathBuf {
    root.join("devices/pci0000:00").join(addr)
}

pub fn driver_of(root: &Path, addr: &str) -> Option<String> {
    fs::read_link(dev_dir(root, addr).join("driver"))
        .ok()
        .map(|t| t.file_name().unwrap().to_string_lossy().into_owned())
}

pub fn link_driver(root: &Path, addr: &str, driver: &str) {
    symlink(
        format!("../../../bus/pci/drivers/{driver}"),
        dev_dir(root, addr).join("driver"),
    )
    .unwrap();
}

pub fn override_of(root: &Path, addr: &str) -> String {
    fs::read_to_string(dev_dir(root, addr).join("driver_override"))
        .unwrap()
        .trim()
        .to_string()
}

/// Builds the tree: a PF with two VFs (ixgbe/ixgbevf), one non-SR-IOV device, and drivers
/// ixgbe, ixgbevf, vfio-pci, lpc.
pub fn build_tree(root: &Path) {
    for d in ["ixgbe", "ixgbevf", "vfio-pci", "lpc"] {
        let p = root.join("bus/pci/drivers").join(d);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("bind"), "").unwrap();
        fs::write(p.join("unbind"), "").unwrap();
    }
    fs::write(root.join("bus/pci/drivers_probe"), "").unwrap();
    fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    for (addr, driver) in [
        (PF, "ixgbe"),
        (VF0, "ixgbevf"),
        (VF1, "ixgbevf"),
        (OTHER, "lpc"),
    ] {
        let d = dev_dir(root, addr);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("driver_override"), "(null)\n").unwrap();
        link_driver(root, addr, driver);
        symlink(
            format!("../../../devices/pci0000:00/{addr}"),
            root.join("bus/pci/devices").join(addr),
        )
        .unwrap();
    }
    fs::create_dir_all(dev_dir(root, PF).join("net").join(PF_NAME)).unwrap();
    for (i, vf) in [VF0, VF1].iter().enumerate() {
        symlink(
            format!("../{vf}"),
            dev_dir(root, PF).join(format!("virtfn{i}")),
        )
        .unwrap();
        symlink(format!("../{PF}"), dev_dir(root, vf).join("physfn")).unwrap();
    }
}

/// Plays the kernel's part after each sysfs write.
pub fn kernel_hook(
    root: PathBuf,
    writes: Arc<Mutex<Vec<(String, String)>>>,
    probe_binds: Arc<AtomicBool>,
) -> WriteHook {
    Arc::new(move |path: &Path, value: &str| {
        let canon = fs::canonicalize(path)?;
        let rel = canon
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        writes
            .lock()
            .unwrap()
            .push((rel.clone(), value.to_string()));
        let addr = value.trim();
        let enodev = || Err(io::Error::from_raw_os_error(libc::ENODEV));
        if let Some(drv) = rel
            .strip_prefix("bus/pci/drivers/")
            .and_then(|r| r.strip_suffix("/unbind"))
        {
            if driver_of(&root, addr).as_deref() != Some(drv) {
                return enodev();
            }
            fs::remove_file(dev_dir(&root, addr).join("driver"))?;
        } else if let Some(drv) = rel
            .strip_prefix("bus/pci/drivers/")
            .and_then(|r| r.strip_suffix("/bind"))
        {
            let ov = override_of(&root, addr);
            if (ov != "(null)" && ov != drv) || driver_of(&root, addr).is_some() {
                return enodev();
            }
            link_driver(&root, addr, drv);
        } else if rel == "bus/pci/drivers_probe" {
            let ov = override_of(&root, addr);
            if probe_binds.load(Ordering::SeqCst)
                && ov != "(null)"
                && driver_of(&root, addr).is_none()
            {
                link_driver(&root, addr, &ov);
            }
        } else if rel.ends_with("/driver_override") && value.trim().is_empty() {
            fs::write(&canon, "(null)\n")?;
        }
        Ok(())
    })
}

pub fn pf_message(vfs: &[VfState], reported: usize) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = PF_INDEX;
    m.attributes.push(LinkAttribute::IfName(PF_NAME.into()));
    let list = vfs
        .iter()
        .enumerate()
        .take(reported)
        .map(|(i, v)| {
            LinkVfInfo(vec![
                VfInfo::Mac(VfInfoMac::new(i as u32, &v.mac.0)),
                VfInfo::Vlan(VfInfoVlan::new(i as u32, v.vlan as u32, v.qos)),
            ])
        })
        .collect();
    m.attributes.push(LinkAttribute::VfInfoList(list));
    m
}

impl Fake {
    pub fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        build_tree(&root);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let probe_binds = Arc::new(AtomicBool::new(true));
        let fail_vlan = Arc::new(AtomicBool::new(false));
        let reported_vfs = Arc::new(AtomicUsize::new(2));
        let vfs = Arc::new(Mutex::new(vec![
            VfState {
                mac: mac("02:00:00:00:00:10"),
                vlan: 0,
                qos: 0,
            },
            VfState {
                mac: mac("02:00:00:00:00:12"),
                vlan: 7,
                qos: 3,
            },
        ]));
        let (v, fv, rv) = (vfs.clone(), fail_vlan.clone(), reported_vfs.clone());
        let nl = Arc::new(RecordingNetlink::new(Box::new(move |msg| match msg {
            RouteNetlinkMessage::GetLink(m) => {
                let named = m
                    .attributes
                    .contains(&LinkAttribute::IfName(PF_NAME.into()));
                let wants_vfs = m
                    .attributes
                    .contains(&LinkAttribute::ExtMask(vec![LinkExtentMask::Vf]));
                if !named {
                    return Err(io::Error::from_raw_os_error(libc::ENODEV));
                }
                let shown = if wants_vfs {
                    rv.load(Ordering::SeqCst)
                } else {
                    0
                };
                Ok(vec![RouteNetlinkMessage::NewLink(pf_message(
                    &v.lock().unwrap(),
                    shown,
                ))])
            }
            RouteNetlinkMessage::SetLink(m) if m.header.index == PF_INDEX => {
                let mut state = v.lock().unwrap();
                for a in &m.attributes {
                    let LinkAttribute::VfInfoList(list) = a else {
                        continue;
                    };
                    for LinkVfInfo(infos) in list {
                        for i in infos {
                            match i {
                                VfInfo::Mac(x) => {
                                    state[x.vf_id as usize].mac =
                                        MacAddr::from_slice(&x.mac).unwrap()
                                }
                                VfInfo::Vlan(x) => {
                                    if fv.load(Ordering::SeqCst) {
                                        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
                                    }
                                    state[x.vf_id as usize].vlan = x.vlan_id as u16;
                                    state[x.vf_id as usize].qos = x.qos;
                                }
                                other => panic!("unexpected VF attribute {other:?}"),
                            }
                        }
                    }
                }
                Ok(vec![])
            }
            other => panic!("unexpected request {other:?}"),
        })));
        let sysfs = Sysfs::new(&root).with_write_hook(kernel_hook(
            root.clone(),
            writes.clone(),
            probe_binds.clone(),
        ));
        let host = LinuxHost::with_parts(Box::new(nl.clone()), sysfs, root.join("dev"));
        Fake {
            _dir: dir,
            root,
            host,
            nl,
            writes,
            probe_binds,
            fail_vlan,
            reported_vfs,
            vfs,
        }
    }

    pub fn writes(&self) -> Vec<(String, String)> {
        self.writes.lock().unwrap().clone()
    }

    pub fn vf(&self, i: usize) -> VfState {
        self.vfs.lock().unwrap()[i]
    }

    /// The SETLINK requests sent, as (VF attribute) lists.
    pub fn set_requests(&self) -> Vec<VfInfo> {
        self.nl
            .requests()
            .into_iter()
            .filter_map(|r| match r.message {
                RouteNetlinkMessage::SetLink(m) => {
                    assert_eq!(m.header.index, PF_INDEX);
                    assert_eq!(r.flags, NLM_F_ACK);
                    let mut out = Vec::new();
                    for a in m.attributes {
                        if let LinkAttribute::VfInfoList(list) = a {
                            for LinkVfInfo(infos) in list {
                                out.extend(infos);
                            }
                        }
                    }
                    Some(out)
                }
                _ => None,
            })
            .flatten()
            .collect()
    }
}
