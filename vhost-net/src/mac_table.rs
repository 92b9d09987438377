//! The learning switch's MAC table: (VLAN, MAC address) → port, with ageing and a size cap.
//! Each VLAN learns on its own (the same address may live in two VLANs on two ports).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Identifies a port for the lifetime of the switch (never reused).
pub type PortId = u32;

/// A 48-bit Ethernet address.
pub type Mac = [u8; 6];

/// A VLAN inside the switch (see [`crate::policy::vlan`]).
pub type Vid = u16;

type Key = (Vid, Mac);

struct Entry {
    port: PortId,
    /// Milliseconds since the table's epoch.
    last_seen: AtomicU64,
}

pub use virtnet_vswitch_control::MacEntry;

/// MAC learning table shared by all forwarding threads.
pub struct MacTable {
    epoch: Instant,
    ageing_ms: u64,
    capacity: usize,
    map: RwLock<HashMap<Key, Entry>>,
}

/// Formats a MAC address the usual way.
pub fn format_mac(mac: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

impl MacTable {
    /// A table whose entries expire after `ageing` without traffic and that holds at
    /// most `capacity` addresses (a guest spraying source addresses cannot grow it
    /// further; unknown destinations are then flooded, which is always correct).
    pub fn new(ageing: Duration, capacity: usize) -> Self {
        MacTable {
            epoch: Instant::now(),
            ageing_ms: ageing.as_millis().max(1) as u64,
            capacity,
            map: RwLock::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Records that `mac` was seen as a source in VLAN `vid` on `port`. Group addresses
    /// are ignored.
    pub fn learn(&self, vid: Vid, mac: &Mac, port: PortId) {
        if mac[0] & 1 != 0 || *mac == [0; 6] {
            return;
        }
        let key = (vid, *mac);
        let now = self.now_ms();
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = map.get(&key) {
                if e.port == port {
                    // Coarse: only store when it changed by a second, to keep the line clean.
                    if now.saturating_sub(e.last_seen.load(Relaxed)) >= 1000 {
                        e.last_seen.store(now, Relaxed);
                    }
                    return;
                }
            }
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            let ageing = self.ageing_ms;
            map.retain(|_, e| now.saturating_sub(e.last_seen.load(Relaxed)) < ageing);
            if map.len() >= self.capacity {
                return;
            }
        }
        map.insert(
            key,
            Entry {
                port,
                last_seen: AtomicU64::new(now),
            },
        );
    }

    /// The port `mac` was learned on in VLAN `vid`, if it is known and not aged out.
    pub fn lookup(&self, vid: Vid, mac: &Mac) -> Option<PortId> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let e = map.get(&(vid, *mac))?;
        if self.now_ms().saturating_sub(e.last_seen.load(Relaxed)) >= self.ageing_ms {
            return None;
        }
        Some(e.port)
    }

    /// Forgets everything learned on `port` (the port went away).
    pub fn flush_port(&self, port: PortId) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| e.port != port);
    }

    /// Removes aged-out entries and returns the live ones as (VLAN, mac, port, age in
    /// seconds).
    pub fn entries(&self) -> Vec<(Vid, Mac, PortId, u64)> {
        let now = self.now_ms();
        let ageing = self.ageing_ms;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| now.saturating_sub(e.last_seen.load(Relaxed)) < ageing);
        let mut v: Vec<_> = map
            .iter()
            .map(|((v, m), e)| {
                (
                    *v,
                    *m,
                    e.port,
                    now.saturating_sub(e.last_seen.load(Relaxed)) / 1000,
                )
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_moves_ages_and_caps() {
        let t = MacTable::new(Duration::from_millis(50), 2);
        let a = [2, 0, 0, 0, 0, 1];
        let b = [2, 0, 0, 0, 0, 2];
        let c = [2, 0, 0, 0, 0, 3];
        t.learn(0, &a, 1);
        assert_eq!(t.lookup(0, &a), Some(1));
        t.learn(0, &a, 2);
        assert_eq!(
            t.lookup(0, &a),
            Some(2),
            "a station that moves is relearned"
        );
        t.learn(0, &[0xff; 6], 1);
        assert_eq!(t.lookup(0, &[0xff; 6]), None, "broadcast is never learned");
        t.learn(0, &b, 1);
        t.learn(0, &c, 1);
        assert_eq!(t.lookup(0, &c), None, "table full: not learned");
        t.flush_port(1);
        assert_eq!(t.lookup(0, &b), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.lookup(0, &a), None, "aged out");
        assert!(t.entries().is_empty());
    }

    #[test]
    fn each_vlan_learns_on_its_own() {
        let t = MacTable::new(Duration::from_secs(60), 16);
        let a = [2, 0, 0, 0, 0, 1];
        t.learn(10, &a, 1);
        t.learn(20, &a, 2);
        assert_eq!(t.lookup(10, &a), Some(1));
        assert_eq!(t.lookup(20, &a), Some(2));
        assert_eq!(
            t.lookup(30, &a),
            None,
            "unknown in another VLAN: flooded there"
        );
        assert_eq!(t.entries().len(), 2);
    }
}
