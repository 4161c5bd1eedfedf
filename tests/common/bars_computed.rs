//! The tests' own bars, computed plainly from trades (shared by the bars
//! tests: the engine's builder in `bars.rs`, the hub's channels in
//! `bars_live.rs`).

use std::collections::BTreeMap;

use quotehub_proto::bar::{Bar, BarInterval};
use quotehub_proto::{Price, Symbol, Trade};
use rust_decimal::{Decimal, RoundingStrategy};

/// Bars of one symbol and one interval (in seconds), in the order emitted.
pub type Bars = BTreeMap<(Symbol, u32), Vec<Bar>>;

/// This test's own bars: trades grouped by symbol and floor(event time /
/// interval), in file order; prices as decimals; VWAP by decimal division,
/// rounded half up (away from zero) to 9 places. Size-0 trades are not
/// trades for bars (bars.rs says why).
pub fn computed(trades: &[Trade]) -> Bars {
    let mut bars = Bars::new();
    for seconds in [1u32, 60] {
        let length = u64::from(seconds) * 1_000_000_000;
        let mut groups: BTreeMap<(Symbol, u64), Vec<&Trade>> = BTreeMap::new();
        for trade in trades.iter().filter(|trade| trade.size > 0) {
            groups
                .entry((trade.symbol, trade.event_ts / length))
                .or_default()
                .push(trade);
        }
        for ((symbol, bucket), trades) in groups {
            let prices: Vec<Decimal> = trades.iter().map(|t| t.price.to_decimal()).collect();
            let volume: u64 = trades.iter().map(|t| u64::from(t.size)).sum();
            let notional: Decimal = trades
                .iter()
                .map(|t| t.price.to_decimal() * Decimal::from(t.size))
                .sum();
            let vwap =
                (notional / Decimal::from(volume)).round_dp_with_strategy(9, RoundingStrategy::MidpointAwayFromZero);
            let price = |d: Decimal| Price::try_from(d).unwrap();
            let series = bars.entry((symbol, seconds)).or_default();
            series.push(Bar {
                symbol,
                interval: BarInterval::from_seconds(seconds),
                start_ts: bucket * length,
                recv_ts: 0,
                open: price(prices[0]),
                high: price(prices.iter().copied().max().unwrap()),
                low: price(prices.iter().copied().min().unwrap()),
                close: price(*prices.last().unwrap()),
                vwap: price(vwap),
                volume,
                trade_count: trades.len() as u32,
                seq: series.len() as u64 + 1,
            });
        }
    }
    bars
}
