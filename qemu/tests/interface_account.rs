//! The account of `<interface>` (`conf/interface-account.tsv`, shown as
//! `docs/interface-account.md`): every element and attribute libvirt's schema allows inside
//! `<interface>`, per NIC type, is enforced, enforced by a named component, refused (with its
//! message, located), or accepted because it has no effect by nature. These tests keep the
//! table and the code from drifting apart:
//! - [`every_row_behaves_as_it_says`] builds one domain per row and type and runs define
//!   (conf + the validation layer, as virtnetd's define does), start (network NICs resolved as
//!   virtnetd resolves them, then the validation layer with the QEMU capabilities) and attach
//!   (the NIC as given checked as define would, then resolved for hot-plug, as virtnetd's
//!   attach does); enforced rows also check their proof: a `-device`/`-netdev` fragment of the
//!   NIC's command line, or a test function that must exist;
//! - [`every_part_of_the_model_has_rows`] walks the model's fields (a new field does not
//!   compile here until it is given rows) and checks that every element applying to all types
//!   is accounted for on every type;
//! - [`doc_is_up_to_date`] regenerates the doc (`VIRTNET_BLESS=1` rewrites it).
//!
//! Columns of the data file: `element` (a path: `bandwidth/inbound@floor`; `*` = everything on
//! that type), `types` (comma-separated NIC types), `status` (`enforced`, `enforced-by:NAME`,
//! `refused`, `accepted`), `ops` (for refused rows: the operations that refuse), `where` (the
//! code that enforces, the component, the validation rule or `conf` for refusals when the XML
//! is read, or why an accepted setting has no effect), `check` (for enforced rows `argv:TEXT`
//! or `test:FILE::FUNCTION`; for refused rows a fragment of the message), `xml` (the sample:
//! `-` none; `@attr='v'` attributes of `<interface>`; `source:<child/>` a child of the type's
//! `<source>`; a `<source>`, `<mac>` or `<model>` replaces the default one).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use virtnet_conf::domain::Uuid;
use virtnet_conf::interface::{
    Backend, Bandwidth, Boot, Coalesce, Driver, FilterParam, FilterRef, GuestName, InterfaceKind,
    InterfaceType, IpAddress, Mac, PortForward, PortRange, Rate, Reconnect, Rom, Route, SocketMode,
    Spanned, Target, Teaming, Tune, VhostUserSocket, VirtualPort, Vlan, VlanTag, GUEST_OFFLOADS,
    HOST_OFFLOADS,
};
use virtnet_conf::network::parse_network;
use virtnet_conf::{load_domain, Domain, Interface};
use virtnet_qemu::argv::{build_nic_argv, NicBackend, QemuCaps};
use virtnet_qemu::validate::{
    port_name, validate_domain, validate_interface, validate_network_source, Operation,
};

const MAC: &str = "<mac address='52:54:00:00:00:01'/>";
/// The Open vSwitch network NICs on network `ovs` join.
const OVS_NETWORK: &str = "<network><name>ovs</name><forward mode='bridge'/><bridge \
    name='br-int'/><virtualport type='openvswitch'/><portgroup name='gold'><vlan><tag \
    id='42'/></vlan></portgroup></network>";
const VM: &str = "t";
const SOCKET_TYPES: &[&str] = &["server", "client", "mcast", "udp"];

/// One row of the data file.
#[derive(Debug, Clone)]
struct Row {
    line: usize,
    element: String,
    types: Vec<String>,
    status: String,
    ops: Vec<String>,
    place: String,
    check: String,
    xml: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rows() -> Vec<Row> {
    let text = fs::read_to_string(root().join("conf/interface-account.tsv")).expect("data file");
    let mut out = Vec::new();
    let mut header = true;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            c.len(),
            7,
            "line {}: 7 tab-separated columns: {line}",
            n + 1
        );
        if header {
            header = false;
            continue;
        }
        let list = |s: &str| -> Vec<String> {
            if s == "-" {
                Vec::new()
            } else {
                s.split(',').map(str::to_string).collect()
            }
        };
        out.push(Row {
            line: n + 1,
            element: c[0].into(),
            types: list(c[1]),
            status: c[2].into(),
            ops: list(c[3]),
            place: c[4].into(),
            check: c[5].into(),
            xml: c[6].into(),
        });
    }
    out
}

