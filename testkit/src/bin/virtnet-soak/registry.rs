//! The registry probe: tap names and vhost-user socket paths handed out earlier and held by no
//! VM now must be free in virtnetd's owner registry, so a definition claiming them is
//! accepted (and then removed again). A refusal naming a VM is a leaked claim.

use std::collections::BTreeSet;

use crate::api::Api;
use crate::view::View;
use crate::world::{World, PROBE};

/// At most this many resources per probe definition (PCI slots are limited).
const PER_PROBE: usize = 16;

/// Resources (taps, sockets) some VM holds now: a definition or a running VM's live NICs.
fn held(view: &View) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut taps = BTreeSet::new();
    let mut socks = BTreeSet::new();
    for vm in &view.vms {
        for n in vm.live.iter().chain(&vm.config) {
            if let Some(t) = &n.tap {
                taps.insert(t.clone());
            }
            if n.type_ == "vhostuser" {
                if let Some(s) = &n.source {
                    socks.insert(s.clone());
                }
            }
        }
    }
    (taps, socks)
}

/// Probes every free resource handed out so far (in chunks); returns the violations.
pub fn probe(api: &Api, view: &View, world: &mut World) -> Vec<(String, String)> {
    let (taps, socks) = held(view);
    let free_taps: Vec<String> = world
        .taps
        .iter()
        .filter(|t| !taps.contains(*t))
        .cloned()
        .collect();
    let free_socks: Vec<String> = world
        .sockets
        .iter()
        .filter(|s| !socks.contains(*s))
        .cloned()
        .collect();
    let mut out = Vec::new();
    let mut items: Vec<(bool, String)> = free_taps.into_iter().map(|t| (true, t)).collect();
    items.extend(free_socks.into_iter().map(|s| (false, s)));
    for chunk in items.chunks(PER_PROBE) {
        let t: Vec<String> = chunk.iter().filter(|c| c.0).map(|c| c.1.clone()).collect();
        let s: Vec<String> = chunk.iter().filter(|c| !c.0).map(|c| c.1.clone()).collect();
        let xml = world.probe(&t, &s);
        match api.post_xml("/v1/domains", &xml) {
            Ok(a) if a.ok() => {
                match api.call("DELETE", &format!("/v1/domains/{PROBE}"), None) {
                    Ok(a) if a.ok() => {}
                    Ok(a) => out.push(("the registry probe cannot be undefined".to_string(), a.message())),
                    Err(e) => out.push(("the registry probe cannot be undefined".to_string(), e)),
                }
            }
            Ok(a) if a.status == 409 => out.push((
                "leaked registry claim".to_string(),
                format!("a definition claiming taps {t:?} and sockets {s:?}, held by no VM, was refused: {}", a.message()),
            )),
            Ok(a) => out.push((
                format!("the registry probe was refused ({} {})", a.status, a.kind()),
                format!("{}\n{xml}", a.message()),
            )),
            Err(e) => out.push(("the registry probe got no answer".to_string(), e)),
        }
    }
    out
}

/// Remembers the sockets virtnetd chose for network NICs (for later probes).
pub fn remember(view: &View, world: &mut World) {
    for vm in view.running() {
        for n in &vm.live {
            if n.type_ == "vhostuser" {
                if let Some(s) = &n.source {
                    world.sockets.insert(s.clone());
                }
            }
        }
    }
}
