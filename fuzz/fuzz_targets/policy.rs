//! Any UTF-8 text as a policy file: `Policy::from_toml` never panics; errors
//! are positioned and non-empty; an accepted policy's `check` warnings,
//! `explain` of a few flows and an engine run never panic and agree with the
//! evaluator (`invariants::check_policy_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        sgplane_fuzz::invariants::check_policy_text(text);
    }
});
