//! A bridge NIC's `<filterref>` through virtnetd (real QEMU under TCG, the test guest, a
//! private network namespace): `domiflist` (the interfaces endpoint) reports the filter's
//! table and counts the guest's forged frames; after `kill -9` of virtnetd the filter of a VM
//! that still runs stays (adopted with it), a table no running VM holds is deleted, and the
//! table of a VM that died meanwhile goes with the rest of its host resources; a filtered NIC
//! attached through the API brings its table, keeps it across a daemon crash and loses it at
//! detach; destroy deletes the rest.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::e2e::{
    alive, destroy_leaving_nothing, post_json, start, state, wait_ping, wait_until, BOOT,
};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_host::nwfilter::{self, FilterSpec, TapFilter};
use virtnet_testkit::spoof::{icmp_echo_requests, ping_from};
use virtnet_testkit::{add_bridge, runtime, with_netns, SerialConsole, TestDomain};

const MAC: &str = "52:54:00:00:41:02";
/// The NIC attached later (learning: no IP parameter).
const MAC2: &str = "52:54:00:00:41:03";

fn nic() -> String {
    format!(
        "<interface type='bridge'><mac address='{MAC}'/><source bridge='br0'/>\
         <model type='virtio'/><filterref filter='clean-traffic'>\
         <parameter name='IP' value='10.0.1.2'/></filterref></interface>"
    )
}

/// The `filter` of the VM's first interface, as `domiflist --json` shows it.
fn filter(d: &TestDaemon) -> Value {
    let (s, v) = d.get("/v1/domains/fvm/interfaces");
    assert_eq!(s, 200, "{v}");
    v["interfaces"][0]["filter"].clone()
}

/// A table as a crash would leave it: loaded, recorded by no VM.
fn plant_stale_table() -> String {
    let f = TapFilter {
        table: nwfilter::table_name("ghost", "vnet99"),
        tap: "vnet99".into(),
        family: nwfilter::FilterFamily::Bridge,
        mac: MAC.parse().unwrap(),
        filter: FilterSpec {
            name: "no-mac-spoofing".into(),
            parts: [virtnet_conf::interface::FilterPart::NoMacSpoofing]
                .into_iter()
                .collect(),
            ips: Vec::new(),
            learning: true,
        },
    };
    nwfilter::load(&f).unwrap();
    f.table
}

