//! What every target is asked to do: which symbols exist, who subscribes to
//! which, and the quote the feed sends as its k-th record, in the JSON line
//! the hub and the peer read and the binary record the floor forwards.

use std::collections::HashSet;

use quotehub_feed::synth::SplitMix64;
use quotehub_proto::{Flags, Price, Quote, QuoteRecord, Symbol};
use serde::Serialize;

/// How the clients' subscriptions are laid over the symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Consecutive symbols from each client's own offset: clients whose
    /// offsets coincide hold the same set, as screens watching one list do
    /// (100 clients over 20 symbols, 5 each, hold 4 distinct sets).
    Blocks,
    /// Each client draws its own symbols (seeded by its index), so sets
    /// rarely repeat: no two clients need get the same records.
    Scattered,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Scattered => "scattered",
        }
    }

    /// The indices of the `per_client` distinct symbols (of `symbols`) that
    /// client `client` subscribes to.
    fn symbol_indices(self, client: usize, symbols: usize, per_client: usize) -> Vec<usize> {
        match self {
            // Offsets step by `per_client`, so subscriptions spread evenly
            // over the symbols.
            Self::Blocks => {
                let first = client.wrapping_mul(per_client) % symbols;
                (0..per_client).map(|j| (first + j) % symbols).collect()
            }
            // Floyd's sampling: `per_client` of `symbols` without
            // replacement, each set equally likely.
            Self::Scattered => {
                // Seeded by the client's index: the same client draws the
                // same symbols in every run and every target.
                let mut random = SplitMix64(client as u64);
                let mut chosen = Vec::with_capacity(per_client);
                for j in symbols - per_client..symbols {
                    let pick = usize::try_from(random.next_u64() % (j as u64 + 1)).unwrap_or(0);
                    chosen.push(if chosen.contains(&pick) { j } else { pick });
                }
                chosen
            }
        }
    }
}

/// The shape of one load: clients, symbols and their subscriptions.
#[derive(Debug, Clone)]
pub struct Workload {
    pub clients: usize,
    pub symbols: Vec<Symbol>,
    pub symbols_per_client: usize,
    pub layout: Layout,
    /// How many clients subscribe to each symbol, by symbol index.
    subscribers: Vec<u64>,
}

impl Workload {
    pub fn new(clients: usize, symbols: usize, symbols_per_client: usize, layout: Layout) -> anyhow::Result<Self> {
        anyhow::ensure!(clients >= 1, "--clients must be at least 1");
        anyhow::ensure!(symbols >= 1, "--symbols must be at least 1");
        anyhow::ensure!(
            (1..=symbols).contains(&symbols_per_client),
            "--symbols-per-client must be between 1 and --symbols ({symbols})"
        );
        let names = (0..symbols)
            .map(|i| format!("S{i:05}").parse::<Symbol>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("symbol name: {err}"))?;
        let mut subscribers = vec![0u64; symbols];
        for client in 0..clients {
            for index in layout.symbol_indices(client, symbols, symbols_per_client) {
                subscribers[index] += 1;
            }
        }
        Ok(Self {
            clients,
            symbols: names,
            symbols_per_client,
            layout,
            subscribers,
        })
    }

    /// The symbols client `client` subscribes to.
    pub fn subscriptions(&self, client: usize) -> Vec<Symbol> {
        self.layout
            .symbol_indices(client, self.symbols.len(), self.symbols_per_client)
            .into_iter()
            .map(|index| self.symbols[index])
            .collect()
    }

    /// How many different sets of symbols the clients hold: what a target
    /// that shares work between clients with the same set can share.
    pub fn distinct_sets(&self) -> usize {
        let sets: HashSet<Vec<usize>> = (0..self.clients)
            .map(|client| {
                let mut set = self
                    .layout
                    .symbol_indices(client, self.symbols.len(), self.symbols_per_client);
                set.sort_unstable();
                set
            })
            .collect();
        sets.len()
    }

    /// The symbol index of the feed's k-th record: round robin.
    pub fn symbol_of(&self, k: u64) -> usize {
        usize::try_from(k % self.symbols.len() as u64).unwrap_or(0)
    }

    /// Deliveries owed for the feed's records `0..published`.
    pub fn expected_deliveries(&self, published: u64) -> u64 {
        let m = self.symbols.len() as u64;
        let whole_rounds = published / m;
        let total_per_round: u64 = self.subscribers.iter().sum();
        let partial: u64 = self.subscribers[..usize::try_from(published % m).unwrap_or(0)]
            .iter()
            .sum();
        whole_rounds * total_per_round + partial
    }

