//! Any bytes as a pcap or pcapng stream: `CaptureReader` never panics, reading
//! in batches gives what reading record by record gives, record
//! offsets strictly increase and never pass the input's end, each record is
//! the input's bytes at its offset (`invariants::check_capture`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sgplane_fuzz::invariants::check_capture(data));
