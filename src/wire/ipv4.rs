//! IPv4 (RFC 791): a view of the header and the packet it heads.
//!
//! [`Ipv4Packet::new_checked`] wants the whole packet: the header with its
//! options and as many bytes as the total length gives (more may follow, as
//! Ethernet padding does). The parser in [`crate::wire::packet`] is more
//! lenient with captures cut short; this view is for packets sgplane holds
//! whole, such as the GWLB frames it writes and turns around.

use std::net::Ipv4Addr;

use super::checksum;
use super::error::{need, HeaderError, Layer};
use super::{read_u16, write_u16, Field};
use crate::base::IpProto;

/// Offsets in the header.
pub mod field {
    use super::Field;

    /// Version (high 4 bits) and header length in 4-byte words (low 4 bits).
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Flags (high 3 bits) and the fragment offset in 8-byte units.
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// The low 4 bits of [`field::VER_IHL`]: the header length in words.
pub const IHL_MASK: u8 = 0x0f;
/// In [`field::FLG_OFF`]: don't fragment.
pub const DONT_FRAGMENT: u16 = 0x4000;
/// In [`field::FLG_OFF`]: more fragments follow.
pub const MORE_FRAGMENTS: u16 = 0x2000;
/// In [`field::FLG_OFF`]: the fragment offset in 8-byte units.
pub const FRAGMENT_OFFSET: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// Accessors and setters panic if the buffer is shorter than
    /// [`HEADER_LEN`]; `options` and `payload` if it is shorter than the
    /// header or total length says.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check) accepted it.
    pub fn new_checked(buffer: T) -> Result<Self, HeaderError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Checks, in this order: the fixed header is there; the version is 4;
    /// the header length is at least 20 and the options are there; the
    /// total length covers the header and the bytes it gives are there. The
    /// checksum is not checked ([`verify_checksum`](Self::verify_checksum)).
    pub fn check(&self) -> Result<(), HeaderError> {
        let len = self.buffer.as_ref().len();
        need(Layer::Ipv4, HEADER_LEN, len)?;
        if self.version() != 4 {
            return Err(HeaderError::BadVersion {
                layer: Layer::Ipv4,
                version: self.version(),
            });
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(HeaderError::HeaderLenTooSmall {
                layer: Layer::Ipv4,
                header_len,
                min: HEADER_LEN,
            });
        }
        need(Layer::Ipv4, header_len, len)?;
        let total = usize::from(self.total_len());
        if total < header_len {
            return Err(HeaderError::LengthTooSmall {
                layer: Layer::Ipv4,
                length: total,
                header_len,
            });
        }
        need(Layer::Ipv4, total, len)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.data()[field::VER_IHL] >> 4
    }