#[test]
fn filter_counts_show_in_domiflist_and_tables_follow_crashes() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Binary(virtnet_host::nft::NFT)]) {
        return;
    }
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", Some("10.0.1.1/24"));
        let tmp = virtnet_testkit::traversable_tempdir();
        let serial = tmp.path().join("fvm.sock");
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let dom = TestDomain::new("fvm", &serial)
            .nic(&nic(), MAC, Some("10.0.1.2/24"))
            .ip(MAC2, "10.0.1.3/24");
        let (s, v) = d.define(&dom.xml(guest));
        assert_eq!(s, 201, "{v}");
        let d = Arc::new(d);

        let (pid, table) = runtime().block_on(async {
            let d2 = d.clone();
            let started = tokio::task::spawn_blocking(move || start(&d2, "fvm"));
            let con = SerialConsole::connect(&serial, Duration::from_secs(30));
            let (con, pid) = tokio::join!(con, started);
            let (mut con, pid) = (con.unwrap(), pid.unwrap());
            let up = con.wait_nic_up(MAC, BOOT).await.unwrap();
            let dev = up
                .trim_start_matches("virtnet-guest: nic up ")
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();

            let f = filter(&d);
            assert_eq!(f["filter"], "clean-traffic", "{f}");
            assert_eq!(f["loaded"], true, "{f}");
            assert_eq!(f["dropped"]["ip_spoofing"], 0, "{f}");
            let table = f["table"]
                .as_str()
                .unwrap()
                .trim_start_matches("bridge ")
                .to_string();
            assert!(table.starts_with("virtnet-filter-fvm-"), "{table}");

            let (out, rc) = con.run("ping -c 2 -W 2 10.0.1.1", BOOT).await.unwrap();
            assert_eq!(rc, 0, "{out}");
            let echoes = icmp_echo_requests();
            let rc = ping_from(&mut con, &dev, "10.0.1.99", "10.0.1.1", 3)
                .await
                .unwrap();
            assert_ne!(rc, 0);
            assert_eq!(icmp_echo_requests(), echoes);
            let f = filter(&d);
            assert!(f["dropped"]["ip_spoofing"].as_u64().unwrap() >= 1, "{f}");
            // The same counters in /metrics.
            let (s, text) = common::http(&d.socket, "GET", "/metrics", &[], b"");
            assert_eq!(s, 200, "{text}");
            let line = text
                .lines()
                .find(|l| {
                    l.starts_with("virtnet_nic_filter_dropped_total{")
                        && l.contains("counter=\"ip_spoofing\"")
                })
                .unwrap_or_else(|| panic!("no filter counter in /metrics:\n{text}"));
            let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(
                Some(n as u64),
                f["dropped"]["ip_spoofing"].as_u64(),
                "{line}"
            );
            (pid, table)
        });
        let mut d = Arc::into_inner(d).expect("the start task is done");

        // virtnetd killed, the VM runs on: its filter stays, adopted with it; a table no VM
        // holds (a crash between load and status write) is deleted.
        let ghost = plant_stale_table();
        d.kill9();
        d.restart();
        assert_eq!(state(&d, "fvm"), "running");
        assert!(
            nwfilter::status(&table).unwrap().is_some(),
            "adopted VM lost its filter"
        );
        assert_eq!(filter(&d)["loaded"], true);
        assert!(
            nwfilter::status(&ghost).unwrap().is_none(),
            "stale table kept"
        );
        assert!(d.log().contains("removed a filter table left by a crash"));

        // virtnetd killed, then the VM: the restarted daemon deletes its table.
        d.kill9();
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        wait_until("QEMU to die", Duration::from_secs(15), || !alive(pid));
        d.restart();
        assert_eq!(state(&d, "fvm"), "shut_off");
        assert!(
            nwfilter::status(&table).unwrap().is_none(),
            "dead VM's table kept"
        );
        assert!(nwfilter::tables().unwrap().is_empty());

        // Started again; a filtered NIC attached through the API brings its own table.
        start(&d, "fvm");
        let f = filter(&d);
        assert_eq!(f["loaded"], true, "{f}");
        let table = f["table"]
            .as_str()
            .unwrap()
            .trim_start_matches("bridge ")
            .to_string();
        wait_ping("10.0.1.2", BOOT); // the guest is up (and answers through its filter)
        let nic2 = format!(
            "<interface type='bridge'><mac address='{MAC2}'/><source bridge='br0'/>\
             <model type='virtio'/><filterref filter='clean-traffic'/></interface>"
        );
        let (s, v) = post_json(
            &d,
            "/v1/domains/fvm/devices",
            &json!({"xml": nic2, "live": true}),
        );
        assert_eq!(s, 200, "{v}\n{}", d.log());
        let tap2 = v["interface"]["interface"].as_str().unwrap().to_string();
        let table2 = nwfilter::table_name("fvm", &tap2);
        assert!(
            nwfilter::status(&table2).unwrap().is_some(),
            "no table for {tap2}"
        );
        let (_, l) = d.get("/v1/domains/fvm/interfaces");
        assert_eq!(l["interfaces"][1]["filter"]["loaded"], true, "{l}");
        // Recorded in the live status: kept across a crash, released by the detach.
        d.kill9();
        d.restart();
        assert!(
            nwfilter::status(&table2).unwrap().is_some(),
            "attached table lost"
        );
        let detach = format!(
            "<interface type='bridge'><mac address='{MAC2}'/><source bridge='br0'/></interface>"
        );
        let (s, v) = post_json(
            &d,
            "/v1/domains/fvm/devices/detach",
            &json!({"xml": detach, "live": true, "timeout_secs": 30}),
        );
        assert_eq!(s, 200, "{v}\n{}", d.log());
        wait_until(
            "the detached NIC's table to go",
            Duration::from_secs(30),
            || nwfilter::status(&table2).unwrap().is_none(),
        );
        assert!(
            nwfilter::status(&table).unwrap().is_some(),
            "the other NIC lost its table"
        );

        // Destroyed: the table goes.
        destroy_leaving_nothing(&d, "fvm");
        assert!(
            nwfilter::status(&table).unwrap().is_none(),
            "table left at destroy"
        );
        assert!(nwfilter::tables().unwrap().is_empty());
        assert_eq!(d.call("DELETE", "/v1/domains/fvm", None, "").0, 200);
        d.stop();
    });
}
