//! Owns the workspace-level tests and benches.
