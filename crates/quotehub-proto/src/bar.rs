//! Bars: open, high, low, close, volume, trade count and VWAP of a symbol's
//! trades over one interval of event time, and their binary record.
//!
//! The hub builds bars from trades (the `bars.1s` and `bars.1m` channels);
//! this file holds only the wire form and the exact arithmetic every builder
//! and reader must agree on: interval alignment and the VWAP rounding.

use crate::channel::Channels;
use crate::error::Result;
use crate::price::Price;
use crate::record::{Flags, i64_at, put_header, rtype, symbol_at, u32_at, u64_at};
use crate::symbol::Symbol;

/// Bytes in a bar record.
pub const BAR_LEN: usize = 104;

/// A bar's interval, in whole seconds. The hub carries 1 s and 1 min bars;
/// other lengths decode (a newer hub may add them) but belong to no channel
/// of this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarInterval(u32);

impl BarInterval {
    /// One second: the `bars.1s` channel.
    pub const SECOND: BarInterval = BarInterval(1);
    /// One minute: the `bars.1m` channel.
    pub const MINUTE: BarInterval = BarInterval(60);

    /// The interval of `seconds` seconds (0 is kept as read; no builder makes it).
    pub const fn from_seconds(seconds: u32) -> Self {
        BarInterval(seconds)
    }

    /// Its length in seconds, as the record carries it.
    pub const fn seconds(self) -> u32 {
        self.0
    }

    /// Its length in ns.
    pub const fn nanos(self) -> u64 {
        self.0 as u64 * 1_000_000_000
    }

    /// The start of the interval holding `event_ts`: intervals are aligned to
    /// wall-clock boundaries of event time (ns since the Unix epoch, UTC), so
    /// a 1 min bar starts at a whole minute. `event_ts` itself for length 0.
    pub const fn start_of(self, event_ts: u64) -> u64 {
        match self.nanos() {
            0 => event_ts,
            length => event_ts - event_ts % length,
        }
    }

    /// The name in JSON and after `bars.` in a channel name: `1s`, `1m`;
    /// whole minutes as `<n>m`, other lengths as `<n>s`.
    pub fn name(self) -> String {
        if self.0 != 0 && self.0.is_multiple_of(60) {
            format!("{}m", self.0 / 60)
        } else {
            format!("{}s", self.0)
        }
    }

    /// The channel that carries bars of this interval ([`Channels::NONE`] for
    /// a length this build has no channel for).
    pub const fn channel(self) -> Channels {
        match self.0 {
            1 => Channels::BARS_1S,
            60 => Channels::BARS_1M,
            _ => Channels::NONE,
        }
    }
}

/// The volume-weighted average price of trades whose `notional` is
/// Σ `price.units() × size` (in price units × shares, exact in `i128`) and
/// whose `volume` is Σ `size`: `notional / volume` rounded to the nearest
/// 10⁻⁹, halves away from zero. `None` for no volume. The result always lies
/// between the lowest and highest price traded, so it fits a [`Price`].
pub fn vwap(notional: i128, volume: u64) -> Option<Price> {
    if volume == 0 {
        return None;
    }
    let volume = i128::from(volume);
    let mut units = notional / volume;
    let remainder = notional % volume;
    if 2 * remainder.abs() >= volume {
        units += notional.signum();
    }
    i64::try_from(units).ok().map(Price::from_units)
}

/// One bar of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bar {
    /// The instrument.
    pub symbol: Symbol,
    /// The interval's length.
    pub interval: BarInterval,
    /// Start of the interval, ns since the Unix epoch (event time, aligned:
    /// see [`BarInterval::start_of`]); the interval is `[start_ts, start_ts + length)`.
    pub start_ts: u64,
    /// When the hub closed the bar, ns since the Unix epoch.
    pub recv_ts: u64,
    /// Price of the interval's first trade.
    pub open: Price,
    /// Highest trade price.
    pub high: Price,
    /// Lowest trade price.
    pub low: Price,
    /// Price of the interval's last trade.
    pub close: Price,
    /// Volume-weighted average price, rounded as [`vwap`] says.
    pub vwap: Price,
    /// Shares traded (the sum of the trades' sizes).
    pub volume: u64,
    /// Trades in the interval (at least 1: an interval without trades has no bar).
    pub trade_count: u32,
    /// Sequence number in the symbol's sequence of bars of this interval, from 1.
    pub seq: u64,
}

/// A bar record as received. Layout (104 bytes):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | length = 104 |
/// | 2 | 1 | rtype = 0x05 |
/// | 3 | 1 | flags |
/// | 4 | 4 | conflated: u32, bars merged into this one (0 if none) |
/// | 8 | 16 | symbol, ASCII, NUL-padded |
/// | 24 | 8 | seq: u64, per symbol and interval |
/// | 32 | 8 | start_ts: u64 ns since the Unix epoch (event time, aligned) |
/// | 40 | 8 | recv_ts: u64 ns since the Unix epoch (hub, bar closed) |
/// | 48 | 8 | open: i64, units of 10⁻⁹ |
/// | 56 | 8 | high: i64, units of 10⁻⁹ |
/// | 64 | 8 | low: i64, units of 10⁻⁹ |
/// | 72 | 8 | close: i64, units of 10⁻⁹ |
/// | 80 | 8 | vwap: i64, units of 10⁻⁹ (rounded, see [`vwap`]) |
/// | 88 | 8 | volume: u64 shares |
/// | 96 | 4 | interval_s: u32 seconds (1 or 60) |
/// | 100 | 4 | trade_count: u32 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarRecord {
    /// The bar.
    pub bar: Bar,
    /// Snapshot, conflated, replayed, reset.
    pub flags: Flags,
    /// How many bars were merged into this record (0 if none).
    pub conflated: u32,
}

