//! MAC addresses.

use std::fmt;
use std::str::FromStr;

/// An Ethernet MAC address. Parses `52:54:00:aa:bb:cc` (one or two hex digits per byte, any
/// case, as libvirt does); displays lower case with two digits per byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

/// The prefix QEMU and libvirt use for generated guest MACs.
pub const QEMU_MAC_PREFIX: [u8; 3] = [0x52, 0x54, 0x00];

/// Why a MAC address could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacParseError(pub String);

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unable to parse mac address '{}': expected six hex bytes separated by ':', \
             e.g. 52:54:00:12:34:56",
            self.0
        )
    }
}

impl std::error::Error for MacParseError {}

impl MacAddr {
    /// A MAC with the given 3-byte prefix (OUI) and 3 low bytes, e.g. from a random source:
    /// `MacAddr::with_prefix(QEMU_MAC_PREFIX, [r1, r2, r3])`.
    pub fn with_prefix(prefix: [u8; 3], low: [u8; 3]) -> Self {
        MacAddr([prefix[0], prefix[1], prefix[2], low[0], low[1], low[2]])
    }

    /// A random address with QEMU's prefix 52:54:00, as libvirt generates for an interface
    /// defined without one. Always unicast and never all-zero.
    pub fn new_random() -> Self {
        let mut low = [0u8; 3];
        // The kernel's random source does not fail after early boot; should it fail, the
        // clock still gives distinct addresses.
        if getrandom::fill(&mut low).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(7))
                .unwrap_or(0)
                .to_le_bytes();
            low = [t[0] ^ t[3], t[1], t[2]];
        }
        MacAddr::with_prefix(QEMU_MAC_PREFIX, low)
    }

    /// Builds a MAC from the first 6 bytes of a hardware address (e.g. a netlink
    /// `IFLA_ADDRESS`), if it has that many.
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        let b: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(MacAddr(b))
    }

    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is a multicast (group) address: lowest bit of the first byte set.
    /// A NIC's own address must be unicast.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether all bytes are zero (libvirt treats this as "no MAC given").
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// The MAC libvirt gives the host side of a tap device for this guest MAC: the same
    /// address with the first byte replaced by 0xFE, so that the host bridge never adopts
    /// the tap's address (a bridge takes the lowest MAC of its ports) and host and guest
    /// sides differ.
    pub fn tap_mac(&self) -> MacAddr {
        let mut b = self.0;
        b[0] = 0xfe;
        MacAddr(b)
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Serialised as its text form (`"52:54:00:12:34:56"`), parsed back with [`MacAddr::from_str`]
/// (so a stored address is checked like one in XML).
#[cfg(feature = "serde")]
impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let m: MacAddr = "52:54:00:E5:48:5A".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:e5:48:5a");
        let short: MacAddr = "0:1:2:a:b:c".parse().unwrap();
        assert_eq!(short.to_string(), "00:01:02:0a:0b:0c");
        for bad in [
            "",
            "52:54:00:aa:bb",
            "52:54:00:aa:bb:cc:dd",
            "52-54-00-aa-bb-cc",
            "52:54:00:aa:bb:cg",
            "520:54:00:aa:bb:cc",
            "52:54:00:aa::cc",
            "+5:54:00:aa:bb:cc",
            // u8::from_str_radix takes a leading '+': the parser must not.
            "+a:+b:+c:+d:+e:+f",
            "52:54:00:aa:bb:+c",
            "-1:54:00:aa:bb:cc",
            " 52:54:00:aa:bb:cc",
            "52:54:00:aa:bb:cc ",
            "52:54:00:aa:bb:cc:",
            ":52:54:00:aa:bb:cc",
            "0x5:54:00:aa:bb:cc",
            "５2:54:00:aa:bb:cc",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        let e = "zz".parse::<MacAddr>().unwrap_err();
        assert!(e.to_string().contains("unable to parse mac address 'zz'"));
    }

    #[test]
    fn from_slice_needs_six_bytes() {
        assert_eq!(MacAddr::from_slice(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            MacAddr::from_slice(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
    }

    proptest::proptest! {
        /// Whatever parses is six groups of one or two hex digits, and prints back as the
        /// same bytes; so no sign, space or other character sneaks through.
        #[test]
        fn parse_accepts_only_hex_groups(s in "[0-9a-fA-F+: x-]{0,20}") {
            if let Ok(m) = s.parse::<MacAddr>() {
                let groups: Vec<&str> = s.split(':').collect();
                proptest::prop_assert_eq!(groups.len(), 6);
                for g in &groups {
                    proptest::prop_assert!((1..=2).contains(&g.len()));
                    proptest::prop_assert!(g.bytes().all(|c| c.is_ascii_hexdigit()), "{}", s);
                }
                proptest::prop_assert_eq!(m.to_string().parse::<MacAddr>().unwrap(), m);
            }
        }

        /// Every address prints in a form that parses back to itself.
        #[test]
        fn display_round_trips(b in proptest::array::uniform6(proptest::num::u8::ANY)) {
            let m = MacAddr(b);
            proptest::prop_assert_eq!(m.to_string().parse::<MacAddr>().unwrap(), m);
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_is_the_text_form() {
        let m: MacAddr = "52:54:00:aa:bb:cc".parse().unwrap();
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, "\"52:54:00:aa:bb:cc\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&j).unwrap(), m);
        let e = serde_json::from_str::<MacAddr>("\"+a:+b:+c:+d:+e:+f\"").unwrap_err();
        assert!(e.to_string().contains("unable to parse mac address"), "{e}");
    }

    #[test]
    fn multicast_and_tap() {
        let m: MacAddr = "01:00:5e:00:00:01".parse().unwrap();
        assert!(m.is_multicast());
        let u: MacAddr = "52:54:00:aa:bb:cc".parse().unwrap();
        assert!(!u.is_multicast());
        assert_eq!(u.tap_mac().to_string(), "fe:54:00:aa:bb:cc");
        assert!(!u.tap_mac().is_multicast());
        assert!(MacAddr::default().is_zero());
        assert_eq!(
            MacAddr::with_prefix(QEMU_MAC_PREFIX, [1, 2, 3]).to_string(),
            "52:54:00:01:02:03"
        );
    }

    #[test]
    fn random_has_qemu_prefix() {
        let macs: Vec<MacAddr> = (0..8).map(|_| MacAddr::new_random()).collect();
        for m in &macs {
            assert_eq!(m.octets()[..3], QEMU_MAC_PREFIX, "{m}");
            assert!(!m.is_multicast() && !m.is_zero());
        }
        // 8 draws of 24 random bits: a repeat would mean the source is not random.
        let mut sorted = macs.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), macs.len(), "{macs:?}");
    }
}
