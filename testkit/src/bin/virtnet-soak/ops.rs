//! The random operations, chosen from what virtnetd reports, sent as a user would (JSON over
//! the API socket). Each returns what it did (for the step log) and how it ended, or `None`
//! when it does not apply to the current state (another one is chosen).

use serde_json::{json, Value};

use crate::api::Api;
use crate::rng::Rng;
use crate::stats::Outcome;
use crate::view::{Nic, View};
use crate::world::{NicKind, World, MAX_NICS, NET, VMS};

/// The operation kinds and their weights.
pub const KINDS: [(&str, u32); 10] = [
    ("attach", 18),
    ("detach", 16),
    ("update-link", 10),
    ("chardev-change", 8),
    ("start", 12),
    ("destroy", 7),
    ("define", 5),
    ("undefine", 3),
    ("net-start", 4),
    ("net-destroy", 3),
];

/// An operation done: its kind, what exactly, how it ended.
pub struct Done {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// The request in words.
    pub what: String,
    /// Its outcome.
    pub outcome: Outcome,
}

/// Picks and runs one operation.
pub fn random(api: &Api, view: &View, world: &mut World, rng: &mut Rng) -> Done {
    let weights: Vec<u32> = KINDS.iter().map(|k| k.1).collect();
    loop {
        let i = rng.weighted(&weights);
        let vm = *rng.pick(&VMS).unwrap();
        let r = match KINDS[i].0 {
            "attach" => attach(api, view, world, rng, vm),
            "detach" => detach(api, view, rng, vm),
            "update-link" => update(api, view, rng, vm),
            "chardev-change" => chardev(api, view, world, rng, vm),
            "start" => start(api, view, rng, vm),
            "destroy" => destroy(api, view, vm),
            "define" => define(api, world, rng, vm),
            "undefine" => undefine(api, view, rng, vm),
            "net-start" => net(api, view, rng, true),
            _ => net(api, view, rng, false),
        };
        if let Some((what, r)) = r {
            return Done {
                kind: KINDS[i].0,
                what,
                outcome: Outcome::of(r),
            };
        }
    }
}

type Req = Option<(String, Result<crate::api::Answer, String>)>;

fn scope(rng: &mut Rng, running: bool, body: &mut Value) -> &'static str {
    if running && rng.chance(30) {
        body["persistent"] = json!(true);
        " --persistent"
    } else {
        ""
    }
}

fn attach(api: &Api, view: &View, world: &mut World, rng: &mut Rng, vm: &str) -> Req {
    let v = view.vm(vm)?;
    let running = v.running();
    let nics = if running { &v.live } else { &v.config };
    if nics.len() >= MAX_NICS || (!running && !v.persistent) {
        return None;
    }
    let kind = if rng.chance(50) {
        NicKind::Bridge
    } else {
        NicKind::Network
    };
    let xml = world.nic(kind, rng.chance(50));
    let mut body = json!({ "xml": xml });
    let s = scope(rng, running, &mut body);
    let what = format!(
        "attach {vm} {kind:?}{s}{}",
        if running { " (live)" } else { " (config)" }
    );
    Some((
        what,
        api.post_json(&format!("/v1/domains/{vm}/devices"), &body),
    ))
}

fn detach(api: &Api, view: &View, rng: &mut Rng, vm: &str) -> Req {
    let v = view.vm(vm)?;
    let running = v.running();
    let nics: Vec<&Nic> = if running {
        v.live.iter().collect()
    } else {
        v.config.iter().collect()
    };
    // Mostly NICs that are not being removed already (a second detach of those is refused).
    let nics: Vec<&Nic> = if rng.chance(85) {
        nics.into_iter().filter(|n| !n.pending).collect()
    } else {
        nics
    };
    let nic = *rng.pick(&nics)?;
    let mut body = json!({ "type": nic.api_type(), "mac": nic.mac, "timeout_secs": 3 });
    let s = scope(rng, running, &mut body);
    let what = format!("detach {vm} {} {}{s}", nic.api_type(), nic.mac);
    Some((
        what,
        api.post_json(&format!("/v1/domains/{vm}/devices/detach"), &body),
    ))
}