impl BarRecord {
    /// Encodes the record into its 104 wire bytes.
    pub fn encode(&self) -> [u8; BAR_LEN] {
        let b = &self.bar;
        let mut out = [0u8; BAR_LEN];
        put_header(&mut out, BAR_LEN, rtype::BAR, self.flags);
        out[4..8].copy_from_slice(&self.conflated.to_le_bytes());
        out[8..24].copy_from_slice(&b.symbol.to_wire());
        out[24..32].copy_from_slice(&b.seq.to_le_bytes());
        out[32..40].copy_from_slice(&b.start_ts.to_le_bytes());
        out[40..48].copy_from_slice(&b.recv_ts.to_le_bytes());
        out[48..56].copy_from_slice(&b.open.units().to_le_bytes());
        out[56..64].copy_from_slice(&b.high.units().to_le_bytes());
        out[64..72].copy_from_slice(&b.low.units().to_le_bytes());
        out[72..80].copy_from_slice(&b.close.units().to_le_bytes());
        out[80..88].copy_from_slice(&b.vwap.units().to_le_bytes());
        out[88..96].copy_from_slice(&b.volume.to_le_bytes());
        out[96..100].copy_from_slice(&b.interval.seconds().to_le_bytes());
        out[100..104].copy_from_slice(&b.trade_count.to_le_bytes());
        out
    }

    /// Decodes the known 104-byte prefix of a bar record.
    pub fn decode(bytes: &[u8; BAR_LEN]) -> Result<Self> {
        Ok(Self {
            flags: Flags(bytes[3]),
            conflated: u32_at(bytes, 4),
            bar: Bar {
                symbol: Symbol::from_wire(&symbol_at(bytes, 8))?,
                seq: u64_at(bytes, 24),
                start_ts: u64_at(bytes, 32),
                recv_ts: u64_at(bytes, 40),
                open: Price::from_units(i64_at(bytes, 48)),
                high: Price::from_units(i64_at(bytes, 56)),
                low: Price::from_units(i64_at(bytes, 64)),
                close: Price::from_units(i64_at(bytes, 72)),
                vwap: Price::from_units(i64_at(bytes, 80)),
                volume: u64_at(bytes, 88),
                interval: BarInterval(u32_at(bytes, 96)),
                trade_count: u32_at(bytes, 100),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(text: &str) -> i128 {
        i128::from(text.parse::<Price>().unwrap().units())
    }

    #[test]
    fn vwap_is_exact_when_it_can_be_and_rounds_halves_away_from_zero() {
        // TC0: exact. 100 @ 10.00 and 300 @ 10.04 average 10.03.
        let notional = units("10.00") * 100 + units("10.04") * 300;
        assert_eq!(vwap(notional, 400), Some("10.03".parse().unwrap()));
        // TC1: below half rounds down: (1 + 2 + 2) units / 3 = 1.666.. -> 2.
        assert_eq!(vwap(5, 3), Some(Price::from_units(2)));
        // TC2: (1 + 2) units / 2 = 1.5 -> 2; (-1 - 2) / 2 = -1.5 -> -2.
        assert_eq!(vwap(3, 2), Some(Price::from_units(2)));
        assert_eq!(vwap(-3, 2), Some(Price::from_units(-2)));
        // TC3: 4 / 3 = 1.33.. -> 1; -4 / 3 -> -1.
        assert_eq!(vwap(4, 3), Some(Price::from_units(1)));
        assert_eq!(vwap(-4, 3), Some(Price::from_units(-1)));
        // TC4: no volume, no VWAP.
        assert_eq!(vwap(0, 0), None);
        // TC5: extremes: the largest price at the largest size stays exact.
        let big = i128::from(i64::MAX) * i128::from(u32::MAX);
        assert_eq!(vwap(big, u64::from(u32::MAX)), Some(Price::from_units(i64::MAX)));
    }

    #[test]
    fn intervals_align_to_wall_clock_boundaries_of_event_time() {
        let ts = 1_499_697_125_123_456_789_u64; // 2017-07-10T14:32:05.123456789Z
        assert_eq!(BarInterval::SECOND.start_of(ts), 1_499_697_125_000_000_000);
        assert_eq!(BarInterval::MINUTE.start_of(ts), 1_499_697_120_000_000_000);
        assert_eq!(
            BarInterval::MINUTE.start_of(1_499_697_120_000_000_000),
            1_499_697_120_000_000_000
        );
        assert_eq!(BarInterval::from_seconds(0).start_of(ts), ts);
        assert_eq!(
            [
                BarInterval::SECOND,
                BarInterval::MINUTE,
                BarInterval::from_seconds(300),
                BarInterval::from_seconds(90)
            ]
            .map(BarInterval::name),
            ["1s", "1m", "5m", "90s"]
        );
        assert_eq!(BarInterval::MINUTE.channel(), Channels::BARS_1M);
        assert_eq!(BarInterval::from_seconds(300).channel(), Channels::NONE);
    }
}
