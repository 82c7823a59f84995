//! A sequence of packets, structured and raw, through one `Engine` on a fixed
//! policy with tiny conntrack limits: no panic, exact accounting after every
//! packet, the table within its limit, and `established`/`related` only for
//! flows the harness saw allowed (`invariants::EngineHarness`). Input layout:
//! `scenario`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sgplane_fuzz::scenario::run(data);
});
