//! Guest MAC addresses for interfaces defined without one (libvirt generates them when it
//! reads a definition, virDomainNetGenerateMAC).

use super::Domain;
use crate::interface::{MacAddr, QEMU_MAC_PREFIX};

/// How many candidates to draw from the generator before searching for a free address.
const DRAWS: usize = 64;

impl Domain {
    /// Gives every interface without a MAC (or with the all-zero one, which libvirt treats as
    /// none) an address from `gen`, e.g. [`MacAddr::new_random`]. Candidates already used by
    /// another interface of the domain, or multicast or all-zero ones, are skipped; should
    /// `gen` keep returning those, the next free address after its last candidate with
    /// QEMU's prefix 52:54:00 is taken, so this always ends. Returns how many were assigned.
    pub fn assign_missing_macs(&mut self, mut gen: impl FnMut() -> MacAddr) -> usize {
        let mut used: Vec<MacAddr> = self
            .devices
            .interfaces
            .iter()
            .filter_map(|i| i.mac())
            .collect();
        let mut assigned = 0;
        for iface in &mut self.devices.interfaces {
            if iface.mac().is_some() {
                continue;
            }
            let mac = pick_free(&used, &mut gen);
            iface.assign_mac(|| mac);
            used.push(mac);
            assigned += 1;
        }
        assigned
    }
}

fn usable(m: &MacAddr, used: &[MacAddr]) -> bool {
    !m.is_zero() && !m.is_multicast() && !used.contains(m)
}

/// A candidate from `gen` that is not in `used`, else the next free one with QEMU's prefix.
fn pick_free(used: &[MacAddr], gen: &mut impl FnMut() -> MacAddr) -> MacAddr {
    let mut last = MacAddr::with_prefix(QEMU_MAC_PREFIX, [0, 0, 0]);
    for _ in 0..DRAWS {
        last = gen();
        if usable(&last, used) {
            return last;
        }
    }
    let o = last.octets();
    let start = u32::from_be_bytes([0, o[3], o[4], o[5]]);
    (1..=0x100_0000u32)
        .map(|k| {
            let n = (start + k) & 0xff_ffff;
            let b = n.to_be_bytes();
            MacAddr::with_prefix(QEMU_MAC_PREFIX, [b[1], b[2], b[3]])
        })
        .find(|m| usable(m, used))
        .expect("a domain has fewer than 2^24 interfaces")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::domain_with;

    fn domain(devices: &str) -> Domain {
        Domain::parse(&domain_with("pc", devices)).unwrap()
    }

    fn macs(d: &Domain) -> Vec<String> {
        d.devices
            .interfaces
            .iter()
            .map(|i| i.mac().map_or("-".into(), |m| m.to_string()))
            .collect()
    }

    fn counter(start: u8) -> impl FnMut() -> MacAddr {
        let mut n = start;
        move || {
            n += 1;
            MacAddr::with_prefix(QEMU_MAC_PREFIX, [0, 0, n - 1])
        }
    }

    #[test]
    fn missing_and_zero_macs_get_one_others_are_kept() {
        let mut d = domain(
            "<interface type='user'/>\
             <interface type='user'><mac address='52:54:00:00:00:05'/></interface>\
             <interface type='user'><mac address='00:00:00:00:00:00'/></interface>\
             <interface type='user'><mac type='static'/></interface>",
        );
        assert_eq!(d.assign_missing_macs(counter(4)), 3);
        // 05 is taken by the second interface: skipped.
        assert_eq!(
            macs(&d),
            [
                "52:54:00:00:00:04",
                "52:54:00:00:00:05",
                "52:54:00:00:00:06",
                "52:54:00:00:00:07"
            ]
        );
        // Other <mac> attributes stay.
        assert!(d
            .to_xml()
            .contains("<mac address='52:54:00:00:00:07' type='static'/>"));
        // Nothing left to do.
        assert_eq!(d.assign_missing_macs(|| panic!("no MAC is missing")), 0);
    }

    #[test]
    fn a_generator_that_repeats_itself_still_ends() {
        let mut d = domain(
            "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
             <interface type='user'/><interface type='user'/>",
        );
        let taken = MacAddr::with_prefix(QEMU_MAC_PREFIX, [0, 0, 1]);
        let mut calls = 0;
        d.assign_missing_macs(|| {
            calls += 1;
            taken
        });
        assert_eq!(
            macs(&d),
            [
                "52:54:00:00:00:01",
                "52:54:00:00:00:02",
                "52:54:00:00:00:03"
            ]
        );
        assert_eq!(calls, 2 * DRAWS);
        // Multicast and zero candidates are never used either.
        let mut d = domain("<interface type='user'/>");
        let mut bad = [MacAddr([1, 0, 0, 0, 0, 0]), MacAddr::default()]
            .into_iter()
            .cycle();
        d.assign_missing_macs(|| bad.next().unwrap());
        assert_eq!(macs(&d), ["52:54:00:00:00:01"]);
    }

    #[test]
    fn random_macs_are_distinct_and_have_qemu_prefix() {
        let body = "<interface type='user'/>".repeat(16);
        let mut d = domain(&body);
        d.assign_missing_macs(MacAddr::new_random);
        let mut all = macs(&d);
        assert!(all.iter().all(|m| m.starts_with("52:54:00:")), "{all:?}");
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 16);
    }
}
