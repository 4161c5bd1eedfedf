//! Fuzz target `binary_message`: what it checks is documented on
//! `quotehub_fuzz::binary_message` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::binary_message(data));
