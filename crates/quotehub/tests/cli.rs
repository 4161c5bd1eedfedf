//! The README's tour, with the real binaries: `quotehub serve` on the bundled
//! feed, `quotehub subscribe` printing live quotes, Ctrl-C ending the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// The checkout, where the README's commands run.
fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn quotehub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quotehub"));
    command.env("RUST_LOG", "info").current_dir(repo_root());
    command
}

/// Runs a command to completion, failing the test past the deadline.
fn run(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    output.recv_timeout(DEADLINE).expect("command timed out").unwrap()
}

/// A running `quotehub serve`, the URL it announced, its ready line and
/// every line it writes to stderr.
struct Server {
    child: Child,
    url: String,
    ready_line: String,
    stderr_lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(&repo_root(), args, env)
    }

    fn start_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = quotehub()
            .current_dir(dir)
            .arg("serve")
            .args(listen)
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (found, url) = mpsc::channel();
        let (line_out, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // ws:// or wss://
                if let Some(at) = line.find("url=ws") {
                    let url = line[at + 4..].split_whitespace().next().unwrap_or_default().to_owned();
                    let _ = found.send((url, line.clone()));
                }
                let _ = line_out.send(line);
            }
        });
        let (url, ready_line) = url.recv_timeout(DEADLINE).expect("serve never announced its URL");
        Self {
            child,
            url,
            ready_line,
            stderr_lines,
        }
    }

    /// Every stderr line up to and including the first that `wanted`
    /// accepts, failing the test if none comes before the deadline.
    fn lines_until(&self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    let done = wanted(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no such line from serve; it wrote:\n{}", seen.join("\n")),
            }
        }
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

/// The lines of `quotehub subscribe` output that are records. A subscriber
/// that connects before the replay's first record also gets its
/// `replay_started` status (stamped with the hub's clock, not the feed's);
/// any other status fails the test.
fn records_after_the_start(stdout: &str) -> Vec<&str> {
    let (statuses, records): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .partition(|line| line.split_whitespace().nth(1) == Some("status"));
    assert!(
        statuses.iter().all(|line| line.contains(" replay_started ")),
        "{stdout}"
    );
    records
}

#[test]
fn serve_bundled_feed_then_subscribe_prints_live_quotes() {
    let server = Server::start(&["--speed", "10"]);

    let mut subscribe = quotehub();
    subscribe.args(["subscribe", "--url", &server.url, "--count", "20", "AAPL", "MSFT"]);
    let output = run(subscribe);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 20, "{stdout}");
    let data = records_after_the_start(&stdout);
    assert!(data.len() >= 19, "{stdout}");
    for line in &data {
        let symbol = line.split_whitespace().nth(1).unwrap();
        assert!(symbol == "AAPL" || symbol == "MSFT", "{line}");
        assert!(
            line.starts_with("2026-11-20T14:"),
            "event time of the bundled session: {line}"
        );
        assert!(line.contains(" @ "), "{line}");
    }

    // Symbols no feed has sent are named once, and the rest flow.
    let mut unknown = quotehub();
    unknown.args([
        "subscribe",
        "--url",
        &server.url,
        "--count",
        "2",
        "ZZZZ",
        "aapl",
        "AAPL",
    ]);
    let output = run(unknown);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ZZZZ: no data yet from any feed"), "{stderr}");
    assert!(
        stderr.contains("aapl: no data yet") && stderr.contains("did you mean AAPL?"),
        "{stderr}"
    );
    assert!(!stderr.contains("AAPL: no data"), "{stderr}");
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 2);

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
fn subscribe_with_channels_prints_only_those_kinds() {
    let server = Server::start(&["--speed", "10"]);

    let mut trades = quotehub();
    trades.args([
        "subscribe",
        "--url",
        &server.url,
        "--channels",
        "trades",
        "--count",
        "5",
        "AAPL",
        "MSFT",
    ]);
    let output = run(trades);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    // Status records (the replay starting or looping) reach every client,
    // whatever its channels; of the rest, only trades.
    let updates: Vec<&str> = stdout.lines().filter(|line| !line.contains(" status ")).collect();
    assert!(!updates.is_empty(), "{stdout}");
    for line in updates {
        assert!(
            line.contains(" trade ") && !line.contains(" bid "),
            "only trades: {line}"
        );
    }

    let mut json = quotehub();
    json.args([
        "subscribe",
        "--url",
        &server.url,
        "--json",
        "--channels",
        "quotes",
        "--count",
        "5",
        "NVDA",
    ]);
    let output = run(json);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if value["type"] == "status" {
            continue;
        }
        assert_eq!(
            (&value["sym"], value.get("p")),
            (&"NVDA".into(), None),
            "only quotes: {line}"
        );
        assert!(value["bp"].is_string(), "{line}");
    }

    // An unknown channel is named before connecting, with the known ones.
    let mut unknown = quotehub();
    unknown.args([
        "subscribe",
        "--url",
        &server.url,
        "--channels",
        "trades,bars.5m",
        "AAPL",
    ]);
    let output = run(unknown);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("unknown channel \"bars.5m\"") && stderr.contains("bbo"),
        "{stderr}"
    );

    assert!(server.interrupt().success(), "Ctrl-C is a clean exit");
}

