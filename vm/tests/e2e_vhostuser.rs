//! type='vhostuser' end to end, QEMU the server (`mode='server'`): QEMU starts and waits for
//! the back end; virtnet-vswitch (virtnet_testkit::VSwitch, its port in client mode) connects,
//! maps the guest's shared memfd memory and forwards the guest's frames to its uplink tap in
//! the test's namespace, where the host side answers: the guest pings 10.0.6.1 through it.
//! Under TCG the NIC has `vectors=0` (QEMU 7.2 crashes otherwise). The switch runs confined
//! (testkit's VSwitch as root: `virtnet-switch`, no capability, NoNewPrivs, seccomp).

mod common;

use std::time::Duration;

use common::{env, scratch, start_with_console, BOOT, CMD};
use virtnet_host::LinuxHost;
use virtnet_testkit::leak::process_argv;
use virtnet_testkit::{
    ip, runtime, vhostuser_nic, with_netns, Snapshot, TestDomain, VSwitch, VsPort,
};
use virtnet_vm::{ExecOptions, StopMode};

#[test]
fn guest_frames_reach_the_vhost_user_back_end() {
    let Some(env) = env() else { return };
    with_netns(move || {
        let (tmp, serial) = scratch();
        let socket = tmp.path().join("vhost-net.sock");
        let mac = "52:54:00:00:06:02";
        let nic = vhostuser_nic(mac, &socket, "server");
        let mut dom = TestDomain::new("vhostuser1", &serial).nic(&nic, mac, Some("10.0.6.2/24"));
        dom.shared_memory = true;
        let plan = env.plan(&dom.xml(env.guest), &tmp.path().join("run"));
        assert_eq!(plan.sockets_to_remove[0], socket);
        let sw_dir = virtnet_testkit::traversable_tempdir();
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let host = LinuxHost::new().unwrap();
            // QEMU waits for the back end before it brings up QMP; the switch keeps
            // reconnecting until QEMU listens.
            let port = VsPort::new("g", &socket, "client");
            let sw = VSwitch::start(sw_dir.path(), &[port], Some("vsw0"));
            ip("link set vsw0 up");
            ip("addr add 10.0.6.1/24 dev vsw0");
            let opts = ExecOptions {
                start_timeout: Duration::from_secs(60),
                ..ExecOptions::default()
            };
            let (vm, mut con) = start_with_console(&plan, &host, &opts, &serial)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
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
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.6.1", CMD).await.unwrap();
            let log = std::fs::read_to_string(vm.log_path()).unwrap_or_default();
            assert_eq!(
                rc,
                0,
                "the guest pings the host through the switch:\n{out}\nport: {}\nQEMU log:\n{log}",
                sw.port("g")
            );
            assert!(out.contains("bytes from 10.0.6.1"), "{out}");
            // The guest's frames reached the back end: it learned the guest's MAC on its port.
            let macs = sw.mac_table();
            assert!(
                macs.contains(&(mac.to_string(), "g".to_string())),
                "{macs:?}"
            );
            assert!(sw.rx_packets("g") >= 3, "{}", sw.port("g"));
            // It did so confined: its own user, no capability, NoNewPrivs, seccomp.
            virtnet_testkit::assert_confined(sw.pid(), "the switch");
            vm.stop(&host, StopMode::Destroy).await.unwrap();
            sw.stop();
            assert!(!socket.exists(), "QEMU's listening socket is removed");
            before.assert_no_leaks("stopping a vhost-user VM");
        });
    });
}
