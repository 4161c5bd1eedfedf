//! Fuzz target `json_line_paths`: the JSON line decoder's flat fast path
//! against its simd-json path; what it checks is documented on
//! `quotehub_fuzz::json_line_paths` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::json_line_paths(data));
