//! JSON documents separated by NUL bytes through `import azure`: never a
//! panic, skipped items named, and an import that compiles survives being
//! written and read back (`invariants::check_import`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sgplane_fuzz::invariants::check_import_azure(data);
});
