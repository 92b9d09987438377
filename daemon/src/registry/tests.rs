use std::sync::{Arc, Barrier};

use super::*;

fn sock(p: &str) -> Claim {
    Claim {
        resource: Resource::VhostUserSocket(PathBuf::from(p)),
        device: format!("interface for {p}"),
    }
}

fn mac(m: &str, dev: &str) -> Claim {
    Claim {
        resource: Resource::Mac(m.parse().unwrap()),
        device: dev.into(),
    }
}

#[test]
fn second_vm_refused_naming_holder() {
    let r = Registry::new();
    r.replace("a", Scope::Persistent, &[sock("/run/vu.sock")])
        .unwrap();
    let err = r
        .replace("b", Scope::Persistent, &[sock("/run/vu.sock")])
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), "resource_in_use");
    assert!(msg.contains("VM 'a'"), "{msg}");
    assert!(msg.contains("interface for /run/vu.sock"), "{msg}");
    assert!(msg.contains("vhost-user socket /run/vu.sock"), "{msg}");
    // Live scope of another VM is refused as well.
    assert!(r.claim("b", Scope::Live, &[sock("/run/vu.sock")]).is_err());
    assert!(r.held_by("b", Scope::Persistent).is_empty());
}

#[test]
fn one_vm_holds_in_both_scopes_and_release_frees() {
    let r = Registry::new();
    r.replace("a", Scope::Persistent, &[sock("/s")]).unwrap();
    r.claim("a", Scope::Live, &[sock("/s")]).unwrap();
    r.release("a", Scope::Live);
    assert!(
        r.claim("b", Scope::Live, &[sock("/s")]).is_err(),
        "persistent claim remains"
    );
    r.release("a", Scope::Persistent);
    r.claim("b", Scope::Live, &[sock("/s")]).unwrap();
    assert_eq!(r.held_by("b", Scope::Live).len(), 1);
    assert!(r.held_by("a", Scope::Persistent).is_empty());
}

#[test]
fn replace_is_all_or_nothing() {
    let r = Registry::new();
    r.replace("a", Scope::Persistent, &[sock("/a1")]).unwrap();
    r.replace("b", Scope::Persistent, &[sock("/b1")]).unwrap();
    // a wants /a2 and /b1: refused, and a keeps exactly /a1.
    assert!(r
        .replace("a", Scope::Persistent, &[sock("/a2"), sock("/b1")])
        .is_err());
    assert_eq!(
        r.held_by("a", Scope::Persistent),
        vec![Resource::VhostUserSocket("/a1".into())]
    );
    assert!(r
        .holders(&Resource::VhostUserSocket("/a2".into()))
        .is_empty());
    // A successful replace drops what is no longer wanted.
    r.replace("a", Scope::Persistent, &[sock("/a2")]).unwrap();
    assert!(r
        .holders(&Resource::VhostUserSocket("/a1".into()))
        .is_empty());
}

#[test]
fn release_resources_frees_only_those() {
    let r = Registry::new();
    r.claim("a", Scope::Live, &[sock("/x"), sock("/y")])
        .unwrap();
    r.release_resources("a", Scope::Live, &[Resource::VhostUserSocket("/x".into())]);
    assert_eq!(
        r.held_by("a", Scope::Live),
        vec![Resource::VhostUserSocket("/y".into())]
    );
}

#[test]
fn macs_warn_in_definitions_and_refuse_when_running() {
    let r = Registry::new();
    let m = "52:54:00:00:00:01";
    assert!(r
        .replace("a", Scope::Persistent, &[mac(m, "nic a")])
        .unwrap()
        .is_empty());
    let warn = r
        .replace("b", Scope::Persistent, &[mac(m, "nic b")])
        .unwrap();
    assert_eq!(warn.len(), 1);
    assert_eq!(warn[0].vm, "a");
    r.claim("a", Scope::Live, &[mac(m, "nic a")]).unwrap();
    let err = r.claim("b", Scope::Live, &[mac(m, "nic b")]).unwrap_err();
    assert!(
        err.to_string().contains("MAC address 52:54:00:00:00:01"),
        "{err}"
    );
    r.release("a", Scope::Live);
    r.claim("b", Scope::Live, &[mac(m, "nic b")]).unwrap();
}

#[test]
fn race_of_20_claims_has_one_winner() {
    for round in 0..20 {
        let r = Arc::new(Registry::new());
        let barrier = Arc::new(Barrier::new(20));
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (r, barrier) = (r.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    r.claim(&format!("vm{i}"), Scope::Live, &[sock("/race.sock")])
                        .is_ok()
                })
            })
            .collect();
        let wins = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&w| w)
            .count();
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(
            r.holders(&Resource::VhostUserSocket("/race.sock".into()))
                .len(),
            1
        );
    }
}

#[test]
fn socket_paths_normalised() {
    assert_eq!(
        normalise_socket_path("/nonexistent//a/./b/../vu.sock"),
        PathBuf::from("/nonexistent/a/vu.sock")
    );
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
    let via_link = normalise_socket_path(d.path().join("link/s.sock").to_str().unwrap());
    let direct = normalise_socket_path(real.join("s.sock").to_str().unwrap());
    assert_eq!(via_link, direct);
}

