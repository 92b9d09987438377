//! Domain UUIDs (`<uuid>`), read as libvirt reads them and written in canonical form.

use std::fmt;

/// A 128-bit domain UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parses 32 hex digits; dashes and spaces between digits are ignored, as libvirt does.
    pub fn parse(s: &str) -> Option<Uuid> {
        let mut out = [0u8; 16];
        let mut n = 0usize;
        for c in s.trim().chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let d = c.to_digit(16)? as u8;
            if n >= 32 {
                return None;
            }
            out[n / 2] |= if n.is_multiple_of(2) { d << 4 } else { d };
            n += 1;
        }
        (n == 32).then_some(Uuid(out))
    }

    /// A random (version 4) UUID, as libvirt generates for a definition without one.
    pub fn new_random() -> Uuid {
        let mut b = [0u8; 16];
        // The kernel's random source does not fail after early boot; should it fail, a
        // time-derived value still yields a distinct UUID.
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            b = t.to_le_bytes();
        }
        Uuid::from_random_bytes(b)
    }

    /// Turns 16 random bytes into a version 4, RFC 4122 variant UUID.
    pub fn from_random_bytes(mut b: [u8; 16]) -> Uuid {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }
}

impl fmt::Display for Uuid {
    /// `8-4-4-4-12` lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let u = Uuid::parse("C7A5FDBD-EDAF-9455-926a-d65c16db1809").unwrap();
        assert_eq!(u.to_string(), "c7a5fdbd-edaf-9455-926a-d65c16db1809");
        let v = Uuid::parse("c7a5fdbdedaf9455926ad65c16db1809").unwrap();
        assert_eq!(u, v);
        assert!(Uuid::parse("c7a5fdbd-edaf-9455-926a-d65c16db180").is_none());
        assert!(Uuid::parse("c7a5fdbd-edaf-9455-926a-d65c16db18090").is_none());
        assert!(Uuid::parse("g7a5fdbd-edaf-9455-926a-d65c16db1809").is_none());
    }

    #[test]
    fn random_is_v4() {
        let a = Uuid::new_random();
        let b = Uuid::new_random();
        assert_ne!(a, b);
        let s = a.to_string();
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
    }
}
