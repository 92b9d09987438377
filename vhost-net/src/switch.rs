//! The public face of the switch: add and remove ports, report counters and the MAC table.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{PortConfig, SwitchConfig};
use crate::core::{PortEntry, PortKind, SwitchCore};
use crate::counters::{CounterSnapshot, DropReason, PortCounters};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::mac_table::{format_mac, MacEntry};
use crate::policy::vlan::NO_VLAN;
use crate::policy::PortRuntime;
use crate::tap::{adopt_tap, open_tap, TapPort};
use crate::vhost_port::VhostPort;

pub use virtnet_vswitch_control::PortInfo;
use virtnet_vswitch_control::PortPolicy;

/// A running switch. Dropping it (or calling [`Switch::shutdown`]) disconnects every
/// port and joins every thread.
pub struct Switch {
    core: Arc<SwitchCore>,
    next_id: AtomicU32,
    /// Serialises add/del so names and sockets stay unique.
    admin: Mutex<()>,
}

impl Switch {
    /// An empty switch.
    pub fn new(config: SwitchConfig) -> Switch {
        let core = Arc::new(SwitchCore::new(config));
        core.releaser.start(Arc::downgrade(&core));
        Switch {
            core,
            next_id: AtomicU32::new(1),
            admin: Mutex::new(()),
        }
    }

