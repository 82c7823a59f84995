//! Property tests: no bytes make the view panic, the option walk loses no
//! byte, and emitted headers parse back.

use proptest::prelude::*;

use super::*;

/// Everything a caller can do with a view over `bytes`; checks the
/// invariants that hold once `new_checked` accepted it.
fn exercise(bytes: &[u8]) {
    let Ok(p) = GenevePacket::new_checked(bytes) else {
        if bytes.len() >= HEADER_LEN {
            // Unchecked views of bad bytes may be wrong, never panic.
            let p = GenevePacket::new_unchecked(bytes);
            let _ = (
                p.options().count(),
                p.payload(),
                p.header_bytes(),
                p.aws_options(),
            );
        }
        return;
    };
    // No byte lost: the option walk covers exactly the options area.
    let walked: usize = p.options().map(|o| o.wire_len()).sum();
    assert_eq!(walked, usize::from(p.opt_len_words()) * 4);
    assert_eq!(p.options_bytes().len(), walked);
    assert_eq!(p.header_bytes().len() + p.payload().len(), bytes.len());
    assert_eq!(p.header_len(), p.header_bytes().len());
    for o in p.options() {
        assert!(o.typ <= 0x7f && o.data.len() % 4 == 0 && o.data.len() <= 124);
    }
    let _ = (
        p.version(),
        p.oam(),
        p.critical(),
        p.vni(),
        p.protocol_type(),
    );
    let lenient = (
        p.aws_endpoint_id(),
        p.aws_attachment_id(),
        p.aws_flow_cookie(),
    );
    match p.aws_options() {
        Ok(a) => assert_eq!(
            lenient,
            (
                Some(a.endpoint_id),
                Some(a.attachment_id),
                Some(a.flow_cookie)
            )
        ),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // Re-emitting the options gives the same header up to flags and reserved bits.
    let mut out = vec![0; p.header_len()];
    emit(&mut out, p.vni(), p.protocol_type(), p.options_bytes()).unwrap();
    let header = p.header_bytes();
    assert_eq!(
        (out[0], &out[2..7], &out[8..]),
        (header[0], &header[2..7], &header[8..])
    );
    assert_eq!(out[1] & 0x40 != 0, p.options().any(|o| o.critical));
}

fn option_strategy() -> impl Strategy<Value = Vec<u8>> {
    let class = prop_oneof![Just(AWS_OPTION_CLASS), any::<u16>()];
    let raw_type = prop_oneof![1u8..=4, 0x81u8..=0x84, any::<u8>()];
    let len_byte = prop_oneof![Just(1u8), Just(2u8), 0u8..=3, any::<u8>()];
    (class, raw_type, len_byte).prop_flat_map(|(class, raw_type, len_byte)| {
        let data_len = usize::from(len_byte & 0x1f) * 4;
        proptest::collection::vec(any::<u8>(), data_len).prop_map(move |data| {
            let mut out = class.to_be_bytes().to_vec();
            out.extend([raw_type, len_byte]);
            out.extend(data);
            out
        })
    })
}

/// Mostly well-formed packets, then cut short or with one byte changed.
fn header_strategy() -> impl Strategy<Value = Vec<u8>> {
    let options = proptest::collection::vec(option_strategy(), 0..5);
    let fixed = (0u8..2, any::<u8>(), any::<u16>(), any::<[u8; 4]>());
    let payload = proptest::collection::vec(any::<u8>(), 0..16);
    let damage = (
        any::<bool>(),
        any::<usize>(),
        any::<u8>(),
        any::<bool>(),
        any::<usize>(),
    );
    (options, fixed, payload, damage).prop_map(|(options, fixed, payload, damage)| {
        let options = options.concat();
        let (version, flags, protocol, vni) = fixed;
        let words = (options.len() / 4).min(63) as u8;
        let mut out = vec![version << 6 | words, flags];
        out.extend(protocol.to_be_bytes());
        out.extend(vni);
        out.extend(options);
        out.extend(payload);
        let (flip, at, value, cut, cut_at) = damage;
        if flip {
            let at = at % out.len();
            out[at] = value;
        }
        if cut {
            out.truncate(cut_at % (out.len() + 1));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes);
    }

    #[test]
    fn near_valid_headers_keep_the_walk_invariant(bytes in header_strategy()) {
        exercise(&bytes);
    }

    #[test]
    fn emitted_headers_parse_back(
        options in proptest::collection::vec(option_strategy(), 0..4),
        vni in 0..=VNI_MAX,
        protocol in any::<u16>(),
    ) {
        let options = options.concat();
        let mut buf = vec![0; HEADER_LEN + MAX_OPTIONS_LEN + 4];
        match emit(&mut buf, vni, protocol, &options) {
            Ok(len) => {
                let p = GenevePacket::new_checked(&buf[..len]).unwrap();
                prop_assert_eq!((p.vni(), p.protocol_type()), (vni, protocol));
                prop_assert_eq!(p.options_bytes(), &options[..]);
                prop_assert_eq!(p.critical(), p.options().any(|o| o.critical));
            }
            Err(e) => prop_assert!(
                matches!(e, GeneveError::OptionOverrun { .. } | GeneveError::OptionsTooLong { .. }),
                "{e}"
            ),
        }
    }
}
