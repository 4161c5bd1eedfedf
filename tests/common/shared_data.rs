//! Data beside the repository (`../shared/data`, described in its README):
//! found, or skipped with a notice, unless `QUOTEHUB_REQUIRE_ALL` is set
//! (as `scripts/test.sh` and so CI set it), where a missing file fails the
//! test instead of letting it pass without running.

use std::path::PathBuf;

use super::external::REQUIRE_ALL;

/// The real IEX TOPS 1.6 sample (a gzipped pcap of 2017-07-10).
pub const IEX_SAMPLE: &str = "../shared/data/iex/TOPS16.pcapng.gz";

/// `relative` (to the repository root) if it is a file; else `None` after a
/// notice, or a failure under `QUOTEHUB_REQUIRE_ALL`.
pub fn find(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os(REQUIRE_ALL).is_none(),
        "{relative} is missing ({REQUIRE_ALL} is set: tests that need it must run)"
    );
    eprintln!("skipping: {relative} not found");
    None
}
