//! Read-only queries: list, dominfo, dumpxml, domiflist. They read the published views and
//! never wait for an operation in progress.

use virtnet_conf::interface::{HostdevSource, InterfaceKind};
use virtnet_conf::{Domain, Interface};

use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::events::Stopped;
use crate::model::{
    DomainInfo, DomainList, DomainSummary, FilterReport, InterfaceList, InterfaceRow, StopReason,
    XmlResponse,
};
use crate::vms::VmView;
use virtnet_host::nwfilter;

impl Daemon {
    /// Every VM, sorted by name.
    pub fn list(&self) -> DomainList {
        let domains = self
            .vms
            .all()
            .into_iter()
            .map(|e| e.view())
            .filter(|v| !v.is_empty())
            .map(|v| DomainSummary {
                name: v.name.clone(),
                uuid: v.current().and_then(|d| d.uuid).map(|u| u.to_string()),
                id: v.id,
                state: v.state,
                persistent: v.persistent.is_some(),
                problem: v.problem.clone(),
                stalled: v.stalled(),
            })
            .collect();
        DomainList { domains }
    }

    pub(crate) fn view_of(&self, name: &str) -> Result<std::sync::Arc<VmView>> {
        let view = self.entry(name)?.view();
        if view.is_empty() {
            return Err(DaemonError::NoSuchVm { name: name.into() });
        }
        Ok(view)
    }

    /// `dominfo`.
    pub fn info(&self, name: &str) -> Result<DomainInfo> {
        let v = self.view_of(name)?;
        let d = v.current();
        Ok(DomainInfo {
            name: v.name.clone(),
            uuid: d.and_then(|d| d.uuid).map(|u| u.to_string()),
            id: v.id,
            state: v.state,
            persistent: v.persistent.is_some(),
            memory_kib: d.map(|d| d.memory_kib()),
            vcpus: d.map(|d| d.vcpus()),
            interfaces: d.map_or(0, |d| d.devices.interfaces.len()),
            pid: v.pid,
            qmp_socket: v.qmp_socket.clone(),
            log_path: v.log_path.clone(),
            problem: v.problem.clone(),
            stalled: v.stalled(),
            cgroup: v.cgroup.clone(),
            stop_reason: v.stop_reason.map(|s| match s {
                Stopped::Shutdown => StopReason::Shutdown,
                Stopped::Destroyed => StopReason::Destroyed,
                Stopped::Crashed => StopReason::Crashed,
                Stopped::Failed => StopReason::Failed,
                Stopped::Migrated => StopReason::Migrated,
            }),
        })
    }

    /// `dumpxml`: the live definition while running (unless `inactive`), else the persistent
    /// one.
    pub fn xml(&self, name: &str, inactive: bool) -> Result<XmlResponse> {
        let v = self.view_of(name)?;
        let (domain, is_inactive) = self.pick(&v, inactive)?;
        // Live: NICs on switch networks as defined (type='network'), with their port.
        let xml = if is_inactive {
            domain.to_xml()
        } else {
            self.networks.domain_as_defined(&v.name, domain).to_xml()
        };
        Ok(XmlResponse {
            name: v.name.clone(),
            inactive: is_inactive,
            xml,
        })
    }

    /// `domiflist`: the interfaces of the live definition while running (unless `inactive`),
    /// else of the persistent one.
    pub fn interfaces(&self, name: &str, inactive: bool) -> Result<InterfaceList> {
        let v = self.view_of(name)?;
        let (domain, is_inactive) = self.pick(&v, inactive)?;
        let pending = |i: &Interface| {
            !is_inactive
                && i.alias()
                    .is_some_and(|a| v.pending_removals.iter().any(|p| p == a))
        };
        Ok(InterfaceList {
            name: v.name.clone(),
            inactive: is_inactive,
            interfaces: domain
                .devices
                .interfaces
                .iter()
                .map(|i| {
                    let mut row = interface_row(&self.networks.as_defined(&v.name, i), pending(i));
                    if !is_inactive {
                        // Counters read now (one `nft` run per filtered NIC).
                        row.filter = filter_report(&v.name, i);
                    }
                    row
                })
                .collect(),
        })
    }

