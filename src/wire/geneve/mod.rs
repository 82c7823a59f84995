//! GENEVE (RFC 8926): a zero-copy view of the header; its option TLVs
//! (`option`); the AWS Gateway Load Balancer options (class 0x0108) and the
//! zones named after their endpoint ids (`aws`); and [`emit()`] to write a
//! header.
//!
//! [`GenevePacket::new_checked`] validates the fixed header, the options length
//! and the whole option walk once; after it no accessor fails or panics. The
//! strict GWLB rules of SPEC §5 are a separate step, [`GenevePacket::aws_options`],
//! because pcap replay decapsulates any GENEVE while `gwlb` mode accepts only
//! what AWS sends. The payload's protocol type is an EtherType
//! ([`crate::wire::ethernet::ether_type`]).

mod aws;
mod emit;
mod option;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testdata;

pub use aws::{
    AwsOptions, AWS_OPTIONS_LEN, AWS_OPTION_CLASS, AWS_TYPE_ATTACHMENT_ID, AWS_TYPE_ENDPOINT_ID,
    AWS_TYPE_FLOW_COOKIE,
};
pub use emit::emit;
pub use option::{GeneveOption, OptionIter};

use crate::wire::read_u16;

/// Offsets in the fixed header and, relative to its start, in one option TLV.
pub mod field {
    use crate::wire::Field;

    /// Version (high 2 bits) and options length in 4-byte words (low 6 bits).
    pub const VER_OPT_LEN: usize = 0;
    /// O (control) bit, C (critical options present) bit, 6 reserved bits.
    pub const FLAGS: usize = 1;
    pub const PROTOCOL_TYPE: Field = 2..4;
    pub const VNI: Field = 4..7;
    pub const RESERVED: usize = 7;
    /// Options run from here to `header_len()`.
    pub const OPTIONS: usize = 8;

    pub const OPT_CLASS: Field = 0..2;
    /// Critical bit (high bit) and type (low 7 bits).
    pub const OPT_TYPE: usize = 2;
    /// 3 reserved bits and the data length in 4-byte words (low 5 bits).
    pub const OPT_LEN: usize = 3;
    pub const OPT_DATA: usize = 4;
}

/// Length of the fixed header, without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// Length of an option TLV's own header (class, type, length).
pub const OPTION_HEADER_LEN: usize = field::OPT_DATA;
/// The low 6 bits of [`field::VER_OPT_LEN`]: the options length in 4-byte words.
pub const OPT_LEN_WORDS_MASK: u8 = 0x3f;
/// The 6-bit options length counts 4-byte words: at most 252 bytes of options.
pub const MAX_OPTIONS_LEN: usize = OPT_LEN_WORDS_MASK as usize * 4;
/// The UDP destination port IANA assigned to GENEVE.
pub const UDP_PORT: u16 = 6081;

const VERSION_SHIFT: u32 = 6;
const FLAG_OAM: u8 = 0x80;
const FLAG_CRITICAL: u8 = 0x40;
const VNI_MAX: u32 = 0x00ff_ffff;

/// What is wrong with a GENEVE header, or with a request to write one.
///
/// Offsets count bytes from the start of the GENEVE header; option types are
/// the 7-bit type, without the critical bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GeneveError {
    #[error("GENEVE header truncated: {required} bytes needed, {len} present")]
    Truncated { required: usize, len: usize },
    #[error("GENEVE version {0} is not supported (only version 0 is defined)")]
    BadVersion(u8),
    #[error(
        "GENEVE options length of {opt_len} bytes runs past the end of the packet: \
         {available} bytes follow the fixed header"
    )]
    OptionsPastEnd { opt_len: usize, available: usize },
    #[error(
        "GENEVE option class {class:#06x} type {typ:#04x} at offset {offset} is {len} bytes \
         long, but only {available} bytes of the options area remain"
    )]
    OptionOverrun {
        offset: usize,
        class: u16,
        typ: u8,
        len: usize,
        available: usize,
    },
    #[error("GENEVE O bit set: control (OAM) packets are not accepted from the load balancer")]
    OamPacket,
    #[error(
        "GENEVE option class {class:#06x} type {typ:#04x} is marked critical and not understood"
    )]
    UnknownCritical { class: u16, typ: u8 },
    #[error("AWS GWLB option {0} (class 0x0108) is missing")]
    MissingAwsOption(&'static str),
    #[error(
        "AWS GWLB option {name} (class 0x0108 type {typ}) carries {len} bytes of data, \
         {expected} expected"
    )]
    BadAwsOptionLength {
        name: &'static str,
        typ: u8,
        expected: usize,
        len: usize,
    },
    #[error("AWS GWLB option {name} (class 0x0108 type {typ}) appears more than once")]
    DuplicateAwsOption { name: &'static str, typ: u8 },
    #[error(
        "GENEVE protocol type {0:#06x} is not raw IPv4 (0x0800) or raw IPv6 (0x86dd), \
         the only inner packets GWLB sends"
    )]
    UnsupportedProtocol(u16),
    #[error("buffer of {len} bytes is too small for a {required}-byte GENEVE header")]
    BufferTooSmall { required: usize, len: usize },
    #[error("GENEVE options of {len} bytes exceed the maximum of 252")]
    OptionsTooLong { len: usize },
    #[error("GENEVE options of {len} bytes are not a whole number of 4-byte words")]
    OptionsUnaligned { len: usize },
    #[error("VNI {0:#x} does not fit in 24 bits")]
    VniTooLarge(u32),
}

