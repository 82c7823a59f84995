//! TCP (RFC 9293): a view of the header and the segment it heads.

use std::net::IpAddr;

use super::checksum;
use super::error::{need, HeaderError, Layer};
use super::{read_u16, read_u32, write_u16, Field};
use crate::base::IpProto;

/// Offsets in the header.
pub mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset in 4-byte words (high 4 bits), 4 reserved bits.
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// The bits of [`field::FLAGS`].
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// Accessors and setters panic if the buffer is shorter than
    /// [`HEADER_LEN`]; `options` and `payload` if it is shorter than the data
    /// offset says or the data offset is under 5.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check) accepted it.
    pub fn new_checked(buffer: T) -> Result<Self, HeaderError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Checks that the fixed header is there, that the data offset is at
    /// least 5, and that the options are there. The whole buffer is the
    /// segment: TCP has no length of its own.
    pub fn check(&self) -> Result<(), HeaderError> {
        let len = self.buffer.as_ref().len();
        need(Layer::Tcp, HEADER_LEN, len)?;
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(HeaderError::HeaderLenTooSmall {
                layer: Layer::Tcp,
                header_len,
                min: HEADER_LEN,
            });
        }
        need(Layer::Tcp, header_len, len)
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

    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.data(), field::SEQ_NUM)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.data(), field::ACK_NUM)
    }

    /// The header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flags byte ([`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.data()[field::FLAGS]
    }

    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(self.data(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.data(), field::URGENT)
    }

    /// The options, between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.header_len()]
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..]
    }

    /// Whether the checksum is right for a segment between these addresses.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let d = self.data();
        let pseudo = checksum::pseudo_header(src, dst, IpProto::TCP, d.len() as u32);
        checksum::combine(&[pseudo, checksum::sum(d)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.data_mut(), field::SRC_PORT, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.data_mut(), field::DST_PORT, port);
    }

    pub fn set_seq_number(&mut self, seq: u32) {
        self.data_mut()[field::SEQ_NUM].copy_from_slice(&seq.to_be_bytes());
    }

    pub fn set_ack_number(&mut self, ack: u32) {
        self.data_mut()[field::ACK_NUM].copy_from_slice(&ack.to_be_bytes());
    }

    /// Sets the header length in bytes; it is kept in words, at most 60.
    /// The reserved bits are cleared.
    pub fn set_header_len(&mut self, len: usize) {
        self.data_mut()[field::DATA_OFFSET] = ((len / 4) as u8 & 0xf) << 4;
    }

    pub fn set_flags(&mut self, flags: u8) {
        self.data_mut()[field::FLAGS] = flags;
    }

    pub fn set_window_len(&mut self, window: u16) {
        write_u16(self.data_mut(), field::WINDOW, window);
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, checksum);
    }

    pub fn set_urgent_at(&mut self, at: u16) {
        write_u16(self.data_mut(), field::URGENT, at);
    }

    /// Computes and writes the checksum for a segment between these addresses.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let d = self.data();
        let pseudo = checksum::pseudo_header(src, dst, IpProto::TCP, d.len() as u32);
        let c = !checksum::combine(&[pseudo, checksum::sum(d)]);
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.data_mut()[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// geneve.pcap (tcpdump's test suite), packet 3: the inner TCP SYN,
    /// 30.0.0.2:51225 → 30.0.0.1:22, with 20 bytes of options.
    const SYN: [u8; 40] = [
        0xc8, 0x19, 0x00, 0x16, 0x17, 0xb3, 0x0c, 0xaf, 0x00, 0x00, 0x00, 0x00, //
        0xa0, 0x02, 0x39, 0x08, 0xe4, 0x37, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, //
        0x04, 0x02, 0x08, 0x0a, 0xab, 0x6d, 0x56, 0xbe, 0x00, 0x00, 0x00, 0x00, //
        0x01, 0x03, 0x03, 0x07,
    ];

    fn ends() -> (IpAddr, IpAddr) {
        ("30.0.0.2".parse().unwrap(), "30.0.0.1".parse().unwrap())
    }

    #[test]
    fn every_truncation_is_reported() {
        for len in 0..SYN.len() {
            let required_len = if len < HEADER_LEN { HEADER_LEN } else { 40 };
            assert_eq!(
                TcpPacket::new_checked(&SYN[..len]),
                Err(HeaderError::Truncated {
                    layer: Layer::Tcp,
                    required_len,
                    len
                }),
                "len {len}"
            );
        }
    }

    #[test]
    fn accessors_read_a_captured_header() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (51225, 22));
        assert_eq!((p.seq_number(), p.ack_number()), (0x17b3_0caf, 0));
        assert_eq!((p.header_len(), p.flags()), (40, flags::SYN));
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(
            (p.window_len(), p.checksum(), p.urgent_at()),
            (0x3908, 0xe437, 0)
        );
        assert_eq!(p.options(), &SYN[20..]);
        assert!(p.payload().is_empty());
        let (s, d) = ends();
        assert!(p.verify_checksum(&s, &d));
        assert!(!p.verify_checksum(&d, &d));
    }

    #[test]
    fn data_offset_edge_cases() {
        for doff in 0..5u8 {
            let mut bytes = SYN;
            bytes[12] = doff << 4;
            assert_eq!(
                TcpPacket::new_checked(&bytes[..]),
                Err(HeaderError::HeaderLenTooSmall {
                    layer: Layer::Tcp,
                    header_len: usize::from(doff) * 4,
                    min: 20
                })
            );
        }
        // Data offset 15: 60 bytes of header in 40.
        let mut bytes = SYN;
        bytes[12] = 0xf0;
        assert_eq!(
            TcpPacket::new_checked(&bytes[..]),
            Err(HeaderError::Truncated {
                layer: Layer::Tcp,
                required_len: 60,
                len: 40
            })
        );
        // Data offset 5: the options are payload now.
        bytes[12] = 0x50;
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.options(), p.payload()), (&[][..], &SYN[20..]));
    }

    #[test]
    fn setters_write_what_accessors_read() {
        let mut bytes = [0u8; 24];
        let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
        p.set_src_port(40000);
        p.set_dst_port(443);
        p.set_seq_number(7);
        p.set_ack_number(9);
        p.set_header_len(20);
        p.set_flags(flags::SYN | flags::ACK);
        p.set_window_len(64240);
        p.set_urgent_at(3);
        p.payload_mut().copy_from_slice(b"data");
        let (s, d) = ends();
        p.fill_checksum(&s, &d);
        assert!(p.verify_checksum(&s, &d));
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()),
            (40000, 443, 7, 9)
        );
        assert_eq!(
            (p.header_len(), p.flags(), p.window_len(), p.urgent_at()),
            (20, 0x12, 64240, 3)
        );
        assert_eq!(p.payload(), b"data");
        // etherparse agrees on the checksum.
        let slice = etherparse::TcpSlice::from_slice(&bytes).unwrap();
        let want = slice
            .to_header()
            .calc_checksum_ipv4_raw([30, 0, 0, 2], [30, 0, 0, 1], slice.payload())
            .unwrap();
        assert_eq!(u16::from_be_bytes([bytes[16], bytes[17]]), want);
    }
}
