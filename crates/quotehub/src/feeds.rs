//! Which feeds a hub reads: `--feed` arguments (`LOCATION[#SYMBOL,SYMBOL]`)
//! and how recorded ones are opened and merged.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use quotehub_feed::live::LiveUrl;
use quotehub_feed::{FeedInput, MergedFeed, RecordedFeed, open_recorded};
use quotehub_proto::Symbol;

/// One feed: where it is, and the symbols wanted from it (all when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// A file path, or a live source's URL (`tcp://`, `ws://`, `quotehub://`...).
    pub location: String,
    /// After `#`: the only symbols taken from this feed.
    pub symbols: Option<HashSet<Symbol>>,
}

impl std::str::FromStr for FeedSpec {
    type Err = String;

    /// `feeds/a.jsonl`, `tcp://127.0.0.1:9000`, or `iex.pcap.gz#AAPL,MSFT` to
    /// take only those symbols.
    fn from_str(text: &str) -> Result<Self, String> {
        let (location, filter) = match text.rsplit_once('#') {
            Some((location, filter)) => (location, Some(filter)),
            None => (text, None),
        };
        if location.is_empty() {
            return Err(format!("feed {text:?} names no file or URL"));
        }
        let symbols = filter
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<Symbol>()
                            .map_err(|err| format!("feed {text:?}: symbol {s:?}: {err}"))
                    })
                    .collect::<Result<HashSet<_>, _>>()
            })
            .transpose()?;
        if symbols.as_ref().is_some_and(HashSet::is_empty) {
            return Err(format!("feed {text:?}: the symbol list after '#' is empty"));
        }
        Ok(Self {
            location: location.to_owned(),
            symbols,
        })
    }
}

impl std::fmt::Display for FeedSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location)?;
        if let Some(symbols) = &self.symbols {
            let mut names: Vec<_> = symbols.iter().map(Symbol::as_str).collect();
            names.sort_unstable();
            write!(f, "#{}", names.join(","))?;
        }
        Ok(())
    }
}

/// The feeds of a hub, sorted: live sources run side by side, recordings
/// are merged into one replay. Each keeps its position among the `--feed`
/// arguments, its number in status records.
#[derive(Debug, Default)]
pub struct FeedPlan {
    /// Recordings, with the number the merged replay announces itself by
    /// (the first recording's).
    pub recorded: Vec<FeedSpec>,
    /// The merged replay's feed number.
    pub recorded_number: u16,
    /// Live sources and their feed numbers.
    pub live: Vec<(u16, LiveUrl, FeedSpec)>,
}

impl FeedPlan {
    /// Sorts `specs` by kind: a `SCHEME://` location is a live source.
    pub fn new(specs: Vec<FeedSpec>) -> anyhow::Result<Self> {
        let mut plan = FeedPlan::default();
        for (number, spec) in specs.into_iter().enumerate() {
            let number = u16::try_from(number).context("more than 65,536 feeds")?;
            match LiveUrl::parse(&spec.location) {
                Some(url) => plan.live.push((number, url.map_err(anyhow::Error::msg)?, spec)),
                None => {
                    if plan.recorded.is_empty() {
                        plan.recorded_number = number;
                    }
                    plan.recorded.push(spec);
                }
            }
        }
        Ok(plan)
    }

    /// The recordings opened as one replay, if there are any.
    pub fn open_recordings(&self, times: MergeTimes) -> anyhow::Result<Option<Box<dyn RecordedFeed>>> {
        if self.recorded.is_empty() {
            return Ok(None);
        }
        open_recorded_feeds(&self.recorded, times).map(Some)
    }
}

/// How merged recordings are placed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTimes {
    /// As recorded, however far apart (nothing waits for the gap: `--speed
    /// max`, `convert`).
    AsRecorded,
    /// As recorded, but recordings that start more than [`MAX_START_SPREAD_NS`]
    /// apart are refused: paced, the later ones would wait that long.
    Close,
    /// Each shifted to start when the first does ([`MergedFeed::align`]).
    Aligned,
}

