//! PCI addresses (`domain:bus:slot.function`).

use std::fmt;
use std::str::FromStr;

/// A PCI address, printed as sysfs names it: `0000:03:10.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddr {
    /// Domain (segment).
    pub domain: u16,
    /// Bus.
    pub bus: u8,
    /// Slot (device), 0..=31.
    pub slot: u8,
    /// Function, 0..=7.
    pub function: u8,
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

impl FromStr for PciAddr {
    type Err = String;

    /// Parses `DDDD:BB:SS.F` or `BB:SS.F` (domain 0), hex.
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "invalid PCI address '{s}': expected domain:bus:slot.function like 0000:03:10.2"
            )
        };
        let (rest, function) = s.rsplit_once('.').ok_or_else(err)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, slot) = match parts.as_slice() {
            [d, b, s] => (*d, *b, *s),
            [b, s] => ("0", *b, *s),
            _ => return Err(err()),
        };
        // Digits only: u32::from_str_radix would also take a leading '+'.
        let hex = |t: &str, max: u32| {
            Some(t)
                .filter(|t| (1..=4).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|t| u32::from_str_radix(t, 16).ok())
                .filter(|v| *v <= max)
                .ok_or_else(err)
        };
        Ok(PciAddr {
            domain: hex(domain, 0xffff)? as u16,
            bus: hex(bus, 0xff)? as u8,
            slot: hex(slot, 0x1f)? as u8,
            function: hex(function, 7)? as u8,
        })
    }
}

/// Serialised as its text form (`"0000:03:10.2"`), as sysfs names it.
impl serde::Serialize for PciAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PciAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let a: PciAddr = "0000:03:10.2".parse().unwrap();
        assert_eq!(a.to_string(), "0000:03:10.2");
        assert_eq!(
            "3:1f.7".parse::<PciAddr>().unwrap().to_string(),
            "0000:03:1f.7"
        );
        for bad in [
            "",
            "0000:03:10",
            "0000:03:20.0",
            "0000:03:10.8",
            "x:03:10.0",
            "1:2:3:4.0",
            "+0:+3:+1.+2",
            "0000:03:10.+2",
        ] {
            assert!(bad.parse::<PciAddr>().is_err(), "{bad}");
        }
    }
}
