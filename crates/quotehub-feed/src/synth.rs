//! A deterministic generator of a realistic US-equity session, used to build
//! the bundled feed (`quotehub synth --seed N`).
//!
//! Only integer arithmetic and its own PRNG are used, so a seed produces the
//! same bytes on every platform and with every dependency version.

use std::io::{self, Write};

use quotehub_proto::Price;

/// The default seed of the bundled feed.
pub const DEFAULT_SEED: u64 = 20_261_120;

/// 2026-11-20 14:30:00 UTC: the 09:30 ET opening bell.
const SESSION_START_NS: u64 = 1_795_185_000 * 1_000_000_000;

/// How the session is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    /// PRNG seed; the same seed writes the same bytes.
    pub seed: u64,
    /// Market time covered, in seconds from the open.
    pub seconds: u32,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            seconds: 300,
        }
    }
}

/// One listed instrument: symbol, opening price in cents, relative activity,
/// spread in cents when calm, and the most round lots usually shown.
struct Listing {
    symbol: &'static str,
    open_cents: i64,
    activity: u32,
    spread_cents: i64,
    max_lots: u32,
}

const fn listing(symbol: &'static str, open_cents: i64, activity: u32, spread_cents: i64, max_lots: u32) -> Listing {
    Listing {
        symbol,
        open_cents,
        activity,
        spread_cents,
        max_lots,
    }
}

/// Sixty-two real tickers with prices of their late-2026 neighbourhood;
/// `activity` is calm events per second before [`CALM_RATE_PERCENT`].
const LISTINGS: &[Listing] = &[
    listing("SPY", 67_012, 60, 1, 40),
    listing("QQQ", 60_125, 50, 1, 30),
    listing("IWM", 24_133, 20, 1, 30),
    listing("DIA", 47_055, 6, 2, 10),
    listing("AAPL", 27_114, 45, 1, 20),
    listing("MSFT", 51_022, 30, 2, 10),
    listing("NVDA", 18_561, 55, 1, 40),
    listing("AMZN", 22_478, 30, 1, 20),
    listing("GOOGL", 28_036, 25, 1, 15),
    listing("GOOG", 28_191, 12, 2, 10),
    listing("META", 60_140, 22, 3, 8),
    listing("TSLA", 42_017, 50, 3, 15),
    listing("BRK.B", 50_210, 6, 3, 5),
    listing("BF.B", 2_812, 3, 1, 20),
    listing("JPM", 30_044, 12, 2, 8),
    listing("V", 34_180, 8, 2, 6),
    listing("MA", 56_025, 6, 4, 4),
    listing("JNJ", 19_066, 6, 1, 8),
    listing("WMT", 10_092, 12, 1, 20),
    listing("XOM", 11_548, 10, 1, 15),
    listing("CVX", 15_521, 6, 1, 8),
    listing("UNH", 33_012, 8, 3, 5),
    listing("PG", 14_995, 5, 1, 8),
    listing("HD", 37_955, 5, 3, 4),
    listing("LLY", 90_140, 8, 8, 3),
    listing("ABBV", 22_053, 5, 2, 6),
    listing("KO", 6_987, 8, 1, 30),
    listing("PEP", 14_911, 5, 1, 8),
    listing("COST", 92_037, 5, 9, 2),
    listing("AVGO", 35_060, 25, 3, 10),
    listing("MRK", 8_512, 6, 1, 15),
    listing("BAC", 5_207, 18, 1, 60),
    listing("WFC", 8_544, 8, 1, 20),
    listing("C", 10_015, 7, 1, 15),
    listing("GS", 78_033, 4, 12, 2),
    listing("MS", 16_022, 5, 2, 8),
    listing("ORCL", 22_076, 14, 2, 8),
    listing("CSCO", 7_019, 8, 1, 25),
    listing("ADBE", 33_045, 5, 4, 4),
    listing("CRM", 24_088, 6, 3, 5),
    listing("NFLX", 11_032, 12, 2, 10),
    listing("AMD", 25_041, 30, 2, 15),
    listing("INTC", 3_811, 20, 1, 80),
    listing("QCOM", 17_002, 7, 2, 8),
    listing("TXN", 16_055, 4, 2, 6),
    listing("IBM", 30_077, 5, 4, 4),
    listing("INTU", 65_020, 3, 10, 2),
    listing("AMAT", 22_014, 6, 2, 6),
    listing("MU", 21_033, 14, 2, 10),
    listing("DIS", 11_009, 6, 1, 10),
    listing("NKE", 6_544, 6, 1, 15),
    listing("MCD", 30_012, 4, 3, 4),
    listing("T", 2_608, 8, 1, 80),
    listing("VZ", 4_012, 6, 1, 40),
    listing("PFE", 2_533, 8, 1, 80),
    listing("BA", 20_066, 7, 3, 5),
    listing("CAT", 55_010, 4, 6, 3),
    listing("GE", 30_021, 5, 3, 4),
    listing("F", 1_302, 10, 1, 120),
    listing("UBER", 9_518, 10, 1, 15),
    listing("PLTR", 18_025, 25, 2, 20),
    listing("ZVZZT", 1_000, 1, 1, 5),
];