/// A read/write view of a GENEVE header and what follows it (the UDP payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenevePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GenevePacket<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// The fixed-field accessors and setters panic if the buffer is shorter
    /// than [`HEADER_LEN`]. The option walk and `payload()` never panic: they
    /// stop at the end of the buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        GenevePacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check) accepted it.
    pub fn new_checked(buffer: T) -> Result<Self, GeneveError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Validates the fixed header, the options length and every option TLV.
    ///
    /// Reserved bits are ignored, as RFC 8926 asks of a receiver.
    pub fn check(&self) -> Result<(), GeneveError> {
        let data = self.buffer.as_ref();
        let Some(fixed) = data.first_chunk::<HEADER_LEN>() else {
            return Err(GeneveError::Truncated {
                required: HEADER_LEN,
                len: data.len(),
            });
        };
        let version = fixed[field::VER_OPT_LEN] >> VERSION_SHIFT;
        if version != 0 {
            return Err(GeneveError::BadVersion(version));
        }
        let opt_len = usize::from(fixed[field::VER_OPT_LEN] & OPT_LEN_WORDS_MASK) * 4;
        let available = data.len() - HEADER_LEN;
        let Some(options) = data.get(HEADER_LEN..HEADER_LEN + opt_len) else {
            return Err(GeneveError::OptionsPastEnd { opt_len, available });
        };
        let mut walk = OptionIter::new(options);
        while let Some(option) = walk.next_checked() {
            option?;
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn fixed(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }

    /// The version field; 0 is the only one defined.
    pub fn version(&self) -> u8 {
        self.fixed()[field::VER_OPT_LEN] >> VERSION_SHIFT
    }

    /// The length of the options in 4-byte words.
    pub fn opt_len_words(&self) -> u8 {
        self.fixed()[field::VER_OPT_LEN] & OPT_LEN_WORDS_MASK
    }

    /// The length of the header with its options, where the payload starts.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + usize::from(self.opt_len_words()) * 4
    }

    /// The O bit: a control packet for the tunnel endpoint, not to be forwarded.
    pub fn oam(&self) -> bool {
        self.fixed()[field::FLAGS] & FLAG_OAM != 0
    }

    /// The C bit: the sender says one or more options are critical.
    pub fn critical(&self) -> bool {
        self.fixed()[field::FLAGS] & FLAG_CRITICAL != 0
    }

    /// The EtherType of the payload ([`ether_type`](crate::wire::ethernet::ether_type)
    /// `IPV4`, `IPV6`, `TRANS_ETHER`, or any other value).
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.fixed(), field::PROTOCOL_TYPE)
    }

    /// The 24-bit virtual network identifier.
    pub fn vni(&self) -> u32 {
        let mut be = [0; 4];
        be[1..].copy_from_slice(&self.fixed()[field::VNI]);
        u32::from_be_bytes(be)
    }

    /// The header with its options, exactly as received.
    pub fn header_bytes(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        data.get(..self.header_len()).unwrap_or(data)
    }

    /// The raw option TLVs.
    pub fn options_bytes(&self) -> &[u8] {
        self.header_bytes().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// The option TLVs in wire order.
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter::new(self.options_bytes())
    }

    /// The first option of this class and 7-bit type.
    pub fn option(&self, class: u16, typ: u8) -> Option<GeneveOption<'_>> {
        self.options().find(|o| o.class == class && o.typ == typ)
    }

    /// The encapsulated packet.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> GenevePacket<&'a T> {
    /// Splits a borrowed view into the header with its options and the payload,
    /// both borrowing the underlying buffer rather than the view.
    pub fn into_header_and_payload(self) -> (&'a [u8], &'a [u8]) {
        let data = self.buffer.as_ref();
        data.split_at(self.header_len().min(data.len()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GenevePacket<T> {
    fn fixed_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[..HEADER_LEN]
    }

    /// Sets the version; only the low 2 bits are kept.
    pub fn set_version(&mut self, version: u8) {
        let byte = &mut self.fixed_mut()[field::VER_OPT_LEN];
        *byte = (*byte & OPT_LEN_WORDS_MASK) | (version << VERSION_SHIFT);
    }

    /// Sets the options length in words; only the low 6 bits are kept. No
    /// bytes move: the payload now starts at the new `header_len()`.
    pub fn set_opt_len_words(&mut self, words: u8) {
        let byte = &mut self.fixed_mut()[field::VER_OPT_LEN];
        *byte = (*byte & !OPT_LEN_WORDS_MASK) | (words & OPT_LEN_WORDS_MASK);
    }

    /// Sets or clears the O (control) bit.
    pub fn set_oam(&mut self, oam: bool) {
        set_bit(&mut self.fixed_mut()[field::FLAGS], FLAG_OAM, oam);
    }

    /// Sets or clears the C (critical options present) bit.
    pub fn set_critical(&mut self, critical: bool) {
        set_bit(&mut self.fixed_mut()[field::FLAGS], FLAG_CRITICAL, critical);
    }

    /// Sets the payload's EtherType.
    pub fn set_protocol_type(&mut self, protocol_type: u16) {
        self.fixed_mut()[field::PROTOCOL_TYPE].copy_from_slice(&protocol_type.to_be_bytes());
    }

    /// Sets the VNI; only the low 24 bits are kept.
    pub fn set_vni(&mut self, vni: u32) {
        let [_, hi, mid, lo] = vni.to_be_bytes();
        self.fixed_mut()[field::VNI].copy_from_slice(&[hi, mid, lo]);
    }

    /// The raw option TLVs, for rewriting option data in place.
    pub fn options_bytes_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        let data = self.buffer.as_mut();
        let end = header_len.min(data.len());
        data.get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }

    /// The encapsulated packet.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(header_len..)
            .unwrap_or(&mut [])
    }
}