#[test]
fn cert_writes_a_ca_and_a_server_certificate_that_serve_and_subscribe_accept() {
    let dir = std::env::temp_dir().join(format!("quotehub-cli-cert-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cert = quotehub();
    cert.args(["cert", "--out", dir.to_str().unwrap()]);
    let output = run(cert);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let told = String::from_utf8(output.stdout).unwrap();
    let (cert_pem, key_pem, ca_pem) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("ca.pem"));
    assert!(
        told.contains(&format!("--tls-cert {}", cert_pem.display())) && told.contains("--ca-file"),
        "it says how to use them: {told}"
    );

    let server = Server::start(&[
        "--speed",
        "10",
        "--tls-cert",
        cert_pem.to_str().unwrap(),
        "--tls-key",
        key_pem.to_str().unwrap(),
    ]);
    assert!(server.url.starts_with("wss://"), "{}", server.url);
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // By name and by address: the certificate lists localhost and 127.0.0.1.
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("wss://{host}:{port}/v1/quotes");
        let mut subscribe = quotehub();
        subscribe.args(["subscribe", "--url", &url, "--ca-file", ca_pem.to_str().unwrap()]);
        subscribe.args(["--count", "3", "AAPL"]);
        let output = run(subscribe);
        assert!(
            output.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 3);
    }
    assert!(server.interrupt().success());

    // A second run never overwrites the CA (or anything else).
    let before = std::fs::read(&ca_pem).unwrap();
    let mut again = quotehub();
    again.args(["cert", "--out", dir.to_str().unwrap()]);
    let output = run(again);
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr).unwrap().contains("exists already"));
    assert_eq!(std::fs::read(&ca_pem).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn subscribe_presents_an_api_key_and_its_errors_say_one_thing_once() {
    let mut serve = Server::start_with_env(&["--speed", "10"], &[("QUOTEHUB_API_KEYS", "desk=s3cret")]);
    let url = serve.url.clone();
    let subscribe = |url: &str, key: Option<(&str, &str)>| {
        let mut command = quotehub();
        command.env_remove("QUOTEHUB_API_KEY");
        command.args(["subscribe", "--url", url, "--no-reconnect", "--count", "2", "AAPL"]);
        match key {
            Some(("flag", key)) => {
                command.args(["--api-key", key]);
            }
            Some((_, key)) => {
                command.env("QUOTEHUB_API_KEY", key);
            }
            None => {}
        }
        run(command)
    };

    let refused = subscribe(&url, None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("401") && stderr.contains("needs an API key: --api-key or QUOTEHUB_API_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("running?"), "the hub is running: {stderr}");

    for how in ["flag", "env"] {
        let output = subscribe(&url, Some((how, "s3cret")));
        assert!(
            output.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 2, "{how}");
    }

    // The board's path, not the quotes': one sentence, said once.
    let board = url.trim_end_matches("/v1/quotes").to_owned() + "/";
    let output = subscribe(&board, Some(("flag", "s3cret")));
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.matches("200").count(), 1, "{stderr}");
    assert!(
        stderr.contains("/v1/quotes") && !stderr.contains("running?"),
        "{stderr}"
    );
    assert!(serve.child.try_wait().unwrap().is_none(), "the hub is still up");
    assert!(serve.interrupt().success());
}

#[test]
fn the_binary_serves_the_bundled_session_away_from_the_checkout() {
    // As after `cargo install`: run from elsewhere, with a cache of its own.
    let dir = std::env::temp_dir().join(format!("quotehub-cli-travel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mut server = Server::start_in(&dir, &["--speed", "10"], &[("XDG_CACHE_HOME", cache.to_str().unwrap())]);
    assert!(
        !server.ready_line.contains("url=ws://127.0.0.1:8080"),
        "{}",
        server.ready_line
    );
    assert!(
        server
            .ready_line
            .contains(&format!("try: quotehub subscribe --url {} AAPL MSFT", server.url)),
        "the hint names the port it listens on: {}",
        server.ready_line
    );
    let mut subscribe = quotehub();
    subscribe.current_dir(&dir);
    subscribe.args(["subscribe", "--url", &server.url, "--count", "3", "AAPL"]);
    let output = run(subscribe);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        records_after_the_start(&stdout)
            .iter()
            .all(|line| line.starts_with("2026-11-20T14:")),
        "{stdout}"
    );
    let written = cache.join("quotehub/us-equities-2026-11-20.jsonl");
    assert!(
        std::fs::read(&written).unwrap()
            == std::fs::read(repo_root().join("feeds/us-equities-2026-11-20.jsonl")).unwrap(),
        "the session the binary writes is the bundled one, byte for byte"
    );
    assert!(server.child.try_wait().unwrap().is_none());
    assert!(server.interrupt().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn listen_takes_a_host_name_and_an_unknown_replay_feed_is_named_with_the_offered_ones() {
    let server = Server::start(&["--listen", "localhost:0"]);
    assert!(
        server.url.starts_with("ws://127.0.0.1:") || server.url.starts_with("ws://[::1]:"),
        "{}",
        server.url
    );
    let mut replay = quotehub();
    replay.args(["subscribe", "--url", &server.url, "--replay", "nosuch", "AAPL"]);
    let output = run(replay);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("/v1/replay?feed=nosuch") && stderr.contains("offered: bundled") && stderr.contains("404"),
        "the path it asked, and what the hub offers: {stderr}"
    );
    assert!(!stderr.contains("/v1/quotes"), "{stderr}");
    assert!(server.interrupt().success());
}

#[test]
fn recordings_of_different_days_are_refused_unless_aligned_then_merge_at_one_start() {
    // The README's example: the 2017 IEX sample merged with the 2026 session.
    let iex = repo_root().join("../shared/data/iex/TOPS16.pcapng.gz");
    if !iex.is_file() {
        assert!(
            std::env::var_os("QUOTEHUB_REQUIRE_ALL").is_none(),
            "{} is missing (QUOTEHUB_REQUIRE_ALL is set)",
            iex.display()
        );
        eprintln!("skipping: {} not found", iex.display());
        return;
    }
    let iex_feed = format!("{}#AAPL,SPY", iex.display());
    let feeds = ["--feed", &iex_feed, "--feed", "feeds/us-equities-2026-11-20.jsonl"];
    let mut far_apart = quotehub();
    far_apart.args(["serve", "--listen", "127.0.0.1:0"]).args(feeds);
    let output = run(far_apart);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("--align") && stderr.contains("2017-07-10T14:32") && stderr.contains("2026-11-20T14:30"),
        "{stderr}"
    );

    let server = Server::start(&[&["--align", "--speed", "100"][..], &feeds].concat());
    assert!(
        server.ready_line.contains("aligned to the first's start"),
        "{}",
        server.ready_line
    );
    let mut subscribe = quotehub();
    subscribe.args(["subscribe", "--url", &server.url, "--json", "--count", "1500", "AAPL"]);
    let output = run(subscribe);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (mut iex_2017, mut session_2026) = (0, 0);
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if value["type"] != "quote" && value["type"] != "trade" {
            continue;
        }
        let t = value["t"].as_u64().unwrap();
        assert!(
            (1_499_600_000_000_000_000..1_499_800_000_000_000_000).contains(&t),
            "on 2017-07-10: {line}"
        );
        let price: f64 = ["ap", "p"]
            .iter()
            .find_map(|k| value[k].as_str())
            .unwrap()
            .parse()
            .unwrap();
        match price {
            p if (140.0..160.0).contains(&p) => iex_2017 += 1,
            p if (250.0..300.0).contains(&p) => session_2026 += 1,
            _ => {}
        }
    }
    assert!(
        iex_2017 > 0 && session_2026 > 0,
        "both feeds: {iex_2017} IEX, {session_2026} session"
    );
    assert!(server.interrupt().success());
}

#[test]
fn bad_arguments_get_clear_errors() {
    let mut missing = quotehub();
    missing.args(["serve", "--listen", "127.0.0.1:0", "--feed", "/nonexistent/feed.jsonl"]);
    let output = run(missing);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/feed.jsonl"), "{stderr}");
    assert_eq!(stderr.matches("No such file").count(), 1, "said once: {stderr}");
    assert_eq!(
        stderr.matches("/nonexistent/feed.jsonl").count(),
        1,
        "said once: {stderr}"
    );

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
fn bus_settings_get_clear_errors_and_an_unreachable_bus_is_waited_for() {
    // Port 9 (discard): nothing listens there on a test machine.
    let unreachable = "nats://127.0.0.1:9";
    let cases: [(&[&str], &str); 3] = [
        // TC0: a role without a bus.
        (&["--role", "edge"], "a bus role needs a bus"),
        // TC1: an edge given a feed.
        (
            &[
                "--bus",
                unreachable,
                "--role",
                "edge",
                "--feed",
                "feeds/us-equities-2026-11-20.jsonl",
            ],
            "an edge hub has no feeds of its own",
        ),
        // TC2: an unknown role.
        (&["--bus", unreachable, "--role", "relay"], "unknown bus role"),
    ];
    for (args, said) in cases {
        let mut serve = quotehub();
        serve.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        let output = run(serve);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.matches(said).count(), 1, "{args:?}: said once: {stderr}");
    }

    // TC3: an unreachable bus is waited for (said once), and SIGTERM still
    // stops the hub cleanly before it has reached it.
    let mut child = quotehub()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--bus",
            unreachable,
            "--role",
            "ingest",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (line_out, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_out.send(line);
        }
    });
    let waiting = format!("waiting for the bus at {unreachable}");
    loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("serve never said it waits for the bus");
        assert!(!line.contains("quotehub ready"), "not ready without its bus: {line}");
        if line.contains(&waiting) {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait()));
    let exit = exited
        .recv_timeout(DEADLINE)
        .expect("serve did not exit on SIGTERM")
        .unwrap();
    assert!(exit.success(), "a clean exit: {exit:?}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        !rest.iter().any(|line| line.contains(&waiting)),
        "the wait is said once: {rest:?}"
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
         worker_threads = 1\n\
         [limits]\nslow_consumer_policy = \"disconnect\"\n",
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert!(server.ready_line.contains("policy=Disconnect"), "{}", server.ready_line);
    assert!(server.ready_line.contains("workers=1"), "{}", server.ready_line);
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
    // No threads at all would panic in the runtime's builder: refused first.
    let mut no_threads = quotehub();
    std::fs::write(&config, "[serve]\nworker_threads = 0\n").unwrap();
    no_threads.args(["serve", "--config", config.to_str().unwrap()]);
    let output = run(no_threads);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("serve.worker_threads must be at least 1")
            && stderr.contains("hub.toml")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Polygon-style stand-in that refuses a client without a key, as
/// Polygon does: it greets, reads the first action and answers a
/// `subscribe` with `not authorized`. Reports each first action's name.
fn keyless_polygon_stand_in() -> (String, mpsc::Receiver<String>) {
    use tokio_tungstenite::tungstenite::{self, Message};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/stocks", listener.local_addr().unwrap());
    let (actions, first_actions) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut ws) = tungstenite::accept(stream.unwrap()) else {
                continue;
            };
            let greeting = r#"[{"ev":"status","status":"connected","message":"Connected Successfully"}]"#;
            if ws.send(Message::text(greeting)).is_err() {
                continue;
            }
            let Ok(Message::Text(text)) = ws.read() else { continue };
            let action: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            let _ = actions.send(action["action"].as_str().unwrap_or_default().to_owned());
            let refusal = r#"[{"ev":"status","status":"error","message":"not authorized"}]"#;
            let _ = ws.send(Message::text(refusal));
            // Until the hub hangs up.
            while ws.read().is_ok() {}
        }
    });
    (url, first_actions)
}

