//! Fuzz target: any bytes through the parse → defaults → validate → format pipeline that
//! `virtnet validate` and `virtnet format` run (`load_domain`, here with fixed UUID and MAC
//! generators so that every input behaves the same on each run). Must never panic; what is
//! accepted must format stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnet_conf::domain::Uuid;
use virtnet_conf::interface::{MacAddr, QEMU_MAC_PREFIX};
use virtnet_conf::load_domain_with;

/// A UUID and a MAC source that give the same values on every run.
fn load(text: &str) -> Result<virtnet_conf::Domain, Vec<virtnet_conf::ConfError>> {
    let mut n: u32 = 0;
    load_domain_with(
        text,
        || Uuid::from_random_bytes([0x5a; 16]),
        move || {
            n = n.wrapping_add(1);
            let b = n.to_be_bytes();
            MacAddr::with_prefix(QEMU_MAC_PREFIX, [b[1], b[2], b[3]])
        },
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(domain) = load(text) {
        let xml = domain.to_xml();
        let again = load(&xml).expect("our own output must be accepted");
        assert_eq!(again.to_xml(), xml, "format is not stable");
    }
});
