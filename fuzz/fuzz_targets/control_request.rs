//! Fuzz target `control_request`: what it checks is documented on
//! `quotehub_fuzz::control_request` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::control_request(data));
