//! Writing a GENEVE header.

use super::option::OptionIter;
use super::{field, GeneveError, GenevePacket, HEADER_LEN, MAX_OPTIONS_LEN, VNI_MAX};

/// Writes a GENEVE header (version 0, O bit clear, reserved bits zero) with
/// the given raw option TLVs at the start of `buf`; returns its length, where
/// the payload goes. The C bit is set if any option is critical, as RFC 8926
/// requires. Nothing is written if an error is returned.
pub fn emit(
    buf: &mut [u8],
    vni: u32,
    protocol_type: u16,
    options: &[u8],
) -> Result<usize, GeneveError> {
    if vni > VNI_MAX {
        return Err(GeneveError::VniTooLarge(vni));
    }
    if options.len() % 4 != 0 {
        return Err(GeneveError::OptionsUnaligned { len: options.len() });
    }
    if options.len() > MAX_OPTIONS_LEN {
        return Err(GeneveError::OptionsTooLong { len: options.len() });
    }
    let mut critical = false;
    let mut walk = OptionIter::new(options);
    while let Some(option) = walk.next_checked() {
        critical |= option?.critical;
    }
    let header_len = HEADER_LEN + options.len();
    let len = buf.len();
    let Some(out) = buf.get_mut(..header_len) else {
        return Err(GeneveError::BufferTooSmall {
            required: header_len,
            len,
        });
    };
    out[HEADER_LEN..].copy_from_slice(options);
    out[field::FLAGS] = 0;
    out[field::RESERVED] = 0;
    let mut packet = GenevePacket::new_unchecked(out);
    packet.set_version(0);
    // At most 63 words: checked against MAX_OPTIONS_LEN above.
    packet.set_opt_len_words((options.len() / 4) as u8);
    packet.set_critical(critical);
    packet.set_protocol_type(protocol_type);
    packet.set_vni(vni);
    Ok(header_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::ether_type;
    use crate::wire::geneve::testdata::*;
    use crate::wire::geneve::{GenevePacket, HEADER_LEN, MAX_OPTIONS_LEN};

    #[test]
    fn aws_header_round_trips_through_emit() {
        let options = AWS_OPTS.to_option_bytes();
        assert_eq!(options[..], AWS[HEADER_LEN..AWS_HEADER_LEN]);
        let mut buf = [0xffu8; 44];
        let len = emit(&mut buf, 0, ether_type::IPV4, &options).unwrap();
        assert_eq!(len, AWS_HEADER_LEN);
        buf[len..].copy_from_slice(&AWS[len..]);
        assert_eq!(buf, AWS);
        let (header, payload) = GenevePacket::new_checked(&buf[..])
            .unwrap()
            .into_header_and_payload();
        assert_eq!((header, payload), (&AWS[..40], &AWS[40..]));
    }

    #[test]
    fn emit_rejects_what_it_cannot_write_and_writes_nothing() {
        let options = AWS_OPTS.to_option_bytes();
        let mut buf = [0x55u8; 64];
        let cases: [(u32, &[u8], usize, GeneveError); 5] = [
            (
                0x0100_0000,
                &options,
                64,
                GeneveError::VniTooLarge(0x0100_0000),
            ),
            (
                0,
                &options[..3],
                64,
                GeneveError::OptionsUnaligned { len: 3 },
            ),
            (0, &[0; 256], 64, GeneveError::OptionsTooLong { len: 256 }),
            (
                0,
                &options,
                39,
                GeneveError::BufferTooSmall {
                    required: 40,
                    len: 39,
                },
            ),
            (
                0,
                &options[..28], // the flow cookie's data is cut off
                64,
                GeneveError::OptionOverrun {
                    offset: 32,
                    class: 0x0108,
                    typ: 3,
                    len: 8,
                    available: 4,
                },
            ),
        ];
        for (vni, options, buf_len, expected) in cases {
            assert_eq!(
                emit(&mut buf[..buf_len], vni, ether_type::IPV4, options),
                Err(expected)
            );
            assert_eq!(buf, [0x55; 64]);
        }
        assert_eq!(emit(&mut buf[..8], 7, ether_type::IPV6, &[]), Ok(8));
        assert_eq!(buf[..8], [0x00, 0x00, 0x86, 0xdd, 0x00, 0x00, 0x07, 0x00]);
        // 63 words is the largest options length there is.
        let max = [opt(0xfff0, 0x01, &[0; 124]), opt(0xfff0, 0x02, &[0; 120])].concat();
        assert_eq!(max.len(), MAX_OPTIONS_LEN);
        let mut big = vec![0u8; HEADER_LEN + MAX_OPTIONS_LEN];
        emit(&mut big, 0, ether_type::IPV4, &max).unwrap();
        let p = GenevePacket::new_checked(&big[..]).unwrap();
        assert_eq!((p.opt_len_words(), p.options().count()), (63, 2));
        let too_long = [max, opt(0xfff0, 0x03, &[])].concat();
        let expected = GeneveError::OptionsTooLong { len: 256 };
        assert_eq!(
            emit(&mut vec![0; 300], 0, ether_type::IPV4, &too_long),
            Err(expected)
        );
    }

    #[test]
    fn emit_sets_the_c_bit_for_critical_options() {
        let buf = packet(ether_type::IPV4, &opt(0x0108, 0x84, &[]));
        assert_eq!(buf[1], 0x40);
        let buf = packet(ether_type::IPV4, &opt(0x0108, 0x04, &[]));
        assert_eq!(buf[1], 0x00);
    }
}
