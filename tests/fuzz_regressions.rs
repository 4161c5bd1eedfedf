#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replays the fuzz inputs kept in the repository through the fuzz targets'
//! own checks, so they run in every test run, on stable, without cargo-fuzz:
//! every seed in `fuzz/seeds/<target>/` and every minimized crash kept in
//! `fuzz/regressions/<target>/`.
//!
//! The checks are `fuzz/src/checks.rs`, compiled here as a module: the same
//! code the fuzz targets call, so a regression fails here exactly as it
//! failed under the fuzzer. See `fuzz/README.md`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/checks.rs"]
mod checks;

/// The kept inputs of one target: its seeds, then its regressions, each
/// directory sorted by name. Dot files (`.gitkeep`) are not inputs.
fn inputs(target: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let list = |kind: &str| -> Vec<PathBuf> {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    };
    (list("seeds"), list("regressions"))
}

/// Runs `check` on every kept input of `target`, and fails naming every
/// input whose check panicked (each panic's message is printed as it happens).
fn replay(target: &str, check: fn(&[u8])) {
    let (seeds, regressions) = inputs(target);
    assert!(
        !seeds.is_empty(),
        "no seeds in fuzz/seeds/{target}/: the fuzz corpus moved or was lost"
    );
    let mut failed = Vec::new();
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} kept inputs fail the fuzz checks:\n{}",
        failed.len(),
        seeds.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn control_request_inputs_pass_the_fuzz_checks() {
    replay("control_request", checks::control_request);
}

#[test]
fn binary_message_inputs_pass_the_fuzz_checks() {
    replay("binary_message", checks::binary_message);
}

#[test]
fn json_feed_line_inputs_pass_the_fuzz_checks() {
    replay("json_feed_line", checks::json_feed_line);
}

#[test]
fn iex_pcap_inputs_pass_the_fuzz_checks() {
    replay("iex_pcap", checks::iex_pcap);
}

#[test]
fn http_head_inputs_pass_the_fuzz_checks() {
    replay("http_head", checks::http_head);
}

/// A decoded record's bytes that SPEC.md documents as written 0 and ignored
/// by readers (here a status record's flags) are left out of the round trip.
#[test]
fn ignored_bytes_are_left_out_of_the_round_trip() {
    let mut message = quotehub_proto::MessageHeader::encode(7).to_vec();
    message.extend_from_slice(
        &quotehub_proto::StatusRecord {
            code: quotehub_proto::StatusCode::Shutdown,
            feed: 0,
            ts: 1,
            detail: 2,
        }
        .encode(),
    );
    checks::binary_message(&message);
    message[16 + 3] = 0xff;
    checks::binary_message(&message);
}
