//! `scripts/cluster.sh`, as a newcomer runs it: a real nats-server, one
//! ingest hub on the bundled feed (and, asked for, a standby beside it) and
//! two edges, each edge serving the ingest hub's records, and Ctrl-C
//! stopping every process it started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port nothing listens on now (the script needs fixed ports).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn has_program(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs a command to completion, failing the test past the deadline.
fn run(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    output.recv_timeout(DEADLINE).expect("command timed out").unwrap()
}

/// `quotehub subscribe --json --count 5 AAPL` against `port`: the records' JSON lines.
fn five_aapl_records(port: u16) -> Vec<serde_json::Value> {
    let mut subscribe = Command::new(env!("CARGO_BIN_EXE_quotehub"));
    subscribe.args([
        "subscribe",
        "--url",
        &format!("ws://127.0.0.1:{port}/v1/quotes"),
        "--json",
        "--count",
        "5",
        "AAPL",
    ]);
    let output = run(subscribe);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn cluster_script_runs_an_ingest_hub_a_standby_and_two_edges_and_ctrl_c_stops_them_all() {
    if !has_program("nats-server") {
        assert!(
            std::env::var_os("QUOTEHUB_REQUIRE_ALL").is_none(),
            "missing nats-server; apt-get install nats-server, or run scripts/test.sh (QUOTEHUB_REQUIRE_ALL is set)"
        );
        eprintln!("skipping the cluster script test: missing nats-server; apt-get install nats-server");
        return;
    }
    let (nats, ingest, edge1, edge2) = (free_port(), free_port(), free_port(), free_port());
    let standby = free_port();
    let mut script = Command::new("bash")
        .arg("scripts/cluster.sh")
        .current_dir(repo_root())
        .env("QUOTEHUB_BIN", env!("CARGO_BIN_EXE_quotehub"))
        .env("NATS_PORT", nats.to_string())
        .env("INGEST_PORT", ingest.to_string())
        .env("EDGE_PORTS", format!("{edge1} {edge2}"))
        .env("STANDBY_PORT", standby.to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line_out, lines) = mpsc::channel();
    let stdout = script.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = line_out.send(line);
        }
    });

    // Each hub says "quotehub ready" once it has joined the bus.
    let mut ready = Vec::new();
    let mut seen = Vec::new();
    let start = Instant::now();
    while ready.len() < 4 {
        let left = DEADLINE.saturating_sub(start.elapsed());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("not every hub got ready:\n{}", seen.join("\n")));
        if line.contains("quotehub ready") {
            let name = line
                .split(']')
                .next()
                .unwrap_or_default()
                .trim_start_matches('[')
                .to_owned();
            ready.push(name);
        }
        seen.push(line);
    }
    ready.sort();
    assert_eq!(ready, ["edge1", "edge2", "ingest", "standby"]);

    // Every hub serves AAPL from the bundled session: the edges from the bus.
    for port in [ingest, standby, edge1, edge2] {
        let records = five_aapl_records(port);
        assert_eq!(records.len(), 5, "port {port}");
        for record in &records {
            assert_eq!(record["sym"], "AAPL", "{record}");
            assert!(record["seq"].as_u64().unwrap() > 0, "{record}");
            assert!(
                record["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|flag| flag == "replayed"),
                "{record}"
            );
        }
    }

    // Ctrl-C (SIGINT to the script) stops every process it started.
    let interrupted = Command::new("kill")
        .args(["-INT", &script.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || done.send(script.wait()));
    let status = exited.recv_timeout(DEADLINE).expect("the script did not stop").unwrap();
    assert!(status.success(), "{status}");
    for port in [nats, ingest, standby, edge1, edge2] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port} after Ctrl-C"
        );
    }
}
