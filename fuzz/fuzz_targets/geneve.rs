//! Any bytes as a GENEVE header and payload: `new_checked` never panics and
//! an accepted header loses no byte, and as a received UDP payload they
//! parse as the packet that carried them (`invariants::check_geneve`). The same
//! bytes, read as a list of valid options, round-trip through `emit`
//! (`invariants::check_geneve_roundtrip`).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sgplane_fuzz::invariants::{check_geneve, check_geneve_roundtrip, OptionSpec};

/// An option with a valid length (0-124 bytes, whole words).
#[derive(Arbitrary, Debug)]
struct Opt {
    aws_class: bool,
    class: u16,
    typ: u8,
    critical: bool,
    words: u8,
    fill: u8,
}

#[derive(Arbitrary, Debug)]
struct Roundtrip {
    vni: u32,
    wide_vni: bool,
    protocol: u16,
    options: Vec<Opt>,
    payload: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    check_geneve(data);
    let Ok(rt) = Roundtrip::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let options: Vec<OptionSpec> = rt
        .options
        .iter()
        .take(70)
        .map(|o| OptionSpec {
            class: if o.aws_class { sgplane::wire::geneve::AWS_OPTION_CLASS } else { o.class },
            typ: if o.aws_class { o.typ % 5 } else { o.typ & 0x7f },
            critical: o.critical,
            data: (0..usize::from(o.words % 32) * 4).map(|i| o.fill.wrapping_add(i as u8)).collect(),
        })
        .collect();
    let vni = if rt.wide_vni { rt.vni } else { rt.vni & 0x00ff_ffff };
    check_geneve_roundtrip(vni, rt.protocol, &options, &rt.payload);
});
