//! Several recorded feeds replayed as one, merged by event time, each with
//! an optional symbol filter.

use std::collections::HashSet;

use quotehub_proto::{Event, Symbol};

use crate::error::FeedError;
use crate::source::{FeedStats, RecordedFeed};

/// One feed of a merge and the symbols wanted from it (all when `None`).
pub struct FeedInput {
    /// The feed.
    pub feed: Box<dyn RecordedFeed>,
    /// Only these symbols pass; the others are counted as filtered.
    pub symbols: Option<HashSet<Symbol>>,
}

impl std::fmt::Debug for FeedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedInput")
            .field("feed", &self.feed.name())
            .field("symbols", &self.symbols)
            .finish()
    }
}

/// Replays its inputs as one feed in event-time order: each step yields the
/// earliest of the inputs' next events, the earlier input first on a tie.
/// Each input keeps its own order (a feed whose clock steps back is not
/// re-sorted), so nothing is held back beyond one event per input.
///
/// Its counters add up the inputs': events delivered, rejections (with
/// where they were), and events left out by filters.
#[derive(Debug)]
pub struct MergedFeed {
    inputs: Vec<Merging>,
    /// True once every input's first event is read (after a rewind, false).
    primed: bool,
    name: String,
    stats: FeedStats,
}

#[derive(Debug)]
struct Merging {
    input: FeedInput,
    /// Its next wanted event, read ahead.
    head: Option<Event>,
    /// How many of its rejections (and kept details) are in the merged counters.
    rejected_seen: u64,
    kept_seen: usize,
}

impl MergedFeed {
    /// Merges `inputs` (at least one).
    pub fn new(inputs: Vec<FeedInput>) -> Self {
        let name = inputs
            .iter()
            .map(|input| input.feed.name().to_owned())
            .collect::<Vec<_>>()
            .join(" + ");
        Self {
            inputs: inputs
                .into_iter()
                .map(|input| Merging {
                    input,
                    head: None,
                    rejected_seen: 0,
                    kept_seen: 0,
                })
                .collect(),
            primed: false,
            name,
            stats: FeedStats::default(),
        }
    }

    /// Reads input `i`'s next wanted event into its head.
    fn advance(&mut self, i: usize) -> Result<(), FeedError> {
        let merging = &mut self.inputs[i];
        merging.head = loop {
            match merging.input.feed.next_event()? {
                Some(event) if wanted(&merging.input.symbols, &event) => break Some(event),
                Some(_) => self.stats.filtered += 1,
                None => break None,
            }
        };
        let child = merging.input.feed.stats();
        if child.rejected > merging.rejected_seen {
            self.stats.rejected += child.rejected - merging.rejected_seen;
            merging.rejected_seen = child.rejected;
            let room = FeedStats::KEPT_REJECTIONS.saturating_sub(self.stats.first_rejections.len());
            let new = &child.first_rejections[merging.kept_seen..];
            self.stats.first_rejections.extend(new.iter().take(room).cloned());
            merging.kept_seen = child.first_rejections.len();
        }
        Ok(())
    }
}

fn wanted(symbols: &Option<HashSet<Symbol>>, event: &Event) -> bool {
    symbols.as_ref().is_none_or(|set| set.contains(&event.symbol()))
}

