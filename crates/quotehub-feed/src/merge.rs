//! Several recorded feeds replayed as one, merged by event time, each with
//! an optional symbol filter, and optionally shifted in time so that they
//! all start together ([`MergedFeed::align`]): recordings of different days
//! merged as recorded would leave the later ones waiting for the days
//! between them to pass.

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
    /// Its next wanted event, read ahead (shifted).
    head: Option<Event>,
    /// Nanoseconds added to each of its events' times (see [`MergedFeed::align`]).
    shift: i64,
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
                    shift: 0,
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
                Some(mut event) if wanted(&merging.input.symbols, &event) => {
                    if merging.shift != 0 {
                        event.set_event_ts(event.event_ts().saturating_add_signed(merging.shift));
                    }
                    break Some(event);
                }
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

    /// Reads every input's first event, once.
    fn prime(&mut self) -> Result<(), FeedError> {
        if !self.primed {
            for i in 0..self.inputs.len() {
                self.advance(i)?;
            }
            self.primed = true;
        }
        Ok(())
    }

    /// When each input's first wanted event happened (as shifted), in input
    /// order; `None` for an input with none.
    pub fn starts(&mut self) -> Result<Vec<Option<u64>>, FeedError> {
        self.prime()?;
        Ok(self
            .inputs
            .iter()
            .map(|merging| merging.head.as_ref().map(Event::event_ts))
            .collect())
    }

    /// Shifts every input in time so that it starts when the first input
    /// does (inputs with no events stay as they are), and says so in the
    /// feed's name. Returns each input's shift in nanoseconds. Call it
    /// before the first event is taken.
    pub fn align(&mut self) -> Result<Vec<i64>, FeedError> {
        let starts = self.starts()?;
        let Some(anchor) = starts.first().copied().flatten() else {
            return Ok(vec![0; starts.len()]);
        };
        let mut shifts = Vec::with_capacity(starts.len());
        for (merging, start) in self.inputs.iter_mut().zip(&starts) {
            let shift = start.map_or(0, |start| (i128::from(anchor) - i128::from(start)) as i64);
            merging.shift = shift;
            if let Some(head) = merging.head.as_mut() {
                head.set_event_ts(head.event_ts().saturating_add_signed(shift));
            }
            shifts.push(shift);
        }
        let moved: Vec<String> = self
            .inputs
            .iter()
            .filter(|merging| merging.shift != 0)
            .map(|merging| format!("{} {}", merging.input.feed.name(), describe_shift(merging.shift)))
            .collect();
        if !moved.is_empty() {
            self.name = format!("{} (aligned to the first's start: {})", self.name, moved.join(", "));
        }
        Ok(shifts)
    }
}

/// `-3420.2 days`, `+2.5 hours`, `-40 s`: a shift as a person reads it.
pub fn describe_shift(ns: i64) -> String {
    let seconds = ns as f64 / 1e9;
    let (value, unit) = match seconds.abs() {
        s if s >= 86_400.0 => (seconds / 86_400.0, "days"),
        s if s >= 3_600.0 => (seconds / 3_600.0, "hours"),
        _ => (seconds, "s"),
    };
    format!("{value:+.1} {unit}")
}

fn wanted(symbols: &Option<HashSet<Symbol>>, event: &Event) -> bool {
    symbols.as_ref().is_none_or(|set| set.contains(&event.symbol()))
}

impl RecordedFeed for MergedFeed {
    fn next_event(&mut self) -> Result<Option<Event>, FeedError> {
        self.prime()?;
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
    fn aligned_inputs_start_together_and_keep_their_own_spacing_across_passes() {
        let day = 86_400 * 1_000_000_000;
        let mut merged = MergedFeed::new(vec![
            FeedInput {
                feed: Listed::boxed("a", &[("A", 10), ("A", 30)]),
                symbols: None,
            },
            FeedInput {
                feed: Listed::boxed("b", &[("B", 5 * day), ("B", 5 * day + 15)]),
                symbols: None,
            },
        ]);
        assert_eq!(merged.starts().unwrap(), [Some(10), Some(5 * day)]);
        assert_eq!(merged.align().unwrap(), [0, 10 - 5 * day as i64]);
        let expected = owned(&[("A", 10), ("B", 10), ("B", 25), ("A", 30)]);
        assert_eq!(drain(&mut merged), expected);
        assert!(merged.name().contains("b -5.0 days"), "{}", merged.name());
        merged.rewind().unwrap();
        assert_eq!(drain(&mut merged), expected, "the shift outlives a rewind");
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
