//! Channels: which kinds of records a subscription asks for, per symbol.
//!
//! A request names channels by text (`"quotes"`, `"bars.1m"`, ...); the hub
//! keeps them as a [`Channels`] bitset, one bit per channel, so that asking
//! "does this subscriber want this record?" on the publish path is one AND.

use crate::record::rtype;

/// A set of channels, one bit each. `Copy`, one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Channels(u8);

impl Channels {
    /// No channel.
    pub const NONE: Channels = Channels(0);
    /// Quote records (`rtype` 0x02).
    pub const QUOTES: Channels = Channels(0x01);
    /// Trade records (`rtype` 0x03).
    pub const TRADES: Channels = Channels(0x02);
    /// Bar records of 1-second intervals (`rtype` 0x05, `interval_s` 1).
    pub const BARS_1S: Channels = Channels(0x04);
    /// Bar records of 1-minute intervals (`rtype` 0x05, `interval_s` 60).
    pub const BARS_1M: Channels = Channels(0x08);
    /// Consolidated best bid and offer records (`rtype` 0x06).
    pub const BBO: Channels = Channels(0x10);
    /// Every channel this build knows.
    pub const ALL: Channels = Channels(0x1f);
    /// What a subscribe without `channels` gets: quotes and trades, as
    /// before channels existed, so that no existing client changes.
    pub const DEFAULT: Channels = Channels(0x03);

    /// Each channel with its name in requests, in the order SPEC.md lists them.
    pub const NAMED: [(Channels, &'static str); 5] = [
        (Channels::QUOTES, "quotes"),
        (Channels::TRADES, "trades"),
        (Channels::BARS_1S, "bars.1s"),
        (Channels::BARS_1M, "bars.1m"),
        (Channels::BBO, "bbo"),
    ];

    /// The channel named `name` in a request, if this build knows it.
    pub fn from_name(name: &str) -> Option<Channels> {
        Channels::NAMED
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(channel, _)| *channel)
    }

    /// The raw bits (for counters and logs).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set of these bits (as [`Channels::bits`] gave them); bits of no
    /// known channel are dropped.
    pub const fn from_bits(bits: u8) -> Channels {
        Channels(bits & Channels::ALL.0)
    }

    /// True when the set holds no channel.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every channel of `other` is in the set.
    pub const fn contains(self, other: Channels) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when the sets share a channel.
    pub const fn intersects(self, other: Channels) -> bool {
        self.0 & other.0 != 0
    }

    /// The union of both sets.
    #[must_use]
    pub const fn with(self, other: Channels) -> Channels {
        Channels(self.0 | other.0)
    }

    /// The set without the channels of `other`.
    #[must_use]
    pub const fn without(self, other: Channels) -> Channels {
        Channels(self.0 & !other.0)
    }

    /// The names of the channels in the set, in [`Channels::NAMED`] order.
    pub fn names(self) -> Vec<&'static str> {
        Channels::NAMED
            .iter()
            .filter(|(channel, _)| self.contains(*channel))
            .map(|(_, name)| *name)
            .collect()
    }

    /// The channel an encoded record belongs to, read from its type byte
    /// (and a bar's `interval_s`): what the publish path ANDs with a
    /// subscriber's set. Status records, the message header, bars of other
    /// intervals and unknown or cut-short records belong to no channel
    /// ([`Channels::NONE`]); status records go to every client regardless.
    pub fn of_wire(record: &[u8]) -> Channels {
        match record.get(2).copied() {
            Some(rtype::QUOTE) => Channels::QUOTES,
            Some(rtype::TRADE) => Channels::TRADES,
            Some(rtype::BBO) => Channels::BBO,
            Some(rtype::BAR) => match record.get(96..100) {
                Some(&[1, 0, 0, 0]) => Channels::BARS_1S,
                Some(&[60, 0, 0, 0]) => Channels::BARS_1M,
                _ => Channels::NONE,
            },
            _ => Channels::NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut seen = Channels::NONE;
        for (channel, name) in Channels::NAMED {
            assert_eq!(Channels::from_name(name), Some(channel), "{name}");
            assert_eq!(channel.names(), [name]);
            assert!(!seen.intersects(channel), "{name} shares a bit");
            seen = seen.with(channel);
        }
        assert_eq!(seen, Channels::ALL);
        assert_eq!(Channels::DEFAULT.names(), ["quotes", "trades"]);
        // TC0: case matters. TC1: an interval this build does not carry.
        assert_eq!(Channels::from_name("Quotes"), None);
        assert_eq!(Channels::from_name("bars.5m"), None);
    }

    #[test]
    fn set_operations() {
        let set = Channels::QUOTES.with(Channels::BBO);
        assert!(set.contains(Channels::BBO) && !set.contains(Channels::TRADES));
        assert!(set.intersects(Channels::DEFAULT));
        assert_eq!(set.without(Channels::QUOTES), Channels::BBO);
        assert!(set.without(Channels::ALL).is_empty());
        assert_eq!(
            Channels::ALL.without(Channels::DEFAULT).names(),
            ["bars.1s", "bars.1m", "bbo"]
        );
    }
}
