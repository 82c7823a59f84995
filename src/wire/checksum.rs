//! The Internet checksum (RFC 1071): of a header, and of a transport
//! segment with its pseudo header (RFC 768, RFC 793, RFC 8200 §8.1).

use std::net::IpAddr;

use crate::base::IpProto;

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last
/// byte padded with a zero), folded to 16 bits; not complemented.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc = 0u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// The one's-complement sum of partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data`: 0 when a header that includes its
/// checksum is intact.
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// The sum of the pseudo header of a TCP or UDP segment of `len` bytes
/// between these addresses. The IPv4 pseudo header's 16-bit length and the
/// IPv6 one's 32-bit length sum alike, so one function serves both.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, proto: IpProto, len: u32) -> u16 {
    let addr = |a: &IpAddr| match a {
        IpAddr::V4(a) => sum(&a.octets()),
        IpAddr::V6(a) => sum(&a.octets()),
    };
    combine(&[
        addr(src),
        addr(dst),
        (len >> 16) as u16,
        len as u16,
        u16::from(proto.0),
    ])
}

/// Whether an IPv4 header (a multiple of 4 bytes long) sums to all ones, as
/// an intact one does; 32 bits at a time, which folds to the same sum. The
/// parser's fast path.
#[inline]
pub(crate) fn header_ok(h: &[u8]) -> bool {
    let mut sum: u64 = 0;
    for w in h.chunks_exact(4) {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        // Split anywhere on a word boundary, the partial sums combine to it.
        assert_eq!(combine(&[sum(&data[..2]), sum(&data[2..])]), 0xddf2);
        // An odd last byte counts as the high byte of a word.
        assert_eq!(sum(&[0x01]), 0x0100);
    }

    /// A real IPv4 header (Wikipedia's IPv4 checksum example).
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn an_intact_header_checks_both_ways() {
        assert_eq!(checksum(&HEADER), 0);
        assert!(header_ok(&HEADER));
        let mut h = HEADER;
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(checksum(&h), 0xb861);
        assert!(!header_ok(&h));
    }

    #[test]
    fn pseudo_header_sums_addresses_protocol_and_length() {
        let (s, d): (IpAddr, IpAddr) = (
            "192.168.0.1".parse().unwrap(),
            "192.168.0.199".parse().unwrap(),
        );
        let want = sum(&[192, 168, 0, 1, 192, 168, 0, 199, 0, 17, 0, 0x5f]);
        assert_eq!(pseudo_header(&s, &d, IpProto::UDP, 0x5f), want);
        let (s, d): (IpAddr, IpAddr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut v6 = [0u8; 40];
        v6[0..2].copy_from_slice(&[0x20, 0x01]);
        v6[2..4].copy_from_slice(&[0x0d, 0xb8]);
        v6[15] = 1;
        v6[16..20].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[31] = 2;
        v6[32..36].copy_from_slice(&0x1_0004u32.to_be_bytes());
        v6[39] = 6;
        assert_eq!(pseudo_header(&s, &d, IpProto::TCP, 0x1_0004), sum(&v6));
    }
}
