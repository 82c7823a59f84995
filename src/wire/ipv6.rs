//! IPv6 (RFC 8200): a view of the fixed header and the packet it heads.
//!
//! [`Ipv6Packet::new_checked`] wants the whole packet: the fixed header and
//! the payload length it gives. Extension headers are part of the payload
//! here; the parser in [`crate::wire::packet`] walks them.

use std::net::Ipv6Addr;

use super::error::{need, HeaderError, Layer};
use super::{read_u16, write_u16, Field};
use crate::base::IpProto;

/// Offsets in the fixed header.
pub mod field {
    use super::Field;

    /// Version (4 bits), traffic class (8 bits) and flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Extension headers (RFC 8200 §4): their protocol numbers and, relative
/// to their start, where their fields are.
pub mod ext {
    use super::Field;

    /// Whether a header of this type has its length in 8-byte units after
    /// the first 8 bytes: hop-by-hop options, routing, destination options,
    /// mobility, HIP, shim6.
    #[inline]
    pub fn is_generic(next_header: u8) -> bool {
        matches!(next_header, 0 | 43 | 60 | 135 | 139 | 140)
    }
    /// The fragment header, 8 bytes long.
    pub const FRAGMENT: u8 = 44;
    /// The authentication header, whose length counts 4-byte units after the
    /// first 8 bytes (RFC 4302).
    pub const AUTH: u8 = 51;

    pub const NEXT_HEADER: usize = 0;
    pub const LENGTH: usize = 1;
    /// Every extension header is at least this long.
    pub const MIN_LEN: usize = 8;
    /// In a fragment header: the offset in 8-byte units (high 13 bits), and
    /// the more-fragments flag (low bit).
    pub const FRAG_OFFSET: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
    pub const FRAG_MORE: u16 = 0x0001;
    pub const FRAGMENT_LEN: usize = 8;
}

const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// Accessors and setters panic if the buffer is shorter than
    /// [`HEADER_LEN`]; `payload` if it is shorter than the payload length says.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check) accepted it.
    pub fn new_checked(buffer: T) -> Result<Self, HeaderError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Checks, in this order: the fixed header is there; the version is 6;
    /// the payload the payload length gives is there.
    pub fn check(&self) -> Result<(), HeaderError> {
        let len = self.buffer.as_ref().len();
        need(Layer::Ipv6, HEADER_LEN, len)?;
        if self.version() != 6 {
            return Err(HeaderError::BadVersion {
                layer: Layer::Ipv6,
                version: self.version(),
            });
        }
        need(Layer::Ipv6, self.total_len(), len)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn ver_tc_flow(&self) -> u32 {
        super::read_u32(self.data(), field::VER_TC_FLOW)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.data()[field::VER_TC_FLOW.start] >> 4
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & FLOW_LABEL_MASK
    }

    /// The length of what follows the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.data(), field::PAYLOAD_LEN)
    }

    /// The length of the packet, the fixed header included.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The first extension header's type or the upper-layer protocol.
    #[inline]
    pub fn next_header(&self) -> IpProto {
        IpProto(self.data()[field::NEXT_HEADER])
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.data()[field::HOP_LIMIT]
    }

