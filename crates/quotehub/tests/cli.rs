//! The README's tour, with the real binaries: `quotehub serve` on the bundled
//! feed, `quotehub subscribe` printing live quotes, Ctrl-C ending the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn quotehub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quotehub"));
    command.env("RUST_LOG", "info");
    command
}

/// Runs a command to completion, failing the test past the deadline.
fn run(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    output.recv_timeout(DEADLINE).expect("command timed out").unwrap()
}

/// A running `quotehub serve`, the URL it announced and its ready line.
struct Server {
    child: Child,
    url: String,
    ready_line: String,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = quotehub()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (found, url) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("url=ws://") {
                    let url = line[at + 4..].split_whitespace().next().unwrap_or_default().to_owned();
                    let _ = found.send((url, line.clone()));
                }
            }
        });
        let (url, ready_line) = url.recv_timeout(DEADLINE).expect("serve never announced its URL");
        Self { child, url, ready_line }
    }

    /// Sends SIGINT, as Ctrl-C does, and returns the exit status.
    fn interrupt(self) -> std::process::ExitStatus {
        self.signal("-INT")
    }

    /// Sends `signal` and returns the exit status.
    fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let (done, exited) = mpsc::channel();
        std::thread::spawn(move || done.send(self.child.wait()));
        exited
            .recv_timeout(DEADLINE)
            .expect("serve did not exit after SIGINT")
            .unwrap()
    }
}

#[test]
fn serve_bundled_feed_then_subscribe_prints_live_quotes() {
    let server = Server::start(&["--speed", "10"]);

    let mut subscribe = quotehub();
    subscribe.args(["subscribe", "--url", &server.url, "--count", "20", "AAPL", "MSFT"]);
    let output = run(subscribe);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 20, "{stdout}");
    for line in &lines {
        let symbol = line.split_whitespace().nth(1).unwrap();
        assert!(symbol == "AAPL" || symbol == "MSFT", "{line}");
        assert!(
            line.starts_with("2026-11-20T14:"),
            "event time of the bundled session: {line}"
        );
        assert!(line.contains(" @ "), "{line}");
    }

    let mut json = quotehub();
    json.args(["subscribe", "--url", &server.url, "--json", "--count", "5", "NVDA"]);
    let output = run(json);
    assert!(output.status.success());
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["sym"], "NVDA");
        let price = value
            .get("bp")
            .or(value.get("p"))
            .and_then(|p| p.as_str())
            .expect("prices are strings");
        assert!(price.parse::<f64>().is_ok() && price.contains('.'), "{line}");
        assert!(
            value["flags"].as_array().unwrap().iter().any(|f| f == "replayed"),
            "{line}"
        );
    }

    assert!(server.interrupt().success(), "Ctrl-C is a clean exit");
}

#[test]
fn bad_arguments_get_clear_errors() {
    let mut missing = quotehub();
    missing.args(["serve", "--listen", "127.0.0.1:0", "--feed", "/nonexistent/feed.jsonl"]);
    let output = run(missing);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/feed.jsonl"), "{stderr}");

    let mut speed = quotehub();
    speed.args(["serve", "--speed", "fast"]);
    let output = run(speed);
    assert!(!output.status.success());
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("speed must be a positive number")
    );

    let mut nobody = quotehub();
    nobody.args(["subscribe", "--url", "ws://127.0.0.1:9/v1/quotes", "AAPL"]);
    let output = run(nobody);
    assert!(!output.status.success());
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("is `quotehub serve` running?")
    );
}

#[test]
fn a_config_file_sets_what_flags_do_not_and_sigterm_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!("quotehub-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        "[serve]\nlisten = \"127.0.0.1:0\"\nspeed = \"max\"\nloop = false\n\
         [limits]\nslow_consumer_policy = \"disconnect\"\n",
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert!(server.ready_line.contains("policy=Disconnect"), "{}", server.ready_line);
    assert!(server.ready_line.contains("speed=Max"), "{}", server.ready_line);
    assert!(server.signal("-TERM").success(), "SIGTERM is a clean exit");

    let mut typo = quotehub();
    std::fs::write(&config, "[limits]\nqueue_capacty = 10\n").unwrap();
    typo.args(["serve", "--config", config.to_str().unwrap()]);
    let output = run(typo);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("queue_capacty") && stderr.contains("hub.toml"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
