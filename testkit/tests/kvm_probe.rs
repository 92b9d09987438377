//! The KVM probe answers within its limit and leaves no QEMU behind (on these machines it
//! answers "no": KVM cannot boot a stock kernel here, so the e2e tests use TCG).

use std::time::{Duration, Instant};

#[test]
fn kvm_probe_answers_and_cleans_up() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    let t0 = Instant::now();
    let usable = virtnet_testkit::kvm::kvm_boots_guest(&qemu, guest, Duration::from_secs(8));
    let took = t0.elapsed();
    eprintln!("KVM boots the test guest: {usable} (probe took {took:?})");
    assert!(
        took < Duration::from_secs(20),
        "the probe overran: {took:?}"
    );
    let children = virtnet_testkit::leak::children_in_netns();
    assert!(
        !children.iter().any(|(_, c)| c.contains("qemu")),
        "probe QEMU left running: {children:?}"
    );
}
