//! The nftables ruleset of one tap's filter, as the JSON commands of one batch (a pure
//! function of the [`TapFilter`], no I/O; `super::tests` loads it into the kernel and checks
//! which frames each rule drops and counts).
//!
//! Layout (table [`TapFilter::table`]; in the netdev family the same chains hook the tap's
//! ingress and egress and need no `iifname`/`oifname` guard):
//! - chain `from_guest`, hook prerouting (every frame the tap brings into the bridge, whether
//!   bridged to another port or delivered to the host): `iifname != TAP return`, then
//!   - no-mac-spoofing: `ether saddr != MAC` → counter `mac_spoofing`, drop;
//!   - allow-dhcp: a DHCP request (`0.0.0.0:68 → 255.255.255.255:67`, UDP) is accepted;
//!   - no-ip-spoofing: IPv4 jumps to `ip_source`: UDP from 0.0.0.0 passes (DHCP), a known
//!     address passes, else counter `ip_spoofing`, drop;
//!   - no-arp-spoofing: ARP jumps to `arp_source`: Ethernet/IPv4 ARP only, request or reply
//!     only, sender MAC = MAC, sender address 0.0.0.0 (a probe) or a known address, else
//!     counter `arp_spoofing`, drop;
//!   - with an address check, 802.1Q/802.1ad-tagged frames are dropped (counter `other_l2`):
//!     their IPv4 or ARP would go unchecked;
//!   - no-other-l2-traffic: IPv4, ARP and QEMU's announce-self (RARP 0x8035, and the bogus
//!     0x0835 older QEMUs sent) pass, every other ethertype → counter `other_l2`, drop.
//! - chain `to_guest`, hook postrouting (only with no-other-l2-traffic, as libvirt's
//!   clean-traffic drops in both directions): `oifname != TAP return`, IPv4 (which includes
//!   DHCP replies, libvirt's allow-incoming-ipv4), ARP and RARP pass, else counter
//!   `other_l2_in`, drop.
//! - "Known address": the `<parameter name='IP'>` set, or with learning the set `learned`
//!   (size 1, dynamic): a source address (IPv4 source or ARP sender) not yet known is added,
//!   and the first one added is the guest's address: once the set is full the add does not
//!   match and the frame falls through to the drop (checked with nft 1.0.6 on this kernel).

use serde_json::{json, Value};
use virtnet_conf::interface::FilterPart;

use super::{DropCounter, FilterFamily, TapFilter, LEARNED_SET};

const FROM_GUEST: &str = "from_guest";
const TO_GUEST: &str = "to_guest";
const IP_SOURCE: &str = "ip_source";
const ARP_SOURCE: &str = "arp_source";
/// The bridge family's `filter` priority.
const PRIORITY: i32 = -200;
/// The netdev family's: before anything else on the tap.
const NETDEV_PRIORITY: i32 = -500;

