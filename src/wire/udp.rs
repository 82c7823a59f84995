//! UDP (RFC 768): a view of the header and the datagram it heads.

use std::net::IpAddr;

use super::checksum;
use super::error::{need, HeaderError, Layer};
use super::{read_u16, write_u16, Field};
use crate::base::IpProto;

/// Offsets in the header.
pub mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// Accessors and setters panic if the buffer is shorter than
    /// [`HEADER_LEN`]; `payload` if it is shorter than the length says or
    /// the length is under 8.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check) accepted it.
    pub fn new_checked(buffer: T) -> Result<Self, HeaderError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Checks that the header is there, that the length covers it, and that
    /// the bytes it gives are there.
    pub fn check(&self) -> Result<(), HeaderError> {
        let len = self.buffer.as_ref().len();
        need(Layer::Udp, HEADER_LEN, len)?;
        let length = usize::from(self.len());
        if length < HEADER_LEN {
            return Err(HeaderError::LengthTooSmall {
                layer: Layer::Udp,
                length,
                header_len: HEADER_LEN,
            });
        }
        need(Layer::Udp, length, len)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.data(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.data(), field::DST_PORT)
    }

    /// The length of the datagram, header included.
    #[inline]
    #[allow(clippy::len_without_is_empty)] // a header field, never empty
    pub fn len(&self) -> u16 {
        read_u16(self.data(), field::LENGTH)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    /// The datagram's bytes, up to its length.
    fn datagram(&self) -> &[u8] {
        &self.data()[..usize::from(self.len())]
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[HEADER_LEN..]
    }

    /// Whether the checksum is right for a datagram between these addresses.
    /// A checksum of 0 means "none", which IPv4 allows and IPv6 does not.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let d = self.datagram();
        let pseudo = checksum::pseudo_header(src, dst, IpProto::UDP, d.len() as u32);
        checksum::combine(&[pseudo, checksum::sum(d)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.data_mut(), field::SRC_PORT, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.data_mut(), field::DST_PORT, port);
    }

    pub fn set_len(&mut self, len: u16) {
        write_u16(self.data_mut(), field::LENGTH, len);
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, checksum);
    }

    /// Computes and writes the checksum for a datagram between these
    /// addresses; never 0, which would mean "none".
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let d = self.datagram();
        let pseudo = checksum::pseudo_header(src, dst, IpProto::UDP, d.len() as u32);
        let c = !checksum::combine(&[pseudo, checksum::sum(d)]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.data_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram 10.0.0.1:5353 → 10.0.0.2:53 with 5 bytes of payload, as
    /// etherparse writes it (checksum included).
    fn datagram() -> (Vec<u8>, IpAddr, IpAddr) {
        let (s, d): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let frame = crate::wire::build::udp(s, d, 5353, 53, b"query");
        (frame[14 + 20..].to_vec(), s, d)
    }

    #[test]
    fn every_truncation_is_reported() {
        let (bytes, ..) = datagram();
        for len in 0..bytes.len() {
            let required_len = if len < HEADER_LEN {
                HEADER_LEN
            } else {
                bytes.len()
            };
            assert_eq!(
                UdpPacket::new_checked(&bytes[..len]),
                Err(HeaderError::Truncated {
                    layer: Layer::Udp,
                    required_len,
                    len
                }),
                "len {len}"
            );
        }
    }

    #[test]
    fn accessors_read_the_header() {
        let (bytes, s, d) = datagram();
        assert_eq!(&bytes[..6], &[0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d]);
        let p = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 13));
        assert_eq!(p.payload(), b"query");
        assert!(p.verify_checksum(&s, &d));
        assert!(!p.verify_checksum(&d, &"10.0.0.3".parse().unwrap()));
    }

    #[test]
    fn length_edge_cases() {
        let (bytes, ..) = datagram();
        for length in 0..8u16 {
            let mut b = bytes.clone();
            b[4..6].copy_from_slice(&length.to_be_bytes());
            assert_eq!(
                UdpPacket::new_checked(&b[..]),
                Err(HeaderError::LengthTooSmall {
                    layer: Layer::Udp,
                    length: usize::from(length),
                    header_len: 8
                })
            );
        }
        // Bytes past the length are not payload; a length of 8 has none.
        let mut b = bytes.clone();
        b[4..6].copy_from_slice(&[0, 10]);
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap().payload(), b"qu");
        b[4..6].copy_from_slice(&[0, 8]);
        assert!(UdpPacket::new_checked(&b[..]).unwrap().payload().is_empty());
        b[4..6].copy_from_slice(&[0, 14]);
        assert_eq!(
            UdpPacket::new_checked(&b[..]),
            Err(HeaderError::Truncated {
                layer: Layer::Udp,
                required_len: 14,
                len: 13
            })
        );
    }

    #[test]
    fn setters_write_what_accessors_read_and_the_checksum_verifies() {
        let (s, d): (IpAddr, IpAddr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut bytes = [0u8; 12];
        let mut p = UdpPacket::new_unchecked(&mut bytes[..]);
        p.set_src_port(33000);
        p.set_dst_port(6081);
        p.set_len(12);
        p.payload_mut().copy_from_slice(b"ping");
        assert!(
            !p.verify_checksum(&s, &d),
            "0 is no checksum, not allowed over IPv6"
        );
        p.fill_checksum(&s, &d);
        assert!(p.verify_checksum(&s, &d));
        // etherparse computes the same checksum.
        let header = etherparse::UdpHeader {
            source_port: 33000,
            destination_port: 6081,
            length: 12,
            checksum: 0,
        };
        let ip = etherparse::Ipv6Header {
            source: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            destination: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            ..Default::default()
        };
        let want = header.calc_checksum_ipv6(&ip, b"ping").unwrap();
        assert_eq!(p.checksum(), want);
        assert_eq!(&bytes[..6], &[0x80, 0xe8, 0x17, 0xc1, 0, 12]);
        // Over IPv4, 0 means none.
        let mut p = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        p.set_checksum(0);
        assert!(p.verify_checksum(&"10.0.0.1".parse().unwrap(), &"10.0.0.2".parse().unwrap()));
    }
}
