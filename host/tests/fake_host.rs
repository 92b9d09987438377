//! Plans against FakeHost: recording, failure injection, rollback. No root needed.

use virtnet_host::{
    BridgePortOpts, FakeCall, FakeHost, HostError, HostNet, MacAddr, MacvtapMode, MacvtapSpec,
    TapSpec, UndoStack, VfSpec,
};

fn mac(last: u8) -> MacAddr {
    MacAddr([0x52, 0x54, 0, 0, 0, last])
}

/// A toy "start VM" plan: tap on br0, macvtap on eth0, one VF. Rolls back on failure.
fn start(host: &dyn HostNet) -> Result<UndoStack, (HostError, Vec<HostError>)> {
    let mut undo = UndoStack::new();
    let run = |undo: &mut UndoStack| -> Result<(), HostError> {
        let tap = host.create_tap(&TapSpec::new(mac(1)))?;
        undo.extend(tap.undo);
        undo.push(host.attach_to_bridge(&tap.name, "br0", &BridgePortOpts::default())?);
        let mvt = host.create_macvtap(&MacvtapSpec::new("eth0", MacvtapMode::Bridge, mac(2)))?;
        undo.extend(mvt.undo);
        let vf = host.prepare_vf(&VfSpec::new("0000:03:10.2".parse().unwrap()))?;
        undo.push(vf.undo);
        Ok(())
    };
    match run(&mut undo) {
        Ok(()) => Ok(undo),
        Err(e) => {
            let errs = undo.rollback(host);
            Err((e, errs))
        }
    }
}

fn fake() -> FakeHost {
    let h = FakeHost::new();
    h.add_link("br0", "bridge");
    h.add_link("eth0", "physical");
    h
}

#[test]
fn full_plan_records_calls_and_rollback_leaves_nothing() {
    let host = fake();
    let mut undo = start(&host).unwrap();
    assert_eq!(host.links(), vec!["br0", "eth0", "lo", "macvtap0", "vnet0"]);
    assert_eq!(
        host.link("vnet0").unwrap().unwrap().master.as_deref(),
        Some("br0")
    );
    assert_eq!(
        host.link("vnet0").unwrap().unwrap().mac,
        Some(mac(1).tap_mac())
    );
    assert_eq!(host.prepared_vfs(), vec!["0000:03:10.2"]);
    let calls = host.calls();
    assert!(matches!(&calls[0], FakeCall::CreateTap(s) if s.guest_mac == mac(1)));
    assert!(
        matches!(&calls[1], FakeCall::AttachToBridge { port, bridge, .. } if port == "vnet0" && bridge == "br0")
    );
    assert!(matches!(&calls[2], FakeCall::CreateMacvtap(s) if s.lower == "eth0"));
    assert!(matches!(&calls[3], FakeCall::PrepareVf(_)));

    assert!(undo.rollback(&host).is_empty());
    assert_eq!(host.links(), vec!["br0", "eth0", "lo"]);
    assert!(host.prepared_vfs().is_empty());
    // Reverse order: VF first, tap last.
    let calls = host.calls();
    assert!(matches!(&calls[6], FakeCall::RestoreVf(_)));
    assert!(matches!(&calls[7], FakeCall::DeleteLink { name, .. } if name == "macvtap0"));
    assert!(matches!(&calls[8], FakeCall::DetachFromBridge { port, .. } if port == "vnet0"));
    assert!(matches!(&calls[9], FakeCall::DeleteLink { name, .. } if name == "vnet0"));
}

#[test]
fn injected_failure_at_each_step_rolls_back_the_earlier_ones() {
    for n in 0..4 {
        let host = fake();
        host.fail_at(n);
        let (e, undo_errors) = start(&host).unwrap_err();
        assert!(
            matches!(e, HostError::Injected { call, .. } if call == n),
            "{e}"
        );
        assert!(undo_errors.is_empty());
        assert_eq!(host.links(), vec!["br0", "eth0", "lo"], "step {n}");
        assert!(host.prepared_vfs().is_empty());
    }
}

#[test]
fn failing_undo_is_reported_and_the_rest_still_runs() {
    let host = fake();
    let mut undo = start(&host).unwrap();
    host.fail_at(host.calls().len() + 1); // the macvtap delete
    let errors = undo.rollback(&host);
    assert_eq!(errors.len(), 1);
    assert_eq!(host.links(), vec!["br0", "eth0", "lo", "macvtap0"]);
}

#[test]
fn fake_errors_match_the_real_ones() {
    let host = fake();
    let e = host
        .attach_to_bridge("eth0", "br9", &BridgePortOpts::default())
        .unwrap_err();
    assert!(matches!(e, HostError::BridgeNotFound { .. }));
    let e = host
        .attach_to_bridge("br0", "eth0", &BridgePortOpts::default())
        .unwrap_err();
    assert!(matches!(e, HostError::NotABridge { .. }));
    let mut s = TapSpec::new(mac(1));
    s.name = Some("eth0".into());
    assert!(matches!(
        host.create_tap(&s),
        Err(HostError::NameInUse { .. })
    ));
    s.name = Some("a/b".into());
    assert!(matches!(
        host.create_tap(&s),
        Err(HostError::InvalidName { .. })
    ));
    assert!(matches!(
        host.open_tap("nope", 1, true),
        Err(HostError::TapNotFound { .. })
    ));
    let e = host
        .create_macvtap(&MacvtapSpec::new("eth9", MacvtapMode::Vepa, mac(3)))
        .unwrap_err();
    assert!(matches!(e, HostError::LowerDeviceNotFound { .. }));
    assert_eq!(host.links(), vec!["br0", "eth0", "lo"]);
}