/// The `<source>` of each type: its attributes and children.
fn base_source(ty: &str) -> Option<(&'static str, &'static str)> {
    Some(match ty {
        "bridge" => ("bridge='br0'", ""),
        "network" => ("network='sw0'", ""),
        "direct" => ("dev='eth0' mode='bridge'", ""),
        "hostdev" => (
            "",
            "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>",
        ),
        "vhostuser" => ("type='unix' path='/run/v0.sock' mode='client'", ""),
        "server" | "client" => ("address='127.0.0.1' port='5558'", ""),
        "mcast" => ("address='230.0.0.1' port='5558'", ""),
        "udp" => (
            "address='127.0.0.1' port='5558'",
            "<local address='127.0.0.1' port='5559'/>",
        ),
        "vdpa" => ("dev='/dev/vhost-vdpa-0'", ""),
        _ => return None,
    })
}

/// The `<interface>` of type `ty` with the row's sample in it.
fn interface_xml(ty: &str, sample: &str) -> String {
    let sample = if sample == "-" { "" } else { sample };
    let (attrs, sample) = match sample.strip_prefix('@') {
        Some(a) => (format!(" {a}"), ""),
        None => (String::new(), sample),
    };
    let (source_child, sample) = match sample.strip_prefix("source:") {
        Some(c) => (c, ""),
        None => ("", sample),
    };
    let source = if sample.starts_with("<source") {
        String::new()
    } else {
        match (base_source(ty), source_child) {
            (None, "") => String::new(),
            (None, c) => format!("<source>{c}</source>"),
            (Some((a, "")), "") => format!("<source {a}/>"),
            (Some((a, kids)), c) => format!("<source {a}>{kids}{c}</source>"),
        }
    };
    let mac = if sample.contains("<mac ") { "" } else { MAC };
    let model = if sample.contains("<model") || ty == "hostdev" {
        ""
    } else {
        "<model type='virtio'/>"
    };
    format!("<interface type='{ty}'{attrs}>\n{mac}{source}{model}\n{sample}\n</interface>")
}

/// A domain with `iface` (and the persistent half of a failover pair when the sample names it).
fn domain_xml(iface: &str) -> String {
    let partner = if iface.contains("persistent='ua-backup0'") {
        "<interface type='user'><mac address='52:54:00:00:00:02'/><model type='virtio'/>\
         <teaming type='persistent'/><alias name='ua-backup0'/></interface>"
    } else {
        ""
    };
    format!(
        "<domain type='kvm'>\n<name>{VM}</name><memory unit='MiB'>64</memory>\n\
         <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\n\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>\n\
         <devices>\n{iface}\n{partner}</devices>\n</domain>"
    )
}

/// What virtnetd hands start and attach for a `type='network'` NIC: the port checks of the
/// validation layer, then a vhost-user NIC QEMU listens on in the network's socket dir.
/// A NIC on network `ovs` is on an Open vSwitch network (with port group `gold`): the bridge
/// form virtnetd runs it as.
fn resolve(iface: &Interface) -> Result<Interface, Vec<String>> {
    let InterfaceKind::Network { network, .. } = &iface.kind else {
        return Ok(iface.clone());
    };
    if network.value == "ovs" {
        let net = parse_network(OVS_NETWORK).expect("the Open vSwitch network");
        let o = net.ovs().expect("an Open vSwitch network");
        return o.bridge_form(iface, Uuid::new_random).map_err(|e| vec![e]);
    }
    validate_network_source(Operation::Start, VM, iface).map_err(|r| r.located())?;
    let mac = iface.mac().expect("a MAC").to_string();
    let mut r = iface.clone();
    r.kind = InterfaceKind::VhostUser {
        socket: Some(VhostUserSocket {
            path: Spanned::new(format!(
                "/run/virtnet/networks/{}/{}.sock",
                network.value,
                port_name(VM, &mac)
            )),
            mode: SocketMode::Server,
            reconnect: None,
        }),
    };
    Ok(r)
}

