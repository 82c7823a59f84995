//! See `sgplane_fuzz::json_edits` and fuzz/README.md for the input and what is asserted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sgplane_fuzz::json_edits::check(data);
});
