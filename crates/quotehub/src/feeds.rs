//! Which feeds a hub reads: `--feed` arguments (`LOCATION[#SYMBOL,SYMBOL]`)
//! and how recorded ones are opened and merged.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use quotehub_feed::{FeedInput, MergedFeed, RecordedFeed, open_recorded};
use quotehub_proto::Symbol;

/// One feed: where it is, and the symbols wanted from it (all when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// A file path.
    pub location: String,
    /// After `#`: the only symbols taken from this feed.
    pub symbols: Option<HashSet<Symbol>>,
}

impl std::str::FromStr for FeedSpec {
    type Err = String;

    /// `feeds/a.jsonl`, or `iex.pcap.gz#AAPL,MSFT` to take only those symbols.
    fn from_str(text: &str) -> Result<Self, String> {
        let (location, filter) = match text.rsplit_once('#') {
            Some((location, filter)) => (location, Some(filter)),
            None => (text, None),
        };
        if location.is_empty() {
            return Err(format!("feed {text:?} names no file"));
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

/// Opens recorded feeds as one: a single unfiltered feed as it is, else
/// merged by event time with each feed's symbol filter.
pub fn open_recorded_feeds(specs: &[FeedSpec]) -> anyhow::Result<Box<dyn RecordedFeed>> {
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
    Ok(Box::new(MergedFeed::new(inputs)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