#[test]
fn claims_of_a_domain() {
    let xml = r#"<domain type='qemu'>
  <name>c</name>
  <memory>65536</memory>
  <os><type>hvm</type></os>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <devices>
    <interface type='vhostuser'>
      <mac address='52:54:00:00:00:0a'/>
      <source type='unix' path='/run/vu0.sock' mode='client'/>
      <model type='virtio'/>
    </interface>
    <interface type='ethernet'>
      <mac address='52:54:00:00:00:0b'/>
      <target dev='tap-c'/>
    </interface>
  </devices>
</domain>"#;
    let d = virtnet_conf::load_domain(xml).unwrap();
    let claims = claims_of(&d);
    let rs: Vec<_> = claims.iter().map(|c| c.resource.to_string()).collect();
    assert_eq!(
        rs,
        vec![
            "vhost-user socket /run/vu0.sock",
            "MAC address 52:54:00:00:00:0a",
            "tap device tap-c",
            "MAC address 52:54:00:00:00:0b"
        ]
    );
    assert_eq!(claims[0].device, "interface 52:54:00:00:00:0a");
}

#[test]
fn claim_device_refuses_own_second_user_and_gives_back_only_what_it_took() {
    let r = Registry::new();
    r.replace("a", Scope::Live, &[sock("/s1")]).unwrap();
    r.replace("a", Scope::Persistent, &[sock("/s2")]).unwrap();
    // A second NIC of the same running VM on /s1: refused, naming VM 'a' itself.
    let e = r
        .claim_device("a", &[Scope::Live], &[sock("/s1")])
        .unwrap_err();
    assert_eq!(e.kind(), "resource_in_use");
    assert!(e.to_string().contains("VM 'a'"), "{e}");
    // The definition holds /s2, the running VM not: a live attach on /s2 is the same VM.
    let (taken, warnings) = r
        .claim_device("a", &[Scope::Live, Scope::Persistent], &[sock("/s3")])
        .unwrap();
    assert!(warnings.is_empty());
    assert_eq!(taken.0.len(), 2);
    assert!(r.claim_device("b", &[Scope::Live], &[sock("/s3")]).is_err());
    r.release_taken("a", &taken);
    assert!(r
        .holders(&Resource::VhostUserSocket("/s3".into()))
        .is_empty());
    // Releasing what was taken leaves what was held before.
    let (taken, _) = r.claim_device("a", &[Scope::Live], &[sock("/s2")]).unwrap();
    assert_eq!(taken.0, vec![(Scope::Live, sock("/s2").resource)]);
    r.release_taken("a", &taken);
    assert_eq!(
        r.holders(&Resource::VhostUserSocket("/s2".into()))[0].2,
        vec![Scope::Persistent]
    );
}

#[test]
fn twenty_racing_device_claims_one_winner() {
    let r = Arc::new(Registry::new());
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (r, b) = (r.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                let vm = if i % 2 == 0 { "a" } else { "b" };
                let c = Claim {
                    resource: Resource::VhostUserSocket("/race".into()),
                    device: format!("nic {i}"),
                };
                r.claim_device(vm, &[Scope::Live], &[c]).is_ok()
            })
        })
        .collect();
    let wins = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap())
        .filter(|w| *w)
        .count();
    assert_eq!(wins, 1);
}

fn tap(dev: &str) -> Claim {
    Claim {
        resource: Resource::Tap(dev.into()),
        device: format!("interface with tap {dev}"),
    }
}

#[test]
fn network_uplink_excludes_vms_and_is_freed_by_release() {
    let r = Registry::new();
    let up = Resource::Tap("sw0-up".into());
    r.claim_network("sw0", std::slice::from_ref(&up)).unwrap();
    assert_eq!(r.network_holder(&up).as_deref(), Some("sw0"));
    // Every way a VM takes a tap is refused, naming the network.
    let errs = [
        r.replace("a", Scope::Persistent, &[tap("sw0-up")])
            .unwrap_err(),
        r.claim("a", Scope::Live, &[tap("sw0-up")]).unwrap_err(),
        r.claim_device("a", &[Scope::Live], &[tap("sw0-up")])
            .unwrap_err(),
        r.check_device("a", &[Scope::Persistent], &[tap("sw0-up")])
            .unwrap_err(),
    ];
    for e in errs {
        assert_eq!(e.kind(), "resource_in_use");
        assert_eq!(e.http_status(), 409);
        let m = e.to_string();
        assert!(
            m.contains("network 'sw0'") && m.contains("tap device sw0-up"),
            "{m}"
        );
    }
    assert!(r.held_by("a", Scope::Persistent).is_empty());
    assert!(r.held_by("a", Scope::Live).is_empty());
    // A VM named like the network is no exception.
    assert!(r.claim("sw0", Scope::Live, &[tap("sw0-up")]).is_err());
    // The network itself may claim again (restart); another network may not.
    r.claim_network("sw0", std::slice::from_ref(&up)).unwrap();
    let m = r
        .claim_network("sw1", std::slice::from_ref(&up))
        .unwrap_err()
        .to_string();
    assert!(m.contains("network 'sw0'"), "{m}");
    r.release_network("sw0");
    assert_eq!(r.network_holder(&up), None);
    r.claim("a", Scope::Live, &[tap("sw0-up")]).unwrap();
}

#[test]
fn network_refused_while_a_vm_holds_the_tap_all_or_nothing() {
    let r = Registry::new();
    r.replace("a", Scope::Persistent, &[tap("t1")]).unwrap();
    let e = r
        .claim_network(
            "sw0",
            &[Resource::Tap("t0".into()), Resource::Tap("t1".into())],
        )
        .unwrap_err();
    assert_eq!(e.kind(), "resource_in_use");
    assert!(e.to_string().contains("VM 'a'"), "{e}");
    assert_eq!(r.network_holder(&Resource::Tap("t0".into())), None);
    // Once the VM lets go, the network gets it.
    r.release("a", Scope::Persistent);
    r.claim_network("sw0", &[Resource::Tap("t1".into())])
        .unwrap();
}