/// The batch that (re)creates the filter's table: an existing table of that name (a leftover)
/// is replaced, atomically with the rest.
pub fn ruleset(f: &TapFilter) -> Vec<Value> {
    let t = Table { f, name: &f.table };
    let family = f.family.as_str();
    let table = json!({"family": family, "name": f.table});
    let mut cmds = vec![
        json!({"add": {"table": table}}),
        json!({"delete": {"table": table}}),
        json!({"add": {"table": table}}),
    ];
    for c in DropCounter::ALL.into_iter().filter(|c| c.used_by(f)) {
        cmds.push(
            json!({"add": {"counter": {"family": family, "table": f.table,
            "name": c.name()}}}),
        );
    }
    let ip_check = f.filter.parts.contains(&FilterPart::NoIpSpoofing);
    let arp_check = f.filter.parts.contains(&FilterPart::NoArpSpoofing);
    // No "flags": ["dynamic"]: nft 1.0.6's JSON parser refuses it ("Invalid set flag"), and
    // nft marks a set that a rule adds to as updated from the packet path by itself (the
    // learning test checks the set fills from traffic).
    if f.filter.learning && (ip_check || arp_check) {
        cmds.push(json!({"add": {"set": {"family": family, "table": f.table,
            "name": LEARNED_SET, "type": "ipv4_addr", "size": 1}}}));
    }
    let mut from = t.base_chain(FROM_GUEST, Direction::FromGuest, &mut cmds);
    if f.filter.parts.contains(&FilterPart::NoMacSpoofing) {
        from.push(drop_if(
            m("!=", payload("ether", "saddr"), json!(f.mac.to_string())),
            DropCounter::MacSpoofing,
        ));
    }
    if f.filter.parts.contains(&FilterPart::AllowDhcp) {
        from.push(vec![
            m("==", payload("ip", "saddr"), json!("0.0.0.0")),
            m("==", payload("ip", "daddr"), json!("255.255.255.255")),
            m("==", payload("udp", "sport"), json!(68)),
            m("==", payload("udp", "dport"), json!(67)),
            json!({"accept": null}),
        ]);
    }
    if ip_check {
        t.chain(IP_SOURCE, &mut cmds);
        let mut rules = vec![vec![
            m("==", payload("ip", "saddr"), json!("0.0.0.0")),
            m("==", meta("l4proto"), json!("udp")),
            json!({"return": null}),
        ]];
        rules.extend(t.known_source(payload("ip", "saddr")));
        rules.push(vec![
            counter(DropCounter::IpSpoofing),
            json!({"drop": null}),
        ]);
        t.rules(IP_SOURCE, rules, &mut cmds);
        from.push(vec![
            m("==", payload("ether", "type"), json!("ip")),
            json!({"jump": {"target": IP_SOURCE}}),
        ]);
    }
    if arp_check {
        t.chain(ARP_SOURCE, &mut cmds);
        let c = DropCounter::ArpSpoofing;
        let mut rules = vec![
            drop_if(m("!=", payload("arp", "htype"), json!(1)), c),
            drop_if(m("!=", payload("arp", "ptype"), json!("ip")), c),
            drop_if(m("!=", payload("arp", "hlen"), json!(6)), c),
            drop_if(m("!=", payload("arp", "plen"), json!(4)), c),
            drop_if(
                m(
                    "!=",
                    payload("arp", "operation"),
                    json!({"set": ["request", "reply"]}),
                ),
                c,
            ),
            drop_if(
                m(
                    "!=",
                    payload("arp", "saddr ether"),
                    json!(f.mac.to_string()),
                ),
                c,
            ),
            vec![
                m("==", payload("arp", "saddr ip"), json!("0.0.0.0")),
                json!({"return": null}),
            ],
        ];
        rules.extend(t.known_source(payload("arp", "saddr ip")));
        rules.push(vec![counter(c), json!({"drop": null})]);
        t.rules(ARP_SOURCE, rules, &mut cmds);
        from.push(vec![
            m("==", payload("ether", "type"), json!("arp")),
            json!({"jump": {"target": ARP_SOURCE}}),
        ]);
    }
    if ip_check || arp_check {
        from.push(drop_if(
            m(
                "==",
                payload("ether", "type"),
                json!({"set": ["8021q", "8021ad"]}),
            ),
            DropCounter::OtherL2,
        ));
    }
    if f.filter.parts.contains(&FilterPart::NoOtherL2Traffic) {
        from.push(vec![
            m(
                "==",
                payload("ether", "type"),
                json!({"set": ["ip", "arp", 0x8035, 0x0835]}),
            ),
            json!({"return": null}),
        ]);
        from.push(vec![counter(DropCounter::OtherL2), json!({"drop": null})]);
        let mut to = t.base_chain(TO_GUEST, Direction::ToGuest, &mut cmds);
        to.push(vec![
            m(
                "==",
                payload("ether", "type"),
                json!({"set": ["ip", "arp", 0x8035]}),
            ),
            json!({"return": null}),
        ]);
        to.push(vec![counter(DropCounter::OtherL2In), json!({"drop": null})]);
        t.rules(TO_GUEST, to, &mut cmds);
    }
    t.rules(FROM_GUEST, from, &mut cmds);
    cmds
}

