//! Exact prices: a fixed-point decimal that converts losslessly to and from
//! [`rust_decimal::Decimal`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::{Error, Result};

/// An exact price: a signed count of 10⁻⁹ currency units (nano-dollars for US
/// equities), the same fixed-point scale on the wire and in memory.
///
/// Every `Price` is exactly a [`Decimal`] (`Decimal::from(price)`), and a
/// `Decimal` becomes a `Price` only when it is held exactly: at most 9 significant
/// fractional digits and within ±9,223,372,036.854775807. Nothing passes through
/// floating point. The scale 10⁻⁹ holds every US-equity tick (IEX sends 4 decimals,
/// sub-penny quotes 4, crypto-style 8) with room for prices up to nine billion.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Price(i64);

/// Fractional digits of the fixed-point scale.
pub const PRICE_SCALE_DIGITS: u32 = 9;
/// Units per whole currency unit (10⁹).
pub const PRICE_UNITS_PER_ONE: i64 = 1_000_000_000;

const POW10: [i64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

impl Price {
    /// Zero, which feeds use for "no price on this side".
    pub const ZERO: Price = Price(0);

    /// A price from its raw fixed-point units (10⁻⁹ each).
    pub const fn from_units(units: i64) -> Self {
        Self(units)
    }

    /// The raw fixed-point units (10⁻⁹ each), as sent on the wire.
    pub const fn units(self) -> i64 {
        self.0
    }

    /// A price from an integer with `decimals` implied fractional digits, such as
    /// IEX's int64 with 4 implied decimals. Fails if it does not fit.
    pub fn from_scaled(mantissa: i64, decimals: u32) -> Result<Self> {
        let reject = |reason| Error::InvalidPrice {
            text: format!("{mantissa}e-{decimals}"),
            reason,
        };
        if decimals > PRICE_SCALE_DIGITS {
            return Err(reject("more than 9 implied decimals"));
        }
        mantissa
            .checked_mul(POW10[(PRICE_SCALE_DIGITS - decimals) as usize])
            .map(Self)
            .ok_or_else(|| reject("out of range"))
    }

    /// Parses a plain decimal (`-12.3400`, `993`, `0.0001`) exactly from its text.
    ///
    /// Accepts an optional leading `-`, digits, and an optional fraction. Digits
    /// past the 9th decimal are accepted only when they are zeros. Exponents,
    /// `+`, spaces and empty parts are rejected.
    pub fn parse_exact(text: &[u8]) -> Result<Self> {
        let reject = |reason| Error::InvalidPrice {
            text: String::from_utf8_lossy(text).into_owned(),
            reason,
        };
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
            Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
            None => (digits, None),
        };
        if int_part.is_empty() || frac_part.is_some_and(<[u8]>::is_empty) {
            return Err(reject("expected digits on both sides of the point"));
        }
        // Accumulate negatively so that i64::MIN-sized values are not a special case.
        let mut units: i64 = 0;
        let overflow = || reject("out of range");
        for &b in int_part {
            let digit = digit_value(b).ok_or_else(|| reject("not a plain decimal"))?;
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_sub(digit))
                .ok_or_else(overflow)?;
        }
        units = units.checked_mul(PRICE_UNITS_PER_ONE).ok_or_else(overflow)?;
        for (index, &b) in frac_part.unwrap_or_default().iter().enumerate() {
            let digit = digit_value(b).ok_or_else(|| reject("not a plain decimal"))?;
            if index >= PRICE_SCALE_DIGITS as usize {
                if digit != 0 {
                    return Err(reject("more than 9 significant decimals"));
                }
                continue;
            }
            let place = POW10[PRICE_SCALE_DIGITS as usize - 1 - index];
            units = units.checked_sub(digit * place).ok_or_else(overflow)?;
        }
        if negative {
            Ok(Self(units))
        } else {
            units.checked_neg().map(Self).ok_or_else(overflow)
        }
    }

    /// The exact decimal value.
    pub fn to_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(self.0), PRICE_SCALE_DIGITS).normalize()
    }
}

