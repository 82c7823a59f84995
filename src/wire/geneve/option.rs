//! GENEVE option TLVs: one option, and the walk over an options area that
//! reports where and why it cannot go on.

use core::iter::FusedIterator;

use super::{field, GeneveError, HEADER_LEN, OPTION_HEADER_LEN};
use crate::wire::read_u16;

const OPT_TYPE_CRITICAL: u8 = 0x80;
const OPT_TYPE_MASK: u8 = 0x7f;
const OPT_DATA_WORDS_MASK: u8 = 0x1f;

/// One option TLV, borrowing its data from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    pub class: u16,
    /// The type without its critical bit.
    pub typ: u8,
    /// The high bit of the type: a receiver that does not understand the
    /// option must drop the packet.
    pub critical: bool,
    /// 0 to 124 bytes, a multiple of 4.
    pub data: &'a [u8],
}

impl GeneveOption<'_> {
    /// The type byte as on the wire, critical bit included.
    pub fn raw_type(&self) -> u8 {
        if self.critical {
            self.typ | OPT_TYPE_CRITICAL
        } else {
            self.typ
        }
    }

    /// The option's length on the wire, header included.
    pub fn wire_len(&self) -> usize {
        OPTION_HEADER_LEN + self.data.len()
    }
}

/// Walks option TLVs in wire order. On bytes that `new_checked` did not
/// validate it stops silently at the first option that does not fit.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    options: &'a [u8],
    pos: usize,
}

impl<'a> OptionIter<'a> {
    /// Walks raw option TLVs, e.g. [`GenevePacket::options_bytes`](super::GenevePacket::options_bytes).
    pub fn new(options: &'a [u8]) -> Self {
        OptionIter { options, pos: 0 }
    }

    /// The next option, or why the walk cannot go on (after which it is over).
    pub(super) fn next_checked(&mut self) -> Option<Result<GeneveOption<'a>, GeneveError>> {
        let rest = self
            .options
            .get(self.pos..)
            .filter(|rest| !rest.is_empty())?;
        let offset = HEADER_LEN + self.pos;
        let result = parse_option(rest, offset);
        self.pos = match &result {
            Ok(option) => self.pos + option.wire_len(),
            Err(_) => self.options.len(),
        };
        Some(result)
    }
}

/// Parses the option at the start of `rest`, which sits at `offset` in the header.
fn parse_option(rest: &[u8], offset: usize) -> Result<GeneveOption<'_>, GeneveError> {
    // Only reachable for option areas that are not a whole number of words.
    let Some(head) = rest.first_chunk::<OPTION_HEADER_LEN>() else {
        let required = offset + OPTION_HEADER_LEN;
        return Err(GeneveError::Truncated {
            required,
            len: offset + rest.len(),
        });
    };
    let class = read_u16(head, field::OPT_CLASS);
    let typ = head[field::OPT_TYPE] & OPT_TYPE_MASK;
    let critical = head[field::OPT_TYPE] & OPT_TYPE_CRITICAL != 0;
    let data_len = usize::from(head[field::OPT_LEN] & OPT_DATA_WORDS_MASK) * 4;
    let len = OPTION_HEADER_LEN + data_len;
    let Some(data) = rest.get(field::OPT_DATA..len) else {
        let available = rest.len();
        return Err(GeneveError::OptionOverrun {
            offset,
            class,
            typ,
            len,
            available,
        });
    };
    Ok(GeneveOption {
        class,
        typ,
        critical,
        data,
    })
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = GeneveOption<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_checked()?.ok()
    }
}

impl FusedIterator for OptionIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::geneve::testdata::*;
    use crate::wire::geneve::GenevePacket;

    #[test]
    fn option_overrunning_the_options_area_is_rejected_even_if_the_payload_follows() {
        let mut bytes = OVS_WITH_OPTION;
        bytes[11] = 0x02; // the option claims 8 bytes of data, the area holds 4
        let err = GenevePacket::new_checked(&bytes[..]).unwrap_err();
        let expected = GeneveError::OptionOverrun {
            offset: 8,
            class: 0,
            typ: 0,
            len: 12,
            available: 8,
        };
        assert_eq!(err, expected);
        assert_eq!(
            err.to_string(),
            "GENEVE option class 0x0000 type 0x00 at offset 8 is 12 bytes long, \
             but only 8 bytes of the options area remain"
        );
        // An unchecked view walks no further than the area and reports the same.
        let p = GenevePacket::new_unchecked(&bytes[..]);
        assert_eq!(p.options().count(), 0);
        assert_eq!(
            p.aws_options(),
            Err(GeneveError::UnsupportedProtocol(0x6558))
        );
    }

    #[test]
    fn second_option_overrun_names_its_offset() {
        let mut bytes = AWS;
        bytes[35] = 0x02; // the flow cookie at offset 32 claims 8 bytes, 4 remain
        let expected = GeneveError::OptionOverrun {
            offset: 32,
            class: 0x0108,
            typ: 3,
            len: 12,
            available: 8,
        };
        assert_eq!(GenevePacket::new_checked(&bytes[..]), Err(expected));
        let p = GenevePacket::new_unchecked(&bytes[..]);
        assert_eq!(p.options().count(), 2);
        assert_eq!(p.aws_options(), Err(expected));
    }
}
