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
