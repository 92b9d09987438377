//! Fuzz target: any bytes through the parse → defaults → validate → format pipeline that
//! `virtnet validate` and `virtnet format` run. Must never panic; what is accepted must format
//! stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnet_conf::load_domain;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(domain) = load_domain(text) {
        let xml = domain.to_xml();
        let again = load_domain(&xml).expect("our own output must be accepted");
        assert_eq!(again.to_xml(), xml, "format is not stable");
    }
});
