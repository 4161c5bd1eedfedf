//! Fuzz target `iex_capture`: what it checks is documented on
//! `quotehub_fuzz::iex_capture` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::iex_capture(data));
