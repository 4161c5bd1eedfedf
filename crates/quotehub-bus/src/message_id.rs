//! The id every record carries on the bus (header `Nats-Msg-Id`):
//! `<symbol>:<epoch>:<seq>`. JetStream stores a message whose id it has
//! seen within the stream's duplicate window only once, so a record sent
//! twice (a retry, a standby re-publishing) is stored once; and an edge
//! reads from it the sequence space (epoch) the record's number belongs to.

use quotehub_proto::{Epoch, Symbol};

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
        }
    }
}
