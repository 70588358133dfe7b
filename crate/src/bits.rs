//! [`Bits`]: a bit-width in `1..=8`, the runtime's central idea ("width" always means this; an
//! image's size is its columns and rows). It is checked once, where a number enters (a file's
//! JSON, a CLI flag, a JS argument); everything past that point takes `Bits` and cannot be handed
//! an out-of-range width.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A bit-width in `1..=8`: of weights, of activations, or a count of bit planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Bits(u8);

impl Bits {
    pub const MIN: Bits = Bits(1);
    pub const MAX: Bits = Bits(8);

    /// `bits` if it is in `1..=8`, else an `unsupported_width` error.
    pub fn new(bits: u8) -> Result<Bits> {
        if (Self::MIN.0..=Self::MAX.0).contains(&bits) {
            Ok(Bits(bits))
        } else {
            crate::bail!(ErrorKind::UnsupportedWidth, "bit-width {bits} is outside 1..=8")
        }
    }

    /// A JS number or other float argument: an integer in `1..=8`, else `unsupported_width`
    /// naming `what` ("width", "minPlanes").
    pub fn from_f64(value: f64, what: &str) -> Result<Bits> {
        if value.fract() != 0.0 || !(1.0..=8.0).contains(&value) {
            crate::bail!(ErrorKind::UnsupportedWidth, "{what} must be an integer in 1..=8, got {value}");
        }
        Ok(Bits(value as u8))
    }

    #[inline]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// As an index or count (`usize`), for loops and sizes.
    #[inline]
    pub const fn count(self) -> usize {
        self.0 as usize
    }

    /// Largest unsigned code of this width: `2^bits - 1`.
    #[inline]
    pub const fn levels(self) -> u32 {
        (1u32 << self.0) - 1
    }

    /// Every width, widest first (8, 7, ..., 1).
    pub fn all_desc() -> impl Iterator<Item = Bits> {
        (1..=8u8).rev().map(Bits)
    }
}

impl TryFrom<u8> for Bits {
    type Error = Error;
    fn try_from(bits: u8) -> Result<Bits> {
        Bits::new(bits)
    }
}

impl From<Bits> for u8 {
    fn from(b: Bits) -> u8 {
        b.0
    }
}

/// Lets a checked width be compared with a plain number (`model.width() == 8`).
impl PartialEq<u8> for Bits {
    fn eq(&self, other: &u8) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Bits {
    type Err = Error;
    fn from_str(s: &str) -> Result<Bits> {
        match s.trim().parse::<u8>() {
            Ok(b) => Bits::new(b),
            Err(_) => crate::bail!(ErrorKind::UnsupportedWidth, "bit-width {s:?} is not an integer in 1..=8"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;
    use crate::ErrorKind;

    #[test]
    fn checked_once_at_entry() {
        for b in 1..=8u8 {
            assert_eq!(Bits::new(b).unwrap().get(), b);
            assert_eq!(format!("{}", Bits::new(b).unwrap()).parse::<Bits>().unwrap().get(), b);
        }
        for b in [0u8, 9, 255] {
            assert_eq!(Bits::new(b).unwrap_err().kind(), ErrorKind::UnsupportedWidth);
        }
        assert!("x".parse::<Bits>().is_err() && "0".parse::<Bits>().is_err());
        assert!(Bits::from_f64(2.5, "width").is_err() && Bits::from_f64(f64::NAN, "width").is_err());
        assert_eq!(Bits::from_f64(3.0, "width").unwrap().get(), 3);
        assert_eq!(Bits::all_desc().map(Bits::get).collect::<Vec<_>>(), [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Bits::new(2).unwrap().levels(), 3);
    }

    #[test]
    fn serde_rejects_out_of_range() {
        assert_eq!(serde_json::from_str::<Bits>("4").unwrap().get(), 4);
        assert_eq!(serde_json::to_string(&Bits::new(4).unwrap()).unwrap(), "4");
        assert!(serde_json::from_str::<Bits>("0").is_err());
        assert!(serde_json::from_str::<Bits>("9").is_err());
    }
}