    fn addr(&self, f: Field) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.data()[f]);
        Ipv6Addr::from(octets)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        self.addr(field::SRC_ADDR)
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        self.addr(field::DST_ADDR)
    }

    /// What follows the fixed header, up to the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn set_ver_tc_flow(&mut self, v: u32) {
        self.data_mut()[field::VER_TC_FLOW].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the version; only the low 4 bits are kept.
    pub fn set_version(&mut self, version: u8) {
        let v = self.ver_tc_flow() & 0x0fff_ffff | u32::from(version & 0xf) << 28;
        self.set_ver_tc_flow(v);
    }

    pub fn set_traffic_class(&mut self, class: u8) {
        let v = self.ver_tc_flow() & 0xf00f_ffff | u32::from(class) << 20;
        self.set_ver_tc_flow(v);
    }

    /// Sets the flow label; only the low 20 bits are kept.
    pub fn set_flow_label(&mut self, label: u32) {
        let v = self.ver_tc_flow() & !FLOW_LABEL_MASK | label & FLOW_LABEL_MASK;
        self.set_ver_tc_flow(v);
    }

    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(self.data_mut(), field::PAYLOAD_LEN, len);
    }

    pub fn set_next_header(&mut self, proto: IpProto) {
        self.data_mut()[field::NEXT_HEADER] = proto.0;
    }

    pub fn set_hop_limit(&mut self, hops: u8) {
        self.data_mut()[field::HOP_LIMIT] = hops;
    }

    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Exchanges the source and destination addresses. Checksums over them
    /// (the upper layer's pseudo header) stay right: they are sums.
    pub fn swap_addresses(&mut self) {
        let (src, dst) =
            self.data_mut()[field::SRC_ADDR.start..field::DST_ADDR.end].split_at_mut(16);
        src.swap_with_slice(dst);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.data_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ICMPv6 echo request, fe80::1 → ff02::1, hop limit 255, traffic
    /// class 0xb8 and flow label 0x12345: the header and 8 bytes of payload.
    const PACKET: [u8; 48] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x08, 0x3a, 0xff, //
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x80, 0x00, 0x7f, 0xb6, 0x00, 0x07, 0x00, 0x01,
    ];

    #[test]
    fn every_truncation_is_reported() {
        for len in 0..PACKET.len() {
            let required_len = if len < HEADER_LEN {
                HEADER_LEN
            } else {
                PACKET.len()
            };
            assert_eq!(
                Ipv6Packet::new_checked(&PACKET[..len]),
                Err(HeaderError::Truncated {
                    layer: Layer::Ipv6,
                    required_len,
                    len
                }),
                "len {len}"
            );
        }
    }

    #[test]
    fn accessors_read_the_header() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.flow_label()), (0xb8, 0x1_2345));
        assert_eq!((p.payload_len(), p.total_len()), (8, 48));
        assert_eq!((p.next_header(), p.hop_limit()), (IpProto::ICMPV6, 255));
        assert_eq!(p.src_addr(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &PACKET[40..]);
    }

    #[test]
    fn payload_length_edge_cases() {
        // Trailing bytes are not payload.
        let mut padded = PACKET.to_vec();
        padded.extend([0; 4]);
        assert_eq!(
            Ipv6Packet::new_checked(&padded[..]).unwrap().payload(),
            &PACKET[40..]
        );
        // Payload length 0: the header alone is the packet.
        let mut bytes = PACKET;
        bytes[4..6].copy_from_slice(&[0, 0]);
        assert!(Ipv6Packet::new_checked(&bytes[..40])
            .unwrap()
            .payload()
            .is_empty());
        // The largest payload length, with a short buffer.
        bytes[4..6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]),
            Err(HeaderError::Truncated {
                layer: Layer::Ipv6,
                required_len: 40 + 0xffff,
                len: 48
            })
        );
    }

    #[test]
    fn the_version_is_checked_after_the_length() {
        let mut bytes = PACKET;
        bytes[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]),
            Err(HeaderError::BadVersion {
                layer: Layer::Ipv6,
                version: 4
            })
        );
        assert!(matches!(
            Ipv6Packet::new_checked(&bytes[..39]),
            Err(HeaderError::Truncated {
                required_len: 40,
                ..
            })
        ));
    }

    #[test]
    fn setters_write_what_accessors_read() {
        let mut bytes = [0u8; 44];
        let mut p = Ipv6Packet::new_unchecked(&mut bytes[..]);
        p.set_version(6);
        p.set_traffic_class(0xb8);
        p.set_flow_label(0xf_ffff);
        p.set_flow_label(0x1_2345);
        p.set_payload_len(4);
        p.set_next_header(IpProto::UDP);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("2001:db8::2".parse().unwrap());
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(&bytes[..8], &[0x6b, 0x81, 0x23, 0x45, 0, 4, 17, 64]);
        let mut p = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0xb8, 0x1_2345)
        );
        p.swap_addresses();
        assert_eq!(p.src_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        p.set_version(4);
        assert_eq!((p.version(), p.traffic_class()), (4, 0xb8));
    }
}
