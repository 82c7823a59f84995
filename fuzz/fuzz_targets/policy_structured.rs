//! A valid policy (one of config/*.toml or the engine fuzz policy) edited by
//! a list of structured mutations (`policy_mutation`), serialized and loaded:
//! the same checks as `policy`, on inputs that get past the TOML parser.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sgplane_fuzz::policy_mutation::Edit;

fuzz_target!(|data: &[u8]| {
    let Ok(edit) = Edit::arbitrary_take_rest(Unstructured::new(data)) else { return };
    if let Some(text) = edit.apply() {
        sgplane_fuzz::invariants::check_policy_text(&text);
    }
});
