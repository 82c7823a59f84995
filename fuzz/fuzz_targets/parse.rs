//! Any bytes, under every link type, with any `orig_len >= len`: `parse`
//! never panics, and an IP packet it returns is consistent with the bytes
//! (see `invariants::check_parse`). Input layout: `invariants::ParseInput`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sgplane_fuzz::invariants::check_parse;

fuzz_target!(|data: &[u8]| check_parse(data));
