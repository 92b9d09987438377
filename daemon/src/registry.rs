//! The owner registry: which VM holds which host resource.
//!
//! One VM at a time may use a vhost-user socket path (QEMU accepts two NICs on one socket and
//! then only one of them works), a tap device name, or a host PCI device (SR-IOV VF). A VM's
//! claims come in two [`Scope`]s: its persistent definition and its running instance; both may
//! hold the same resource (they are the same VM), any other VM is refused, naming the VM and
//! interface that hold it. So a definition cannot take a path another VM is defined with, and
//! a start, attach or update cannot take one another VM uses.
//!
//! MAC addresses are registered too, but softly: two *running* VMs with one MAC are refused
//! (both would break on a shared L2 segment), while a definition that repeats another VM's MAC
//! only gets a warning (libvirt allows it; the VMs may never run together).
//!
//! All changes happen under one lock and are all-or-nothing: [`Registry::claim`] either takes
//! every resource asked for or none, so of many racing claims exactly one wins.
//!
//! Networks hold resources too: a running switch network's uplink tap
//! ([`Registry::claim_network`]). A network's claim and any VM's claim (in either scope) on one
//! resource exclude each other; refusals name the network.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use virtnet_conf::address::PciAddress;
use virtnet_conf::interface::MacAddr;
use virtnet_conf::{Domain, Interface};

use crate::error::{DaemonError, Result};

/// A host resource with (at most) one owner VM.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A vhost-user unix socket path (normalised: see [`normalise_socket_path`]).
    VhostUserSocket(PathBuf),
    /// A host tap/macvtap device name (`<target dev>`).
    Tap(String),
    /// A host PCI device passed through (`<interface type='hostdev'>`, `<hostdev>`).
    HostPci(PciAddress),
    /// A guest MAC address (exclusive among running VMs only).
    Mac(MacAddr),
}

impl Resource {
    /// The kind of resource, in words.
    pub fn what(&self) -> &'static str {
        match self {
            Resource::VhostUserSocket(_) => "vhost-user socket",
            Resource::Tap(_) => "tap device",
            Resource::HostPci(_) => "host PCI device",
            Resource::Mac(_) => "MAC address",
        }
    }

    /// Whether a claim in `scope` conflicts with another VM's claim held in `held`.
    fn exclusive(&self, scope: Scope, held: &BTreeSet<Scope>) -> bool {
        match self {
            Resource::Mac(_) => scope == Scope::Live && held.contains(&Scope::Live),
            _ => true,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::VhostUserSocket(p) => write!(f, "vhost-user socket {}", p.display()),
            Resource::Tap(n) => write!(f, "tap device {n}"),
            Resource::HostPci(a) => write!(f, "host PCI device {a}"),
            Resource::Mac(m) => write!(f, "MAC address {m}"),
        }
    }
}

/// Which side of a VM holds a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The persistent definition.
    Persistent,
    /// The running instance.
    Live,
}

/// One resource wanted by one device of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The resource.
    pub resource: Resource,
    /// The device that wants it, e.g. `interface 52:54:00:12:34:56`.
    pub device: String,
}

#[derive(Debug, Clone)]
struct Holder {
    vm: String,
    device: String,
    scopes: BTreeSet<Scope>,
}

/// A resource another VM holds already (an error for exclusive claims, a warning for MACs in
/// definitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The resource.
    pub resource: Resource,
    /// The VM holding it.
    pub vm: String,
    /// Its device holding it.
    pub device: String,
}

impl Clash {
    /// The refusal for this clash.
    pub fn into_error(self) -> DaemonError {
        DaemonError::InUse {
            what: self.resource.what(),
            resource: self.resource.to_string(),
            holder_vm: self.vm,
            holder_iface: self.device,
        }
    }
}

/// Resources newly taken by one [`Registry::claim_device`], per scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken(pub Vec<(Scope, Resource)>);

/// Who owns what; see the module documentation.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// VM holders.
    vms: HashMap<Resource, Vec<Holder>>,
    /// Network holders (a running network's uplink tap): resource → network.
    networks: HashMap<Resource, String>,
}

/// The refusal for a resource `network` holds.
fn network_clash(resource: &Resource, network: &str) -> DaemonError {
    DaemonError::InUseByNetwork {
        what: resource.what(),
        resource: resource.to_string(),
        network: network.to_string(),
    }
}

