//! The one-call pipeline front ends use: parse, fill defaults, validate.

use crate::domain::{Domain, Uuid};
use crate::error::ConfError;
use crate::interface::MacAddr;
use crate::validate::validate;

/// Reads a domain definition as `virsh define` would: parse, fill libvirt's defaults (a
/// random UUID and random 52:54:00 MACs where missing, guest addresses), then validate.
/// Returns every problem found (parse errors stop at the first one).
pub fn load_domain(text: &str) -> Result<Domain, Vec<ConfError>> {
    load_domain_with(text, Uuid::new_random, MacAddr::new_random)
}

/// [`load_domain`] with the UUID and MAC generators given (for reproducible results; see
/// [`Domain::fill_defaults_with`]).
pub fn load_domain_with(
    text: &str,
    new_uuid: impl FnOnce() -> Uuid,
    new_mac: impl FnMut() -> MacAddr,
) -> Result<Domain, Vec<ConfError>> {
    let mut domain = Domain::parse(text).map_err(|e| vec![e])?;
    domain
        .fill_defaults_with(new_uuid, new_mac)
        .map_err(|e| vec![e])?;
    let problems = validate(&domain);
    if problems.is_empty() {
        Ok(domain)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::QEMU_MAC_PREFIX;
    use crate::test_util::domain_with;

    const TWO_NICS: &str = "<interface type='user'/>\
        <interface type='user'><mac address='52:54:00:00:00:01'/></interface>";

    #[test]
    fn load_assigns_random_macs_to_interfaces_without_one() {
        let text = domain_with("pc", TWO_NICS);
        let a = load_domain(&text).unwrap();
        let b = load_domain(&text).unwrap();
        let (ma, mb) = (a.devices.interfaces[0].mac(), b.devices.interfaces[0].mac());
        let ma = ma.expect("a MAC is assigned");
        assert_eq!(ma.octets()[..3], QEMU_MAC_PREFIX);
        assert_ne!(Some(ma), mb, "random: two loads differ");
        assert_eq!(
            a.devices.interfaces[1].mac().unwrap().to_string(),
            "52:54:00:00:00:01"
        );
        // The assigned MAC is in the output and kept by a re-load.
        let xml = a.to_xml();
        assert!(xml.contains(&format!("<mac address='{ma}'/>")), "{xml}");
        assert_eq!(load_domain(&xml).unwrap().to_xml(), xml);
    }

    #[test]
    fn load_with_is_reproducible() {
        let text = domain_with("pc", TWO_NICS)
            .replace("<uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>", "");
        let load = || {
            let mut n = 0u8;
            load_domain_with(
                &text,
                || Uuid([7; 16]),
                move || {
                    n += 1;
                    MacAddr::with_prefix(QEMU_MAC_PREFIX, [0, 0, n])
                },
            )
            .unwrap()
            .to_xml()
        };
        let xml = load();
        assert_eq!(xml, load());
        assert!(
            xml.contains("<uuid>07070707-0707-0707-0707-070707070707</uuid>"),
            "{xml}"
        );
        // 52:54:00:00:00:01 is taken by the second interface: the first gets ...:02.
        assert!(xml.contains("<mac address='52:54:00:00:00:02'/>"), "{xml}");
    }
}
