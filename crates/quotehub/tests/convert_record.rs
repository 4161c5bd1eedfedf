//! `quotehub convert`, `quotehub record` and `serve --record`, with the real
//! binary: lossless conversions, captures that hold what the hub ingested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use quotehub_feed::{CaptureFile, open_recorded};
use quotehub_proto::Event;

const DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bundled() -> String {
    repo().join("feeds/us-equities-2026-11-20.jsonl").display().to_string()
}

/// A scratch directory for one test, emptied first and removed when the
/// test ends (its captures are megabytes: left behind, every run of the
/// suite added about 17 MB to the temporary directory).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("quotehub-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Runs `quotehub ARGS` to completion, failing the test past the deadline.
fn quotehub(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_quotehub"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    output.recv_timeout(DEADLINE).expect("quotehub timed out").unwrap()
}

fn succeeds(args: &[&str]) -> String {
    let output = quotehub(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "quotehub {args:?} failed: {stderr}");
    stderr
}

fn events(path: &Path) -> Vec<Event> {
    let mut feed = open_recorded(path).unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| feed.next_event().unwrap()).collect();
    assert_eq!(feed.stats().rejected, 0, "{}", path.display());
    events
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn conversions_lose_nothing_the_target_holds() {
    let dir = scratch("convert");
    let (qhc, jsonl, again) = (dir.join("a.qhc"), dir.join("a.jsonl"), dir.join("b.qhc"));
    let said = succeeds(&["convert", &bundled(), text(&qhc)]);
    assert!(said.contains("converted 74900 events"), "{said}");
    succeeds(&["convert", text(&qhc), text(&jsonl)]);
    succeeds(&["convert", text(&jsonl), "--to", "capture", text(&again)]);
    // JSON lines → capture → JSON lines → capture: the same events, and the
    // two captures are the same bytes.
    let original = events(Path::new(&bundled()));
    assert_eq!(events(&qhc), original);
    assert_eq!(events(&jsonl), original);
    assert_eq!(std::fs::read(&qhc).unwrap(), std::fs::read(&again).unwrap());
    assert!(!CaptureFile::open(&qhc).unwrap().index().is_empty());

    // JSON lines on standard output, filtered to one symbol.
    let output = quotehub(&["convert", &format!("{}#AAPL", bundled()), "-"]);
    assert!(output.status.success());
    let lines = String::from_utf8(output.stdout).unwrap();
    let aapl = original.iter().filter(|e| e.symbol().as_str() == "AAPL").count();
    assert_eq!(lines.lines().count(), aapl);
    assert!(lines.lines().all(|line| line.contains(r#""sym":"AAPL""#)));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("{} filtered out", original.len() - aapl)),
        "{said}"
    );
}

#[test]
fn the_iex_sample_converts_both_ways_exactly() {
    let sample = repo().join("../shared/data/iex/TOPS16.pcapng.gz");
    if !sample.is_file() {
        // CI (scripts/test.sh) sets QUOTEHUB_REQUIRE_ALL: there it must run.
        assert!(
            std::env::var_os("QUOTEHUB_REQUIRE_ALL").is_none(),
            "{} is missing (QUOTEHUB_REQUIRE_ALL is set)",
            sample.display()
        );
        eprintln!("skipping: {} not found", sample.display());
        return;
    }
    let dir = scratch("convert-iex");
    let (qhc, jsonl, again) = (dir.join("iex.qhc"), dir.join("iex.jsonl"), dir.join("again.qhc"));
    succeeds(&["convert", text(&sample), text(&qhc)]);
    succeeds(&["convert", text(&qhc), text(&jsonl)]);
    succeeds(&["convert", text(&jsonl), text(&again)]);
    let original = events(&sample);
    assert_eq!(original.len(), 27_217 + 6_390);
    assert_eq!(events(&qhc), original);
    assert_eq!(events(&jsonl), original);
    assert_eq!(std::fs::read(&qhc).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn convert_and_record_refuse_what_would_surprise() {
    let dir = scratch("refuse");
    let existing = dir.join("taken.qhc");
    std::fs::write(&existing, b"keep me").unwrap();
    for args in [
        vec!["convert", &bundled(), text(&existing)],
        vec!["record", "--feed", &bundled(), "--out", text(&existing)],
    ] {
        let output = quotehub(&args);
        assert!(!output.status.success());
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("exists"), "{args:?}: {said}");
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let unknown = dir.join("out.txt");
    let output = quotehub(&["convert", &bundled(), text(&unknown)]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--to jsonl|capture"));
    assert!(!unknown.exists());
}

/// Checks a capture of the bundled feed's `symbols`: every event, in order,
/// sequenced per symbol from 1 and stamped with a receive time.
fn check_recorded(capture: &Path, symbols: &[&str]) {
    let wanted: Vec<Event> = events(Path::new(&bundled()))
        .into_iter()
        .filter(|e| symbols.contains(&e.symbol().as_str()))
        .collect();
    let mut seqs = HashMap::new();
    let mut got = events(capture);
    for event in &mut got {
        let (seq, recv_ts) = match event {
            Event::Quote(q) => (q.seq, q.recv_ts),
            Event::Trade(t) => (t.seq, t.recv_ts),
            _ => unreachable!(),
        };
        let last = seqs.insert(event.symbol(), seq).unwrap_or(0);
        assert_eq!(seq, last + 1);
        assert!(recv_ts >= 1_700_000_000_000_000_000, "stamped at ingest");
        event.set_seq(0);
        event.set_recv_ts(0);
    }
    assert_eq!(got, wanted);
}

#[test]
fn record_writes_what_the_hub_ingests() {
    let dir = scratch("record");
    let capture = dir.join("rec.qhc");
    let feed = format!("{}#AAPL,MSFT", bundled());
    let said = succeeds(&["record", "--feed", &feed, "--out", text(&capture)]);
    assert!(said.contains("recorded"), "{said}");
    check_recorded(&capture, &["AAPL", "MSFT"]);
}

#[test]
fn serve_records_until_it_is_stopped() {
    let dir = scratch("serve-record");
    let capture = dir.join("served.qhc");
    let feed = format!("{}#NVDA", bundled());
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotehub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--speed", "max", "--no-loop"])
        .args(["--feed", &feed, "--record", text(&capture)])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (seen, finished) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = seen.send(line);
        }
    });
    let wait_for = |needle: &str| loop {
        let line = finished
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no {needle:?} line"));
        if line.contains(needle) {
            break line;
        }
    };
    wait_for("feed finished");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = wait_for("capture written");
    assert!(line.contains("records="), "{line}");
    assert!(child.wait().unwrap().success());
    check_recorded(&capture, &["NVDA"]);
    assert!(!CaptureFile::open(&capture).unwrap().index().is_empty());
}

#[test]
fn serve_records_a_live_source_through_its_symbol_filter() {
    use std::io::{Read, Write};
    // A live upstream: JSON lines over TCP, two symbols and a bad line; it
    // holds the connection open until the hub closes it.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let feed = format!("tcp://{}#AAPL", upstream.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut socket, _) = upstream.accept().unwrap();
        let lines = concat!(
            r#"{"ev":"Q","sym":"MSFT","bp":510.01,"bs":100,"ap":510.02,"as":200,"t":1795185000000000001}"#,
            "\n",
            r#"{"ev":"Q","sym":"AAPL","bp":271.22,"bs":1100,"ap":271.23,"as":700,"t":1795185000000000002}"#,
            "\nnot json\n",
            r#"{"ev":"T","sym":"AAPL","p":271.225,"s":37,"t":1795185000000000003}"#,
            "\n",
        );
        socket.write_all(lines.as_bytes()).unwrap();
        let _ = socket.read_to_end(&mut Vec::new());
    });
    let dir = scratch("serve-live-record");
    let capture = dir.join("live.qhc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quotehub"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--feed",
            &feed,
            "--record",
            text(&capture),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (seen, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = seen.send(line);
        }
    });
    let url = loop {
        let line = lines.recv_timeout(DEADLINE).expect("serve never announced its URL");
        if let Some(at) = line.find("url=ws://") {
            break line[at + 4..].split_whitespace().next().unwrap().to_owned();
        }
    };
    // Both AAPL events reach a subscriber (a snapshot or live, whichever
    // way the race with the upstream goes): they have been ingested.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = quotehub_client::Client::connect(&url).await.unwrap();
        client.subscribe(&["AAPL"]).await.unwrap();
        let mut last_seq = 0;
        while last_seq < 2 {
            let update = tokio::time::timeout(DEADLINE, client.next_update())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            last_seq = match update {
                quotehub_client::Update::Quote { record, .. } => record.quote.seq,
                quotehub_client::Update::Trade { record, .. } => record.trade.seq,
                _ => last_seq,
            };
        }
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let got = events(&capture);
    let symbols: Vec<_> = got
        .iter()
        .map(|e| (e.symbol().to_string(), e.event_ts() % 10))
        .collect();
    assert_eq!(symbols, [("AAPL".to_owned(), 2), ("AAPL".to_owned(), 3)]);
    assert!(matches!(got[1], Event::Trade(t) if t.price.to_string() == "271.225" && t.size == 37));
}
