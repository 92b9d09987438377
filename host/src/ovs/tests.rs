use super::*;

fn spec(vlan: Option<OvsVlan>, profile: Option<&str>) -> OvsPortSpec {
    OvsPortSpec {
        bridge: "br-int".into(),
        port: "vnet3".into(),
        iface_id: "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f".into(),
        mac: "52:54:00:12:34:56".parse().unwrap(),
        vm_id: "c7a5fdbd-edaf-9455-926a-d65c16db1809".into(),
        profile_id: profile.map(String::from),
        vlan,
    }
}

/// The port and its external_ids in one transaction, as libvirt writes them.
#[test]
fn add_port_sets_libvirts_external_ids() {
    let a = add_port_args(&spec(None, Some("menial")));
    assert_eq!(
        a.join(" "),
        "-- --may-exist add-port br-int vnet3 \
         -- set Interface vnet3 external_ids:attached-mac=\"52:54:00:12:34:56\" \
         -- set Interface vnet3 external_ids:iface-id=\"09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f\" \
         -- set Interface vnet3 external_ids:vm-id=\"c7a5fdbd-edaf-9455-926a-d65c16db1809\" \
         -- set Interface vnet3 external_ids:port-profile=\"menial\" \
         -- set Interface vnet3 external_ids:iface-status=active"
    );
}

/// One tag: an access port (`tag`); a trunk: `trunks`; a native VLAN: `vlan_mode` + `tag`.
#[test]
fn vlans_become_tag_trunks_and_vlan_mode() {
    let cols = |v: OvsVlan| {
        let a = add_port_args(&spec(Some(v), None));
        a[5..a.iter().position(|s| s == "set").unwrap() - 1].join(" ")
    };
    let access = OvsVlan {
        tags: vec![42],
        trunk: false,
        native: None,
    };
    assert_eq!(cols(access), "tag=42");
    let trunk = OvsVlan {
        tags: vec![42, 43],
        trunk: true,
        native: None,
    };
    assert_eq!(cols(trunk), "trunks=42,43");
    let native = OvsVlan {
        tags: vec![42, 43],
        trunk: true,
        native: Some(OvsNative {
            tag: 42,
            tagged: false,
        }),
    };
    assert_eq!(
        cols(native),
        "vlan_mode=native-untagged tag=42 trunks=42,43"
    );
}

/// Removal names the port only (wherever it is) and tolerates a missing one.
#[test]
fn del_port_is_idempotent_and_global_options_come_first() {
    assert_eq!(
        del_port_args("vnet3").join(" "),
        "-- --if-exists del-port vnet3"
    );
    let v = Vsctl::default().with_db("unix:/tmp/x/db.sock");
    assert_eq!(
        v.argv(&del_port_args("vnet3")).join(" "),
        "--timeout=5 --db=unix:/tmp/x/db.sock -- --if-exists del-port vnet3"
    );
    assert_eq!(Vsctl::default().db(), "unix:/var/run/openvswitch/db.sock");
}

/// A port is stored in the VM's undo record as this (read back after a restart).
#[test]
fn undo_stored_form() {
    let step = crate::HostUndo::OvsDelPort {
        bridge: "br-int".into(),
        port: "vnet3".into(),
    };
    let json = serde_json::to_string(&step).unwrap();
    assert_eq!(
        json,
        r#"{"undo":"ovs_del_port","bridge":"br-int","port":"vnet3"}"#
    );
    assert_eq!(
        serde_json::from_str::<crate::HostUndo>(&json).unwrap(),
        step
    );
}

/// ovs-vsctl's JSON listing gives each interface's name and vm-id.
#[test]
fn interfaces_are_read_from_the_json_listing() {
    let json = r#"{"data":[["vnet0",["map",[["attached-mac","52:54:00:00:00:01"],["vm-id","c7a5fdbd-edaf-9455-926a-d65c16db1809"]]]],["br-int",["map",[]]]],"headings":["name","external_ids"]}"#;
    assert_eq!(
        parse_interfaces(json).unwrap(),
        [
            OvsInterface {
                name: "vnet0".into(),
                vm_id: Some("c7a5fdbd-edaf-9455-926a-d65c16db1809".into()),
            },
            OvsInterface {
                name: "br-int".into(),
                vm_id: None,
            },
        ]
    );
    assert_eq!(parse_interfaces("nonsense"), None);
}