/// Define, start and attach of one row on one type: each `Ok` or the located refusals.
struct Outcome {
    define: Result<(), Vec<String>>,
    start: Result<(), Vec<String>>,
    attach: Result<(), Vec<String>>,
    argv: Option<String>,
}

fn run(ty: &str, sample: &str) -> Outcome {
    let xml = domain_xml(&interface_xml(ty, sample));
    let caps = QemuCaps::latest();
    let domain = match load_domain(&xml) {
        Ok(d) => d,
        Err(e) => {
            let e: Vec<String> = e.iter().map(|e| e.located()).collect();
            return Outcome {
                define: Err(e.clone()),
                start: Err(e.clone()),
                attach: Err(e),
                argv: None,
            };
        }
    };
    let define = validate_domain(Operation::Define, &domain, None).map_err(|r| r.located());
    let mut resolved: Domain = domain.clone();
    let mut resolve_err = None;
    for i in resolved.devices.interfaces.iter_mut() {
        match resolve(i) {
            Ok(r) => *i = r,
            Err(e) => resolve_err = Some(e),
        }
    }
    let start = match &resolve_err {
        Some(e) => Err(e.clone()),
        None => validate_domain(Operation::Start, &resolved, Some(&caps)).map_err(|r| r.located()),
    };
    let mut live = domain.clone();
    live.devices.interfaces.clear();
    let given = &domain.devices.interfaces[0];
    let mut attach_errs = Vec::new();
    if let Err(r) = validate_interface(Operation::Define, &live, given, None) {
        attach_errs.extend(r.located());
    }
    match resolve(given) {
        Err(e) => attach_errs.extend(e),
        Ok(r) => {
            if let Err(r) = validate_interface(Operation::Attach, &live, &r, Some(&caps)) {
                attach_errs.extend(r.located());
            }
        }
    }
    let attach = if attach_errs.is_empty() {
        Ok(())
    } else {
        Err(attach_errs)
    };
    let argv = NicBackend::placeholders(&resolved.devices.interfaces, &caps)
        .ok()
        .and_then(|b| build_nic_argv(&resolved, &caps, &b).ok())
        .map(|a| a.join(" "));
    Outcome {
        define,
        start,
        attach,
        argv,
    }
}

/// Whether a refusal text is located (`LINE:COL: ...`).
fn located(s: &str) -> bool {
    let mut it = s.splitn(3, ':');
    let (Some(l), Some(c)) = (it.next(), it.next()) else {
        return false;
    };
    l.parse::<u32>().is_ok_and(|n| n > 0) && c.parse::<u32>().is_ok_and(|n| n > 0)
}

/// Whether `got` is what `row` says for `op` on `ty`; the problem otherwise.
fn judge(row: &Row, ty: &str, op: &str, got: &Result<(), Vec<String>>) -> Option<String> {
    let refused_here = row.status == "refused" && row.ops.iter().any(|o| o == op);
    // A row refused by conf is refused when the XML is read: start and attach never see it.
    let conf_row = row.status == "refused" && row.place == "conf";
    let socket_attach = op == "attach" && SOCKET_TYPES.contains(&ty);
    match got {
        Ok(()) if refused_here || conf_row => {
            Some(format!("accepted, want refused ({})", row.check))
        }
        Ok(()) if socket_attach => Some("socket back ends must not be hot-plugged".into()),
        Ok(()) => None,
        Err(e) => {
            if refused_here || conf_row {
                match e.iter().find(|m| m.contains(&row.check)) {
                    None => Some(format!("refused without '{}': {e:?}", row.check)),
                    Some(m) if op == "define" && !located(m) => {
                        Some(format!("refused without line:col: {m}"))
                    }
                    Some(_) => None,
                }
            } else if socket_attach
                && e.iter()
                    .all(|m| m.contains("cannot be plugged into a running VM"))
            {
                None
            } else {
                Some(format!("refused, want accepted: {e:?}"))
            }
        }
    }
}