    fn pick<'a>(&self, v: &'a VmView, inactive: bool) -> Result<(&'a Domain, bool)> {
        if !inactive {
            if let Some(live) = &v.live {
                return Ok((live, false));
            }
        }
        match &v.persistent {
            Some(p) => Ok((p, true)),
            None => match &v.problem {
                Some(problem) => Err(DaemonError::Broken {
                    name: v.name.clone(),
                    problem: problem.clone(),
                }),
                None => Err(DaemonError::InvalidState {
                    name: v.name.clone(),
                    state: "transient".into(),
                    hint: "it has no persistent definition; leave out --inactive for the live one"
                        .into(),
                }),
            },
        }
    }
}

/// One `domiflist` row; `removal_pending` when a detach waits for the guest.
pub(crate) fn interface_row(i: &Interface, removal_pending: bool) -> InterfaceRow {
    let source = match &i.kind {
        InterfaceKind::Bridge { bridge } => Some(bridge.value.clone()),
        InterfaceKind::Network { network, .. } => Some(network.value.clone()),
        InterfaceKind::Direct { dev, .. } | InterfaceKind::Vdpa { dev } => Some(dev.value.clone()),
        InterfaceKind::VhostUser { .. } => i.vhostuser_socket().map(|(p, _)| p.to_string()),
        InterfaceKind::Hostdev { source, .. } => match source {
            HostdevSource::Pci { addr, .. } => Some(addr.value.to_string()),
            HostdevSource::Usb { .. } => Some("usb".into()),
        },
        InterfaceKind::User => i.source_dev.as_ref().map(|d| d.value.clone()),
        InterfaceKind::Server(a) | InterfaceKind::Client(a) | InterfaceKind::Mcast(a) => {
            Some(format!(
                "{}:{}",
                a.address.as_ref().map_or("", |x| x.value.as_str()),
                a.port.value
            ))
        }
        InterfaceKind::Udp { remote, .. } => Some(format!(
            "{}:{}",
            remote.address.as_ref().map_or("", |x| x.value.as_str()),
            remote.port.value
        )),
        InterfaceKind::Ethernet => None,
    };
    InterfaceRow {
        interface: i.target_dev().map(str::to_string),
        type_: i.type_().to_string(),
        source,
        model: i.model().map(|m| m.to_string()),
        mac: i.mac().map(|m| m.to_string()),
        alias: i.alias().map(str::to_string),
        link: if i.link_up() { "up" } else { "down" }.into(),
        removal_pending,
        filter: None,
    }
}

/// The filter report of a running VM's tap NIC with a `<filterref>` (its table named after
/// the VM and the tap the live definition records); `None` for any other NIC.
fn filter_report(vm: &str, i: &Interface) -> Option<FilterReport> {
    let f = i.filterref.as_ref()?;
    if !matches!(
        i.kind,
        InterfaceKind::Bridge { .. } | InterfaceKind::Ethernet
    ) {
        return None;
    }
    let table = nwfilter::table_name(vm, i.target_dev()?);
    let mut r = FilterReport {
        filter: f.filter.value.clone(),
        table: table.clone(),
        loaded: false,
        dropped: Default::default(),
        learned_ip: None,
        error: None,
    };
    match nwfilter::status_in(&table) {
        Ok(Some((family, st))) => {
            r.table = format!("{} {table}", family.as_str());
            r.loaded = true;
            r.dropped = st.dropped;
            r.learned_ip = st.learned.map(|a| a.to_string());
        }
        Ok(None) => {}
        Err(e) => r.error = Some(e.to_string()),
    }
    Some(r)
}
