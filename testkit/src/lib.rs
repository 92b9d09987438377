//! virtnet-testkit: test utilities shared by virtnet's end-to-end tests (dev-only).
//!
//! - [`netns`]: run a closure in a private network namespace ([`with_netns`]); `ip`, `ping`.
//! - [`guest`]: build the test guest once per process ([`guest()`]), find QEMU, skip rules.
//! - [`serial`]: the guest's serial console protocol ([`SerialConsole`]).
//! - [`kvm`]: whether KVM can really boot a guest here ([`kvm::kvm_usable`]).
//! - [`leak`]: before/after snapshots of links, fds, child processes, files ([`Snapshot`]).
//! - [`domain`]: domain XML for the test guest ([`TestDomain`]).
//! - [`testpmd`]: DPDK's testpmd as a vhost-user-net back end ([`TestPmd`]).
//! - [`vswitch`]: the `virtnet-vswitch` binary, built when missing ([`vswitch_binary`]).
//! - [`runtime`]: a current-thread tokio runtime ready for process spawning.

pub mod domain;
pub mod guest;
pub mod kvm;
pub mod leak;
pub mod netns;
pub mod serial;
pub mod testpmd;
pub mod vswitch;

pub use domain::{bridge_nic, vhostuser_nic, TestDomain};
pub use guest::{e2e_qemu, guest, qemu_binary, repo_root, GuestArtifacts};
pub use leak::Snapshot;
pub use netns::{
    add_bridge, add_veth_pair, ip, ip_status, link_details, links, ping, with_netns,
    with_netns_exclusive,
};
pub use serial::SerialConsole;
pub use testpmd::TestPmd;
pub use vswitch::vswitch_binary;

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