fn function_exists(proof: &str) -> bool {
    let Some((file, func)) = proof.split_once("::") else {
        return false;
    };
    fs::read_to_string(root().join(file)).is_ok_and(|t| t.contains(&format!("fn {func}(")))
}

#[test]
fn every_row_behaves_as_it_says() {
    let statuses = ["enforced", "refused", "accepted"];
    let mut wrong = Vec::new();
    for row in rows() {
        let at = format!("line {} ({} on", row.line, row.element);
        let by = row.status.strip_prefix("enforced-by:");
        if !statuses.contains(&row.status.as_str()) && by.is_none_or(str::is_empty) {
            wrong.push(format!("{at}): unknown status {}", row.status));
            continue;
        }
        if row.status == "refused" && (row.ops.is_empty() || row.check.is_empty()) {
            wrong.push(format!(
                "{at}): a refused row names its operations and message"
            ));
        }
        if let Some(p) = row.check.strip_prefix("test:") {
            if !function_exists(p) {
                wrong.push(format!("{at}): proof {p} does not exist"));
            }
        } else if row.status == "enforced" && !row.check.starts_with("argv:") {
            wrong.push(format!("{at}): an enforced row needs argv: or test: proof"));
        }
        // The code named as where it is enforced exists.
        for word in row.place.split([' ', ',', ':']) {
            if word.contains("/src") && !root().join(word).exists() {
                wrong.push(format!("{at}): {word} does not exist"));
            }
        }
        // The sample shows the element the row is about.
        let name = row
            .element
            .split(['/', '@'])
            .next_back()
            .filter(|_| !row.element.contains('@'))
            .unwrap_or_else(|| row.element.split('@').nth(1).unwrap_or_default());
        let name = name.split('=').next().unwrap_or_default();
        let shows = row.xml.contains(&format!("<{name}")) || row.xml.contains(&format!("{name}="));
        let generic = matches!(
            row.element.as_str(),
            "*" | "interface@type" | "(unknown content)"
        ) || row.element.starts_with("source")
            || row.element.starts_with("mac@address");
        if !generic && !shows {
            wrong.push(format!(
                "{at}): the sample {} does not show {name}",
                row.xml
            ));
        }
        for ty in &row.types {
            let o = run(ty, &row.xml);
            for (op, got) in [
                ("define", &o.define),
                ("start", &o.start),
                ("attach", &o.attach),
            ] {
                if let Some(p) = judge(&row, ty, op, got) {
                    wrong.push(format!("{at} type='{ty}') {op}: {p}"));
                }
            }
            if let Some(want) = row.check.strip_prefix("argv:") {
                match &o.argv {
                    Some(a) if a.contains(want) => {}
                    a => wrong.push(format!(
                        "{at} type='{ty}'): the command line lacks {want}: {a:?}"
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} problems:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The elements each field of [`Interface`] holds, as the data file names them. The
/// destructuring has no `..`: a new field does not compile until it is listed here, and
/// listing it needs rows.
fn field_elements(i: &Interface) -> Vec<&'static str> {
    let Interface {
        pos: _,
        address: _,
        kind: _,
        trust_guest_rx_filters: _,
        mac: _,
        source_dev: _,
        host_ip: _,
        source_extra: _,
        source_pos: _,
        vlan: _,
        virtualport: _,
        bandwidth: _,
        port_isolated: _,
        guest_ip: _,
        port_forwards: _,
        script: _,
        downscript: _,
        backend_domain: _,
        target: _,
        guest: _,
        model: _,
        driver: _,
        backend: _,
        filterref: _,
        tune: _,
        teaming: _,
        link: _,
        mtu: _,
        coalesce: _,
        boot: _,
        alias: _,
        rom: _,
        acpi_index: _,
        extra: _,
    } = i;
    vec![
        "address",
        "interface@type",
        "interface@trustGuestRxFilters",
        "mac",
        "source@dev",
        "source/ip",
        "source/route",
        "(unknown content)",
        "vlan",
        "virtualport",
        "bandwidth",
        "port@isolated",
        "ip",
        "route",
        "portForward",
        "script",
        "downscript",
        "backenddomain",
        "target",
        "guest",
        "model",
        "driver",
        "backend",
        "filterref",
        "tune/sndbuf",
        "teaming",
        "link",
        "mtu",
        "coalesce",
        "boot",
        "alias",
        "rom",
        "acpi",
    ]
}

#[test]
fn every_part_of_the_model_has_rows() {
    let rows = rows();
    let all: BTreeSet<String> = InterfaceType::ALL.iter().map(|t| t.to_string()).collect();
    let sample = Interface::new(InterfaceKind::User);
    let mut missing = Vec::new();
    for el in field_elements(&sample) {
        let covering: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.element == el
                    || r.element.starts_with(&format!("{el}/"))
                    || r.element.starts_with(&format!("{el}@"))
            })
            .collect();
        if covering.is_empty() {
            missing.push(format!("{el}: no row"));
            continue;
        }
        // Elements outside <source> apply to every type: each type needs a row (vdpa's `*`
        // row covers it).
        if el.starts_with("source") || el == "interface@managed" {
            continue;
        }
        let mut types: BTreeSet<String> = covering
            .iter()
            .flat_map(|r| r.types.iter().cloned())
            .collect();
        for r in rows.iter().filter(|r| r.element == "*") {
            types.extend(r.types.iter().cloned());
        }
        let lacking: Vec<&String> = all.difference(&types).collect();
        if !lacking.is_empty() {
            missing.push(format!("{el}: no row for {lacking:?}"));
        }
    }
    // Every type has its source accounted for.
    for t in &all {
        let has = rows.iter().any(|r| {
            (r.element.starts_with("source") || r.element == "*" || r.element == "interface@type")
                && r.types.contains(t)
        });
        if !has {
            missing.push(format!("type {t}: no row"));
        }
    }
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

/// What the model's parts read, as `(element, attribute or child)`: every pair must appear
/// in some row's sample (the element written with it), so the rows exercise everything virtnet
/// reads. Each part is destructured without `..`: a new field does not compile until it is
/// listed here, and listing it needs a sample.
fn part_attributes() -> Vec<(&'static str, &'static str)> {
    // Compile-time exhaustiveness only: never called; one argument per part destructured.
    #[allow(dead_code, clippy::too_many_arguments)]
    fn exhaustive(
        mac: &Mac,
        vlan: &Vlan,
        tag: &VlanTag,
        vp: &VirtualPort,
        bw: &Bandwidth,
        rate: &Rate,
        target: &Target,
        guest: &GuestName,
        backend: &Backend,
        teaming: &Teaming,
        boot: &Boot,
        rom: &Rom,
        tune: &Tune,
        coalesce: &Coalesce,
        driver: &Driver,
        filter: &FilterRef,
        param: &FilterParam,
        ip: &IpAddress,
        route: &Route,
        fwd: &PortForward,
        range: &PortRange,
        reconnect: &Reconnect,
    ) {
        let Mac {
            address: _,
            kind: _,
            check: _,
            pos: _,
            extra: _,
        } = mac;
        let Vlan {
            trunk: _,
            tags: _,
            pos: _,
            extra: _,
        } = vlan;
        let VlanTag {
            id: _,
            native_mode: _,
            extra: _,
        } = tag;
        let VirtualPort {
            kind: _,
            managerid: _,
            typeid: _,
            typeidversion: _,
            instanceid: _,
            interfaceid: _,
            profileid: _,
            pos: _,
            extra: _,
        } = vp;
        let Bandwidth {
            inbound: _,
            outbound: _,
            pos: _,
            extra: _,
        } = bw;
        let Rate {
            average: _,
            peak: _,
            floor: _,
            burst: _,
            pos: _,
            extra: _,
        } = rate;
        let Target {
            dev: _,
            managed: _,
            pos: _,
            extra: _,
        } = target;
        let GuestName {
            dev: _,
            actual: _,
            extra: _,
        } = guest;
        let Backend {
            kind: _,
            tap: _,
            vhost: _,
            log_file: _,
            hostname: _,
            fqdn: _,
            pos: _,
            extra: _,
        } = backend;
        let Teaming {
            kind: _,
            persistent: _,
            pos: _,
            extra: _,
        } = teaming;
        let Boot {
            order: _,
            loadparm: _,
            extra: _,
        } = boot;
        let Rom {
            enabled: _,
            bar: _,
            file: _,
            extra: _,
        } = rom;
        let Tune {
            sndbuf: _,
            extra: _,
        } = tune;
        let Coalesce {
            rx_frames_max: _,
            pos: _,
            extra: _,
        } = coalesce;
        let Driver {
            name: _,
            txmode: _,
            ioeventfd: _,
            event_idx: _,
            queues: _,
            rx_queue_size: _,
            tx_queue_size: _,
            rss: _,
            rss_hash_report: _,
            iommu: _,
            ats: _,
            packed: _,
            page_per_vq: _,
            host: _,
            guest: _,
            pos: _,
            extra: _,
        } = driver;
        let FilterRef {
            filter: _,
            params: _,
            pos: _,
            extra: _,
        } = filter;
        let FilterParam {
            name: _,
            value: _,
            pos: _,
            extra: _,
        } = param;
        let IpAddress {
            address: _,
            prefix: _,
            peer: _,
            extra: _,
        } = ip;
        let Route {
            family: _,
            address: _,
            netmask: _,
            prefix: _,
            gateway: _,
            metric: _,
            extra: _,
        } = route;
        let PortForward {
            proto: _,
            address: _,
            dev: _,
            ranges: _,
            pos: _,
            extra: _,
        } = fwd;
        let PortRange {
            start: _,
            end: _,
            to: _,
            exclude: _,
            extra: _,
        } = range;
        let Reconnect {
            enabled: _,
            timeout: _,
            extra: _,
        } = reconnect;
    }
    let mut v = vec![
        ("mac", "address"),
        ("mac", "type"),
        ("mac", "check"),
        ("vlan", "trunk"),
        ("vlan", "<tag"),
        ("tag", "id"),
        ("tag", "nativeMode"),
        ("virtualport", "type"),
        ("parameters", "managerid"),
        ("parameters", "typeid"),
        ("parameters", "typeidversion"),
        ("parameters", "instanceid"),
        ("parameters", "interfaceid"),
        ("parameters", "profileid"),
        ("bandwidth", "<inbound"),
        ("bandwidth", "<outbound"),
        ("inbound", "average"),
        ("inbound", "peak"),
        ("inbound", "floor"),
        ("inbound", "burst"),
        ("target", "dev"),
        ("target", "managed"),
        ("guest", "dev"),
        ("guest", "actual"),
        ("backend", "type"),
        ("backend", "tap"),
        ("backend", "vhost"),
        ("backend", "logFile"),
        ("backend", "hostname"),
        ("backend", "fqdn"),
        ("teaming", "type"),
        ("teaming", "persistent"),
        ("boot", "order"),
        ("boot", "loadparm"),
        ("rom", "enabled"),
        ("rom", "bar"),
        ("rom", "file"),
        ("tune", "<sndbuf"),
        ("coalesce", "<frames max"),
        ("filterref", "filter"),
        ("parameter", "name"),
        ("parameter", "value"),
        ("ip", "address"),
        ("ip", "prefix"),
        ("ip", "peer"),
        ("route", "family"),
        ("route", "address"),
        ("route", "netmask"),
        ("route", "prefix"),
        ("route", "gateway"),
        ("route", "metric"),
        ("portForward", "proto"),
        ("portForward", "address"),
        ("portForward", "dev"),
        ("range", "start"),
        ("range", "end"),
        ("range", "to"),
        ("range", "exclude"),
        ("reconnect", "enabled"),
        ("reconnect", "timeout"),
        ("link", "state"),
        ("mtu", "size"),
        ("alias", "name"),
        ("acpi", "index"),
        ("model", "type"),
        ("script", "path"),
        ("downscript", "path"),
        ("backenddomain", "name"),
        ("port", "isolated"),
        ("driver", "name"),
        ("driver", "<host"),
        ("driver", "<guest"),
    ];
    for a in [
        "txmode",
        "ioeventfd",
        "event_idx",
        "queues",
        "rx_queue_size",
        "tx_queue_size",
        "rss",
        "rss_hash_report",
        "iommu",
        "ats",
        "packed",
        "page_per_vq",
    ] {
        v.push(("driver", a));
    }
    for a in HOST_OFFLOADS {
        v.push(("host", a));
    }
    for a in GUEST_OFFLOADS {
        v.push(("guest", a));
    }
    v
}

/// Every attribute and child the model reads is shown in some row's sample.
#[test]
fn every_attribute_the_model_reads_has_a_sample() {
    let rows = rows();
    let mut missing = Vec::new();
    for (el, attr) in part_attributes() {
        let needle = if attr.starts_with('<') {
            attr.to_string()
        } else {
            format!(" {attr}=")
        };
        let shown = rows.iter().any(|r| {
            r.xml.split(&format!("<{el}")).skip(1).any(|rest| {
                // Within this element's own start tag, or (for a child) anywhere after it.
                let tag = rest.split('>').next().unwrap_or_default();
                if attr.starts_with('<') {
                    rest.contains(&needle)
                } else {
                    tag.contains(&needle)
                }
            })
        });
        if !shown {
            missing.push(format!("<{el}> {attr}"));
        }
    }
    assert!(missing.is_empty(), "no sample shows: {missing:?}");
}

/// For a refused row, the whole refusal its first type gets at the first operation that
/// refuses (located, as the API and `virtnet validate` show it).
fn message(r: &Row) -> Option<String> {
    if r.status != "refused" {
        return None;
    }
    let o = run(r.types.first()?, &r.xml);
    let got = match r.ops.first().map(String::as_str) {
        Some("start") => o.start,
        Some("attach") => o.attach,
        _ => o.define,
    };
    got.err()?.into_iter().find(|m| m.contains(&r.check))
}

/// The doc, generated from the data file.
fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "# What virtnet does with every `<interface>` setting\n\n\
         Generated from `conf/interface-account.tsv` by `qemu/tests/interface_account.rs` \
         (`VIRTNET_BLESS=1 cargo test -p virtnet-qemu --test interface_account` rewrites it); \
         the same test builds one domain per row and type and checks that define, start and \
         attach do what the row says.\n\n\
         - **enforced**: applied, with the code that does it and its proof (a fragment of \
         QEMU's command line the test checks, or a test).\n\
         - **enforced by NAME**: applied by the named component (NAME's tests prove it with \
         traffic); validation accepts it on these types.\n\
         - **refused**: refused at the operations listed, with the message the first type \
         listed gets (at define with the line:col of the element in the test's domain). \
         `conf` refusals come when the XML is read.\n\
         - **accepted**: has no effect by nature (why is given).\n\n\
         | element | types | status | where / rule | message or proof | sample |\n\
         |---|---|---|---|---|---|\n",
    );
    let cell = |t: &str| t.replace('|', "\\|");
    // Messages and samples hold tags: code spans keep Markdown from taking them for HTML.
    let code = |t: &str| {
        if t == "-" || t.is_empty() {
            String::new()
        } else {
            format!("`{}`", cell(t))
        }
    };
    for r in rows {
        let status = match r.status.strip_prefix("enforced-by:") {
            Some(by) => format!("enforced by {by}"),
            None if r.status == "refused" => format!("refused at {}", r.ops.join(", ")),
            None => r.status.clone(),
        };
        let place = if r.place.contains('<') {
            code(&r.place)
        } else {
            cell(&r.place)
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            code(&r.element),
            r.types.join(", "),
            status,
            place,
            code(&message(r).unwrap_or_else(|| r.check.clone())),
            code(&r.xml)
        ));
    }
    s
}

#[test]
fn doc_is_up_to_date() {
    let path = root().join("docs/interface-account.md");
    let want = render(&rows());
    if std::env::var_os("VIRTNET_BLESS").is_some() {
        fs::write(&path, &want).expect("write the doc");
        return;
    }
    let got = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "docs/interface-account.md is out of date: run VIRTNET_BLESS=1 cargo test -p \
         virtnet-qemu --test interface_account"
    );
}