    /// Mean subscribers per published record.
    pub fn fanout(&self) -> f64 {
        self.subscribers.iter().sum::<u64>() as f64 / self.symbols.len() as f64
    }
}

/// The k-th quote: `event_ts` is its intended send time, and `bid_size`
/// carries the phase it is measured in (0 during warm-up), which every target
/// passes through untouched, so a client knows where to count it.
pub fn quote(workload: &Workload, k: u64, intended_ns: u64, phase: u32) -> Quote {
    let cents = 10_000 + i64::try_from(k % 100).unwrap_or(0);
    Quote {
        symbol: workload.symbols[workload.symbol_of(k)],
        bid_price: Price::from_units(cents * 10_000_000),
        bid_size: phase,
        ask_price: Price::from_units((cents + 1) * 10_000_000),
        ask_size: 100,
        event_ts: intended_ns,
        recv_ts: 0,
        seq: k + 1,
    }
}

/// The JSON line the hub's feed decoder reads (prices as exact decimal strings).
pub fn json_line(quote: &Quote, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = writeln!(
        out,
        r#"{{"ev":"Q","sym":"{}","bp":"{}","bs":{},"ap":"{}","as":{},"t":{}}}"#,
        quote.symbol,
        quote.bid_price.to_decimal().normalize(),
        quote.bid_size,
        quote.ask_price.to_decimal().normalize(),
        quote.ask_size,
        quote.event_ts
    );
}

/// The 72-byte record the floor forwards as it is.
pub fn binary_record(quote: &Quote, out: &mut Vec<u8>) {
    out.extend_from_slice(
        &QuoteRecord {
            quote: *quote,
            flags: Flags::default(),
            conflated: 0,
        }
        .encode(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_deliveries_count_each_subscriber_of_each_record() {
        for layout in [Layout::Blocks, Layout::Scattered] {
            let workload = Workload::new(7, 5, 2, layout).unwrap();
            let mut brute = 0;
            for k in 0..23u64 {
                let symbol = workload.symbols[workload.symbol_of(k)];
                brute += (0..7).filter(|&c| workload.subscriptions(c).contains(&symbol)).count() as u64;
                assert_eq!(workload.expected_deliveries(k + 1), brute, "{layout:?}");
            }
        }
    }

    #[test]
    fn blocks_repeat_sets_and_scattered_sets_are_distinct_symbols_that_rarely_repeat() {
        let blocks = Workload::new(100, 20, 5, Layout::Blocks).unwrap();
        assert_eq!(blocks.distinct_sets(), 4);
        let scattered = Workload::new(100, 20, 5, Layout::Scattered).unwrap();
        // 15,504 sets of 5 of 20; with these seeds no two of the 100 draws
        // repeat (the committed scattered reports say 100 distinct sets).
        assert_eq!(scattered.distinct_sets(), 100);
        for client in 0..100 {
            let mut set = scattered.subscriptions(client);
            assert_eq!(
                set,
                Workload::new(100, 20, 5, Layout::Scattered)
                    .unwrap()
                    .subscriptions(client)
            );
            set.sort_unstable_by_key(ToString::to_string);
            set.dedup();
            assert_eq!(set.len(), 5, "client {client}: five different symbols");
        }
        // Every symbol is someone's: the feed's quotes all fan out.
        assert!(scattered.subscribers.iter().all(|&count| count > 0));
        let all = Workload::new(3, 4, 4, Layout::Scattered).unwrap();
        assert_eq!(all.distinct_sets(), 1, "all four symbols, in whatever order");
    }

    #[test]
    fn the_json_line_decodes_to_the_same_quote() {
        let workload = Workload::new(1, 3, 1, Layout::Blocks).unwrap();
        let mut decoder = quotehub_feed::JsonLineDecoder::new();
        for k in [0, 4, 90, 99, 100] {
            let quote = quote(&workload, k, 1_795_185_012_481_269_311 + k, 2);
            let mut line = Vec::new();
            json_line(&quote, &mut line);
            assert_eq!(line.last(), Some(&b'\n'));
            let length = line.len() - 1;
            let decoded = decoder.decode(&mut line[..length]).unwrap();
            let quotehub_proto::Event::Quote(decoded) = decoded else {
                panic!("not a quote: {decoded:?}")
            };
            assert_eq!((decoded.symbol, decoded.event_ts), (quote.symbol, quote.event_ts));
            assert_eq!(
                (decoded.bid_price, decoded.ask_price),
                (quote.bid_price, quote.ask_price)
            );
            assert_eq!((decoded.bid_size, decoded.ask_size), (quote.bid_size, quote.ask_size));
        }
    }
}
