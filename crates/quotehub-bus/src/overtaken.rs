//! Which records whose publish failed are worth sending again.
//!
//! A record's ack can fail while the record still reaches the stream, and
//! later records of its symbol can reach the stream before it: the client
//! keeps what is published while it is disconnected and sends it once it
//! reconnects, while records written to the connection that broke are
//! lost. Sent again after those later records, a lost record would be
//! stored behind them, and a reader would see the symbol's numbers go back
//! (seen in `bus_hubs` and `bus_edge_overlap`: AAPL 52..60 stored before
//! 21..51). So, before a re-send, the stream's last record of each subject
//! among the failed is looked up; a failed record numbered at or below it
//! (same symbol, sequence space and channel) is left out. Either the stream
//! holds it (the re-send would be refused as a duplicate) or it was
//! overtaken: then the stream has a gap there, which readers see in order
//! and count, instead of a number that goes back.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;

use crate::message_id;

/// Longest one look-up (the client's flush, finding the subject's stream,
/// reading its last record) may take; one that does not answer keeps the
/// subject's records for the re-send, as before this check.
const LOOK_UP_DEADLINE: Duration = Duration::from_secs(2);

/// Longest all the look-ups before one re-send may take together (a
/// window of failed records can span hundreds of subjects): the subjects
/// not looked up by then keep their records.
const LOOK_UPS_DEADLINE: Duration = Duration::from_secs(5);

/// A record's message id cut into what names its run of numbers (symbol,
/// sequence space and, for a bar or BBO, channel) and its number.
fn run_and_number(id: &str) -> Option<(&str, u64)> {
    let (run, number) = id.rsplit_once(':')?;
    Some((run, number.parse().ok()?))
}

/// Whether a record with message id `ours` is at or below `stored`, the
/// message id of the stream's last record on its subject.
pub(crate) fn overtaken(ours: &str, stored: &str) -> bool {
    match (run_and_number(ours), run_and_number(stored)) {
        (Some((our_run, ours)), Some((stored_run, stored))) => our_run == stored_run && ours <= stored,
        _ => false,
    }
}

/// The message id of the stream's last record on `subject`, if the bus
/// answers within the deadline and the stream holds one.
async fn last_stored_id(jetstream: &jetstream::Context, subject: &str) -> Option<String> {
    let look = async {
        let name = jetstream.stream_by_subject(subject).await.ok()?;
        let stream = jetstream.get_stream_no_info(&name).await.ok()?;
        let last = stream.get_last_raw_message_by_subject(subject).await.ok()?;
        let id = last.headers.get(message_id::HEADER)?;
        Some(id.as_str().to_owned())
    };
    tokio::time::timeout(LOOK_UP_DEADLINE, look).await.ok().flatten()
}

/// Splits `failed` (each item with its subject and message id, through
/// `key`) into the items to send again, in their order, and those the
/// stream holds or has overtaken.
pub(crate) async fn worth_resending<T>(
    jetstream: &jetstream::Context,
    failed: Vec<T>,
    key: impl Fn(&T) -> (&str, &str),
) -> (Vec<T>, Vec<T>) {
    // What the client still keeps from the broken connection goes out
    // first, so that the last records looked up below are the ones a
    // re-send would land behind.
    let _ = tokio::time::timeout(LOOK_UP_DEADLINE, jetstream.client().flush()).await;
    let until = tokio::time::Instant::now() + LOOK_UPS_DEADLINE;
    let mut last: HashMap<String, Option<String>> = HashMap::new();
    for item in &failed {
        let (subject, _) = key(item);
        if !last.contains_key(subject) {
            let stored = match tokio::time::timeout_at(until, last_stored_id(jetstream, subject)).await {
                Ok(stored) => stored,
                Err(_) => break,
            };
            last.insert(subject.to_owned(), stored);
        }
    }
    failed.into_iter().partition(|item| {
        let (subject, id) = key(item);
        !last
            .get(subject)
            .and_then(Option::as_deref)
            .is_some_and(|stored| overtaken(id, stored))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_at_or_below_the_stored_last_of_its_run_is_overtaken() {
        assert!(overtaken("AAPL:e1:21", "AAPL:e1:60"));
        assert!(overtaken("AAPL:e1:60", "AAPL:e1:60"), "stored already");
        assert!(!overtaken("AAPL:e1:61", "AAPL:e1:60"));
        assert!(!overtaken("AAPL:e2:21", "AAPL:e1:60"), "another sequence space");
        assert!(overtaken("AAPL:e1:bbo:3", "AAPL:e1:bbo:9"));
        assert!(!overtaken("AAPL:e1:bbo:3", "AAPL:e1:bars.1s:9"), "another channel");
        assert!(!overtaken("AAPL:e1:x", "AAPL:e1:9"), "not a number: kept");
        assert!(
            !overtaken("AAPL:e1:10", "AAPL:e1:9"),
            "numbers compare as numbers, not text"
        );
    }
}