#[derive(Clone, Copy)]
enum Direction {
    FromGuest,
    ToGuest,
}

struct Table<'a> {
    f: &'a TapFilter,
    name: &'a str,
}

impl Table<'_> {
    fn family(&self) -> &'static str {
        self.f.family.as_str()
    }

    /// Adds a regular chain.
    fn chain(&self, name: &str, cmds: &mut Vec<Value>) {
        let c = json!({"family": self.family(), "table": self.name, "name": name});
        cmds.push(json!({"add": {"chain": c}}));
    }

    /// Adds the base chain of `dir` (policy accept: the filter only drops) and returns its
    /// first rules: in the bridge family the guard that lets other ports' frames go; in the
    /// netdev family none, the chain is bound to the tap itself.
    fn base_chain(&self, name: &str, dir: Direction, cmds: &mut Vec<Value>) -> Vec<Vec<Value>> {
        let tap = &self.f.tap;
        let ret = || json!({"return": null});
        let (hook, rules) = match (self.f.family, dir) {
            (FilterFamily::Bridge, Direction::FromGuest) => (
                json!({"hook": "prerouting", "prio": PRIORITY}),
                vec![vec![m("!=", meta("iifname"), json!(tap)), ret()]],
            ),
            (FilterFamily::Bridge, Direction::ToGuest) => (
                json!({"hook": "postrouting", "prio": PRIORITY}),
                vec![vec![m("!=", meta("oifname"), json!(tap)), ret()]],
            ),
            (FilterFamily::Netdev, Direction::FromGuest) => (
                json!({"hook": "ingress", "dev": tap, "prio": NETDEV_PRIORITY}),
                Vec::new(),
            ),
            (FilterFamily::Netdev, Direction::ToGuest) => (
                json!({"hook": "egress", "dev": tap, "prio": NETDEV_PRIORITY}),
                Vec::new(),
            ),
        };
        let mut c = json!({"family": self.family(), "table": self.name, "name": name,
            "type": "filter", "policy": "accept"});
        if let (Some(c), Some(h)) = (c.as_object_mut(), hook.as_object()) {
            c.extend(h.clone());
        }
        cmds.push(json!({"add": {"chain": c}}));
        rules
    }

    /// Appends `rules` to `chain`.
    fn rules(&self, chain: &str, rules: Vec<Vec<Value>>, cmds: &mut Vec<Value>) {
        for expr in rules {
            let r = json!({"family": self.family(), "table": self.name, "chain": chain,
                "expr": expr});
            cmds.push(json!({"add": {"rule": r}}));
        }
    }

    /// The rules that let a known source address (`field`) return: the fixed addresses, or
    /// the learnt one, learning the first non-zero address seen.
    fn known_source(&self, field: Value) -> Vec<Vec<Value>> {
        if !self.f.filter.learning {
            let ips: Vec<String> = self.f.filter.ips.iter().map(|i| i.to_string()).collect();
            return vec![vec![
                m("==", field, json!({"set": ips})),
                json!({"return": null}),
            ]];
        }
        let set = format!("@{LEARNED_SET}");
        vec![
            vec![m("==", field.clone(), json!(set)), json!({"return": null})],
            vec![
                m("!=", field.clone(), json!("0.0.0.0")),
                json!({"set": {"op": "add", "elem": field, "set": set}}),
                json!({"return": null}),
            ],
        ]
    }
}

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn counter(c: DropCounter) -> Value {
    json!({"counter": c.name()})
}

fn drop_if(cond: Value, c: DropCounter) -> Vec<Value> {
    vec![cond, counter(c), json!({"drop": null})]
}
