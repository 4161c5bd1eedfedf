//! Conformance: the Autobahn WebSocket test suite's cases (all but the
//! compression groups 12 and 13), run by PyPI's `kosoku` against the hub's
//! echo route, which uses the same front door, handshake and WebSocket
//! settings as the quote stream. Every case must end OK, NON-STRICT or
//! INFORMATIONAL, never FAILED or UNIMPLEMENTED.
//!
//! Needs `kosoku` in target/clients-venv (scripts/setup_clients.sh); without
//! it this prints a notice and passes, unless `QUOTEHUB_REQUIRE_ALL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::TestHub;
use common::external::{Spawned, missing_file, ready, repo};
use quotehub_server::ServerConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_cases_pass_against_the_echo_route() {
    let kosoku = repo().join("target/clients-venv/bin/kosoku");
    if !ready("autobahn", &[missing_file(&kosoku)]) {
        return;
    }
    let hub = TestHub::start(ServerConfig {
        echo: true,
        ..ServerConfig::default()
    })
    .await;
    let reports = repo().join("target/test-output/autobahn");
    let _ = std::fs::remove_dir_all(&reports);
    let mut command = Command::new(&kosoku);
    command
        .args(["-m", "fuzzingclient", "-x", "12.*", "-x", "13.*", "-p", "2", "-o"])
        .arg(&reports)
        .arg(hub.addr());
    let (status, stdout, stderr) = Spawned::start("kosoku", command).finish().await;
    assert!(
        status.success(),
        "kosoku failed; stdout:\n{}\nstderr:\n{stderr}",
        stdout.join("\n")
    );

    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("index.json")).unwrap()).unwrap();
    let cases = index
        .as_object()
        .unwrap()
        .values()
        .next()
        .expect("one agent")
        .as_object()
        .unwrap();
    assert!(cases.len() >= 300, "only {} cases ran", cases.len());
    let acceptable = ["OK", "NON-STRICT", "INFORMATIONAL"];
    let failed: Vec<String> = cases
        .iter()
        .filter(|(_, result)| {
            !acceptable.contains(&result["behavior"].as_str().unwrap_or(""))
                || !acceptable.contains(&result["behaviorClose"].as_str().unwrap_or(""))
        })
        .map(|(case, result)| format!("{case}: {result}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} Autobahn cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_route_is_off_unless_configured() {
    let hub = TestHub::start(ServerConfig::default()).await;
    let echo_url = hub.url.replace("/v1/quotes", "/");
    let refused = common::within(tokio_tungstenite::connect_async(echo_url.as_str())).await;
    assert!(refused.is_err(), "no WebSocket at / on a normal hub");
    hub.shutdown().await;
}
