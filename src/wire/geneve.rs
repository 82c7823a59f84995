//! GENEVE (RFC 8926): a zero-copy view of the header and its option TLVs, the
//! AWS Gateway Load Balancer options (class 0x0108) and the zones named after
//! their endpoint ids, and [`emit`] to write a header.
//!
//! [`GenevePacket::new_checked`] validates the fixed header, the options length
//! and the whole option walk once; after it no accessor fails or panics. The
//! strict GWLB rules of SPEC §5 are a separate step, [`GenevePacket::aws_options`],
//! because pcap replay decapsulates any GENEVE while `gwlb` mode accepts only
//! what AWS sends.

use crate::base::ZoneName;
use core::iter::FusedIterator;

/// Offsets in the fixed header and, relative to its start, in one option TLV.
mod field {
    pub type Field = core::ops::Range<usize>;

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
/// The 6-bit options length counts 4-byte words: at most 252 bytes of options.
pub const MAX_OPTIONS_LEN: usize = 0x3f * 4;
/// The UDP destination port IANA assigned to GENEVE.
pub const UDP_PORT: u16 = 6081;

/// Protocol type of an inner raw IPv4 packet (what GWLB sends).
pub const ETHER_TYPE_IPV4: u16 = 0x0800;
/// Protocol type of an inner raw IPv6 packet (what GWLB sends).
pub const ETHER_TYPE_IPV6: u16 = 0x86DD;
/// Protocol type of an inner Ethernet frame (transparent Ethernet bridging).
pub const ETHER_TYPE_TRANS_ETHER: u16 = 0x6558;

/// Option class of the AWS Gateway Load Balancer options.
pub const AWS_OPTION_CLASS: u16 = 0x0108;
/// AWS option type 1: the GWLB endpoint id (8 bytes, big-endian u64).
pub const AWS_TYPE_ENDPOINT_ID: u8 = 1;
/// AWS option type 2: the attachment id (8 bytes, big-endian u64).
pub const AWS_TYPE_ATTACHMENT_ID: u8 = 2;
/// AWS option type 3: the flow cookie (4 bytes, big-endian u32).
pub const AWS_TYPE_FLOW_COOKIE: u8 = 3;
/// Length of the three AWS options as [`AwsOptions::to_option_bytes`] writes them.
pub const AWS_OPTIONS_LEN: usize = 3 * OPTION_HEADER_LEN + 8 + 8 + 4;

const VERSION_SHIFT: u32 = 6;
const OPT_LEN_WORDS_MASK: u8 = 0x3f;
const FLAG_OAM: u8 = 0x80;
const FLAG_CRITICAL: u8 = 0x40;
const OPT_TYPE_CRITICAL: u8 = 0x80;
const OPT_TYPE_MASK: u8 = 0x7f;
const OPT_DATA_WORDS_MASK: u8 = 0x1f;
const VNI_MAX: u32 = 0x00ff_ffff;

const AWS_ENDPOINT_ID: &str = "endpoint id";
const AWS_ATTACHMENT_ID: &str = "attachment id";
const AWS_FLOW_COOKIE: &str = "flow cookie";

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

    /// The EtherType of the payload ([`ETHER_TYPE_IPV4`], [`ETHER_TYPE_IPV6`],
    /// [`ETHER_TYPE_TRANS_ETHER`], or any other value).
    pub fn protocol_type(&self) -> u16 {
        read_be16(&self.fixed()[field::PROTOCOL_TYPE])
    }