    /// The header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::VER_IHL] & IHL_MASK) * 4
    }

    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.data()[field::DSCP_ECN]
    }

    /// The length of the packet, header included.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.data(), field::LENGTH)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.data(), field::IDENT)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.data(), field::FLG_OFF) & DONT_FRAGMENT != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.data(), field::FLG_OFF) & MORE_FRAGMENTS != 0
    }

    /// The fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.data(), field::FLG_OFF) & FRAGMENT_OFFSET) << 3
    }

    /// Whether this is a fragment: more follow, or it is not the first.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(self.data(), field::FLG_OFF) & (MORE_FRAGMENTS | FRAGMENT_OFFSET) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    /// The protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> IpProto {
        IpProto(self.data()[field::PROTOCOL])
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(super::read_u32(self.data(), field::SRC_ADDR))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(super::read_u32(self.data(), field::DST_ADDR))
    }

    /// Whether the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.data()[..self.header_len()]) == 0
    }

    /// The options, between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.header_len()]
    }

    /// The payload: from the end of the header to the total length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the version; only the low 4 bits are kept.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.data_mut()[field::VER_IHL];
        *b = (*b & IHL_MASK) | (version << 4);
    }

    /// Sets the header length in bytes; it is kept in words, at most 60.
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.data_mut()[field::VER_IHL];
        *b = (*b & !IHL_MASK) | ((len / 4) as u8 & IHL_MASK);
    }

    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.data_mut()[field::DSCP_ECN] = value;
    }

    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.data_mut(), field::LENGTH, len);
    }

    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.data_mut(), field::IDENT, ident);
    }

    /// Sets the flags and the fragment offset (in bytes, a multiple of 8)
    /// at once; the reserved bit is cleared.
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & FRAGMENT_OFFSET;
        if dont_frag {
            v |= DONT_FRAGMENT;
        }
        if more_frags {
            v |= MORE_FRAGMENTS;
        }
        write_u16(self.data_mut(), field::FLG_OFF, v);
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.data_mut()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, proto: IpProto) {
        self.data_mut()[field::PROTOCOL] = proto.0;
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, checksum);
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Exchanges the source and destination addresses. The checksum stays
    /// right: it is a sum.
    pub fn swap_addresses(&mut self) {
        let (src, dst) =
            self.data_mut()[field::SRC_ADDR.start..field::DST_ADDR.end].split_at_mut(4);
        src.swap_with_slice(dst);
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.data()[..self.header_len()]);
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.data_mut()[range]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// geneve-gcp.pcap (tcpdump's test suite), packet 1: the inner IPv4
    /// header, 192.168.100.2 → 192.168.100.1, TCP, 40 bytes in all.
    const PACKET: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0xd9, 0x44, 0x00, 0x00, 0x40, 0x06, 0x58, 0x37, //
        0xc0, 0xa8, 0x64, 0x02, 0xc0, 0xa8, 0x64, 0x01, 0x0b, 0x59, 0x1f, 0x90, //
        0x2d, 0x5a, 0xde, 0x40, 0x78, 0xe9, 0xbf, 0xda, 0x50, 0x00, 0x02, 0x00, //
        0xf5, 0x47, 0x00, 0x00,
    ];

    /// A header with 4 bytes of options (router alert, RFC 2113) and 4 of
    /// payload; the checksum is filled in by the test.
    fn with_options() -> [u8; 28] {
        let mut p = [
            0x46, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, //
            0x0a, 0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04, 0x00, 0x00, //
            0xde, 0xad, 0xbe, 0xef,
        ];
        Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
        p
    }

    fn truncated<'a>(required_len: usize, len: usize) -> Result<Ipv4Packet<&'a [u8]>, HeaderError> {
        Err(HeaderError::Truncated {
            layer: Layer::Ipv4,
            required_len,
            len,
        })
    }

    #[test]
    fn every_truncation_is_reported() {
        for len in 0..PACKET.len() {
            let required = if len < HEADER_LEN {
                HEADER_LEN
            } else {
                PACKET.len()
            };
            assert_eq!(
                Ipv4Packet::new_checked(&PACKET[..len]),
                truncated(required, len),
                "len {len}"
            );
        }
        let p = with_options();
        for len in 0..p.len() {
            let required = match len {
                0..20 => HEADER_LEN,
                20..24 => 24,
                _ => 28,
            };
            assert_eq!(
                Ipv4Packet::new_checked(&p[..len]),
                truncated(required, len),
                "len {len}"
            );
        }
    }

    #[test]
    fn accessors_read_a_captured_header() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.dscp_ecn()), (4, 20, 0));
        assert_eq!((p.total_len(), p.ident(), p.ttl()), (40, 0xd944, 64));
        assert_eq!(
            (p.dont_frag(), p.more_frags(), p.frag_offset()),
            (false, false, 0)
        );
        assert!(!p.is_fragment());
        assert_eq!(p.protocol(), IpProto::TCP);
        assert_eq!(p.checksum(), 0x5837);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 100, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 100, 1));
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &PACKET[20..]);
    }

    #[test]
    fn options_and_payload_follow_the_header_length() {
        let bytes = with_options();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn trailing_bytes_are_not_payload() {
        let mut padded = PACKET.to_vec();
        padded.extend([0; 6]); // Ethernet padding
        let p = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &PACKET[20..]);
    }

    #[test]
    fn header_length_edge_cases() {
        for ihl in 0..5u8 {
            let mut bytes = PACKET;
            bytes[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&bytes[..]),
                Err(HeaderError::HeaderLenTooSmall {
                    layer: Layer::Ipv4,
                    header_len: usize::from(ihl) * 4,
                    min: 20
                })
            );
        }
        // IHL 15: a 60-byte header in a 40-byte buffer.
        let mut bytes = PACKET;
        bytes[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(HeaderError::Truncated {
                layer: Layer::Ipv4,
                required_len: 60,
                len: 40
            })
        );
        // A total length below the header length, and past the end.
        for (total, expected) in [
            (
                19,
                HeaderError::LengthTooSmall {
                    layer: Layer::Ipv4,
                    length: 19,
                    header_len: 20,
                },
            ),
            (
                0,
                HeaderError::LengthTooSmall {
                    layer: Layer::Ipv4,
                    length: 0,
                    header_len: 20,
                },
            ),
            (
                41,
                HeaderError::Truncated {
                    layer: Layer::Ipv4,
                    required_len: 41,
                    len: 40,
                },
            ),
        ] {
            let mut bytes = PACKET;
            bytes[2..4].copy_from_slice(&u16::to_be_bytes(total));
            assert_eq!(
                Ipv4Packet::new_checked(&bytes[..]),
                Err(expected),
                "total {total}"
            );
        }
        // A header of exactly 20 bytes and nothing else is a whole packet.
        let mut bytes = PACKET;
        bytes[2..4].copy_from_slice(&[0, 20]);
        let p = Ipv4Packet::new_checked(&bytes[..20]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn the_version_is_checked_after_the_length() {
        let mut bytes = PACKET;
        bytes[0] = 0x65;
        let err = Ipv4Packet::new_checked(&bytes[..]).unwrap_err();
        assert_eq!(
            err,
            HeaderError::BadVersion {
                layer: Layer::Ipv4,
                version: 6
            }
        );
        assert_eq!(err.to_string(), "IPv4 header with version 6");
        assert_eq!(Ipv4Packet::new_checked(&bytes[..19]), truncated(20, 19));
    }

    #[test]
    fn setters_write_what_accessors_read() {
        let mut bytes = [0u8; 32];
        let mut p = Ipv4Packet::new_unchecked(&mut bytes[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_total_len(28);
        p.set_ident(0x1234);
        p.set_flags_and_frag_offset(false, true, 1480);
        p.set_ttl(63);
        p.set_protocol(IpProto::UDP);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.fill_checksum();
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.header_len(), p.total_len(), p.ident()), (20, 28, 0x1234));
        assert_eq!(
            (p.more_frags(), p.dont_frag(), p.frag_offset()),
            (true, false, 1480)
        );
        assert!(p.is_fragment());
        assert_eq!((p.ttl(), p.protocol()), (63, IpProto::UDP));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            &bytes[..12],
            &[0x45, 0, 0, 28, 0x12, 0x34, 0x20, 0xb9, 63, 17, bytes[10], bytes[11]]
        );
    }

    #[test]
    fn swapping_the_addresses_keeps_the_checksum() {
        let mut bytes = PACKET;
        let mut p = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        p.swap_addresses();
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 100, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 100, 2));
        assert!(p.verify_checksum());
        p.set_ttl(1);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_dscp_ecn(0xb8);
        assert_eq!(p.dscp_ecn(), 0xb8);
    }
}