/// The `<interface>` element with `mac` in `xml`.
fn interface_xml(xml: &str, mac: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(i) = rest.find("<interface") {
        let end = i + rest[i..].find("</interface>")? + "</interface>".len();
        let el = &rest[i..end];
        if el.to_lowercase().contains(&mac.to_lowercase()) {
            return Some(el.to_string());
        }
        rest = &rest[end..];
    }
    None
}

fn update(api: &Api, view: &View, rng: &mut Rng, vm: &str) -> Req {
    let v = view.vm(vm).filter(|v| v.running())?;
    let nics: Vec<&Nic> = v.live.iter().filter(|n| !n.pending).collect();
    let nic = *rng.pick(&nics)?;
    let live = api.get_ok(&format!("/v1/domains/{vm}/xml")).ok()?;
    let el = interface_xml(live["xml"].as_str()?, &nic.mac)?;
    let up = nic.link != "up";
    // Drop any <link .../> and put the wanted one in.
    let mut el = match (el.find("<link "), el.find("<link\t")) {
        (Some(i), _) | (None, Some(i)) => {
            let j = i + el[i..].find("/>")? + 2;
            format!("{}{}", &el[..i], &el[j..])
        }
        _ => el,
    };
    let state = if up { "up" } else { "down" };
    let at = el.rfind("</interface>")?;
    el.insert_str(at, &format!("<link state='{state}'/>"));
    let what = format!("update-device {vm} {} link {state}", nic.mac);
    Some((
        what,
        api.post_json(
            &format!("/v1/domains/{vm}/devices/update"),
            &json!({ "xml": el }),
        ),
    ))
}

fn chardev(api: &Api, view: &View, world: &World, rng: &mut Rng, vm: &str) -> Req {
    view.vm(vm).filter(|v| v.running())?;
    let body = match rng.below(4) {
        0 => {
            json!({ "type": "file", "path": world.chr.join(format!("{vm}-{}.log", rng.below(3))) })
        }
        1 => json!({ "type": "null" }),
        2 => json!({ "type": "pty" }),
        _ => {
            json!({ "type": "unix", "mode": "bind", "path": world.chr.join(format!("{vm}-{}.sock", rng.below(2))) })
        }
    };
    let what = format!("chardev-change {vm} serial0 {body}");
    Some((
        what,
        api.post_json(&format!("/v1/domains/{vm}/chardevs/serial0"), &body),
    ))
}

fn start(api: &Api, view: &View, rng: &mut Rng, vm: &str) -> Req {
    let v = view.vm(vm)?;
    // Now and then a start of a running VM (refused).
    if v.running() && !rng.chance(10) {
        return None;
    }
    Some((
        format!("start {vm}"),
        api.post(&format!("/v1/domains/{vm}/start")),
    ))
}

fn destroy(api: &Api, view: &View, vm: &str) -> Req {
    view.vm(vm).filter(|v| v.running())?;
    Some((
        format!("destroy {vm}"),
        api.post(&format!("/v1/domains/{vm}/destroy")),
    ))
}

fn define(api: &Api, world: &mut World, rng: &mut Rng, vm: &str) -> Req {
    let n = rng.below(3);
    let nics: Vec<String> = (0..n)
        .map(|_| {
            let kind = if rng.chance(50) {
                NicKind::Bridge
            } else {
                NicKind::Network
            };
            let named = rng.chance(50);
            world.nic(kind, named)
        })
        .collect();
    let xml = world.domain(vm, &nics);
    Some((
        format!("define {vm} with {n} NICs"),
        api.post_xml("/v1/domains", &xml),
    ))
}

fn undefine(api: &Api, view: &View, rng: &mut Rng, vm: &str) -> Req {
    let v = view.vm(vm).filter(|v| v.persistent)?;
    if v.running() && !rng.chance(20) {
        return None;
    }
    Some((
        format!("undefine {vm}"),
        api.call("DELETE", &format!("/v1/domains/{vm}"), None),
    ))
}

fn net(api: &Api, view: &View, rng: &mut Rng, start: bool) -> Req {
    let n = view.net(NET)?;
    // Mostly the change that applies; now and then the other (refused).
    if n.active == start && !rng.chance(10) {
        return None;
    }
    let action = if start { "start" } else { "destroy" };
    Some((
        format!("net-{action} {NET}"),
        api.post(&format!("/v1/networks/{NET}/{action}")),
    ))
}
