//! Ethernet II: a view of the 14-byte header (addresses and EtherType), and
//! the EtherType values sgplane knows, which GENEVE's protocol type shares.

use super::error::{need, HeaderError, Layer};
use super::Field;

/// Offsets in the header.
pub mod field {
    use super::Field;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    /// An 802.1Q tag, relative to its start: tag control, then the EtherType
    /// of what follows.
    pub const VLAN_TCI: Field = 0..2;
    pub const VLAN_ETHERTYPE: Field = 2..4;
}

/// EtherType values (also GENEVE's protocol type). Any other value is just
/// a value: [`crate::wire::Frame::NotIp`] carries it.
pub mod ether_type {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// Transparent Ethernet bridging: an Ethernet frame inside a tunnel.
    pub const TRANS_ETHER: u16 = 0x6558;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86DD;
    pub const QINQ: u16 = 0x88A8;
    /// The pre-standard 802.1ad tag some switches still send.
    pub const QINQ_OLD: u16 = 0x9100;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = field::VLAN_ETHERTYPE.end;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without looking at it.
    ///
    /// # Panics
    /// Accessors and setters panic if the buffer is shorter than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer that holds the whole header.
    pub fn new_checked(buffer: T) -> Result<Self, HeaderError> {
        need(Layer::Ethernet, HEADER_LEN, buffer.as_ref().len())?;
        Ok(Self::new_unchecked(buffer))
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn mac(&self, f: Field) -> [u8; 6] {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[f]);
        mac
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        self.mac(field::DESTINATION)
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        self.mac(field::SOURCE)
    }

    /// The EtherType ([`ether_type`]), or the length of an 802.3 frame.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// What follows the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst_addr(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac);
    }

    pub fn set_src_addr(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac);
    }

    pub fn set_ethertype(&mut self, ethertype: u16) {
        super::write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype);
    }

    /// Exchanges the source and destination addresses, as a reply does.
    pub fn swap_addresses(&mut self) {
        let (dst, src) =
            self.buffer.as_mut()[..field::SOURCE.end].split_at_mut(field::SOURCE.start);
        dst.swap_with_slice(src);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// geneve.pcap (tcpdump's test suite), packet 9: the inner Ethernet
    /// header of the Open vSwitch tunnel, and the first IPv4 byte.
    const FRAME: [u8; 15] = [
        0xfe, 0x71, 0xd8, 0x83, 0x72, 0x4f, 0xb6, 0x9e, 0xd2, 0x49, 0x51, 0x48, 0x08, 0x00, 0x45,
    ];

    #[test]
    fn every_truncation_is_reported() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME[..len]),
                Err(HeaderError::Truncated {
                    layer: Layer::Ethernet,
                    required_len: HEADER_LEN,
                    len
                }),
                "len {len}"
            );
        }
        let f = EthernetFrame::new_checked(&FRAME[..HEADER_LEN]).unwrap();
        assert!(f.payload().is_empty());
        assert_eq!(
            HeaderError::Truncated {
                layer: Layer::Ethernet,
                required_len: 14,
                len: 3
            }
            .to_string(),
            "Ethernet truncated: 14 bytes needed, 3 present"
        );
    }

    #[test]
    fn accessors_read_a_captured_header() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), [0xfe, 0x71, 0xd8, 0x83, 0x72, 0x4f]);
        assert_eq!(f.src_addr(), [0xb6, 0x9e, 0xd2, 0x49, 0x51, 0x48]);
        assert_eq!(f.ethertype(), ether_type::IPV4);
        assert_eq!(f.payload(), &[0x45]);
    }

    #[test]
    fn setters_write_what_accessors_read() {
        let mut bytes = FRAME;
        let mut f = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        f.swap_addresses();
        assert_eq!(f.dst_addr(), [0xb6, 0x9e, 0xd2, 0x49, 0x51, 0x48]);
        assert_eq!(f.src_addr(), [0xfe, 0x71, 0xd8, 0x83, 0x72, 0x4f]);
        f.set_ethertype(ether_type::IPV6);
        f.set_src_addr([2, 0, 0, 0, 0, 1]);
        f.payload_mut()[0] = 0x60;
        assert_eq!(
            bytes,
            [0xb6, 0x9e, 0xd2, 0x49, 0x51, 0x48, 2, 0, 0, 0, 0, 1, 0x86, 0xdd, 0x60]
        );
        let mut f = EthernetFrame::new_unchecked(&mut bytes[..]);
        f.set_dst_addr([0xff; 6]);
        assert_eq!(f.dst_addr(), [0xff; 6]);
    }
}
