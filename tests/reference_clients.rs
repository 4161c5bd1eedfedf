#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The JavaScript and Python reference clients of `crates/quotehub-client`,
//! written from SPEC.md alone: their own vector tests, then real third-party
//! WebSocket clients (npm `ws`, PyPI `websockets`) against a running hub.
//!
//! They need node, python3 and what `scripts/setup_clients.sh` installs.
//! Without them these tests print a notice and pass, unless
//! `QUOTEHUB_REQUIRE_ALL` is set, when they fail.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;

use common::external::{Spawned, js_dir, missing_file, missing_program, ready, repo};
use common::{TestHub, quote, trade, within};
use quotehub_proto::{Flags, StatusCode, StatusRecord};
use quotehub_server::ServerConfig;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// An event time past 2^53, where a client reading it as a double would round it.
const T0: u64 = 1_763_650_800_123_456_789;

fn python_dir() -> PathBuf {
    repo().join("crates/quotehub-client/python")
}

fn venv_python() -> PathBuf {
    repo().join("target/clients-venv/bin/python")
}

async fn assert_succeeds(name: &'static str, command: Command) {
    let (status, stdout, stderr) = Spawned::start(name, command).finish().await;
    assert!(
        status.success(),
        "{name} failed ({status}); stdout:\n{}\nstderr:\n{stderr}",
        stdout.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_decoder_passes_its_spec_vector_tests() {
    if !ready(
        "javascript_decoder_passes_its_spec_vector_tests",
        &[missing_program("node")],
    ) {
        return;
    }
    let mut command = Command::new("node");
    command.args(["--test", "crates/quotehub-client/js/test/"]);
    assert_succeeds("node --test crates/quotehub-client/js/test/", command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_decoder_passes_its_spec_vector_tests() {
    if !ready(
        "python_decoder_passes_its_spec_vector_tests",
        &[missing_program("python3")],
    ) {
        return;
    }
    let mut command = Command::new("python3");
    command.args([
        "-m",
        "unittest",
        "discover",
        "-s",
        "crates/quotehub-client/python",
        "-p",
        "test_*.py",
    ]);
    assert_succeeds("python3 -m unittest discover", command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_follower_passes_its_tests() {
    // They run a scripted hub on PyPI `websockets`, hence the venv.
    let python = venv_python();
    if !ready("python_follower_passes_its_tests", &[missing_file(&python)]) {
        return;
    }
    let mut command = Command::new(&python);
    command.args([
        "-m",
        "unittest",
        "discover",
        "-s",
        "crates/quotehub-client/python",
        "-p",
        "test_follow.py",
    ]);
    assert_succeeds("python -m unittest test_follow", command).await;
}

/// Prices in the forms rust_decimal writes once normalized: what the clients
/// promise to print (exact, no trailing zeros, no exponent).
fn normalize_prices(mut record: Value) -> Value {
    for key in ["bp", "ap", "p"] {
        if let Some(price) = record.get_mut(key) {
            let text = price
                .as_str()
                .unwrap_or_else(|| panic!("{key} is not a string in {price}"));
            let decimal = Decimal::from_str(text).unwrap_or_else(|error| panic!("{key} {text:?}: {error}"));
            *price = Value::String(decimal.normalize().to_string());
        }
    }
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clients_print_exactly_what_the_hub_published() {
    let test = "live_clients_print_exactly_what_the_hub_published";
    let python = venv_python();
    let ws = js_dir().join("node_modules/ws/package.json");
    if !ready(
        test,
        &[missing_program("node"), missing_file(&python), missing_file(&ws)],
    ) {
        return;
    }
    // A hub with API keys: each client must present one (from
    // $QUOTEHUB_API_KEY, in a header), or it gets 401 and prints nothing.
    let desk = quotehub_server::ApiKey {
        name: "desk".into(),
        key: "desk-secret".into(),
        symbols: None,
        max_connections: None,
        admin: false,
        delay: std::time::Duration::ZERO,
    };
    let hub = TestHub::start(ServerConfig {
        access: quotehub_server::Access::new(vec![desk], Vec::new()),
        ..ServerConfig::default()
    })
    .await;
    let mut publisher = hub.hub.publisher(Flags::default(), 0);
    // Before anyone subscribes, so that each client starts with it as a snapshot.
    publisher.publish(quote("AAPL", "271.2200", "271.2300", T0));

    // In the spec's JSON form, which every client prints.
    let expected = [
        json!({"type": "quote", "sym": "AAPL", "seq": 1, "bp": "271.2200", "bs": 100, "ap": "271.2300", "as": 200,
               "t": T0, "recv_ts": T0 + 1, "flags": ["snapshot"], "conflated": 0}),
        json!({"type": "quote", "sym": "BRK.B", "seq": 1, "bp": "0.0001", "bs": 100, "ap": "165.1234", "as": 200,
               "t": T0 + 1, "recv_ts": T0 + 2, "flags": [], "conflated": 0}),
        json!({"type": "trade", "sym": "AAPL", "seq": 2, "p": "271.2250", "s": 100,
               "t": T0 + 2, "recv_ts": T0 + 3, "flags": []}),
        json!({"type": "status", "code": "replay_looped", "code_num": 2, "feed": 3, "ts": T0 + 3, "detail": 2}),
        json!({"type": "quote", "sym": "BRK.B", "seq": 2, "bp": "-0.0001", "bs": 100,
               "ap": "9223372036.854775807", "as": 200, "t": T0 + 4, "recv_ts": T0 + 5, "flags": [], "conflated": 0}),
    ];
    let count = expected.len().to_string();
    let symbols = ["AAPL", "BRK.B"];
    let client_args = ["--count", count.as_str(), "--timeout", "20"];

    let mut python_client = Command::new(&python);
    python_client
        .env("QUOTEHUB_API_KEY", "desk-secret")
        .arg(python_dir().join("live_client.py"))
        .arg(&hub.url)
        .args(symbols)
        .args(client_args);
    let mut node_client = Command::new("node");
    node_client
        .env("QUOTEHUB_API_KEY", "desk-secret")
        .arg(js_dir().join("live_client.mjs"))
        .arg(&hub.url)
        .args(symbols)
        .args(client_args);
    // The same client on the JSON sub-protocol must print the very same lines.
    let mut node_json_client = Command::new("node");
    node_json_client
        .env("QUOTEHUB_API_KEY", "desk-secret")
        .arg(js_dir().join("live_client.mjs"))
        .arg(&hub.url)
        .args(symbols)
        .args(client_args)
        .arg("--json");
    let mut clients = vec![
        Spawned::start("live_client.py (websockets)", python_client),
        Spawned::start("live_client.mjs (ws)", node_client),
        Spawned::start("live_client.mjs --json (ws)", node_json_client),
    ];

    // Each prints the ack first: once all have, every subscription is in
    // place and whatever is published next reaches them all.
    for client in &mut clients {
        let ack = client.json_line().await;
        assert_eq!(
            (&ack["type"], &ack["id"], &ack["op"]),
            (&json!("ack"), &json!(1), &json!("subscribe")),
            "{}: {ack}",
            client.name
        );
    }
    publisher.publish(quote("BRK.B", "0.0001", "165.1234", T0 + 1));
    publisher.publish(trade("AAPL", "271.2250", T0 + 2));
    hub.hub.announce(StatusRecord {
        code: StatusCode::ReplayLooped,
        feed: 3,
        ts: T0 + 3,
        detail: 2,
    });
    publisher.publish(quote("BRK.B", "-0.0001", "9223372036.854775807", T0 + 4));

    let expected: Vec<Value> = expected.into_iter().map(normalize_prices).collect();
    for client in clients {
        let name = client.name;
        let (status, lines, stderr) = within(client.finish()).await;
        assert!(status.success(), "{name} failed ({status}); stderr:\n{stderr}");
        let printed: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{name} printed {line:?}: {error}")))
            .collect();
        let normalized: Vec<Value> = printed.iter().cloned().map(normalize_prices).collect();
        assert_eq!(normalized, expected, "{name} printed other records; stderr:\n{stderr}");
        assert_eq!(printed, normalized, "{name} prints prices with no trailing zeros");
    }
    hub.shutdown().await;
}

/// Each live client (Python on `websockets`, JavaScript on `ws`) for
/// `symbols`, with `args`, named for failure messages; `None` (after a notice,
/// or a failure under `QUOTEHUB_REQUIRE_ALL`) when they are not installed.
fn live_clients(test: &str, url: &str, symbols: &[&str], args: &[&str]) -> Option<Vec<Spawned>> {
    let python = venv_python();
    let ws = js_dir().join("node_modules/ws/package.json");
    if !ready(
        test,
        &[missing_program("node"), missing_file(&python), missing_file(&ws)],
    ) {
        return None;
    }
    let mut python_client = Command::new(&python);
    python_client
        .arg(python_dir().join("live_client.py"))
        .arg(url)
        .args(symbols)
        .args(args);
    let mut node_client = Command::new("node");
    node_client
        .arg(js_dir().join("live_client.mjs"))
        .arg(url)
        .args(symbols)
        .args(args);
    Some(vec![
        Spawned::start("live_client.py (websockets)", python_client),
        Spawned::start("live_client.mjs (ws)", node_client),
    ])
}

/// A record line as a user of a live client reads it: which sequence space
/// it belongs to (the epoch of the ack printed last) and whether it says
/// records were lost (`reset`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    symbol: String,
    seq: u64,
    flags: Vec<String>,
    epoch: String,
}

/// Reads a live client's JSON lines as they come and fails the test on a
/// record delivered as live whose number does not move forward in its
/// sequence space: only a `RESET` may set a symbol's number back.
struct Lines {
    client: Spawned,
    /// The epoch of the last ack printed.
    epoch: Option<String>,
    /// Every ack printed, in order.
    acks: Vec<Value>,
    /// The last number per (epoch, symbol).
    last: std::collections::HashMap<(String, String), u64>,
}

impl Lines {
    fn new(client: Spawned) -> Self {
        Self {
            client,
            epoch: None,
            acks: Vec::new(),
            last: std::collections::HashMap::new(),
        }
    }

    /// The next quote or trade, checked; acks and statuses on the way are noted.
    async fn next_record(&mut self) -> Seen {
        loop {
            let line = self.client.json_line().await;
            let name = self.client.name;
            match line["type"].as_str() {
                Some("ack") => {
                    let epoch = line["epoch"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: an ack without an epoch: {line}"));
                    assert!(
                        epoch.len() == 16 && epoch.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{name}: epoch {epoch:?} is not 16 hex digits"
                    );
                    self.epoch = Some(epoch.to_owned());
                    self.acks.push(line);
                }
                Some("quote" | "trade") => {
                    let epoch = self
                        .epoch
                        .clone()
                        .unwrap_or_else(|| panic!("{name}: a record before any ack: {line}"));
                    let seen = Seen {
                        symbol: line["sym"].as_str().unwrap().to_owned(),
                        seq: line["seq"].as_u64().unwrap(),
                        flags: serde_json::from_value(line["flags"].clone()).unwrap(),
                        epoch,
                    };
                    let key = (seen.epoch.clone(), seen.symbol.clone());
                    if seen.flags.iter().any(|flag| flag == "reset") {
                        assert!(
                            seen.flags.iter().any(|flag| flag == "snapshot"),
                            "{name}: a reset is a snapshot: {line}"
                        );
                    } else if let Some(&last) = self.last.get(&key) {
                        assert!(
                            seen.seq > last,
                            "{name}: {} {} delivered as live after {last} in epoch {}: {line}",
                            seen.symbol,
                            seen.seq,
                            seen.epoch
                        );
                    }
                    self.last.insert(key, seen.seq);
                    return seen;
                }
                Some("status") => {}
                _ => panic!("{name} printed an unexpected line: {line}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restart_under_the_live_clients_ends_in_reset_never_a_backwards_sequence() {
    let test = "a_hub_restart_under_the_live_clients_ends_in_reset_never_a_backwards_sequence";
    let first = TestHub::start(ServerConfig::default()).await;
    let addr = first.addr();
    // No --count end: the test stops them once it has seen what it needs.
    let Some(clients) = live_clients(
        test,
        &first.url,
        &["AAPL", "MSFT"],
        &["--count", "1000", "--timeout", "60"],
    ) else {
        return;
    };
    let mut clients: Vec<Lines> = clients.into_iter().map(Lines::new).collect();
    for client in &mut clients {
        let ack = client.client.json_line().await;
        assert_eq!(
            (&ack["type"], &ack["op"]),
            (&json!("ack"), &json!("subscribe")),
            "{ack}"
        );
        client.epoch = ack["epoch"].as_str().map(str::to_owned);
        client.acks.push(ack);
    }
    let mut publisher = first.hub.publisher(Flags::default(), 0);
    for i in 0..40 {
        publisher.publish(quote("AAPL", "271.22", "271.23", T0 + i));
    }
    publisher.publish(quote("MSFT", "509.84", "509.86", T0 + 41));
    for client in &mut clients {
        let mut seen = Vec::new();
        for _ in 0..41 {
            let record = client.next_record().await;
            seen.push((record.symbol, record.seq));
        }
        assert_eq!(seen.last(), Some(&("MSFT".to_owned(), 1)), "{}", client.client.name);
        assert_eq!(seen[39], ("AAPL".to_owned(), 40), "{}", client.client.name);
    }
    let first_epoch: Vec<String> = clients.iter().map(|client| client.epoch.clone().unwrap()).collect();

    // The hub restarts on the same port with nothing of the old numbering:
    // its AAPL is at 5, below the 40 the clients saw, and MSFT unknown.
    first.shutdown().await;
    let hub = quotehub_server::Hub::new();
    let mut publisher = hub.publisher(Flags::default(), 0);
    for i in 0..5 {
        publisher.publish(quote("AAPL", "271.30", "271.31", T0 + 100 + i));
    }
    let second = TestHub::start_at(&addr, hub, ServerConfig::default()).await;

    // Each reconnects by itself and resumes; the new hub answers from its own
    // sequence space with a RESET snapshot of AAPL at 5, and the client
    // delivers nothing numbered back from 40 as live.
    for (client, first_epoch) in clients.iter_mut().zip(&first_epoch) {
        let name = client.client.name;
        let reset = client.next_record().await;
        assert_eq!(
            (reset.symbol.as_str(), reset.seq, reset.flags.clone()),
            ("AAPL", 5, vec!["snapshot".to_owned(), "reset".to_owned()]),
            "{name}: the first record after the restart is AAPL's reset snapshot"
        );
        assert_ne!(&reset.epoch, first_epoch, "{name} printed the new hub's ack before it");
        assert_eq!(
            client.acks.len(),
            2,
            "{name}: one ack per connection: {:?}",
            client.acks
        );
    }
    let mut publisher = second.hub.publisher(Flags::default(), 0);
    publisher.publish(quote("MSFT", "509.90", "509.92", T0 + 200));
    publisher.publish(quote("AAPL", "271.31", "271.32", T0 + 201));
    for client in &mut clients {
        let mut live = Vec::new();
        for _ in 0..2 {
            let record = client.next_record().await;
            live.push((record.symbol, record.seq, record.flags));
        }
        assert_eq!(
            live,
            [("MSFT".into(), 1, vec![]), ("AAPL".into(), 6, vec![])],
            "{}: the new space's numbers, live",
            client.client.name
        );
    }
    drop(clients);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clients_name_the_symbols_no_feed_has_sent() {
    let test = "live_clients_name_the_symbols_no_feed_has_sent";
    let hub = TestHub::start(ServerConfig::default()).await;
    hub.hub
        .publisher(Flags::default(), 0)
        .publish(quote("AAPL", "271.22", "271.23", T0));
    let Some(clients) = live_clients(test, &hub.url, &["AAPL", "ZZZZ"], &["--count", "1", "--timeout", "20"]) else {
        return;
    };
    for client in clients {
        let name = client.name;
        let (status, lines, stderr) = within(client.finish()).await;
        assert!(status.success(), "{name} failed ({status}); stderr:\n{stderr}");
        let ack: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(ack["unseen"], json!(["ZZZZ"]), "{name}: {ack}");
        let snapshot: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            (&snapshot["sym"], &snapshot["flags"]),
            (&json!("AAPL"), &json!(["snapshot"])),
            "{name}"
        );
        assert!(
            stderr.contains("ZZZZ: no data yet from any feed"),
            "{name} tells the user about ZZZZ; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("AAPL: no data"),
            "{name}: AAPL has data; stderr:\n{stderr}"
        );
    }
    hub.shutdown().await;
}
