use super::*;

#[test]
fn change_args_quote_values_and_remove_keys() {
    let c = LspOptionsChange {
        port: "lsp1".into(),
        set: vec![
            (REQUESTED_CHASSIS.into(), "h1,h2".into()),
            (ACTIVATION_STRATEGY.into(), "rarp".into()),
        ],
        remove: vec![],
    };
    assert_eq!(
        change_args(&c),
        [
            "--",
            "set",
            "Logical_Switch_Port",
            "lsp1",
            "options:requested-chassis=\"h1,h2\"",
            "options:activation-strategy=\"rarp\""
        ]
    );
    let c = LspOptionsChange {
        port: "lsp1".into(),
        set: vec![(REQUESTED_CHASSIS.into(), "h2".into())],
        remove: vec![ACTIVATION_STRATEGY.into()],
    };
    assert_eq!(
        change_args(&c)[5..],
        [
            "--",
            "remove",
            "Logical_Switch_Port",
            "lsp1",
            "options",
            "activation-strategy"
        ]
    );
    assert!(change_args(&LspOptionsChange {
        port: "p".into(),
        set: vec![],
        remove: vec![]
    })
    .is_empty());
}

#[test]
fn restoring_sets_what_was_there_and_removes_what_was_not() {
    let before = BTreeMap::from([(REQUESTED_CHASSIS.to_string(), "h1".to_string())]);
    let c = LspOptionsChange::restoring("p", &[REQUESTED_CHASSIS, ACTIVATION_STRATEGY], &before);
    assert_eq!(c.set, [(REQUESTED_CHASSIS.to_string(), "h1".to_string())]);
    assert_eq!(c.remove, [ACTIVATION_STRATEGY]);
    let c = LspOptionsChange::restoring("p", &[REQUESTED_CHASSIS], &BTreeMap::new());
    assert!(c.set.is_empty());
    assert_eq!(c.remove, [REQUESTED_CHASSIS]);
}

#[test]
fn parse_options_of_a_port_and_of_none() {
    let one = r#"{"data":[[["map",[["activation-strategy","rarp"],["requested-chassis","h1,h2"]]]]],"headings":["options"]}"#;
    let m = parse_options(one).unwrap().unwrap();
    assert_eq!(m[REQUESTED_CHASSIS], "h1,h2");
    assert_eq!(m[ACTIVATION_STRATEGY], "rarp");
    let empty = r#"{"data":[[["map",[]]]],"headings":["options"]}"#;
    assert!(parse_options(empty).unwrap().unwrap().is_empty());
    let none = r#"{"data":[],"headings":["options"]}"#;
    assert_eq!(parse_options(none), Some(None));
    assert_eq!(parse_options("nope"), None);
}
