#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The browser quote board, in a real headless Chromium: the page served by
//! the hub loads, subscribes to a symbol through its input, and shows prices
//! equal to what the feed sent, then the next update. A screenshot is saved
//! to `target/test-output/quote-board.png`. Its Replay controls open the
//! page's own replay session of a listed feed and show every event of it.
//!
//!
//! The page's connection, driven by `board_session_check.mjs`: on a hub with
//! API keys it says so and takes a key (its field, or `?api_key=`); across a
//! hub restart it greys out the old prices, reconnects, resumes, and shows
//! the new hub's numbers after a RESET, never a sequence going backwards as
//! live (`target/test-output/quote-board-down.png` shows it while down);
//! unknown symbols are shown as unknown, and `*` fills a bounded table.
//!
//! The channels, driven by `board_candles_check.mjs` while the bundled feed
//! replays into the hub at 20×: the selected symbol's chart (the vendored
//! lightweight-charts) holds a candle and a volume bar for every 1 s bar the
//! page received, and those bars are the ones this file computes from the
//! feed's trades; the 1 min toggle shows the minute bars; each row's spread,
//! change since the page's first quote (absolute and %), last trade and BBO
//! sides with their feed are what this file computes from the same quotes;
//! clicking a header sorts the rows. The screenshot is
//! `target/test-output/quote-board-candles.png`.
//!
//! Needs node, Debian's chromium and `playwright-core` (scripts/test.sh
//! installs them); without them it prints a notice and passes, unless
//! `QUOTEHUB_REQUIRE_ALL` is set, when it fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use common::bars_computed::computed;
use common::external::{Spawned, js_dir, missing_file, missing_program, ready, repo};
use common::{TestHub, quote};
use quotehub_feed::{ReplayControl, ReplayWindow, Speed, open_recorded, replay_controlled};
use quotehub_proto::bar::BarInterval;
use quotehub_proto::{Event, Flags, Quote, Trade};
use quotehub_server::slow_consumer::Policy;
use quotehub_server::{Access, ApiKey, Hub, ReplayFeeds, ServerConfig};
use rust_decimal::{Decimal, RoundingStrategy};

fn decimal(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().expect("a price string")).unwrap()
}

/// The Chromium to drive, or `None` (after a notice) when something the
/// browser tests need is missing.
fn chromium() -> Option<String> {
    let chromium = std::env::var("QUOTEHUB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = js_dir().join("node_modules/playwright-core");
    ready(
        "quote_board",
        &[
            missing_program("node"),
            missing_file(Path::new(&chromium)),
            missing_file(&playwright),
        ],
    )
    .then_some(chromium)
}

/// Runs `board_session_check.mjs` in `mode` against the hub's board.
fn session_check(chromium: &str, mode: &str, hub: &TestHub, args: &[&str]) -> Spawned {
    let mut command = Command::new("node");
    command
        .arg(js_dir().join("test_support/board_session_check.mjs"))
        .arg(mode)
        .arg(format!("http://{}/", hub.addr()))
        .args(args)
        .env("QUOTEHUB_CHROMIUM", chromium);
    Spawned::start("board_session_check.mjs", command)
}

/// The board's rows as the check script reports them, by symbol.
fn row<'a>(event: &'a serde_json::Value, symbol: &str) -> &'a serde_json::Value {
    event["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["symbol"] == symbol)
        .unwrap_or_else(|| panic!("no {symbol} row: {event}"))
}

