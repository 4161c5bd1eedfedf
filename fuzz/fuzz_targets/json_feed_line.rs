//! Fuzz target `json_feed_line`: what it checks is documented on
//! `quotehub_fuzz::json_feed_line` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::json_feed_line(data));
