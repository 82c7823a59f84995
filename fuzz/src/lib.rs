//! Support code for sgplane's fuzz targets.
//!
//! - [`invariants`]: the checks every target asserts, on plain bytes; the
//!   regression tests in `tests/fuzz_regressions.rs` include this file.
//! - [`scenario`]: the `engine` target's packet sequences (`arbitrary`).
//! - [`policy_mutation`]: the `policy_structured` target's edits to a valid policy.
//! - [`aws_documents`], [`nacl_scenario`], [`nesting`], [`topology`]: the
//!   structured inputs of `import_aws_structured`, `engine_nacl_tracking`,
//!   `tunnels` and `path` (each with the target's body, `check`, which the
//!   regression tests include by path too).
//! - [`json_edits`]: the `import_json_edits` target's edits to the tree's
//!   AWS, Alibaba and Azure snapshots.
pub mod aws_documents;
pub mod invariants;
pub mod json_edits;
pub mod nacl_scenario;
pub mod nesting;
pub mod policy_mutation;
pub mod scenario;
pub mod topology;
