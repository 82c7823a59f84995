//! Support code for sgplane's fuzz targets.
//!
//! - [`invariants`]: the checks every target asserts, on plain bytes; the
//!   regression tests in `tests/fuzz_regressions.rs` include this file.
//! - [`scenario`]: the `engine` target's packet sequences (`arbitrary`).
//! - [`policy_mutation`]: the `policy_structured` target's edits to a valid policy.
pub mod invariants;
pub mod policy_mutation;
pub mod scenario;