/// How far apart merged recordings may start under [`MergeTimes::Close`]: a day.
pub const MAX_START_SPREAD_NS: u64 = 24 * 3_600 * 1_000_000_000;

/// Opens recorded feeds as one: a single unfiltered feed as it is, else
/// merged by event time with each feed's symbol filter, placed in time as
/// `times` says.
pub fn open_recorded_feeds(specs: &[FeedSpec], times: MergeTimes) -> anyhow::Result<Box<dyn RecordedFeed>> {
    let mut inputs = specs
        .iter()
        .map(|spec| {
            let path = PathBuf::from(&spec.location);
            let feed = open_recorded(&path).with_context(|| format!("opening feed {}", path.display()))?;
            Ok(FeedInput {
                feed,
                symbols: spec.symbols.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if inputs.len() == 1 && inputs[0].symbols.is_none() {
        return Ok(inputs.remove(0).feed);
    }
    let mut merged = MergedFeed::new(inputs);
    match times {
        MergeTimes::AsRecorded => {}
        MergeTimes::Aligned => {
            let shifts = merged.align()?;
            if shifts.iter().any(|&shift| shift != 0) {
                tracing::info!(
                    feed = merged.name(),
                    "merged recordings aligned to the first one's start"
                );
            }
        }
        MergeTimes::Close => {
            let starts = merged.starts()?;
            let known = starts.iter().flatten();
            if let (Some(first), Some(last)) = (known.clone().min(), known.max())
                && last - first > MAX_START_SPREAD_NS
            {
                let listed: Vec<String> = specs
                    .iter()
                    .zip(&starts)
                    .filter_map(|(spec, start)| {
                        Some(format!(
                            "{} at {}",
                            spec.location,
                            quotehub_feed::format_event_time((*start)?)
                        ))
                    })
                    .collect();
                anyhow::bail!(
                    "the merged recordings start {} apart ({}): replayed at pace, the later ones would wait \
                     that long; pass --align (or serve.align = true) to shift each to the first one's start",
                    quotehub_feed::merge::describe_shift((last - first) as i64).trim_start_matches('+'),
                    listed.join(", ")
                );
            }
        }
    }
    Ok(Box::new(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_merge_recordings_and_number_feeds_by_position() {
        let specs = ["tcp://127.0.0.1:9000#AAPL", "a.jsonl", "quotehub://h:1", "b.qhc#MSFT"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let plan = FeedPlan::new(specs).unwrap();
        let recorded: Vec<_> = plan.recorded.iter().map(ToString::to_string).collect();
        assert_eq!(recorded, ["a.jsonl", "b.qhc#MSFT"]);
        assert_eq!(plan.recorded_number, 1);
        let live: Vec<_> = plan
            .live
            .iter()
            .map(|(n, url, spec)| (*n, url.to_string(), spec.to_string()))
            .collect();
        assert_eq!(
            live,
            [
                (
                    0,
                    "tcp://127.0.0.1:9000".to_owned(),
                    "tcp://127.0.0.1:9000#AAPL".to_owned()
                ),
                (2, "quotehub://h:1".to_owned(), "quotehub://h:1".to_owned())
            ]
        );
        let bad = FeedPlan::new(vec!["udp://h:1".parse().unwrap()]).unwrap_err();
        assert!(bad.to_string().contains("unknown feed scheme"), "{bad}");
    }

    #[test]
    fn specs_name_a_location_and_maybe_symbols() {
        let plain: FeedSpec = "feeds/a.jsonl".parse().unwrap();
        assert_eq!(plain.location, "feeds/a.jsonl");
        assert_eq!(plain.symbols, None);
        let filtered: FeedSpec = "/data/iex.pcap.gz#MSFT, BRK.B,AAPL".parse().unwrap();
        assert_eq!(filtered.location, "/data/iex.pcap.gz");
        assert_eq!(filtered.to_string(), "/data/iex.pcap.gz#AAPL,BRK.B,MSFT");
        for (bad, why) in [
            ("#AAPL", "names no file"),
            ("a.jsonl#", "empty"),
            ("a.jsonl#A B", "symbol"),
        ] {
            let error = bad.parse::<FeedSpec>().unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
