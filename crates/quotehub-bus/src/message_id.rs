//! The id every record carries on the bus (header `Nats-Msg-Id`):
//! `<symbol>:<epoch>:<seq>`, and for a bar or BBO record (numbered in its
//! channel's own sequence) `<symbol>:<epoch>:<channel>:<seq>`. JetStream
//! stores a message whose id it has seen within the stream's duplicate
//! window only once, so a record sent twice (a retry, a standby
//! re-publishing) is stored once; and an edge reads from it the sequence
//! space (epoch) the record's number belongs to.

use quotehub_proto::{Channels, Epoch, Symbol};

use crate::subject::{channel_of_token, derived_token};

/// The header JetStream de-duplicates on.
pub const HEADER: &str = "Nats-Msg-Id";

/// The message id of record `seq` of `symbol` in sequence space `epoch`.
pub fn format(symbol: &Symbol, epoch: Epoch, seq: u64) -> String {
    format!("{}:{epoch}:{seq}", symbol.as_str())
}

/// The symbol, epoch and sequence number an id names; `None` for an id
/// that is not exactly what [`fn@format`] writes.
pub fn parse(id: &str) -> Option<(Symbol, Epoch, u64)> {
    // Symbols hold no ':', so the last two colons split the id.
    let mut parts = id.rsplitn(3, ':');
    let (seq_text, epoch, symbol) = (parts.next()?, parts.next()?, parts.next()?);
    let seq: u64 = seq_text.parse().ok()?;
    // u64's parser takes a leading '+' or zeros; the writer writes neither.
    if seq.to_string() != seq_text {
        return None;
    }
    Some((Symbol::from_bytes(symbol.as_bytes()).ok()?, epoch.parse().ok()?, seq))
}

/// The message id of record `seq` of `symbol`'s derived `channel` (its
/// own sequence) in sequence space `epoch`; `None` for a channel set that
/// is not one derived channel.
pub fn format_derived(symbol: &Symbol, epoch: Epoch, channel: Channels, seq: u64) -> Option<String> {
    Some(format!("{}:{epoch}:{}:{seq}", symbol.as_str(), derived_token(channel)?))
}

/// The symbol, epoch, derived channel and sequence number an id of
/// [`format_derived`] names; `None` for anything else.
pub fn parse_derived(id: &str) -> Option<(Symbol, Epoch, Channels, u64)> {
    let (rest, seq) = id.rsplit_once(':')?;
    let (rest, channel) = rest.rsplit_once(':')?;
    let channel = channel_of_token(channel)?;
    let (symbol, epoch, seq) = parse(&format!("{rest}:{seq}"))?;
    Some((symbol, epoch, channel, seq))
}

/// The sequence space an id of either form names.
pub fn epoch(id: &str) -> Option<Epoch> {
    parse(id)
        .map(|(_, epoch, _)| epoch)
        .or_else(|| parse_derived(id).map(|(_, epoch, _, _)| epoch))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_round_trip_and_nothing_else_parses() {
        let epoch = Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap();
        let symbol = Symbol::from_bytes(b"BRK.B").unwrap();
        let id = format(&symbol, epoch, 42);
        assert_eq!(id, "BRK.B:00c0ffee00000001:42");
        assert_eq!(parse(&id), Some((symbol, epoch, 42)));
        for bad in [
            "",
            "BRK.B:00c0ffee00000001",
            "BRK.B:00c0ffee00000001:+42",
            "BRK.B:00c0ffee00000001:042",
            "BRK.B:00c0ffee00000001:-1",
            "BRK.B:00C0FFEE00000001:42",
            "BRK.B:0000000000000000:42",
            "BRK*B:00c0ffee00000001:42",
            "A:B:00c0ffee00000001:42",
            ":00c0ffee00000001:42",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
            assert_eq!(super::epoch(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn derived_ids_round_trip_and_are_told_from_record_ids() {
        let epoch_a = Epoch::from_u64(0x00c0_ffee_0000_0001).unwrap();
        let symbol = Symbol::from_bytes(b"BRK.B").unwrap();
        let id = format_derived(&symbol, epoch_a, Channels::BARS_1M, 7).unwrap();
        assert_eq!(id, "BRK.B:00c0ffee00000001:bars-1m:7");
        assert_eq!(parse_derived(&id), Some((symbol, epoch_a, Channels::BARS_1M, 7)));
        assert_eq!(parse(&id), None, "not a quote or trade's id");
        assert_eq!(epoch(&id), Some(epoch_a));
        assert_eq!(epoch(&format(&symbol, epoch_a, 7)), Some(epoch_a));
        assert_eq!(parse_derived(&format(&symbol, epoch_a, 7)), None);
        assert_eq!(format_derived(&symbol, epoch_a, Channels::QUOTES, 7), None);
        for bad in [
            "BRK.B:00c0ffee00000001:bars.1m:7",
            "BRK.B:00c0ffee00000001:quotes:7",
            "BRK.B:00c0ffee00000001:bbo:07",
            "BRK.B:00c0ffee00000001:bbo:",
            "BRK.B:bbo:00c0ffee00000001:7",
            ":00c0ffee00000001:bbo:7",
            "A:B:00c0ffee00000001:bbo:7",
        ] {
            assert_eq!(parse_derived(bad), None, "{bad:?}");
            assert_eq!(epoch(bad), None, "{bad:?}");
        }
    }
}
