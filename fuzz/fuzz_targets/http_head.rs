//! Fuzz target `http_head`: what it checks is documented on
//! `quotehub_fuzz::http_head` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::http_head(data));