fn set_bit(byte: &mut u8, mask: u8, on: bool) {
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::ether_type;
    use crate::wire::geneve::testdata::*;

    #[test]
    fn ovs_capture_with_critical_option() {
        let p = GenevePacket::new_checked(&OVS_WITH_OPTION[..]).unwrap();
        assert_eq!(p.version(), 0);
        assert_eq!(p.opt_len_words(), 2);
        assert_eq!(p.header_len(), 16);
        assert!(!p.oam());
        assert!(p.critical());
        assert_eq!(p.protocol_type(), ether_type::TRANS_ETHER);
        assert_eq!(p.vni(), 0xa);
        let options: Vec<_> = p.options().collect();
        let data = &[0x00, 0x00, 0x00, 0x0c][..];
        assert_eq!(
            options,
            [GeneveOption {
                class: 0,
                typ: 0,
                critical: true,
                data
            }]
        );
        assert_eq!(options[0].raw_type(), 0x80);
        assert_eq!(p.options_bytes(), &OVS_WITH_OPTION[8..16]);
        // Inner Ethernet: destination MAC first, EtherType IPv4 at 12.
        assert_eq!(p.payload().len(), 66);
        assert_eq!(&p.payload()[..2], &[0xfe, 0x71]);
        assert_eq!(&p.payload()[12..14], &[0x08, 0x00]);
        assert_eq!(
            p.aws_options(),
            Err(GeneveError::UnsupportedProtocol(0x6558))
        );
        assert_eq!(
            (
                p.aws_endpoint_id(),
                p.aws_attachment_id(),
                p.aws_flow_cookie()
            ),
            (None, None, None)
        );
    }

    #[test]
    fn ovs_capture_without_options() {
        let p = GenevePacket::new_checked(&OVS_NO_OPTIONS[..]).unwrap();
        assert_eq!((p.opt_len_words(), p.header_len()), (0, HEADER_LEN));
        assert!(!p.critical() && !p.oam());
        assert_eq!(p.vni(), 0xb);
        assert_eq!(p.options().count(), 0);
        assert!(p.options_bytes().is_empty());
        assert_eq!(p.payload(), &OVS_NO_OPTIONS[8..]);
    }

    #[test]
    fn gcp_capture_is_geneve_but_not_aws() {
        let p = GenevePacket::new_checked(&GCP[..]).unwrap();
        assert_eq!((p.opt_len_words(), p.header_len()), (10, 48));
        assert_eq!(
            (p.protocol_type(), p.vni(), p.critical()),
            (ether_type::IPV4, 0, false)
        );
        let summary: Vec<_> = p
            .options()
            .map(|o| (o.class, o.typ, o.critical, o.data.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (0x0132, 1, false, 4),
                (0x0132, 2, false, 16),
                (0x0132, 3, false, 8)
            ]
        );
        assert_eq!(
            p.option(0x0132, 3).unwrap().data,
            &[0, 0, 0, 0, 0, 0, 0x12, 0x34]
        );
        assert_eq!(p.payload().len(), 40);
        assert_eq!(p.payload()[0], 0x45);
        assert_eq!(
            p.aws_options(),
            Err(GeneveError::MissingAwsOption("endpoint id"))
        );
    }

    #[test]
    fn every_truncation_of_a_header_with_options() {
        for (bytes, header_len) in [
            (&AWS[..], AWS_HEADER_LEN),
            (&OVS_WITH_OPTION[..], 16),
            (&GCP[..], 48),
        ] {
            let opt_len = header_len - HEADER_LEN;
            for len in 0..header_len {
                let expected = if len < HEADER_LEN {
                    GeneveError::Truncated {
                        required: HEADER_LEN,
                        len,
                    }
                } else {
                    GeneveError::OptionsPastEnd {
                        opt_len,
                        available: len - HEADER_LEN,
                    }
                };
                assert_eq!(
                    GenevePacket::new_checked(&bytes[..len]),
                    Err(expected),
                    "len {len}"
                );
            }
            let p = GenevePacket::new_checked(&bytes[..header_len]).unwrap();
            assert!(p.payload().is_empty());
        }
    }

    #[test]
    fn wrong_version_is_rejected_before_lengths() {
        for version in 1..=3u8 {
            let mut bytes = AWS;
            bytes[0] |= version << 6;
            assert_eq!(
                GenevePacket::new_checked(&bytes[..]),
                Err(GeneveError::BadVersion(version))
            );
            // Even when the options length would also be wrong.
            assert_eq!(
                GenevePacket::new_checked(&bytes[..12]),
                Err(GeneveError::BadVersion(version))
            );
        }
    }

    #[test]
    fn options_length_past_the_end() {
        let mut bytes = OVS_NO_OPTIONS;
        bytes[0] = 0x3f; // 252 bytes of options, 74 follow
        let err = GenevePacket::new_checked(&bytes[..]).unwrap_err();
        assert_eq!(
            err,
            GeneveError::OptionsPastEnd {
                opt_len: 252,
                available: 74
            }
        );
        assert_eq!(
            err.to_string(),
            "GENEVE options length of 252 bytes runs past the end of the packet: \
             74 bytes follow the fixed header"
        );
    }

    #[test]
    fn setters_write_what_accessors_read() {
        let mut bytes = OVS_WITH_OPTION;
        let mut p = GenevePacket::new_checked(&mut bytes[..]).unwrap();
        p.set_vni(0x12_3456);
        p.set_protocol_type(ether_type::IPV6);
        p.set_critical(false);
        p.set_oam(true);
        p.options_bytes_mut()[7] = 0x0d;
        p.payload_mut()[0] = 0x00;
        assert_eq!(
            (p.vni(), p.protocol_type(), p.critical(), p.oam()),
            (0x12_3456, 0x86dd, false, true)
        );
        assert_eq!(p.options().next().unwrap().data, &[0, 0, 0, 0x0d]);
        p.set_vni(0xab00_0001); // only the low 24 bits fit
        assert_eq!(p.vni(), 1);
        p.set_opt_len_words(0);
        assert_eq!((p.header_len(), p.payload().len(), p.version()), (8, 74, 0));
        p.set_opt_len_words(2);
        p.set_version(2);
        assert_eq!((p.version(), p.opt_len_words()), (2, 2));
        assert_eq!(p.check(), Err(GeneveError::BadVersion(2)));
        assert_eq!(
            &bytes[..8],
            &[0x82, 0x80, 0x86, 0xdd, 0x00, 0x00, 0x01, 0x00]
        );
        assert_eq!(bytes[16], 0x00);
    }

    #[test]
    fn a_view_whose_options_length_was_changed_still_never_panics() {
        let mut bytes = OVS_NO_OPTIONS;
        let mut p = GenevePacket::new_checked(&mut bytes[..]).unwrap();
        p.set_opt_len_words(63);
        assert_eq!(p.header_bytes().len(), 82);
        assert!(p.payload().is_empty() && p.payload_mut().is_empty());
        assert_eq!(p.options_bytes().len(), 74);
        let _ = p.options().count();
        let _ = p.aws_options();
    }
}