/// Refuses the first of `claims` a network holds.
fn check_networks(inner: &Inner, claims: &[Claim]) -> Result<()> {
    for c in claims {
        if let Some(n) = inner.networks.get(&c.resource) {
            return Err(network_clash(&c.resource, n));
        }
    }
    Ok(())
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Replaces every claim of `vm` in `scope` by `claims`, all or nothing. Returns the soft
    /// clashes (MACs shared with other VMs' definitions) as warnings; a hard clash refuses the
    /// whole change, naming the VM and device holding the resource, and changes nothing.
    pub fn replace(&self, vm: &str, scope: Scope, claims: &[Claim]) -> Result<Vec<Clash>> {
        let mut inner = self.lock();
        let warnings = check(&inner, vm, scope, claims)?;
        let map = &mut inner.vms;
        release_in(map, vm, scope, |_| true);
        insert(map, vm, scope, claims);
        Ok(warnings)
    }

    /// Adds `claims` for `vm` in `scope` (keeping its other claims), all or nothing (for
    /// hot-plug: one more NIC). Errors and warnings as for [`Registry::replace`].
    pub fn claim(&self, vm: &str, scope: Scope, claims: &[Claim]) -> Result<Vec<Clash>> {
        let mut inner = self.lock();
        let warnings = check(&inner, vm, scope, claims)?;
        insert(&mut inner.vms, vm, scope, claims);
        Ok(warnings)
    }

    /// Takes `claims` for `vm` in each of `scopes` (hot-plug of one device), all or nothing:
    /// refused when another VM holds one of them, and also when `vm` itself holds an
    /// exclusive one in that scope for another device (two NICs of one VM on one vhost-user
    /// socket). Returns what was newly taken (to give back with [`Registry::release_taken`]
    /// if the hot-plug fails) and the soft clashes as warnings.
    pub fn claim_device(
        &self,
        vm: &str,
        scopes: &[Scope],
        claims: &[Claim],
    ) -> Result<(Taken, Vec<Clash>)> {
        let mut inner = self.lock();
        let warnings = check_device(&inner, vm, scopes, claims)?;
        let map = &mut inner.vms;
        let mut taken = Taken::default();
        for &scope in scopes {
            for c in claims {
                let had = map
                    .get(&c.resource)
                    .into_iter()
                    .flatten()
                    .any(|h| h.vm == vm && h.scopes.contains(&scope));
                if !had {
                    taken.0.push((scope, c.resource.clone()));
                }
            }
            insert(map, vm, scope, claims);
        }
        Ok((taken, warnings))
    }

    /// What [`Registry::claim_device`] would refuse, without taking anything (to refuse a
    /// device before other checks, with the owner named).
    pub fn check_device(&self, vm: &str, scopes: &[Scope], claims: &[Claim]) -> Result<()> {
        check_device(&self.lock(), vm, scopes, claims).map(drop)
    }

    /// Gives back what [`Registry::claim_device`] took.
    pub fn release_taken(&self, vm: &str, taken: &Taken) {
        let map = &mut self.lock().vms;
        for (scope, r) in &taken.0 {
            release_in(map, vm, *scope, |x| x == r);
        }
    }

    /// Releases every claim of `vm` in `scope` (stop, undefine).
    pub fn release(&self, vm: &str, scope: Scope) {
        release_in(&mut self.lock().vms, vm, scope, |_| true);
    }

    /// Releases the claims of `vm` in `scope` on the given resources (detach of one NIC).
    pub fn release_resources(&self, vm: &str, scope: Scope, resources: &[Resource]) {
        release_in(&mut self.lock().vms, vm, scope, |r| resources.contains(r));
    }

    /// Every holder of `resource`: (VM, device, scopes).
    pub fn holders(&self, resource: &Resource) -> Vec<(String, String, Vec<Scope>)> {
        self.lock()
            .vms
            .get(resource)
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.vm.clone(),
                            h.device.clone(),
                            h.scopes.iter().copied().collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The resources `vm` holds in `scope`, sorted.
    pub fn held_by(&self, vm: &str, scope: Scope) -> Vec<Resource> {
        let inner = self.lock();
        let mut out: Vec<Resource> = inner
            .vms
            .iter()
            .filter(|(_, hs)| hs.iter().any(|h| h.vm == vm && h.scopes.contains(&scope)))
            .map(|(r, _)| r.clone())
            .collect();
        out.sort();
        out
    }

    /// Takes `resources` for running network `network`, all or nothing: refused when a VM
    /// (in either scope) or another network holds one of them, naming that holder. A
    /// resource the network holds already stays held.
    pub fn claim_network(&self, network: &str, resources: &[Resource]) -> Result<()> {
        let mut inner = self.lock();
        for r in resources {
            if let Some(n) = inner.networks.get(r).filter(|n| *n != network) {
                return Err(network_clash(r, n));
            }
            if let Some(h) = inner.vms.get(r).and_then(|hs| hs.first()) {
                return Err(Clash {
                    resource: r.clone(),
                    vm: h.vm.clone(),
                    device: h.device.clone(),
                }
                .into_error());
            }
        }
        for r in resources {
            inner.networks.insert(r.clone(), network.to_string());
        }
        Ok(())
    }

    /// Releases every resource of network `network` (it stopped).
    pub fn release_network(&self, network: &str) {
        self.lock().networks.retain(|_, n| n != network);
    }

    /// The network holding `resource`, if one does.
    pub fn network_holder(&self, resource: &Resource) -> Option<String> {
        self.lock().networks.get(resource).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-changed (every change is
        // computed before it is applied), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The hard clash, if any (as an error: a resource a network holds, or one another VM holds
/// exclusively), else the soft ones.
fn check(inner: &Inner, vm: &str, scope: Scope, claims: &[Claim]) -> Result<Vec<Clash>> {
    check_networks(inner, claims)?;
    let mut warnings = Vec::new();
    for c in claims {
        for h in inner.vms.get(&c.resource).into_iter().flatten() {
            if h.vm == vm {
                continue;
            }
            let clash = Clash {
                resource: c.resource.clone(),
                vm: h.vm.clone(),
                device: h.device.clone(),
            };
            if c.resource.exclusive(scope, &h.scopes) {
                return Err(clash.into_error());
            }
            if !warnings.contains(&clash) {
                warnings.push(clash);
            }
        }
    }
    Ok(warnings)
}

/// [`check`] for each scope, plus: `vm` itself holds an exclusive resource in that scope.
fn check_device(inner: &Inner, vm: &str, scopes: &[Scope], claims: &[Claim]) -> Result<Vec<Clash>> {
    let mut warnings = Vec::new();
    for &scope in scopes {
        for c in claims {
            let own = inner
                .vms
                .get(&c.resource)
                .into_iter()
                .flatten()
                .find(|h| h.vm == vm && h.scopes.contains(&scope));
            if let (Some(h), true) = (own, c.resource.exclusive(scope, &BTreeSet::from([scope]))) {
                return Err(Clash {
                    resource: c.resource.clone(),
                    vm: vm.to_string(),
                    device: h.device.clone(),
                }
                .into_error());
            }
        }
        for w in check(inner, vm, scope, claims)? {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    Ok(warnings)
}

fn insert(map: &mut HashMap<Resource, Vec<Holder>>, vm: &str, scope: Scope, claims: &[Claim]) {
    for c in claims {
        let holders = map.entry(c.resource.clone()).or_default();
        match holders.iter_mut().find(|h| h.vm == vm) {
            Some(h) => {
                h.scopes.insert(scope);
                h.device.clone_from(&c.device);
            }
            None => holders.push(Holder {
                vm: vm.to_string(),
                device: c.device.clone(),
                scopes: BTreeSet::from([scope]),
            }),
        }
    }
}

fn release_in(
    map: &mut HashMap<Resource, Vec<Holder>>,
    vm: &str,
    scope: Scope,
    which: impl Fn(&Resource) -> bool,
) {
    map.retain(|r, holders| {
        if which(r) {
            for h in holders.iter_mut().filter(|h| h.vm == vm) {
                h.scopes.remove(&scope);
            }
            holders.retain(|h| !h.scopes.is_empty());
        }
        !holders.is_empty()
    });
}

/// The socket path as the registry compares it: `//`, `/./` and trailing `/` removed, `..`
/// resolved, and the directory resolved through symlinks when it exists, so two spellings of
/// one socket are one resource.
pub fn normalise_socket_path(path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if let (Some(dir), Some(name)) = (out.parent(), out.file_name()) {
        if let Ok(real) = std::fs::canonicalize(dir) {
            return real.join(name);
        }
    }
    out
}

/// What one interface needs to hold exclusively (and its MAC).
pub fn claims_of_interface(iface: &Interface) -> Vec<Claim> {
    let mut out = Vec::new();
    let device = iface.describe();
    let mut push = |resource| {
        out.push(Claim {
            resource,
            device: device.clone(),
        })
    };
    if let Some((path, _)) = iface.vhostuser_socket() {
        push(Resource::VhostUserSocket(normalise_socket_path(path)));
    }
    if let Some(dev) = iface.target_dev() {
        push(Resource::Tap(dev.to_string()));
    }
    if let Some(addr) = iface.hostdev_source() {
        push(Resource::HostPci(addr));
    }
    if let Some(mac) = iface.mac() {
        push(Resource::Mac(mac));
    }
    out
}

/// Everything `domain` needs to hold exclusively (and its MACs), one claim per device.
pub fn claims_of(domain: &Domain) -> Vec<Claim> {
    let mut out: Vec<Claim> = domain
        .devices
        .interfaces
        .iter()
        .flat_map(claims_of_interface)
        .collect();
    for disk in &domain.devices.disks {
        if disk.disk_type == "vhostuser" {
            let path = disk.source.as_ref().and_then(|s| {
                s.path.as_deref().or_else(|| {
                    s.attrs
                        .iter()
                        .find(|a| a.name == "path")
                        .map(|a| a.value.as_str())
                })
            });
            if let Some(path) = path {
                out.push(Claim {
                    resource: Resource::VhostUserSocket(normalise_socket_path(path)),
                    device: format!("disk '{}'", disk.target.dev),
                });
            }
        }
    }
    for hostdev in domain.devices.others_of("hostdev") {
        if hostdev.attr("type") != Some("pci") {
            continue;
        }
        let addr = hostdev
            .element
            .get_child("source")
            .and_then(|s| s.get_child("address"))
            .and_then(|a| PciAddress::take_from(&mut a.clone()).ok());
        if let Some(addr) = addr {
            out.push(Claim {
                resource: Resource::HostPci(addr),
                device: format!("hostdev {addr}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