/// Scales every listing's `activity` (calm events per second) so the whole
/// five-minute session stays a few megabytes: about 210 events a second when
/// calm, over a thousand in the opening rush.
const CALM_RATE_PERCENT: u64 = 25;

/// Symbols moved by the semiconductor headline at 95 s.
const CHIP_NEWS: &[&str] = &["NVDA", "AMD", "AVGO", "MU", "INTC", "QCOM", "AMAT", "TXN"];
/// Symbols moved by the index-futures swing at 210 s.
const INDEX_SWING: &[&str] = &["SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "AMZN"];

/// SplitMix64: tiny, fast, and fixed forever (unlike a library RNG whose
/// stream may change between versions). The seed is its state.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// True with probability `per_million / 1_000_000`.
    fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }
}

/// The state of one instrument's book.
struct Book {
    bid_cents: i64,
    spread_cents: i64,
    bid_lots: u32,
    ask_lots: u32,
}

/// Event-rate multiplier, in percent, at millisecond `ms` for `symbol`:
/// the opening rush decays over 20 s; two headline bursts hit their sectors.
fn burst_percent(ms: u64, symbol: &str) -> u64 {
    let mut percent = 100;
    if ms < 20_000 {
        percent += 500 * (20_000 - ms) / 20_000;
    }
    if (95_000..103_000).contains(&ms) && CHIP_NEWS.contains(&symbol) {
        percent += 700 * (103_000 - ms) / 8_000;
    }
    if (210_000..216_000).contains(&ms) && INDEX_SWING.contains(&symbol) {
        percent += 400;
    }
    percent
}

/// Writes the session as JSON lines, returning how many lines were written.
pub fn write_session(options: SynthOptions, out: &mut dyn Write) -> io::Result<u64> {
    let mut rng = SplitMix64(options.seed);
    let mut books: Vec<Book> = LISTINGS
        .iter()
        .map(|l| Book {
            bid_cents: l.open_cents,
            spread_cents: l.spread_cents,
            bid_lots: 3,
            ask_lots: 3,
        })
        .collect();
    let mut lines = 0;
    let mut pending: Vec<(u64, usize, bool)> = Vec::new();
    let mut text = String::with_capacity(160);
    for ms in 0..u64::from(options.seconds) * 1_000 {
        pending.clear();
        for (index, l) in LISTINGS.iter().enumerate() {
            // Chance of an event in this millisecond, per million; bursts multiply it.
            let per_million = u64::from(l.activity) * 10 * CALM_RATE_PERCENT * burst_percent(ms, l.symbol) / 100;
            let mut chances = per_million;
            while chances > 0 {
                if rng.chance(chances.min(1_000_000)) {
                    let trade = rng.chance(140_000);
                    pending.push((rng.below(1_000_000), index, trade));
                }
                chances = chances.saturating_sub(1_000_000);
            }
        }
        pending.sort_unstable();
        for &(offset_ns, index, trade) in &pending {
            let ts = SESSION_START_NS + ms * 1_000_000 + offset_ns;
            let listing = &LISTINGS[index];
            let bursting = burst_percent(ms, listing.symbol) > 150;
            text.clear();
            if trade {
                write_trade(&mut rng, listing, &books[index], ts, &mut text);
            } else {
                step_book(&mut rng, listing, &mut books[index], bursting);
                write_quote(&mut rng, listing, &books[index], ts, &mut text);
            }
            out.write_all(text.as_bytes())?;
            lines += 1;
        }
    }
    Ok(lines)
}

