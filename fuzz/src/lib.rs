//! The fuzz targets' checks, shared with the normal test suite: see
//! `checks.rs` (also compiled into `tests/fuzz_regressions.rs`) and README.md.

mod checks;

pub use checks::*;