const fn digit_value(b: u8) -> Option<i64> {
    if b.is_ascii_digit() {
        Some((b - b'0') as i64)
    } else {
        None
    }
}

impl From<Price> for Decimal {
    fn from(price: Price) -> Self {
        price.to_decimal()
    }
}

impl TryFrom<Decimal> for Price {
    type Error = Error;
    fn try_from(value: Decimal) -> Result<Self> {
        let reject = |reason| Error::InvalidPrice {
            text: value.to_string(),
            reason,
        };
        let normalized = value.normalize();
        let scale = normalized.scale();
        if scale > PRICE_SCALE_DIGITS {
            return Err(reject("more than 9 significant decimals"));
        }
        let factor = i128::from(POW10[(PRICE_SCALE_DIGITS - scale) as usize]);
        normalized
            .mantissa()
            .checked_mul(factor)
            .and_then(|units| i64::try_from(units).ok())
            .map(Self)
            .ok_or_else(|| reject("out of range"))
    }
}

impl FromStr for Price {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse_exact(s.as_bytes())
    }
}

/// Prints the exact value with trailing zeros dropped, keeping at least two
/// decimals (`18.73`, `993.00`, `0.0001`), as trading screens show prices.
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let per_one = PRICE_UNITS_PER_ONE.unsigned_abs();
        let (whole, frac) = (magnitude / per_one, magnitude % per_one);
        let mut frac_text = format!("{frac:09}");
        while frac_text.len() > 2 && frac_text.ends_with('0') {
            frac_text.pop();
        }
        f.pad(&format!("{sign}{whole}.{frac_text}"))
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({self})")
    }
}

/// Serialized as a decimal string so JSON readers never see a float.
impl serde::Serialize for Price {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn parses_exactly_what_the_text_says() {
        for text in [
            "18.73",
            "993",
            "0.0001",
            "-12.34",
            "148.91",
            "0.000000001",
            "9223372036.854775807",
        ] {
            let price: Price = text.parse().unwrap();
            assert_eq!(price.to_decimal(), dec(text), "{text}");
            assert_eq!(Price::try_from(dec(text)).unwrap(), price, "{text}");
        }
        assert_eq!("1.50000000000".parse::<Price>().unwrap().units(), 1_500_000_000);
        assert_eq!("-9223372036.854775808".parse::<Price>().unwrap().units(), i64::MIN);
    }

    #[test]
    fn rejects_what_cannot_be_held_exactly() {
        for (text, reason) in [
            ("0.0000000001", "more than 9 significant decimals"),
            ("9223372036.854775808", "out of range"),
            ("99999999999", "out of range"),
            ("1e5", "not a plain decimal"),
            ("+1", "not a plain decimal"),
            ("1.", "expected digits on both sides of the point"),
            (".5", "expected digits on both sides of the point"),
            ("", "expected digits on both sides of the point"),
            ("1.2.3", "not a plain decimal"),
        ] {
            match text.parse::<Price>() {
                Err(Error::InvalidPrice { reason: got, .. }) => assert_eq!(got, reason, "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        assert!(Price::try_from(dec("0.0000000001")).is_err());
        assert!(Price::try_from(dec("10000000000")).is_err());
    }

    #[test]
    fn scaled_integers_like_iex_convert_exactly() {
        assert_eq!(Price::from_scaled(187_300, 4).unwrap().to_decimal(), dec("18.73"));
        assert!(Price::from_scaled(i64::MAX, 4).is_err());
        assert!(Price::from_scaled(1, 10).is_err());
    }

    #[test]
    fn displays_exact_value_with_at_least_two_decimals() {
        for (text, shown) in [
            ("18.73", "18.73"),
            ("993", "993.00"),
            ("0.0001", "0.0001"),
            ("-1.5", "-1.50"),
        ] {
            assert_eq!(text.parse::<Price>().unwrap().to_string(), shown);
        }
    }
}