#[test]
fn a_polygon_upstream_without_a_key_says_what_is_missing_once_then_each_refusal() {
    let (url, first_actions) = keyless_polygon_stand_in();
    // An empty variable counts as unset.
    let server = Server::start_with_env(&["--feed", &url], &[("QUOTEHUB_UPSTREAM_KEY", "")]);
    let refused = |line: &str| line.contains("WARN") && line.contains("wants an API key (error: not authorized)");
    let mut lines = server.lines_until(refused);
    lines.extend(server.lines_until(refused));
    assert_eq!(
        first_actions.recv_timeout(DEADLINE).unwrap(),
        "subscribe",
        "no key, so no auth action"
    );
    let hints = lines
        .iter()
        .filter(|line| line.contains("WARN") && line.contains("no API key") && line.contains("QUOTEHUB_UPSTREAM_KEY"))
        .count();
    assert_eq!(hints, 1, "what is missing is said once, not per attempt: {lines:#?}");
    assert!(server.interrupt().success());
}

#[test]
fn the_shipped_hub_carries_no_load_tool() {
    // The load tool is its own binary (crates/quotehub-bench); the hub's
    // help names none of it, and `quotehub bench` is not a command.
    let mut help = quotehub();
    help.arg("--help");
    let output = run(help);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("serve") && !text.contains("bench"), "{text}");
    for gone in ["bench", "bench-floor"] {
        let mut command = quotehub();
        command.arg(gone);
        let output = run(command);
        assert!(!output.status.success(), "`quotehub {gone}` still runs");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
    }
}
