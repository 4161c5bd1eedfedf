//! Real programs beside the hub: finding them (or skipping, unless
//! `QUOTEHUB_REQUIRE_ALL` is set) and running them with bounded waits.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::mpsc;

use super::DEADLINE;

pub const REQUIRE_ALL: &str = "QUOTEHUB_REQUIRE_ALL";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn js_dir() -> PathBuf {
    repo().join("crates/quotehub-client/js")
}

pub fn missing_program(name: &str) -> Option<String> {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    (!found).then(|| format!("`{name}`"))
}

pub fn missing_file(path: &Path) -> Option<String> {
    (!path.exists()).then(|| path.display().to_string())
}

/// Whether nothing is missing; otherwise fails under `QUOTEHUB_REQUIRE_ALL`,
/// or prints a notice so that the caller can skip.
pub fn ready(test: &str, missing: &[Option<String>]) -> bool {
    let missing: Vec<&str> = missing.iter().flatten().map(String::as_str).collect();
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    assert!(
        std::env::var_os(REQUIRE_ALL).is_none(),
        "{test}: missing {what}; run scripts/setup_clients.sh ({REQUIRE_ALL} is set)"
    );
    eprintln!("skipping {test}: missing {what}; run scripts/setup_clients.sh");
    false
}

/// A child process whose stdout arrives line by line. Killed when dropped,
/// so that a failing test leaves nothing running.
pub struct Spawned {
    pub name: &'static str,
    child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Spawned {
    pub fn start(name: &'static str, mut command: Command) -> Self {
        command
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({command:?}): {error}"));
        // Plain threads: the pipes are blocking, and tokio here has no `process` feature.
        let (lines, stdout) = mpsc::unbounded_channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        }));
        Self {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// Stops the process if it still runs and returns all it wrote to stderr.
    pub fn kill_for_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Stops the process and fails the test, showing what it printed.
    pub fn fail(&mut self, what: &str, stdout: &[String]) -> ! {
        let stderr = self.kill_for_stderr();
        panic!(
            "{} {what}; stdout:\n{}\nstderr:\n{stderr}",
            self.name,
            stdout.join("\n")
        )
    }

    /// The next stdout line, which must come before the deadline.
    pub async fn line(&mut self) -> String {
        match tokio::time::timeout(DEADLINE, self.stdout.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => self.fail("ended its output early", &[]),
            Err(_) => self.fail(&format!("printed nothing for {DEADLINE:?}"), &[]),
        }
    }

    /// The next stdout line, parsed as JSON.
    pub async fn json_line(&mut self) -> Value {
        let line = self.line().await;
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{} printed {line:?}, not JSON: {error}", self.name))
    }

    /// Reads stdout to its end and waits for the exit, all before the deadline.
    pub async fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let mut lines = Vec::new();
        loop {
            match tokio::time::timeout(DEADLINE, self.stdout.recv()).await {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => break,
                Err(_) => self.fail(&format!("did not finish within {DEADLINE:?}"), &lines),
            }
        }
        // Its stdout is closed, so it has exited or is about to.
        let status = tokio::task::block_in_place(|| self.child.wait()).unwrap();
        let stderr = self.kill_for_stderr();
        (status, lines, stderr)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
