//! type='vhostuser' end to end, QEMU the server (`mode='server'`): QEMU starts and waits for
//! the back end; DPDK's testpmd (its vhost PMD, virtnet_testkit::testpmd) connects, maps the
//! guest's shared memfd memory and receives the frames the guest sends. Under TCG the NIC has
//! `vectors=0` (QEMU 7.2 crashes otherwise).

mod common;

use std::time::Duration;

use common::{env, scratch, start_with_console, BOOT, CMD};
use virtnet_host::LinuxHost;
use virtnet_testkit::leak::process_argv;
use virtnet_testkit::{runtime, testpmd, vhostuser_nic, with_netns, Snapshot, TestDomain, TestPmd};
use virtnet_vm::{ExecOptions, StopMode};

#[test]
fn guest_frames_reach_the_vhost_user_back_end() {
    let Some(env) = env() else { return };
    let Some(pmd_bin) = testpmd::binary() else {
        return;
    };
    with_netns(move || {
        let (tmp, serial) = scratch();
        let socket = tmp.path().join("vhost-net.sock");
        let mac = "52:54:00:00:06:02";
        let nic = vhostuser_nic(mac, &socket, "server");
        let mut dom = TestDomain::new("vhostuser1", &serial).nic(&nic, mac, Some("10.0.6.2/24"));
        dom.shared_memory = true;
        let plan = env.plan(&dom.xml(env.guest), &tmp.path().join("run"));
        assert_eq!(plan.sockets_to_remove[0], socket);
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let host = LinuxHost::new().unwrap();
            // QEMU waits for the back end before it brings up QMP; testpmd keeps reconnecting
            // until QEMU listens.
            let pmd = TestPmd::connect(pmd_bin, &socket);
            let opts = ExecOptions {
                start_timeout: Duration::from_secs(60),
                ..ExecOptions::default()
            };
            let started = start_with_console(&plan, &host, &opts, &serial).await;
            let (vm, mut con) = match started {
                Ok(v) => v,
                Err(e) => panic!("{e}\ntestpmd:\n{}", pmd.stop().join("\n")),
            };
            let argv = process_argv(vm.pid()).join(" ");
            assert!(
                argv.contains(r#""qom-type":"memory-backend-memfd","id":"pc.ram","share":true"#),
                "{argv}"
            );
            assert!(
                argv.contains(r#""driver":"virtio-net-pci","vectors":0"#),
                "{argv}"
            );

            let up = con.wait_nic_up(mac, BOOT).await.unwrap();
            assert!(up.ends_with("10.0.6.2/24"), "{up}");
            // Nobody answers: the guest's ARP requests for 10.0.6.1 land in testpmd.
            let (_, rc) = con.run("ping -c 2 -W 1 10.0.6.1", CMD).await.unwrap();
            assert_ne!(rc, 0, "nothing can answer behind this back end");
            let log = std::fs::read_to_string(vm.log_path()).unwrap_or_default();
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            let lines = pmd.stop();
            let arps = testpmd::frames_from(&lines, mac, "0x0806");
            let out = lines.join("\n");
            assert!(
                arps > 0,
                "no ARP frame from {mac} reached the back end\ntestpmd:\n{out}\nQEMU log:\n{log}"
            );
            assert!(
                out.contains("link state change event"),
                "the vhost PMD saw the device start (guest memory mapped):\n{out}"
            );
            assert!(!socket.exists(), "QEMU's listening socket is removed");
            before.assert_no_leaks("stopping a vhost-user VM");
        });
    });
}
