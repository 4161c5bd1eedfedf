//! The identity of a sequence space.
//!
//! Sequence numbers mean something only within the space that issued them:
//! a hub that restarts starts numbering again, and a chained hub numbers
//! anew. Each space gets a random 64-bit id, its epoch, chosen when the hub
//! starts numbering. The hub names it in every ack; a client echoes it when
//! it resumes, and a resume from another epoch is answered with `RESET`
//! snapshots, never as if it were current.
//!
//! On the wire (JSON) an epoch is 16 lowercase hex digits, a string: a
//! 64-bit number does not survive JavaScript's doubles.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

/// A sequence space's id; never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// A new random epoch (from the standard library's randomly keyed
    /// hasher, which the OS seeds, mixed with the clock and process id).
    pub fn random() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(crate::now_ns());
        hasher.write_u32(std::process::id());
        Self(hasher.finish().max(1))
    }

    /// The epoch with this number, unless it is 0 (no epoch).
    pub const fn from_u64(value: u64) -> Option<Self> {
        if value == 0 { None } else { Some(Self(value)) }
    }

    /// Its number.
    pub const fn to_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Epoch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("an epoch is 16 hex digits, as the hub's ack gives it, not {text:?}");
        // from_str_radix alone would take a sign ("+...").
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        u64::from_str_radix(text, 16)
            .ok()
            .and_then(Self::from_u64)
            .ok_or_else(bad)
    }
}

impl serde::Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_sixteen_hex_digits_and_refuses_anything_else() {
        let epoch = Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap();
        assert_eq!(epoch.to_string(), "00c0ffee00000001");
        assert_eq!("00c0ffee00000001".parse::<Epoch>(), Ok(epoch));
        for bad in [
            "",
            "c0ffee",
            "0000000000000000",
            "00c0ffee0000000g",
            "+0c0ffee00000001",
            "00C0FFEE000000011",
        ] {
            assert!(bad.parse::<Epoch>().is_err(), "{bad:?}");
        }
        assert_ne!(Epoch::random(), Epoch::random());
        assert_eq!(Epoch::from_u64(0), None);
    }
}