fn has_class(row: &serde_json::Value, class: &str) -> bool {
    row["classes"].as_array().unwrap().iter().any(|c| c == class)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_board_shows_the_feed_prices_in_chromium() {
    let chromium = std::env::var("QUOTEHUB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = js_dir().join("node_modules/playwright-core");
    if !ready(
        "quote_board",
        &[
            missing_program("node"),
            missing_file(Path::new(&chromium)),
            missing_file(&playwright),
        ],
    ) {
        return;
    }
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    // Known before the page subscribes: it must arrive as the snapshot.
    publisher.publish(quote("AAPL", "271.2345", "271.2400", 1_795_185_000_000_000_001));

    let output = repo().join("target/test-output");
    std::fs::create_dir_all(&output).unwrap();
    let screenshot = output.join("quote-board.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut command = Command::new("node");
    command
        .arg(js_dir().join("test_support/board_check.mjs"))
        .arg(format!("http://{}/", hub.addr()))
        .arg("AAPL")
        .arg(&screenshot)
        .env("QUOTEHUB_CHROMIUM", &chromium);
    let mut browser = Spawned::start("board_check.mjs", command);

    let shown = browser.json_line().await;
    assert_eq!(shown["event"], "shown", "{shown}");
    assert_eq!(
        decimal(&shown["bid"]),
        Decimal::from_str("271.2345").unwrap(),
        "{shown}"
    );
    assert_eq!(decimal(&shown["ask"]), Decimal::from_str("271.24").unwrap(), "{shown}");
    assert_eq!(shown["seq"], "1");

    publisher.publish(quote("AAPL", "271.3", "271.31", 1_795_185_000_000_000_002));
    let updated = browser.json_line().await;
    assert_eq!(updated["event"], "updated", "{updated}");
    assert_eq!(updated["bid"], "271.30", "shown with cents: {updated}");
    assert_eq!(decimal(&updated["ask"]), Decimal::from_str("271.31").unwrap());
    assert_eq!(updated["seq"], "2");
    let latency = updated["latency"].as_str().unwrap();
    assert!(
        latency.ends_with("µs") || latency.ends_with("ms"),
        "hub-to-browser latency shown: {latency:?}"
    );

    let done = browser.json_line().await;
    assert_eq!(done["event"], "screenshot", "{done}");
    assert_eq!(done["pageErrors"], serde_json::json!([]), "the page raised errors");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "a PNG screenshot at {}",
        screenshot.display()
    );
    let (status, _, stderr) = browser.finish().await;
    assert!(status.success(), "{stderr}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_board_replays_a_feed_in_its_own_session() {
    let chromium = std::env::var("QUOTEHUB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = js_dir().join("node_modules/playwright-core");
    if !ready(
        "quote_board",
        &[
            missing_program("node"),
            missing_file(Path::new(&chromium)),
            missing_file(&playwright),
        ],
    ) {
        return;
    }
    let feeds = ReplayFeeds::new([("bundled".to_owned(), common::bundled_feed())], 4).unwrap();
    let hub = TestHub::start(ServerConfig {
        replay_feeds: feeds,
        ..ServerConfig::default()
    })
    .await;
    // What the page must end with: AAPL's last event of the feed and its count.
    let mut feed = open_recorded(&common::bundled_feed()).unwrap();
    let (mut count, mut last_bid) = (0u64, None);
    while let Some(event) = feed.next_event().unwrap() {
        if event.symbol().as_str() == "AAPL" {
            count += 1;
            if let Event::Quote(quote) = event {
                last_bid = Some(quote.bid_price);
            }
        }
    }
    let mut command = Command::new("node");
    command
        .arg(js_dir().join("test_support/replay_check.mjs"))
        .arg(format!("http://{}/", hub.addr()))
        .arg("bundled")
        .arg("max")
        .arg("AAPL")
        .env("QUOTEHUB_CHROMIUM", &chromium);
    let mut browser = Spawned::start("replay_check.mjs", command);
    let listed = browser.json_line().await;
    assert_eq!(listed["feeds"], serde_json::json!(["bundled"]), "{listed}");
    let ended = browser.json_line().await;
    assert_eq!(ended["event"], "ended", "{ended}");
    assert_eq!(ended["symbols"], serde_json::json!(["AAPL"]), "{ended}");
    assert_eq!(ended["seq"], count.to_string(), "every AAPL event numbered: {ended}");
    let last_bid = last_bid.unwrap().to_string();
    assert_eq!(decimal(&ended["bid"]), Decimal::from_str(&last_bid).unwrap(), "{ended}");
    let state = ended["state"].as_str().unwrap();
    assert!(state.contains(&format!("({count} events)")), "{state}");
    assert_eq!(ended["pageErrors"], serde_json::json!([]), "the page raised errors");
    let (status, _, stderr) = browser.finish().await;
    assert!(status.success(), "{stderr}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_board_takes_an_api_key_from_its_field_or_the_url() {
    let Some(chromium) = chromium() else { return };
    let key = ApiKey {
        name: "board".into(),
        key: "board-secret".into(),
        symbols: None,
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let hub = TestHub::start(ServerConfig {
        access: Access::new(vec![key], Vec::new()),
        ..ServerConfig::default()
    })
    .await;
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.2345", "271.24", 1_795_185_000_000_000_001));
    let mut browser = session_check(&chromium, "keys", &hub, &["AAPL", "board-secret"]);

    // TC0: no key anywhere: the page says what it needs instead of "connecting…".
    let needs = browser.json_line().await;
    assert_eq!(needs["event"], "needs-key", "{needs}");
    let state = needs["state"].as_str().unwrap();
    assert!(state.contains("this hub needs an API key"), "{state}");
    assert_eq!(needs["bid"], "", "{needs}");
    // TC1: the key typed into the field connects, and stays in the tab's session storage.
    let typed = browser.json_line().await;
    assert_eq!(typed["event"], "shown-after-key", "{typed}");
    assert_eq!(
        decimal(&typed["bid"]),
        Decimal::from_str("271.2345").unwrap(),
        "{typed}"
    );
    assert_eq!(typed["stored"], "board-secret", "{typed}");
    // TC2: a reload of the tab finds it there.
    let reloaded = browser.json_line().await;
    assert_eq!(reloaded["event"], "shown-after-reload", "{reloaded}");
    assert_eq!(reloaded["seq"], "1", "{reloaded}");
    // TC3: a fresh tab opened with ?api_key= (as the README says), which
    // the page then takes out of its address bar.
    let from_url = browser.json_line().await;
    assert_eq!(from_url["event"], "shown-with-url-key", "{from_url}");
    assert_eq!(from_url["seq"], "1", "{from_url}");
    let address = from_url["url"].as_str().unwrap();
    assert!(
        !address.contains("board-secret") && address.contains("symbols=AAPL"),
        "{address}"
    );
    // TC4: a wrong key is refused with the hub's reason, not retried forever.
    let wrong = browser.json_line().await;
    assert_eq!(wrong["event"], "needs-key", "{wrong}");
    let state = wrong["state"].as_str().unwrap();
    assert!(
        state.contains("this hub needs an API key") && state.contains("unknown API key"),
        "{state}"
    );
    assert_eq!(wrong["pageErrors"], serde_json::json!([]), "the page raised errors");
    let (status, _, stderr) = browser.finish().await;
    assert!(status.success(), "{stderr}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_board_greys_out_across_a_hub_restart_and_resumes_with_a_reset() {
    let Some(chromium) = chromium() else { return };
    let first = TestHub::start(ServerConfig::default()).await;
    let addr = first.addr();
    let mut publisher = first.hub.publisher(Flags::default(), 0);
    for i in 0..40 {
        publisher.publish(quote("AAPL", "271.22", "271.23", 1_795_185_000_000_000_000 + i));
    }
    publisher.publish(quote("MSFT", "509.84", "509.86", 1_795_185_000_000_000_100));
    // The script saves quote-board-down.png there, of the page while the hub is down.
    std::fs::create_dir_all(repo().join("target/test-output")).unwrap();
    let mut browser = session_check(&chromium, "restart", &first, &[]);

    let shown = browser.json_line().await;
    assert_eq!(shown["event"], "shown", "{shown}");
    assert_eq!(row(&shown, "AAPL")["seq"], "40", "{shown}");
    assert_eq!(row(&shown, "MSFT")["seq"], "1", "{shown}");
    // A symbol no feed has sent is shown as such, not as an empty row that waits.
    let zzzz = row(&shown, "ZZZZ");
    assert!(has_class(zzzz, "unknown"), "{shown}");
    assert_eq!(zzzz["note"], "no data yet from any feed", "{shown}");

    // The hub goes away under the open page: its prices must stop looking live.
    drop(publisher);
    first.shutdown().await;
    let down = browser.json_line().await;
    assert_eq!(down["event"], "down", "{down}");
    for symbol in ["AAPL", "MSFT", "ZZZZ"] {
        assert!(has_class(row(&down, symbol), "stale"), "{symbol} greyed out: {down}");
    }
    assert_eq!(row(&down, "AAPL")["seq"], "40", "the last prices stay, greyed: {down}");
    let state = down["state"].as_str().unwrap();
    assert!(state.contains("reconnecting"), "{state}");

    // It comes back on the same port with a new numbering: AAPL at 5, below
    // the page's 40, and no MSFT at all.
    let hub = Hub::new();
    let mut publisher = hub.publisher(Flags::default(), 0);
    for i in 0..5 {
        publisher.publish(quote("AAPL", "271.30", "271.31", 1_795_185_000_000_001_000 + i));
    }
    let second = TestHub::start_at(&addr, hub, ServerConfig::default()).await;
    let back = browser.json_line().await;
    assert_eq!(back["event"], "back", "{back}");
    let aapl = row(&back, "AAPL");
    assert_eq!(aapl["seq"], "5", "the RESET snapshot replaced the old values: {back}");
    assert_eq!(aapl["bid"], "271.30", "{back}");
    assert!(!has_class(aapl, "stale"), "{back}");
    // MSFT is unknown to the new hub: its old price must not linger as if current.
    let msft = row(&back, "MSFT");
    assert_eq!(
        (msft["bid"].as_str(), msft["seq"].as_str()),
        (Some(""), Some("")),
        "{back}"
    );
    assert_eq!(msft["note"], "no data yet from any feed", "{back}");

    publisher.publish(quote("MSFT", "509.90", "509.92", 1_795_185_000_000_002_000));
    publisher.publish(quote("AAPL", "271.31", "271.32", 1_795_185_000_000_002_001));
    let live = browser.json_line().await;
    assert_eq!(live["event"], "live", "{live}");
    assert_eq!(row(&live, "AAPL")["seq"], "6", "{live}");
    assert_eq!(row(&live, "MSFT")["seq"], "1", "{live}");

    // What the page applied, in order: within one sequence space every
    // symbol's numbers go up; the step down happens only with a RESET
    // snapshot, or as the first record of a symbol in the new space.
    let applied = live["applied"].as_array().unwrap();
    let of = |symbol: &str| -> Vec<(u64, bool, bool)> {
        applied
            .iter()
            .filter(|entry| entry["symbol"] == symbol)
            .map(|entry| {
                (
                    entry["seq"].as_str().unwrap().parse().unwrap(),
                    entry["snapshot"].as_bool().unwrap(),
                    entry["reset"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        of("AAPL"),
        [(40, true, false), (5, true, true), (6, false, false)],
        "{live}"
    );
    assert_eq!(of("MSFT"), [(1, true, false), (1, false, false)], "{live}");
    let epochs: std::collections::BTreeSet<&str> =
        applied.iter().map(|entry| entry["epoch"].as_str().unwrap()).collect();
    assert_eq!(epochs.len(), 2, "one space per hub: {live}");
    let mut last: std::collections::HashMap<(&str, &str), u64> = std::collections::HashMap::new();
    for entry in applied {
        let space = (entry["symbol"].as_str().unwrap(), entry["epoch"].as_str().unwrap());
        let seq: u64 = entry["seq"].as_str().unwrap().parse().unwrap();
        if let Some(before) = last.insert(space, seq) {
            assert!(
                seq > before,
                "{space:?} went from {before} back to {seq} as live: {live}"
            );
        }
    }
    assert_eq!(live["pageErrors"], serde_json::json!([]), "the page raised errors");
    let (status, _, stderr) = browser.finish().await;
    assert!(status.success(), "{stderr}");
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_board_follows_every_symbol_with_a_bounded_table() {
    let Some(chromium) = chromium() else { return };
    let hub = TestHub::start(ServerConfig::default()).await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // More symbols than the board shows rows for (200).
    for i in 0..205u64 {
        publisher.publish(quote(
            &format!("S{i:03}"),
            "10.01",
            "10.02",
            1_795_185_000_000_000_000 + i,
        ));
    }
    let mut browser = session_check(&chromium, "wildcard", &hub, &["205"]);
    let shown = browser.json_line().await;
    assert_eq!(shown["event"], "shown", "{shown}");
    assert_eq!(shown["rowCount"], 200, "{shown}");
    let note = shown["note"].as_str().unwrap();
    assert!(note.contains("first 200 of 205"), "{note}");
    assert_eq!(row(&shown, "S000")["bid"], "10.01", "{shown}");

    // A symbol first published now gets no row (the table is full), but is counted.
    publisher.publish(quote("NEW", "1.5", "1.6", 1_795_185_000_000_001_000));
    // And a shown one updates live.
    publisher.publish(quote("S000", "10.03", "10.04", 1_795_185_000_000_001_001));
    let updated = browser.json_line().await;
    assert_eq!(updated["event"], "updated", "{updated}");
    assert_eq!(row(&updated, "S000")["bid"], "10.03", "{updated}");
    assert_eq!(updated["rowCount"], 200, "{updated}");
    let note = updated["note"].as_str().unwrap();
    assert!(note.contains("first 200 of 206"), "{note}");
    assert_eq!(updated["pageErrors"], serde_json::json!([]), "the page raised errors");
    let (status, _, stderr) = browser.finish().await;
    assert!(status.success(), "{stderr}");
    hub.shutdown().await;
}

const SECOND: u64 = 1_000_000_000;

/// The rows the candles test shows, and the one whose chart it reads.
const BOARD_SYMBOLS: [&str; 5] = ["SPY", "AAPL", "MSFT", "NVDA", "TSLA"];
const CHARTED: &str = "AAPL";

/// A cell's text as a decimal, without the sign's `+` and the `%`.
fn cell_decimal(text: &str) -> Decimal {
    Decimal::from_str(text.trim_start_matches('+').trim_end_matches('%')).unwrap_or_else(|_| panic!("{text:?}"))
}

/// What the page must show for a symbol, from the quotes and trades it was sent.
#[derive(Debug, Default)]
struct Expected {
    first: Option<Quote>,
    last: Option<Quote>,
    trade: Option<Trade>,
}

impl Expected {
    /// Ask minus bid of the last quote, when both sides quote.
    fn spread(&self) -> Option<Decimal> {
        let last = self.last.as_ref()?;
        two_sided(last).then(|| last.ask_price.to_decimal() - last.bid_price.to_decimal())
    }

    /// The mid's change since the first two-sided quote, and that in percent
    /// of the first mid (2 places, halves away from zero).
    fn change(&self) -> Option<(Decimal, Decimal)> {
        let (first, last) = (self.first.as_ref()?, self.last.as_ref()?);
        if !two_sided(last) {
            return None;
        }
        let mid = |q: &Quote| (q.bid_price.to_decimal() + q.ask_price.to_decimal()) / Decimal::TWO;
        let change = mid(last) - mid(first);
        let percent = (change * Decimal::ONE_HUNDRED / mid(first))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        Some((change, percent))
    }
}

fn two_sided(quote: &Quote) -> bool {
    quote.bid_size > 0
        && quote.ask_size > 0
        && quote.bid_price.to_decimal() > Decimal::ZERO
        && quote.ask_price.to_decimal() > Decimal::ZERO
}

/// Rows ordered by a key, ascending or descending; rows without a value
/// last, ties by symbol (as the page sorts).
fn sorted_by(rows: &[(String, Option<Decimal>)], descending: bool) -> Vec<String> {
    let mut rows = rows.to_vec();
    rows.sort_by(|(sa, a), (sb, b)| match (a, b) {
        (Some(a), Some(b)) => {
            let order = if descending { b.cmp(a) } else { a.cmp(b) };
            order.then_with(|| sa.cmp(sb))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => sa.cmp(sb),
    });
    rows.into_iter().map(|(symbol, _)| symbol).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_board_charts_candles_and_shows_the_channels() {
    let Some(chromium) = chromium() else { return };
    // Never conflated: a merged bar or quote would differ from this file's own.
    let hub = TestHub::start(ServerConfig {
        queue_capacity: 1 << 20,
        default_policy: Policy::Disconnect,
        ..ServerConfig::default()
    })
    .await;

    // The first minute of the bundled session, and what it must show.
    let mut feed = open_recorded(&common::bundled_feed()).unwrap();
    let first_ts = feed.next_event().unwrap().unwrap().event_ts();
    let window = ReplayWindow {
        from: Some(first_ts),
        to: Some(BarInterval::MINUTE.start_of(first_ts) + 60 * SECOND),
        symbols: None,
    };
    let mut feed = open_recorded(&common::bundled_feed()).unwrap();
    let mut trades = Vec::new();
    let mut expected: std::collections::HashMap<&str, Expected> =
        BOARD_SYMBOLS.iter().map(|s| (*s, Expected::default())).collect();
    while let Some(event) = feed.next_event().unwrap() {
        let ts = event.event_ts();
        if ts < window.from.unwrap() || ts >= window.to.unwrap() {
            continue;
        }
        let Some(shown) = expected.get_mut(event.symbol().as_str()) else {
            continue;
        };
        match event {
            Event::Quote(quote) => {
                if shown.first.is_none() && two_sided(&quote) {
                    shown.first = Some(quote);
                }
                shown.last = Some(quote);
            }
            Event::Trade(trade) => {
                trades.push(trade);
                shown.trade = Some(trade);
            }
            _ => {}
        }
    }
    let bars = computed(&trades);
    let second_bars = &bars[&(common::sym(CHARTED), 1)];
    let minute_bars = &bars[&(common::sym(CHARTED), 60)];
    assert!(!second_bars.is_empty() && !minute_bars.is_empty());

    let screenshot = repo().join("target/test-output/quote-board-candles.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&screenshot);
    let mut command = Command::new("node");
    command
        .arg(js_dir().join("test_support/board_candles_check.mjs"))
        .arg(format!("http://{}/", hub.addr()))
        .arg(BOARD_SYMBOLS.join(","))
        .arg(CHARTED)
        .arg(second_bars.len().to_string())
        .arg(&screenshot)
        .env("QUOTEHUB_CHROMIUM", &chromium);
    let mut browser = Spawned::start("board_candles_check.mjs", command);
    let subscribed = browser.json_line().await;
    assert_eq!(subscribed["event"], "subscribed", "{subscribed}");

    // The page is subscribed with its chart open: replay the minute at 20×,
    // then close every bar still open with a trade far in the future (on a
    // symbol the page does not show).
    let publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    tokio::task::spawn_blocking(move || {
        let mut feed = open_recorded(&common::bundled_feed()).unwrap();
        let control = ReplayControl::new(Speed::Factor(20.0));
        let (_keep, stop) = std::sync::mpsc::channel();
        replay_controlled(feed.as_mut(), false, &window, &control, &stop, publisher).unwrap();
    })
    .await
    .unwrap();
    let mut publisher = hub.hub.publisher(Flags::REPLAYED, 0);
    for ts in [1_900_000_000 * SECOND, 1_900_000_010 * SECOND] {
        publisher.publish(Event::Trade(Trade {
            symbol: common::sym("ZZZZ"),
            price: "1".parse().unwrap(),
            size: 1,
            event_ts: ts,
            recv_ts: ts,
            seq: 0,
        }));
    }

    // The chart: a candle and a volume bar per received bar, and the
    // received bars are the feed's.
    let candles = browser.json_line().await;
    assert_eq!(candles["event"], "candles", "{candles}");
    let check_chart = |event: &serde_json::Value, expected: &[quotehub_proto::bar::Bar]| {
        let received = event["bars"].as_array().unwrap();
        let plotted = event["candles"].as_array().unwrap();
        let volumes = event["volumes"].as_array().unwrap();
        assert!(!plotted.is_empty(), "candles drawn: {event}");
        assert_eq!(received.len(), expected.len(), "{event}");
        assert_eq!(plotted.len(), received.len(), "{event}");
        assert_eq!(volumes.len(), received.len(), "{event}");
        for (((got, want), candle), volume) in received.iter().zip(expected).zip(plotted).zip(volumes) {
            assert_eq!(got["startTs"], want.start_ts.to_string(), "{got}");
            for (field, price) in [
                ("open", want.open),
                ("high", want.high),
                ("low", want.low),
                ("close", want.close),
            ] {
                assert_eq!(decimal(&got[field]), price.to_decimal(), "{field} of {got}");
                // Plotting uses numbers: the nearest to the exact price.
                let plotted: f64 = got[field].as_str().unwrap().parse().unwrap();
                assert_eq!(candle[field].as_f64(), Some(plotted), "{field} of {candle} for {got}");
            }
            assert_eq!(got["volume"], want.volume.to_string(), "{got}");
            assert_eq!(candle["time"].as_u64(), Some(want.start_ts / SECOND), "{candle}");
            assert_eq!(volume["time"], candle["time"], "{volume}");
            assert_eq!(volume["value"].as_u64(), Some(want.volume), "{volume}");
        }
    };
    check_chart(&candles, second_bars);

    // Each row: spread, change, last trade and the BBO's sides with their feed.
    let mut spreads = Vec::new();
    let mut changes = Vec::new();
    let mut lasts = Vec::new();
    for symbol in BOARD_SYMBOLS {
        let shown = row(&candles, symbol);
        let want = &expected[symbol];
        let spread = want.spread();
        match spread {
            Some(spread) => assert_eq!(cell_decimal(shown["spread"].as_str().unwrap()), spread, "{shown}"),
            None => assert_eq!(shown["spread"], "", "{shown}"),
        }
        spreads.push((symbol.to_owned(), spread));
        let change = want.change();
        match change {
            Some((change, percent)) => {
                assert_eq!(cell_decimal(shown["change"].as_str().unwrap()), change, "{shown}");
                assert_eq!(cell_decimal(shown["changePct"].as_str().unwrap()), percent, "{shown}");
            }
            None => assert_eq!(shown["change"], "", "{shown}"),
        }
        changes.push((symbol.to_owned(), change.map(|(_, percent)| percent)));
        let trade = want.trade.unwrap();
        let text = shown["trade"].as_str().unwrap();
        let (size, rest) = text.split_once(" @ ").unwrap_or_else(|| panic!("{shown}"));
        assert_eq!(size, trade.size.to_string(), "{shown}");
        assert_eq!(
            cell_decimal(rest.split_whitespace().next().unwrap()),
            trade.price.to_decimal(),
            "{shown}"
        );
        lasts.push((symbol.to_owned(), Some(trade.price.to_decimal())));
        // One feed: the book's sides are its last quote's, quoted by feed 0.
        let last = want.last.unwrap();
        for (field, price, size) in [
            ("bboBid", last.bid_price, last.bid_size),
            ("bboAsk", last.ask_price, last.ask_size),
        ] {
            let text = shown[field].as_str().unwrap();
            if size == 0 {
                assert_eq!(text, "", "{field}: {shown}");
                continue;
            }
            let (quoted, venue) = text.split_once(" · ").unwrap_or_else(|| panic!("{field}: {shown}"));
            let (at, quantity) = quoted.split_once(" × ").unwrap_or_else(|| panic!("{field}: {shown}"));
            assert_eq!(cell_decimal(at), price.to_decimal(), "{field}: {shown}");
            assert_eq!(quantity, size.to_string(), "{field}: {shown}");
            assert_eq!(venue, "feed 0", "{field}: {shown}");
        }
    }

    // Sorting by a header's click, ascending then descending.
    let sorted = browser.json_line().await;
    assert_eq!(sorted["event"], "sorted", "{sorted}");
    let order = |key: &str| -> Vec<String> {
        sorted[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(order("spreadUp"), sorted_by(&spreads, false), "{sorted}");
    assert_eq!(order("spreadDown"), sorted_by(&spreads, true), "{sorted}");
    assert_eq!(order("changeUp"), sorted_by(&changes, false), "{sorted}");
    assert_eq!(order("lastUp"), sorted_by(&lasts, false), "{sorted}");
    let mut by_symbol = BOARD_SYMBOLS.map(str::to_owned).to_vec();
    by_symbol.sort();
    assert_eq!(order("symbolUp"), by_symbol, "{sorted}");
    assert_ne!(order("spreadUp"), order("spreadDown"), "the orders differ: {sorted}");

    // The 1 min toggle: the minute bars, received as the 1 s ones were.
    let minute = browser.json_line().await;
    assert_eq!(minute["event"], "minute", "{minute}");
    check_chart(&minute, minute_bars);

    let done = browser.json_line().await;
    assert_eq!(done["event"], "screenshot", "{done}");
    assert_eq!(done["pageErrors"], serde_json::json!([]), "the page raised errors");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG at {}", screenshot.display());
    let (status, _, stderr) = browser.finish().await;
    assert!(status.success(), "{stderr}");
    hub.shutdown().await;
}