impl RecordedFeed for MergedFeed {
    fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
        if !self.primed {
            for i in 0..self.inputs.len() {
                self.advance(i)?;
            }
            self.primed = true;
        }
        // A linear scan: merges have a handful of inputs.
        let earliest = self
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, merging)| merging.head.map(|event| (event.event_ts(), i)))
            .min();
        let Some((_, i)) = earliest else {
            return Ok(None);
        };
        let event = self.inputs[i].head.take();
        self.advance(i)?;
        self.stats.events += 1;
        Ok(event)
    }

    fn rewind(&mut self) -> Result<(), FeedError> {
        for merging in &mut self.inputs {
            merging.input.feed.rewind()?;
            merging.head = None;
        }
        self.primed = false;
        self.stats.passes += 1;
        Ok(())
    }

    fn stats(&self) -> &FeedStats {
        &self.stats
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quotehub_proto::{Price, Trade};

    /// A feed of trades at the given (symbol, time) pairs, with a rejection
    /// counted before each event at a time of 0.
    #[derive(Debug)]
    struct Listed {
        name: String,
        items: Vec<(&'static str, u64)>,
        at: usize,
        stats: FeedStats,
    }

    impl Listed {
        fn boxed(name: &str, items: &[(&'static str, u64)]) -> Box<dyn RecordedFeed> {
            Box::new(Self {
                name: name.into(),
                items: items.to_vec(),
                at: 0,
                stats: FeedStats::default(),
            })
        }
    }

    impl RecordedFeed for Listed {
        fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
            while let Some(&(symbol, ts)) = self.items.get(self.at) {
                self.at += 1;
                if ts == 0 {
                    self.stats.reject(crate::source::Rejection {
                        path: self.name.clone().into(),
                        line: self.at as u64,
                        error: crate::LineError::Shape("bad"),
                    });
                    continue;
                }
                self.stats.events += 1;
                return Ok(Some(Event::Trade(Trade {
                    symbol: symbol.parse().map_err(|_| FeedError::UnknownFormat {
                        path: self.name.clone().into(),
                        reason: "test symbol".into(),
                    })?,
                    price: Price::from_units(1),
                    size: 1,
                    event_ts: ts,
                    recv_ts: 0,
                    seq: 0,
                })));
            }
            Ok(None)
        }
        fn rewind(&mut self) -> Result<(), FeedError> {
            self.at = 0;
            Ok(())
        }
        fn stats(&self) -> &FeedStats {
            &self.stats
        }
        fn name(&self) -> &str {
            &self.name
        }
    }

    fn drain(feed: &mut dyn RecordedFeed) -> Vec<(String, u64)> {
        std::iter::from_fn(|| feed.next_event().unwrap())
            .map(|event| (event.symbol().to_string(), event.event_ts()))
            .collect()
    }

    fn owned(items: &[(&str, u64)]) -> Vec<(String, u64)> {
        items.iter().map(|&(s, t)| (s.to_owned(), t)).collect()
    }

    #[test]
    fn merges_by_event_time_earlier_input_first_on_ties() {
        let mut merged = MergedFeed::new(vec![
            FeedInput {
                feed: Listed::boxed("a", &[("A", 1), ("A", 4), ("A", 4), ("A", 9)]),
                symbols: None,
            },
            FeedInput {
                feed: Listed::boxed("b", &[("B", 2), ("B", 4), ("B", 5)]),
                symbols: None,
            },
            FeedInput {
                feed: Listed::boxed("c", &[]),
                symbols: None,
            },
        ]);
        let expected = owned(&[("A", 1), ("B", 2), ("A", 4), ("A", 4), ("B", 4), ("B", 5), ("A", 9)]);
        assert_eq!(drain(&mut merged), expected);
        assert_eq!(merged.stats().events, 7);
        assert_eq!(merged.name(), "a + b + c");
        merged.rewind().unwrap();
        assert_eq!(drain(&mut merged), expected);
        assert_eq!(merged.stats().passes, 1);
    }

    #[test]
    fn filters_per_input_and_adds_up_the_counters() {
        let only = |symbols: &[&str]| Some(symbols.iter().map(|s| s.parse().unwrap()).collect());
        let mut merged = MergedFeed::new(vec![
            FeedInput {
                feed: Listed::boxed("a", &[("A", 1), ("X", 2), ("bad", 0), ("A", 3)]),
                symbols: only(&["A"]),
            },
            FeedInput {
                feed: Listed::boxed("b", &[("X", 1), ("B", 2), ("bad", 0)]),
                symbols: only(&["B", "X"]),
            },
        ]);
        assert_eq!(drain(&mut merged), owned(&[("A", 1), ("X", 1), ("B", 2), ("A", 3)]));
        assert_eq!(merged.stats().filtered, 1);
        assert_eq!(merged.stats().rejected, 2);
        let places: Vec<_> = merged
            .stats()
            .first_rejections
            .iter()
            .map(|r| (r.path.display().to_string(), r.line))
            .collect();
        assert_eq!(places, [("a".to_owned(), 3), ("b".to_owned(), 3)]);
    }
}