    /// The 24-bit virtual network identifier.
    pub fn vni(&self) -> u32 {
        read_be32(&self.fixed()[field::VNI])
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

    /// The GWLB endpoint id: the first class 0x0108 type 1 option, if it holds
    /// exactly 8 bytes.
    pub fn aws_endpoint_id(&self) -> Option<u64> {
        self.aws_data(AWS_TYPE_ENDPOINT_ID).map(u64::from_be_bytes)
    }

    /// The attachment id: the first class 0x0108 type 2 option, if it holds
    /// exactly 8 bytes.
    pub fn aws_attachment_id(&self) -> Option<u64> {
        self.aws_data(AWS_TYPE_ATTACHMENT_ID)
            .map(u64::from_be_bytes)
    }

    /// The flow cookie: the first class 0x0108 type 3 option, if it holds
    /// exactly 4 bytes.
    pub fn aws_flow_cookie(&self) -> Option<u32> {
        self.aws_data(AWS_TYPE_FLOW_COOKIE).map(u32::from_be_bytes)
    }

    fn aws_data<const N: usize>(&self, typ: u8) -> Option<[u8; N]> {
        self.option(AWS_OPTION_CLASS, typ)?.data.try_into().ok()
    }

    /// The AWS options under the strict rules of `gwlb` mode (SPEC §5).
    ///
    /// Checked in this order: the O bit is clear; the payload is raw IPv4 or
    /// IPv6; walking the options in wire order, each AWS option has its length
    /// and appears once, and every other critical option is unknown; finally
    /// all three AWS options are present. Any VNI is accepted. On a view made
    /// with `new_unchecked`, a broken option walk is reported too.
    pub fn aws_options(&self) -> Result<AwsOptions, GeneveError> {
        if self.oam() {
            return Err(GeneveError::OamPacket);
        }
        let protocol = self.protocol_type();
        if protocol != ETHER_TYPE_IPV4 && protocol != ETHER_TYPE_IPV6 {
            return Err(GeneveError::UnsupportedProtocol(protocol));
        }
        let (mut endpoint, mut attachment, mut cookie) = (None, None, None);
        let mut walk = self.options();
        while let Some(option) = walk.next_checked() {
            let option = option?;
            match (option.class, option.typ) {
                (AWS_OPTION_CLASS, AWS_TYPE_ENDPOINT_ID) => {
                    take_once(&mut endpoint, AWS_ENDPOINT_ID, &option)?
                }
                (AWS_OPTION_CLASS, AWS_TYPE_ATTACHMENT_ID) => {
                    take_once(&mut attachment, AWS_ATTACHMENT_ID, &option)?
                }
                (AWS_OPTION_CLASS, AWS_TYPE_FLOW_COOKIE) => {
                    take_once(&mut cookie, AWS_FLOW_COOKIE, &option)?
                }
                (class, typ) if option.critical => {
                    return Err(GeneveError::UnknownCritical { class, typ })
                }
                _ => {}
            }
        }
        let missing = GeneveError::MissingAwsOption;
        Ok(AwsOptions {
            endpoint_id: u64::from_be_bytes(endpoint.ok_or(missing(AWS_ENDPOINT_ID))?),
            attachment_id: u64::from_be_bytes(attachment.ok_or(missing(AWS_ATTACHMENT_ID))?),
            flow_cookie: u32::from_be_bytes(cookie.ok_or(missing(AWS_FLOW_COOKIE))?),
        })
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

/// Stores an AWS option's data the first time it is seen.
fn take_once<const N: usize>(
    slot: &mut Option<[u8; N]>,
    name: &'static str,
    option: &GeneveOption<'_>,
) -> Result<(), GeneveError> {
    if slot.is_some() {
        return Err(GeneveError::DuplicateAwsOption {
            name,
            typ: option.typ,
        });
    }
    let data = option
        .data
        .try_into()
        .map_err(|_| GeneveError::BadAwsOptionLength {
            name,
            typ: option.typ,
            expected: N,
            len: option.data.len(),
        })?;
    *slot = Some(data);
    Ok(())
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
    /// Walks raw option TLVs, e.g. [`GenevePacket::options_bytes`].
    pub fn new(options: &'a [u8]) -> Self {
        OptionIter { options, pos: 0 }
    }

    /// The next option, or why the walk cannot go on (after which it is over).
    fn next_checked(&mut self) -> Option<Result<GeneveOption<'a>, GeneveError>> {
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
    let class = read_be16(&head[field::OPT_CLASS]);
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

/// The three options AWS GWLB puts on every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AwsOptions {
    pub endpoint_id: u64,
    pub attachment_id: u64,
    pub flow_cookie: u32,
}

impl AwsOptions {
    /// The zone the endpoint id selects.
    pub fn zone(&self) -> ZoneName {
        ZoneName(self.endpoint_id)
    }

    /// The three options as TLVs (types 1, 2, 3, critical bit clear), ready
    /// for [`emit`].
    pub fn to_option_bytes(&self) -> [u8; AWS_OPTIONS_LEN] {
        let mut out = [0; AWS_OPTIONS_LEN];
        let options: [(u8, &[u8]); 3] = [
            (AWS_TYPE_ENDPOINT_ID, &self.endpoint_id.to_be_bytes()),
            (AWS_TYPE_ATTACHMENT_ID, &self.attachment_id.to_be_bytes()),
            (AWS_TYPE_FLOW_COOKIE, &self.flow_cookie.to_be_bytes()),
        ];
        let mut pos = 0;
        for (typ, data) in options {
            let [class_hi, class_lo] = AWS_OPTION_CLASS.to_be_bytes();
            // 8 or 4 bytes: 2 or 1 words.
            let words = (data.len() / 4) as u8;
            out[pos..pos + OPTION_HEADER_LEN].copy_from_slice(&[class_hi, class_lo, typ, words]);
            out[pos + OPTION_HEADER_LEN..pos + OPTION_HEADER_LEN + data.len()]
                .copy_from_slice(data);
            pos += OPTION_HEADER_LEN + data.len();
        }
        out
    }
}

fn set_bit(byte: &mut u8, mask: u8, on: bool) {
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

/// Big-endian value of up to 2 bytes.
fn read_be16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u16::from(b))
}

/// Big-endian value of up to 4 bytes.
fn read_be32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u32::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// geneve.pcap (tcpdump's test suite), packet 9: the UDP payload. An Open
    /// vSwitch tunnel carrying Ethernet, VNI 0xa, one critical option of class
    /// 0x0000 type 0x80 with 4 bytes of data; the C bit is set.
    const OVS_WITH_OPTION: [u8; 82] = [
        0x02, 0x40, 0x65, 0x58, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x80, 0x01, //
        0x00, 0x00, 0x00, 0x0c, 0xfe, 0x71, 0xd8, 0x83, 0x72, 0x4f, 0xb6, 0x9e, //
        0xd2, 0x49, 0x51, 0x48, 0x08, 0x00, 0x45, 0x00, 0x00, 0x34, 0xd6, 0x6b, //
        0x40, 0x00, 0x40, 0x06, 0x28, 0x56, 0x1e, 0x00, 0x00, 0x01, 0x1e, 0x00, //
        0x00, 0x02, 0x00, 0x16, 0xc8, 0x19, 0xad, 0x80, 0x60, 0x0a, 0x17, 0xb3, //
        0x0c, 0xc5, 0x80, 0x10, 0x00, 0xe3, 0xae, 0xe1, 0x00, 0x00, 0x01, 0x01, //
        0x08, 0x0a, 0x05, 0x05, 0x89, 0x8b, 0xab, 0x6d, 0x56, 0xc5,
    ];

    /// geneve.pcap, packet 3: the reverse direction, VNI 0xb and no options.
    const OVS_NO_OPTIONS: [u8; 82] = [
        0x00, 0x00, 0x65, 0x58, 0x00, 0x00, 0x0b, 0x00, 0xb6, 0x9e, 0xd2, 0x49, //
        0x51, 0x48, 0xfe, 0x71, 0xd8, 0x83, 0x72, 0x4f, 0x08, 0x00, 0x45, 0x00, //
        0x00, 0x3c, 0x5a, 0x11, 0x40, 0x00, 0x40, 0x06, 0xa4, 0xa8, 0x1e, 0x00, //
        0x00, 0x02, 0x1e, 0x00, 0x00, 0x01, 0xc8, 0x19, 0x00, 0x16, 0x17, 0xb3, //
        0x0c, 0xaf, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0x39, 0x08, 0xe4, 0x37, //
        0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xab, 0x6d, //
        0x56, 0xbe, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    /// geneve-gcp.pcap, packet 1: raw IPv4 inside, VNI 0, three options of
    /// class 0x0132 (types 1, 2, 3; 4, 16 and 8 bytes) — GWLB-like, not AWS.
    const GCP: [u8; 88] = [
        0x0a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x32, 0x01, 0x01, //
        0x80, 0x00, 0x00, 0xd1, 0x01, 0x32, 0x02, 0x04, 0x08, 0x00, 0x00, 0x0d, //
        0xc0, 0xa8, 0x64, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x01, 0x32, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34, //
        0x45, 0x00, 0x00, 0x28, 0xd9, 0x44, 0x00, 0x00, 0x40, 0x06, 0x58, 0x37, //
        0xc0, 0xa8, 0x64, 0x02, 0xc0, 0xa8, 0x64, 0x01, 0x0b, 0x59, 0x1f, 0x90, //
        0x2d, 0x5a, 0xde, 0x40, 0x78, 0xe9, 0xbf, 0xda, 0x50, 0x00, 0x02, 0x00, //
        0xf5, 0x47, 0x00, 0x00,
    ];

    /// An AWS GWLB header written out by hand from SPEC §5, followed by the
    /// first 4 bytes of an inner IPv4 header.
    const AWS: [u8; 44] = [
        0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // 8 words of options, IPv4, VNI 0
        0x01, 0x08, 0x01, 0x02, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, // endpoint id
        0x01, 0x08, 0x02, 0x02, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, // attachment
        0x01, 0x08, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef, // flow cookie
        0x45, 0x00, 0x00, 0x14,
    ];
    const AWS_HEADER_LEN: usize = 40;
    const AWS_OPTS: AwsOptions = AwsOptions {
        endpoint_id: 0x1234_5678_9abc_def0,
        attachment_id: 0x0a0b_0c0d_0e0f_1011,
        flow_cookie: 0xdead_beef,
    };

    fn opt(class: u16, raw_type: u8, data: &[u8]) -> Vec<u8> {
        let mut out = class.to_be_bytes().to_vec();
        out.extend([raw_type, (data.len() / 4) as u8]);
        out.extend_from_slice(data);
        out
    }

    fn endpoint() -> Vec<u8> {
        opt(AWS_OPTION_CLASS, 1, &AWS_OPTS.endpoint_id.to_be_bytes())
    }
    fn attachment() -> Vec<u8> {
        opt(AWS_OPTION_CLASS, 2, &AWS_OPTS.attachment_id.to_be_bytes())
    }
    fn cookie() -> Vec<u8> {
        opt(AWS_OPTION_CLASS, 3, &AWS_OPTS.flow_cookie.to_be_bytes())
    }

    /// A header with these option TLVs followed by 4 payload bytes.
    fn packet(protocol_type: u16, options: &[u8]) -> Vec<u8> {
        let mut buf = vec![0xee; HEADER_LEN + options.len() + 4];
        let len = emit(&mut buf, 0, protocol_type, options).unwrap();
        assert_eq!(len, HEADER_LEN + options.len());
        buf
    }

    fn strict(buf: &[u8]) -> Result<AwsOptions, GeneveError> {
        GenevePacket::new_checked(buf)?.aws_options()
    }

    #[test]
    fn ovs_capture_with_critical_option() {
        let p = GenevePacket::new_checked(&OVS_WITH_OPTION[..]).unwrap();
        assert_eq!(p.version(), 0);
        assert_eq!(p.opt_len_words(), 2);
        assert_eq!(p.header_len(), 16);
        assert!(!p.oam());
        assert!(p.critical());
        assert_eq!(p.protocol_type(), ETHER_TYPE_TRANS_ETHER);
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
            (ETHER_TYPE_IPV4, 0, false)
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
    fn aws_header_by_hand_parses() {
        let p = GenevePacket::new_checked(&AWS[..]).unwrap();
        assert_eq!(p.header_len(), AWS_HEADER_LEN);
        assert_eq!(p.aws_endpoint_id(), Some(AWS_OPTS.endpoint_id));
        assert_eq!(p.aws_attachment_id(), Some(AWS_OPTS.attachment_id));
        assert_eq!(p.aws_flow_cookie(), Some(AWS_OPTS.flow_cookie));
        assert_eq!(p.aws_options(), Ok(AWS_OPTS));
        assert_eq!(
            p.aws_options().unwrap().zone().to_string(),
            "vpce-0123456789abcdef0"
        );
        assert_eq!(p.payload(), &[0x45, 0x00, 0x00, 0x14]);
    }

    #[test]
    fn aws_header_round_trips_through_emit() {
        let options = AWS_OPTS.to_option_bytes();
        assert_eq!(options[..], AWS[HEADER_LEN..AWS_HEADER_LEN]);
        let mut buf = [0xffu8; 44];
        let len = emit(&mut buf, 0, ETHER_TYPE_IPV4, &options).unwrap();
        assert_eq!(len, AWS_HEADER_LEN);
        buf[len..].copy_from_slice(&AWS[len..]);
        assert_eq!(buf, AWS);
        let (header, payload) = GenevePacket::new_checked(&buf[..])
            .unwrap()
            .into_header_and_payload();
        assert_eq!((header, payload), (&AWS[..40], &AWS[40..]));
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

    #[test]
    fn oam_packets_parse_but_are_not_gwlb_traffic() {
        let mut bytes = AWS;
        GenevePacket::new_unchecked(&mut bytes[..]).set_oam(true);
        assert_eq!(bytes[1], 0x80);
        let p = GenevePacket::new_checked(&bytes[..]).unwrap();
        assert!(p.oam());
        assert_eq!(p.aws_endpoint_id(), Some(AWS_OPTS.endpoint_id));
        assert_eq!(p.aws_options(), Err(GeneveError::OamPacket));
    }

    #[test]
    fn unknown_critical_options_are_rejected_unknown_plain_ones_ignored() {
        let aws = [endpoint(), attachment(), cookie()].concat();
        let with = |extra: Vec<u8>| packet(ETHER_TYPE_IPV4, &[aws.clone(), extra].concat());
        let unknown = |class, typ| Err(GeneveError::UnknownCritical { class, typ });

        assert_eq!(strict(&with(opt(0x0108, 0x84, &[]))), unknown(0x0108, 4));
        assert_eq!(
            strict(&with(opt(0xffff, 0xff, &[1, 2, 3, 4]))),
            unknown(0xffff, 0x7f)
        );
        assert_eq!(
            strict(&with(opt(0x0000, 0x80, &[0, 0, 0, 0x0c]))),
            unknown(0, 0)
        );
        assert_eq!(strict(&with(opt(0x0108, 0x04, &[]))), Ok(AWS_OPTS));
        assert_eq!(strict(&with(opt(0x0132, 0x7f, &[0; 8]))), Ok(AWS_OPTS));
        // The AWS options themselves are understood even when marked critical.
        let critical_aws = opt(AWS_OPTION_CLASS, 0x81, &AWS_OPTS.endpoint_id.to_be_bytes());
        let buf = packet(
            ETHER_TYPE_IPV6,
            &[critical_aws, attachment(), cookie()].concat(),
        );
        assert!(GenevePacket::new_checked(&buf[..]).unwrap().critical());
        assert_eq!(strict(&buf), Ok(AWS_OPTS));
    }

    #[test]
    fn each_missing_aws_option_is_named() {
        let cases = [
            ([attachment(), cookie()].concat(), "endpoint id"),
            ([endpoint(), cookie()].concat(), "attachment id"),
            ([cookie(), endpoint()].concat(), "attachment id"),
            ([endpoint(), attachment()].concat(), "flow cookie"),
            (Vec::new(), "endpoint id"),
        ];
        for (options, name) in cases {
            let err = strict(&packet(ETHER_TYPE_IPV4, &options)).unwrap_err();
            assert_eq!(err, GeneveError::MissingAwsOption(name));
            assert_eq!(
                err.to_string(),
                format!("AWS GWLB option {name} (class 0x0108) is missing")
            );
        }
    }

    #[test]
    fn wrong_aws_option_lengths() {
        let short_endpoint = opt(AWS_OPTION_CLASS, 1, &[0; 4]);
        let buf = packet(
            ETHER_TYPE_IPV4,
            &[short_endpoint, attachment(), cookie()].concat(),
        );
        let err = strict(&buf).unwrap_err();
        let expected = GeneveError::BadAwsOptionLength {
            name: "endpoint id",
            typ: 1,
            expected: 8,
            len: 4,
        };
        assert_eq!(err, expected);
        assert_eq!(
            err.to_string(),
            "AWS GWLB option endpoint id (class 0x0108 type 1) carries 4 bytes of data, 8 expected"
        );
        assert_eq!(
            GenevePacket::new_checked(&buf[..])
                .unwrap()
                .aws_endpoint_id(),
            None
        );

        let long_cookie = opt(AWS_OPTION_CLASS, 3, &[0; 8]);
        let buf = packet(
            ETHER_TYPE_IPV4,
            &[endpoint(), attachment(), long_cookie].concat(),
        );
        let expected = GeneveError::BadAwsOptionLength {
            name: "flow cookie",
            typ: 3,
            expected: 4,
            len: 8,
        };
        assert_eq!(strict(&buf), Err(expected));
        assert_eq!(
            GenevePacket::new_checked(&buf[..])
                .unwrap()
                .aws_flow_cookie(),
            None
        );

        let empty_attachment = opt(AWS_OPTION_CLASS, 2, &[]);
        let buf = packet(
            ETHER_TYPE_IPV4,
            &[endpoint(), empty_attachment, cookie()].concat(),
        );
        let expected = GeneveError::BadAwsOptionLength {
            name: "attachment id",
            typ: 2,
            expected: 8,
            len: 0,
        };
        assert_eq!(strict(&buf), Err(expected));
    }

    #[test]
    fn duplicate_aws_option_is_rejected_in_strict_mode() {
        let second = opt(AWS_OPTION_CLASS, 3, &[0, 0, 0, 1]);
        let buf = packet(
            ETHER_TYPE_IPV4,
            &[endpoint(), attachment(), cookie(), second].concat(),
        );
        let expected = GeneveError::DuplicateAwsOption {
            name: "flow cookie",
            typ: 3,
        };
        assert_eq!(strict(&buf), Err(expected));
        // The lenient accessor takes the first.
        let p = GenevePacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.aws_flow_cookie(), Some(AWS_OPTS.flow_cookie));
    }

    #[test]
    fn gwlb_carries_raw_ip_with_any_vni() {
        let options = AWS_OPTS.to_option_bytes();
        assert_eq!(strict(&packet(ETHER_TYPE_IPV6, &options)), Ok(AWS_OPTS));
        let err = strict(&packet(ETHER_TYPE_TRANS_ETHER, &options)).unwrap_err();
        assert_eq!(err, GeneveError::UnsupportedProtocol(0x6558));
        assert_eq!(
            err.to_string(),
            "GENEVE protocol type 0x6558 is not raw IPv4 (0x0800) or raw IPv6 (0x86dd), \
             the only inner packets GWLB sends"
        );
        let mut buf = [0u8; AWS_HEADER_LEN];
        emit(&mut buf, VNI_MAX, ETHER_TYPE_IPV4, &options).unwrap();
        let p = GenevePacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.vni(), p.aws_options()), (0xff_ffff, Ok(AWS_OPTS)));
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
                emit(&mut buf[..buf_len], vni, ETHER_TYPE_IPV4, options),
                Err(expected)
            );
            assert_eq!(buf, [0x55; 64]);
        }
        assert_eq!(emit(&mut buf[..8], 7, ETHER_TYPE_IPV6, &[]), Ok(8));
        assert_eq!(buf[..8], [0x00, 0x00, 0x86, 0xdd, 0x00, 0x00, 0x07, 0x00]);
        // 63 words is the largest options length there is.
        let max = [opt(0xfff0, 0x01, &[0; 124]), opt(0xfff0, 0x02, &[0; 120])].concat();
        assert_eq!(max.len(), MAX_OPTIONS_LEN);
        let mut big = vec![0u8; HEADER_LEN + MAX_OPTIONS_LEN];
        emit(&mut big, 0, ETHER_TYPE_IPV4, &max).unwrap();
        let p = GenevePacket::new_checked(&big[..]).unwrap();
        assert_eq!((p.opt_len_words(), p.options().count()), (63, 2));
        let too_long = [max, opt(0xfff0, 0x03, &[])].concat();
        let expected = GeneveError::OptionsTooLong { len: 256 };
        assert_eq!(
            emit(&mut vec![0; 300], 0, ETHER_TYPE_IPV4, &too_long),
            Err(expected)
        );
    }

    #[test]
    fn emit_sets_the_c_bit_for_critical_options() {
        let buf = packet(ETHER_TYPE_IPV4, &opt(0x0108, 0x84, &[]));
        assert_eq!(buf[1], 0x40);
        let buf = packet(ETHER_TYPE_IPV4, &opt(0x0108, 0x04, &[]));
        assert_eq!(buf[1], 0x00);
    }

    #[test]
    fn setters_write_what_accessors_read() {
        let mut bytes = OVS_WITH_OPTION;
        let mut p = GenevePacket::new_checked(&mut bytes[..]).unwrap();
        p.set_vni(0x12_3456);
        p.set_protocol_type(ETHER_TYPE_IPV6);
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
}
