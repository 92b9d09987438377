//! virtnet-testkit: test utilities shared by virtnet's end-to-end tests (dev-only).
//!
//! - [`netns`]: run a closure in a private network namespace ([`with_netns`]); `ip`, `ping`.
//! - [`need`]: what a test needs from the machine ([`require`]`(&[`[`Need`]`::Root, ...])`):
//!   a missing facility fails the test under `VIRTNET_E2E=require`, else counts it as ignored.
//! - [`guest`]: build the test guest once per process ([`guest()`]); [`e2e_qemu`].
//! - [`serial`]: the guest's serial console protocol ([`SerialConsole`]).
//! - [`kvm`]: whether KVM can really boot a guest here ([`kvm::kvm_usable`]).
//! - [`leak`]: before/after snapshots of links, fds, child processes, files ([`Snapshot`]).
//! - [`domain`]: domain XML for the test guest ([`TestDomain`]).
//! - [`ovs`]: a private Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath) in a
//!   test's namespace, stopped on drop ([`ovs::Ovs`]).
//! - [`ovn`]: OVN central and several OVS/OVN "hosts" in namespaces over a veth underlay
//!   (Geneve between them), stopped and removed on drop ([`ovn::MultiHost`]).
//! - [`vswitch`]: the `virtnet-vswitch` binary, built when missing ([`vswitch_binary`]), and
//!   a running one as a test VM's vhost-user back end ([`VSwitch`]).
//! - [`spoof`]: a guest forging its MAC, IP and ARP sender; what the host side saw.
//! - [`sandbox`]: confined QEMU in tests: [`sandbox()`], [`assert_qemu_confined`].
//! - [`conformance`]: per-case conformance tables written for `scripts/test` to print.
//! - [`tmp`]: temporary directories a confined QEMU can pass through
//!   ([`traversable_tempdir`]).
//! - [`runtime`]: a current-thread tokio runtime ready for process spawning.

pub mod confined;
pub mod conformance;
pub mod domain;
pub mod guest;
pub mod kvm;
pub mod leak;
pub mod need;
pub mod netns;
pub mod ovn;
pub mod ovs;
pub mod sandbox;
pub mod serial;
pub mod spoof;
pub mod tmp;
pub mod vswitch;

pub use confined::{assert_confined, proc_confinement, ProcConfinement};
pub use domain::{bridge_nic, vhostuser_nic, TestDomain};
pub use guest::{e2e_qemu, guest, repo_root, GuestArtifacts};
pub use leak::Snapshot;
pub use need::{on_path, qemu_path, require, Need};
pub use netns::{
    add_bridge, add_veth_pair, in_another_netns, ip, ip_status, link_details, links, ping,
    with_netns, with_netns_exclusive,
};
pub use sandbox::{assert_qemu_confined, assert_unconfined, sandbox, sandbox_run_dir};
pub use serial::SerialConsole;
pub use tmp::traversable_tempdir;
pub use vswitch::{vswitch_binary, VSwitch, VsPort};

/// A current-thread tokio runtime for a test thread (run it on the namespace thread so the
/// processes it starts are in that namespace). It has already started (and reaped) one child
/// process, so the fds tokio keeps for the rest of the process's life (its SIGCHLD pipe) exist
/// before any [`Snapshot`] is taken.
pub fn runtime() -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    rt.block_on(async {
        let _ = tokio::process::Command::new("true").status().await;
    });
    rt
}