/// Moves one book by a tick or so, widening spreads and thinning size in bursts.
fn step_book(rng: &mut SplitMix64, listing: &Listing, book: &mut Book, bursting: bool) {
    let move_chance = if bursting { 550_000 } else { 300_000 };
    if rng.chance(move_chance) {
        let ticks = 1 + rng.below(if bursting { 3 } else { 1 }) as i64;
        let step = (listing.open_cents / 20_000).max(1) * ticks;
        book.bid_cents = if rng.chance(500_000) {
            book.bid_cents + step
        } else {
            (book.bid_cents - step).max(1)
        };
    }
    let widen = if bursting {
        rng.below(3) as i64
    } else {
        i64::from(rng.chance(100_000))
    };
    book.spread_cents = listing.spread_cents + widen;
    let max_lots = if bursting {
        listing.max_lots.div_ceil(2)
    } else {
        listing.max_lots
    };
    book.bid_lots = 1 + rng.below(u64::from(max_lots)) as u32;
    book.ask_lots = 1 + rng.below(u64::from(max_lots)) as u32;
}

/// Exchange ids as Polygon numbers them: NYSE 10, Nasdaq 12, Arca 11, IEX 9, Cboe 19..
const VENUES: [u8; 6] = [10, 12, 11, 9, 19, 21];

fn cents(value: i64) -> Price {
    Price::from_scaled(value, 2).unwrap_or(Price::ZERO)
}

fn write_quote(rng: &mut SplitMix64, listing: &Listing, book: &Book, ts: u64, text: &mut String) {
    use std::fmt::Write as _;
    let bid = cents(book.bid_cents);
    let ask = cents(book.bid_cents + book.spread_cents);
    let bx = VENUES[rng.below(VENUES.len() as u64) as usize];
    let ax = VENUES[rng.below(VENUES.len() as u64) as usize];
    let _ = writeln!(
        text,
        r#"{{"ev":"Q","sym":"{}","bx":{bx},"bp":{bid},"bs":{},"ax":{ax},"ap":{ask},"as":{},"t":{ts}}}"#,
        listing.symbol,
        book.bid_lots * 100,
        book.ask_lots * 100,
    );
}

fn write_trade(rng: &mut SplitMix64, listing: &Listing, book: &Book, ts: u64, text: &mut String) {
    use std::fmt::Write as _;
    // Buyers lift the ask, sellers hit the bid; a few print inside the spread.
    let price = match rng.below(10) {
        0..=4 => book.bid_cents + book.spread_cents,
        5..=8 => book.bid_cents,
        _ => book.bid_cents + book.spread_cents / 2,
    };
    // Most prints are round lots; about a third are odd lots, as on US tapes.
    let size = if rng.chance(330_000) {
        1 + rng.below(99)
    } else {
        100 * (1 + rng.below(u64::from(listing.max_lots)))
    };
    let x = VENUES[rng.below(VENUES.len() as u64) as usize];
    let _ = writeln!(
        text,
        r#"{{"ev":"T","sym":"{}","x":{x},"p":{},"s":{size},"t":{ts}}}"#,
        listing.symbol,
        cents(price)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let short = |seed| {
            let mut out = Vec::new();
            write_session(SynthOptions { seed, seconds: 5 }, &mut out).unwrap();
            out
        };
        assert_eq!(short(1), short(1));
        assert_ne!(short(1), short(2));
    }

    #[test]
    fn splitmix_stream_is_pinned() {
        // Reference values of SplitMix64 from seed 0, so the stream never changes silently.
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
