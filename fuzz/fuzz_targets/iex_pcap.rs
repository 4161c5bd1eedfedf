//! Fuzz target `iex_pcap`: what it checks is documented on
//! `quotehub_fuzz::iex_pcap` in `fuzz/src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quotehub_fuzz::iex_pcap(data));
