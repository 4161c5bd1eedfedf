#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The browser quote board, in a real headless Chromium: the page served by
//! the hub loads, subscribes to a symbol through its input, and shows prices
//! equal to what the feed sent, then the next update. A screenshot is saved
//! to `target/test-output/quote-board.png`. Its Replay controls open the
//! page's own replay session of a listed feed and show every event of it.
//!
//! Needs node, Debian's chromium and `playwright-core` (scripts/test.sh
//! installs them); without them it prints a notice and passes, unless
//! `QUOTEHUB_REQUIRE_ALL` is set, when it fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use common::external::{Spawned, js_dir, missing_file, missing_program, ready, repo};
use common::{TestHub, quote};
use quotehub_feed::open_recorded;
use quotehub_proto::{Event, Flags};
use quotehub_server::{ReplayFeeds, ServerConfig};
use rust_decimal::Decimal;

fn decimal(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().expect("a price string")).unwrap()
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
