//! Helpers shared by the unit tests.

use crate::load::load_domain;

/// Runs `text` through [`load_domain`], formats it, and checks that loading and formatting
/// the output again changes nothing (the fuzzer's property). Returns the first output.
pub(crate) fn assert_formats_stably(text: &str) -> String {
    let first = load_domain(text)
        .unwrap_or_else(|e| panic!("refused: {e:?}\n{text}"))
        .to_xml();
    let again = load_domain(&first)
        .unwrap_or_else(|e| panic!("our own output was refused: {e:?}\n{first}"))
        .to_xml();
    assert_eq!(again, first, "format is not stable for\n{text}");
    first
}

/// A minimal domain around `devices` (the body of `<devices>`) for `machine`.
pub(crate) fn domain_with(machine: &str, devices: &str) -> String {
    format!(
        "<domain type='kvm'><name>g</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory>1048576</memory><os><type arch='x86_64' machine='{machine}'>hvm</type></os>\
         <devices>{devices}</devices></domain>"
    )
}