    fn check_unique(&self, name: &str, path: &str) -> Result<()> {
        for p in self.core.ports().iter() {
            if p.name == name {
                return Err(Error::PortExists(name.to_string()));
            }
            let used = match &p.kind {
                PortKind::Vhost(v) => v.socket().to_string_lossy() == path,
                PortKind::Tap(t) => t.name == path,
            };
            if used {
                return Err(Error::SocketInUse {
                    path: path.into(),
                    port: p.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Adds a vhost-user port. Client mode returns at once and connects in the
    /// background (retrying until the socket appears); server mode listens first.
    pub fn add_port(&self, config: PortConfig) -> Result<()> {
        config.validate()?;
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.check_unique(&config.name, &config.socket.to_string_lossy())?;
        let filter = match &config.policy.filter {
            Some(f) => Some(Filter::new(&config.name, f)?),
            None => None,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::new(PortCounters::default());
        let name = config.name.clone();
        let policy = PortRuntime::cell(config.policy.clone());
        let port = VhostPort::start(
            self.core.clone(),
            id,
            counters.clone(),
            config,
            policy.clone(),
        )?;
        self.core.insert(Arc::new(PortEntry {
            id,
            name,
            counters,
            kind: PortKind::Vhost(port),
            filter,
            policy,
        }));
        Ok(())
    }

    /// Adds the uplink: tap `tap` (created if it does not exist) as port `name`.
    pub fn add_tap_port(&self, name: &str, tap: &str) -> Result<()> {
        self.insert_tap(name, tap, || open_tap(tap))
    }

    /// Adds the uplink from a tap fd opened by the caller (see [`crate::tap::adopt_tap`]) as
    /// port `name`: the switch needs no privilege for it.
    pub fn add_tap_fd(&self, name: &str, fd: OwnedFd) -> Result<()> {
        let (file, tap) = adopt_tap(fd)?;
        self.insert_tap(name, &tap, || Ok(file))
    }

    fn insert_tap(
        &self,
        name: &str,
        tap: &str,
        open: impl FnOnce() -> Result<std::fs::File>,
    ) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.check_unique(name, tap)?;
        let file = open()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::new(PortCounters::default());
        let port = TapPort::start(self.core.clone(), id, counters.clone(), tap, file)?;
        self.core.insert(Arc::new(PortEntry {
            id,
            name: name.to_string(),
            counters,
            kind: PortKind::Tap(port),
            filter: None,
            policy: PortRuntime::cell(PortPolicy::default()),
        }));
        Ok(())
    }

    /// Removes a port: disconnects it, joins its threads, forgets its MAC addresses and
    /// (server mode) removes its socket file.
    pub fn del_port(&self, name: &str) -> Result<()> {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let id = self
            .core
            .ports()
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.id)
            .ok_or_else(|| Error::NoSuchPort(name.to_string()))?;
        if let Some(entry) = self.core.remove(id) {
            stop_entry(&entry);
        }
        Ok(())
    }

    /// Replaces the policy of port `name` (VLAN, isolation, rate limits) at once: frames
    /// forwarded after this returns follow `policy`. Refused (and nothing changed) like
    /// `add-port` refuses a policy, and when it changes the filter (not replaced in place);
    /// the uplink keeps the default policy.
    pub fn set_policy(&self, name: &str, policy: PortPolicy) -> Result<()> {
        policy.check_enforced(name)?;
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let ports = self.core.ports();
        let p = ports
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::NoSuchPort(name.to_string()))?;
        let current = p.runtime();
        if policy.filter != current.policy.filter {
            return Err(Error::InvalidOption(format!(
                "port '{name}': set-policy does not change a port's filter (its learned address \
                 lives with it); remove the port and add it again with the new filter"
            )));
        }
        if matches!(p.kind, PortKind::Tap(_)) && !policy.is_default() {
            return Err(Error::InvalidOption(format!(
                "port '{name}' is the uplink: it carries the untagged network without limits; set policies on vhost-user ports"
            )));
        }
        p.set_runtime(PortRuntime::new(policy));
        // Frames held for the old inbound rate go with it, counted.
        if let Some(q) = &current.inbound {
            for _ in 0..q.lock().unwrap_or_else(|e| e.into_inner()).len() {
                p.counters.drop_frame(DropReason::RateLimited);
            }
        }
        Ok(())
    }

    /// Every port with its counters, in the order they were added.
    pub fn list_ports(&self) -> Vec<PortInfo> {
        self.core
            .ports()
            .iter()
            .map(|p| match &p.kind {
                PortKind::Vhost(v) => {
                    let f = v.acked_features();
                    PortInfo {
                        name: p.name.clone(),
                        kind: "vhost-user".into(),
                        path: v.socket().to_string_lossy().into_owned(),
                        mode: Some(v.config.mode),
                        queues: v.config.queues,
                        connected: v.connected(),
                        ready_queues: v.ready_queues(),
                        features: v.connected().then(|| format!("{f:#x}")),
                        counters: p.counters.snapshot(),
                        learned_ip: p.filter.as_ref().and_then(Filter::learned_ip),
                        policy: p.runtime().policy.clone(),
                    }
                }
                PortKind::Tap(t) => PortInfo {
                    name: p.name.clone(),
                    kind: "tap".into(),
                    path: t.name.clone(),
                    mode: None,
                    queues: 1,
                    connected: true,
                    ready_queues: 1,
                    features: None,
                    counters: p.counters.snapshot(),
                    learned_ip: None,
                    policy: PortPolicy::default(),
                },
            })
            .collect()
    }

    /// Counters of one port.
    pub fn port_counters(&self, name: &str) -> Result<CounterSnapshot> {
        self.core
            .ports()
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.counters.snapshot())
            .ok_or_else(|| Error::NoSuchPort(name.to_string()))
    }

    /// The learned addresses with the names of their ports.
    pub fn mac_table(&self) -> Vec<MacEntry> {
        let ports = self.core.ports();
        self.core
            .macs
            .entries()
            .into_iter()
            .filter_map(|(vid, mac, id, age)| {
                let port = ports.iter().find(|p| p.id == id)?;
                Some(MacEntry {
                    mac: format_mac(&mac),
                    port: port.name.clone(),
                    vlan: (vid != NO_VLAN).then_some(vid),
                    age_secs: age,
                })
            })
            .collect()
    }

    /// Removes every port (joining all threads).
    pub fn shutdown(&self) {
        let _g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        for p in self.core.ports().iter() {
            if let Some(entry) = self.core.remove(p.id) {
                stop_entry(&entry);
            }
        }
    }
}

fn stop_entry(entry: &PortEntry) {
    match &entry.kind {
        PortKind::Vhost(v) => v.stop(),
        PortKind::Tap(t) => t.stop(),
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shutdown();
        self.core.releaser.stop();
        // Joined here, from outside: the polling threads hold the last references to
        // the ports' back ends, which hold the core.
        self.core.poller.stop();
    }
}
